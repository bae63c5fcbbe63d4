package dev.strata.image;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.strata.image.TestImages.Layer;
import dev.strata.image.TestImages.Oci;
import dev.strata.posix.Posix;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static dev.strata.image.RawTar.b;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Importing whole images into a store: formats, selection, sharing, verification, cleanup, removal. */
class ImageStoreTest {
    @TempDir Path tmp;
    Path storeDir;
    ImageStore store;

    static final class Capture implements ImportListener {
        final List<String> infos = Collections.synchronizedList(new ArrayList<>());
        final List<String> warnings = Collections.synchronizedList(new ArrayList<>());
        final CountDownLatch waiting = new CountDownLatch(1);
        @Override public void info(String line) { infos.add(line); }
        @Override public void warning(String line) { warnings.add(line); }
        @Override public void waitingForLock(Path lockFile) { waiting.countDown(); }
        boolean said(String fragment) { return infos.stream().anyMatch(s -> s.contains(fragment)); }
    }

    @BeforeEach
    void setUp() {
        storeDir = tmp.resolve("store");
        store = ImageStore.open(storeDir);
    }

    static byte[] baseTar() throws IOException {
        return new TestImages.CcTar()
                .dir("etc", 0755)
                .file("etc/os-release", "strata test", 0644)
                .dir("usr/bin", 0755)
                .file("usr/bin/app", "v1", 0755)
                .hardlink("usr/bin/app-link", "usr/bin/app")
                .dir("var/cache", 0755)
                .file("var/cache/a", "old cache", 0644)
                .bytes();
    }

    static Map<String, String> baseSnapshot() {
        Map<String, String> m = new TreeMap<>();
        m.put("etc", "dir 0755");
        m.put("etc/os-release", "file 0644 'strata test'");
        m.put("usr", "dir 0755");
        m.put("usr/bin", "dir 0755");
        m.put("usr/bin/app", "file 0755 'v1' links=2");
        m.put("usr/bin/app-link", "file 0755 'v1' links=2");
        m.put("var", "dir 0755");
        m.put("var/cache", "dir 0755");
        m.put("var/cache/a", "file 0644 'old cache'");
        return m;
    }

    static byte[] topTar(String version) {
        return new RawTar()
                .file("etc/.wh.os-release", "")
                .dir("var/cache", 0755)
                .file("var/cache/.wh..wh..opq", "")
                .file("var/cache/b", "new cache")
                .file("usr/bin/app", version)
                .bytes();
    }

    static Map<String, String> topSnapshot(String version) {
        Map<String, String> m = new TreeMap<>();
        m.put("etc", "dir 0755");
        m.put("etc/os-release", "whiteout");
        m.put("usr", "dir 0755");
        m.put("usr/bin", "dir 0755");
        m.put("usr/bin/app", "file 0644 '" + version + "'");
        m.put("var", "dir 0755");
        m.put("var/cache", "dir 0755 opaque");
        m.put("var/cache/b", "file 0644 'new cache'");
        return m;
    }

    ImageStore.ImportResult imp(Path source, String name, Capture c) {
        ImageStore.ImportRequest r = new ImageStore.ImportRequest(source);
        r.name = name;
        return store.importImage(r, c);
    }

    ImageStore.ImportResult imp(Path source) { return imp(source, null, new Capture()); }

    List<String> listDir(Path p) throws IOException {
        if (!Files.exists(p)) return List.of();
        try (Stream<Path> s = Files.list(p)) {
            return s.map(x -> x.getFileName().toString()).sorted().collect(Collectors.toList());
        }
    }

    /** Nothing but complete layers and records: no temporary leftovers, no layer without its info. */
    void assertStoreClean() throws IOException {
        assertEquals(List.of(), listDir(storeDir.resolve("tmp")), "no temporary leftovers");
        for (String f : listDir(storeDir.resolve("layers/sha256"))) {
            if (f.endsWith(".json")) assertTrue(Files.isDirectory(storeDir.resolve("layers/sha256").resolve(f.replace(".json", ""))), f);
            else assertTrue(Files.isRegularFile(storeDir.resolve("layers/sha256").resolve(f + ".json")), f);
        }
    }

    void assertStoreEmpty() throws IOException {
        assertStoreClean();
        assertEquals(List.of(), listDir(storeDir.resolve("layers/sha256")), "no layers left behind");
        assertEquals(List.of(), listDir(storeDir.resolve("images")), "no image records left behind");
    }

