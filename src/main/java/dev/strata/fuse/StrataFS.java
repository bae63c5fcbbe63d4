package dev.strata.fuse;

import dev.strata.layer.At;
import dev.strata.posix.Errno;
import dev.strata.posix.Posix;
import dev.strata.union.Union;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import jnr.ffi.Struct;
import jnr.ffi.types.dev_t;
import jnr.ffi.types.gid_t;
import jnr.ffi.types.mode_t;
import jnr.ffi.types.off_t;
import jnr.ffi.types.size_t;
import jnr.ffi.types.uid_t;
import ru.serce.jnrfuse.FuseFillDir;
import ru.serce.jnrfuse.FuseStubFS;
import ru.serce.jnrfuse.struct.FileStat;
import ru.serce.jnrfuse.struct.FuseContext;
import ru.serce.jnrfuse.struct.FuseFileInfo;
import ru.serce.jnrfuse.struct.Statvfs;
import ru.serce.jnrfuse.struct.Timespec;

import java.util.function.IntSupplier;
import java.util.function.LongSupplier;

/**
 * The jnr-fuse adapter: each libfuse 2 callback turns into one {@link Union} call. Thin on purpose.
 * jnr-fuse reports an exception as success, so every callback catches everything and answers EIO.
 */
final class StrataFS extends FuseStubFS {
    private final Union union;
    private final Runnable onInit;
    private final Log log;

    StrataFS(Union union, Runnable onInit, Log log) {
        this.union = union;
        this.onInit = onInit;
        this.log = log;
        // libfuse 2 flags jnr-fuse cannot set: nullpath_ok (bit 0: I/O on unlinked open files) and
        // utime_omit_ok (bit 2: UTIME_OMIT reaches us), in the int at offset 304 of fuse_operations.
        Pointer ops = Struct.getMemory(fuseOperations);
        ops.putInt(304, ops.getInt(304) | 0b101);
    }

    /**
     * Runs one callback. Its end closes the layer directories the engine kept open for this thread
     * (At's per-thread cache): jffi attaches libfuse's worker thread to the JVM for the callback only, so
     * the next callback runs on a new Java thread with a new cache and these would never be closed
     * (fsstress on this transport reached EMFILE after about 2,000 operations, 2 or 3 descriptors
     * leaked per create or mkdir).
     */
    private int call(String op, String path, IntSupplier body) {
        try {
            return body.getAsInt();
        } catch (Throwable t) {
            return failed(op, path, t);
        } finally {
            At.releaseThreadCache();
        }
    }

    private int callL(String op, String path, LongSupplier body) {
        try {
            long r = body.getAsLong();
            return (int) r;
        } catch (Throwable t) {
            return failed(op, path, t);
        } finally {
            At.releaseThreadCache();
        }
    }

    /** The errno for a request that threw: ENOMEM when the heap ran out (logged without allocating much), else EIO. */
    private int failed(String op, String path, Throwable t) {
        try {
            log.error(t instanceof OutOfMemoryError
                    ? "out of Java heap: requests fail with ENOMEM; set STRATA_HEAP (e.g. STRATA_HEAP=4g) to give the daemon more"
                    : op + " " + path + ": " + t);
        } catch (Throwable ignored) {
            // the errno still goes back; the log line is what is lost
        }
        return t instanceof OutOfMemoryError ? -Errno.ENOMEM : -Errno.EIO;
    }

    private static final int FUSE_CAP_IOCTL_DIR = 1 << 11;

    private int uid() { FuseContext c = getContext(); return c.uid.intValue(); }
    private int gid() { FuseContext c = getContext(); return c.gid.intValue(); }
    private static int fd(FuseFileInfo fi) { return (int) fi.fh.get(); }

    @Override public Pointer init(Pointer conn) {
        try {
            // struct fuse_conn_info (libfuse 2.9): capable at 20, want at 24. FUSE_CAP_IOCTL_DIR: without
            // it libfuse answers a directory's ioctl (lsattr -d, chattr of a directory) ENOTTY itself
            if (conn != null && (conn.getInt(20) & FUSE_CAP_IOCTL_DIR) != 0) conn.putInt(24, conn.getInt(24) | FUSE_CAP_IOCTL_DIR);
        } catch (Throwable t) {
            log.error("init: " + t);
        }
        try {
            onInit.run();
        } catch (Throwable t) {
            log.error("init: " + t);
        }
        return null;
    }

    @Override public int getattr(String path, FileStat stat) {
        return call("getattr", path, () -> union.getattr(path, Struct.getMemory(stat)));
    }

    @Override public int fgetattr(String path, FileStat stat, FuseFileInfo fi) {
        return call("fgetattr", path, () -> union.fgetattr(fd(fi), Struct.getMemory(stat)));
    }

    @Override public int readlink(String path, Pointer buf, @size_t long size) {
        return call("readlink", path, () -> union.readlink(path, buf, size));
    }

    @Override public int mknod(String path, @mode_t long mode, @dev_t long rdev) {
        return call("mknod", path, () -> union.mknod(path, (int) mode, rdev, uid(), gid()));
    }

