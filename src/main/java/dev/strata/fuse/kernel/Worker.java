package dev.strata.fuse.kernel;

import dev.strata.posix.NativeMemory;
import dev.strata.fuse.kernel.Inodes.KNode;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;
import jnr.ffi.Pointer;

import java.util.ArrayList;

import static dev.strata.fuse.kernel.Proto.*;
import static dev.strata.posix.Errno.*;

/**
 * One thread's buffers; a worker reads requests from /dev/fuse, hands each to its request family and
 * writes the reply, until the file system is unmounted.
 */
final class Worker implements Runnable {
    private final KernelFS fs;
    final EntryOps entries;
    final AttrOps attrs;
    final FileOps files;
    final XattrOps xattrs;
    final DirOps dirs;
    final IoctlOps ioctls;
    final InitOps inits;
    /** READ replies by splice (its pipe is made at the first large read). */
    final SpliceReads splices;
    final jnr.ffi.Runtime rt = Posix.RT;

    /** The request and reply buffers (Buffers: what of them stays resident). */
    private final Buffers buffers = new Buffers();

    final Pointer in = buffers.in;

    final Pointer out = buffers.out;

    final Pointer outData = out.slice(OUT_HEADER);

    final Pointer writeData = in.slice(IN_HEADER + WRITE_IN);

    static final int DROP_AFTER_MS = Integer.getInteger("strata.workerDropMillis", 2000);
    private final Pointer pollfd = NativeMemory.allocate(8);

    final Pointer stat = NativeMemory.allocate(256);

    /** Attributes read to decide what a write, truncate or open must clear (stat may hold a reply's). */
    final Pointer privStat = NativeMemory.allocate(256);

    final Pointer note = NativeMemory.allocate(64);

    private final Workers pool;

    /**
     * What the engine reported during the current request on this worker's thread (copied up; listings
     * whose inode numbers changed): the thread's KernelFS.COPIED/RELISTED, kept here too so that each
     * request does not look them up (ThreadLocal.get is a native call in C1-compiled code on JDK 17).
     */
    private final ArrayList<String> copied = new ArrayList<>(), relisted = new ArrayList<>();

    /** What this worker tells the kernel to drop of nodes a request changed besides its own. */
    final Invalidations notes;

    /**
     * The mount's lasting worker: the thread the mount was served from ({@link Workers#serveHere}),
     * which never parks or ends before the file system does.
     */
    final boolean lasting;

    Worker(KernelFS fs, Workers pool) {
        this(fs, pool, false);
    }

    Worker(KernelFS fs, Workers pool, boolean lasting) {
        this.lasting = lasting;
        this.fs = fs;
        this.replyFd = fs.devFd;
        notes = new Invalidations(fs, this, copied, relisted);
        this.pool = pool;
        entries = new EntryOps(fs, this);
        attrs = new AttrOps(fs, this);
        files = new FileOps(fs, this);
        xattrs = new XattrOps(fs, this);
        dirs = new DirOps(fs, this);
        ioctls = new IoctlOps(fs, this);
        inits = new InitOps(fs, this);
        splices = new SpliceReads(fs, this);
    }

    /** The thread's body: serves, then gives back what the thread held. */
    void runAndRelease() {
        try {
            run();
        } finally {
            // a worker's cached layer directory is closed when it ends: the process may serve other mounts
            dev.strata.layer.At.releaseThreadCache();
            KernelFS.COPIED.remove();
            KernelFS.RELISTED.remove();
            release();
        }
    }

    /** Unmaps the buffers and closes the pipe (the worker is done with them). */
    void release() {
        splices.close();
        buffers.release();
    }

    @Override public void run() {
        KernelFS.COPIED.set(copied);
        KernelFS.RELISTED.set(relisted);
        boolean retired = false;
        try {
            while (true) {
                int next = serveNext();
                if (next == NEXT) continue;
                retired = next == RETIRED;
                return;
            }
        } finally {
            if (!retired) pool.ended();
        }
    }

