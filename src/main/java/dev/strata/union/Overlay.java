package dev.strata.union;

import dev.strata.layer.Layer;
import dev.strata.options.MountOptions;
import dev.strata.posix.Posix;

import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantReadWriteLock;

import static dev.strata.posix.Errno.*;
import static dev.strata.posix.Posix.*;

/**
 * The state of one mount shared by every part of the engine (the kernel's struct ovl_fs): the options,
 * the layer stack, the workdir, the root node and the lock, and the parts themselves, one per concern.
 *
 * <p>Concurrency: namespace lookups and reads hold a shared lock; anything that changes a layer (copy-up,
 * create, remove, rename, attribute changes) holds the exclusive lock. Data reads and writes on an open
 * descriptor take no lock.
 */
final class Overlay implements AutoCloseable {
    static final int NAME_MAX = 255;
    /**
     * strata's own record of a copied-up object's presented inode number (hidden like every overlay
     * xattr): written only where the kernel's overlay.origin is the null handle ({@link Origins}), read
     * wherever it is (uppers strata wrote before it wrote the kernel's origin keep their numbers).
     */
    static final String ORIGIN_TRUSTED = "trusted.overlay.strata.origin";
    static final String ORIGIN_USER = "user.overlay.strata.origin";
    /**
     * The kernel's marker of an upper directory that holds entries with an origin (ovl_set_impure), in
     * the namespace of {@link #originXattr}: readdir looks up the presented number of its upper entries.
     */
    static final String IMPURE_TRUSTED = "trusted.overlay.impure";
    static final String IMPURE_USER = "user.overlay.impure";

    final MountOptions opts;
    final Layer[] stack;          // [0] is the upper when hasUpper; with index=on the index directory last
    /** The layers lookups go through: {@link #stack} without the index directory. */
    final Layer[] lookupStack;
    /** index=on (null when off): the inodes index, whose directory is the last layer of {@link #stack}. */
    final Index index;
    /**
     * The first data-only lower layer in {@link #stack} (lowerdir=A::D, datadir+=D): layers from here to
     * the end of {@link #lookupStack} are never merged nor listed, only read through the absolute
     * redirect of a metadata-only copy ({@link Lowerdata}). {@code lookupStack.length} when there are none.
     */
    final int dataFrom;
    final boolean hasUpper;
    final int workFd;             // O_PATH fd of workdir/work, -1 when read-only
    final boolean singleDev;
    final int[] devIndex;         // per layer: index of its st_dev among the distinct ones
    /**
     * xino=on/auto over several file systems: the kernel's xinoshift (64 - xinobits; 0 when unused). A
     * layer's inode number below 1 << xinoShift gets its fsid at bit xinoShift + 1 (ovl_map_dev_ino).
     */
    final int xinoShift;
    final boolean root;           // the daemon can chown and set trusted.* xattrs
    final String originXattr;
    final String impureXattr;
    /** The kernel's overlay.origin: written on copy-up, read for inode numbers (null without an upper). */
    final Origins origins;
    /** How lookups treat redirects ({@link LayerLookup#FOLLOW}, {@link LayerLookup#UPPER}). */
    final int lookupFlags;
    /** Where a rename stores a redirect: trusted.overlay.redirect, or user. where trusted xattrs fail. */
    final String redirectXattr;
    final Protect protect;         // chattr +a/+i (overlay.protattr) and what they refuse
    /** Where a metadata-only copy-up marks its file: trusted.overlay.metacopy, or user. as the origin. */
    final String metacopyXattr;
    final OverrideStat overrides;  // owner and mode kept in xattrs (xattr_permissions, force_mask)
    final UnionEvents events;
    final DataCopy dataCopy;
    final Node rootNode;
    final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    private final AtomicLong tmpCounter = new AtomicLong();

