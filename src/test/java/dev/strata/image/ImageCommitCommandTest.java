package dev.strata.image;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static dev.strata.image.ImageCommandTest.assertOneLineError;
import static dev.strata.image.ImageCommandTest.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `strata image commit|export|cat|cp` through Main.run: what a user can get wrong is one line and exit 1 (2 for usage). */
class ImageCommitCommandTest {
    @TempDir Path tmp;
    String store;
    Path upper;

    @BeforeEach
    void image() throws IOException {
        store = tmp.resolve("store").toString();
        Path layout = TestImages.ociLayout(tmp.resolve("one"), "1",
                new TestImages.Layer(new TestImages.CcTar().dir("etc", 0755).file("etc/a", "A", 0644).bytes(), "gzip"));
        assertEquals(0, run("image", "import", layout.toString(), "--name", "base:1", "--store", store).code);
        upper = Files.createDirectories(tmp.resolve("upper/etc"));
        Files.writeString(upper.resolve("b"), "B");
        upper = tmp.resolve("upper");
    }

    @Test
    void commitExportCatCpWork() throws IOException {
        ImageCommandTest.Run r = run("image", "commit", "--upper", upper.toString(), "--from", "base:1", "mine:2", "--store", store);
        assertEquals(0, r.code, r.err);
        assertTrue(r.out.startsWith("Committed mine:2 (image "), r.out);
        r = run("image", "cat", "mine:2", "/etc/b", "--store", store);
        assertEquals("B", r.out);
        r = run("image", "cat", "mine:2", "/etc/a", "--store", store);
        assertEquals("A", r.out);
        Path oci = tmp.resolve("oci");
        r = run("image", "export", "mine:2", oci.toString(), "--store", store);
        assertEquals(0, r.code, r.err);
        assertTrue(Files.isRegularFile(oci.resolve("index.json")));
        r = run("image", "cp", "mine:2:/etc", tmp.toString(), "--store", store);
        assertEquals(0, r.code, r.err);
        assertEquals("B", Files.readString(tmp.resolve("etc/b")), "into an existing directory under the path's name");
    }

    @Test
    void cpCopiesALinkAsItIsOrWithDashLWhatItPointsTo() throws IOException {
        Files.createSymbolicLink(upper.resolve("etc/link"), Path.of("/etc/a"));
        Files.createSymbolicLink(upper.resolve("etc/loop"), Path.of("loop"));
        assertEquals(0, run("image", "commit", "--upper", upper.toString(), "--from", "base:1", "l:1", "--store", store).code);
        assertEquals(0, run("image", "cp", "l:1:/etc/link", tmp.resolve("as-link").toString(), "--store", store).code);
        assertEquals("/etc/a", Files.readSymbolicLink(tmp.resolve("as-link")).toString());
        ImageCommandTest.Run r = run("image", "cp", "-L", "l:1:/etc/link", tmp.resolve("followed").toString(), "--store", store);
        assertEquals(0, r.code, r.err);
        assertEquals("A", Files.readString(tmp.resolve("followed")), "the image's /etc/a, not the host's");
        assertOneLineError(run("image", "cat", "l:1", "/etc/loop", "--store", store), "/etc/loop: too many levels of symbolic links");
    }

    @Test
    void mistakesAreOneLine() throws IOException {
        assertOneLineError(run("image", "commit", "--upper", tmp.resolve("nope").toString(), "--from", "base:1", "x", "--store", store),
                "upper directory " + tmp.resolve("nope") + ": No such file or directory");
        assertOneLineError(run("image", "commit", "--upper", upper.toString(), "--from", "missing", "x", "--store", store),
                "no image 'missing' in the store " + store + " (see 'strata image ls')");
        assertEquals(0, run("image", "commit", "--upper", upper.toString(), "--from", "base:1", "x", "--store", store).code);
        ImageCommandTest.Run r = run("image", "commit", "--upper", upper.toString(), "--from", "base:1", "x", "--store", store);
        assertEquals(1, r.code);
        assertTrue(r.err.matches("strata: the name x:latest is taken by image [0-9a-f]{12}; give another name, or --force to move it to the new image\n"), r.err);
        assertEquals(0, run("image", "commit", "--upper", upper.toString(), "--from", "base:1", "x", "--force", "--store", store).code);
        assertEquals(2, run("image", "commit", "--upper", upper.toString(), "x", "--store", store).code, "--upper without --from");
        assertEquals(2, run("image", "commit", "x", "--store", store).code, "no mount point");
        r = run("image", "commit", tmp.toString(), "y", "--store", store);
        assertEquals(1, r.code);
        assertTrue(r.err.startsWith("strata: ") && r.err.contains("is not a running strata mount") && r.err.indexOf('\n') == r.err.length() - 1, r.err);
        assertOneLineError(run("image", "commit", "--upper", upper.toString(), "--from", "base:1", "Bad Name", "--store", store),
                "invalid image name 'Bad Name': use NAME[:TAG] with lowercase letters, digits and . _ - / in NAME (e.g. alpine:3.19)");

        Path dest = Files.createDirectory(tmp.resolve("exists"));
        assertOneLineError(run("image", "export", "x", dest.toString(), "--store", store), dest + " exists: remove it or give another destination");
        assertEquals(2, run("image", "export", "x", tmp.resolve("o").toString(), "--format", "zip", "--store", store).code);
        assertOneLineError(run("image", "export", "nope", tmp.resolve("o").toString(), "--store", store),
                "no image 'nope' in the store " + store + " (see 'strata image ls')");
        Path ro = Files.createDirectory(tmp.resolve("ro"));
        if (dev.strata.posix.Posix.geteuid() != 0) {
            ro.toFile().setWritable(false);
            r = run("image", "export", "x", ro.resolve("o").toString(), "--store", store);
            assertEquals(1, r.code);
            assertTrue(r.err.startsWith("strata: cannot write in " + ro), r.err);
        }

        assertOneLineError(run("image", "cat", "x", "/etc/none", "--store", store),
                "image x:latest: /etc/none: no such file or directory in any layer");
        assertEquals(2, run("image", "cp", "x", tmp.resolve("c").toString(), "--store", store).code, "no IMAGE:PATH");
        Files.writeString(tmp.resolve("c"), "");
        assertOneLineError(run("image", "cp", "x:/etc/a", tmp.resolve("c").toString(), "--store", store), tmp.resolve("c") + " exists: give a new name (or remove it)");
    }
}
