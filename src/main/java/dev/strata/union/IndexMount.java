package dev.strata.union;

import dev.strata.layer.Layer;
import dev.strata.options.MountOptions;
import dev.strata.posix.Getdents;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;

import static dev.strata.posix.Errno.*;
import static dev.strata.posix.Posix.*;

/**
 * What the kernel checks and writes when it mounts with index=on (super.c ovl_get_indexdir,
 * ovl_make_workdir, ovl_get_fsid; namei.c ovl_verify_origin, ovl_verify_index; readdir.c
 * ovl_indexdir_cleanup), done before the engine starts:
 * <ul>
 * <li>index=on needs overlay xattrs on the upper (trusted.*, or user.* with userxattr) and file handles
 *     on every layer, and a lower file system other than the upper's with a uuid that tells it apart;
 *     otherwise index is turned off with a warning, as the kernel does;</li>
 * <li>the upper root's {@code overlay.origin} is the handle of the top lower layer's root: written on
 *     the first mount, and an upper used with other lower layers is refused (ESTALE, "failed to verify
 *     upper root origin");</li>
 * <li>{@code workdir/index} (mode 0 as root) carries {@code overlay.upper}, the handle of the upper root:
 *     a workdir whose index belongs to another upper is refused;</li>
 * <li>index entries: leftover temporaries ({@code #...}), entries whose {@code overlay.origin} does not
 *     match their name and entries of one link whose lower file no longer decodes are removed, orphans
 *     (one link, overlay nlink 0) too, with the kernel's warnings; a name that is not a handle, or an
 *     entry without a handle as its origin, aborts the mount, as on the kernel.</li>
 * </ul>
 */
final class IndexMount {
    private IndexMount() {}

    /** What the mount found: the index directory (opened as a layer) and each layer's file system uuid. */
    static final class Setup {
        final Layer layer;
        final byte[][] uuids;
        final String ns;
        Setup(Layer layer, byte[][] uuids, String ns) { this.layer = layer; this.uuids = uuids; this.ns = ns; }
    }

    static final String HINT = ": remove the workdir's index directory or mount with -o index=off";

