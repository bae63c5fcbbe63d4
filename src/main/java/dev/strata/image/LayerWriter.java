package dev.strata.image;

import dev.strata.posix.NativeMemory;
import dev.strata.layer.Markers;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;
import jnr.ffi.Pointer;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Writes a layer directory (an overlay upper, or a layer of the store) as an OCI layer tar.
 * <ul>
 * <li>Whiteouts in every form a layer may hold (a 0/0 character device, a {@code .wh.NAME} file, an
 *     empty file with {@code trusted.}/{@code user.overlay.whiteout}) become an empty {@code .wh.NAME}.</li>
 * <li>Opaque directories ({@code trusted.}/{@code user.overlay.opaque=y}, or a {@code .wh..wh..opq}
 *     inside) get a {@code .wh..wh..opq} member right after the directory.</li>
 * <li>Owners, modes, mtimes (nanoseconds in PAX when not whole), xattrs (PAX {@code SCHILY.xattr.},
 *     raw bytes) are kept; overlay-private xattrs ({@code trusted.overlay.*}, {@code user.overlay.*},
 *     {@code user.strata.*}...) are not exported. An owner and mode recorded in an override xattr
 *     ({@code user.containers.override_stat}, {@code security.fuseoverlayfs.override_stat}, written
 *     with {@code xattr_permissions}) replace the inode's, and the xattr is not exported.</li>
 * <li>Hard links inside the directory become tar hard links to the first name (in member order).</li>
 * <li>Members come in byte order of their names, directories before their content, so the same tree
 *     always gives the same bytes (and the same diff_id). atime and ctime are not written.</li>
 * <li>A redirected directory or a metacopy file ({@code overlay.redirect}/{@code overlay.metacopy})
 *     cannot be said in a layer tar: refused. Sockets cannot be archived: skipped, counted.</li>
 * </ul>
 */
public final class LayerWriter {
    private static final String[] OVERRIDE_XATTRS = {"security.fuseoverlayfs.override_stat", "user.containers.override_stat",
            "user.fuseoverlayfs.override_stat"};

    /** What was written. */
    public static final class Stats {
        public long files, dirs, symlinks, hardlinks, devices, fifos, whiteouts, opaques, skippedSockets, contentBytes;
        public String firstSkippedSocket;
    }

    private final String root;
    private final TarWriter tar;
    private final Stats stats = new Stats();
    private final Map<String, String> firstNameOfInode = new HashMap<>();
    private final Pointer dirBuf = NativeMemory.allocate(65536);
    private final Pointer dataBuf = NativeMemory.allocate(1 << 17);

    private LayerWriter(String root, OutputStream out) {
        this.root = root;
        this.tar = new TarWriter(out);
    }

    /**
     * Writes the layer directory {@code dir} (a byte string, see {@link dev.strata.posix.Names}) to out
     * as an uncompressed tar, ending with the end-of-archive blocks. out is not closed.
     */
    static Stats write(String dir, OutputStream out) throws IOException { return write(dir, out, false); }

    /**
     * As {@link #write(String, OutputStream)}; with {@code withRoot} the directory's own owner, mode,
     * mtime and xattrs go first as the member {@code ./} (as {@code tar -C dir -c .} writes it), which
     * an extraction applies to the layer's root: commit's way to keep the upper root, which the kernel
     * overlay shows as the merged root.
     */
    static Stats write(String dir, OutputStream out, boolean withRoot) throws IOException {
        LayerWriter w = new LayerWriter(dir.endsWith("/") && dir.length() > 1 ? dir.substring(0, dir.length() - 1) : dir, out);
        Stat st = new Stat();
        int r = Posix.fstatat(Posix.AT_FDCWD, w.root, st, 0);
        if (r < 0) throw new ImageException("cannot read " + w.root + ": " + Posix.strerror(r));
        if (!st.isDir()) throw new ImageException(w.root + " is not a directory");
        if (withRoot) w.member("", st);
        w.walk("");
        w.tar.finish();
        return w.stats;
    }

    private String abs(String rel) { return rel.isEmpty() ? root : root + "/" + rel; }

    private static String child(String dirRel, String name) { return dirRel.isEmpty() ? name : dirRel + "/" + name; }

