package dev.strata.fuse.kernel;

import dev.strata.fuse.kernel.Inodes.KNode;

import java.nio.charset.StandardCharsets;
import java.util.HashMap;

/**
 * The slot table behind {@link Inodes}: a node's columns (kernel references, generation, parent, name,
 * st_ino, hash chain), the free slots, the names' {@link NamePool}, the few nodes' {@link NodeExtra}
 * and a directory's {@link Children}. A slot is a node; an id is a slot with its generation. Not
 * thread-safe: called under the Inodes lock only (Inodes' synchronized methods), and takes no lock itself.
 */
final class NodeTable {
    /**
     * A directory's children by name: a hash table of slots chained through the {@code next} column,
     * so a name the kernel holds costs one table slot besides its node (a HashMap added a 32-byte entry
     * object per name). A node's name is its key: it is taken out before its name changes and put back
     * after. Under the Inodes lock.
     */
    final class Children {
        private int[] table = new int[8];
        private int size;

        private int hashOf(int s) {
            Page p = page(s);
            int h = names.hash(p.nameAt[s & MASK], p.nameLen[s & MASK]);
            return h ^ (h >>> 16);
        }

        /** String.hashCode of the name (the same for its bytes), spread. */
        private int hashOf(String name) {
            int h = name.hashCode();
            return h ^ (h >>> 16);
        }

        private boolean named(int s, String name) {
            Page p = page(s);
            return names.equals(p.nameAt[s & MASK], p.nameLen[s & MASK], name);
        }

        int get(String name) {
            for (int c = table[hashOf(name) & (table.length - 1)]; c != 0; c = next(c)) if (named(c, name)) return c;
            return 0;
        }

        /** Enters a node under its name (which must not be there yet). */
        void add(int c) {
            if (++size > table.length) grow(); // chains of 1.5 names a search on average: a slot a name at most
            int i = hashOf(c) & (table.length - 1);
            setNext(c, table[i]);
            table[i] = c;
        }

        private void grow() {
            int[] old = table, t = new int[old.length * 2];
            for (int head : old) {
                for (int c = head, nx; c != 0; c = nx) {
                    nx = next(c);
                    int i = hashOf(c) & (t.length - 1);
                    setNext(c, t[i]);
                    t[i] = c;
                }
            }
            table = t;
        }

        /** Takes out the node of a name; returns its slot, or 0. */
        int remove(String name) {
            int i = hashOf(name) & (table.length - 1);
            for (int c = table[i], prev = 0; c != 0; prev = c, c = next(c)) {
                if (named(c, name)) return unchain(i, prev, c);
            }
            return 0;
        }

        /** Takes out this very node, if it is here. */
        boolean remove(int node) {
            int i = hashOf(node) & (table.length - 1);
            for (int c = table[i], prev = 0; c != 0; prev = c, c = next(c)) {
                if (c == node) return unchain(i, prev, c) != 0;
            }
            return false;
        }

        private int unchain(int i, int prev, int c) {
            if (prev == 0) table[i] = next(c); else setNext(prev, next(c));
            setNext(c, 0);
            size--;
            return c;
        }

        int size() { return size; }

        /** Every slot in the table. */
        int[] slots() {
            int[] out = new int[size];
            int n = 0;
            for (int head : table) for (int c = head; c != 0; c = next(c)) out[n++] = c;
            return out;
        }
    }

    /**
     * The nodes, as columns of pages of 1024 slots. A node id is a slot in its low 32 bits and the
     * slot's generation (how often it was reused) above, so ids stay unique. A node costs 30 bytes here
     * and its name's bytes in the {@link NamePool}, and no object: the kernel holds one for every name
     * it looked up, so this is most of the daemon's memory after a walk over a large tree (measured:
     * 136 bytes a node with an object each and its name in a byte array, 92 with the object trimmed),
     * and the collector has no node objects to trace. Slot 0 is never used (0 ends a chain, is no parent).
     * Under the Inodes lock.
     */
    private static final int PAGE_BITS = 10, PAGE = 1 << PAGE_BITS, MASK = PAGE - 1;