    // ------------------------------------------------------------------ formats

    @Test
    void importsAnOciLayoutWithGzipAndZstdLayers() throws IOException {
        Layer base = new Layer(baseTar(), "gzip"), top = new Layer(topTar("v2"), "zstd");
        Path layout = TestImages.ociLayout(tmp.resolve("myapp"), "1.0", base, top);
        Capture c = new Capture();
        ImageStore.ImportResult r = imp(layout, null, c);

        assertEquals(2, r.extracted);
        assertEquals(0, r.reused);
        ImageRecord rec = r.image;
        assertEquals(List.of("myapp:1.0"), rec.names);
        assertEquals("OCI layout", rec.format);
        assertEquals("linux/amd64", rec.platform);
        assertEquals(base.diffId, rec.layers.get(0).diffId, "layers are recorded bottom first");
        assertEquals(top.diffId, rec.layers.get(1).diffId);
        assertEquals(base.digest, rec.layers.get(0).digest);
        assertEquals(top.mediaType, rec.layers.get(1).mediaType);
        assertEquals(base.tar.length, rec.layers.get(0).tarSize);
        assertEquals("/bin/sh", rec.config.get("config").get("Entrypoint").get(0).asText());
        assertEquals(TestImages.M.readTree(layout.resolve("index.json").toFile()).get("manifests").get(0).get("digest").asText(),
                rec.manifestDigest);

        Path baseDir = store.layerDir(Digest.parse(base.diffId)), topDir = store.layerDir(Digest.parse(top.diffId));
        assertEquals(List.of(topDir, baseDir), store.lowerDirsTopFirst("myapp:1.0"));
        assertEquals(baseSnapshot(), Snapshot.of(baseDir));
        assertEquals(topSnapshot("v2"), Snapshot.of(topDir));
        assertTrue(c.said("Importing OCI layout " + layout + " (linux/amd64), 2 layers"), c.infos.toString());
        assertTrue(c.said("layer 1/2 " + base.diffId.substring(7, 19) + ": extracted (22 B, 3 files)"), c.infos.toString());
        assertStoreClean();
        assertEquals(rec.id, store.find(rec.id.substring(7, 15)).id, "found by id prefix");
        assertEquals(rec.id, store.find("myapp:1.0").id);
    }

    @Test
    void importsOciArchivesPlainAndCompressed() throws IOException {
        Layer base = new Layer(baseTar(), "gzip");
        Path layout = TestImages.ociLayout(tmp.resolve("layout"), "stable", base);
        Path archive = TestImages.tarDir(layout, tmp.resolve("tool.oci.tar"));
        ImageStore.ImportResult r = imp(archive, "tool:v1", new Capture());
        assertEquals("OCI archive", r.image.format);
        assertEquals(List.of("tool:v1"), r.image.names);
        assertEquals(baseSnapshot(), Snapshot.of(store.lowerDirsTopFirst("tool:v1").get(0)));

        Path gz = tmp.resolve("tool2.tar.gz");
        Files.write(gz, TestImages.gzip(Files.readAllBytes(archive)));
        Capture c = new Capture();
        r = imp(gz, null, c);
        assertEquals("OCI archive", r.image.format);
        assertEquals(List.of("tool:v1", "tool2:stable"), r.image.names, "same image: the name is added");
        assertTrue(r.alreadyPresent);
        assertTrue(c.said("Decompressing " + gz + " (gzip)"), c.infos.toString());
        assertTrue(c.said("already in the store, not extracted again"));
        assertStoreClean();
    }

