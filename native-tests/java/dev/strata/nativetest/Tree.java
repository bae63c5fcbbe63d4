package dev.strata.nativetest;

import dev.strata.posix.Errno;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Writes entries into one directory with raw syscalls (names are Latin-1 strings: one char per byte,
 * so any byte sequence is a name). Every call throws if the syscall fails: a layer that is not built
 * exactly as described would make every comparison meaningless.
 */
public final class Tree {
    private final Path root;
    private final List<String> created = new ArrayList<>();

    /** Owner of entries made without explicit ids: the process's (root in the native tests). */
    private final int defUid = Posix.geteuid(), defGid = Posix.getgid();

    public Tree(Path root) { this.root = root; }

    public Path root() { return root; }
    public String abs(String rel) { return rel.isEmpty() ? root.toString() : root + "/" + rel; }

    static int check(int r, String what) {
        if (r < 0) throw new IllegalStateException(what + ": " + Errno.name(r) + " (" + Posix.strerror(r) + ")");
        return r;
    }
    static long check(long r, String what) {
        if (r < 0) throw new IllegalStateException(what + ": " + Errno.name((int) r) + " (" + Posix.strerror((int) r) + ")");
        return r;
    }

    private void own(String rel, int uid, int gid) {
        check(Posix.fchownat(Posix.AT_FDCWD, abs(rel), uid, gid, Posix.AT_SYMLINK_NOFOLLOW), "chown " + rel);
    }

    public Tree dir(String rel, int mode) { return dir(rel, mode, defUid, defGid); }
    public Tree dir(String rel, int mode, int uid, int gid) {
        Stat st = new Stat();
        if (Posix.fstatat(Posix.AT_FDCWD, abs(rel), st, Posix.AT_SYMLINK_NOFOLLOW) != 0) {
            check(Posix.mkdirat(Posix.AT_FDCWD, abs(rel), 0700), "mkdir " + rel);
            created.add(rel);
        }
        own(rel, uid, gid);
        check(Posix.fchmodat(Posix.AT_FDCWD, abs(rel), mode), "chmod " + rel); // after chown: chown clears setgid
        return this;
    }

    /** Creates the missing parents of rel as 0755 root-owned directories. */
    public Tree parents(String rel) {
        int i = 0;
        while ((i = rel.indexOf('/', i)) > 0) {
            String p = rel.substring(0, i);
            Stat st = new Stat();
            if (Posix.fstatat(Posix.AT_FDCWD, abs(p), st, Posix.AT_SYMLINK_NOFOLLOW) != 0) dir(p, 0755);
            i++;
        }
        return this;
    }

    public Tree file(String rel, String content) { return file(rel, content.getBytes(StandardCharsets.ISO_8859_1), 0644, defUid, defGid); }
    public Tree file(String rel, String content, int mode, int uid, int gid) {
        return file(rel, content.getBytes(StandardCharsets.ISO_8859_1), mode, uid, gid);
    }
    public Tree file(String rel, byte[] content, int mode, int uid, int gid) {
        parents(rel);
        int fd = check(Posix.openat(Posix.AT_FDCWD, abs(rel), Posix.O_WRONLY | Posix.O_CREAT | Posix.O_EXCL, 0600), "create " + rel);
        try {
            writeAll(fd, content, 0, rel);
        } finally {
            Posix.close(fd);
        }
        created.add(rel);
        own(rel, uid, gid);
        check(Posix.fchmodat(Posix.AT_FDCWD, abs(rel), mode), "chmod " + rel);
        return this;
    }

    /** A sparse file: {@code data} written at each offset in {@code offsets}, then truncated to size. */
    public Tree sparse(String rel, long size, long[] offsets, byte[] data) {
        parents(rel);
        int fd = check(Posix.openat(Posix.AT_FDCWD, abs(rel), Posix.O_WRONLY | Posix.O_CREAT | Posix.O_EXCL, 0644), "create " + rel);
        try {
            for (long off : offsets) writeAll(fd, data, off, rel);
            check(Posix.ftruncate(fd, size), "truncate " + rel);
        } finally {
            Posix.close(fd);
        }
        created.add(rel);
        return this;
    }

    static void writeAll(int fd, byte[] content, long offset, String what) {
        if (content.length == 0) return;
        Pointer buf = Memory.allocateDirect(Posix.RT, content.length);
        buf.put(0, content, 0, content.length);
        long done = 0;
        while (done < content.length) {
            long n = check(Posix.pwrite(fd, buf.slice(done), content.length - done, offset + done), "write " + what);
            done += n;
        }
    }

    public Tree symlink(String rel, String target) { return symlink(rel, target, defUid, defGid); }
    public Tree symlink(String rel, String target, int uid, int gid) {
        parents(rel);
        check(Posix.symlinkat(target, Posix.AT_FDCWD, abs(rel)), "symlink " + rel);
        created.add(rel);
        own(rel, uid, gid);
        return this;
    }

    public Tree hardlink(String existing, String rel) {
        parents(rel);
        check(Posix.linkat(Posix.AT_FDCWD, abs(existing), Posix.AT_FDCWD, abs(rel), 0), "link " + rel);
        created.add(rel);
        return this;
    }

    public Tree fifo(String rel, int mode) {
        parents(rel);
        check(Posix.mknodat(Posix.AT_FDCWD, abs(rel), Posix.S_IFIFO | mode, 0), "mkfifo " + rel);
        check(Posix.fchmodat(Posix.AT_FDCWD, abs(rel), mode), "chmod " + rel);
        created.add(rel);
        return this;
    }

    /** A kernel-style whiteout: a character device 0/0 with mode 0. */
    public Tree whiteout(String rel) {
        parents(rel);
        check(Posix.mknodat(Posix.AT_FDCWD, abs(rel), Posix.S_IFCHR, 0), "whiteout " + rel);
        created.add(rel);
        return this;
    }

    /** Marks a directory opaque the way the kernel does (trusted.overlay.opaque=y). */
    public Tree opaque(String rel) { return rawXattr(rel, "trusted.overlay.opaque", new byte[]{'y'}); }

    public Tree xattr(String rel, String name, String value) {
        return rawXattr(rel, name, value.getBytes(StandardCharsets.ISO_8859_1));
    }
    public Tree rawXattr(String rel, String name, byte[] value) {
        check(Posix.lsetxattr(abs(rel), name, value, 0), "setxattr " + name + " on " + rel);
        return this;
    }

    /**
     * Gives every entry below the root (and the root) a fixed, path-derived atime/mtime with
     * nanoseconds, so two builds are identical and preserved times are checkable (all before 2002).
     */
    public Tree fixTimes() {
        Snapshot.walk(root, (dirfd, name, rel, st, dtype) -> {
            long h = (rel.hashCode() & 0x7fffffffL);
            long sec = 978307200L + (h % 20_000_000L); // 2001-01-01 + up to ~231 days
            long nsec = (h * 7919L) % 1_000_000_000L;
            int r = name == null
                    ? Posix.utimensat(Posix.AT_FDCWD, root.toString(), sec, nsec, sec, nsec, 0)
                    : Posix.utimensat(dirfd, name, sec, nsec, sec, nsec, Posix.AT_SYMLINK_NOFOLLOW);
            check(r, "utimens " + rel);
        });
        return this;
    }
}
