package dev.strata.union;

import dev.strata.layer.At;
import dev.strata.posix.Buffers;
import dev.strata.posix.Posix;
import jnr.ffi.Pointer;

import java.util.concurrent.atomic.AtomicInteger;

import static dev.strata.posix.Errno.*;
import static dev.strata.posix.Posix.*;

/**
 * The append-only and immutable flags (chattr +a / +i) and what they refuse. The kernel overlay keeps
 * them in {@code overlay.protattr} on the upper file ("a", "i" or "ai"; ovl_set_protattr) rather than
 * on the upper inode, and puts them on its own inode (S_APPEND, S_IMMUTABLE), with those of the real
 * file it shows (ovl_copyflags): the VFS then refuses with EPERM what they forbid (fs/namei.c
 * may_open, may_delete, may_create, vfs_link; fs/attr.c notify_change; fs/xattr.c xattr_permission;
 * fs/open.c vfs_truncate, do_ftruncate, vfs_fallocate). A FUSE inode never carries them, so the
 * kernel never checks them on a FUSE mount: the engine does, each operation calling its check here
 * with the nodes it resolved, under its own lock, before it copies anything up.
 *
 * <p>A node's flags are read once (the protattr xattr of an upper object, the flags of a lower file or
 * directory) and kept on the node; a flag change anywhere makes every node read them again (hard
 * links share them).
 */
final class Protect {
    static final int APPEND = 1, IMMUTABLE = 2;
    static final String TRUSTED = "trusted.overlay.protattr", USER = "user.overlay.protattr";
    /** setattr kinds: mode/owner/explicit times (both flags refuse), times set to now (immutable), size (both). */
    static final int META = 0, TOUCH = 1, SIZE = 2;

    private final Overlay ovl;
    /** Where strata writes protattr: the namespace of the mount's other xattrs. */
    final String xattr;
    private final AtomicInteger generation = new AtomicInteger();
    /**
     * The flags chattr gave the mount's root in this mount (-1: none yet). The kernel reads
     * overlay.protattr only when it makes an inode for a lookup (ovl_get_inode: ovl_check_protattr),
     * never for the root, which it makes at mount time (ovl_get_root): a flag chattr put on the root
     * holds until the unmount, and a new mount ignores the root's xattr (only the upper directory's own
     * flags count, as for every inode: ovl_copyflags).
     */
    private volatile int rootProt = -1;

    /** A node's flags as read for its layer array at a generation. */
    static final class Flags {
        final int[] layers;
        final int generation, bits;
        Flags(int[] layers, int generation, int bits) { this.layers = layers; this.generation = generation; this.bits = bits; }
    }

    Protect(Overlay ovl, boolean trusted) {
        this.ovl = ovl;
        this.xattr = trusted ? TRUSTED : USER;
    }

    /**
     * A file this mount has just created in the upper: no overlay.protattr, and no append-only or
     * immutable flag (file systems do not pass those on from a directory: ext4's, xfs's and btrfs's
     * inherited flags leave them out), so there is nothing to read. A later chattr (store) reads again.
     */
    void created(Node n) {
        n.prot = new Flags(n.layers, generation.get(), 0);
    }

    /** APPEND / IMMUTABLE of a node (0 for a negative entry), read once per node (caller holds the lock). */
    int bits(Node n) {
        if (n == null || n instanceof Namei.LookupError || n.negative()) return 0;
        Flags f = n.prot;
        int[] layers = n.layers;
        int g = generation.get();
        if (f != null && f.layers == layers && f.generation == g) return f.bits;
        int bits = read(n);
        n.prot = new Flags(layers, g, bits);
        return bits;
    }

    private int read(Node n) {
        if (n.negative()) return 0;
        boolean upper = ovl.hasUpper && n.top() == 0;
        int bits = 0;
        try (At a = ovl.xattrs.atOf(n)) {
            if (!a.ok()) return 0;
            if (upper && n.parent == null) {
                bits = Math.max(rootProt, 0);
            } else if (upper) {
                byte[] v = Posix.getxattrAt(a.dirfd(), a.name(), TRUSTED);
                if (v == null) v = Posix.getxattrAt(a.dirfd(), a.name(), USER);
                bits = parse(v);
            }
            // the real file's own flags count too (ovl_copyflags): a lower file chattr'ed in its layer
            if (n.type == S_IFREG || n.isDir()) bits |= realBits(a, n.isDir());
        }
        return bits;
    }

