package dev.strata.image;

import com.fasterxml.jackson.databind.JsonNode;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.zip.GZIPInputStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** image commit, export, cat and cp on a small image, without root. */
class ImageCommitTest {
    @TempDir Path tmp;
    ImageStore store;
    Path upper;

    @BeforeEach
    void baseImageAndAnUpper() throws IOException {
        byte[] base = new TestImages.CcTar()
                .dir("etc", 0755)
                .file("etc/conf", "base conf", 0644)
                .symlink("etc/abs", "/etc/conf")
                .symlink("etc/up", "../../../../../etc/conf")
                .dir("usr/lib/gone", 0755)
                .file("usr/lib/gone/a", "a", 0644)
                .symlink("lnk", "usr/lib/gone")
                .dir("opt/x", 0755)
                .file("opt/x/old", "old", 0644)
                .file("bin/tool", "tool", 0755)
                .hardlink("bin/tool2", "bin/tool")
                .bytes();
        Path oci = TestImages.ociLayout(tmp.resolve("oci"), "1", new TestImages.Layer(base, "gzip"));
        store = ImageStore.open(tmp.resolve("store"));
        ImageStore.ImportRequest req = new ImageStore.ImportRequest(oci);
        req.name = "base:1";
        store.importImage(req, ImportListener.QUIET);

        upper = Files.createDirectories(tmp.resolve("upper"));
        Files.createDirectories(upper.resolve("etc"));
        Files.writeString(upper.resolve("etc/conf"), "changed conf");
        Files.createDirectories(upper.resolve("usr/lib"));
        Files.writeString(upper.resolve("usr/lib/.wh.gone"), "");
        Files.createDirectories(upper.resolve("opt/x"));
        Files.writeString(upper.resolve("opt/x/.wh..wh..opq"), "");
        Files.writeString(upper.resolve("opt/x/new"), "new");
        Files.createLink(upper.resolve("opt/x/new2"), upper.resolve("opt/x/new"));
        assertEquals(0, Posix.mknodat(Posix.AT_FDCWD, upper.resolve("fifo").toString(), Posix.S_IFIFO | 0600, 0));
    }

    Committer.Result commit(String name) {
        Committer.Request r = new Committer.Request();
        r.upper = upper.toString();
        r.base = "base:1";
        r.name = name;
        return Committer.commit(store, r, ImportListener.QUIET);
    }

    String cat(String image, String path) throws IOException {
        try (ImageFiles f = ImageFiles.open(store, image)) {
            ByteArrayOutputStream o = new ByteArrayOutputStream();
            f.cat(path, o);
            return o.toString(java.nio.charset.StandardCharsets.ISO_8859_1);
        }
    }

    @Test
    void commitAddsOneLayerAConfigAndAName() throws IOException {
        ImageRecord base = store.find("base:1");
        Committer.Result r = commit("mine:1");
        ImageRecord rec = store.find("mine:1");
        assertEquals(r.image.id, rec.id);
        assertEquals(2, rec.layers.size());
        assertEquals(base.layers.get(0).diffId, rec.layers.get(0).diffId);
        JsonNode ids = rec.config.path("rootfs").path("diff_ids");
        assertEquals(2, ids.size());
        assertEquals(rec.layers.get(1).diffId, ids.get(1).asText());
        assertEquals(2, rec.config.path("history").size(), "a history entry per layer (the base's made up)");
        assertEquals(Digest.of(Committer.compact(rec.config)).toString(), rec.id, "the id is the config's digest");
        // the kept blob is the layer: its digest and its uncompressed digest
        Path blob = store.layerBlob(Digest.parse(r.layer.diffId));
        assertEquals(r.layer.digest, Digest.of(Files.readAllBytes(blob)).toString());
        try (InputStream in = new GZIPInputStream(Files.newInputStream(blob))) {
            assertEquals(r.layer.diffId, Digest.of(in.readAllBytes()).toString());
        }
        // the stored layer says what the upper says
        Map<String, String> layer = Snapshot.of(store.layerDir(Digest.parse(r.layer.diffId)));
        assertEquals("whiteout", layer.get("usr/lib/gone"));
        assertTrue(layer.get("opt/x").endsWith("opaque"), layer.get("opt/x"));
        assertTrue(layer.get("opt/x/new").contains("links=2"), layer.get("opt/x/new"));
        assertTrue(layer.get("fifo").startsWith("fifo 0600"), layer.get("fifo"));
        assertEquals(2, store.lowerDirsTopFirst("mine:1").size());
    }

