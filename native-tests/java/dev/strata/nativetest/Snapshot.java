package dev.strata.nativetest;

import dev.strata.posix.Errno;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * What a tree shows to a program: every entry below a root (lstat, never following links), with its
 * type, permissions, owner, size, content hash, link target, link count, xattrs, which other names
 * share its inode, and (for times set before 2020, i.e. by the layer builder or by explicit utimens)
 * its mtime. The walk is descriptor-relative (openat per level), so depth beyond PATH_MAX is fine;
 * names are Latin-1 strings, one char per byte.
 */
public final class Snapshot {
    /** Times at or after this are "now-ish" (set by writes during the test) and are not compared. */
    public static final long OLD_TIME_LIMIT = 1577836800L; // 2020-01-01

    public static final class Entry {
        public final String rel;
        String type = "?";
        int perm, uid, gid;
        long size, nlink, rdev, mtime, mtimeNs, ctime, ctimeNs, ino, dev;
        long blocks;
        /** d_ino as readdir gave it (-1: not listed, e.g. the root). */
        long dino = -1;
        /** Data extents of a regular file from SEEK_DATA/SEEK_HOLE ("0-4096,1048576-1052672"; "" = all hole), null if not a file. */
        String extents;
        String sha256, target, problem = "";
        final SortedMap<String, String> xattrs = new TreeMap<>();
        String sameInodeAs = "";

        Entry(String rel) { this.rel = rel; }

        public String type() { return type; }
        public long nlink() { return nlink; }
        public long ino() { return ino; }
        public long size() { return size; }
        public int perm() { return perm; }
        public String sha256() { return sha256; }
        public String target() { return target; }
        public Map<String, String> xattrs() { return xattrs; }
        public long mtime() { return mtime; }
        public long ctime() { return ctime; }
        public String extents() { return extents; }
        /** Whether readdir's d_ino equals lstat's st_ino (true where the entry was not listed). */
        public boolean dinoMatches() { return dino == -1 || dino == ino; }

        /** Field name -> value, for the comparison; times only when "old" (see OLD_TIME_LIMIT). */
        Map<String, String> fields(Options o) {
            Map<String, String> f = new java.util.LinkedHashMap<>();
            f.put("type", type);
            if (type.equals("whiteout")) return f;
            if (!problem.isEmpty()) f.put("problem", problem);
            f.put("mode", String.format("%04o", perm));
            f.put("uid", Integer.toString(uid));
            f.put("gid", Integer.toString(gid));
            if (!type.equals("dir")) f.put("size", Long.toString(size));
            if (sha256 != null) f.put("sha256", sha256);
            if (o.compareSparse && extents != null) {
                // whether the file has a hole at all (a summary: Snapshot.diff compares the extents themselves,
                // see holesKept); the exact map only where both sides must be the same file (o.exact)
                f.put("holes", hasHole(extents, size) ? "yes" : "no");
                if (o.exact) f.put("data extents", extents);
            }
            if (target != null) f.put("target", Names.show(target));
            if (type.equals("chr") || type.equals("blk")) f.put("rdev", Long.toString(rdev));
            if (o.compareNlink && (o.compareDirNlink || !type.equals("dir"))) f.put("nlink", Long.toString(nlink));
            for (Map.Entry<String, String> x : xattrs.entrySet()) {
                if (o.xattrIncluded(x.getKey())) f.put("xattr " + x.getKey(), x.getValue());
            }
            if (o.compareInodeGroups && !type.equals("dir")) f.put("same inode as", sameInodeAs);
            if (o.exact) {
                // the same directory before and after: every time but atime, and the inode itself
                f.put("mtime", mtime + "." + String.format("%09d", mtimeNs));
                f.put("ctime", ctime + "." + String.format("%09d", ctimeNs));
                f.put("ino", Long.toString(ino));
            }
            return f;
        }

        String oldMtime() { return mtime < OLD_TIME_LIMIT ? mtime + "." + String.format("%09d", mtimeNs) : null; }

