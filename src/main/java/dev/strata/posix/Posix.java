package dev.strata.posix;

import jnr.ffi.LibraryLoader;
import jnr.ffi.Pointer;
import jnr.ffi.Runtime;

import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Thin, errno-returning wrappers over {@link LibC}. Every call returns a non-negative result or
 * {@code -errno}; nothing here throws for an OS error. Paths are relative to a directory descriptor.
 */
public final class Posix {
    private Posix() {}

    public static final LibC C;
    public static final LibCMore M;
    static {
        // jnr-ffi generates a class per interface (most of the start-up time of a mount, ~150 ms in
        // one piece here): the two halves are generated in parallel
        java.util.concurrent.FutureTask<LibCMore> more = new java.util.concurrent.FutureTask<>(new BindMore());
        Thread t = new Thread(more, "strata-libc");
        t.setDaemon(true);
        t.start();
        C = LibraryLoader.create(LibC.class).load("c");
        try {
            M = more.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while binding libc", e);
        } catch (java.util.concurrent.ExecutionException e) {
            throw new IllegalStateException("cannot bind libc: " + e.getCause(), e.getCause());
        }
    }
    /** Binds {@link LibCMore}; a class of its own (a lambda would wait for Posix's own initialization). */
    private static final class BindMore implements java.util.concurrent.Callable<LibCMore> {
        @Override public LibCMore call() { return LibraryLoader.create(LibCMore.class).load("c"); }
    }

    public static final Runtime RT = Runtime.getRuntime(C);
    /** Names travel as Latin-1 strings: one char per byte (see README, "names are bytes"). */
    public static final Charset NAMES = StandardCharsets.ISO_8859_1;

    public static final int AT_FDCWD = -100;
    public static final int AT_SYMLINK_NOFOLLOW = 0x100, AT_REMOVEDIR = 0x200, AT_SYMLINK_FOLLOW = 0x400,
            AT_EMPTY_PATH = 0x1000;
    public static final int O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_ACCMODE = 3, O_CREAT = 0100,
            O_EXCL = 0200, O_NOCTTY = 0400, O_TRUNC = 01000, O_APPEND = 02000, O_NONBLOCK = 04000,
            O_DIRECTORY = 0200000, O_NOFOLLOW = 0400000, O_CLOEXEC = 02000000, O_PATH = 010000000,
            O_LARGEFILE = 0100000, O_DIRECT = 040000, O_NOATIME = 01000000, O_SYNC = 04010000,
            O_DSYNC = 010000, O_TMPFILE = 020200000;
    public static final int S_IFMT = 0170000, S_IFSOCK = 0140000, S_IFLNK = 0120000, S_IFREG = 0100000,
            S_IFBLK = 060000, S_IFDIR = 040000, S_IFCHR = 020000, S_IFIFO = 010000;
    public static final int RENAME_NOREPLACE = 1, RENAME_EXCHANGE = 2, RENAME_WHITEOUT = 4;
    public static final int XATTR_CREATE = 1, XATTR_REPLACE = 2;
    public static final int SEEK_SET = 0, SEEK_CUR = 1, SEEK_END = 2, SEEK_DATA = 3, SEEK_HOLE = 4;
    public static final long UTIME_NOW = (1L << 30) - 1, UTIME_OMIT = (1L << 30) - 2;
    public static final long FICLONE = 0x40049409L;
    /** File attribute flags (lsattr/chattr): FS_IOC_GETFLAGS/SETFLAGS pass an int; FSGETXATTR/FSSETXATTR a struct fsxattr (28 bytes). */
    public static final long FS_IOC_GETFLAGS = 0x80086601L, FS_IOC_SETFLAGS = 0x40086602L,
            FS_IOC32_GETFLAGS = 0x80046601L, FS_IOC32_SETFLAGS = 0x40046602L,
            FS_IOC_FSGETXATTR = 0x801c581fL, FS_IOC_FSSETXATTR = 0x401c5820L;
    public static final int FS_SYNC_FL = 0x8, FS_IMMUTABLE_FL = 0x10, FS_APPEND_FL = 0x20, FS_NOATIME_FL = 0x80,
            FS_XFLAG_IMMUTABLE = 0x8, FS_XFLAG_APPEND = 0x10, FS_XFLAG_SYNC = 0x20, FS_XFLAG_NOATIME = 0x40;
    public static final int FSXATTR_SIZE = 28;
    public static final int SYNC_FILE_RANGE_WAIT_BEFORE = 1, SYNC_FILE_RANGE_WRITE = 2, SYNC_FILE_RANGE_WAIT_AFTER = 4;
    public static final int POSIX_FADV_DONTNEED = 4;
    /** madvise(2)'s MADV_DONTNEED; the page size strata assumes (x86-64, 4 KiB: the buffers' page-wise drops). */
    public static final int MADV_DONTNEED = 4, PAGE = 4096;
    private static final long SYS_GETDENTS64 = 217;

