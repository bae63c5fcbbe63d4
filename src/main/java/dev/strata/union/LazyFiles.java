package dev.strata.union;

import dev.strata.layer.Layer;
import dev.strata.layer.LazyTar;
import dev.strata.posix.Buffers;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;
import jnr.ffi.Pointer;

import java.util.concurrent.ConcurrentHashMap;

import static dev.strata.posix.Posix.*;

/**
 * Where the data of a lower file comes from when its layer is lazy ({@link LazyTar}: a skeleton whose
 * regular files are empty, their data in the layer's tar): the one place the engine asks. Open files
 * read it ({@link OpenFiles#read}), SEEK_DATA/SEEK_HOLE see it as data end to end, copy-up copies it
 * ({@link DataCopy#copy}), stat shows its st_blocks as if written out, and such a descriptor is never
 * handed to the kernel for FUSE passthrough (the kernel would read the empty skeleton file).
 */
final class LazyFiles {
    private final LazyTar[] byLayer;
    private final boolean any;
    /** Open descriptors of lazy files (lower files opened for reading), by descriptor. */
    private final ConcurrentHashMap<Integer, LazyTar.Span> open = new ConcurrentHashMap<>();

    LazyFiles(Layer[] stack) {
        byLayer = new LazyTar[stack.length];
        boolean a = false;
        for (int i = 0; i < stack.length; i++) {
            byLayer[i] = stack[i].lazy();
            a |= byLayer[i] != null;
        }
        any = a;
    }

    /** The span of {@code fd}, a file of layer {@code layer}, or null when its data is in the file itself. */
    LazyTar.Span span(int layer, int fd) {
        if (!any || byLayer[layer] == null) return null;
        return byLayer[layer].span(fd);
    }

    /** Called for every descriptor the mount opens on a layer's file. */
    void opened(int layer, int fd) {
        LazyTar.Span s = span(layer, fd);
        if (s != null) open.put(fd, s);
    }

    void released(int fd) { if (!open.isEmpty()) open.remove(fd); }

    /** The span an open descriptor reads, or null. */
    LazyTar.Span of(int fd) { return open.isEmpty() ? null : open.get(fd); }

    /** lseek of an open descriptor (SEEK_DATA/SEEK_HOLE from FUSE): a lazy file is data end to end. */
    long lseek(int fd, long off, int whence) {
        LazyTar.Span s = of(fd);
        return s != null ? s.seek(off, whence) : Posix.lseek(fd, off, whence);
    }

    /** st_blocks of a lazy file as if it were written out (the skeleton file has none). */
    void blocks(int layer, Pointer st) {
        if (!any || byLayer[layer] == null) return;
        if ((st.getInt(Stat.OFF_MODE) & S_IFMT) != S_IFREG) return;
        if (byLayer[layer].offsetOf(st.getLong(Stat.OFF_INO)) < 0) return;
        st.putLong(Stat.OFF_BLOCKS, LazyTar.blocksFor(st.getLong(Stat.OFF_SIZE)));
    }

    /** Copies a lazy file's data to {@code out} (copy-up): copy_file_range from the tar, else pread/pwrite. */
    static int copy(LazyTar.Span s, int out, long size) {
        long pos = 0, used = 0;
        boolean cfr = true;
        Pointer buf = null;
        try {
            while (pos < size) {
                long n;
                if (cfr) {
                    n = Posix.copyFileRangeAt(s.tarFd(), s.base() + pos, out, pos, Math.min(size - pos, 1L << 30));
                    if (n < 0 && n != -dev.strata.posix.Errno.EINTR) {
                        cfr = false; // another file system, an old kernel: the plain way
                        continue;
                    }
                    if (n < 0) continue;
                } else {
                    if (buf == null) buf = Buffers.get(DataCopy.PIECE);
                    n = s.read(buf, Math.min(DataCopy.PIECE, size - pos), pos);
                    if (n < 0) return (int) n;
                    if (n > used) used = n;
                    long w = 0;
                    while (w < n) {
                        long k = Posix.pwrite(out, buf.slice(w), n - w, pos + w);
                        if (k < 0) return (int) k;
                        w += k;
                    }
                }
                if (n == 0) return -dev.strata.posix.Errno.EIO; // the tar is shorter than the index says
                pos += n;
            }
            return 0;
        } finally {
            Buffers.dropPages(used); // as DataCopy's pieces
        }
    }
}
