package dev.strata.posix;

import jnr.ffi.Pointer;

/**
 * Reads the entries of an open directory with getdents64 into a buffer of its own (never the shared
 * {@link Buffers} scratch, which xattr reads and the like overwrite while a listing is parsed), and
 * checks every record: one whose length is too short to hold a header and a name, or runs past the
 * bytes the kernel returned, ends the listing with EIO instead of being followed (a zero length would
 * never advance).
 */
public final class Getdents {
    private Getdents() {}

    static final int SIZE = 65536;
    /** Offsets in struct linux_dirent64: d_ino (8), d_off (8), d_reclen (2), d_type (1), d_name. */
    private static final int RECLEN = 16, TYPE = 18, NAME = 19;

    /** One entry; returns false to stop the listing early. */
    public interface Sink {
        boolean entry(long ino, int dtype, String name);
    }

    private static final ThreadLocal<Pointer[]> BUF = ThreadLocal.withInitial(() -> new Pointer[1]);

    /**
     * Calls sink for every entry of fd ("." and ".." included) until the end or until it returns false.
     * Returns 0, or -errno of getdents64, or -EIO for a malformed record.
     */
    public static int read(int fd, Sink sink) {
        Pointer[] slot = BUF.get();
        Pointer buf = slot[0];
        // a sink that lists another directory on the same thread gets a buffer of its own
        slot[0] = null;
        if (buf == null) buf = NativeMemory.allocate(SIZE);
        try {
            while (true) {
                long got = Posix.getdents64(fd, buf, SIZE);
                if (got < 0) return (int) got;
                if (got == 0) return 0;
                int r = parse(buf, (int) got, sink);
                if (r != 1) return r;
            }
        } finally {
            slot[0] = buf;
        }
    }

    /** Parses got bytes of records: 1 to go on, 0 when the sink stopped, -EIO for a malformed record. */
    static int parse(Pointer buf, int got, Sink sink) {
        int off = 0;
        while (off < got) {
            if (got - off < NAME + 1) return -Errno.EIO;
            int reclen = buf.getShort(off + RECLEN) & 0xffff;
            if (reclen < NAME + 1 || reclen > got - off) return -Errno.EIO;
            long ino = buf.getLong(off);
            int dt = buf.getByte(off + TYPE) & 0xff;
            int len = 0, max = reclen - NAME;
            while (len < max && buf.getByte(off + NAME + len) != 0) len++;
            byte[] b = new byte[len];
            buf.get(off + NAME, b, 0, len);
            off += reclen;
            if (!sink.entry(ino, dt, new String(b, Posix.NAMES))) return 0;
        }
        return 1;
    }
}
