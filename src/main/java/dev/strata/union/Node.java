package dev.strata.union;

/**
 * A directory entry of the merged tree (the kernel's dentry + overlay inode): its parent and name, the
 * layers that contribute to it (top first; for a directory every layer merged until an opaque one, for
 * anything else the single top layer), or none for a negative entry. Children are cached in a map and
 * dropped when a mutation touches them, so a subtree is invalidated by removing one map entry.
 */
class Node {
    static final int[] NONE = new int[0];

    final Node parent;
    /** Path relative to each layer root: "" for the root, else "a/b" (the name is its last part). */
    final String rel;
    /**
     * Where the entry is in each layer, by layer index, where that differs from {@link #rel}: below a
     * renamed directory (overlay.redirect) the lower layers hold it under its old path. Null when every
     * layer has it at rel (always for the upper).
     */
    final String[] paths;
    /** Layer indices top first (index 0 is the upper when there is one); empty for a negative entry. */
    volatile int[] layers;
    /** S_IFMT bits of the top entry (0 if negative); a char (they fit in 16 bits) keeps a node at 64 bytes. */
    final char type;
    /** A negative entry that ended at a whiteout (so a directory created here must be opaque). */
    final boolean whiteout;
    /** Bit per layer index (< 64) where this directory has overlay.opaque=x (holds xattr whiteouts). */
    final long xwhMask;
    /** Presented st_ino, computed on first getattr (0 = not yet). */
    volatile long ino;
    /**
     * For a directory with an upper part: whether that upper directory carries overlay.impure (entries
     * in it may have an origin whose number readdir must show): 0 not yet read, 1 yes, 2 no.
     */
    volatile byte impure;
    /** Set when the entry was unlinked/renamed away while files may still be open on it. */
    volatile boolean gone;
    volatile boolean deleted;
    /** The append-only / immutable flags as last read (see {@link Protect#bits}); null: not read yet. */
    volatile Protect.Flags prot;
    /**
     * A metadata-only copy whose data is in a data-only lower layer and not looked up yet: the absolute
     * overlay.redirect to look up there on first need (the kernel's lowerdata_redirect, see
     * {@link Lowerdata}); null otherwise, and once found ({@link #layers} then ends with the data layer).
     */
    volatile String lowerdataRedirect;
    /** verity=on/require: the fs-verity digest of this metadata-only copy was checked (OVL_VERIFIED_DIGEST). */
    volatile boolean verified;
    /** Entered by readdir, not yet confirmed by a lookup (see Namei#confirmListed). */
    volatile boolean listed;
    /**
     * Made in the upper by this mount a moment ago ({@link Namei#created}): it has no origin to read for
     * its first presented number (taken once, then kept in {@link #ino}).
     */
    volatile boolean fresh;
    private volatile Children children;
    /** The merged listing of a directory, kept until a name in it changes (see {@link Union#readdir}). */
    volatile Listing listing;

    /**
     * A merged directory listing: names, S_IFMT types and inode numbers, in readdir order. The names'
     * bytes are packed in one array (about 30 bytes an entry in all, where a String each made it 70:
     * a cached directory keeps its listing, see {@link NodeCache}); a replay makes their Strings again.
     */
    static final class Listing {
        private final byte[] bytes;
        /** Where each name ends in {@link #bytes}. */
        private final int[] ends;
        /** S_IFMT >>> 12 of each entry. */
        private final byte[] types;
        private final long[] inos;

        Listing(java.util.List<String> names, int[] types, long[] inos) {
            int n = names.size(), total = 0;
            for (String s : names) total += s.length();
            bytes = new byte[total];
            ends = new int[n];
            this.types = new byte[n];
            int at = 0;
            for (int k = 0; k < n; k++) {
                String s = names.get(k);
                for (int i = 0; i < s.length(); i++) bytes[at++] = (byte) s.charAt(i); // names are bytes as chars 0-255
                ends[k] = at;
                this.types[k] = (byte) (types[k] >>> 12);
            }
            this.inos = inos;
        }

        int size() { return ends.length; }
        String name(int k) {
            int from = k == 0 ? 0 : ends[k - 1];
            return new String(bytes, from, ends[k] - from, java.nio.charset.StandardCharsets.ISO_8859_1);
        }
        int type(int k) { return (types[k] & 0xff) << 12; }
        long ino(int k) { return inos[k]; }
    }

    /**
     * The layer arrays of entries that come from one layer, shared: most entries of an image are files
     * or unmerged directories, and a tree of 100,000 entries would otherwise hold as many equal arrays.
     * Layer arrays are never changed in place (a copy-up assigns a new one).
     */
    private static final int[][] SINGLE = new int[64][];
    static {
        for (int i = 0; i < SINGLE.length; i++) SINGLE[i] = new int[]{i};
    }

    /** The layer array {layer}, shared. */
    static int[] single(int layer) { return layer < SINGLE.length ? SINGLE[layer] : new int[]{layer}; }

    static int[] shared(int[] layers) { return layers.length == 1 ? single(layers[0]) : layers; }

    Node(Node parent, String rel, int[] layers, int type, boolean whiteout, long xwhMask) {
        this(parent, rel, layers, null, type, whiteout, xwhMask);
    }

    Node(Node parent, String rel, int[] layers, String[] paths, int type, boolean whiteout, long xwhMask) {
        this.parent = parent;
        this.paths = paths;
        this.rel = rel;
        this.layers = shared(layers);
        this.type = (char) type;
        this.whiteout = whiteout;
        this.xwhMask = xwhMask;
    }

    /** The entry's path in layer {@code layer} (its old path there when a directory above was renamed). */
    String relIn(int layer) {
        String[] p = paths;
        String r = p == null || layer >= p.length ? null : p[layer];
        return r == null ? rel : r;
    }

    /** The entry's name: the last part of {@link #rel} (derived rather than kept: one string less per entry). */
    String name() { return rel.substring(rel.lastIndexOf('/') + 1); }

    /**
     * Whether this entry's path no longer names it: it, or a directory above it, was removed or
     * renamed away (descendants of a moved directory keep their old {@link #rel}).
     */
    boolean stale() {
        for (Node p = this; p != null; p = p.parent) if (p.gone) return true;
        return false;
    }

    boolean negative() { return layers.length == 0; }
    boolean isDir() { return type == dev.strata.posix.Posix.S_IFDIR; }
    int top() { return layers[0]; }
    /**
     * A metadata-only copy (overlay.metacopy, the kernel's "no upperdata"): a regular file whose layers
     * are {where its metadata is, where its data is}; reads go to {@link #dataLayer()}.
     */
    boolean metacopy() { return type == dev.strata.posix.Posix.S_IFREG && (layers.length > 1 || lowerdataRedirect != null); }
    /**
     * The layer a regular file's data is read from: the last of its layers. For a metadata-only copy
     * whose data is in a data-only layer, only after {@link Lowerdata#lookup} found it.
     */
    int dataLayer() { int[] l = layers; return l[l.length - 1]; }
    /** More than one layer contributes (the kernel's "merge" type: nlink shows 1). */
    boolean merged() { return layers.length > 1; }

    Children children() {
        Children c = children;
        if (c == null) {
            synchronized (this) {
                c = children;
                if (c == null) children = c = new Children();
            }
        }
        return c;
    }

    Children childrenIfAny() { return children; }

    void forget(String childName) {
        listing = null;
        Children c = children;
        if (c != null) c.remove(childName);
    }

    @Override public String toString() { return "/" + rel; }
}
