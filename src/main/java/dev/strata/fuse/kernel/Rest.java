package dev.strata.fuse.kernel;

import dev.strata.posix.Posix;

import java.util.concurrent.locks.LockSupport;

/**
 * What the daemon gives back once requests stop (issue 14). glibc keeps what the JVM and the call
 * stubs freed (the compiler's arenas at start-up, buffers of a busy spell) for reuse, which in a mount
 * daemon at rest is most of its native memory (measured with the shared daemon: 18 to 30 MB of malloc
 * arenas before malloc_trim, 6 to 9 MB after); and the file pages the JVM ran through (its own code,
 * the class-data archive, libc: 20 to 30 MB) count in its Rss and Pss until they are unmapped
 * ({@link CleanMappings}).
 *
 * <p>A thread waits, without waking, until a request comes; then until no request came for
 * {@link #QUIET_MS} (checked every {@code QUIET_MS}); then calls malloc_trim(0) and drops the clean
 * file mappings, and again after each of {@link #LATER_MS} while no request came (for what the JVM
 * frees and touches a while after the work). The Java heap is collected at a pass only after a
 * mount ended ({@link #mountEnded}) or after the cached engine nodes of quiet mounts were dropped
 * ({@link #dropIdle}): otherwise what it holds is live, and a collection would free nothing
 * resident. {@code -Dstrata.trimMillis=0}: no watcher; {@code -Dstrata.dropClean=false}:
 * malloc_trim only; {@code -Dstrata.restGc=false}: no collection after an unmount or a drop;
 * {@code -Dstrata.cacheIdleMillis=N}: how long a mount is quiet before its engine nodes go (default
 * {@link #IDLE_DROP_MS}; 0 or less: never).
 */
final class Rest {
    private Rest() {}

    static final long QUIET_MS = Long.getLong("strata.trimMillis", 250);
    /**
     * The passes after the first, each this long after the one before, while no request comes: the
     * JVM runs on a while after the work (its compiler; workers that end 2 s parked, their threads
     * 5 s later (daemon/Threads): a thread's end runs through the JVM's code again, and on 6.18 a
     * fault maps a whole large folio of libjvm.so), and
     * gives the compiler's arenas back to malloc only when its chunk pool is cleaned, every 5 s.
     */
    static final long[] LATER_MS = {500, 1000, 2000, 2500, 5000};
    static final boolean DROP_CLEAN = !"false".equals(System.getProperty("strata.dropClean"));

    private static volatile boolean active = true;
    /** The watcher waits for {@link #active} (a request unparks it). */
    private static volatile boolean parked;
    private static volatile Thread watcher;

    /** A request came (cheap: written only when it was not set). */
    static void request() {
        if (!active) {
            active = true;
            if (parked) LockSupport.unpark(watcher);
        }
    }

    /** Starts the watcher, once per process (none with -Dstrata.trimMillis=0). */
    static synchronized void watch() {
        if (watcher != null || QUIET_MS <= 0) return;
        // a kept thread that ends runs through the JVM's code again: the rest passes follow it as they
        // follow a request (measured: the ten containers' Pss read 7 s after their work moved between
        // 32 and 38 MB with whether such an end had come after the last pass, libjvm 1.4 -> 6.3 MB)
        dev.strata.daemon.Threads.onThreadEnd = Rest::request;
        Thread t = new Thread(null, Rest::run, "strata-rest", 64 * 1024);
        t.setDaemon(true);
        watcher = t;
        t.start();
    }

    private static void run() {
        // the first park, at once (the permit is there), so that its call is resolved before the first
        // pass: the resolution runs through the JVM's code, which the pass would have unmapped
        LockSupport.unpark(Thread.currentThread());
        LockSupport.park(Rest.class);
        try {
            while (true) {
                while (!active) {
                    parked = true;
                    if (!active) LockSupport.park(Rest.class);
                    parked = false;
                }
                do {
                    active = false;
                    Thread.sleep(QUIET_MS);
                    // busy: other mounts may have gone quiet; the collector takes their nodes in its own time
                    if (active) dropIdle();
                } while (active);
                WarmUp.startIfPending();
                dropIdle();
                awaitTrims();
                collectIfDue();
                settle();
                for (long later : LATER_MS) {
                    Thread.sleep(later);
                    if (active) break;
                    dropIdle();
                    awaitTrims();
                    collectIfDue();
                    settle();
                }
            }
        } catch (InterruptedException e) {
            // the process ends
        }
    }

