package dev.strata.image;

import static dev.strata.image.MemberNames.nameOf;
import static dev.strata.image.MemberNames.parentOf;
import static dev.strata.image.MemberNames.show;

import dev.strata.layer.At;
import dev.strata.layer.Markers;
import dev.strata.posix.Buffers;
import dev.strata.posix.Errno;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;
import jnr.ffi.Pointer;
import org.apache.commons.compress.archivers.tar.TarArchiveStructSparse;

import java.io.IOException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.LongSupplier;

/**
 * Extracts one layer tar into an empty directory, safely. Every write is fd-relative: each parent
 * directory is opened component by component with {@code O_PATH|O_DIRECTORY|O_NOFOLLOW}, so an entry
 * can never reach through a symlink (planted by an earlier entry or not) and nothing is written outside
 * the layer directory. Rules (see also the package documentation):
 * <ul>
 * <li>names are relative to the layer root; leading {@code ./} and empty components are dropped; an
 *     absolute name, a {@code ..} component, a NUL byte or a name longer than 4096 bytes is refused;</li>
 * <li>an entry whose parent is a symlink is refused, whatever the symlink points to;</li>
 * <li>a hard link must name an entry already extracted in this layer (not a directory);</li>
 * <li>symlink targets are stored verbatim (they are never followed here);</li>
 * <li>sizes are checked against the free space of the store and the configured cap before writing;</li>
 * <li>{@code .wh.NAME} becomes a whiteout and {@code .wh..wh..opq} an opaque directory, written with
 *     {@link Markers} (0/0 device and trusted xattr as root; {@code .wh.} files / user xattr otherwise);
 *     a character device 0/0 in the tar is a whiteout too;</li>
 * <li>metadata order is chown, xattrs, chmod, times (chown clears setuid bits and capabilities);
 *     directories get theirs at the end, deepest first, so their times and read-only modes stick.</li>
 * </ul>
 */
final class LayerExtractor implements AutoCloseable {
    static final int MAX_NAME = 4096;
    private static final int FD_CACHE = 256;
    private static final int DIR_FLAGS = Posix.O_PATH | Posix.O_DIRECTORY | Posix.O_NOFOLLOW;

    /** What an extraction produced. */
    static final class Stats {
        long files, dirs, symlinks, hardlinks, devices, fifos, whiteouts, opaques;
        /** Bytes of regular files (apparent length; hard links counted once). */
        long contentBytes;
        long skippedDevices, skippedXattrs, droppedPrivateXattrs, skippedAufs, ownershipNotKept;
        String firstSkippedXattr, firstSkippedDevice;
        String whiteoutForm, opaqueForm;
    }

    private static final class DirMeta {
        final boolean implied;
        final TarItem item;
        DirMeta(boolean implied, TarItem item) { this.implied = implied; this.item = item; }
    }

    private final int rootFd;
    private final String where;
    private final boolean privileged;
    private final LongSupplier usableBytes;
    private final long maxBytes;
    private long budget = -1;
    private long claimed;
    private final Map<String, DirMeta> dirMeta = new HashMap<>();
    private final LinkedHashMap<String, Integer> dirFds = new LinkedHashMap<>(64, 0.75f, true) {
        @Override protected boolean removeEldestEntry(Map.Entry<String, Integer> e) {
            if (size() > FD_CACHE) {
                Posix.close(e.getValue());
                return true;
            }
            return false;
        }
    };
    private boolean whFilesWritten;
    private final Stat st = new Stat();
    private final byte[] buf = new byte[1 << 17];
    final Stats stats = new Stats();
    /** The metadata-only mode (a lazy layer): plain file data stays in the tar. Null: extract everything. */
    LazyIndexer metadataOnly;

