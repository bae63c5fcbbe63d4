package dev.strata.posix;

import jnr.ffi.Pointer;

/**
 * A thread that serves a mount's requests (the kernel transport's workers). It keeps the per-thread
 * state of the hottest paths in fields, where other threads keep it in ThreadLocals: on JDK 17 a
 * ThreadLocal.get compiled by C1 (the daemon's only compiler) makes a native call (Reference.refersTo)
 * each time, and a READDIRPLUS entry took several (perf, issue 14).
 */
public class ServingThread extends Thread {
    /** {@link Posix#nativeName}'s buffers. */
    Pointer[] names;
    /** dev.strata.layer.At's cache of open directories (typed there). */
    public Object atCache;

    public ServingThread(Runnable body, String name, long stackSize) {
        super(null, body, name, stackSize);
    }
}
