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

    /** Bytes of the buffer whose pages {@link #dropPages} leaves resident. */
    public static final long KEEP = 65536;
    private static final long PAGE = Posix.PAGE;

    /**
     * Gives back the pages of this thread's buffer between {@link #KEEP} and {@code used} (MADV_DONTNEED:
     * they read as zeros when touched again), after a use of it that wrote that far. The buffer lives as
     * long as its thread, and a shared daemon's mount keeps its first worker for the mount's life: one
     * copy-up of a 700 KB file through it (the 1 MiB pieces of union/DataCopy) kept 700 KB of it
     * resident for good, 7 MB with ten containers that each had copied up Python's stdlib (issue 14).
     */
    public static void dropPages(long used) {
        Pointer p = BUF.get()[0];
        if (p == null || used <= KEEP) return;
        long start = (p.address() + KEEP + PAGE - 1) & -PAGE;           // whole pages inside the buffer
        long end = (p.address() + Math.min(used, p.size())) & -PAGE;
        if (end > start) Posix.dropPages(p, start - p.address(), end - start);
    }
}
