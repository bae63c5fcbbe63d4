package dev.strata.inspect;

import dev.strata.layer.Markers;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * One directory of a view, merged the way the kernel's readdir does: the names of every layer of the
 * directory's merge list, each resolved with a {@link Lookup} (so whiteouts, opaque directories and
 * type clashes decide what is listed). Marker names ({@code .wh.*}) are never listed; a {@code .wh.NAME}
 * file makes NAME a candidate so its whiteout is seen.
 */
final class Listing {
    final String rel;
    /** The directory's lookup: where it is in each layer (a renamed directory's old path below the upper). */
    Lookup dir;
    final int[] merge;
    /** For each layer of the merge list that could be read: the names it holds (marker prefixes removed). */
    final Map<Integer, Set<String>> names = new LinkedHashMap<>();
    /** Layers whose directory could not be read, with the (positive) errno. */
    final Map<Integer, Integer> errors = new LinkedHashMap<>();
    /** Every candidate name and its lookup, in byte order. */
    final TreeMap<String, Lookup> lookups = new TreeMap<>();
    /** Layers that hold a {@code .wh..wh..opq} entry here. */
    final Set<Integer> opqFiles = new HashSet<>();

    private Listing(String rel, int[] merge) { this.rel = rel; this.merge = merge; }

    /** Reads directory {@code dir} (a DIR lookup) of the view: every candidate name of its merge list, looked up. */
    static Listing read(Stack stack, Lookup dir) {
        String rel = dir.rel;
        int[] merge = dir.merge;
        Listing l = new Listing(rel, merge);
        l.dir = dir;
        Set<String> candidates = new HashSet<>();
        for (int layer : merge) {
            List<Dirents.Dirent> ds;
            try {
                ds = Dirents.read(stack.layer(layer), dir.pathIn(layer));
            } catch (Dirents.DirError e) {
                l.errors.put(layer, e.errno);
                continue;
            }
            Set<String> here = new HashSet<>(ds.size() * 2);
            for (Dirents.Dirent d : ds) {
                String n = d.name();
                if (n.equals(Markers.OPAQUE_FILE)) { l.opqFiles.add(layer); continue; }
                if (Markers.isMarkerName(n)) n = n.substring(Markers.WH_PREFIX.length());
                if (n.isEmpty() || n.equals(".") || n.equals("..") || Markers.isMarkerName(n)) continue;
                here.add(n);
            }
            l.names.put(layer, here);
            candidates.addAll(here);
        }
        for (String n : candidates) l.lookups.put(n, Lookup.run(stack, dir, n));
        return l;
    }

    /** The visible entries (a directory or a non-directory), in byte order of their names. */
    List<Lookup> visible() {
        List<Lookup> out = new ArrayList<>();
        for (Lookup lk : lookups.values()) {
            if (lk.result == Lookup.Result.DIR || lk.result == Lookup.Result.NONDIR) out.add(lk);
        }
        return out;
    }

    Set<String> namesIn(int layer) { return names.getOrDefault(layer, Collections.emptySet()); }

    /** What {@code layer} holds under {@code name}: the lookup's probe when it asked that layer, else a new one. */
    Probe probe(Stack stack, int layer, String name) {
        Lookup lk = lookups.get(name);
        if (lk != null) for (Probe p : lk.probes) if (p.layer() == layer) return p;
        return Probe.of(stack, layer, dir == null ? rel : dir.pathIn(layer), name);
    }

}