        @Override public String toString() {
            return Names.show(rel.isEmpty() ? "." : rel) + " " + type + " " + String.format("%04o", perm) + " " + uid + ":" + gid
                    + " size=" + size + " nlink=" + nlink + (target != null ? " -> " + Names.show(target) : "")
                    + (sha256 != null ? " sha=" + sha256.substring(0, 12) : "") + (xattrs.isEmpty() ? "" : " xattrs=" + xattrs.keySet())
                    + (problem.isEmpty() ? "" : " PROBLEM=" + problem);
        }
    }

    /** What a comparison looks at. */
    public static final class Options {
        boolean compareNlink = true, compareDirNlink = true, compareInodeGroups = true, compareSparse = true,
                compareOldTimes = true, xattrsUserOnly = false, compareSecurity = true, compareDino = true, exact = false;
        public static Options all() { return new Options(); }
        /**
         * For a directory compared with itself at another time (a lower layer before and after a test):
         * everything, exactly: also mtime and ctime to the nanosecond, st_ino, the data/hole map, and every
         * xattr (trusted.*, security.*, POSIX ACLs). Only atime may change (reads through the overlay).
         */
        public static Options exact() { Options o = new Options(); o.exact = true; return o; }
        /**
         * Everything, minus what -Dstrata.compare.X=false turns off (X: nlink, dirNlink, inodeGroups,
         * sparse, times) — for exploring an implementation known to differ in one respect.
         */
        public static Options fromProperties() {
            Options o = new Options();
            o.compareNlink = !"false".equals(System.getProperty("strata.compare.nlink"));
            o.compareDirNlink = !"false".equals(System.getProperty("strata.compare.dirNlink"));
            o.compareInodeGroups = !"false".equals(System.getProperty("strata.compare.inodeGroups"));
            // the libfuse 2 transport has no lseek: SEEK_DATA/SEEK_HOLE see every file as data there
            o.compareSparse = Boolean.parseBoolean(System.getProperty("strata.compare.sparse", String.valueOf(!Mounter.libfuseTransport())));
            o.compareOldTimes = !"false".equals(System.getProperty("strata.compare.times"));
            o.compareSecurity = !"false".equals(System.getProperty("strata.compare.security"));
            o.compareDino = !"false".equals(System.getProperty("strata.compare.dino"));
            return o;
        }
        public Options dirNlink(boolean b) { compareDirNlink = b; return this; }
        public Options nlink(boolean b) { compareNlink = b; return this; }
        public Options inodeGroups(boolean b) { compareInodeGroups = b; return this; }
        public Options sparse(boolean b) { compareSparse = b; return this; }
        public Options oldTimes(boolean b) { compareOldTimes = b; return this; }
        public Options userXattrsOnly(boolean b) { xattrsUserOnly = b; return this; }
        public Options security(boolean b) { compareSecurity = b; return this; }
        public Options dino(boolean b) { compareDino = b; return this; }
        /**
         * user.* and trusted.* always; security.* (file capabilities) and the POSIX ACLs
         * (system.posix_acl_access/default) unless turned off; other system.* names never (they are views
         * of other metadata, e.g. system.nfs4_acl); with userXattrsOnly only user.*.
         */
        boolean xattrIncluded(String name) {
            if (xattrsUserOnly) return name.startsWith("user.");
            if (exact) return true;
            if (name.startsWith("security.")) return compareSecurity;
            if (name.startsWith("system.")) return compareSecurity && (name.equals("system.posix_acl_access") || name.equals("system.posix_acl_default"));
            return true;
        }
    }

    private final String label;
    private final SortedMap<String, Entry> entries;

    private Snapshot(String label, SortedMap<String, Entry> entries) { this.label = label; this.entries = entries; }

    public String label() { return label; }
    public SortedMap<String, Entry> entries() { return entries; }
    public Entry get(String rel) { return entries.get(rel); }
    public int size() { return entries.size(); }

    /** Snapshot of everything below root (the root itself is the entry ""). */
    public static Snapshot take(String label, Path root) {
        return Mounts.guarded("snapshot of " + root, () -> takeUnguarded(label, root));
    }