    /** What {@link #serveNext} says: wait for the next request; the worker retired; it ended (unmounted, or /dev/fuse failed). */
    private static final int NEXT = 0, RETIRED = 1, ENDED = 2;
    /** Whether this worker parks before it waits on /dev/fuse again (see {@link Workers#finished}). */
    private boolean park;
    /** The descriptor the request being served came from, where its reply goes (KernelFS#nonBlockingFd). */
    int replyFd;
    /** When this worker last finished a request (System.nanoTime). */
    private long servedAt;

    /**
     * One turn of the worker's loop: parks if told to, waits for a request on /dev/fuse and serves it.
     * A method of its own rather than the body of {@link #run}'s loop: HotSpot compiles a method once it
     * has been called a few hundred times, but the loop of a method called once only after 60,000 turns
     * (on-stack replacement), some 10,000 copy-ups of a mount at 6 requests each: until then the loop
     * ran interpreted. perf of the workers over 1,800 copy-ups after 1,800 of warm-up: the interpreter's
     * share of their samples 7.2% before, 3.6% after (issue 14).
     */
    private int serveNext() {
        if (park) {
            if (!pool.park()) return RETIRED; // more workers waited than a mount at rest keeps, and none was needed meanwhile
            park = false;
        }
        boolean claimed = false;
        int from = fs.devFd;
        if (buffers.requestTail()) {
            // file data came in the request buffer (a large WRITE): once this worker served no request
            // for DROP_AFTER_MS, it gives back its pages past Buffers.KEEP, while it is not in read(2)
            // (the kernel writes into `in` only there): it waits in poll(2) until then, and must never
            // wait in read(2) with those pages, for it may wait there as long as the mount rests. A
            // request that comes meanwhile it reads through the connection's non-blocking descriptor:
            // if a worker waiting in read(2) took it first, EAGAIN, and this one polls again. Without
            // that descriptor it leaves the request to a worker waiting in read(2), if one does, else
            // claims it (Workers#claim) and gives back the pages first: another worker may still take
            // the request between the claim and this read (a worker was seen in read(2) holding the
            // pages of a 1 MiB WRITE for as long as the mount rested: SharedDaemonTest).
            pool.polling(1);
            try {
                while (true) {
                    // the time is this worker's: others may serve the mount's requests meanwhile
                    long left = (servedAt - System.nanoTime()) / 1_000_000L + DROP_AFTER_MS;
                    int r = left <= 0 ? 0 : Posix.pollIn(pollfd, fs.devFd, (int) left);
                    if (r == -EINTR) continue;
                    if (r <= 0) {
                        buffers.dropRequestTail(); // or poll failed: read(2) tells what became of the mount
                        break;
                    }
                    int nb = fs.nonBlockingFd(note);
                    if (nb >= 0) {
                        from = nb;
                        break;
                    }
                    if (claimed = pool.claim()) {
                        buffers.dropRequestTail();
                        break;
                    }
                    pool.awaitTaken();
                }
            } finally {
                pool.polling(-1);
            }
        }
        replyFd = from;
        long n = Posix.read(from, in, KernelFS.IN_BUF);
        if (claimed) pool.unclaim();
        if (n < 0) {
            int e = (int) -n;
            if (e == EINTR || e == EAGAIN || e == ENOENT) return NEXT; // interrupted or aborted request
            if (e != ENODEV) fs.log.error("reading /dev/fuse: " + Posix.strerror(e));
            return ENDED; // ENODEV: unmounted
        }
        if (n == 0) return ENDED; // the peer closed (the warm-up's socket: /dev/fuse answers ENODEV instead)
        if (n < IN_HEADER) return NEXT;
        buffers.received(n);
        int op = in.getInt(IH_OPCODE);
        // INIT: nothing else comes before its reply, so no second worker is started for it
        quick = noCaller(op) || op == RELEASE || op == RELEASEDIR || op == INIT;
        boolean trim = op == NOTIFY_REPLY && in.getLong(IH_UNIQUE) == KernelFS.TRIM_UNIQUE;
        pool.took(quick);
        // a trim is part of the rest pass that asked for it (Rest#awaitTrims waits for it): no request
        // of the mount's, so the passes go on as planned instead of starting over
        if (!trim) Rest.request();
        Gate gate = noCaller(op) ? null : fs.gate;
        buffers.serving();
        if (gate != null) gate.enter(); // waits while the mount is paused
        try {
            if (trim) trim(); else serve();
        } catch (Throwable t) {
            // a failure outside a request (even while replying) must not end this worker
            if (t instanceof OutOfMemoryError) fs.noteOutOfMemory();
        } finally {
            if (gate != null) gate.leave();
            buffers.served();
        }
        servedAt = System.nanoTime();
        if (op != NOTIFY_REPLY) fs.servedAt = servedAt; // the daemon's own wake-up (Workers#shed) is no work of the mount
        park = !(counted ? countedWait : pool.finished(quick, lasting || trim)); // a trim is no shed: waits again
        counted = false;
        if (lasting && op == NOTIFY_REPLY && !trim) pool.passOn(fs); // a wake-up meant for a worker to go
        return NEXT;
    }

