package dev.strata.fuse.kernel;

import dev.strata.fuse.Callers;
import dev.strata.fuse.Log;
import dev.strata.fuse.kernel.Inodes.KNode;
import dev.strata.options.MountOptions;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;
import dev.strata.union.Union;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;

import java.util.ArrayList;
import java.util.concurrent.ConcurrentHashMap;

import static dev.strata.fuse.kernel.Proto.*;
import static dev.strata.posix.Errno.*;

/**
 * Serves the kernel's FUSE requests from /dev/fuse with a {@link Union}: each request is decoded from
 * the worker's native buffer, turned into one engine call on the node's mount path, and answered from
 * a second native buffer. File data goes straight between those buffers and pread/pwrite.
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

    private final Union union;
    private final MountOptions opts;
    private final Log log;
    private final int devFd;
    private final Inodes inodes = new Inodes();
    /** Paths of nodes stay valid while held shared (see Worker#namesLock). */
    private final java.util.concurrent.locks.ReentrantReadWriteLock names = new java.util.concurrent.locks.ReentrantReadWriteLock();
    private final long entrySec, attrSec;
    private final int entryNsec, attrNsec;
    private final boolean negativeCache;
    /** allow_root: only root and the mount's owner may use it (libfuse's meaning). */
    private final int allowOnlyUid;
    /** Open files by descriptor: a node whose name is gone is still answered through one of them. */
    private final ConcurrentHashMap<Integer, OpenFile> openFiles = new ConcurrentHashMap<>();
    /** Whether reads and writes of open files may go straight to their layer file (FUSE passthrough). */
    private volatile boolean passthrough;
    /** The kernel enforces and caches POSIX ACLs, and leaves the umask to strata (POSIX_ACL + DONT_MASK). */
    private volatile boolean posixAcl;
    /** FUSE_HANDLE_KILLPRIV_V2 was negotiated: a SETATTR that changes nothing asks strata to clear S_ISUID/S_ISGID. */
    private volatile boolean killPriv;
    private final boolean passthroughWanted;

    static final int S_ISUID = 04000, S_ISGID = 02000, S_IXGRP = 00010, CAP_FSETID = 4;

    private static final class OpenFile {
        final KNode node;
        final boolean cached;
        final boolean passthrough;
        /** Opened for writing: a caller who may write it may also have its set-id bits cleared (see setattr). */
        final boolean writable;
        /** The file has other names (set at open, or by a link made while open): writes must invalidate what the kernel caches about them. */
        volatile boolean otherNames;
        OpenFile(KNode node, boolean cached, boolean passthrough, boolean otherNames, boolean writable) {
            this.node = node; this.cached = cached; this.passthrough = passthrough; this.otherNames = otherNames;
            this.writable = writable;
        }
    }
    private final Runnable onInit;
    private volatile boolean initialized;
    private final boolean debug;

    /** Paths copied up by the request a worker is serving (filled by {@link #copiedUp}). */
    private static final ThreadLocal<ArrayList<String>> COPIED = new ThreadLocal<>();

    KernelFS(Union union, int devFd, Log log, boolean debug, int allowOnlyUid, Runnable onInit) {
        this.union = union;
        this.opts = union.options();
        this.log = log;
        this.devFd = devFd;
        this.debug = debug;
        this.allowOnlyUid = allowOnlyUid;
        this.onInit = onInit;
        this.passthroughWanted = opts.passthrough && Posix.geteuid() == 0;
        double e = opts.timeoutSeconds, a = opts.attrTimeoutSeconds;
        entrySec = (long) e;
        entryNsec = (int) Math.round((e - entrySec) * 1e9) % 1_000_000_000;
        attrSec = (long) a;
        attrNsec = (int) Math.round((a - attrSec) * 1e9) % 1_000_000_000;
        negativeCache = e > 0;
    }

    /** Directories whose listing (d_ino) the request a worker is serving changed (filled by {@link #listingChanged}). */
    private static final ThreadLocal<ArrayList<String>> RELISTED = new ThreadLocal<>();

    /**
     * Called (from a worker, inside the engine) when an entry of directory {@code dir} changed its inode
     * number without a change of name: the kernel keeps listings in its page cache (no OPENDIR) and
     * drops them only when a name changes, so the next reply drops it (see sendNotes).
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

    private final java.util.concurrent.atomic.AtomicBoolean outOfMemoryNoted = new java.util.concurrent.atomic.AtomicBoolean();

    /** Says once that the daemon ran out of heap (requests that hit it failed with ENOMEM). */
    private void noteOutOfMemory() {
        if (outOfMemoryNoted.compareAndSet(false, true)) {
            try {
                log.error("out of Java heap: requests fail with ENOMEM; set STRATA_HEAP (e.g. STRATA_HEAP=4g) to give the daemon more");
            } catch (Throwable ignored) {
                outOfMemoryNoted.set(false);
            }
        }
    }

    /** One thread's buffers; a worker serves requests until the file system is unmounted. */
    final class Worker implements Runnable {
        final jnr.ffi.Runtime rt = Posix.RT;
        final Pointer in = Memory.allocateDirect(rt, IN_BUF, false);
        final Pointer out = Memory.allocateDirect(rt, OUT_BUF, false);
        final Pointer outData = out.slice(OUT_HEADER);
        final Pointer writeData = in.slice(IN_HEADER + WRITE_IN);
        final Pointer stat = Memory.allocateDirect(rt, 256, true);
        /** Attributes read to decide what a write, truncate or open must clear (stat may hold a reply's). */
        final Pointer privStat = Memory.allocateDirect(rt, 256, true);
        final Pointer note = Memory.allocateDirect(rt, 64, true);
        final Runnable onExit;

        Worker(Runnable onExit) { this.onExit = onExit; }

        @Override public void run() {
            COPIED.set(new ArrayList<>());
            RELISTED.set(new ArrayList<>());
            try {
                while (true) {
                    long n = Posix.read(devFd, in, IN_BUF);
                    if (n < 0) {
                        int e = (int) -n;
                        if (e == EINTR || e == EAGAIN || e == ENOENT) continue; // interrupted or aborted request
                        if (e != ENODEV) log.error("reading /dev/fuse: " + Posix.strerror(e));
                        return; // ENODEV: unmounted
                    }
                    if (n < IN_HEADER) continue;
                    try {
                        serve();
                    } catch (Throwable t) {
                        // a failure outside a request (even while replying) must not end this worker
                        if (t instanceof OutOfMemoryError) noteOutOfMemory();
                    }
                }
            } finally {
                onExit.run();
            }
        }

        private void serve() {
            int opcode = in.getInt(IH_OPCODE);
            long unique = in.getLong(IH_UNIQUE);
            long nodeid = in.getLong(IH_NODEID);
            try {
                if (allowOnlyUid >= 0 && opcode != INIT && opcode != FORGET && opcode != BATCH_FORGET
                        && opcode != DESTROY && opcode != INTERRUPT) {
                    int uid = in.getInt(IH_UID);
                    if (uid != 0 && uid != allowOnlyUid) { error(unique, EACCES); return; }
                }
                if (debug) log.debug("request " + opcode + " node " + nodeid + " unique " + unique);
                dispatch(opcode, unique, nodeid);
            } catch (OutOfMemoryError t) {
                // no allocation before the reply: a request left unanswered hangs its caller for good
                error(unique, ENOMEM);
                noteOutOfMemory();
            } catch (Throwable t) {
                error(unique, EIO);
                try {
                    log.error("request " + opcode + " on node " + nodeid + ": " + t);
                } catch (Throwable ignored) {
                    // the reply went out; the log line is what is lost
                }
            } finally {
                ArrayList<String> copied = COPIED.get();
                if (!copied.isEmpty()) copied.clear();
                ArrayList<String> relisted = RELISTED.get();
                if (!relisted.isEmpty()) relisted.clear();
            }
        }

        private void dispatch(int op, long unique, long nodeid) {
            switch (op) {
                case INIT: init(unique); return;
                case FORGET: inodes.forget(nodeid, in.getLong(IN_HEADER)); return;
                case BATCH_FORGET: batchForget(); return;
                case INTERRUPT: return; // requests finish quickly; the reply answers it
                case DESTROY: reply(unique, 0); return;
                default:
            }
            KNode node = inodes.get(nodeid);
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
        private java.util.concurrent.locks.Lock namesLock(int op) {
            switch (op) {
                // LINK too: an OPEN of the file must see either one name or both (see link)
                case RENAME: case RENAME2: case UNLINK: case RMDIR: case LINK: return names.writeLock();
                case READ: case WRITE: case RELEASE: case FSYNC: case FLUSH: case FSYNCDIR: case STATFS:
                case FALLOCATE: case LSEEK: case OPENDIR: case RELEASEDIR: return null;
                default: return names.readLock();
            }
        }

        private void serveNode(int op, long unique, KNode node) {
            switch (op) {
                case LOOKUP: lookup(unique, node, cstr(IN_HEADER)); return;
                case GETATTR: getattr(unique, node); return;
                case SETATTR: setattr(unique, node); return;
                case READLINK: readlink(unique, node); return;
                case SYMLINK: symlink(unique, node); return;
                case MKNOD: mknod(unique, node); return;
                case MKDIR: mkdir(unique, node); return;
                case UNLINK: remove(unique, node, cstr(IN_HEADER), false); return;
                case RMDIR: remove(unique, node, cstr(IN_HEADER), true); return;
                case RENAME: rename(unique, node, IN_HEADER + 8, 0); return;
                case RENAME2: rename(unique, node, IN_HEADER + 16, in.getInt(IN_HEADER + 8)); return;
                case LINK: link(unique, node); return;
                case OPEN: open(unique, node); return;
                case READ: read(unique); return;
                case WRITE: write(unique); return;
                case STATFS: statfs(unique); return;
                case RELEASE: release(unique); return;
                case FSYNC: result(unique, union.fsync((int) in.getLong(IN_HEADER),
                        (in.getInt(IN_HEADER + 8) & FSYNC_FDATASYNC) != 0)); return;
                // nothing is buffered here: without FLUSH the kernel spares every close() a round trip
                case FLUSH: error(unique, ENOSYS); return;
                case FSYNCDIR: reply(unique, 0); return;
                case SETXATTR: setxattr(unique, node); return;
                case GETXATTR: xattrRead(unique, node, true); return;
                case LISTXATTR: xattrRead(unique, node, false); return;
                case REMOVEXATTR: removexattr(unique, node); return;
                // no directory handles: the kernel then skips OPENDIR/RELEASEDIR round trips and keeps
                // listings in its page cache (it drops one when a name in the directory changes through
                // the mount; layers do not change under a live mount)
                case OPENDIR: error(unique, ENOSYS); return;
                case RELEASEDIR: reply(unique, 0); return;
                case READDIR: readdir(unique, node, false); return;
                case READDIRPLUS: readdir(unique, node, true); return;
                case CREATE: create(unique, node); return;
                case TMPFILE: tmpfile(unique, node); return;
                case FALLOCATE: fallocate(unique); return;
                case LSEEK: lseek(unique); return;
                case IOCTL: ioctl(unique, node); return;
                default: error(unique, ENOSYS);
            }
        }

        // ------------------------------------------------------------ replies

        /** Answers with {@code len} bytes already placed at outData; false if the kernel did not take the reply. */
        private boolean reply(long unique, int len) {
            sendNotes();
            out.putInt(0, OUT_HEADER + len);
            out.putInt(4, 0);
            out.putLong(8, unique);
            return send(out, OUT_HEADER + len);
        }

        private void error(long unique, int errno) {
            sendNotes();
            out.putInt(0, OUT_HEADER);
            out.putInt(4, -Math.abs(errno));
            out.putLong(8, unique);
            send(out, OUT_HEADER);
        }

        private void result(long unique, int r) {
            if (r < 0) error(unique, -r); else reply(unique, 0);
        }

        private boolean send(Pointer buf, int len) {
            long w = Posix.write(devFd, buf, len);
            // ENOENT: the request was interrupted and is gone; nothing to do
            if (w < 0 && w != -ENOENT && w != -ENODEV) log.error("writing /dev/fuse: " + Posix.strerror((int) w));
            return w >= 0;
        }

        /**
         * After a reply that handed the kernel an open file (OPEN, CREATE, TMPFILE) did not reach it: the
         * kernel never learned the handle and will send no RELEASE for it, so it is released here (as
         * libfuse does when fuse_reply_open/fuse_reply_create fail).
         */
        private void unclaimed(int fd) {
            closeOpenFile(fd);
        }

        /**
         * Before the reply: attribute invalidations for nodes this request changed besides its own (what it
         * copied up and their parents), and cached listings that show a changed inode number.
         */
        private void sendNotes() {
            ArrayList<String> relisted = RELISTED.get();
            if (!relisted.isEmpty()) {
                for (String p : relisted) {
                    KNode k = inodes.find(p);
                    if (k != null) invalidate(k.id, 0); // its cached listing, and attributes
                }
                relisted.clear();
            }
            ArrayList<String> copied = COPIED.get();
            if (copied.isEmpty()) return;
            for (String p : copied) {
                KNode k = inodes.find(p);
                if (k != null) invalidate(k.id);
                // and its parent's: the upper directory's ctime changed with it (a new entry, its times
                // put back, the impure marker), as the kernel overlay shows
                int slash = p.lastIndexOf('/');
                KNode d = inodes.find(slash <= 0 ? "/" : p.substring(0, slash));
                if (d != null) invalidate(d.id);
            }
            copied.clear();
        }

        private void invalidate(long id) {
            invalidate(id, -1); // attributes only
        }

        /** NOTIFY_INVAL_INODE: the node's attributes, and from byte {@code off} on its cached data (-1: none). */
        private void invalidate(long id, long off) {
            note.putInt(0, OUT_HEADER + 24);
            note.putInt(4, NOTIFY_INVAL_INODE);
            note.putLong(8, 0);
            note.putLong(16, id);
            note.putLong(24, off);
            note.putLong(32, 0);    // to the end
            long w = Posix.write(devFd, note, OUT_HEADER + 24);
            if (w < 0 && w != -ENOENT) log.debug("invalidate node " + id + ": " + Posix.strerror((int) w));
        }

        private void invalidateSiblings(long ino, KNode except) {
            for (long id : inodes.siblings(ino, except)) invalidate(id);
        }

        /** Fills a fuse_attr at {@code off} from the struct stat in {@link #stat}. */
        private void attr(int off) {
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
        private boolean multiLinkFile() {
            return (stat.getInt(Stat.OFF_MODE) & Posix.S_IFMT) != Posix.S_IFDIR && stat.getLong(Stat.OFF_NLINK) > 1;
        }

        /**
         * Fills a fuse_entry_out at {@code off} for a name whose attributes are in {@link #stat}, counting
         * one kernel reference to its node. Returns the node.
         */
        private KNode entry(int off, KNode dir, String name) {
            long ino = stat.getLong(Stat.OFF_INO);
            KNode k = inodes.lookup(dir, name, ino, multiLinkFile());
            fillEntry(off, k);
            return k;
        }

        /** Fills a fuse_entry_out at {@code off} for node k, whose attributes are in {@link #stat}. */
        private void fillEntry(int off, KNode k) {
            k.type = stat.getInt(Stat.OFF_MODE) & Posix.S_IFMT;
            outData.putLong(off, k.id);
            outData.putLong(off + 8, 0);              // generation: ids are never reused
            outData.putLong(off + 16, entrySec);
            boolean fresh = attrsMustBeFresh(k);
            outData.putLong(off + 24, fresh ? 0 : attrSec);
            outData.putInt(off + 32, entryNsec);
            outData.putInt(off + 36, fresh ? 0 : attrNsec);
            attr(off + 40);
        }

        private void replyEntry(long unique, KNode dir, String name) {
            entry(0, dir, name);
            reply(unique, ENTRY_OUT);
        }

        /**
         * Whether the kernel must not cache the attributes in {@link #stat} of this name: another name of
         * the file has passthrough opens, whose writes never reach strata to invalidate them.
         */
        private boolean attrsMustBeFresh(KNode k) {
            return multiLinkFile() && inodes.passthroughElsewhere(stat.getLong(Stat.OFF_INO), k);
        }

        private void replyAttr(long unique, KNode node) {
            boolean fresh = attrsMustBeFresh(node);
            outData.putLong(0, fresh ? 0 : attrSec);
            outData.putInt(8, fresh ? 0 : attrNsec);
            outData.putInt(12, 0);
            attr(16);
            reply(unique, ATTR_OUT);
        }

        // ------------------------------------------------------------ request decoding helpers

        /** The NUL-terminated name at {@code off} of the request, as a byte-transparent string. */
        private String cstr(int off) {
            int len = 0;
            int max = in.getInt(IH_LEN) - off;
            while (len < max && in.getByte(off + len) != 0) len++;
            byte[] b = new byte[len];
            in.get(off, b, 0, len);
            return new String(b, Posix.NAMES);
        }

        private int cstrEnd(int off) {
            int max = in.getInt(IH_LEN);
            int i = off;
            while (i < max && in.getByte(i) != 0) i++;
            return i + 1;
        }

        private int uid() { return in.getInt(IH_UID); }
        private int gid() { return in.getInt(IH_GID); }

        private String pathOrError(long unique, KNode node) {
            String p = inodes.path(node);
            if (p == null) error(unique, ENOENT);
            return p;
        }

        // ------------------------------------------------------------ operations

        private void init(long unique) {
            int major = in.getInt(IN_HEADER), minor = in.getInt(IN_HEADER + 4);
            int maxReadahead = in.getInt(IN_HEADER + 8), flags = in.getInt(IN_HEADER + 12);
            if (major < KERNEL_MAJOR) { error(unique, EPROTO); return; }
            for (int i = 0; i < INIT_OUT; i += 8) outData.putLong(i, 0);
            outData.putInt(0, KERNEL_MAJOR);
            if (major > KERNEL_MAJOR) { reply(unique, 8); return; } // the kernel retries with our major
            boolean ext = minor >= 36 && (flags & INIT_EXT) != 0;
            int flags2 = ext ? in.getInt(IN_HEADER + 16) : 0;
            boolean pt = passthroughWanted && minor >= PASSTHROUGH_MINOR && (flags2 & FLAGS2_PASSTHROUGH) != 0;
            // 7.40 where the kernel has it (every struct strata uses keeps its size; the newer requests
            // it does not serve get ENOSYS, which the kernel remembers)
            outData.putInt(4, Math.min(minor, minor >= PASSTHROUGH_MINOR ? PASSTHROUGH_MINOR : KERNEL_MINOR));
            outData.putInt(8, maxReadahead);
            int want = ASYNC_READ | BIG_WRITES | AUTO_INVAL_DATA | DO_READDIRPLUS | READDIRPLUS_AUTO | ASYNC_DIO
                    | PARALLEL_DIROPS | ABORT_ERROR | MAX_PAGES | CACHE_SYMLINKS | NO_OPENDIR_SUPPORT;
            if (ext) want |= INIT_EXT;
            // POSIX ACLs: the kernel checks and caches them (as it does on the kernel overlay); it then
            // leaves the umask to strata, which applies it where the parent has no default ACL
            if (!opts.noAcl) want |= POSIX_ACL | DONT_MASK;
            posixAcl = (flags & (POSIX_ACL | DONT_MASK)) == (POSIX_ACL | DONT_MASK) && !opts.noAcl;
            if (!posixAcl) want &= ~(POSIX_ACL | DONT_MASK);
            // strata clears S_ISUID/S_ISGID itself where WRITE, SETATTR, OPEN and CREATE ask for it: the
            // kernel then sets SB_NOSEC and stops asking for security.capability before each write
            // (fs/fuse/inode.c process_init_reply). The flags' fields are in the kernel's structs from
            // 7.33 on, whatever minor strata answers
            if (minor >= KILLPRIV_V2_MINOR) want |= HANDLE_KILLPRIV_V2;
            killPriv = (flags & want & HANDLE_KILLPRIV_V2) != 0;
            outData.putInt(12, flags & want);
            // shared mmap of a file served with direct I/O (one with several names): as on the kernel overlay
            int want2 = FLAGS2_DIRECT_IO_ALLOW_MMAP;
            if (pt) {
                want2 |= FLAGS2_PASSTHROUGH;
                outData.putInt(36, 1);                 // max_stack_depth: layers on ordinary file systems
                passthrough = true;
            }
            outData.putInt(32, flags2 & want2);
            outData.putShort(16, (short) 16);          // max_background
            outData.putShort(18, (short) 12);          // congestion_threshold
            outData.putInt(20, MAX_WRITE);
            outData.putInt(24, 1);                     // time_gran: nanoseconds
            outData.putShort(28, (short) MAX_PAGES);
            reply(unique, INIT_OUT);
            if (!initialized) {
                initialized = true;
                onInit.run();
            }
        }

        private void batchForget() {
            int count = in.getInt(IN_HEADER);
            int off = IN_HEADER + 8;
            for (int i = 0; i < count; i++, off += 16) inodes.forget(in.getLong(off), in.getLong(off + 8));
        }

        private void lookup(long unique, KNode dir, String name) {
            String p = inodes.childPath(dir, name);
            if (p == null) { error(unique, ENOENT); return; }
            int r = union.getattr(p, stat);
            if (r == -ENOENT && negativeCache) {
                // a negative entry the kernel may cache: node id 0
                for (int i = 0; i < ENTRY_OUT; i += 8) outData.putLong(i, 0);
                outData.putLong(16, entrySec);
                outData.putInt(32, entryNsec);
                reply(unique, ENTRY_OUT);
                return;
            }
            if (r < 0) { error(unique, -r); return; }
            replyEntry(unique, dir, name);
        }

        private void getattr(long unique, KNode node) {
            int flags = in.getInt(IN_HEADER);
            int r;
            if ((flags & GETATTR_FH) != 0) {
                r = union.fgetattr((int) in.getLong(IN_HEADER + 8), stat);
            } else {
                String p = inodes.path(node);
                int fd;
                byte[] removed = node.removedStat;
                if (p != null) r = union.getattr(p, stat);
                else if ((fd = openFd(node)) >= 0) r = union.fgetattr(fd, stat);
                else if (removed != null) { stat.put(0, removed, 0, removed.length); r = 0; }
                else r = -ENOENT;
            }
            if (r < 0) { error(unique, -r); return; }
            node.ino = stat.getLong(Stat.OFF_INO);
            replyAttr(unique, node);
        }

        private void setattr(long unique, KNode node) {
            int b = IN_HEADER;
            int valid = in.getInt(b);
            long fh = in.getLong(b + 8);
            boolean hasFh = (valid & FATTR_FH) != 0;
            String p = inodes.path(node);
            boolean removed = p == null && !hasFh;
            if (removed) {
                // a removed name that is still open: change the open file (truncate of /proc/self/fd/N)
                int fd = openFd(node);
                if (fd < 0) { error(unique, ENOENT); return; }
                fh = fd;
                hasFh = true;
            }
            // FATTR_KILL_SUIDGID (with a size: the caller lacks CAP_FSETID; with an owner: always): what to
            // clear is decided on the attributes before the change, as the VFS does, and cleared after it.
            // A SETATTR that changes nothing is notify_change(ATTR_KILL_SUID/SGID...) reaching fuse_setattr,
            // which (with HANDLE_KILLPRIV_V2) leaves the clearing to the server: file_remove_privs before a
            // write by a caller without CAP_FSETID (fallocate, copy_file_range and passthrough writes have
            // no flag of their own), or chown(f, -1, -1), which clears S_ISUID whoever calls it
            boolean killOnly = killPriv && (valid & ~(FATTR_FH | FATTR_LOCKOWNER)) == 0;
            int kill = -1;
            if (((valid & FATTR_KILL_SUIDGID) != 0 || killOnly) && (valid & FATTR_MODE) == 0) {
                kill = privsToKill(p, hasFh ? (int) fh : -1, killOnly || (valid & (FATTR_UID | FATTR_GID)) != 0);
                // chown(f, -1, -1) becomes a mode change where there are bits to clear, which the VFS allows
                // only the owner or CAP_FOWNER (setattr_prepare): the kernel overlay answers EPERM and keeps
                // them. The same empty SETATTR also comes from file_remove_privs (ATTR_FORCE: no check)
                // before a write by a caller without CAP_FSETID, who holds the file open for writing
                if (killOnly && kill >= 0 && !ownerOrCapable(privStat.getInt(Stat.OFF_UID)) && !openForWriting(node)) {
                    error(unique, EPERM);
                    return;
                }
            }
            int r = 0;
            if ((valid & FATTR_MODE) != 0) {
                int mode = in.getInt(b + 68);
                r = p != null ? union.chmod(p, mode) : union.fchmod((int) fh, mode);
            }
            if (r == 0 && (valid & (FATTR_UID | FATTR_GID)) != 0) {
                int u = (valid & FATTR_UID) != 0 ? in.getInt(b + 76) : -1;
                int g = (valid & FATTR_GID) != 0 ? in.getInt(b + 80) : -1;
                r = p != null ? union.chown(p, u, g) : union.fchown((int) fh, u, g);
            }
            if (r == 0 && (valid & FATTR_SIZE) != 0) {
                long size = in.getLong(b + 16);
                r = removed ? union.truncateRemoved((int) fh, size) : hasFh ? union.ftruncate((int) fh, size) : union.truncate(p, size);
            }
            if (r == 0 && (valid & (FATTR_ATIME | FATTR_MTIME)) != 0) {
                long as = Posix.UTIME_OMIT, an = Posix.UTIME_OMIT, ms = 0, mn = Posix.UTIME_OMIT;
                if ((valid & FATTR_ATIME) != 0) {
                    if ((valid & FATTR_ATIME_NOW) != 0) { as = 0; an = Posix.UTIME_NOW; }
                    else { as = in.getLong(b + 32); an = in.getInt(b + 56) & 0xffffffffL; }
                } else as = 0;
                if ((valid & FATTR_MTIME) != 0) {
                    if ((valid & FATTR_MTIME_NOW) != 0) { ms = 0; mn = Posix.UTIME_NOW; }
                    else { ms = in.getLong(b + 40); mn = in.getInt(b + 60) & 0xffffffffL; }
                }
                r = p != null ? union.utimens(p, as, an, ms, mn) : union.futimens((int) fh, as, an, ms, mn);
            }
            // chown(f, -1, -1) of a lower file: the kernel overlay copies it up (as any setattr), bits or not
            if (r == 0 && killOnly && p != null) r = union.chown(p, -1, -1);
            if (r == 0 && kill >= 0) r = setMode(p, hasFh ? (int) fh : -1, kill);
            if (r < 0) { error(unique, -r); return; }
            r = p != null ? union.getattr(p, stat) : union.fgetattr((int) fh, stat);
            if (r < 0) { error(unique, -r); return; }
            if (multiLinkFile()) invalidateSiblings(stat.getLong(Stat.OFF_INO), node);
            replyAttr(unique, node);
        }

        private void readlink(long unique, KNode node) {
            String p = pathOrError(unique, node);
            if (p == null) return;
            int r = union.readlink(p, outData, 4096);
            if (r < 0) { error(unique, -r); return; }
            int len = 0;
            while (len < 4096 && outData.getByte(len) != 0) len++;
            reply(unique, len);
        }

        /** After a create-like call: the new name's entry, or the error. */
        private void created(long unique, KNode dir, String name, String p, int r) {
            if (r < 0) { error(unique, -r); return; }
            r = union.getattr(p, stat);
            if (r < 0) { error(unique, -r); return; }
            replyEntry(unique, dir, name);
        }

        private void symlink(long unique, KNode dir) {
            String name = cstr(IN_HEADER);
            String target = cstr(cstrEnd(IN_HEADER));
            String p = inodes.childPath(dir, name);
            if (p == null) { error(unique, ENOENT); return; }
            created(unique, dir, name, p, union.symlink(target, p, uid(), gid()));
        }

        private void mknod(long unique, KNode dir) {
            long rdev = in.getInt(IN_HEADER + 4) & 0xffffffffL;
            String name = cstr(IN_HEADER + 16);
            String p = inodes.childPath(dir, name);
            if (p == null) { error(unique, ENOENT); return; }
            int mode = masked(dir, in.getInt(IN_HEADER), in.getInt(IN_HEADER + 8));
            created(unique, dir, name, p, union.mknod(p, mode, rdev, uid(), gid()));
        }

        private void mkdir(long unique, KNode dir) {
            String name = cstr(IN_HEADER + 8);
            String p = inodes.childPath(dir, name);
            if (p == null) { error(unique, ENOENT); return; }
            int mode = masked(dir, in.getInt(IN_HEADER), in.getInt(IN_HEADER + 4));
            created(unique, dir, name, p, union.mkdir(p, mode, uid(), gid()));
        }

        /**
         * The mode a new object gets. With POSIX ACLs the kernel passes the umask along instead of
         * applying it: it applies unless the parent has a default ACL (which the upper layer's file
         * system then applies, as on the kernel overlay).
         */
        private int masked(KNode dir, int mode, int umask) {
            if (!posixAcl || umask == 0) return mode;
            String dp = inodes.path(dir);
            if (dp != null && union.getxattr(dp, "system.posix_acl_default", outData, 0) > 0) return mode;
            return mode & ~umask;
        }

        private void remove(long unique, KNode dir, String name, boolean isDir) {
            String p = inodes.childPath(dir, name);
            if (p == null) { error(unique, ENOENT); return; }
            KNode held = isDir ? null : inodes.peek(dir, name);
            byte[] snapshot = null;
            if (held != null && held.type != Posix.S_IFREG && union.getattr(p, stat) == 0) {
                // a fifo, socket, device or symlink may be open without strata knowing: keep what
                // fstat must show after the removal (one link less for an upper object; a lower one is untouched)
                if (union.isUpper(p)) stat.putLong(Stat.OFF_NLINK, Math.max(0, stat.getLong(Stat.OFF_NLINK) - 1));
                snapshot = new byte[Stat.SIZE];
                stat.get(0, snapshot, 0, Stat.SIZE);
            }
            int r = isDir ? union.rmdir(p) : union.unlink(p);
            if (r < 0) { error(unique, -r); return; }
            KNode gone = inodes.remove(dir, name);
            if (gone != null && snapshot != null) gone.removedStat = snapshot;
            if (gone != null && !isDir) invalidateSiblings(gone.ino, gone);
            reply(unique, 0);
        }

        private void rename(long unique, KNode fromDir, int namesOff, int flags) {
            KNode toDir = inodes.get(in.getLong(IN_HEADER));
            if (toDir == null) { error(unique, ESTALE); return; }
            String from = cstr(namesOff);
            String to = cstr(cstrEnd(namesOff));
            String fp = inodes.childPath(fromDir, from), tp = inodes.childPath(toDir, to);
            if (fp == null || tp == null) { error(unique, ENOENT); return; }
            boolean exchange = (flags & 2) != 0; // RENAME_EXCHANGE
            KNode moved = inodes.peek(fromDir, from), other = exchange ? inodes.peek(toDir, to) : null;
            int r = union.rename(fp, tp, flags);
            if (r < 0) { error(unique, -r); return; }
            KNode replaced = inodes.rename(fromDir, from, toDir, to, exchange);
            if (replaced != null) invalidateSiblings(replaced.ino, replaced); // its other names lost a link
            // a renamed file's ctime changed, which its other names show too
            if (moved != null) invalidateSiblings(moved.ino, moved);
            if (other != null) invalidateSiblings(other.ino, other);
            reply(unique, 0);
        }

        private void link(long unique, KNode newDir) {
            KNode old = inodes.get(in.getLong(IN_HEADER));
            if (old == null) { error(unique, ESTALE); return; }
            String name = cstr(IN_HEADER + 8);
            String op = inodes.path(old), np = inodes.childPath(newDir, name);
            if (np == null) { error(unique, ENOENT); return; }
            int r;
            if (op != null) {
                r = union.link(op, np);
            } else {
                // a node without a name: an O_TMPFILE file (linkat AT_EMPTY_PATH) or a removed upper file is
                // named through its descriptor; a removed lower file is refused (Union#linkFd)
                int fd = openFd(old);
                r = fd >= 0 ? union.linkFd(fd, np) : -ENOENT;
            }
            if (r < 0) { error(unique, -r); return; }
            r = union.getattr(np, stat);
            if (r < 0) { error(unique, -r); return; }
            long ino = stat.getLong(Stat.OFF_INO);
            inodes.markLinked(old, ino); // the old name shares the inode now
            // its open files' writes now change another name's attributes: page-cache and direct-I/O opens
            // invalidate them from now on; passthrough writes bypass strata, so the new name's attributes
            // are not cached while those opens last (attrsMustBeFresh)
            for (OpenFile f : openFiles.values()) if (f.node == old) f.otherNames = true;
            KNode k = entry(0, newDir, name);
            invalidateSiblings(ino, k);
            reply(unique, ENTRY_OUT);
        }

        private void open(long unique, KNode node) {
            String p = pathOrError(unique, node);
            if (p == null) return;
            int flags = in.getInt(IN_HEADER);
            int fd = union.open(p, flags);
            if (fd < 0) { error(unique, -fd); return; }
            if ((in.getInt(IN_HEADER + 4) & OPEN_KILL_SUIDGID) != 0) {
                // O_TRUNC by a caller without CAP_FSETID
                int r = killSuidGid(p, fd);
                if (r < 0) { union.release(fd); error(unique, -r); return; }
            }
            openReply(0, fd, node, union.hasOtherNames(fd));
            if (!reply(unique, OPEN_OUT)) unclaimed(fd);
        }

        /**
         * Fills a fuse_open_out for a descriptor. With passthrough, the kernel reads and writes the layer
         * file itself, when (a) the descriptor never has to move to another file (not a read-only lower
         * file that a copy-up may replace) and (b) no other open of the same kernel inode is not a
         * passthrough one (page cache or direct I/O); and always while the inode has passthrough opens (the kernel refuses to mix
         * modes on one inode). Otherwise a file with several names gets direct I/O:
         * each name is its own kernel inode with its own cache, and every write must reach strata so
         * that the attributes the kernel holds for the other names can be invalidated.
         */
        private void openReply(int off, int fd, KNode node, boolean otherNames) {
            int backing = 0;
            synchronized (node) {
                if (node.passthroughOpens > 0) {
                    // the kernel wants every open of an inode in passthrough mode to be one too, sharing
                    // its backing file (it opens that anew with each open's own flags)
                    backing = node.backingId;
                    node.passthroughOpens++;
                } else if (passthrough && node.cachedOpens == 0 && !otherNames && union.stableFd(fd)) {
                    backing = node.backingId = backingOpen(fd);
                    if (backing > 0) node.passthroughOpens++;
                }
            }
            // a direct-I/O open counts too: a shared mapping of it puts the kernel inode in page-cache mode
            // (fuse_file_mmap), and a passthrough open of the inode after that fails with EIO
            boolean cached = backing <= 0;
            if (cached) synchronized (node) { node.cachedOpens++; }
            int acc = in.getInt(IN_HEADER) & Posix.O_ACCMODE; // the flags of OPEN, CREATE and TMPFILE alike
            openFiles.put(fd, new OpenFile(node, cached, backing > 0, otherNames, acc != Posix.O_RDONLY));
            outData.putLong(off, fd);
            outData.putInt(off + 8, backing > 0 ? FOPEN_PASSTHROUGH : otherNames ? FOPEN_DIRECT_IO : FOPEN_KEEP_CACHE);
            outData.putInt(off + 12, Math.max(backing, 0));
        }

        /** Registers a descriptor as a passthrough backing file; returns its id, or <= 0 (then: no passthrough). */
        private int backingOpen(int fd) {
            note.putInt(40, fd);
            note.putInt(44, 0);
            note.putLong(48, 0);
            int id = Posix.ioctl(devFd, DEV_IOC_BACKING_OPEN, note.address() + 40);
            if (id == -EPERM || id == -EINVAL || id == -EOPNOTSUPP || id == -ENOTTY || id == -ENOSYS) {
                // not permitted or not supported here (e.g. a layer on a stacked file system): stop
                // trying, and say so, since file data then goes through strata (slower, still right)
                if (passthrough) {
                    passthrough = false;
                    log.warn("FUSE passthrough off for this mount: the kernel refused a backing file ("
                            + Posix.strerror(id) + "); file data is served by strata");
                }
            } else if (id < 0) {
                log.debug("no passthrough for one open: " + Posix.strerror(id)); // EMFILE, ENOMEM, ...: this open only
            }
            return id;
        }

        private void create(long unique, KNode dir) {
            int flags = in.getInt(IN_HEADER);
            String name = cstr(IN_HEADER + 16);
            String p = inodes.childPath(dir, name);
            if (p == null) { error(unique, ENOENT); return; }
            int mode = masked(dir, in.getInt(IN_HEADER + 4), in.getInt(IN_HEADER + 8));
            int fd = union.create(p, mode, flags, uid(), gid());
            if (fd < 0) { error(unique, -fd); return; }
            if ((in.getInt(IN_HEADER + 12) & OPEN_KILL_SUIDGID) != 0) {
                // O_TRUNC without O_EXCL by a caller without CAP_FSETID: the name may have existed after all
                int r = killSuidGid(p, fd);
                if (r < 0) { union.release(fd); error(unique, -r); return; }
            }
            if (opened(unique, fd, union.getattr(p, stat))) replyOpened(unique, fd, entry(0, dir, name));
        }

        /** After creating an open file: true if its attributes are in {@link #stat}, else it is closed and the error answered. */
        private boolean opened(long unique, int fd, int getattr) {
            if (getattr >= 0) return true;
            union.release(fd);
            error(unique, -getattr);
            return false;
        }

        /** Answers CREATE/TMPFILE: the entry already at outData, then the open file. */
        private void replyOpened(long unique, int fd, KNode k) {
            openReply(ENTRY_OUT, fd, k, false);
            if (!reply(unique, ENTRY_OUT + OPEN_OUT)) {
                unclaimed(fd);
                inodes.forget(k.id, 1); // nor will it forget the entry's reference
            }
        }

        private void release(long unique) {
            result(unique, closeOpenFile((int) in.getLong(IN_HEADER)));
        }

        /** Forgets an open file (its share of the node's cache and passthrough state) and closes it. */
        private int closeOpenFile(int fd) {
            OpenFile f = openFiles.remove(fd);
            if (f != null) {
                int close = 0;
                synchronized (f.node) {
                    if (f.cached) f.node.cachedOpens--;
                    if (f.passthrough && --f.node.passthroughOpens == 0) {
                        close = f.node.backingId;
                        f.node.backingId = 0;
                    }
                }
                if (close > 0) {
                    note.putInt(40, close);
                    Posix.ioctl(devFd, DEV_IOC_BACKING_CLOSE, note.address() + 40);
                }
            }
            return union.release(fd);
        }

        /** A descriptor open on a node, or -1. */
        private int openFd(KNode node) {
            for (java.util.Map.Entry<Integer, OpenFile> e : openFiles.entrySet()) {
                if (e.getValue().node == node) return e.getKey();
            }
            return -1;
        }

        /**
         * inode_owner_or_capable for the request's caller: its fsuid is the file's owner as the mount shows
         * it, or it has CAP_FOWNER (see {@link Callers} for the rule).
         */
        private boolean ownerOrCapable(int owner) {
            return uid() == owner || Callers.capable(in.getInt(IH_PID), uid(), Callers.CAP_FOWNER);
        }

        /** Whether the node is open for writing (through strata: passthrough opens are opened through it too). */
        private boolean openForWriting(KNode node) {
            for (OpenFile f : openFiles.values()) if (f.node == node && f.writable) return true;
            return false;
        }

        /** O_TMPFILE: a file without a name; the kernel holds it as a node of its own. */
        private void tmpfile(long unique, KNode dir) {
            int flags = in.getInt(IN_HEADER);
            String p = inodes.path(dir);
            if (p == null) { error(unique, ENOENT); return; }
            int mode = masked(dir, in.getInt(IN_HEADER + 4), in.getInt(IN_HEADER + 8));
            int fd = union.tmpfile(p, mode, flags, uid(), gid());
            if (fd < 0) { error(unique, -fd); return; }
            if (!opened(unique, fd, union.fgetattr(fd, stat))) return;
            KNode k = inodes.anonymous(stat.getLong(Stat.OFF_INO));
            fillEntry(0, k);
            replyOpened(unique, fd, k);
        }

        // ------------------------------------------------------------ S_ISUID / S_ISGID (HANDLE_KILLPRIV_V2)

        /** Clears what a write or O_TRUNC by a caller without CAP_FSETID clears on the file at p (null: by fd) / fd. */
        private int killSuidGid(String p, int fd) {
            int mode = privsToKill(p, fd, false);
            return mode < 0 ? 0 : setMode(p, fd, mode);
        }

        /**
         * The mode a regular file keeps once the request's caller changed it, as the VFS's
         * setattr_should_drop_suidgid / setattr_should_drop_sgid decide (fs/attr.c): S_ISUID goes, S_ISGID
         * goes if group-execute is set or the caller is not in the file's group, nor (orCapable: a chown)
         * has CAP_FSETID; write, truncate and O_TRUNC are flagged only for callers without it. -1: nothing
         * to clear (or the file cannot be read, which the operation itself will report).
         */
        private int privsToKill(String p, int fd, boolean orCapable) {
            int r = fd >= 0 ? union.fgetattr(fd, privStat) : p != null ? union.getattr(p, privStat) : -ENOENT;
            if (r < 0) return -1;
            int mode = privStat.getInt(Stat.OFF_MODE);
            if ((mode & Posix.S_IFMT) != Posix.S_IFREG || (mode & (S_ISUID | S_ISGID)) == 0) return -1;
            int keep = mode & 07777 & ~S_ISUID;
            if ((mode & S_ISGID) != 0
                    && ((mode & S_IXGRP) != 0 || !callerInGroupOrCapable(privStat.getInt(Stat.OFF_GID), orCapable))) {
                keep &= ~S_ISGID;
            }
            return keep == (mode & 07777) ? -1 : keep;
        }

        private int setMode(String p, int fd, int mode) {
            return p != null ? union.chmod(p, mode) : union.fchmod(fd, mode);
        }

        /**
         * Whether the request's caller is in group gid (its fsgid, or a supplementary group) or, if asked,
         * has CAP_FSETID; the groups and capabilities are read from /proc/PID/status (the header has only
         * the fsuid/fsgid). Only consulted for a set-group-ID file without group-execute.
         */
        private boolean callerInGroupOrCapable(int gid, boolean orCapable) {
            if (gid() == gid) return true;
            java.util.List<String> lines;
            try {
                lines = java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/" + in.getInt(IH_PID) + "/status"),
                        java.nio.charset.StandardCharsets.ISO_8859_1);
            } catch (java.io.IOException | RuntimeException e) {
                return orCapable && uid() == 0; // the caller is gone: its fsgid is all there is
            }
            for (String l : lines) {
                if (l.startsWith("Groups:")) {
                    for (String g : l.substring(7).trim().split("\\s+")) {
                        if (!g.isEmpty() && Integer.parseUnsignedInt(g) == gid) return true;
                    }
                } else if (orCapable && l.startsWith("CapEff:")) {
                    if ((Long.parseUnsignedLong(l.substring(7).trim(), 16) & (1L << CAP_FSETID)) != 0) return true;
                }
            }
            return false;
        }

        private void read(long unique) {
            int fd = (int) in.getLong(IN_HEADER);
            long off = in.getLong(IN_HEADER + 8);
            int size = Math.min(in.getInt(IN_HEADER + 16), OUT_BUF - OUT_HEADER);
            long n = union.read(fd, outData, size, off);
            if (n < 0) { error(unique, (int) -n); return; }
            reply(unique, (int) n);
        }

        private void write(long unique) {
            int fd = (int) in.getLong(IN_HEADER);
            long off = in.getLong(IN_HEADER + 8);
            int size = in.getInt(IN_HEADER + 16);
            if ((in.getInt(IN_HEADER + 20) & WRITE_KILL_SUIDGID) != 0) {
                // a caller without CAP_FSETID: cleared before the data change, as the VFS does. Direct-I/O
                // writes carry the flag with or without HANDLE_KILLPRIV_V2 (the kernel clears nothing for them)
                OpenFile f = openFiles.get(fd);
                int r;
                names.readLock().lock(); // the path must name this file while it is changed (see namesLock)
                try {
                    r = killSuidGid(f == null ? null : inodes.path(f.node), fd);
                } finally {
                    names.readLock().unlock();
                }
                if (r < 0) { error(unique, -r); return; }
            }
            long n = union.write(fd, writeData, size, off);
            if (n < 0) { error(unique, (int) -n); return; }
            OpenFile f = openFiles.get(fd);
            if (f != null && f.otherNames) invalidateSiblings(f.node.ino, f.node);
            outData.putInt(0, (int) n);
            outData.putInt(4, 0);
            reply(unique, 8);
        }

        private void statfs(long unique) {
            int r = union.statfs(stat);
            if (r < 0) { error(unique, -r); return; }
            // struct statvfs (x86_64): bsize 0, frsize 8, blocks 16, bfree 24, bavail 32, files 40, ffree 48, namemax 80
            outData.putLong(0, stat.getLong(16));
            outData.putLong(8, stat.getLong(24));
            outData.putLong(16, stat.getLong(32));
            outData.putLong(24, stat.getLong(40));
            outData.putLong(32, stat.getLong(48));
            outData.putInt(40, (int) stat.getLong(0));
            outData.putInt(44, (int) stat.getLong(80));
            outData.putInt(48, (int) stat.getLong(8));
            for (int i = 52; i < KSTATFS; i += 4) outData.putInt(i, 0);
            reply(unique, KSTATFS);
        }

        private void setxattr(long unique, KNode node) {
            int size = in.getInt(IN_HEADER), flags = in.getInt(IN_HEADER + 4);
            int nameOff = IN_HEADER + 8;
            String name = cstr(nameOff);
            int valueOff = cstrEnd(nameOff);
            String p = inodes.path(node);
            if (p != null) { result(unique, union.setxattr(p, name, in.slice(valueOff), size, flags)); return; }
            int fd = openFd(node); // a removed name that is still open: through the open file
            result(unique, fd < 0 ? -ENOENT : union.fsetxattr(fd, name, in.slice(valueOff), size, flags));
        }

        private void xattrRead(long unique, KNode node, boolean get) {
            String p = inodes.path(node);
            int fd = p == null ? openFd(node) : -1; // a removed name that is still open: through the open file
            if (p == null && fd < 0) { error(unique, ENOENT); return; }
            int size = Math.min(in.getInt(IN_HEADER), OUT_BUF - OUT_HEADER);
            int r;
            if (get) {
                String name = cstr(IN_HEADER + 8);
                r = p != null ? union.getxattr(p, name, outData, size) : union.fgetxattr(fd, name, outData, size);
            } else {
                java.util.function.BooleanSupplier trusted = () -> Callers.capable(in.getInt(IH_PID), uid(), Callers.CAP_SYS_ADMIN);
                r = p != null ? union.listxattr(p, outData, size, trusted) : union.flistxattr(fd, outData, size, trusted);
            }
            if (r < 0) { error(unique, -r); return; }
            if (size == 0) {
                outData.putInt(0, r);
                outData.putInt(4, 0);
                reply(unique, 8);
            } else {
                reply(unique, r);
            }
        }

        private void removexattr(long unique, KNode node) {
            String p = inodes.path(node);
            if (p != null) { result(unique, union.removexattr(p, cstr(IN_HEADER))); return; }
            int fd = openFd(node); // a removed name that is still open: through the open file
            result(unique, fd < 0 ? -ENOENT : union.fremovexattr(fd, cstr(IN_HEADER)));
        }

        private void readdir(long unique, KNode dir, boolean plus) {
            long offset = in.getLong(IN_HEADER + 8);
            int size = Math.min(in.getInt(IN_HEADER + 16), OUT_BUF - OUT_HEADER);
            String p = inodes.path(dir);
            Inodes.Listing h = dir.listing;
            if (offset == 0 || h == null) {
                // a listing is taken at offset 0 (and where none is kept) and shared by every reader of
                // the directory: offsets are cookies in name order, not indexes, so a reader that goes on
                // in a newer listing neither repeats nor skips a name that stayed (see Inodes.Listing)
                if (p == null) { error(unique, ENOENT); return; }
                ArrayList<String> names = new ArrayList<>();
                ArrayList<Integer> types = new ArrayList<>();
                ArrayList<Long> inos = new ArrayList<>();
                int r = union.readdir(p, (name, type, ino) -> {
                    names.add(name);
                    types.add(type);
                    inos.add(ino);
                    return true;
                });
                if (r < 0) { error(unique, -r); return; }
                h = Inodes.Listing.of(names, types, inos);
                dir.listing = h;
            }
            int pos = 0;
            int i = h.after(offset);
            for (; i < h.names.length; i++) {
                String name = h.names[i];
                byte[] nb = name.getBytes(Posix.NAMES);
                int rec = DIRENT + ((nb.length + 7) & ~7);
                int need = plus ? ENTRY_OUT + rec : rec;
                if (pos + need > size) break;
                int d = pos;
                if (plus) {
                    boolean dot = name.equals(".") || name.equals("..");
                    boolean filled = false;
                    if (!dot && p != null) {
                        String cp = p.length() == 1 ? "/" + name : p + "/" + name;
                        if (union.getattr(cp, stat) == 0) {
                            entry(pos, dir, name);
                            filled = true;
                        }
                    }
                    if (!filled) for (int j = 0; j < ENTRY_OUT; j += 8) outData.putLong(pos + j, 0);
                    d = pos + ENTRY_OUT;
                }
                outData.putLong(d, h.inos[i]);
                outData.putLong(d + 8, h.cookies[i]);
                outData.putInt(d + 16, nb.length);
                outData.putInt(d + 20, (h.types[i] >>> 12) & 0xf);
                outData.put(d + DIRENT, nb, 0, nb.length);
                for (int j = DIRENT + nb.length; j < rec; j++) outData.putByte(d + j, (byte) 0);
                pos += need;
            }
            if (pos == 0 && dir.listing == h) dir.listing = null; // the end was read: the engine keeps its own cache
            reply(unique, pos);
        }

        private void fallocate(long unique) {
            int fd = (int) in.getLong(IN_HEADER);
            long off = in.getLong(IN_HEADER + 8), len = in.getLong(IN_HEADER + 16);
            int mode = in.getInt(IN_HEADER + 24);
            int r = union.fallocate(fd, mode, off, len);
            OpenFile f = openFiles.get(fd);
            if (r == 0 && f != null && f.otherNames) invalidateSiblings(f.node.ino, f.node);
            result(unique, r);
        }

        /**
         * The ioctls the kernel sends for lsattr/chattr (fileattr_get/set: an OPEN, this, a RELEASE; a
         * directory's with FUSE_IOCTL_DIR and no handle): answered by path, on the top layer's file, a
         * set after a copy-up. Every other ioctl is not one a layer file answers for the mount: ENOTTY.
         */
        private void ioctl(long unique, KNode node) {
            long cmd = in.getInt(IN_HEADER + 12) & 0xffffffffL;
            int inSize = in.getInt(IN_HEADER + 24), outSize = in.getInt(IN_HEADER + 28);
            boolean get = cmd == Posix.FS_IOC_GETFLAGS || cmd == Posix.FS_IOC32_GETFLAGS || cmd == Posix.FS_IOC_FSGETXATTR;
            boolean set = cmd == Posix.FS_IOC_SETFLAGS || cmd == Posix.FS_IOC32_SETFLAGS || cmd == Posix.FS_IOC_FSSETXATTR;
            int size = cmd == Posix.FS_IOC_FSGETXATTR || cmd == Posix.FS_IOC_FSSETXATTR ? Posix.FSXATTR_SIZE : 4;
            // the 32-bit numbers reach a FUSE server only from a 64-bit caller (the compat layer turns a
            // 32-bit caller's into the 64-bit ones), and only because the VFS does not know them there: it
            // then checks nothing. The kernel overlay and its layers' file systems answer ENOTTY
            if (!get && !set || cmd == Posix.FS_IOC32_GETFLAGS || cmd == Posix.FS_IOC32_SETFLAGS) { error(unique, ENOTTY); return; }
            if (get ? outSize < size : inSize < size) { error(unique, EINVAL); return; }
            String p = inodes.path(node);
            if (p == null) { error(unique, ENOENT); return; }
            if (set) {
                // the VFS checks this before it sends the 64-bit ones (vfs_fileattr_set); checked again here
                // so that no flag ioctl a FUSE server is sent changes a file for a caller who is not its owner
                int r = union.getattr(p, privStat);
                if (r < 0) { error(unique, -r); return; }
                if (!ownerOrCapable(privStat.getInt(Stat.OFF_UID))) { error(unique, EPERM); return; }
            }
            Pointer buf = outData.slice(IOCTL_OUT);
            for (int i = 0; i < Math.max(size, outSize) && i < 64; i++) buf.putByte(i, (byte) 0);
            int r;
            if (get) {
                r = union.getFileattr(p, cmd == Posix.FS_IOC32_GETFLAGS ? Posix.FS_IOC_GETFLAGS : cmd, buf);
            } else {
                for (int i = 0; i < size; i++) buf.putByte(i, in.getByte(IN_HEADER + IOCTL_IN + i));
                r = union.setFileattr(p, cmd == Posix.FS_IOC32_SETFLAGS ? Posix.FS_IOC_SETFLAGS : cmd, buf);
                if (r == 0) invalidate(node.id); // ctime changed
            }
            if (r < 0) { error(unique, -r); return; }
            for (int i = 0; i < IOCTL_OUT; i += 4) outData.putInt(i, 0);
            reply(unique, IOCTL_OUT + (get ? Math.min(outSize, 64) : 0));
        }

        private void lseek(long unique) {
            int fd = (int) in.getLong(IN_HEADER);
            long off = in.getLong(IN_HEADER + 8);
            int whence = in.getInt(IN_HEADER + 16);
            long r = Posix.lseek(fd, off, whence);
            if (r < 0) { error(unique, (int) -r); return; }
            outData.putLong(0, r);
            reply(unique, 8);
        }
    }
}