    final Namei namei = new Namei(this);
    final Attrs attrs = new Attrs(this);
    final Readdir readdir = new Readdir(this);
    final CopyUp copy = new CopyUp(this);
    final UnlockedCopy unlockedCopy = new UnlockedCopy(this);
    final MetaCopy metaCopy = new MetaCopy(this);
    final FileAttr fileattr = new FileAttr(this);
    final Create create = new Create(this);
    final Remove remove = new Remove(this);
    final Rename rename = new Rename(this);
    final Xattrs xattrs = new Xattrs(this);
    final OpenFiles files = new OpenFiles(this);
    final RemovedLower removedLower = new RemovedLower(this);
    final Lowerdata lowerdata = new Lowerdata(this);
    final LazyFiles lazy;

    Overlay(MountOptions opts, Layer[] stack, boolean hasUpper, int workFd, UnionEvents events) {
        this(opts, stack, hasUpper, workFd, events, null);
    }

    Overlay(MountOptions opts, Layer[] stack, boolean hasUpper, int workFd, UnionEvents events, IndexMount.Setup ix) {
        this.opts = opts;
        this.stack = stack;
        this.lookupStack = ix == null ? stack : java.util.Arrays.copyOf(stack, stack.length - 1);
        this.hasUpper = hasUpper;
        this.dataFrom = lookupStack.length - opts.dataDirs.size();
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
        // ovl_get_layers: fsid 0 is the upper's (reserved even without one), xinobits = ilog2(numfs - 1) + 2
        int numfs = nDev + (hasUpper ? 0 : 1);
        xinoShift = nDev > 1 && !"off".equals(opts.xino) ? 64 - (31 - Integer.numberOfLeadingZeros(numfs - 1) + 2) : 0;
        originXattr = hasUpper && !opts.userXattr && trustedXattrsWork(workFd) ? ORIGIN_TRUSTED : ORIGIN_USER;
        impureXattr = originXattr == ORIGIN_TRUSTED ? IMPURE_TRUSTED : IMPURE_USER;
        origins = hasUpper ? new Origins(opts, lookupStack, true, originXattr == ORIGIN_TRUSTED ? "trusted." : "user.") : null;
        lookupFlags = (opts.redirectFollow() ? LayerLookup.FOLLOW : 0) | (hasUpper ? LayerLookup.UPPER : 0)
                | (opts.metacopy ? LayerLookup.METACOPY : 0);
        redirectXattr = originXattr == ORIGIN_TRUSTED ? dev.strata.layer.Markers.TRUSTED_REDIRECT : dev.strata.layer.Markers.USER_REDIRECT;
        protect = new Protect(this, originXattr == ORIGIN_TRUSTED);
        metacopyXattr = originXattr == ORIGIN_TRUSTED ? dev.strata.layer.Markers.TRUSTED_METACOPY : dev.strata.layer.Markers.USER_METACOPY;
        overrides = OverrideStat.of(stack, hasUpper, opts.xattrPermissions);
        lazy = new LazyFiles(stack);
        dataCopy = new DataCopy(workFd, stack, lazy);
        index = ix == null ? null : new Index(this, ix);
        int[] all = new int[dataFrom];
        for (int i = 0; i < all.length; i++) all[i] = i;
        // the root merges every layer: an opaque mark on a layer's root hides nothing (as on the kernel overlay)
        rootNode = new Node(null, "", all, S_IFDIR, false, namei.xwhMask("", all));
    }

    /**
     * Whether a lookup takes layer li as the last one for a file (LayerLookup: the bottom layer, whose
     * metacopy marks are not read); never with data-only layers, below which a copy's data may be.
     */
    boolean lastForFiles(int li) {
        return dataFrom == lookupStack.length && li == lookupStack.length - 1;
    }

    static Layer openLayer(Path p, int index, boolean upper, int[] err) {
        Layer l = Layer.open(p, index, upper, err);
        if (l == null) throw new IllegalStateException("cannot open " + p + ": " + Posix.strerror(err[0]));
        try {
            return l.attachLazy();
        } catch (IllegalStateException e) {
            l.close();
            throw e;
        }
    }

