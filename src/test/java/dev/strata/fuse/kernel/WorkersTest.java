package dev.strata.fuse.kernel;

import org.junit.jupiter.api.Test;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The worker pool's rules (Workers), driven by hand: which request makes it wake a parked worker or
 * start another, and that the wake-up reaches the parked worker (issue 14). Threads started by the pool
 * are counted, not run.
 */
class WorkersTest {
    private final AtomicInteger launched = new AtomicInteger();
    private final Workers pool = new Workers(null, launched::incrementAndGet);

    /** Two workers waiting on /dev/fuse (the first, and the one its first request started). */
    private void twoWaiting() {
        pool.start();
        pool.took(false);
        assertTrue(pool.finished(false));
        assertEquals(2, launched.get());
    }

    @Test void aParkedWorkerIsWokenWhileTheMountsThreadWaitsForTheUnmount() throws Exception {
        twoWaiting();
        // the mount's request thread waits for the end from the start: it waited longest
        CompletableFuture<Void> end = CompletableFuture.runAsync(() -> {
            try {
                pool.awaitEnd();
            } catch (InterruptedException e) {
                throw new IllegalStateException(e);
            }
        });
        Thread.sleep(100);
        // two requests at once: a third worker starts; of the two that finish, the second parks
        pool.took(false);
        pool.took(false);
        assertEquals(3, launched.get());
        assertTrue(pool.finished(false));
        assertFalse(pool.finished(false));
        long t0 = System.nanoTime();
        CompletableFuture<Boolean> parked = CompletableFuture.supplyAsync(pool::park);
        Thread.sleep(100);
        // two more at once: the parked worker is woken (no thread started), and at once, not when its
        // wait times out (Workers.IDLE_MS, 2 s)
        pool.took(false);
        pool.took(false);
        assertTrue(parked.get(1, TimeUnit.SECONDS), "the parked worker was woken");
        assertTrue((System.nanoTime() - t0) / 1_000_000L < Workers.IDLE_MS / 2, "woken at once");
        assertEquals(3, launched.get());
        assertFalse(end.isDone(), "the mount's thread still waits");
        for (int i = 0; i < 3; i++) pool.ended();
        end.get(5, TimeUnit.SECONDS);
    }

    @Test void aRequestThatMeetsARelease() {
        twoWaiting();
        // a RELEASE and the next file's OPEN take both waiting workers: the RELEASE's worker is back in
        // moments, so nothing is woken or started
        pool.took(true);
        pool.took(false);
        assertEquals(2, launched.get());
        assertTrue(pool.finished(true));
        assertTrue(pool.finished(false));
        // two other requests at once: the pool grows, as before
        pool.took(false);
        pool.took(false);
        assertEquals(3, launched.get());
        // a RELEASE that takes the last waiting worker (the other two busy) does not start one either
        pool.took(true);
        assertEquals(3, launched.get());
    }

    @Test void aQuietMountShedsItsWaitingWorkersButOne() {
        twoWaiting();
        // quiet: one of the two waiting workers is to go, woken by the daemon's own request
        assertEquals(1, pool.shed());
        assertEquals(0, pool.shed(), "asked once: the wake-up is on its way");
        pool.took(true); // the NOTIFY_REPLY: a quick request, nothing started
        assertEquals(2, launched.get());
        assertFalse(pool.finished(true), "the woken worker parks");
        assertEquals(0, pool.shed(), "one waits: nothing more to shed");
        long t0 = System.nanoTime();
        assertFalse(pool.park(), "and ends");
        assertTrue((System.nanoTime() - t0) / 1_000_000L < Workers.IDLE_MS / 2, "at once, not after Workers.IDLE_MS");
        assertEquals(1, pool.alive());
        // the mount's next request takes the one waiting worker and starts another
        pool.took(false);
        assertEquals(3, launched.get());
        assertTrue(pool.finished(false));
    }

    @Test void aWakeUpThatCouldNotBeSentShedsNothing() {
        twoWaiting();
        assertEquals(1, pool.shed());
        pool.unshed(1); // the notification failed (the kernel had forgotten the file)
        pool.took(false);
        assertEquals(2, launched.get());
        assertTrue(pool.finished(false), "back to wait: nobody is being shed (with the shed pending it parks)");
    }

    @Test void aRequestThatComesBeforeTheWakeUpLeavesOneWaitingAfterAll() {
        twoWaiting();
        assertEquals(1, pool.shed());
        // a request of the mount's and the wake-up meet: both waiting workers are taken
        pool.took(false);
        pool.took(true);
        assertEquals(2, launched.get(), "the wake-up is quick: no worker started");
        assertTrue(pool.finished(true), "the first back waits: none other does");
        assertFalse(pool.finished(false), "the second parks: one waits, as shed asked");
        assertEquals(0, pool.shed());
        assertFalse(pool.park(), "and ends at once");
        assertEquals(1, pool.alive());
    }

    @Test void theLastingWorkerNeverGoesAndPassesAWakeUpOn() throws Exception {
        // the mount's own thread serves as its lasting worker (serveHere: counted as the first worker),
        // and INIT started a second
        pool.start();
        pool.took(false);
        assertTrue(pool.finished(false, true));
        assertEquals(2, launched.get());
        // quiet: one is to go; the lasting worker takes the wake-up and passes it on, a bounded number of times
        assertEquals(1, pool.shed());
        pool.took(true);
        assertTrue(pool.finished(true, true));
        for (int i = 0; i < Workers.PASS_ON_MAX; i++) assertTrue(pool.passOn(), "pass " + i);
        assertFalse(pool.passOn(), "then the shed is given up");
        assertFalse(pool.passOn());
        pool.took(false);
        assertTrue(pool.finished(false), "nobody is being shed any more");
        // a wake-up passed on and taken by the other worker: it goes
        assertEquals(1, pool.shed());
        pool.took(true);
        assertTrue(pool.finished(true, true));
        assertTrue(pool.passOn());
        pool.took(true);
        assertFalse(pool.finished(true), "the other worker parks");
        assertFalse(pool.park(), "and ends");
        assertEquals(1, pool.alive());
        assertFalse(pool.passOn(), "nothing left to shed");
        // a burst: more workers than SPARE wait after it, the lasting one among them all the same
        pool.took(false);
        pool.took(false);
        assertTrue(pool.finished(false));
        assertTrue(pool.finished(false, true), "the lasting worker never parks");
        assertEquals(2, pool.shed(), "three wait: two are to go");
    }
}