    private static Snapshot takeUnguarded(String label, Path root) {
        SortedMap<String, Entry> map = new TreeMap<>();
        Map<String, List<String>> byInode = new HashMap<>();
        walk(root, (dirfd, name, rel, st, dtype) -> {
            Entry e = new Entry(rel);
            map.put(rel, e);
            if (st == null) { e.problem = "listing problem: " + Errno.name(dtype); return; }
            fill(e, st);
            String typeFromDirent = dtypeName(dtype);
            if (name != null && typeFromDirent != null && !typeFromDirent.equals(e.type)) {
                e.problem = "readdir says " + typeFromDirent + ", lstat says " + e.type;
            }
            String xpath = name == null ? root.toString() : "/proc/self/fd/" + dirfd + "/" + name;
            if (name != null) e.dino = LAST_DINO.get();
            for (String x : Posix.llistxattr(xpath)) {
                byte[] v = Posix.lgetxattr(xpath, x);
                e.xattrs.put(x, v == null ? "<unreadable>" : Names.showBytes(v));
            }
            if (e.type.equals("file")) {
                int fd = name == null ? -1 : openQuietly(dirfd, name, Posix.O_RDONLY | Posix.O_NOFOLLOW | Posix.O_NONBLOCK);
                if (fd < 0) e.problem = "open for reading: " + Errno.name(fd);
                else {
                    try {
                        e.sha256 = sha256(fd, e);
                        e.extents = extents(fd, e.size);
                    } finally { Posix.close(fd); }
                }
            } else if (e.type.equals("symlink")) {
                int[] err = new int[1];
                String t = Posix.readlinkat(dirfd, name, err);
                e.target = t == null ? "<readlink " + Errno.name(err[0]) + ">" : t;
            }
            if (!e.type.equals("dir")) byInode.computeIfAbsent(e.dev + ":" + e.ino, k -> new ArrayList<>()).add(rel);
        });
        for (List<String> group : byInode.values()) {
            if (group.size() < 2) continue;
            for (String rel : group) {
                List<String> others = new ArrayList<>();
                for (String o : group) if (!o.equals(rel)) others.add(Names.show(o));
                java.util.Collections.sort(others);
                map.get(rel).sameInodeAs = String.join(", ", others);
            }
        }
        return new Snapshot(label, map);
    }

    private static void fill(Entry e, Stat st) {
        e.type = typeName(st.type());
        e.perm = st.perm();
        e.uid = st.uid();
        e.gid = st.gid();
        e.size = st.size();
        e.nlink = st.nlink();
        e.rdev = st.rdev();
        e.mtime = st.mtime();
        e.mtimeNs = st.mtimeNs();
        e.ctime = st.ctime();
        e.ctimeNs = st.ctimeNs();
        e.ino = st.ino();
        e.dev = st.dev();
        e.blocks = st.blocks();
    }

    static String typeName(int t) {
        switch (t) {
            case Posix.S_IFREG: return "file";
            case Posix.S_IFDIR: return "dir";
            case Posix.S_IFLNK: return "symlink";
            case Posix.S_IFIFO: return "fifo";
            case Posix.S_IFCHR: return "chr";
            case Posix.S_IFBLK: return "blk";
            case Posix.S_IFSOCK: return "socket";
            default: return "type " + Integer.toOctalString(t);
        }
    }

    static String dtypeName(int d) {
        switch (d) {
            case 1: return "fifo";
            case 2: return "chr";
            case 4: return "dir";
            case 6: return "blk";
            case 8: return "file";
            case 10: return "symlink";
            case 12: return "socket";
            default: return null; // DT_UNKNOWN
        }
    }

    private static String sha256(int fd, Entry e) {
        MessageDigest md;
        try { md = MessageDigest.getInstance("SHA-256"); } catch (NoSuchAlgorithmException x) { throw new IllegalStateException(x); }
        int chunk = 1 << 20;
        Pointer buf = Memory.allocateDirect(Posix.RT, chunk);
        byte[] b = new byte[chunk];
        long off = 0;
        while (true) {
            long n = Posix.pread(fd, buf, chunk, off);
            if (n < 0) { e.problem = "read at " + off + ": " + Errno.name((int) n); break; }
            if (n == 0) break;
            buf.get(0, b, 0, (int) n);
            md.update(b, 0, (int) n);
            off += n;
        }
        if (off != e.size && e.problem.isEmpty()) e.problem = "read " + off + " bytes, stat size " + e.size;
        StringBuilder s = new StringBuilder();
        for (byte x : md.digest()) s.append(String.format("%02x", x & 0xff));
        return s.toString();
    }

