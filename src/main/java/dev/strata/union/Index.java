package dev.strata.union;

import dev.strata.layer.At;
import dev.strata.layer.Layer;
import dev.strata.layer.Markers;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;
import jnr.ffi.Pointer;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;

import static dev.strata.posix.Errno.*;
import static dev.strata.posix.Posix.*;

/**
 * The inodes index (index=on; overlayfs.rst "Index", "Non-standard behavior" on hard links), in the
 * kernel's on-disk format: a lower file with several names is copied up once, to
 * {@code workdir/index/<hex of its origin handle>}, and each name brought up is a hard link to that
 * copy (copy_up.c indexed copy-up and ovl_link_up). Names still only in a lower layer show the index
 * entry (namei.c ovl_lookup_index), so every name of the file stays one inode: same data, attributes,
 * {@code st_ino} (the lower one) and {@code st_nlink}, which the entry's {@code overlay.nlink} records
 * relative to the upper inode's own count ("U+N", inode.c ovl_set_nlink_upper / ovl_get_nlink).
 *
 * <p>The index directory is the layer {@link #layer} of the stack (after the real layers, never looked
 * up by name): a node whose top is it reads the index entry, and its copy-up is the link into the upper.
 * Every copy-up also writes the kernel's {@code overlay.origin} handle, which the kernel reads to find
 * the index entry of an upper file and its lower inode number.
 */
final class Index {
    static final String DIR = "index";
    /** Returned by {@link #copyUp} for an object that is not copied up through the index. */
    static final int NOT_INDEXED = Integer.MIN_VALUE + 1;

    private final Overlay ovl;
    /** The index directory's position in {@link Overlay#stack}. */
    final int layer;
    final String originX, nlinkX;
    /** Nodes of lower names of multi-link files, by index name: dropped from the cache when the file gets its index entry. */
    private final ConcurrentHashMap<String, List<Node>> lowerAliases = new ConcurrentHashMap<>();

    Index(Overlay ovl, IndexMount.Setup s) {
        this.ovl = ovl;
        this.layer = s.layer.index();
        this.originX = s.ns + "overlay.origin";
        this.nlinkX = s.ns + "overlay.nlink";
    }

    /** The origin handle of the object at rel in (lower) layer li, or null. */
    byte[] handle(int li, String rel) {
        return ovl.origins.handle(li, rel);
    }

    /** The index name of node n's top object (a lower one), or null. */
    String nameOf(Node n) {
        byte[] fh = handle(n.top(), n.relIn(n.top()));
        return fh == null ? null : FileHandles.hex(fh);
    }

    // ---- lookup ----

    /**
     * A lower non-directory found by lookup: a file with several names whose index entry exists is shown
     * from that entry (ovl_lookup_index); the others are remembered so that the copy-up of another name
     * of theirs drops them from the cache. Returns the node to cache, or a lookup error.
     */
    Node alias(Node n) {
        Stat st = Stat.local2();
        int top = n.top();
        if (ovl.stack[top].lstat(n.relIn(top), st) < 0 || st.nlink() <= 1) return n;
        String name = nameOf(n);
        if (name == null) return n;
        Stat is = new Stat();
        if (ovl.stack[layer].lstat(name, is) < 0) {
            // lookups run concurrently (shared lock): one atomic update per name; nodes the cache has
            // dropped since (evicted, replaced by a newer lookup) are let go here
            lowerAliases.compute(name, (k, l) -> {
                if (l == null) l = new ArrayList<>(2);
                l.removeIf(Index::uncached);
                l.add(n);
                return l;
            });
            return n;
        }
        // an index entry of another type, or a whiteout one, where a lower name is left: "bad index found"
        if (is.type() != n.type || is.isWhiteoutDevice()) return new Namei.LookupError(-EIO);
        String[] paths = new String[ovl.stack.length];
        paths[layer] = name;
        if (n.type == S_IFREG && ovl.opts.metacopy && Markers.metacopy(ovl.stack[layer], name) != 0) {
            // a metadata-only index entry (metacopy=on): the data is still the lower file's
            if (n.lowerdataRedirect != null) {
                // in a data-only layer, not looked up yet (Lowerdata): the entry's node looks it up then
                Node a = new Node(n.parent, n.rel, Node.single(layer), paths, n.type, false, 0);
                a.lowerdataRedirect = n.lowerdataRedirect;
                return a;
            }
            int dl = n.dataLayer();
            paths[dl] = n.relIn(dl);
            return new Node(n.parent, n.rel, new int[]{layer, dl}, paths, n.type, false, 0);
        }
        return new Node(n.parent, n.rel, Node.single(layer), paths, n.type, false, 0);
    }