    /** A mount ended since the last rest (its engine's nodes are garbage now). */
    private static volatile boolean mountEnded;
    static final boolean GC_AFTER_UNMOUNT = !"false".equals(System.getProperty("strata.restGc"));

    /**
     * A mount's file system ended: the next rest collects the Java heap once. What the mount's engine
     * held (its nodes, listings and the kernel's node table: about 400 bytes an entry the kernel held,
     * 20 MB for ten containers that each ran a find) is then garbage in the old generation, resident
     * until a full collection, which a daemon at rest would not run; the collection shrinks the heap to
     * what is live and a few percent, at once (union/HeapSizing#collectAtRest; -XX:-ShrinkHeapInSteps:
     * libexec/strata-jvm).
     */
    static void mountEnded() {
        mountEnded = true;
        request();
    }

    /** Collects the heap if a mount ended or quiet mounts' nodes were dropped since the last collection. */
    private static void collectIfDue() {
        if (!GC_AFTER_UNMOUNT || !(mountEnded || dropped >= GC_AFTER_DROPPED)) return;
        mountEnded = false;
        dropped = 0;
        dev.strata.union.HeapSizing.collectAtRest();
    }

    /** The kernel-transport mounts this process serves (for {@link #dropIdle}). */
    static final java.util.Set<KernelFS> MOUNTS = java.util.concurrent.ConcurrentHashMap.newKeySet();
    /**
     * How long a mount is quiet before its cached engine nodes go: 3 s, past the end of a burst of
     * work (a find, a build step, a container's start), so that the drop comes at the rest pass 3.75 s
     * after the last request and the passes after it give back what its collection touched.
     * The engine keeps, for every entry the kernel holds, the result of its lookup in the layers (about
     * 160 bytes an entry: union/NodeCache), so that requests for it need no lookup again; an idle
     * container's mount needs none, and ten containers that each ran a find held 7 MB of them in the
     * shared daemon (issue 14). A request after the drop looks up what it names again (a stat per
     * layer and the overlay xattrs of each path part, as the first time).
     */
    static final long IDLE_DROP_MS = Long.getLong("strata.cacheIdleMillis", 3000);
    /** Nodes dropped since the last collection; a collection is worth its pause from this many. */
    private static int dropped;
    private static final int GC_AFTER_DROPPED = 1024;

    /**
     * Drops the cached engine nodes of every mount quiet for {@link #IDLE_DROP_MS} since its last drop
     * (a mount busy with a long operation, that holds the engine's lock, is tried again at the next
     * call), and lets its waiting workers beyond one go (KernelFS#shedWorkers) and the one left give
     * back its stack's and buffers' pages (KernelFS#trimWorkers, once it waits alone); returns how many nodes
     * went. On the watcher's thread only.
     */
    static int dropIdle() {
        return dropIdle(MOUNTS);
    }

