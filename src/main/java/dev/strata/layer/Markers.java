package dev.strata.layer;

import dev.strata.posix.Errno;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;

import java.nio.charset.StandardCharsets;

/**
 * Whiteout and opaque markers: every form overlayfs, fuse-overlayfs and OCI layers use is read;
 * one form is written (a 0/0 character device where mknod is allowed, else {@code .wh.NAME}; the
 * trusted opaque xattr as root, else the user one, else {@code .wh..wh..opq}).
 */
public final class Markers {
    private Markers() {}

    public static final String WH_PREFIX = ".wh.";
    public static final String OPAQUE_FILE = ".wh..wh..opq";
    public static final String TRUSTED_OPAQUE = "trusted.overlay.opaque";
    public static final String USER_OPAQUE = "user.overlay.opaque";
    public static final String TRUSTED_WHITEOUT = "trusted.overlay.whiteout";
    public static final String USER_WHITEOUT = "user.overlay.whiteout";
    public static final String TRUSTED_REDIRECT = "trusted.overlay.redirect";
    public static final String USER_REDIRECT = "user.overlay.redirect";
    /** A metadata-only copy-up (the kernel's OVL_XATTR_METACOPY): the file's data is in a layer below. */
    public static final String TRUSTED_METACOPY = "trusted.overlay.metacopy";
    public static final String USER_METACOPY = "user.overlay.metacopy";

    public enum WhiteoutForm {
        CHAR_DEVICE("character device 0/0"), WH_FILE(".wh. file"), XATTR("overlay.whiteout xattr");
        public final String label;
        WhiteoutForm(String label) { this.label = label; }
    }
    public enum OpaqueForm {
        TRUSTED_XATTR("trusted.overlay.opaque=y"), USER_XATTR("user.overlay.opaque=y"), WH_OPQ_FILE(".wh..wh..opq");
        public final String label;
        OpaqueForm(String label) { this.label = label; }
    }

    /** True for names that are markers, never shown in a merged listing. */
    public static boolean isMarkerName(String name) { return name.startsWith(WH_PREFIX); }

    /** Whether an entry that lstat found (st) is itself a whiteout; checks xattrs only for empty files. */
    public static WhiteoutForm entryWhiteout(Layer layer, String rel, Stat st) {
        int t = st.type();
        if (t == Posix.S_IFCHR && st.rdev() == 0) return WhiteoutForm.CHAR_DEVICE;
        if (t == Posix.S_IFREG && st.size() == 0) {
            if (layer.getxattr(rel, TRUSTED_WHITEOUT) != null || layer.getxattr(rel, USER_WHITEOUT) != null) {
                return WhiteoutForm.XATTR;
            }
        }
        return null;
    }

    /** Whether {@code .wh.NAME} exists beside the (absent) entry. */
    public static boolean hasWhFile(Layer layer, String parentRel, String name) {
        return layer.exists(Layer.child(parentRel, WH_PREFIX + name));
    }

    /** The full whiteout check for a name in a layer: entry form first, then the .wh. file. */
    public static WhiteoutForm whiteout(Layer layer, String parentRel, String name) {
        Stat st = new Stat();
        String rel = Layer.child(parentRel, name);
        if (layer.lstat(rel, st) == 0) return entryWhiteout(layer, rel, st);
        return hasWhFile(layer, parentRel, name) ? WhiteoutForm.WH_FILE : null;
    }

    /** The opaque form of a directory in a layer, or null if it is not opaque. */
    public static OpaqueForm opaque(Layer layer, String dirRel) {
        if (isY(layer.getxattr(dirRel, TRUSTED_OPAQUE))) return OpaqueForm.TRUSTED_XATTR;
        if (isY(layer.getxattr(dirRel, USER_OPAQUE))) return OpaqueForm.USER_XATTR;
        if (layer.exists(Layer.child(dirRel, OPAQUE_FILE))) return OpaqueForm.WH_OPQ_FILE;
        return null;
    }

    /**
     * The first byte of a directory's overlay.opaque xattr (trusted, else user): 'y' opaque, 'x' holds
     * xattr whiteouts, 0 for none. One read where {@link #opaque} may need two.
     */
    public static byte opaqueXattr(Layer layer, String dirRel) {
        byte[] v = layer.getxattr(dirRel, TRUSTED_OPAQUE);
        if (v == null) v = layer.getxattr(dirRel, USER_OPAQUE);
        return v != null && v.length > 0 ? v[0] : 0;
    }

    /**
     * A directory's overlay.redirect (trusted, else user) as a name (bytes as {@link Posix#NAMES}
     * text): an absolute path from the layer root ("/a/b") or a name in the same parent; null if none.
     */
    public static String redirect(Layer layer, String dirRel) {
        byte[] v = layer.getxattr(dirRel, TRUSTED_REDIRECT);
        if (v == null) v = layer.getxattr(dirRel, USER_REDIRECT);
        return v == null ? null : new String(v, Posix.NAMES);
    }

