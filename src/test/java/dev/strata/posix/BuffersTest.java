package dev.strata.posix;

import jnr.ffi.Pointer;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

/** The per-thread scratch buffer gives back what a large use of it touched, and keeps its first 64 KiB. */
class BuffersTest {
    private static final int MIB = 1 << 20;

    @Test void dropsThePagesBeyondTheFirst64KiB() {
        Pointer p = Buffers.get(MIB);
        fill(p, MIB);
        Buffers.dropPages(700_000);
        assertSame(p, Buffers.get(MIB), "the same buffer");
        // whole pages past KEEP up to 700,000 read as zeros (MADV_DONTNEED); those around stay
        long firstDropped = ((p.address() + Buffers.KEEP + 4095) & -4096L) - p.address();
        long endDropped = ((p.address() + 700_000) & -4096L) - p.address();
        for (long i = 0; i < MIB; i += 512) {
            byte want = i >= firstDropped && i < endDropped ? 0 : (byte) 0x5a;
            assertEquals(want, p.getByte(i), "byte " + i);
        }
    }

    @Test void aSmallUseKeepsEverything() {
        Pointer p = Buffers.get(MIB);
        fill(p, MIB);
        Buffers.dropPages(Buffers.KEEP);
        for (long i = 0; i < MIB; i += 4096) assertEquals((byte) 0x5a, p.getByte(i), "byte " + i);
    }

    private static void fill(Pointer p, int n) {
        byte[] b = new byte[n];
        java.util.Arrays.fill(b, (byte) 0x5a);
        p.put(0, b, 0, n);
    }
}
