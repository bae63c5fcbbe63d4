package dev.strata.fuse.kernel;

/**
 * The kernel's FUSE protocol (include/uapi/linux/fuse.h): opcodes, flags and the byte offsets of the
 * structs strata reads and writes. Everything is little-endian x86_64/aarch64 layout, as the kernel
 * defines it (fixed-size fields, no implicit padding).
 */
final class Proto {
    private Proto() {}

    static final int KERNEL_MAJOR = 7;
    /** The protocol minor strata speaks: 7.31 has every struct used here at its current size. */
    static final int KERNEL_MINOR = 31;

    // opcodes
    static final int LOOKUP = 1, FORGET = 2, GETATTR = 3, SETATTR = 4, READLINK = 5, SYMLINK = 6, MKNOD = 8,
            MKDIR = 9, UNLINK = 10, RMDIR = 11, RENAME = 12, LINK = 13, OPEN = 14, READ = 15, WRITE = 16,
            STATFS = 17, RELEASE = 18, FSYNC = 20, SETXATTR = 21, GETXATTR = 22, LISTXATTR = 23,
            REMOVEXATTR = 24, FLUSH = 25, INIT = 26, OPENDIR = 27, READDIR = 28, RELEASEDIR = 29,
            FSYNCDIR = 30, ACCESS = 34, CREATE = 35, INTERRUPT = 36, DESTROY = 38, BATCH_FORGET = 42,
            FALLOCATE = 43, READDIRPLUS = 44, RENAME2 = 45, LSEEK = 46, TMPFILE = 51, IOCTL = 39, COPY_FILE_RANGE = 47;

    // INIT flags
    static final int ASYNC_READ = 1, ATOMIC_O_TRUNC = 1 << 3, BIG_WRITES = 1 << 5, DONT_MASK = 1 << 6, POSIX_ACL = 1 << 20, AUTO_INVAL_DATA = 1 << 12,
            DO_READDIRPLUS = 1 << 13, READDIRPLUS_AUTO = 1 << 14, ASYNC_DIO = 1 << 15,
            PARALLEL_DIROPS = 1 << 18, ABORT_ERROR = 1 << 21, MAX_PAGES = 1 << 22, CACHE_SYMLINKS = 1 << 23,
            NO_OPENDIR_SUPPORT = 1 << 24;
    /**
     * The kernel keeps written data in its page cache and writes it back later in large WRITEs, and keeps
     * a regular file's size, mtime and ctime itself (it never again takes them from the server for an
     * inode it holds: fs/fuse/inode.c fuse_get_cache_mask), sending them back with SETATTR.
     */
    static final int WRITEBACK_CACHE = 1 << 16;
    /**
     * The server clears S_ISUID/S_ISGID on write, truncate and chown (flagged per request below), so the
     * kernel may give the superblock SB_NOSEC and stop asking for security.capability before every write.
     */
    static final int HANDLE_KILLPRIV_V2 = 1 << 28;
    /** The protocol minor that has HANDLE_KILLPRIV_V2 and the flags below (Linux 5.11). */
    static final int KILLPRIV_V2_MINOR = 33;
    /** fuse_write_in.write_flags, fuse_setattr_in.valid, fuse_open_in/fuse_create_in.open_flags. */
    /** fuse_write_in.write_flags: a write of the page cache (write-back), not the caller's own; its file lost the setuid bits. */
    static final int WRITE_CACHE = 1, WRITE_KILL_SUIDGID = 1 << 2, FATTR_KILL_SUIDGID = 1 << 11, OPEN_KILL_SUIDGID = 1;

    // open_out flags
    static final int FOPEN_DIRECT_IO = 1, FOPEN_KEEP_CACHE = 2, FOPEN_PASSTHROUGH = 1 << 7;
    /** INIT flags, second word (protocol 7.36+, with INIT_EXT): passthrough is bit 37 of the whole. */
    static final int INIT_EXT = 1 << 30, FLAGS2_DIRECT_IO_ALLOW_MMAP = 1 << (36 - 32), FLAGS2_PASSTHROUGH = 1 << (37 - 32);
    /**
     * INIT flags2 (7.40, Linux 6.9): the server has no stable file handles; the kernel then encodes
     * handles only as FIDs (name_to_handle_at with AT_HANDLE_FID) and answers EOPNOTSUPP otherwise.
     */
    static final int FLAGS2_NO_EXPORT_SUPPORT = 1 << (38 - 32);
    /** The protocol minor that has passthrough (backing_id in open_out, max_stack_depth in init_out). */
    static final int PASSTHROUGH_MINOR = 40;
    /** ioctls on /dev/fuse: _IOW(229, 1, struct fuse_backing_map) and _IOW(229, 2, uint32_t). */
    static final long DEV_IOC_BACKING_OPEN = 0x4010E501L, DEV_IOC_BACKING_CLOSE = 0x4004E502L;
    /** FUSE_DEV_IOC_CLONE: a new open of /dev/fuse joins the connection of the descriptor given. */
    static final long DEV_IOC_CLONE = 0x8004E500L;

    // setattr valid bits
    static final int FATTR_MODE = 1, FATTR_UID = 2, FATTR_GID = 4, FATTR_SIZE = 8, FATTR_ATIME = 16,
            FATTR_MTIME = 32, FATTR_FH = 64, FATTR_ATIME_NOW = 128, FATTR_MTIME_NOW = 256, FATTR_LOCKOWNER = 512,
            FATTR_CTIME = 1024;

    static final int GETATTR_FH = 1;
    static final int FSYNC_FDATASYNC = 1;

    // notifications (out header error field)
    static final int NOTIFY_INVAL_INODE = 2, NOTIFY_RETRIEVE = 5;
    /** The request the kernel sends for a NOTIFY_RETRIEVE (with the notify's unique; no reply). */
    static final int NOTIFY_REPLY = 41;

    // struct sizes
    static final int IN_HEADER = 40, OUT_HEADER = 16, ATTR = 88, ENTRY_OUT = 40 + ATTR, ATTR_OUT = 16 + ATTR,
            OPEN_OUT = 16, INIT_OUT = 64, IOCTL_IN = 32, IOCTL_OUT = 16, KSTATFS = 80, DIRENT = 24, WRITE_IN = 40;

    // fuse_in_header
    static final int IH_LEN = 0, IH_OPCODE = 4, IH_UNIQUE = 8, IH_NODEID = 16, IH_UID = 24, IH_GID = 28,
            IH_PID = 32;

    // fuse_attr (offsets within the struct)
    static final int A_INO = 0, A_SIZE = 8, A_BLOCKS = 16, A_ATIME = 24, A_MTIME = 32, A_CTIME = 40,
            A_ATIMENSEC = 48, A_MTIMENSEC = 52, A_CTIMENSEC = 56, A_MODE = 60, A_NLINK = 64, A_UID = 68,
            A_GID = 72, A_RDEV = 76, A_BLKSIZE = 80, A_FLAGS = 84;

    static final int ROOT_ID = 1;
}
