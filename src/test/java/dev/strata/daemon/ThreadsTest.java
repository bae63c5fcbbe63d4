package dev.strata.daemon;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/** Threads kept across mounts: reused with the new task's name and mount log, bounded in number and time. */
class ThreadsTest {
    private static void awaitIdle(Threads pool, int n) throws InterruptedException {
        long end = System.nanoTime() + 5_000_000_000L;
        while (pool.idle() != n) {
            assertTrue(System.nanoTime() < end, "idle threads: " + pool.idle() + ", expected " + n);
            Thread.sleep(5);
        }
    }

    @Test void aThreadWhoseTaskEndedRunsTheNextWithItsNameAndTheCallersLog() throws Exception {
        Threads pool = new Threads(256 * 1024, 2, 10_000);
        BlockingQueue<Object[]> seen = new ArrayBlockingQueue<>(4);
        Runnable task = () -> {
            boolean interrupted = Thread.currentThread().isInterrupted();
            Thread.currentThread().interrupt(); // left set: the next task must not see it
            seen.add(new Object[]{Thread.currentThread(), Thread.currentThread().getName(), RoutedErr.mountLog(), interrupted});
        };
        PrintStream log = new PrintStream(new ByteArrayOutputStream());
        RoutedErr.logTo(log);
        try {
            pool.run(task, "first");
        } finally {
            RoutedErr.logTo(null);
        }
        Object[] a = seen.poll(5, TimeUnit.SECONDS);
        assertNotNull(a);
        assertEquals("first", a[1]);
        assertSame(log, a[2], "a new thread inherits the mount log");
        awaitIdle(pool, 1);
        pool.run(task, "second");
        Object[] b = seen.poll(5, TimeUnit.SECONDS);
        assertNotNull(b);
        assertSame(a[0], b[0], "the thread is reused");
        assertEquals("second", b[1]);
        assertNull(b[2], "the reused thread takes the caller's log (none), not its first task's");
        assertEquals(false, b[3], "an interrupt of the task before is cleared");
        awaitIdle(pool, 1);
    }

    @Test void atMostKeepThreadsWaitAndOnlyForKeepMs() throws Exception {
        Threads pool = new Threads(256 * 1024, 2, 1_000);
        CountDownLatch go = new CountDownLatch(1), done = new CountDownLatch(3);
        Thread[] threads = new Thread[3];
        for (int i = 0; i < 3; i++) {
            int n = i;
            pool.run(() -> {
                threads[n] = Thread.currentThread();
                try {
                    go.await();
                } catch (InterruptedException e) {
                    throw new AssertionError(e);
                }
                done.countDown();
            }, "t" + i);
        }
        go.countDown();
        assertTrue(done.await(5, TimeUnit.SECONDS));
        awaitIdle(pool, 2);
        long ended = 0;
        for (Thread t : threads) {
            t.join(5_000);
            if (!t.isAlive()) ended++;
        }
        assertEquals(3, ended, "each ends: one at once, two after 1 s without a task");
        assertEquals(0, pool.idle());
    }
    /** What a task reached (a worker's: its mount's engine) is not held by the thread kept after it. */
    @Test void aKeptThreadHoldsNothingOfTheTaskItRanFirst() throws Exception {
        Threads pool = new Threads(256 * 1024, 1, 30_000);
        java.lang.ref.WeakReference<Object> reached = runWith(pool, new byte[1 << 20]);
        awaitIdle(pool, 1);
        long end = System.nanoTime() + 5_000_000_000L;
        while (reached.get() != null && System.nanoTime() < end) {
            System.gc();
            Thread.sleep(20);
        }
        assertTrue(reached.get() == null, "the task's object is still reachable from the waiting thread");
        assertEquals(1, pool.idle());
    }

    private static java.lang.ref.WeakReference<Object> runWith(Threads pool, Object held) throws InterruptedException {
        CountDownLatch ran = new CountDownLatch(1);
        pool.run(() -> {
            if (held.hashCode() != 0) ran.countDown(); // the task reaches held
            else ran.countDown();
        }, "first");
        assertTrue(ran.await(5, TimeUnit.SECONDS));
        return new java.lang.ref.WeakReference<>(held);
    }
}