    public static boolean isDir(int mode) { return (mode & S_IFMT) == S_IFDIR; }
    public static boolean isReg(int mode) { return (mode & S_IFMT) == S_IFREG; }
    public static boolean isLnk(int mode) { return (mode & S_IFMT) == S_IFLNK; }
    public static boolean isChr(int mode) { return (mode & S_IFMT) == S_IFCHR; }

    public static int errno() { return RT.getLastError(); }

    private static int ret(int r) { return r < 0 ? -errno() : r; }

    /**
     * Names for the hottest calls (fstatat, openat, openat2, getxattrat) go to the kernel from a
     * per-thread native buffer: jnr's own String conversion runs a charset encoder char by char and
     * copies the result through JNI on every call, about a tenth of the daemon's CPU in a find (perf,
     * issue 14). Each call uses its own slots (two names at most), so nothing is shared between calls.
     */
    private static final int NAME_SLOT = 4096; // PATH_MAX with its NUL: longer names take jnr's way
    private static final ThreadLocal<Pointer[]> NAME_BUF = ThreadLocal.withInitial(
            () -> new Pointer[]{NativeMemory.allocate(NAME_SLOT), NativeMemory.allocate(NAME_SLOT)});

    /** s NUL-terminated in slot 0 or 1 of this thread's name buffers, or null if it does not fit. */
    static Pointer nativeName(String s, int slot) {
        if (s.length() >= NAME_SLOT) return null;
        byte[] b = s.getBytes(NAMES); // a Latin-1 string: one array copy
        Pointer[] buf;
        if (Thread.currentThread() instanceof ServingThread t) {
            buf = t.names;
            if (buf == null) t.names = buf = NAME_BUF.get();
        } else {
            buf = NAME_BUF.get();
        }
        Pointer p = buf[slot];
        p.put(0, b, 0, b.length);
        p.putByte(b.length, (byte) 0);
        return p;
    }
    private static long ret(long r) { return r < 0 ? -errno() : r; }

    public static int openat(int dirfd, String path, int flags, int mode) {
        Pointer n = nativeName(path, 0);
        return ret(n != null ? C.openat(dirfd, n, flags | O_CLOEXEC, mode) : C.openat(dirfd, path, flags | O_CLOEXEC, mode));
    }
    public static int close(int fd) { return ret(C.close(fd)); }
    /** fcntl(fd, F_GETFL): the open file's status flags and access mode, or -errno. */
    public static int getfl(int fd) { return ret(C.fcntl(fd, 3 /* F_GETFL */, 0)); }

    private static final long SYS_OPENAT2 = 437;
    public static final long RESOLVE_NO_XDEV = 0x01, RESOLVE_NO_MAGICLINKS = 0x02, RESOLVE_NO_SYMLINKS = 0x04, RESOLVE_BENEATH = 0x08;
    private static final ThreadLocal<Pointer> OPEN_HOW = ThreadLocal.withInitial(() -> NativeMemory.allocate(24));
    private static volatile boolean haveOpenat2 = true;

    /** Whether openat2(2) is there (Linux 5.6+; a seccomp filter may also refuse it with ENOSYS). */
    public static boolean haveOpenat2() { return haveOpenat2; }