    @Test
    void importsDockerArchivesWithADuplicateLayerLinkedInside() throws IOException {
        Layer base = new Layer(baseTar(), "none"), top = new Layer(topTar("v3"), "none");
        Path archive = TestImages.dockerArchive(tmp.resolve("d"), tmp.resolve("saved.tar"), List.of("example/app:2", "example/app:latest"),
                null, base, top, base);
        Capture c = new Capture();
        ImageStore.ImportResult r = imp(archive, null, c);
        assertEquals("docker archive", r.image.format);
        assertEquals(List.of("example/app:2", "example/app:latest"), r.image.names);
        assertEquals(2, r.extracted);
        assertEquals(1, r.reused);
        assertTrue(c.said("layer 3/3 " + base.diffId.substring(7, 19) + ": already in the store"), c.infos.toString());
        Path baseDir = store.layerDir(Digest.parse(base.diffId)), topDir = store.layerDir(Digest.parse(top.diffId));
        assertEquals(List.of(baseDir, topDir), store.lowerDirsTopFirst("example/app:2"),
                "a layer listed twice appears once, at its topmost place");
        assertEquals(topSnapshot("v3"), Snapshot.of(topDir));
        assertNull(r.image.manifestDigest);

        // the same archive unpacked into a directory
        ImageStore other = ImageStore.open(tmp.resolve("store2"));
        ImageStore.ImportRequest req = new ImageStore.ImportRequest(tmp.resolve("d"));
        ImageStore.ImportResult r2 = other.importImage(req, new Capture());
        assertEquals(r.image.id, r2.image.id);
        assertEquals(baseSnapshot(), Snapshot.of(other.lowerDirsTopFirst("example/app:latest").get(0)));
    }

    @Test
    void importsSingleLayerTarsPlainGzipAndZstd() throws IOException {
        byte[] tar = baseTar();
        Path plain = Files.write(tmp.resolve("rootfs.tar"), tar);
        Path gz = Files.write(tmp.resolve("rootfs.tar.gz"), TestImages.gzip(tar));
        Path zst = Files.write(tmp.resolve("rootfs.tar.zst"), TestImages.zstd(tar));
        ImageStore.ImportResult r1 = imp(plain);
        assertEquals("layer tar", r1.image.format);
        assertEquals(List.of("rootfs:latest"), r1.image.names);
        assertEquals(TestImages.sha(tar), r1.image.layers.get(0).diffId);
        assertEquals(baseSnapshot(), Snapshot.of(store.lowerDirsTopFirst("rootfs").get(0)));
        for (Path p : List.of(gz, zst)) {
            Capture c = new Capture();
            ImageStore.ImportResult r = imp(p, null, c);
            assertEquals(r1.image.id, r.image.id, p.toString());
            assertEquals(0, r.extracted);
            assertEquals(1, r.reused);
            assertTrue(c.said("already in the store, not extracted again"), c.infos.toString());
            assertEquals(TestImages.sha(Files.readAllBytes(p)), r.image.layers.get(0).digest);
        }
        assertEquals(1, store.layerHexes().size());
        assertStoreClean();
    }

    @Test
    void aRootFilesystemWithItsOwnIndexJsonIsStillALayer() throws IOException {
        byte[] tar = new RawTar().file("index.json", "{\"app\": true}").file("manifest.json", "{\"name\": \"web\"}")
                .file("bin/app", "x").bytes();
        ImageStore.ImportResult r = imp(Files.write(tmp.resolve("site.tar"), tar));
        assertEquals("layer tar", r.image.format);
        assertEquals("file 0644 '{\"app\": true}'", Snapshot.of(store.lowerDirsTopFirst("site").get(0)).get("index.json"));
    }

    // ------------------------------------------------------------------ selection

    @Test
    void picksTheRequestedPlatformFromAMultiPlatformIndex() throws IOException {
        Oci o = new Oci(tmp.resolve("multi"));
        Layer amd = new Layer(new RawTar().file("arch", "amd64").bytes(), "gzip");
        Layer arm = new Layer(new RawTar().file("arch", "arm64").bytes(), "gzip");
        ObjectNode list = o.indexBlob(o.image("arm64", null, arm), o.image("amd64", null, amd));
        o.index("3.19", list);

        ImageStore.ImportResult r = imp(o.dir);
        assertEquals("linux/amd64", r.image.platform);
        assertEquals("file 0644 'amd64'", Snapshot.of(store.lowerDirsTopFirst("multi:3.19").get(0)).get("arch"));

        ImageStore.ImportRequest req = new ImageStore.ImportRequest(o.dir);
        req.platform = Platform.parse("linux/arm64");
        req.name = "multi:arm";
        r = store.importImage(req, new Capture());
        assertEquals("linux/arm64", r.image.platform);
        assertEquals("file 0644 'arm64'", Snapshot.of(store.lowerDirsTopFirst("multi:arm").get(0)).get("arch"));

        req.platform = Platform.parse("linux/s390x");
        ImageException e = assertThrows(ImageException.class, () -> store.importImage(req, new Capture()));
        assertEquals(o.dir + ": no image for linux/s390x (it has: linux/arm64, linux/amd64); choose one with --platform", e.getMessage());
    }

