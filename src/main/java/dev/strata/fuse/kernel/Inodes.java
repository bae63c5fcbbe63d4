package dev.strata.fuse.kernel;

import dev.strata.fuse.kernel.NodeTable.Children;

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
 *
 * <p>The parts: the nodes' columns, free slots, names and directory children are the slot table
 * ({@link NodeTable}); which node a hard-linked upper file's names share, and their alias slots, are
 * {@link SharedNames}. This class keeps the operations the kernel transport calls, which combine them,
 * the other names of a multi-link file by inode number, and the one lock: the two are not thread-safe
 * and are used only under this object's monitor (its synchronized methods).
 */
final class Inodes {
    /**
     * A node id the kernel holds, as a handle: what is known about it is in the table's columns (see
     * {@link NodeTable}). Handles are made per request and are equal when their ids are; one whose id the
     * kernel has forgotten names nothing (the table's methods treat it as detached).
     */
    static final class KNode {
        final long id;

        KNode(long id) { this.id = id; }

        @Override public boolean equals(Object o) { return o instanceof KNode && ((KNode) o).id == id; }
        @Override public int hashCode() { return Long.hashCode(id); }
        @Override public String toString() { return "node " + id; }
    }

    /** Releases an {@link NodeExtra#removedFd} when its node is dropped (set by KernelFS; called under this lock). */
    java.util.function.IntConsumer releaseRemoved = fd -> { };
    /** The nodes (see {@link NodeTable}); under this object's lock. */
    private final NodeTable table = new NodeTable(fd -> releaseRemoved.accept(fd));
    /** Non-directories shown with st_nlink > 1, by inode number: every node id that names them. */
    private final HashMap<Long, List<KNode>> linked = new HashMap<>();
    /** The nodes the names of a hard-linked upper file share (see {@link SharedNames}); under this object's lock. */
    private final SharedNames sharedNames = new SharedNames(table);
    final KNode root;
    private static final int ROOT = Proto.ROOT_ID;

    Inodes() {
        root = new KNode(ROOT);
    }

    synchronized KNode get(long id) {
        return table.slot(id) == 0 ? null : new KNode(id);
    }

    /**
     * A node's extra state, made on first use (the same object while the kernel holds the node; for
     * one it forgot, a new one that nothing keeps).
     */
    synchronized NodeExtra x(KNode n) {
        int s = table.slot(n);
        return s == 0 ? new NodeExtra() : table.extra(s);
    }

    /**
     * Takes a node's extra state out once nothing is in it (FileOps#closeOpenFile: its last open closed),
     * unless it is another than e by now: a file the kernel holds after a tar opened it needs none
     * (48 bytes a node, 2.5 MB for ten containers that each ran a find and a tar).
     */
    synchronized void dropIfIdle(KNode n, NodeExtra e) {
        int s = table.slot(n);
        if (s == 0 || table.extraIfAny(s) != e) return;
        synchronized (e) {
            if (!e.idle()) return;
            e.dropped = true;
        }
        table.dropExtra(s);
    }

    /** A node's extra state, or null (nothing is made). */
    synchronized NodeExtra xIfAny(KNode n) {
        int s = table.slot(n);
        return s == 0 ? null : table.extraIfAny(s);
    }

    int writablePassthrough(KNode n) { NodeExtra e = xIfAny(n); return e == null ? 0 : e.writablePassthrough; }
    /** Gives a node that is still held its {@link NodeExtra#removedFd}; false if it was forgotten or has one. */
    synchronized boolean keepRemoved(KNode n, int fd) {
        int s = table.slot(n);
        if (s == 0) return false;
        NodeExtra e = table.extra(s);
        if (e.removedFd >= 0) return false;
        e.removedFd = fd;
        return true;
    }
    byte[] removedStat(KNode n) { NodeExtra e = xIfAny(n); return e == null ? null : e.removedStat; }
    Listing listing(KNode n) { NodeExtra e = xIfAny(n); return e == null ? null : e.listing; }

    /** The kernel's references to a node (0 once forgotten). */
    synchronized long lookups(KNode n) {
        int s = table.slot(n);
        return s == 0 ? 0 : table.lookupsOf(s);
    }

    /** st_ino presented at the last reply about a node (0: none, or forgotten). */
    synchronized long ino(KNode n) {
        int s = table.slot(n);
        return s == 0 ? 0 : table.ino(s);
    }

