package dev.strata.fuse.kernel;

import dev.strata.posix.NativeMemory;
import dev.strata.fuse.Log;
import dev.strata.fuse.kernel.Inodes.KNode;
import dev.strata.options.MountOptions;
import dev.strata.posix.Posix;
import dev.strata.union.Union;

import java.util.ArrayList;
import java.util.concurrent.ConcurrentHashMap;

import static dev.strata.fuse.kernel.Proto.*;
import static dev.strata.posix.Errno.*;

/**
 * Serves the kernel's FUSE requests from /dev/fuse with a {@link Union}: each request is decoded from
 * the worker's native buffer, turned into one engine call on the node's mount path, and answered from
 * a second native buffer. File data goes straight between those buffers and pread/pwrite, or for
 * large reads from the file through a pipe to /dev/fuse ({@link SpliceReads}).
 *
 * <p>This class holds what the workers share (the engine, node ids, the open-file table, what INIT
 * negotiated); {@link Worker} reads requests, dispatches them and writes the replies, and one class
 * per request family does the work: {@link EntryOps} (names), {@link AttrOps} (attributes and the
 * set-id rules), {@link FileOps} (open files), {@link XattrOps}, {@link DirOps}, {@link IoctlOps}.
 *
 * <p>What this transport adds over libfuse 2: readdirplus, 1 MiB requests, rename flags
 * (RENAME_NOREPLACE, RENAME_EXCHANGE), and invalidation of attributes the kernel caches when one
 * request changes another node (a hard link's other names, a directory that copy-up made merged).
 */
final class KernelFS {
    static final int MAX_WRITE = 1 << 20;
    static final int MAX_PAGES = MAX_WRITE / 4096;
    /** A request buffer: the largest write plus its headers, with room to spare (setxattr values). */
    static final int IN_BUF = MAX_WRITE + 4096;
    static final int OUT_BUF = MAX_WRITE + 4096;

    final Union union;
    final MountOptions opts;
    final Log log;
    final int devFd;
    /** Holds this mount's requests while it is paused (image commit --pause); set before the workers start. */
    volatile Gate gate = new Gate();
    final Inodes inodes = new Inodes();
    /** Paths of nodes stay valid while held shared (see Worker#namesLock). */
    final java.util.concurrent.locks.ReentrantReadWriteLock names = new java.util.concurrent.locks.ReentrantReadWriteLock();
    final long entrySec, attrSec;
    final int entryNsec, attrNsec;
    final boolean negativeCache;
    /** allow_root: only root and the mount's owner may use it (libfuse's meaning). */
    final int allowOnlyUid;
    /** Open files by descriptor: a node whose name is gone is still answered through one of them. */
    final ConcurrentHashMap<Integer, OpenFile> openFiles = new ConcurrentHashMap<>();
    /** Whether reads and writes of open files may go straight to their layer file (FUSE passthrough). */
    volatile boolean passthrough;
    /** READ is answered by pread and write only: splice was refused here (see SpliceReads), or -Dstrata.splice=false. */
    volatile boolean spliceOff = !Boolean.parseBoolean(System.getProperty("strata.splice", "true"));
    /** The kernel enforces and caches POSIX ACLs, and leaves the umask to strata (POSIX_ACL + DONT_MASK). */
    volatile boolean posixAcl;
    /** FUSE_HANDLE_KILLPRIV_V2 was negotiated: a SETATTR that changes nothing asks strata to clear S_ISUID/S_ISGID. */
    volatile boolean killPriv;
    /** The kernel keeps a writeback cache for this mount (-o writeback, negotiated at INIT). */
    volatile boolean writeback;
    final boolean passthroughWanted;
    /** Copies of the layers' mounts with the mount's atime mode, for passthrough backing files; null without passthrough. */
    final BackingMounts backingMounts;

    static final int S_ISUID = 04000, S_ISGID = 02000, S_IXGRP = 00010, CAP_FSETID = 4;

