package dev.strata.posix;

import jnr.ffi.Pointer;

/** A struct stat (x86_64 layout, 144 bytes) in native memory, read by offset. */
public final class Stat {
    public static final int SIZE = 144;
    public static final int OFF_DEV = 0, OFF_INO = 8, OFF_NLINK = 16, OFF_MODE = 24, OFF_UID = 28, OFF_GID = 32,
            OFF_RDEV = 40, OFF_SIZE = 48, OFF_BLKSIZE = 56, OFF_BLOCKS = 64, OFF_ATIME = 72, OFF_ATIME_NS = 80,
            OFF_MTIME = 88, OFF_MTIME_NS = 96, OFF_CTIME = 104, OFF_CTIME_NS = 112;
    final Pointer buf;

    public Stat() { this.buf = NativeMemory.allocate(SIZE); }
    public Stat(Pointer p) { this.buf = p; }

    private static final ThreadLocal<Stat> LOCAL = ThreadLocal.withInitial(Stat::new);
    private static final ThreadLocal<Stat> LOCAL2 = ThreadLocal.withInitial(Stat::new);
    /** A per-thread scratch stat. */
    public static Stat local() { return LOCAL.get(); }
    /** A second per-thread scratch stat, for code that needs two at once. */
    public static Stat local2() { return LOCAL2.get(); }

    public Pointer pointer() { return buf; }
    public long dev() { return buf.getLong(OFF_DEV); }
    public long ino() { return buf.getLong(OFF_INO); }
    public long nlink() { return buf.getLong(OFF_NLINK); }
    public int mode() { return buf.getInt(OFF_MODE); }
    public int type() { return buf.getInt(OFF_MODE) & Posix.S_IFMT; }
    public int perm() { return buf.getInt(OFF_MODE) & 07777; }
    public int uid() { return buf.getInt(OFF_UID); }
    public int gid() { return buf.getInt(OFF_GID); }
    public long rdev() { return buf.getLong(OFF_RDEV); }
    public long size() { return buf.getLong(OFF_SIZE); }
    public long blocks() { return buf.getLong(OFF_BLOCKS); }
    public long atime() { return buf.getLong(OFF_ATIME); }
    public long atimeNs() { return buf.getLong(OFF_ATIME_NS); }
    public long mtime() { return buf.getLong(OFF_MTIME); }
    public long mtimeNs() { return buf.getLong(OFF_MTIME_NS); }
    public long ctime() { return buf.getLong(OFF_CTIME); }
    public long ctimeNs() { return buf.getLong(OFF_CTIME_NS); }
    public boolean isDir() { return type() == Posix.S_IFDIR; }
    public boolean isRegular() { return type() == Posix.S_IFREG; }
    public boolean isWhiteoutDevice() { return type() == Posix.S_IFCHR && rdev() == 0; }

    public void copyTo(Pointer dst) {
        for (int i = 0; i < SIZE; i += 8) dst.putLong(i, buf.getLong(i));
    }
    public void copyFrom(Stat other) {
        for (int i = 0; i < SIZE; i += 8) buf.putLong(i, other.buf.getLong(i));
    }
}
