package dev.strata.union;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import com.github.benmanes.caffeine.cache.RemovalCause;

import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
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
 * <p>Unit: a directory's cached children. Caffeine bounds the directories whose children maps hold
 * nodes, each weighing the number of its cached children (capped at a quarter of the bound, so that
 * one huge directory being listed is kept whole rather than flushing everything else), with its
 * W-TinyLFU policy over the lookups in each directory. Per node it did not fit: a readdir enters a
 * whole directory's children at once, before their first lookup, and the admission window (1% of the
 * bound) rejected most of them before the lookups that follow reached them (a cold find then looked
 * everything up twice). An evicted directory loses the children nothing holds (not open, no cached
 * children of their own), then itself if emptied. Bound: {@code -Dstrata.nodeCache=N} nodes (default
 * {@link #DEFAULT_BOUND}).
 *
 * <p>Caffeine only queues its victims: lookups run under the engine's shared lock and a node must not
 * leave the tree while another lookup uses it, so the queue is drained under the exclusive lock, by a
 * mutation that already holds it or by a daemon thread.
 */
final class NodeCache {
    static final int DEFAULT_BOUND = 32_768;

    private final Overlay ovl;
    final int bound;
    private final Cache<Node, Boolean> tracked;
    private final ConcurrentLinkedQueue<Node> victims = new ConcurrentLinkedQueue<>();
    private Thread drainer;
    private volatile boolean closed;
    /** Nodes dropped from the tree so far (for tests). */
    final AtomicInteger dropped = new AtomicInteger();

    NodeCache(Overlay ovl, int bound) {
        this.ovl = ovl;
        this.bound = Math.max(bound, 16);
        int cap = Math.max(1, this.bound / 4);
        tracked = Caffeine.newBuilder()
                .maximumWeight(this.bound)
                .weigher((Node d, Boolean v) -> {
                    ConcurrentHashMap<String, Node> kids = d.childrenIfAny();
                    return Math.min(cap, 1 + (kids == null ? 0 : kids.size()));
                })
                .executor(Runnable::run) // eviction decided on the calling thread; it only queues
                .evictionListener((Node d, Boolean v, RemovalCause c) -> {
                    if (c.wasEvicted() && d != null) victims.add(d);
                })
                .build();
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
     * A node was entered in its directory's children map: the directory is weighed again. Victims
     * caffeine picks meanwhile are dropped here under the exclusive lock, else by the drainer.
     */
    void entered(Node n) {
        Node dir = n.parent;
        if (dir == null) return;
        tracked.put(dir, Boolean.TRUE);
        if (victims.isEmpty()) return;
        if (ovl.lock.isWriteLockedByCurrentThread()) drain();
        else wakeDrainer();
    }

    /** A lookup found a child of dir in the cache (recency for the policy). */
    void hit(Node dir) {
        tracked.getIfPresent(dir);
    }

    /** The cached children of the tracked directories, by their weights when last entered (for tests). */
    long weight() {
        tracked.cleanUp();
        return tracked.policy().eviction().map(e -> e.weightedSize().orElse(0)).orElse(0L);
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

    private void drainLoop() {
        while (!closed) {
            synchronized (this) {
                try {
                    while (!closed && victims.isEmpty()) wait();
                } catch (InterruptedException e) {
                    return;
                }
            }
            if (closed) return;
            ovl.lock.writeLock().lock();
            try {
                drain();
            } finally {
                ovl.lock.writeLock().unlock();
            }
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
            if (tracked.getIfPresent(d) != null) continue; // entered again since
            ConcurrentHashMap<String, Node> kids = d.childrenIfAny();
            if (kids == null) continue;
            for (Node c : kids.values()) {
                if (pinned.contains(c)) continue;
                ConcurrentHashMap<String, Node> ck = c.childrenIfAny();
                if (ck != null && !ck.isEmpty()) continue;
                if (kids.remove(c.name(), c)) count++;
            }
            d.listing = null;
            Node p = d.parent;
            if (kids.isEmpty() && p != null && !pinned.contains(d)) {
                ConcurrentHashMap<String, Node> siblings = p.childrenIfAny();
                if (siblings != null && siblings.remove(d.name(), d)) count++;
            }
        }
        dropped.addAndGet(count);
        return count;
    }

    /** Lets caffeine pick its victims now and drops them (tests): takes the exclusive lock. */
    void drainNow() {
        tracked.cleanUp();
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
            victims.addAll(tracked.asMap().keySet());
            tracked.invalidateAll();
            drain();
        } finally {
            ovl.lock.writeLock().unlock();
        }
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