    @Test
    void theSameUpperGivesTheSameLayerAndANameIsNotTakenSilently() {
        Committer.Result a = commit("mine:1");
        ImageException e = assertThrows(ImageException.class, () -> commit("mine:1"));
        assertTrue(e.getMessage().contains("is taken") && e.getMessage().contains("--force"), e.getMessage());
        Committer.Result b = commit("mine:2");
        assertEquals(a.layer.diffId, b.layer.diffId);
        assertEquals(a.layer.digest, b.layer.digest, "gzip without a time in it: same blob digest too");
        assertTrue(b.layerReused);
        ImageException missing = assertThrows(ImageException.class, () -> {
            Committer.Request r = new Committer.Request();
            r.upper = upper.toString();
            r.base = "nope";
            r.name = "x";
            Committer.commit(store, r, ImportListener.QUIET);
        });
        assertTrue(missing.getMessage().startsWith("no image 'nope'"), missing.getMessage());
    }

    @Test
    void catSeesTheMergedImageAndSaysWhichLayerHides() throws IOException {
        commit("mine:1");
        assertEquals("changed conf", cat("mine:1", "/etc/conf"));
        assertEquals("base conf", cat("base:1", "etc/conf"));
        assertEquals("changed conf", cat("mine:1", "/etc/abs"), "an absolute link resolves inside the image");
        assertEquals("changed conf", cat("mine:1", "/etc/up"), "'..' past the root stays at the image's root");
        assertEquals("new", cat("mine:1", "/opt/x/new2"));
        assertEquals("a", cat("base:1", "/lnk/../gone/a"), "'..' after a link goes up from the link's target, not lexically");
        ImageException wh = assertThrows(ImageException.class, () -> cat("mine:1", "/usr/lib/gone/a"));
        assertTrue(wh.getMessage().contains("/usr/lib/gone is whited out in lower1"), wh.getMessage());
        assertTrue(wh.getMessage().contains("lower1 = layer 2 of 2"), wh.getMessage());
        ImageException opq = assertThrows(ImageException.class, () -> cat("mine:1", "/opt/x/old"));
        assertTrue(opq.getMessage().contains("opaque"), opq.getMessage());
        assertTrue(opq.getMessage().contains("lower2 holds it"), opq.getMessage());
        ImageException dir = assertThrows(ImageException.class, () -> cat("mine:1", "/etc"));
        assertTrue(dir.getMessage().contains("is a directory"), dir.getMessage());
    }

    @Test
    void cpCopiesFilesLinksAndTrees() throws IOException {
        commit("mine:1");
        Path out = Files.createDirectory(tmp.resolve("out"));
        try (ImageFiles f = ImageFiles.open(store, "mine:1")) {
            f.cp("/etc/abs", out.resolve("abs").toString());
            assertEquals("/etc/conf", Files.readSymbolicLink(out.resolve("abs")).toString(), "the link itself");
            f.cp("/bin", out.resolve("bin").toString());
            Stat a = new Stat(), b = new Stat();
            Posix.fstatat(Posix.AT_FDCWD, out.resolve("bin/tool").toString(), a, 0);
            Posix.fstatat(Posix.AT_FDCWD, out.resolve("bin/tool2").toString(), b, 0);
            assertEquals(a.ino(), b.ino(), "a hard link stays one");
            assertEquals(0755, a.perm());
            assertEquals(1_650_000_000L, a.mtime());
            f.cp("/opt", out.resolve("opt").toString());
            assertEquals(List.of("new", "new2"), List.of(out.resolve("opt/x").toFile().list()).stream().sorted().toList());
            ImageException exists = assertThrows(ImageException.class, () -> f.cp("/etc/conf", out.resolve("abs").toString()));
            assertTrue(exists.getMessage().contains("exists"), exists.getMessage());
            assertThrows(ImageException.class, () -> f.cp("/usr/lib/gone", out.resolve("gone").toString()));
            assertFalse(Files.exists(out.resolve("gone")));
        }
    }

