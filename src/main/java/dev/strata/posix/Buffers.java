package dev.strata.posix;

import jnr.ffi.Pointer;

/** Per-thread native scratch buffers, so hot paths allocate nothing. */
public final class Buffers {
    private Buffers() {}
    private static final ThreadLocal<Pointer[]> BUF = ThreadLocal.withInitial(() -> new Pointer[1]);

    /** A thread-local native buffer of at least {@code size} bytes; valid until the next call on this thread. */
    public static Pointer get(int size) {
        Pointer[] slot = BUF.get();
        Pointer p = slot[0];
        if (p == null || p.size() < size) {
            p = NativeMemory.allocate(Math.max(size, 65536));
            slot[0] = p;
        }
        return p;
    }
}