    private static final class Page {
        final int[] gen = new int[PAGE];
        /** The parent's slot; 0: the root, or detached. */
        final int[] parent = new int[PAGE];
        /** The name's address in the pool, or -1 when detached (removed, renamed over, never named, free). */
        final int[] nameAt = new int[PAGE];
        final char[] nameLen = new char[PAGE];
        /** The kernel's references; 0: a free slot; -1: more than an int holds (see {@link #manyLookups}). */
        final int[] lookups = new int[PAGE];
        /** st_ino presented at the last reply about the node. */
        final long[] ino = new long[PAGE];
        /** The next slot in its directory's hash chain ({@link Children}). */
        final int[] next = new int[PAGE];

        Page() { java.util.Arrays.fill(nameAt, -1); }
    }

    private Page[] pages = new Page[16];
    /**
     * Directory children and listing, open-file state, by slot, for the few nodes that need them (a
     * column of references cost 4 bytes a node, most of them null).
     */
    private final SlotMap<NodeExtra> extras = new SlotMap<>();
    /** Releases an {@link NodeExtra#removedFd} when its node is dropped (Inodes#releaseRemoved; called under the Inodes lock). */
    private final java.util.function.IntConsumer releaseRemoved;
    /** Free slots (a stack) and the first slot never used. */
    private int[] free = new int[64];
    private int freeCount;
    private int nextSlot = Proto.ROOT_ID + 1;
    /**
     * The kernel's references to the nodes that hold more than Integer.MAX_VALUE (the kernel counts in 64
     * bits): an int column is 4 bytes a node less for what a node never reaches in practice.
     */
    private final HashMap<Integer, Long> manyLookups = new HashMap<>();
    /** The names of the nodes (see {@link NamePool}). */
    private NamePool names = new NamePool();
    private static final int ROOT = Proto.ROOT_ID;

    /** A table that holds the root, with one reference; {@code releaseRemoved}: see {@link #drop}. */
    NodeTable(java.util.function.IntConsumer releaseRemoved) {
        this.releaseRemoved = releaseRemoved;
        pages[0] = new Page();
        Page p = page(ROOT);
        p.lookups[ROOT] = 1;
        p.nameAt[ROOT] = 0; // named "" (no bytes)
    }

    private Page page(int s) { return pages[s >>> PAGE_BITS]; }

    long lookupsOf(int s) {
        int v = page(s).lookups[s & MASK];
        return v >= 0 ? v : manyLookups.get(s);
    }

    /** Sets a node's reference count (0 or less: none). */
    void setLookups(int s, long v) {
        int[] col = page(s).lookups;
        if (col[s & MASK] < 0) manyLookups.remove(s);
        if (v > Integer.MAX_VALUE) {
            col[s & MASK] = -1;
            manyLookups.put(s, v);
        } else {
            col[s & MASK] = (int) Math.max(v, 0);
        }
    }
    private int next(int s) { return page(s).next[s & MASK]; }
    private void setNext(int s, int n) { page(s).next[s & MASK] = n; }
    int parentOf(int s) { return page(s).parent[s & MASK]; }
    void setParent(int s, int parent) { page(s).parent[s & MASK] = parent; }
    boolean detached(int s) { return page(s).nameAt[s & MASK] < 0; }
    KNode handle(int s) { return new KNode((long) page(s).gen[s & MASK] << 32 | s); }

    /** st_ino presented at the last reply about a node (0: none). */
    long ino(int s) { return page(s).ino[s & MASK]; }
    void setIno(int s, long ino) { page(s).ino[s & MASK] = ino; }

    /** The slot of a node the kernel still holds, or 0. */
    int slot(long id) {
        int s = (int) id;
        if (s <= 0 || s >= nextSlot) return 0;
        Page p = page(s);
        return p.gen[s & MASK] == (int) (id >>> 32) && p.lookups[s & MASK] != 0 ? s : 0;
    }

    int slot(KNode n) { return n == null ? 0 : slot(n.id); }

    /** A new node in a free slot, with no references yet. */
    int add(int parent, String name) {
        int s;
        if (freeCount > 0) {
            s = free[--freeCount];
        } else {
            s = nextSlot++;
            int pi = s >>> PAGE_BITS;
            if (pi == pages.length) pages = java.util.Arrays.copyOf(pages, pages.length * 2);
            if (pages[pi] == null) pages[pi] = new Page();
        }
        page(s).parent[s & MASK] = parent;
        name(s, name);
        return s;
    }

