package dev.strata.fuse.kernel;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class WarmUpTest {
    /**
     * Every round's steps succeed through the kernel transport's workers (requests written as the
     * kernel writes them, on a socketpair), and nothing is left of the scratch union.
     */
    @Test void servesEveryRoundAndLeavesNothing(@TempDir Path parent) throws IOException {
        assertEquals(6, WarmUp.run(parent, 6), "rounds served (a step that must succeed failed)");
        try (Stream<Path> s = Files.list(parent)) {
            assertEquals(0, s.count(), "the scratch directory is gone");
        }
    }

    /** A killed daemon's scratch directory (its lock free) goes at the next warm-up; one a live warm-up holds stays. */
    @Test void removesWhatADeadDaemonLeftButNotALiveOne(@TempDir Path parent) throws IOException {
        Path dead = Files.createDirectories(parent.resolve("strata-warmup-1/upper/etc"));
        Files.writeString(dead.resolve("f"), "x");
        Path live = Files.createDirectory(parent.resolve("strata-warmup-2"));
        int fd = dev.strata.posix.Posix.openat(dev.strata.posix.Posix.AT_FDCWD, live.toString(),
                dev.strata.posix.Posix.O_RDONLY | dev.strata.posix.Posix.O_DIRECTORY, 0);
        try {
            assertEquals(0, dev.strata.posix.Posix.flock(fd, 2 /* LOCK_EX */));
            assertEquals(1, WarmUp.run(parent, 1));
            assertFalse(Files.exists(parent.resolve("strata-warmup-1")), "the dead daemon's directory is removed");
            assertTrue(Files.isDirectory(live), "the live one stays");
        } finally {
            dev.strata.posix.Posix.close(fd);
        }
    }
}