    /**
     * @param rootFd      an O_PATH descriptor of the (empty) layer directory; not closed here
     * @param where       the layer, for messages ("layer 2/3 sha256:abcd...")
     * @param usableBytes free bytes where the layer is written
     * @param maxBytes    cap on the sum of file sizes in this layer
     */
    LayerExtractor(int rootFd, String where, LongSupplier usableBytes, long maxBytes) {
        this.rootFd = rootFd;
        this.where = where;
        this.privileged = Posix.geteuid() == 0;
        this.usableBytes = usableBytes;
        this.maxBytes = maxBytes;
        dirMeta.put("", new DirMeta(true, null));
    }

    /** Extracts every member, then applies directory metadata. */
    void extract(TarReader tar) throws IOException {
        TarItem it;
        while ((it = tar.next()) != null) entry(it, tar);
        finishDirs();
    }

    // ------------------------------------------------------------------ names (see MemberNames)

    /** A member name made relative and clean ("" is the layer root); hostile forms are refused. */
    String clean(String raw, String what, String ctx) { return MemberNames.clean(raw, what, ctx, where); }

    private ImageException hostile(String what) { return MemberNames.hostile(where, what); }

    private ImageException fail(String rel, String op, int errno) {
        if (errno == -Errno.ENOSPC || errno == -Errno.EDQUOT) {
            return new ImageException(where + ": no space left in the store while writing '" + show(rel) + "' ("
                    + Posix.strerror(errno) + ")");
        }
        return new ImageException(where + ": cannot " + op + " '" + show(rel) + "': " + Posix.strerror(errno));
    }

    // ------------------------------------------------------------------ entries

    private void entry(TarItem it, TarReader tar) throws IOException {
        byte t = it.type();
        if (t == 'V') return; // GNU volume label: not a file
        String rel = clean(it.name, "name", "");
        boolean isDir = t == '5' || t == 'D' || ((t == '0' || t == 0) && it.name.endsWith("/"));
        if (rel.isEmpty()) {
            if (!isDir) throw hostile("member '" + show(it.name) + "' names the layer root but is not a directory");
            dirMeta.put("", new DirMeta(false, it));
            return;
        }
        if (rel.startsWith(Markers.WH_PREFIX + Markers.WH_PREFIX) && !rel.equals(Markers.OPAQUE_FILE)) {
            stats.skippedAufs++; // AUFS bookkeeping at the root (.wh..wh.plnk/, .wh..wh.aufs): skipped as docker does
            return;
        }
        String parent = parentOf(rel), name = nameOf(rel);
        if (!parent.isEmpty() && ("/" + parent).contains("/" + Markers.WH_PREFIX)) {
            throw new ImageException(where + ": invalid member '" + show(rel) + "': a whiteout name (.wh.*) used as a directory");
        }
        if (name.startsWith(Markers.WH_PREFIX)) {
            whiteoutEntry(parent, name, rel);
            return;
        }
        int pfd = dirFd(parent, rel, true);
        if (isDir) { directory(pfd, name, rel, it); return; }
        switch (t) {
            case '0': case 0: case '7': case 'S': regular(pfd, name, rel, it, tar); break;
            case '1': hardLink(name, rel, it); break;
            case '2': symlink(pfd, name, rel, it); break;
            case '3': case '4': device(pfd, name, rel, it, t == '3'); break;
            case '6': fifo(pfd, name, rel, it); break;
            default:
                throw new ImageException(where + ": unsupported tar member type '" + printable(t) + "' for '" + show(rel) + "'");
        }
    }

    private static String printable(byte t) {
        return t >= 0x21 && t < 0x7f ? String.valueOf((char) t) : String.format("\\x%02x", t & 0xff);
    }