    /** Records the st_ino of a reply about a node (getattr). */
    synchronized void setIno(KNode n, long ino) {
        int s = table.slot(n);
        if (s != 0) table.setIno(s, ino);
    }

    /** The mount path of a node ("/" or "/a/b"), or null if it (or a directory above it) was removed. */
    synchronized String path(KNode n) {
        int s = table.slot(n);
        if (s == 0) return null;
        return table.path(s);
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
        int d = table.slot(dir), c;
        if (d == 0) {
            c = table.add(0, null);
        } else {
            Children kids = table.kidsFor(d);
            c = kids.get(name);
            if (c != 0 && sharedNames.anyAliases()) {
                Integer o = sharedNames.ownerOfAlias(c);
                if (o != null) {
                    Long k = sharedNames.upperOf(o);
                    if (upper != 0 && k != null && k == upper) return counted(o, ino, multiLinkFile);
                    // the name is another file's now (changed behind the mount): the alias goes
                    kids.remove(c);
                    sharedNames.dropAlias(c);
                    c = 0;
                }
            }
            if (c == 0 && upper != 0) {
                Integer o = sharedNames.nodeOfUpper(upper);
                if (o != null) {
                    int a = table.add(d, name);
                    kids.add(a);
                    sharedNames.addAlias(o, a);
                    return counted(o, ino, multiLinkFile);
                }
            }
            if (c == 0) {
                c = table.add(d, name);
                kids.add(c);
            }
            Long had = sharedNames.anyShared() ? sharedNames.upperOf(c) : null;
            if (had != null && had != upper) sharedNames.unshare(c);
            if (upper != 0 && had == null && !sharedNames.hasUpper(upper)) sharedNames.share(c, upper);
        }
        return counted(c, ino, multiLinkFile);
    }

    /** One more kernel reference to node c, which was just told st_ino {@code ino}. */
    private KNode counted(int c, long ino, boolean multiLinkFile) {
        table.setLookups(c, table.lookupsOf(c) + 1);
        if (table.ino(c) != ino) {
            unlink(c);
            table.setIno(c, ino);
        }
        KNode k = table.handle(c);
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
        int o = table.slot(old), d = table.slot(dir);
        if (o == 0 || d == 0 || o == ROOT || sharedNames.isAlias(o)) return null;
        Children kids = table.kidsFor(d);
        if (kids.get(name) != 0) return null;
        Long had = sharedNames.upperOf(o);
        if (had != null ? upper != had : upper != 0 && sharedNames.hasUpper(upper)) return null;
        if (table.detached(o)) {
            // an unnamed node: the name is its own (what a removal left is of no use now)
            table.setParent(o, d);
            table.name(o, name);
            kids.add(o);
            NodeExtra e = table.extraIfAny(o);
            if (e != null) e.removedStat = null;
        } else {
            if (upper == 0) return null;
            int a = table.add(d, name);
            kids.add(a);
            sharedNames.addAlias(o, a);
        }
        if (upper != 0 && had == null) sharedNames.share(o, upper);
        return counted(o, ino, multiLinkFile);
    }

    /** Whether the kernel's node for a file is shared by all its names (a hard-linked upper file's). */
    synchronized boolean shared(KNode n) {
        int s = table.slot(n);
        return s != 0 && sharedNames.isShared(s);
    }

    /** Records that a node names a file with several names (after a link through the mount). */
    synchronized void markLinked(KNode n, long ino) {
        int c = table.slot(n);
        if (c == 0) return;
        if (table.ino(c) != ino) {
            unlink(c);
            table.setIno(c, ino);
        }
        List<KNode> l = linked.computeIfAbsent(ino, x -> new ArrayList<>(2));
        if (!l.contains(n)) l.add(n);
    }

    /** A node with no name (an O_TMPFILE file), one kernel reference. */
    synchronized KNode anonymous(long ino) {
        int c = table.add(0, null);
        table.setLookups(c, 1);
        table.setIno(c, ino);
        return table.handle(c);
    }

