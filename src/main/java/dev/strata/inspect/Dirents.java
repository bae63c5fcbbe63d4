package dev.strata.inspect;

import dev.strata.posix.NativeMemory;
import dev.strata.layer.Layer;
import dev.strata.posix.Posix;
import jnr.ffi.Pointer;

import java.util.ArrayList;
import java.util.List;

/** Reads the names of one directory of one layer (getdents64; "." and ".." left out). */
final class Dirents {
    private Dirents() {}

    record Dirent(String name, int type) {}

    private static final ThreadLocal<Pointer> BUF = ThreadLocal.withInitial(() -> NativeMemory.allocate(65536));

    /** The entries of rel in layer, or throws with errno in {@link DirError}. */
    static List<Dirent> read(Layer layer, String rel) {
        int fd = layer.openDir(rel, Posix.O_RDONLY);
        if (fd < 0) throw new DirError(-fd);
        try {
            Pointer buf = BUF.get();
            List<Dirent> out = new ArrayList<>();
            byte[] name = new byte[256];
            while (true) {
                long n = Posix.getdents64(fd, buf, buf.size());
                if (n < 0) throw new DirError((int) -n);
                if (n == 0) break;
                int off = 0;
                while (off < n) {
                    int reclen = buf.getShort(off + 16) & 0xffff;
                    int type = buf.getByte(off + 18) & 0xff;
                    int len = 0;
                    int max = reclen - 19;
                    while (len < max && buf.getByte(off + 19 + len) != 0) len++;
                    if (name.length < len) name = new byte[len];
                    buf.get(off + 19, name, 0, len);
                    String s = new String(name, 0, len, Posix.NAMES);
                    if (!s.equals(".") && !s.equals("..")) out.add(new Dirent(s, type));
                    off += reclen;
                }
            }
            return out;
        } finally {
            Posix.close(fd);
        }
    }

    /** A directory that could not be read; errno is positive. */
    static final class DirError extends RuntimeException {
        final int errno;
        DirError(int errno) { super(Posix.strerror(errno), null, false, false); this.errno = errno; }
    }
}
