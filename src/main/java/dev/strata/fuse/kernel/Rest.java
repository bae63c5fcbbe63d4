package dev.strata.fuse.kernel;

import dev.strata.posix.Posix;

/**
 * Gives the C heap's free memory back to the system once requests stop: glibc keeps what the JVM
 * and the call stubs freed (the compiler's arenas at start-up, buffers of a busy spell) for reuse,
 * which in a mount daemon at rest is most of its native memory (measured with the shared daemon: 18
 * to 30 MB of malloc arenas before, 6 to 9 MB after: issue 14). Every {@link #PERIOD_MS} a thread
 * looks whether a request came: after a period with requests, the next two without any each call
 * malloc_trim(0) (the second for what the JVM frees a while after the work, such as its compiler's
 * pooled arenas). The Java heap is left alone: a collection there frees nothing resident.
 */
final class Rest {
    private Rest() {}

    static final long PERIOD_MS = Long.getLong("strata.trimMillis", 2500);

    private static volatile boolean active = true;
    private static Thread watcher;

    /** A request came (cheap: written only when it was not set). */
    static void request() {
        if (!active) active = true;
    }

    /** Starts the watcher, once per process (none with -Dstrata.trimMillis=0). */
    static synchronized void watch() {
        if (watcher != null || PERIOD_MS <= 0) return;
        watcher = new Thread(null, Rest::run, "strata-rest", 64 * 1024);
        watcher.setDaemon(true);
        watcher.start();
    }

    private static void run() {
        int due = 0;
        while (true) {
            try {
                Thread.sleep(PERIOD_MS);
            } catch (InterruptedException e) {
                return;
            }
            if (active) {
                active = false;
                due = 2;
            } else if (due > 0) {
                due--;
                Posix.mallocTrim();
            }
        }
    }
}
