package dev.strata.union;

import dev.strata.layer.At;
import dev.strata.layer.Layer;
import dev.strata.posix.Getdents;
import dev.strata.posix.Posix;

import java.util.ArrayList;
import java.util.List;

import static dev.strata.posix.Posix.*;

/** Recursive removal with fd-relative calls (no path is ever longer than one name). */
final class Tree {
    private Tree() {}

    /** Removes everything inside the directory open (O_PATH is fine) as {@code dirfd}. */
    static int removeContents(int dirfd) {
        int fd = Posix.openat(dirfd, ".", O_RDONLY | O_DIRECTORY, 0);
        if (fd < 0) return fd;
        try {
            int r = 0;
            for (String[] e : entries(fd)) {
                int rr = "d".equals(e[1]) ? removeDirAt(fd, e[0]) : Posix.unlinkat(fd, e[0], 0);
                if (rr < 0 && r == 0) r = rr;
            }
            return r;
        } finally {
            Posix.close(fd);
        }
    }

    /** Removes (dirfd, name), recursively if it is a directory. */
    static int removeAt(int dirfd, String name) {
        int r = Posix.unlinkat(dirfd, name, 0);
        if (r == -dev.strata.posix.Errno.EISDIR) r = removeDirAt(dirfd, name);
        return r;
    }

    private static int removeDirAt(int dirfd, String name) {
        int fd = Posix.openat(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW, 0);
        if (fd < 0) return fd;
        try {
            removeContents(fd);
        } finally {
            Posix.close(fd);
        }
        return Posix.unlinkat(dirfd, name, AT_REMOVEDIR);
    }

    static int removeContents(Layer l, String rel) {
        int fd = l.openDir(rel.isEmpty() ? "." : rel, O_PATH);
        if (fd < 0) return fd;
        try {
            return removeContents(fd);
        } finally {
            Posix.close(fd);
        }
    }

    /** Removes a directory of a layer and what it holds. */
    static int removeDir(Layer l, String rel) {
        try (At a = l.at(rel)) {
            return a.ok() ? removeDirAt(a.dirfd(), a.name()) : a.err();
        }
    }

    /**
     * The first name (in byte order) in the directory {@code name} of dirfd, or null where that is absent,
     * not a directory (a symlink is not followed) or empty; err[0] is set to the -errno of an open that
     * failed otherwise (a directory that cannot be read), and null returned.
     */
    static String firstEntry(int dirfd, String name, int[] err) {
        int fd = Posix.openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
        if (fd == -dev.strata.posix.Errno.ENOENT || fd == -dev.strata.posix.Errno.ENOTDIR || fd == -dev.strata.posix.Errno.ELOOP) return null;
        if (fd < 0) {
            err[0] = fd;
            return null;
        }
        try {
            String first = null;
            for (String[] e : entries(fd)) if (first == null || e[0].compareTo(first) < 0) first = e[0];
            return first;
        } finally {
            Posix.close(fd);
        }
    }

    /** Entries of an open directory (excluding . and ..) as {name, "d" or "-"}. */
    private static List<String[]> entries(int fd) {
        List<String[]> out = new ArrayList<>();
        Getdents.read(fd, (ino, dt, name) -> {
            if (!name.equals(".") && !name.equals("..")) out.add(new String[]{name, dt == 4 ? "d" : "-"});
            return true;
        });
        return out;
    }
}