    /** This worker's thread's stack trimmer (made at its first trim). */
    private dev.strata.posix.StackTrim stackTrim;

    /**
     * The wake-up of a quiet mount's worker waiting alone (KernelFS#trimWorkers): gives back its stack's
     * pages below this call and its buffers' past the first page. Here, between the request's read and
     * its (absent) reply: not in read(2), and the reply buffer this worker's.
     */
    private void trim() {
        long dropped;
        try {
            buffers.trim();
            if (stackTrim == null) stackTrim = new dev.strata.posix.StackTrim(); // on this worker's thread
            dropped = stackTrim.trim();
        } finally {
            Rest.trimDone();
        }
        if (fs.debug) fs.log.debug("worker at rest: " + (dropped < 0 ? "stack not trimmed" : "stack trimmed by " + dropped / 1024 + " kB"));
    }

    /** No caller waits behind it (FORGET, an INTERRUPT, the daemon's own NOTIFY_REPLY): not held, not checked, quick. */
    static boolean noCaller(int op) {
        return op == FORGET || op == BATCH_FORGET || op == INTERRUPT || op == NOTIFY_REPLY;
    }

    void serve() {
        int opcode = in.getInt(IH_OPCODE);
        long unique = in.getLong(IH_UNIQUE);
        long nodeid = in.getLong(IH_NODEID);
        try {
            if (fs.allowOnlyUid >= 0 && opcode != INIT && opcode != DESTROY && !noCaller(opcode)) {
                int uid = in.getInt(IH_UID);
                if (uid != 0 && uid != fs.allowOnlyUid) { error(unique, EACCES); return; }
            }
            if (fs.debug) fs.log.debug("request " + opcode + " node " + nodeid + " unique " + unique);
            dispatch(opcode, unique, nodeid);
        } catch (OutOfMemoryError t) {
            // no allocation before the reply: a request left unanswered hangs its caller for good
            error(unique, ENOMEM);
            fs.noteOutOfMemory();
        } catch (Throwable t) {
            error(unique, EIO);
            try {
                fs.log.error("request " + opcode + " on node " + nodeid + ": " + t);
            } catch (Throwable ignored) {
                // the reply went out; the log line is what is lost
            }
        } finally {
            if (!copied.isEmpty()) copied.clear();
            if (!relisted.isEmpty()) relisted.clear();
        }
    }

    void dispatch(int op, long unique, long nodeid) {
        switch (op) {
            case INIT: inits.init(unique); return;
            case FORGET: fs.inodes.forget(nodeid, in.getLong(IN_HEADER)); return;
            case BATCH_FORGET: batchForget(); return;
            case INTERRUPT: return; // requests finish quickly; the reply answers it
            case NOTIFY_REPLY: return; // the daemon's own wake-up of a waiting worker (Workers#shed): no reply
            case DESTROY: reply(unique, 0); return;
            default:
        }
        KNode node = fs.inodes.get(nodeid);
        if (node == null) { error(unique, ESTALE); return; }
        java.util.concurrent.locks.Lock l = namesLock(op);
        if (l == null) { serveNode(op, unique, node); return; }
        l.lock();
        try {
            serveNode(op, unique, node);
        } finally {
            l.unlock();
        }
    }