    static final class OpenFile {
        final KNode node;
        /** The node's open-file state (kept here: the close may come after the kernel forgot the node). */
        final NodeExtra x;
        final boolean cached;
        final boolean passthrough;
        /** Opened for writing: a caller who may write it may also have its set-id bits cleared (see setattr). */
        final boolean writable;
        /** The file has other names (set at open, or by a link made while open): writes must invalidate what the kernel caches about them. */
        volatile boolean otherNames;
        /** Opened with O_DIRECT (strata's descriptor is not: see OpenFiles#copyFileRange). */
        final boolean direct;
        OpenFile(KNode node, NodeExtra x, boolean cached, boolean passthrough, boolean otherNames, boolean writable, boolean direct) {
            this.node = node; this.x = x; this.cached = cached; this.passthrough = passthrough; this.otherNames = otherNames;
            this.writable = writable;
            this.direct = direct;
        }
    }
    volatile boolean initialized;
    /**
     * When a worker of this mount last finished a request (System.nanoTime), and the value it had when
     * the daemon last dropped this mount's cached engine nodes: a mount quiet for a while keeps only
     * what the kernel holds ({@link Rest#dropIdle}).
     */
    volatile long servedAt = System.nanoTime();
    long dropSeen;
    final boolean debug;

    /**
     * A second descriptor of this mount's connection (FUSE_DEV_IOC_CLONE), opened O_NONBLOCK: a worker
     * that still holds the pages of a large request reads through it, so that it never waits in read(2)
     * with them (Worker#serveNext); a request read there is answered there. -1 not made yet, -2 none to
     * be had (the warm-up's socket; /dev/fuse not to be opened here).
     */
    private int nonBlocking = -1;

    /** The descriptor above, made at the first call; scratch: 4 bytes for the ioctl's argument. */
    synchronized int nonBlockingFd(jnr.ffi.Pointer scratch) {
        if (nonBlocking == -1) {
            int c = Posix.openat(Posix.AT_FDCWD, "/dev/fuse", Posix.O_RDWR | Posix.O_NONBLOCK, 0);
            if (c >= 0) {
                scratch.putInt(0, devFd);
                if (Posix.ioctl(c, DEV_IOC_CLONE, scratch.address()) < 0) {
                    Posix.close(c);
                    c = -2;
                }
            }
            nonBlocking = c >= 0 ? c : -2;
        }
        return nonBlocking;
    }

    /** This mount's workers (set before they start; null for the warm-up's connection). */
    volatile Workers workers;
    /**
     * The node id of the last regular file whose entry went to the kernel (Worker#fillEntry): what a
     * NOTIFY_RETRIEVE may name ({@link #shedWorkers}). 0: none yet.
     */
    volatile long lastFile;
    /** The notification {@link #shedWorkers} writes (allocated at its first call). */
    private jnr.ffi.Pointer retrieve;

    /**
     * A quiet mount gives back its waiting workers beyond one ({@link Workers#shed}; on the daemon's
     * rest thread, {@link Rest#dropIdle}). A worker waits in read(2) on /dev/fuse, so each one to go is
     * woken by a request: a NOTIFY_RETRIEVE of none of a file's cached data, which the kernel answers
     * with a NOTIFY_REPLY request of no data that needs no reply (fs/fuse/dev.c fuse_retrieve, protocol
     * 7.15 on; the file a regular one the kernel holds, {@link #lastFile}: kernels since 2026 refuse any
     * other with EINVAL); the worker that reads it then parks and ends (Workers#finished). Where the
     * kernel no longer holds that file (ENOENT), the workers stay until the mount's next quiet spell.
     */
    synchronized void shedWorkers() {
        Workers w = workers;
        long file = lastFile;
        if (w == null || !initialized || file == 0) return;
        int n = w.shed();
        if (n <= 0) return;
        int sent = 0;
        while (sent < n && retrieve(file, RETRIEVE_UNIQUE)) sent++;
        if (sent < n) w.unshed(n - sent);
    }

    /** The lasting worker took a wake-up meant for a worker to go ({@link Workers#passOn}): another goes out. */
    synchronized void wakeForShed(Workers w) {
        long file = lastFile;
        if (file == 0 || !retrieve(file, RETRIEVE_UNIQUE)) w.unshed(1);
    }

    /**
     * A quiet mount's worker, once it waits alone ({@link Workers#alone}: the others were shed), gives
     * back what its deepest requests left resident: its stack below where it waits (dev.strata.posix.
     * StackTrim) and its buffers past their first page (Buffers#trim). Woken for it as for a shed (a
     * NOTIFY_REPLY, here with {@link #TRIM_UNIQUE}), since only the thread itself may drop its stack's
     * pages. Once per quiet spell ({@link #trimSeen}; from Rest#dropIdle, on the rest thread): true if
     * the wake-up went out or none is due, false to try again at the next pass (workers being shed).
     */
    synchronized boolean trimWorkers() {
        Workers w = workers;
        long file = lastFile;
        if (w == null || !initialized || file == 0) return true;
        if (!w.alone()) return false;
        // the kernel no longer holds the file (ENOENT): no trim this time
        if (retrieve(file, TRIM_UNIQUE)) Rest.trimSent();
        return true;
    }