    /** Whether node a is no longer its parent's cached child (so nothing would look it up again). */
    private static boolean uncached(Node a) {
        Children ch = a.parent == null ? null : a.parent.childrenIfAny();
        return ch == null || ch.get(a.name()) != a;
    }

    /** After an index entry appeared: cached lower names of the same file are looked up again (they now show it). */
    private void dropLowerAliases(String name) {
        List<Node> l = lowerAliases.remove(name);
        if (l == null) return;
        for (Node a : l) {
            Node p = a.parent;
            Children ch = p == null ? null : p.childrenIfAny();
            if (ch != null && ch.remove(a)) p.listing = null;
        }
    }

    // ---- copy-up ----

    /** Whether node n is copied up through the index: a name of an index entry, or a lower file with several names. */
    boolean needsIndex(Node n) {
        if (n.negative() || n.isDir()) return false;
        int top = n.top();
        if (top == layer) return true;
        if (top == 0) return false;
        Stat st = new Stat();
        return ovl.stack[top].lstat(n.relIn(top), st) == 0 && st.nlink() > 1 && st.type() != S_IFDIR;
    }

    /**
     * Copies node n up through the index (the caller copied its parent up, under the exclusive lock):
     * the lower file into {@code index/NAME} unless it is there, then NAME linked at n's path.
     * Returns 0, -errno, or {@link #NOT_INDEXED}.
     */
    int copyUp(Node n, boolean data, boolean metaOk) {
        if (!needsIndex(n)) return NOT_INDEXED;
        long t0 = System.nanoTime();
        int top = n.top();
        String name = top == layer ? n.relIn(layer) : nameOf(n);
        if (name == null) return NOT_INDEXED;
        Layer idx = ovl.stack[layer];
        Stat st = new Stat();
        if (top != layer && idx.lstat(name, st) < 0) {
            int r = createEntry(n, name, data, metaOk);
            if (r < 0) return r;
            dropLowerAliases(name);
        }
        int r = idx.lstat(name, st);
        if (r < 0) return r;
        long ino = ovl.attrs.parseOrigin(idx.getxattr(name, ovl.originXattr));
        if (ino == 0) ino = n.ino;
        // a metadata-only entry (metacopy=on, as the kernel copies an indexed file up): data from below
        int dl = n.dataLayer();
        boolean meta = st.type() == S_IFREG && ovl.opts.metacopy && Markers.metacopy(idx, name) != 0;
        r = linkUp(n, name, st, ino, meta, t0);
        if (r < 0 || !meta) return r;
        n.layers = new int[]{0, dl};
        return metaOk ? 0 : ovl.metaCopy.dataUp(n, data);
    }

    /** The indexed copy: the lower file's copy (data, metadata, origins) named index/NAME (ovl_copy_up_workdir with the index as destination). */
    private int createEntry(Node n, String name, boolean data, boolean metaOk) {
        int top = n.top();
        Layer src = ovl.stack[top];
        Stat st = new Stat();
        int r = src.lstat(n.relIn(top), st);
        if (r < 0) return r;
        long ino = ovl.attrs.presentedIno(n, st.ino());
        long[] bytes = {0};
        String[] method = {"metadata"};
        String tmp = ovl.tmpName();
        String from = n.relIn(top);
        CopyUp c = ovl.copy;
        boolean meta = metaOk && st.type() == S_IFREG;
        r = c.createCopy(n, src, from, st, tmp, data && !meta, bytes, method);
        if (r == 0 && meta) r = ovl.metaCopy.markNamed(n, tmp, st.size());
        if (r == 0) r = c.finishCopy(src, from, st, tmp, ino);
        if (r == 0) r = c.copyOverride(n, src, st, tmp, -1);
        if (r == 0) ovl.fileattr.copyFileattr(src, from, st, tmp);
        String path = "/proc/self/fd/" + ovl.workFd + "/" + tmp;
        // the overlay nlink is the lower file's count; the index entry is the upper inode's only name
        if (r == 0) r = Posix.lsetxattr(path, nlinkX, nlinkValue(st.nlink() - 1), 0);
        if (r == 0 && c.syncMetadata(st.type())) r = c.syncNamed(tmp, st.type());
        if (r == 0) r = Posix.renameat2(ovl.workFd, tmp, ovl.stack[layer].fd(), name, RENAME_NOREPLACE);
        if (r < 0) Tree.removeAt(ovl.workFd, tmp);
        return r;
    }

