package dev.strata.nativetest;

import dev.strata.posix.Posix;

/**
 * One filesystem operation on paths relative to a mount root, replayable from its printed form's
 * fields. Executed by {@link OpExecutor}; its outcome (errno and, for reads, what was seen) is compared
 * between implementations.
 */
public final class Op {
    public enum Kind {
        CREATE, CREATE_EXCL, WRITE, APPEND, TRUNCATE, FTRUNCATE, CHMOD, CHOWN, LCHOWN, UTIMENS, LUTIMENS,
        SETXATTR, REMOVEXATTR, GETXATTR, LISTXATTR, LINK, SYMLINK, MKDIR, RMDIR, UNLINK, RENAME, MKFIFO, MKNOD,
        READ, STAT, READLINK, LISTDIR, HOLD_OPEN, READ_HELD, FSTAT_HELD, CLOSE_HELD,
        MMAP_READ, MMAP_WRITE, MMAP_READ_HELD, MMAP_WRITE_HELD,
        OPEN_TRUNC, FALLOCATE, COPY_RANGE, SEEK_MAP, TMPFILE,
        FCHMOD_HELD, FCHOWN_HELD, FUTIMENS_HELD, FSETXATTR_HELD, FTRUNCATE_HELD, LINK_HELD, CHATTR
    }

    public final Kind kind;
    public final String path, path2;
    /** Meaning by kind: offset/length/mode/uid/gid/times/flags/slot. */
    public final long a, b, c, d;
    public final String text;
    /** Run with this effective uid (and gid, no supplementary groups) instead of root's; -1: as root. */
    public final int user;

    private Op(Kind kind, String path, String path2, long a, long b, long c, long d, String text) {
        this(kind, path, path2, a, b, c, d, text, -1);
    }
    private Op(Kind kind, String path, String path2, long a, long b, long c, long d, String text, int user) {
        this.kind = kind; this.path = path; this.path2 = path2; this.a = a; this.b = b; this.c = c; this.d = d; this.text = text; this.user = user;
    }

    /** The same operation run as uid:gid user:user (see OpExecutor). */
    public Op asUser(int uid) { return new Op(kind, path, path2, a, b, c, d, text, uid); }

    /** open(p, flags | O_TRUNC, mode) and close (flags: an access mode, maybe with O_CREAT). */
    public static Op openTrunc(String p, int flags, int mode) { return new Op(Kind.OPEN_TRUNC, p, null, flags, mode, 0, 0, null); }
    /** open(p, O_WRONLY), fallocate(mode, off, len). */
    public static Op fallocate(String p, int mode, long off, long len) { return new Op(Kind.FALLOCATE, p, null, mode, off, len, 0, null); }
    /** open(from, O_RDONLY), open(to, O_WRONLY), copy_file_range(len) from offIn to offOut. */
    public static Op copyRange(String from, String to, long offIn, long offOut, long len) { return new Op(Kind.COPY_RANGE, from, to, offIn, offOut, len, 0, null); }
    /** open(p, O_RDONLY) and the map of data extents by SEEK_DATA/SEEK_HOLE (compared by {@link Snapshot#holesKept}). */
    /**
     * chattr of the append-only / immutable flags: FS_IOC_GETFLAGS, then FS_IOC_SETFLAGS with those two
     * replaced by {@code flags} (FS_APPEND_FL | FS_IMMUTABLE_FL; 0 clears them), the others kept.
     */
    public static Op chattr(String p, int flags) { return new Op(Kind.CHATTR, p, null, flags, 0, 0, 0, null); }
    public static Op seekMap(String p) { return new Op(Kind.SEEK_MAP, p, null, 0, 0, 0, 0, null); }
    /** open(dir, O_TMPFILE|O_RDWR, mode), write len bytes, then (if linkAs != null) linkat /proc/self/fd/N to linkAs with AT_SYMLINK_FOLLOW. */
    public static Op tmpfile(String dir, String linkAs, int mode, long len, long seed) { return new Op(Kind.TMPFILE, dir, linkAs, mode, len, seed, 0, null); }
    public static Op fchmodHeld(int slot, int mode) { return new Op(Kind.FCHMOD_HELD, null, null, slot, mode, 0, 0, null); }
    public static Op fchownHeld(int slot, int uid, int gid) { return new Op(Kind.FCHOWN_HELD, null, null, slot, uid, gid, 0, null); }
    /** futimens on the held descriptor: mtime (-2 = UTIME_NOW), atime omitted. */
    public static Op futimensHeld(int slot, long mtime, long ns) { return new Op(Kind.FUTIMENS_HELD, null, null, slot, mtime, ns, 0, null); }
    public static Op fsetxattrHeld(int slot, String name, String value) { return new Op(Kind.FSETXATTR_HELD, null, name, slot, 0, 0, 0, value); }
    public static Op ftruncateHeld(int slot, long len) { return new Op(Kind.FTRUNCATE_HELD, null, null, slot, len, 0, 0, null); }
    /** linkat(AT_FDCWD, "/proc/self/fd/N", AT_FDCWD, p, AT_SYMLINK_FOLLOW) for the held descriptor N: gives a removed file a name again. */
    public static Op linkHeld(int slot, String p) { return new Op(Kind.LINK_HELD, null, p, slot, 0, 0, 0, null); }