    /**
     * Whether a regular file carries overlay.metacopy (trusted, else user), as the kernel's lookup reads
     * it (ovl_check_metacopy_xattr without a buffer): 1 if so (an empty value, as written without
     * fs-verity, or a value of at least the 4 bytes of a struct ovl_metacopy header, whose content is
     * read only where its digest is checked, see union/Lowerdata), 0 if not, -EIO for a value of 1 to 3 bytes.
     */
    public static int metacopy(Layer layer, String rel) {
        return metacopyValue(metacopyXattr(layer, rel));
    }

    /** The raw overlay.metacopy value of a file (trusted, else user), null if none. */
    public static byte[] metacopyXattr(Layer layer, String rel) {
        byte[] v = layer.getxattr(rel, TRUSTED_METACOPY);
        return v != null ? v : layer.getxattr(rel, USER_METACOPY);
    }

    /** Bytes of a struct ovl_metacopy without its digest: version, len, flags, digest_algo. */
    public static final int METACOPY_HEADER = 4;

    /** {@link #metacopy} of a value read (null: none). */
    public static int metacopyValue(byte[] v) {
        if (v == null) return 0;
        if (v.length == 0) return 1;
        return v.length < METACOPY_HEADER ? -Errno.EIO : 1;
    }

    /**
     * Whether a redirect is well formed as the kernel checks it (ovl_get_redirect_xattr): an absolute
     * one has no empty component, a relative one no '/'.
     */
    public static boolean validRedirect(String r) {
        if (r.isEmpty()) return false;
        if (r.charAt(0) != '/') return r.indexOf('/') < 0;
        for (String c : r.substring(1).split("/", -1)) if (c.isEmpty()) return false;
        return true;
    }

    /** Stores a directory's redirect in the namespace of {@code xattr} (trusted.overlay.redirect or user.). */
    public static int setRedirect(At dir, String xattr, String redirect) {
        return Posix.lsetxattr(dir.xattrPath(), xattr, redirect.getBytes(Posix.NAMES), 0);
    }

    private static boolean isY(byte[] v) { return v != null && v.length >= 1 && v[0] == 'y'; }

    // ---------------------------------------------------------------- writing

    /**
     * Creates a whiteout named {@code name} in directory (dirfd). Tries a 0/0 character device; where
     * mknod is refused (unprivileged), writes an empty {@code .wh.NAME} instead, and reports which.
     * Returns the form written, or null with err[0] set.
     */
    public static WhiteoutForm createWhiteout(int dirfd, String name, int[] err) {
        int r = Posix.mknodat(dirfd, name, Posix.S_IFCHR, 0);
        if (r == 0) return WhiteoutForm.CHAR_DEVICE;
        if (r != -Errno.EPERM && r != -Errno.EACCES && r != -Errno.EOPNOTSUPP && r != -Errno.EINVAL) {
            err[0] = r;
            return null;
        }
        int fd = Posix.openat(dirfd, WH_PREFIX + name, Posix.O_CREAT | Posix.O_WRONLY | Posix.O_TRUNC, 0);
        if (fd < 0) { err[0] = fd; return null; }
        Posix.close(fd);
        return WhiteoutForm.WH_FILE;
    }

    private static final byte[] Y = "y".getBytes(StandardCharsets.US_ASCII);

    /** Marks a directory (the path for xattrs, and a dirfd-relative name) opaque; returns the form used. */
    public static OpaqueForm markOpaque(At dir, int[] err) {
        String xp = dir.xattrPath();
        int r = Posix.lsetxattr(xp, TRUSTED_OPAQUE, Y, 0);
        if (r == 0) return OpaqueForm.TRUSTED_XATTR;
        r = Posix.lsetxattr(xp, USER_OPAQUE, Y, 0);
        if (r == 0) return OpaqueForm.USER_XATTR;
        int d = Posix.openat(dir.dirfd(), dir.name(), Posix.O_PATH | Posix.O_DIRECTORY | Posix.O_NOFOLLOW, 0);
        if (d < 0) { err[0] = d; return null; }
        int fd = Posix.openat(d, OPAQUE_FILE, Posix.O_CREAT | Posix.O_WRONLY | Posix.O_NOFOLLOW, 0);
        Posix.close(d);
        if (fd < 0) { err[0] = fd; return null; }
        Posix.close(fd);
        return OpaqueForm.WH_OPQ_FILE;
    }

    /** Private xattrs that never show through the mount and are not copied up as user data. */
    public static boolean isPrivateXattr(String name) {
        return name.startsWith("trusted.overlay.") || name.startsWith("user.overlay.")
                || name.startsWith("user.strata.") || name.startsWith("user.fuseoverlayfs.");
    }
}