    @Test
    void ociExportIsAValidLayoutThatImportsBackToTheSameFiles() throws IOException {
        Committer.Result c = commit("mine:1");
        Path oci = tmp.resolve("export");
        Exporter.Result r = Exporter.export(store, "mine:1", oci, Exporter.Format.OCI, ImportListener.QUIET);
        assertEquals("1", r.tag);
        JsonNode index = Json.MAPPER.readTree(oci.resolve("index.json").toFile());
        JsonNode md = index.path("manifests").get(0);
        assertEquals("1", md.path("annotations").path("org.opencontainers.image.ref.name").asText());
        byte[] manifest = blob(oci, md.path("digest").asText());
        JsonNode m = Json.MAPPER.readTree(manifest);
        byte[] config = blob(oci, m.path("config").path("digest").asText());
        JsonNode diffIds = Json.MAPPER.readTree(config).path("rootfs").path("diff_ids");
        for (int i = 0; i < 2; i++) {
            byte[] gz = blob(oci, m.path("layers").get(i).path("digest").asText());
            assertEquals(m.path("layers").get(i).path("size").asLong(), gz.length);
            try (InputStream in = new GZIPInputStream(new java.io.ByteArrayInputStream(gz))) {
                assertEquals(diffIds.get(i).asText(), Digest.of(in.readAllBytes()).toString());
            }
        }
        assertEquals(c.layer.digest, m.path("layers").get(1).path("digest").asText(), "the committed blob as it is");
        assertThrows(ImageException.class, () -> Exporter.export(store, "mine:1", oci, Exporter.Format.OCI, ImportListener.QUIET));

        ImageStore other = ImageStore.open(tmp.resolve("store2"));
        ImageStore.ImportRequest req = new ImageStore.ImportRequest(oci);
        other.importImage(req, ImportListener.QUIET);
        ImageRecord back = other.images().get(0);
        for (int i = 0; i < 2; i++) {
            assertEquals(Snapshot.of(store.layerDir(Digest.parse(store.find("mine:1").layers.get(i).diffId))),
                    Snapshot.of(other.layerDir(Digest.parse(back.layers.get(i).diffId))), "layer " + i);
        }
    }

    @Test
    void dockerArchiveImportsBackAndOciTarToo() throws IOException {
        commit("mine:1");
        Path docker = tmp.resolve("d.tar");
        Exporter.export(store, "mine:1", docker, Exporter.Format.DOCKER_ARCHIVE, ImportListener.QUIET);
        Path ociTar = tmp.resolve("o.tar");
        Exporter.Result r = Exporter.export(store, "mine:1", ociTar, Exporter.Format.OCI, ImportListener.QUIET);
        assertTrue(r.tar);
        for (Path p : List.of(docker, ociTar)) {
            ImageStore other = ImageStore.open(tmp.resolve("s-" + p.getFileName()));
            ImageStore.ImportRequest req = new ImageStore.ImportRequest(p);
            req.name = "back:1";
            other.importImage(req, ImportListener.QUIET);
            ImageRecord back = other.find("back:1");
            assertEquals(2, back.layers.size());
            try (ImageFiles f = ImageFiles.open(other, "back:1")) {
                ByteArrayOutputStream o = new ByteArrayOutputStream();
                f.cat("/etc/conf", o);
                assertEquals("changed conf", o.toString());
            }
        }
        ImageStore other = ImageStore.open(tmp.resolve("s-d.tar"));
        assertEquals("back:1", other.find("back:1").names.get(0));
        assertNotEquals(0, Files.size(docker));
    }

    private static byte[] blob(Path oci, String digest) throws IOException {
        byte[] b = Files.readAllBytes(oci.resolve("blobs/sha256").resolve(digest.substring(7)));
        assertEquals(digest, Digest.of(b).toString(), "blob digest");
        return b;
    }

    @Test
    void exportLeavesNothingBehindWhenItFails() throws IOException {
        commit("mine:1");
        Path ro = Files.createDirectory(tmp.resolve("ro"));
        ImageException e = assertThrows(ImageException.class,
                () -> Exporter.export(store, "mine:1", ro.resolve("missing/dir/x"), Exporter.Format.OCI, ImportListener.QUIET));
        assertTrue(e.getMessage().contains("does not exist"), e.getMessage());
        assertArrayEquals(new String[0], ro.toFile().list());
    }
}