    /** ovl_link_up: index/NAME linked at n's path in the upper, the parent's times kept, overlay.nlink updated. */
    private int linkUp(Node n, String name, Stat st, long ino, boolean meta, long t0) {
        Layer up = ovl.stack[0], idx = ovl.stack[layer];
        long overlay = overlayNlink(idx.getxattr(name, nlinkX), st.nlink(), st.nlink());
        if (overlay <= 0) overlay = st.nlink(); // ovl_get_nlink's fallback: the real inode's count
        ovl.attrs.markImpure(n.parent);
        String parent = Layer.parentOf(n.rel);
        Stat ps = new Stat();
        boolean keepTimes = up.lstat(parent, ps) == 0;
        int r;
        try (At a = up.at(n.rel)) {
            if (!a.ok()) return a.err();
            r = Posix.linkat(idx.fd(), name, a.dirfd(), a.name(), 0);
        }
        if (r < 0) return r;
        if (keepTimes) ovl.copy.restoreTimes(parent, ps.atime(), ps.atimeNs(), ps.mtime(), ps.mtimeNs());
        Posix.lsetxattr("/proc/self/fd/" + idx.fd() + "/" + name, nlinkX, nlinkValue(overlay - (st.nlink() + 1)), 0);
        if (n.ino == 0) n.ino = ino;
        // a metadata-only entry: descriptors opened read-only on the lower file keep reading its data
        ovl.copy.copiedUp(n, idx, st, n.ino, true, 0, t0, "index link", !meta);
        return 0;
    }

    static byte[] nlinkValue(long diff) {
        return ("U" + (diff < 0 ? "" : "+") + diff).getBytes(StandardCharsets.US_ASCII);
    }

    /**
     * ovl_get_nlink: the overlay's link count from an overlay.nlink value ("U+N", "L-N"), the upper
     * inode's count and the lower's (-1: unknown). {@code fallback} where it cannot be worked out.
     */
    static long overlayNlink(byte[] v, long upper, long lower) {
        if (v == null || v.length < 3) return 0;
        String s = new String(v, StandardCharsets.US_ASCII).trim();
        char k = s.charAt(0), sign = s.charAt(1);
        if ((k != 'U' && k != 'L') || (sign != '+' && sign != '-')) return 0;
        long d;
        try { d = Long.parseLong(s.substring(sign == '+' ? 2 : 1)); } catch (NumberFormatException e) { return 0; }
        if (k == 'L' && lower < 0) return -1;
        long n = (k == 'L' ? lower : upper) + d;
        return n <= 0 ? 0 : n;
    }

    // ---- attributes ----

    /**
     * The presented inode number of an indexed object that has no strata origin (an upper or index entry
     * the kernel wrote): the lower inode its overlay.origin handle names (decoded with open_by_handle_at,
     * which the index needs anyway: CAP_DAC_READ_SEARCH), as the kernel shows an indexed file. 0 if
     * the object is not indexed or its origin cannot be found.
     */
    long originIno(Node n) {
        return n.isDir() ? 0 : originIno(n.top(), n.relIn(n.top()));
    }

    /** {@link #originIno(Node)} of the non-directory at rel in layer top (the upper or the index). */
    long originIno(int top, String rel) {
        if (top != layer && (top != 0 || indexedName(rel) == null)) return 0;
        long[] o = ovl.origins.decode(ovl.stack[top].getxattr(rel, originX));
        return o == null ? 0 : ovl.attrs.mapIno((int) o[0], o[1]);
    }

