package dev.strata.union;

import dev.strata.posix.Buffers;
import dev.strata.posix.Errno;
import dev.strata.posix.Posix;
import jnr.ffi.Pointer;

import static dev.strata.posix.Posix.*;

/**
 * Copies a file's data for copy-up: a reflink (FICLONE) where the filesystem shares extents, else
 * copy_file_range over the data ranges only (SEEK_DATA/SEEK_HOLE, so holes stay holes), else a
 * pread/pwrite loop. The destination is sized with ftruncate so a trailing hole is kept.
 */
final class DataCopy {
    private DataCopy() {}

    static int copy(int in, int out, long size, String[] method) {
        if (Posix.ficlone(out, in) == 0) { method[0] = "reflink"; return 0; }
        method[0] = "copy_file_range";
        boolean cfr = true;
        long off = 0;
        while (off < size) {
            long data = Posix.lseek(in, off, SEEK_DATA);
            if (data == -Errno.ENXIO) break;           // only a hole is left
            if (data < 0) data = off;                 // no SEEK_DATA: copy everything
            long hole = Posix.lseek(in, data, SEEK_HOLE);
            if (hole < 0 || hole > size) hole = size;
            long pos = data;
            while (pos < hole) {
                long n = -1;
                if (cfr) {
                    Posix.lseek(in, pos, SEEK_SET);
                    Posix.lseek(out, pos, SEEK_SET);
                    n = Posix.copyFileRange(in, out, hole - pos);
                    if (n == -Errno.EXDEV || n == -Errno.EINVAL || n == -Errno.ENOSYS || n == -Errno.EOPNOTSUPP
                            || n == -Errno.EBADF) {
                        cfr = false;
                        method[0] = "read/write";
                        continue;
                    }
                } else {
                    n = rw(in, out, pos, hole - pos);
                }
                if (n < 0) return (int) n;
                if (n == 0) break; // source shrank under us
                pos += n;
            }
            off = hole;
        }
        return Posix.ftruncate(out, size);
    }

    private static long rw(int in, int out, long pos, long len) {
        Pointer buf = Buffers.get(1 << 20);
        long n = Posix.pread(in, buf, Math.min(len, 1 << 20), pos);
        if (n <= 0) return n;
        long w = 0;
        while (w < n) {
            long k = Posix.pwrite(out, buf.slice(w), n - w, pos + w);
            if (k < 0) return k;
            w += k;
        }
        return n;
    }
}
