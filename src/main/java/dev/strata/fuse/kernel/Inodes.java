package dev.strata.fuse.kernel;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;

/**
 * The node ids strata hands the kernel: one per name the kernel holds (as libfuse's path-based layer
 * does), with the kernel's lookup count, so a request naming a node id can be turned into a mount path
 * for the engine. Ids are never reused (a slot number with a generation), so a name that is removed and
 * created again gets a new kernel inode. Removing or renaming a name moves or detaches its node here; a detached
 * node lives on (open files) until the kernel forgets it.
 *
 * <p>The names of one upper regular file (a hard link in the upper layer) share one id, as the kernel
 * overlay gives them one inode (ovl_get_inode hashes it by the upper inode): the first name looked up is
 * the node's own, every other is an alias slot that maps its name to that node ({@link #lookup},
 * {@link #link}), so the kernel keeps one page cache and one set of attributes for the file. Other
 * non-directories with more than one name (lower hard links, which a copy-up breaks; files linked behind
 * the mount) get one id per name: their other ids are found by inode number ({@link #siblings}) so their
 * cached attributes can be invalidated when one name changes the file.
 */
final class Inodes {
    /**
     * A node id the kernel holds, as a handle: what is known about it is in this table's columns (see
     * {@link Inodes}). Handles are made per request and are equal when their ids are; one whose id the
     * kernel has forgotten names nothing (the table's methods treat it as detached).
     */
    static final class KNode {
        final long id;

        KNode(long id) { this.id = id; }

        @Override public boolean equals(Object o) { return o instanceof KNode && ((KNode) o).id == id; }
        @Override public int hashCode() { return Long.hashCode(id); }
        @Override public String toString() { return "node " + id; }
    }

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
     * Under this object's lock.
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
    /** Releases an {@link NodeExtra#removedFd} when its node is dropped (set by KernelFS; called under this lock). */
    java.util.function.IntConsumer releaseRemoved = fd -> { };
    /** Free slots (a stack) and the first slot never used. */
    private int[] free = new int[64];
    private int freeCount;
    private int nextSlot = Proto.ROOT_ID + 1;
    /**
     * The kernel's references to the nodes that hold more than Integer.MAX_VALUE (the kernel counts in 64
     * bits): an int column is 4 bytes a node less for what a node never reaches in practice.
     */
    private final HashMap<Integer, Long> manyLookups = new HashMap<>();
    /** Non-directories shown with st_nlink > 1, by inode number: every node id that names them. */
    private final HashMap<Long, List<KNode>> linked = new HashMap<>();
    /**
     * Hard-linked upper regular files whose names share one node: the upper inode number -> that node's
     * slot (its owner), and back. The owner's own name is one of the file's names while it has any
     * ({@link #promote}); its other names the kernel looked up are alias slots: named, in their
     * directory's children, never handed to the kernel (no references, no id in use), alias -> owner and
     * owner -> aliases. Few files have several names: maps, not columns.
     */
    private final HashMap<Long, Integer> byUpper = new HashMap<>();
    private final HashMap<Integer, Long> upperOf = new HashMap<>();
    private final HashMap<Integer, Integer> ownerOf = new HashMap<>();
    private final HashMap<Integer, int[]> aliasesOf = new HashMap<>();
    /** The names of the nodes (see {@link NamePool}). */
    private NamePool names = new NamePool();
    final KNode root;
    private static final int ROOT = Proto.ROOT_ID;

    Inodes() {
        pages[0] = new Page();
        Page p = page(ROOT);
        p.lookups[ROOT] = 1;
        p.nameAt[ROOT] = 0; // named "" (no bytes)
        root = new KNode(ROOT);
    }

    private Page page(int s) { return pages[s >>> PAGE_BITS]; }

    private long lookupsOf(int s) {
        int v = page(s).lookups[s & MASK];
        return v >= 0 ? v : manyLookups.get(s);
    }

