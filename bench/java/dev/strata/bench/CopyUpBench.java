package dev.strata.bench;

import org.openjdk.jmh.annotations.*;

import java.io.IOException;
import java.util.concurrent.TimeUnit;

/**
 * Copy-up of one lower file (data, mode, times, xattrs), triggered by opening it for writing, on a fresh
 * engine whose upper does not have it yet: one shot per invocation (the set-up, outside the timing,
 * removes the previous copy and opens a new Union). {@code cp} is the same copy done by coreutils
 * (process start included), for reference. The 256 MiB file is {@link CopyUpLargeBench}.
 */
@Fork(value = 1, jvmArgsAppend = {"-Dfile.encoding=ISO-8859-1", "-Dsun.jnu.encoding=ISO-8859-1"})
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, batchSize = CopyUpBench.SHOTS)
@Measurement(iterations = 5, batchSize = CopyUpBench.SHOTS)
@OperationsPerInvocation(CopyUpBench.SHOTS)
@State(Scope.Benchmark)
public class CopyUpBench {
    /** Shots per iteration (see {@link LookupBench#SHOTS}); the score is per copy. */
    static final int SHOTS = 50;

    @Param({"4KiB", "1MiB", "sparse1GiB"}) public String file;

    CopyUpFixture fx;

    @Setup(Level.Trial) public void build() throws IOException {
        fx = new CopyUpFixture(file);
        fx.build();
    }

    @Setup(Level.Invocation) public void fresh() throws IOException {
        fx.close();
        fx.reset();
        fx.resetCp();
        fx.open();
    }

    @TearDown(Level.Trial) public void remove() throws IOException {
        fx.remove();
    }

    @Benchmark public int copyUp() {
        return fx.copyUp();
    }

    @Benchmark public int cp() throws IOException {
        return fx.cp();
    }
}
