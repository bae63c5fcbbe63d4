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

    /** The directory an At borrowed from this thread's cache: open while cached, closed once dropped from it. */
    private int parentFdOf(String rel) {
        try (At a = layer.at(rel)) {
            assertTrue(a.ok(), rel + ": " + a.err());
            return a.dirfd();
        }
    }

    private static boolean open(int fd) {
        return Posix.fstat(fd, new Stat()) == 0;
    }

    @Test void directoriesUsedInTurnStayCached() {
        At.releaseThreadCache();
        int ab = parentFdOf("a/b/f"), a = parentFdOf("a/fl"), again = parentFdOf("a/b/f2");
        assertEquals(ab, again, "the same parent again: the cached descriptor");
        assertTrue(open(ab) && open(a), "both parents still open");
        assertEquals(ab, parentFdOf("a/b/f"), "back to the first directory: no new open");
        assertEquals(a, parentFdOf("a/l"));
        assertEquals(2, At.cachedDirectories());
        At.releaseThreadCache();
        assertTrue(!open(ab) && !open(a), "released with the thread's cache");
    }

    @Test void theLeastRecentlyUsedDirectoryMakesRoom() throws Exception {
        At.releaseThreadCache();
        Path root = tmp.resolve("root");
        for (int i = 0; i <= At.WAYS; i++) Files.createDirectories(root.resolve("d" + i));
        int[] fd = new int[At.WAYS];
        for (int i = 0; i < At.WAYS; i++) fd[i] = parentFdOf("d" + i + "/x");
        assertEquals(fd[0], parentFdOf("d0/y")); // used again: d1 is now the least recent
        parentFdOf("d" + At.WAYS + "/x"); // one more than the cache holds
        assertEquals(At.WAYS, At.cachedDirectories());
        assertTrue(open(fd[0]) && open(fd[2]) && open(fd[3]), "the recently used ones are kept");
        assertTrue(!open(fd[1]), "the least recently used one is closed");
        At.releaseThreadCache();
    }

    @Test void belowACachedDirectoryOnlyTheRestIsResolvedAndNoSymlinkEither() throws Exception {
        At.releaseThreadCache();
        Path root = tmp.resolve("root");
        Files.createDirectories(root.resolve("a/b/c/d"));
        Files.writeString(root.resolve("a/b/c/d/f"), "deep");
        Files.createSymbolicLink(root.resolve("a/b/c/l"), tmp.resolve("outside"));
        Stat st = new Stat();
        parentFdOf("a/x"); // "a" cached
        assertEquals(0, layer.lstat("a/b/c/d/f", st));
        assertEquals(4, st.size());
        assertEquals(-Errno.ENOTDIR, layer.lstat("a/b/c/l/f", st), "a symlink below the cached directory");
        assertEquals(-Errno.ENOTDIR, layer.lstat("a/b/c/l/b/f", st));
        assertEquals(-Errno.ENOENT, layer.lstat("a/b/nothing/f", st));
        // a walk down: each level's parent is found below the one cached before it
        StringBuilder p = new StringBuilder("a/b/c/d");
        for (int i = 0; i < 20; i++) {
            p.append("/e");
            Files.createDirectories(root.resolve(p.toString()));
            assertEquals(0, layer.lstat(p.toString(), st), p.toString());
            assertTrue(Posix.isDir(st.mode()));
        }
        At.releaseThreadCache();
    }

    @Test void aDirectoryRenamedAwayIsNotReachedThroughTheCache() throws Exception {
        At.releaseThreadCache();
        Path root = tmp.resolve("root");
        Stat st = new Stat();
        assertEquals(0, layer.lstat("a/b/f", st));
        assertEquals(0, layer.lstat("a/fl", st)); // a second cached directory
        assertEquals(0, Posix.renameat2(Posix.AT_FDCWD, root.resolve("a/b").toString(), Posix.AT_FDCWD, root.resolve("a/old").toString(), 0));
        Files.createDirectories(root.resolve("a/b"));
        Files.writeString(root.resolve("a/b/f"), "new file, longer than before");
        assertEquals(0, layer.lstat("a/b/f", st));
        assertEquals(28, st.size(), "the path's directory now, not the one cached under that path");
        At.releaseThreadCache();
    }
}
