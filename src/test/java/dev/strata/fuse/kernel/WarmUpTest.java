package dev.strata.fuse.kernel;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;

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
}
