package dev.strata.union;

import dev.strata.layer.Layer;
import dev.strata.layer.Markers;
import dev.strata.posix.Stat;

import java.util.Arrays;

import static dev.strata.posix.Errno.*;
import static dev.strata.posix.Posix.*;

/**
 * The overlay lookup rules (the kernel's ovl_lookup in fs/overlayfs/namei.c) as one function over
 * opened layers: a name in a directory is looked up in each layer of the directory's merge list, top
 * first. The mount's lookup ({@link Namei}) and {@code strata explain}/{@code diff}/{@code layers}
 * (dev.strata.inspect) both call it, so what explain says is what the mount does; explain passes an
 * {@link Observer} to hear each layer's say.
 * <ul>
 * <li>absent (ENOENT, or ENOTDIR where the layer has a non-directory on the way): the next layer is asked;</li>
 * <li>a whiteout (a 0/0 character device; a {@code .wh.NAME} file beside an absent name; an empty regular
 *     file with the overlay.whiteout xattr, in any layer: the kernel's lookup honours it whether or not
 *     the directory is marked overlay.opaque=x, which only tells readdir to look for such entries): the
 *     name is hidden in every layer below, the lookup stops;</li>
 * <li>a directory joins the merge; an opaque one (overlay.opaque=y or {@code .wh..wh..opq}) ends it;
 *     the last layer's markers are not read, as they hide nothing;</li>
 * <li>a non-directory found first is the result and hides everything below; one below a directory is
 *     ignored and ends the merge.</li>
 * </ul>
 */
public final class LayerLookup {
    private LayerLookup() { }

    /** What one layer holds under the name, as the lookup judged it. */
    public enum Say { ABSENT, WHITEOUT, DIR, NONDIR, ERROR }

    /** Hears each layer the lookup asked, in order. */
    public interface Observer {
        /**
         * @param layer the layer's index in the stack
         * @param say   what it holds under the name
         * @param ends  for a {@link Say#DIR}: it is opaque and ends the merge
         * @param errno for {@link Say#ERROR}: the (negative) errno
         */
        void said(int layer, Say say, boolean ends, int errno);
    }

    /** The outcome of one lookup step. */
    public static final class Result {
        /** The layers that show the entry, top first (a directory: every merged layer); empty if none. */
        public final int[] layers;
        /** S_IFMT bits of the top entry, 0 if none. */
        public final int type;
        /** No entry, because a whiteout hides the name (a directory made here must be opaque). */
        public final boolean whiteout;
        /** For a directory: bit per layer index (< 64) whose directory is marked overlay.opaque=x. */
        public final long xwhMask;
        /** A negative errno if a layer could not be read (then nothing else counts), else 0. */
        public final int errno;

        Result(int[] layers, int type, boolean whiteout, long xwhMask, int errno) {
            this.layers = layers; this.type = type; this.whiteout = whiteout; this.xwhMask = xwhMask; this.errno = errno;
        }
    }

    private static final int[] NONE = new int[0];

    /** An empty regular file carrying the overlay.whiteout xattr (trusted. or user.): a whiteout wherever it is. */
    public static boolean isXattrWhiteout(Layer l, String rel, Stat st) {
        return st.type() == S_IFREG && st.size() == 0 && Markers.entryWhiteout(l, rel, st) != null;
    }

    /** The overlay.opaque=x marks of a directory in each of its layers but the last (which hides nothing). */
    public static long xwhMask(Layer[] stack, String rel, int[] layers) {
        long m = 0;
        for (int k = 0; k < layers.length - 1; k++) {
            int li = layers[k];
            if (li < 64 && Markers.opaqueXattr(stack[li], rel) == 'x') m |= 1L << li;
        }
        return m;
    }

    /**
     * Looks up {@code name} in directory {@code dirRel}, whose merge list is {@code dirLayers}. Marker
     * names ({@code .wh.*}) are the caller's to refuse.
     *
     * @param obs null, or told what each asked layer holds
     */
    public static Result lookup(Layer[] stack, int[] dirLayers, String dirRel, String name, Observer obs) {
        String rel = Layer.child(dirRel, name);
        Stat st = Stat.local();
        int[] found = null;
        int n = 0, type = 0;
        long xwh = 0;
        boolean whiteout = false;
        for (int k = 0; k < dirLayers.length; k++) {
            int li = dirLayers[k];
            Layer l = stack[li];
            int r = l.lstat(rel, st);
            if (r == 0) {
                if ((st.type() == S_IFCHR && st.rdev() == 0) || isXattrWhiteout(l, rel, st)) {
                    whiteout = true;
                    if (obs != null) obs.said(li, Say.WHITEOUT, false, 0);
                    break;
                }
                int t = st.type();
                if (t != S_IFDIR) {
                    // found first: the result, hiding everything below; below a directory: ignored, ends the merge
                    if (n == 0) {
                        type = t;
                        found = new int[]{li};
                        n = 1;
                    }
                    if (obs != null) obs.said(li, Say.NONDIR, false, 0);
                    break;
                }
                if (n == 0) {
                    type = t;
                    found = new int[dirLayers.length - k];
                }
                found[n++] = li;
                boolean ends = false;
                if (k < dirLayers.length - 1) {
                    // opaque ('y') stops the merge; 'x' marks xattr whiteouts inside. The last layer
                    // hides nothing, so its markers are not read (the kernel does not honour them either).
                    byte ov = Markers.opaqueXattr(l, rel);
                    if (ov == 'x' && li < 64) xwh |= 1L << li;
                    ends = ov == 'y' || l.exists(Layer.child(rel, Markers.OPAQUE_FILE));
                }
                if (obs != null) obs.said(li, Say.DIR, ends, 0);
                if (ends) break;
            } else if (r == -ENOENT || r == -ENOTDIR) {
                if (Markers.hasWhFile(l, dirRel, name)) {
                    whiteout = n == 0;
                    if (obs != null) obs.said(li, Say.WHITEOUT, false, 0);
                    break;
                }
                if (obs != null) obs.said(li, Say.ABSENT, false, 0);
            } else {
                if (obs != null) obs.said(li, Say.ERROR, false, r);
                return new Result(NONE, 0, false, 0, r);
            }
        }
        if (n == 0) return new Result(NONE, 0, whiteout, 0, 0);
        int[] layers = n == found.length ? found : Arrays.copyOf(found, n);
        return new Result(layers, type, false, type == S_IFDIR ? xwh : 0, 0);
    }
}
