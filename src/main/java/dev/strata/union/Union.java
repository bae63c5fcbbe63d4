package dev.strata.union;

import dev.strata.layer.At;
import dev.strata.layer.Layer;
import dev.strata.layer.Markers;
import dev.strata.options.IdMapping;
import dev.strata.options.MountOptions;
import dev.strata.posix.Buffers;
import dev.strata.posix.Errno;
import dev.strata.posix.Getdents;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;
import jnr.ffi.Pointer;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantReadWriteLock;

import static dev.strata.posix.Errno.*;
import static dev.strata.posix.Posix.*;

/**
 * The union engine: kernel-overlayfs semantics over a stack of layer directories, as POSIX operations
 * that return 0 / a count / {@code -errno}. Paths are mount-relative ("/" or "/a/b"); internally
 * everything goes through {@link Node}s. Nothing here knows about FUSE.
 *
 * <p>Concurrency: namespace lookups and reads hold a shared lock; anything that changes a layer (copy-up,
 * create, remove, rename, attribute changes) holds the exclusive lock. Data reads and writes on an open
 * descriptor take no lock.
 */
public final class Union implements AutoCloseable {
    /** Bounds the node cache; past this the whole cache is dropped and rebuilt on demand. */
    static final int MAX_NODES = 200_000;
    static final int NAME_MAX = 255;
    /** Where the presented inode number of a copied-up object is recorded (hidden like every overlay xattr). */
    static final String ORIGIN_TRUSTED = "trusted.overlay.strata.origin";
    static final String ORIGIN_USER = "user.overlay.strata.origin";
    /**
     * The kernel's marker of an upper directory that holds entries with an origin (ovl_set_impure), in
     * the namespace of {@link #originXattr}: readdir looks up the presented number of its upper entries.
     */
    static final String IMPURE_TRUSTED = "trusted.overlay.impure";
    static final String IMPURE_USER = "user.overlay.impure";

    private final MountOptions opts;
    private final Layer[] stack;          // [0] is the upper when hasUpper
    private final boolean hasUpper;
    private final int workFd;             // O_PATH fd of workdir/work, -1 when read-only
    private final boolean singleDev;
    private final int[] devIndex;         // per layer: index of its st_dev among the distinct ones
    private final boolean root;           // the daemon can chown and set trusted.* xattrs
    private final String originXattr;
    private final String impureXattr;
    private final OverrideStat overrides;  // owner and mode kept in xattrs (xattr_permissions, force_mask)
    private final UnionEvents events;
    private final DataCopy dataCopy;
    private final Node rootNode;
    private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    private final AtomicInteger nodeCount = new AtomicInteger();
    private final AtomicLong tmpCounter = new AtomicLong();
    private final ConcurrentHashMap<Integer, Node> openFiles = new ConcurrentHashMap<>();
    /**
     * Descriptors opened read-only on a lower file, by descriptor: once the file is copied up, reads
     * move to the upper copy, so they see what was written since (as on the kernel since Linux 4.19).
     */
    private final ConcurrentHashMap<Integer, LowerHandle> lowerHandles = new ConcurrentHashMap<>();

    private static final class LowerHandle {
        final Node node;
        volatile int upperFd = -1;
        LowerHandle(Node node) { this.node = node; }
    }
    /**
     * Files removed while open. libfuse 2 keeps such a file alive by renaming it to ".fuse_hiddenXXXX"
     * and unlinking that name on the last close; in an overlay that name would land in the upper
     * layer, so strata removes the real name at once (whiteout and all) and only remembers the hidden
     * path here: fstat then reports st_nlink 0, as on the kernel overlay.
     */
    private final ConcurrentHashMap<String, Node> hidden = new ConcurrentHashMap<>();
    static final String FUSE_HIDDEN = ".fuse_hidden";
    /**
     * Set by the libfuse 2 transport, which hides removed open files (a rename to ".fuse_hiddenXXXX")
     * and lowers their st_nlink by one. Other transports pass such a rename through as it is.
     */
    private volatile boolean libfuseHidesOpenFiles;

    /** Called by the libfuse 2 transport: its hiding renames remove the file, and st_nlink is compensated. */
    public void libfuseHidesOpenFiles() { libfuseHidesOpenFiles = true; }

    private Union(MountOptions opts, Layer[] stack, boolean hasUpper, int workFd, UnionEvents events) {
        this.opts = opts;
        this.stack = stack;
        this.hasUpper = hasUpper;
        this.workFd = workFd;
        this.events = events;
        this.root = Posix.geteuid() == 0;
        long[] devs = new long[stack.length];
        int nDev = 0;
        devIndex = new int[stack.length];
        for (int i = 0; i < stack.length; i++) {
            long d = stack[i].dev();
            int k = 0;
            while (k < nDev && devs[k] != d) k++;
            if (k == nDev) devs[nDev++] = d;
            devIndex[i] = k;
        }
        singleDev = nDev == 1;
        originXattr = hasUpper && trustedXattrsWork(workFd) ? ORIGIN_TRUSTED : ORIGIN_USER;
        impureXattr = originXattr == ORIGIN_TRUSTED ? IMPURE_TRUSTED : IMPURE_USER;
        overrides = OverrideStat.of(stack, hasUpper, opts.xattrPermissions);
        dataCopy = new DataCopy(workFd, stack.length);
        int[] all = new int[stack.length];
        for (int i = 0; i < all.length; i++) all[i] = i;
        int[] rootLayers = rootLayers(all);
        rootNode = new Node(null, "", rootLayers, S_IFDIR, false, xwhMask("", rootLayers));
    }

    /**
     * Opens the layers of a validated configuration. Throws {@link IllegalStateException} with a one-line
     * message if a directory cannot be opened.
     */
    public static Union open(MountOptions opts, UnionEvents events) {
        List<Layer> layers = new ArrayList<>();
        int[] err = new int[1];
        boolean upper = opts.upperDir != null;
        int workFd = -1;
        try {
            if (upper) layers.add(openLayer(opts.upperDir, 0, true, err));
            for (Path p : opts.lowerDirs) layers.add(openLayer(p, layers.size(), false, err));
            if (upper) workFd = prepareWork(opts.workDir);
        } catch (RuntimeException e) {
            for (Layer l : layers) l.close();
            throw e;
        }
        Union u = new Union(opts, layers.toArray(new Layer[0]), upper, workFd, events == null ? UnionEvents.NONE : events);
        int r = u.overrides.initUpperRoot(u.stack);
        if (r < 0) {
            u.close();
            throw new IllegalStateException("xattr_permissions: cannot record owner and mode on " + opts.upperDir + ": " + Posix.strerror(r));
        }
        return u;
    }

    private static Layer openLayer(Path p, int index, boolean upper, int[] err) {
        Layer l = Layer.open(p, index, upper, err);
        if (l == null) throw new IllegalStateException("cannot open " + p + ": " + Posix.strerror(err[0]));
        return l;
    }

    /** Whether trusted.* xattrs can be set here (root in the initial user namespace; not in a container's). */
    private static boolean trustedXattrsWork(int dirFd) {
        String p = "/proc/self/fd/" + dirFd + "/.";
        if (Posix.lsetxattr(p, "trusted.overlay.strata.probe", new byte[]{'1'}, 0) != 0) return false;
        Posix.lremovexattr(p, "trusted.overlay.strata.probe");
        return true;
    }

    /** Makes workdir/work (as the kernel does), empties it of leftovers, and returns an O_PATH fd on it. */
    private static int prepareWork(Path workDir) {
        int wd = Posix.openat(AT_FDCWD, dev.strata.posix.Names.toNative(workDir.toString()), O_PATH | O_DIRECTORY, 0);
        if (wd < 0) throw new IllegalStateException("cannot open workdir " + workDir + ": " + Posix.strerror(wd));
        try {
            // mode 0 as the kernel overlay makes it (root passes permission checks); an unprivileged
            // daemon needs to enter it itself
            boolean root = Posix.geteuid() == 0;
            int r = Posix.mkdirat(wd, "work", root ? 0 : 0700);
            if (r < 0 && r != -EEXIST) {
                throw new IllegalStateException("cannot create " + workDir + "/work: " + Posix.strerror(r));
            }
            if (r == -EEXIST && !root) Posix.fchmodat(wd, "work", 0700); // e.g. left by a root mount
            int fd = Posix.openat(wd, "work", O_PATH | O_DIRECTORY | O_NOFOLLOW, 0);
            if (fd < 0) throw new IllegalStateException(workDir + "/work is not a directory: " + Posix.strerror(fd));
            Tree.removeContents(fd);
            return fd;
        } finally {
            Posix.close(wd);
        }
    }

    @Override public void close() {
        for (Layer l : stack) l.close();
        if (workFd >= 0) Posix.close(workFd);
    }

    public boolean readOnly() { return !hasUpper; }
    public MountOptions options() { return opts; }
    public List<Layer> layers() { return List.of(stack); }

    // ================================================================== lookup (namei)

    private int[] rootLayers(int[] all) {
        // the root merges every layer until one whose root is opaque
        int n = 0;
        for (int i = 0; i < all.length; i++) {
            n++;
            if (i < all.length - 1 && Markers.opaque(stack[i], "") != null) break;
        }
        int[] r = new int[n];
        System.arraycopy(all, 0, r, 0, n);
        return r;
    }

    private long xwhMask(String rel, int[] layers) {
        long m = 0;
        for (int k = 0; k < layers.length - 1; k++) {
            int li = layers[k];
            if (li < 64 && Markers.opaqueXattr(stack[li], rel) == 'x') m |= 1L << li;
        }
        return m;
    }

    /** Thrown-free result for lookups that fail with something other than "absent". */
    private static final class LookupError extends Node {
        final int errno;
        LookupError(int errno) { super(null, "", Node.NONE, 0, false, 0); this.errno = errno; }
    }

    /** Looks up a child of a directory node, through the cache. Returns a negative node if absent. */
    Node child(Node dir, String name) {
        ConcurrentHashMap<String, Node> ch = dir.children();
        Node c = ch.get(name);
        if (c != null) return c;
        if (name.length() > NAME_MAX) return new LookupError(-ENAMETOOLONG);
        c = lookup(dir, name);
        if (c instanceof LookupError) return c;
        return cache(ch, name, c);
    }

    /**
     * Enters a node in a children map (the first one in wins, so concurrent lookups agree) and keeps
     * the cache bounded: past MAX_NODES the whole tree is dropped and rebuilt on demand.
     */
    private Node cache(ConcurrentHashMap<String, Node> ch, String name, Node c) {
        Node prev = ch.putIfAbsent(name, c);
        if (prev != null) return prev;
        if (nodeCount.incrementAndGet() > MAX_NODES) {
            nodeCount.set(0);
            rootNode.forgetAll();
        }
        return c;
    }

    /** The real lookup: upper, then each lower top-down, honouring whiteouts and opaque directories. */
    private Node lookup(Node dir, String name) {
        String rel = Layer.child(dir.rel, name);
        if (Markers.isMarkerName(name)) return new Node(dir, rel, Node.NONE, 0, false, 0);
        Stat st = Stat.local();
        int[] dl = dir.layers;
        int[] found = null;
        int n = 0, type = 0;
        long xwh = 0;
        boolean whiteout = false;
        for (int k = 0; k < dl.length; k++) {
            int li = dl[k];
            Layer l = stack[li];
            int r = l.lstat(rel, st);
            if (r == 0) {
                if (st.type() == S_IFCHR && st.rdev() == 0) { whiteout = true; break; }
                if (li < 64 && (dir.xwhMask & (1L << li)) != 0 && st.type() == S_IFREG && st.size() == 0
                        && Markers.entryWhiteout(l, rel, st) != null) { whiteout = true; break; }
                int t = st.type();
                if (n == 0) {
                    type = t;
                    found = new int[t == S_IFDIR ? dl.length - k : 1];
                    found[n++] = li;
                    if (t != S_IFDIR) break;
                } else {
                    if (t != S_IFDIR) break; // a non-directory below a directory ends the merge
                    found[n++] = li;
                }
                if (k < dl.length - 1) {
                    // opaque ('y') stops the merge; 'x' marks xattr whiteouts inside. The last layer
                    // hides nothing, so its markers are not read (the kernel does not honour them either).
                    byte ov = Markers.opaqueXattr(l, rel);
                    if (ov == 'x' && li < 64) xwh |= 1L << li;
                    if (ov == 'y' || l.exists(Layer.child(rel, Markers.OPAQUE_FILE))) break;
                }
            } else if (r == -ENOENT || r == -ENOTDIR) {
                if (Markers.hasWhFile(l, dir.rel, name)) { whiteout = n == 0; break; }
            } else {
                return new LookupError(r);
            }
        }
        if (n == 0) return new Node(dir, rel, Node.NONE, 0, whiteout, 0);
        int[] layers = n == found.length ? found : java.util.Arrays.copyOf(found, n);
        return new Node(dir, rel, layers, type, false, type == S_IFDIR ? xwh : 0);
    }

