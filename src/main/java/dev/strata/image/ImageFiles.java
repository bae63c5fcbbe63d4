package dev.strata.image;

import dev.strata.posix.NativeMemory;
import dev.strata.inspect.Explainer;
import dev.strata.inspect.Explanation;
import dev.strata.inspect.Stack;
import dev.strata.inspect.StackSpec;
import dev.strata.options.MountOptions;
import dev.strata.posix.Errno;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;
import dev.strata.union.Union;
import jnr.ffi.Pointer;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Files of an image without a mount ({@code strata image cat} and {@code cp}): the image's layers are
 * opened read-only with the engine ({@link Union}), so a path resolves exactly as a mount would show
 * it. Symbolic links on the way are followed inside the image (an absolute target, or {@code ..}
 * past the root, stays at the image's root, as in a chroot). When a path is not there, the
 * {@code explain} machinery ({@link Explainer}) says which layer hides it. Paths are byte strings.
 */
public final class ImageFiles implements AutoCloseable {
    private static final int MAX_LINKS = 40;

    private final ImageRecord rec;
    private final List<Path> lowers;
    private final Union union;
    private final Pointer buf = NativeMemory.allocate(1 << 17);
    private final Pointer xbuf = NativeMemory.allocate(65536);

    private ImageFiles(ImageRecord rec, List<Path> lowers, Union union) {
        this.rec = rec;
        this.lowers = lowers;
        this.union = union;
    }

    public static ImageFiles open(ImageStore store, String ref) {
        ImageRecord rec = store.find(ref);
        List<Path> lowers = store.lowerDirsTopFirst(rec);
        MountOptions.Builder b = new MountOptions.Builder();
        b.lowerDirs = lowers;
        Union u;
        try {
            u = Union.open(b.build(), null);
        } catch (IllegalStateException e) {
            throw new ImageException("image " + ImageStore.displayName(rec) + ": " + e.getMessage());
        }
        return new ImageFiles(rec, lowers, u);
    }

    @Override public void close() { union.close(); }

    /** A path of the image resolved: the union path ("/a/b") and its lstat. */
    public static final class Resolved {
        public final String path;
        public final Stat st;
        Resolved(String path, Stat st) { this.path = path; this.st = st; }
    }

    /**
     * Resolves a path of the image. Links in the parents are always followed; the last component's link
     * too when {@code followLast}. A missing path is an ImageException saying which layer hides it.
     */
    public Resolved resolve(String path, boolean followLast) {
        // not Explainer.components: '..' must apply after the links before it are followed, as in the kernel
        List<String> todo = new ArrayList<>();
        for (String c : path.split("/")) if (!c.isEmpty()) todo.add(c);
        List<String> done = new ArrayList<>();
        int links = 0;
        Stat st = new Stat();
        if (union.getattr("/", st.pointer()) < 0) throw new ImageException("cannot read the image's root");
        while (!todo.isEmpty()) {
            String c = todo.remove(0);
            if (c.equals(".")) continue;
            if (c.equals("..")) { if (!done.isEmpty()) done.remove(done.size() - 1); continue; }
            done.add(c);
            String p = "/" + String.join("/", done);
            int r = union.getattr(p, st.pointer());
            if (r < 0) throw missing(todo.isEmpty() ? p : p + "/" + String.join("/", todo), r);
            boolean last = todo.isEmpty();
            if (st.type() == Posix.S_IFLNK && (!last || followLast)) {
                if (++links > MAX_LINKS) throw new ImageException(show(path) + ": too many levels of symbolic links");
                int[] err = {0};
                String target = union.readlink(p, err);
                if (target == null) throw new ImageException(show(p) + ": " + Posix.strerror(err[0]));
                done.remove(done.size() - 1);
                if (target.startsWith("/")) done.clear();
                List<String> t = new ArrayList<>();
                for (String x : target.split("/")) if (!x.isEmpty()) t.add(x);
                todo.addAll(0, t);
                continue;
            }
            if (!last && st.type() != Posix.S_IFDIR) {
                throw new ImageException(show(p) + " is not a directory in image " + ImageStore.displayName(rec)
                        + ", so " + show(path) + " does not exist");
            }
        }
        String p = done.isEmpty() ? "/" : "/" + String.join("/", done);
        if (union.getattr(p, st.pointer()) < 0) throw new ImageException(show(p) + ": cannot read it");
        return new Resolved(p, st);
    }

    /** Why a path is not in the merged image, in explain's words, with the layers named as the image's. */
    private ImageException missing(String p, int errno) {
        if (errno != -Errno.ENOENT) return new ImageException(show(p) + ": " + Posix.strerror(errno));
        String why;
        try (Stack stack = Stack.open(StackSpec.ofLayers(lowers, null))) {
            Explanation e = new Explainer(stack).explain(p);
            why = e.verdictText;
            if (e.verdict == Explanation.Verdict.ABSENT) {
                why = show(p) + ": no such file or directory in any layer";
                for (Explanation.Say s : e.says) {
                    if (s.role() == Explanation.Role.HIDDEN) {
                        why = show(p) + " is hidden: " + s.roleText().replaceFirst("^hidden( \\(a parent\\))?: ", "")
                                + " (" + s.layer().label() + " holds it)";
                        break;
                    }
                }
            }
            why = why + layerLegend(why);
        } catch (RuntimeException e) {
            why = show(p) + ": no such file in the image";
        }
        return new ImageException("image " + ImageStore.displayName(rec) + ": " + why);
    }

    /** "lowerN" in explain's text is the N-th layer from the top: say which image layer that is. */
    private String layerLegend(String text) {
        StringBuilder b = new StringBuilder();
        int n = lowers.size();
        for (int i = 1; i <= n; i++) {
            if (!text.matches("(?s).*\\blower" + i + "\\b.*")) continue;
            String hex = lowers.get(i - 1).getFileName().toString();
            int index = -1;
            for (int k = rec.layers.size() - 1; k >= 0; k--) {
                if (rec.layers.get(k).diffId.endsWith(hex)) { index = k + 1; break; }
            }
            b.append(b.length() == 0 ? " [" : "; ").append("lower").append(i).append(" = layer ").append(index)
                    .append(" of ").append(rec.layers.size()).append(" (bottom first), sha256:").append(hex, 0, 12);
        }
        return b.length() == 0 ? "" : b.append("]").toString();
    }

    private static String show(String p) { return dev.strata.posix.Names.display(p); }

    /** Writes a regular file's content (following links inside the image) to out. */
    public void cat(String path, OutputStream out) throws IOException {
        Resolved r = resolve(path, true);
        if (r.st.isDir()) throw new ImageException(show(r.path) + " is a directory");
        if (r.st.type() != Posix.S_IFREG) throw new ImageException(show(r.path) + " is not a regular file");
        copyData(r.path, out);
    }

    private void copyData(String p, OutputStream out) throws IOException {
        int fd = union.open(p, Posix.O_RDONLY);
        if (fd < 0) throw new ImageException(show(p) + ": " + Posix.strerror(fd));
        try {
            byte[] b = new byte[(int) buf.size()];
            long off = 0;
            while (true) {
                long n = union.read(fd, buf, buf.size(), off);
                if (n < 0) throw new ImageException(show(p) + ": " + Posix.strerror((int) n));
                if (n == 0) break;
                buf.get(0, b, 0, (int) n);
                out.write(b, 0, (int) n);
                off += n;
            }
        } finally {
            union.release(fd);
        }
    }

    /** What cp did. */
    public static final class CopyStats {
        public long files, dirs, symlinks, hardlinks, others, bytes, skipped, skippedXattrs;
        public String firstSkipped;
    }

    /**
     * Copies a path of the image (a file, a symlink as it is, or a directory tree) to dest, a byte string
     * that must not exist (its parent must). Modes, times and xattrs (those the kernel lets us set) are
     * kept; owners too when running as root.
     */
    public CopyStats cp(String path, String dest) throws IOException { return cp(path, dest, false); }

    /**
     * As {@link #cp(String, String)}; with {@code followLink} a link named by the path is followed (as
     * {@code docker cp -L}), else copied as a link unless the path ends with '/' (a link to a directory
     * then resolves to the directory, as POSIX path resolution does).
     */
    public CopyStats cp(String path, String dest, boolean followLink) throws IOException {
        Resolved r = resolve(path, followLink || path.endsWith("/") || path.endsWith("/."));
        Stat st = new Stat();
        if (Posix.fstatat(Posix.AT_FDCWD, dest, st, Posix.AT_SYMLINK_NOFOLLOW) == 0) {
            throw new ImageException(show(dest) + " exists: give a new name (or remove it)");
        }
        CopyStats cs = new CopyStats();
        boolean ok = false;
        try {
            copy(r.path, dest, cs, new HashMap<>());
            ok = true;
        } finally {
            if (!ok) Trees.removeAt(Posix.AT_FDCWD, dest); // no half copy left behind
        }
        return cs;
    }

    private void copy(String p, String dest, CopyStats cs, Map<Long, String> linked) throws IOException {
        Stat st = new Stat();
        int r = union.getattr(p, st.pointer());
        if (r < 0) throw new ImageException(show(p) + ": " + Posix.strerror(r));
        int type = st.type();
        if (type != Posix.S_IFDIR && st.nlink() > 1) {
            String first = linked.get(st.ino());
            if (first != null) {
                int lr = Posix.linkat(Posix.AT_FDCWD, first, Posix.AT_FDCWD, dest, 0);
                if (lr < 0) throw new ImageException("cannot link " + show(dest) + ": " + Posix.strerror(lr));
                cs.hardlinks++;
                return;
            }
            linked.put(st.ino(), dest);
        }
        switch (type) {
            case Posix.S_IFDIR: {
                check(Posix.mkdirat(Posix.AT_FDCWD, dest, 0700), "create", dest);
                cs.dirs++;
                int[] err = {0};
                List<String> names = union.list(p, err);
                if (err[0] < 0) throw new ImageException(show(p) + ": " + Posix.strerror(err[0]));
                names.sort(null);
                for (String n : names) copy(p.equals("/") ? "/" + n : p + "/" + n, dest + "/" + n, cs, linked);
                break;
            }
            case Posix.S_IFREG: {
                int fd = Posix.openat(Posix.AT_FDCWD, dest, Posix.O_WRONLY | Posix.O_CREAT | Posix.O_EXCL | Posix.O_NOFOLLOW, 0600);
                check(fd, "create", dest);
                try (OutputStream out = new FdOut(fd, dest)) {
                    copyData(p, out);
                }
                cs.files++;
                cs.bytes += st.size();
                break;
            }
            case Posix.S_IFLNK: {
                int[] err = {0};
                String target = union.readlink(p, err);
                if (target == null) throw new ImageException(show(p) + ": " + Posix.strerror(err[0]));
                check(Posix.symlinkat(target, Posix.AT_FDCWD, dest), "create", dest);
                cs.symlinks++;
                break;
            }
            default: {
                int mr = Posix.mknodat(Posix.AT_FDCWD, dest, type | 0600, st.rdev());
                if (mr < 0) {
                    cs.skipped++;
                    if (cs.firstSkipped == null) cs.firstSkipped = p + " (" + Posix.strerror(mr) + ")";
                    return;
                }
                cs.others++;
            }
        }
        // owner first (it clears setuid bits and capabilities), then xattrs, mode, times
        if (Posix.geteuid() == 0) Posix.fchownat(Posix.AT_FDCWD, dest, st.uid(), st.gid(), Posix.AT_SYMLINK_NOFOLLOW);
        copyXattrs(p, dest, cs);
        if (type != Posix.S_IFLNK) check(Posix.fchmodat(Posix.AT_FDCWD, dest, st.perm()), "set the mode of", dest);
        Posix.utimensat(Posix.AT_FDCWD, dest, st.atime(), st.atimeNs(), st.mtime(), st.mtimeNs(), Posix.AT_SYMLINK_NOFOLLOW);
    }

    /** The xattrs the image shows on p (as a mount lists them), set on dest where the kernel lets us. */
    private void copyXattrs(String p, String dest, CopyStats cs) {
        long n = union.listxattr(p, buf, buf.size());
        if (n <= 0) return;
        byte[] names = new byte[(int) n];
        buf.get(0, names, 0, names.length);
        int start = 0;
        for (int i = 0; i < names.length; i++) {
            if (names[i] != 0) continue;
            String name = new String(names, start, i - start, java.nio.charset.StandardCharsets.ISO_8859_1);
            start = i + 1;
            if (name.isEmpty() || name.startsWith("system.posix_acl") && Posix.geteuid() != 0) continue;
            Pointer v = xbuf;
            int len = union.getxattr(p, name, v, 65536);
            if (len < 0) continue;
            if (Posix.lsetxattr(dest, name, v, len, 0) < 0) cs.skippedXattrs++;
        }
    }

    private static void check(int r, String what, String p) {
        if (r < 0) throw new ImageException("cannot " + what + " " + show(p) + ": " + Posix.strerror(r));
    }

    /** Writes to a descriptor (closing it), with a clear message on a full disk. */
    private static final class FdOut extends OutputStream {
        private final int fd;
        private final String path;
        private final Pointer p = NativeMemory.allocate(1 << 17);

        FdOut(int fd, String path) { this.fd = fd; this.path = path; }

        @Override public void write(int b) throws IOException { write(new byte[]{(byte) b}, 0, 1); }

        @Override public void write(byte[] b, int off, int len) throws IOException {
            while (len > 0) {
                int n = (int) Math.min(len, p.size());
                p.put(0, b, off, n);
                long w = Posix.write(fd, p, n);
                if (w < 0) throw new ImageException("cannot write " + show(path) + ": " + Posix.strerror((int) w));
                off += (int) w;
                len -= (int) w;
            }
        }

        @Override public void close() { Posix.close(fd); }
    }
}