    @Test
    void aLayoutWithSeveralImagesNeedsRef() throws IOException {
        Oci o = new Oci(tmp.resolve("many"));
        ObjectNode a = o.image("amd64", null, new Layer(new RawTar().file("which", "a").bytes(), "none"));
        ObjectNode bb = o.image("amd64", null, new Layer(new RawTar().file("which", "b").bytes(), "none"));
        ObjectNode idx = TestImages.M.createObjectNode();
        idx.put("schemaVersion", 2);
        ArrayNode ms = idx.putArray("manifests");
        ObjectNode ca = a.deepCopy(), cb = bb.deepCopy();
        ca.putObject("annotations").put(OciReader.REF_NAME, "a");
        cb.putObject("annotations").put(OciReader.REF_NAME, "b");
        ms.add(ca);
        ms.add(cb);
        Files.write(o.dir.resolve("index.json"), TestImages.M.writeValueAsBytes(idx));

        ImageException e = assertThrows(ImageException.class, () -> imp(o.dir));
        assertEquals(o.dir + " holds several images (a, b): choose one with --ref", e.getMessage());
        ImageStore.ImportRequest req = new ImageStore.ImportRequest(o.dir);
        req.ref = "b";
        ImageStore.ImportResult r = store.importImage(req, new Capture());
        assertEquals(List.of("many:b"), r.image.names);
        assertEquals("file 0644 'b'", Snapshot.of(store.lowerDirsTopFirst("many:b").get(0)).get("which"));
        req.ref = "c";
        e = assertThrows(ImageException.class, () -> store.importImage(req, new Capture()));
        assertEquals(o.dir + ": no image 'c' in it (it has: a, b)", e.getMessage());
        assertStoreClean();
    }

    // ------------------------------------------------------------------ sharing, names, removal

    @Test
    void aLayerAMountHoldsIsNeverDeletedAndIsCollectedOnceFree() throws IOException {
        Layer base = new Layer(baseTar(), "gzip");
        Layer top1 = new Layer(topTar("one"), "gzip"), top2 = new Layer(topTar("two"), "zstd");
        imp(TestImages.ociLayout(tmp.resolve("one"), "1", base, top1));
        List<Path> dirs = store.lowerDirsTopFirst("one:1");
        assertTrue(dirs.stream().allMatch(LayerLocks::isStoreLayer));
        assertFalse(LayerLocks.isStoreLayer(tmp.resolve("one")));
        Path file = store.layerDir(Digest.parse(top1.diffId));
        try (LayerLocks held = LayerLocks.holdShared(dirs)) { // what a mount daemon holds (another open file: flock conflicts)
            assertTrue(LayerLocks.inUse(file));
            ImageStore.RemoveResult rm = store.remove("one:1");
            assertEquals(List.of(), rm.removedLayers, "no layer a live mount holds is deleted");
            assertEquals(2, rm.keptLayers.size());
            assertTrue(Files.isDirectory(file));
        }
        assertFalse(LayerLocks.inUse(file), "the lock goes with its holder");
        imp(TestImages.ociLayout(tmp.resolve("two"), "1", base, top2));
        ImageStore.RemoveResult rm = store.remove("two:1");
        assertEquals(3, rm.removedLayers.size(), "the layers kept before are collected once free: " + rm.removedLayers);
        assertStoreEmpty();
    }

    @Test
    void anImageWithoutLayersIsRefusedAtImport() throws IOException {
        Path empty = TestImages.ociLayout(tmp.resolve("empty"), "1");
        ImageException e = assertThrows(ImageException.class, () -> imp(empty, "empty:1", new Capture()));
        assertEquals(empty + ": the image has no layers; nothing imported", e.getMessage());
        assertStoreEmpty();
    }

