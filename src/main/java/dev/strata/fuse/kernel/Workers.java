package dev.strata.fuse.kernel;

/**
 * A mount's worker threads, started as requests need them (libfuse's multi-threaded loop and its rule
 * for how many): while the mount is at rest workers wait on /dev/fuse; when a worker takes a request
 * and none is left waiting there, a parked worker is woken, or another starts (up to {@link #MAX}); a
 * worker that finishes a request while {@link #SPARE} others already wait on /dev/fuse parks (waits
 * on a condition, not on /dev/fuse), and ends, giving its buffers back, once nobody woke it for
 * {@link #IDLE_MS} (its thread then waits a while for another mount's worker: daemon/Threads). Not at once: requests overlap all the time (the RELEASE of one file with the
 * LOOKUP of the next), and a worker ended at the first quiet moment was started again at the next
 * overlap, a thread with its buffers and its cached directories made and dropped per copy-up (issue
 * 14). Not waiting on /dev/fuse either: every request wakes every thread that polls it, and one that
 * then reads. A worker finishes a request when it sends the reply, before the write (Worker.send), so
 * that the caller's next request finds it counted as waiting. A mount at rest holds two threads (the
 * one that took its first request, INIT, and the one started then), instead of {@link #MAX} (the
 * shared daemon serves every mount of a user: issue 14).
 */
final class Workers {
    static final int MAX = Math.max(1, Integer.getInteger("strata.workers", 4));
    /** Waiting workers beyond which one that finished a request ends. */
    static final int SPARE = 2;

    private final KernelFS fs;
    private final Object lock = new Object();
    /**
     * Workers started and not ended; those of them waiting for a request on /dev/fuse (or about to);
     * those parked; wake-ups given to parked workers and not yet taken.
     */
    private int alive, waiting, started, parked, wakeups;
    /** /dev/fuse ended (unmounted): parked workers end at once. */
    private boolean over;

    Workers(KernelFS fs) {
        this.fs = fs;
    }

    /** Starts the first worker; throws if it cannot be started (nothing then serves the mount). */
    void start() {
        Rest.watch();
        synchronized (lock) {
            alive++;
            waiting++;
        }
        try {
            launch();
        } catch (RuntimeException | Error e) {
            gone(true);
            throw e;
        }
    }

    /** A worker took a request: if it was the last one waiting, a parked one is woken, or another starts (up to MAX). */
    void took() {
        boolean more;
        synchronized (lock) {
            waiting--;
            taken++;
            if (polling > 0) lock.notifyAll(); // a worker in awaitTaken polls again
            if (waiting == 0 && parked > 0) {
                parked--;
                waiting++;
                wakeups++;
                lock.notify();
                return;
            }
            more = waiting == 0 && alive < MAX;
            if (more) {
                alive++;
                waiting++;
            }
        }
        if (!more) return;
        try {
            launch();
        } catch (OutOfMemoryError e) {
            // no thread to be had: the workers there are serve on
            gone(true);
            fs.noteOutOfMemory();
        }
    }

    /** How long a parked worker waits to be woken before it ends. */
    static final int IDLE_MS = Integer.getInteger("strata.workerIdleMillis", 2000);

    /**
     * A worker finished a request: true if it goes back to wait on /dev/fuse, false if it parks
     * ({@link #SPARE} others wait there already; then {@link #park}).
     */
    boolean finished() {
        synchronized (lock) {
            if (waiting >= SPARE) {
                parked++;
                return false;
            }
            waiting++;
            return true;
        }
    }

    /**
     * Waiting workers that wait in poll(2) rather than read(2) until they gave back the pages a large
     * request left in their buffers (Worker#serveNext); whether one of them is about to read a request
     * that came; requests taken so far (each wakes those that wait for the next in {@link #awaitTaken}).
     */
    private int polling;
    private boolean claimed;
    private long taken;

    /** A waiting worker begins (1) or ends (-1) waiting in poll(2). */
    void polling(int d) {
        synchronized (lock) {
            polling += d;
        }
    }

    /**
     * A request came while a worker waits in poll(2): true if it reads it, false if a worker waiting in
     * read(2) takes it or another in poll(2) reads it ({@link #awaitTaken}, then poll again).
     */
    boolean claim() {
        synchronized (lock) {
            if (claimed || waiting > polling) return false;
            claimed = true;
            return true;
        }
    }

    /** The worker that claimed a request is back from read(2). */
    void unclaim() {
        synchronized (lock) {
            claimed = false;
        }
    }

    /** Waits until a request is taken (a few ms at most: then poll(2) tells again). */
    void awaitTaken() {
        synchronized (lock) {
            long seen = taken, end = System.nanoTime() + 5_000_000L;
            while (taken == seen) {
                long left = end - System.nanoTime();
                if (left <= 0) return;
                try {
                    lock.wait(left / 1_000_000L, (int) (left % 1_000_000L));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }
    }

    /** A parked worker waits to be woken: true if it was (it then waits on /dev/fuse), false if it ends now. */
    boolean park() {
        synchronized (lock) {
            long end = System.nanoTime() + IDLE_MS * 1_000_000L;
            boolean interrupted = false;
            while (wakeups == 0) {
                long left = (end - System.nanoTime()) / 1_000_000L;
                if (over || interrupted || left <= 0) {
                    parked--;
                    alive--;
                    lock.notifyAll();
                    return false;
                }
                try {
                    lock.wait(left);
                } catch (InterruptedException e) {
                    interrupted = true;
                    Thread.currentThread().interrupt();
                }
            }
            wakeups--;
            return true;
        }
    }

    /** A worker ends while waiting (unmounted, or /dev/fuse failed). */
    void ended() {
        synchronized (lock) {
            over = true; // /dev/fuse is done: parked workers end too
        }
        gone(true);
    }

    /** Returns once every worker has ended (the file system was unmounted). */
    void awaitEnd() throws InterruptedException {
        synchronized (lock) {
            while (alive > 0) lock.wait();
        }
    }

    /** How many workers are running now (tests). */
    int alive() {
        synchronized (lock) {
            return alive;
        }
    }

    private void gone(boolean wasWaiting) {
        synchronized (lock) {
            alive--;
            if (wasWaiting) waiting--;
            lock.notifyAll();
        }
    }

    private void launch() {
        int n;
        synchronized (lock) {
            n = started++;
        }
        Worker w = new Worker(fs, this);
        try {
            dev.strata.daemon.Threads.WORKERS.run(w::runAndRelease, "strata-fuse-" + n);
        } catch (RuntimeException | Error e) {
            w.release();
            throw e;
        }
    }
}