    private void walk(String dirRel) throws IOException {
        int fd = Posix.openat(Posix.AT_FDCWD, abs(dirRel), Posix.O_RDONLY | Posix.O_DIRECTORY | Posix.O_NOFOLLOW | Posix.O_CLOEXEC, 0);
        if (fd < 0) throw new ImageException("cannot read the directory " + abs(dirRel) + ": " + Posix.strerror(fd));
        List<String> names = new ArrayList<>();
        try {
            for (String[] n : Trees.list(fd, dirBuf)) names.add(n[0]);
        } finally {
            Posix.close(fd);
        }
        names.sort(null); // ISO-8859-1 strings: char order is byte order
        // members by the name they get in the tar: an entry and its .wh. form never both appear
        TreeMap<String, Runnable> members = new TreeMap<>();
        List<String> subdirs = new ArrayList<>();
        Stat st = new Stat();
        for (String name : names) {
            String rel = child(dirRel, name);
            if (name.equals(Markers.OPAQUE_FILE)) continue; // said by the directory's own member
            if (name.startsWith(Markers.WH_PREFIX)) {
                if (name.startsWith(Markers.WH_PREFIX + Markers.WH_PREFIX)) continue; // AUFS bookkeeping (.wh..wh.plnk...)
                if (name.length() == Markers.WH_PREFIX.length()) continue;
                stats.whiteouts++;
                members.put(name, null);
                continue;
            }
            int r = Posix.fstatat(Posix.AT_FDCWD, abs(rel), st, Posix.AT_SYMLINK_NOFOLLOW);
            if (r < 0) throw new ImageException("cannot read " + abs(rel) + ": " + Posix.strerror(r));
            if (isWhiteout(rel, st)) {
                stats.whiteouts++;
                members.put(Markers.WH_PREFIX + name, null);
                continue;
            }
            checkRepresentable(rel);
            members.put(name, null);
            if (st.isDir()) subdirs.add(name);
        }
        for (String m : members.keySet()) {
            String rel = child(dirRel, m);
            if (m.startsWith(Markers.WH_PREFIX)) {
                whiteoutMember(dirRel, rel);
                continue;
            }
            Posix.fstatat(Posix.AT_FDCWD, abs(rel), st, Posix.AT_SYMLINK_NOFOLLOW);
            member(rel, st);
            if (st.isDir()) {
                if (isOpaque(rel)) {
                    stats.opaques++;
                    whiteoutMember(rel, child(rel, Markers.OPAQUE_FILE));
                }
                walk(rel);
            }
        }
    }

    private boolean isWhiteout(String rel, Stat st) {
        if (st.isWhiteoutDevice()) return true;
        if (st.type() == Posix.S_IFREG && st.size() == 0) {
            String p = abs(rel);
            return Posix.lgetxattr(p, Markers.TRUSTED_WHITEOUT) != null || Posix.lgetxattr(p, Markers.USER_WHITEOUT) != null;
        }
        return false;
    }

    private boolean isOpaque(String rel) {
        String p = abs(rel);
        return isY(Posix.lgetxattr(p, Markers.TRUSTED_OPAQUE)) || isY(Posix.lgetxattr(p, Markers.USER_OPAQUE))
                || Posix.fstatat(Posix.AT_FDCWD, p + "/" + Markers.OPAQUE_FILE, new Stat(), Posix.AT_SYMLINK_NOFOLLOW) == 0;
    }

    private static boolean isY(byte[] v) { return v != null && v.length >= 1 && v[0] == 'y'; }

    private void checkRepresentable(String rel) {
        String p = abs(rel);
        for (String x : new String[]{"trusted.overlay.redirect", "user.overlay.redirect"}) {
            if (Posix.lgetxattr(p, x) != null) {
                throw new ImageException(p + " is a renamed lower directory (" + x + ", redirect_dir=on): a layer tar"
                        + " cannot say that; commit an upper written with redirect_dir=off");
            }
        }
        for (String x : new String[]{"trusted.overlay.metacopy", "user.overlay.metacopy"}) {
            if (Posix.lgetxattr(p, x) != null) {
                throw new ImageException(p + " holds only metadata (" + x + ", metacopy=on), its data is in a lower"
                        + " layer: commit an upper written with metacopy=off");
            }
        }
    }

    private void whiteoutMember(String dirRel, String tarRel) throws IOException {
        TarWriter.Header h = new TarWriter.Header();
        h.name = tarRel;
        h.type = TarWriter.REG;
        h.mode = 0644;
        // the parent's mtime: a whiteout has no time of its own worth keeping, and this stays stable
        Stat st = new Stat();
        if (Posix.fstatat(Posix.AT_FDCWD, abs(dirRel), st, Posix.AT_SYMLINK_NOFOLLOW) == 0) h.mtimeSec = st.mtime();
        tar.header(h);
    }

