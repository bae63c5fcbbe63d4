package dev.strata.image;

import com.fasterxml.jackson.databind.JsonNode;
import dev.strata.cli.Main;
import dev.strata.image.TestImages.Layer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `strata image ...` end to end through Main.run: output, exit codes, one-line errors. */
class ImageCommandTest {
    @TempDir Path tmp;

    static final class Run {
        int code;
        String out, err;
    }

    static Run run(String... args) {
        PrintStream o = System.out, e = System.err;
        ByteArrayOutputStream bo = new ByteArrayOutputStream(), be = new ByteArrayOutputStream();
        Run r = new Run();
        try {
            System.setOut(new PrintStream(bo, true, StandardCharsets.ISO_8859_1));
            System.setErr(new PrintStream(be, true, StandardCharsets.ISO_8859_1));
            r.code = Main.run(args);
        } finally {
            System.setOut(o);
            System.setErr(e);
        }
        r.out = bo.toString(StandardCharsets.ISO_8859_1);
        r.err = be.toString(StandardCharsets.ISO_8859_1);
        return r;
    }

    static void assertOneLineError(Run r, String expected) {
        assertEquals(1, r.code, r.err);
        assertEquals("strata: " + expected + "\n", r.err);
    }

    @Test
    void anImageWithoutLayersIsRefusedAndAMountOfOneCreatesNothing() throws IOException {
        String store = tmp.resolve("store").toString();
        Path empty = TestImages.ociLayout(tmp.resolve("empty"), "1");
        assertOneLineError(run("image", "import", empty.toString(), "--name", "empty:1", "--store", store),
                empty + ": the image has no layers; nothing imported");
        // a store written before the refusal may hold one: the mount says so before creating --upper/--work
        Path layout = TestImages.ociLayout(tmp.resolve("one"), "1", new Layer(ImageStoreTest.baseTar(), "gzip"));
        assertEquals(0, run("image", "import", layout.toString(), "--name", "old:1", "--store", store).code);
        try (java.util.stream.Stream<Path> recs = Files.list(tmp.resolve("store/images"))) {
            Path rec = recs.findFirst().orElseThrow();
            com.fasterxml.jackson.databind.node.ObjectNode o = (com.fasterxml.jackson.databind.node.ObjectNode) TestImages.M.readTree(rec.toFile());
            o.putArray("layers");
            TestImages.M.writeValue(rec.toFile(), o);
        }
        Path m = Files.createDirectory(tmp.resolve("m"));
        Run r = run("mount", "--image", "old:1", "--store", store, "--upper", tmp.resolve("up").toString(), m.toString());
        assertOneLineError(r, "image old:1 has no layers: there is nothing to mount");
        assertFalse(Files.exists(tmp.resolve("up")), "no upper directory created");
        assertFalse(Files.exists(tmp.resolve("up.work")), "no work directory created");
        r = run("layers", "--image", "old:1", "--store", store);
        assertOneLineError(r, "image old:1 has no layers: there is nothing to mount");
        // a refusal after --upper/--work were made (here: no mountpoint) takes them away again
        assertEquals(0, run("image", "import", layout.toString(), "--name", "ok:1", "--store", store).code);
        r = run("mount", "--image", "ok:1", "--store", store, "--upper", tmp.resolve("new/up").toString(), tmp.resolve("nomnt").toString());
        assertOneLineError(r, "mountpoint " + tmp.resolve("nomnt") + " does not exist");
        assertFalse(Files.exists(tmp.resolve("new")), "the directories made for the mount are gone");
    }

