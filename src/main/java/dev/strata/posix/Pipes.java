package dev.strata.posix;

import jnr.ffi.LibraryLoader;
import jnr.ffi.Pointer;
import jnr.ffi.types.size_t;
import jnr.ffi.types.ssize_t;

/**
 * Pipes and splice(2), for the kernel transport's READ replies that move file data to /dev/fuse
 * without a copy through user memory. A binding of its own, made at the first use (a mount that never
 * splices, as with FUSE passthrough, does not pay for jnr-ffi's generation of the call stubs). Every
 * call returns a non-negative result or {@code -errno}, as {@link Posix}'s.
 */
public final class Pipes {
    private Pipes() {}

    /** The functions, bound with jnr-ffi. */
    public interface Calls {
        int pipe2(Pointer fds, int flags);
        int fcntl(int fd, int cmd, int arg);
        @ssize_t long splice(int fdIn, Pointer offIn, int fdOut, Pointer offOut, @size_t long len, int flags);
    }

    /** Bound at the first call. */
    private static final class Holder {
        static final Calls C = LibraryLoader.create(Calls.class).load("c");
    }

    public static final int F_SETPIPE_SZ = 1031, F_GETPIPE_SZ = 1032;
    public static final int SPLICE_F_MOVE = 1, SPLICE_F_NONBLOCK = 2;

    /** Binds the calls now (on a thread where the time it takes matters less); false if they cannot be bound. */
    public static boolean bind() {
        try {
            return Holder.C != null;
        } catch (LinkageError e) {
            return false;
        }
    }

    private static long ret(long r) { return r < 0 ? -Posix.errno() : r; }

    /** pipe2(2) into {@code fds} (8 bytes: the read end, then the write end); 0 or -errno. */
    public static int pipe2(Pointer fds, int flags) { return (int) ret(Holder.C.pipe2(fds, flags)); }

    /** F_SETPIPE_SZ: the pipe's capacity in bytes as set (rounded up to a power of two pages), or -errno. */
    public static int setSize(int fd, int bytes) { return (int) ret(Holder.C.fcntl(fd, F_SETPIPE_SZ, bytes)); }

    /** F_GETPIPE_SZ: the pipe's capacity in bytes, or -errno. */
    public static int size(int fd) { return (int) ret(Holder.C.fcntl(fd, F_GETPIPE_SZ, 0)); }

    /**
     * splice(2) of up to {@code len} bytes; {@code offIn}/{@code offOut} null for a pipe end (or to use
     * and move the descriptor's own offset), else a loff_t in native memory that the call advances.
     */
    public static long splice(int fdIn, Pointer offIn, int fdOut, Pointer offOut, long len, int flags) {
        return ret(Holder.C.splice(fdIn, offIn, fdOut, offOut, len, flags));
    }
}
