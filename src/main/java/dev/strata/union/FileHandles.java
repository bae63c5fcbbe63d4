package dev.strata.union;

import dev.strata.layer.At;
import dev.strata.layer.Layer;
import dev.strata.posix.Posix;

import static dev.strata.posix.Posix.*;

/**
 * The kernel overlay's file handles (overlayfs.h struct ovl_fb; namei.c ovl_encode_real_fh): what
 * {@code overlay.origin}, {@code overlay.upper} hold and what an index entry is named after.
 *
 * <pre>
 *   u8 version (0) | u8 magic (0xfb) | u8 len (21 + fid bytes) | u8 flags | u8 type (fid type) |
 *   uuid_t uuid (the real file system's s_uuid) | fid (what name_to_handle_at(2) gives)
 * </pre>
 * flags: 0 on a little-endian machine ({@code OVL_FH_FLAG_CPU_ENDIAN}), plus 4
 * ({@code OVL_FH_FLAG_PATH_UPPER}) for a handle of an upper object. The fid is exportfs_encode_fh's
 * without a parent, which is what name_to_handle_at without AT_HANDLE_CONNECTABLE returns.
 */
final class FileHandles {
    private FileHandles() {}

    static final int VERSION = 0, MAGIC = 0xfb, HEADER = 21;
    static final int FLAG_BIG_ENDIAN = 1, FLAG_ANY_ENDIAN = 2, FLAG_PATH_UPPER = 4, FLAG_ALL = 7;

    /** The ovl_fb of the object at rel in layer l (not following a symlink), or null with err[0] = -errno. */
    static byte[] encode(Layer l, String rel, byte[] uuid, boolean upper, int[] err) {
        int[] type = new int[1];
        byte[] fid;
        if (rel.isEmpty()) fid = Posix.nameToHandle(l.fd(), "", type, err);
        else try (At a = l.at(rel)) {
            if (!a.ok()) { err[0] = a.err(); return null; }
            fid = Posix.nameToHandle(a.dirfd(), a.name(), type, err);
        }
        if (fid == null) return null;
        return pack(fid, type[0], uuid, upper);
    }

    /** The ovl_fb of the open file fd. */
    static byte[] encodeFd(int fd, byte[] uuid, boolean upper, int[] err) {
        int[] type = new int[1];
        byte[] fid = Posix.nameToHandle(fd, "", type, err);
        return fid == null ? null : pack(fid, type[0], uuid, upper);
    }

    static byte[] pack(byte[] fid, int type, byte[] uuid, boolean upper) {
        byte[] fb = new byte[HEADER + fid.length];
        fb[0] = VERSION;
        fb[1] = (byte) MAGIC;
        fb[2] = (byte) fb.length;
        fb[3] = (byte) (upper ? FLAG_PATH_UPPER : 0);
        fb[4] = (byte) type;
        System.arraycopy(uuid, 0, fb, 5, 16);
        System.arraycopy(fid, 0, fb, HEADER, fid.length);
        return fb;
    }

    /**
     * Whether a stored value is a handle this machine reads (ovl_check_fb_len): 0 yes, -ENODATA for
     * "origin unknown" (a newer version, unknown flags, the other endianness), -EINVAL malformed.
     */
    static int check(byte[] fb) {
        if (fb == null || fb.length < HEADER || (fb[2] & 0xff) > fb.length || (fb[2] & 0xff) < HEADER) return -dev.strata.posix.Errno.EINVAL;
        if ((fb[1] & 0xff) != MAGIC) return -dev.strata.posix.Errno.EINVAL;
        int flags = fb[3] & 0xff;
        if (fb[0] > VERSION || (flags & ~FLAG_ALL) != 0) return -dev.strata.posix.Errno.ENODATA;
        if ((flags & FLAG_ANY_ENDIAN) == 0 && (flags & FLAG_BIG_ENDIAN) != 0) return -dev.strata.posix.Errno.ENODATA;
        return 0;
    }

    /** The index entry name of a handle: its bytes in lower-case hex (ovl_get_index_name_fh's bin2hex). */
    static String hex(byte[] fb) {
        char[] c = new char[fb.length * 2];
        for (int i = 0; i < fb.length; i++) {
            c[2 * i] = Character.forDigit((fb[i] >> 4) & 0xf, 16);
            c[2 * i + 1] = Character.forDigit(fb[i] & 0xf, 16);
        }
        return new String(c);
    }

    /** The bytes of an index entry name, or null if it is not hex of even length (hex2bin fails). */
    static byte[] unhex(String s) {
        if ((s.length() & 1) != 0) return null;
        byte[] b = new byte[s.length() / 2];
        for (int i = 0; i < b.length; i++) {
            int hi = Character.digit(s.charAt(2 * i), 16), lo = Character.digit(s.charAt(2 * i + 1), 16);
            if (hi < 0 || lo < 0) return null;
            b[i] = (byte) (hi << 4 | lo);
        }
        return b;
    }

    /** The file system uuid of a layer (its root opened for reading: ioctl needs more than O_PATH). */
    static byte[] uuid(Layer l, int[] err) {
        int fd = Posix.openat(l.fd(), ".", O_RDONLY | O_DIRECTORY, 0);
        if (fd < 0) { err[0] = fd; return null; }
        try {
            return Posix.fsUuid(fd, err);
        } finally {
            Posix.close(fd);
        }
    }
}