    private void whiteoutEntry(String parent, String name, String rel) {
        if (name.equals(Markers.OPAQUE_FILE)) {
            int dfd = dirFd(parent, rel, true);
            markOpaque(dfd, parent);
            return;
        }
        if (name.startsWith(Markers.WH_PREFIX + Markers.WH_PREFIX)) {
            stats.skippedAufs++; // AUFS bookkeeping (.wh..wh.plnk, .wh..wh.aufs): not content, skipped as docker does
            return;
        }
        String target = name.substring(Markers.WH_PREFIX.length());
        if (target.isEmpty() || target.equals(".") || target.equals("..")) {
            throw hostile("invalid whiteout '" + show(rel) + "'");
        }
        int pfd = dirFd(parent, rel, true);
        if (Posix.fstatat(pfd, target, st, Posix.AT_SYMLINK_NOFOLLOW) == 0) {
            return; // an entry of this same layer: a whiteout only hides lower layers (OCI image spec)
        }
        whiteout(pfd, target, parent.isEmpty() ? target : parent + "/" + target);
    }

    private void whiteout(int pfd, String name, String rel) {
        int[] err = {0};
        Markers.WhiteoutForm f = Markers.createWhiteout(pfd, name, err);
        if (f == null) throw fail(rel, "create the whiteout", err[0]);
        if (f == Markers.WhiteoutForm.WH_FILE) whFilesWritten = true;
        if (stats.whiteoutForm == null) stats.whiteoutForm = f.label;
        stats.whiteouts++;
    }

    private void markOpaque(int dirFd, String rel) {
        int[] err = {0};
        Markers.OpaqueForm f = Markers.markOpaque(At.of(dirFd, "."), err);
        if (f == null) throw fail(rel.isEmpty() ? "." : rel, "mark opaque", err[0]);
        if (stats.opaqueForm == null) stats.opaqueForm = f.label;
        stats.opaques++;
    }

    /**
     * Makes room for a new entry: an existing non-directory is removed; an existing directory is kept
     * when the new entry is a directory too (returns true), else removed with its contents.
     */
    private boolean prepare(int pfd, String name, String rel, boolean newIsDir) {
        int r = Posix.fstatat(pfd, name, st, Posix.AT_SYMLINK_NOFOLLOW);
        if (r == 0) {
            if (st.isDir()) {
                if (newIsDir) return true;
                dropFdCache(rel);
                r = metadataOnly != null ? metadataOnly.bury(pfd, name) : Trees.removeAt(pfd, name);
                if (r < 0) throw fail(rel, "replace directory", r);
                dirMeta.keySet().removeIf(k -> k.equals(rel) || k.startsWith(rel + "/"));
            } else {
                r = metadataOnly != null ? metadataOnly.bury(pfd, name) : Posix.unlinkat(pfd, name, 0);
                if (r < 0 && r != -Errno.ENOENT) throw fail(rel, "replace", r);
            }
        } else if (r != -Errno.ENOENT) {
            throw fail(rel, "inspect", r);
        }
        if (whFilesWritten) Posix.unlinkat(pfd, Markers.WH_PREFIX + name, 0); // a .wh. marker of this same layer
        return false;
    }

    private void directory(int pfd, String name, String rel, TarItem it) {
        if (!prepare(pfd, name, rel, true)) {
            int r = Posix.mkdirat(pfd, name, 0700);
            if (r < 0) throw fail(rel, "create directory", r);
            stats.dirs++;
        }
        dirMeta.put(rel, new DirMeta(false, it));
    }

    private void regular(int pfd, String name, String rel, TarItem it, TarReader tar) throws IOException {
        List<TarArchiveStructSparse> map = it.sparse() ? it.sparseMap() : null;
        long data = 0;
        if (map != null) for (TarArchiveStructSparse s : map) data += s.getNumbytes();
        else data = it.size();
        reserve(data, it.realSize(), rel);
        prepare(pfd, name, rel, false);
        int fd = Posix.openat(pfd, name, Posix.O_WRONLY | Posix.O_CREAT | Posix.O_EXCL | Posix.O_NOFOLLOW, 0600);
        if (fd < 0) throw fail(rel, "create", fd);
        try {
            if (map == null && metadataOnly != null) {
                int r = metadataOnly.place(fd, it.size());
                if (r < 0) throw fail(rel, "index", r);
            } else if (map == null) {
                long off = 0;
                int n;
                while ((n = tar.read(buf, 0, buf.length)) > 0) {
                    write(fd, n, off, rel);
                    off += n;
                }
                if (off != it.size()) throw new ImageException(where + ": truncated data for '" + show(rel) + "'");
            } else {
                writeSparse(fd, map, it, tar, rel);
            }
            applyMeta(fd, pfd, name, rel, it, false);
        } finally {
            Posix.close(fd);
        }
        stats.files++;
        stats.contentBytes += it.realSize();
    }