    /**
     * Resolves a mount path. Returns the node (possibly negative) or a {@link LookupError}; ENOENT for
     * a missing intermediate directory, ENOTDIR for a non-directory one.
     */
    Node resolve(String path) {
        Node cur = rootNode;
        int len = path.length();
        int i = 0;
        while (i < len && path.charAt(i) == '/') i++;
        while (i < len) {
            int j = path.indexOf('/', i);
            if (j < 0) j = len;
            if (cur.negative()) return new LookupError(-ENOENT);
            if (!cur.isDir()) return new LookupError(-ENOTDIR);
            cur = child(cur, path.substring(i, j));
            if (cur instanceof LookupError) return cur;
            i = j + 1;
            while (i < len && path.charAt(i) == '/') i++;
        }
        return cur;
    }

    private static int err(Node n) {
        if (n instanceof LookupError) return ((LookupError) n).errno;
        return n.negative() ? -ENOENT : 0;
    }

    private Node parentOf(String path, int[] err) {
        int s = path.lastIndexOf('/');
        Node p = resolve(s <= 0 ? "/" : path.substring(0, s));
        int e = err(p);
        if (e == 0 && !p.isDir()) e = -ENOTDIR;
        err[0] = e;
        return p;
    }

    private static String lastName(String path) {
        return path.substring(path.lastIndexOf('/') + 1);
    }

    /**
     * Whether a layer below the upper still shows {@code name} in {@code dir} (so removing or renaming
     * the name needs a whiteout). Whiteouts in the lowers count as "no".
     */
    private boolean lowerHas(Node dir, String name) {
        Stat st = Stat.local2();
        String rel = Layer.child(dir.rel, name);
        for (int li : dir.layers) {
            if (hasUpper && li == 0) continue;
            Layer l = stack[li];
            int r = l.lstat(rel, st);
            if (r == 0) {
                if (st.type() == S_IFCHR && st.rdev() == 0) return false;
                if (li < 64 && (dir.xwhMask & (1L << li)) != 0 && Markers.entryWhiteout(l, rel, st) != null) return false;
                return true;
            }
            if (Markers.hasWhFile(l, dir.rel, name)) return false;
        }
        return false;
    }

    // ================================================================== inode numbers and attributes

    private long mapIno(int layer, long ino) {
        if (singleDev) return ino;
        return ino ^ ((long) devIndex[layer] << 56);
    }

    private long presentedIno(Node n, long realIno) {
        long ino = n.ino;
        if (ino != 0) return ino;
        int top = n.top();
        ino = 0;
        if (hasUpper && top == 0) ino = origin(n.rel);
        if (ino == 0) ino = mapIno(top, realIno);
        n.ino = ino;
        return ino;
    }

    /** The presented number recorded on the upper object at rel at its copy-up, or 0. */
    private long origin(String rel) {
        return parseOrigin(stack[0].getxattr(rel, originXattr));
    }

    /** {@link #origin} of the entry name of an open upper directory. */
    private long originAt(int dirFd, String name) {
        return parseOrigin(Posix.getxattrAt(dirFd, name, originXattr));
    }

    private static long parseOrigin(byte[] o) {
        if (o == null) return 0;
        try { return Long.parseLong(new String(o, StandardCharsets.US_ASCII).trim()); } catch (NumberFormatException e) { return 0; }
    }

    /** Whether the upper part of directory dir is marked impure (read once per node). */
    private boolean impure(Node dir) {
        byte s = dir.impure;
        if (s == 0) {
            byte[] v = stack[0].getxattr(dir.rel, impureXattr);
            dir.impure = s = (byte) (v != null ? 1 : 2);
        }
        return s == 1;
    }

    /**
     * Marks dir's upper directory impure before an entry with an origin lands in it (a copy-up, a link
     * or a rename from another directory), as the kernel's ovl_set_impure does, so readdir shows the
     * number lstat shows. Best effort: without the marker readdir shows the upper number.
     */
    private void markImpure(Node dir) {
        if (dir.impure == 1) return;
        if (impure(dir)) return;
        try (At a = stack[0].at(dir.rel)) {
            if (a.ok() && Posix.lsetxattr(a.xattrPath(), impureXattr, new byte[]{'y'}, 0) == 0) dir.impure = 1;
        }
    }

    /** Patches a struct stat filled from the top layer into what the mount shows. */
    private void present(Node n, Pointer st) {
        st.putLong(Stat.OFF_INO, presentedIno(n, st.getLong(Stat.OFF_INO)));
        if (n.isDir() && (n.merged() || opts.staticNlink)) st.putLong(Stat.OFF_NLINK, 1);
        if (overrides.reads(n.top())) overrides.apply(n.top(), stack[n.top()], n.rel, st);
        mapOwner(st);
    }

    private void mapOwner(Pointer st) {
        IdMapping um = opts.uidMapping, gm = opts.gidMapping;
        if (opts.squashUid != null) st.putInt(Stat.OFF_UID, opts.squashUid);
        else if (!um.isIdentity()) st.putInt(Stat.OFF_UID, um.toContainer(st.getInt(Stat.OFF_UID)));
        if (opts.squashGid != null) st.putInt(Stat.OFF_GID, opts.squashGid);
        else if (!gm.isIdentity()) st.putInt(Stat.OFF_GID, gm.toContainer(st.getInt(Stat.OFF_GID)));
    }

    /** An id given through the mount, as stored on disk; ids outside the mapping are stored as the overflow id (as fuse-overlayfs does). */
    private int hostUid(int uid) {
        if (uid == -1) return -1;
        int h = opts.uidMapping.toHost(uid);
        return h == -1 ? IdMapping.OVERFLOW : h;
    }

    private int hostGid(int gid) {
        if (gid == -1) return -1;
        int h = opts.gidMapping.toHost(gid);
        return h == -1 ? IdMapping.OVERFLOW : h;
    }

    public int getattr(String path, Pointer st) {
        if (!hidden.isEmpty()) {
            Node h = hidden.get(path);
            if (h != null) return hiddenAttr(h, st);
        }
        lock.readLock().lock();
        try {
            Node n = resolve(path);
            int e = err(n);
            if (e != 0) return e;
            return getattr(n, st);
        } finally {
            lock.readLock().unlock();
        }
    }

    private int getattr(Node n, Pointer st) {
        Layer l = stack[n.top()];
        int r;
        if (n.rel.isEmpty()) r = Posix.fstatat(l.fd(), "", st, AT_EMPTY_PATH);
        else try (At a = l.at(n.rel)) {
            r = a.ok() ? Posix.fstatat(a.dirfd(), a.name(), st, AT_SYMLINK_NOFOLLOW) : a.err();
        }
        if (r < 0) return r;
        present(n, st);
        return 0;
    }

    private int hiddenAttr(Node h, Pointer st) {
        for (java.util.Map.Entry<Integer, Node> e : openFiles.entrySet()) {
            if (e.getValue() != h) continue;
            int r = Posix.fstat(e.getKey(), st);
            if (r < 0) continue;
            st.putLong(Stat.OFF_INO, h.ino != 0 ? h.ino : st.getLong(Stat.OFF_INO));
            compensateHiddenNlink(st);
            if (!h.negative() && overrides.reads(h.top())) overrides.applyFd(h.top(), e.getKey(), st);
            mapOwner(st);
            return 0;
        }
        return -ENOENT;
    }

    /**
     * libfuse 2 subtracts one from st_nlink of a file it has hidden (removed while open). The
     * descriptor's own count is already right (0 for an upper file, the lower file's count for a
     * lower one, as the kernel overlay shows), so add the one back.
     */
    private void compensateHiddenNlink(Pointer st) {
        if (!libfuseHidesOpenFiles) return;
        long nl = st.getLong(Stat.OFF_NLINK);
        if (nl > 0) st.putLong(Stat.OFF_NLINK, nl + 1);
    }

    /**
     * For a path libfuse 2 gave a removed open file (".fuse_hiddenXXXX", see {@link #hidden}): a descriptor
     * open on it (changes go through the open file, as on the kernel transport), -ENOENT if none is left;
     * -1 for any other path.
     */
    private int hiddenFd(String path) {
        if (hidden.isEmpty()) return -1;
        Node h = hidden.get(path);
        if (h == null) return -1;
        for (java.util.Map.Entry<Integer, Node> e : openFiles.entrySet()) if (e.getValue() == h) return e.getKey();
        return -ENOENT;
    }

    /** fstat of an open file: the current merged attributes, or the descriptor's own once the name is gone. */
    public int fgetattr(int fd, Pointer st) {
        Node n = openFiles.get(fd);
        if (n != null && !n.stale()) {
            lock.readLock().lock();
            try {
                // the name (or a directory above it) may have moved since the open: its path is then
                // stale (another object, even a symlink, may sit there now) and the descriptor answers
                if (!n.stale() && getattr(n, st) == 0) return 0;
            } finally {
                lock.readLock().unlock();
            }
        }
        LowerHandle h = lowerHandles.isEmpty() ? null : lowerHandles.get(fd);
        int r = Posix.fstat(h != null ? current(h, fd) : fd, st);
        if (r < 0) return r;
        // an unlinked upper file shows st_nlink 0 by itself; a lower one keeps its own count, as on the kernel
        if (n != null) {
            st.putLong(Stat.OFF_INO, n.ino != 0 ? n.ino : st.getLong(Stat.OFF_INO));
            if (n.deleted) compensateHiddenNlink(st);
            if (!n.negative() && overrides.reads(n.top())) overrides.applyFd(n.top(), fd, st);
        }
        mapOwner(st);
        return 0;
    }

    public int readlink(String path, Pointer buf, long size) {
        lock.readLock().lock();
        try {
            Node n = resolve(path);
            int e = err(n);
            if (e != 0) return e;
            if (n.type != S_IFLNK) return -EINVAL;
            try (At a = stack[n.top()].at(n.rel)) {
                if (!a.ok()) return a.err();
                long r = Posix.readlinkat(a.dirfd(), a.name(), buf, size - 1);
                if (r < 0) return (int) r;
                buf.putByte(r, (byte) 0);
                return 0;
            }
        } finally {
            lock.readLock().unlock();
        }
    }

    /** Reads a symlink target as a string (tests, tools). */
    public String readlink(String path, int[] err) {
        Pointer buf = Buffers.get(4096);
        int r = readlink(path, buf, 4096);
        err[0] = r;
        if (r < 0) return null;
        return buf.getString(0, 4096, Posix.NAMES);
    }

    public int statfs(Pointer out) {
        int r = Posix.fstatvfs(stack[0].fd(), out);
        if (r < 0) return r;
        // f_namemax is the last long before the spare fields: struct statvfs on x86_64
        out.putLong(80, NAME_MAX);
        return 0;
    }

    // ================================================================== readdir

    /** Receives merged directory entries: name, type (S_IFMT bits), inode number. */
    public interface DirSink {
        /** Returns false to stop (the FUSE buffer is full). */
        boolean entry(String name, int type, long ino);
    }

    public int readdir(String path, DirSink sink) {
        lock.readLock().lock();
        try {
            Node n = resolve(path);
            int e = err(n);
            if (e != 0) return e;
            if (!n.isDir()) return -ENOTDIR;
            Node.Listing cached = n.listing;
            if (cached != null) return replay(n, cached, sink);
            ListingBuilder b = new ListingBuilder(sink);
            int r = readdir(n, b, true);
            if (r == 0 && b.complete) n.listing = b.build();
            return r;
        } finally {
            lock.readLock().unlock();
        }
    }

    /** Largest listing kept in memory (entries); bigger directories are merged on every readdir. */
    static final int MAX_CACHED_LISTING = 50_000;

    /** Passes entries on and records them, so the next readdir of an unchanged directory costs no syscall. */
    private static final class ListingBuilder implements DirSink {
        final DirSink next;
        final ArrayList<String> names = new ArrayList<>();
        final ArrayList<Integer> types = new ArrayList<>();
        final ArrayList<Long> inos = new ArrayList<>();
        boolean complete = true;

        ListingBuilder(DirSink next) { this.next = next; }

        @Override public boolean entry(String name, int type, long ino) {
            if (names.size() < MAX_CACHED_LISTING) {
                names.add(name);
                types.add(type);
                inos.add(ino);
            } else {
                complete = false;
            }
            boolean more = next.entry(name, type, ino);
            if (!more) complete = false;
            return more;
        }

