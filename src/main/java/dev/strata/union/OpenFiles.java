package dev.strata.union;

import dev.strata.posix.Posix;
import dev.strata.posix.Stat;
import jnr.ffi.Pointer;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantReadWriteLock;

import static dev.strata.posix.Errno.*;
import static dev.strata.posix.Posix.*;

/**
 * Open files (the kernel's file.c): descriptors, reads that follow a copy-up, writes, and the files
 * removed while open.
 */
final class OpenFiles {
    private final Overlay ovl;

    OpenFiles(Overlay ovl) { this.ovl = ovl; }

    final ConcurrentHashMap<Integer, Node> openFiles = new ConcurrentHashMap<>();

    /**
     * Descriptors opened read-only on a lower file, by descriptor: once the file is copied up, reads
     * move to the upper copy, so they see what was written since (as on the kernel since Linux 4.19).
     */
    final ConcurrentHashMap<Integer, LowerHandle> lowerHandles = new ConcurrentHashMap<>();

    static final class LowerHandle {
        final Node node;
        volatile int upperFd = -1;
        /**
         * The upper copy is metadata only (metacopy=on, an index entry's too): fstat and
         * changes go to it, reads stay on the lower file, which holds the data, until the data comes up.
         */
        volatile boolean dataBelow;
        /** An O_PATH descriptor of a removed lower object ({@link RemovedLower}): a change copies it up. */
        final boolean removedObject;
        LowerHandle(Node node) { this(node, false); }
        LowerHandle(Node node, boolean removedObject) { this.node = node; this.removedObject = removedObject; }
    }

    /**
     * Read-only descriptors of metadata-only copies (overlay.metacopy), by descriptor: the descriptor is
     * the file that holds the metadata (fstat, fchmod... through it act on it), reads go to the file
     * below that holds the data, as the kernel's ovl_real_file opens the lower data file, until the data
     * is copied up; then to the upper file (which the copy-up opens, see {@link CopyUp#dataCopiedUp}).
     */
    final ConcurrentHashMap<Integer, MetaHandle> metaHandles = new ConcurrentHashMap<>();

    static final class MetaHandle {
        final Node node;
        final int dataFd;
        /** st_ino of the file the descriptor is open on (other names of an upper file share it). */
        final long metaIno;
        /** The upper file once it has the data, else -1. */
        volatile int upperFd = -1;
        MetaHandle(Node node, int dataFd, long metaIno) { this.node = node; this.dataFd = dataFd; this.metaIno = metaIno; }
        int readFd() { int u = upperFd; return u >= 0 ? u : dataFd; }
    }

    /**
     * Files removed while open. libfuse 2 keeps such a file alive by renaming it to ".fuse_hiddenXXXX"
     * and unlinking that name on the last close; in an overlay that name would land in the upper
     * layer, so strata removes the real name at once (whiteout and all) and only remembers the hidden
     * path here: fstat then reports st_nlink 0, as on the kernel overlay.
     */
    final ConcurrentHashMap<String, Node> hidden = new ConcurrentHashMap<>();

    static final String FUSE_HIDDEN = ".fuse_hidden";

    /**
     * O_PATH descriptors of removed upper objects the kernel still holds without an open strata made:
     * a fifo, socket or device the kernel opened itself, a directory, a symlink. The kernel overlay
     * keeps the upper inode of such an object, and fchmod, fchown, futimens and the xattr calls through
     * the descriptor still change it; strata keeps this descriptor for them ({@link #holdRemoved}),
     * which the f*xattr calls and fchmod refuse (EBADF), so changes go through its /proc/self/fd link.
     */
    final Set<Integer> pathHandles = ConcurrentHashMap.newKeySet();

    /**
     * Before the name {@code path} is removed or renamed over while the kernel holds its node: an O_PATH
     * descriptor of the object (a directory too; released with {@link #release}), else -1. An upper
     * object's descriptor is changed through as it is; a lower one's (not a regular file: those the
     * kernel opens through strata; but a lower file of the index, which the removal brings up through
     * the index, and the handle follows the copy) is read only, and a change through it copies the
     * object up first, as the kernel overlay does ({@link RemovedLower}).
     */
    int holdRemoved(String path) {
        if (!ovl.hasUpper) return -1;
        ovl.lock.readLock().lock();
        try {
            Node n = ovl.namei.resolve(path);
            if (Namei.err(n) != 0 || n.negative() || n.rel.isEmpty()) return -1;
            boolean lower = n.top() != 0;
            // a lower regular file only where it is an indexed file: its removal brings it up through the
            // index first (Index#nlinkStart), and the handle then follows the copy (CopyUp#switchLowerHandles)
            if (lower && n.type == S_IFREG && !(ovl.index != null && ovl.index.needsIndex(n))) return -1;
            int fd = lower ? ovl.removedLower.hold(n) : ovl.stack[0].openat(n.rel, O_PATH | O_NOFOLLOW, 0);
            if (fd < 0) return -1;
            pathHandles.add(fd);
            openFiles.put(fd, n);
            if (lower) lowerHandles.put(fd, new LowerHandle(n, true));
            return fd;
        } finally {
            ovl.lock.readLock().unlock();
        }
    }