    /**
     * openat2(2) with a struct open_how; returns the descriptor or -errno. Answers -ENOSYS without a
     * system call once the kernel said it has no openat2.
     */
    public static int openat2(int dirfd, String path, int flags, int mode, long resolve) {
        if (!haveOpenat2) return -Errno.ENOSYS;
        Pointer how = OPEN_HOW.get();
        how.putLong(0, (long) (flags | O_CLOEXEC) & 0xffffffffL);
        how.putLong(8, mode);
        how.putLong(16, resolve);
        Pointer n = nativeName(path, 0);
        long r = n != null ? M.syscall(SYS_OPENAT2, dirfd, n, how, 24) : M.syscall(SYS_OPENAT2, dirfd, path, how, 24);
        if (r >= 0) return (int) r;
        int e = errno();
        if (e == Errno.ENOSYS) haveOpenat2 = false;
        return -e;
    }
    /** Tests: behave as on a kernel without openat2 (the component-by-component walk). */
    public static void disableOpenat2ForTests() { haveOpenat2 = false; }
    public static int fstatat(int dirfd, String path, Stat st, int flags) {
        int r = fstatat(dirfd, path, st.buf, flags);
        java.lang.ref.Reference.reachabilityFence(st); // its memory is freed once st is unreachable (NativeMemory)
        return r;
    }
    /** fstatat straight into a caller's struct stat (e.g. the FUSE reply buffer). */
    public static int fstatat(int dirfd, String path, Pointer statbuf, int flags) {
        Pointer n = nativeName(path, 0);
        return ret(n != null ? C.fstatat(dirfd, n, statbuf, flags) : C.fstatat(dirfd, path, statbuf, flags));
    }
    public static int fstat(int fd, Stat st) {
        int r = ret(C.fstat(fd, st.buf));
        java.lang.ref.Reference.reachabilityFence(st);
        return r;
    }
    public static int fstat(int fd, Pointer statbuf) { return ret(C.fstat(fd, statbuf)); }

    /** statx's STATX_ATTR_IMMUTABLE and STATX_ATTR_APPEND bits in stx_attributes. */
    public static final long STATX_ATTR_IMMUTABLE = 0x10, STATX_ATTR_APPEND = 0x20;

    /**
     * The STATX_ATTR_IMMUTABLE and STATX_ATTR_APPEND bits of (dirfd, path), not following a symlink, in
     * one statx(2) without opening the file; -1 where statx fails or the file system does not report
     * both (stx_attributes_mask): then only FS_IOC_GETFLAGS on an open descriptor tells.
     */
    public static long statxProtAttributes(int dirfd, String path) {
        Pointer b = Buffers.get(256);
        int r = M.statx(dirfd, path, AT_SYMLINK_NOFOLLOW, 1 /* STATX_TYPE */, b);
        if (r < 0) return -1;
        long both = STATX_ATTR_IMMUTABLE | STATX_ATTR_APPEND;
        if ((b.getLong(0x38) & both) != both) return -1;
        return b.getLong(0x08) & both;
    }
    public static int mkdirat(int dirfd, String path, int mode) { return ret(C.mkdirat(dirfd, path, mode)); }
    public static int mknodat(int dirfd, String path, int mode, long dev) {
        return ret(C.mknodat(dirfd, path, mode, dev));
    }
    public static int symlinkat(String target, int dirfd, String path) {
        return ret(C.symlinkat(target, dirfd, path));
    }
    public static int linkat(int olddirfd, String oldpath, int newdirfd, String newpath, int flags) {
        return ret(C.linkat(olddirfd, oldpath, newdirfd, newpath, flags));
    }
    public static int unlinkat(int dirfd, String path, int flags) {
        if ((flags & AT_REMOVEDIR) != 0) NAMESPACE_GENERATION.incrementAndGet();
        return ret(C.unlinkat(dirfd, path, flags));
    }
    public static int renameat2(int olddirfd, String oldpath, int newdirfd, String newpath, int flags) {
        NAMESPACE_GENERATION.incrementAndGet();
        return ret(C.renameat2(olddirfd, oldpath, newdirfd, newpath, flags));
    }

    /**
     * renameat2 of a name known not to be a directory, without RENAME_EXCHANGE: no directory moves or
     * disappears (over a directory such a rename fails with EISDIR; a name it replaces is not a
     * directory), so directories cached by path stay valid (the namespace generation is kept). A whiteout
     * put in place from the workdir is one: each unlink of a lower file no longer reopens the
     * directories the next request needs.
     */
    public static int renameNonDir(int olddirfd, String oldpath, int newdirfd, String newpath, int flags) {
        if ((flags & RENAME_EXCHANGE) != 0) NAMESPACE_GENERATION.incrementAndGet();
        return ret(C.renameat2(olddirfd, oldpath, newdirfd, newpath, flags));
    }