    /**
     * The data extents of an open regular file from SEEK_DATA/SEEK_HOLE: "start-end" ranges joined by
     * commas ("" if the file is all hole or empty). A filesystem without SEEK_HOLE reports the whole file
     * as data, which is what lseek's generic fallback does too.
     */
    static String extents(int fd, long size) {
        StringBuilder s = new StringBuilder();
        long off = 0;
        while (off < size) {
            long d = Posix.lseek(fd, off, Posix.SEEK_DATA);
            if (d < 0) break;                        // ENXIO: only hole from off to the end
            long h = Posix.lseek(fd, d, Posix.SEEK_HOLE);
            if (h < 0) h = size;
            if (s.length() > 0) s.append(',');
            s.append(d).append('-').append(h);
            if (h <= d) break;
            off = h;
        }
        return s.toString();
    }

    static boolean hasHole(String extents, long size) {
        long[][] x = parseExtents(extents);
        long covered = 0;
        for (long[] r : x) covered += r[1] - r[0];
        return covered < size;
    }

    static long[][] parseExtents(String extents) {
        if (extents == null || extents.isEmpty()) return new long[0][];
        String[] parts = extents.split(",");
        long[][] out = new long[parts.length][];
        for (int i = 0; i < parts.length; i++) {
            int dash = parts[i].indexOf('-');
            out[i] = new long[]{Long.parseLong(parts[i].substring(0, dash)), Long.parseLong(parts[i].substring(dash + 1))};
        }
        return out;
    }

    /**
     * Null if every hole of the reference (below size) is a hole of the target too, else the first
     * reference hole the target fills with data. The rule where two implementations store the same
     * content: holes may legitimately differ in one direction only, since the kernel's copy-up skips
     * holes in 1 MiB chunks (ovl_copy_up_file: it copies a whole chunk that has any data) and a finer
     * copy keeps more of them; a hole the kernel keeps (a lower file's, a punched one, a truncate's)
     * must not become allocated zeros.
     */
    static String holesKept(String ref, String tgt, long size) {
        long[][] r = parseExtents(ref), t = parseExtents(tgt);
        // walk the reference's holes: [prevEnd, next start) and the tail
        long prev = 0;
        for (int i = 0; i <= r.length; i++) {
            long hs = prev, he = i < r.length ? r[i][0] : size;
            if (he > hs) {
                for (long[] d : t) {
                    long a = Math.max(hs, d[0]), b = Math.min(he, d[1]);
                    if (a < b) return "the hole at " + hs + "-" + he + " is data at " + a + "-" + b;
                }
            }
            if (i < r.length) prev = r[i][1];
        }
        return null;
    }

    // ------------------------------------------------------------------ what an upper layer means

