package dev.strata.bench;

import org.openjdk.jmh.annotations.*;

import java.io.IOException;
import java.util.concurrent.TimeUnit;

/** {@link CopyUpBench} for a 256 MiB file, with few shots (each writes 256 MiB). */
@Fork(value = 1, jvmArgsAppend = {"-Dfile.encoding=ISO-8859-1", "-Dsun.jnu.encoding=ISO-8859-1"})
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, batchSize = 1)
@Measurement(iterations = 8, batchSize = 1)
@State(Scope.Benchmark)
public class CopyUpLargeBench {
    @Param({"256MiB"}) public String file;

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