    /**
     * A name went (removed, renamed over or away: {@link Remove#markGone}): files opened through an
     * earlier node of the same path, one the lookup cache has dropped since (an index copy-up drops the
     * cached lower names of the file it brings up), lose it too, so that they answer from their
     * descriptor instead of looking up whatever takes the name next.
     */
    void nameGone(Node n, boolean deleted) {
        if (openFiles.isEmpty()) return;
        for (Node o : openFiles.values()) {
            if (o == n || o.gone || !o.rel.equals(n.rel)) continue;
            o.gone = true;
            if (deleted) o.deleted = true;
        }
    }

    /** Whether fd is one of {@link #pathHandles} (O_PATH: changes through its /proc/self/fd link). */
    boolean pathOnly(int fd) {
        return !pathHandles.isEmpty() && pathHandles.contains(fd);
    }

    /** The /proc/self/fd link of a descriptor, which a call that follows it resolves to the object itself. */
    static String proc(int fd) {
        return "/proc/self/fd/" + fd;
    }

    /** Closes the descriptors of {@link #pathHandles} (the mount is going away). */
    void closePathHandles() {
        for (Integer fd : pathHandles) release(fd);
    }

    /**
     * Set by the libfuse 2 transport, which hides removed open files (a rename to ".fuse_hiddenXXXX")
     * and lowers their st_nlink by one. Other transports pass such a rename through as it is.
     */
    volatile boolean libfuseHidesOpenFiles;

    void libfuseHidesOpenFiles() { libfuseHidesOpenFiles = true; }

    /**
     * For a path libfuse 2 gave a removed open file (".fuse_hiddenXXXX", see {@link #hidden}): a descriptor
     * open on it (changes go through the open file, as on the kernel transport), -ENOENT if none is left;
     * -1 for any other path.
     */
    int hiddenFd(String path) {
        if (hidden.isEmpty()) return -1;
        Node h = hidden.get(path);
        if (h == null) return -1;
        int any = -ENOENT;
        for (java.util.Map.Entry<Integer, Node> e : openFiles.entrySet()) {
            if (e.getValue() != h) continue;
            // one whose changes reach the file (opened on the upper, or a lower open that moved to its copy)
            LowerHandle lh = lowerHandles.get(e.getKey());
            if (lh == null || lh.upperFd >= 0) return e.getKey();
            any = e.getKey();
        }
        return any;
    }

    /**
     * Set by the kernel transport when the kernel keeps a writeback cache of file data: it then reads the
     * pages a partial write does not cover through the writer's handle, so a write-only open gets a
     * readable descriptor, and it writes pages back at offsets it computed itself (O_APPEND included:
     * it knows the size), so strata's descriptor must not append on its own.
     */
    volatile boolean writebackCache;

    void writebackCache() { writebackCache = true; }

    /**
     * The flags strata opens its descriptor with for an open with {@code flags}: as given, and under the
     * writeback cache ({@link #writebackCache}) O_WRONLY made O_RDWR and O_APPEND left out (fuse-overlayfs
     * and libfuse's passthrough_ll do the same). Permission checks (the kernel's, Protect's chattr +a) are
     * made on the flags as given.
     */
    int fdFlags(int flags) {
        if (!writebackCache) return flags;
        if ((flags & O_ACCMODE) == O_WRONLY) flags = (flags & ~O_ACCMODE) | O_RDWR;
        return flags & ~O_APPEND;
    }

