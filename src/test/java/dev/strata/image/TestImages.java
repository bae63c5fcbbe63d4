package dev.strata.image;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.github.luben.zstd.ZstdOutputStream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.archivers.tar.TarConstants;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import java.util.zip.GZIPOutputStream;

/** Builds test images in the tests: layer tars, gzip/zstd blobs, OCI layouts and archives, docker archives. */
final class TestImages {
    private TestImages() {}

    static final ObjectMapper M = new ObjectMapper();
    static final String LAYER_TAR = "application/vnd.oci.image.layer.v1.tar";

    static String sha(byte[] b) { return Digest.of(b).toString(); }

    static byte[] gzip(byte[] b) throws IOException {
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        try (GZIPOutputStream g = new GZIPOutputStream(o)) { g.write(b); }
        return o.toByteArray();
    }

    static byte[] zstd(byte[] b) throws IOException {
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        try (ZstdOutputStream z = new ZstdOutputStream(o)) { z.write(b); }
        return o.toByteArray();
    }

    /** A layer tar written with commons-compress (PAX for long names and big numbers, Latin-1 names). */
    static final class CcTar {
        private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        private final TarArchiveOutputStream t;
        private long mtime = 1_650_000_000L;

        CcTar() {
            t = new TarArchiveOutputStream(bytes, StandardCharsets.ISO_8859_1.name());
            t.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
            t.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
        }

        private TarArchiveEntry e(String name, byte type, int mode) {
            TarArchiveEntry e = new TarArchiveEntry(name, type);
            e.setMode(mode);
            e.setModTime(FileTime.fromMillis(mtime * 1000));
            return e;
        }

        CcTar dir(String name, int mode) throws IOException {
            TarArchiveEntry e = new TarArchiveEntry(name.endsWith("/") ? name : name + "/");
            e.setMode(mode);
            e.setModTime(FileTime.fromMillis(mtime * 1000));
            t.putArchiveEntry(e);
            t.closeArchiveEntry();
            return this;
        }

        CcTar file(String name, String content, int mode) throws IOException {
            return file(name, content.getBytes(StandardCharsets.ISO_8859_1), mode, null);
        }

        CcTar file(String name, byte[] content, int mode, Consumer<TarArchiveEntry> tweak) throws IOException {
            TarArchiveEntry e = e(name, TarConstants.LF_NORMAL, mode);
            e.setSize(content.length);
            if (tweak != null) tweak.accept(e);
            t.putArchiveEntry(e);
            t.write(content);
            t.closeArchiveEntry();
            return this;
        }

        CcTar symlink(String name, String target) throws IOException {
            TarArchiveEntry e = e(name, TarConstants.LF_SYMLINK, 0777);
            e.setLinkName(target);
            t.putArchiveEntry(e);
            t.closeArchiveEntry();
            return this;
        }

        CcTar hardlink(String name, String target) throws IOException {
            TarArchiveEntry e = e(name, TarConstants.LF_LINK, 0644);
            e.setLinkName(target);
            t.putArchiveEntry(e);
            t.closeArchiveEntry();
            return this;
        }

        byte[] bytes() throws IOException {
            t.finish();
            t.close();
            return bytes.toByteArray();
        }
    }

    /** A layer ready for an image: the tar, its blob (maybe compressed) and their digests. */
    static final class Layer {
        final byte[] tar, blob;
        final String mediaType, diffId, digest;

        Layer(byte[] tar, String compression) throws IOException {
            this.tar = tar;
            switch (compression) {
                case "gzip": blob = gzip(tar); mediaType = LAYER_TAR + "+gzip"; break;
                case "zstd": blob = zstd(tar); mediaType = LAYER_TAR + "+zstd"; break;
                default: blob = tar; mediaType = LAYER_TAR;
            }
            diffId = sha(tar);
            digest = sha(blob);
        }
    }

    /** An OCI image layout being written. */
    static final class Oci {
        final Path dir;