    /**
     * Checks and prepares the index of a mount with an upper; returns null (after a warning) where the
     * kernel would fall back to index=off. Throws {@link IllegalStateException} (one line) where the
     * kernel refuses the mount.
     */
    static Setup prepare(MountOptions opts, List<Layer> layers, int workFd, Consumer<String> warn) {
        Layer up = layers.get(0);
        boolean trusted = Overlay.trustedXattrsWork(workFd);
        if (!trusted && !opts.userXattr) {
            warn.accept("the upper takes no trusted.* xattrs, falling back to index=off (userxattr stores user.overlay.*)");
            return null;
        }
        String ns = trusted && !opts.userXattr ? "trusted." : "user.";
        if (!canDecodeHandles()) {
            // ovl_can_decode_fh: the kernel decodes file handles only with CAP_DAC_READ_SEARCH (rootless: none)
            warn.accept("upper fs does not support file handles, falling back to index=off (no CAP_DAC_READ_SEARCH in the initial user namespace)");
            return null;
        }
        int[] err = new int[1];
        byte[][] uuids = new byte[layers.size() + 1][];
        byte[][] roots = new byte[layers.size()][];
        for (int i = 0; i < layers.size(); i++) {
            Layer l = layers.get(i);
            uuids[i] = FileHandles.uuid(l, err);
            roots[i] = uuids[i] == null ? null : FileHandles.encode(l, "", uuids[i], i == 0, err);
            if (roots[i] == null) {
                warn.accept((i == 0 ? "upper fs" : "fs on '" + l.root() + "'") + " does not support file handles ("
                        + Posix.strerror(err[0]) + "), falling back to index=off");
                return null;
            }
        }
        // ovl_lower_uuid_ok: a lower file system other than the upper's must have a uuid of its own
        for (int i = 1; i < layers.size(); i++) {
            if (layers.get(i).dev() == up.dev()) continue;
            boolean nul = Arrays.equals(uuids[i], new byte[16]);
            boolean clash = false;
            for (int j = 1; j < i; j++) {
                if (layers.get(j).dev() != up.dev() && layers.get(j).dev() != layers.get(i).dev() && Arrays.equals(uuids[j], uuids[i])) clash = true;
            }
            if (nul || clash) {
                warn.accept((nul ? "null" : "conflicting") + " uuid detected in lower fs '" + layers.get(i).root() + "', falling back to index=off");
                return null;
            }
        }
        String origin = ns + "overlay.origin", upper = ns + "overlay.upper";
        String upperRoot = "/proc/self/fd/" + up.fd() + "/.";
        int r = verifySet(upperRoot, origin, roots[1]);
        if (r < 0) {
            throw new IllegalStateException("upperdir " + opts.upperDir + ": failed to verify upper root origin ("
                    + Posix.strerror(r) + "): it was used with another lowerdir" + HINT);
        }
        Layer idx = openIndexDir(opts, workFd, layers.size());
        try {
            String idxPath = "/proc/self/fd/" + idx.fd() + "/.";
            // older kernels stored the upper's handle as the index dir's origin: it must match if there
            if (Posix.lgetxattr(idxPath, origin) != null && verifySet(idxPath, origin, roots[0]) < 0) {
                throw new IllegalStateException("workdir " + opts.workDir + ": failed to verify index dir 'origin' xattr" + HINT);
            }
            r = verifySet(idxPath, upper, roots[0]);
            if (r < 0) {
                throw new IllegalStateException("workdir " + opts.workDir + ": failed to verify index dir 'upper' xattr ("
                        + Posix.strerror(r) + "): its index belongs to another upperdir" + HINT);
            }
            try (Origins o = new Origins(opts, layers.toArray(new Layer[0]), true, ns)) {
                cleanup(opts, idx, ns, o, warn);
            }
        } catch (RuntimeException e) {
            idx.close();
            throw e;
        }
        uuids[layers.size()] = uuids[0];
        return new Setup(idx, uuids, ns);
    }

    /**
     * Whether this process has CAP_DAC_READ_SEARCH in the initial user namespace (what the kernel's
     * ovl_can_decode_fh asks of the mounter): its effective set has the bit and its user namespace maps
     * every id (the initial one does; a container's or rootless podman's does not). No: where it cannot tell.
     */
    static boolean canDecodeHandles() {
        return dev.strata.posix.SelfCapabilities.initialNamespaceHas(dev.strata.posix.SelfCapabilities.CAP_DAC_READ_SEARCH, false);
    }

    /** ovl_verify_origin_xattr with set: 0 when the stored handle is fh (or was absent and is now set), else -errno. */
    static int verifySet(String path, String name, byte[] fh) {
        byte[] v = Posix.lgetxattr(path, name);
        if (v != null && v.length > 0) {
            int c = FileHandles.check(v);
            if (c == -EINVAL) return c;
            if (c == 0) return Arrays.equals(Arrays.copyOf(v, v[2] & 0xff), fh) ? 0 : -ESTALE;
        }
        return Posix.lsetxattr(path, name, fh, 0);
    }

    /**
     * workdir/index, made as the kernel makes it (mode 0 as root), opened as a layer: through the workdir
     * the work directory workFd is in (the same detached copy of the mount as the upper: links between
     * the index and the upper stay within one mount, see Detached).
     */
    static Layer openIndexDir(MountOptions opts, int workFd, int position) {
        int wfd = Posix.openat(workFd, "..", O_PATH | O_DIRECTORY, 0);
        if (wfd < 0) throw new IllegalStateException("cannot open workdir " + opts.workDir + ": " + Posix.strerror(wfd));
        try {
            int r = Posix.mkdirat(wfd, Index.DIR, Posix.geteuid() == 0 ? 0 : 0700);
            if (r < 0 && r != -EEXIST) throw new IllegalStateException("cannot create " + opts.workDir + "/index: " + Posix.strerror(r));
            int fd = Posix.openat(wfd, Index.DIR, O_PATH | O_DIRECTORY | O_NOFOLLOW, 0);
            if (fd < 0) throw new IllegalStateException(opts.workDir + "/index is not a directory: " + Posix.strerror(fd));
            return Layer.adopt(fd, opts.workDir.resolve(Index.DIR), position, false);
        } finally {
            Posix.close(wfd);
        }
    }