        Node.Listing build() {
            int n = names.size();
            int[] t = new int[n];
            long[] i = new long[n];
            for (int k = 0; k < n; k++) { t[k] = types.get(k); i[k] = inos.get(k); }
            return new Node.Listing(names.toArray(new String[0]), t, i);
        }
    }

    private static int replay(Node n, Node.Listing l, DirSink sink) {
        for (int k = 0; k < l.names.length; k++) {
            if (!sink.entry(l.names[k], l.types[k], l.inos[k])) break;
        }
        return 0;
    }

    private static final int DT_UNKNOWN = 0, DT_FIFO = 1, DT_CHR = 2, DT_DIR = 4, DT_BLK = 6, DT_REG = 8,
            DT_LNK = 10, DT_SOCK = 12;

    private static int dtToMode(int dt) {
        switch (dt) {
            case DT_FIFO: return S_IFIFO;
            case DT_CHR: return S_IFCHR;
            case DT_DIR: return S_IFDIR;
            case DT_BLK: return S_IFBLK;
            case DT_REG: return S_IFREG;
            case DT_LNK: return S_IFLNK;
            case DT_SOCK: return S_IFSOCK;
            default: return 0;
        }
    }

    /**
     * Most entries one merged listing may hold (names given to the sink plus names seen in the layers):
     * a listing is built whole by the transport (its offsets are cookies in a sorted listing) as the
     * kernel overlay keeps a whole merged directory in its ovl_dir_cache, so a directory a user filled
     * with millions of names would otherwise take the heap. Scaled with the heap (2 KiB of it per entry,
     * where an entry costs about 150-250 bytes while it is built): 3M entries with the default heap
     * on this 24 GiB machine, 131,072 with -Xmx256m, never fewer than 65,536. Past it readdir fails with
     * ENOMEM ("Cannot allocate memory") and the daemon goes on.
     */
    static int maxListing = (int) Math.min(8L << 20, Math.max(1L << 16, Runtime.getRuntime().maxMemory() / 2048));

    /** Merges a directory's layers: upper first, duplicates, whiteouts and markers dropped. */
    private int readdir(Node n, DirSink sink, boolean dots) {
        int max = maxListing;
        int[] count = {0};
        boolean[] tooMany = {false};
        DirSink inner = sink;
        sink = (name, type, ino) -> {
            if (++count[0] > max) { tooMany[0] = true; return false; }
            return inner.entry(name, type, ino);
        };
        int r = merge(n, sink, dots, max, tooMany);
        return tooMany[0] ? -ENOMEM : r;
    }