    /** The kernel's format (ovl_check_protattr): 'a' and 'i' letters; anything else is not understood. */
    static int parse(byte[] v) {
        if (v == null || v.length == 0) return 0;
        int bits = 0;
        for (byte c : v) {
            if (c == 'a') bits |= APPEND;
            else if (c == 'i') bits |= IMMUTABLE;
            else return 0; // "incompatible overlay.protattr format": the kernel ignores the whole value
        }
        return bits;
    }

    static byte[] format(int bits) {
        return (bits & APPEND) != 0 && (bits & IMMUTABLE) != 0 ? new byte[]{'a', 'i'}
                : (bits & APPEND) != 0 ? new byte[]{'a'} : (bits & IMMUTABLE) != 0 ? new byte[]{'i'} : new byte[0];
    }

    private static int realBits(At a, boolean dir) {
        // one statx where the file system reports the two attributes (ext4, xfs, btrfs, tmpfs): no open
        long sx = Posix.statxProtAttributes(a.dirfd(), a.name());
        if (sx >= 0) {
            return ((sx & Posix.STATX_ATTR_APPEND) != 0 ? APPEND : 0) | ((sx & Posix.STATX_ATTR_IMMUTABLE) != 0 ? IMMUTABLE : 0);
        }
        int fd = Posix.openat(a.dirfd(), a.name(), O_RDONLY | O_NONBLOCK | O_NOFOLLOW | (dir ? O_DIRECTORY : 0), 0);
        if (fd < 0) return 0;
        try {
            return fromFsFlags(fsFlags(fd));
        } finally {
            Posix.close(fd);
        }
    }

    /** FS_IOC_GETFLAGS of an open file, 0 where its file system has none. */
    static int fsFlags(int fd) {
        Pointer b = Buffers.get(Posix.FSXATTR_SIZE);
        return Posix.ioctl(fd, Posix.FS_IOC_GETFLAGS, b.address()) < 0 ? 0 : b.getInt(0);
    }

    static int fromFsFlags(int fl) {
        return ((fl & FS_APPEND_FL) != 0 ? APPEND : 0) | ((fl & FS_IMMUTABLE_FL) != 0 ? IMMUTABLE : 0);
    }

    static int toFsFlags(int bits) {
        return ((bits & APPEND) != 0 ? FS_APPEND_FL : 0) | ((bits & IMMUTABLE) != 0 ? FS_IMMUTABLE_FL : 0);
    }

    static int toXflags(int bits) {
        return ((bits & APPEND) != 0 ? FS_XFLAG_APPEND : 0) | ((bits & IMMUTABLE) != 0 ? FS_XFLAG_IMMUTABLE : 0);
    }

    /**
     * Stores the flags of an upper object as ovl_set_protattr does: the xattr when a flag is set, removed
     * when none is left (nothing to remove is fine). Every node reads its flags again afterwards.
     */
    int store(Node n, At a, int bits) {
        int r;
        if (bits != 0) {
            r = Posix.lsetxattr(a.xattrPath(), xattr, format(bits), 0);
            // the kernel: "Do not allow to set protection flags when upper doesn't support xattrs"
            if (r == -EOPNOTSUPP) r = -EPERM;
        } else {
            r = Posix.lremovexattr(a.xattrPath(), TRUSTED);
            if (r == -ENODATA || r == -EOPNOTSUPP) r = 0;
            int u = Posix.lremovexattr(a.xattrPath(), USER);
            if (r == 0 && u != -ENODATA && u != -EOPNOTSUPP) r = u;
        }
        if (r == 0 && n.parent == null) rootProt = bits;
        generation.incrementAndGet();
        return r;
    }

    // ------------------------------------------------------------------ the checks, by operation
    //
    // Each operation calls its check with the nodes it resolved itself, under the lock it holds for the
    // change (exclusive), before it copies anything up: the check and the operation see the same objects,
    // and no path is walked twice. The descriptor checks read the open file's node.

    /** A check of the node an operation resolved: 0, or the errno (-EPERM) that refuses it. */
    interface Check {
        int check(Node n);
        Check NONE = n -> 0;
    }