    private static final java.util.concurrent.atomic.AtomicLong NAMESPACE_GENERATION = new java.util.concurrent.atomic.AtomicLong();
    /**
     * Changes whenever this process renames something or removes a directory (and when a layer is
     * opened or closed): descriptors of directories cached by path are valid only while it stays the same.
     */
    public static long namespaceGeneration() { return NAMESPACE_GENERATION.get(); }
    public static void namespaceChanged() { NAMESPACE_GENERATION.incrementAndGet(); }
    public static int fchmodat(int dirfd, String path, int mode) { return ret(C.fchmodat(dirfd, path, mode, 0)); }
    public static int fchmod(int fd, int mode) { return ret(C.fchmod(fd, mode)); }
    public static int fchownat(int dirfd, String path, int uid, int gid, int flags) {
        return ret(C.fchownat(dirfd, path, uid, gid, flags));
    }
    public static int fchown(int fd, int uid, int gid) { return ret(C.fchown(fd, uid, gid)); }
    public static int ftruncate(int fd, long len) { return ret(C.ftruncate(fd, len)); }
    public static int fsync(int fd) { return ret(C.fsync(fd)); }
    /** glibc's malloc_trim(0): free native memory back to the system (after a full collection). */
    public static void mallocTrim() {
        try {
            M.malloc_trim(0);
        } catch (UnsatisfiedLinkError e) { // not glibc: nothing to trim
        }
    }
    /**
     * {@code size} bytes of zeroed anonymous memory, resident only where touched, or null; give it back
     * with {@link #unmap} (no finalizer: a buffer of a worker that ended is returned at once).
     */
    public static Pointer map(long size) {
        Pointer p = M.mmap(null, size, 3 /* PROT_READ | PROT_WRITE */, 0x22 /* MAP_PRIVATE | MAP_ANONYMOUS */, -1, 0);
        return p == null || p.address() == -1 ? null : RT.getMemoryManager().newPointer(p.address(), size);
    }
    public static void unmap(Pointer p, long size) { M.munmap(p, size); }
    /**
     * MADV_DONTNEED: the pages of [off, off + len) of a buffer are dropped (read back as zeros); whole
     * pages the buffer owns: a {@link #map}ped one, or those inside a malloc'ed one ({@link Buffers#dropPages}).
     */
    public static void dropPages(Pointer p, long off, long len) { M.madvise(p.slice(off), len, MADV_DONTNEED); }
    /** madvise(2) on [addr, addr + len) of this process's address space: 0 or -errno. */
    public static int madvise(long addr, long len, int advice) {
        return ret(M.madvise(addr, len, advice));
    }
    /** poll(2) for one descriptor: {@code pollfd} is 8 bytes of scratch; returns revents, 0 on timeout, or -errno. */
    public static int pollIn(Pointer pollfd, int fd, int timeoutMillis) {
        pollfd.putInt(0, fd);
        pollfd.putShort(4, (short) 1); // POLLIN
        pollfd.putShort(6, (short) 0);
        int r = ret(M.poll(pollfd, 1, timeoutMillis));
        return r <= 0 ? r : pollfd.getShort(6);
    }
    public static int fdatasync(int fd) { return ret(C.fdatasync(fd)); }
    public static int fallocate(int fd, int mode, long off, long len) { return ret(M.fallocate(fd, mode, off, len)); }
    public static int syncFileRange(int fd, long off, long len, int flags) { return ret(M.sync_file_range(fd, off, len, flags)); }
    public static int syncfs(int fd) { return ret(M.syncfs(fd)); }
    public static int fadvise(int fd, long off, long len, int advice) { return -M.posix_fadvise(fd, off, len, advice); }
    public static long lseek(int fd, long off, int whence) { return ret(M.lseek(fd, off, whence)); }
    public static long pread(int fd, Pointer buf, long count, long off) { return ret(C.pread(fd, buf, count, off)); }
    public static long pwrite(int fd, Pointer buf, long count, long off) { return ret(C.pwrite(fd, buf, count, off)); }
    public static int ioctl(int fd, long request, long arg) { return ret(M.ioctl(fd, request, arg)); }
    public static int ficlone(int dstFd, int srcFd) { return ret(M.ioctl(dstFd, FICLONE, srcFd)); }
    /** MAX_HANDLE_SZ of the kernel: the largest f_handle name_to_handle_at gives. */
    public static final int MAX_HANDLE_SZ = 128;
    private static final ThreadLocal<Pointer> HANDLE = ThreadLocal.withInitial(() -> NativeMemory.allocate(8 + MAX_HANDLE_SZ + 8));