    private int merge(Node n, DirSink sink, boolean dots, int max, boolean[] tooMany) {
        if (dots) {
            long self = dirIno(n);
            if (!sink.entry(".", S_IFDIR, self)) return 0;
            if (!sink.entry("..", S_IFDIR, n.parent == null ? self : dirIno(n.parent))) return 0;
        }
        Set<String> seen = n.layers.length > 1 ? new HashSet<>() : null;
        Stat st = Stat.local2();
        boolean[] stopped = {false};
        for (int li : n.layers) {
            Layer l = stack[li];
            boolean xwh = li < 64 && (n.xwhMask & (1L << li)) != 0;
            // an impure upper directory holds copied-up entries that show their origin's number (as the
            // kernel's ovl_iterate looks up every entry of one): one getxattr per upper entry there only
            boolean origins = hasUpper && li == 0 && impure(n);
            int fd = l.openat(n.rel.isEmpty() ? "." : n.rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
            if (fd < 0) return fd;
            int r;
            try {
                // the entries are parsed from a buffer of their own: the whiteout checks below read
                // xattrs into the shared scratch buffer
                r = Getdents.read(fd, (dIno, dt, name) -> {
                    if (name.equals(".") || name.equals("..")) return true;
                    if (name.startsWith(Markers.WH_PREFIX)) {
                        if (seen != null && !name.equals(Markers.OPAQUE_FILE)) {
                            seen.add(name.substring(Markers.WH_PREFIX.length()));
                            if (seen.size() > max) { tooMany[0] = true; stopped[0] = true; return false; }
                        }
                        return true;
                    }
                    if (seen != null && !seen.add(name)) return true;
                    if (seen != null && seen.size() > max) { tooMany[0] = true; stopped[0] = true; return false; }
                    int type = dtToMode(dt);
                    if (dt == DT_CHR || dt == DT_UNKNOWN || (xwh && dt == DT_REG)) {
                        String crel = Layer.child(n.rel, name);
                        if (l.lstat(crel, st) < 0) return true;
                        type = st.type();
                        if (st.isWhiteoutDevice()) return true;
                        if (xwh && Markers.entryWhiteout(l, crel, st) != null) return true;
                    }
                    if (type != S_IFDIR && type != 0) remember(n, name, li, type);
                    long ino = origins ? originAt(fd, name) : 0;
                    if (!sink.entry(name, type, ino != 0 ? ino : mapIno(li, dIno))) { stopped[0] = true; return false; }
                    return true;
                });
            } finally {
                Posix.close(fd);
            }
            if (r < 0) return r;
            if (stopped[0]) return 0;
        }
        return 0;
    }

    /**
     * readdir already knows where a non-directory comes from (its top layer, whiteouts applied), so it
     * enters the child in the cache: the lookups that usually follow (ls -l, find) cost no syscall.
     */
    private void remember(Node dir, String name, int layer, int type) {
        ConcurrentHashMap<String, Node> ch = dir.children();
        if (!ch.containsKey(name)) cache(ch, name, new Node(dir, Layer.child(dir.rel, name), Node.single(layer), type, false, 0));
    }

    private long dirIno(Node n) {
        if (n.ino != 0) return n.ino;
        Stat st = Stat.local2();
        Layer l = stack[n.top()];
        int r = n.rel.isEmpty() ? Posix.fstatat(l.fd(), "", st, AT_EMPTY_PATH) : l.lstat(n.rel, st);
        if (r < 0) return 1;
        return presentedIno(n, st.ino());
    }

    /** The merged names of a directory (without . and ..), for checks and tools. */
    public List<String> list(String path, int[] err) {
        List<String> out = new ArrayList<>();
        err[0] = readdir(path, (name, type, ino) -> {
            if (!name.equals(".") && !name.equals("..")) out.add(name);
            return true;
        });
        return out;
    }

    private boolean isEmptyDir(Node n, int[] err) {
        boolean[] empty = {true};
        err[0] = readdir(n, (name, type, ino) -> {
            empty[0] = false;
            return false;
        }, false);
        return empty[0];
    }

    // ================================================================== copy-up

    private String tmpName() {
        return "#strata." + ProcessHandle.current().pid() + "." + tmpCounter.incrementAndGet();
    }

    /** Ensures n exists in the upper layer (parents first); with {@code data=false} a file's data is not copied. */
    int copyUp(Node n, boolean data) {
        if (!hasUpper) return -EROFS;
        if (n.negative()) return -ENOENT;
        if (n.top() == 0) return 0;
        if (n.parent != null) {
            int r = copyUp(n.parent, true);
            if (r < 0) return r;
        }
        long t0 = System.nanoTime();
        Layer src = stack[n.top()];
        Stat st = new Stat();
        int r = src.lstat(n.rel, st);
        if (r < 0) return r;
        long ino = presentedIno(n, st.ino());
        // A lower file with several links: its copy is a new, separate file (no index), and the kernel
        // shows it with the upper inode number, so no origin is recorded.
        boolean keepIno = st.type() == S_IFDIR || st.nlink() <= 1;
        long origin = keepIno ? ino : 0;
        if (origin != 0) markImpure(n.parent);
        long[] bytes = {0};
        String[] method = {"metadata"};
        r = st.type() == S_IFREG && tmpfileWorks ? copyFileUp(n, src, st, data, origin, bytes, method) : NO_TMPFILE;
        if (r == NO_TMPFILE) r = copyThroughWorkdir(n, src, st, data, origin, bytes, method);
        if (r < 0) return r;
        copiedUp(n, src, st, ino, keepIno, bytes[0], t0, method[0]);
        return 0;
    }

    /** The node's state once its copy has a name in the upper (under the exclusive lock). */
    private void copiedUp(Node n, Layer src, Stat st, long ino, boolean keepIno, long bytes, long t0, String method) {
        if (!keepIno) {
            n.ino = 0;
            if (n.parent != null) { // listings of the parent showed the lower number
                n.parent.listing = null;
                events.numberChanged("/" + n.parent.rel);
            }
        }
        if (n.isDir()) {
            int[] l = new int[n.layers.length + 1];
            System.arraycopy(n.layers, 0, l, 1, n.layers.length);
            n.layers = l;
        } else {
            n.layers = Node.single(0);
        }
        if (st.type() == S_IFREG && !lowerHandles.isEmpty()) switchLowerHandles(n, ino, keepIno);
        events.copiedUp("/" + n.rel, src.root().toString(), typeName(st.type()), bytes, System.nanoTime() - t0, method);
    }

    /** Files at least this large have their data copied outside the exclusive lock ({@link #copyDataUnlocked}). */
    static final long UNLOCKED_COPY_MIN = 1L << 20;
    /** One lock per path being copied up outside the exclusive lock: one copy of a file at a time. */
    private final ConcurrentHashMap<String, java.util.concurrent.locks.ReentrantLock> copyLocks = new ConcurrentHashMap<>();

    /**
     * Copies a large lower regular file up without holding the union lock while its data moves, so
     * lookups, reads and other copy-ups go on meanwhile (the kernel overlay, too, locks only the file
     * being copied): the unnamed copy is built in the workdir under a lock of its own path only, and
     * named in the upper under the exclusive lock after checking that the name still means the same
     * lower file. Copy-ups of the same file wait for each other, and the second finds the first's copy.
     * Anything unusual (not a large lower file, the name changed meanwhile, no O_TMPFILE) is left to the
     * caller's ordinary copy-up under the exclusive lock. Returns 0 or -errno of the copy.
     */
    private int copyDataUnlocked(String path) {
        if (!hasUpper || !tmpfileWorks) return 0;
        Node n;
        lock.readLock().lock();
        try {
            n = resolve(path);
            if (err(n) != 0 || n.negative() || n.top() == 0 || n.type != S_IFREG) return 0;
        } finally {
            lock.readLock().unlock();
        }
        String rel = n.rel;
        java.util.concurrent.locks.ReentrantLock fileLock = copyLocks.computeIfAbsent(rel, k -> new java.util.concurrent.locks.ReentrantLock());
        fileLock.lock();
        try {
            if (n.top() == 0 || n.stale()) return 0; // copied up (or moved) while this thread waited
            int top = n.top();
            Layer src = stack[top];
            Stat st = new Stat();
            int r = src.lstat(rel, st);
            if (r < 0 || st.type() != S_IFREG || st.size() < UNLOCKED_COPY_MIN) return 0;
            long t0 = System.nanoTime();
            long ino = presentedIno(n, st.ino());
            boolean keepIno = st.nlink() <= 1;
            long[] bytes = {0};
            String[] method = {"metadata"};
            int out = prepareFileCopy(n, src, st, true, keepIno ? ino : 0, bytes, method);
            if (out == NO_TMPFILE) return 0;
            if (out < 0) return out;
            try {
                lock.writeLock().lock();
                try {
                    if (resolve(path) != n || n.top() != top) return 0; // changed meanwhile: the caller copies as usual
                    if (n.parent != null) {
                        r = copyUp(n.parent, true);
                        if (r < 0) return r;
                        if (keepIno) markImpure(n.parent);
                    }
                    r = linkIntoUpper(out, rel);
                    if (r == -EPERM || r == -EACCES) return 0; // the caller's copy-up goes through the workdir
                    if (r < 0) return r;
                    copiedUp(n, src, st, ino, keepIno, bytes[0], t0, method[0]);
                    return 0;
                } finally {
                    lock.writeLock().unlock();
                }
            } finally {
                Posix.close(out);
            }
        } finally {
            if (!fileLock.hasQueuedThreads()) copyLocks.remove(rel, fileLock);
            fileLock.unlock();
        }
    }

    // ================================================================== file attribute flags (lsattr, chattr)

    /**
     * As the kernel overlay's copy-up (ovl_copy_fileattr): the synchronous-update and no-atime flags of
     * a lower file or directory go to its copy. A layer without flags (EOPNOTSUPP, ENOTTY) has none to
     * give. The append-only and immutable flags are not copied (see {@link #setFileattr}).
     */
    private void copyFileattr(Layer src, String rel, Stat st, String tmp) {
        if (st.type() != S_IFREG && st.type() != S_IFDIR) return;
        int dirFlag = st.type() == S_IFDIR ? O_DIRECTORY : 0;
        int in = rel.isEmpty() ? Posix.openat(src.fd(), ".", O_RDONLY | O_DIRECTORY, 0)
                : src.openat(rel, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | dirFlag, 0);
        if (in < 0) return;
        int flags;
        try {
            flags = fileattrToCopy(in);
        } finally {
            Posix.close(in);
        }
        if (flags == 0) return;
        int out = Posix.openat(workFd, tmp, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | dirFlag, 0);
        if (out < 0) return;
        try {
            addFileattr(out, flags);
        } finally {
            Posix.close(out);
        }
    }

    /** The same between two open files (a regular file's copy through O_TMPFILE). */
    private static void copyFileattr(int in, int out) {
        int flags = fileattrToCopy(in);
        if (flags != 0) addFileattr(out, flags);
    }

    /** The no-atime and sync flags of an open file (0 where its file system has no flags). */
    private static int fileattrToCopy(int fd) {
        Pointer b = Buffers.get(Posix.FSXATTR_SIZE);
        return Posix.ioctl(fd, Posix.FS_IOC_GETFLAGS, b.address()) < 0 ? 0 : b.getInt(0) & (Posix.FS_SYNC_FL | Posix.FS_NOATIME_FL);
    }

    private static void addFileattr(int fd, int flags) {
        Pointer b = Buffers.get(Posix.FSXATTR_SIZE);
        if (Posix.ioctl(fd, Posix.FS_IOC_GETFLAGS, b.address()) < 0) return;
        b.putInt(0, b.getInt(0) | flags);
        Posix.ioctl(fd, Posix.FS_IOC_SETFLAGS, b.address());
    }

    /**
     * FS_IOC_GETFLAGS or FS_IOC_FSGETXATTR (lsattr, xfs_io) of a regular file or directory: those of
     * the file of its top layer, into {@code buf} (an int / a struct fsxattr).
     */
    public int getFileattr(String path, long cmd, Pointer buf) {
        lock.readLock().lock();
        try {
            Node n = resolve(path);
            int e = err(n);
            if (e != 0) return e;
            if (n.type != S_IFREG && !n.isDir()) return -ENOTTY;
            try (At a = atOf(n)) {
                if (!a.ok()) return a.err();
                return fileattrIoctl(a, n.isDir(), cmd, buf);
            }
        } finally {
            lock.readLock().unlock();
        }
    }

    /**
     * FS_IOC_SETFLAGS or FS_IOC_FSSETXATTR (chattr, xfs_io): copies the entry up (as the kernel overlay)
     * and sets them on its upper file. The append-only and immutable flags are refused (EOPNOTSUPP): the
     * kernel overlay keeps them in an overlay.protattr xattr and enforces them on its own inode, which
     * strata does not do.
     */
    public int setFileattr(String path, long cmd, Pointer buf) {
        boolean flagsCmd = cmd == Posix.FS_IOC_SETFLAGS || cmd == Posix.FS_IOC32_SETFLAGS;
        int prot = flagsCmd ? buf.getInt(0) & (Posix.FS_APPEND_FL | Posix.FS_IMMUTABLE_FL)
                : buf.getInt(0) & (Posix.FS_XFLAG_APPEND | Posix.FS_XFLAG_IMMUTABLE);
        if (prot != 0) return -EOPNOTSUPP;
        return onUpper(path, true, (n, a) -> {
            if (n.type != S_IFREG && !n.isDir()) return -ENOTTY;
            return fileattrIoctl(a, n.isDir(), cmd, buf);
        });
    }

    private static int fileattrIoctl(At a, boolean dir, long cmd, Pointer buf) {
        int fd = Posix.openat(a.dirfd(), a.name(), O_RDONLY | O_NONBLOCK | O_NOFOLLOW | (dir ? O_DIRECTORY : 0), 0);
        if (fd < 0) return fd;
        try {
            return Posix.ioctl(fd, cmd, buf.address());
        } finally {
            Posix.close(fd);
        }
    }

    /** Returned by {@link #copyFileUp} where the workdir's file system has no O_TMPFILE. */
    private static final int NO_TMPFILE = Integer.MIN_VALUE;
    /** Cleared once the workdir's file system refuses O_TMPFILE; copy-ups then use named temporary files. */
    private volatile boolean tmpfileWorks = true;

    /**
     * Copies a regular file up as the kernel does (ovl_copy_up_tmpfile): an unnamed O_TMPFILE file in
     * the workdir receives the data (fsync'ed unless fsync=0), then xattrs, origin, owner, mode and times
     * through its descriptor, and only when complete a name in the upper (linkat). The upper never shows
     * a partial copy, and a crash at any point leaves nothing behind: an unnamed inode is freed with its
     * last descriptor. Against a named temporary file renamed into place this saves, per copy-up, the
     * writes of the workdir's directory block and inode inside fsync (ext4 syncs the parent of a newly
     * named file, not of an unnamed one: 4 block requests per fsync become 3) and the /proc/self/fd path
     * lookups of the metadata calls. Returns {@link #NO_TMPFILE} if the workdir refuses O_TMPFILE.
     */
    private int copyFileUp(Node n, Layer src, Stat st, boolean data, long origin, long[] bytes, String[] method) {
        int out = prepareFileCopy(n, src, st, data, origin, bytes, method);
        if (out < 0) return out;
        try {
            int r = linkIntoUpper(out, n.rel);
            // a hard link can be refused where a rename is not (fs.protected_hardlinks, an odd file system):
            // then this copy is made again the other way
            return r == -EPERM || r == -EACCES ? NO_TMPFILE : r;
        } finally {
            Posix.close(out);
        }
    }

    /**
     * The unnamed half of {@link #copyFileUp}: an O_TMPFILE file in the workdir with the data and
     * metadata of the lower file. Needs no union lock (it reads only the read-only lower file and writes
     * only an unnamed inode). Returns its descriptor, {@link #NO_TMPFILE}, or -errno.
     */
    private int prepareFileCopy(Node n, Layer src, Stat st, boolean data, long origin, long[] bytes, String[] method) {
        int in = src.openat(n.rel, O_RDONLY | O_NOFOLLOW, 0);
        if (in < 0) return in;
        int out = Posix.openat(workFd, ".", O_TMPFILE | O_WRONLY, 0600);
        if (out < 0) {
            Posix.close(in);
            if (out != -EOPNOTSUPP && out != -EISDIR && out != -EINVAL) return out;
            tmpfileWorks = false;
            return NO_TMPFILE;
        }
        int r = 0;
        try {
            if (data && st.size() > 0) {
                bytes[0] = st.size();
                r = dataCopy.copy(src.index(), in, out, st.size(), opts.fsync, method);
                // like the kernel: the copy is on disk before it replaces the lower file (unless fsync=0/volatile)
                if (r == 0 && opts.fsync) r = Posix.fsync(out);
            }
            if (r == 0) r = copyMetadata(in, out, st, origin);
            if (r == 0) r = copyOverride(n, src, st, null, out);
            if (r == 0) copyFileattr(in, out);
        } finally {
            Posix.close(in);
            if (r < 0) Posix.close(out);
        }
        return r < 0 ? r : out;
    }

    /** The way for every type: build the copy under a temporary name in the workdir, then rename it into the upper. */
    private int copyThroughWorkdir(Node n, Layer src, Stat st, boolean data, long origin, long[] bytes, String[] method) {
        String tmp = tmpName();
        int r = createCopy(src, n.rel, st, tmp, data, bytes, method);
        if (r == 0) r = finishCopy(src, n.rel, st, tmp, origin);
        if (r == 0) r = copyOverride(n, src, st, tmp, -1);
        if (r == 0) copyFileattr(src, n.rel, st, tmp);
        if (r == 0) r = moveIntoUpper(tmp, n.rel, 0, true);
        if (r < 0) Tree.removeAt(workFd, tmp);
        return r;
    }

    /**
     * Read-only descriptors opened on the lower file before this copy-up read the upper copy from now
     * on (as on the kernel overlay since Linux 4.19), whatever later happens to the name.
     */
    private void switchLowerHandles(Node n, long ino, boolean sameFile) {
        for (LowerHandle h : lowerHandles.values()) {
            Node o = h.node;
            boolean match = o == n || (ino != 0 && o.ino == ino && (sameFile || o.rel.equals(n.rel)));
            if (!match || h.upperFd >= 0) continue;
            int fd = stack[0].openat(n.rel, O_RDONLY | O_NOFOLLOW, 0); // under the write lock: the only writer
            if (fd >= 0) h.upperFd = fd;
        }
    }

    private static String typeName(int t) {
        switch (t) {
            case S_IFDIR: return "directory";
            case S_IFREG: return "file";
            case S_IFLNK: return "symlink";
            case S_IFIFO: return "fifo";
            case S_IFCHR: return "char device";
            case S_IFBLK: return "block device";
            case S_IFSOCK: return "socket";
            default: return "object";
        }
    }

    private int createCopy(Layer src, String rel, Stat st, String tmp, boolean data, long[] bytes, String[] method) {
        switch (st.type()) {
            case S_IFDIR:
                return Posix.mkdirat(workFd, tmp, 0700);
            case S_IFLNK: {
                int[] e = new int[1];
                String target;
                try (At a = src.at(rel)) {
                    if (!a.ok()) return a.err();
                    target = Posix.readlinkat(a.dirfd(), a.name(), e);
                }
                if (target == null) return e[0];
                return Posix.symlinkat(target, workFd, tmp);
            }
            case S_IFREG: {
                int in = src.openat(rel, O_RDONLY | O_NOFOLLOW, 0);
                if (in < 0) return in;
                int out = Posix.openat(workFd, tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
                if (out < 0) { Posix.close(in); return out; }
                try {
                    if (!data || st.size() == 0) return 0;
                    bytes[0] = st.size();
                    int r = dataCopy.copy(src.index(), in, out, st.size(), opts.fsync, method);
                    // like the kernel: the copy is on disk before it replaces the lower file (unless fsync=0/volatile)
                    if (r == 0 && opts.fsync) r = Posix.fsync(out);
                    return r;
                } finally {
                    Posix.close(in);
                    Posix.close(out);
                }
            }
            default:
                return Posix.mknodat(workFd, tmp, st.mode(), st.rdev());
        }
    }

    /** Owner, xattrs, origin, mode and times of a fresh copy in the workdir (named tmp). */
    private int finishCopy(Layer src, String rel, Stat st, String tmp, long ino) {
        String dst = "/proc/self/fd/" + workFd + "/" + tmp;
        boolean lnk = st.type() == S_IFLNK;
        // owner first: chown(2) drops security.capability, which the kernel's copy-up keeps
        int r = Posix.fchownat(workFd, tmp, st.uid(), st.gid(), AT_SYMLINK_NOFOLLOW);
        if (r < 0 && root) return r;
        try (At a = src.at(rel)) {
            if (!a.ok()) return a.err();
            String sp = a.xattrPath();
            for (String x : Posix.llistxattr(sp)) {
                if (Markers.isPrivateXattr(x) && !x.startsWith(ESCAPED)) continue;
                byte[] v = Posix.lgetxattr(sp, x);
                if (v == null) continue;
                r = Posix.lsetxattr(dst, x, v, 0);
                if (r < 0 && xattrMustCopy(x, r)) return r;
            }
        }
        if (ino != 0 && (!lnk || root)) {
            Posix.lsetxattr(dst, originXattr, Long.toString(ino).getBytes(StandardCharsets.US_ASCII), 0);
        }
        if (!lnk) {
            r = Posix.fchmodat(workFd, tmp, st.perm());
            if (r < 0) return r;
        }
        return Posix.utimensat(workFd, tmp, st.atime(), st.atimeNs(), st.mtime(), st.mtimeNs(), AT_SYMLINK_NOFOLLOW);
    }

    /**
     * Whether an xattr that could not be set on a copy fails the copy-up, as in the kernel's
     * ovl_copy_xattr: every error does, except EOPNOTSUPP for an xattr the upper does not know,
     * which is ignored unless it is a POSIX ACL or security.* (ovl_must_copy_xattr): dropping a deny
     * ACL or a security label would widen access. A daemon that is not root cannot set security.*
     * at all (EPERM) where the kernel's mounter could: there it stays best effort, ACLs do not.
     */
    private boolean xattrMustCopy(String name, int err) {
        boolean acl = name.equals("system.posix_acl_access") || name.equals("system.posix_acl_default");
        boolean security = name.startsWith("security.");
        if (security && !root && (err == -EPERM || err == -EACCES)) return false;
        return err != -EOPNOTSUPP || acl || security;
    }

    static final String CAPABILITY = "security.capability";

    /**
     * Puts a file's capabilities back on its copy after a chown(2) of the copy (copyOverride), which
     * removes security.capability as the VFS does on every chown; the kernel overlay changes the copy's
     * owner with notify_change without ATTR_KILL_PRIV, which keeps them. (The metadata copies set the
     * owner before the xattrs for the same reason.)
     */
    private void restoreCapability(Layer src, String rel, String tmp, int fd) {
        byte[] v;
        try (At a = src.at(rel)) {
            if (!a.ok()) return;
            v = Posix.lgetxattr(a.xattrPath(), CAPABILITY);
        }
        if (v == null) return;
        if (fd >= 0) Posix.fsetxattr(fd, CAPABILITY, v, 0); // best effort, as the other xattrs
        else Posix.lsetxattr("/proc/self/fd/" + workFd + "/" + tmp, CAPABILITY, v, 0);
    }

    /** Owner, xattrs, origin, mode and times of a regular file's copy, from descriptor to descriptor. */
    private int copyMetadata(int in, int out, Stat st, long origin) {
        // owner first: chown(2) drops security.capability, which the kernel's copy-up keeps
        int r = Posix.fchown(out, st.uid(), st.gid());
        if (r < 0 && root) return r;
        for (String x : Posix.flistxattr(in)) {
            if (Markers.isPrivateXattr(x) && !x.startsWith(ESCAPED)) continue;
            byte[] v = Posix.fgetxattr(in, x);
            if (v == null) continue;
            r = Posix.fsetxattr(out, x, v, 0);
            if (r < 0 && xattrMustCopy(x, r)) return r;
        }
        if (origin != 0) Posix.fsetxattr(out, originXattr, Long.toString(origin).getBytes(StandardCharsets.US_ASCII), 0);
        r = Posix.fchmod(out, st.perm());
        if (r < 0) return r;
        return Posix.futimens(out, st.atime(), st.atimeNs(), st.mtime(), st.mtimeNs());
    }

    /**
     * The owner and mode a copy shows: recorded in the copy's override xattr where the upper keeps them
     * there (xattr_permissions), else given to its inode when a lower override supplied them. The copy
     * is the descriptor fd if it is >= 0, else workdir/tmp.
     */
    private int copyOverride(Node n, Layer src, Stat st, String tmp, int fd) {
        int top = n.top();
        OverrideStat.Value v = overrides.get(top, src, n.rel, st.type());
        if (overrides.writes(st.type())) {
            int uid = v != null && v.uid != -1 ? v.uid : st.uid(), gid = v != null && v.gid != -1 ? v.gid : st.gid();
            int mode = v != null ? v.mode : st.perm();
            return fd >= 0 ? overrides.write(fd, uid, gid, mode) : overrides.write("/proc/self/fd/" + workFd + "/" + tmp, uid, gid, mode);
        }
        if (v == null) return 0;
        int r = fd >= 0 ? Posix.fchown(fd, v.uid, v.gid) : Posix.fchownat(workFd, tmp, v.uid, v.gid, AT_SYMLINK_NOFOLLOW);
        if (r < 0 && root) return r;
        if (r == 0 && st.type() == S_IFREG) restoreCapability(src, n.rel, tmp, fd);
        return fd >= 0 ? Posix.fchmod(fd, v.mode) : Posix.fchmodat(workFd, tmp, v.mode);
    }

    /**
     * Renames workdir/tmp to upper/rel; for a copy-up the parent directory's times are kept (as the
     * kernel does) so that copy-up does not change what the parent shows. Creating or removing a name
     * changes the parent's times as usual.
     */
    private int moveIntoUpper(String tmp, String rel, int flags) {
        return moveIntoUpper(tmp, rel, flags, false);
    }

    private int moveIntoUpper(String tmp, String rel, int flags, boolean keepParentTimes) {
        Layer up = stack[0];
        String parent = Layer.parentOf(rel);
        Stat ps = Stat.local2();
        boolean keepTimes = keepParentTimes && up.lstat(parent, ps) == 0;
        long as = ps.atime(), an = ps.atimeNs(), ms = ps.mtime(), mn = ps.mtimeNs();
        int r;
        try (At a = up.at(rel)) {
            if (!a.ok()) return a.err();
            r = Posix.renameat2(workFd, tmp, a.dirfd(), a.name(), flags);
        }
        if (r == 0 && keepTimes) restoreTimes(parent, as, an, ms, mn);
        return r;
    }

    /**
     * Names a complete O_TMPFILE copy at upper/rel (linkat through /proc/self/fd, which needs no
     * privilege), keeping the parent directory's times as {@link #moveIntoUpper} does. Where something
     * is in the way (the upper changed under the mount), the copy replaces it as the rename did.
     */
    private int linkIntoUpper(int fd, String rel) {
        Layer up = stack[0];
        String parent = Layer.parentOf(rel);
        Stat ps = Stat.local2();
        boolean keepTimes = up.lstat(parent, ps) == 0;
        long as = ps.atime(), an = ps.atimeNs(), ms = ps.mtime(), mn = ps.mtimeNs();
        String proc = "/proc/self/fd/" + fd;
        int r;
        try (At a = up.at(rel)) {
            if (!a.ok()) return a.err();
            r = Posix.linkat(AT_FDCWD, proc, a.dirfd(), a.name(), AT_SYMLINK_FOLLOW);
            if (r == -EEXIST) {
                String tmp = tmpName();
                r = Posix.linkat(AT_FDCWD, proc, workFd, tmp, AT_SYMLINK_FOLLOW);
                if (r == 0) {
                    r = Posix.renameat2(workFd, tmp, a.dirfd(), a.name(), 0);
                    if (r < 0) Posix.unlinkat(workFd, tmp, 0);
                }
            }
        }
        if (r == 0 && keepTimes) restoreTimes(parent, as, an, ms, mn);
        return r;
    }

    private void restoreTimes(String rel, long as, long an, long ms, long mn) {
        Layer up = stack[0];
        if (rel.isEmpty()) { // the upper root too: the kernel overlay leaves its times as they were
            Posix.utimensat(up.fd(), ".", as, an, ms, mn, AT_SYMLINK_NOFOLLOW);
            return;
        }
        try (At a = up.at(rel)) {
            if (a.ok()) Posix.utimensat(a.dirfd(), a.name(), as, an, ms, mn, AT_SYMLINK_NOFOLLOW);
        }
    }

    // ================================================================== creating names

    /** Creates the object itself at (dirfd, name); returns an fd (files), 0, or -errno. */
    private interface Creator {
        int create(int dirfd, String name);
    }

    private int checkNewName(String name) {
        if (name.length() > NAME_MAX) return -ENAMETOOLONG;
        if (Markers.isMarkerName(name)) return -EINVAL;
        return 0;
    }

    /**
     * Creates a new name in the merged view (which the caller checked is absent): in the upper directly,
     * or over a whiteout through the workdir so the swap is atomic; a directory created where a whiteout
     * hid lower entries is made opaque. {@code chown} false for hard links (they share the inode).
     */
    private int createName(Node dir, String name, boolean isDir, int mode, int uid, int gid, boolean chown,
                           Creator c) {
        int r = copyUp(dir, true);
        if (r < 0) return r;
        Layer up = stack[0];
        String rel = Layer.child(dir.rel, name);
        Node old = child(dir, name);
        Stat st = Stat.local2();
        boolean overDev = up.lstat(rel, st) == 0;  // only a whiteout can be there: the name is absent
        boolean whFile = Markers.hasWhFile(up, dir.rel, name);
        boolean opaque = isDir && (old.whiteout || overDev || whFile || lowerHas(dir, name));
        int gidToSet = gid;
        int finalMode = mode;
        if (chown && (root || overrides.enabled())) {
            Stat ds = new Stat();
            if (up.lstat(dir.rel, ds) == 0) {
                overrides.apply(0, up, dir.rel, ds.pointer()); // the group and mode the directory shows
                if ((ds.mode() & 02000) != 0) {
                    // a setgid directory gives new entries its group, and new directories its setgid bit;
                    // objects built in the workdir must get them explicitly
                    gidToSet = opts.gidMapping.toContainer(ds.gid());
                    if (isDir) finalMode |= 02000;
                }
            }
        }
        int result;
        Stat pst = Stat.local2();
        boolean keepTimes = false;
        long as = 0, an = 0, ms = 0, mn = 0;
        if (overDev || opaque) {
            String tmp = tmpName();
            result = c.create(workFd, tmp);
            if (result < 0) return result;
            r = chown ? own(workFd, tmp, finalMode, uid, gidToSet) : 0;
            if (r == 0 && opaque) {
                int[] e = new int[1];
                Markers.OpaqueForm f = Markers.markOpaque(At.of(workFd, tmp), e);
                if (f == null) r = e[0]; else events.opaque("/" + rel, f.label);
            }
            if (r == 0) {
                if (overDev && isDir) {
                    r = moveIntoUpper(tmp, rel, RENAME_EXCHANGE);
                    if (r == 0) Posix.unlinkat(workFd, tmp, 0); // the whiteout, now in the workdir
                } else {
                    r = moveIntoUpper(tmp, rel, 0);
                }
            }
            if (r < 0) {
                if (result > 0) Posix.close(result);
                Tree.removeAt(workFd, tmp);
                return r;
            }
        } else {
            try (At a = up.at(rel)) {
                if (!a.ok()) return a.err();
                result = c.create(a.dirfd(), a.name());
                if (result < 0) return result;
                r = chown ? own(a.dirfd(), a.name(), finalMode, uid, gidToSet) : 0;
                if (r < 0) {
                    if (result > 0) Posix.close(result);
                    Posix.unlinkat(a.dirfd(), a.name(), isDir ? AT_REMOVEDIR : 0);
                    return r;
                }
            }
        }
        if (whFile) {
            try (At a = up.at(Layer.child(dir.rel, Markers.WH_PREFIX + name))) {
                if (a.ok()) Posix.unlinkat(a.dirfd(), a.name(), 0);
            }
        }
        dir.forget(name);
        return result;
    }

    /** Gives a new object the caller's owner (the daemon creates as itself). */
    private int own(int dirfd, String name, int mode, int uid, int gid) {
        int hu = hostUid(uid), hg = hostGid(gid);
        int t = mode & S_IFMT;
        if (overrides.enabled() && (t == 0 || overrides.writes(t))) {
            // owner and mode of a directory or regular file go to its override xattr; the inode stays the daemon's
            Stat st = Stat.local2();
            int r = Posix.fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW);
            if (r < 0) return r;
            if (overrides.writes(st.type())) return overrides.write("/proc/self/fd/" + dirfd + "/" + name, hu, hg, mode & 07777);
        }
        if (!root) return 0;
        if (opts.squashUid != null) hu = -1;
        if (opts.squashGid != null) hg = -1;
        int r = Posix.fchownat(dirfd, name, hu, hg, AT_SYMLINK_NOFOLLOW);
        if (r < 0) return r;
        if ((mode & 06000) != 0 && (mode & S_IFMT) != S_IFLNK) r = Posix.fchmodat(dirfd, name, mode & 07777);
        return r;
    }

    private interface NewNameOp {
        int run(Node dir, String name);
    }

    /**
     * The checks every creation makes (parent a directory, name valid and absent); returns the
     * directory that will hold the new name, or null with e[0] set.
     */
    private Node newNameDir(String path, int[] e) {
        Node dir = parentOf(path, e);
        if (e[0] != 0) return null;
        String name = lastName(path);
        if (name.length() > NAME_MAX) { e[0] = -ENAMETOOLONG; return null; }
        Node existing = child(dir, name);
        if (existing instanceof LookupError) { e[0] = err(existing); return null; }
        if (!existing.negative()) { e[0] = -EEXIST; return null; }
        e[0] = checkNewName(name);
        return e[0] == 0 ? dir : null;
    }

    /** Runs op for a new name at {@code path} after the common checks, under the exclusive lock. */
    private int withNewName(String path, NewNameOp op) {
        if (!hasUpper) return -EROFS;
        lock.writeLock().lock();
        try {
            int[] e = new int[1];
            Node dir = newNameDir(path, e);
            return dir == null ? e[0] : op.run(dir, lastName(path));
        } finally {
            lock.writeLock().unlock();
        }
    }

    public int mkdir(String path, int mode, int uid, int gid) {
        return withNewName(path, (dir, name) ->
                createName(dir, name, true, mode, uid, gid, true, (fd, n) -> Posix.mkdirat(fd, n, mode & 07777)));
    }

    public int mknod(String path, int mode, long rdev, int uid, int gid) {
        if ((mode & S_IFMT) == S_IFCHR && rdev == 0) return -EPERM; // users cannot forge whiteouts
        return withNewName(path, (dir, name) ->
                createName(dir, name, false, mode, uid, gid, true, (fd, n) -> Posix.mknodat(fd, n, mode, rdev)));
    }

    public int symlink(String target, String path, int uid, int gid) {
        return withNewName(path, (dir, name) ->
                createName(dir, name, false, S_IFLNK | 0777, uid, gid, true, (fd, n) -> Posix.symlinkat(target, fd, n)));
    }

    /** Creates and opens a regular file; returns the descriptor. */
    public int create(String path, int mode, int flags, int uid, int gid) {
        return withNewName(path, (dir, name) -> {
            int fd = createName(dir, name, false, mode, uid, gid, true,
                    (dfd, n) -> Posix.openat(dfd, n, (flags & ~(O_EXCL | O_DIRECT)) | O_CREAT | O_EXCL, mode & 07777));
            if (fd >= 0) {
                Node n = child(dir, name);
                if (!n.negative()) openFiles.put(fd, n);
            }
            return fd;
        });
    }

    /**
     * O_TMPFILE: an unnamed regular file in the upper copy of a directory, owned by the caller.
     * Returns its descriptor; {@link #linkFd} can give it a name.
     */
    public int tmpfile(String dirPath, int mode, int flags, int uid, int gid) {
        if (!hasUpper) return -EROFS;
        if (overrides.enabled()) return -EOPNOTSUPP; // the override xattr is written by name
        lock.writeLock().lock();
        try {
            Node dir = resolve(dirPath);
            int e = err(dir);
            if (e != 0) return e;
            if (!dir.isDir()) return -ENOTDIR;
            int r = copyUp(dir, true);
            if (r < 0) return r;
            int oflags = (flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_DIRECT)) | O_TMPFILE;
            int fd = dir.rel.isEmpty() ? Posix.openat(stack[0].fd(), ".", oflags, mode & 07777)
                    : stack[0].openat(dir.rel, oflags, mode & 07777);
            if (fd < 0 || !root) return fd;
            int hg = hostGid(gid);
            Stat ds = Stat.local2();
            if (stack[0].lstat(dir.rel, ds) == 0 && (ds.mode() & 02000) != 0) hg = ds.gid(); // setgid directory
            r = Posix.fchown(fd, opts.squashUid != null ? -1 : hostUid(uid), opts.squashGid != null ? -1 : hg);
            if (r == 0 && (mode & 06000) != 0) r = Posix.fchmod(fd, mode & 07777);
            if (r < 0) {
                Posix.close(fd);
                return r;
            }
            return fd;
        } finally {
            lock.writeLock().unlock();
        }
    }

