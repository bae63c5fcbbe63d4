package dev.strata.posix;

import jnr.ffi.Pointer;

/**
 * Gives back the pages of the calling thread's own stack below where it runs now (issue 14). A thread
 * keeps every stack page it ever touched: a FUSE worker's deepest request (a copy-up, a rename) and
 * the JVM's stack banging (each compiled method's entry writes a page 20 pages below its frame, the
 * shadow zone) leave 50-60 kB resident per worker, while the frames of a worker waiting in read(2)
 * take a few. Nothing lives below a thread's stack pointer but what the thread writes there next
 * (x86-64's red zone: 128 bytes), so the thread itself may drop those pages: they read back as zeros
 * at their next touch. Never another thread's stack: it may return from its system call and write
 * there while the pages go.
 *
 * <p>The stack pointer comes from /proc/thread-self/syscall (the read of that very file is the system
 * call it shows, with the stack pointer at its entry), the stack's lowest usable address from the
 * mapping that holds it in /proc/self/maps (a Java thread's guard pages are a mapping of their own,
 * PROT_NONE, below it: never touched). The pages from there up to {@link #MARGIN} below the stack
 * pointer go: the margin covers the calls from here into madvise(2), a few hundred bytes deep.
 * Called by threads about to wait long: a quiet mount's worker (fuse/kernel/Worker#trim), the main
 * thread of a mount (fuse/kernel/Workers#serveHere), the daemon's rest thread (fuse/kernel/Rest).
 */
public final class StackTrim {
    /**
     * Kept below the stack pointer: more than the native calls below this method's frame use (the stack
     * pointer is read one call deeper than madvise(2) is called from, in {@link #stackPointer}).
     */
    static final long MARGIN = 8 * 1024;
    private static final long PAGE = Posix.PAGE;

    /** The thread this trims the stack of (the one that made it). */
    private final Thread owner = Thread.currentThread();
    /**
     * The stack's lowest usable address: looked up at the first trim (/proc/self/maps), for a thread's
     * stack does not move; -1 if it could not be (nothing is dropped then). Looked up once, since a
     * pass over the maps (hundreds of lines) is loops enough for the JIT to compile code at rest, and
     * the compiler's code maps back megabytes of libjvm.so after the rest pass dropped them.
     */
    private long low;
    private Pointer scratch;

    /** A trimmer of the calling thread's stack: that thread alone calls {@link #trim}. */
    public StackTrim() {}

    /**
     * Drops the pages of the calling thread's stack below its stack pointer (less {@link #MARGIN}).
     * Returns the bytes of address space dropped, 0 if there was nothing to drop, or -1 if the stack
     * pointer or its mapping could not be found (/proc not mounted, an unexpected format): then nothing
     * changed.
     */
    public long trim() {
        if (Thread.currentThread() != owner) throw new IllegalStateException("a thread trims its own stack only");
        if (scratch == null) scratch = NativeMemory.allocate(256);
        long sp = stackPointer(scratch);
        if (sp <= 0) return -1;
        if (low == 0) low = mappingStart(sp);
        if (low <= 0 || Long.compareUnsigned(sp, low) < 0 || sp - low > MAX_STACK) return -1;
        long end = (sp - MARGIN) & -PAGE;
        if (end <= low) return 0;
        return Posix.madvise(low, end - low, Posix.MADV_DONTNEED) == 0 ? end - low : -1;
    }

    /** The calling thread's stack pointer at its read of /proc/thread-self/syscall, or -1. */
    static long stackPointer(Pointer buf) {
        int fd = Posix.openat(-100, "/proc/thread-self/syscall", 0 /* O_RDONLY */ | 0x80000 /* O_CLOEXEC */, 0);
        if (fd < 0) return -1;
        long n;
        try {
            n = Posix.read(fd, buf, 255);
        } finally {
            Posix.close(fd);
        }
        if (n <= 0) return -1;
        // "NR ARG1 .. ARG6 SP PC": the second to last field
        String[] f = buf.getString(0, (int) n, java.nio.charset.StandardCharsets.ISO_8859_1).trim().split(" ");
        if (f.length < 9 || !f[f.length - 2].startsWith("0x")) return -1;
        try {
            return Long.parseUnsignedLong(f[f.length - 2].substring(2), 16);
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /**
     * The start of the mapping of /proc/self/maps that holds {@code addr} if it is a thread's stack
     * above its guard pages, or -1: private, anonymous and writable, and right above a mapping with no
     * access (the guard: glibc's page, or the JVM's red, yellow and reserved zones of a Java thread), so
     * that its start is this stack's lowest usable page, not another mapping's the kernel merged with it.
     */
    static long mappingStart(long addr) {
        try (java.io.BufferedReader r = new java.io.BufferedReader(new java.io.InputStreamReader(
                new java.io.FileInputStream("/proc/self/maps"), java.nio.charset.StandardCharsets.ISO_8859_1), 16384)) {
            long prevHi = -1;
            boolean prevGuard = false;
            for (String line; (line = r.readLine()) != null; ) {
                int dash = line.indexOf('-'), sp = line.indexOf(' ');
                if (dash <= 0 || sp <= dash) return -1;
                long lo = Long.parseUnsignedLong(line, 0, dash, 16), hi = Long.parseUnsignedLong(line, dash + 1, sp, 16);
                if (Long.compareUnsigned(addr, lo) >= 0 && Long.compareUnsigned(addr, hi) < 0) {
                    boolean stack = line.startsWith("rw-p", sp + 1) && line.indexOf('/', sp) < 0;
                    return stack && prevGuard && prevHi == lo && addr - lo <= MAX_STACK ? lo : -1;
                }
                prevHi = hi;
                prevGuard = line.startsWith("---p", sp + 1);
            }
        } catch (java.io.IOException | RuntimeException e) {
            return -1;
        }
        return -1;
    }

    /** A stack deeper than this below the stack pointer is none of this process's threads' (-Xss512k at most). */
    private static final long MAX_STACK = 8L << 20;
}
