package dev.strata.fuse.kernel;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * The node ids strata hands the kernel: one per name the kernel holds (as libfuse's path-based layer
 * does), with the kernel's lookup count, so a request naming a node id can be turned into a mount path
 * for the engine. Ids are never reused (a slot number with a generation), so a name that is removed and
 * created again gets a new kernel inode. Removing or renaming a name moves or detaches its node here; a detached
 * node lives on (open files) until the kernel forgets it.
 *
 * <p>Non-directories with more than one name get one id per name: their other ids are found by inode number
 * ({@link #siblings}) so their cached attributes can be invalidated when one name changes the file.
 */
final class Inodes {
    /**
     * A node id the kernel holds. Every name the kernel looked up has one, so its size is most of the
     * daemon's memory after a walk over a large tree: 56 bytes, its name's bytes in the {@link NamePool}
     * and its slot (measured: 136 bytes a node before, with the name in a byte array and the state of
     * open files and listed directories in every node). What only some nodes need is in {@link Extra}.
     */
    static final class KNode {
        final long id;
        KNode parent;          // null: the root, or detached
        /** The name's address in the pool, or -1 when detached (removed, renamed over, or never named). */
        int nameAt;
        char nameLen;
        long lookups;
        /** st_ino presented at the last reply about this node. */
        volatile long ino;
        /** The next node in its directory's hash chain ({@link Children}). */
        KNode next;
        /** Directory children and listing, open-file state; null until a node needs them. */
        private volatile Extra extra;

        KNode(long id, KNode parent) {
            this.id = id;
            this.parent = parent;
        }

        boolean detached() { return nameAt < 0; }

        /** This node's extra state, made on first use. */
        Extra x() {
            Extra e = extra;
            if (e == null) {
                synchronized (this) {
                    e = extra;
                    if (e == null) extra = e = new Extra();
                }
            }
            return e;
        }

        /** This node's extra state, or null (nothing is made). */
        Extra xIfAny() { return extra; }

        int writablePassthrough() { Extra e = extra; return e == null ? 0 : e.writablePassthrough; }
        int passthroughOpens() { Extra e = extra; return e == null ? 0 : e.passthroughOpens; }
        byte[] removedStat() { Extra e = extra; return e == null ? null : e.removedStat; }
        Listing listing() { Extra e = extra; return e == null ? null : e.listing; }
    }

    /** What few nodes need: those of directories the kernel holds names in or lists, and of opened files. */
    static final class Extra {
        /** The names of a directory the kernel holds (null until the first; under the Inodes lock). */
        Children children;
        /** A directory listing being read by offset (dropped once read to its end). */
        volatile Listing listing;
        /** Open files on this kernel inode through the page cache or direct I/O / through passthrough (see FileOps#openReply). */
        int cachedOpens;
        volatile int passthroughOpens;
        /**
         * Passthrough opens for writing: the kernel writes the layer file itself (write(2), and a shared
         * mapping's pages without any request), so while there are any, the attributes strata gives for
         * this node are valid for no time and stat asks again (see Worker#attrsMustBeFresh).
         */
        volatile int writablePassthrough;
        /**
         * For a removed fifo, socket, device or symlink (opened without strata, so no descriptor to
         * ask): its struct stat as it was left by the removal.
         */
        volatile byte[] removedStat;
        /** The backing id all passthrough opens of this inode share (the kernel allows one backing file per inode). */
        int backingId;
    }

    /**
     * A directory's children by name: a hash table chained through {@link KNode#next}, so a name the
     * kernel holds costs its node and one table slot (a HashMap added a 32-byte entry object per name,
     * a tenth of the daemon's heap after a find). Under the Inodes lock. A node's name is its key: it is
     * taken out before its name changes and put back after.
     */
    final class Children {
        private KNode[] table = new KNode[8];
        private int size;

        /** String.hashCode of the name (the same for its bytes), spread. */
        private int hash(String name) {
            int h = name.hashCode();
            return h ^ (h >>> 16);
        }

        private int hash(KNode c) {
            int h = names.hash(c.nameAt, c.nameLen);
            return h ^ (h >>> 16);
        }

        KNode get(String name) {
            KNode[] t = table;
            for (KNode c = t[hash(name) & (t.length - 1)]; c != null; c = c.next) {
                if (names.equals(c.nameAt, c.nameLen, name)) return c;
            }
            return null;
        }

        /** Enters a node under its name (which must not be there yet). */
        void add(KNode c) {
            if (++size > table.length - (table.length >>> 2)) grow();
            int i = hash(c) & (table.length - 1);
            c.next = table[i];
            table[i] = c;
        }

        private void grow() {
            KNode[] old = table, t = new KNode[old.length * 2];
            for (KNode head : old) {
                for (KNode c = head, nx; c != null; c = nx) {
                    nx = c.next;
                    int i = hash(c) & (t.length - 1);
                    c.next = t[i];
                    t[i] = c;
                }
            }
            table = t;
        }

        /** Takes out the node of a name; returns it, or null. */
        KNode remove(String name) {
            int i = hash(name) & (table.length - 1);
            KNode prev = null;
            for (KNode c = table[i]; c != null; prev = c, c = c.next) {
                if (!names.equals(c.nameAt, c.nameLen, name)) continue;
                if (prev == null) table[i] = c.next; else prev.next = c.next;
                c.next = null;
                size--;
                return c;
            }
            return null;
        }

        /** Takes out this very node, if it is here. */
        boolean remove(KNode node) {
            int i = hash(node) & (table.length - 1);
            KNode prev = null;
            for (KNode c = table[i]; c != null; prev = c, c = c.next) {
                if (c != node) continue;
                if (prev == null) table[i] = c.next; else prev.next = c.next;
                c.next = null;
                size--;
                return true;
            }
            return false;
        }

        int size() { return size; }
    }

    /**
     * Nodes by id. An id is a slot of this table in its low 32 bits and the slot's generation (how often
     * it was reused) above, so ids stay unique while the table holds one reference per node (a hash map
     * keyed by boxed ids took about 60 bytes more per entry). Written under this object's lock; read
     * without it by every request.
     */
    private volatile AtomicReferenceArray<KNode> slots = new AtomicReferenceArray<>(1024);
    /** Generation per slot: the next id of slot i is generations[i] << 32 | i. */
    private int[] generations = new int[1024];
    /** Free slots (a stack) and the first slot never used. */
    private int[] free = new int[64];
    private int freeCount;
    private int nextSlot = Proto.ROOT_ID + 1;
    /** Non-directories shown with st_nlink > 1, by inode number: every node id that names them. */
    private final HashMap<Long, List<KNode>> linked = new HashMap<>();
    /** The names of the nodes (see {@link NamePool}). */
    private NamePool names = new NamePool();
    final KNode root;

    Inodes() {
        root = new KNode(Proto.ROOT_ID, null); // named "" (no bytes)
        root.lookups = 1;
        slots.set(Proto.ROOT_ID, root);
    }

    KNode get(long id) {
        int slot = (int) id;
        AtomicReferenceArray<KNode> t = slots;
        if (slot <= 0 || slot >= t.length()) return null;
        KNode n = t.get(slot);
        return n != null && n.id == id ? n : null;
    }

    /** A new node in a free slot (under the lock). */
    private KNode add(KNode parent, String name) {
        int slot;
        if (freeCount > 0) {
            slot = free[--freeCount];
        } else {
            slot = nextSlot++;
            if (slot >= slots.length()) {
                AtomicReferenceArray<KNode> old = slots;
                AtomicReferenceArray<KNode> t = new AtomicReferenceArray<>(old.length() * 2);
                for (int i = 0; i < old.length(); i++) t.set(i, old.get(i));
                generations = java.util.Arrays.copyOf(generations, t.length());
                slots = t;
            }
        }
        KNode c = new KNode((long) generations[slot] << 32 | slot, parent);
        name(c, name);
        slots.set(slot, c);
        return c;
    }

    /** Gives a node its name (null: none, detached). */
    private void name(KNode c, String name) {
        if (name == null) {
            c.nameAt = -1;
            c.nameLen = 0;
        } else {
            c.nameAt = names.add(name);
            c.nameLen = (char) name.length();
        }
    }

    /** Takes a node's name away: it is detached from now on. */
    private void unname(KNode c) {
        if (c == root || c.nameAt < 0) return;
        names.free(c.nameLen);
        c.nameAt = -1;
        c.nameLen = 0;
        c.parent = null;
        if (names.wantsCompaction()) compactNames();
    }

    /** Copies the names still used into a new pool (every named node is in a slot). */
    private void compactNames() {
        NamePool fresh = new NamePool();
        AtomicReferenceArray<KNode> t = slots;
        for (int i = 0; i < nextSlot && i < t.length(); i++) {
            KNode c = t.get(i);
            if (c != null && c.nameAt >= 0 && c.nameLen > 0) c.nameAt = fresh.copyFrom(names, c.nameAt, c.nameLen);
        }
        names = fresh;
    }

    /** The children of a directory node, or null. */
    private static Children kids(KNode dir) {
        Extra e = dir.xIfAny();
        return e == null ? null : e.children;
    }

    /** The children of a directory node, made if there are none. */
    private Children kidsFor(KNode dir) {
        Extra e = dir.x();
        if (e.children == null) e.children = new Children();
        return e.children;
    }

    private boolean known(KNode c) { return get(c.id) == c; }

    /** Frees a node's slot (under the lock); its id names nothing from now on. */
    private void drop(KNode c) {
        int slot = (int) c.id;
        slots.set(slot, null);
        generations[slot]++;
        if (freeCount == free.length) free = java.util.Arrays.copyOf(free, free.length * 2);
        free[freeCount++] = slot;
    }

    /** The mount path of a node ("/" or "/a/b"), or null if it (or a directory above it) was removed. */
    synchronized String path(KNode n) {
        if (n == root) return "/";
        int len = 0;
        for (KNode c = n; c != root; c = c.parent) {
            if (c == null || c.detached()) return null;
            len += 1 + c.nameLen;
        }
        byte[] b = new byte[len];
        for (KNode c = n; c != root; c = c.parent) {
            len -= c.nameLen;
            names.copyTo(c.nameAt, c.nameLen, b, len);
            b[--len] = '/';
        }
        return new String(b, StandardCharsets.ISO_8859_1);
    }

    /** The path of a name in a directory node, or null if the directory was removed. */
    String childPath(KNode dir, String name) {
        String p = path(dir);
        if (p == null) return null;
        return p.length() == 1 ? "/" + name : p + "/" + name;
    }

    /**
     * The node for a name the kernel is told about (lookup, create, readdirplus): the existing one or a
     * new one; counts one kernel reference.
     */
    synchronized KNode lookup(KNode dir, String name, long ino, boolean multiLinkFile) {
        Children kids = kidsFor(dir);
        KNode c = kids.get(name);
        if (c == null) {
            c = add(dir, name);
            kids.add(c);
        }
        c.lookups++;
        if (c.ino != ino) {
            unlink(c);
            c.ino = ino;
        }
        if (multiLinkFile) {
            List<KNode> l = linked.computeIfAbsent(ino, k -> new ArrayList<>(2));
            if (!l.contains(c)) l.add(c);
        }
        return c;
    }

    /** Records that a node names a file with several names (after a link through the mount). */
    synchronized void markLinked(KNode c, long ino) {
        if (!known(c)) return;
        if (c.ino != ino) {
            unlink(c);
            c.ino = ino;
        }
        List<KNode> l = linked.computeIfAbsent(ino, k -> new ArrayList<>(2));
        if (!l.contains(c)) l.add(c);
    }

    /** A node with no name (an O_TMPFILE file), one kernel reference. */
    synchronized KNode anonymous(long ino) {
        KNode c = add(null, null);
        c.lookups = 1;
        c.ino = ino;
        return c;
    }

    /** The kernel dropped {@code n} references to a node. */
    synchronized void forget(long id, long n) {
        KNode c = get(id);
        if (c == null || c == root) return;
        c.lookups -= n;
        if (c.lookups > 0) return;
        drop(c);
        unlink(c);
        KNode p = c.parent;
        Children kids = c.detached() || p == null ? null : kids(p);
        if (kids != null && kids.remove(c) && kids.size() == 0) p.xIfAny().children = null;
        unname(c);
    }

    private void unlink(KNode c) {
        if (c.ino == 0) return;
        List<KNode> l = linked.get(c.ino);
        if (l != null && l.remove(c) && l.isEmpty()) linked.remove(c.ino);
    }

    /** The node the kernel holds for a name, if any (no reference is counted). */
    synchronized KNode peek(KNode dir, String name) {
        Children kids = kids(dir);
        return kids == null ? null : kids.get(name);
    }

    /** A name was removed: its node (if the kernel knows it) keeps its id but no longer has a path. */
    synchronized KNode remove(KNode dir, String name) {
        Children kids = kids(dir);
        KNode c = kids == null ? null : kids.remove(name);
        if (c != null) unname(c);
        return c;
    }

    /**
     * A rename succeeded: the source node takes the new name; a node there before is detached (or
     * swapped). Returns the node that was replaced (detached), or null.
     */
    synchronized KNode rename(KNode fromDir, String fromName, KNode toDir, String toName, boolean exchange) {
        Children fromKids = kids(fromDir), toKids = kids(toDir);
        KNode src = fromKids == null ? null : fromKids.remove(fromName);
        KNode dst = toKids == null ? null : toKids.remove(toName);
        if (dst != null) {
            unname(dst);
            if (exchange) {
                dst.parent = fromDir;
                name(dst, fromName);
                kidsFor(fromDir).add(dst);
            }
        }
        if (src != null) {
            unname(src);
            src.parent = toDir;
            name(src, toName);
            kidsFor(toDir).add(src);
        }
        return exchange ? null : dst;
    }

    /**
     * Whether another name of a multi-link file has passthrough opens: the kernel writes those itself,
     * so strata cannot invalidate what it caches about this name (such a file got its second name
     * while open; later opens of it have direct I/O).
     */
    synchronized boolean passthroughElsewhere(long ino, KNode except) {
        List<KNode> l = linked.get(ino);
        if (l == null) return false;
        for (KNode k : l) if (k != except && k.passthroughOpens() > 0) return true;
        return false;
    }

    /** Node ids of the other names of a multi-link file (for attribute invalidation). */
    synchronized long[] siblings(long ino, KNode except) {
        List<KNode> l = linked.get(ino);
        if (l == null) return EMPTY;
        long[] out = new long[l.size()];
        int n = 0;
        for (KNode k : l) if (k != except) out[n++] = k.id;
        return n == out.length ? out : java.util.Arrays.copyOf(out, n);
    }

    /** The node the kernel holds for a mount path, if any (no reference is counted). */
    synchronized KNode find(String path) {
        KNode c = root;
        int i = 1, len = path.length();
        while (i < len) {
            int j = path.indexOf('/', i);
            if (j < 0) j = len;
            Children kids = kids(c);
            if (kids == null) return null;
            c = kids.get(path.substring(i, j));
            if (c == null) return null;
            i = j + 1;
        }
        return c;
    }

    NamePool namesForTests() { return names; }

    private static final long[] EMPTY = new long[0];
}
