package dev.strata.union;

import dev.strata.layer.Layer;
import dev.strata.layer.Markers;
import dev.strata.posix.Stat;

import static dev.strata.posix.Errno.*;
import static dev.strata.posix.Posix.*;

/**
 * Lookup (the kernel's namei.c): a name in a directory node through the upper and each lower layer,
 * honouring whiteouts and opaque directories, and the node cache.
 */
final class Namei {
    private final Overlay ovl;

    Namei(Overlay ovl) { this(ovl, NodeCache.configuredBound()); }

    /** The bound on the node tree: what nothing holds is dropped by a policy (see {@link NodeCache}). */
    final NodeCache nodes;

    Namei(Overlay ovl, int bound) {
        this.ovl = ovl;
        this.nodes = new NodeCache(ovl, bound);
    }

    long xwhMask(String rel, int[] layers) {
        return LayerLookup.xwhMask(ovl.lookupStack, rel, layers);
    }

    /** Thrown-free result for lookups that fail with something other than "absent". */
    static final class LookupError extends Node {
        final int errno;
        LookupError(int errno) { super(null, "", Node.NONE, 0, false, 0); this.errno = errno; }
    }

    /** Looks up a child of a directory node, through the cache. Returns a negative node if absent. */
    Node child(Node dir, String name) {
        Children ch = dir.children();
        Node c = ch.get(name);
        if (c != null) return c.listed ? confirmListed(dir, ch, name, c) : c;
        if (name.length() > Overlay.NAME_MAX) return new LookupError(-ENAMETOOLONG);
        c = lookup(dir, name);
        if (c instanceof LookupError) return c;
        return cache(ch, name, c);
    }

    /**
     * A regular file entered by readdir ({@link Readdir#remember}) is confirmed on its first lookup with
     * one lstat (and the metacopy mark where the lookup would read it: a metadata-only copy takes the
     * full lookup, which finds its data below): an empty one may be an xattr whiteout, which the directory's listing shows (as the
     * kernel overlay's does outside overlay.opaque=x directories) but a lookup must not find.
     */
    private Node confirmListed(Node dir, Children ch, String name, Node c) {
        Layer l = ovl.stack[c.top()];
        Stat st = Stat.local();
        String at = c.relIn(c.top());
        if (l.lstat(at, st) == 0 && st.type() == c.type && !LayerLookup.isXattrWhiteout(l, at, st)
                && !(c.type == S_IFREG && LayerLookup.mayBeMetacopy(l.index() == 0 && ovl.hasUpper, ovl.lastForFiles(l.index()), st) && Markers.metacopy(l, at) != 0)) {
            c.listed = false;
            return c;
        }
        Node real = lookup(dir, name);
        if (real instanceof LookupError) return real;
        if (!ch.replace(name, c, real)) return child(dir, name);
        nodes.entered(real);
        return real;
    }

    /**
     * Enters a node in a children map (the first one in wins, so concurrent lookups agree) and in the
     * bound of {@link NodeCache}, which drops what nothing holds once the tree is past its bound.
     */
    Node cache(Children ch, String name, Node c) {
        Node prev = ch.putIfAbsent(c);
        if (prev != null) return prev;
        nodes.entered(c);
        return c;
    }

    /**
     * The node of the regular file {@code name} that {@link Create} has just made in the upper copy of
     * {@code dir} (O_CREAT|O_EXCL, under the exclusive lock, where the merged view had no such name):
     * what a lookup would find there, an upper-only non-directory (a file made here is neither a
     * whiteout nor a metadata-only copy, and hides whatever the lowers hold under a whiteout it
     * replaced or that hid it), built without the lstat and the four xattr reads of a lookup (untar
     * of the python stdlib: 1,405 files). With index=on the lookup decides (hard-link aliases).
     */
    Node created(Node dir, String name) {
        Children ch = dir.children();
        Node c = ch.get(name);
        if (c != null || ovl.index != null) return c != null ? c : child(dir, name);
        Node n = new Node(dir, Layer.child(dir.rel, name), Node.single(0), S_IFREG, false, 0);
        n.fresh = true;
        ovl.protect.created(n);
        return cache(ch, name, n);
    }

