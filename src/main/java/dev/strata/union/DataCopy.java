package dev.strata.union;

import dev.strata.posix.Buffers;
import dev.strata.posix.Errno;
import dev.strata.posix.Posix;
import jnr.ffi.Pointer;

import static dev.strata.posix.Posix.*;

/**
 * Copies a file's data for copy-up: a reflink (FICLONE) where the filesystem shares extents; else,
 * over the data ranges only (SEEK_DATA/SEEK_HOLE, so holes stay holes), copy_file_range where the
 * upper's file system offloads it (network file systems copy on the server), a pread/pwrite loop
 * elsewhere. On a local file system such as ext4, copy_file_range is an in-kernel splice that was
 * measured 3-5x slower here than reading and writing 1 MiB at a time (1 GiB: 1.7-2.5 s against
 * 0.3-0.6 s, page cache warm). The destination is sized with ftruncate so a trailing hole is kept.
 */
final class DataCopy {
    private DataCopy() {}

    /** statfs f_type of file systems whose copy_file_range copies without moving the data through the client. */
    private static final long NFS = 0x6969, SMB2 = 0xfe534d42L, CIFS = 0xff534d42L, CEPH = 0x00c36400, FUSE = 0x65735546;

    static boolean offloadsCopy(int fd) {
        long t = Posix.fsType(fd);
        return t == NFS || t == SMB2 || t == CIFS || t == CEPH || t == FUSE;
    }

    static int copy(int in, int out, long size, String[] method) {
        if (Posix.ficlone(out, in) == 0) { method[0] = "reflink"; return 0; }
        boolean cfr = offloadsCopy(out);
        method[0] = cfr ? "copy_file_range" : "read/write";
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