    /**
     * name_to_handle_at(2) of (dirfd, path) (AT_EMPTY_PATH for path ""), never following a symlink:
     * returns {handle_type, f_handle bytes...} packed as type in out[0] and the bytes, or null with
     * err[0] = -errno.
     */
    public static byte[] nameToHandle(int dirfd, String path, int[] type, int[] err) {
        Pointer h = HANDLE.get();
        h.putInt(0, MAX_HANDLE_SZ);
        h.putInt(4, 0);
        int r = ret(M.name_to_handle_at(dirfd, path, h, h.slice(8 + MAX_HANDLE_SZ), path.isEmpty() ? AT_EMPTY_PATH : 0));
        if (r < 0) { err[0] = r; return null; }
        int n = h.getInt(0);
        type[0] = h.getInt(4);
        byte[] b = new byte[n];
        h.get(8, b, 0, n);
        return b;
    }

    /** open_by_handle_at(2) of a handle (type and f_handle bytes) on the file system of mountFd: an fd or -errno. */
    public static int openByHandle(int mountFd, int type, byte[] fid, int flags) {
        if (fid.length > MAX_HANDLE_SZ) return -Errno.EINVAL;
        Pointer h = HANDLE.get();
        h.putInt(0, fid.length);
        h.putInt(4, type);
        h.put(8, fid, 0, fid.length);
        return ret(M.open_by_handle_at(mountFd, h, flags));
    }

    /** FS_IOC_GETFSUUID: _IOR(0x15, 0, struct fsuuid2 { u8 len; u8 uuid[16]; }). */
    static final long FS_IOC_GETFSUUID = (2L << 30) | (17L << 16) | (0x15 << 8);

    /**
     * The file system's s_uuid (16 bytes) through FS_IOC_GETFSUUID on an fd opened for reading; all
     * zeros where the file system has none (ENOTTY: s_uuid_len is 0, so s_uuid is the null uuid).
     * Returns null with err[0] = -errno on any other failure.
     */
    public static byte[] fsUuid(int fd, int[] err) {
        Pointer p = NativeMemory.allocate(32);
        int r = ret(M.ioctl(fd, FS_IOC_GETFSUUID, p.address()));
        if (r == -Errno.ENOTTY || r == -Errno.EINVAL) return new byte[16];
        if (r < 0) { err[0] = r; return null; }
        int len = p.getByte(0) & 0xff;
        byte[] u = new byte[16];
        p.get(1, u, 0, Math.min(len, 16));
        return u;
    }
    /** FS_IOC_MEASURE_VERITY: _IOWR('f', 134, struct fsverity_digest { u16 algorithm; u16 size; u8 digest[]; }). */
    static final long FS_IOC_MEASURE_VERITY = (3L << 30) | (4L << 16) | ('f' << 8) | 134;

    /**
     * The fs-verity digest of an open file (FS_IOC_MEASURE_VERITY): {algorithm (FS_VERITY_HASH_ALG_*),
     * digest bytes...}, or null with err[0] = -errno (ENODATA: no verity on the file; EOPNOTSUPP or
     * ENOTTY: a file system or kernel without fs-verity).
     */
    public static byte[] measureVerity(int fd, int[] err) {
        Pointer p = NativeMemory.allocate(4 + 64);
        p.putShort(0, (short) 0);
        p.putShort(2, (short) 64);
        int r = ret(M.ioctl(fd, FS_IOC_MEASURE_VERITY, p.address()));
        if (r < 0) { err[0] = r; return null; }
        int size = p.getShort(2) & 0xffff;
        if (size > 64) { err[0] = -Errno.EIO; return null; }
        byte[] d = new byte[1 + size];
        d[0] = (byte) p.getShort(0);
        p.get(4, d, 1, size);
        return d;
    }
    /** flock(2) operations. */
    public static final int LOCK_SH = 1, LOCK_EX = 2, LOCK_NB = 4;
    public static int flock(int fd, int op) { return ret(M.flock(fd, op)); }
    public static int fstatvfs(int fd, Pointer buf) { return ret(M.fstatvfs(fd, buf)); }
    /** The file system type (statfs f_type) of an open file, or a negative errno. */
    public static long fsType(int fd) {
        Pointer buf = Buffers.get(4096);
        int r = ret(M.fstatfs(fd, buf));
        return r < 0 ? r : buf.getLong(0);
    }
    public static final long ST_NOATIME = 1024, ST_NODIRATIME = 2048, ST_RELATIME = 4096;
    /** The mount flags (statfs f_flags: ST_RDONLY, ST_NOATIME, ST_RELATIME, ...) of the mount of an open file, or a negative errno. */
    public static long mountFlags(int fd) {
        Pointer buf = Buffers.get(4096);
        int r = ret(M.fstatfs(fd, buf));
        return r < 0 ? r : buf.getLong(80);
    }
    public static int dup(int fd) { return ret(M.dup(fd)); }
    public static int dup2(int oldfd, int newfd) { return ret(M.dup2(oldfd, newfd)); }
    public static final int MNT_DETACH = 2;
    private static final long SYS_OPEN_TREE = 428, SYS_MOUNT_SETATTR = 442;
    public static final int OPEN_TREE_CLONE = 1, AT_RECURSIVE = 0x8000;
    public static final long MOUNT_ATTR_NOATIME = 0x10, MOUNT_ATTR_STRICTATIME = 0x20, MOUNT_ATTR_RELATIME = 0,
            MOUNT_ATTR__ATIME = 0x70, MOUNT_ATTR_NODIRATIME = 0x80;