    /** Opens a file; a write open copies it up first. Returns the descriptor to use for I/O. */
    public int open(String path, int flags) {
        boolean write = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC) != 0;
        // O_DIRECT is the kernel's business on the mount side (FUSE bypasses its page cache for it);
        // strata's own descriptor reads into buffers O_DIRECT's alignment rules would refuse
        int oflags = flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_DIRECT);
        if (write && !ovl.hasUpper) return -EROFS;
        CopyUp.Seen seen = null;
        if (write && (flags & O_TRUNC) == 0) {
            seen = new CopyUp.Seen();
            int r = ovl.unlockedCopy.copyDataUnlocked(path, n -> ovl.protect.open(n, flags), seen);
            if (r < 0) return r;
        }
        ReentrantReadWriteLock.ReadLock rl = ovl.lock.readLock();
        ReentrantReadWriteLock.WriteLock wl = ovl.lock.writeLock();
        if (write) wl.lock(); else rl.lock();
        try {
            Node n = ovl.namei.resolve(path);
            int e = Namei.err(n);
            if (e != 0) return e;
            // ovl_open: the data of a metadata-only copy is looked up (data-only layers) and its digest checked first
            int v = ovl.lowerdata.verify(n);
            if (v < 0) return v;
            if (write) {
                int r = ovl.protect.open(n, flags); // append-only, immutable (may_open)
                if (r != 0) return r;
                if (n.isDir()) return -EISDIR;
                r = ovl.copy.copyUp(n, (flags & O_TRUNC) == 0, seen);
                if (r < 0) return r;
            }
            String at = n.relIn(n.top());
            int dataFd = -1;
            if (n.metacopy() && ovl.metaCopy.stillMetacopy(n)) {
                // write opens copied the data up above; a read of a metadata-only copy reads the data below
                int dl = n.dataLayer();
                dataFd = ovl.stack[dl].openat(n.relIn(dl), O_RDONLY | O_NOFOLLOW, noatime(true));
                if (dataFd < 0) return dataFd;
            }
            int fd = ovl.stack[n.top()].openat(at.isEmpty() ? "." : at, fdFlags(oflags), noatime(!ovl.hasUpper || n.top() != 0));
            if (fd == -EACCES && fdFlags(oflags) != oflags && (oflags & O_ACCMODE) == O_WRONLY) {
                // a daemon that may not read the file (not root, a file of an unmapped owner): write-only
                // then, as asked; a write that needs a page read back fails rather than the open
                fd = ovl.stack[n.top()].openat(at.isEmpty() ? "." : at, oflags & ~O_APPEND, noatime(!ovl.hasUpper || n.top() != 0));
            }
            if (fd < 0 && dataFd >= 0) Posix.close(dataFd);
            if (fd >= 0 && dataFd >= 0) {
                Stat ms = Stat.local2();
                metaHandles.put(fd, new MetaHandle(n, dataFd, Posix.fstat(fd, ms) == 0 ? ms.ino() : -1));
            }
            if (fd >= 0) {
                openFiles.put(fd, n);
                if (n.top() != 0 || !ovl.hasUpper) ovl.lazy.opened(n.top(), fd);
                // every descriptor on a lower object is known as one (see upperFdOf): changes never go through it
                if (ovl.hasUpper && n.top() != 0) lowerHandles.put(fd, new LowerHandle(n));
                // the kernel overlay opens the real file with O_DIRECT: a file system without direct I/O refuses the open
                if ((flags & O_DIRECT) != 0 && direct(fd, write) == -EINVAL) {
                    release(fd);
                    return -EINVAL;
                }
            }
            return fd;
        } finally {
            if (write) wl.unlock(); else rl.unlock();
        }
    }

    /**
     * O_NOATIME where strata's own reads must not change the file's atime: always for a lower file (as
     * the kernel overlay opens its real lower files: a lower layer never changes, and the overlay shows
     * no access to it), and for an upper file on a {@code noatime} mount. Otherwise the reads of the
     * upper file update its atime by the rule of the upper's own mount (relatime as a rule). See
     * {@link Layer#openat(String, int, boolean)} for where the kernel refuses it.
     */
    boolean noatime(boolean lower) {
        return lower || ovl.opts.atime == dev.strata.options.MountOptions.Atime.NOATIME;
    }

    /**
     * The file an open descriptor reads, opened again read-only below another root of its layer
     * ({@code rootOfLayer} gives it by layer index, or -1): a copy of the layer's mount with other mount
     * flags, such as the access-time mode. -1 where there is none or the name no longer leads to that file.
     */
    public int reopenBeneath(int fd, java.util.function.IntUnaryOperator rootOfLayer) {
        Node n = openFiles.get(fd);
        if (n == null || n.rel.isEmpty()) return -1;
        int root = rootOfLayer.applyAsInt(n.top());
        if (root < 0) return -1;
        int other = dev.strata.layer.Layer.openBeneath(root, n.rel, O_RDONLY);
        if (other < 0) return -1;
        Stat a = Stat.local2(), b = Stat.local();
        if (Posix.fstat(fd, a) == 0 && Posix.fstat(other, b) == 0 && a.dev() == b.dev() && a.ino() == b.ino()) return other;
        Posix.close(other);
        return -1;
    }

    /**
     * Whether an open file has other names (st_nlink > 1). libfuse 2 gives each name its own FUSE
     * inode, so the kernel's page cache of one name would not see writes through another: such files
     * are served with direct I/O.
     */
    public boolean hasOtherNames(int fd) {
        Stat st = Stat.local2();
        return Posix.fstat(fd, st) == 0 && st.type() == S_IFREG && st.nlink() > 1;
    }

    /**
     * Whether an open descriptor reads the same file for as long as it is open: false for a read-only
     * descriptor on a lower file, which moves to the upper copy if the file is copied up, and for a file
     * of a lazy layer, whose data strata reads from the layer's tar (so never a passthrough backing file).
     */
    public boolean stableFd(int fd) {
        return !lowerHandles.containsKey(fd) && !metaHandles.containsKey(fd) && ovl.lazy.of(fd) == null;
    }

    /** The descriptor reads of fd go to (the data below a metadata-only copy, a lower handle's upper copy). */
    int readFd(int fd) {
        if (!metaHandles.isEmpty()) {
            MetaHandle m = metaHandles.get(fd);
            if (m != null) return m.readFd();
        }
        if (!lowerHandles.isEmpty()) {
            LowerHandle h = lowerHandles.get(fd);
            if (h != null) return reading(h, fd);
        }
        return fd;
    }

    public long read(int fd, Pointer buf, long size, long off) {
        if (!metaHandles.isEmpty()) {
            MetaHandle m = metaHandles.get(fd);
            if (m != null) return Posix.pread(m.readFd(), buf, size, off);
        }
        if (!lowerHandles.isEmpty()) {
            LowerHandle h = lowerHandles.get(fd);
            if (h != null) {
                int c = reading(h, fd);
                if (c != fd) return Posix.pread(c, buf, size, off); // copied up since: the upper copy
            }
        }
        dev.strata.layer.LazyTar.Span lazy = ovl.lazy.of(fd);
        if (lazy != null) return lazy.read(buf, size, off);
        return Posix.pread(fd, buf, size, off);
    }

    /**
     * How many bytes a read of [off, off + size) of fd gets now, from where its reads go (as
     * {@link #read}): what the kernel transport announces in a READ reply before it splices them
     * ({@link #splice}); -errno if the file cannot be looked at. {@code st} is a struct stat of scratch.
     */
    public long readable(int fd, long off, long size, Pointer st) {
        int r = readFd(fd);
        long end;
        dev.strata.layer.LazyTar.Span lazy = r == fd ? ovl.lazy.of(fd) : null;
        if (lazy != null) {
            end = lazy.size();
        } else {
            int e = Posix.fstat(r, st);
            if (e < 0) return e;
            end = st.getLong(Stat.OFF_SIZE);
        }
        return off < 0 ? -EINVAL : Math.max(0, Math.min(size, end - off));
    }

    /**
     * splice(2) of up to {@code len} bytes at {@code off} of fd, from where its reads go (as
     * {@link #read}), into the write end of a pipe; {@code offBuf} is a loff_t of scratch. The bytes
     * spliced (fewer at the end of the file), or -errno.
     */
    public long splice(int fd, long off, long len, int pipe, Pointer offBuf) {
        int r = readFd(fd);
        dev.strata.layer.LazyTar.Span lazy = r == fd ? ovl.lazy.of(fd) : null;
        if (lazy != null) {
            if (off < 0) return -EINVAL;
            len = Math.min(len, lazy.size() - off);
            if (len <= 0) return 0;
            r = lazy.tarFd();
            off += lazy.base();
        }
        offBuf.putLong(0, off);
        return dev.strata.posix.Pipes.splice(r, offBuf, pipe, null, len, 0);
    }

    /** SEEK_DATA/SEEK_HOLE where the reads of fd go ({@link #readFd}; a lazy file: its span of the tar). */
    public long lseek(int fd, long off, int whence) {
        int r = readFd(fd);
        return r == fd ? ovl.lazy.lseek(fd, off, whence) : Posix.lseek(r, off, whence);
    }

    /**
     * The descriptor a read-only lower handle reads now: the upper copy once the file was copied up
     * ({@link CopyUp#switchLowerHandles} opened it at copy-up time), else its own.
     */
    static int current(LowerHandle h, int fd) {
        int u = h.upperFd;
        return u >= 0 ? u : fd;
    }

    /** The descriptor fstat and xattr reads through fd go to now: {@link #current} of its lower handle, else fd. */
    int currentFd(int fd) {
        LowerHandle h = lowerHandles.isEmpty() ? null : lowerHandles.get(fd);
        return h != null ? current(h, fd) : fd;
    }

    /** The descriptor a read-only lower handle reads data from now: {@link #current}, but its own while the upper copy has no data. */
    static int reading(LowerHandle h, int fd) {
        int u = h.upperFd;
        return u >= 0 && !h.dataBelow ? u : fd;
    }

    public long write(int fd, Pointer buf, long size, long off) {
        return Posix.pwrite(fd, buf, size, off);
    }

    /**
     * copy_file_range(2) between two open files, done by the file system that holds them, as the kernel
     * overlay's ovl_copy_file_range hands it to the real files: from where the reads of {@code in} go
     * ({@link #readFd}) to {@code out}'s upper file. The real call's checks are the kernel overlay's:
     * two names of one upper file are one inode there, so an overlapping range is EINVAL, which the FUSE
     * layer (one inode per name) cannot see. A lazy layer's file is a span of its tar: EOPNOTSUPP, and
     * the kernel copies through reads and writes. A side opened with O_DIRECT through the mount
     * ({@code directIn}, {@code directOut}) is copied through its O_DIRECT descriptor ({@link #direct}),
     * as the kernel overlay opens its real file with the overlay file's flags: the real file
     * system's alignment rules then answer (ext4: EINVAL for a range not aligned to its blocks), where
     * strata's own descriptors, opened without O_DIRECT (see {@link #open}), would copy anything (fsx -Z
     * on a lower file: its probe copy_file_range(fd, 0, fd, 1, 1) changed the file here, EINVAL on the
     * kernel overlay).
     */
    public long copyFileRange(int in, long inOff, int out, long outOff, long len, long flags, boolean directIn, boolean directOut) {
        if (flags != 0) return -EINVAL;
        if (ovl.lazy.of(in) != null) return -EOPNOTSUPP;
        int din = directIn ? direct(in, false) : NOT_DIRECT, dout = directOut ? direct(out, true) : NOT_DIRECT;
        if (din != NOT_DIRECT && din < 0) return din;
        if (dout != NOT_DIRECT && dout < 0) return dout;
        return Posix.copyFileRangeAt(din != NOT_DIRECT ? din : readFd(in), inOff, dout != NOT_DIRECT ? dout : out, outOff, len);
    }

    /**
     * The file open as fd opened anew with O_DIRECT and flags (access mode, O_APPEND..., O_NOATIME
     * where the daemon may), or -errno.
     */
    private static int reopenDirect(int fd, int flags) {
        int r = Posix.openat(AT_FDCWD, "/proc/self/fd/" + fd, flags | O_DIRECT | O_CLOEXEC, 0);
        if (r == -EPERM && (flags & O_NOATIME) != 0) r = Posix.openat(AT_FDCWD, "/proc/self/fd/" + fd, flags & ~O_NOATIME | O_DIRECT | O_CLOEXEC, 0);
        return r;
    }

    /** What {@link #direct} answers for a file whose direct I/O strata serves as any other (a lazy layer's file). */
    static final int NOT_DIRECT = Integer.MIN_VALUE;

    /**
     * O_DIRECT descriptors of open files, by the open file's descriptor: {the descriptor it was opened
     * from (where the reads or writes go), the O_DIRECT one}. Closed at {@link #release}.
     */
    private final ConcurrentHashMap<Integer, int[]> directs = new ConcurrentHashMap<>();

    /**
     * The descriptor a read ({@code write}: a write) of open file fd that carries O_DIRECT goes through:
     * where its reads ({@link #readFd}) or writes go, opened again with O_DIRECT and that descriptor's own
     * status flags (O_APPEND, O_SYNC...), kept until the file is released (and opened anew when the reads
     * move, a lower file's to its copy-up). The kernel overlay's real file carries the overlay file's
     * O_DIRECT (at open, and after fcntl(F_SETFL) at the next I/O: the FUSE request's flags), so the
     * layer's file system's rules answer, where strata's own descriptors (opened without O_DIRECT, see
     * {@link #open}) would read and write any range: ext4 refuses offsets and lengths not aligned to its
     * blocks with EINVAL, a file system without direct I/O refuses it altogether (-EINVAL here).
     * {@link #NOT_DIRECT} for a file of a lazy layer (its tar) and where the file cannot be opened again
     * (then served as before).
     */
    public int direct(int fd, boolean write) {
        int src = write ? fd : readFd(fd);
        if (src == fd && ovl.lazy.of(fd) != null) return NOT_DIRECT;
        int[] d = directs.compute(fd, (k, old) -> {
            if (old != null && old[0] == src) return old;
            if (old != null && old[1] >= 0) Posix.close(old[1]);
            int fl = Posix.getfl(src);
            int r = fl < 0 ? fl : reopenDirect(src, fl & (O_ACCMODE | O_APPEND | O_NOATIME | O_SYNC | O_DSYNC));
            return new int[]{src, r >= 0 || r == -EINVAL ? r : NOT_DIRECT};
        });
        return d[1];
    }

    public int ftruncate(int fd, long size) {
        int u = lowerHandles.isEmpty() ? fd : upperFdOf(fd);
        return u < 0 ? u : Posix.ftruncate(u, size);
    }

    public int fsync(int fd, boolean dataOnly) {
        if (!ovl.opts.fsync) return 0;
        return dataOnly ? Posix.fdatasync(fd) : Posix.fsync(fd);
    }

    public int fallocate(int fd, int mode, long off, long len) { return Posix.fallocate(fd, mode, off, len); }

    public int release(int fd) {
        openFiles.remove(fd);
        int[] d = directs.isEmpty() ? null : directs.remove(fd);
        if (d != null && d[1] >= 0) Posix.close(d[1]);
        pathHandles.remove(fd);
        ovl.lazy.released(fd);
        LowerHandle h = lowerHandles.remove(fd);
        if (h != null && h.upperFd >= 0) {
            pathHandles.remove(h.upperFd); // a removed lower object's copy (RemovedLower): its number may be reused
            Posix.close(h.upperFd);
        }
        MetaHandle m = metaHandles.remove(fd);
        if (m != null) {
            Posix.close(m.dataFd);
            if (m.upperFd >= 0) Posix.close(m.upperFd);
        }
        return Posix.close(fd);
    }

    /**
     * The descriptor a change made through an open file must use once its name is gone (no path leads to
     * it): the descriptor itself when it was opened on the upper layer (an upper file, an O_TMPFILE
     * file), the upper copy a read-only lower open moved to when the file was copied up before its
     * removal; -EEXIST for a lower file that was never copied up. The kernel overlay answers EEXIST there
     * (its copy-up finds the whiteout at the name), and the lower file must never change: a lower layer is
     * shared by every mount made from it. A removed lower object of another type ({@link RemovedLower})
     * is copied up here, under the exclusive lock (-ENOENT without it), and its copy is the answer.
     */
    int upperFdOf(int fd) {
        if (!ovl.hasUpper) return -EROFS;
        LowerHandle h = lowerHandles.get(fd);
        if (h == null) return fd;
        int u = h.upperFd;
        if (u >= 0) return u;
        if (h.removedObject) return ovl.lock.isWriteLockedByCurrentThread() ? ovl.removedLower.copyUp(h) : -ENOENT;
        return -EEXIST;
    }

    /** The node a descriptor of a lower file or of a metadata-only copy was opened on, else null. */
    Node nodeOf(int fd) {
        LowerHandle h = lowerHandles.isEmpty() ? null : lowerHandles.get(fd);
        if (h != null) return h.node;
        MetaHandle m = metaHandles.isEmpty() ? null : metaHandles.get(fd);
        return m == null ? null : m.node;
    }

    /** Whether fd is the descriptor of a removed lower object ({@link RemovedLower}), copied up since or not. */
    boolean removedLowerObject(int fd) {
        LowerHandle h = lowerHandles.isEmpty() ? null : lowerHandles.get(fd);
        return h != null && h.removedObject;
    }

    /**
     * Runs a change made through an open file whose name was removed on {@link #upperFdOf its upper
     * descriptor}, under the exclusive lock (a copy-up switching lower handles to their upper copy
     * finishes first); the errno where there is none.
     */
    int onUpperOf(int fd, java.util.function.IntUnaryOperator op) {
        ovl.lock.writeLock().lock();
        try {
            int u = upperFdOf(fd);
            return u < 0 ? u : op.applyAsInt(u);
        } finally {
            ovl.lock.writeLock().unlock();
        }
    }
}