    /** The kernel dropped {@code n} references to a node. */
    synchronized void forget(long id, long n) {
        int c = table.slot(id);
        if (c == 0 || c == ROOT) return;
        long left = table.lookupsOf(c) - n;
        if (left > 0) {
            table.setLookups(c, left);
            return;
        }
        unlink(c);
        if (sharedNames.anyShared()) sharedNames.unshare(c);
        sharedNames.dropAliasesIn(c);
        int d = table.parentOf(c);
        Children kids = table.detached(c) || d == 0 ? null : table.kids(d);
        if (kids != null && kids.remove(c) && kids.size() == 0) table.extraIfAny(d).children = null;
        table.unname(c);
        table.drop(c);
    }

    private void unlink(int c) {
        long ino = table.ino(c);
        if (ino == 0) return;
        List<KNode> l = linked.get(ino);
        if (l != null && l.remove(table.handle(c)) && l.isEmpty()) linked.remove(ino);
    }

    /** The node the kernel holds for a name, if any (no reference is counted). */
    synchronized KNode peek(KNode dir, String name) {
        int d = table.slot(dir);
        Children kids = d == 0 ? null : table.kids(d);
        int c = kids == null ? 0 : sharedNames.owner(kids.get(name));
        return c == 0 ? null : table.handle(c);
    }

    /**
     * A name was removed: its node (if the kernel knows it) keeps its id but no longer has a path; null
     * where the kernel holds no node for it, or where the node keeps a path through another name of its file.
     */
    synchronized KNode remove(KNode dir, String name) {
        int d = table.slot(dir);
        Children kids = d == 0 ? null : table.kids(d);
        int c = kids == null ? 0 : kids.remove(name);
        if (c == 0) return null;
        if (sharedNames.isAlias(c)) {
            sharedNames.dropAlias(c);
            return null;
        }
        table.unname(c);
        if (sharedNames.promote(c)) return null;
        if (sharedNames.anyShared()) sharedNames.unshare(c); // the file has no name the kernel holds a node for
        return table.handle(c);
    }

    /**
     * A rename succeeded: the source node takes the new name; a node there before is detached (or
     * swapped). Returns the node that was replaced (detached), or null.
     */
    synchronized KNode rename(KNode fromDir, String fromName, KNode toDir, String toName, boolean exchange) {
        int fd = table.slot(fromDir), td = table.slot(toDir);
        Children fromKids = fd == 0 ? null : table.kids(fd), toKids = td == 0 ? null : table.kids(td);
        int src = fromKids == null ? 0 : fromKids.remove(fromName);
        int dst = toKids == null ? 0 : toKids.remove(toName);
        if (src != 0 && dst != 0 && sharedNames.owner(src) == sharedNames.owner(dst)) {
            // two names of one file: rename(2) does nothing, both names stay
            fromKids.add(src);
            toKids.add(dst);
            return null;
        }
        if (dst != 0 && !exchange && sharedNames.isAlias(dst)) {
            sharedNames.dropAlias(dst); // another name of a file whose node has a name
            dst = 0;
        }
        boolean promoted = false;
        if (dst != 0) {
            table.unname(dst);
            if (!exchange) {
                promoted = sharedNames.promote(dst);
                if (!promoted && sharedNames.anyShared()) sharedNames.unshare(dst);
            } else if (fd != 0) {
                table.setParent(dst, fd);
                table.name(dst, fromName);
                table.kidsFor(fd).add(dst);
            } else if (sharedNames.isAlias(dst)) {
                sharedNames.dropAlias(dst);
            }
        }
        if (src != 0) {
            table.unname(src);
            if (td != 0) {
                table.setParent(src, td);
                table.name(src, toName);
                table.kidsFor(td).add(src);
            } else if (sharedNames.isAlias(src)) {
                sharedNames.dropAlias(src);
            } else if (!sharedNames.promote(src) && sharedNames.anyShared()) {
                sharedNames.unshare(src);
            }
        }
        return exchange || dst == 0 || promoted ? null : table.handle(dst);
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
            int s = table.slot(k);
            NodeExtra e = s == 0 ? null : table.extraIfAny(s);
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
            Children kids = table.kids(c);
            if (kids == null) return null;
            c = kids.get(path.substring(i, j));
            if (c == 0) return null;
            i = j + 1;
        }
        return table.handle(sharedNames.owner(c));
    }

    NamePool namesForTests() { return table.namesForTests(); }

    synchronized void setLookupsForTests(KNode n, long v) { table.setLookups(table.slot(n), v); }

    private static final long[] EMPTY = new long[0];
}