        Oci(Path dir) throws IOException {
            this.dir = dir;
            Files.createDirectories(dir.resolve("blobs/sha256"));
            Files.writeString(dir.resolve("oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
        }

        String blob(byte[] data) throws IOException {
            String d = sha(data);
            Files.write(dir.resolve("blobs/sha256").resolve(d.substring(7)), data);
            return d;
        }

        static ObjectNode desc(String mediaType, String digest, long size) {
            ObjectNode n = M.createObjectNode();
            n.put("mediaType", mediaType);
            n.put("digest", digest);
            n.put("size", size);
            return n;
        }

        /** Writes config, layers and manifest; returns the manifest's descriptor (with a platform). */
        ObjectNode image(String arch, Consumer<ObjectNode> configTweak, Layer... layers) throws IOException {
            ObjectNode cfg = M.createObjectNode();
            cfg.put("architecture", arch);
            cfg.put("os", "linux");
            cfg.put("created", "2024-01-02T03:04:05Z");
            ObjectNode cc = cfg.putObject("config");
            cc.putArray("Entrypoint").add("/bin/sh");
            cc.putArray("Cmd").add("-c").add("echo hi");
            cc.putArray("Env").add("PATH=/usr/bin:/bin").add("ARCH=" + arch);
            cc.put("WorkingDir", "/srv");
            ObjectNode rootfs = cfg.putObject("rootfs");
            rootfs.put("type", "layers");
            ArrayNode ids = rootfs.putArray("diff_ids");
            for (Layer l : layers) ids.add(l.diffId);
            if (configTweak != null) configTweak.accept(cfg);
            byte[] cb = M.writeValueAsBytes(cfg);
            String cd = blob(cb);
            ObjectNode man = M.createObjectNode();
            man.put("schemaVersion", 2);
            man.put("mediaType", OciReader.OCI_MANIFEST);
            man.set("config", desc(OciReader.OCI_CONFIG, cd, cb.length));
            ArrayNode ls = man.putArray("layers");
            for (Layer l : layers) {
                blob(l.blob);
                ls.add(desc(l.mediaType, l.digest, l.blob.length));
            }
            byte[] mb = M.writeValueAsBytes(man);
            ObjectNode d = desc(OciReader.OCI_MANIFEST, blob(mb), mb.length);
            ObjectNode p = d.putObject("platform");
            p.put("os", "linux");
            p.put("architecture", arch);
            return d;
        }

        /** Writes an index blob (manifest list) over the given descriptors; returns its descriptor. */
        ObjectNode indexBlob(ObjectNode... manifests) throws IOException {
            ObjectNode idx = M.createObjectNode();
            idx.put("schemaVersion", 2);
            idx.put("mediaType", OciReader.OCI_INDEX);
            ArrayNode a = idx.putArray("manifests");
            for (ObjectNode m : manifests) a.add(m);
            byte[] b = M.writeValueAsBytes(idx);
            return desc(OciReader.OCI_INDEX, blob(b), b.length);
        }

        /** Writes index.json listing the descriptors (a ref name annotation on each when given). */
        Oci index(String refName, ObjectNode... manifests) throws IOException {
            ObjectNode idx = M.createObjectNode();
            idx.put("schemaVersion", 2);
            idx.put("mediaType", OciReader.OCI_INDEX);
            ArrayNode a = idx.putArray("manifests");
            for (ObjectNode m : manifests) {
                ObjectNode c = m.deepCopy();
                if (refName != null) c.putObject("annotations").put(OciReader.REF_NAME, refName);
                a.add(c);
            }
            Files.write(dir.resolve("index.json"), M.writeValueAsBytes(idx));
            return this;
        }

        Path blobPath(String digest) { return dir.resolve("blobs/sha256").resolve(digest.substring(7)); }
    }

    /** A single-image OCI layout with a ref name. */
    static Path ociLayout(Path dir, String refName, Layer... layers) throws IOException {
        Oci o = new Oci(dir);
        o.index(refName, o.image("amd64", null, layers));
        return dir;
    }

    /** Tars a directory's contents (names relative, directories first), as skopeo's oci-archive does. */
    static Path tarDir(Path dir, Path tarFile) throws IOException {
        try (OutputStream os = Files.newOutputStream(tarFile);
             TarArchiveOutputStream t = new TarArchiveOutputStream(os)) {
            t.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
            List<Path> all;
            try (Stream<Path> s = Files.walk(dir)) {
                all = s.filter(p -> !p.equals(dir)).sorted().collect(Collectors.toList());
            }
            for (Path p : all) {
                String name = dir.relativize(p).toString();
                if (Files.isSymbolicLink(p)) {
                    TarArchiveEntry e = new TarArchiveEntry(name, TarConstants.LF_SYMLINK);
                    e.setLinkName(Files.readSymbolicLink(p).toString());
                    t.putArchiveEntry(e);
                    t.closeArchiveEntry();
                } else if (Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
                    t.putArchiveEntry(new TarArchiveEntry(name + "/"));
                    t.closeArchiveEntry();
                } else {
                    TarArchiveEntry e = new TarArchiveEntry(name);
                    e.setSize(Files.size(p));
                    t.putArchiveEntry(e);
                    Files.copy(p, t);
                    t.closeArchiveEntry();
                }
            }
        }
        return tarFile;
    }

    /**
     * A docker archive as `docker save` wrote it before version 25: {@code <id>/layer.tar}, {@code <config>.json},
     * manifest.json, repositories. With {@code duplicateAsSymlink}, a repeated layer is a symlink to the first copy.
     */
    static Path dockerArchive(Path work, Path out, List<String> tags, Consumer<ObjectNode> configTweak, Layer... layers)
            throws IOException {
        Path d = Files.createDirectories(work);
        ObjectNode cfg = M.createObjectNode();
        cfg.put("architecture", "amd64");
        cfg.put("os", "linux");
        cfg.putObject("config").putArray("Cmd").add("/bin/true");
        ObjectNode rootfs = cfg.putObject("rootfs");
        rootfs.put("type", "layers");
        ArrayNode ids = rootfs.putArray("diff_ids");
        for (Layer l : layers) ids.add(l.diffId);
        if (configTweak != null) configTweak.accept(cfg);
        byte[] cb = M.writeValueAsBytes(cfg);
        String cfgName = sha(cb).substring(7) + ".json";
        Files.write(d.resolve(cfgName), cb);
        ArrayNode man = M.createArrayNode();
        ObjectNode e = man.addObject();
        e.put("Config", cfgName);
        ArrayNode rt = e.putArray("RepoTags");
        for (String t : tags) rt.add(t);
        ArrayNode ls = e.putArray("Layers");
        List<String> seen = new ArrayList<>();
        for (int i = 0; i < layers.length; i++) {
            String id = sha((layers[i].diffId + i).getBytes(StandardCharsets.US_ASCII)).substring(7);
            Files.createDirectories(d.resolve(id));
            int first = seen.indexOf(layers[i].digest);
            if (first >= 0) {
                String firstId = sha((layers[first].diffId + first).getBytes(StandardCharsets.US_ASCII)).substring(7);
                Files.createSymbolicLink(d.resolve(id).resolve("layer.tar"), Path.of("../" + firstId + "/layer.tar"));
            } else {
                Files.write(d.resolve(id).resolve("layer.tar"), layers[i].blob);
            }
            seen.add(layers[i].digest);
            Files.writeString(d.resolve(id).resolve("VERSION"), "1.0");
            ls.add(id + "/layer.tar");
        }
        Files.write(d.resolve("manifest.json"), M.writeValueAsBytes(man));
        Files.writeString(d.resolve("repositories"), "{}");
        return out == null ? d : tarDir(d, out);
    }
}