    /**
     * What an upper directory means to an overlay, independent of how it is spelled: whiteouts of any
     * form (char 0/0, {@code .wh.NAME}, zero-size file with an overlay.whiteout xattr) become entries of
     * type "whiteout" with no other fields; opaque markers of any form become the pseudo-xattr
     * "opaque=y", kept only where some lower layer has a directory at that path (elsewhere it changes
     * nothing, and the kernel sets it as an optimization); overlay-private xattrs (trusted.overlay.*,
     * user.overlay.*, user.strata.*) are dropped, since each implementation keeps its own bookkeeping.
     */
    public static Snapshot upperMeaning(String label, Path upper, java.util.List<Path> lowers) {
        Snapshot raw = take(label, upper);
        SortedMap<String, Entry> out = new TreeMap<>();
        for (Entry e : raw.entries.values()) {
            String parent = e.rel.contains("/") ? e.rel.substring(0, e.rel.lastIndexOf('/')) : "";
            String name = e.rel.substring(e.rel.lastIndexOf('/') + 1);
            boolean opaqueMarker = name.equals(".wh..wh..opq");
            boolean whiteout = (e.type.equals("chr") && e.rdev == 0)
                    || (e.type.equals("file") && e.size == 0 && (e.xattrs.containsKey("trusted.overlay.whiteout")
                    || e.xattrs.containsKey("user.overlay.whiteout")));
            String key = e.rel;
            if (!opaqueMarker && name.startsWith(".wh.")) {
                whiteout = true;
                key = parent.isEmpty() ? name.substring(4) : parent + "/" + name.substring(4);
            }
            if (opaqueMarker) {
                Entry p = out.get(parent);
                if (p != null) p.xattrs.put("opaque", "y");
                continue;
            }
            if (whiteout) {
                Entry w = new Entry(key);
                w.type = "whiteout";
                out.put(key, w);
                continue;
            }
            Entry n = copyOf(e, key);
            for (Map.Entry<String, String> x : e.xattrs.entrySet()) {
                String k = x.getKey();
                if (k.equals("trusted.overlay.opaque") || k.equals("user.overlay.opaque")) {
                    if (x.getValue().equals("y")) n.xattrs.put("opaque", "y");
                } else if (!k.startsWith("trusted.overlay.") && !k.startsWith("user.overlay.") && !k.startsWith("user.strata.")) {
                    n.xattrs.put(k, x.getValue());
                }
            }
            out.put(key, n);
        }
        // an opaque marker means something only where the lowers show a directory and no upper ancestor is opaque
        java.util.Set<String> rawOpaque = new java.util.HashSet<>();
        for (Entry e : out.values()) if (e.xattrs.containsKey("opaque")) rawOpaque.add(e.rel);
        for (Entry e : out.values()) {
            if (!e.xattrs.containsKey("opaque")) continue;
            boolean ancestorOpaque = false;
            for (String a = e.rel; a.contains("/"); ) {
                a = a.substring(0, a.lastIndexOf('/'));
                if (rawOpaque.contains(a)) { ancestorOpaque = true; break; }
            }
            if (ancestorOpaque || !lowerHasDir(lowers, e.rel)) e.xattrs.remove("opaque");
        }
        return new Snapshot(label, out);
    }

    private static Entry copyOf(Entry e, String key) {
        Entry n = new Entry(key);
        n.type = e.type; n.perm = e.perm; n.uid = e.uid; n.gid = e.gid; n.size = e.size; n.nlink = e.nlink;
        n.rdev = e.rdev; n.mtime = e.mtime; n.mtimeNs = e.mtimeNs; n.ctime = e.ctime; n.ctimeNs = e.ctimeNs; n.ino = e.ino; n.dev = e.dev;
        n.blocks = e.blocks; n.dino = e.dino; n.extents = e.extents;
        n.sha256 = e.sha256; n.target = e.target; n.problem = e.problem; n.sameInodeAs = e.sameInodeAs;
        return n;
    }

    /**
     * Whether the union of the lower layers alone shows a directory at rel: an overlay lookup over the
     * lowers, top first (a char 0/0 whiteout or a non-directory ends it, an opaque directory is the
     * last layer merged).
     */
    static boolean lowerHasDir(java.util.List<Path> lowers, String rel) {
        if (rel.isEmpty()) return true;
        java.util.List<Path> active = new ArrayList<>(lowers);
        String prefix = "";
        for (String c : rel.split("/")) {
            prefix = prefix.isEmpty() ? c : prefix + "/" + c;
            java.util.List<Path> next = new ArrayList<>();
            for (Path l : active) {
                Stat st = new Stat();
                String p = l + "/" + prefix;
                if (Posix.fstatat(Posix.AT_FDCWD, p, st, Posix.AT_SYMLINK_NOFOLLOW) != 0) continue;
                if (!st.isDir()) break;               // a whiteout or a non-directory hides everything below
                next.add(l);
                byte[] o = Posix.lgetxattr(p, "trusted.overlay.opaque");
                if (o != null && o.length > 0 && o[0] == 'y') break;
            }
            if (next.isEmpty()) return false;
            active = next;
        }
        return true;
    }

    // ------------------------------------------------------------------ walking

