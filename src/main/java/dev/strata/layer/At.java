package dev.strata.layer;

import dev.strata.posix.Errno;
import dev.strata.posix.Posix;
import dev.strata.posix.ServingThread;

/**
 * A place to make one *at call: a directory descriptor and one name in it. A path below a layer root
 * is resolved to its parent directory without following any symlink on the way (and never leaving
 * the layer): openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) where the kernel has it (5.6+), else
 * one O_NOFOLLOW open per component. The final name is left to the call, which must not follow it
 * either (AT_SYMLINK_NOFOLLOW, O_NOFOLLOW). Parents longer than {@link Layer#PIECE} are opened piece
 * by piece so no call sees more than PATH_MAX.
 */
public final class At implements AutoCloseable {
    private static final long RESOLVE = Posix.RESOLVE_BENEATH | Posix.RESOLVE_NO_SYMLINKS | Posix.RESOLVE_NO_MAGICLINKS;
    private static final int DIR_FLAGS = Posix.O_PATH | Posix.O_DIRECTORY | Posix.O_NOFOLLOW;

    private final int dirfd;
    private final String name;
    private final boolean owned;
    private final int err;
    /** Borrowed from this thread's cache of the last parent directory (not closed, returned on close). */
    private final Cached borrowed;

    /**
     * The last few parent directories a thread opened, kept open: lookups and stats of the entries of
     * one directory (ls -l, find, a lookup across layers) then cost one call each, not three, and so do
     * requests that alternate between directories (a copy-up reads the lower parent and links into the
     * upper one; a lookup looks in the upper directory, then in the lower; untar creates in a directory
     * and then sets the attributes of that directory in its parent). Each entry is valid while
     * {@link Posix#namespaceGeneration} is unchanged (no rename, no directory removed, no layer opened
     * or closed since): a directory cannot have moved from under the cached path.
     */
    private static final class Cached {
        int root = -1, fd = -1, borrowers;
        String parent;
        long generation, used;
    }

    /** Directories kept per thread: 4 (a copy-up's two parents, a lookup's layers, a parent and its own parent). */
    static final int WAYS = 4;

    private static final class Cache {
        final Cached[] ways = new Cached[WAYS];
        long tick;
        Cache() { for (int i = 0; i < WAYS; i++) ways[i] = new Cached(); }
    }
    private static final ThreadLocal<Cache> CACHE = ThreadLocal.withInitial(Cache::new);

    /**
     * Closes this thread's cached directories: a thread that served a mount calls it when it ends, or the
     * descriptors would outlive the mount (in a shared daemon, which goes on: a leak that also keeps the
     * layer's directories busy).
     */
    public static void releaseThreadCache() {
        for (Cached c : cache().ways) {
            if (c.fd >= 0 && c.borrowers == 0) Posix.close(c.fd);
            c.fd = -1;
            c.parent = null;
        }
        CACHE.remove();
        if (Thread.currentThread() instanceof ServingThread t) t.atCache = null;
    }

    /** This thread's cache: a serving thread's own field, else the ThreadLocal (see {@link ServingThread}). */
    private static Cache cache() {
        if (Thread.currentThread() instanceof ServingThread t) {
            Object c = t.atCache;
            if (c == null) t.atCache = c = new Cache();
            return (Cache) c;
        }
        return CACHE.get();
    }

    /** How many directories this thread's cache holds open (for tests). */
    static int cachedDirectories() {
        int n = 0;
        for (Cached c : cache().ways) if (c.fd >= 0) n++;
        return n;
    }

    At(int dirfd, String name, boolean owned) { this(dirfd, name, owned, 0, null); }
    private At(int dirfd, String name, boolean owned, int err) { this(dirfd, name, owned, err, null); }
    private At(int dirfd, String name, boolean owned, int err, Cached borrowed) {
        this.dirfd = dirfd; this.name = name; this.owned = owned; this.err = err; this.borrowed = borrowed;
    }

    /** Wraps an existing directory descriptor (not closed by this At). */
    public static At of(int dirfd, String name) { return new At(dirfd, name, false); }

