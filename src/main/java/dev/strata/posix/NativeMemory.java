package dev.strata.posix;

import com.kenai.jffi.MemoryIO;
import jnr.ffi.Pointer;
import jnr.ffi.provider.DelegatingMemoryIO;

import java.lang.ref.PhantomReference;
import java.lang.ref.ReferenceQueue;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Native memory for system call arguments and buffers: malloc'ed (zeroed) through jffi, wrapped as
 * the same kind of jnr-ffi pointer {@code jnr.ffi.Memory.allocateDirect} returns, and freed once it is
 * unreachable: by the next allocation on any thread, or by the daemon's rest pass ({@link #release},
 * before malloc_trim), never by a thread of its own.
 *
 * <p>{@code Memory.allocateDirect} frees through jnr-ffi's {@code NativeFinalizer}, whose reference
 * queue (a copy of Guava's) starts a thread of its own and sets up java.util.logging and a class
 * loader for it: about 100 more classes and a thread in every process, the mount daemon's included
 * (issue 14: what a daemon at rest holds). A cleaner thread (java.lang.ref.Cleaner) would free after
 * every collection, the rest pass's included, after that pass had given the pages back.
 *
 * <p>The memory lives as long as the pointer or anything made from it (a slice refers to the
 * pointer, which refers to the memory object the reference is kept on). Where a fresh pointer's
 * last use is a native call, the caller keeps it reachable across the call
 * ({@code Reference.reachabilityFence}), as the collector may otherwise take it during the call.
 */
public final class NativeMemory {
    private static final MemoryIO IO = MemoryIO.getInstance();
    private static final ReferenceQueue<Object> QUEUE = new ReferenceQueue<>();
    /** The references themselves, reachable until their memory is freed. */
    private static final Set<Allocation> LIVE = ConcurrentHashMap.newKeySet();

    private NativeMemory() {}

    private static final class Allocation extends PhantomReference<Object> {
        final long address;
        Allocation(Object holder, long address) {
            super(holder, QUEUE);
            this.address = address;
        }
    }

    /** {@code size} bytes of zeroed native memory, freed after the returned pointer became unreachable. */
    public static Pointer allocate(int size) {
        release();
        long address = IO.allocateMemory(Math.max(size, 1), true);
        if (address == 0) throw new OutOfMemoryError("malloc of " + size + " bytes failed");
        Pointer p = Pointer.wrap(Posix.RT, address, size);
        // the memory object inside p (jnr-ffi's BoundedMemoryIO delegates to it): p and every slice of p
        // refer to it
        Object holder = p instanceof DelegatingMemoryIO d ? d.getDelegatedMemoryIO() : p;
        LIVE.add(new Allocation(holder, address));
        return p;
    }

    /** Frees the memory of the pointers the collector found unreachable so far. */
    public static void release() {
        Allocation a;
        while ((a = (Allocation) QUEUE.poll()) != null) {
            if (LIVE.remove(a)) IO.freeMemory(a.address);
        }
    }

    /** Whether the memory at {@code address} is allocated here and not freed yet (tests). */
    static boolean isLive(long address) {
        for (Allocation a : LIVE) if (a.address == address) return true;
        return false;
    }
}