    /**
     * The flags of the file behind one of strata's descriptors: its node's, or, once its name no longer
     * leads to it (removed or renamed away while open), read from the descriptor itself.
     */
    private int fdBits(int fd) {
        Node n = ovl.files.openFiles.get(fd);
        if (n == null) return 0;
        if (!n.stale()) return bits(n);
        Flags f = n.prot;
        if (f != null && f.layers == n.layers && f.generation == generation.get()) return f.bits;
        byte[] v = Posix.fgetxattr(fd, TRUSTED);
        if (v == null) v = Posix.fgetxattr(fd, USER);
        return parse(v) | fromFsFlags(fsFlags(fd));
    }

    private int locked(java.util.function.IntSupplier c) {
        ovl.lock.readLock().lock();
        try {
            return c.getAsInt();
        } finally {
            ovl.lock.readLock().unlock();
        }
    }

    /** may_open: no write (or O_TRUNC) on an immutable file; an append-only one only with O_APPEND, never O_TRUNC. */
    int open(Node n, int flags) {
        boolean write = (flags & O_ACCMODE) != O_RDONLY;
        boolean trunc = (flags & O_TRUNC) != 0;
        if (!write && !trunc) return 0;
        int b = bits(n);
        if ((b & IMMUTABLE) != 0) return -EPERM;
        if ((b & APPEND) != 0 && (trunc || (flags & O_APPEND) == 0)) return -EPERM;
        return 0;
    }

    /** may_create: no new name in an immutable directory (checked once the name is known to be absent). */
    int create(Node dir) {
        return (bits(dir) & IMMUTABLE) != 0 ? -EPERM : 0;
    }

    /** may_delete: neither an append-only or immutable directory nor an append-only or immutable victim. */
    int delete(Node victim) {
        if (victim == null || victim.negative() || victim.parent == null) return 0;
        if (bits(victim.parent) != 0 || bits(victim) != 0) return -EPERM;
        return 0;
    }

    /** vfs_rename: may_delete of the source, then may_delete of the target or may_create in its directory. */
    int rename(Node src, Node dst, Node dstDir) {
        int r = delete(src);
        if (r != 0) return r;
        return !dst.negative() ? delete(dst) : create(dstDir);
    }

    /** vfs_link: not of an append-only or immutable file (may_create in the new directory: {@link #create}). */
    int link(Node src) {
        return bits(src) != 0 ? -EPERM : 0;
    }

    /** linkat of an open file (/proc/self/fd/N). */
    int linkFd(int fd) {
        return fdBits(fd) != 0 ? -EPERM : 0;
    }

    /** notify_change / vfs_truncate: the check of a setattr kind. */
    Check setattr(int kind) {
        return n -> setattrBits(bits(n), kind);
    }

    /** The same through an open file (fchmod, fchown, futimens, ftruncate of a removed name). */
    int fsetattr(int fd, int kind) {
        return locked(() -> setattrBits(fdBits(fd), kind));
    }

    private static int setattrBits(int b, int kind) {
        if (b == 0) return 0;
        return kind == TOUCH && (b & IMMUTABLE) == 0 ? 0 : -EPERM;
    }

    /** The setattr kind of a utimens: both times now is a touch; anything else sets times. */
    static int timesKind(long aNsec, long mNsec) {
        return aNsec == UTIME_NOW && mNsec == UTIME_NOW ? TOUCH : META;
    }

    /** xattr_permission: no xattr set or removed on an append-only or immutable object. */
    int xattr(Node n) {
        return bits(n) != 0 ? -EPERM : 0;
    }

    int fxattr(int fd) {
        return locked(() -> fdBits(fd) != 0 ? -EPERM : 0);
    }

    /** do_ftruncate: not of an append-only file (an immutable one the VFS lets through a descriptor). */
    int ftruncate(int fd) {
        return locked(() -> (fdBits(fd) & APPEND) != 0 ? -EPERM : 0);
    }

    /** vfs_fallocate: nothing on an immutable file; on an append-only one only FALLOC_FL_KEEP_SIZE. */
    int fallocate(int fd, int mode) {
        return locked(() -> {
            int b = fdBits(fd);
            if ((b & IMMUTABLE) != 0) return -EPERM;
            if ((b & APPEND) != 0 && (mode & ~1 /* FALLOC_FL_KEEP_SIZE */) != 0) return -EPERM;
            return 0;
        });
    }
}