    @Override public int mkdir(String path, @mode_t long mode) {
        return call("mkdir", path, () -> union.mkdir(path, (int) mode, uid(), gid()));
    }

    @Override public int unlink(String path) {
        return call("unlink", path, () -> union.unlink(path));
    }

    @Override public int rmdir(String path) {
        return call("rmdir", path, () -> union.rmdir(path));
    }

    @Override public int symlink(String target, String path) {
        return call("symlink", path, () -> union.symlink(target, path, uid(), gid()));
    }

    @Override public int rename(String from, String to) {
        return call("rename", from, () -> union.rename(from, to, 0));
    }

    @Override public int link(String from, String to) {
        return call("link", from, () -> union.link(from, to));
    }

    @Override public int chmod(String path, @mode_t long mode) {
        return call("chmod", path, () -> union.chmod(path, (int) mode));
    }

    @Override public int chown(String path, @uid_t long uid, @gid_t long gid) {
        return call("chown", path, () -> union.chown(path, (int) uid, (int) gid));
    }

    @Override public int truncate(String path, @off_t long size) {
        return call("truncate", path, () -> union.truncate(path, size));
    }

    @Override public int ftruncate(String path, @off_t long size, FuseFileInfo fi) {
        return call("ftruncate", path, () -> union.ftruncate(fd(fi), size));
    }

    @Override public int utimens(String path, Timespec[] ts) {
        return call("utimens", path, () -> union.utimens(path, ts[0].tv_sec.get(), ts[0].tv_nsec.longValue(),
                ts[1].tv_sec.get(), ts[1].tv_nsec.longValue()));
    }

    @Override public int open(String path, FuseFileInfo fi) {
        return call("open", path, () -> {
            int fd = union.open(path, fi.flags.get());
            if (fd < 0) return fd;
            fi.fh.set(fd);
            if (union.hasOtherNames(fd)) {
                directIo(fi);
                directFds.add(fd);
            }
            return 0;
        });
    }

    /** Descriptors opened with direct_io (files with other names), whose writes clear set-id bits here ({@link #write}). */
    private final java.util.Set<Integer> directFds = java.util.concurrent.ConcurrentHashMap.newKeySet();

    /**
     * Sets direct_io in fuse_file_info: jnr-fuse maps its bit fields wrongly, so the bit (0) is set in
     * the int at byte offset 20 of the struct (see JNR-FUSE-NOTES).
     */
    private static void directIo(FuseFileInfo fi) {
        Pointer p = Struct.getMemory(fi);
        p.putInt(20, p.getInt(20) | 1);
    }

    @Override public int create(String path, @mode_t long mode, FuseFileInfo fi) {
        return call("create", path, () -> {
            int fd = union.create(path, (int) mode, fi.flags.get(), uid(), gid());
            if (fd < 0) return fd;
            fi.fh.set(fd);
            return 0;
        });
    }

    @Override public int read(String path, Pointer buf, @size_t long size, @off_t long offset, FuseFileInfo fi) {
        return callL("read", path, () -> union.read(fd(fi), buf, size, offset));
    }

    @Override public int write(String path, Pointer buf, @size_t long size, @off_t long offset, FuseFileInfo fi) {
        return callL("write", path, () -> {
            int fd = fd(fi);
            if (!directFds.isEmpty() && directFds.contains(fd)) {
                int r = killSuidGid(fd);
                if (r < 0) return r;
            }
            return union.write(fd, buf, size, offset);
        });
    }

    /**
     * Before a direct-I/O write: the kernel clears no set-id bit for it, it flags the write for the server
     * where the caller lacks CAP_FSETID (FUSE_WRITE_KILL_SUIDGID), and libfuse 2 does not pass the flag
     * on. So the caller is checked here and the bits go by the VFS's rule (setattr_should_drop_suidgid),
     * as the kernel overlay's write clears them: S_ISUID, and S_ISGID with group-execute or for a caller
     * outside the file's group (libfuse seeds 3009 and 3012: a write by uid 1000 to a set-group-ID file with
     * two names kept the bit).
     */
    private int killSuidGid(int fd) {
        dev.strata.posix.Stat st = new dev.strata.posix.Stat();
        if (union.fgetattr(fd, st.pointer()) < 0 || st.type() != Posix.S_IFREG || (st.mode() & 06000) == 0) return 0;
        FuseContext c = getContext();
        int pid = c.pid.intValue(), uid = c.uid.intValue(), gid = c.gid.intValue();
        if (Callers.capable(pid, uid, Callers.CAP_FSETID)) return 0;
        int mode = st.mode() & 07777, keep = mode & ~04000;
        if ((mode & 02000) != 0 && ((mode & 010) != 0 || !Callers.inGroupOrCapable(pid, uid, gid, st.gid(), false))) keep &= ~02000;
        return keep == mode ? 0 : union.fchmod(fd, keep);
    }