    /** Sets a node's reference count (0 or less: none). */
    private void setLookups(int s, long v) {
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
    private int parentOf(int s) { return page(s).parent[s & MASK]; }
    private boolean detached(int s) { return page(s).nameAt[s & MASK] < 0; }
    private KNode handle(int s) { return new KNode((long) page(s).gen[s & MASK] << 32 | s); }

    /** The slot of a node the kernel still holds, or 0. */
    private int slot(long id) {
        int s = (int) id;
        if (s <= 0 || s >= nextSlot) return 0;
        Page p = page(s);
        return p.gen[s & MASK] == (int) (id >>> 32) && p.lookups[s & MASK] != 0 ? s : 0;
    }

    private int slot(KNode n) { return n == null ? 0 : slot(n.id); }

    synchronized KNode get(long id) {
        return slot(id) == 0 ? null : new KNode(id);
    }

    /** A new node in a free slot, with no references yet. */
    private int add(int parent, String name) {
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
    private void drop(int s) {
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
    private void name(int s, String name) {
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
    private void unname(int s) {
        Page p = page(s);
        int i = s & MASK;
        if (s == ROOT || p.nameAt[i] < 0) return;
        names.free(p.nameLen[i]);
        p.nameAt[i] = -1;
        p.nameLen[i] = 0;
        p.parent[i] = 0;
        if (names.wantsCompaction()) compactNames();
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

    /** The children of a directory node, or null. */
    private Children kids(int dir) {
        NodeExtra e = extras.get(dir);
        return e == null ? null : e.children;
    }

    /** The children of a directory node, made if there are none. */
    private Children kidsFor(int dir) {
        NodeExtra e = extra(dir);
        if (e.children == null) e.children = new Children();
        return e.children;
    }

    private NodeExtra extra(int s) {
        NodeExtra e = extras.get(s);
        if (e == null) extras.put(s, e = new NodeExtra());
        return e;
    }

    /**
     * A node's extra state, made on first use (the same object while the kernel holds the node; for
     * one it forgot, a new one that nothing keeps).
     */
    synchronized NodeExtra x(KNode n) {
        int s = slot(n);
        return s == 0 ? new NodeExtra() : extra(s);
    }

    /**
     * Takes a node's extra state out once nothing is in it (FileOps#closeOpenFile: its last open closed),
     * unless it is another than e by now: a file the kernel holds after a tar opened it needs none
     * (48 bytes a node, 2.5 MB for ten containers that each ran a find and a tar).
     */
    synchronized void dropIfIdle(KNode n, NodeExtra e) {
        int s = slot(n);
        if (s == 0 || extras.get(s) != e) return;
        synchronized (e) {
            if (!e.idle()) return;
            e.dropped = true;
        }
        extras.remove(s);
    }

    /** A node's extra state, or null (nothing is made). */
    synchronized NodeExtra xIfAny(KNode n) {
        int s = slot(n);
        return s == 0 ? null : extras.get(s);
    }

    int writablePassthrough(KNode n) { NodeExtra e = xIfAny(n); return e == null ? 0 : e.writablePassthrough; }
    /** Gives a node that is still held its {@link NodeExtra#removedFd}; false if it was forgotten or has one. */
    synchronized boolean keepRemoved(KNode n, int fd) {
        int s = slot(n);
        if (s == 0) return false;
        NodeExtra e = extra(s);
        if (e.removedFd >= 0) return false;
        e.removedFd = fd;
        return true;
    }
    byte[] removedStat(KNode n) { NodeExtra e = xIfAny(n); return e == null ? null : e.removedStat; }
    Listing listing(KNode n) { NodeExtra e = xIfAny(n); return e == null ? null : e.listing; }

    /** The kernel's references to a node (0 once forgotten). */
    synchronized long lookups(KNode n) {
        int s = slot(n);
        return s == 0 ? 0 : lookupsOf(s);
    }

    /** st_ino presented at the last reply about a node (0: none, or forgotten). */
    synchronized long ino(KNode n) {
        int s = slot(n);
        return s == 0 ? 0 : page(s).ino[s & MASK];
    }

    /** Records the st_ino of a reply about a node (getattr). */
    synchronized void setIno(KNode n, long ino) {
        int s = slot(n);
        if (s != 0) page(s).ino[s & MASK] = ino;
    }

    /** The mount path of a node ("/" or "/a/b"), or null if it (or a directory above it) was removed. */
    synchronized String path(KNode n) {
        int s = slot(n);
        if (s == 0) return null;
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

    /** The path of a name in a directory node, or null if the directory was removed. */
    String childPath(KNode dir, String name) {
        String p = path(dir);
        if (p == null) return null;
        return p.length() == 1 ? "/" + name : p + "/" + name;
    }

    /**
     * The node for a name the kernel is told about (lookup, create, readdirplus): the existing one or a
     * new one; counts one kernel reference. In a directory the kernel no longer holds, a new detached one.
     */
    synchronized KNode lookup(KNode dir, String name, long ino, boolean multiLinkFile) {
        return lookup(dir, name, ino, multiLinkFile, 0);
    }

    /**
     * As {@link #lookup(KNode, String, long, boolean)}; {@code upper}: the upper inode of a hard-linked
     * upper regular file (Union#upperLinkedInode), or 0. Such a name gets the node the kernel holds for
     * another name of that file, if there is one (the name becomes its alias), else becomes that file's node.
     */
    synchronized KNode lookup(KNode dir, String name, long ino, boolean multiLinkFile, long upper) {
        int d = slot(dir), c;
        if (d == 0) {
            c = add(0, null);
        } else {
            Children kids = kidsFor(d);
            c = kids.get(name);
            if (c != 0 && !ownerOf.isEmpty()) {
                Integer o = ownerOf.get(c);
                if (o != null) {
                    Long k = upperOf.get(o);
                    if (upper != 0 && k != null && k == upper) return counted(o, ino, multiLinkFile);
                    // the name is another file's now (changed behind the mount): the alias goes
                    kids.remove(c);
                    dropAlias(c);
                    c = 0;
                }
            }
            if (c == 0 && upper != 0) {
                Integer o = byUpper.get(upper);
                if (o != null) {
                    int a = add(d, name);
                    kids.add(a);
                    addAlias(o, a);
                    return counted(o, ino, multiLinkFile);
                }
            }
            if (c == 0) {
                c = add(d, name);
                kids.add(c);
            }
            Long had = upperOf.isEmpty() ? null : upperOf.get(c);
            if (had != null && had != upper) unshare(c);
            if (upper != 0 && had == null && !byUpper.containsKey(upper)) {
                byUpper.put(upper, c);
                upperOf.put(c, upper);
            }
        }
        return counted(c, ino, multiLinkFile);
    }

    /** One more kernel reference to node c, which was just told st_ino {@code ino}. */
    private KNode counted(int c, long ino, boolean multiLinkFile) {
        Page p = page(c);
        setLookups(c, lookupsOf(c) + 1);
        if (p.ino[c & MASK] != ino) {
            unlink(c);
            p.ino[c & MASK] = ino;
        }
        KNode k = handle(c);
        if (multiLinkFile) {
            List<KNode> l = linked.computeIfAbsent(ino, x -> new ArrayList<>(2));
            if (!l.contains(k)) l.add(k);
        }
        return k;
    }

    /**
     * LINK succeeded: the new name {@code name} in {@code dir} is another name of node {@code old}'s
     * file, which is a regular file in the upper layer now. It gets {@code old}'s node (one kernel
     * reference more), as the kernel overlay's link gives the new dentry the old inode: as that node's
     * name if it has none (an O_TMPFILE file, a removed name still open), else as an alias, where the
     * file is a hard link of the upper ({@code upper}: its upper inode) and no other node shares it.
     * Null where it cannot: the caller gives the name a node of its own ({@link #lookup}).
     */
    synchronized KNode link(KNode old, KNode dir, String name, long ino, long upper, boolean multiLinkFile) {
        int o = slot(old), d = slot(dir);
        if (o == 0 || d == 0 || o == ROOT || ownerOf.containsKey(o)) return null;
        Children kids = kidsFor(d);
        if (kids.get(name) != 0) return null;
        Long had = upperOf.get(o);
        if (had != null ? upper != had : upper != 0 && byUpper.containsKey(upper)) return null;
        if (detached(o)) {
            // an unnamed node: the name is its own (what a removal left is of no use now)
            page(o).parent[o & MASK] = d;
            name(o, name);
            kids.add(o);
            NodeExtra e = extras.get(o);
            if (e != null) e.removedStat = null;
        } else {
            if (upper == 0) return null;
            int a = add(d, name);
            kids.add(a);
            addAlias(o, a);
        }
        if (upper != 0 && had == null) {
            byUpper.put(upper, o);
            upperOf.put(o, upper);
        }
        return counted(o, ino, multiLinkFile);
    }

    /** Whether the kernel's node for a file is shared by all its names (a hard-linked upper file's). */
    synchronized boolean shared(KNode n) {
        int s = slot(n);
        return s != 0 && upperOf.containsKey(s);
    }

    /** The node a name's slot stands for: its owner's for an alias. */
    private int owner(int c) {
        if (c == 0 || ownerOf.isEmpty()) return c;
        Integer o = ownerOf.get(c);
        return o == null ? c : o;
    }

    private void addAlias(int o, int a) {
        ownerOf.put(a, o);
        int[] l = aliasesOf.get(o);
        if (l == null) {
            l = new int[]{a};
        } else {
            l = java.util.Arrays.copyOf(l, l.length + 1);
            l[l.length - 1] = a;
        }
        aliasesOf.put(o, l);
    }

    /** Frees an alias slot, already taken out of its directory's children. */
    private void dropAlias(int a) {
        Integer o = ownerOf.get(a);
        if (o != null) {
            int[] l = aliasesOf.get(o);
            if (l != null) {
                int n = 0;
                for (int x : l) if (x != a) l[n++] = x;
                if (n == 0) aliasesOf.remove(o);
                else aliasesOf.put(o, java.util.Arrays.copyOf(l, n));
            }
        }
        freeAlias(a);
    }

    /** Frees a slot that was an alias (its owner's list of aliases is the caller's). */
    private void freeAlias(int a) {
        ownerOf.remove(a);
        unname(a);
        drop(a);
    }

    /** The node's file no longer shares it: its aliases go, its upper inode is free for another. */
    private void unshare(int o) {
        int[] l = aliasesOf.get(o);
        if (l != null) {
            for (int a : l) {
                Children kids = detached(a) ? null : kids(parentOf(a));
                if (kids != null) kids.remove(a);
                freeAlias(a);
            }
            aliasesOf.remove(o);
        }
        Long k = upperOf.remove(o);
        if (k != null && byUpper.get(k) == o) byUpper.remove(k);
    }

    /**
     * The owner o of a shared node lost its own name (taken out of its directory, unnamed): it takes the
     * name of one of its aliases, which goes. Whether there was one.
     */
    private boolean promote(int o) {
        int[] l = aliasesOf.get(o);
        if (l == null) return false;
        int a = l[l.length - 1];
        Children kids = detached(a) ? null : kids(parentOf(a));
        if (kids == null) { // not reachable: an alias is in its directory until it goes
            dropAlias(a);
            return promote(o);
        }
        kids.remove(a);
        Page pa = page(a), po = page(o);
        po.parent[o & MASK] = pa.parent[a & MASK];
        po.nameAt[o & MASK] = pa.nameAt[a & MASK];
        po.nameLen[o & MASK] = pa.nameLen[a & MASK];
        pa.nameAt[a & MASK] = -1; // the name is o's now: not freed with the alias
        pa.nameLen[a & MASK] = 0;
        kids.add(o);
        dropAlias(a);
        return true;
    }

    /** A directory node goes: the aliases among its children go with it (the other nodes stay detached). */
    private void dropAliasesIn(int dir) {
        Children kids = kids(dir);
        if (kids == null || ownerOf.isEmpty()) return;
        for (int c : kids.slots()) {
            if (ownerOf.containsKey(c)) {
                kids.remove(c);
                dropAlias(c);
            }
        }
    }

    /** Records that a node names a file with several names (after a link through the mount). */
    synchronized void markLinked(KNode n, long ino) {
        int c = slot(n);
        if (c == 0) return;
        Page p = page(c);
        if (p.ino[c & MASK] != ino) {
            unlink(c);
            p.ino[c & MASK] = ino;
        }
        List<KNode> l = linked.computeIfAbsent(ino, x -> new ArrayList<>(2));
        if (!l.contains(n)) l.add(n);
    }

    /** A node with no name (an O_TMPFILE file), one kernel reference. */
    synchronized KNode anonymous(long ino) {
        int c = add(0, null);
        Page p = page(c);
        setLookups(c, 1);
        p.ino[c & MASK] = ino;
        return handle(c);
    }

    /** The kernel dropped {@code n} references to a node. */
    synchronized void forget(long id, long n) {
        int c = slot(id);
        if (c == 0 || c == ROOT) return;
        long left = lookupsOf(c) - n;
        if (left > 0) {
            setLookups(c, left);
            return;
        }
        unlink(c);
        if (!upperOf.isEmpty()) unshare(c);
        dropAliasesIn(c);
        int d = parentOf(c);
        Children kids = detached(c) || d == 0 ? null : kids(d);
        if (kids != null && kids.remove(c) && kids.size() == 0) extras.get(d).children = null;
        unname(c);
        drop(c);
    }

    private void unlink(int c) {
        long ino = page(c).ino[c & MASK];
        if (ino == 0) return;
        List<KNode> l = linked.get(ino);
        if (l != null && l.remove(handle(c)) && l.isEmpty()) linked.remove(ino);
    }

    /** The node the kernel holds for a name, if any (no reference is counted). */
    synchronized KNode peek(KNode dir, String name) {
        int d = slot(dir);
        Children kids = d == 0 ? null : kids(d);
        int c = kids == null ? 0 : owner(kids.get(name));
        return c == 0 ? null : handle(c);
    }

    /**
     * A name was removed: its node (if the kernel knows it) keeps its id but no longer has a path; null
     * where the kernel holds no node for it, or where the node keeps a path through another name of its file.
     */
    synchronized KNode remove(KNode dir, String name) {
        int d = slot(dir);
        Children kids = d == 0 ? null : kids(d);
        int c = kids == null ? 0 : kids.remove(name);
        if (c == 0) return null;
        if (ownerOf.containsKey(c)) {
            dropAlias(c);
            return null;
        }
        unname(c);
        if (promote(c)) return null;
        if (!upperOf.isEmpty()) unshare(c); // the file has no name the kernel holds a node for
        return handle(c);
    }

    /**
     * A rename succeeded: the source node takes the new name; a node there before is detached (or
     * swapped). Returns the node that was replaced (detached), or null.
     */
    synchronized KNode rename(KNode fromDir, String fromName, KNode toDir, String toName, boolean exchange) {
        int fd = slot(fromDir), td = slot(toDir);
        Children fromKids = fd == 0 ? null : kids(fd), toKids = td == 0 ? null : kids(td);
        int src = fromKids == null ? 0 : fromKids.remove(fromName);
        int dst = toKids == null ? 0 : toKids.remove(toName);
        if (src != 0 && dst != 0 && owner(src) == owner(dst)) {
            // two names of one file: rename(2) does nothing, both names stay
            fromKids.add(src);
            toKids.add(dst);
            return null;
        }
        if (dst != 0 && !exchange && ownerOf.containsKey(dst)) {
            dropAlias(dst); // another name of a file whose node has a name
            dst = 0;
        }
        boolean promoted = false;
        if (dst != 0) {
            unname(dst);
            if (!exchange) {
                promoted = promote(dst);
                if (!promoted && !upperOf.isEmpty()) unshare(dst);
            } else if (fd != 0) {
                page(dst).parent[dst & MASK] = fd;
                name(dst, fromName);
                kidsFor(fd).add(dst);
            } else if (ownerOf.containsKey(dst)) {
                dropAlias(dst);
            }
        }
        if (src != 0) {
            unname(src);
            if (td != 0) {
                page(src).parent[src & MASK] = td;
                name(src, toName);
                kidsFor(td).add(src);
            } else if (ownerOf.containsKey(src)) {
                dropAlias(src);
            } else if (!promote(src) && !upperOf.isEmpty()) {
                unshare(src);
            }
        }
        return exchange || dst == 0 || promoted ? null : handle(dst);
    }

    /**
     * Whether another name of a multi-link file has passthrough opens: the kernel writes those itself,
     * so strata cannot invalidate what it caches about this name (such a file got its second name
     * while open; later opens of it have direct I/O).
     */
    synchronized boolean passthroughElsewhere(long ino, KNode except) {
        List<KNode> l = linked.get(ino);
        if (l == null) return false;
        for (KNode k : l) {
            if (k.equals(except)) continue;
            int s = slot(k);
            NodeExtra e = s == 0 ? null : extras.get(s);
            if (e != null && e.passthroughOpens > 0) return true;
        }
        return false;
    }

    /**
     * Whether the kernel holds another node of this multi-link file: a name it looked up while the file
     * had several, or one since removed or renamed over that an open descriptor still holds (the file may
     * have one name left, yet the kernel caches its size and pages under both nodes).
     */
    synchronized boolean hasSiblings(long ino, KNode except) {
        List<KNode> l = linked.get(ino);
        if (l == null) return false;
        for (KNode k : l) if (!k.equals(except)) return true;
        return false;
    }

    /** Node ids of the other names of a multi-link file (for attribute invalidation). */
    synchronized long[] siblings(long ino, KNode except) {
        List<KNode> l = linked.get(ino);
        if (l == null) return EMPTY;
        long[] out = new long[l.size()];
        int n = 0;
        for (KNode k : l) if (!k.equals(except)) out[n++] = k.id;
        return n == out.length ? out : java.util.Arrays.copyOf(out, n);
    }

    /** The node the kernel holds for a mount path, if any (no reference is counted). */
    synchronized KNode find(String path) {
        int c = ROOT;
        int i = 1, len = path.length();
        while (i < len) {
            int j = path.indexOf('/', i);
            if (j < 0) j = len;
            Children kids = kids(c);
            if (kids == null) return null;
            c = kids.get(path.substring(i, j));
            if (c == 0) return null;
            i = j + 1;
        }
        return handle(owner(c));
    }

    NamePool namesForTests() { return names; }

    synchronized void setLookupsForTests(KNode n, long v) { setLookups(slot(n), v); }

    private static final long[] EMPTY = new long[0];
}
