package dev.strata.layer;

import dev.strata.posix.Errno;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;

import java.nio.file.Path;

/**
 * One directory of the stack: the upper (writable) or a lower (read-only). Holds an O_PATH descriptor
 * of its root; every access is relative to it, so no absolute "<layer>/<path>" string is ever built.
 * Paths inside a layer ("rel") are "" for the root, else "a/b/c" without a leading slash.
 */
public final class Layer implements AutoCloseable {
    /** Longest relative path handed to one *at call; longer ones are walked in pieces (PATH_MAX is 4096). */
    static final int PIECE = 3000;

    private final int index;
    private final Path root;
    private final int fd;
    private final boolean upper;
    private final long dev;
    /** The tar a lazy layer's regular files are read from, or null (see {@link LazyTar}). */
    private LazyTar lazy;

    private Layer(int index, Path root, int fd, boolean upper, long dev) {
        this.index = index; this.root = root; this.fd = fd; this.upper = upper; this.dev = dev;
    }

    /**
     * Opens a layer root (through a detached copy of its mount where one can be made: {@link Detached});
     * returns null and sets err[0] to -errno if it cannot be opened as a directory.
     */
    public static Layer open(Path root, int index, boolean upper, int[] err) {
        int fd = Detached.open(root);
        if (fd < 0) { err[0] = fd; return null; }
        return adopt(fd, root, index, upper);
    }

    /** A layer whose root the caller opened (an O_PATH descriptor of a directory; closed with the layer). */
    public static Layer adopt(int fd, Path root, int index, boolean upper) {
        Stat st = new Stat();
        Posix.fstat(fd, st);
        Posix.namespaceChanged(); // a descriptor number may be reused: no directory cached by path survives
        return new Layer(index, root, fd, upper, st.dev());
    }

    public int index() { return index; }
    public Path root() { return root; }
    public int fd() { return fd; }
    public boolean isUpper() { return upper; }
    public long dev() { return dev; }
    /** The lazy data of this layer (a lazy store layer, see {@link LazyTar#forLayerRoot}), or null. */
    public LazyTar lazy() { return lazy; }

    /** A lower layer: reads of its files come from the tar when it is a lazy store layer. */
    public Layer attachLazy() {
        if (!upper) lazy = LazyTar.forLayerRoot(root);
        return this;
    }

    @Override public String toString() { return (upper ? "upper " : "lower ") + root; }

    @Override public void close() {
        Posix.namespaceChanged();
        Posix.close(fd);
        if (lazy != null) lazy.close();
    }

    public static String child(String parentRel, String name) {
        return parentRel.isEmpty() ? name : parentRel + "/" + name;
    }
    public static String parentOf(String rel) {
        int i = rel.lastIndexOf('/');
        return i < 0 ? "" : rel.substring(0, i);
    }
    public static String nameOf(String rel) {
        int i = rel.lastIndexOf('/');
        return i < 0 ? rel : rel.substring(i + 1);
    }

    /**
     * Resolves rel to (dirfd, one name); close the result. A name in the root is used as it is; a
     * deeper one gets its parent opened without following any symlink on the way (see {@link At}).
     */
    public At at(String rel) {
        if (rel.indexOf('/') < 0) return new At(fd, rel.isEmpty() ? "." : rel, false);
        return At.beneath(fd, rel);
    }

    // ---- convenience wrappers; each returns >= 0 or -errno; none follows a symlink ----
    public int lstat(String rel, Stat st) {
        if (rel.indexOf('/') < 0) return Posix.fstatat(fd, rel.isEmpty() ? "." : rel, st, Posix.AT_SYMLINK_NOFOLLOW);
        try (At a = at(rel)) {
            return a.ok() ? Posix.fstatat(a.dirfd(), a.name(), st, Posix.AT_SYMLINK_NOFOLLOW) : a.err();
        }
    }
    /** openat of rel; O_NOFOLLOW is always added (the daemon never opens through a symlink). */
    public int openat(String rel, int flags, int mode) {
        try (At a = at(rel)) {
            return a.ok() ? Posix.openat(a.dirfd(), a.name(), flags | Posix.O_NOFOLLOW, mode) : a.err();
        }
    }
    /**
     * Opens rel with O_NOATIME when {@code noatime} (reads through it never change the file's atime),
     * and without it where the kernel refuses it (EPERM: a caller who neither owns the file nor has
     * CAP_FOWNER), as the kernel overlay opens its real files.
     */
    public int openat(String rel, int flags, boolean noatime) {
        if (!noatime) return openat(rel, flags, 0);
        int fd = openat(rel, flags | Posix.O_NOATIME, 0);
        return fd == -Errno.EPERM ? openat(rel, flags, 0) : fd;
    }

    /**
     * Opens rel (non-empty) below rootFd, a root other than this layer's own (a copy of a layer's mount),
     * following no symlink in any component.
     */
    public static int openBeneath(int rootFd, String rel, int flags) {
        try (At a = rel.indexOf('/') < 0 ? At.of(rootFd, rel) : At.beneath(rootFd, rel)) {
            return a.ok() ? Posix.openat(a.dirfd(), a.name(), flags | Posix.O_NOFOLLOW, 0) : a.err();
        }
    }
    /** Opens a directory of this layer (O_PATH unless flags say otherwise). */
    public int openDir(String rel, int flags) {
        return openat(rel, flags | Posix.O_DIRECTORY, 0);
    }
    public byte[] getxattr(String rel, String name) {
        try (At a = at(rel)) {
            return a.ok() ? Posix.getxattrAt(a.dirfd(), a.name(), name) : null;
        }
    }
    public boolean exists(String rel) {
        return lstat(rel, Stat.local2()) == 0;
    }
}
