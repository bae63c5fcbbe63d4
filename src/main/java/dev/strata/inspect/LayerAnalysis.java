package dev.strata.inspect;

import dev.strata.layer.Layer;
import dev.strata.layer.Markers;
import dev.strata.layer.Markers.OpaqueForm;
import dev.strata.layer.Markers.WhiteoutForm;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.Set;

/**
 * {@code strata layers}: per layer, what it holds (files, directories, bytes, whiteouts, opaque
 * directories) and how many of its bytes the layers above make invisible ("wasted": the file is
 * overridden by an object above, whited out, or under a directory that a layer above makes opaque),
 * like dive's efficiency figure.
 *
 * <p>Bytes are the sizes of regular files; a file with several hard links in one layer counts once,
 * and counts as visible if any of its names is visible. Every regular file of a layer is either
 * visible in the merged view or wasted, so visible + wasted = bytes for each layer. Marker entries
 * (whiteouts, {@code .wh..wh..opq}) are not counted as files. Efficiency = visible bytes / all bytes.
 */
public final class LayerAnalysis {

    /** Why a file is invisible. */
    public enum Cause {
        OVERRIDDEN("overridden by an object above"), WHITED_OUT("whited out above"), OPAQUE("under an opaque directory above");
        public final String label;
        Cause(String label) { this.label = label; }
    }

    /** The numbers of one layer. */
    public static final class Stats {
        public final int layer;
        public long files, dirs, symlinks, others, bytes;
        public final long[] whiteouts = new long[WhiteoutForm.values().length];
        public final long[] opaque = new long[OpaqueForm.values().length];
        public long visibleBytes, wastedBytes;
        public final long[] wastedBy = new long[Cause.values().length];
        /** Directories of this layer that could not be read (their content is not counted). */
        public long unreadable;

        Stats(int layer) { this.layer = layer; }

        public long whiteoutCount() { long n = 0; for (long w : whiteouts) n += w; return n; }
        public long opaqueCount() { long n = 0; for (long o : opaque) n += o; return n; }
    }

    /** One invisible file: where it is, how big, why it is hidden and by which layer. */
    public record Wasted(int layer, String rel, long size, Cause cause, int byLayer) {}

    public final List<Stats> layers;
    public final List<Wasted> largest;

    private LayerAnalysis(List<Stats> layers, List<Wasted> largest) { this.layers = layers; this.largest = largest; }

    public long totalBytes() { long n = 0; for (Stats s : layers) n += s.bytes; return n; }
    public long visibleBytes() { long n = 0; for (Stats s : layers) n += s.visibleBytes; return n; }
    public long wastedBytes() { long n = 0; for (Stats s : layers) n += s.wastedBytes; return n; }
    /** Visible bytes / all bytes, 1 when there are no bytes. */
    public double efficiency() { long t = totalBytes(); return t == 0 ? 1.0 : (double) visibleBytes() / t; }

    // ------------------------------------------------------------------ analysis

    private record FileRec(long size, Cause cause, int byLayer, String rel) {}

    /** Analyzes the stack; {@code topN} largest invisible files are kept for the report. */
    public static LayerAnalysis analyze(Stack stack, int topN) {
        Walker a = new Walker(stack);
        List<Stats> stats = new ArrayList<>();
        for (int l = 0; l < stack.size(); l++) {
            Stats s = new Stats(l);
            a.count(l, "", s);
            stats.add(s);
        }
        a.visit(Lookup.root(stack, stack.all()));
        PriorityQueue<Wasted> top = new PriorityQueue<>(Comparator.comparingLong(Wasted::size));
        for (int l = 0; l < stack.size(); l++) {
            Stats s = stats.get(l);
            for (Map.Entry<String, Long> e : a.sizes.get(l).entrySet()) {
                if (a.visible.get(l).contains(e.getKey())) { s.visibleBytes += e.getValue(); continue; }
                FileRec r = a.invisible.get(l).get(e.getKey());
                if (r == null) continue; // not reached (e.g. under an unreadable directory)
                s.wastedBytes += e.getValue();
                s.wastedBy[r.cause.ordinal()] += e.getValue();
                if (topN > 0) {
                    top.add(new Wasted(l, r.rel, e.getValue(), r.cause, r.byLayer));
                    if (top.size() > topN) top.poll();
                }
            }
        }
        List<Wasted> largest = new ArrayList<>(top);
        largest.sort(Comparator.comparingLong(Wasted::size).reversed().thenComparing(Wasted::rel));
        return new LayerAnalysis(List.copyOf(stats), List.copyOf(largest));
    }

    /** The walks over the layers and the merged view, and what they collect. */
    private static final class Walker {
        private final Stack stack;
        private final Stat st = new Stat();                                  // scratch for lstat
        private final List<Map<String, Long>> sizes = new ArrayList<>();       // per layer: inode key -> size
        private final List<Set<String>> visible = new ArrayList<>();           // per layer: visible inode keys
        private final List<Map<String, FileRec>> invisible = new ArrayList<>(); // per layer: first invisible name

