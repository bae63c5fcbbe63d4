package dev.strata.daemon;

import dev.strata.posix.Posix;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static dev.strata.posix.Posix.LOCK_EX;
import static dev.strata.posix.Posix.LOCK_NB;

/**
 * The shared daemon: one strata process per user and mount namespace that serves every mount the
 * launcher hands it (bin/strata, or target/strata-client run by libexec/strata-jvm: src/main/c/strata.c, the
 * protocol). The first mount's process becomes it: {@link #start} binds the socket the client named
 * while that mount comes up, and requests are accepted once it is ready ({@link #firstReady}).
 *
 * <p>Rules: a peer of another uid, or in another mount or user namespace, is refused (the launcher
 * then runs a process of its own); each request is served on a thread of its own, so one mount's
 * failure answers that request only; the process ends {@link #idleMillis} after its last mount is gone
 * (the socket is removed first, then the lock file that makes it the only daemon on that socket, while
 * it still holds it; a daemon that starts removes the sockets and lock files of ended ones).
 */
public final class Server {
    /** What serves one request: runs the mount, tells {@code reply} once it is ready, returns once it ends. */
    public interface Handler {
        int serve(String[] args, Path cwd, Reply reply);
    }

    private static volatile Server current;

    private final String path;
    private final Handler handler;
    private final long idleMillis;
    private int listenFd = -1, lockFd = -1;
    /** Mounts served (the first one included) and requests being served. */
    private int mounts = 1;
    private boolean closing, closed, firstReady, firstFailed, bound;
    private long idleSince;
    private final Object lock = new Object();

    private Server(String path, Handler handler, long idleMillis) {
        this.path = path;
        this.handler = handler;
        this.idleMillis = idleMillis;
    }

    /** Seconds after the last mount before the daemon ends: STRATA_DAEMON_IDLE, default 300. */
    static long idleMillisFromEnv() {
        String s = System.getenv("STRATA_DAEMON_IDLE");
        try {
            if (s != null && !s.isEmpty()) return Math.max(0, (long) (Double.parseDouble(s) * 1000));
        } catch (NumberFormatException ignored) {
            // the default
        }
        return 300_000;
    }

    /**
     * Becomes the daemon on {@code path} (in the background: binding costs no time of the first mount),
     * serving requests with {@code handler} once the first mount is ready. Returns null if it cannot
     * (then this process serves its own mount only, as without a daemon).
     */
    public static Server start(String path, Handler handler) {
        Server s = new Server(path, handler, idleMillisFromEnv());
        current = s;
        RoutedErr.install();
        Thread t = new Thread(s::run, "strata-daemon");
        t.setDaemon(true);
        t.start();
        return s;
    }

