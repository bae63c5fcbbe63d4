package dev.strata.union;

import dev.strata.posix.Buffers;
import dev.strata.posix.Errno;
import dev.strata.posix.Posix;
import jnr.ffi.Pointer;

import static dev.strata.posix.Posix.*;

/**
 * Copies a file's data for copy-up: a reflink (FICLONE, or copy_file_range between layers of one such
 * file system: see {@link #remapBySuperblock}) where the filesystem shares extents; else,
 * over the data ranges only (SEEK_DATA/SEEK_HOLE, so holes stay holes), copy_file_range where the
 * upper's file system offloads it (network file systems copy on the server), a pread/pwrite loop in
 * 1 MiB pieces elsewhere. The destination is sized with ftruncate where a trailing hole is left.
 *
 * <p>A durable copy of a large file ({@link #STREAM_MIN} and up, fsync on) is written back while it
 * is copied: each piece's write-back is started at once, and the pages of the piece {@link #WINDOW}
 * behind are waited for and dropped from the page cache, so the copy cycles through a few MiB of page
 * cache instead of taking a fresh page per 4 KiB; the final fsync then has little left to write. On the
 * VM of the benchmarks a page the guest has not touched for a while is slow to touch again (its balloon
 * reports free memory to the host, which then faults it back in), and a copy-up whose page
 * cache grew into such memory was slow however the data moved: 1 GiB took 3.2-3.8 s in the comparison's
 * sequence with 1 MiB pieces, copy_file_range (the kernel's splice) or 64 KiB pieces alike, 85% of the
 * daemon's CPU in the kernel's copy into new page-cache folios, against 0.6-1.1 s for the kernel overlay.
 * Written back as it goes: 0.65-0.95 s. Smaller files keep their copy in the page cache, as the kernel
 * overlay's do.
 */
final class DataCopy {
    /** Copies at least this large are written back (and dropped from the page cache) as they go. */
    static final long STREAM_MIN = 64L << 20;
    /** How far behind the copy write-back is waited for and the pages dropped. */
    static final long WINDOW = 8L << 20;
    static final int PIECE = 1 << 20;

    /** statfs f_type of file systems whose copy_file_range copies without moving the data through the client. */
    private static final long NFS = 0x6969, SMB2 = 0xfe534d42L, CIFS = 0xff534d42L, CEPH = 0x00c36400, FUSE = 0x65735546;

    /** The upper's file system copies on the server: copy_file_range. */
    private final boolean offload;
    /** Per source layer: FICLONE to the upper was refused for good (no reflinks on this file system, another device). */
    private final boolean[] noReflink;
    /**
     * Per source layer: on the upper's file system, one that shares extents (XFS, btrfs, bcachefs, OCFS2)
     * through copy_file_range too. FICLONE wants both files on one mount, and strata reads each layer
     * through a detached copy of its mount (layer/Detached), so between two layers of one such file system
     * it answers EXDEV; copy_file_range checks the file system only and reflinks there (remap_file_range),
     * as the kernel overlay's copy-up (vfs_clone_file_range) does.
     */
    private final boolean[] remapBySuperblock;

    /** Lower files whose data is in a lazy layer's tar. */
    private final LazyFiles lazy;

    /** statfs f_type of file systems with remap_file_range (reflinks). */
    private static final long XFS = 0x58465342, BTRFS = 0x9123683eL, BCACHEFS = 0xca451a4eL, OCFS2 = 0x7461636f;

    /** {@code upperFd}: any descriptor on the upper's file system (the workdir); {@code stack}: the layers. */
    DataCopy(int upperFd, dev.strata.layer.Layer[] stack, LazyFiles lazy) {
        this.lazy = lazy;
        long t = upperFd >= 0 ? Posix.fsType(upperFd) : -1;
        offload = t == NFS || t == SMB2 || t == CIFS || t == CEPH || t == FUSE;
        noReflink = new boolean[stack.length];
        remapBySuperblock = new boolean[stack.length];
        boolean remaps = t == XFS || t == BTRFS || t == BCACHEFS || t == OCFS2;
        if (remaps && stack.length > 0 && stack[0].isUpper()) {
            for (int i = 1; i < stack.length; i++) remapBySuperblock[i] = stack[i].dev() == stack[0].dev();
        }
    }

    /**
     * Copies {@code size} bytes of in (a file of layer {@code layer}) to the empty file out. {@code durable}:
     * the caller fsyncs out afterwards (large copies are then written back as they go). Returns 0 or -errno;
     * method[0] names the way the data went.
     */
    int copy(int layer, int in, int out, long size, boolean durable, String[] method) {
        dev.strata.layer.LazyTar.Span span = lazy.span(layer, in);
        if (span != null) { // the skeleton file is empty: its data is in the layer's tar
            method[0] = "from the lazy layer's tar";
            return LazyFiles.copy(span, out, size);
        }
        if (!noReflink[layer]) {
            int r = Posix.ficlone(out, in);
            if (r == 0) { method[0] = "reflink"; return 0; }
            if (r == -Errno.EOPNOTSUPP || r == -Errno.EXDEV || r == -Errno.ENOTTY) noReflink[layer] = true;
        }
        boolean cfr = offload || remapBySuperblock[layer];
        boolean stream = !cfr && durable && size >= STREAM_MIN;
        method[0] = cfr ? "copy_file_range" : stream ? "read/write, written back as it goes" : "read/write";
        long off = 0, end = 0, dropped = 0, used = 0;
        try {
            // the first hole: at or past the end for a file without holes (most files), which is then one data
            // range from 0 and needs no SEEK_DATA (one system call less per copy-up of a small file)
            long first = Posix.lseek(in, 0, SEEK_HOLE);
            boolean dense = first >= size;
            while (off < size) {
                long data, hole;
                if (dense) {
                    data = 0;
                    hole = size;
                } else {
                    data = Posix.lseek(in, off, SEEK_DATA);
                    if (data == -Errno.ENXIO) break;           // only a hole is left
                    if (data < 0) data = off;                 // no SEEK_DATA: copy everything
                    hole = Posix.lseek(in, data, SEEK_HOLE);
                    if (hole < 0 || hole > size) hole = size;
                }
                long pos = data;
                while (pos < hole) {
                    long n;
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
                        if (n > used) used = n;
                    }
                    if (n < 0) return (int) n;
                    if (n == 0) break; // source shrank under us
                    if (stream) dropped = writeBack(out, pos, n, dropped);
                    pos += n;
                    end = pos;
                }
                off = hole;
            }
            return end == size ? 0 : Posix.ftruncate(out, size);
        } finally {
            Buffers.dropPages(used); // the pieces' pages beyond the first 64 KiB go back (see there)
        }
    }

    /**
     * Starts write-back of the piece just written at [pos, pos+n); waits for the write-back of everything
     * more than {@link #WINDOW} behind it and drops those pages. Returns the new low mark of pages kept.
     */
    private static long writeBack(int out, long pos, long n, long dropped) {
        Posix.syncFileRange(out, pos, n, SYNC_FILE_RANGE_WRITE);
        long upto = pos + n - WINDOW;
        if (upto <= dropped) return dropped;
        Posix.syncFileRange(out, dropped, upto - dropped,
                SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
        Posix.fadvise(out, dropped, upto - dropped, POSIX_FADV_DONTNEED);
        return upto;
    }

    private static long rw(int in, int out, long pos, long len) {
        Pointer buf = Buffers.get(PIECE);
        long n = Posix.pread(in, buf, Math.min(len, PIECE), pos);
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
