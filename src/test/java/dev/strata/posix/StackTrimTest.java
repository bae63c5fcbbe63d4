package dev.strata.posix;

import jnr.ffi.Pointer;
import org.junit.jupiter.api.Test;

import java.io.BufferedReader;
import java.io.FileReader;
import java.io.IOException;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A thread gives back its own stack's pages below where it runs, and its frames above keep their values. */
class StackTrimTest {
    private final Pointer scratch = NativeMemory.allocate(256);
    /** The test thread's trimmer. */
    private StackTrim trimmer;

    @Test void dropsThePagesBelowAndKeepsTheFramesAbove() throws Throwable {
        AtomicReference<Throwable> failed = new AtomicReference<>();
        long[] kb = new long[3];
        Thread t = new Thread(null, () -> {
            try {
                trimmer = new StackTrim();
                long sp = StackTrim.stackPointer(scratch);
                assertTrue(sp > 0, "no stack pointer from /proc/thread-self/syscall");
                assertTrue(StackTrim.mappingStart(sp) > 0, "the stack's mapping was not found above its guard");
                assertEquals(sum(8000), deep(8000, false)); // touches a few hundred kB of stack, then returns
                kb[0] = rss(StackTrim.stackPointer(scratch));
                // trimmed from 200 frames down: the 200 frames above the trim keep their locals
                assertEquals(sum(200), deep(200, true));
                kb[1] = rss(StackTrim.stackPointer(scratch));
                assertEquals(sum(8000), deep(8000, false)); // and the stack below works as before
                kb[2] = rss(StackTrim.stackPointer(scratch));
                assertTrue(trimmer.trim() > 0, "a second trim (the stack's bounds kept from the first)");
            } catch (Throwable e) {
                failed.set(e);
            }
        }, "stack-trim-test", 4 << 20);
        t.start();
        t.join();
        if (failed.get() != null) throw failed.get();
        assertTrue(kb[0] >= 200, "the deep calls left only " + kb[0] + " kB resident");
        assertTrue(kb[1] <= kb[0] / 2, "after the trim " + kb[1] + " kB of " + kb[0] + " stayed resident");
        assertTrue(kb[2] >= 200, "the deep calls after the trim left only " + kb[2] + " kB resident");
    }

    @Test void onlyItsOwnThread() throws InterruptedException {
        StackTrim[] made = new StackTrim[1];
        Thread t = new Thread(() -> made[0] = new StackTrim());
        t.start();
        t.join();
        assertThrows(IllegalStateException.class, made[0]::trim);
    }

    @Test void refusesWhatIsNoStack() {
        Pointer p = Posix.map(1 << 20);
        try {
            // an anonymous mapping of its own, with no guard right below it (mapped after its neighbours)
            long start = StackTrim.mappingStart(p.address() + 4096);
            assertTrue(start == -1 || start <= p.address(), "a start inside the mapping: " + start);
        } finally {
            Posix.unmap(p, 1 << 20);
        }
        assertEquals(-1, StackTrim.mappingStart(0)); // nothing mapped there
    }

    private static long sum(int n) {
        long s = 0;
        for (int i = 1; i <= n; i++) s += (long) i * i ^ i;
        return s;
    }

    /** Recursion with a few locals a frame; trims at the bottom if asked; each frame checks its locals on the way back. */
    private long deep(int n, boolean trim) {
        long a = (long) n * n, b = a ^ n, c = b - a;
        if (n > 1) {
            long below = deep(n - 1, trim);
            assertEquals((long) n * n, a);
            assertEquals(a ^ n, b);
            assertEquals(b - a, c);
            return below + b;
        }
        if (trim) assertTrue(trimmer.trim() > 0, "nothing trimmed");
        return b;
    }

    private static final java.util.regex.Pattern HEADER = java.util.regex.Pattern.compile("([0-9a-f]+)-([0-9a-f]+) ");

    /** The Rss (kB) of the mapping of /proc/self/smaps that holds {@code addr}. */
    private static long rss(long addr) throws IOException {
        try (BufferedReader r = new BufferedReader(new FileReader("/proc/self/smaps"))) {
            boolean in = false;
            for (String line; (line = r.readLine()) != null; ) {
                java.util.regex.Matcher m = HEADER.matcher(line);
                if (m.lookingAt()) {
                    long lo = Long.parseUnsignedLong(m.group(1), 16), hi = Long.parseUnsignedLong(m.group(2), 16);
                    in = addr >= lo && addr < hi;
                } else if (in && line.startsWith("Rss:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", ""));
                }
            }
        }
        return -1;
    }
}