    /**
     * The first mount is ready: requests may be served. Waits (at most a second) for the socket to be
     * bound, so that a launcher started after this mount returned finds the daemon.
     */
    public void firstReady() {
        synchronized (lock) {
            firstReady = true;
            lock.notifyAll();
            long end = System.nanoTime() + 1_000_000_000L;
            while (!bound && !closing && System.nanoTime() < end) {
                try {
                    lock.wait(Math.max(1, (end - System.nanoTime()) / 1_000_000));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }
    }

    /** The first mount ended (unmounted, or failed before it was ready: then no request is served). */
    public void firstEnded() {
        synchronized (lock) {
            if (!firstReady) {
                firstFailed = true;
                closing = true;
            }
            ended();
        }
    }

    private void ended() {
        synchronized (lock) {
            mounts--;
            if (mounts == 0) idleSince = System.nanoTime();
            lock.notifyAll();
        }
    }

    /**
     * A mount's own error log (--log): what this thread, and the threads it starts from now on (the
     * mount's workers), print outside a request's answer goes to {@code log}; null: the daemon's stderr.
     * Installs the daemon's routed stderr if it is not yet.
     */
    public static void logTo(java.io.PrintStream log) {
        RoutedErr.install();
        RoutedErr.logTo(log);
    }

    /** Blocks while the daemon serves mounts or waits out its idle time (at once if none was started). */
    public static void awaitEnd() {
        Server s = current;
        if (s == null) return;
        synchronized (s.lock) {
            while (!s.closed || s.mounts > 0) { // closed: the socket and lock file are gone
                try {
                    s.lock.wait(60_000); // every change of closed and mounts notifies; no wake-up at rest
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }
    }

    private void run() {
        try {
            boolean ok = bind();
            synchronized (lock) {
                if (!ok) {
                    closing = true;
                    lock.notifyAll();
                    return;
                }
                bound = true;
                lock.notifyAll();
                while (!firstReady && !firstFailed) lock.wait();
            }
            acceptLoop();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            close();
        }
    }

    private boolean bind() {
        Path dir = Path.of(path).getParent();
        if (dir == null || !Files.isDirectory(dir, java.nio.file.LinkOption.NOFOLLOW_LINKS)) return false;
        // one daemon per socket: the lock file is held for the daemon's life; a socket left by a daemon
        // that was killed is removed by the next one to take the lock
        lockFd = lockExclusive(path + ".lock");
        if (lockFd < 0) return false;
        Sock.unlink(path);
        removeStale(dir, path + ".lock");
        // no umask here (the mounts being served set theirs): the directory is 0700, the socket made 0600
        listenFd = Sock.listen(path);
        if (listenFd < 0) return false;
        Posix.fchmodat(Posix.AT_FDCWD, path, 0600);
        return true;
    }


    /**
     * The lock file at {@code lockPath}, created if missing and locked (flock, not waiting), or -1 where
     * another daemon holds it. The name must still lead to the locked file: a daemon that ends removes
     * its lock file while it holds it, and one opened just before that is locked by nobody else: then
     * the lock is taken again on a new file.
     */
    static int lockExclusive(String lockPath) {
        for (int attempt = 0; attempt < 3; attempt++) {
            int fd = Posix.openat(Posix.AT_FDCWD, lockPath, Posix.O_RDWR | Posix.O_CREAT | Posix.O_CLOEXEC | Posix.O_NOFOLLOW, 0600);
            if (fd < 0) return -1;
            if (Posix.flock(fd, LOCK_EX | LOCK_NB) < 0) {
                Posix.close(fd);
                return -1;
            }
            if (named(fd, lockPath)) return fd;
            Posix.close(fd);
        }
        return -1;
    }

    /** Whether {@code path} names the file open as {@code fd}. */
    private static boolean named(int fd, String path) {
        dev.strata.posix.Stat a = new dev.strata.posix.Stat(), b = new dev.strata.posix.Stat();
        return Posix.fstat(fd, a) == 0 && Posix.fstatat(Posix.AT_FDCWD, path, b, Posix.AT_SYMLINK_NOFOLLOW) == 0
                && a.dev() == b.dev() && a.ino() == b.ino();
    }

    /**
     * Removes what daemons of other builds or settings left in the socket directory: a lock file nobody
     * holds (a daemon that ended before lock files were removed, or one killed) with its socket. A lock
     * file a daemon holds is left alone. Every build of strata (setup.sh) names its daemon's socket anew.
     */
    static void removeStale(Path dir, String ownLock) {
        try (var list = Files.newDirectoryStream(dir, "mnt-*.sock.lock")) {
            for (Path p : list) {
                String lock = p.toString();
                if (lock.equals(ownLock)) continue;
                int fd = Posix.openat(Posix.AT_FDCWD, lock, Posix.O_RDWR | Posix.O_CLOEXEC | Posix.O_NOFOLLOW, 0);
                if (fd < 0) continue;
                try {
                    if (Posix.flock(fd, LOCK_EX | LOCK_NB) < 0 || !named(fd, lock)) continue; // a daemon's
                    Sock.unlink(lock.substring(0, lock.length() - ".lock".length()));
                    Posix.unlinkat(Posix.AT_FDCWD, lock, 0);
                } finally {
                    Posix.close(fd);
                }
            }
        } catch (java.io.IOException | RuntimeException e) {
            // nothing removed: they are left for the next daemon
        }
    }

    private void acceptLoop() throws InterruptedException {
        long waited = -1;
        while (true) {
            long wait;
            synchronized (lock) {
                if (firstFailed) return;
                long idle = (System.nanoTime() - idleSince) / 1_000_000L;
                if (mounts == 0 && idle >= idleMillis) {
                    closing = true; // from here on a connection is answered by nobody: the client starts its own
                    lock.notifyAll();
                    return;
                }
                wait = acceptWait(mounts, idle, idleMillis);
            }
            if (wait != waited) {
                Sock.timeouts(listenFd, wait);
                waited = wait;
            }
            int c = Sock.accept(listenFd);
            if (c < 0) continue; // EAGAIN after the wait: look at the idle time again
            synchronized (lock) {
                mounts++;
            }
            Threads.REQUESTS.run(() -> request(c), "strata-request");
        }
    }

    /**
     * How long accept(2) waits before the idle time is looked at again (ms): with no mount, what is left
     * of it; while mounts are served, up to a minute (the daemon's at-rest state wakes no thread it need
     * not: each wake-up maps pages back that the rest passes gave back, fuse/kernel/Rest), so it ends
     * at most that much after its idle time.
     */
    static long acceptWait(int mounts, long idleSoFar, long idleMillis) {
        if (mounts == 0) return Math.max(1, idleMillis - idleSoFar);
        return Math.max(1, Math.min(idleMillis, 60_000));
    }

    private void close() {
        synchronized (lock) {
            closing = true;
            if (listenFd >= 0) {
                Sock.unlink(path);
                Posix.close(listenFd);
                listenFd = -1;
            }
            if (lockFd >= 0) {
                // removed while held: no daemon of this build leaves its lock file behind
                if (named(lockFd, path + ".lock")) Posix.unlinkat(Posix.AT_FDCWD, path + ".lock", 0);
                Posix.close(lockFd);
                lockFd = -1;
            }
            closed = true;
            lock.notifyAll();
        }
    }

    /** Serves one connection: checks the peer, reads the request, runs the mount. */
    private void request(int fd) {
        Reply reply = new Reply(fd);
        try {
            Sock.timeouts(fd, 10_000); // a client that sends nothing does not hold a thread forever
            String[] req = readRequest(fd);
            if (req == null) return;
            String refusal = refusal(fd);
            if (refusal != null) {
                reply.refuse(refusal);
                return;
            }
            Sock.timeouts(fd, 0);
            String[] args = java.util.Arrays.copyOfRange(req, 1, req.length);
            int rc;
            RoutedErr.route(reply);
            try {
                rc = handler.serve(args, Path.of(req[0]), reply);
            } catch (RuntimeException | Error e) {
                reply.err("strata: internal error: " + e);
                rc = 70;
            } finally {
                RoutedErr.route(null);
            }
            reply.exit(rc);
        } finally {
            reply.close();
            ended();
        }
    }

    /** Why the peer may not use this daemon, or null: another uid, or another mount or user namespace. */
    static String refusal(int fd) {
        int[] cred = Sock.peer(fd);
        if (cred == null) return "no peer credentials";
        if (cred[1] != Posix.geteuid()) return "uid " + cred[1] + " is not this daemon's user";
        for (String ns : new String[]{"mnt", "user"}) {
            String mine = nsLink("self", ns), theirs = nsLink(Integer.toString(cred[0]), ns);
            if (mine == null || !mine.equals(theirs)) return "another " + ns + " namespace";
        }
        return null;
    }

    private static String nsLink(String pid, String ns) {
        try {
            return Files.readSymbolicLink(Path.of("/proc/" + pid + "/ns/" + ns)).toString();
        } catch (java.io.IOException | RuntimeException e) {
            return null;
        }
    }

    static String[] readRequest(int fd) {
        byte[] h = Sock.readFully(fd, 4);
        if (h == null) return null;
        int n = be(h, 0);
        if (n < 1 || n > 4096) return null;
        String[] out = new String[n];
        int total = 0;
        for (int i = 0; i < n; i++) {
            byte[] l = Sock.readFully(fd, 4);
            if (l == null) return null;
            int len = be(l, 0);
            total += len;
            if (len < 0 || total > (1 << 20)) return null;
            byte[] s = Sock.readFully(fd, len);
            if (s == null) return null;
            out[i] = new String(s, StandardCharsets.ISO_8859_1); // names are bytes (the launcher's charset)
        }
        return out;
    }

    private static int be(byte[] b, int o) {
        return (b[o] & 0xff) << 24 | (b[o + 1] & 0xff) << 16 | (b[o + 2] & 0xff) << 8 | (b[o + 3] & 0xff);
    }

    /** The answer to one request: stderr lines, then the exit code (or a refusal); closed at the end. */
    public static final class Reply {
        private int fd;
        private Reply(int fd) { this.fd = fd; }

        private synchronized void frame(char type, String payload) {
            if (fd < 0) return;
            byte[] p = payload.getBytes(StandardCharsets.ISO_8859_1);
            ByteArrayOutputStream b = new ByteArrayOutputStream(5 + p.length);
            b.write(type);
            b.write(p.length >>> 24); b.write(p.length >>> 16); b.write(p.length >>> 8); b.write(p.length);
            b.write(p, 0, p.length);
            Sock.writeFully(fd, b.toByteArray()); // a client that went away: nothing to tell
        }

        /** A line for the client's stderr. */
        public void err(String line) { frame('e', line); }

        /** The mount is ready (or failed with {@code rc}): the client exits with it; later lines go to the daemon's log. */
        public synchronized void exit(int rc) {
            frame('x', Integer.toString(rc));
            close();
        }

        /** This daemon does not serve the request: the client runs a process of its own. */
        public synchronized void refuse(String why) {
            frame('r', why);
            close();
        }

        public synchronized boolean open() { return fd >= 0; }

        /** Blocks until the client closes its end (or goes away); what it sends meanwhile is ignored. */
        public void awaitClientEnd() {
            int f;
            synchronized (this) { f = fd; }
            if (f < 0) return;
            while (Sock.readFully(f, 1) != null) {
                // nothing is expected; read on until the end of the stream
            }
        }

        synchronized void close() {
            if (fd >= 0) {
                Posix.close(fd);
                fd = -1;
            }
        }
    }
}
