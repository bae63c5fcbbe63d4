package dev.strata.nativetest;

import dev.strata.posix.Errno;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * A seeded random sequence of operations (default 2,000) run op by op on a kernel overlay mount and on
 * the implementation under test over identical copies of the standard layers: the errno (and what reads
 * and stats saw) of every operation must match, the visible trees must match every
 * {@code strata.compareEvery} operations and at the end, and after unmounting the two uppers must mean
 * the same. A failure prints the seed, the op index and the tail of the op list.
 *
 * <p>-Dstrata.seed=N replays a seed, -Dstrata.ops=N runs longer, -Dstrata.runs=N runs N seeds,
 * -Dstrata.random.exclude=overlayXattrs,trustedXattrs,renameFlags,hold,mknod,link,dirRename,setgid leaves kinds of operation out
 * (to look past a known difference), -Dstrata.tail=N prints the last N ops on failure (default 40), -Dstrata.strictRenameFlags=false skips a renameat2 with flags that strata answers with EINVAL
 * (the default when -Dstrata.mountOptions has transport=libfuse: libfuse 2 cannot pass the flags), -Dstrata.strictMmap=false
 * likewise skips an mmap that the target refuses with ENODEV (the libfuse default: libfuse 2 cannot allow shared mappings of
 * the direct-I/O files it serves hard links with). -Dstrata.random.exclude=mmap leaves the mmap operations out (the
 * sequence of a seed is then exactly what it was before they existed).
 */
@Tag("native")
class RandomDifferentialTest {
    @BeforeEach void env() { NativeSupport.assumeNativeEnvironment(); }

    @Test void randomOperationsAgreeWithTheKernel() {
        long seed = Long.getLong("strata.seed", System.currentTimeMillis() % 1_000_000_007L);
        int ops = Integer.getInteger("strata.ops", 2000);
        int runs = Integer.getInteger("strata.runs", 1);
        for (int r = 0; r < runs; r++) runOne(seed + r, ops);
    }

    static void runOne(long seed, int ops) {
        int every = Integer.getInteger("strata.compareEvery", 50);
        // libfuse 2 answers EINVAL to renameat2 flags before strata sees them: only that transport is let off
        boolean libfuse = System.getProperty("strata.mountOptions", "").contains("transport=libfuse");
        boolean strictFlags = Boolean.parseBoolean(System.getProperty("strata.strictRenameFlags", String.valueOf(!libfuse)));
        // and it cannot allow MAP_SHARED mappings of the direct-I/O files it serves hard links with (ENODEV)
        boolean strictMmap = Boolean.parseBoolean(System.getProperty("strata.strictMmap", String.valueOf(!libfuse)));
        Snapshot.Options opts = Snapshot.Options.fromProperties();
        System.out.println("[random] seed=" + seed + " ops=" + ops + " (replay: -Dstrata.seed=" + seed + ")");
        Deque<String> tail = new ArrayDeque<>();
        int skippedFlags = 0, skippedMmap = 0, failedOps = 0, excused = 0;
        try (Pair p = Pair.standard("random")) {
            p.keepOnClose();
            String who = p.refLabel() + " vs " + p.tgtLabel();
            List<String> d0 = p.treeDiff(opts, 30);
            if (!d0.isEmpty()) fail("[random] " + who + ": the trees differ before any operation:\n  " + String.join("\n  ", d0));
            OpGenerator gen = new OpGenerator(seed, p.refSnapshot(), p.ref.abs(""), OpGenerator.excludedFromProperty());
            for (int i = 0; i < ops; i++) {
                Op op = gen.next();
                OpExecutor.Outcome k, s;
                if (op.renameWithFlags() || (op.mmap() && !strictMmap)) {
                    s = p.tgtOps.run(op);
                    if (op.renameWithFlags() && s.errno == Errno.EINVAL && !strictFlags) {
                        skippedFlags++;
                        remember(tail, i, op, "(skipped on the reference: " + p.tgtLabel() + " gave EINVAL for rename flags)");
                        continue;
                    }
                    if (op.mmap() && s.mmapRefused()) {
                        // the file still had several names after the open (nothing was copied up): no state changed
                        skippedMmap++;
                        remember(tail, i, op, "(skipped on the reference: " + p.tgtLabel() + " gave ENODEV for mmap)");
                        continue;
                    }
                    k = p.refOps.run(op);
                } else {
                    k = p.refOps.run(op);
                    s = p.tgtOps.run(op);
                }
                boolean excuse = k.excuses(s);
                remember(tail, i, op, excuse ? k + " (" + p.tgtLabel() + ": " + s + ", excused: overlayfs.rst non-standard behaviour b)" : k.toString());
                if (!k.ok()) failedOps++;
                if (excuse) {
                    excused++;
                } else if (!k.normalized(opts).equals(s.normalized(opts))) {
                    fail(report(seed, i, op, who + p.targetLog(), "operation results differ:\n  " + p.refLabel() + ": " + k + "\n  " + p.tgtLabel() + ": " + s,
                            tail, p.treeDiff(opts, 20)));
                }
                if ((i + 1) % every == 0 || i == ops - 1) {
                    List<String> d = p.treeDiff(opts, 30);
                    if (!d.isEmpty()) fail(report(seed, i, op, who + p.targetLog(), "the trees differ after this op", tail, d));
                }
            }
            p.unmount();
            List<String> ud = Snapshot.diff(Snapshot.upperMeaning(p.refLabel(), p.refLayers.upper, p.refLayers.lowers),
                    Snapshot.upperMeaning(p.tgtLabel(), p.tgtLayers.upper, p.tgtLayers.lowers), opts, 30);
            if (!ud.isEmpty()) fail(report(seed, ops - 1, null, who, "the upper layers mean different things after unmount", tail, ud));
            System.out.println("[random] seed=" + seed + ": " + who + " agree on " + ops + " ops (" + failedOps
                    + " failed identically on both" + (skippedFlags > 0 ? ", " + skippedFlags + " renames with flags skipped: "
                    + p.tgtLabel() + " gives EINVAL" : "")
                    + (skippedMmap > 0 ? ", " + skippedMmap + " mmaps skipped: " + p.tgtLabel() + " gives ENODEV (libfuse 2: hard-linked files have direct I/O)" : "")
                    + (excused > 0 ? ", " + excused + " mappings of a descriptor opened before a copy-up: the kernel maps the lower file, "
                    + p.tgtLabel() + " the copy (overlayfs.rst non-standard behaviour b)" : "") + ")");
        }
    }

    private static void remember(Deque<String> tail, int i, Op op, String result) {
        tail.addLast("#" + i + " " + op + " -> " + result);
        if (tail.size() > Integer.getInteger("strata.tail", 40)) tail.removeFirst();
    }

    private static String report(long seed, int index, Op op, String who, String what, Deque<String> tail, List<String> diff) {
        return "[random] " + who + ", seed=" + seed + ", op #" + index + (op == null ? "" : ": " + op) + "\n" + what
                + "\nreplay: mvn -B test -Dstrata.excludedGroups= -Dtest=RandomDifferentialTest -Dstrata.seed=" + seed
                + " -Dstrata.ops=" + (index + 1)
                + "\nlast operations (result on the reference):\n  " + String.join("\n  ", tail)
                + (diff.isEmpty() ? "\ntrees agree at this point" : "\ntree differences:\n  " + String.join("\n  ", diff));
    }
}