    /** Writes only the data regions of a sparse member at their offsets; the holes stay holes. */
    private void writeSparse(int fd, List<TarArchiveStructSparse> map, TarItem it, TarReader tar, String rel) throws IOException {
        long pos = 0;
        for (TarArchiveStructSparse s : map) {
            if (s.getOffset() < pos || s.getNumbytes() < 0) {
                throw new ImageException(where + ": corrupt sparse map for '" + show(rel) + "'");
            }
            long gap = s.getOffset() - pos;
            while (gap > 0) { // a hole: the reader yields zeros that we do not write
                long k = tar.skip(gap);
                if (k <= 0) {
                    int n = tar.read(buf, 0, (int) Math.min(buf.length, gap));
                    if (n < 0) throw new ImageException(where + ": truncated data for '" + show(rel) + "'");
                    k = n;
                }
                gap -= k;
                pos += k;
            }
            long left = s.getNumbytes();
            while (left > 0) {
                int n = tar.read(buf, 0, (int) Math.min(buf.length, left));
                if (n < 0) throw new ImageException(where + ": truncated data for '" + show(rel) + "'");
                write(fd, n, pos, rel);
                pos += n;
                left -= n;
            }
        }
        int r = Posix.ftruncate(fd, it.realSize());
        if (r < 0) throw fail(rel, "set the length of", r);
    }

    private void write(int fd, int n, long off, String rel) {
        Pointer p = Buffers.get(n);
        p.put(0, buf, 0, n);
        long done = 0;
        while (done < n) {
            long w = Posix.C.pwrite(fd, p.slice(done), n - done, off + done);
            if (w < 0) throw fail(rel, "write", -Posix.errno());
            done += w;
        }
    }

    /** Checks a member's size against the layer cap and the free space, before any byte is written. */
    private void reserve(long data, long realSize, String rel) {
        if (data < 0 || realSize < 0) throw hostile("'" + show(rel) + "' has a negative size");
        if (claimed + data > maxBytes || claimed + data < 0) {
            throw new ImageException(where + ": layer is larger than the limit of " + Human.bytes(maxBytes)
                    + " (at '" + show(rel) + "', which claims " + Human.bytes(data) + "; see --max-layer-size)");
        }
        claimed += data;
        if (data > budget) {
            budget = usableBytes.getAsLong();
            if (data > budget) {
                throw new ImageException(where + ": '" + show(rel) + "' claims " + Human.bytes(data) + " but only "
                        + Human.bytes(budget) + " are free in the store");
            }
        }
        budget -= data;
    }

    private void symlink(int pfd, String name, String rel, TarItem it) {
        String target = it.linkName;
        if (target.isEmpty()) throw new ImageException(where + ": symbolic link '" + show(rel) + "' has an empty target");
        if (target.indexOf('\0') >= 0) throw hostile("symbolic link target of '" + show(rel) + "' contains a NUL byte");
        prepare(pfd, name, rel, false);
        int r = Posix.symlinkat(target, pfd, name);
        if (r < 0) throw fail(rel, "create symbolic link", r);
        applyMeta(-1, pfd, name, rel, it, true);
        stats.symlinks++;
    }

