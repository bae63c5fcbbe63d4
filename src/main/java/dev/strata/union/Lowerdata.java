package dev.strata.union;

import dev.strata.layer.Layer;
import dev.strata.layer.Markers;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;

import java.util.Arrays;

import static dev.strata.posix.Errno.*;
import static dev.strata.posix.Posix.*;

/**
 * The data of a metadata-only copy before it is read or copied up (the kernel's ovl_verify_lowerdata in
 * namei.c): the lazy lookup of data in data-only lower layers, and the fs-verity check of verity=on/require.
 *
 * <p>Data-only layers (overlayfs.rst "Data-only lower layers"): a metadata-only copy in a regular lower
 * layer whose absolute overlay.redirect finds no data in the regular layers below has its data looked
 * up, on first need, at that path from the root of each data-only layer in order
 * ({@link #lookup}): no symlink followed, a regular file only; none found is the kernel's error of the
 * last data layer asked (ENOENT as a rule). Until then stat shows the copy with st_blocks estimated
 * from its size, as the kernel does to spare the lookup.
 *
 * <p>verity (overlayfs.rst "fs-verity support"): overlay.metacopy may hold a struct ovl_metacopy
 * (version 0, len, flags, digest_algo, digest). With verity=on a copy with a digest is checked against
 * its data file's fs-verity digest (FS_IOC_MEASURE_VERITY) before its first read or copy-up: a file
 * without fs-verity, another algorithm or digest is EIO, and so is, with verity=require, a copy without
 * a digest. Checked once per node, again after a copy-up.
 */
final class Lowerdata {
    private final Overlay ovl;

    Lowerdata(Overlay ovl) { this.ovl = ovl; }

    /** Largest struct ovl_metacopy: the header and a 64-byte digest (FS_VERITY_MAX_DIGEST_SIZE). */
    static final int METACOPY_MAX = Markers.METACOPY_HEADER + 64;

    /** The lazy data lookup, then the digest check: what a read open and every copy-up of n does first. */
    int verify(Node n) {
        if (n.type != S_IFREG) return 0;
        int r = lookup(n);
        if (r < 0 || !ovl.opts.verityOn() || n.verified || !n.metacopy() || !ovl.metaCopy.stillMetacopy(n)) return r;
        synchronized (n) {
            if (n.verified) return 0;
            r = checkDigest(n);
            if (r == 0) n.verified = true;
            return r;
        }
    }

    /**
     * Looks up the data of a metadata-only copy in the data-only layers (ovl_maybe_lookup_lowerdata):
     * 0 once n's layers end with the layer holding it (at once when it has no pending redirect), else -errno.
     */
    int lookup(Node n) {
        if (n.lowerdataRedirect == null) return 0;
        synchronized (n) {
            String redirect = n.lowerdataRedirect;
            if (redirect == null) return 0;
            if (redirect.charAt(0) != '/') return -EIO;
            String rel = redirect.substring(1);
            int err = -ENOENT;
            Stat st = Stat.local2();
            for (int dl = ovl.dataFrom; dl < ovl.lookupStack.length; dl++) {
                err = dataFile(ovl.stack[dl], rel, st);
                if (err != 0) continue;
                int[] old = n.layers;
                int[] layers = Arrays.copyOf(old, old.length + 1);
                layers[old.length] = dl;
                n.paths[dl] = rel; // Namei gave such a node a paths array
                n.layers = layers;
                n.lowerdataRedirect = null;
                ovl.events.dataFound("/" + n.rel);
                return 0;
            }
            ovl.events.dataRefused("/" + n.rel, "no data at " + redirect + " in the data-only layers (" + Posix.strerror(err) + ")");
            return err;
        }
    }

    /**
     * Whether a data-only layer has a regular file at rel (the kernel's vfs_path_lookup with
     * LOOKUP_BENEATH | LOOKUP_NO_SYMLINKS: a symlink on the way is ELOOP, a final one is no regular file).
     */
    private static int dataFile(Layer l, String rel, Stat st) {
        int fd = Posix.openat2(l.fd(), rel, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0,
                RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV);
        int r;
        if (fd == -ENOSYS) {
            r = l.lstat(rel, st); // no openat2: the layer's own walk, which follows no symlink either
        } else {
            if (fd < 0) return fd;
            r = Posix.fstat(fd, st);
            Posix.close(fd);
        }
        if (r < 0) return r;
        return st.type() == S_IFREG ? 0 : -ENOENT;
    }

