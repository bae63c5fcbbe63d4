package dev.strata.image;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.GZIPInputStream;
import java.util.zip.GZIPOutputStream;

/**
 * {@code strata image export}: an image of the store as an OCI image layout (a directory, or a tar of
 * one) or as a docker archive ({@code docker save} format: manifest.json, the config, one uncompressed
 * layer.tar per layer).
 * <p>
 * The store keeps layers extracted, not their original blobs (except the layers {@code image commit}
 * wrote, whose gzip blob is kept and exported as it is). Other layers are written again from their
 * directory by {@link LayerWriter}: same content, but a tar that is not byte for byte the source's,
 * so their diff_id, and with it the config and the image id, differ from the imported image's. The
 * exported config is the image's with {@code rootfs.diff_ids} set to what is exported.
 * Everything is written into a staging directory beside DEST and renamed to DEST at the end.
 */
public final class Exporter {
    public enum Format { OCI, DOCKER_ARCHIVE }

    static final String OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
    static final String OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
    static final String OCI_INDEX = "application/vnd.oci.image.index.v1+json";

    private Exporter() {}

    public static final class Result {
        public String imageId;
        public String manifestDigest;
        public int layers, rewritten;
        public long bytes;
        public boolean tar;
        public String tag;
    }

    /** One exported layer. */
    private static final class Out {
        Digest diffId, blobDigest;
        long blobSize, tarSize;
        Path gz;     // the gzip blob (OCI)
        Path plain;  // the uncompressed tar (docker archive)
    }

    public static Result export(ImageStore store, String ref, Path dest, Format format, ImportListener l) {
        ImageRecord rec = store.find(ref);
        store.lowerDirsTopFirst(rec); // every layer is there
        Path destAbs = dest.toAbsolutePath().normalize();
        if (Files.exists(destAbs, LinkOption.NOFOLLOW_LINKS)) {
            throw new ImageException(dest + " exists: remove it or give another destination");
        }
        Path parent = destAbs.getParent();
        if (parent == null || !Files.isDirectory(parent)) throw new ImageException("the directory of " + dest + " does not exist");
        boolean tar = format == Format.DOCKER_ARCHIVE || destAbs.getFileName().toString().endsWith(".tar");
        Path staging;
        try {
            staging = Files.createTempDirectory(parent, "." + destAbs.getFileName() + ".strata-");
        } catch (IOException e) {
            throw new ImageException("cannot write in " + parent + ": " + Committer.reason(e));
        }
        Result res = new Result();
        res.tar = tar;
        ImageRef name = ImageRef.tryParse(ref);
        if (name == null || !rec.names.contains(name.toString())) name = rec.names.isEmpty() ? null : ImageRef.parse(rec.names.get(0));
        res.tag = name == null ? "latest" : name.tag();
        try {
            Path work = Files.createDirectory(staging.resolve("work"));
            Path layout = Files.createDirectory(staging.resolve("layout"));
            Map<String, Out> byDiffId = new LinkedHashMap<>();
            List<Out> layers = new ArrayList<>();
            int i = 0;
            for (ImageRecord.Layer rl : rec.layers) {
                i++;
                Out o = byDiffId.get(rl.diffId);
                if (o == null) {
                    o = layer(store, rl, work, format, i, rec.layers.size(), l);
                    if (!o.diffId.toString().equals(rl.diffId)) res.rewritten++;
                    byDiffId.put(rl.diffId, o);
                }
                layers.add(o);
            }
            ObjectNode config = config(rec, layers);
            byte[] configBytes = Committer.compact(config);
            Digest configDigest = Digest.of(configBytes);
            res.imageId = configDigest.toString();
            res.layers = layers.size();
            if (format == Format.OCI) {
                writeOci(layout, configBytes, configDigest, layers, name, res);
            } else {
                writeDocker(layout, configBytes, configDigest, layers, rec, name);
            }
            if (tar) {
                Path t = staging.resolve("out.tar");
                try (OutputStream os = new BufferedOutputStream(Files.newOutputStream(t), 1 << 16)) {
                    TarWriter w = new TarWriter(os);
                    tarTree(w, layout, "");
                    w.finish();
                    res.bytes = w.written();
                }
                moveNoReplace(t, destAbs);
            } else {
                res.bytes = size(layout);
                moveNoReplace(layout, destAbs);
            }
            return res;
        } catch (FileAlreadyExistsException e) {
            throw new ImageException(dest + " exists: remove it or give another destination");
        } catch (IOException e) {
            throw new ImageException("cannot export to " + dest + ": " + Committer.reason(e));
        } finally {
            Trees.remove(staging); // on failure DEST was never created: only the staging directory goes
        }
    }