    /**
     * Gives a file known only by an open descriptor a name (linkat of /proc/self/fd/N or with AT_EMPTY_PATH
     * through the mount): an O_TMPFILE file from {@link #tmpfile}, or an upper file whose name was removed
     * (linkat then refuses it unless another name is left). A lower file never copied up is refused with
     * ENOENT, the kernel overlay's answer: a hard link to it in the upper would let writes reach the lower layer.
     */
    public int linkFd(int openFd, String to) {
        if (!hasUpper) return -EROFS;
        lock.writeLock().lock();
        try {
            int tmpFd = upperFdOf(openFd);
            if (tmpFd == -EEXIST) return -ENOENT;
            if (tmpFd < 0) return tmpFd;
            int[] pe = new int[1];
            Node dir = newNameDir(to, pe);
            if (dir == null) return pe[0];
            String proc = "/proc/self/fd/" + tmpFd;
            int r = createName(dir, lastName(to), false, 0, -1, -1, false,
                    (fd, n) -> Posix.linkat(AT_FDCWD, proc, fd, n, AT_SYMLINK_FOLLOW));
            return Math.min(r, 0);
        } finally {
            lock.writeLock().unlock();
        }
    }

    public int link(String from, String to) {
        if (!hasUpper) return -EROFS;
        lock.writeLock().lock();
        try {
            Node src = resolve(from);
            int e = err(src);
            if (e != 0) return e;
            if (src.isDir()) return -EPERM;
            int[] pe = new int[1];
            Node dir = newNameDir(to, pe); // checked before the copy-up, as the VFS does before overlayfs
            if (dir == null) return pe[0];
            String name = lastName(to);
            int r = copyUp(src, true);
            if (r < 0) return r;
            Layer up = stack[0];
            long ino = src.ino;
            if (origin(src.rel) != 0) { // a name with an origin lands in dir (ovl_create_or_link)
                r = copyUp(dir, true);
                if (r < 0) return r;
                markImpure(dir);
            }
            r = createName(dir, name, false, 0, -1, -1, false, (fd, n) -> {
                try (At a = up.at(src.rel)) {
                    return a.ok() ? Posix.linkat(a.dirfd(), a.name(), fd, n, 0) : a.err();
                }
            });
            if (r >= 0 && ino != 0) {
                Node nn = child(dir, name);
                if (!nn.negative()) nn.ino = ino;
            }
            return Math.min(r, 0);
        } finally {
            lock.writeLock().unlock();
        }
    }

