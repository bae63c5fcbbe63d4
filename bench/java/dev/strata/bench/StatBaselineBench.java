package dev.strata.bench;

import dev.strata.posix.Posix;
import dev.strata.posix.Stat;
import org.openjdk.jmh.annotations.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFileAttributes;
import java.util.concurrent.TimeUnit;

/**
 * The floor under {@link LookupBench#cached}: one {@code fstatat} of a path of {@code depth} components
 * relative to a directory descriptor through the same jnr-ffi binding the engine uses (what a cached
 * lookup ends with), and NIO's {@code Files.readAttributes} of the same file for comparison.
 */
@Fork(value = 1, jvmArgsAppend = {"-Dfile.encoding=ISO-8859-1", "-Dsun.jnu.encoding=ISO-8859-1"})
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@State(Scope.Benchmark)
public class StatBaselineBench {
    @Param({"1", "8"}) public int depth;

    Path root, file;
    int fd;
    String rel;
    final Stat st = new Stat();

    @Setup(Level.Trial) public void build() throws IOException {
        root = BenchFs.scratch("stat");
        BenchFs.building(root, this::populate);
    }

    private void populate() throws IOException {
        StringBuilder r = new StringBuilder();
        for (int d = 0; d < depth - 1; d++) r.append("d").append(d).append('/');
        rel = r + "target";
        file = root.resolve(rel);
        Files.createDirectories(file.getParent());
        BenchFs.file(file, 1);
        fd = Posix.openat(Posix.AT_FDCWD, root.toString(), Posix.O_PATH | Posix.O_DIRECTORY, 0);
        BenchFs.check(fd >= 0, "open " + root);
        BenchFs.check(Posix.fstatat(fd, rel, st, Posix.AT_SYMLINK_NOFOLLOW) == 0 && st.size() == 1, "fstatat " + rel);
    }

    @TearDown(Level.Trial) public void remove() throws IOException {
        Posix.close(fd);
        BenchFs.delete(root);
    }

    @Benchmark public int fstatat() {
        return Posix.fstatat(fd, rel, st, Posix.AT_SYMLINK_NOFOLLOW);
    }

    @Benchmark public PosixFileAttributes nioReadAttributes() throws IOException {
        return Files.readAttributes(file, PosixFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
    }
}
