package dev.strata.inspect;

import dev.strata.layer.Layer;
import dev.strata.posix.Posix;
import dev.strata.union.LayerLookup;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One step of a path lookup through the stack, made by the engine's own lookup ({@link LayerLookup}, the
 * kernel's rules of fs/overlayfs/namei.c, ovl_lookup), with each asked layer's say recorded: the name is
 * looked up in each layer of the parent's merge list, top first.
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
    /** Where the entry is in each layer where not at {@link #rel}, by layer index (redirects followed), or null. */
    public String[] paths;
    /** The overlay.redirect marks followed on the way, in order. */
    public final List<Redirect> redirects = new ArrayList<>();
    /**
     * For a regular file that is a metadata-only copy (overlay.metacopy): the layer whose file holds
     * its data, which reads go to; -1 otherwise.
     */
    public int dataLayer = -1;

    /** A directory in {@code layer} carries overlay.redirect {@code value}: the layers below were asked for {@code next}. */
    public record Redirect(int layer, String value, String next) {}

    /** The path each asked layer was asked for, by layer index (null where not asked). */
    public String[] asked;

    /** Where the entry is in {@code layer} (its old path there below a renamed directory). */
    public String pathIn(int layer) {
        String[] p = paths;
        return p == null || layer >= p.length || p[layer] == null ? rel : p[layer];
    }

    private Lookup(String parentRel, String name, int[] parentMerge, List<Probe> probes, Result result, int[] merge,
                   int top, Stop stop, int stopLayer) {
        this.parentRel = parentRel; this.name = name; this.rel = Layer.child(parentRel, name);
        this.parentMerge = parentMerge; this.probes = List.copyOf(probes); this.result = result; this.merge = merge;
        this.top = top; this.stop = stop; this.stopLayer = stopLayer;
    }

    private static final int[] NONE = new int[0];

    /**
     * Looks up {@code name} in directory {@code dir} (a DIR lookup) with the engine's own lookup
     * ({@link LayerLookup}, which the mount uses), recording each asked layer's say.
     */
    public static Lookup run(Stack stack, Lookup dir, String name) {
        String parentRel = dir.rel;
        int[] parentMerge = dir.merge;
        List<Probe> probes = new ArrayList<>(parentMerge.length);
        boolean[] opaqueEnd = {false};
        String[] asked = {null};
        String[] askedAt = new String[stack.size()];
        List<Redirect> redirects = new ArrayList<>();
        // as a mount with metacopy=on reads the layers (without it the kernel refuses metadata-only copies)
        LayerLookup.Result r = LayerLookup.lookup(stack.layerArray(), parentMerge, dir.paths, parentRel, name,
                LayerLookup.FOLLOW | LayerLookup.METACOPY,
                new LayerLookup.Observer() {
                    @Override public void asked(int layer, String path) { asked[0] = path; askedAt[layer] = path; }
                    @Override public void said(int layer, LayerLookup.Say say, boolean ends, int errno) {
                        String at = asked[0] == null ? Layer.child(parentRel, name) : asked[0];
                        probes.add(Probe.judged(stack, layer, Layer.parentOf(at), at.substring(at.lastIndexOf('/') + 1), say, errno));
                        opaqueEnd[0] = ends;
                    }
                    @Override public void redirected(int layer, String value, String next) { redirects.add(new Redirect(layer, value, next)); }
                });
        Lookup lk = decide(stack, parentRel, name, parentMerge, probes, r, opaqueEnd[0]);
        lk.paths = r.paths;
        lk.asked = askedAt;
        lk.redirects.addAll(redirects);
        if (r.errno == 0 && r.type == Posix.S_IFREG && r.layers.length > 1) lk.dataLayer = r.layers[r.layers.length - 1];
        return lk;
    }

    private static Lookup decide(Stack stack, String parentRel, String name, int[] parentMerge, List<Probe> probes,
                                 LayerLookup.Result r, boolean opaqueEnd0) {
        boolean[] opaqueEnd = {opaqueEnd0};
        int last = probes.isEmpty() ? -1 : probes.get(probes.size() - 1).layer();
        if (r.errno < 0) return new Lookup(parentRel, name, parentMerge, probes, Result.ERROR, NONE, last, Stop.ERROR, last);
        if (r.layers.length == 0) {
            if (r.whiteout) return new Lookup(parentRel, name, parentMerge, probes, Result.WHITEOUT, NONE, last, Stop.WHITEOUT, last);
            return new Lookup(parentRel, name, parentMerge, probes, Result.ABSENT, NONE, -1, Stop.NONE, -1);
        }
        if (r.type != Posix.S_IFDIR) {
            return new Lookup(parentRel, name, parentMerge, probes, Result.NONDIR, NONE, r.layers[0], Stop.NONDIR, r.layers[0]);
        }
        Stop stop;
        switch (probes.get(probes.size() - 1).kind()) {
            case WHITEOUT: stop = Stop.WHITEOUT; break;
            case NONDIR: stop = Stop.NONDIR_BELOW_DIR; break;
            case DIR: stop = opaqueEnd[0] ? Stop.OPAQUE : Stop.NONE; break;
            default: stop = Stop.NONE;
        }
        return new Lookup(parentRel, name, parentMerge, probes, Result.DIR, r.layers, r.layers[0], stop,
                stop == Stop.NONE ? -1 : last);
    }

    /**
     * The root of the view made of {@code layers}: a directory merged from all of them (an opaque mark
     * on a layer's root hides nothing, as in the engine and on the kernel overlay).
     */
    public static Lookup root(Stack stack, int[] layers) {
        List<Probe> probes = new ArrayList<>();
        for (int l : layers) probes.add(Probe.root(stack, l));
        return new Lookup("", "", layers, probes, Result.DIR, layers.clone(),
                layers.length > 0 ? layers[0] : -1, Stop.NONE, -1);
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
        if (probes.isEmpty()) return parentMerge.clone();
        int last = probes.get(probes.size() - 1).layer();
        return Arrays.stream(parentMerge).filter(l -> l > last).toArray();
    }
}
