package dev.strata.nativetest;

import dev.strata.posix.Errno;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;

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
        Long extra = extraSeed(System.getProperty("strata.extraSeed", ""));
        if (extra != null) runOne(extra, ops);
    }

    /**
     * -Dstrata.extraSeed=auto: one more seed per run, derived from today's date (UTC, as yyyymmdd), so
     * that CI, whose fixed seeds stay fixed, also tries a new sequence every day; a number runs that
     * seed; empty or "none": no extra run. Printed like every seed, so a failure can be replayed.
     */
    static Long extraSeed(String v) {
        v = v.strip();
        if (v.isEmpty() || v.equals("none")) return null;
        if (v.equals("auto")) return Long.parseLong(java.time.LocalDate.now(java.time.ZoneOffset.UTC).format(java.time.format.DateTimeFormatter.BASIC_ISO_DATE));
        try {
            return Long.parseLong(v);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("-Dstrata.extraSeed: auto, none or a number, not '" + v + "'");
        }
    }

    static void runOne(long seed, int ops) {
        int every = Integer.getInteger("strata.compareEvery", 50);
        // libfuse 2 answers EINVAL to renameat2 flags before strata sees them: only that transport is let off
        boolean libfuse = Mounter.libfuseTransport();
        boolean strictFlags = Boolean.parseBoolean(System.getProperty("strata.strictRenameFlags", String.valueOf(!libfuse)));
        // and it cannot allow MAP_SHARED mappings of the direct-I/O files it serves hard links with (ENODEV)
        boolean strictMmap = Boolean.parseBoolean(System.getProperty("strata.strictMmap", String.valueOf(!libfuse)));
        Snapshot.Options opts = Snapshot.Options.fromProperties();
        boolean writebackCtime = Mounter.writebackCache();
        boolean remount = !OpGenerator.excludedFromProperty().contains("remount");
        System.out.println("[random] random seed " + seed + " (replay: -Dstrata.seed=" + seed + "), ops=" + ops);
        Deque<String> tail = new ArrayDeque<>();
        // names whose object went away, came or changed since the last tree comparison (Snapshot#diff)
        java.util.Set<String> renewed = new java.util.HashSet<>();
        int skippedFlags = 0, skippedMmap = 0, failedOps = 0, excused = 0;
        try (Pair p = Pair.standard("random")) {
            p.keepOnClose();
            String who = p.refLabel() + " vs " + p.tgtLabel();
            Snapshot prevRef = p.refSnapshot(), prevTgt = p.tgtSnapshot();
            List<String> d0 = Snapshot.diff(prevRef, prevTgt, opts, 30);
            if (!d0.isEmpty()) fail("[random] " + who + ": the trees differ before any operation:\n  " + String.join("\n  ", d0));
            OpGenerator gen = new OpGenerator(seed, prevRef, p.ref.abs(""), OpGenerator.excludedFromProperty());
            for (int i = 0; i < ops; i++) {
                if (remount && i == ops / 2 && i > 0) {
                    // halfway: unmount both (held descriptors are closed), check the lowers, mount again; the
                    // next comparison is relative to the trees just before, so st_ino must survive the remount
                    Snapshot r0 = p.refSnapshot(), t0 = p.tgtSnapshot();
                    List<String> d = Snapshot.diff(r0, t0, opts, 30, prevRef, prevTgt, renewed);
                    if (!d.isEmpty()) fail(report(seed, i - 1, null, who + p.targetLog(), "the trees differ before the remount", tail, d));
                    prevRef = r0;
                    prevTgt = t0;
                    renewed.clear();
                    p.unmount();
                    lowersUnchanged(p, seed, i, who, tail);
                    p.mount();
                    remember(tail, i, null, "(unmounted and mounted both again)");
                    d = Snapshot.diff(r0 = p.refSnapshot(), t0 = p.tgtSnapshot(), opts, 30, prevRef, prevTgt);
                    if (!d.isEmpty()) fail(report(seed, i, null, who + p.targetLog(), "the trees differ after the remount", tail, d));
                    prevRef = r0;
                    prevTgt = t0;
                }
                Op op = gen.next();
                List<String> touched = touched(op);
                Map<String, long[]> kBefore = stats(p.ref.abs(""), touched), sBefore = stats(p.tgt.abs(""), touched);
                if ((op.kind == Op.Kind.CREATE || op.kind == Op.Kind.OPEN_TRUNC) && kBefore.get(op.path) != null && sBefore.get(op.path) != null) {
                    // an open of an existing name adds nothing to its directory; a copy-up it makes changes the
                    // upper directory's ctime on the kernel as a side effect (see touched)
                    touched.remove(parent(op.path));
                }
                waitForNextTick(kBefore, sBefore);
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
                } else if (op.kind == Op.Kind.SEEK_MAP ? OpExecutor.seekMapDisagreement(k, s) != null : !k.normalized(opts).equals(s.normalized(opts))) {
                    fail(report(seed, i, op, who + p.targetLog(), "operation results differ:\n  " + p.refLabel() + ": " + k + "\n  " + p.tgtLabel() + ": " + s,
                            tail, p.treeDiff(opts, 20)));
                }
                Map<String, long[]> kAfter = stats(p.ref.abs(""), touched), sAfter = stats(p.tgt.abs(""), touched);
                renewed.addAll(renewed(touched, kBefore, kAfter));
                renewed.addAll(renewed(touched, sBefore, sAfter));
                List<String> t = timesDiffer(touched, kBefore, kAfter, p.refLabel(), sBefore, sAfter, p.tgtLabel(), opts);
                // under the writeback cache (-o writeback=on, not the default) the kernel keeps a regular
                // file's ctime itself: what strata changes without a write through the kernel (a copy-up at
                // a write open, copy_file_range or a refused xattr change, FS_IOC_SETFLAGS) does not move it,
                // and no request of strata's can (README, "Transports"): that difference is let pass there
                String refOnly = ": ctime changed on " + p.refLabel() + " only";
                if (writebackCtime) t.removeIf(l -> l.contains(refOnly));
                if (!t.isEmpty()) fail(report(seed, i, op, who + p.targetLog(), "what the operation changed differs:\n  " + String.join("\n  ", t), tail, p.treeDiff(opts, 20)));
                if ((i + 1) % every == 0 || i == ops - 1) {
                    Snapshot r = p.refSnapshot(), ts = p.tgtSnapshot();
                    List<String> d = Snapshot.diff(r, ts, opts, 30, prevRef, prevTgt, renewed);
                    if (!d.isEmpty()) fail(report(seed, i, op, who + p.targetLog(), "the trees differ after this op", tail, d));
                    prevRef = r;
                    prevTgt = ts;
                    renewed.clear();
                }
            }
            p.unmount();
            lowersUnchanged(p, seed, ops - 1, who, tail);
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

    private static void lowersUnchanged(Pair p, long seed, int index, String who, Deque<String> tail) {
        List<String> c = new java.util.ArrayList<>();
        for (String l : p.refLowers.changes(15)) c.add(p.refLabel() + ": " + l);
        for (String l : p.tgtLowers.changes(15)) c.add(p.tgtLabel() + ": " + l);
        if (!c.isEmpty()) fail(report(seed, index, null, who + p.targetLog(), "a lower layer changed (nothing done through a mount may change one)", tail, c));
    }

    /**
     * The names whose st_ino, mtime and ctime an op may change: its path(s), and the parent directory of
     * a name it adds or removes. Not the parent of a name only looked at or changed in place: there the
     * kernel overlay shows the ctime of the upper directory, which a copy-up of a sibling or of a child's
     * ancestors changes as a side effect.
     */
    static List<String> touched(Op op) {
        java.util.LinkedHashSet<String> out = new java.util.LinkedHashSet<>();
        Op.Kind k = op.kind;
        boolean path2IsName = k == Op.Kind.LINK || k == Op.Kind.RENAME || k == Op.Kind.COPY_RANGE || k == Op.Kind.TMPFILE || k == Op.Kind.LINK_HELD;
        boolean addsOrRemoves1 = k == Op.Kind.CREATE || k == Op.Kind.CREATE_EXCL || k == Op.Kind.SYMLINK || k == Op.Kind.MKDIR || k == Op.Kind.RMDIR
                || k == Op.Kind.UNLINK || k == Op.Kind.RENAME || k == Op.Kind.MKFIFO || k == Op.Kind.MKNOD
                || (k == Op.Kind.OPEN_TRUNC && (op.a & Posix.O_CREAT) != 0);
        boolean addsOrRemoves2 = k == Op.Kind.LINK || k == Op.Kind.RENAME || k == Op.Kind.TMPFILE || k == Op.Kind.LINK_HELD;
        if (op.path != null) {
            out.add(op.path);
            if (addsOrRemoves1) out.add(parent(op.path));
        }
        if (path2IsName && op.path2 != null) {
            out.add(op.path2);
            if (addsOrRemoves2) out.add(parent(op.path2));
        }
        return new java.util.ArrayList<>(out);
    }

    /** The names among rels whose object an operation removed, created or replaced (st_ino changed) on one side. */
    static List<String> renewed(List<String> rels, Map<String, long[]> before, Map<String, long[]> after) {
        List<String> out = new java.util.ArrayList<>();
        for (String rel : rels) {
            long[] b = before.get(rel), a = after.get(rel);
            if ((b == null) != (a == null) || (b != null && a[0] != b[0])) out.add(rel);
        }
        return out;
    }

    private static String parent(String n) { return n.contains("/") ? n.substring(0, n.lastIndexOf('/')) : ""; }

    /** lstat of each name below root: {st_ino, mtime s, ns, ctime s, ns}, or null where it does not exist. */
    static Map<String, long[]> stats(String root, List<String> rels) {
        Map<String, long[]> out = new java.util.HashMap<>();
        for (String rel : rels) {
            Stat st = new Stat();
            String path = rel.isEmpty() ? root : root + "/" + rel;
            int r = Mounts.guarded("lstat " + path, () -> Posix.fstatat(Posix.AT_FDCWD, path, st, Posix.AT_SYMLINK_NOFOLLOW));
            out.put(rel, r < 0 ? null : new long[]{st.ino(), st.mtime(), st.mtimeNs(), st.ctime(), st.ctimeNs()});
        }
        return out;
    }

    /**
     * File times come from a coarse clock (one tick is a few ms): an op in the same tick as the last
     * change of a name would leave its times as they were on one side and not on the other. If a time
     * seen before the op is that recent, wait until the clock has moved on.
     */
    static void waitForNextTick(Map<String, long[]> a, Map<String, long[]> b) {
        long newest = 0;
        for (Map<String, long[]> m : List.of(a, b)) {
            for (long[] v : m.values()) {
                if (v == null) continue;
                newest = Math.max(newest, Math.max(v[1] * 1000 + v[2] / 1_000_000, v[3] * 1000 + v[4] / 1_000_000));
            }
        }
        long wait = newest + TICK_MS - System.currentTimeMillis();
        if (wait > 0) {
            try { Thread.sleep(Math.min(wait, TICK_MS)); } catch (InterruptedException e) { Thread.currentThread().interrupt(); }
        }
    }
    static final long TICK_MS = 12;

    /**
     * Per operation, for every name it touches that exists before and after on both sides: whether its
     * st_ino changed, whether its mtime changed and whether its ctime changed must agree (the values
     * legitimately differ: "now" is another moment on each side). Times are not compared for a name
     * another object took on both sides.
     */
    static List<String> timesDiffer(List<String> rels, Map<String, long[]> aBefore, Map<String, long[]> aAfter, String aLabel,
                                    Map<String, long[]> bBefore, Map<String, long[]> bAfter, String bLabel, Snapshot.Options o) {
        List<String> out = new java.util.ArrayList<>();
        String[] what = {"st_ino", "mtime", "ctime"};
        for (String rel : rels) {
            long[] a0 = aBefore.get(rel), a1 = aAfter.get(rel), b0 = bBefore.get(rel), b1 = bAfter.get(rel);
            if (a0 == null || a1 == null || b0 == null || b1 == null) continue;
            // another object took the name on both sides (a rename over it): whether its times equal the
            // old object's is a matter of the clock (both written in one tick on one side, not the other)
            boolean replaced = a0[0] != a1[0] && b0[0] != b1[0];
            for (int w = 0; w < 3; w++) {
                if (w > 0 && replaced) continue;
                if (w == 0 && !o.compareInodeGroups) continue;
                if (w > 0 && !o.compareOldTimes) continue;
                int i = w == 0 ? 0 : w == 1 ? 1 : 3;
                boolean ca = a0[i] != a1[i] || (w > 0 && a0[i + 1] != a1[i + 1]), cb = b0[i] != b1[i] || (w > 0 && b0[i + 1] != b1[i + 1]);
                if (ca != cb) {
                    out.add("'" + Names.show(rel.isEmpty() ? "." : rel) + "': " + what[w] + " changed on " + (ca ? aLabel : bLabel) + " only ("
                            + aLabel + ": " + show(a0, i, w) + " -> " + show(a1, i, w) + ", " + bLabel + ": " + show(b0, i, w) + " -> " + show(b1, i, w) + ")");
                }
            }
        }
        return out;
    }

    private static String show(long[] v, int i, int w) { return w == 0 ? Long.toString(v[i]) : v[i] + "." + String.format("%09d", v[i + 1]); }

    private static void remember(Deque<String> tail, int i, Op op, String result) {
        tail.addLast("#" + i + " " + (op == null ? "" : op + " -> ") + result);
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
