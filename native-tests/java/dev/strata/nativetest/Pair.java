package dev.strata.nativetest;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

/**
 * Two identical layer sets, one mounted by the reference (the kernel overlay), one by the
 * implementation under test, with an {@link OpExecutor} on each. {@link #close()} closes descriptors,
 * unmounts both (even if one unmount fails) and removes the temp dir.
 */
public final class Pair implements AutoCloseable {
    public final Path dir;
    public final LayerSet refLayers, tgtLayers;
    public final Mounter refMounter, tgtMounter;
    public Mount ref, tgt;
    public OpExecutor refOps, tgtOps;
    /** Both sides' lower layers as they were before the first mount (check with assertUnchanged after unmount). */
    public final LowerLayers refLowers, tgtLowers;
    private boolean keep;

    /** Builds both layer sets with builder(root) and mounts them. */
    public Pair(String name, Mounter refMounter, Mounter tgtMounter, Function<Path, LayerSet> builder) {
        this.refMounter = refMounter;
        this.tgtMounter = tgtMounter;
        this.dir = NativeSupport.newTempDir(name);
        try {
            // ops run as uid 1000 or 65534 (Op#asUser) name the mounts by absolute path: they must be
            // able to pass through this directory (createTempDirectory makes it 0700)
            java.nio.file.Files.setPosixFilePermissions(dir, java.nio.file.attribute.PosixFilePermissions.fromString("rwx--x--x"));
            refLayers = builder.apply(dir.resolve("ref"));
            tgtLayers = builder.apply(dir.resolve("tgt"));
            refLowers = LowerLayers.snapshot(refLabel(), refLayers.allLowers());
            tgtLowers = LowerLayers.snapshot(tgtLabel(), tgtLayers.allLowers());
            mount();
        } catch (RuntimeException | Error e) {
            close();
            throw e;
        } catch (java.io.IOException e) {
            close();
            throw new java.io.UncheckedIOException(e);
        }
    }

    public static Pair standard(String name) {
        return new Pair(name, Mounter.kernel(), Mounter.underTest(), LayerBuilder::standard);
    }

    /** Labels used in diffs: "kernel" and the target's name (with a suffix when both are the kernel). */
    public String refLabel() { return refMounter.name(); }
    public String tgtLabel() { return tgtMounter.name().equals(refMounter.name()) ? tgtMounter.name() + "#2" : tgtMounter.name(); }

    public void mount() {
        ref = refMounter.mount(refLayers);
        refOps = new OpExecutor(ref.abs(""));
        tgt = tgtMounter.mount(tgtLayers);
        tgtOps = new OpExecutor(tgt.abs(""));
    }

    /** Closes descriptors and unmounts both (the layers stay). */
    public void unmount() {
        List<Throwable> errors = new ArrayList<>();
        if (tgt != null) lastTargetLog = tgt.logTail(30);
        for (AutoCloseable c : new AutoCloseable[]{refOps, tgtOps, ref, tgt}) {
            try { if (c != null) c.close(); } catch (Throwable t) { errors.add(t); }
        }
        refOps = tgtOps = null;
        ref = tgt = null;
        if (!errors.isEmpty()) {
            IllegalStateException e = new IllegalStateException("unmount failed: " + errors);
            errors.forEach(e::addSuppressed);
            throw e;
        }
    }

    public Snapshot refSnapshot() { return Snapshot.take(refLabel(), refLayers.mnt); }
    public Snapshot tgtSnapshot() { return Snapshot.take(tgtLabel(), tgtLayers.mnt); }

    /** The differences between what the two mounts show now (empty if they agree). */
    public List<String> treeDiff(Snapshot.Options o, int max) {
        return Snapshot.diff(refSnapshot(), tgtSnapshot(), o, max);
    }

    /** The target daemon's log tail, formatted for a failure message (empty if there is none). */
    public String targetLog() {
        String t = tgt == null ? lastTargetLog : tgt.logTail(30);
        return t.isEmpty() ? "" : "\n" + tgtLabel() + " log (last lines):\n  " + t.replace("\n", "\n  ");
    }
    private String lastTargetLog = "";

    /** Keep the temp dir (layers) for inspection after a failure (-Dstrata.keepFailed=true). */
    public void keepOnClose() { keep = Boolean.getBoolean("strata.keepFailed"); }

    @Override public void close() {
        try {
            unmount();
        } finally {
            if (keep) System.err.println("[nativetest] kept " + dir + " for inspection");
            else NativeSupport.deleteTree(dir);
        }
    }
}
