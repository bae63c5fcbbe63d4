package dev.strata.union;

import dev.strata.options.MountOptions;
import dev.strata.posix.Posix;

import java.nio.file.Path;
import java.util.function.Consumer;

import static dev.strata.posix.Errno.*;
import static dev.strata.posix.Posix.*;

/**
 * The kernel's exclusive use of an upperdir and workdir (super.c ovl_inuse_trylock, ovl_report_in_use):
 * a mount holds both for its life, and another mount of either is refused with index=on (EBUSY: the index
 * of two mounts would corrupt each other) and only warned about without it. strata cannot see the
 * kernel's in-use marks (an inode flag), so it excludes its own mounts: an exclusive flock(2) on each
 * directory, held until the mount ends (or its process dies), which other strata processes and other
 * mounts of the same shared daemon see alike (each mount opens its own descriptions).
 */
final class InUse implements AutoCloseable {
    private final int[] fds;

    private InUse(int[] fds) { this.fds = fds; }


    /**
     * Takes the upperdir's and the workdir's locks. Throws {@link IllegalStateException} (one line) where
     * the kernel refuses the mount (index=on and one is in use); without index, warns and goes on.
     */
    static InUse take(MountOptions opts, int upperFd, int workDirFd, Consumer<String> warn) {
        int[] fds = {-1, -1};
        InUse u = new InUse(fds);
        try {
            fds[0] = lock(upperFd, opts.upperDir, "upperdir", opts.index, warn);
            fds[1] = lock(workDirFd, opts.workDir, "workdir", opts.index, warn);
        } catch (RuntimeException e) {
            u.close();
            throw e;
        }
        return u;
    }

    /** dirFd: the directory (O_PATH; see Detached), dir its name for messages. */
    private static int lock(int dirFd, Path dir, String name, boolean index, Consumer<String> warn) {
        int fd = Posix.openat(dirFd, ".", O_RDONLY | O_DIRECTORY, 0);
        if (fd < 0) return -1; // the layer checks say what is wrong with it
        int r = Posix.flock(fd, LOCK_EX | LOCK_NB);
        if (r == 0) return fd;
        Posix.close(fd);
        if (r != -EAGAIN) return -1; // a file system without locks: nothing to exclude with
        if (index) {
            throw new IllegalStateException(name + " " + dir + " is in-use as upperdir/workdir of another mount,"
                    + " mount with '-o index=off' to override exclusive upperdir protection");
        }
        warn.accept(name + " " + dir + " is in-use as upperdir/workdir of another mount, accessing files from both mounts will result in undefined behavior");
        return -1;
    }

    @Override public void close() {
        for (int i = 0; i < fds.length; i++) {
            if (fds[i] >= 0) Posix.close(fds[i]);
            fds[i] = -1;
        }
    }
}
