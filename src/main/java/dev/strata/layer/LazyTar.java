package dev.strata.layer;

import dev.strata.posix.Names;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;
import jnr.ffi.Pointer;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * The data of a lazy layer (strata mount ARCHIVE): the layer directory is a skeleton whose regular
 * files are empty sparse files of the right size, and their data is read from the layer's
 * uncompressed tar at an offset. The store keeps, beside the skeleton {@code STORE/lazy/sha256/HEX}
 * (HEX: the blob digest), {@code HEX.tar} (the uncompressed layer tar) and {@code HEX.index} (for each
 * regular file of the skeleton that has its data in the tar: its inode number and the offset of its
 * data). The index is by inode, not an xattr on the file: nothing in a layer directory itself can send
 * reads elsewhere, hard links share their entry, and no private xattr has to be hidden or kept from a
 * copy-up. Only a directory that is such a store entry of the daemon's own user (a 0700 store) is read
 * this way ({@link #forLayerRoot}); any other lowerdir is an ordinary layer.
 */
public final class LazyTar implements AutoCloseable {
    public static final String TAR = ".tar", INDEX = ".index";
    private static final long MAGIC = 0x5354524c5a590001L; // "STRLZY" v1

    private static final ThreadLocal<Stat> STAT = ThreadLocal.withInitial(Stat::new);
    private final int tarFd;
    private final long[] inos, offs;

    private LazyTar(int tarFd, long[] inos, long[] offs) { this.tarFd = tarFd; this.inos = inos; this.offs = offs; }

    /**
     * The lazy data of a layer root, or null when {@code root} is not a lazy layer of a store of this
     * user: {@code STORE/lazy/sha256/HEX} with {@code STORE/lock}, the {@code sha256} directory owned by
     * the daemon's euid and closed to others, and {@code HEX.tar} and {@code HEX.index} regular files
     * of the same owner (opened without following links). Throws IllegalStateException with a one-line
     * message if such an entry is damaged.
     */
    public static LazyTar forLayerRoot(Path root) {
        Path d = root.toAbsolutePath().normalize();
        Path sha = d.getParent();
        if (sha == null || !"sha256".equals(String.valueOf(sha.getFileName()))) return null;
        Path lazy = sha.getParent();
        if (lazy == null || !"lazy".equals(String.valueOf(lazy.getFileName())) || lazy.getParent() == null) return null;
        if (!Files.exists(lazy.getParent().resolve("lock"))) return null;
        String hex = String.valueOf(d.getFileName());
        if (!hex.matches("[0-9a-f]{64}")) return null;
        Stat st = new Stat();
        int uid = Posix.geteuid();
        if (Posix.fstatat(Posix.AT_FDCWD, Names.toNative(sha.toString()), st, Posix.AT_SYMLINK_NOFOLLOW) < 0
                || !st.isDir() || st.uid() != uid || (st.mode() & 077) != 0) {
            return null;
        }
        int tar = openOwn(sha.resolve(hex + TAR), uid, st);
        if (tar < 0) throw new IllegalStateException("lazy layer " + d + ": cannot open its " + hex + TAR + ": " + Posix.strerror(tar));
        try {
            long[][] idx = readIndex(sha.resolve(hex + INDEX));
            return new LazyTar(tar, idx[0], idx[1]);
        } catch (IOException | RuntimeException e) {
            Posix.close(tar);
            throw new IllegalStateException("lazy layer " + d + ": damaged index " + hex + INDEX + " (" + e.getMessage() + ")");
        }
    }

    private static int openOwn(Path p, int uid, Stat st) {
        int fd = Posix.openat(Posix.AT_FDCWD, Names.toNative(p.toString()), Posix.O_RDONLY | Posix.O_NOFOLLOW | Posix.O_CLOEXEC, 0);
        if (fd < 0) return fd;
        if (Posix.fstat(fd, st) < 0 || st.type() != Posix.S_IFREG || st.uid() != uid) {
            Posix.close(fd);
            return -dev.strata.posix.Errno.EACCES;
        }
        return fd;
    }

    /** Writes an index: {@code n} (inode, data offset) pairs, in any order. */
    public static void writeIndex(Path p, long[] inos, long[] offs, int n) throws IOException {
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) order[i] = i;
        Arrays.sort(order, (a, b) -> Long.compare(inos[a], inos[b]));
        try (DataOutputStream out = new DataOutputStream(new BufferedOutputStream(Files.newOutputStream(p), 1 << 16))) {
            out.writeLong(MAGIC);
            out.writeLong(n);
            for (int i : order) {
                out.writeLong(inos[i]);
                out.writeLong(offs[i]);
            }
        }
    }

    static long[][] readIndex(Path p) throws IOException {
        try (DataInputStream in = new DataInputStream(new BufferedInputStream(Files.newInputStream(p), 1 << 16))) {
            if (in.readLong() != MAGIC) throw new IOException("not a strata lazy index");
            long n = in.readLong();
            if (n < 0 || n > Integer.MAX_VALUE / 2) throw new IOException("bad entry count " + n);
            long[] inos = new long[(int) n], offs = new long[(int) n];
            for (int i = 0; i < n; i++) {
                inos[i] = in.readLong();
                offs[i] = in.readLong();
                if (i > 0 && inos[i] <= inos[i - 1]) throw new IOException("entries out of order");
                if (offs[i] < 0) throw new IOException("negative offset");
            }
            if (in.read() >= 0) throw new IOException("trailing bytes");
            return new long[][]{inos, offs};
        } catch (EOFException e) {
            throw new IOException("truncated");
        }
    }

    /** The offset of the data of the skeleton file with inode {@code ino} in the tar, or -1 (its data is in the file). */
    public long offsetOf(long ino) {
        int i = Arrays.binarySearch(inos, ino);
        return i < 0 ? -1 : offs[i];
    }

    public int tarFd() { return tarFd; }

    public int files() { return inos.length; }

    /** Where the data of one open file is: {@code size} bytes at {@code base} in the tar. */
    public record Span(int tarFd, long base, long size) {
        /** pread of the file's bytes [off, off+len) (fewer at its end). */
        public long read(Pointer buf, long len, long off) {
            if (off < 0) return -dev.strata.posix.Errno.EINVAL;
            if (off >= size) return 0;
            return Posix.pread(tarFd, buf, Math.min(len, size - off), base + off);
        }
        /** lseek SEEK_DATA / SEEK_HOLE of a file that is data from end to end. */
        public long seek(long off, int whence) {
            if (whence != Posix.SEEK_DATA && whence != Posix.SEEK_HOLE) return -dev.strata.posix.Errno.EINVAL;
            if (off < 0) return -dev.strata.posix.Errno.EINVAL;
            if (off >= size) return -dev.strata.posix.Errno.ENXIO;
            return whence == Posix.SEEK_DATA ? off : size;
        }
    }

    /** The span of a regular file of this layer open as {@code fd}, or null if its data is in the file itself. */
    public Span span(int fd) {
        Stat st = STAT.get(); // its own: callers (copy-up) may hold Stat.local()/local2() values
        if (Posix.fstat(fd, st) < 0 || st.type() != Posix.S_IFREG) return null;
        long off = offsetOf(st.ino());
        return off < 0 ? null : new Span(tarFd, off, st.size());
    }

    /** st_blocks of a file whose data is in the tar: as if it were written out (4 KiB blocks), not 0. */
    public static long blocksFor(long size) { return (size + 4095) / 4096 * 8; }

    @Override public void close() { Posix.close(tarFd); }
}
