package dev.strata.inspect;

import dev.strata.layer.Layer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One step of a path lookup through the stack, with the kernel's rules (fs/overlayfs/namei.c,
 * ovl_lookup): the name is looked up in each layer of the parent's merge list, top first.
 * <ul>
 * <li>absent: the next layer is asked;</li>
 * <li>a whiteout: the name is hidden in every layer below; the lookup stops;</li>
 * <li>a directory: it joins the merge; an opaque directory stops the lookup;</li>
 * <li>a non-directory found first: it is the result and hides everything below;</li>
 * <li>a non-directory below a directory: it is ignored and stops the merge.</li>
 * </ul>
 */
public final class Lookup {

    public enum Result { DIR, NONDIR, WHITEOUT, ABSENT, ERROR }

    /** Why the lookup did not ask the layers below {@link #stopLayer}. */
    public enum Stop {
        /** Every layer of the parent's merge list was asked. */
        NONE,
        /** The result is a non-directory: it hides everything below. */
        NONDIR,
        /** A whiteout hides the name below. */
        WHITEOUT,
        /** An opaque directory ends the merge. */
        OPAQUE,
        /** A non-directory below a directory ends the merge (and is itself ignored). */
        NONDIR_BELOW_DIR,
        /** A layer could not be read. */
        ERROR
    }

    public final String parentRel;
    public final String name;
    public final String rel;
    /** The parent's merge list: the layers asked, top first (until the stop). */
    public final int[] parentMerge;
    /** What each asked layer said, in order; the last one is the stop layer when there is one. */
    public final List<Probe> probes;
    public final Result result;
    /** For DIR: the layers whose directories are merged, top first. Empty otherwise. */
    public final int[] merge;
    /** For NONDIR: the layer shown; for DIR: merge[0]; for WHITEOUT: the whiteout's layer; else -1. */
    public final int top;
    public final Stop stop;
    /** The layer where the lookup stopped, or -1 for {@link Stop#NONE}. */
    public final int stopLayer;

    private Lookup(String parentRel, String name, int[] parentMerge, List<Probe> probes, Result result, int[] merge,
                   int top, Stop stop, int stopLayer) {
        this.parentRel = parentRel; this.name = name; this.rel = Layer.child(parentRel, name);
        this.parentMerge = parentMerge; this.probes = probes; this.result = result; this.merge = merge;
        this.top = top; this.stop = stop; this.stopLayer = stopLayer;
    }

    /** Looks up {@code name} in directory {@code parentRel}, whose merge list is {@code parentMerge}. */
    public static Lookup run(Stack stack, int[] parentMerge, String parentRel, String name) {
        List<Probe> probes = new ArrayList<>(parentMerge.length);
        int[] merge = new int[parentMerge.length];
        int nmerge = 0;
        for (int layer : parentMerge) {
            Probe p = Probe.of(stack, layer, parentRel, name);
            probes.add(p);
            switch (p.kind()) {
                case ABSENT:
                    continue;
                case ERROR:
                    return done(parentRel, name, parentMerge, probes, Result.ERROR, merge, 0, layer, Stop.ERROR, layer);
                case WHITEOUT:
                    if (nmerge > 0) {
                        return done(parentRel, name, parentMerge, probes, Result.DIR, merge, nmerge, merge[0], Stop.WHITEOUT, layer);
                    }
                    return done(parentRel, name, parentMerge, probes, Result.WHITEOUT, merge, 0, layer, Stop.WHITEOUT, layer);
                case DIR:
                    merge[nmerge++] = layer;
                    if (p.opaque() != null) {
                        return done(parentRel, name, parentMerge, probes, Result.DIR, merge, nmerge, merge[0], Stop.OPAQUE, layer);
                    }
                    continue;
                case NONDIR:
                    if (nmerge > 0) {
                        return done(parentRel, name, parentMerge, probes, Result.DIR, merge, nmerge, merge[0],
                                Stop.NONDIR_BELOW_DIR, layer);
                    }
                    return done(parentRel, name, parentMerge, probes, Result.NONDIR, merge, 0, layer, Stop.NONDIR, layer);
                default:
                    throw new AssertionError(p.kind());
            }
        }
        if (nmerge > 0) return done(parentRel, name, parentMerge, probes, Result.DIR, merge, nmerge, merge[0], Stop.NONE, -1);
        return done(parentRel, name, parentMerge, probes, Result.ABSENT, merge, 0, -1, Stop.NONE, -1);
    }

    private static Lookup done(String parentRel, String name, int[] parentMerge, List<Probe> probes, Result r,
                               int[] merge, int nmerge, int top, Stop stop, int stopLayer) {
        return new Lookup(parentRel, name, parentMerge, List.copyOf(probes), r, Arrays.copyOf(merge, nmerge), top,
                stop, stopLayer);
    }

    /** The root of the view made of {@code layers}: a directory merged from all of them. */
    public static Lookup root(Stack stack, int[] layers) {
        List<Probe> probes = new ArrayList<>();
        for (int l : layers) probes.add(Probe.root(stack, l));
        return new Lookup("", "", layers, List.copyOf(probes), Result.DIR, layers.clone(), layers.length > 0 ? layers[0] : -1,
                Stop.NONE, -1);
    }

    /** The probe of the top object (the shown non-directory, the top directory, the whiteout), or null. */
    public Probe topProbe() {
        for (Probe p : probes) if (p.layer() == top) return p;
        return null;
    }

    /** Whether {@code layer} is part of the result (the shown non-directory, or one of the merged directories). */
    public boolean uses(int layer) {
        if (result == Result.NONDIR) return layer == top;
        if (result == Result.DIR) for (int m : merge) if (m == layer) return true;
        return false;
    }

    /** Layers of the parent's merge list that the lookup did not ask, because of the stop. */
    public int[] notAsked() {
        int asked = probes.size();
        return Arrays.copyOfRange(parentMerge, asked, parentMerge.length);
    }
}