    // ================================================================== removing names

    /** Puts a whiteout at upper/rel, replacing whatever is there (through the workdir: atomic). */
    private int whiteoutAt(Node dir, String name, boolean replacingDir) {
        Layer up = stack[0];
        String rel = Layer.child(dir.rel, name);
        String tmp = tmpName();
        int[] e = new int[1];
        Markers.WhiteoutForm f = Markers.createWhiteout(workFd, tmp, e);
        if (f == null) return e[0];
        if (f == Markers.WhiteoutForm.WH_FILE) {
            // unprivileged: no device whiteouts; remove the entry, then leave .wh.NAME beside it
            Posix.unlinkat(workFd, Markers.WH_PREFIX + tmp, 0);
            Stat st = Stat.local2();
            if (up.lstat(rel, st) == 0) {
                int r = st.isDir() ? Tree.removeDir(up, rel) : unlinkUpper(rel, 0);
                if (r < 0) return r;
            }
            try (At a = up.at(Layer.child(dir.rel, Markers.WH_PREFIX + name))) {
                if (!a.ok()) return a.err();
                int fd = Posix.openat(a.dirfd(), a.name(), O_CREAT | O_WRONLY | O_TRUNC, 0);
                if (fd < 0) return fd;
                Posix.close(fd);
            }
            events.whiteout("/" + rel, f.label);
            return 0;
        }
        int r;
        if (replacingDir) {
            r = moveIntoUpper(tmp, rel, RENAME_EXCHANGE);
            if (r == 0) Tree.removeAt(workFd, tmp);
        } else {
            r = moveIntoUpper(tmp, rel, 0);
        }
        if (r < 0) Posix.unlinkat(workFd, tmp, 0);
        else events.whiteout("/" + rel, f.label);
        return r;
    }

    private int unlinkUpper(String rel, int flags) {
        try (At a = stack[0].at(rel)) {
            return a.ok() ? Posix.unlinkat(a.dirfd(), a.name(), flags) : a.err();
        }
    }

    /** Whether the object at a mount path is in the upper layer (false if absent or only in lowers). */
    public boolean isUpper(String path) {
        lock.readLock().lock();
        try {
            Node n = resolve(path);
            return err(n) == 0 && hasUpper && n.top() == 0;
        } finally {
            lock.readLock().unlock();
        }
    }

    public int unlink(String path) {
        if (!hidden.isEmpty() && hidden.remove(path) != null) return 0;
        if (!hasUpper) return -EROFS;
        lock.writeLock().lock();
        try {
            Node n = resolve(path);
            int e = err(n);
            if (e != 0) return e;
            if (n.isDir()) return -EISDIR;
            Node dir = n.parent;
            int r = removeName(dir, n, false);
            if (r == 0) markGone(n, true);
            return r;
        } finally {
            lock.writeLock().unlock();
        }
    }

    public int rmdir(String path) {
        if (!hasUpper) return -EROFS;
        lock.writeLock().lock();
        try {
            Node n = resolve(path);
            int e = err(n);
            if (e != 0) return e;
            if (!n.isDir()) return -ENOTDIR;
            if (n.parent == null) return -EBUSY;
            int[] re = new int[1];
            if (!isEmptyDir(n, re)) return -ENOTEMPTY;
            if (re[0] < 0) return re[0];
            int r = removeName(n.parent, n, true);
            if (r == 0) markGone(n, true);
            return r;
        } finally {
            lock.writeLock().unlock();
        }
    }

    private int removeName(Node dir, Node n, boolean isDir) {
        boolean inUpper = n.top() == 0;
        boolean needWhiteout = !inUpper || lowerHas(dir, n.name());
        int r;
        if (!needWhiteout) {
            r = isDir ? Tree.removeDir(stack[0], n.rel) : unlinkUpper(n.rel, 0);
        } else {
            r = copyUp(dir, true);
            if (r < 0) return r;
            r = whiteoutAt(dir, n.name(), isDir && inUpper);
        }
        dir.forget(n.name());
        return r;
    }

    private void markGone(Node n, boolean deleted) {
        n.gone = true;
        if (deleted) n.deleted = true;
    }

    // ================================================================== rename

