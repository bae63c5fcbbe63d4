package dev.strata.union;

import dev.strata.layer.At;
import dev.strata.layer.Layer;
import dev.strata.posix.Buffers;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;
import jnr.ffi.Pointer;

import static dev.strata.posix.Errno.*;
import static dev.strata.posix.Posix.*;

/**
 * File attribute flags (lsattr, chattr): read from the top layer, set on the upper copy, copied on copy-up;
 * the append-only and immutable ones kept in overlay.protattr ({@link Protect}).
 */
final class FileAttr {
    private final Overlay ovl;

    FileAttr(Overlay ovl) { this.ovl = ovl; }

    /**
     * As the kernel overlay's copy-up (ovl_copy_fileattr): the synchronous-update and no-atime flags of
     * a lower file or directory go to its copy, and its append-only and immutable flags to the copy's
     * overlay.protattr (ovl_set_protattr: a lower directory chattr'ed in its layer, copied up as the
     * parent of a changed entry). A layer without flags (EOPNOTSUPP, ENOTTY) has none to give.
     */
    void copyFileattr(Layer src, String rel, Stat st, String tmp) {
        if (st.type() != S_IFREG && st.type() != S_IFDIR) return;
        int dirFlag = st.type() == S_IFDIR ? O_DIRECTORY : 0;
        int in = rel.isEmpty() ? Posix.openat(src.fd(), ".", O_RDONLY | O_DIRECTORY, 0)
                : src.openat(rel, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | dirFlag, 0);
        if (in < 0) return;
        int all;
        try {
            all = Protect.fsFlags(in);
        } finally {
            Posix.close(in);
        }
        int flags = all & (Posix.FS_SYNC_FL | Posix.FS_NOATIME_FL), prot = Protect.fromFsFlags(all);
        if (flags == 0 && prot == 0) return;
        int out = Posix.openat(ovl.workFd, tmp, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | dirFlag, 0);
        if (out < 0) return;
        try {
            if (prot != 0) Posix.fsetxattr(out, ovl.protect.xattr, Protect.format(prot), 0);
            if (flags != 0) addFileattr(out, flags);
        } finally {
            Posix.close(out);
        }
    }

    /** The same between two open files (a regular file's copy through O_TMPFILE). */
    void copyFileattr(int in, int out) {
        int all = Protect.fsFlags(in);
        int prot = Protect.fromFsFlags(all);
        if (prot != 0) Posix.fsetxattr(out, ovl.protect.xattr, Protect.format(prot), 0);
        int flags = all & (Posix.FS_SYNC_FL | Posix.FS_NOATIME_FL);
        if (flags != 0) addFileattr(out, flags);
    }

    static void addFileattr(int fd, int flags) {
        Pointer b = Buffers.get(Posix.FSXATTR_SIZE);
        if (Posix.ioctl(fd, Posix.FS_IOC_GETFLAGS, b.address()) < 0) return;
        b.putInt(0, b.getInt(0) | flags);
        Posix.ioctl(fd, Posix.FS_IOC_SETFLAGS, b.address());
    }

    /**
     * FS_IOC_GETFLAGS or FS_IOC_FSGETXATTR (lsattr, xfs_io) of a regular file or directory: those of
     * the file of its top layer, into {@code buf} (an int / a struct fsxattr).
     */
    public int getFileattr(String path, long cmd, Pointer buf) {
        ovl.lock.readLock().lock();
        try {
            Node n = ovl.namei.resolve(path);
            int e = Namei.err(n);
            if (e != 0) return e;
            if (n.type != S_IFREG && !n.isDir()) return -ENOTTY;
            try (At a = ovl.xattrs.atOf(n)) {
                if (!a.ok()) return a.err();
                int r = fileattrIoctl(a, n.isDir(), cmd, buf);
                if (r < 0) return r;
                // ovl_fileattr_get: the real file's flags with the overlay inode's protection flags
                int prot = ovl.protect.bits(n);
                if (cmd == Posix.FS_IOC_FSGETXATTR) buf.putInt(0, buf.getInt(0) | Protect.toXflags(prot));
                else buf.putInt(0, buf.getInt(0) | Protect.toFsFlags(prot));
                return r;
            }
        } finally {
            ovl.lock.readLock().unlock();
        }
    }

    /**
     * FS_IOC_SETFLAGS or FS_IOC_FSSETXATTR (chattr, xfs_io): copies the entry up (as the kernel overlay)
     * and sets them on its upper file, except the append-only and immutable flags, which go to its
     * overlay.protattr xattr (ovl_fileattr_set, ovl_set_protattr) and are enforced by {@link Protect}.
     * Who may change those two (CAP_LINUX_IMMUTABLE) is the transport's check.
     */
    public int setFileattr(String path, long cmd, Pointer buf) {
        boolean flagsCmd = cmd == Posix.FS_IOC_SETFLAGS || cmd == Posix.FS_IOC32_SETFLAGS;
        int v = buf.getInt(0);
        int prot = flagsCmd ? Protect.fromFsFlags(v)
                : ((v & Posix.FS_XFLAG_APPEND) != 0 ? Protect.APPEND : 0) | ((v & Posix.FS_XFLAG_IMMUTABLE) != 0 ? Protect.IMMUTABLE : 0);
        return ovl.attrs.onUpperMeta(path, Protect.Check.NONE, (n, a) -> {
            if (n.type != S_IFREG && !n.isDir()) return -ENOTTY;
            if (prot != 0 || ovl.protect.bits(n) != 0) {
                int r = ovl.protect.store(n, a, prot);
                if (r < 0) return r;
            }
            buf.putInt(0, flagsCmd ? v & ~(Posix.FS_APPEND_FL | Posix.FS_IMMUTABLE_FL) : v & ~(Posix.FS_XFLAG_APPEND | Posix.FS_XFLAG_IMMUTABLE));
            return fileattrIoctl(a, n.isDir(), cmd, buf);
        });
    }

    /** The append-only / immutable flags a path shows (for the transport's CAP_LINUX_IMMUTABLE check). */
    public int protFlags(String path) {
        ovl.lock.readLock().lock();
        try {
            Node n = ovl.namei.resolve(path);
            return Namei.err(n) != 0 ? 0 : Protect.toFsFlags(ovl.protect.bits(n));
        } finally {
            ovl.lock.readLock().unlock();
        }
    }

    static int fileattrIoctl(At a, boolean dir, long cmd, Pointer buf) {
        int fd = Posix.openat(a.dirfd(), a.name(), O_RDONLY | O_NONBLOCK | O_NOFOLLOW | (dir ? O_DIRECTORY : 0), 0);
        if (fd < 0) return fd;
        try {
            return Posix.ioctl(fd, cmd, buf.address());
        } finally {
            Posix.close(fd);
        }
    }
}