    @Test
    void theStoreIsPrivateWhateverTheUmaskAndLooseModesAreTightened() throws IOException {
        int old = Posix.umask(0);
        try {
            imp(TestImages.ociLayout(tmp.resolve("one"), "1", new Layer(baseTar(), "gzip")));
        } finally {
            Posix.umask(old);
        }
        for (String d : List.of("", "layers", "layers/sha256", "images", "tmp")) {
            assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(storeDir.resolve(d))), d);
        }
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(storeDir.resolve("lock"))));
        Files.setPosixFilePermissions(storeDir, PosixFilePermissions.fromString("rwxr-xr-x"));
        ImageStore.open(storeDir).list();
        assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(storeDir)), "tightened when opened");
    }

    @Test
    void aSecondImageSharingTheBaseLayerDoesNotExtractItAgain() throws IOException {
        Layer base = new Layer(baseTar(), "gzip");
        Layer top1 = new Layer(topTar("one"), "gzip"), top2 = new Layer(topTar("two"), "zstd");
        Path one = TestImages.ociLayout(tmp.resolve("one"), "1", base, top1);
        Path two = TestImages.ociLayout(tmp.resolve("two"), "1", base, top2);
        imp(one);
        Path baseFile = store.layerDir(Digest.parse(base.diffId)).resolve("etc/os-release");
        Object inode = Files.getAttribute(baseFile, "unix:ino"), ctime = Files.getAttribute(baseFile, "unix:ctime");

        Capture c = new Capture();
        ImageStore.ImportResult r = imp(two, null, c);
        assertEquals(1, r.reused);
        assertEquals(1, r.extracted);
        assertTrue(c.said("layer 1/2 " + base.diffId.substring(7, 19) + ": already in the store, not extracted again"), c.infos.toString());
        assertEquals(inode, Files.getAttribute(baseFile, "unix:ino"));
        assertEquals(ctime, Files.getAttribute(baseFile, "unix:ctime"));
        assertEquals(3, store.layerHexes().size());

        long baseSize = 22, topSize = 9 + 3; // content bytes: see the tars above
        List<ImageStore.Summary> ls = store.list();
        assertEquals(List.of("one:1", "two:1"), ls.stream().map(s -> s.name).collect(Collectors.toList()));
        assertEquals(baseSize + topSize, ls.get(0).size);
        assertEquals(baseSize, ls.get(0).sharedSize);
        assertEquals(2, ls.get(1).layers);

        ImageStore.RemoveResult rm = store.remove("one:1");
        assertEquals(List.of(top1.diffId), rm.removedLayers, "only the layer no other image uses goes");
        assertEquals(topSize, rm.freedBytes);
        assertEquals(2, store.layerHexes().size());
        assertEquals(0, store.list().get(0).sharedSize);
        rm = store.remove("two:1");
        assertEquals(2, rm.removedLayers.size());
        assertStoreEmpty();
        ImageException e = assertThrows(ImageException.class, () -> store.remove("two:1"));
        assertEquals("no image 'two:1' in the store " + storeDir + " (see 'strata image ls')", e.getMessage());
    }

    @Test
    void namesMoveAndRemovingOneNameKeepsTheImage() throws IOException {
        Path a = TestImages.ociLayout(tmp.resolve("a"), null, new Layer(new RawTar().file("v", "a").bytes(), "none"));
        Path bb = TestImages.ociLayout(tmp.resolve("b"), null, new Layer(new RawTar().file("v", "b").bytes(), "none"));
        ImageRecord ra = imp(a, "app:prod", new Capture()).image;
        imp(a, "app:a", new Capture());
        Capture c = new Capture();
        ImageRecord rb = imp(bb, "app:prod", c).image;
        assertTrue(c.said("The name app:prod moved from image " + ra.id.substring(7, 19)), c.infos.toString());
        assertEquals(rb.id, store.find("app:prod").id);
        assertEquals(List.of("app:a"), store.find("app:a").names);

        ImageStore.RemoveResult rm = store.remove("app:a");
        assertNull(rm.untagged);
        assertEquals(ra.id, rm.removed.id, "its last name: the image goes");
        imp(bb, "app:other", new Capture());
        rm = store.remove("app:other");
        assertEquals("app:other", rm.untagged);
        assertEquals(List.of(), rm.removedLayers);
        rm = store.remove(rb.id.substring(7, 20));
        assertEquals(rb.id, rm.removed.id, "by id, with all its names");
        assertStoreEmpty();
    }

    @Test
    void unnamedLayoutsAreNamedAfterTheSource() throws IOException {
        Path a = TestImages.ociLayout(tmp.resolve("Some Dir"), null, new Layer(new RawTar().file("v", "a").bytes(), "none"));
        assertEquals(List.of("some-dir:latest"), imp(a).image.names);
    }

    // ------------------------------------------------------------------ verification

    @Test
    void aCorruptBlobIsRefusedAndLeavesNothingBehind() throws IOException {
        Layer base = new Layer(baseTar(), "gzip"), top = new Layer(topTar("v2"), "none");
        Oci o = new Oci(tmp.resolve("bad"));
        o.index("1", o.image("amd64", null, base, top));
        byte[] blob = Files.readAllBytes(o.blobPath(top.digest));
        int i = indexOf(blob, b("new cache"));
        blob[i] = 'N'; // same size, still a valid tar: only the digest can tell
        Files.write(o.blobPath(top.digest), blob);
        ImageException e = assertThrows(ImageException.class, () -> imp(o.dir));
        assertEquals("layer 2/2 (" + top.diffId.substring(7, 19) + "): blob " + top.digest + " is corrupt: its content hashes to "
                + TestImages.sha(blob), e.getMessage());
        assertStoreEmpty();

        // corrupt gzip data: the digest is still what the user hears about
        byte[] gz = Files.readAllBytes(o.blobPath(base.digest));
        gz[gz.length / 2] ^= 0x55;
        Files.write(o.blobPath(base.digest), gz);
        e = assertThrows(ImageException.class, () -> imp(o.dir));
        assertTrue(e.getMessage().startsWith("layer 1/2 (" + base.diffId.substring(7, 19) + "): blob " + base.digest + " is corrupt"),
                e.getMessage());
        assertStoreEmpty();
    }

    static int indexOf(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) if (hay[i + j] != needle[j]) continue outer;
            return i;
        }
        throw new AssertionError("not found");
    }

    @Test
    void aDiffIdMismatchIsRefusedAndLayersOfTheFailedImportAreRemoved() throws IOException {
        Layer base = new Layer(baseTar(), "gzip"), top = new Layer(topTar("v2"), "zstd");
        Oci o = new Oci(tmp.resolve("lie"));
        String wrong = TestImages.sha(b("something else"));
        o.index("1", o.image("amd64", cfg -> ((ArrayNode) cfg.get("rootfs").get("diff_ids")).set(1, wrong), base, top));
        ImageException e = assertThrows(ImageException.class, () -> imp(o.dir));
        assertEquals("layer 2/2 (" + wrong.substring(7, 19) + "): uncompressed content hashes to " + top.diffId
                + " but the image config expects diff_id " + wrong + " (corrupt or mismatched layer)", e.getMessage());
        assertStoreEmpty();
    }

    @Test
    void corruptMetadataBlobsAreRefused() throws IOException {
        Oci o = new Oci(tmp.resolve("meta"));
        ObjectNode d = o.image("amd64", null, new Layer(baseTar(), "gzip"));
        o.index("1", d);
        Path m = o.blobPath(d.get("digest").asText());
        Files.writeString(m, Files.readString(m).replace("\"schemaVersion\":2", "\"schemaVersion\":3"));
        ImageException e = assertThrows(ImageException.class, () -> imp(o.dir));
        assertTrue(e.getMessage().startsWith(o.dir + ": manifest blob " + d.get("digest").asText() + " is corrupt (its content hashes to sha256:"),
                e.getMessage());
        assertStoreEmpty();
    }

    @Test
    void aTruncatedLayerIsRefused() throws IOException {
        Layer base = new Layer(baseTar(), "gzip");
        Path dir = TestImages.dockerArchive(tmp.resolve("trunc"), null, List.of("t:1"), null, base);
        Path layerTar;
        try (Stream<Path> s = Files.walk(dir)) {
            layerTar = s.filter(p -> p.getFileName().toString().equals("layer.tar")).findFirst().orElseThrow();
        }
        byte[] gz = Files.readAllBytes(layerTar);
        Files.write(layerTar, Arrays.copyOf(gz, gz.length - 40));
        ImageException e = assertThrows(ImageException.class, () -> imp(dir));
        assertTrue(e.getMessage().startsWith("layer 1/1 (" + base.diffId.substring(7, 19) + "): corrupt or truncated gzip data"),
                e.getMessage());
        assertStoreEmpty();
    }

    @Test
    void theLayerSizeCapRefusesBigLayers() throws IOException {
        Path f = Files.write(tmp.resolve("big.tar"), new RawTar().file("big", new byte[100_000], 0644).bytes());
        ImageStore.ImportRequest req = new ImageStore.ImportRequest(f);
        req.maxLayerBytes = 50_000;
        ImageException e = assertThrows(ImageException.class, () -> store.importImage(req, new Capture()));
        assertEquals("layer 1/1: layer is larger than the limit of 48.8 KiB (at 'big', which claims 97.7 KiB; see --max-layer-size)",
                e.getMessage());
        assertStoreEmpty();
    }

    @Test
    void badSourcesSayWhatIsWrong() throws IOException {
        Path missing = tmp.resolve("nope");
        assertEquals(missing + ": no such file or directory", assertThrows(ImageException.class, () -> imp(missing)).getMessage());
        Path junk = Files.write(tmp.resolve("junk.bin"), new byte[2000]);
        junk.toFile().setWritable(true);
        Files.write(junk, b("this is not an image at all, just some text that goes on for a while ".repeat(20)));
        assertEquals(junk + ": not a tar archive, OCI layout or docker archive",
                assertThrows(ImageException.class, () -> imp(junk)).getMessage());
        Path empty = Files.createDirectory(tmp.resolve("emptydir"));
        assertEquals(empty + ": not an OCI image layout (no index.json) nor a docker archive (no manifest.json)",
                assertThrows(ImageException.class, () -> imp(empty)).getMessage());
        Path xz = Files.write(tmp.resolve("l.tar.xz"), new byte[]{(byte) 0xfd, '7', 'z', 'X', 'Z', 0, 1, 2});
        assertEquals(xz + " is xz-compressed, which is not supported (gzip, zstd or plain tar)",
                assertThrows(ImageException.class, () -> imp(xz)).getMessage());
        assertEquals("invalid image name 'Bad Name': use NAME[:TAG] with lowercase letters, digits and . _ - / in NAME (e.g. alpine:3.19)",
                assertThrows(ImageException.class, () -> imp(empty, "Bad Name", new Capture())).getMessage());
        assertStoreClean();
    }

    // ------------------------------------------------------------------ robustness

    @Test
    void staleTemporaryDirectoriesAreRemovedByTheNextImport() throws IOException {
        Path stale = Files.createDirectories(storeDir.resolve("tmp/layer-123/ro/sub"));
        Files.writeString(stale.resolve("f"), "half a layer");
        Posix.fchmodat(Posix.AT_FDCWD, stale.getParent().toString(), 0555);
        Files.writeString(storeDir.resolve("tmp/source-9.tar"), "half a spool");
        Capture c = new Capture();
        imp(Files.write(tmp.resolve("l.tar"), new RawTar().file("x", "y").bytes()), null, c);
        assertTrue(c.said("Removed 2 stale temporary item(s) left by an interrupted import"), c.infos.toString());
        assertStoreClean();
    }

    @Test
    void importsWaitForTheStoreLock() throws Exception {
        Path src = Files.write(tmp.resolve("l.tar"), new RawTar().file("x", "y").bytes());
        Files.createDirectories(storeDir);
        Capture c = new Capture();
        AtomicReference<Object> result = new AtomicReference<>();
        Thread t;
        try (StoreLock held = StoreLock.exclusive(storeDir.resolve("lock"), ImportListener.QUIET)) {
            t = new Thread(() -> {
                try {
                    result.set(imp(src, null, c));
                } catch (Throwable e) {
                    result.set(e);
                }
            });
            t.start();
            assertTrue(c.waiting.await(10, TimeUnit.SECONDS), "the import noticed the lock");
            Thread.sleep(200);
            assertNull(result.get(), "and waits while it is held");
            assertEquals(List.of(), store.images());
        }
        t.join(10_000);
        assertTrue(result.get() instanceof ImageStore.ImportResult, String.valueOf(result.get()));
        assertEquals(1, store.images().size());
    }

    @Test
    void unknownImagesAndMissingLayersAreClearErrors() throws IOException {
        assertEquals("no image 'nope' in the store " + storeDir + " (see 'strata image ls')",
                assertThrows(ImageException.class, () -> store.lowerDirsTopFirst("nope")).getMessage());
        Layer l = new Layer(baseTar(), "none");
        imp(TestImages.ociLayout(tmp.resolve("x"), "1", l));
        assertEquals(1, store.lowerDirsTopFirst("x:1").size());
        Trees.remove(store.layerDir(Digest.parse(l.diffId)));
        assertEquals("image x:1 is damaged: layer " + l.diffId + " is missing from " + storeDir.resolve("layers/sha256")
                + "; import the image again", assertThrows(ImageException.class, () -> store.lowerDirsTopFirst("x:1")).getMessage());
        assertFalse(store.list().isEmpty());
    }
}
