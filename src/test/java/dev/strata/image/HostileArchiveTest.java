package dev.strata.image;

import dev.strata.posix.Posix;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static dev.strata.image.RawTar.b;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Hostile layers: each is refused with a clear message and nothing is written outside the layer
 * directory. "outside" is a sibling directory holding a secret; after each attempt the temp dir must
 * hold exactly the layer and the untouched outside directory.
 */
class HostileArchiveTest {
    @TempDir Path tmp;
    Path layer, outside, secret;

    @BeforeEach
    void setUp() throws IOException {
        layer = Files.createDirectory(tmp.resolve("layer"));
        outside = Files.createDirectory(tmp.resolve("outside"));
        secret = Files.writeString(outside.resolve("secret"), "secret");
    }

    /**
     * Extracts {@code tar} with {@code ex} as an import does; {@link LazyHostileArchiveTest} runs every test
     * here through the lazy mount's metadata-only mode instead.
     */
    void extract(LayerExtractor ex, byte[] tar) throws IOException {
        ex.extract(new TarReader(new ByteArrayInputStream(tar)));
    }

    /** The content of an extracted regular file (the lazy mode reads it from the tar at its indexed offset). */
    String contentOf(Path file) throws IOException { return Files.readString(file); }

    private ImageException refused(byte[] tar, long maxBytes, long free) {
        int fd = Posix.openat(Posix.AT_FDCWD, layer.toString(), Posix.O_PATH | Posix.O_DIRECTORY, 0);
        try (LayerExtractor ex = new LayerExtractor(fd, "layer 1/1", () -> free, maxBytes)) {
            return assertThrows(ImageException.class, () -> extract(ex, tar));
        } finally {
            Posix.close(fd);
        }
    }

    /** Refused as hostile with a message containing {@code fragment}, and nothing outside the layer changed. */
    private void assertHostile(byte[] tar, String fragment) throws IOException {
        ImageException e = refused(tar, Long.MAX_VALUE, Long.MAX_VALUE);
        assertTrue(e.getMessage().startsWith("refusing hostile archive: layer 1/1: "), e.getMessage());
        assertTrue(e.getMessage().contains(fragment), e.getMessage());
        assertFalse(e.getMessage().contains("\n"));
        assertNothingOutside();
    }

    private void assertNothingOutside() throws IOException {
        try (Stream<Path> s = Files.list(tmp)) {
            assertEquals(List.of("layer", "outside"), s.map(p -> p.getFileName().toString()).sorted().collect(Collectors.toList()));
        }
        try (Stream<Path> s = Files.list(outside)) {
            assertEquals(List.of("secret"), s.map(p -> p.getFileName().toString()).collect(Collectors.toList()));
        }
        assertEquals("secret", Files.readString(secret));
        assertEquals(1, Files.getAttribute(secret, "unix:nlink"), "no hard link was made to the secret");
    }

    private static void assertFalse(boolean b) { assertTrue(!b); }

    @Test
    void dotDotComponents() throws IOException {
        assertHostile(new RawTar().file("../outside/evil", "x").bytes(), "'../outside/evil' has a '..' component");
        assertHostile(new RawTar().file("a/../../outside/evil", "x").bytes(), "'..' component");
        assertHostile(new RawTar().dir("a/..", 0755).bytes(), "'..' component");
    }

    @Test
    void absoluteNames() throws IOException {
        assertHostile(new RawTar().file(outside + "/evil", "x").bytes(), "absolute name '" + outside + "/evil'");
        Map<String, byte[]> pax = Map.of("path", b(outside + "/evil"));
        assertHostile(new RawTar().withPax("benign", '0', b("x"), pax).bytes(), "absolute name");
        assertHostile(concat(new RawTar().bytes(), new RawTar().gnuLongName(b("/" + "x".repeat(120)), '0', b("x")).bytes()),
                "absolute name");
    }

    private static byte[] concat(byte[] a, byte[] b) { return LayerExtractorTest.concat(a, b); }

    @Test
    void entriesThroughASymlinkPlantedEarlier() throws IOException {
        assertHostile(new RawTar().symlink("link", outside.toString()).file("link/evil", "x").bytes(),
                "'link/evil' goes through the symbolic link 'link'");
        assertHostile(new RawTar().symlink("rel", "../outside").file("rel/evil", "x").bytes(), "symbolic link 'rel'");
        assertHostile(new RawTar().dir("a", 0755).symlink("a/b", "../../outside").dir("a/b/c", 0755).bytes(),
                "symbolic link 'a/b'");
        // even a symlink that stays inside the layer is not followed
        assertHostile(new RawTar().dir("real", 0755).symlink("inner", "real").file("inner/x", "x").bytes(),
                "symbolic link 'inner'");
        // an opaque marker or whiteout through a symlink is refused the same way
        assertHostile(new RawTar().symlink("o", outside.toString()).file("o/.wh..wh..opq", "").bytes(), "symbolic link 'o'");
        assertHostile(new RawTar().symlink("w", outside.toString()).file("w/.wh.secret", "").bytes(), "symbolic link 'w'");
    }

