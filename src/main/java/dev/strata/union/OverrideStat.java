package dev.strata.union;

import dev.strata.layer.Layer;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;
import jnr.ffi.Pointer;

import java.nio.charset.StandardCharsets;

import static dev.strata.posix.Posix.S_IFDIR;
import static dev.strata.posix.Posix.S_IFMT;
import static dev.strata.posix.Posix.S_IFREG;

/**
 * fuse-overlayfs's stat override: owner and mode of directories and regular files kept in an xattr
 * ({@code "uid:gid:mode"}, mode in octal, a fourth field ignored) instead of the inode. containers-storage
 * writes {@code user.containers.override_stat} on every file of a layer it unpacks with
 * {@code overlay.force_mask} (the inode then gets the mask), and podman passes {@code xattr_permissions=2}.
 *
 * <p>Reading, as fuse-overlayfs does: a layer whose root directory carries one of the three override
 * xattrs has its directories and regular files shown with the owner and mode of that xattr (looked for in
 * the order security.fuseoverlayfs., user.containers., user.fuseoverlayfs.), whatever the mount options.
 * Writing: with {@code xattr_permissions=1} ({@code security.fuseoverlayfs.override_stat}) or {@code =2}
 * ({@code user.containers.override_stat}, which fuse-overlayfs prefers since 1.14 and which podman commit
 * reads back) the upper layer is read that way too, and chmod, chown, new objects and copy-ups record
 * owner and mode in that xattr; chmod and chown leave the inode itself alone. The override xattrs are
 * never shown through the mount. An object without the xattr shows its own attributes.
 */
final class OverrideStat {
    static final String PRIVILEGED = "security.fuseoverlayfs.override_stat";
    static final String CONTAINERS = "user.containers.override_stat";
    static final String USER = "user.fuseoverlayfs.override_stat";
    private static final String[] NONE = new String[0];

    /** Owner and mode from an override xattr; uid or gid -1 leaves the inode's own. */
    static final class Value {
        final int uid, gid, mode;
        Value(int uid, int gid, int mode) { this.uid = uid; this.gid = gid; this.mode = mode & 07777; }
        @Override public String toString() { return format(uid, gid, mode); }
    }

    /** Per layer index: the xattr names to read, in order (empty: the layer has no override). */
    private final String[][] read;
    /** The name chmod/chown/create/copy-up record into, or null (they change the inode). */
    private final String writeName;

    private OverrideStat(String[][] read, String writeName) {
        this.read = read;
        this.writeName = writeName;
    }

    /**
     * Looks at each layer root (stack[0] is the upper when hasUpper). With xattr_permissions 1 or 2 the
     * upper is read and written with that option's name; for 2 a user.fuseoverlayfs.override_stat left by
     * an older fuse-overlayfs on an upper file is still read when the file lacks the containers one.
     */
    static OverrideStat of(Layer[] stack, boolean hasUpper, int xattrPermissions) {
        String[][] read = new String[stack.length][];
        for (int i = 0; i < stack.length; i++) read[i] = detect(stack[i]);
        String write = null;
        if (hasUpper && xattrPermissions == 1) {
            write = PRIVILEGED;
            read[0] = new String[]{PRIVILEGED};
        } else if (hasUpper && xattrPermissions == 2) {
            write = CONTAINERS;
            read[0] = new String[]{CONTAINERS, USER};
        }
        return new OverrideStat(read, write);
    }

    private static String[] detect(Layer l) {
        for (String name : new String[]{PRIVILEGED, CONTAINERS, USER}) {
            if (l.getxattr("", name) != null) return new String[]{name};
        }
        return NONE;
    }

    /** Whether a name is one of the override xattrs (hidden from the mount, not settable through it). */
    static boolean isOverrideXattr(String name) {
        return name.equals(CONTAINERS) || name.equals(USER) || name.equals(PRIVILEGED);
    }

    /** Whether chmod, chown and new objects record owner and mode in an xattr (xattr_permissions=1|2). */
    boolean enabled() { return writeName != null; }

    /** Whether objects of this type record owner and mode in the xattr instead of the inode. */
    boolean writes(int type) {
        return writeName != null && (type == S_IFDIR || type == S_IFREG);
    }

    boolean reads(int layer) { return read[layer].length > 0; }