    private void hardLink(String name, String rel, TarItem it) {
        String target = clean(it.linkName, "hard link target", " (of '" + show(rel) + "')");
        if (target.isEmpty()) throw hostile("hard link '" + show(rel) + "' points to the layer root");
        if (target.equals(rel)) return; // a link to itself changes nothing
        String tparent = parentOf(target), tname = nameOf(target);
        int tfd = dirFd(tparent, target, false);
        if (tfd < 0 || Posix.fstatat(tfd, tname, st, Posix.AT_SYMLINK_NOFOLLOW) < 0) {
            throw hostile("hard link '" + show(rel) + "' points to '" + show(target) + "', which is not (yet) in the layer");
        }
        if (st.isDir()) throw hostile("hard link '" + show(rel) + "' points to the directory '" + show(target) + "'");
        long tdev = st.dev(), tino = st.ino();
        int tdup = Posix.dup(tfd);
        if (tdup < 0) throw fail(target, "open", tdup);
        try {
            int pfd = dirFd(parentOf(rel), rel, true);
            if (Posix.fstatat(pfd, name, st, Posix.AT_SYMLINK_NOFOLLOW) == 0 && st.dev() == tdev && st.ino() == tino) return;
            prepare(pfd, name, rel, false);
            int r = Posix.linkat(tdup, tname, pfd, name, 0);
            if (r == -Errno.ENOENT) {
                throw hostile("hard link '" + show(rel) + "' points to '" + show(target) + "', which is not (yet) in the layer");
            }
            if (r < 0) throw fail(rel, "create hard link", r);
        } finally {
            Posix.close(tdup);
        }
        stats.hardlinks++;
    }

    private void device(int pfd, String name, String rel, TarItem it, boolean chr) {
        prepare(pfd, name, rel, false);
        if (chr && it.devMajor() == 0 && it.devMinor() == 0) { // an overlay whiteout stored as such
            whiteout(pfd, name, rel);
            return;
        }
        int r = Posix.mknodat(pfd, name, (chr ? Posix.S_IFCHR : Posix.S_IFBLK) | 0600, makedev(it.devMajor(), it.devMinor()));
        if (r == -Errno.EPERM || r == -Errno.EACCES) {
            stats.skippedDevices++;
            if (stats.firstSkippedDevice == null) stats.firstSkippedDevice = rel;
            return;
        }
        if (r < 0) throw fail(rel, "create device", r);
        applyMeta(-1, pfd, name, rel, it, false);
        stats.devices++;
    }

    private void fifo(int pfd, String name, String rel, TarItem it) {
        prepare(pfd, name, rel, false);
        int r = Posix.mknodat(pfd, name, Posix.S_IFIFO | 0600, 0);
        if (r < 0) throw fail(rel, "create fifo", r);
        applyMeta(-1, pfd, name, rel, it, false);
        stats.fifos++;
    }

    static long makedev(long major, long minor) {
        return ((major & 0xfffff000L) << 32) | ((major & 0xfffL) << 8) | ((minor & 0xffffff00L) << 12) | (minor & 0xffL);
    }

    // ------------------------------------------------------------------ metadata

    /** chown (as root), xattrs, chmod (not symlinks), times: on fd when there is one, else on (pfd, name). */
    private void applyMeta(int fd, int pfd, String name, String rel, TarItem it, boolean symlink) {
        if (privileged) {
            long uid = it.uid(), gid = it.gid();
            if (uid < 0 || uid > 0xfffffffeL || gid < 0 || gid > 0xfffffffeL) {
                throw new ImageException(where + ": '" + show(rel) + "' has an owner out of range (" + uid + ":" + gid + ")");
            }
            int r = fd >= 0 ? Posix.fchown(fd, (int) uid, (int) gid)
                    : Posix.fchownat(pfd, name, (int) uid, (int) gid, Posix.AT_SYMLINK_NOFOLLOW);
            if (r < 0) throw fail(rel, "chown", r);
        } else if (it.uid() != Posix.geteuid() || it.gid() != Posix.getgid()) {
            stats.ownershipNotKept++;
        }
        setXattrs(fd, pfd, name, rel, it.xattrs, false);
        if (!symlink) {
            int r = fd >= 0 ? Posix.fchmod(fd, it.mode()) : Posix.fchmodat(pfd, name, it.mode());
            if (r < 0) throw fail(rel, "chmod", r);
        }
        setTimes(fd, pfd, name, rel, it);
    }

