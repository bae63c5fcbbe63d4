package dev.strata.daemon;

import dev.strata.posix.ServingThread;

import java.io.PrintStream;
import java.util.ArrayDeque;
import java.util.concurrent.locks.LockSupport;

/**
 * Threads kept across mounts (issue 14). The shared daemon serves a container's mount for the
 * container's life, and a container start mounts a fresh one: its mount request ran on a new thread,
 * its first FUSE request (INIT) started a second worker thread before it was answered, and its first
 * requests ran on two new worker threads (a pthread and the JVM's attachment of it, the thread's
 * first system-call buffers; after the daemon's rest passes, the JVM's code and data for all of it
 * mapped back), while the threads of the mount unmounted just before had ended with it. A thread whose
 * task ended now waits in its pool, up to the pool's {@code keep} threads for {@link #KEEP_MS} ms, for the
 * next task; a thread that waited that long ends, giving its stack back. A kept thread takes over what
 * a thread started for the task would have inherited: the mount's log ({@link RoutedErr}).
 */
public final class Threads {
    static final long KEEP_MS = Long.getLong("strata.threadKeepMillis", 5000);

    /** The mounts' FUSE workers (fuse/kernel/Workers: a mount at rest holds two; no deep recursion there). */
    public static final Threads WORKERS = new Threads(256 * 1024, 2, KEEP_MS);
    /** Writing a mount's registry record while it mounts (cli/MountRecord: one short task per mount). */
    public static final Threads RECORDS = new Threads(256 * 1024, 1, KEEP_MS);
    /** The daemon's mount requests (one per mount, for the mount's life). */
    static final Threads REQUESTS = new Threads(0, 1, KEEP_MS);

    /**
     * Run by a kept thread as it ends (set by the kernel transport's rest watcher, fuse/kernel/Rest: a
     * thread's end runs through the JVM's code, mapping back pages of libjvm the daemon's rest passes
     * had given back, 2-8 MB; a rest pass after it gives them back again). Null: nothing.
     */
    public static volatile Runnable onThreadEnd;

    private final long stack;
    private final int keep;
    private final long keepMs;
    private final Object lock = new Object();
    /** Waiting threads, the one that waited least last. */
    private final ArrayDeque<Kept> idle = new ArrayDeque<>();

    /** A pool of threads with {@code stack} (0: the JVM's default), up to {@code keep} of them kept {@code keepMs} (tests). */
    Threads(long stack, int keep, long keepMs) {
        this.stack = stack;
        this.keep = keep;
        this.keepMs = keepMs;
    }

    /** Runs {@code body} on a waiting thread, or a new one; throws as Thread.start does if none can be made. */
    public void run(Runnable body, String name) {
        Kept t;
        synchronized (lock) {
            t = idle.pollLast();
        }
        if (t != null) {
            t.nextLog = RoutedErr.mountLog(); // what a thread started here would have inherited
            t.nextName = name;
            t.next = body;
            LockSupport.unpark(t);
            return;
        }
        new Kept(this, body, name).start();
    }

    /** How many threads wait for a task now (tests). */
    public int idle() {
        synchronized (lock) {
            return idle.size();
        }
    }

    private static final class Kept extends ServingThread {
        private final Threads pool;
        /**
         * The task the thread was started for, until it runs: not kept after, or a thread kept for
         * later mounts would hold what that task reached (a worker's: its mount's engine and node
         * table, all that mount held, long after it ended).
         */
        private Runnable first;
        private volatile Runnable next;
        private volatile String nextName;
        private volatile PrintStream nextLog;

        Kept(Threads pool, Runnable body, String name) {
            super(null, name, pool.stack);
            this.pool = pool;
            first = body;
        }

        @Override public void run() {
            Runnable body = first;
            first = null;
            while (body != null) {
                try {
                    body.run();
                } catch (Throwable t) {
                    // the task reported what it could; this thread may still serve another
                }
                Thread.interrupted(); // an interrupt was for the task that ended
                body = null; // nor held while waiting (an interpreted frame's locals are roots)
                body = await();
            }
            Runnable h = onThreadEnd;
            if (h != null) h.run();
        }

        /** Waits for the next task: null once the pool's keepMs passed without one (or enough threads wait). */
        private Runnable await() {
            if (pool.keepMs <= 0) return null;
            synchronized (pool.lock) {
                if (pool.idle.size() >= pool.keep) return null;
                pool.idle.addLast(this);
            }
            long end = System.nanoTime() + pool.keepMs * 1_000_000L;
            while (next == null) {
                long left = end - System.nanoTime();
                if (left <= 0) {
                    synchronized (pool.lock) {
                        if (pool.idle.remove(this)) return null;
                    }
                    // taken meanwhile: its task is on the way
                    while (next == null) LockSupport.park(this);
                    break;
                }
                LockSupport.parkNanos(this, left);
            }
            Runnable body = next;
            next = null;
            setName(nextName);
            RoutedErr.logTo(nextLog);
            nextLog = null;
            return body;
        }
    }
}