    /**
     * Requests turn a node into a mount path and then call the engine with it: a rename or removal in
     * between (of the node or of a directory above it: the kernel locks only the parents of a rename)
     * made the path name nothing (ENOENT for an fchmod on an open file, a create through a descriptor
     * held on a directory being renamed) or, worse, something else. Renames, removals and links hold
     * this exclusively from the engine call to the bookkeeping in {@link Inodes}; everything else that
     * uses a path holds it shared from the path to the reply. I/O on open files takes no part.
     */
    java.util.concurrent.locks.Lock namesLock(int op) {
        switch (op) {
            // LINK too: an OPEN of the file must see either one name or both (see link)
            case RENAME: case RENAME2: case UNLINK: case RMDIR: case LINK: return fs.names.writeLock();
            case READ: case WRITE: case RELEASE: case FSYNC: case FLUSH: case FSYNCDIR: case STATFS:
            case FALLOCATE: case LSEEK: case COPY_FILE_RANGE: case OPENDIR: case RELEASEDIR: return null;
            default: return fs.names.readLock();
        }
    }

    void serveNode(int op, long unique, KNode node) {
        switch (op) {
            case LOOKUP: entries.lookup(unique, node, cstr(IN_HEADER)); return;
            case GETATTR: attrs.getattr(unique, node); return;
            case SETATTR: attrs.setattr(unique, node); return;
            case READLINK: attrs.readlink(unique, node); return;
            case SYMLINK: entries.symlink(unique, node); return;
            case MKNOD: entries.mknod(unique, node); return;
            case MKDIR: entries.mkdir(unique, node); return;
            case UNLINK: entries.remove(unique, node, cstr(IN_HEADER), false); return;
            case RMDIR: entries.remove(unique, node, cstr(IN_HEADER), true); return;
            case RENAME: entries.rename(unique, node, IN_HEADER + 8, 0); return;
            case RENAME2: entries.rename(unique, node, IN_HEADER + 16, in.getInt(IN_HEADER + 8)); return;
            case LINK: entries.link(unique, node); return;
            case OPEN: files.open(unique, node); return;
            case READ: files.read(unique); return;
            case WRITE: files.write(unique); return;
            case STATFS: attrs.statfs(unique); return;
            case RELEASE: files.release(unique); return;
            case FSYNC: result(unique, fs.union.fsync((int) in.getLong(IN_HEADER),
                    (in.getInt(IN_HEADER + 8) & FSYNC_FDATASYNC) != 0)); return;
            // nothing is buffered here: without FLUSH the kernel spares every close() a round trip
            case FLUSH: error(unique, ENOSYS); return;
            case FSYNCDIR: reply(unique, 0); return;
            case SETXATTR: xattrs.setxattr(unique, node); return;
            case GETXATTR: xattrs.xattrRead(unique, node, true); return;
            case LISTXATTR: xattrs.xattrRead(unique, node, false); return;
            case REMOVEXATTR: xattrs.removexattr(unique, node); return;
            // no directory handles: the kernel then skips OPENDIR/RELEASEDIR round trips and keeps
            // listings in its page cache (it drops one when a name in the directory changes through
            // the mount; layers do not change under a live mount)
            case OPENDIR: error(unique, ENOSYS); return;
            case RELEASEDIR: reply(unique, 0); return;
            case READDIR: dirs.readdir(unique, node, false); return;
            case READDIRPLUS: dirs.readdir(unique, node, true); return;
            case CREATE: files.create(unique, node); return;
            case TMPFILE: files.tmpfile(unique, node); return;
            case FALLOCATE: files.fallocate(unique); return;
            case LSEEK: files.lseek(unique); return;
            case COPY_FILE_RANGE: files.copyFileRange(unique); return;
            case IOCTL: ioctls.ioctl(unique, node); return;
            default: error(unique, ENOSYS);
        }
    }

    // ------------------------------------------------------------ replies

    /** Answers with {@code len} bytes already placed at outData; false if the kernel did not take the reply. */
    boolean reply(long unique, int len) {
        return answer(out, unique, 0, len);
    }

    void error(long unique, int errno) {
        answer(out, unique, -Math.abs(errno), 0);
    }

    /** Where O_DIRECT file data starts in the reply buffer: a page in, so that the memory is aligned. */
    static final int ALIGN = 4096;
    /**
     * Page-aligned memory in the reply buffer for up to {@link KernelFS#MAX_WRITE} bytes of O_DIRECT
     * data read from a file (FileOps#readDirect), a reply header's length after where
     * {@link #replyAligned} sends from: the data goes out where it was read to.
     */
    final Pointer alignedData = out.slice(ALIGN);
    private final Pointer alignedReply = out.slice(ALIGN - OUT_HEADER);

