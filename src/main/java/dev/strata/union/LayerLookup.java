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
 *     ignored and ends the merge;</li>
 * <li>a regular file with overlay.metacopy (a metadata-only copy) goes on below, through its
 *     overlay.redirect if it has one, to the regular file that holds its data (other metadata-only
 *     copies on the way are passed over): the result is {metadata layer, data layer}; no such file
 *     below is EIO, and without {@link #METACOPY} a metadata-only copy is EPERM, as on the kernel;</li>
 * <li>with data-only layers at the bottom of the stack (lowerdir=A::D), a metadata-only copy in a regular
 *     lower layer whose absolute redirect finds no data in the regular layers has it looked up in them
 *     later ({@link Result#dataRedirect}, union/Lowerdata); they are never merged nor asked by name.</li>
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

        /**
         * The directory found in {@code layer} carries overlay.redirect {@code redirect}: the layers
         * below look up {@code next} (a name in the parent, or an absolute path) instead of its name.
         */
        default void redirected(int layer, String redirect, String next) { }

        /** The path asked in {@code layer} (from its root), told before {@link #said}. */
        default void asked(int layer, String path) { }
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
        /**
         * Where the entry is in each layer, by layer index, where that is not its path (a redirect was
         * followed, or the parent is elsewhere in that layer); null if everywhere at its path.
         */
        public final String[] paths;
        /**
         * A metadata-only copy whose data is in a data-only layer (overlayfs.rst "Data-only lower
         * layers"): the absolute redirect to look up there when the data is first needed (the kernel's
         * lazy lowerdata lookup); {@link #layers} then holds the metadata layer only. Null otherwise.
         */
        public final String dataRedirect;

        Result(int[] layers, int type, boolean whiteout, long xwhMask, int errno, String[] paths) {
            this(layers, type, whiteout, xwhMask, errno, paths, null);
        }

        Result(int[] layers, int type, boolean whiteout, long xwhMask, int errno, String[] paths, String dataRedirect) {
            this.layers = layers; this.type = type; this.whiteout = whiteout; this.xwhMask = xwhMask; this.errno = errno;
            this.paths = paths;
            this.dataRedirect = dataRedirect;
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

    /** Lookup flag: redirects are followed (redirect_dir=on/follow; without it a followed one is EPERM). */
    public static final int FOLLOW = 1;
    /** Lookup flag: layer 0 of the stack is an upper layer (its own redirect is no EPERM under nofollow). */
    public static final int UPPER = 2;
    /** Lookup flag: metacopy=on (without it a metadata-only copy found is EPERM, as on the kernel). */
    public static final int METACOPY = 4;

    /**
     * Looks up {@code name} in directory {@code dirRel}, whose merge list is {@code dirLayers}, every
     * layer holding the directory at dirRel, following redirects. Marker names ({@code .wh.*}) are the
     * caller's to refuse.
     *
     * @param obs null, or told what each asked layer holds
     */
    public static Result lookup(Layer[] stack, int[] dirLayers, String dirRel, String name, Observer obs) {
        return lookup(stack, dirLayers, null, dirRel, name, FOLLOW, obs);
    }

    /**
     * As the kernel's ovl_lookup: the name is looked up in each layer of the merge list; a directory
     * (in a layer other than the bottom one) that is not opaque and carries overlay.redirect makes the
     * layers below look up the redirect instead: a relative one (a name) in the same parent directories,
     * an absolute one ("/a/b") from the root of every layer below, walking each component (a
     * whiteout, a non-directory or an opaque directory on the way ends the merge there).
     *
     * @param dirPaths where the directory is in each layer, by layer index, where not at dirRel (null: all at dirRel)
     * @param flags    {@link #FOLLOW}, {@link #UPPER}
     * @return the layers, and in {@link Result#paths} where the entry is in each layer that differs from its path
     */
    public static Result lookup(Layer[] stack, int[] dirLayers, String[] dirPaths, String dirRel, String name, int flags, Observer obs) {
        return lookup(stack, stack.length, dirLayers, dirPaths, dirRel, name, flags, obs);
    }

    /**
     * As {@link #lookup(Layer[], int[], String[], String, String, int, Observer)} over a stack whose
     * layers from {@code dataFrom} on are data-only (stack.length: none). Those are never asked here: a
     * metadata-only copy found in a regular lower layer with an absolute redirect and no data in the
     * regular layers below gets {@link Result#dataRedirect}, looked up there later; and, as on the kernel
     * (6.18 here), such a copy needs neither metacopy=on nor redirects followed, when it is in the last
     * regular layer its parent is in (one with more layers below is refused without them, EPERM).
     */
    public static Result lookup(Layer[] stack, int dataFrom, int[] dirLayers, String[] dirPaths, String dirRel, String name, int flags, Observer obs) {
        String rel = Layer.child(dirRel, name);
        boolean follow = (flags & FOLLOW) != 0;
        Stat st = Stat.local();
        Walk w = new Walk(name);
        int[] poe = dirLayers;
        boolean all = false;
        int bottom = dataFrom - 1;
        boolean dataLayers = dataFrom < stack.length;
        // the kernel reads redirects past the bottom layer's name lookup when it follows them or has
        // data-only layers (check_redirect); with data-only layers a non-directory is never "last"
        boolean checkRedirect = follow || dataLayers;
        boolean lowerMeta = false; // a metadata-only copy in a lower layer was found (the kernel's ctr)
        int refuse = -1;           // a lower metadata-only copy that may not be followed further: EPERM before the next layer
        int[] found = null;
        String[] paths = null;
        int n = 0, type = 0;
        long xwh = 0;
        boolean whiteout = false;
        boolean meta = false; // a metadata-only copy was found: its data is still to be found below
        for (int k = 0; k < poe.length; k++) {
            int li = poe[k];
            Layer l = stack[li];
            if (refuse >= 0) return refused(obs, refuse, -EPERM); // ovl_check_follow_redirect before the next layer
            // the bottom layer's markers hide nothing and are not read (with nofollow: the last one asked)
            boolean last = !checkRedirect ? k == poe.length - 1 : (n > 0 && type == S_IFDIR) || !dataLayers ? li == bottom : false;
            String base = w.abs ? "" : dirPaths == null || dirPaths[li] == null ? dirRel : dirPaths[li];
            String before = w.redirect;
            if (obs != null) obs.asked(li, w.abs ? w.want.substring(1) : Layer.child(base, w.want));
            Say say = w.probe(l, base, last, st, upper(li, flags), meta);
            if (say == Say.ERROR) {
                if (obs != null) obs.said(li, Say.ERROR, false, w.errno);
                return new Result(NONE, 0, false, 0, w.errno, null);
            }
            if (say == Say.WHITEOUT) {
                whiteout = n == 0 && !meta;
                if (obs != null) obs.said(li, Say.WHITEOUT, false, 0);
                break;
            }
            if (say == Say.ABSENT) {
                if (obs != null) obs.said(li, Say.ABSENT, false, 0);
                if (w.stop) break;
                continue;
            }
            if (say == Say.NONDIR) {
                if (meta) {
                    // below a metadata-only copy: a regular file holds the data (ovl_lookup's lower loop)
                    if (w.type != S_IFREG) {
                        if (obs != null) obs.said(li, Say.NONDIR, true, 0);
                        break;
                    }
                    if ((flags & METACOPY) == 0) return refused(obs, li, -EPERM); // "refusing to follow metacopy origin"
                    if (w.metacopy) {
                        // an intermediate metadata-only copy: not kept, its redirect followed
                        lowerMeta = true;
                        if (obs != null) obs.said(li, Say.NONDIR, false, 0);
                        if (obs != null && w.redirect != before) obs.redirected(li, w.redirect, w.want);
                        if (w.abs && !all) { all = true; poe = below(li, bottom); k = -1; }
                        continue;
                    }
                    found[n++] = li;
                    meta = false;
                    if (!w.path.equals(rel)) {
                        if (paths == null) paths = new String[stack.length];
                        paths[li] = w.path;
                    }
                    if (obs != null) obs.said(li, Say.NONDIR, false, 0);
                    break;
                }
                // found first: the result, hiding everything below; below a directory: ignored, ends the merge
                if (n == 0) {
                    type = w.type;
                    found = w.metacopy ? new int[]{li, 0} : new int[]{li};
                    n = 1;
                    if (!w.path.equals(rel)) (paths = new String[stack.length])[li] = w.path;
                    if (w.metacopy) {
                        // metadata only (overlay.metacopy): the data is looked up below, through its redirect
                        boolean up = upper(li, flags);
                        boolean noMeta = !up && (flags & METACOPY) == 0;
                        boolean noFollow = !up && !follow && w.redirect != null;
                        if (noMeta && !dataLayers) return refused(obs, li, -EPERM);
                        meta = true;
                        lowerMeta |= !up;
                        if (obs != null) obs.said(li, Say.NONDIR, false, 0);
                        if (obs != null && w.redirect != before) obs.redirected(li, w.redirect, w.want);
                        if (noFollow && !dataLayers) return refused(obs, li, -EPERM);
                        // with data-only layers: refused only if a layer below is asked, or its data is not in one
                        if (noMeta || noFollow) refuse = li;
                        if (last) break;
                        if (w.abs && !all) { all = true; poe = below(li, bottom); k = -1; }
                        continue;
                    }
                }
                if (obs != null) obs.said(li, Say.NONDIR, false, 0);
                break;
            }
            if (meta) {
                // a directory below a metadata-only copy ends the lookup (ovl_lookup_single)
                if (obs != null) obs.said(li, Say.DIR, true, 0);
                break;
            }
            // a directory: joins the merge
            boolean upper = li == 0 && (flags & UPPER) != 0;
            if (!follow && w.redirect != null && (before != null || !upper)) {
                // following a redirect can show what the layer below hides: refused unless asked for
                if (obs != null) obs.said(li, Say.ERROR, false, -EPERM);
                return new Result(NONE, 0, false, 0, -EPERM, null);
            }
            if (n == 0) {
                type = S_IFDIR;
                found = new int[stack.length];
            }
            found[n++] = li;
            if (!w.path.equals(rel)) {
                if (paths == null) paths = new String[stack.length];
                paths[li] = w.path;
            }
            if (w.xwh && li < 64) xwh |= 1L << li;
            if (obs != null) obs.said(li, Say.DIR, w.stop, 0);
            if (w.redirect != before && obs != null) obs.redirected(li, w.redirect, w.want);
            if (w.stop) break;
            if (w.abs && !all) {
                // an absolute redirect: every layer below this one, from its root
                all = true;
                poe = below(li, bottom);
                k = -1;
            }
        }
        if (meta && lowerMeta && dataLayers && w.lastAbs) {
            // the data is in a data-only layer: looked up there when first needed (ovl_lookup's
            // "Defer lookup of lowerdata in data-only layers to first access")
            if (paths == null) paths = new String[stack.length];
            return new Result(Arrays.copyOf(found, n), type, false, 0, 0, paths, w.want);
        }
        if (refuse >= 0) return refused(obs, refuse, -EPERM);
        if (meta) {
            // "metacopy with no lower data found - abort lookup"
            if (obs != null) obs.said(found[0], Say.ERROR, false, -EIO);
            return new Result(NONE, 0, false, 0, -EIO, null);
        }
        if (n == 0) return new Result(NONE, 0, whiteout, 0, 0, null);
        int[] layers = n == found.length ? found : Arrays.copyOf(found, n);
        return new Result(layers, type, false, type == S_IFDIR ? xwh : 0, 0, paths);
    }

    /**
     * Whether a lower regular file may carry overlay.metacopy: a metadata-only copy has no data
     * blocks, at most one block for its xattrs (ext4 puts them there when the inode has no room), so
     * a file with more blocks than that and at least as many as its size needs is not one. Saves
     * the two xattr reads of the mark for lower files of more than one block; an upper file's mark
     * is always read. Nor is it read in the last layer (the bottom one), where a metadata-only copy
     * would have no data below it (the kernel's lookup fails there with EIO): a lookup in a mount of
     * one lower layer, or of a bottom-layer file, costs what it did without metacopy.
     */
    public static boolean mayBeMetacopy(boolean upper, boolean last, Stat st) {
        return upper || (!last && (st.blocks() <= 8 || st.blocks() * 512 < st.size()));
    }

    /** The layers below li, top first: where an absolute redirect is looked up. */
    private static int[] below(int li, int bottom) {
        int[] poe = new int[bottom - li];
        for (int i = 0; i < poe.length; i++) poe[i] = li + 1 + i;
        return poe;
    }

    private static boolean upper(int li, int flags) { return li == 0 && (flags & UPPER) != 0; }

    private static Result refused(Observer obs, int li, int errno) {
        if (obs != null) obs.said(li, Say.ERROR, false, errno);
        return new Result(NONE, 0, false, 0, errno, null);
    }

    /** The state of one lookup across layers (the kernel's ovl_lookup_data). */
    private static final class Walk {
        /** What the next layer looks up: a name in the parent directory, or an absolute path from the layer root. */
        String want;
        boolean abs;
        /** The merge ends with this layer (an opaque directory, a whiteout or non-directory on the way). */
        boolean stop;
        /** The last redirect read, or null. */
        String redirect;
        /** The redirect of the last metadata-only copy probed was absolute (the kernel's absolute_redirect). */
        boolean lastAbs;
        // the last probe's findings
        String path;
        int type, errno;
        boolean xwh;
        /** The regular file found carries overlay.metacopy. */
        boolean metacopy;

        Walk(String name) { want = name; }

        /** Follows a redirect read on the component walked[i..j) (j < 0: the last one). */
        void redirectTo(String red, String walked, int i, int j, boolean end) {
            String post = end ? "" : walked.substring(j);
            if (red.charAt(0) == '/') {
                want = red + post;
                abs = true;
                stop = false; // an absolute redirect below an opaque ancestor goes on
            } else {
                // the name of this component replaced (the prefix may itself have been rewritten)
                int prelen = want.length() - (walked.length() - i);
                want = want.substring(0, prelen) + red + post;
            }
            redirect = red;
        }




        /** Looks {@link #want} up in one layer, component by component when it is absolute. */
        Say probe(Layer l, String base, boolean last, Stat st, boolean upper, boolean meta) {
            String walked = want;
            xwh = false;
            metacopy = false;
            String cur = base;
            int i = abs ? 1 : 0;
            while (true) {
                int j = abs ? walked.indexOf('/', i) : -1;
                boolean end = j < 0;
                String comp = end ? walked.substring(i) : walked.substring(i, j);
                if (comp.equals(".") || comp.equals("..")) { errno = -EACCES; return Say.ERROR; } // lookup_one_len
                String p = Layer.child(cur, comp);
                int r = l.lstat(p, st);
                if (r == -ENOENT || r == -ENOTDIR) {
                    if (Markers.hasWhFile(l, cur, comp)) {
                        stop = true;
                        return end ? Say.WHITEOUT : Say.ABSENT;
                    }
                    return Say.ABSENT;
                }
                if (r < 0) { errno = r; return Say.ERROR; }
                if ((st.type() == S_IFCHR && st.rdev() == 0) || (end && isXattrWhiteout(l, p, st))) {
                    stop = true;
                    return end ? Say.WHITEOUT : Say.ABSENT;
                }
                if (st.type() != S_IFDIR) {
                    if (!end) { stop = true; return Say.ABSENT; }
                    path = p;
                    type = st.type();
                    if (type == S_IFREG) {
                        // ovl_check_metacopy_xattr (in a lower layer only for a file that may be one, see
                        // mayBeMetacopy; always below a metadata-only copy, where one more is EIO)
                        int mc = meta || mayBeMetacopy(upper, last, st) ? Markers.metacopy(l, p) : 0;
                        if (mc < 0) { errno = mc; return Say.ERROR; }
                        metacopy = mc > 0;
                        if (metacopy && !last) {
                            lastAbs = false;
                            String red = Markers.redirect(l, p);
                            if (red != null) {
                                if (!Markers.validRedirect(red)) { errno = -EINVAL; return Say.ERROR; }
                                redirectTo(red, walked, i, j, end);
                                lastAbs = red.charAt(0) == '/';
                            }
                        }
                    }
                    return Say.NONDIR;
                }
                if (!last) {
                    // opaque ('y') stops the merge; 'x' marks xattr whiteouts inside
                    byte ov = Markers.opaqueXattr(l, p);
                    if (end && ov == 'x') xwh = true;
                    if (ov == 'y' || l.exists(Layer.child(p, Markers.OPAQUE_FILE))) {
                        stop = true;
                    } else {
                        String red = Markers.redirect(l, p);
                        if (red != null) {
                            if (!Markers.validRedirect(red)) { errno = -EINVAL; return Say.ERROR; }
                            redirectTo(red, walked, i, j, end);
                        }
                    }
                }
                if (end) {
                    path = p;
                    type = S_IFDIR;
                    return Say.DIR;
                }
                cur = p;
                i = j + 1;
            }
        }
    }
}