    private void member(String rel, Stat st) throws IOException {
        String p = abs(rel);
        TarWriter.Header h = new TarWriter.Header();
        h.name = rel.isEmpty() ? "." : rel;
        h.mode = st.perm();
        h.uid = st.uid() & 0xffffffffL;
        h.gid = st.gid() & 0xffffffffL;
        h.mtimeSec = st.mtime();
        h.mtimeNsec = st.mtimeNs();
        for (String x : Posix.llistxattr(p)) {
            if (Markers.isPrivateXattr(x) || isOverride(x)) continue;
            byte[] v = Posix.lgetxattr(p, x);
            if (v != null) h.xattrs.put(x, v);
        }
        applyOverride(p, h);
        int type = st.type();
        if (type != Posix.S_IFDIR && st.nlink() > 1) {
            String key = st.dev() + ":" + st.ino();
            String first = firstNameOfInode.putIfAbsent(key, rel);
            if (first != null) {
                h.type = TarWriter.LINK;
                h.linkName = first;
                h.xattrs.clear();
                stats.hardlinks++;
                tar.header(h);
                return;
            }
        }
        switch (type) {
            case Posix.S_IFDIR:
                h.type = TarWriter.DIR;
                if (!rel.isEmpty()) stats.dirs++;
                tar.header(h);
                break;
            case Posix.S_IFREG:
                h.type = TarWriter.REG;
                h.size = st.size();
                stats.files++;
                stats.contentBytes += st.size();
                writeFile(p, h);
                break;
            case Posix.S_IFLNK: {
                int[] err = {0};
                String target = Posix.readlinkat(Posix.AT_FDCWD, p, err);
                if (target == null) throw new ImageException("cannot read the link " + p + ": " + Posix.strerror(err[0]));
                h.type = TarWriter.SYMLINK;
                h.linkName = target;
                stats.symlinks++;
                tar.header(h);
                break;
            }
            case Posix.S_IFCHR:
            case Posix.S_IFBLK:
                h.type = type == Posix.S_IFCHR ? TarWriter.CHR : TarWriter.BLK;
                h.devMajor = major(st.rdev());
                h.devMinor = minor(st.rdev());
                stats.devices++;
                tar.header(h);
                break;
            case Posix.S_IFIFO:
                h.type = TarWriter.FIFO;
                stats.fifos++;
                tar.header(h);
                break;
            default: // sockets: a tar cannot hold them (GNU tar skips them too)
                stats.skippedSockets++;
                if (stats.firstSkippedSocket == null) stats.firstSkippedSocket = rel;
                firstNameOfInode.remove(st.dev() + ":" + st.ino());
        }
    }

    private static boolean isOverride(String x) {
        for (String o : OVERRIDE_XATTRS) if (o.equals(x)) return true;
        return false;
    }

    /** "uid:gid:mode[:...]" (mode octal) from an override xattr, as fuse-overlayfs and containers-storage write it. */
    private static void applyOverride(String p, TarWriter.Header h) {
        for (String o : OVERRIDE_XATTRS) {
            byte[] v = Posix.lgetxattr(p, o);
            if (v == null) continue;
            String[] f = new String(v, StandardCharsets.ISO_8859_1).trim().split(":");
            try {
                if (f.length >= 3) {
                    h.uid = Long.parseLong(f[0]);
                    h.gid = Long.parseLong(f[1]);
                    h.mode = Integer.parseInt(f[2], 8) & 07777;
                }
            } catch (NumberFormatException ignored) {
                // not ours to judge: the inode's own values stay
            }
            return;
        }
    }

    static long major(long rdev) { return ((rdev >>> 8) & 0xfff) | ((rdev >>> 32) & ~0xfffL); }

    static long minor(long rdev) { return (rdev & 0xff) | ((rdev >>> 12) & ~0xffL); }

    private void writeFile(String p, TarWriter.Header h) throws IOException {
        int fd = Posix.openat(Posix.AT_FDCWD, p, Posix.O_RDONLY | Posix.O_NOFOLLOW | Posix.O_CLOEXEC, 0);
        if (fd < 0) throw new ImageException("cannot read " + p + ": " + Posix.strerror(fd));
        try {
            tar.header(h);
            final long[] off = {0};
            tar.data(new InputStream() {
                @Override public int read() { throw new UnsupportedOperationException(); }
                @Override public int read(byte[] b, int o, int len) throws IOException {
                    long n = Posix.pread(fd, dataBuf, Math.min(len, dataBuf.size()), off[0]);
                    if (n < 0) throw new IOException("cannot read " + p + ": " + Posix.strerror((int) n));
                    if (n == 0) return -1;
                    dataBuf.get(0, b, o, (int) n);
                    off[0] += n;
                    return (int) n;
                }
            }, h.size);
        } catch (IOException e) {
            if (e.getMessage() != null && e.getMessage().startsWith("file shrank")) {
                throw new ImageException(p + " changed while it was being committed: " + e.getMessage());
            }
            throw e;
        } finally {
            Posix.close(fd);
        }
    }
}
