package dev.strata.inspect;

import dev.strata.layer.Layer;
import dev.strata.posix.Names;
import dev.strata.posix.Posix;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The opened layers of a stack, top first: the upper (if any) at index 0, then the lowers in the
 * order of lowerdir. Layers are named "upper", "lower1" (the top lower), "lower2"...
 * A list of layer indexes, top first, describes which layers take part in a directory (a merge list).
 */
public final class Stack implements AutoCloseable {
    private final List<Layer> layers;
    private final Layer[] array;
    private final boolean hasUpper;

    private Stack(List<Layer> layers, boolean hasUpper) {
        this.layers = layers;
        this.array = layers.toArray(new Layer[0]);
        this.hasUpper = hasUpper;
    }

    /** Opens every directory of the spec; a missing or unreadable one is an {@link InspectException}. */
    public static Stack open(StackSpec spec) {
        List<Layer> opened = new ArrayList<>();
        try {
            int i = 0;
            if (spec.upperdir() != null) opened.add(openOne(spec.upperdir(), i++, true, "upper layer"));
            for (Path p : spec.lowerdirs()) opened.add(openOne(p, i++, false, "lower layer"));
        } catch (RuntimeException e) {
            for (Layer l : opened) l.close();
            throw e;
        }
        return new Stack(List.copyOf(opened), spec.upperdir() != null);
    }

    private static Layer openOne(Path p, int index, boolean upper, String what) {
        int[] err = new int[1];
        Layer l = Layer.open(p, index, upper, err);
        if (l == null) {
            throw new InspectException(what + " " + Names.display(p.toString()) + ": " + Posix.strerror(err[0]));
        }
        return l;
    }

    public int size() { return layers.size(); }
    public Layer layer(int i) { return layers.get(i); }
    /** The layers as the engine's lookup takes them (index = layer index); not to be changed. */
    Layer[] layerArray() { return array; }
    public boolean hasUpper() { return hasUpper; }

    /** "upper", "lower1", "lower2"... */
    public String label(int i) {
        if (hasUpper) return i == 0 ? "upper" : "lower" + i;
        return "lower" + (i + 1);
    }

    /** The layer's directory as given (a byte string). */
    public String path(int i) { return layers.get(i).root().toString(); }

    /** Every layer, top first: the merge list of the root of the merged view. */
    public int[] all() {
        int[] a = new int[layers.size()];
        for (int i = 0; i < a.length; i++) a[i] = i;
        return a;
    }

    /** The lower layers only: the root of the view before the upper's changes. */
    public int[] lowers() {
        int from = hasUpper ? 1 : 0;
        int[] a = new int[layers.size() - from];
        for (int i = 0; i < a.length; i++) a[i] = from + i;
        return a;
    }

    @Override public void close() { for (Layer l : layers) l.close(); }
}