    /** The same over {@code mounts} (tests: mounts of their own, which the watcher does not see). */
    static int dropIdle(Iterable<KernelFS> mounts) {
        if (IDLE_DROP_MS <= 0) return 0;
        long now = System.nanoTime(), n = 0;
        java.util.List<KernelFS> toTrim = null;
        for (KernelFS fs : mounts) {
            long served = fs.servedAt;
            if (served == fs.dropSeen) {
                // dropped and shed at an earlier pass, where its worker was not left alone in time
                if (fs.trimSeen != served && fs.trimWorkers()) fs.trimSeen = served;
                continue;
            }
            if (now - served < IDLE_DROP_MS * 1_000_000L) continue;
            int d = fs.union.dropCachedNodes();
            if (d < 0) continue;
            fs.dropSeen = served;
            fs.shedWorkers();
            if (toTrim == null) toTrim = new java.util.ArrayList<>();
            toTrim.add(fs);
            n += d;
        }
        // the worker left trims once the others went: in this pass, whose drop of the clean mappings
        // then follows the trims, rather than at the next, seconds later (SHED_WAIT_MS at most)
        if (toTrim != null) {
            long end = System.nanoTime() + SHED_WAIT_MS * 1_000_000L;
            for (KernelFS fs : toTrim) {
                boolean done;
                while (!(done = fs.trimWorkers()) && System.nanoTime() < end) {
                    try {
                        Thread.sleep(2);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        end = 0;
                    }
                }
                if (done) fs.trimSeen = fs.dropSeen; // else the next pass asks again
            }
        }
        dropped = (int) Math.min(dropped + n, Integer.MAX_VALUE);
        return (int) Math.min(n, Integer.MAX_VALUE);
    }

    /**
     * Trims asked of workers (KernelFS#trimWorkers) and not done yet. A pass waits for them (up to
     * {@link #TRIM_WAIT_MS}) before it drops the clean mappings: a trim runs through the JVM's code and
     * the JDK's classes, whose pages it maps back (2 MB of libjvm.so in a reading 1 s after a trim
     * that came after the pass's drop, issue 14).
     */
    private static int trimsPending;
    private static final Object TRIMS = new Object();
    static final long TRIM_WAIT_MS = 200;

    static void trimSent() {
        synchronized (TRIMS) {
            trimsPending++;
        }
    }

    static void trimDone() {
        synchronized (TRIMS) {
            if (trimsPending > 0 && --trimsPending == 0) TRIMS.notifyAll();
        }
    }

    /**
     * Waits until the trims asked for are done, at most {@link #TRIM_WAIT_MS} (a mount unmounted
     * meanwhile never does its), and then {@link #AFTER_TRIM_MS} more: a worker that trimmed runs on
     * until it waits in read(2) again, and what it runs through after this pass dropped the clean
     * mappings would stay mapped until the next pass, seconds later (a tenmem reading 1 s after such a
     * pass: libjvm 3.9 MB instead of 1.5-1.9).
     */
    private static void awaitTrims() throws InterruptedException {
        synchronized (TRIMS) {
            if (trimsPending == 0) return;
            long end = System.nanoTime() + TRIM_WAIT_MS * 1_000_000L;
            while (trimsPending > 0) {
                long left = (end - System.nanoTime()) / 1_000_000L;
                if (left <= 0) {
                    trimsPending = 0;
                    break;
                }
                TRIMS.wait(left);
            }
        }
        Thread.sleep(AFTER_TRIM_MS);
    }

    static final long AFTER_TRIM_MS = 50;
    /** How long a pass waits for the workers it shed to end before it asks the one left to trim. */
    static final long SHED_WAIT_MS = 100;

    /** The rest thread's stack trimmer (made at its first pass, on that thread). */
    private static dev.strata.posix.StackTrim stackTrim;

    /** The buffers of every mount's live workers (their reply buffers' pages are given back at rest). */
    static final java.util.Set<Buffers> BUFFERS = java.util.concurrent.ConcurrentHashMap.newKeySet();

    private static void settle() {
        for (Buffers b : BUFFERS) b.dropReplyTail();
        // this thread's own stack below here: the passes' calls (the collection's, the parse of smaps)
        // left 60-70 kB of its 64 KiB resident; before the clean mappings go, for the trim runs through code
        if (stackTrim == null) stackTrim = new dev.strata.posix.StackTrim();
        stackTrim.trim();
        dev.strata.posix.NativeMemory.release(); // what the collection before found unreachable
        Posix.mallocTrim();
        if (DROP_CLEAN) {
            try {
                CleanMappings.dropClean();
            } catch (RuntimeException e) {
                // /proc unreadable or not as expected: the pages stay mapped
            }
        }
    }
}