    /** Answers with {@code len} bytes placed at {@link #alignedData}. */
    boolean replyAligned(long unique, int len) {
        buffers.replied(ALIGN + len);
        return answer(alignedReply, unique, 0, len);
    }

    /** The reply's header at {@code at}, then header and {@code len} bytes of data after it to the kernel. */
    private boolean answer(Pointer at, long unique, int error, int len) {
        notes.sendNotes();
        at.putInt(0, OUT_HEADER + len);
        at.putInt(4, error);
        at.putLong(8, unique);
        return send(at, OUT_HEADER + len);
    }

    /**
     * Page-aligned memory for {@code size} bytes of O_DIRECT data written to a file (FileOps#write): the
     * start of the reply buffer, until the reply is written there.
     */
    Pointer alignedOut(int size) {
        buffers.replied(size);
        return out;
    }

    void result(long unique, int r) {
        if (r < 0) error(unique, -r); else reply(unique, 0);
    }

    /**
     * Whether this worker already counted itself as waiting for the next request (before its reply went
     * out, see {@link #send}), and what {@link Workers#finished} then said.
     */
    private boolean counted, countedWait;
    /** The request being served is a quick one (Workers#took). */
    private boolean quick;

    boolean send(Pointer buf, int len) {
        buffers.replied(len);
        finishing();
        long w = Posix.write(replyFd, buf, len);
        // ENOENT: the request was interrupted and is gone; nothing to do
        if (w < 0 && w != -ENOENT && w != -ENODEV) fs.log.error("writing /dev/fuse: " + Posix.strerror((int) w));
        return w >= 0;
    }

    /** Just before the reply goes out (by write or splice): the worker counts itself as finished. */
    void finishing() {
        if (!counted) {
            // count this worker as waiting before the reply wakes the caller: its next request (the
            // WRITE after an OPEN) is otherwise taken by the only worker waiting, which then starts
            // another while this one goes back to wait
            counted = true;
            countedWait = pool.finished(quick, lasting);
        }
    }

    /**
     * After a reply that handed the kernel an open file (OPEN, CREATE, TMPFILE) did not reach it: the
     * kernel never learned the handle and will send no RELEASE for it, so it is released here (as
     * libfuse does when fuse_reply_open/fuse_reply_create fail).
     */
    void unclaimed(int fd) {
        files.closeOpenFile(fd);
    }

    /** Fills a fuse_attr at {@code off} from the struct stat in {@link #stat}. */
    void attr(int off) {
        Pointer o = outData, s = stat;
        o.putLong(off + A_INO, s.getLong(Stat.OFF_INO));
        o.putLong(off + A_SIZE, s.getLong(Stat.OFF_SIZE));
        o.putLong(off + A_BLOCKS, s.getLong(Stat.OFF_BLOCKS));
        o.putLong(off + A_ATIME, s.getLong(Stat.OFF_ATIME));
        o.putLong(off + A_MTIME, s.getLong(Stat.OFF_MTIME));
        o.putLong(off + A_CTIME, s.getLong(Stat.OFF_CTIME));
        o.putInt(off + A_ATIMENSEC, (int) s.getLong(Stat.OFF_ATIME_NS));
        o.putInt(off + A_MTIMENSEC, (int) s.getLong(Stat.OFF_MTIME_NS));
        o.putInt(off + A_CTIMENSEC, (int) s.getLong(Stat.OFF_CTIME_NS));
        o.putInt(off + A_MODE, s.getInt(Stat.OFF_MODE));
        o.putInt(off + A_NLINK, (int) Math.min(s.getLong(Stat.OFF_NLINK), 0xffffffffL));
        o.putInt(off + A_UID, s.getInt(Stat.OFF_UID));
        o.putInt(off + A_GID, s.getInt(Stat.OFF_GID));
        o.putInt(off + A_RDEV, (int) s.getLong(Stat.OFF_RDEV));
        o.putInt(off + A_BLKSIZE, (int) s.getLong(Stat.OFF_BLKSIZE));
        o.putInt(off + A_FLAGS, 0);
    }

