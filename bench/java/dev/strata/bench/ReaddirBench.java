package dev.strata.bench;

import dev.strata.union.Union;
import org.openjdk.jmh.annotations.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * Listing one directory of 10,000 visible entries ({@code Union.readdir}, every entry consumed by a
 * counting sink, as the FUSE filler would).
 *
 * <p>{@code merged5}: the directory is spread over 5 lower layers (under an empty upper). Layer k owns
 * 2,000 of the 10,000 names; each layer below the top also repeats 400 names of the layer above (hidden
 * duplicates the merge must drop); each layer above the bottom whites out 400 extra names that exist as
 * files in the layer below (200 as char 0/0 devices, 200 as {@code .wh.NAME} files). 14,800 directory
 * entries are read for 10,000 shown. {@code single}: the same 10,000 names in one layer, the baseline
 * without merge work.
 */
@Fork(value = 1, jvmArgsAppend = {"-Dfile.encoding=ISO-8859-1", "-Dsun.jnu.encoding=ISO-8859-1"})
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@State(Scope.Benchmark)
public class ReaddirBench {
    static final int VISIBLE = 10_000, LAYERS = 5, DUPS = 400, WHITEOUTS = 400;

    @Param({"merged5", "single"}) public String layout;

    BenchFs.Stack stack;
    Union u;
    final Counter counter = new Counter();

    static final class Counter implements Union.DirSink {
        int n;
        @Override public boolean entry(String name, int type, long ino) {
            n++;
            return true;
        }
    }

    @Setup(Level.Trial) public void build() throws IOException {
        int nLayers = layout.equals("single") ? 1 : LAYERS;
        stack = new BenchFs.Stack(BenchFs.scratch("readdir"), nLayers);
        BenchFs.building(stack.root, () -> {
            try {
                populate(nLayers);
            } catch (IOException | RuntimeException | Error e) {
                if (u != null) u.close();
                throw e;
            }
        });
    }

    private void populate(int nLayers) throws IOException {
        int per = VISIBLE / nLayers;
        for (int k = 0; k < nLayers; k++) {
            Path dir = Files.createDirectories(stack.lowers.get(k).resolve("big"));
            for (int i = k * per; i < (k + 1) * per; i++) BenchFs.file(dir.resolve(name(i)), 0);
            if (nLayers == 1) continue;
            if (k > 0) {   // duplicates of names the layer above owns: must be shown once
                for (int i = (k - 1) * per; i < (k - 1) * per + DUPS; i++) BenchFs.file(dir.resolve(name(i)), 0);
            }
            if (k < nLayers - 1) {   // whiteouts over names the layer below has
                for (int i = 0; i < WHITEOUTS; i++) {
                    String gone = "gone-" + k + "-" + i;
                    if (i % 2 == 0) BenchFs.whiteoutDevice(dir, gone); else BenchFs.whiteoutFile(dir, gone);
                }
            }
            if (k > 0) {
                for (int i = 0; i < WHITEOUTS; i++) BenchFs.file(dir.resolve("gone-" + (k - 1) + "-" + i), 0);
            }
        }
        u = stack.open();
        // a broken merge (duplicates, whiteouts shown, markers shown) must fail loudly, not run fast
        java.util.Set<String> names = new java.util.HashSet<>();
        int r = u.readdir("/big", (name, type, ino) -> {
            BenchFs.check(names.add(name), "duplicate entry " + name);
            BenchFs.check(name.equals(".") || name.equals("..") || name.startsWith("e"), "stray entry " + name);
            return true;
        });
        BenchFs.check(r == 0, "readdir /big = " + r);
        BenchFs.check(names.size() == VISIBLE + 2, "readdir /big shows " + (names.size() - 2) + " entries, expected " + VISIBLE);
    }

    static String name(int i) {
        return String.format("e%05d-some-typical-file-name.txt", i);
    }

    @TearDown(Level.Trial) public void remove() throws IOException {
        if (u != null) u.close();
        BenchFs.delete(stack.root);
    }

    @Benchmark public int readdir() {
        counter.n = 0;
        int r = u.readdir("/big", counter);
        if (r != 0) throw new IllegalStateException("readdir failed: " + r);
        return counter.n;
    }
}
