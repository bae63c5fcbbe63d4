package dev.strata.inspect;

import dev.strata.layer.Layer;
import dev.strata.layer.Markers;
import dev.strata.layer.Markers.OpaqueForm;
import dev.strata.layer.Markers.WhiteoutForm;
import dev.strata.posix.Errno;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;
import dev.strata.union.LayerLookup;

/**
 * What one layer holds under one name of a directory it has: nothing, a whiteout (and its form), a
 * directory (opaque or not, and the form), another object, or an error. Every marker form is read
 * through {@link Markers}. The caller guarantees that the parent is a real directory in that layer
 * (no symlink on the way), so no lookup here follows a link.
 */
public record Probe(int layer, Kind kind, Node node, WhiteoutForm whiteout, OpaqueForm opaque, int errno) {

    public enum Kind { ABSENT, WHITEOUT, DIR, NONDIR, ERROR }

    /** Looks at parentRel/name in layer {@code index} of the stack. */
    static Probe of(Stack stack, int index, String parentRel, String name) {
        Layer layer = stack.layer(index);
        String rel = Layer.child(parentRel, name);
        Stat st = Stat.local();
        int r = layer.lstat(rel, st);
        if (r == -Errno.ENOENT) {
            return Markers.hasWhFile(layer, parentRel, name)
                    ? new Probe(index, Kind.WHITEOUT, null, WhiteoutForm.WH_FILE, null, 0)
                    : new Probe(index, Kind.ABSENT, null, null, null, 0);
        }
        if (r < 0) return new Probe(index, Kind.ERROR, null, null, null, -r);
        String target = null;
        if (st.type() == Posix.S_IFLNK) target = readlink(layer, rel);
        Node node = Node.of(st, target);
        WhiteoutForm wf = Markers.entryWhiteout(layer, rel, st);
        if (wf != null) return new Probe(index, Kind.WHITEOUT, node, wf, null, 0);
        if (node.isDir()) return new Probe(index, Kind.DIR, node, null, Markers.opaque(layer, rel), 0);
        return new Probe(index, Kind.NONDIR, node, null, null, 0);
    }

    /**
     * What the engine's lookup ({@link LayerLookup}) said of layer {@code index}, with the details of
     * what the layer holds there (its node, the whiteout or opaque form) for display. Where the layer
     * seen alone and the lookup differ, the lookup decides: the context (the parent's overlay.opaque=x
     * mark, a non-directory on the way) is the lookup's, e.g. an xattr whiteout outside an opaque=x
     * directory is a plain file.
     */
    static Probe judged(Stack stack, int index, String parentRel, String name, LayerLookup.Say say, int errno) {
        if (say == LayerLookup.Say.ABSENT) return new Probe(index, Kind.ABSENT, null, null, null, 0);
        if (say == LayerLookup.Say.ERROR) return new Probe(index, Kind.ERROR, null, null, null, -errno);
        Probe p = of(stack, index, parentRel, name);
        Kind k = Kind.valueOf(say.name());
        if (p.kind == k) return p;
        return new Probe(index, k, p.node, k == Kind.WHITEOUT ? p.whiteout : null, k == Kind.DIR ? p.opaque : null, 0);
    }

    /** The layer root: always a directory; its opaque markers are ignored (as the kernel does). */
    static Probe root(Stack stack, int index) {
        Stat st = Stat.local();
        int r = stack.layer(index).lstat("", st);
        if (r < 0) return new Probe(index, Kind.ERROR, null, null, null, -r);
        return new Probe(index, Kind.DIR, Node.of(st, null), null, null, 0);
    }

    static String readlink(Layer layer, String rel) {
        try (var at = layer.at(rel)) {
            if (!at.ok()) return null;
            int[] err = new int[1];
            return Posix.readlinkat(at.dirfd(), at.name(), err);
        }
    }

    /** A one-line description of what the layer holds (a byte string). */
    public String describe() {
        switch (kind) {
            case ABSENT: return "absent";
            case WHITEOUT: return "whiteout (" + whiteout.label + ")";
            case DIR: return node.describe() + (opaque != null ? ", opaque (" + opaque.label + ")" : "");
            case NONDIR: return node.describe();
            default: return "cannot look: " + Posix.strerror(errno);
        }
    }
}