    /** Whether trusted.* xattrs can be set here (root in the initial user namespace; not in a container's). */
    static boolean trustedXattrsWork(int dirFd) {
        String p = "/proc/self/fd/" + dirFd + "/.";
        if (Posix.lsetxattr(p, "trusted.overlay.strata.probe", new byte[]{'1'}, 0) != 0) return false;
        Posix.lremovexattr(p, "trusted.overlay.strata.probe");
        return true;
    }

    /**
     * Makes workdir/work (as the kernel does), empties it of leftovers, and returns an O_PATH fd on it;
     * wd is the workdir (workDir is for messages), left open. As the kernel's mount (ovl_workdir_cleanup),
     * refuses a workdir whose work/incompat holds anything: an incompatible feature's mark, the one
     * the kernel knows being {@code volatile}, which a volatile mount leaves (its upper may not have
     * reached the disk if the system went down meanwhile). {@code volatileMount}: this mount is one, and
     * leaves that mark ({@link #markVolatile}).
     */
    static int prepareWork(Path workDir, int wd, boolean volatileMount) {
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
        int[] err = {0};
        String feature = Tree.firstEntry(fd, INCOMPAT, err);
        if (err[0] < 0) {
            Posix.close(fd);
            throw new IllegalStateException("cannot read " + workDir + "/work/" + INCOMPAT + " (an incompatible feature's mark may be there): "
                    + Posix.strerror(err[0]));
        }
        if (feature != null) {
            Posix.close(fd);
            throw new IllegalStateException("workdir " + workDir + " holds the incompatible feature '" + feature
                    + "' (" + workDir + "/work/" + INCOMPAT + "/" + feature + ")"
                    + (feature.equals(VOLATILE) ? ", left by a volatile mount whose changes may not have reached the disk" : "")
                    + ": the kernel overlay refuses to mount it too; if the upper is sound (sync -f on it), remove that directory");
        }
        Tree.removeContents(fd);
        if (volatileMount) {
            int m = markVolatile(fd, root);
            if (m < 0) {
                Posix.close(fd);
                throw new IllegalStateException("cannot mark " + workDir + "/work/" + INCOMPAT + "/" + VOLATILE + ": " + Posix.strerror(m));
            }
        }
        return fd;
    }

    static final String INCOMPAT = "incompat", VOLATILE = "volatile";

    /**
     * The mark of a volatile mount, as the kernel's (ovl_create_volatile_dirty): work/incompat/volatile/dirty,
     * mode 0 as the kernel makes them (0700 and 0600 for a daemon without root, which must enter and
     * remove them itself). It stays after the unmount, so that no later mount (strata's or the kernel's)
     * takes the upper for sound; podman removes it before it mounts a container's layer again.
     */
    static int markVolatile(int work, boolean root) {
        int r = Posix.mkdirat(work, INCOMPAT, root ? 0 : 0700);
        if (r < 0) return r;
        int inc = Posix.openat(work, INCOMPAT, O_PATH | O_DIRECTORY | O_NOFOLLOW, 0);
        if (inc < 0) return inc;
        try {
            r = Posix.mkdirat(inc, VOLATILE, root ? 0 : 0700);
            if (r < 0) return r;
            int vol = Posix.openat(inc, VOLATILE, O_PATH | O_DIRECTORY | O_NOFOLLOW, 0);
            if (vol < 0) return vol;
            try {
                int f = Posix.openat(vol, "dirty", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, root ? 0 : 0600);
                if (f < 0) return f;
                Posix.close(f);
                return 0;
            } finally {
                Posix.close(vol);
            }
        } finally {
            Posix.close(inc);
        }
    }

    @Override public void close() {
        files.closePathHandles();
        namei.nodes.close();
        if (origins != null) origins.close();
        for (Layer l : stack) l.close();
        if (workFd >= 0) Posix.close(workFd);
    }

    String tmpName() {
        return "#strata." + ProcessHandle.current().pid() + "." + tmpCounter.incrementAndGet();
    }
}
