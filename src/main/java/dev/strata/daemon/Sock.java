package dev.strata.daemon;

import dev.strata.posix.NativeMemory;
import dev.strata.posix.Posix;
import jnr.ffi.LibraryLoader;
import jnr.ffi.Pointer;

import java.nio.charset.StandardCharsets;

/**
 * The few socket calls the shared daemon needs (a unix stream socket, SO_PEERCRED), bound with jnr-ffi
 * like {@link Posix}; each returns a non-negative result or {@code -errno}. Loaded only by a daemon.
 */
final class Sock {
    private Sock() {}

    public interface Lib {
        int socket(int domain, int type, int protocol);
        int bind(int fd, Pointer addr, int len);
        int listen(int fd, int backlog);
        int accept4(int fd, Pointer addr, Pointer len, int flags);
        int getsockopt(int fd, int level, int name, Pointer val, Pointer len);
        int setsockopt(int fd, int level, int name, Pointer val, int len);
        int unlink(String path);
    }

    static final Lib L = LibraryLoader.create(Lib.class).load("c");

    static final int AF_UNIX = 1, SOCK_STREAM = 1, SOCK_CLOEXEC = 02000000;
    static final int SOL_SOCKET = 1, SO_PEERCRED = 17, SO_RCVTIMEO = 20, SO_SNDTIMEO = 21;
    static final int SUN_PATH = 108;

    private static int ret(int r) { return r < 0 ? -Posix.errno() : r; }

    /** A listening socket bound at {@code path}, or -errno. */
    static int listen(String path) {
        byte[] p = path.getBytes(StandardCharsets.ISO_8859_1);
        if (p.length >= SUN_PATH) return -dev.strata.posix.Errno.ENAMETOOLONG;
        int fd = ret(L.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (fd < 0) return fd;
        Pointer addr = NativeMemory.allocate(2 + SUN_PATH);
        addr.putShort(0, (short) AF_UNIX);
        addr.put(2, p, 0, p.length);
        addr.putByte(2 + p.length, (byte) 0);
        int r = ret(L.bind(fd, addr, 2 + p.length + 1));
        java.lang.ref.Reference.reachabilityFence(addr);
        if (r == 0) r = ret(L.listen(fd, 64));
        if (r < 0) {
            Posix.close(fd);
            return r;
        }
        return fd;
    }

    /** accept(2) that gives up after {@code timeoutMillis} with -EAGAIN (SO_RCVTIMEO on the listener). */
    static int accept(int fd) { return ret(L.accept4(fd, null, null, SOCK_CLOEXEC)); }

    static int timeouts(int fd, long millis) {
        Pointer tv = NativeMemory.allocate(16);
        tv.putLong(0, millis / 1000);
        tv.putLong(8, (millis % 1000) * 1000);
        int r = ret(L.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, tv, 16));
        if (r == 0) r = ret(L.setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, tv, 16));
        java.lang.ref.Reference.reachabilityFence(tv);
        return r;
    }

    /** The peer's {pid, uid, gid} (SO_PEERCRED, in this process's namespaces), or null. */
    static int[] peer(int fd) {
        Pointer cred = NativeMemory.allocate(12);
        Pointer len = NativeMemory.allocate(4);
        len.putInt(0, 12);
        int r = L.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, len);
        java.lang.ref.Reference.reachabilityFence(len);
        if (r < 0) return null;
        return new int[]{cred.getInt(0), cred.getInt(4), cred.getInt(8)};
    }

    static int unlink(String path) { return ret(L.unlink(path)); }

    /** Reads exactly {@code n} bytes, or null at end of stream or on an error. */
    static byte[] readFully(int fd, int n) {
        byte[] out = new byte[n];
        if (n == 0) return out;
        Pointer buf = NativeMemory.allocate(n);
        int got = 0;
        while (got < n) {
            long r = Posix.C.read(fd, buf.slice(got), n - got);
            if (r < 0 && Posix.errno() == dev.strata.posix.Errno.EINTR) continue;
            if (r <= 0) return null;
            got += (int) r;
        }
        buf.get(0, out, 0, n);
        return out;
    }

    static boolean writeFully(int fd, byte[] data) {
        Pointer buf = NativeMemory.allocate(Math.max(1, data.length));
        buf.put(0, data, 0, data.length);
        int done = 0;
        try {
            while (done < data.length) {
                long r = Posix.C.write(fd, buf.slice(done), data.length - done);
                if (r < 0 && Posix.errno() == dev.strata.posix.Errno.EINTR) continue;
                if (r <= 0) return false;
                done += (int) r;
            }
            return true;
        } finally {
            java.lang.ref.Reference.reachabilityFence(buf);
        }
    }
}