    /** The mount's {@link #servedAt} when its workers were last asked to trim (Rest#dropIdle). */
    long trimSeen;

    /** Writes a NOTIFY_RETRIEVE of no data of {@code file}: the kernel sends a NOTIFY_REPLY request (under this lock). */
    private boolean retrieve(long file, long unique) {
        if (retrieve == null) retrieve = NativeMemory.allocate(OUT_HEADER + 32);
        jnr.ffi.Pointer p = retrieve;
        p.putInt(0, OUT_HEADER + 32);
        p.putInt(4, NOTIFY_RETRIEVE);
        p.putLong(8, 0);
        p.putLong(OUT_HEADER, unique);          // notify_unique: the request's unique
        p.putLong(OUT_HEADER + 8, file);        // nodeid
        p.putLong(OUT_HEADER + 16, 0);          // offset
        p.putInt(OUT_HEADER + 24, 0);           // size: no data
        p.putInt(OUT_HEADER + 28, 0);
        long r = Posix.write(devFd, p, OUT_HEADER + 32);
        if (r < 0 && debug) log.debug("waking a worker to end: " + Posix.strerror((int) r));
        return r >= 0;
    }

    /** The unique of the daemon's own NOTIFY_REPLY requests (even: not an interrupt's; never replied to). */
    static final long RETRIEVE_UNIQUE = 0x5354524154410000L;
    /** The same, of the wake-up that asks a worker to trim (see {@link #trimWorkers}). */
    static final long TRIM_UNIQUE = RETRIEVE_UNIQUE + 2;

    /** Closes the descriptor above (the workers have ended). */
    synchronized void closeNonBlocking() {
        if (nonBlocking >= 0) Posix.close(nonBlocking);
        nonBlocking = -2;
    }

    /** Paths copied up by the request a worker is serving (filled by {@link #copiedUp}). */
    static final ThreadLocal<ArrayList<String>> COPIED = new ThreadLocal<>();

    KernelFS(Union union, int devFd, Log log, boolean debug, int allowOnlyUid) {
        this.union = union;
        inodes.releaseRemoved = union::release;
        this.opts = union.options();
        this.log = log;
        this.devFd = devFd;
        this.debug = debug;
        this.allowOnlyUid = allowOnlyUid;
        this.passthroughWanted = opts.passthrough && BackingMounts.permitted();
        this.backingMounts = passthroughWanted ? new BackingMounts(union, log) : null;
        double e = opts.timeoutSeconds, a = opts.attrTimeoutSeconds;
        entrySec = (long) e;
        entryNsec = (int) Math.round((e - entrySec) * 1e9) % 1_000_000_000;
        attrSec = (long) a;
        attrNsec = (int) Math.round((a - attrSec) * 1e9) % 1_000_000_000;
        negativeCache = e > 0;
    }

    /** Directories whose listing (d_ino) the request a worker is serving changed (filled by {@link #listingChanged}). */
    static final ThreadLocal<ArrayList<String>> RELISTED = new ThreadLocal<>();

    /**
     * Called (from a worker, inside the engine) when an entry of directory {@code dir} changed its inode
     * number without a change of name: the kernel keeps listings in its page cache (no OPENDIR) and
     * drops them only when a name changes, so the next reply drops it (see Invalidations#sendNotes).
     */
    static void listingChanged(String dir) {
        ArrayList<String> l = RELISTED.get();
        if (l != null) l.add(dir);
    }

    /** Called (from a worker, inside the engine) when the engine copied something up. */
    static void copiedUp(String path) {
        ArrayList<String> l = COPIED.get();
        if (l != null) l.add(path); // only on workers of this transport
    }

    // ================================================================== the worker loop

    final java.util.concurrent.atomic.AtomicBoolean outOfMemoryNoted = new java.util.concurrent.atomic.AtomicBoolean();

    /** Says once that the daemon ran out of heap (requests that hit it failed with ENOMEM). */
    void noteOutOfMemory() {
        if (outOfMemoryNoted.compareAndSet(false, true)) {
            try {
                log.error("out of Java heap: requests fail with ENOMEM; set STRATA_HEAP (e.g. STRATA_HEAP=4g) to give the daemon more");
            } catch (Throwable ignored) {
                outOfMemoryNoted.set(false);
            }
        }
    }
}