        Walker(Stack stack) {
            this.stack = stack;
            for (int i = 0; i < stack.size(); i++) {
                sizes.add(new HashMap<>());
                visible.add(new HashSet<>());
                invisible.add(new HashMap<>());
            }
        }

        private static String key(Node n) { return n.dev() + ":" + n.ino(); }

        /** Counts what layer l holds under rel (a directory of that layer), recursively. */
        private void count(int l, String rel, Stats s) {
            Layer layer = stack.layer(l);
            List<Dirents.Dirent> ds;
            try {
                ds = Dirents.read(layer, rel);
            } catch (Dirents.DirError e) {
                s.unreadable++;
                return;
            }
            Set<String> present = new HashSet<>();
            for (Dirents.Dirent d : ds) present.add(d.name());
            for (Dirents.Dirent d : ds) {
                String name = d.name();
                if (name.equals(Markers.OPAQUE_FILE)) continue;
                if (Markers.isMarkerName(name)) {
                    if (!present.contains(name.substring(Markers.WH_PREFIX.length()))) s.whiteouts[WhiteoutForm.WH_FILE.ordinal()]++;
                    continue;
                }
                String child = Layer.child(rel, name);
                if (layer.lstat(child, st) < 0) continue;
                WhiteoutForm wf = Markers.entryWhiteout(layer, child, st);
                if (wf != null) { s.whiteouts[wf.ordinal()]++; continue; }
                switch (st.type()) {
                    case Posix.S_IFDIR: {
                        s.dirs++;
                        OpaqueForm of = Markers.opaque(layer, child);
                        if (of != null) s.opaque[of.ordinal()]++;
                        count(l, child, s);
                        break;
                    }
                    case Posix.S_IFREG: {
                        s.files++;
                        String k = st.dev() + ":" + st.ino();
                        if (sizes.get(l).putIfAbsent(k, st.size()) == null) s.bytes += st.size();
                        break;
                    }
                    case Posix.S_IFLNK: s.symlinks++; break;
                    default: s.others++;
                }
            }
        }

        /** Walks a directory of the merged view (a DIR lookup), sorting every layer's entries into visible and not. */
        private void visit(Lookup dir) {
            int[] m = dir.merge;
            Listing listing = Listing.read(stack, dir);
            for (Lookup lk : listing.lookups.values()) {
                if (lk.result == Lookup.Result.ERROR) continue;
                for (int l : m) {
                    if (!listing.namesIn(l).contains(lk.name)) continue;
                    Probe p = listing.probe(stack, l, lk.name);
                    if (p.kind() != Probe.Kind.DIR && p.kind() != Probe.Kind.NONDIR) continue;
                    if (lk.uses(l)) {
                        if (p.kind() == Probe.Kind.NONDIR && p.node().isReg()) visible.get(l).add(key(p.node()));
                        continue;
                    }
                    Cause cause;
                    int by;
                    switch (lk.result) {
                        case NONDIR: cause = Cause.OVERRIDDEN; by = lk.top; break;
                        case WHITEOUT: cause = Cause.WHITED_OUT; by = lk.top; break;
                        case DIR:
                            switch (lk.stop) {
                                case OPAQUE: cause = Cause.OPAQUE; by = lk.stopLayer; break;
                                case WHITEOUT: cause = Cause.WHITED_OUT; by = lk.stopLayer; break;
                                default: cause = Cause.OVERRIDDEN; by = l == lk.stopLayer ? lk.top : lk.stopLayer;
                            }
                            break;
                        default: continue;
                    }
                    if (p.kind() == Probe.Kind.NONDIR) {
                        if (p.node().isReg()) invisible.get(l).putIfAbsent(key(p.node()), new FileRec(p.node().size(), cause, by, lk.rel));
                    } else {
                        hidden(l, Layer.child(dir.pathIn(l), lk.name), cause, by);
                    }
                }
                if (lk.result == Lookup.Result.DIR) visit(lk);
            }
        }

        /** Marks every regular file under rel in layer l invisible (the directory is hidden by a layer above). */
        private void hidden(int l, String rel, Cause cause, int by) {
            Layer layer = stack.layer(l);
            List<Dirents.Dirent> ds;
            try {
                ds = Dirents.read(layer, rel);
            } catch (Dirents.DirError e) {
                return;
            }
            for (Dirents.Dirent d : ds) {
                if (Markers.isMarkerName(d.name())) continue;
                String child = Layer.child(rel, d.name());
                if (layer.lstat(child, st) < 0) continue;
                if (st.type() == Posix.S_IFDIR) hidden(l, child, cause, by);
                else if (st.type() == Posix.S_IFREG) {
                    invisible.get(l).putIfAbsent(st.dev() + ":" + st.ino(), new FileRec(st.size(), cause, by, child));
                }
            }
        }
    }
}
