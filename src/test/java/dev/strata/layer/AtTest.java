package dev.strata.layer;

import dev.strata.posix.Errno;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Paths below a layer root never go through a symlink, in any component, with openat2 or without. */
class AtTest {
    @TempDir Path tmp;
    Layer layer;

    @BeforeEach void build() throws Exception {
        Path root = tmp.resolve("root");
        Files.createDirectories(root.resolve("a/b"));
        Files.writeString(root.resolve("a/b/f"), "inside");
        Files.createDirectories(tmp.resolve("outside/b"));
        Files.writeString(tmp.resolve("outside/b/f"), "outside, longer");
        Files.writeString(tmp.resolve("outside/f"), "outside, longer");
        Files.createSymbolicLink(root.resolve("l"), tmp.resolve("outside"));
        Files.createSymbolicLink(root.resolve("a/l"), Path.of("../../outside"));
        Files.createSymbolicLink(root.resolve("a/fl"), Path.of("b/f"));
        int[] err = new int[1];
        layer = Layer.open(root, 0, false, err);
    }

    @AfterEach void close() { if (layer != null) layer.close(); }

    @Test void insideTheLayerWorks() {
        Stat st = new Stat();
        assertEquals(0, layer.lstat("a/b/f", st));
        assertEquals(6, st.size());
        int fd = layer.openat("a/b/f", Posix.O_RDONLY, 0);
        assertTrue(fd >= 0, "open: " + fd);
        Posix.close(fd);
        assertEquals(0, layer.lstat("a/fl", st), "a final symlink is stat'ed itself");
        assertTrue(Posix.isLnk(st.mode()));
    }

    @Test void noSymlinkIsFollowedOnTheWay() {
        Stat st = new Stat();
        assertEquals(-Errno.ENOTDIR, layer.lstat("l/f", st), "absolute symlink as the first component");
        assertEquals(-Errno.ENOTDIR, layer.lstat("l/b/f", st));
        assertEquals(-Errno.ENOTDIR, layer.lstat("a/l/f", st), "relative symlink in the middle");
        assertEquals(-Errno.ENOTDIR, layer.openat("l/b/f", Posix.O_RDONLY, 0));
        assertEquals(-Errno.ENOTDIR, layer.openDir("a/l/b", Posix.O_RDONLY));
        assertEquals(null, layer.getxattr("l/f", "user.x"));
        try (At a = layer.at("a/l/b/f")) {
            assertEquals(-Errno.ENOTDIR, a.err());
        }
    }

    @Test void aFinalSymlinkIsNotOpened() {
        assertEquals(-Errno.ELOOP, layer.openat("a/fl", Posix.O_RDONLY, 0));
        assertEquals(-Errno.ELOOP, layer.openat("l", Posix.O_RDONLY, 0));
    }

    @Test void theWalkWithoutOpenat2FollowsNothingEither() {
        int fd = At.walk(layer.fd(), "a/b");
        assertTrue(fd >= 0, "walk: " + fd);
        Posix.close(fd);
        assertEquals(-Errno.ENOTDIR, At.walk(layer.fd(), "l/b"));
        assertEquals(-Errno.ENOTDIR, At.walk(layer.fd(), "a/l"));
        assertEquals(-Errno.EXDEV, At.walk(layer.fd(), "a/../../outside"));
    }

    @Test void dotDotCannotLeaveTheLayer() {
        Stat st = new Stat();
        assertTrue(layer.lstat("a/../../outside/f", st) < 0, "escaped the layer root");
    }
}