    /** rename(2) that never replaces: DEST created meanwhile is not overwritten. */
    private static void moveNoReplace(Path from, Path to) throws IOException {
        int r = dev.strata.posix.Posix.renameat2(dev.strata.posix.Posix.AT_FDCWD, dev.strata.posix.Names.toNative(from.toString()),
                dev.strata.posix.Posix.AT_FDCWD, dev.strata.posix.Names.toNative(to.toString()), dev.strata.posix.Posix.RENAME_NOREPLACE);
        if (r == -dev.strata.posix.Errno.EEXIST) throw new FileAlreadyExistsException(to.toString());
        if (r < 0) throw new IOException(dev.strata.posix.Posix.strerror(r));
    }

    private static Out layer(ImageStore store, ImageRecord.Layer rl, Path work, Format format, int i, int n, ImportListener l)
            throws IOException {
        Digest diffId = Digest.parse(rl.diffId);
        Out o = new Out();
        Path kept = store.layerBlob(diffId);
        String hex = diffId.hex();
        if (Files.isRegularFile(kept, LinkOption.NOFOLLOW_LINKS)) {
            o.diffId = diffId;
            if (format == Format.OCI) {
                o.gz = kept;
                try (InputStream in = Files.newInputStream(kept)) {
                    HashingInputStream h = new HashingInputStream(in);
                    h.drain();
                    o.blobDigest = h.digest();
                    o.blobSize = h.count();
                }
            } else {
                o.plain = work.resolve(hex + ".tar");
                try (InputStream in = new GZIPInputStream(Files.newInputStream(kept), 1 << 16)) {
                    Files.copy(in, o.plain);
                }
                o.tarSize = Files.size(o.plain);
            }
            l.info("layer " + i + "/" + n + " " + diffId.shortHex() + ": the committed blob");
            return o;
        }
        // written again from the layer directory
        String dir = dev.strata.posix.Names.toNative(store.layerDir(diffId).toString());
        if (format == Format.OCI) {
            o.gz = work.resolve(hex + ".tar.gz");
            Committer.Hashing blob, tar;
            try (OutputStream file = Files.newOutputStream(o.gz)) {
                blob = new Committer.Hashing(new BufferedOutputStream(file, 1 << 16));
                GZIPOutputStream gz = new GZIPOutputStream(blob, 1 << 16);
                tar = new Committer.Hashing(gz);
                LayerWriter.write(dir, tar);
                gz.finish();
                blob.flush();
            }
            o.diffId = Digest.of(tar.md);
            o.blobDigest = Digest.of(blob.md);
            o.blobSize = blob.count;
            o.tarSize = tar.count;
        } else {
            o.plain = work.resolve(hex + ".tar");
            Committer.Hashing tar;
            try (OutputStream file = Files.newOutputStream(o.plain)) {
                tar = new Committer.Hashing(new BufferedOutputStream(file, 1 << 16));
                LayerWriter.write(dir, tar);
                tar.flush();
            }
            o.diffId = Digest.of(tar.md);
            o.tarSize = tar.count;
        }
        l.info("layer " + i + "/" + n + " " + diffId.shortHex() + ": written from the store's layer directory"
                + (o.diffId.equals(diffId) ? "" : " (new diff_id " + o.diffId.shortHex() + ")"));
        return o;
    }

    private static ObjectNode config(ImageRecord rec, List<Out> layers) {
        ObjectNode c = rec.config != null && rec.config.isObject() ? ((ObjectNode) rec.config).deepCopy() : Json.MAPPER.createObjectNode();
        if (!c.has("os")) c.put("os", "linux");
        if (!c.has("architecture")) c.put("architecture", rec.platform != null && rec.platform.contains("/") ? rec.platform.split("/")[1] : "amd64");
        ObjectNode rootfs = c.with("rootfs");
        rootfs.put("type", "layers");
        ArrayNode ids = rootfs.putArray("diff_ids");
        for (Out o : layers) ids.add(o.diffId.toString());
        return c;
    }