    /**
     * ovl_indexdir_cleanup: leftovers, stale and orphan entries go (the last two with the kernel's
     * warning); an entry the kernel cannot verify (a name that is no handle, an origin xattr missing or
     * not a handle) refuses the mount.
     */
    static void cleanup(MountOptions opts, Layer idx, String ns, Origins origins, Consumer<String> warn) {
        int dfd = Posix.openat(idx.fd(), ".", O_RDONLY | O_DIRECTORY, 0);
        if (dfd < 0) throw new IllegalStateException("cannot read " + opts.workDir + "/index: " + Posix.strerror(dfd));
        List<String> names = new ArrayList<>();
        try {
            Getdents.read(dfd, (ino, dt, name) -> {
                if (!name.equals(".") && !name.equals("..")) names.add(name);
                return true;
            });
        } finally {
            Posix.close(dfd);
        }
        Stat st = new Stat();
        for (String name : names) {
            if (idx.lstat(name, st) < 0) continue;
            int v = verify(idx, name, st, ns, origins);
            if (v == 0) continue;
            if (v != -ESTALE && v != -ENOENT) {
                throw new IllegalStateException("workdir " + opts.workDir + ": failed to verify index entry " + name
                        + " (" + Posix.strerror(v) + ")" + HINT);
            }
            if (!name.startsWith("#")) {
                // the kernel's warnings (the entry is removed after either)
                warn.accept(v == -ENOENT ? "orphan index entry (index/" + name + ", ftype=" + Integer.toHexString(st.type()) + ", nlink=" + st.nlink() + ")"
                        : "failed to verify index (index/" + name + ", ftype=" + Integer.toHexString(st.type()) + ", err=-116)");
            }
            Tree.removeAt(idx.fd(), name);
        }
    }

    /**
     * ovl_verify_index: 0 keep, -ESTALE stale (a leftover temporary, an origin that names another object or
     * decodes to nothing of its type), -ENOENT orphan (one link and no overlay link left: ovl_get_nlink
     * with the decoded lower file), another -errno where the kernel refuses the mount.
     */
    static int verify(Layer idx, String name, Stat st, String ns, Origins origins) {
        if (name.startsWith("#")) return -ESTALE; // leftover of an index create/cleanup
        byte[] fh = FileHandles.unhex(name);
        if (fh == null || fh.length < FileHandles.HEADER) return -EINVAL;
        int c = FileHandles.check(fh);
        if (c < 0) return c;
        if ((fh[2] & 0xff) > fh.length) return -EINVAL;
        fh = Arrays.copyOf(fh, fh[2] & 0xff);
        if (st.isWhiteoutDevice()) return 0;  // a handle made stale on purpose (nfs_export)
        if (st.isDir()) return 0;             // verified only with nfs_export
        // ovl_verify_fh of the entry's own origin: missing or no handle refuses the mount, another handle is stale
        byte[] o = idx.getxattr(name, ns + "overlay.origin");
        if (o == null || FileHandles.check(o) < 0) return -ENODATA;
        if (!Arrays.equals(Arrays.copyOf(o, Math.min(o.length, o[2] & 0xff)), fh)) return -ESTALE;
        if (st.nlink() != 1) return 0;
        // no name in the upper: the lower file must still be there (ovl_check_origin_fh) and have other names
        long[] lower = origins.decode(fh);
        if (lower == null || lower[3] != st.type()) return -ESTALE;
        if (lower[2] == 1) return -ENOENT;    // ovl_get_nlink's fallback 0
        long n = Index.overlayNlink(idx.getxattr(name, ns + "overlay.nlink"), st.nlink(), lower[2]);
        return n <= 0 ? -ENOENT : 0;
    }
}