    @Override public int statfs(String path, Statvfs stbuf) {
        return call("statfs", path, () -> union.statfs(Struct.getMemory(stbuf)));
    }

    @Override public int flush(String path, FuseFileInfo fi) {
        return 0;
    }

    @Override public int release(String path, FuseFileInfo fi) {
        return call("release", path, () -> {
            directFds.remove(fd(fi));
            return union.release(fd(fi));
        });
    }

    @Override public int fsync(String path, int isdatasync, FuseFileInfo fi) {
        return call("fsync", path, () -> union.fsync(fd(fi), isdatasync != 0));
    }

    @Override public int fallocate(String path, int mode, @off_t long off, @off_t long length, FuseFileInfo fi) {
        return call("fallocate", path, () -> union.fallocate(fd(fi), mode, off, length));
    }

    @Override public int setxattr(String path, String name, Pointer value, @size_t long size, int flags) {
        return call("setxattr", path, () -> union.setxattr(path, name, value, size, flags));
    }

    @Override public int getxattr(String path, String name, Pointer value, @size_t long size) {
        return call("getxattr", path, () -> union.getxattr(path, name, value, size));
    }

    @Override public int listxattr(String path, Pointer list, @size_t long size) {
        return call("listxattr", path, () -> {
            FuseContext c = getContext();
            int pid = c.pid.intValue(), uid = c.uid.intValue();
            return union.listxattr(path, list, size, () -> Callers.capable(pid, uid, Callers.CAP_SYS_ADMIN));
        });
    }

    @Override public int removexattr(String path, String name) {
        return call("removexattr", path, () -> union.removexattr(path, name));
    }

    /**
     * lsattr / chattr (FS_IOC_GETFLAGS, FS_IOC_SETFLAGS, FS_IOC_FSGETXATTR, FS_IOC_FSSETXATTR), as the
     * kernel transport's IoctlOps: libfuse hands over the argument's bytes in {@code data}. A set needs
     * the owner or CAP_FOWNER, and CAP_LINUX_IMMUTABLE to change the append-only or immutable flag (the
     * VFS checked both before sending; checked again here). Every other ioctl is ENOTTY.
     */
    @Override public int ioctl(String path, int cmd, Pointer arg, FuseFileInfo fi, long flags, Pointer data) {
        return call("ioctl", path, () -> {
            long c = cmd & 0xffffffffL;
            boolean get = c == Posix.FS_IOC_GETFLAGS || c == Posix.FS_IOC_FSGETXATTR;
            boolean set = c == Posix.FS_IOC_SETFLAGS || c == Posix.FS_IOC_FSSETXATTR;
            if (!get && !set || data == null) return -Errno.ENOTTY;
            if (get) return union.getFileattr(path, c, data);
            FuseContext ctx = getContext();
            int pid = ctx.pid.intValue(), uid = ctx.uid.intValue();
            dev.strata.posix.Stat st = new dev.strata.posix.Stat();
            int r = union.getattr(path, st.pointer());
            if (r < 0) return r;
            if (uid != st.pointer().getInt(dev.strata.posix.Stat.OFF_UID) && !Callers.capable(pid, uid, Callers.CAP_FOWNER)) return -Errno.EPERM;
            int v = data.getInt(0);
            int prot = c == Posix.FS_IOC_FSSETXATTR
                    ? ((v & Posix.FS_XFLAG_APPEND) != 0 ? Posix.FS_APPEND_FL : 0) | ((v & Posix.FS_XFLAG_IMMUTABLE) != 0 ? Posix.FS_IMMUTABLE_FL : 0)
                    : v & (Posix.FS_APPEND_FL | Posix.FS_IMMUTABLE_FL);
            if (prot != union.protFlags(path) && !Callers.capable(pid, uid, Callers.CAP_LINUX_IMMUTABLE)) return -Errno.EPERM;
            return union.setFileattr(path, c, data);
        });
    }

    @Override public int opendir(String path, FuseFileInfo fi) {
        return 0;
    }

    @Override public int releasedir(String path, FuseFileInfo fi) {
        return 0;
    }

    @Override public int fsyncdir(String path, FuseFileInfo fi) {
        return 0;
    }

    private static final ThreadLocal<FileStat> DIR_STAT = ThreadLocal.withInitial(() -> {
        FileStat st = new FileStat(jnr.ffi.Runtime.getSystemRuntime());
        st.useMemory(Memory.allocateDirect(jnr.ffi.Runtime.getSystemRuntime(), 256, true));
        return st;
    });

    @Override public int readdir(String path, Pointer buf, FuseFillDir filler, @off_t long offset, FuseFileInfo fi) {
        return call("readdir", path, () -> {
            FileStat st = DIR_STAT.get();
            Pointer mem = Struct.getMemory(st);
            return union.readdir(path, (name, type, ino) -> {
                mem.putInt(dev.strata.posix.Stat.OFF_MODE, type);
                mem.putLong(dev.strata.posix.Stat.OFF_INO, ino);
                return filler.apply(buf, name, st, 0) == 0;
            });
        });
    }

}
