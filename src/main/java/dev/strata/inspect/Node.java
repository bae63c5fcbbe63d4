package dev.strata.inspect;

import dev.strata.posix.Names;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;

/** What lstat said about one object in one layer: an immutable snapshot. */
public record Node(int mode, long size, int uid, int gid, long mtime, long mtimeNs, long dev, long ino,
                   long nlink, long rdev, String linkTarget) {

    static Node of(Stat st, String linkTarget) {
        return new Node(st.mode(), st.size(), st.uid(), st.gid(), st.mtime(), st.mtimeNs(), st.dev(), st.ino(),
                st.nlink(), st.rdev(), linkTarget);
    }

    public int type() { return mode & Posix.S_IFMT; }
    public int perm() { return mode & 07777; }
    public boolean isDir() { return type() == Posix.S_IFDIR; }
    public boolean isReg() { return type() == Posix.S_IFREG; }
    public boolean isLink() { return type() == Posix.S_IFLNK; }

    /** "regular file", "directory"... */
    public String typeName() { return typeName(type()); }

    public static String typeName(int type) {
        switch (type) {
            case Posix.S_IFREG: return "regular file";
            case Posix.S_IFDIR: return "directory";
            case Posix.S_IFLNK: return "symbolic link";
            case Posix.S_IFCHR: return "character device";
            case Posix.S_IFBLK: return "block device";
            case Posix.S_IFIFO: return "fifo";
            case Posix.S_IFSOCK: return "socket";
            default: return "unknown type " + Integer.toOctalString(type);
        }
    }

    /** A short type word for JSON: file, dir, symlink, chardev, blockdev, fifo, socket. */
    public String typeKey() {
        switch (type()) {
            case Posix.S_IFREG: return "file";
            case Posix.S_IFDIR: return "dir";
            case Posix.S_IFLNK: return "symlink";
            case Posix.S_IFCHR: return "chardev";
            case Posix.S_IFBLK: return "blockdev";
            case Posix.S_IFIFO: return "fifo";
            case Posix.S_IFSOCK: return "socket";
            default: return "unknown";
        }
    }

    /** ls -l style mode, e.g. "-rw-r--r--" or "drwxrwxrwt". */
    public String modeString() {
        char t;
        switch (type()) {
            case Posix.S_IFDIR: t = 'd'; break;
            case Posix.S_IFLNK: t = 'l'; break;
            case Posix.S_IFCHR: t = 'c'; break;
            case Posix.S_IFBLK: t = 'b'; break;
            case Posix.S_IFIFO: t = 'p'; break;
            case Posix.S_IFSOCK: t = 's'; break;
            default: t = '-';
        }
        int p = perm();
        char[] c = {t, r(p, 0400), w(p, 0200), x(p, 0100, 04000, 's'), r(p, 040), w(p, 020), x(p, 010, 02000, 's'),
                r(p, 04), w(p, 02), x(p, 01, 01000, 't')};
        return new String(c);
    }
    private static char r(int p, int bit) { return (p & bit) != 0 ? 'r' : '-'; }
    private static char w(int p, int bit) { return (p & bit) != 0 ? 'w' : '-'; }
    private static char x(int p, int bit, int special, char s) {
        boolean xs = (p & bit) != 0, sp = (p & special) != 0;
        return sp ? (xs ? s : Character.toUpperCase(s)) : (xs ? 'x' : '-');
    }

    /** "regular file, 12 bytes, -rw-r--r-- 0:0" and the like (a byte string). */
    public String describe() {
        StringBuilder sb = new StringBuilder(typeName());
        if (isReg()) sb.append(", ").append(size).append(size == 1 ? " byte" : " bytes");
        if (type() == Posix.S_IFCHR || type() == Posix.S_IFBLK) {
            sb.append(' ').append(major(rdev)).append('/').append(minor(rdev));
        }
        if (isLink() && linkTarget != null) sb.append(" -> ").append(Names.display(linkTarget));
        sb.append(", ").append(modeString()).append(' ').append(uid).append(':').append(gid);
        return sb.toString();
    }

    public static long major(long rdev) { return ((rdev >>> 8) & 0xfff) | ((rdev >>> 32) & 0xfffff000L); }
    public static long minor(long rdev) { return (rdev & 0xff) | ((rdev >>> 12) & 0xffffff00L); }
}