    public int rename(String from, String to, int flags) {
        if (!hasUpper) return -EROFS;
        if ((flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT)) != 0) return -EINVAL;
        lock.writeLock().lock();
        try {
            Node src = resolve(from);
            int e = err(src);
            if (e != 0) return e;
            if (src.parent == null) return -EBUSY;
            int[] pe = new int[1];
            Node dstDir = parentOf(to, pe);
            if (pe[0] != 0) return pe[0];
            String dstName = lastName(to);
            if (libfuseHidesOpenFiles && dstName.startsWith(FUSE_HIDDEN) && flags == 0 && !src.isDir()) return hide(src, to);
            if (dstName.length() > NAME_MAX) return -ENAMETOOLONG;
            int r = checkNewName(dstName);
            if (r < 0) return r;
            Node dst = child(dstDir, dstName);
            if (dst instanceof LookupError) return err(dst);
            if (src == dst) return 0;
            // two names of one upper file are one inode on the kernel overlay, and the VFS returns 0 for a
            // rename of an inode onto itself before overlayfs sees the flags; else ovl_rename refuses
            // RENAME_WHITEOUT (the FUSE side passes it on, and gives each name a node of its own)
            if ((flags & RENAME_WHITEOUT) != 0) return (flags & RENAME_NOREPLACE) == 0 && !dst.negative() && sameUpperInode(src, dst) ? 0 : -EINVAL;
            // moving a directory into itself
            for (Node p = dstDir; p != null; p = p.parent) if (p == src) return -EINVAL;
            if ((flags & RENAME_EXCHANGE) != 0) return exchange(src, dst);
            if ((flags & RENAME_NOREPLACE) != 0 && !dst.negative()) return -EEXIST;
            if (!dst.negative()) {
                if (src.isDir() && !dst.isDir()) return -ENOTDIR;
                if (!src.isDir() && dst.isDir()) return -EISDIR;
            }
            // the kernel refuses to move a lower or merged directory before it looks at the target
            if (src.isDir() && (src.layers.length > 1 || src.top() != 0)) {
                events.renameRefused("/" + src.rel, "/" + Layer.child(dstDir.rel, dstName),
                        src.top() != 0 ? "directory is in a lower layer" : "directory merges lower layers");
                return -EXDEV;
            }
            if (!dst.negative()) {
                if (dst.isDir()) {
                    int[] re = new int[1];
                    if (!isEmptyDir(dst, re)) return -ENOTEMPTY;
                }
                if (sameUpperInode(src, dst)) return 0; // hard links to one file: rename(2) does nothing
            }
            r = copyUp(src, true);
            if (r < 0) return r;
            r = copyUp(dstDir, true);
            if (r < 0) return r;
            Node srcDir = src.parent;
            // an entry with an origin moving to another directory makes that one impure (ovl_rename)
            if (srcDir != dstDir && origin(src.rel) != 0) markImpure(dstDir);
            boolean srcLower = lowerHas(srcDir, src.name());
            Layer up = stack[0];
            String dstRel = Layer.child(dstDir.rel, dstName);
            Stat st = Stat.local2();
            boolean dstUpper = up.lstat(dstRel, st) == 0;
            boolean dstUpperIsDir = dstUpper && st.isDir();
            boolean dstUpperWhiteout = dstUpper && dst.negative();
            boolean whFile = Markers.hasWhFile(up, dstDir.rel, dstName);
            if (src.isDir() && (dst.whiteout || dstUpperWhiteout || whFile || lowerHas(dstDir, dstName))) {
                // the moved directory lands where lower entries would merge in: make it opaque
                try (At a = up.at(src.rel)) {
                    int[] oe = new int[1];
                    if (!a.ok()) return a.err();
                    if (Markers.opaque(up, src.rel) == null) {
                        Markers.OpaqueForm f = Markers.markOpaque(a, oe);
                        if (f == null) return oe[0];
                        events.opaque("/" + dstRel, f.label);
                    }
                }
            }
            if (dstUpperIsDir) {
                r = Tree.removeContents(up, dstRel); // only markers are left in a merged-empty directory
                if (r < 0) return r;
            }
            boolean srcWhiteoutDone = false;
            if (src.isDir() && dstUpperWhiteout) {
                // a directory cannot replace a device: swap them; the whiteout, now at the old name, stays
                // there if the old name needs one (in one step), else it is dropped
                r = renameUpper(src.rel, dstRel, RENAME_EXCHANGE);
                if (r == 0) {
                    srcWhiteoutDone = srcLower && up.lstat(src.rel, st) == 0 && st.isWhiteoutDevice();
                    if (!srcWhiteoutDone) r = unlinkUpper(src.rel, 0);
                }
            } else if (srcLower) {
                r = renameLeavingWhiteout(srcDir, src, dstRel);
                srcWhiteoutDone = r == 0;
            } else {
                r = renameUpper(src.rel, dstRel, 0);
            }
            if (r < 0) return r;
            if (whFile) unlinkUpper(Layer.child(dstDir.rel, Markers.WH_PREFIX + dstName), 0);
            if (srcLower && !srcWhiteoutDone) {
                r = whiteoutAt(srcDir, src.name(), false);
                if (r < 0) return r;
            }
            if (!dst.negative()) markGone(dst, true);
            markGone(src, false);
            srcDir.forget(src.name());
            dstDir.forget(dstName);
            return 0;
        } finally {
            lock.writeLock().unlock();
        }
    }

    /** Cleared once the upper refuses RENAME_WHITEOUT (no CAP_MKNOD, a file system without it). */
    private volatile boolean renameWhiteoutWorks = true;

    /**
     * Renames upper/src to dstRel and leaves a whiteout at the old name (a lower layer has it): in one
     * step with renameat2(RENAME_WHITEOUT) where the upper supports it, as the kernel overlay does.
     * Elsewhere a device whiteout is made in the workdir first, so only two renames are left between
     * the old name's disappearance and its whiteout; without device whiteouts (unprivileged) the .wh.
     * file follows the rename (it cannot come first: a listing would drop the entry while it is there).
     * Returns 0 with the whiteout in place, 1 if the rename is done but the whiteout still to make, or -errno.
     */
    private int renameLeavingWhiteout(Node srcDir, Node src, String dstRel) {
        if (renameWhiteoutWorks) {
            int r = renameUpper(src.rel, dstRel, RENAME_WHITEOUT);
            if (r == 0) {
                events.whiteout("/" + src.rel, Markers.WhiteoutForm.CHAR_DEVICE.label);
                return 0;
            }
            if (r != -EINVAL && r != -EOPNOTSUPP && r != -EPERM && r != -ENOSYS) return r;
            renameWhiteoutWorks = false;
        }
        String tmp = tmpName();
        int[] e = new int[1];
        Markers.WhiteoutForm f = Markers.createWhiteout(workFd, tmp, e);
        if (f == null) return e[0];
        if (f != Markers.WhiteoutForm.CHAR_DEVICE) {
            Posix.unlinkat(workFd, Markers.WH_PREFIX + tmp, 0);
            int r = renameUpper(src.rel, dstRel, 0);
            return r < 0 ? r : 1;
        }
        int r = renameUpper(src.rel, dstRel, 0);
        if (r < 0) {
            Posix.unlinkat(workFd, tmp, 0);
            return r;
        }
        r = moveIntoUpper(tmp, src.rel, 0);
        if (r < 0) {
            Posix.unlinkat(workFd, tmp, 0);
            return 1; // renamed: the caller tries the whiteout again its own way
        }
        events.whiteout("/" + src.rel, f.label);
        return 0;
    }

    /** libfuse hides an open file that is being removed: remove it for real and remember the hidden name. */
    private int hide(Node src, String hiddenPath) {
        int r = removeName(src.parent, src, false);
        if (r < 0) return r;
        markGone(src, true);
        hidden.put(hiddenPath, src);
        return 0;
    }

    private boolean sameUpperInode(Node a, Node b) {
        if (a.isDir() || b.isDir() || a.top() != 0 || b.top() != 0) return false;
        Stat sa = new Stat(), sb = new Stat();
        return stack[0].lstat(a.rel, sa) == 0 && stack[0].lstat(b.rel, sb) == 0 && sa.ino() == sb.ino();
    }

    private int renameUpper(String fromRel, String toRel, int flags) {
        Layer up = stack[0];
        try (At a = up.at(fromRel); At b = up.at(toRel)) {
            if (!a.ok()) return a.err();
            if (!b.ok()) return b.err();
            return Posix.renameat2(a.dirfd(), a.name(), b.dirfd(), b.name(), flags);
        }
    }

    /** RENAME_EXCHANGE: both names must exist; lower or merged directories cannot move. */
    private int exchange(Node a, Node b) {
        if (b.negative()) return -ENOENT;
        for (Node n : new Node[]{a, b}) {
            if (n.isDir() && (n.layers.length > 1 || n.top() != 0)) return -EXDEV;
        }
        int r = copyUp(a, true);
        if (r == 0) r = copyUp(b, true);
        if (r < 0) return r;
        // a directory that moves onto a name lower layers have must not merge with them
        for (Node[] p : new Node[][]{{a, b}, {b, a}}) {
            if (p[0].isDir() && lowerHas(p[1].parent, p[1].name()) && Markers.opaque(stack[0], p[0].rel) == null) {
                try (At at = stack[0].at(p[0].rel)) {
                    int[] e = new int[1];
                    if (at.ok() && Markers.markOpaque(at, e) == null) return e[0];
                }
            }
        }
        if (a.parent != b.parent) { // entries with an origin moving to another directory make it impure
            if (origin(a.rel) != 0) markImpure(b.parent);
            if (origin(b.rel) != 0) markImpure(a.parent);
        }
        r = renameUpper(a.rel, b.rel, RENAME_EXCHANGE);
        if (r < 0) return r;
        markGone(a, false);
        markGone(b, false);
        a.parent.forget(a.name());
        b.parent.forget(b.name());
        return 0;
    }

    // ================================================================== attributes

    private interface UpperOp {
        int run(Node n, At at);
    }

    /** Copies n up (with or without data) and runs op on its upper location. */
    private int onUpper(String path, boolean data, UpperOp op) {
        if (!hasUpper) return -EROFS;
        if (data) {
            int r = copyDataUnlocked(path);
            if (r < 0) return r;
        }
        lock.writeLock().lock();
        try {
            Node n = resolve(path);
            int e = err(n);
            if (e != 0) return e;
            int r = copyUp(n, data);
            if (r < 0) return r;
            if (n.rel.isEmpty()) return op.run(n, At.of(stack[0].fd(), "."));
            try (At a = stack[0].at(n.rel)) {
                if (!a.ok()) return a.err();
                return op.run(n, a);
            }
        } finally {
            lock.writeLock().unlock();
        }
    }

    public int chmod(String path, int mode) {
        int hf = hiddenFd(path);
        if (hf != -1) return hf < 0 ? hf : fchmod(hf, mode);
        return onUpper(path, true, (n, a) -> {
            if (n.type == S_IFLNK) return -EOPNOTSUPP;
            if (overrides.writes(n.type)) return overrideOwnerMode(n, a, -1, -1, mode & 07777);
            return Posix.fchmodat(a.dirfd(), a.name(), mode & 07777);
        });
    }

    public int chown(String path, int uid, int gid) {
        int hf = hiddenFd(path);
        if (hf != -1) return hf < 0 ? hf : fchown(hf, uid, gid);
        int hu = hostUid(uid), hg = hostGid(gid);
        return onUpper(path, true, (n, a) -> overrides.writes(n.type) ? overrideOwnerMode(n, a, hu, hg, -1)
                : Posix.fchownat(a.dirfd(), a.name(), hu, hg, AT_SYMLINK_NOFOLLOW));
    }

    /** chmod/chown of an upper object whose owner and mode live in its override xattr (-1: unchanged). */
    private int overrideOwnerMode(Node n, At a, int uid, int gid, int mode) {
        Stat st = Stat.local2();
        int r = Posix.fstatat(a.dirfd(), a.name(), st, AT_SYMLINK_NOFOLLOW);
        if (r < 0) return r;
        OverrideStat.Value cur = overrides.current(stack[0], n.rel, st);
        return overrides.write(a.xattrPath(), uid == -1 ? cur.uid : uid, gid == -1 ? cur.gid : gid, mode == -1 ? cur.mode : mode);
    }

    /** utimens with UTIME_NOW / UTIME_OMIT passed through in the nanosecond fields. */
    public int utimens(String path, long aSec, long aNsec, long mSec, long mNsec) {
        int hf = hiddenFd(path);
        if (hf != -1) return hf < 0 ? hf : futimens(hf, aSec, aNsec, mSec, mNsec);
        return onUpper(path, true, (n, a) -> Posix.utimensat(a.dirfd(), a.name(), aSec, aNsec, mSec, mNsec, AT_SYMLINK_NOFOLLOW));
    }

    public int truncate(String path, long size) {
        if (size < 0) return -EINVAL;
        int hf = hiddenFd(path);
        if (hf != -1) return hf < 0 ? hf : truncateRemoved(hf, size);
        return onUpper(path, size > 0, (n, a) -> {
            if (n.isDir()) return -EISDIR;
            if (n.type != S_IFREG) return -EINVAL;
            int fd = Posix.openat(a.dirfd(), a.name(), O_WRONLY | O_NOFOLLOW, 0);
            if (fd < 0) return fd;
            try {
                return Posix.ftruncate(fd, size);
            } finally {
                Posix.close(fd);
            }
        });
    }

    // ================================================================== xattrs

    static final String TRUSTED_OVERLAY = "trusted.overlay.";
    /** Where an overlay xattr set through the mount is stored (the kernel's escaping, Linux 6.7+). */
    static final String ESCAPED = "trusted.overlay.overlay.";

    /** user.overlay.* are markers strata reads (rootless, fuse-overlayfs): not settable through the mount. */
    private static boolean isPrivate(String name) {
        return name.startsWith("user.overlay.");
    }

    /**
     * The on-disk name of an xattr given through the mount: {@code trusted.overlay.X} is stored as
     * {@code trusted.overlay.overlay.X}, as the kernel does, so it can never be taken for a marker.
     */
    private static String diskXattr(String name) {
        return name.startsWith(TRUSTED_OVERLAY) ? ESCAPED + name.substring(TRUSTED_OVERLAY.length()) : name;
    }

    private boolean aclRefused(String name) {
        return opts.noAcl && name.startsWith("system.posix_acl_");
    }

    public int getxattr(String path, String name, Pointer value, long size) {
        if (isPrivate(name)) return -EOPNOTSUPP;
        if (OverrideStat.isOverrideXattr(name)) return -ENODATA; // shown as owner and mode instead
        if (aclRefused(name)) return -EOPNOTSUPP;
        int hf = hiddenFd(path);
        if (hf != -1) return hf < 0 ? hf : fgetxattr(hf, name, value, size);
        lock.readLock().lock();
        try {
            Node n = resolve(path);
            int e = err(n);
            if (e != 0) return e;
            try (At a = atOf(n)) {
                if (!a.ok()) return a.err();
                return (int) Posix.getxattrAt(a.dirfd(), a.name(), diskXattr(name), size == 0 ? null : value, size);
            }
        } finally {
            lock.readLock().unlock();
        }
    }

    private At atOf(Node n) {
        return n.rel.isEmpty() ? At.of(stack[n.top()].fd(), ".") : stack[n.top()].at(n.rel);
    }

    public int listxattr(String path, Pointer list, long size) {
        return listxattr(path, list, size, () -> true);
    }

    /**
     * listxattr; {@code trusted.*} names are listed only if showTrusted says so (asked only when there is
     * one): the kernel overlay lists them to callers with CAP_SYS_ADMIN only, which the transport knows.
     */
    public int listxattr(String path, Pointer list, long size, java.util.function.BooleanSupplier showTrusted) {
        int hf = hiddenFd(path);
        if (hf != -1) return hf < 0 ? hf : flistxattr(hf, list, size, showTrusted);
        lock.readLock().lock();
        try {
            Node n = resolve(path);
            int e = err(n);
            if (e != 0) return e;
            List<String> names;
            try (At a = atOf(n)) {
                if (!a.ok()) return a.err();
                names = Posix.llistxattr(a.xattrPath());
            }
            return xattrList(names, list, size, showTrusted);
        } finally {
            lock.readLock().unlock();
        }
    }

    /** The names of a layer file's xattrs as the mount lists them, into {@code list} (size 0: the length needed). */
    private int xattrList(List<String> names, Pointer list, long size, java.util.function.BooleanSupplier showTrusted) {
        {
            int total = 0;
            List<byte[]> keep = new ArrayList<>();
            int shown = -1; // trusted.* shown: unknown until the first one
            for (String x : names) {
                if (x.startsWith(ESCAPED)) x = TRUSTED_OVERLAY + x.substring(ESCAPED.length());
                else if (Markers.isPrivateXattr(x) || aclRefused(x) || OverrideStat.isOverrideXattr(x)) continue;
                if (x.startsWith("trusted.")) {
                    if (shown < 0) shown = showTrusted.getAsBoolean() ? 1 : 0;
                    if (shown == 0) continue;
                }
                byte[] b = x.getBytes(NAMES);
                keep.add(b);
                total += b.length + 1;
            }
            if (size == 0) return total;
            if (total > size) return -ERANGE;
            int off = 0;
            for (byte[] b : keep) {
                list.put(off, b, 0, b.length);
                list.putByte(off + b.length, (byte) 0);
                off += b.length + 1;
            }
            return total;
        }
    }

    public int setxattr(String path, String name, Pointer value, long size, int flags) {
        if (isPrivate(name) || aclRefused(name)) return -EOPNOTSUPP;
        if (OverrideStat.isOverrideXattr(name)) return -EPERM; // as fuse-overlayfs: chmod/chown write it
        int hf = hiddenFd(path);
        if (hf != -1) return hf < 0 ? hf : fsetxattr(hf, name, value, size, flags);
        return onUpper(path, true, (n, a) -> Posix.lsetxattr(a.xattrPath(), diskXattr(name), value, size, flags));
    }

    public int removexattr(String path, String name) {
        if (isPrivate(name) || aclRefused(name)) return -EOPNOTSUPP;
        if (OverrideStat.isOverrideXattr(name)) return -EPERM;
        int hf = hiddenFd(path);
        if (hf != -1) return hf < 0 ? hf : fremovexattr(hf, name);
        // like the kernel: removing an xattr a lower object does not have fails without a copy-up
        lock.readLock().lock();
        try {
            Node n = resolve(path);
            int e = err(n);
            if (e != 0) return e;
            if (!hasUpper || n.top() != 0) {
                try (At a = atOf(n)) {
                    if (!a.ok()) return a.err();
                    long r = Posix.getxattrAt(a.dirfd(), a.name(), diskXattr(name), null, 0);
                    if (r < 0) return (int) r;
                }
            }
        } finally {
            lock.readLock().unlock();
        }
        return onUpper(path, true, (n, a) -> Posix.lremovexattr(a.xattrPath(), diskXattr(name)));
    }

    // ================================================================== open files

    /** Opens a file; a write open copies it up first. Returns the descriptor to use for I/O. */
    public int open(String path, int flags) {
        boolean write = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC) != 0;
        // O_DIRECT is the kernel's business on the mount side (FUSE bypasses its page cache for it);
        // strata's own descriptor reads into buffers O_DIRECT's alignment rules would refuse
        int oflags = flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_DIRECT);
        if (write && !hasUpper) return -EROFS;
        if (write && (flags & O_TRUNC) == 0) {
            int r = copyDataUnlocked(path);
            if (r < 0) return r;
        }
        ReentrantReadWriteLock.ReadLock rl = lock.readLock();
        ReentrantReadWriteLock.WriteLock wl = lock.writeLock();
        if (write) wl.lock(); else rl.lock();
        try {
            Node n = resolve(path);
            int e = err(n);
            if (e != 0) return e;
            if (write) {
                if (n.isDir()) return -EISDIR;
                int r = copyUp(n, (flags & O_TRUNC) == 0);
                if (r < 0) return r;
            }
            int fd;
            if (n.rel.isEmpty()) fd = Posix.openat(stack[n.top()].fd(), ".", oflags, 0);
            else fd = stack[n.top()].openat(n.rel, oflags, 0);
            if (fd >= 0) {
                openFiles.put(fd, n);
                // every descriptor on a lower object is known as one (see upperFdOf): changes never go through it
                if (hasUpper && n.top() != 0) lowerHandles.put(fd, new LowerHandle(n));
            }
            return fd;
        } finally {
            if (write) wl.unlock(); else rl.unlock();
        }
    }

    /**
     * Whether an open file has other names (st_nlink > 1). libfuse 2 gives each name its own FUSE
     * inode, so the kernel's page cache of one name would not see writes through another: such files
     * are served with direct I/O.
     */
    public boolean hasOtherNames(int fd) {
        Stat st = Stat.local2();
        return Posix.fstat(fd, st) == 0 && st.type() == S_IFREG && st.nlink() > 1;
    }

    /**
     * Whether an open descriptor reads the same file for as long as it is open: false for a read-only
     * descriptor on a lower file, which moves to the upper copy if the file is copied up.
     */
    public boolean stableFd(int fd) {
        return !lowerHandles.containsKey(fd);
    }

    public long read(int fd, Pointer buf, long size, long off) {
        if (!lowerHandles.isEmpty()) {
            LowerHandle h = lowerHandles.get(fd);
            if (h != null) fd = current(h, fd);
        }
        return Posix.pread(fd, buf, size, off);
    }

    /**
     * The descriptor a read-only lower handle reads now: the upper copy once the file was copied up
     * ({@link #switchLowerHandles} opened it at copy-up time), else its own.
     */
    private static int current(LowerHandle h, int fd) {
        int u = h.upperFd;
        return u >= 0 ? u : fd;
    }

    public long write(int fd, Pointer buf, long size, long off) {
        return Posix.pwrite(fd, buf, size, off);
    }

    public int ftruncate(int fd, long size) {
        int u = lowerHandles.isEmpty() ? fd : upperFdOf(fd);
        return u < 0 ? u : Posix.ftruncate(u, size);
    }

    public int fsync(int fd, boolean dataOnly) {
        if (!opts.fsync) return 0;
        return dataOnly ? Posix.fdatasync(fd) : Posix.fsync(fd);
    }

    public int fallocate(int fd, int mode, long off, long len) { return Posix.fallocate(fd, mode, off, len); }

    public int release(int fd) {
        openFiles.remove(fd);
        LowerHandle h = lowerHandles.remove(fd);
        if (h != null && h.upperFd >= 0) Posix.close(h.upperFd);
        return Posix.close(fd);
    }

    // ================================================================== open files whose name is gone

    /**
     * The descriptor a change made through an open file must use once its name is gone (no path leads to
     * it): the descriptor itself when it was opened on the upper layer (an upper file, an O_TMPFILE
     * file), the upper copy a read-only lower open moved to when the file was copied up before its
     * removal; -EEXIST for a lower file that was never copied up. The kernel overlay answers EEXIST there
     * (its copy-up finds the whiteout at the name), and the lower file must never change: a lower layer is
     * shared by every mount made from it.
     */
    private int upperFdOf(int fd) {
        if (!hasUpper) return -EROFS;
        LowerHandle h = lowerHandles.get(fd);
        if (h == null) return fd;
        int u = h.upperFd;
        return u >= 0 ? u : -EEXIST;
    }

    /** getxattr through an open file whose name was removed (a lower file's own, or its upper copy's). */
    public int fgetxattr(int fd, String name, Pointer value, long size) {
        if (isPrivate(name)) return -EOPNOTSUPP;
        if (OverrideStat.isOverrideXattr(name)) return -ENODATA;
        if (aclRefused(name)) return -EOPNOTSUPP;
        LowerHandle h = lowerHandles.isEmpty() ? null : lowerHandles.get(fd);
        return (int) Posix.fgetxattr(h != null ? current(h, fd) : fd, diskXattr(name), size == 0 ? null : value, size);
    }

    /** listxattr through an open file whose name was removed. */
    public int flistxattr(int fd, Pointer list, long size, java.util.function.BooleanSupplier showTrusted) {
        LowerHandle h = lowerHandles.isEmpty() ? null : lowerHandles.get(fd);
        return xattrList(Posix.flistxattr(h != null ? current(h, fd) : fd), list, size, showTrusted);
    }

    /** chmod through an open file whose name was removed (see {@link #upperFdOf}). */
    public int fchmod(int fd, int mode) {
        lock.writeLock().lock(); // a copy-up switching lower handles to their upper copy finishes first
        try {
            int u = upperFdOf(fd);
            if (u < 0) return u;
            Node n = openFiles.get(fd);
            if (n != null && overrides.writes(n.type)) {
                OverrideStat.Value cur = currentOverride(u);
                if (cur == null) return -EIO;
                return overrides.write(u, cur.uid, cur.gid, mode & 07777);
            }
            return Posix.fchmod(u, mode & 07777);
        } finally {
            lock.writeLock().unlock();
        }
    }

    /** chown through an open file whose name was removed: ids mapped and the override kept as by {@link #chown}. */
    public int fchown(int fd, int uid, int gid) {
        int hu = hostUid(uid), hg = hostGid(gid);
        lock.writeLock().lock();
        try {
            int u = upperFdOf(fd);
            if (u < 0) return u;
            Node n = openFiles.get(fd);
            if (n != null && overrides.writes(n.type)) {
                OverrideStat.Value cur = currentOverride(u);
                if (cur == null) return -EIO;
                return overrides.write(u, hu == -1 ? cur.uid : hu, hg == -1 ? cur.gid : hg, cur.mode);
            }
            return Posix.fchown(u, hu, hg);
        } finally {
            lock.writeLock().unlock();
        }
    }

    /** The owner and mode an upper file shows before id mapping: its override, else its inode's. */
    private OverrideStat.Value currentOverride(int fd) {
        Stat st = Stat.local2();
        if (Posix.fstat(fd, st) < 0) return null;
        Pointer p = st.pointer();
        overrides.applyFd(0, fd, p);
        return new OverrideStat.Value(p.getInt(Stat.OFF_UID), p.getInt(Stat.OFF_GID), p.getInt(Stat.OFF_MODE) & 07777);
    }

    /**
     * truncate(2) of an open file whose name was removed (of /proc/self/fd/N: no descriptor of the caller
     * comes with it, and the one strata holds may be read-only): through a writable descriptor of the upper file.
     */
    public int truncateRemoved(int fd, long size) {
        lock.writeLock().lock();
        try {
            int u = upperFdOf(fd);
            if (u < 0) return u;
            int w = Posix.openat(AT_FDCWD, "/proc/self/fd/" + u, O_WRONLY, 0);
            if (w < 0) return w;
            try {
                return Posix.ftruncate(w, size);
            } finally {
                Posix.close(w);
            }
        } finally {
            lock.writeLock().unlock();
        }
    }

    /** utimens through an open file whose name was removed. */
    public int futimens(int fd, long aSec, long aNsec, long mSec, long mNsec) {
        lock.writeLock().lock();
        try {
            int u = upperFdOf(fd);
            return u < 0 ? u : Posix.futimens(u, aSec, aNsec, mSec, mNsec);
        } finally {
            lock.writeLock().unlock();
        }
    }

    /** setxattr through an open file whose name was removed (the same names refused as by {@link #setxattr}). */
    public int fsetxattr(int fd, String name, Pointer value, long size, int flags) {
        if (isPrivate(name) || aclRefused(name)) return -EOPNOTSUPP;
        if (OverrideStat.isOverrideXattr(name)) return -EPERM;
        lock.writeLock().lock();
        try {
            int u = upperFdOf(fd);
            return u < 0 ? u : Posix.fsetxattr(u, diskXattr(name), value, size, flags);
        } finally {
            lock.writeLock().unlock();
        }
    }

    /** removexattr through an open file whose name was removed. */
    public int fremovexattr(int fd, String name) {
        if (isPrivate(name) || aclRefused(name)) return -EOPNOTSUPP;
        if (OverrideStat.isOverrideXattr(name)) return -EPERM;
        lock.writeLock().lock();
        try {
            int u = upperFdOf(fd);
            return u < 0 ? u : Posix.fremovexattr(u, diskXattr(name));
        } finally {
            lock.writeLock().unlock();
        }
    }
}