    private void setTimes(int fd, int pfd, String name, String rel, TarItem it) {
        Instant a = it.atime(), m = it.mtime();
        int r = fd >= 0 ? Posix.futimens(fd, a.getEpochSecond(), a.getNano(), m.getEpochSecond(), m.getNano())
                : Posix.utimensat(pfd, name, a.getEpochSecond(), a.getNano(), m.getEpochSecond(), m.getNano(),
                Posix.AT_SYMLINK_NOFOLLOW);
        if (r < 0) throw fail(rel, "set times of", r);
    }

    private void setXattrs(int fd, int pfd, String name, String rel, Map<String, byte[]> xattrs, boolean dir) {
        if (xattrs.isEmpty()) return;
        String path = fd >= 0 ? null : "/proc/self/fd/" + pfd + "/" + name;
        for (Map.Entry<String, byte[]> x : xattrs.entrySet()) {
            String key = x.getKey();
            byte[] v = x.getValue();
            if (Markers.isPrivateXattr(key)) {
                if (dir && (key.equals(Markers.TRUSTED_OPAQUE) || key.equals(Markers.USER_OPAQUE)) && v.length > 0 && v[0] == 'y') {
                    continue; // handled by finishDirs as an opaque marker in the form we can write
                }
                stats.droppedPrivateXattrs++;
                continue;
            }
            if (key.isEmpty() || key.indexOf('\0') >= 0) throw hostile("invalid xattr name on '" + show(rel) + "'");
            int r = fd >= 0 ? fsetxattr(fd, key, v) : Posix.lsetxattr(path, key, v, 0);
            if (r == -Errno.EPERM || r == -Errno.EACCES || r == -Errno.EOPNOTSUPP || r == -Errno.EINVAL) {
                stats.skippedXattrs++;
                if (stats.firstSkippedXattr == null) stats.firstSkippedXattr = key + " on '" + show(rel) + "' (" + Posix.strerror(r) + ")";
                continue;
            }
            if (r < 0) throw fail(rel, "set xattr " + key + " on", r);
        }
    }

    private static int fsetxattr(int fd, String key, byte[] v) {
        Pointer p = Buffers.get(Math.max(1, v.length));
        p.put(0, v, 0, v.length);
        int r = Posix.M.fsetxattr(fd, key, p, v.length, 0);
        return r < 0 ? -Posix.errno() : r;
    }

    /** Directory metadata, deepest first, so that setting contents never disturbs a parent's times or mode. */
    private void finishDirs() {
        List<String> rels = new ArrayList<>(dirMeta.keySet());
        rels.sort((x, y) -> {
            int dx = x.isEmpty() ? -1 : count(x), dy = y.isEmpty() ? -1 : count(y);
            return dx != dy ? Integer.compare(dy, dx) : x.compareTo(y);
        });
        for (String rel : rels) {
            DirMeta m = dirMeta.get(rel);
            int pfd;
            String name;
            if (rel.isEmpty()) {
                pfd = rootFd;
                name = ".";
            } else {
                pfd = dirFd(parentOf(rel), rel, false);
                name = nameOf(rel);
                if (pfd < 0) continue;
            }
            if (Posix.fstatat(pfd, name, st, Posix.AT_SYMLINK_NOFOLLOW) < 0 || !st.isDir()) continue;
            if (m.implied) {
                int r = Posix.fchmodat(pfd, name, 0755);
                if (r < 0) throw fail(rel, "chmod", r);
                continue;
            }
            TarItem it = m.item;
            Map<String, byte[]> x = it.xattrs;
            if (isY(x.get(Markers.TRUSTED_OPAQUE)) || isY(x.get(Markers.USER_OPAQUE))) {
                int dfd = Posix.openat(pfd, name, DIR_FLAGS, 0);
                if (dfd < 0) throw fail(rel, "open directory", dfd);
                try {
                    markOpaque(dfd, rel);
                } finally {
                    Posix.close(dfd);
                }
            }
            applyMeta(-1, pfd, name, rel, it, false);
        }
    }