    @Test
    void importListInspectRemove() throws IOException {
        Layer base = new Layer(ImageStoreTest.baseTar(), "gzip"), top = new Layer(ImageStoreTest.topTar("v2"), "zstd");
        Path layout = TestImages.ociLayout(tmp.resolve("web"), "1.2", base, top);
        String store = tmp.resolve("store").toString();

        Run r = run("image", "import", layout.toString(), "--store", store);
        assertEquals(0, r.code, r.err);
        assertEquals("", r.err, "no progress line when stderr is not a terminal");
        String[] lines = r.out.split("\n");
        assertEquals(4, lines.length, r.out);
        assertEquals("Importing OCI layout " + layout + " (linux/amd64), 2 layers", lines[0]);
        assertEquals("layer 2/2 " + top.diffId.substring(7, 19) + ": extracted (11 B, 2 files)", lines[2]);
        assertTrue(lines[3].matches("Imported web:1\\.2 \\(image [0-9a-f]{12}\\): 2 layers, 2 extracted, 0 already in the store"), lines[3]);

        r = run("image", "import", "-q", layout.toString(), "--store", store, "--name", "web:copy");
        assertEquals(0, r.code, r.err);
        assertEquals("", r.out);

        r = run("image", "ls", "--store", store);
        assertEquals(0, r.code, r.err);
        String[] ls = r.out.split("\n");
        assertEquals(3, ls.length, r.out);
        assertTrue(ls[0].matches("NAME +ID +LAYERS +SIZE +SHARED"), ls[0]);
        assertTrue(ls[1].matches("web:1\\.2 +[0-9a-f]{12} +2 +33 B +0 B"), ls[1]);
        assertTrue(ls[2].startsWith("web:copy "), ls[2]);

        r = run("image", "ls", "--json", "--store", store);
        JsonNode j = TestImages.M.readTree(r.out);
        assertEquals(2, j.size());
        assertEquals(33, j.get(0).get("size").asLong());

        r = run("image", "inspect", "web:1.2", "--store", store);
        assertEquals(0, r.code, r.err);
        assertTrue(r.out.contains("Names        web:1.2, web:copy\n"), r.out);
        assertTrue(r.out.contains("  Entrypoint   [\"/bin/sh\"]\n"), r.out);
        assertTrue(r.out.contains("  Env          PATH=/usr/bin:/bin\n               ARCH=amd64\n"), r.out);
        assertTrue(r.out.contains("  WorkingDir   /srv\n"), r.out);
        assertTrue(r.out.contains("   2  " + top.diffId), r.out);
        assertTrue(r.out.contains(Path.of(store, "layers/sha256", top.diffId.substring(7)) + "\n  "
                + Path.of(store, "layers/sha256", base.diffId.substring(7)) + "\n"), r.out);

        r = run("image", "inspect", "--json", "web:copy", "--store", store);
        j = TestImages.M.readTree(r.out);
        assertEquals(2, j.get("layerDirsTopFirst").size());
        assertEquals(base.diffId, j.get("layers").get(0).get("diffId").asText());

        r = run("image", "rm", "web:1.2", "--store", store);
        assertEquals("Untagged web:1.2\n", r.out);
        r = run("image", "rm", "web:copy", "--store", store);
        assertEquals(0, r.code, r.err);
        assertTrue(r.out.startsWith("Deleted image "), r.out);
        assertTrue(r.out.contains("Deleted layer " + base.diffId + "\n"), r.out);
        assertTrue(r.out.endsWith("Freed 33 B\n"), r.out);
        r = run("image", "ls", "--store", store);
        assertEquals("NAME  ID  LAYERS  SIZE  SHARED\n", r.out);
    }

    @Test
    void mistakesAreOneLineAndNonZero() throws IOException {
        String store = tmp.resolve("store").toString();
        assertOneLineError(run("image", "import", tmp.resolve("missing").toString(), "--store", store),
                tmp.resolve("missing") + ": no such file or directory");
        assertOneLineError(run("image", "inspect", "ghost", "--store", store),
                "no image 'ghost' in the store " + store + " (see 'strata image ls')");
        assertOneLineError(run("image", "rm", "ghost", "--store", store),
                "no image 'ghost' in the store " + store + " (see 'strata image ls')");
        Path layer = Files.write(tmp.resolve("l.tar"), new RawTar().file("f", "x").bytes());
        assertOneLineError(run("image", "import", layer.toString(), "--platform", "amd64", "--store", store),
                "invalid platform 'amd64': use os/arch[/variant], e.g. linux/arm64");
        assertOneLineError(run("image", "import", layer.toString(), "--max-layer-size", "lots", "--store", store),
                "invalid size 'lots' (e.g. 500M, 20G)");
        Path hostile = Files.write(tmp.resolve("evil.tar"), new RawTar().file("../evil", "x").bytes());
        assertOneLineError(run("image", "import", hostile.toString(), "--store", store),
                "refusing hostile archive: layer 1/1: name '../evil' has a '..' component");
        Run r = run("image", "import", "--store", store);
        assertEquals(2, r.code);
        assertTrue(r.err.startsWith("strata: Missing required parameter: 'SOURCE'\n"), r.err);
        assertEquals(0, run("image", "ls", "--store", store).code);
    }
}
