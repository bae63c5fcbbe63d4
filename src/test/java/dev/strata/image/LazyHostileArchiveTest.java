package dev.strata.image;

import dev.strata.posix.Posix;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every hostile archive of {@link HostileArchiveTest}, through the lazy mount's metadata-only mode
 * ({@link LazyIndexer}): refused the same way, nothing written outside the layer; file data is looked up
 * through the index.
 */
class LazyHostileArchiveTest extends HostileArchiveTest {
    @TempDir Path graveParent;
    private byte[] lastTar;
    private LazyIndexer lastIndexer;

    @Override void extract(LayerExtractor ex, byte[] tar) throws IOException {
        HashingInputStream h = new HashingInputStream(new ByteArrayInputStream(tar));
        Path grave = Files.createTempDirectory(graveParent, "grave");
        int g = Posix.openat(Posix.AT_FDCWD, grave.toString(), Posix.O_PATH | Posix.O_DIRECTORY, 0);
        try {
            lastTar = tar;
            lastIndexer = ex.metadataOnly = new LazyIndexer(h, g);
            ex.extract(new TarReader(h));
        } finally {
            Posix.close(g);
        }
    }

    @Override String contentOf(Path file) throws IOException {
        long ino = (Long) Files.getAttribute(file, "unix:ino");
        long size = Files.size(file);
        assertEquals(0L, (long) (Integer) Files.getAttribute(file, "unix:nlink") - 1, "one name");
        long off = lastIndexer.offsetOf(ino);
        assertTrue(off >= 0, "the file is in the index");
        return new String(Arrays.copyOfRange(lastTar, (int) off, (int) (off + size)), StandardCharsets.ISO_8859_1);
    }
}
