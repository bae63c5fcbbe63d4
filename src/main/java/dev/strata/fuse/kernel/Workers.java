package dev.strata.fuse.kernel;

import dev.strata.posix.ServingThread;

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
 * that the caller's next request finds it counted as waiting. A mount between requests holds two threads (the
 * one that took its first request, INIT, and the one started then), instead of {@link #MAX} (the
 * shared daemon serves every mount of a user: issue 14), and once quiet a while one ({@link #shed}).
 */
final class Workers {
    static final int MAX = Math.max(1, Integer.getInteger("strata.workers", 4));
    /** Waiting workers beyond which one that finished a request ends. */
    static final int SPARE = 2;

    private final KernelFS fs;
    /**
     * Guards the counts below. Who waits, waits on a condition of its own: a worker parked ({@link
     * #woken}), one in poll(2) between two requests ({@link #taken}), the mount's request thread until
     * the unmount ({@link #allEnded}). On one monitor a notify() for a parked worker went to whichever
     * thread had waited longest, which was the request thread waiting since the mount: it woke, saw
     * workers alive and waited again, and the worker counted as woken (waiting) stayed parked until its
     * wait timed out, while no thread read the next request (issue 14).
     */
    private final java.util.concurrent.locks.ReentrantLock lock = new java.util.concurrent.locks.ReentrantLock();
    private final java.util.concurrent.locks.Condition woken = lock.newCondition(), taken = lock.newCondition(),
            allEnded = lock.newCondition();
    /**
     * Workers started and not ended; those of them waiting for a request on /dev/fuse (or about to);
     * those parked; wake-ups given to parked workers and not yet taken.
     */
    private int alive, waiting, started, parked, wakeups;
    /** /dev/fuse ended (unmounted): parked workers end at once. */
    private boolean over;

    /** Starts a worker's thread instead of {@link #launch}'s own (tests: the pool's rules alone). */
    private final Runnable starter;

    Workers(KernelFS fs) {
        this(fs, null);
    }

    Workers(KernelFS fs, Runnable starter) {
        this.fs = fs;
        this.starter = starter;
    }

    /**
     * Serves the mount on the calling thread, as its lasting worker, until the file system ends; then
     * waits for its other workers to end. The thread a mount is served from (the shared daemon's
     * request thread, or a mount process's own) used to wait idle for the mount's whole life beside
     * the workers: with the workers' second, one of three threads a quiet mount held (issue 14).
     * Only a {@link ServingThread} serves so (the shared daemon's request threads): another (the main
     * thread of the daemon's first mount or of a mount process of its own) keeps the worker's state in
     * ThreadLocals, slower on the hot paths (the root benchmark's tar, `ls -lR` and `rm -rf` 5-8%
     * slower when the main thread served them), and starts the first worker on a thread of its own
     * as before. Throws if the worker cannot be made (nothing then serves the mount).
     */
    void serveHere() throws InterruptedException {
        if (!(Thread.currentThread() instanceof ServingThread)) {
            start();
            // waits for the mount's life: the pages the start-up's calls left on this (main) thread's
            // stack below here go back (60-70 kB; dev.strata.posix.StackTrim)
            new dev.strata.posix.StackTrim().trim();
            awaitEnd();
            return;
        }
        if (starter == null) Rest.watch();
        int n;
        lock.lock();
        try {
            alive++;
            waiting++;
            n = started++;
        } finally {
            lock.unlock();
        }
        Worker w;
        try {
            w = new Worker(fs, this, true);
        } catch (RuntimeException | Error e) {
            gone(true);
            throw e;
        }
        Thread t = Thread.currentThread();
        String name = t.getName();
        t.setName("strata-fuse-" + n);
        try {
            w.runAndRelease();
        } finally {
            t.setName(name);
        }
        awaitEnd();
    }

    /** Starts the first worker; throws if it cannot be started (nothing then serves the mount). */
    void start() {
        if (starter == null) Rest.watch();
        lock.lock();
        try {
            alive++;
            waiting++;
        } finally {
            lock.unlock();
        }
        try {
            launch();
        } catch (RuntimeException | Error e) {
            gone(true);
            throw e;
        }
    }

    /**
     * A worker took a request: if it was the last one waiting, a parked one is woken, or another starts
     * (up to MAX); not while a worker serves a quick request ({@code quick}: RELEASE, FORGET), which is
     * back on /dev/fuse in moments. A file's RELEASE comes as the caller goes on (close(2) does not wait
     * for it) and meets the next file's LOOKUP or OPEN: each such pair took the last waiting worker, so
     * each woke a parked one, which then parked again at its next finish (a park and a wake-up per file
     * of a copy-up or untar loop: an open/close loop's OPEN 52 -> ~40 us, issue 14).
     */
    void took(boolean quick) {
        boolean more;
        lock.lock();
        try {
            waiting--;
            takenCount++;
            if (polling > 0) taken.signalAll(); // a worker in awaitTaken polls again
            if (quick) quickServing++;
            if (waiting == 0 && quickServing > 0) return; // this one or another is back in moments
            if (waiting == 0 && parked > 0) {
                parked--;
                waiting++;
                wakeups++;
                woken.signal();
                return;
            }
            more = waiting == 0 && alive < MAX;
            if (more) {
                alive++;
                waiting++;
            }
        } finally {
            lock.unlock();
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

    /**
     * Waiting workers asked to go by {@link #shed} and not gone yet: the next that finishes a request
     * while another waits parks, and ends at once unless woken before it parks ({@link #endNow}).
     */
    private int shedding, endNow;

    /**
     * The mount went quiet ({@link Rest#dropIdle}): of the workers waiting on /dev/fuse, all but one are
     * to go. A mount at rest held {@link #SPARE} threads waiting there for as long as it rested, with
     * their buffers, stacks and the JVM's share of a thread: 2.6 MB of the shared daemon's Pss with ten
     * quiet containers (bench/rootless/tenmem.py: 29.9 -> 27.3 MB with one waiting worker a mount), and
     * one waiting worker is enough for a mount's next request (taking it starts or wakes a second, as
     * always). A worker waits in read(2), so each to go must be woken: returns how many wake-ups the
     * caller is to send (KernelFS#shedWorkers: a request of the kernel's that needs no reply), 0 if one
     * worker waits or fewer.
     */
    int shed() {
        lock.lock();
        try {
            int n = waiting - 1 - shedding;
            if (over || n <= 0) return 0;
            shedding += n;
            passedOn = 0;
            return n;
        } finally {
            lock.unlock();
        }
    }

    /** Wake-ups the lasting worker passed on since the last {@link #shed} (see {@link #passOn}). */
    private int passedOn;
    /**
     * At most this many: the lasting worker may take a wake-up it passed on itself (it reads again
     * before the worker the kernel woke for it), and the ping-pong must end.
     */
    static final int PASS_ON_MAX = 4;

    /**
     * The lasting worker, which never goes, took a wake-up meant for a worker to go: it sends another
     * ({@link KernelFS#wakeForShed}) and keeps out of read(2) until a worker took it (a few ms at most),
     * or, running already, it would take it again itself before the worker the kernel woke for it.
     */
    void passOn(KernelFS fs) {
        if (!passOn()) return;
        polling(1); // not in read(2): as a worker in poll(2) (see claim), and woken when a request is taken
        try {
            fs.wakeForShed(this);
            awaitTaken();
        } finally {
            polling(-1);
        }
    }

    /**
     * Whether the lasting worker is to pass on the wake-up it took (see {@link #passOn(KernelFS)}): false
     * if no worker is being shed, or after {@link #PASS_ON_MAX} passes (then the shed is given up).
     */
    boolean passOn() {
        lock.lock();
        try {
            if (shedding <= 0 || over) return false;
            if (passedOn++ < PASS_ON_MAX) return true;
            shedding--;
            return false;
        } finally {
            lock.unlock();
        }
    }

    /**
     * Whether one worker serves the mount and waits on /dev/fuse, and none is being shed, parked or
     * polling: a wake-up sent now reaches that one (KernelFS#trimWorkers).
     */
    boolean alone() {
        lock.lock();
        try {
            return !over && alive == 1 && waiting == 1 && parked == 0 && shedding == 0 && polling == 0;
        } finally {
            lock.unlock();
        }
    }

    /** {@code n} of the wake-ups {@link #shed} asked for could not be sent: as many workers stay. */
    void unshed(int n) {
        lock.lock();
        try {
            shedding = Math.max(0, shedding - n);
        } finally {
            lock.unlock();
        }
    }

    /** How long a parked worker waits to be woken before it ends. */
    static final int IDLE_MS = Integer.getInteger("strata.workerIdleMillis", 2000);

    /** Workers serving a quick request (see {@link #took}). */
    private int quickServing;

    /**
     * A worker finished a request (a quick one: {@link #took}): true if it goes back to wait on
     * /dev/fuse, false if it parks ({@link #SPARE} others wait there already; then {@link #park}).
     */
    boolean finished(boolean quick) {
        return finished(quick, false);
    }

    /** The same for the mount's lasting worker ({@code lasting}: {@link #serveHere}), which always waits again. */
    boolean finished(boolean quick, boolean lasting) {
        lock.lock();
        try {
            if (quick) quickServing--;
            if (lasting) {
                waiting++;
                return true;
            }
            if (waiting >= SPARE || shedding > 0 && waiting >= 1) {
                if (waiting < SPARE) {
                    shedding--;
                    endNow++;
                }
                parked++;
                return false;
            }
            waiting++;
            return true;
        } finally {
            lock.unlock();
        }
    }

    /**
     * Waiting workers that wait in poll(2) rather than read(2) until they gave back the pages a large
     * request left in their buffers (Worker#serveNext); whether one of them is about to read a request
     * that came; requests taken so far (each wakes those that wait for the next in {@link #awaitTaken}).
     */
    private int polling;
    private boolean claimed;
    private long takenCount;

    /** A waiting worker begins (1) or ends (-1) waiting in poll(2). */
    void polling(int d) {
        lock.lock();
        try {
            polling += d;
        } finally {
            lock.unlock();
        }
    }

    /**
     * A request came while a worker waits in poll(2): true if it reads it, false if a worker waiting in
     * read(2) takes it or another in poll(2) reads it ({@link #awaitTaken}, then poll again).
     */
    boolean claim() {
        lock.lock();
        try {
            if (claimed || waiting > polling) return false;
            claimed = true;
            return true;
        } finally {
            lock.unlock();
        }
    }

    /** The worker that claimed a request is back from read(2). */
    void unclaim() {
        lock.lock();
        try {
            claimed = false;
        } finally {
            lock.unlock();
        }
    }

    /** Waits until a request is taken (a few ms at most: then poll(2) tells again). */
    void awaitTaken() {
        lock.lock();
        try {
            long seen = takenCount, end = System.nanoTime() + 5_000_000L;
            while (takenCount == seen) {
                long left = end - System.nanoTime();
                if (left <= 0) return;
                try {
                    taken.awaitNanos(left);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        } finally {
            lock.unlock();
        }
    }

    /** A parked worker waits to be woken: true if it was (it then waits on /dev/fuse), false if it ends now. */
    boolean park() {
        lock.lock();
        try {
            long end = System.nanoTime() + IDLE_MS * 1_000_000L;
            boolean interrupted = false, shed = false;
            if (endNow > 0) {
                endNow--;
                shed = wakeups == 0; // not kept for IDLE_MS: its mount was quiet long enough
            }
            while (wakeups == 0) {
                long left = (end - System.nanoTime()) / 1_000_000L;
                if (shed || over || interrupted || left <= 0) {
                    parked--;
                    alive--;
                    if (alive == 0) allEnded.signalAll();
                    return false;
                }
                try {
                    woken.await(left, java.util.concurrent.TimeUnit.MILLISECONDS);
                } catch (InterruptedException e) {
                    interrupted = true;
                    Thread.currentThread().interrupt();
                }
            }
            wakeups--;
            return true;
        } finally {
            lock.unlock();
        }
    }

    /** A worker ends while waiting (unmounted, or /dev/fuse failed). */
    void ended() {
        lock.lock();
        try {
            over = true; // /dev/fuse is done: parked workers end too
        } finally {
            lock.unlock();
        }
        gone(true);
    }

    /** Returns once every worker has ended (the file system was unmounted). */
    void awaitEnd() throws InterruptedException {
        lock.lock();
        try {
            while (alive > 0) allEnded.await();
        } finally {
            lock.unlock();
        }
    }

    /** How many workers are running now (tests). */
    int alive() {
        lock.lock();
        try {
            return alive;
        } finally {
            lock.unlock();
        }
    }

    private void gone(boolean wasWaiting) {
        lock.lock();
        try {
            alive--;
            if (wasWaiting) waiting--;
            if (alive == 0) allEnded.signalAll();
            woken.signalAll(); // over: parked workers end now
        } finally {
            lock.unlock();
        }
    }

    private void launch() {
        int n;
        lock.lock();
        try {
            n = started++;
        } finally {
            lock.unlock();
        }
        if (starter != null) {
            starter.run();
            return;
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
