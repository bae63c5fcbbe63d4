package dev.strata.fuse.kernel;

import dev.strata.fuse.kernel.NodeTable.Children;

import java.util.HashMap;

/**
 * The names of one upper regular file (a hard link in the upper layer) that share one node in
 * {@link Inodes} (see there): which node stands for which upper inode, and the alias slots of its other
 * names, kept in the slots of the {@link NodeTable} it is made with. Not thread-safe: called under the
 * Inodes lock only (Inodes' synchronized methods), and takes no lock itself.
 */
final class SharedNames {
    private final NodeTable table;
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

    SharedNames(NodeTable table) { this.table = table; }

    /** Whether any slot is an alias. */
    boolean anyAliases() { return !ownerOf.isEmpty(); }

    /** Whether any node is shared (stands for an upper inode). */
    boolean anyShared() { return !upperOf.isEmpty(); }

    /** Whether a slot is an alias. */
    boolean isAlias(int c) { return ownerOf.containsKey(c); }

    /** The owner of an alias slot, or null. */
    Integer ownerOfAlias(int a) { return ownerOf.get(a); }

    /** Whether a node is shared. */
    boolean isShared(int o) { return upperOf.containsKey(o); }

    /** The upper inode a shared node stands for, or null. */
    Long upperOf(int o) { return upperOf.get(o); }

    /** The node that stands for an upper inode, or null. */
    Integer nodeOfUpper(long upper) { return byUpper.get(upper); }

    /** Whether a node stands for an upper inode. */
    boolean hasUpper(long upper) { return byUpper.containsKey(upper); }

    /** Node o stands for upper inode {@code upper} from now on (neither is in the maps yet). */
    void share(int o, long upper) {
        byUpper.put(upper, o);
        upperOf.put(o, upper);
    }

    /** The node a name's slot stands for: its owner's for an alias. */
    int owner(int c) {
        if (c == 0 || ownerOf.isEmpty()) return c;
        Integer o = ownerOf.get(c);
        return o == null ? c : o;
    }

    void addAlias(int o, int a) {
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
    void dropAlias(int a) {
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
        table.unname(a);
        table.drop(a);
    }

    /** The node's file no longer shares it: its aliases go, its upper inode is free for another. */
    void unshare(int o) {
        int[] l = aliasesOf.get(o);
        if (l != null) {
            for (int a : l) {
                Children kids = table.detached(a) ? null : table.kids(table.parentOf(a));
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
    boolean promote(int o) {
        int[] l = aliasesOf.get(o);
        if (l == null) return false;
        int a = l[l.length - 1];
        Children kids = table.detached(a) ? null : table.kids(table.parentOf(a));
        if (kids == null) { // not reachable: an alias is in its directory until it goes
            dropAlias(a);
            return promote(o);
        }
        kids.remove(a);
        table.takeName(o, a);
        kids.add(o);
        dropAlias(a);
        return true;
    }

    /** A directory node goes: the aliases among its children go with it (the other nodes stay detached). */
    void dropAliasesIn(int dir) {
        Children kids = table.kids(dir);
        if (kids == null || ownerOf.isEmpty()) return;
        for (int c : kids.slots()) {
            if (ownerOf.containsKey(c)) {
                kids.remove(c);
                dropAlias(c);
            }
        }
    }
}
