package dev.strata.fuse.kernel;

import dev.strata.posix.Posix;
import jnr.ffi.Pointer;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * A worker's request and reply buffers (max_write and a header each), one anonymous mapping of their
 * own: resident only where requests and replies have reached, given back when the worker ends
 * ({@link #release}) and, past the first {@link #KEEP} bytes of each, after large requests: the request
 * buffer's by the worker itself, {@link Worker#DROP_AFTER_MS} after its last request, while it is not in
 * read(2), the only time the kernel writes there (Worker#serveNext); the reply buffer's at the
 * daemon's rest ({@link #dropReplyTail}, from Rest), since the worker may wait in read(2) for as long
 * as the mount rests. Marked MADV_DONTFORK: no child needs them, and /proc/PID/smaps tells them apart
 * by that flag ({@code dc}: bench/jvm-memory.py, the native SharedDaemonTest). Issue 14.
 */
final class Buffers {
    /** What the buffers keep resident at rest: requests and replies up to this size (names, listings). */
    static final int KEEP = 32 * 1024;
    private static final int SIZE = KernelFS.IN_BUF + KernelFS.OUT_BUF;

    private final Pointer all;
    final Pointer in, out;
    /** The largest request read since the request buffer was last trimmed (the worker's own). */
    private long inMax;
    /** The largest reply sent since the reply buffer was last trimmed (written under {@link #outUse}). */
    private int outMax;
    /**
     * Who uses the reply buffer: 0 nobody (the worker waits for a request), 1 the worker (from the
     * request read until its reply is sent), 2 the daemon's rest, or the worker gone. The kernel only
     * reads the reply buffer, in the worker's write(2): its pages are the process's alone.
     */
    private final AtomicInteger outUse = new AtomicInteger();

    Buffers() {
        Pointer p = Posix.map(SIZE);
        if (p == null) throw new OutOfMemoryError("no memory for a FUSE worker's buffers");
        Posix.madvise(p.address(), SIZE, 10 /* MADV_DONTFORK */);
        all = p;
        in = p.slice(0, KernelFS.IN_BUF);
        out = p.slice(KernelFS.IN_BUF, KernelFS.OUT_BUF);
        Rest.BUFFERS.add(this);
    }

    /** A request of n bytes was read. */
    void received(long n) {
        if (n > inMax) inMax = n;
    }

    /** Whether a request reached past {@link #KEEP} of the request buffer since it was last trimmed. */
    boolean requestTail() {
        return inMax > KEEP;
    }

    /** The worker gives back the request buffer's pages past {@link #KEEP} (never while in read(2)). */
    void dropRequestTail() {
        Posix.dropPages(in, KEEP, KernelFS.IN_BUF - KEEP);
        inMax = 0;
    }

    /** The worker serves a request (waits the microseconds a rest pass may be dropping the reply pages). */
    void serving() {
        while (!outUse.compareAndSet(0, 1)) Thread.onSpinWait();
    }

    /** A reply of len bytes is sent (while {@link #serving}). */
    void replied(int len) {
        if (len > outMax) outMax = len;
    }

    /** The worker served its request. */
    void served() {
        outUse.set(0);
    }

    /** At rest (another thread): the reply buffer's pages past {@link #KEEP} go back, unless the worker serves now. */
    void dropReplyTail() {
        if (outMax <= KEEP || !outUse.compareAndSet(0, 2)) return;
        try {
            if (outMax > KEEP) Posix.dropPages(out, KEEP, KernelFS.OUT_BUF - KEEP);
            outMax = 0;
        } finally {
            outUse.set(0);
        }
    }

    /**
     * The worker, waiting alone on a quiet mount, gives back both buffers' pages but the first of each
     * (KernelFS#trimWorkers): not in read(2) (it serves the wake-up that asked for it), and the reply
     * buffer its own while it serves. The next requests map back what they reach.
     */
    void trim() {
        Posix.dropPages(in, PAGE, KernelFS.IN_BUF - PAGE);
        Posix.dropPages(out, PAGE, KernelFS.OUT_BUF - PAGE);
        inMax = 0;
        outMax = 0;
    }

    private static final int PAGE = Posix.PAGE;

    /** Unmaps the buffers (the worker is done with them). */
    void release() {
        Rest.BUFFERS.remove(this);
        while (!outUse.compareAndSet(0, 2)) Thread.onSpinWait(); // not while a rest pass drops pages
        Posix.unmap(all, SIZE);
    }
}
