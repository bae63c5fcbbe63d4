package dev.strata.nativetest;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A copy-up interrupted by the daemon's death leaves the upper as it was: the copy is built unnamed in
 * the workdir and gets its name in the upper only when data, xattrs, owner, mode and times are in place.
 * The daemon is killed (SIGKILL) while it holds the half-written copy of a large lower file open; the
 * upper must then show no name for it, the workdir nothing left over, and a new mount of the same upper
 * (strata, then the kernel overlay) must show the lower file and copy it up in full.
 */
@Tag("native")
class CopyUpCrashTest {
    static final long SIZE = 512L << 20;

    @BeforeEach void env() { NativeSupport.assumeNativeEnvironment(); }

    @Test void daemonKilledDuringCopyUpLeavesNoPartialFile() throws Exception {
        // SIGKILLs the process serving its mount: a process of its own, not the shared daemon (which may
        // serve other mounts of this JVM that this test does not own)
        Mounter t = Mounter.underTest().ownProcess();
        Assumptions.assumeTrue(t instanceof Mounter.Strata, "kills the strata daemon; the target is " + t);
        Path dir = NativeSupport.newTempDir("crash");
        boolean ok = false;
        try {
            LayerSet layers = LayerSet.create(dir.resolve("x"), 1);
            Path lower = layers.lowers.get(0).resolve("big.bin");
            byte[] piece = new byte[1 << 20];
            for (int i = 0; i < piece.length; i++) piece[i] = (byte) (i * 131 + 17);
            try (RandomAccessFile r = new RandomAccessFile(lower.toFile(), "rw")) {
                for (long o = 0; o < SIZE; o += piece.length) r.write(piece);
            }
            Files.writeString(layers.lowers.get(0).resolve("small.txt"), "small");
            String lowerSha = sha256(lower, SIZE);
            assertEquals(expectedSha(piece), lowerSha, "the lower file as written");
            LowerLayers lowers = LowerLayers.snapshot(layers); // byte for byte (sha256 of all 512 MiB) and metadata for metadata
            Path work = layers.work.resolve("work");

            boolean killedDuringCopy;
            try (Mount m = t.mount(layers)) {
                List<Long> pids = Mounts.daemonPids(m.path());
                assertEquals(1, pids.size(), "one daemon for " + m.path() + ": " + pids);
                long pid = pids.get(0);
                AtomicReference<Throwable> opened = new AtomicReference<>();
                Thread writer = new Thread(() -> {
                    try (RandomAccessFile f = new RandomAccessFile(m.abs("big.bin"), "rw")) {
                        f.seek(SIZE);
                        f.write('x');
                    } catch (Throwable e) {
                        opened.set(e); // expected: the daemon dies under the open
                    }
                }, "copy-up");
                writer.start();
                // kill once the daemon holds the copy open in the workdir (written to, not yet named)
                killedDuringCopy = false;
                long deadline = System.nanoTime() + 60_000_000_000L;
                while (writer.isAlive() && System.nanoTime() < deadline) {
                    if (Mounts.holdsFileIn(pid, work)) {
                        ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
                        killedDuringCopy = true;
                        break;
                    }
                    Thread.sleep(1);
                }
                writer.join(30_000);
                assertTrue(killedDuringCopy, "the copy-up finished before the daemon could be killed during it: the"
                        + " copy was not held open in " + work + " (made by reflink, or not built in the workdir?);"
                        + " this test needs layers on a file system without reflink (ext4, tmpfs): -Dstrata.testTmp=DIR");
                assertFalse(writer.isAlive(), "the open returned once the daemon was gone");
                ProcessHandle.of(pid).ifPresent(h -> h.onExit().join());
                Throwable failed = opened.get();
                assertTrue(failed instanceof IOException && String.valueOf(failed.getMessage()).matches(
                        ".*(Transport endpoint is not connected|Software caused connection abort).*"),
                        "the open of the file being copied up fails with ENOTCONN/ECONNABORTED when the daemon dies, not: " + failed);
            }

            // the kill may (rarely) land between the naming and the close: then the copy must be whole
            Path named = layers.upper.resolve("big.bin");
            if (Files.exists(named, LinkOption.NOFOLLOW_LINKS)) {
                assertEquals(SIZE, Files.size(named), "a copy with a name in the upper is complete");
                assertEquals(lowerSha, sha256(named, SIZE + 1), "a copy with a name in the upper holds the lower file's data");
            }
            try (var s = Files.list(work)) {
                assertEquals(List.of(), s.map(p -> p.getFileName().toString()).toList(), "nothing is left in the workdir");
            }

            // the same upper, mounted again: the lower file, whole, and a copy-up that completes
            for (Mounter again : new Mounter[]{t, Mounter.kernel()}) {
                LayerSet l2 = layers.withFreshWorkAndMnt(again.name() + "-again");
                try (Mount m = again.mount(l2)) {
                    Path big = Path.of(m.abs("big.bin"));
                    assertEquals(lowerSha, Mounts.guarded("sha256 of big.bin on " + again, () -> sha256(big, SIZE + 1)),
                            again + " shows the lower file, whole");
                }
            }
            assertEquals(lowerSha, sha256(lower, SIZE + 1), "the lower file is intact");
            LayerSet l3 = layers.withFreshWorkAndMnt("final");
            try (Mount m = t.mount(l3)) {
                Mounts.guarded("append to big.bin on " + t, () -> {
                    try (RandomAccessFile f = new RandomAccessFile(m.abs("big.bin"), "rw")) {
                        f.seek(SIZE);
                        f.write('y');
                        return null;
                    } catch (IOException e) {
                        throw new java.io.UncheckedIOException(e);
                    }
                });
            }
            Path up = layers.upper.resolve("big.bin");
            assertEquals(SIZE + 1, Files.size(up));
            assertEquals(lowerSha, sha256(up, SIZE), "the copy holds the lower file's data");
            try (RandomAccessFile f = new RandomAccessFile(up.toFile(), "r")) {
                f.seek(SIZE);
                assertEquals('y', f.read());
            }
            lowers.assertUnchanged("[crash] strata, the kernel overlay and strata again on these lowers");
            ok = true;
        } finally {
            if (!ok && Boolean.getBoolean("strata.keepFailed")) System.err.println("[crash] kept " + dir);
            else NativeSupport.deleteTree(dir);
        }
    }

    /** sha256 (hex) of the first max bytes of f (all of it if shorter); an UncheckedIOException if it cannot be read. */
    static String sha256(Path f, long max) {
        try (var in = Files.newInputStream(f)) {
            java.security.MessageDigest md = java.security.MessageDigest.getInstance("SHA-256");
            byte[] b = new byte[1 << 20];
            long left = max;
            for (int n; left > 0 && (n = in.read(b, 0, (int) Math.min(b.length, left))) > 0; left -= n) md.update(b, 0, n);
            return java.util.HexFormat.of().formatHex(md.digest());
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(f + ": " + e.getMessage(), e);
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** sha256 of SIZE bytes that repeat piece. */
    private static String expectedSha(byte[] piece) throws Exception {
        java.security.MessageDigest md = java.security.MessageDigest.getInstance("SHA-256");
        for (long o = 0; o < SIZE; o += piece.length) md.update(piece);
        return java.util.HexFormat.of().formatHex(md.digest());
    }

    /** Whether process pid has a descriptor open on a file in dir (an unnamed O_TMPFILE shows as "dir/#N (deleted)"). */
}