    /** st_nlink of an indexed file as the overlay counts it (ovl_getattr with OVL_INDEX). */
    void presentNlink(Node n, Pointer st) {
        int top = n.top();
        long nl = st.getLong(Stat.OFF_NLINK);
        if (top != layer && (top != 0 || nl < 2)) return;
        if ((st.getInt(Stat.OFF_MODE) & S_IFMT) == S_IFDIR) return;
        byte[] v = ovl.stack[top].getxattr(n.relIn(top), nlinkX);
        if (v == null) return;
        // an upper file counts as indexed only while the index entry its origin names is its inode (OVL_INDEX)
        if (top == 0 && indexedName(n) == null) return;
        long o = overlayNlink(v, nl, -1);
        if (o > 0) st.putLong(Stat.OFF_NLINK, o);
    }

    /** {@link #presentNlink} for an open file whose name is gone: its inode's overlay.nlink, if it has one. */
    void presentNlinkFd(int fd, Pointer st) {
        int t = st.getInt(Stat.OFF_MODE) & S_IFMT;
        long nl = st.getLong(Stat.OFF_NLINK);
        if (t == S_IFDIR || t == 0 || nl == 0) return;
        // an O_PATH descriptor (OpenFiles#holdRemoved) by its /proc/self/fd link: fgetxattr refuses those
        byte[] v = ovl.files.pathOnly(fd) ? Posix.getxattrFd(fd, nlinkX) : Posix.fgetxattr(fd, nlinkX);
        if (v == null) return;
        long o = overlayNlink(v, nl, -1);
        if (o > 0) st.putLong(Stat.OFF_NLINK, o);
    }

    // ---- names: link, unlink, rename over (ovl_nlink_start / ovl_nlink_end) ----

    /**
     * Before a name of n is removed or replaced: a name of an indexed file is brought up first (so the
     * overlay nlink can drop with the upper one), metadata only where metacopy allows it (ovl_copy_up
     * with no open flags: the data stays below, and an index entry that is a metadata-only copy keeps its
     * mark and its times). Returns the index name of n's file (null: not indexed) in name[0], and 0 or -errno.
     */
    int nlinkStart(Node n, String[] name) {
        name[0] = null;
        if (n.negative() || n.isDir()) return 0;
        if (needsIndex(n)) {
            int r = ovl.copy.copyUpMeta(n);
            if (r < 0) return r;
        }
        name[0] = indexedName(n);
        return 0;
    }

    /** The index entry an upper non-directory is a name of, or null. */
    String indexedName(Node n) {
        if (n.negative() || n.isDir() || n.top() != 0) return null;
        return indexedName(n.rel);
    }

    /** {@link #indexedName(Node)} of the upper object at rel. */
    String indexedName(String rel) {
        byte[] o = ovl.stack[0].getxattr(rel, originX);
        if (o == null || FileHandles.check(o) < 0) return null;
        String name = FileHandles.hex(java.util.Arrays.copyOf(o, o[2] & 0xff));
        Stat a = new Stat(), b = new Stat();
        if (ovl.stack[0].lstat(rel, a) < 0 || ovl.stack[layer].lstat(name, b) < 0) return null;
        return a.ino() == b.ino() && a.dev() == b.dev() ? name : null;
    }

    /** After a name of an indexed file went: an index entry whose overlay nlink reached 0 goes too (ovl_cleanup_index). */
    void nlinkEnd(String name) {
        if (name == null) return;
        Layer idx = ovl.stack[layer];
        Stat st = new Stat();
        if (idx.lstat(name, st) < 0 || st.isDir()) return;
        long o = overlayNlink(idx.getxattr(name, nlinkX), st.nlink(), -1);
        if (o == 0 && st.nlink() == 1) Posix.unlinkat(idx.fd(), name, 0);
    }

    /** Whether two names are one overlay inode through the index (rename(2) of one onto the other does nothing). */
    boolean sameInode(Node a, Node b) {
        if (a.negative() || b.negative() || a.isDir() || b.isDir()) return false;
        String x = key(a), y = key(b);
        return x != null && x.equals(y);
    }

    private String key(Node n) {
        int top = n.top();
        if (top == layer) return n.relIn(layer);
        if (top == 0) return indexedName(n);
        Stat st = new Stat();
        if (ovl.stack[top].lstat(n.relIn(top), st) < 0 || st.nlink() <= 1) return null;
        return nameOf(n);
    }
}
