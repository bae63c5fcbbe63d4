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
 * frees and touches a while after the work). The Java heap is collected at the first pass only
 * after a mount ended ({@link #mountEnded}): otherwise what it holds is live (the engines' nodes
 * for what the kernel holds), and a collection would free nothing resident. {@code
 * -Dstrata.trimMillis=0}: no watcher; {@code -Dstrata.dropClean=false}: malloc_trim only; {@code
 * -Dstrata.restGc=false}: no collection after an unmount.
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
                } while (active);
                WarmUp.startIfPending();
                collectIfUnmounted();
                settle();
                for (long later : LATER_MS) {
                    Thread.sleep(later);
                    if (active) break;
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
     * what is live and -XX:MaxHeapFreeRatio, at once (-XX:-ShrinkHeapInSteps: libexec/strata-jvm).
     */
    static void mountEnded() {
        mountEnded = true;
        request();
    }

    private static void collectIfUnmounted() {
        if (!mountEnded || !GC_AFTER_UNMOUNT) return;
        mountEnded = false;
        System.gc();
    }

    /** The buffers of every mount's live workers (their reply buffers' pages are given back at rest). */
    static final java.util.Set<Buffers> BUFFERS = java.util.concurrent.ConcurrentHashMap.newKeySet();

    private static void settle() {
        for (Buffers b : BUFFERS) b.dropReplyTail();
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
