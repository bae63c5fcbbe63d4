package dev.strata.posix;

import jnr.ffi.Pointer;
import org.junit.jupiter.api.Test;

import java.lang.ref.Reference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Native memory without jnr-ffi's finalizer thread: zeroed, freed once unreachable, kept while a slice is used. */
class NativeMemoryTest {
    @Test void zeroedAndOfItsSize() {
        Pointer p = NativeMemory.allocate(300);
        assertEquals(300, p.size());
        assertTrue(p.isDirect());
        for (int i = 0; i < 300; i++) assertEquals(0, p.getByte(i), "byte " + i);
        p.putLong(292, 0x1122334455667788L);
        assertEquals(0x1122334455667788L, p.getLong(292));
        assertTrue(NativeMemory.isLive(p.address()));
    }

    @Test void freedOnceUnreachable() throws InterruptedException {
        long address = dropped(64);
        assertTrue(NativeMemory.isLive(address));
        assertTrue(collectedWithin(address, 10_000), "the memory of an unreachable pointer was not freed");
    }

    @Test void aSliceWithALengthKeepsTheMemory() throws InterruptedException {
        Pointer p = NativeMemory.allocate(64);
        long address = p.address();
        Pointer s = p.slice(16, 16);
        p = null;
        assertFalse(collectedWithin(address, 1_000), "freed while a slice of it was reachable");
        s.putInt(0, 7);
        assertEquals(7, s.getInt(0));
        Reference.reachabilityFence(s);
    }

    @Test void aSliceToTheEndKeepsTheMemory() throws InterruptedException {
        Pointer p = NativeMemory.allocate(64);
        long address = p.address();
        Pointer t = p.slice(40);
        p = null;
        assertFalse(collectedWithin(address, 1_000), "freed while a slice of it was reachable");
        t.putInt(0, 9);
        assertEquals(9, t.getInt(0));
        Reference.reachabilityFence(t);
    }

    private static long dropped(int size) {
        return NativeMemory.allocate(size).address();
    }

    /** Collects and releases until the memory at address is freed, or the time is up. */
    private static boolean collectedWithin(long address, long millis) throws InterruptedException {
        long end = System.nanoTime() + millis * 1_000_000L;
        while (System.nanoTime() < end) {
            System.gc();
            Thread.sleep(20);
            NativeMemory.release();
            if (!NativeMemory.isLive(address)) return true;
        }
        return false;
    }
}
