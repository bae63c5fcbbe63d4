package dev.strata.image;

import dev.strata.posix.Errno;
import dev.strata.posix.Posix;

import java.nio.file.Path;

import static dev.strata.posix.Posix.LOCK_EX;
import static dev.strata.posix.Posix.LOCK_NB;

/**
 * The store's lock, {@code STORE/lock}, taken with flock(2): exclusive for imports and removals (one
 * writer at a time, so temporary directories found at start are stale). flock locks belong to the open
 * file, so two imports in one process exclude each other too.
 */
final class StoreLock implements AutoCloseable {
    private final int fd;

    private StoreLock(int fd) { this.fd = fd; }

    static StoreLock exclusive(Path lockFile, ImportListener listener) {
        int fd = Posix.openat(Posix.AT_FDCWD, lockFile.toString(), Posix.O_RDWR | Posix.O_CREAT | Posix.O_CLOEXEC, 0600);
        if (fd < 0) throw new ImageException("cannot open the store lock " + lockFile + ": " + Posix.strerror(fd));
        int r = Posix.flock(fd, LOCK_EX | LOCK_NB);
        if (r == -Errno.EAGAIN) {
            listener.waitingForLock(lockFile);
            do {
                r = Posix.flock(fd, LOCK_EX);
            } while (r == -4 /* EINTR */);
        }
        if (r < 0) {
            Posix.close(fd);
            throw new ImageException("cannot lock the store (" + lockFile + "): " + Posix.strerror(r));
        }
        return new StoreLock(fd);
    }

    @Override public void close() { Posix.close(fd); }
}
