package dev.strata.inspect;

import dev.strata.layer.Layer;
import dev.strata.layer.Markers;
import dev.strata.posix.Names;
import dev.strata.posix.Posix;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * {@code strata diff}: what the upper layer changes, like {@code docker diff}. Two views are compared:
 * the lowers alone, and the whole stack (upper on top). Only directories the upper takes part in are
 * walked; everywhere else the two views are the same.
 * <ul>
 * <li><b>A</b> path: in the merged view, not in the lowers' view (every path under an added directory
 *     is listed too).</li>
 * <li><b>D</b> path: in the lowers' view, not in the merged view, while its parent directory is in
 *     both (what lies under a deleted directory is not listed). Whiteouts give these; an opaque
 *     directory gives one for every name below it that it hides and does not hold itself.</li>
 * <li><b>C</b> path: in both views and held by the upper. A non-directory held by the upper always
 *     counts (a copy-up happened, as docker reports it); so does a change of type. A directory held by
 *     both counts when its mode, owner, mtime or extended attributes (overlay-private ones left out)
 *     differ from the lowers' directory, or when an entry directly in it was added or deleted. A
 *     directory that only leads to deeper changes is not listed.</li>
 * <li><b>R</b> path: a directory renamed with {@code redirect_dir} (its upper directory carries
 *     {@code overlay.redirect}): {@code from} is where the lowers have it. Inside, it is compared with
 *     that directory of the lowers (only what changed in it is listed), and no D is given for the old
 *     path.</li>
 * </ul>
 * Output is sorted component by component (a directory comes right before what is inside it).
 */
public final class Differ {

    public enum Kind { A, C, D, R }

    /**
     * One change. {@code type} is the type of the path in the merged view (for D: in the lowers');
     * {@code from}, for R only, the path the lowers have the renamed directory at.
     */
    public record Change(Kind kind, String rel, String type, String oldType, List<String> why, String from) {
        Change(Kind kind, String rel, String type, String oldType, List<String> why) {
            this(kind, rel, type, oldType, why, null);
        }
        public String path() { return "/" + rel; }
    }

    private final Stack stack;
    private final List<Change> out = new ArrayList<>();
    /** The old paths (in the lowers) of the directories reported as R. */
    private final java.util.Set<String> movedFrom = new java.util.HashSet<>();
    /** Of each D: its path in the lowers' view (differs from its path in the merged view below an R). */
    private final Map<String, String> deletedAt = new java.util.HashMap<>();

    private Differ(Stack stack) { this.stack = stack; }

    /** The changes of the upper layer against the lowers. */
    public static List<Change> diff(Stack stack) {
        if (!stack.hasUpper()) throw new InspectException("diff needs an upper layer (--upperdir)");
        Differ d = new Differ(stack);
        d.dir(Lookup.root(stack, stack.all()), Lookup.root(stack, stack.lowers()));
        d.out.removeIf(c -> c.kind() == Kind.D && d.movedFrom.contains(d.deletedAt.get(c.rel())));
        d.out.sort(Comparator.comparing(Change::rel, Differ::compareRel));
        return Collections.unmodifiableList(d.out);
    }

    /**
     * Compares a directory of the merged view (m, whose merge list holds the upper) with the same
     * directory of the lowers' view (l, or null when the lowers have no directory there). Returns whether
     * an entry directly inside was added or deleted.
     */
    private boolean dir(Lookup m, Lookup l) {
        String rel = m.rel;
        Listing ml = read(m);
        Map<String, Lookup> mv = visible(ml);
        Map<String, Lookup> lv = l == null ? Collections.emptyMap() : visible(read(l));
        TreeSet<String> names = new TreeSet<>(mv.keySet());
        names.addAll(lv.keySet());
        boolean entriesChanged = false;
        for (String name : names) {
            Lookup a = mv.get(name), b = lv.get(name);
            String child = Layer.child(rel, name);
            Lookup old = a == null ? null : renamedFrom(a);
            if (old != null) {
                out.add(new Change(Kind.R, child, "dir", null, List.of(), "/" + old.rel));
                movedFrom.add(old.rel);
                entriesChanged = true;
                dir(a, old);
            } else if (b == null) {
                out.add(new Change(Kind.A, child, type(a), null, List.of()));
                entriesChanged = true;
                if (a.result == Lookup.Result.DIR) dir(a, null);
            } else if (a == null) {
                out.add(new Change(Kind.D, child, type(b), null, List.of()));
                deletedAt.put(child, b.rel);
                entriesChanged = true;
            } else if (a.top == 0) {
                boolean aDir = a.result == Lookup.Result.DIR, bDir = b.result == Lookup.Result.DIR;
                if (aDir && bDir) {
                    List<String> why = metaChanges(a, b);
                    if (dir(a, b)) why.add("entries");
                    if (!why.isEmpty()) out.add(new Change(Kind.C, child, "dir", null, List.copyOf(why)));
                } else if (aDir || bDir || !type(a).equals(type(b))) {
                    out.add(new Change(Kind.C, child, type(a), type(b), List.of("type")));
                    if (aDir) dir(a, null);
                } else {
                    out.add(new Change(Kind.C, child, type(a), null, List.of("upper")));
                }
            }
        }
        return entriesChanged;
    }