    private static boolean isY(byte[] v) { return v != null && v.length > 0 && v[0] == 'y'; }

    private static int count(String s) {
        int n = 0;
        for (int i = 0; i < s.length(); i++) if (s.charAt(i) == '/') n++;
        return n;
    }

    // ------------------------------------------------------------------ directory descriptors

    /**
     * An O_PATH descriptor of directory {@code dir} inside the layer, opened component by component with
     * O_NOFOLLOW (cached; owned by the cache, do not close). Missing directories are created when
     * {@code create} (mode 0755 at the end, like tar's implied parents); otherwise a negative errno is
     * returned for a missing one. A symlink on the way is refused as hostile in both cases.
     */
    private int dirFd(String dir, String forRel, boolean create) {
        if (dir.isEmpty()) return rootFd;
        Integer c = dirFds.get(dir);
        if (c != null) return c;
        int cur = rootFd;
        String done = "";
        for (String p = dir; ; ) {
            int i = p.lastIndexOf('/');
            if (i < 0) break;
            p = p.substring(0, i);
            Integer f = dirFds.get(p);
            if (f != null) { cur = f; done = p; break; }
        }
        int i = done.isEmpty() ? 0 : done.length() + 1;
        while (i <= dir.length()) {
            int j = dir.indexOf('/', i);
            if (j < 0) j = dir.length();
            String comp = dir.substring(i, j), prefix = dir.substring(0, j);
            int fd = Posix.openat(cur, comp, DIR_FLAGS, 0);
            if (fd == -Errno.ENOENT && create) {
                int r = Posix.mkdirat(cur, comp, 0700);
                if (r < 0 && r != -Errno.EEXIST) throw fail(prefix, "create directory", r);
                if (r == 0) {
                    dirMeta.putIfAbsent(prefix, new DirMeta(true, null));
                    stats.dirs++;
                    if (whFilesWritten) Posix.unlinkat(cur, Markers.WH_PREFIX + comp, 0);
                }
                fd = Posix.openat(cur, comp, DIR_FLAGS, 0);
            }
            if (fd == -Errno.ENOTDIR || fd == -Errno.ELOOP) {
                if (Posix.fstatat(cur, comp, st, Posix.AT_SYMLINK_NOFOLLOW) == 0 && Posix.isLnk(st.mode())) {
                    throw hostile("'" + show(forRel) + "' goes through the symbolic link '" + show(prefix) + "'");
                }
                if (!create) return fd;
                throw new ImageException(where + ": cannot create '" + show(forRel) + "': '" + show(prefix) + "' is not a directory");
            }
            if (fd < 0) {
                if (!create) return fd;
                throw fail(prefix, "open directory", fd);
            }
            dirFds.put(prefix, fd);
            cur = fd;
            i = j + 1;
        }
        return cur;
    }

    /** Forgets (and closes) the cached descriptors of {@code rel} and everything under it. */
    private void dropFdCache(String rel) {
        for (Iterator<Map.Entry<String, Integer>> it = dirFds.entrySet().iterator(); it.hasNext(); ) {
            Map.Entry<String, Integer> e = it.next();
            if (e.getKey().equals(rel) || e.getKey().startsWith(rel + "/")) {
                Posix.close(e.getValue());
                it.remove();
            }
        }
    }

    private void clearFdCache() {
        for (Iterator<Integer> it = dirFds.values().iterator(); it.hasNext(); ) {
            Posix.close(it.next());
            it.remove();
        }
    }

    @Override public void close() { clearFdCache(); }

}