    /** Whether the attributes in {@link #stat} are of a non-directory with several names. */
    boolean multiLinkFile() {
        return (stat.getInt(Stat.OFF_MODE) & Posix.S_IFMT) != Posix.S_IFDIR && stat.getLong(Stat.OFF_NLINK) > 1;
    }

    /**
     * Fills a fuse_entry_out at {@code off} for a name whose attributes are in {@link #stat}, counting
     * one kernel reference to its node. Returns the node.
     */
    KNode entry(int off, KNode dir, String name) {
        long ino = stat.getLong(Stat.OFF_INO);
        boolean multi = multiLinkFile();
        KNode k = fs.inodes.lookup(dir, name, ino, multi, multi ? upperLinked(dir, name) : 0);
        fillEntry(off, k);
        return k;
    }

    /**
     * For a name whose attributes in {@link #stat} show a regular file of several names: the upper inode
     * if it is a hard link in the upper layer (its names then share one node: Inodes#lookup), else 0.
     */
    long upperLinked(KNode dir, String name) {
        if ((stat.getInt(Stat.OFF_MODE) & Posix.S_IFMT) != Posix.S_IFREG) return 0;
        String p = fs.inodes.childPath(dir, name);
        return p == null ? 0 : fs.union.upperLinkedInode(p);
    }

    /** Fills a fuse_entry_out at {@code off} for node k, whose attributes are in {@link #stat}. */
    void fillEntry(int off, KNode k) {
        if ((stat.getInt(Stat.OFF_MODE) & Posix.S_IFMT) == Posix.S_IFREG) fs.lastFile = k.id;
        outData.putLong(off, k.id);
        outData.putLong(off + 8, 0);              // generation: ids are never reused
        outData.putLong(off + 16, fs.entrySec);
        boolean fresh = attrsMustBeFresh(k);
        outData.putLong(off + 24, fresh ? 0 : fs.attrSec);
        outData.putInt(off + 32, fs.entryNsec);
        outData.putInt(off + 36, fresh ? 0 : fs.attrNsec);
        attr(off + 40);
    }

    void replyEntry(long unique, KNode dir, String name) {
        entry(0, dir, name);
        reply(unique, ENTRY_OUT);
    }

    /**
     * Whether the kernel must not cache the attributes in {@link #stat} of this name: another name of
     * the file has passthrough opens, whose writes never reach strata to invalidate them.
     */
    boolean attrsMustBeFresh(KNode k) {
        return fs.inodes.writablePassthrough(k) > 0
                || multiLinkFile() && fs.inodes.passthroughElsewhere(stat.getLong(Stat.OFF_INO), k);
    }

    void replyAttr(long unique, KNode node) {
        boolean fresh = attrsMustBeFresh(node);
        outData.putLong(0, fresh ? 0 : fs.attrSec);
        outData.putInt(8, fresh ? 0 : fs.attrNsec);
        outData.putInt(12, 0);
        attr(16);
        reply(unique, ATTR_OUT);
    }

    // ------------------------------------------------------------ request decoding helpers

    /** The NUL-terminated name at {@code off} of the request, as a byte-transparent string. */
    String cstr(int off) {
        int len = 0;
        int max = in.getInt(IH_LEN) - off;
        while (len < max && in.getByte(off + len) != 0) len++;
        byte[] b = new byte[len];
        in.get(off, b, 0, len);
        return new String(b, Posix.NAMES);
    }

    int cstrEnd(int off) {
        int max = in.getInt(IH_LEN);
        int i = off;
        while (i < max && in.getByte(i) != 0) i++;
        return i + 1;
    }

    int uid() { return in.getInt(IH_UID); }

    int gid() { return in.getInt(IH_GID); }

    String pathOrError(long unique, KNode node) {
        String p = fs.inodes.path(node);
        if (p == null) error(unique, ENOENT);
        return p;
    }

    // ------------------------------------------------------------ operations

    void batchForget() {
        int count = in.getInt(IN_HEADER);
        int off = IN_HEADER + 8;
        for (int i = 0; i < count; i++, off += 16) fs.inodes.forget(in.getLong(off), in.getLong(off + 8));
    }
}
