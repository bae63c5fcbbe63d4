package dev.strata.fuse.kernel;

/**
 * A mount's worker threads, started as requests need them (libfuse's multi-threaded loop and its rule
 * for how many): while the mount is at rest one worker waits on /dev/fuse; when a worker takes a
 * request and none is left waiting, another starts (up to {@link #MAX}); a worker that finishes a
 * request while {@link #SPARE} others already wait is surplus, and ends, giving its stack and buffers
 * back, once no request came for {@link #IDLE_MS}. Not at once: requests overlap all the time (the
 * RELEASE of one file with the LOOKUP of the next), and a worker ended at the first quiet moment was
 * started again at the next overlap, a thread with its buffers and its cached directories made and
 * dropped per copy-up (issue 14). A worker finishes a request when it sends the reply, before the
 * write (Worker.send), so that the caller's next request finds it counted as waiting. A mount
 * at rest holds two threads (the one that took its first request, INIT, and the one started then),
 * instead of {@link #MAX} (the shared daemon serves every mount of a user: issue 14).
 */
final class Workers {
    static final int MAX = Math.max(1, Integer.getInteger("strata.workers", 4));
    /** Waiting workers beyond which one that finished a request ends. */
    static final int SPARE = 2;
    /** A worker thread's stack: requests are served without deep recursion. */
    static final int STACK = 256 * 1024;

    private final KernelFS fs;
    private final Object lock = new Object();
    /** Workers started and not ended; those of them waiting for a request (or about to). */
    private int alive, waiting, started;

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

    /** A worker took a request: if it was the last one waiting, another starts (up to MAX). */
    void took() {
        boolean more;
        synchronized (lock) {
            waiting--;
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

    /** How long a surplus worker waits for a request before it ends. */
    static final int IDLE_MS = Integer.getInteger("strata.workerIdleMillis", 2000);

    /**
     * A worker finished a request and waits for the next: true if it is surplus ({@link #SPARE} others
     * wait already), and should end should no request come within {@link #IDLE_MS} ({@link #retire}).
     */
    boolean finished() {
        synchronized (lock) {
            waiting++;
            return waiting > SPARE;
        }
    }

    /** A surplus worker waited {@link #IDLE_MS} for nothing: true if it ends now (still surplus). */
    boolean retire() {
        synchronized (lock) {
            if (waiting <= SPARE) return false;
            alive--;
            waiting--;
            lock.notifyAll();
            return true;
        }
    }

    /** A worker ends while waiting (unmounted, or /dev/fuse failed). */
    void ended() {
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
            new Thread(null, w::runAndRelease, "strata-fuse-" + n, STACK).start();
        } catch (RuntimeException | Error e) {
            w.release();
            throw e;
        }
    }
}
