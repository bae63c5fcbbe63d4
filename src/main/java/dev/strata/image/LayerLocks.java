package dev.strata.image;

import dev.strata.posix.Errno;
import dev.strata.posix.Names;
import dev.strata.posix.Posix;

import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static dev.strata.posix.Posix.LOCK_SH;
import static dev.strata.posix.Posix.LOCK_EX;
import static dev.strata.posix.Posix.LOCK_NB;

/**
 * "This layer is in use", kept by the kernel: a mount daemon holds a shared flock(2) on the directory
 * of every store layer it shows ({@code STORE/layers/sha256/HEX}) for as long as it lives, and
 * {@code image rm} deletes a layer only under an exclusive, non-blocking flock of the same directory.
 * flock locks belong to the open file, conflict between any two processes whatever PID or mount
 * namespace they run in, and go away when the daemon dies (even by SIGKILL); a record file that
 * someone deletes changes nothing.
 */
public final class LayerLocks implements AutoCloseable {
    private final List<Integer> fds;

    private LayerLocks(List<Integer> fds) { this.fds = fds; }

    /**
     * Whether {@code dir} is a layer of an image store: {@code STORE/layers/sha256/HEX} where
     * {@code STORE/lock} exists (what imports create first), or a lazy layer {@code STORE/lazy/sha256/HEX}.
     */
    public static boolean isStoreLayer(Path dir) {
        if (LazyLayers.isLazyLayer(dir)) return true; // STORE/lazy/sha256/HEX (strata mount ARCHIVE)
        Path d = dir.toAbsolutePath().normalize();
        Path sha = d.getParent();
        if (sha == null || Digest.ofHexOrNull(d.getFileName().toString()) == null) return false;
        if (!"sha256".equals(String.valueOf(sha.getFileName()))) return false;
        Path layers = sha.getParent();
        if (layers == null || !"layers".equals(String.valueOf(layers.getFileName())) || layers.getParent() == null) return false;
        return Files.exists(layers.getParent().resolve("lock"), LinkOption.NOFOLLOW_LINKS);
    }

    /**
     * Takes a shared lock on every store layer among {@code dirs} (others are left alone) and keeps it
     * until {@link #close} or the process ends. Throws if a layer is being removed (its exclusive lock
     * is held) or cannot be opened.
     */
    public static LayerLocks holdShared(List<Path> dirs) {
        List<Integer> fds = new ArrayList<>();
        try {
            for (Path p : dirs) {
                if (!isStoreLayer(p)) continue;
                int fd = open(p);
                if (fd < 0) throw new ImageException("cannot open the layer " + p + ": " + Posix.strerror(fd));
                fds.add(fd);
                int r = Posix.flock(fd, LOCK_SH | LOCK_NB);
                if (r == -Errno.EAGAIN) throw new ImageException("the layer " + p + " is being removed from its store");
                if (r < 0) throw new ImageException("cannot lock the layer " + p + ": " + Posix.strerror(r));
            }
        } catch (RuntimeException e) {
            for (int fd : fds) Posix.close(fd);
            throw e;
        }
        return new LayerLocks(fds);
    }

    /**
     * An exclusive lock on a layer directory if no mount holds it: the descriptor (close it when the
     * layer is gone), or -1 when a live mount uses the layer. A missing directory gives -2.
     */
    static int tryExclusive(Path dir) {
        int fd = open(dir);
        if (fd == -Errno.ENOENT) return -2;
        if (fd < 0) throw new ImageException("cannot open the layer " + dir + ": " + Posix.strerror(fd));
        int r = Posix.flock(fd, LOCK_EX | LOCK_NB);
        if (r == 0) return fd;
        Posix.close(fd);
        if (r == -Errno.EAGAIN) return -1;
        throw new ImageException("cannot lock the layer " + dir + ": " + Posix.strerror(r));
    }

    /** Whether a live mount holds the layer directory (a shared lock is there). */
    public static boolean inUse(Path dir) {
        int fd = tryExclusive(dir);
        if (fd >= 0) Posix.close(fd);
        return fd == -1;
    }

    private static int open(Path dir) {
        return Posix.openat(Posix.AT_FDCWD, Names.toNative(dir.toAbsolutePath().normalize().toString()),
                Posix.O_RDONLY | Posix.O_DIRECTORY | Posix.O_NOFOLLOW | Posix.O_CLOEXEC, 0);
    }

    @Override public void close() {
        for (int fd : fds) Posix.close(fd);
        fds.clear();
    }
}
