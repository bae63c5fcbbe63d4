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
 * File attribute flags (lsattr, chattr): read from the top layer, set on the upper copy, copied on copy-up.
 */
final class FileAttr {
    private final Overlay ovl;

    FileAttr(Overlay ovl) { this.ovl = ovl; }

    /**
     * As the kernel overlay's copy-up (ovl_copy_fileattr): the synchronous-update and no-atime flags of
     * a lower file or directory go to its copy. A layer without flags (EOPNOTSUPP, ENOTTY) has none to
     * give. The append-only and immutable flags are not copied (see {@link #setFileattr}).
     */
    void copyFileattr(Layer src, String rel, Stat st, String tmp) {
        if (st.type() != S_IFREG && st.type() != S_IFDIR) return;
        int dirFlag = st.type() == S_IFDIR ? O_DIRECTORY : 0;
        int in = rel.isEmpty() ? Posix.openat(src.fd(), ".", O_RDONLY | O_DIRECTORY, 0)
                : src.openat(rel, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | dirFlag, 0);
        if (in < 0) return;
        int flags;
        try {
            flags = fileattrToCopy(in);
        } finally {
            Posix.close(in);
        }
        if (flags == 0) return;
        int out = Posix.openat(ovl.workFd, tmp, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | dirFlag, 0);
        if (out < 0) return;
        try {
            addFileattr(out, flags);
        } finally {
            Posix.close(out);
        }
    }

    /** The same between two open files (a regular file's copy through O_TMPFILE). */
    static void copyFileattr(int in, int out) {
        int flags = fileattrToCopy(in);
        if (flags != 0) addFileattr(out, flags);
    }

    /** The no-atime and sync flags of an open file (0 where its file system has no flags). */
    static int fileattrToCopy(int fd) {
        Pointer b = Buffers.get(Posix.FSXATTR_SIZE);
        return Posix.ioctl(fd, Posix.FS_IOC_GETFLAGS, b.address()) < 0 ? 0 : b.getInt(0) & (Posix.FS_SYNC_FL | Posix.FS_NOATIME_FL);
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
                return fileattrIoctl(a, n.isDir(), cmd, buf);
            }
        } finally {
            ovl.lock.readLock().unlock();
        }
    }

    /**
     * FS_IOC_SETFLAGS or FS_IOC_FSSETXATTR (chattr, xfs_io): copies the entry up (as the kernel overlay)
     * and sets them on its upper file. The append-only and immutable flags are refused (EOPNOTSUPP): the
     * kernel overlay keeps them in an overlay.protattr xattr and enforces them on its own inode, which
     * strata does not do.
     */
    public int setFileattr(String path, long cmd, Pointer buf) {
        boolean flagsCmd = cmd == Posix.FS_IOC_SETFLAGS || cmd == Posix.FS_IOC32_SETFLAGS;
        int prot = flagsCmd ? buf.getInt(0) & (Posix.FS_APPEND_FL | Posix.FS_IMMUTABLE_FL)
                : buf.getInt(0) & (Posix.FS_XFLAG_APPEND | Posix.FS_XFLAG_IMMUTABLE);
        if (prot != 0) return -EOPNOTSUPP;
        return ovl.attrs.onUpperMeta(path, (n, a) -> {
            if (n.type != S_IFREG && !n.isDir()) return -ENOTTY;
            return fileattrIoctl(a, n.isDir(), cmd, buf);
        });
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