    public static Op create(String p, int mode) { return new Op(Kind.CREATE, p, null, mode, 0, 0, 0, null); }
    public static Op createExcl(String p, int mode) { return new Op(Kind.CREATE_EXCL, p, null, mode, 0, 0, 0, null); }
    /** pwrite of len deterministic bytes (from seed) at off, opening without O_CREAT. */
    public static Op write(String p, long off, long len, long seed) { return new Op(Kind.WRITE, p, null, off, len, seed, 0, null); }
    public static Op append(String p, long len, long seed) { return new Op(Kind.APPEND, p, null, 0, len, seed, 0, null); }
    public static Op truncate(String p, long len) { return new Op(Kind.TRUNCATE, p, null, len, 0, 0, 0, null); }
    public static Op ftruncate(String p, long len) { return new Op(Kind.FTRUNCATE, p, null, len, 0, 0, 0, null); }
    public static Op chmod(String p, int mode) { return new Op(Kind.CHMOD, p, null, mode, 0, 0, 0, null); }
    public static Op chown(String p, int uid, int gid) { return new Op(Kind.CHOWN, p, null, uid, gid, 0, 0, null); }
    public static Op lchown(String p, int uid, int gid) { return new Op(Kind.LCHOWN, p, null, uid, gid, 0, 0, null); }
    /** utimensat; a time value of -1 means UTIME_OMIT, -2 UTIME_NOW; nanoseconds go in c/d. */
    public static Op utimens(String p, long atime, long mtime, long ns, boolean nofollow) {
        return new Op(nofollow ? Kind.LUTIMENS : Kind.UTIMENS, p, null, atime, mtime, ns, 0, null);
    }
    public static Op setxattr(String p, String name, String value, int flags) {
        return new Op(Kind.SETXATTR, p, name, flags, 0, 0, 0, value);
    }
    public static Op removexattr(String p, String name) { return new Op(Kind.REMOVEXATTR, p, name, 0, 0, 0, 0, null); }
    public static Op getxattr(String p, String name) { return new Op(Kind.GETXATTR, p, name, 0, 0, 0, 0, null); }
    public static Op listxattr(String p) { return new Op(Kind.LISTXATTR, p, null, 0, 0, 0, 0, null); }
    public static Op link(String existing, String p) { return new Op(Kind.LINK, existing, p, 0, 0, 0, 0, null); }
    public static Op symlink(String target, String p) { return new Op(Kind.SYMLINK, p, null, 0, 0, 0, 0, target); }
    public static Op mkdir(String p, int mode) { return new Op(Kind.MKDIR, p, null, mode, 0, 0, 0, null); }
    public static Op rmdir(String p) { return new Op(Kind.RMDIR, p, null, 0, 0, 0, 0, null); }
    public static Op unlink(String p) { return new Op(Kind.UNLINK, p, null, 0, 0, 0, 0, null); }
    public static Op rename(String from, String to, int flags) { return new Op(Kind.RENAME, from, to, flags, 0, 0, 0, null); }
    public static Op mkfifo(String p, int mode) { return new Op(Kind.MKFIFO, p, null, mode, 0, 0, 0, null); }
    public static Op mknod(String p, int mode, long rdev) { return new Op(Kind.MKNOD, p, null, mode, rdev, 0, 0, null); }
    public static Op read(String p) { return new Op(Kind.READ, p, null, 0, 0, 0, 0, null); }
    public static Op stat(String p) { return new Op(Kind.STAT, p, null, 0, 0, 0, 0, null); }
    public static Op readlink(String p) { return new Op(Kind.READLINK, p, null, 0, 0, 0, 0, null); }
    public static Op listdir(String p) { return new Op(Kind.LISTDIR, p, null, 0, 0, 0, 0, null); }
    /** Opens p in slot (flags: O_RDONLY or O_RDWR) and keeps the descriptor for later READ_HELD/FSTAT_HELD. */
    public static Op holdOpen(int slot, String p, int flags) { return new Op(Kind.HOLD_OPEN, p, null, slot, flags, 0, 0, null); }
    public static Op readHeld(int slot) { return new Op(Kind.READ_HELD, null, null, slot, 0, 0, 0, null); }
    public static Op fstatHeld(int slot) { return new Op(Kind.FSTAT_HELD, null, null, slot, 0, 0, 0, null); }
    public static Op closeHeld(int slot) { return new Op(Kind.CLOSE_HELD, null, null, slot, 0, 0, 0, null); }
    /** Opens p read-only, maps the whole file (MAP_SHARED) and reads the mapping. */
    public static Op mmapRead(String p) { return new Op(Kind.MMAP_READ, p, null, 0, 0, 0, 0, null); }
    /** Opens p read-write, maps [off % size, +len) clipped to the current size (MAP_SHARED), writes deterministic bytes, msync, unmaps. */
    public static Op mmapWrite(String p, long off, long len, long seed) { return new Op(Kind.MMAP_WRITE, p, null, off, len, seed, 0, null); }
    /** Maps the whole file through the descriptor held in slot and reads the mapping. */
    public static Op mmapReadHeld(int slot) { return new Op(Kind.MMAP_READ_HELD, null, null, slot, 0, 0, 0, null); }
    /** Like mmapWrite through the descriptor held in slot (a read-only one cannot be mapped for writing: EACCES). */
    public static Op mmapWriteHeld(int slot, long off, long len, long seed) { return new Op(Kind.MMAP_WRITE_HELD, null, null, slot, off, len, seed, null); }