    /**
     * Opens with O_NOATIME: a snapshot leaves atimes alone (of a layer, and through a mount), so a test can
     * see what a mount does to them (AtimeTest); without it where the caller may not use it (EPERM).
     */
    static int openQuietly(int dirfd, String name, int flags) {
        int fd = Posix.openat(dirfd, name, flags | Posix.O_NOATIME, 0);
        return fd == -Errno.EPERM ? Posix.openat(dirfd, name, flags, 0) : fd;
    }

    /** Called for the root (dirfd -1, name null, rel "") and every entry below it; st null if lstat failed (dtype = errno). */
    public interface Visitor {
        void visit(int dirfd, String name, String rel, Stat st, int dtype);
    }

    /** Walks below root with descriptors; entries of a directory in byte order; never follows symlinks. */
    public static void walk(Path root, Visitor v) {
        Stat st = new Stat();
        int r = Posix.fstatat(Posix.AT_FDCWD, root.toString(), st, Posix.AT_SYMLINK_NOFOLLOW);
        if (r < 0) throw new IllegalStateException("lstat " + root + ": " + Errno.name(r));
        v.visit(-1, null, "", st, 0);
        int fd = openQuietly(Posix.AT_FDCWD, root.toString(), Posix.O_RDONLY | Posix.O_DIRECTORY);
        if (fd < 0) throw new IllegalStateException("open " + root + ": " + Errno.name(fd));
        try {
            walkDir(fd, "", v);
        } finally {
            Posix.close(fd);
        }
    }

    private static void walkDir(int dirfd, String relDir, Visitor v) {
        List<String[]> names = listDir(dirfd);
        Set<String> seen = new HashSet<>();
        for (String[] nd : names) {
            String name = nd[0];
            String rel = relDir.isEmpty() ? name : relDir + "/" + name;
            if (!seen.add(name)) {
                v.visit(dirfd, name, rel + " <listed twice>", null, Errno.EEXIST);
                continue;
            }
            Stat st = new Stat();
            int r = Posix.fstatat(dirfd, name, st, Posix.AT_SYMLINK_NOFOLLOW);
            if (r < 0) { v.visit(dirfd, name, rel, null, -r); continue; }
            LAST_DINO.set(Long.parseLong(nd[2]));
            v.visit(dirfd, name, rel, st, Integer.parseInt(nd[1]));
            if (st.isDir()) {
                int fd = openQuietly(dirfd, name, Posix.O_RDONLY | Posix.O_DIRECTORY | Posix.O_NOFOLLOW);
                if (fd < 0) { v.visit(dirfd, name, rel + " <open dir failed>", null, -fd); continue; }
                try { walkDir(fd, rel, v); } finally { Posix.close(fd); }
            }
        }
    }

    /** The d_ino of the entry being visited (a visitor that wants it reads it here). */
    static final ThreadLocal<Long> LAST_DINO = ThreadLocal.withInitial(() -> -1L);

    /** The names of a directory (without . and ..) with their d_type and d_ino ({name, dtype, d_ino}), sorted by bytes. */
    public static List<String[]> listDir(int dirfd) {
        List<String[]> out = new ArrayList<>();
        int size = 65536;
        Pointer buf = Memory.allocateDirect(Posix.RT, size);
        // read from offset 0 through a dup so the caller's descriptor offset is not disturbed
        while (true) {
            long n = Posix.getdents64(dirfd, buf, size);
            if (n < 0) throw new IllegalStateException("getdents64: " + Errno.name((int) n));
            if (n == 0) break;
            int pos = 0;
            while (pos < n) {
                int reclen = buf.getShort(pos + 16) & 0xffff;
                int dtype = buf.getByte(pos + 18) & 0xff;
                int nameStart = pos + 19, end = nameStart;
                while (buf.getByte(end) != 0) end++;
                byte[] nb = new byte[end - nameStart];
                buf.get(nameStart, nb, 0, nb.length);
                String name = new String(nb, StandardCharsets.ISO_8859_1);
                long dino = buf.getLong(pos);
                if (!name.equals(".") && !name.equals("..")) out.add(new String[]{name, Integer.toString(dtype), Long.toString(dino)});
                pos += reclen;
            }
        }
        out.sort((a, b) -> a[0].compareTo(b[0]));
        return out;
    }