    /**
     * A detached copy of the mount at dirfd/path (open_tree(2) with OPEN_TREE_CLONE, close-on-exec), not
     * recursive: an O_PATH descriptor of its root; -errno (EPERM without CAP_SYS_ADMIN over the mount
     * namespace, ENOSYS before Linux 5.2).
     */
    public static int openTreeClone(int dirfd, String path, int atFlags) {
        long r = M.syscall(SYS_OPEN_TREE, dirfd, path, OPEN_TREE_CLONE | O_CLOEXEC | atFlags);
        return r < 0 ? -errno() : (int) r;
    }

    /** mount_setattr(2) on the mount of dirfd (AT_EMPTY_PATH): sets and clears MOUNT_ATTR_* bits. */
    public static int mountSetattr(int dirfd, long set, long clear) {
        return mountSetattr(dirfd, set, clear, 0);
    }

    /** mount_setattr(2) with its struct mount_attr: attr_set, attr_clr, propagation (0: unchanged), no userns. */
    private static int mountSetattr(int dirfd, long set, long clear, long propagation) {
        Pointer attr = NativeMemory.allocate(32);
        attr.putLong(0, set);
        attr.putLong(8, clear);
        attr.putLong(16, propagation);
        attr.putLong(24, 0);
        long r = M.syscall(SYS_MOUNT_SETATTR, dirfd, "", AT_EMPTY_PATH, attr, 32);
        java.lang.ref.Reference.reachabilityFence(attr);
        return r < 0 ? -errno() : 0;
    }

    /**
     * Makes the mount of dirfd (AT_EMPTY_PATH) private (mount_setattr(2)'s propagation field: MS_PRIVATE),
     * so that no mount or unmount elsewhere propagates into it; 0 or -errno (ENOSYS before Linux 5.12).
     */
    public static int mountSetPrivate(int dirfd) {
        return mountSetattr(dirfd, 0, 0, 1 << 18); // MS_PRIVATE
    }

    public static int umount2(String target, int flags) { return ret(M.umount2(target, flags)); }
    public static int mount(String source, String target, String fstype, long flags, String data) {
        return ret(M.mount(source, target, fstype, flags, data));
    }
    public static long read(int fd, Pointer buf, long count) { return ret(C.read(fd, buf, count)); }
    public static long write(int fd, Pointer buf, long count) { return ret(C.write(fd, buf, count)); }
    public static int umask(int mask) { return M.umask(mask); }

    /** copy_file_range at explicit offsets (the descriptors' own offsets are not used nor changed). */
    public static long copyFileRangeAt(int in, long inOff, int out, long outOff, long len) {
        Pointer offs = NativeMemory.allocate(16);
        offs.putLong(0, inOff);
        offs.putLong(8, outOff);
        long r = ret(M.copy_file_range(in, offs, out, offs.slice(8), len, 0));
        java.lang.ref.Reference.reachabilityFence(offs);
        return r;
    }

    /** copy_file_range with NULL offsets (uses and advances both file offsets). */
    public static long copyFileRange(int in, int out, long len) {
        return ret(M.copy_file_range(in, null, out, null, len, 0));
    }

    /** utimensat with two timespecs; {@code times == null} sets both to now. */
    public static int utimensat(int dirfd, String path, long aSec, long aNsec, long mSec, long mNsec, int flags) {
        Pointer t = scratch16();
        t.putLong(0, aSec); t.putLong(8, aNsec); t.putLong(16, mSec); t.putLong(24, mNsec);
        return ret(C.utimensat(dirfd, path, t, flags));
    }
    public static int futimens(int fd, long aSec, long aNsec, long mSec, long mNsec) {
        Pointer t = scratch16();
        t.putLong(0, aSec); t.putLong(8, aNsec); t.putLong(16, mSec); t.putLong(24, mNsec);
        return ret(C.futimens(fd, t));
    }
    private static final ThreadLocal<Pointer> TIMES = ThreadLocal.withInitial(() -> NativeMemory.allocate(32));
    private static Pointer scratch16() { return TIMES.get(); }