    /** The real lookup: upper, then each lower top-down, by the overlay rules of {@link LayerLookup}. */
    Node lookup(Node dir, String name) {
        String rel = Layer.child(dir.rel, name);
        if (Markers.isMarkerName(name)) return new Node(dir, rel, Node.NONE, 0, false, 0);
        // a removed lower object copied up while the name was known absent (RemovedLower): still absent
        if (ovl.removedLower.hidden(rel)) return new Node(dir, rel, Node.NONE, 0, true, 0);
        LayerLookup.Result r = LayerLookup.lookup(ovl.lookupStack, ovl.dataFrom, dir.layers, dir.paths, dir.rel, name, ovl.lookupFlags, null);
        if (r.errno < 0) return new LookupError(r.errno);
        Node n = new Node(dir, rel, r.layers, r.paths, r.type, r.whiteout, r.xwhMask);
        n.lowerdataRedirect = r.dataRedirect;
        // a lower name of a file with an index entry shows that entry (index=on)
        if (ovl.index != null && !n.negative() && n.type != S_IFDIR && n.top() != 0) return ovl.index.alias(n);
        return n;
    }

    /**
     * Resolves a mount path. Returns the node (possibly negative) or a {@link LookupError}; ENOENT for
     * a missing intermediate directory, ENOTDIR for a non-directory one.
     */
    Node resolve(String path) {
        return resolve(path, true);
    }

    /**
     * As {@link #resolve(String)}; with {@code confirmLast} false a regular file that readdir entered
     * ({@link Node#listed}) is returned at the end of the path without its confirming lstat: for
     * {@link Attrs#getattr(String, jnr.ffi.Pointer)}, whose own stat confirms it (and which resolves
     * again, confirming, when that stat shows an empty file).
     */
    Node resolve(String path, boolean confirmLast) {
        Node cur = ovl.rootNode;
        int len = path.length();
        int i = 0;
        while (i < len && path.charAt(i) == '/') i++;
        while (i < len) {
            int j = path.indexOf('/', i);
            if (j < 0) j = len;
            if (cur.negative()) return new LookupError(-ENOENT);
            if (!cur.isDir()) return new LookupError(-ENOTDIR);
            String name = path.substring(i, j);
            Node c = confirmLast || j < len ? null : cur.children().get(name);
            cur = c != null ? c : child(cur, name);
            if (cur instanceof LookupError) return cur;
            i = j + 1;
            while (i < len && path.charAt(i) == '/') i++;
        }
        return cur;
    }

    static int err(Node n) {
        if (n instanceof LookupError) return ((LookupError) n).errno;
        return n.negative() ? -ENOENT : 0;
    }

    Node parentOf(String path, int[] err) {
        int s = path.lastIndexOf('/');
        Node p = resolve(s <= 0 ? "/" : path.substring(0, s));
        int e = err(p);
        if (e == 0 && !p.isDir()) e = -ENOTDIR;
        err[0] = e;
        return p;
    }

    static String lastName(String path) {
        return path.substring(path.lastIndexOf('/') + 1);
    }

    /**
     * Whether a layer below the upper still shows {@code name} in {@code dir} (so removing or renaming
     * the name needs a whiteout). Whiteouts in the lowers count as "no".
     */
    boolean lowerHas(Node dir, String name) {
        Stat st = Stat.local2();
        for (int li : dir.layers) {
            if (ovl.hasUpper && li == 0) continue;
            Layer l = ovl.stack[li];
            String rel = Layer.child(dir.relIn(li), name);
            int r = l.lstat(rel, st);
            if (r == 0) {
                if (st.type() == S_IFCHR && st.rdev() == 0) return false;
                if (LayerLookup.isXattrWhiteout(l, rel, st)) return false;
                return true;
            }
            if (Markers.hasWhFile(l, dir.relIn(li), name)) return false;
        }
        return false;
    }
}