    // ------------------------------------------------------------------ comparing

    /** The differences between two snapshots, readable, at most max lines (plus a count of the rest). */
    public static List<String> diff(Snapshot a, Snapshot b, Options o, int max) { return diff(a, b, o, max, null, null); }

    /**
     * Like {@link #diff(Snapshot, Snapshot, Options, int)}, and relative to an earlier snapshot of each
     * side (prevA, prevB, may be null): for every name present in all four, whether its mtime changed
     * and whether its st_ino changed since then must agree. Times set to "now" by both sides differ in
     * value but not in this relation; st_ino must stay across copy-up and remount on both or on neither.
     *
     * <p>By convention a is the reference where there is one (the kernel). Rules under which the kernel
     * and another implementation legitimately differ, each spelled out where it is applied:
     * <ul>
     * <li>mtime: compared exactly where it is before 2020 on either side (the layer builder and explicit
     *     utimens set only such times); a time "now" is compared by the changed-or-not relation only.</li>
     * <li>holes: see {@link #holesKept} (the reference's holes must be holes of the other side).</li>
     * <li>d_ino: readdir's d_ino must equal lstat's st_ino; the kernel overlay (xino off, all layers on one
     *     filesystem) gives a merged directory listed in a parent it has not marked impure the upper
     *     directory's d_ino while lstat gives the lower one's (ovl_calc_d_ino recalculates only in impure
     *     or xino directories; seen on this machine with hand-built uppers). That mismatch, on a directory,
     *     on a side whose label starts with "kernel", is the one excused. So is, on that side, a
     *     non-directory with several names whose d_ino is its upper inode's while lstat gives its origin's:
     *     a name link(2) added to an impure upper directory that is not merged after the kernel cached
     *     that directory's impure entries (ovl_instantiate marks the directory modified without
     *     impurity, which leaves a non-merged directory's cache as it was: ovl_dir_version_inc), so the
     *     new name is not among them until the cache goes (seed 3045, op #718, checked by hand on 6.18:
     *     scandir, ln, scandir).</li>
     * </ul>
     */
    public static List<String> diff(Snapshot a, Snapshot b, Options o, int max, Snapshot prevA, Snapshot prevB) {
        return diff(a, b, o, max, prevA, prevB, Set.of());
    }

