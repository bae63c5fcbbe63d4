package dev.strata.image;

import dev.strata.posix.NativeMemory;
import dev.strata.posix.Errno;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;
import jnr.ffi.Pointer;

import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;

/**
 * Removing extracted trees, fd-relative and without following symlinks. Directories are made
 * writable by their owner first (a layer may hold 0555 directories that an unprivileged owner could
 * not otherwise empty). Iterative, so a deep tree cannot overflow the stack.
 */
final class Trees {
    private Trees() {}

    private static final int DT_DIR = 4;

    /** Removes {@code name} in {@code dirfd} and everything under it; returns 0 or -errno. Missing is fine. */
    static int removeAt(int dirfd, String name) {
        Stat st = new Stat();
        int r = Posix.fstatat(dirfd, name, st, Posix.AT_SYMLINK_NOFOLLOW);
        if (r == -Errno.ENOENT) return 0;
        if (r < 0) return r;
        if (!st.isDir()) return okMissing(Posix.unlinkat(dirfd, name, 0));

        final class Frame {
            final int parentFd; final String name; final int fd; final List<String[]> entries; int next;
            Frame(int parentFd, String name, int fd, List<String[]> entries) {
                this.parentFd = parentFd; this.name = name; this.fd = fd; this.entries = entries;
            }
        }
        Deque<Frame> stack = new ArrayDeque<>();
        Pointer buf = NativeMemory.allocate(32768);
        int err = 0;
        int fd = openForRemoval(dirfd, name);
        if (fd < 0) return fd;
        stack.push(new Frame(dirfd, name, fd, list(fd, buf)));
        try {
            while (!stack.isEmpty()) {
                Frame f = stack.peek();
                if (f.next < f.entries.size()) {
                    String[] e = f.entries.get(f.next++);
                    boolean dir = e[1] != null ? e[1].equals("d") : isDir(f.fd, e[0], st);
                    if (dir) {
                        int cfd = openForRemoval(f.fd, e[0]);
                        if (cfd == -Errno.ENOENT) continue;
                        if (cfd == -Errno.ENOTDIR || cfd == -Errno.ELOOP) {
                            r = okMissing(Posix.unlinkat(f.fd, e[0], 0));
                            if (r < 0) { err = r; break; }
                            continue;
                        }
                        if (cfd < 0) { err = cfd; break; }
                        stack.push(new Frame(f.fd, e[0], cfd, list(cfd, buf)));
                    } else {
                        r = okMissing(Posix.unlinkat(f.fd, e[0], 0));
                        if (r == -Errno.EISDIR) { f.next--; f.entries.set(f.next, new String[]{e[0], "d"}); continue; }
                        if (r < 0) { err = r; break; }
                    }
                } else {
                    stack.pop();
                    Posix.close(f.fd);
                    r = okMissing(Posix.unlinkat(f.parentFd, f.name, Posix.AT_REMOVEDIR));
                    if (r < 0) { err = r; break; }
                }
            }
        } finally {
            while (!stack.isEmpty()) Posix.close(stack.pop().fd);
        }
        return err;
    }

    /** Removes a path (not following a final symlink); returns 0 or -errno. */
    static int remove(Path p) {
        Path parent = p.toAbsolutePath().getParent();
        int pfd = Posix.openat(Posix.AT_FDCWD, parent.toString(), Posix.O_PATH | Posix.O_DIRECTORY, 0);
        if (pfd < 0) return pfd == -Errno.ENOENT ? 0 : pfd;
        try {
            return removeAt(pfd, p.getFileName().toString());
        } finally {
            Posix.close(pfd);
        }
    }

    private static int okMissing(int r) { return r == -Errno.ENOENT ? 0 : r; }

    private static boolean isDir(int dirfd, String name, Stat st) {
        return Posix.fstatat(dirfd, name, st, Posix.AT_SYMLINK_NOFOLLOW) == 0 && st.isDir();
    }

    private static int openForRemoval(int dirfd, String name) {
        Posix.fchmodat(dirfd, name, 0700); // we own what we extracted; make it emptiable (errors show up below)
        return Posix.openat(dirfd, name, Posix.O_RDONLY | Posix.O_DIRECTORY | Posix.O_NOFOLLOW, 0);
    }

    /** Names in a directory with a type hint: {name, "d"} for directories, {name, "f"} for others, {name, null} unknown. */
    static List<String[]> list(int fd, Pointer buf) {
        List<String[]> out = new ArrayList<>();
        byte[] nb = new byte[256];
        while (true) {
            long n = Posix.getdents64(fd, buf, buf.size());
            if (n <= 0) break;
            int off = 0;
            while (off < n) {
                int reclen = buf.getShort(off + 16) & 0xffff;
                int type = buf.getByte(off + 18) & 0xff;
                int len = 0;
                while (len < reclen - 19 && buf.getByte(off + 19 + len) != 0) len++;
                if (nb.length < len) nb = new byte[len];
                buf.get(off + 19, nb, 0, len);
                String name = new String(nb, 0, len, Posix.NAMES);
                if (!name.equals(".") && !name.equals("..")) {
                    out.add(new String[]{name, type == 0 ? null : (type == DT_DIR ? "d" : "f")});
                }
                off += reclen;
            }
        }
        return out;
    }
}