    /** Frees a node's slot; its id names nothing from now on. */
    void drop(int s) {
        Page p = page(s);
        int i = s & MASK;
        p.gen[i]++;
        setLookups(s, 0);
        p.ino[i] = 0;
        p.next[i] = 0;
        p.parent[i] = 0;
        NodeExtra e = extras.get(s);
        if (e != null && e.removedFd >= 0) releaseRemoved.accept(e.removedFd);
        extras.remove(s);
        if (freeCount == free.length) free = java.util.Arrays.copyOf(free, free.length * 2);
        free[freeCount++] = s;
    }

    /** Gives a node its name (null: none, detached). */
    void name(int s, String name) {
        Page p = page(s);
        if (name == null) {
            p.nameAt[s & MASK] = -1;
            p.nameLen[s & MASK] = 0;
        } else {
            p.nameAt[s & MASK] = names.add(name);
            p.nameLen[s & MASK] = (char) name.length();
        }
    }

    /** Takes a node's name away: it is detached from now on. */
    void unname(int s) {
        Page p = page(s);
        int i = s & MASK;
        if (s == ROOT || p.nameAt[i] < 0) return;
        names.free(p.nameLen[i]);
        p.nameAt[i] = -1;
        p.nameLen[i] = 0;
        p.parent[i] = 0;
        if (names.wantsCompaction()) compactNames();
    }

    /**
     * Node o takes the name and the place of alias a ({@link SharedNames#promote}): a is left without
     * a name, which is not freed with it.
     */
    void takeName(int o, int a) {
        Page pa = page(a), po = page(o);
        po.parent[o & MASK] = pa.parent[a & MASK];
        po.nameAt[o & MASK] = pa.nameAt[a & MASK];
        po.nameLen[o & MASK] = pa.nameLen[a & MASK];
        pa.nameAt[a & MASK] = -1; // the name is o's now: not freed with the alias
        pa.nameLen[a & MASK] = 0;
    }

    /** Copies the names still used into a new pool (every named node is in a slot). */
    private void compactNames() {
        NamePool fresh = new NamePool();
        for (int s = ROOT + 1; s < nextSlot; s++) {
            Page p = page(s);
            int i = s & MASK;
            if (p.nameAt[i] >= 0 && p.nameLen[i] > 0) p.nameAt[i] = fresh.copyFrom(names, p.nameAt[i], p.nameLen[i]);
        }
        names = fresh;
    }

    /** The mount path of a node's slot ("/" or "/a/b"), or null if it (or a directory above it) was removed. */
    String path(int s) {
        if (s == ROOT) return "/";
        int len = 0;
        for (int c = s; c != ROOT; c = parentOf(c)) {
            if (c == 0 || detached(c)) return null;
            len += 1 + page(c).nameLen[c & MASK];
        }
        byte[] b = new byte[len];
        for (int c = s; c != ROOT; c = parentOf(c)) {
            Page p = page(c);
            int l = p.nameLen[c & MASK];
            len -= l;
            names.copyTo(p.nameAt[c & MASK], l, b, len);
            b[--len] = '/';
        }
        return new String(b, StandardCharsets.ISO_8859_1);
    }

    /** The children of a directory node, or null. */
    Children kids(int dir) {
        NodeExtra e = extras.get(dir);
        return e == null ? null : e.children;
    }

    /** The children of a directory node, made if there are none. */
    Children kidsFor(int dir) {
        NodeExtra e = extra(dir);
        if (e.children == null) e.children = new Children();
        return e.children;
    }

    /** A node's extra state, made on first use. */
    NodeExtra extra(int s) {
        NodeExtra e = extras.get(s);
        if (e == null) extras.put(s, e = new NodeExtra());
        return e;
    }

    /** A node's extra state, or null (nothing is made). */
    NodeExtra extraIfAny(int s) { return extras.get(s); }

    /** Takes a node's extra state out of the table. */
    void dropExtra(int s) { extras.remove(s); }

    NamePool namesForTests() { return names; }
}