    /** readlinkat; returns the target or null with {@code err[0]} set. */
    public static String readlinkat(int dirfd, String path, int[] err) {
        Pointer buf = Buffers.get(4096);
        long n = C.readlinkat(dirfd, path, buf, 4096);
        if (n < 0) { err[0] = -errno(); return null; }
        byte[] b = new byte[(int) n];
        buf.get(0, b, 0, (int) n);
        err[0] = 0;
        return new String(b, NAMES);
    }
    public static long readlinkat(int dirfd, String path, Pointer out, long size) {
        return ret(C.readlinkat(dirfd, path, out, size));
    }

    // ---- xattrs: l*xattr on a path; callers pass "/proc/self/fd/N/name" for fd-relative access ----
    public static long lgetxattr(String path, String name, Pointer value, long size) {
        return ret(M.lgetxattr(path, name, value, size));
    }
    public static int lsetxattr(String path, String name, Pointer value, long size, int flags) {
        return ret(M.lsetxattr(path, name, value, size, flags));
    }
    public static long llistxattr(String path, Pointer list, long size) { return ret(M.llistxattr(path, list, size)); }
    public static int lremovexattr(String path, String name) { return ret(M.lremovexattr(path, name)); }

    private static final long SYS_GETXATTRAT = 464;
    private static volatile boolean haveGetxattrat = true;
    private static final ThreadLocal<Pointer> XATTR_ARGS = ThreadLocal.withInitial(() -> NativeMemory.allocate(16));

    /**
     * lgetxattr of (dirfd, rel) without building a path: getxattrat(2) where the kernel has it (6.13+),
     * else lgetxattr on "/proc/self/fd/N/rel" (which costs the kernel a procfs walk).
     */
    public static long getxattrAt(int dirfd, String rel, String name, Pointer value, long size) {
        if (haveGetxattrat) {
            Pointer args = XATTR_ARGS.get();
            args.putLong(0, value == null ? 0 : value.address());
            args.putInt(8, (int) size);
            args.putInt(12, 0);
            Pointer nr = nativeName(rel, 0), nn = nr == null ? null : nativeName(name, 1);
            long r = nn != null ? M.syscall(SYS_GETXATTRAT, dirfd, nr, AT_SYMLINK_NOFOLLOW, nn, args, 16)
                    : M.syscall(SYS_GETXATTRAT, dirfd, rel, AT_SYMLINK_NOFOLLOW, name, args, 16);
            if (r >= 0) return r;
            int e = errno();
            if (e != Errno.ENOSYS) return -e;
            haveGetxattrat = false;
        }
        return ret(M.lgetxattr("/proc/self/fd/" + dirfd + "/" + rel, name, value, size));
    }

    /** The value of an xattr of (dirfd, rel) as bytes, or null if absent or unreadable. */
    public static byte[] getxattrAt(int dirfd, String rel, String name) {
        Pointer buf = Buffers.get(65536);
        long n = getxattrAt(dirfd, rel, name, buf, 256); // most values are tiny; a big size costs the kernel a big buffer
        if (n == -Errno.ERANGE) n = getxattrAt(dirfd, rel, name, buf, 65536);
        if (n < 0) return null;
        byte[] b = new byte[(int) n];
        buf.get(0, b, 0, (int) n);
        return b;
    }

    /** The value of an xattr of an open file as bytes, or null if absent or unreadable. */
    public static byte[] fgetxattr(int fd, String name) {
        Pointer buf = Buffers.get(65536);
        long n = M.fgetxattr(fd, name, buf, 256);
        if (n < 0 && errno() == Errno.ERANGE) n = M.fgetxattr(fd, name, buf, 65536);
        if (n < 0) return null;
        byte[] b = new byte[(int) n];
        buf.get(0, b, 0, (int) n);
        return b;
    }
    /** The value of an xattr as bytes, or null if absent or unreadable. */
    public static byte[] lgetxattr(String path, String name) {
        Pointer buf = Buffers.get(65536);
        long n = M.lgetxattr(path, name, buf, 256);
        if (n < 0 && errno() == Errno.ERANGE) n = M.lgetxattr(path, name, buf, 65536);
        if (n < 0) return null;
        byte[] b = new byte[(int) n];
        buf.get(0, b, 0, (int) n);
        return b;
    }
    public static int lsetxattr(String path, String name, byte[] value, int flags) {
        Pointer buf = Buffers.get(Math.max(1, value.length));
        buf.put(0, value, 0, value.length);
        return ret(M.lsetxattr(path, name, buf, value.length, flags));
    }
    /** xattr names of a path, or an empty list (null with an errno on real errors is not needed here). */
    public static List<String> llistxattr(String path) {
        Pointer buf = Buffers.get(65536);
        long n = M.llistxattr(path, buf, 1024);
        if (n < 0 && errno() == Errno.ERANGE) n = M.llistxattr(path, buf, 65536);
        return names(buf, n);
    }