    /** ovl_validate_verity: the digest in n's overlay.metacopy against its data file's fs-verity digest. */
    private int checkDigest(Node n) {
        int top = n.top();
        byte[] v = Markers.metacopyXattr(ovl.stack[top], n.relIn(top));
        if (v == null) return 0; // its data came up meanwhile
        int dl = n.dataLayer();
        String[] why = new String[1];
        int r = verdict(v, () -> measure(ovl.stack[dl], n.relIn(dl)), ovl.opts.verityRequire(), why);
        if (r < 0) ovl.events.dataRefused("/" + n.rel, why[0] + " (data file " + n.relIn(dl) + ")");
        return r;
    }

    /**
     * The kernel's verdict on an overlay.metacopy value {@code v} (ovl_maybe_validate_verity and
     * ovl_validate_verity): 0, or -EIO / -ERANGE with why[0] saying why. {@code actual} gives the data
     * file's fs-verity digest as {@link #measure} does (null: none), asked only when v holds a digest.
     */
    static int verdict(byte[] v, java.util.function.Supplier<byte[]> actual, boolean require, String[] why) {
        if (v.length > METACOPY_MAX) { why[0] = "overlay.metacopy larger than a struct ovl_metacopy"; return -ERANGE; }
        boolean digest = v.length > Markers.METACOPY_HEADER; // the kernel's OVL_HAS_DIGEST
        if (digest && (v[0] != 0 || (v[1] & 0xff) != v.length)) {
            why[0] = "overlay.metacopy of unsupported version or invalid size";
            return -EIO;
        }
        if (!digest || v[3] == 0) {
            if (!require) return 0;
            why[0] = "no fs-verity digest in overlay.metacopy (verity=require)";
            return -EIO;
        }
        byte[] a = actual.get();
        if (a == null) { why[0] = "the data file has no fs-verity digest"; return -EIO; }
        if (a[0] != v[3] || a.length - 1 != v.length - Markers.METACOPY_HEADER
                || !Arrays.equals(a, 1, a.length, v, Markers.METACOPY_HEADER, v.length)) {
            why[0] = "the data file has the wrong fs-verity digest";
            return -EIO;
        }
        return 0;
    }

    /**
     * The fs-verity digest of a layer file as overlay.metacopy holds it ({algorithm, digest...}), or null
     * where it has none (no fs-verity on the file, its file system or this kernel).
     */
    static byte[] measure(Layer l, String rel) {
        int fd = l.openat(rel, O_RDONLY | O_NOFOLLOW, true);
        if (fd < 0) return null;
        try {
            return Posix.measureVerity(fd, new int[1]);
        } finally {
            Posix.close(fd);
        }
    }

    /** Whether the file holding n's data has fs-verity (a digest a metadata-only copy-up can record). */
    boolean dataHasVerity(Node n) {
        int dl = n.dataLayer();
        return measure(ovl.stack[dl], n.relIn(dl)) != null;
    }

    /**
     * The overlay.metacopy value a metadata-only copy-up writes (ovl_get_verity_digest and
     * ovl_set_metacopy_xattr): empty, or with verity=on/require and a data file that has fs-verity, a
     * struct ovl_metacopy with its digest. Null with verity=require and no digest: the copy-up fails (EIO).
     */
    byte[] metacopyValue(Layer dataLayer, String rel) {
        if (!ovl.opts.verityOn()) return new byte[0];
        byte[] d = measure(dataLayer, rel);
        if (d == null || d.length <= 1) return ovl.opts.verityRequire() ? null : new byte[0];
        return withDigest(d);
    }

    /**
     * The struct ovl_metacopy holding a digest as {@link #measure} gives it ({algorithm, digest...}):
     * version 0, len (4 + the digest's size), flags 0, digest_algo, the digest.
     */
    static byte[] withDigest(byte[] d) {
        byte[] v = new byte[Markers.METACOPY_HEADER + d.length - 1];
        v[1] = (byte) v.length;
        v[3] = d[0];
        System.arraycopy(d, 1, v, Markers.METACOPY_HEADER, d.length - 1);
        return v;
    }
}
