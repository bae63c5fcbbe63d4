package dev.strata.union;

import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The bound on the engine's node tree ({@link Node}s, the kernel's dentries): a policy, not a cliff.
 *
 * <p>Policy. An engine node is a cache of one lookup: its layers, type, presented inode number, impure
 * mark and listing are all read again from the layers by a new lookup of the same path, with the same
 * result (the presented st_ino comes from the lower inode or the upper's origin xattr, never from a
 * counter), so a node may be dropped whenever nothing but the cache refers to it. What the kernel
 * holds (node ids with their lookup counts, the kernel transport's {@code Inodes}) lives in the
 * transport and is never evicted there: the kernel names such an id by path, and a dropped engine
 * node is looked up again. What may not be dropped is state a new lookup cannot rebuild: a node an
 * open file uses (its {@code gone}/{@code deleted} marks must reach the open file when the name is
 * removed or renamed, so it must stay the node its path leads to), and so every directory above it.
 *
 * <p>Why not "drop on FORGET": the engine serves both transports, and libfuse 2's path-based API never
 * tells strata what the kernel forgot; and the kernel forgets little (with the long entry timeouts a
 * find leaves every entry in its dentry cache until memory pressure), so an engine tree kept in step
 * with the kernel's would hold as many nodes as the kernel: twice the memory of the transport's node
 * table, for lookups the kernel rarely repeats.
 *
 * <p>Unit: a directory's cached children. The bound counts nodes ({@code -Dstrata.nodeCache=N},
 * default {@link #DEFAULT_BOUND}); each directory whose children map holds nodes weighs 1 + their
 * number (capped at a quarter of the bound, so that one huge directory being listed is kept whole
 * rather than flushing everything else), and past the bound the directories least recently entered
 * are evicted: each loses the children nothing holds (not open, no cached children of their own),
 * then itself if emptied. A find visits one directory at a time, so it never loses the one it is in.
 *
 * <p>Cost: about 160 bytes of heap a cached node after a find (the node 64, its rel String about 64,
 * its slot in the directory's {@link Children} 8, its entry in the directory's packed listing about
 * 26), 10.6 MB at the default bound; 265 bytes (17.4 MB) with a ConcurrentHashMap of children and a
 * listing of Strings (class histograms after a find over 300,000 entries, 2026-12-06).
 *
 * <p>Why not caffeine (the project's cache library): tried first, per node and per directory, it did
 * not fit this tree. Per node, a readdir enters a whole directory's children at once, before their
 * first lookup, and caffeine's admission window (1% of the bound) handed most of them to its main
 * space, where a newcomer is admitted only if seen more often than the victim: they were rejected
 * before the lookups that follow reached them. Per directory, the directory being filled reaches
 * the sketch's top frequency after a few names, as the earlier ones did, and a tie goes to the
 * resident: the directory a find was in was evicted under it (a find over 300,000 entries ran
 * names looked up again: measured on a busy machine, the daemon used 5.1 s of CPU for a find over
 * 300,000 entries against 4.2-4.5 s with this LRU). Recency is what a tree walk needs; this is a
 * weighted LRU of a few hundred directories, under one lock.
 *
 * <p>Victims are only queued: an operation holds nodes while it runs (under the engine's shared
 * lock, or the exclusive one for a change) and must not see them leave the tree, so a daemon thread
 * drains the queue between operations, under the exclusive lock.
 */
final class NodeCache {
    /**
     * 65,536 nodes: a typical image (the benchmark stack's 63,317 entries) stays cached whole, so that
     * what reaches the engine for entries the kernel already holds (`ls -lR`'s getxattr, tar's opens)
     * finds its node; at 32,768, `ls -lR` of that stack took 2.41 s against 1.96 s (200,000: 1.87), for
     * 6 MB less after a find over 300,000 entries (113.6 against 119.9 MB resident; bench.sh compare and
     * tree, 2026-12-06).
     */
    static final int DEFAULT_BOUND = 65_536;
    /** How long without victims ends a walk (see {@link #drainLoop}). */
    static final long IDLE_MS = 1000;

    private final Overlay ovl;
    final int bound;
    private final int cap;
    /**
     * Directories whose children maps hold nodes, least recently entered first, with the weight each
     * had when last entered (1 + its cached children, capped). Under its own lock.
     */
    private final LinkedHashMap<Node, Integer> tracked = new LinkedHashMap<>(256, 0.75f, true);
    private long weight;
    private final ConcurrentLinkedQueue<Node> victims = new ConcurrentLinkedQueue<>();
    private Thread drainer;
    private volatile boolean closed;
    /** Nodes dropped from the tree so far (for tests). */
    final AtomicInteger dropped = new AtomicInteger();

    NodeCache(Overlay ovl, int bound) {
        this.ovl = ovl;
        this.bound = Math.max(bound, 16);
        this.cap = Math.max(1, this.bound / 4);
    }

    static int configuredBound() {
        String p = System.getProperty("strata.nodeCache");
        if (p == null) return DEFAULT_BOUND;
        try {
            return Integer.parseInt(p.trim());
        } catch (NumberFormatException e) {
            return DEFAULT_BOUND;
        }
    }

    /**
     * A node was entered in its directory's children map: the directory is weighed again and is the
     * most recent. Victims are dropped by the drainer, never here: an operation holding the exclusive
     * lock holds nodes too, and must not see them leave the tree (a link that resolved its source and
     * then its target directory got two nodes for one directory, and copied it up twice: ENOTEMPTY).
     */
    void entered(Node n) {
        Node dir = n.parent;
        if (dir == null) return;
        track(dir);
        if (!victims.isEmpty()) wakeDrainer();
    }

    /** Enters or refreshes a directory (most recent) and queues the least recent ones past the bound. */
    private synchronized void track(Node dir) {
        Children kids = dir.childrenIfAny();
        int w = Math.min(cap, 1 + (kids == null ? 0 : kids.size()));
        Integer old = tracked.put(dir, w);
        weight += w - (old == null ? 0 : old);
        if (weight <= bound) return;
        Iterator<Map.Entry<Node, Integer>> it = tracked.entrySet().iterator();
        while (weight > bound && it.hasNext()) {
            Map.Entry<Node, Integer> e = it.next();
            if (e.getKey() == dir) break; // the most recent: all others are out already
            weight -= e.getValue();
            victims.add(e.getKey());
            it.remove();
        }
    }

    private synchronized boolean isTracked(Node dir) {
        return tracked.containsKey(dir);
    }

    private synchronized void wakeDrainer() {
        if (closed) return;
        if (drainer == null) {
            drainer = new Thread(this::drainLoop, "strata-node-cache");
            drainer.setDaemon(true);
            drainer.start();
        }
        notifyAll();
    }

    /**
     * Drains the victims between operations. A walk is the time from the first victim to {@link #IDLE_MS}
     * without one: while it lasts the heap grows in large steps ({@link HeapSizing}); at its end the
     * heap is collected once: the walk grew the heap with what it then dropped, and a full collection
     * gives that memory back to the system, so the daemon's resident memory after a walk is about what
     * it holds; malloc_trim then returns the native memory the collection itself used (measured: 11 MB
     * left in a malloc arena after a full collection of a 60 MB heap).
     */
    private void drainLoop() {
        boolean walking = false;
        try {
            while (!closed) {
                synchronized (this) {
                    try {
                        if (walking && victims.isEmpty()) {
                            wait(IDLE_MS);
                            if (victims.isEmpty() && !closed) {
                                walking = false;
                                HeapSizing.walkEnds();
                                dev.strata.posix.Posix.mallocTrim(); // what the collection itself took (its mark stacks)
                            }
                        }
                        while (!closed && victims.isEmpty()) wait();
                    } catch (InterruptedException e) {
                        return;
                    }
                }
                if (closed) return;
                if (!walking) {
                    walking = true;
                    HeapSizing.walkBegins();
                }
                ovl.lock.writeLock().lock();
                try {
                    drain();
                } finally {
                    ovl.lock.writeLock().unlock();
                }
            }
        } finally {
            if (walking) HeapSizing.walkEnds();
        }
    }

    synchronized void close() {
        closed = true;
        notifyAll();
    }

    /**
     * Drops the children nothing holds of the queued directories, and each directory emptied so
     * (under the exclusive lock); returns how many nodes. A child an open file uses stays (and so its
     * directory); a child directory with cached children of its own stays until its own eviction.
     */
    int drain() {
        if (victims.isEmpty()) return 0;
        Set<Node> pinned = pinned();
        int count = 0;
        Node d;
        while ((d = victims.poll()) != null) {
            if (isTracked(d)) continue; // entered again since
            Children kids = d.childrenIfAny();
            if (kids == null) continue;
            for (Node c : kids.snapshot()) {
                if (pinned.contains(c)) continue;
                Children ck = c.childrenIfAny();
                if (ck != null && !ck.isEmpty()) continue;
                if (kids.remove(c)) count++;
            }
            d.listing = null;
            Node p = d.parent;
            if (kids.isEmpty() && p != null && !pinned.contains(d)) {
                Children siblings = p.childrenIfAny();
                if (siblings != null && siblings.remove(d)) count++;
            }
        }
        dropped.addAndGet(count);
        return count;
    }

    /** Drops the queued victims now (tests): takes the exclusive lock. */
    void drainNow() {
        ovl.lock.writeLock().lock();
        try {
            drain();
        } finally {
            ovl.lock.writeLock().unlock();
        }
    }

    /** Takes every tracked directory as a victim and drains (tests: eviction of everything it may drop). */
    void evictAllNow() {
        ovl.lock.writeLock().lock();
        try {
            evictAll();
        } finally {
            ovl.lock.writeLock().unlock();
        }
    }

    /**
     * The same for a mount that has been quiet a while ({@link Union#dropCachedNodes}), if no operation
     * holds the engine's lock now: returns how many nodes went, or -1 if the lock was taken (the caller
     * tries again later rather than wait behind a long operation, a copy-up of a large file say).
     */
    int evictAllIfFree() {
        if (!ovl.lock.writeLock().tryLock()) return -1;
        try {
            return evictAll();
        } finally {
            ovl.lock.writeLock().unlock();
        }
    }

    /**
     * Every tracked directory as a victim, the deepest first: a directory drops its children only once
     * theirs are gone (see {@link #drain}), so in any other order a directory could keep an emptied
     * child directory, and itself, until it was entered again.
     */
    private int evictAll() {
        synchronized (this) {
            java.util.List<Node> dirs = new java.util.ArrayList<>(tracked.keySet());
            dirs.sort(java.util.Comparator.comparingInt(NodeCache::depth).reversed());
            victims.addAll(dirs);
            tracked.clear();
            weight = 0;
        }
        return drain();
    }

    private static int depth(Node n) {
        int d = 0;
        for (Node p = n.parent; p != null; p = p.parent) d++;
        return d;
    }

    /** Nodes open files use (under the exclusive lock, so no open or close runs meanwhile). */
    private Set<Node> pinned() {
        OpenFiles f = ovl.files;
        if (f.openFiles.isEmpty() && f.lowerHandles.isEmpty() && f.hidden.isEmpty()) return Collections.emptySet();
        Set<Node> s = Collections.newSetFromMap(new IdentityHashMap<>());
        s.addAll(f.openFiles.values());
        for (OpenFiles.LowerHandle h : f.lowerHandles.values()) s.add(h.node);
        s.addAll(f.hidden.values());
        return s;
    }
}