    // ---- the same through a descriptor that may be O_PATH (a fifo, device or symlink strata cannot
    // open otherwise), by its /proc/self/fd link: the f*xattr calls refuse O_PATH descriptors ----
    public static long getxattrFd(int fd, String name, Pointer value, long size) {
        return ret(M.getxattr("/proc/self/fd/" + fd, name, value, size));
    }
    /** The value of an xattr through a descriptor that may be O_PATH, or null if absent or unreadable. */
    public static byte[] getxattrFd(int fd, String name) {
        Pointer buf = Buffers.get(65536);
        long n = M.getxattr("/proc/self/fd/" + fd, name, buf, 256);
        if (n < 0 && errno() == Errno.ERANGE) n = M.getxattr("/proc/self/fd/" + fd, name, buf, 65536);
        if (n < 0) return null;
        byte[] b = new byte[(int) n];
        buf.get(0, b, 0, (int) n);
        return b;
    }
    public static int setxattrFd(int fd, String name, Pointer value, long size, int flags) {
        return ret(M.setxattr("/proc/self/fd/" + fd, name, value, size, flags));
    }
    public static int removexattrFd(int fd, String name) { return ret(M.removexattr("/proc/self/fd/" + fd, name)); }
    public static List<String> listxattrFd(int fd) {
        Pointer buf = Buffers.get(65536);
        long n = M.listxattr("/proc/self/fd/" + fd, buf, 1024);
        if (n < 0 && errno() == Errno.ERANGE) n = M.listxattr("/proc/self/fd/" + fd, buf, 65536);
        return names(buf, n);
    }

    public static int fsetxattr(int fd, String name, Pointer value, long size, int flags) {
        return ret(M.fsetxattr(fd, name, value, size, flags));
    }
    public static long fgetxattr(int fd, String name, Pointer value, long size) {
        return ret(M.fgetxattr(fd, name, value, size));
    }
    public static int fremovexattr(int fd, String name) { return ret(M.fremovexattr(fd, name)); }
    public static int fsetxattr(int fd, String name, byte[] value, int flags) {
        Pointer buf = Buffers.get(Math.max(1, value.length));
        buf.put(0, value, 0, value.length);
        return ret(M.fsetxattr(fd, name, buf, value.length, flags));
    }
    /**
     * xattr names of an open file, or an empty list. Asks with a small buffer first: the kernel allocates
     * as much as it is offered (a 64 KiB kvmalloc per call), and most files have no xattrs or a few.
     */
    public static List<String> flistxattr(int fd) {
        Pointer buf = Buffers.get(65536);
        long n = M.flistxattr(fd, buf, 1024);
        if (n < 0 && errno() == Errno.ERANGE) n = M.flistxattr(fd, buf, 65536);
        return names(buf, n);
    }
    private static List<String> names(Pointer buf, long n) {
        List<String> out = new ArrayList<>();
        if (n <= 0) return out;
        byte[] b = new byte[(int) n];
        buf.get(0, b, 0, (int) n);
        int s = 0;
        for (int i = 0; i < n; i++) {
            if (b[i] == 0) { if (i > s) out.add(new String(b, s, i - s, NAMES)); s = i + 1; }
        }
        return out;
    }

    /** getdents64 into buf; returns bytes read, 0 at end, or -errno. */
    public static long getdents64(int fd, Pointer buf, long size) {
        return ret(M.syscall(SYS_GETDENTS64, fd, buf, size));
    }

    public static int getuid() { return M.getuid(); }
    public static int geteuid() { return M.geteuid(); }
    public static int getgid() { return M.getgid(); }

    public static String strerror(int errno) { return M.strerror(Math.abs(errno)); }
}
