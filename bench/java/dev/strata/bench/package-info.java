/**
 * JMH benchmarks of the union engine's hot paths, without FUSE.
 *
 * <h2>Running</h2>
 * <pre>
 *   mvn -B -q package -DskipTests          # compiles bench/java, generates META-INF/BenchmarkList
 *   java -cp target/test-classes:target/classes:$(cat target/test-classpath.txt) \
 *        org.openjdk.jmh.Main [REGEXP] -f 1 -wi 2 -i 3 -w 1s -r 1s
 * </pre>
 * ({@code target/test-classpath.txt} lists the dependency jars only: {@code target/classes}, the engine
 * itself, must be on the class path too.) {@code scripts/bench.sh jmh [REGEXP] [JMH options]} wraps this.
 * Each benchmark forks a JVM with {@code -Dfile.encoding=ISO-8859-1}, builds its layer directories under
 * {@code /var/tmp} ({@code -jvmArgsAppend -Dstrata.bench.tmp=DIR} to change), checks once that the engine
 * answers correctly on them (a broken merge or copy-up stops the run), and removes them afterwards.
 *
 * <ul>
 *   <li>{@link dev.strata.bench.LookupBench}: getattr of a path of depth 1..8 over 1, 5, 32 lower
 *       layers, plain / whiteout-dense / opaque directories, cached (ns/op) and uncached (first lookup
 *       on a fresh engine, us/op).</li>
 *   <li>{@link dev.strata.bench.ReaddirBench}: readdir of a 10,000-entry directory merged from 5 layers
 *       with duplicates and whiteouts, and the same names in one layer (ms/op).</li>
 *   <li>{@link dev.strata.bench.CopyUpBench}, {@link dev.strata.bench.CopyUpLargeBench}: copy-up of
 *       4 KiB, 1 MiB, 256 MiB and a sparse 1 GiB file with mode, times and xattrs, against
 *       {@code cp --preserve=mode,timestamps,xattr} of the same file (process start included).</li>
 *   <li>{@link dev.strata.bench.ReadWriteBench}: one pread/pwrite of 4 KiB or 128 KiB through
 *       {@code Union.read/write} into a native buffer, against FileChannel with a heap buffer plus the
 *       copy to native memory, and FileChannel on a direct buffer.</li>
 * </ul>
 * One-shot benchmarks (uncached lookup, copy-up) run in batches per iteration and report the time of one
 * shot, so short runs ({@code -i 3}) still take hundreds of shots; do not pass {@code -bs}/{@code -wbs}.
 * Profiling: add {@code -prof stack} (thread stack sampling) or {@code -prof gc}.
 */
package dev.strata.bench;
