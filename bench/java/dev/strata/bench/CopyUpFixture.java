package dev.strata.bench;

import dev.strata.posix.Errno;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;
import dev.strata.union.Union;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.util.Arrays;
import java.util.Random;

/**
 * One lower file to copy up, with what copy-up must carry: mode 0640, an old mtime, two user.* xattrs
 * (and a private user.strata.* one that must not be copied). The kinds: "4KiB", "1MiB", "256MiB" of
 * data, and "sparse1GiB" (1 GiB apparent size, four 1 MiB data extents: 4 MiB of data).
 */
final class CopyUpFixture {
    static final long MiB = 1 << 20;
    static final FileTime OLD = FileTime.fromMillis(1_500_000_000_123L);

    final String kind;
    BenchFs.Stack stack;
    Path lower, upperCopy, cpDest;
    long size, dataBytes;
    Union u;

    CopyUpFixture(String kind) { this.kind = kind; }

    void build() throws IOException {
        stack = new BenchFs.Stack(BenchFs.scratch("copyup"), 1);
        BenchFs.building(stack.root, () -> {
            try {
                populate();
            } catch (IOException | RuntimeException | Error e) {
                close();
                throw e;
            }
        });
    }

    private void populate() throws IOException {
        lower = stack.lowers.get(0).resolve("f");
        upperCopy = stack.upper.resolve("f");
        cpDest = stack.root.resolve("cp-dest");
        Random rnd = new Random(42);
        byte[] chunk = new byte[(int) MiB];
        rnd.nextBytes(chunk);
        try (FileChannel ch = FileChannel.open(lower, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            switch (kind) {
                case "4KiB": size = dataBytes = 4096; write(ch, chunk, 0, 4096); break;
                case "1MiB": size = dataBytes = MiB; write(ch, chunk, 0, MiB); break;
                case "256MiB":
                    size = dataBytes = 256 * MiB;
                    for (long off = 0; off < size; off += MiB) write(ch, chunk, off, MiB);
                    break;
                case "sparse1GiB":
                    size = 1024 * MiB;
                    dataBytes = 4 * MiB;
                    for (long off : new long[]{0, 256 * MiB, 512 * MiB, size - MiB}) write(ch, chunk, off, MiB);
                    break;
                default: throw new IllegalArgumentException("unknown file kind " + kind);
            }
            ch.force(true);
        }
        BenchFs.xattr(lower, "user.mime_type", "application/octet-stream");
        BenchFs.xattr(lower, "user.comment", "a lower file to copy up");
        BenchFs.xattr(lower, "user.strata.private", "must not be copied");
        Files.setPosixFilePermissions(lower, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r-----"));
        Files.setLastModifiedTime(lower, OLD);
        // one copy-up, checked, so a broken copy-up fails loudly instead of measuring something else
        open();
        copyUp();
        verify(upperCopy, true);
        close();
        reset();
        cp();
        verify(cpDest, false);
        Files.delete(cpDest);
    }

    private static void write(FileChannel ch, byte[] chunk, long off, long len) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(chunk, 0, (int) len);
        while (b.hasRemaining()) off += ch.write(b, off);
    }

    void verify(Path copy, boolean strataCopy) throws IOException {
        Stat ls = BenchFs.lstat(lower), us = BenchFs.lstat(copy);
        BenchFs.check(us.size() == size, copy + ": size " + us.size() + ", expected " + size);
        BenchFs.check(us.perm() == 0640, copy + ": mode " + Integer.toOctalString(us.perm()) + ", expected 640");
        BenchFs.check(us.mtime() == ls.mtime() && us.mtimeNs() == ls.mtimeNs(), copy + ": mtime not kept");
        BenchFs.check(Arrays.equals(BenchFs.getxattr(copy, "user.mime_type"), BenchFs.getxattr(lower, "user.mime_type")),
                copy + ": user.mime_type not copied");
        BenchFs.check(Arrays.equals(BenchFs.getxattr(copy, "user.comment"), BenchFs.getxattr(lower, "user.comment")),
                copy + ": user.comment not copied");
        if (strataCopy) BenchFs.check(BenchFs.getxattr(copy, "user.strata.private") == null, copy + ": private xattr copied");
        if (kind.startsWith("sparse")) {
            long allocated = us.blocks() * 512;
            BenchFs.check(allocated <= 2 * dataBytes, copy + ": holes not kept (" + allocated + " bytes allocated for "
                    + dataBytes + " of data)");
        }
        BenchFs.check(sameData(lower, copy), copy + ": data differs from the lower file");
    }

    private boolean sameData(Path a, Path b) throws IOException {
        try (FileChannel ca = FileChannel.open(a); FileChannel cb = FileChannel.open(b)) {
            ByteBuffer ba = ByteBuffer.allocateDirect((int) MiB), bb = ByteBuffer.allocateDirect((int) MiB);
            // the sparse file: compare the data extents and the holes around them
            long step = kind.startsWith("sparse") ? 128 * MiB : MiB;
            for (long off = 0; off < size; off += step) {
                ba.clear(); bb.clear();
                ca.read(ba, off); cb.read(bb, off);
                ba.flip(); bb.flip();
                if (!ba.equals(bb)) return false;
            }
        }
        return true;
    }

    /** A fresh engine over an upper without the file (the last copy removed). */
    void reset() throws IOException {
        Files.deleteIfExists(upperCopy);
    }

    void open() { u = stack.open(); }

    void close() {
        if (u != null) u.close();
        u = null;
    }

    /** Opening the lower file for writing copies it up (data, metadata, xattrs), as an append would. */
    int copyUp() {
        int fd = u.open("/f", Posix.O_WRONLY | Posix.O_APPEND);
        if (fd < 0) throw new IllegalStateException("open for write of /f: " + Errno.name(fd));
        u.release(fd);
        return fd;
    }

    /** The reference: coreutils cp keeping mode, times and xattrs (it uses copy_file_range and keeps holes). */
    int cp() throws IOException {
        Process p = new ProcessBuilder("cp", "--preserve=mode,timestamps,xattr", lower.toString(), cpDest.toString())
                .inheritIO().start();
        try {
            int rc = p.waitFor();
            if (rc != 0) throw new IllegalStateException("cp exited " + rc);
            return rc;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException(e);
        }
    }

    void resetCp() throws IOException {
        Files.deleteIfExists(cpDest);
    }

    void remove() throws IOException {
        close();
        BenchFs.delete(stack.root);
    }
}
