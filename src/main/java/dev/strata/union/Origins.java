package dev.strata.union;

import dev.strata.layer.Layer;
import dev.strata.options.MountOptions;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;

import java.util.Arrays;
import java.util.List;

import static dev.strata.posix.Posix.*;

/**
 * The kernel's {@code overlay.origin} of copied-up objects, with or without index (copy_up.c
 * ovl_get_origin_fh / ovl_set_origin_fh, namei.c ovl_check_origin_fh / ovl_decode_real_fh):
 * <ul>
 * <li>written on every copy-up of a directory, of a non-directory with one link, and of an indexed file:
 *     the {@link FileHandles struct ovl_fb} of the lower object, or an empty value (the kernel's "null
 *     fh") where the mount cannot decode handles of that layer's file system (no CAP_DAC_READ_SEARCH in
 *     the initial user namespace, as rootless; no file handles there);</li>
 * <li>read back for the inode number of a copied-up non-directory: the handle decoded in the lower layers
 *     (open_by_handle_at on each layer's file system, the first that knows it; layers whose uuid cannot
 *     tell their file system apart skipped), the lower inode's number shown while it has one link (or the
 *     file is indexed), as ovl_getattr shows it;</li>
 * <li>uuid=off: handles carry the null uuid, and only such handles are decoded (ovl_origin_uuid).</li>
 * </ul>
 * strata's own decimal {@code overlay.strata.origin} is written only where the kernel's value is the null
 * handle (it cannot carry the number there); uppers that have it keep being read ({@link Attrs}).
 */
final class Origins implements AutoCloseable {
    /** The overlay.origin xattr's name in this mount's namespace (trusted. or user.). */
    final String xattr;
    private final Layer[] layers;       // the lookup stack: [0] the upper when hasUpper
    private final int first;            // the first lower layer
    private final byte[][] uuids;       // per layer: its file system's uuid (null: no file handles there)
    private final boolean[] bad;        // lower layers whose uuid cannot tell their file system apart
    private final int[] mountFds;       // per lower layer: an O_RDONLY fd of its root for open_by_handle_at (-1: not yet, -2: none)
    private final boolean decode;       // CAP_DAC_READ_SEARCH in the initial user namespace
    private final boolean uuidOff;

    Origins(MountOptions opts, Layer[] layers, boolean hasUpper, String ns) {
        this.xattr = ns + "overlay.origin";
        this.layers = layers;
        this.first = hasUpper ? 1 : 0;
        this.uuidOff = "off".equals(opts.uuid);
        this.decode = IndexMount.canDecodeHandles();
        int n = layers.length;
        uuids = new byte[n][];
        bad = new boolean[n];
        mountFds = new int[n];
        Arrays.fill(mountFds, -1);
        if (!decode) return; // only null handles are written, none read: nothing to learn about the layers
        int[] err = new int[1];
        int[] type = new int[1];
        for (int i = 0; i < n; i++) {
            byte[] u = FileHandles.uuid(layers[i], err);
            // ovl_can_decode_fh: a file system that gives no handle of its root gives none at all
            if (u != null && Posix.nameToHandle(layers[i].fd(), "", type, err) != null) uuids[i] = u;
        }
        if (!hasUpper) return;
        // ovl_lower_uuid_ok (with an upper): a lower file system other than the upper's is skipped when
        // decoding if another lower one has its uuid, or if its uuid is null and no feature that needs
        // origins across offline changes is on (index, metacopy, redirect_dir=on, xino=on)
        boolean offline = opts.allowOfflineChanges();
        for (int i = 1; i < n; i++) {
            if (uuids[i] == null || layers[i].dev() == layers[0].dev()) continue;
            boolean clash = false;
            for (int j = 1; j < i; j++) {
                if (uuids[j] != null && layers[j].dev() != layers[0].dev() && layers[j].dev() != layers[i].dev() && Arrays.equals(uuids[j], uuids[i])) clash = true;
            }
            bad[i] = clash || (offline && Arrays.equals(uuids[i], new byte[16]));
        }
    }

    /** An fd of lower layer li's root open_by_handle_at takes (not O_PATH: EBADF), opened on first use; -1 where li is not decoded in. */
    private synchronized int mountFd(int li) {
        if (mountFds[li] == -1 && uuids[li] != null && !bad[li]) {
            int fd = Posix.openat(layers[li].fd(), ".", O_RDONLY | O_DIRECTORY, 0);
            mountFds[li] = fd >= 0 ? fd : -2;
        }
        return mountFds[li];
    }

    /**
     * The value of overlay.origin for a copy of lower layer li's object at rel: its handle, or the empty
     * value (the kernel's null handle) where this mount cannot decode handles there.
     */
    byte[] valueFor(int li, String rel) {
        byte[] fh = handle(li, rel);
        return fh != null ? fh : NULL_FH;
    }

    /** The handle of lower layer li's object at rel as the kernel encodes it (ovl_encode_real_fh), or null. */
    byte[] handle(int li, String rel) {
        if (!decode || uuids[li] == null) return null;
        int[] err = new int[1];
        return FileHandles.encode(layers[li], rel, uuidOff ? new byte[16] : uuids[li], false, err);
    }

    static final byte[] NULL_FH = new byte[0];

    /** Whether a value {@link #valueFor} gives is a handle (not the null one). */
    static boolean isHandle(byte[] v) { return v != null && v.length > 0; }

    /** Writes overlay.origin on the fresh copy at path; 0 or -errno (an upper without xattrs, and EPERM of user.* on a symlink, are no error). */
    int set(String path, byte[] v) {
        if (v == null) return 0;
        return ok(Posix.lsetxattr(path, xattr, v, 0));
    }

    int setFd(int fd, byte[] v) {
        if (v == null) return 0;
        return ok(Posix.fsetxattr(fd, xattr, v, 0));
    }

    private static int ok(int r) {
        return r == -dev.strata.posix.Errno.EOPNOTSUPP || r == -dev.strata.posix.Errno.EPERM ? 0 : r;
    }

    /**
     * The lower object an origin handle names: {layer, inode number, nlink, file type} of the first lower
     * layer that decodes it, or null (no handle, the null handle, not decodable here, stale).
     */
    long[] decode(byte[] o) {
        if (!isHandle(o) || !decode || FileHandles.check(o) < 0) return null;
        int len = o[2] & 0xff;
        byte[] uuid = Arrays.copyOfRange(o, 5, 21), fid = Arrays.copyOfRange(o, FileHandles.HEADER, len);
        for (int li = first; li < layers.length; li++) {
            if (uuids[li] == null || bad[li]) continue;
            if (uuidOff ? !Arrays.equals(uuid, new byte[16]) : !Arrays.equals(uuids[li], uuid)) continue;
            int mfd = mountFd(li);
            if (mfd < 0) continue;
            int fd = Posix.openByHandle(mfd, o[4] & 0xff, fid, O_PATH);
            if (fd < 0) continue;
            try {
                Stat st = new Stat();
                if (Posix.fstat(fd, st) == 0) return new long[]{li, st.ino(), st.nlink(), st.type()};
            } finally {
                Posix.close(fd);
            }
        }
        return null;
    }

    @Override public synchronized void close() {
        for (int i = 0; i < mountFds.length; i++) {
            if (mountFds[i] >= 0) Posix.close(mountFds[i]);
            mountFds[i] = -2;
        }
    }
}