    @Test
    void hardLinksToNamesOutsideTheLayerOrNotYetExtracted() throws IOException {
        assertHostile(new RawTar().hardlink("h", "../outside/secret").bytes(), "hard link target '../outside/secret' (of 'h')");
        assertHostile(new RawTar().hardlink("h", secret.toString()).bytes(), "absolute hard link target");
        assertHostile(new RawTar().hardlink("h", "later").file("later", "x").bytes(),
                "hard link 'h' points to 'later', which is not (yet) in the layer");
        assertHostile(new RawTar().symlink("sl", outside.toString()).hardlink("h", "sl/secret").bytes(),
                "'sl/secret' goes through the symbolic link 'sl'");
        assertHostile(new RawTar().dir("d", 0755).hardlink("h", "d").bytes(), "points to the directory 'd'");
        assertHostile(new RawTar().file("f", "x").hardlink("h", "").bytes(), "points to the layer root");
    }

    @Test
    void absurdSizesAreRefusedBeforeAnyWrite() throws IOException {
        // a PAX size of 2^60 bytes with no data behind it
        Map<String, byte[]> pax = Map.of("size", b(String.valueOf(1L << 60)));
        ImageException e = refused(new RawTar().withPax("huge", '0', null, pax).bytesUnterminated(), Long.MAX_VALUE, 10L << 30);
        assertEquals("layer 1/1: 'huge' claims 1.0 EiB but only 10.0 GiB are free in the store", e.getMessage());
        assertNothingOutside();
        assertFalse(Files.exists(layer.resolve("huge")));
        // more than the configured cap
        e = refused(new RawTar().file("a", new byte[3000], 0644).file("b", new byte[3000], 0644).bytes(), 4096, Long.MAX_VALUE);
        assertTrue(e.getMessage().contains("layer is larger than the limit of 4.0 KiB (at 'b'"), e.getMessage());
        // a base-256 size field in the header itself
        e = refused(new RawTar().claim("c", 1L << 50).bytesUnterminated(), Long.MAX_VALUE, 1L << 30);
        assertEquals("layer 1/1: 'c' claims 1.0 PiB but only 1.0 GiB are free in the store", e.getMessage());
        assertFalse(Files.exists(layer.resolve("c")));
        assertNothingOutside();
    }

    @Test
    void namesWithNulBytesOrTooLong() throws IOException {
        assertHostile(new RawTar().withPax("x", '0', b("x"), Map.of("path", b("ok\u0000../../evil"))).bytes(), "contains a NUL byte");
        assertHostile(new RawTar().withPax("x", '0', b("x"), Map.of("path", b("a/".repeat(3000)))).bytes(),
                "is longer than 4096 bytes");
        assertHostile(new RawTar().entry(b("s"), '2', null, b("x"), 0777, 0, 0, 0, 0,
                Map.of("linkpath", b("a\u0000b"))).bytes(), "contains a NUL byte");
    }

    @Test
    void invalidWhiteouts() throws IOException {
        assertHostile(new RawTar().file(".wh..", "").bytes(), "invalid whiteout '.wh..'");
        assertHostile(new RawTar().file("d/.wh.", "").bytes(), "invalid whiteout 'd/.wh.'");
        ImageException e = refused(new RawTar().file(".wh.dir/file", "x").bytes(), Long.MAX_VALUE, Long.MAX_VALUE);
        assertTrue(e.getMessage().contains("a whiteout name (.wh.*) used as a directory"), e.getMessage());
        assertNothingOutside();
    }

    @Test
    void hugePaxHeadersAreRefused() throws IOException {
        byte[] big = new byte[TarReader.MAX_SPECIAL + 10];
        java.util.Arrays.fill(big, (byte) 'a');
        ImageException e = refused(new RawTar().withPax("x", '0', b("x"), Map.of("comment", big)).bytes(),
                Long.MAX_VALUE, Long.MAX_VALUE);
        assertTrue(e.getMessage().contains("PAX or long-name header is larger than 8 MiB"), e.getMessage());
        assertNothingOutside();
    }

    @Test
    void aSymlinkIsStoredVerbatimButNeverFollowed() throws IOException {
        // storing a link that points outside is fine (it is resolved in the container, not here);
        // replacing it by a file must not write through it
        int fd = Posix.openat(Posix.AT_FDCWD, layer.toString(), Posix.O_PATH | Posix.O_DIRECTORY, 0);
        try (LayerExtractor ex = new LayerExtractor(fd, "layer 1/1", () -> Long.MAX_VALUE, Long.MAX_VALUE)) {
            extract(ex, new RawTar()
                    .symlink("abs", secret.toString())
                    .symlink("rel", "../outside/secret")
                    .file("rel", "replaced")
                    .bytes());
        } finally {
            Posix.close(fd);
        }
        assertEquals(secret, Files.readSymbolicLink(layer.resolve("abs")));
        assertEquals("replaced", contentOf(layer.resolve("rel")));
        assertNothingOutside();
    }
}
