package dev.strata.bench;

import dev.strata.posix.Errno;
import dev.strata.posix.Posix;
import dev.strata.union.Union;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import org.openjdk.jmh.annotations.*;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.TimeUnit;

/**
 * The per-call cost of the data path on a held descriptor, page cache warm: {@code Union.read/write}
 * (pread/pwrite straight into/out of a native buffer, as the FUSE adapter passes the kernel's buffer)
 * against NIO: {@code FileChannel.read/write} of a heap ByteBuffer plus the copy between the byte[] and
 * the native buffer a FUSE adapter would then need, and {@code FileChannel} on a direct ByteBuffer (no
 * copy) for reference. Each call moves {@code size} bytes at the next offset of a 64 MiB upper file.
 */
@Fork(value = 1, jvmArgsAppend = {"-Dfile.encoding=ISO-8859-1", "-Dsun.jnu.encoding=ISO-8859-1"})
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@State(Scope.Thread)
public class ReadWriteBench {
    static final long FILE = 64L << 20;

    @Param({"4096", "131072"}) public int size;

    BenchFs.Stack stack;
    Union u;
    int fd;
    Pointer nbuf;          // the "FUSE buffer"
    FileChannel ch;
    byte[] arr;
    ByteBuffer heap, direct;
    long off;

    @Setup(Level.Trial) public void build() throws IOException {
        stack = new BenchFs.Stack(BenchFs.scratch("rw"), 1);
        BenchFs.building(stack.root, () -> {
            try {
                populate();
            } catch (IOException | RuntimeException | Error e) {
                if (u != null) u.close();
                if (ch != null) ch.close();
                throw e;
            }
        });
    }

    private void populate() throws IOException {
        byte[] chunk = new byte[1 << 20];
        new java.util.Random(7).nextBytes(chunk);
        try (FileChannel c = FileChannel.open(stack.upper.resolve("data"), StandardOpenOption.CREATE_NEW,
                StandardOpenOption.WRITE)) {
            for (long o = 0; o < FILE; o += chunk.length) c.write(ByteBuffer.wrap(chunk), o);
        }
        u = stack.open();
        fd = u.open("/data", Posix.O_RDWR);
        if (fd < 0) throw new IllegalStateException("open /data: " + Errno.name(fd));
        nbuf = Memory.allocateDirect(Posix.RT, size);
        ch = FileChannel.open(stack.upper.resolve("data"), StandardOpenOption.READ, StandardOpenOption.WRITE);
        arr = new byte[size];
        heap = ByteBuffer.wrap(arr);
        direct = ByteBuffer.allocateDirect(size);
        // both paths must see the same bytes
        long n = u.read(fd, nbuf, size, 0);
        BenchFs.check(n == size, "pread returned " + n);
        byte[] viaUnion = new byte[size];
        nbuf.get(0, viaUnion, 0, size);
        BenchFs.check(java.util.Arrays.equals(viaUnion, java.util.Arrays.copyOf(chunk, size)), "pread data differs");
    }

    @TearDown(Level.Trial) public void remove() throws IOException {
        u.release(fd);
        u.close();
        ch.close();
        BenchFs.delete(stack.root);
    }

    private long next() {
        long o = off;
        off = o + size >= FILE ? 0 : o + size;
        return o;
    }

    @Benchmark public long unionRead() {
        return u.read(fd, nbuf, size, next());
    }

    @Benchmark public long unionWrite() {
        return u.write(fd, nbuf, size, next());
    }

    @Benchmark public long channelReadCopy() throws IOException {
        heap.clear();
        int n = ch.read(heap, next());
        nbuf.put(0, arr, 0, n);   // what a FUSE adapter must do with the bytes
        return n;
    }

    @Benchmark public long channelWriteCopy() throws IOException {
        nbuf.get(0, arr, 0, size);
        heap.clear();
        return ch.write(heap, next());
    }

    @Benchmark public long channelReadDirect() throws IOException {
        direct.clear();
        return ch.read(direct, next());
    }
}
