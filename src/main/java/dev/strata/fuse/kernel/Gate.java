package dev.strata.fuse.kernel;

import java.nio.file.Path;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Holds one mount's requests while it is paused (strata image commit --pause on a mount served by the
 * shared daemon, where SIGSTOP would stop every mount of the process). {@link #hold} waits until no
 * request of the mount is being served and keeps new ones waiting (their callers block, as with a
 * stopped daemon) until {@link #release}; requests that change nothing on disk (FORGET, INTERRUPT) pass.
 * The mounts of this process are found by mountpoint ({@link #of}).
 */
public final class Gate {
    private static final ConcurrentHashMap<String, Gate> MOUNTS = new ConcurrentHashMap<>();

    /** Requests being served (or about to be), and pauses holding the mount: no lock on a request's way. */
    private final AtomicInteger serving = new AtomicInteger(), holders = new AtomicInteger();

    Gate() {}

    static String key(Path mountpoint) { return mountpoint.toAbsolutePath().normalize().toString(); }

    static Gate register(Path mountpoint) {
        Gate g = new Gate();
        MOUNTS.put(key(mountpoint), g);
        return g;
    }

    static void unregister(Path mountpoint, Gate g) {
        MOUNTS.remove(key(mountpoint), g);
    }

    /** The gate of the mount this process serves at {@code mountpoint}, or null. */
    public static Gate of(Path mountpoint) { return MOUNTS.get(key(mountpoint)); }

    /** A worker is about to serve a request: waits while the mount is held. */
    void enter() {
        while (true) {
            serving.incrementAndGet();
            if (holders.get() == 0) return; // the common case: one atomic increment
            leave();
            boolean interrupted = false;
            synchronized (this) {
                while (holders.get() > 0) {
                    try {
                        wait();
                    } catch (InterruptedException e) {
                        interrupted = true;
                    }
                }
            }
            if (interrupted) Thread.currentThread().interrupt();
        }
    }

    /** The request {@link #enter} let in was answered. */
    void leave() {
        if (serving.decrementAndGet() == 0 && holders.get() > 0) {
            synchronized (this) {
                notifyAll();
            }
        }
    }

    /**
     * Holds the mount: from now on requests wait; returns true once none is being served (the upper is
     * as whole operations left it), false (and holds nothing) if requests still ran after {@code millis}.
     */
    public boolean hold(long millis) throws InterruptedException {
        holders.incrementAndGet();
        long end = System.nanoTime() + millis * 1_000_000L;
        try {
            synchronized (this) {
                while (serving.get() > 0) {
                    long left = (end - System.nanoTime()) / 1_000_000L;
                    if (left <= 0) {
                        release();
                        return false;
                    }
                    wait(left);
                }
            }
            return true;
        } catch (InterruptedException e) {
            release();
            throw e;
        }
    }

    /** Ends one {@link #hold}: the waiting requests are served. */
    public void release() {
        holders.decrementAndGet();
        synchronized (this) {
            notifyAll();
        }
    }
}