    /**
     * For an upper directory that followed its own overlay.redirect (a rename with redirect_dir): the
     * lowers' view of the directory it was renamed from, or null (not renamed, or the lowers have no
     * directory there any more).
     */
    private Lookup renamedFrom(Lookup a) {
        if (a.result != Lookup.Result.DIR || a.top != 0 || a.merge.length < 2) return null;
        if (a.redirects.isEmpty() || a.redirects.get(0).layer() != 0) return null;
        String from = a.pathIn(a.merge[1]);
        Lookup cur = Lookup.root(stack, stack.lowers());
        for (String name : from.split("/")) {
            cur = Lookup.run(stack, cur, name);
            if (cur.result != Lookup.Result.DIR) return null;
        }
        return cur;
    }

    private Listing read(Lookup dir) {
        String rel = dir.rel;
        Listing l = Listing.read(stack, dir);
        if (!l.errors.isEmpty()) {
            Map.Entry<Integer, Integer> e = l.errors.entrySet().iterator().next();
            throw new InspectException("cannot read " + Names.display(stack.path(e.getKey()) + "/" + rel) + ": "
                    + Posix.strerror(e.getValue()));
        }
        for (Lookup lk : l.lookups.values()) {
            if (lk.result == Lookup.Result.ERROR) {
                throw new InspectException("cannot look up " + Names.display(stack.path(lk.stopLayer) + "/" + lk.rel)
                        + ": " + Posix.strerror(lk.probes.get(lk.probes.size() - 1).errno()));
            }
        }
        return l;
    }

    private static Map<String, Lookup> visible(Listing l) {
        Map<String, Lookup> m = new TreeMap<>();
        for (Lookup lk : l.visible()) m.put(lk.name, lk);
        return m;
    }

    private static String type(Lookup lk) { return lk.topProbe().node().typeKey(); }

    /** How the upper's directory differs from the lowers' top directory: mode, owner, mtime, xattrs. */
    private List<String> metaChanges(Lookup a, Lookup b) {
        Node x = a.topProbe().node(), y = b.topProbe().node();
        List<String> why = new ArrayList<>();
        if (x.mode() != y.mode()) why.add("mode");
        if (x.uid() != y.uid() || x.gid() != y.gid()) why.add("owner");
        if (x.mtime() != y.mtime() || x.mtimeNs() != y.mtimeNs()) why.add("mtime");
        if (!xattrs(a.top, a.rel).equals(xattrs(b.top, b.rel))) why.add("xattrs");
        return why;
    }

    private Map<String, String> xattrs(int layer, String rel) {
        Map<String, String> m = new TreeMap<>();
        try (var at = stack.layer(layer).at(rel)) {
            if (!at.ok()) return m;
            String xp = at.xattrPath();
            for (String name : Posix.llistxattr(xp)) {
                if (Markers.isPrivateXattr(name)) continue;
                byte[] v = Posix.lgetxattr(xp, name);
                m.put(name, v == null ? "" : Arrays.toString(v));
            }
        }
        return m;
    }

    /** Orders paths component by component, bytes within a component. */
    static int compareRel(String a, String b) {
        int i = 0, j = 0;
        while (i < a.length() && j < b.length()) {
            char x = a.charAt(i), y = b.charAt(j);
            if (x == y) { i++; j++; continue; }
            if (x == '/') return -1;
            if (y == '/') return 1;
            return Character.compare(x, y);
        }
        return Integer.compare(a.length() - i, b.length() - j);
    }
}