    private static void writeOci(Path layout, byte[] configBytes, Digest configDigest, List<Out> layers, ImageRef name, Result res)
            throws IOException {
        Path blobs = Files.createDirectories(layout.resolve("blobs/sha256"));
        Files.write(layout.resolve("oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}".getBytes());
        Files.write(blobs.resolve(configDigest.hex()), configBytes);
        ObjectNode m = Json.MAPPER.createObjectNode();
        m.put("schemaVersion", 2);
        m.put("mediaType", OCI_MANIFEST);
        ObjectNode cd = m.putObject("config");
        cd.put("mediaType", OCI_CONFIG);
        cd.put("digest", configDigest.toString());
        cd.put("size", configBytes.length);
        ArrayNode ls = m.putArray("layers");
        for (Out o : layers) {
            Path b = blobs.resolve(o.blobDigest.hex());
            if (!Files.exists(b)) Files.copy(o.gz, b);
            ObjectNode d = ls.addObject();
            d.put("mediaType", Committer.GZIP_LAYER);
            d.put("digest", o.blobDigest.toString());
            d.put("size", o.blobSize);
        }
        byte[] mb = Committer.compact(m);
        Digest md = Digest.of(mb);
        Files.write(blobs.resolve(md.hex()), mb);
        res.manifestDigest = md.toString();
        ObjectNode idx = Json.MAPPER.createObjectNode();
        idx.put("schemaVersion", 2);
        idx.put("mediaType", OCI_INDEX);
        ObjectNode d = idx.putArray("manifests").addObject();
        d.put("mediaType", OCI_MANIFEST);
        d.put("digest", md.toString());
        d.put("size", mb.length);
        ObjectNode ann = d.putObject("annotations");
        ann.put("org.opencontainers.image.ref.name", res.tag);
        if (name != null) ann.put("io.containerd.image.name", name.toString());
        Files.write(layout.resolve("index.json"), Committer.compact(idx));
    }

    private static void writeDocker(Path layout, byte[] configBytes, Digest configDigest, List<Out> layers, ImageRecord rec,
                                    ImageRef name) throws IOException {
        Files.write(layout.resolve(configDigest.hex() + ".json"), configBytes);
        ArrayNode top = Json.MAPPER.createArrayNode();
        ObjectNode e = top.addObject();
        e.put("Config", configDigest.hex() + ".json");
        ArrayNode tags = e.putArray("RepoTags");
        if (name != null) tags.add(name.toString());
        ArrayNode ls = e.putArray("Layers");
        for (Out o : layers) {
            String rel = o.diffId.hex() + "/layer.tar";
            Path p = layout.resolve(rel);
            if (!Files.exists(p)) {
                Files.createDirectories(p.getParent());
                Files.move(o.plain, p);
            }
            ls.add(rel);
        }
        Files.write(layout.resolve("manifest.json"), Committer.compact(top));
    }

    /** The staging tree as a tar (regular files and directories, sorted, owned by root, mode 0644/0755). */
    private static void tarTree(TarWriter w, Path dir, String rel) throws IOException {
        List<Path> kids = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
            for (Path p : ds) kids.add(p);
        }
        kids.sort(null);
        for (Path p : kids) {
            String r = rel.isEmpty() ? p.getFileName().toString() : rel + "/" + p.getFileName();
            TarWriter.Header h = new TarWriter.Header();
            h.name = r;
            h.mtimeSec = 0;
            if (Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
                h.type = TarWriter.DIR;
                h.mode = 0755;
                w.header(h);
                tarTree(w, p, r);
            } else {
                h.type = TarWriter.REG;
                h.mode = 0644;
                h.size = Files.size(p);
                w.header(h);
                try (InputStream in = Files.newInputStream(p)) {
                    w.data(in, h.size);
                }
            }
        }
    }

    private static long size(Path dir) throws IOException {
        try (var s = Files.walk(dir)) {
            return s.filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).sum();
        }
    }
}