    /** rel (with at least one '/') below rootFd: its parent opened without following a symlink, and its last name. */
    static At beneath(int rootFd, String rel) {
        int slash = rel.lastIndexOf('/');
        String parent = rel.substring(0, slash), name = rel.substring(slash + 1);
        Cache cache = cache();
        long g = Posix.namespaceGeneration();
        Cached victim = null, above = null;
        for (Cached c : cache.ways) {
            if (c.fd >= 0 && c.root == rootFd && c.generation == g) {
                if (c.parent.equals(parent)) {
                    c.borrowers++;
                    c.used = ++cache.tick;
                    return new At(c.fd, name, false, 0, c);
                }
                // the nearest cached ancestor of parent: the rest is opened from there
                int k = c.parent.length();
                if (parent.length() > k && parent.charAt(k) == '/' && parent.startsWith(c.parent)
                        && (above == null || k > above.parent.length())) above = c;
            }
            // the entry to reuse: one not in use on this thread, empty or stale first, else the least recently used
            if (c.borrowers == 0 && (victim == null || rank(c, g) < rank(victim, g))) victim = c;
        }
        // Below a cached directory only the rest of the path is resolved (still beneath the layer: the
        // cached one is), so a walk down a deep tree costs a call per level, not one per level above it:
        // each lookup in a tree N directories deep had the kernel walk N names (a `cd` down 1,500
        // nested lower directories and a copy-up at the bottom: the daemon's CPU 3.4 -> 2.6 s).
        int fd = above != null ? openDirBeneath(above.fd, parent.substring(above.parent.length() + 1))
                : openDirBeneath(rootFd, parent);
        if (fd < 0) return new At(-1, null, false, fd);
        if (victim == null) return new At(fd, name, true); // every cached one is in use on this thread
        if (victim.fd >= 0) Posix.close(victim.fd);
        victim.root = rootFd;
        victim.parent = parent;
        victim.fd = fd;
        victim.generation = g;
        victim.borrowers = 1;
        victim.used = ++cache.tick;
        return new At(fd, name, false, 0, victim);
    }

    /** Which cache entry goes first: empty, then stale, then by last use. */
    private static long rank(Cached c, long generation) {
        if (c.fd < 0) return Long.MIN_VALUE;
        if (c.generation != generation) return Long.MIN_VALUE + 1;
        return c.used;
    }

    /**
     * Opens the directory rel (non-empty, no leading slash) below rootFd as O_PATH, following no
     * symlink in any component. A symlink on the way is "not a directory" (ENOTDIR), as for lstat.
     */
    public static int openDirBeneath(int rootFd, String rel) {
        int cur = rootFd;
        String rest = rel;
        while (true) {
            String piece = rest;
            if (rest.length() > Layer.PIECE) {
                int cut = rest.lastIndexOf('/', Layer.PIECE);
                if (cut <= 0) { if (cur != rootFd) Posix.close(cur); return -Errno.ENAMETOOLONG; }
                piece = rest.substring(0, cut);
                rest = rest.substring(cut + 1);
            } else {
                rest = null;
            }
            int next = openDirPiece(cur, piece);
            if (cur != rootFd) Posix.close(cur);
            if (next < 0) return next == -Errno.ELOOP ? -Errno.ENOTDIR : next;
            cur = next;
            if (rest == null) return cur;
        }
    }

    private static int openDirPiece(int dirfd, String piece) {
        if (Posix.haveOpenat2()) {
            int fd = Posix.openat2(dirfd, piece, DIR_FLAGS, 0, RESOLVE);
            if (fd != -Errno.ENOSYS) return fd;
        }
        return walk(dirfd, piece);
    }

    /** Without openat2: one component at a time, each opened O_NOFOLLOW; ".." is refused. */
    static int walk(int dirfd, String piece) {
        int cur = dirfd;
        int i = 0, len = piece.length();
        while (i < len) {
            int j = piece.indexOf('/', i);
            if (j < 0) j = len;
            String c = piece.substring(i, j);
            i = j + 1;
            if (c.isEmpty() || c.equals(".")) continue;
            if (c.equals("..")) { if (cur != dirfd) Posix.close(cur); return -Errno.EXDEV; }
            int next = Posix.openat(cur, c, DIR_FLAGS, 0);
            if (cur != dirfd) Posix.close(cur);
            if (next < 0) return next;
            cur = next;
        }
        return cur == dirfd ? Posix.dup(dirfd) : cur;
    }

    public boolean ok() { return err == 0; }
    public int err() { return err; }
    public int dirfd() { return dirfd; }
    public String name() { return name; }

    /** A path for the l*xattr calls (which have no *at form) that reaches the same object. */
    public String xattrPath() {
        return "/proc/self/fd/" + dirfd + "/" + name;
    }

    @Override public void close() {
        if (owned) Posix.close(dirfd);
        else if (borrowed != null) borrowed.borrowers--;
    }
}
