package dev.strata.image;

import dev.strata.layer.LazyTar;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * The metadata-only mode of {@link LayerExtractor} (a lazy layer, see {@link LazyTar}): everything is
 * written as an import writes it (and refused as an import refuses it), except the data of plain regular
 * members, whose file is created sparse with its size while the offset of its data in the uncompressed
 * tar goes into the index. Sparse members keep being extracted (their data map is not a plain range).
 *
 * <p>The index is by inode number, so no inode may be reused while the skeleton is built: a member that
 * replaces an earlier entry moves that entry into a graveyard directory beside the skeleton (removed
 * with the build's temporary directory) instead of deleting it, so every number in the index stays the
 * one file's it was given to.
 */
final class LazyIndexer {
    /** Counts the uncompressed tar's bytes: at a member's header end, its data's offset. */
    private final HashingInputStream tar;
    private final int graveFd;
    private final Stat st = new Stat();
    private long[] inos = new long[256], offs = new long[256];
    private int n;
    private long buried;
    long lazyFiles, lazyBytes;

    /** @param graveFd an O_PATH descriptor of an empty directory on the skeleton's file system (not closed here) */
    LazyIndexer(HashingInputStream tar, int graveFd) {
        this.tar = tar;
        this.graveFd = graveFd;
    }

    /** A plain regular member's file: given its size, sparse, and its data's place recorded. Returns 0 or -errno. */
    int place(int fd, long size) {
        int r = Posix.ftruncate(fd, size);
        if (r < 0) return r;
        r = Posix.fstat(fd, st);
        if (r < 0) return r;
        if (n == inos.length) {
            inos = Arrays.copyOf(inos, n * 2);
            offs = Arrays.copyOf(offs, n * 2);
        }
        inos[n] = st.ino();
        offs[n] = tar.count();
        n++;
        lazyFiles++;
        lazyBytes += size;
        return 0;
    }

    /** Takes an entry out of the skeleton without freeing its inode (see the class comment). Returns 0 or -errno. */
    int bury(int pfd, String name) {
        return Posix.renameat2(pfd, name, graveFd, "g" + (buried++), 0);
    }

    /** The offset recorded for an inode, or -1 (tests). */
    long offsetOf(long ino) {
        for (int i = n - 1; i >= 0; i--) if (inos[i] == ino) return offs[i];
        return -1;
    }

    /** Writes the index (a later entry for the same inode cannot happen: numbers are never reused here). */
    void writeIndex(Path p) throws IOException { LazyTar.writeIndex(p, inos, offs, n); }

    /** Copies every byte read through it to {@code out} (the uncompressed tar kept in the store). */
    static final class Tee extends FilterInputStream {
        private final OutputStream out;

        Tee(InputStream in, OutputStream out) {
            super(in);
            this.out = out;
        }

        @Override public int read() throws IOException {
            int b = in.read();
            if (b >= 0) out.write(b);
            return b;
        }

        @Override public int read(byte[] b, int off, int len) throws IOException {
            int k = in.read(b, off, len);
            if (k > 0) out.write(b, off, k);
            return k;
        }

        @Override public long skip(long k) throws IOException {
            byte[] buf = new byte[(int) Math.min(Math.max(k, 1), 65536)];
            long done = 0;
            while (done < k) {
                int r = read(buf, 0, (int) Math.min(buf.length, k - done));
                if (r < 0) break;
                done += r;
            }
            return done;
        }

        @Override public boolean markSupported() { return false; }
    }
}
