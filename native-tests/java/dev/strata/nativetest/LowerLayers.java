package dev.strata.nativetest;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * The invariant every test that mounts can check: nothing done through a mount changes a lower layer.
 * {@link #snapshot} records every entry of every lower directory before the mount (type, mode, owner,
 * size, sha256 of the content, the data/hole map, symlink target, rdev, nlink, st_ino, mtime and ctime
 * to the nanosecond, every xattr including trusted.* and security.* and the POSIX ACLs; see
 * {@link Snapshot.Options#exact()}); {@link #assertUnchanged} after unmount fails with what changed.
 * Only atime may change (reading through the overlay reads the lower file). ctime catches a change that
 * was undone (a chmod and back, a link and unlink): the kernel sets it on every change of the inode.
 */
public final class LowerLayers {
    private final String label;
    private final List<Path> dirs;
    private final List<Snapshot> before = new ArrayList<>();

    private LowerLayers(String label, List<Path> dirs) {
        this.label = label;
        this.dirs = List.copyOf(dirs);
        for (Path d : this.dirs) before.add(Snapshot.take("before", d));
    }

    /** Records the lower dirs now (before mounting). */
    public static LowerLayers snapshot(String label, List<Path> lowers) { return new LowerLayers(label, lowers); }
    public static LowerLayers snapshot(LayerSet layers) { return snapshot(layers.root.toString(), layers.lowers); }

    /**
     * Records the lower dirs again: for a test that changes them itself (chattr on the layer files)
     * before anything is done through the mount; later changes are checked against this state.
     */
    public void recordAgain() {
        before.clear();
        for (Path d : dirs) before.add(Snapshot.take("before", d));
    }

    /** What changed in each lower dir since {@link #snapshot} (empty: nothing). */
    public List<String> changes(int max) {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < dirs.size(); i++) {
            List<String> d = Snapshot.diff(before.get(i), Snapshot.take("after", dirs.get(i)), Snapshot.Options.exact(), max);
            for (String l : d) out.add("lower layer " + i + " (" + dirs.get(i) + "): " + l);
        }
        return out;
    }

    /** Fails (with context) if any lower dir changed since {@link #snapshot}. Call it after unmounting. */
    public void assertUnchanged(String context) {
        List<String> c = changes(20);
        if (!c.isEmpty()) fail((context == null || context.isEmpty() ? "" : context + "\n") + label + ": a lower layer changed:\n  " + String.join("\n  ", c));
    }

    public void assertUnchanged() { assertUnchanged(""); }
}