    /**
     * As {@link #diff(Snapshot, Snapshot, Options, int, Snapshot, Snapshot)}, where {@code renewed} names
     * the paths whose object was removed, replaced or created since the earlier snapshots (on either
     * side): the object there now is another one, and whether it got the old one's inode number is the
     * allocator's matter (ext4 hands a freed number out again at once, on one side and not the other:
     * seed 1008 with redirect_dir=on,index=on,metacopy=on, op #1799), so for those the st_ino and mtime
     * relations are not compared, as for a name taken over on both sides. Every operation's own effect
     * on them was compared when it ran (RandomDifferentialTest#timesDiffer).
     */
    public static List<String> diff(Snapshot a, Snapshot b, Options o, int max, Snapshot prevA, Snapshot prevB, Set<String> renewed) {
        List<String> out = new ArrayList<>();
        int total = 0;
        Set<String> all = new java.util.TreeSet<>(a.entries.keySet());
        all.addAll(b.entries.keySet());
        for (String rel : all) {
            Entry ea = a.entries.get(rel), eb = b.entries.get(rel);
            String shown = Names.show(rel.isEmpty() ? "." : rel);
            List<String> lines = new ArrayList<>();
            if (ea == null) lines.add("only in " + b.label + ": " + shown + " (" + eb + ")");
            else if (eb == null) lines.add("only in " + a.label + ": " + shown + " (" + ea + ")");
            else {
                Map<String, String> fa = ea.fields(o), fb = eb.fields(o);
                Set<String> keys = new java.util.LinkedHashSet<>(fa.keySet());
                keys.addAll(fb.keySet());
                if (!o.exact) keys.remove("holes");     // compared below, by holesKept
                for (String k : keys) {
                    String va = fa.get(k), vb = fb.get(k);
                    if (!Objects.equals(va, vb)) {
                        lines.add(shown + ": " + k + " " + a.label + "=" + (va == null ? "<none>" : va) + " " + b.label + "="
                                + (vb == null ? "<none>" : vb));
                    }
                }
                boolean sameType = fa.get("type").equals(fb.get("type")) && !ea.type.equals("whiteout");
                if (o.compareOldTimes && !o.exact && sameType) {
                    String ta = ea.oldMtime(), tb = eb.oldMtime();
                    if ((ta != null || tb != null) && !Objects.equals(ta, tb)) {
                        lines.add(shown + ": mtime " + a.label + "=" + showTime(ea) + " " + b.label + "=" + showTime(eb));
                    }
                }
                if (o.compareSparse && !o.exact && sameType && ea.extents != null && eb.extents != null && ea.size == eb.size) {
                    String h = holesKept(ea.extents, eb.extents, ea.size);
                    if (h != null) lines.add(shown + ": holes: " + a.label + " data=[" + ea.extents + "] " + b.label + " data=[" + eb.extents + "]: " + h);
                }
                if (o.compareDino && !o.exact && ea.dinoMatches() != eb.dinoMatches()) {
                    Entry bad = ea.dinoMatches() ? eb : ea;
                    String badLabel = ea.dinoMatches() ? b.label : a.label;
                    boolean excused = badLabel.startsWith("kernel") && (bad.type.equals("dir") || bad.nlink > 1);
                    if (!excused) {
                        lines.add(shown + ": d_ino " + badLabel + ": readdir d_ino=" + bad.dino + " but lstat st_ino=" + bad.ino
                                + " (the other side: equal)");
                    }
                }
                if (prevA != null && prevB != null && sameType) {
                    Entry pa = prevA.entries.get(rel), pb = prevB.entries.get(rel);
                    if (pa != null && pb != null && pa.type.equals(ea.type) && pb.type.equals(eb.type)) {
                        boolean ma = pa.mtime != ea.mtime || pa.mtimeNs != ea.mtimeNs, mb = pb.mtime != eb.mtime || pb.mtimeNs != eb.mtimeNs;
                        // a name another object took on both sides (a rename over it): whether the new
                        // object's mtime equals the old one's is a matter of the clock's tick on each side,
                        // as for the per-operation check (RandomDifferentialTest#timesDiffer); the change of
                        // st_ino itself is still compared below (seen: seed 1000, op 1308 renamed over a name)
                        boolean replacedOnBoth = (pa.ino != ea.ino && pb.ino != eb.ino) || renewed.contains(rel);
                        if (o.compareOldTimes && ma != mb && !replacedOnBoth) {
                            lines.add(shown + ": mtime changed since the last comparison on " + (ma ? a.label : b.label) + " only ("
                                    + a.label + ": " + showTime(pa) + " -> " + showTime(ea) + ", " + b.label + ": " + showTime(pb) + " -> " + showTime(eb) + ")");
                        }
                        boolean ia = pa.ino != ea.ino, ib = pb.ino != eb.ino;
                        if (o.compareInodeGroups && ia != ib && !renewed.contains(rel)) {
                            lines.add(shown + ": st_ino changed since the last comparison on " + (ia ? a.label : b.label) + " only ("
                                    + a.label + ": " + pa.ino + " -> " + ea.ino + ", " + b.label + ": " + pb.ino + " -> " + eb.ino + ")");
                        }
                    }
                }
            }
            for (String l : lines) {
                if (total++ < max) out.add(l);
            }
        }
        if (total > max) out.add("... and " + (total - max) + " more differences");
        return out;
    }

    private static String showTime(Entry e) {
        return e.mtime + "." + String.format("%09d", e.mtimeNs) + (e.mtime < OLD_TIME_LIMIT ? "" : "(recent)");
    }

    /** A listing of the whole snapshot, one entry per line (for failure messages). */
    public String dump() {
        StringBuilder s = new StringBuilder(label).append(":\n");
        for (Entry e : entries.values()) s.append("  ").append(e).append('\n');
        return s.toString();
    }
}
