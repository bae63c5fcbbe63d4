package dev.strata.image;

import dev.strata.layer.LazyTar;
import dev.strata.posix.Posix;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

import static dev.strata.image.RawTar.b;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The metadata-only mode's index points at each file's data in the tar: sizes around the 512-byte
 * record, PAX and GNU long-name headers before a member, hard links, a member replaced later in the same
 * layer (its inode must not be reused for the newcomer), an empty file; the skeleton files are sparse
 * with their size, and the index file written and read back says the same.
 */
class LazyIndexerTest {
    @TempDir Path tmp;

    @Test
    void everyFileIsFoundAtItsOffset() throws IOException {
        Random rnd = new Random(16);
        Map<String, byte[]> want = new LinkedHashMap<>();
        RawTar t = new RawTar();
        for (int size : new int[]{1, 511, 512, 513, 10_000, 70_000}) {
            byte[] d = new byte[size];
            rnd.nextBytes(d);
            t.file("f" + size, d, 0644);
            want.put("f" + size, d);
        }
        t.file("empty", new byte[0], 0644);
        want.put("empty", new byte[0]);
        byte[] pax = b("pax body");
        t.withPax("short", '0', pax, Map.of("path", b("dir/" + "p".repeat(200)), "comment", b("x".repeat(3000))));
        want.put("dir/" + "p".repeat(200), pax);
        byte[] gnu = b("gnu body");
        t.gnuLongName(b("g".repeat(150) + "/" + "h".repeat(150)), '0', gnu);
        want.put("g".repeat(150) + "/" + "h".repeat(150), gnu);
        t.hardlink("f513-link", "f513");
        want.put("f513-link", want.get("f513"));
        t.file("replaced", "first version, replaced below");
        t.dir("gone", 0755).file("gone/inner", "inner data");
        t.file("gone", "a file where a directory was");   // the directory and its file are moved aside
        t.file("replaced", "second");
        want.put("replaced", b("second"));
        want.put("gone", b("a file where a directory was"));
        byte[] tar = t.bytes();

        Path layer = Files.createDirectory(tmp.resolve("layer")), grave = Files.createDirectory(tmp.resolve("grave"));
        int fd = Posix.openat(Posix.AT_FDCWD, layer.toString(), Posix.O_PATH | Posix.O_DIRECTORY, 0);
        int g = Posix.openat(Posix.AT_FDCWD, grave.toString(), Posix.O_PATH | Posix.O_DIRECTORY, 0);
        LazyIndexer ix;
        try (LayerExtractor ex = new LayerExtractor(fd, "layer 1/1", () -> Long.MAX_VALUE, Long.MAX_VALUE)) {
            HashingInputStream h = new HashingInputStream(new ByteArrayInputStream(tar));
            ix = ex.metadataOnly = new LazyIndexer(h, g);
            ex.extract(new TarReader(h));
        } finally {
            Posix.close(fd);
            Posix.close(g);
        }
        Path index = tmp.resolve("index");
        ix.writeIndex(index);
        long[][] back = readBack(index);
        for (Map.Entry<String, byte[]> e : want.entrySet()) {
            Path f = layer.resolve(e.getKey());
            assertEquals(e.getValue().length, Files.size(f), e.getKey());
            long ino = ((Number) Files.getAttribute(f, "unix:ino")).longValue();
            long off = ix.offsetOf(ino);
            assertTrue(off >= 0, e.getKey() + " is in the index");
            assertArrayEquals(e.getValue(), Arrays.copyOfRange(tar, (int) off, (int) off + e.getValue().length), e.getKey());
            int i = Arrays.binarySearch(back[0], ino);
            assertTrue(i >= 0 && back[1][i] == off, e.getKey() + ": the index file says the same");
            if (e.getValue().length >= 4096) {
                dev.strata.posix.Stat st = new dev.strata.posix.Stat();
                assertEquals(0, Posix.fstatat(Posix.AT_FDCWD, f.toString(), st, Posix.AT_SYMLINK_NOFOLLOW));
                assertEquals(0L, st.blocks(), e.getKey() + " is sparse");
            }
        }
        assertEquals(0, Files.readAllBytes(layer.resolve("f10000"))[5000], "the skeleton holds no data");
        assertTrue(Files.isRegularFile(layer.resolve("gone")) && !Files.exists(layer.resolve("gone/inner")));
    }

    private static long[][] readBack(Path index) throws IOException {
        try (java.io.DataInputStream in = new java.io.DataInputStream(Files.newInputStream(index))) {
            in.readLong();
            int n = (int) in.readLong();
            long[][] r = {new long[n], new long[n]};
            for (int i = 0; i < n; i++) {
                r[0][i] = in.readLong();
                r[1][i] = in.readLong();
            }
            assertTrue(LazyTar.blocksFor(1) == 8);
            return r;
        }
    }
}