    /** The override of (layer, rel) whose inode type is {@code type}, or null. */
    Value get(int layer, Layer l, String rel, int type) {
        String[] names = read[layer];
        if (names.length == 0 || (type != S_IFDIR && type != S_IFREG)) return null;
        for (String name : names) {
            byte[] v = l.getxattr(rel, name);
            if (v != null) return parse(v);
        }
        return null;
    }

    /** Patches a struct stat of (layer, rel) with its override; returns whether there was one. */
    boolean apply(int layer, Layer l, String rel, Pointer st) {
        if (read[layer].length == 0) return false;
        int mode = st.getInt(Stat.OFF_MODE);
        return patch(get(layer, l, rel, mode & S_IFMT), st);
    }

    /** The same for an open file (its name may be gone). */
    boolean applyFd(int layer, int fd, Pointer st) {
        String[] names = read[layer];
        int type = st.getInt(Stat.OFF_MODE) & S_IFMT;
        if (names.length == 0 || (type != S_IFDIR && type != S_IFREG)) return false;
        for (String name : names) {
            byte[] v = Posix.fgetxattr(fd, name);
            if (v != null) return patch(parse(v), st);
        }
        return false;
    }

    private static boolean patch(Value v, Pointer st) {
        if (v == null) return false;
        if (v.uid != -1) st.putInt(Stat.OFF_UID, v.uid);
        if (v.gid != -1) st.putInt(Stat.OFF_GID, v.gid);
        st.putInt(Stat.OFF_MODE, (st.getInt(Stat.OFF_MODE) & S_IFMT) | v.mode);
        return true;
    }

    /** Records owner and mode (on-disk ids) on the object at xattrPath; 0 or -errno. */
    int write(String xattrPath, int uid, int gid, int mode) {
        return Posix.lsetxattr(xattrPath, writeName, format(uid, gid, mode).getBytes(StandardCharsets.US_ASCII), 0);
    }

    /** Records owner and mode (on-disk ids) on an open file; 0 or -errno. */
    int write(int fd, int uid, int gid, int mode) {
        return Posix.fsetxattr(fd, writeName, format(uid, gid, mode).getBytes(StandardCharsets.US_ASCII), 0);
    }

    /**
     * The owner and mode of an upper object as the mount shows them (before id mapping): its override, else
     * its inode's (st, which the caller filled by lstat).
     */
    Value current(Layer upper, String rel, Stat st) {
        Value v = get(0, upper, rel, st.type());
        int uid = v != null && v.uid != -1 ? v.uid : st.uid();
        int gid = v != null && v.gid != -1 ? v.gid : st.gid();
        return new Value(uid, gid, v != null ? v.mode : st.perm());
    }

    /**
     * Gives the upper root an override when it has none, taken from the first lower root that has one (as
     * fuse-overlayfs does at mount): the mount's root then shows the image's owner and mode. Returns 0 or
     * -errno (the xattr cannot be written).
     */
    int initUpperRoot(Layer[] stack) {
        if (writeName == null || get(0, stack[0], "", S_IFDIR) != null) return 0;
        for (int i = 1; i < stack.length; i++) {
            Value v = get(i, stack[i], "", S_IFDIR);
            if (v != null) return write("/proc/self/fd/" + stack[0].fd() + "/.", v.uid, v.gid, v.mode);
        }
        return 0;
    }

    /** containers-storage's format: decimal ids, the mode in octal with a leading 0 ("0:0:0755"). */
    static String format(int uid, int gid, int mode) {
        return Integer.toUnsignedString(uid) + ":" + Integer.toUnsignedString(gid) + ":0" + Integer.toOctalString(mode & 07777);
    }

    /** Parses "uid:gid:mode[:...]"; null if it is not that. Bits above 07777 (a file type) are dropped. */
    static Value parse(byte[] raw) {
        String s = new String(raw, StandardCharsets.ISO_8859_1);
        int nul = s.indexOf('\0');
        if (nul >= 0) s = s.substring(0, nul);
        String[] f = s.trim().split(":", -1);
        if (f.length < 3) return null;
        try {
            return new Value(id(f[0]), id(f[1]), Integer.parseInt(f[2], 8));
        } catch (NumberFormatException e) {
            return null;
        }
    }

    /** A decimal id; "-1" (written by fuse-overlayfs before 1.14 for "unchanged") stays -1. */
    private static int id(String s) {
        long v = Long.parseLong(s);
        if (v == -1) return -1;
        if (v < 0 || v > 0xFFFF_FFFFL) throw new NumberFormatException(s);
        return (int) v;
    }
}