    public boolean renameWithFlags() { return kind == Kind.RENAME && a != 0; }
    public boolean mmap() { return kind == Kind.MMAP_READ || kind == Kind.MMAP_WRITE || kind == Kind.MMAP_READ_HELD || kind == Kind.MMAP_WRITE_HELD; }

    private static String p(String s) { return s == null ? "" : "'" + Names.show(s) + "'"; }

    @Override public String toString() { return (user >= 0 ? "as " + user + ": " : "") + describe(); }

    private String describe() {
        switch (kind) {
            case CREATE: case CREATE_EXCL: case CHMOD: case MKDIR: case MKFIFO:
                return kind.name().toLowerCase() + " " + p(path) + " " + String.format("%04o", a);
            case RENAME: return "rename " + p(path) + " " + p(path2) + (a == 0 ? "" : a == Posix.RENAME_NOREPLACE ? " NOREPLACE" : a == Posix.RENAME_EXCHANGE ? " EXCHANGE"
                    : a == Posix.RENAME_WHITEOUT ? " WHITEOUT" : " flags=" + a);
            case WRITE: return "write " + p(path) + " off=" + a + " len=" + b + " seed=" + c;
            case APPEND: return "append " + p(path) + " len=" + b + " seed=" + c;
            case TRUNCATE: case FTRUNCATE: return kind.name().toLowerCase() + " " + p(path) + " " + a;
            case CHOWN: case LCHOWN: return kind.name().toLowerCase() + " " + p(path) + " " + a + ":" + b;
            case UTIMENS: case LUTIMENS:
                return kind.name().toLowerCase() + " " + p(path) + " atime=" + t(a) + " mtime=" + t(b) + " ns=" + c;
            case SETXATTR: return "setxattr " + p(path) + " " + path2 + "=" + Names.show(text) + " flags=" + a;
            case REMOVEXATTR: case GETXATTR: return kind.name().toLowerCase() + " " + p(path) + " " + path2;
            case LINK: return "link " + p(path) + " " + p(path2);
            case SYMLINK: return "symlink " + p(text) + " " + p(path);
            case MKNOD: return "mknod " + p(path) + " mode=" + Long.toOctalString(a) + " rdev=" + (b >> 8) + "/" + (b & 0xff);
            case HOLD_OPEN: return "hold-open #" + a + " " + p(path) + (b == Posix.O_RDONLY ? " rdonly" : " rdwr");
            case READ_HELD: case FSTAT_HELD: case CLOSE_HELD: case MMAP_READ_HELD: return kind.name().toLowerCase().replace('_', '-') + " #" + a;
            case MMAP_WRITE: return "mmap-write " + p(path) + " off=" + a + " len=" + b + " seed=" + c;
            case MMAP_WRITE_HELD: return "mmap-write-held #" + a + " off=" + b + " len=" + c + " seed=" + d;
            case MMAP_READ: return "mmap-read " + p(path);
            case OPEN_TRUNC: return "open-trunc " + p(path) + " flags=0" + Long.toOctalString(a) + " " + String.format("%04o", b);
            case FALLOCATE: return "fallocate " + p(path) + " mode=" + a + " off=" + b + " len=" + c;
            case COPY_RANGE: return "copy-range " + p(path) + "@" + a + " " + p(path2) + "@" + b + " len=" + c;
            case SEEK_MAP: return "seek-map " + p(path);
            case CHATTR: return "chattr " + ((a & (Posix.FS_APPEND_FL | Posix.FS_IMMUTABLE_FL)) == 0 ? "-ai"
                    : "=" + ((a & Posix.FS_APPEND_FL) != 0 ? "a" : "") + ((a & Posix.FS_IMMUTABLE_FL) != 0 ? "i" : "")) + " " + p(path);
            case TMPFILE: return "tmpfile " + p(path) + " " + String.format("%04o", a) + " len=" + b + " seed=" + c + (path2 == null ? " (not linked)" : " link-as " + p(path2));
            case FCHMOD_HELD: return "fchmod-held #" + a + " " + String.format("%04o", b);
            case FCHOWN_HELD: return "fchown-held #" + a + " " + b + ":" + c;
            case FUTIMENS_HELD: return "futimens-held #" + a + " mtime=" + t(b) + " ns=" + c;
            case FSETXATTR_HELD: return "fsetxattr-held #" + a + " " + path2 + "=" + Names.show(text);
            case FTRUNCATE_HELD: return "ftruncate-held #" + a + " " + b;
            case LINK_HELD: return "link-held #" + a + " " + p(path2);
            default: return kind.name().toLowerCase() + " " + p(path);
        }
    }

    private static String t(long v) { return v == -1 ? "OMIT" : v == -2 ? "NOW" : Long.toString(v); }
}
