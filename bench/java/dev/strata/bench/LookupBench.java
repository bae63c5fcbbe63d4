package dev.strata.bench;

import dev.strata.posix.Errno;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;
import dev.strata.union.Union;
import org.openjdk.jmh.annotations.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * Path lookup ({@code Union.getattr}) of a path of {@code depth} components across {@code layers} lower
 * layers under an empty upper, the worst case for the engine: every directory on the way exists in
 * every layer (so each is merged from all of them) and the file sits in the bottom layer.
 *
 * <ul>
 *   <li>{@code cached}: the same Union answers the same path again and again (node cache hit per
 *       component, one fstatat on the top layer at the end).</li>
 *   <li>{@code uncached}: the first getattr on a freshly opened Union (engine cache empty; the kernel's
 *       dentry cache is warm, as for any repeated workload), one shot per invocation.</li>
 * </ul>
 * Shapes: {@code plain}; {@code whiteouts}: every directory on the way holds, in every layer but the
 * bottom, 64 whiteouts (char 0/0 and {@code .wh.} files alternately) over names present below;
 * {@code opaque}: every directory on the way is opaque in the middle layer (xattr and {@code .wh..wh..opq}
 * forms alternately), where the looked-up file also is; the layers below hold a shadowed copy.
 */
@Fork(value = 1, jvmArgsAppend = {"-Dfile.encoding=ISO-8859-1", "-Dsun.jnu.encoding=ISO-8859-1"})
public class LookupBench {
    static final int FILLERS = 4;
    static final int WHITEOUTS = 64;
    /**
     * One-shot benchmarks run in batches of this many shots per iteration (the set-up of each shot is
     * outside the timing); the score is per shot. So {@code -i 3} still means 3 x SHOTS lookups. Keep
     * {@code -bs}/{@code -wbs} unset: the per-shot division is fixed to this number.
     */
    static final int SHOTS = 100;

    @State(Scope.Benchmark)
    public static class Tree {
        @Param({"1", "5", "32"}) public int layers;
        @Param({"1", "2", "4", "8"}) public int depth;
        @Param({"plain", "whiteouts", "opaque"}) public String shape;

        BenchFs.Stack stack;
        String path;          // the mount path looked up
        String whitedOut;     // a path the whiteouts hide (whiteouts shape), checked once
        int winner;           // the layer whose copy of the file must win (its size is winner + 1)

        @Setup(Level.Trial) public void build() throws IOException {
            stack = new BenchFs.Stack(BenchFs.scratch("lookup"), layers);
            BenchFs.building(stack.root, this::populate);
        }

        private void populate() throws IOException {
            int bottom = layers - 1;
            int opaqueAt = layers / 2;
            winner = shape.equals("opaque") ? opaqueAt : bottom;
            StringBuilder p = new StringBuilder();
            for (int d = 0; d < depth - 1; d++) p.append("/d").append(d);
            path = p + "/target";
            whitedOut = p + "/w0";
            for (int li = 0; li < layers; li++) {
                Path top = stack.lowers.get(li);
                Path dir = top;
                for (int d = 0; d < depth; d++) {
                    if (d > 0) dir = dir.resolve("d" + (d - 1));
                    Files.createDirectories(dir);
                    for (int f = 0; f < FILLERS; f++) BenchFs.file(dir.resolve("fill" + f), 16);
                    if (shape.equals("whiteouts")) {
                        for (int w = 0; w < WHITEOUTS; w++) {
                            String name = "w" + w;
                            if (li == bottom) BenchFs.file(dir.resolve(name), 8);
                            else if (w % 2 == 0) BenchFs.whiteoutDevice(dir, name);
                            else BenchFs.whiteoutFile(dir, name);
                        }
                    }
                    if (shape.equals("opaque") && li == opaqueAt && d > 0 && layers > 1) {
                        if (d % 2 == 1) BenchFs.opaqueXattr(dir); else BenchFs.opaqueFile(dir);
                    }
                }
                if (li == winner || (shape.equals("opaque") && li > opaqueAt)) {
                    BenchFs.file(dir.resolve("target"), li + 1);
                }
            }
            // depth 1 in the "opaque" shape has no directory to make opaque (the root is a layer root):
            // only the shadowed copies below the winner remain
            try (Union u = stack.open()) { verify(u); }
        }

        void verify(Union u) {
            Stat st = new Stat();
            int r = u.getattr(path, st.pointer());
            BenchFs.check(r == 0, "getattr " + path + " = " + Errno.name(r));
            BenchFs.check(st.type() == Posix.S_IFREG && st.size() == winner + 1,
                    path + " should come from layer " + winner + " (size " + (winner + 1) + "), got size " + st.size());
            if (shape.equals("whiteouts") && layers > 1) {
                r = u.getattr(whitedOut, st.pointer());
                BenchFs.check(r == -Errno.ENOENT, whitedOut + " should be whited out, getattr = " + r);
            }
        }

        @TearDown(Level.Trial) public void remove() throws IOException {
            BenchFs.delete(stack.root);
        }
    }

    /** One Union for the whole trial: every lookup after the first is a cache hit. */
    @State(Scope.Benchmark)
    public static class Warm {
        Union u;
        Stat st;

        @Setup(Level.Trial) public void open(Tree t) {
            u = t.stack.open();
            st = new Stat();
            t.verify(u);
        }

        @TearDown(Level.Trial) public void close() { u.close(); }
    }

    /** A fresh Union per invocation: the measured getattr is its first lookup. */
    @State(Scope.Benchmark)
    public static class Cold {
        Union u;
        Stat st = new Stat();

        @Setup(Level.Invocation) public void open(Tree t) { u = t.stack.open(); }

        @TearDown(Level.Invocation) public void close() { u.close(); }
    }

    @Benchmark
    @BenchmarkMode(Mode.AverageTime)
    @OutputTimeUnit(TimeUnit.NANOSECONDS)
    @Warmup(iterations = 3, time = 1)
    @Measurement(iterations = 5, time = 1)
    public int cached(Tree t, Warm w) {
        return w.u.getattr(t.path, w.st.pointer());
    }

    @Benchmark
    @BenchmarkMode(Mode.SingleShotTime)
    @OutputTimeUnit(TimeUnit.MICROSECONDS)
    @Warmup(iterations = 3, batchSize = SHOTS)
    @Measurement(iterations = 5, batchSize = SHOTS)
    @OperationsPerInvocation(SHOTS)
    public int uncached(Tree t, Cold c) {
        return c.u.getattr(t.path, c.st.pointer());
    }
}
