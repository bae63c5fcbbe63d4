package dev.strata.image;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.strata.posix.Posix;

import java.io.BufferedOutputStream;
import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.Deflater;
import java.util.zip.GZIPOutputStream;

/**
 * {@code strata image commit}: an upper directory becomes a new layer on top of its base image.
 * <ol>
 * <li>The upper is written by {@link LayerWriter} as a tar, gzip-compressed (gzip: every consumer of
 *     docker archives and OCI layouts reads it, unlike zstd; the JDK's gzip header has no time in it,
 *     so the same upper gives the same blob digest too), hashing the tar (diff_id) and the blob as it
 *     goes, into {@code STORE/tmp}.</li>
 * <li>The blob is imported as any layer is (extracted, both digests checked) into
 *     {@code STORE/layers/sha256/DIFFID}, and kept beside it as {@code DIFFID.tar.gz} for export.</li>
 * <li>The new config is the base's with {@code rootfs.diff_ids} + the new diff_id, a history entry
 *     (history entries for the base layers are made up first when the base has none), and
 *     {@code created}; the image id is the sha256 of its compact JSON.</li>
 * </ol>
 * All under the store lock. The upper is read as it is while this runs: see {@link #commit}.
 */
public final class Committer {
    public static final String GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip";

    private Committer() {}

    /** What to commit. */
    public static final class Request {
        /** The upper directory, a byte string (see dev.strata.posix.Names). */
        public String upper;
        public String base;
        public String name;
        /** Move the name from another image if one has it. */
        public boolean force;
        /** The history entry's created_by / comment. */
        public String createdBy = "strata image commit";
        public String comment;
        public String author;
        /** Called once the store lock is held, just before the upper is read; closed once it was read (e.g. a paused daemon). */
        public java.util.function.Supplier<AutoCloseable> whileReading;
    }

    public static final class Result {
        public ImageRecord image;
        public ImageRecord.Layer layer;
        public LayerWriter.Stats stats;
        public boolean layerReused;
        public String nameMovedFrom;
    }

    /**
     * Commits {@code req.upper} as a new layer over {@code req.base}. A live mount may change the upper
     * meanwhile: a file changed while being read is refused (one line), other changes are not seen, as
     * {@code podman commit} without {@code --pause}.
     */
    public static Result commit(ImageStore store, Request req, ImportListener l) {
        ImageRef name = ImageRef.parse(req.name);
        ImageRecord base = store.find(req.base);
        store.lowerDirsTopFirst(base); // the base must be whole
        String upper = req.upper;
        dev.strata.posix.Stat st = new dev.strata.posix.Stat();
        int r = Posix.fstatat(Posix.AT_FDCWD, upper, st, 0);
        if (r < 0 || !st.isDir()) {
            throw new ImageException("upper directory " + dev.strata.posix.Names.display(upper) + ": "
                    + (r < 0 ? Posix.strerror(r) : "not a directory"));
        }
        if (!req.force) {
            for (ImageRecord o : store.images()) {
                if (o.names.contains(name.toString())) {
                    throw new ImageException("the name " + name + " is taken by image " + ImageStore.shortId(o)
                            + "; give another name, or --force to move it to the new image");
                }
            }
        }
        store.createDirs();
        try (StoreLock lock = StoreLock.exclusive(store.lockFile, l)) {
            store.cleanTmp(l);
            return commitLocked(store, req, name, base, upper, l);
        } catch (IOException e) {
            String m = reason(e);
            throw new ImageException("commit: " + m + (m.contains("No space") ? " (store " + store.root + ")" : ""));
        }
    }

    private static Result commitLocked(ImageStore store, Request req, ImageRef name, ImageRecord base, String upper,
                                       ImportListener l) throws IOException {
        Result res = new Result();
        Path blob = Files.createTempFile(store.tmpDir, "commit-", ".tar.gz");
        boolean ok = false;
        Digest added = null;
        try {
            Hashing blobHash, tarHash;
            try (OutputStream file = Files.newOutputStream(blob)) {
                blobHash = new Hashing(new BufferedOutputStream(file, 1 << 16));
                GZIPOutputStream gz = new GZIPOutputStream(blobHash, 1 << 16) {
                    { def.setLevel(Deflater.DEFAULT_COMPRESSION); }
                };
                tarHash = new Hashing(gz);
                AutoCloseable during = req.whileReading == null ? null : req.whileReading.get();
                try {
                    res.stats = LayerWriter.write(upper, tarHash, true);
                } finally {
                    if (during != null) {
                        try {
                            during.close();
                        } catch (Exception e) {
                            l.warning(String.valueOf(e.getMessage()));
                        }
                    }
                }
                gz.finish();
                blobHash.flush();
            }
            Digest diffId = Digest.of(tarHash.md), blobDigest = Digest.of(blobHash.md);
            ImageRecord.Layer rl = new ImageRecord.Layer();
            rl.diffId = diffId.toString();
            rl.digest = blobDigest.toString();
            rl.mediaType = GZIP_LAYER;
            rl.blobSize = blobHash.count;
            rl.tarSize = tarHash.count;
            if (store.isLayer(diffId)) {
                res.layerReused = true;
                LayerInfo info = store.layerInfo(diffId.hex());
                rl.contentSize = info != null ? info.contentSize : res.stats.contentBytes;
            } else {
                SourceImage.LayerBlob b = new SourceImage.LayerBlob(blobDigest, blobHash.count, diffId, GZIP_LAYER,
                        () -> Files.newInputStream(blob), "the committed layer");
                BlobExtraction.Extracted ex = store.extract(b, 0, 1, Long.MAX_VALUE, l);
                rl.contentSize = ex.info.contentSize;
                store.writeJson(store.layersDir.resolve(diffId.hex() + ".json"), ex.info);
                store.commit(ex.dir, store.layerDir(diffId));
                added = diffId;
            }
            Path kept = store.layerBlob(diffId);
            if (!Files.isRegularFile(kept, LinkOption.NOFOLLOW_LINKS)) Files.move(blob, kept, StandardCopyOption.ATOMIC_MOVE);
            res.layer = rl;

            ObjectNode config = newConfig(base, rl, req);
            byte[] configBytes = compact(config);
            ImageRecord rec = new ImageRecord();
            rec.id = Digest.of(configBytes).toString();
            rec.format = "strata commit";
            rec.source = "commit of " + dev.strata.posix.Names.display(upper) + " over " + ImageStore.displayName(base)
                    + " (" + ImageStore.shortId(base) + ")";
            rec.platform = base.platform;
            rec.imported = Instant.now().toString();
            rec.layers = new ArrayList<>(base.layers);
            rec.layers.add(rl);
            rec.config = config;
            rec.names = new ArrayList<>(List.of(name.toString()));
            for (ImageRecord other : store.images()) {
                if (other.id.equals(rec.id)) {
                    for (String n : other.names) if (!rec.names.contains(n)) rec.names.add(n);
                    continue;
                }
                if (other.names.remove(name.toString())) {
                    store.writeJson(store.recordPath(other), other);
                    res.nameMovedFrom = ImageStore.shortId(other);
                }
            }
            store.writeJson(store.recordPath(rec), rec);
            res.image = rec;
            ok = true;
            return res;
        } finally {
            Files.deleteIfExists(blob);
            if (!ok && added != null) {
                Trees.remove(store.layerDir(added));
                Files.deleteIfExists(store.layersDir.resolve(added.hex() + ".json"));
                Files.deleteIfExists(store.layerBlob(added));
            }
        }
    }

    /** The base's config with the new layer: diff_ids, history (made whole first), created. */
    static ObjectNode newConfig(ImageRecord base, ImageRecord.Layer layer, Request req) {
        ObjectNode c = base.config != null && base.config.isObject() ? ((ObjectNode) base.config).deepCopy() : Json.MAPPER.createObjectNode();
        if (!c.has("os")) c.put("os", "linux");
        if (!c.has("architecture")) c.put("architecture", base.platform != null ? base.platform.split("/")[1] : "amd64");
        String now = Instant.now().truncatedTo(ChronoUnit.SECONDS).toString();
        c.put("created", now);
        if (req.author != null) c.put("author", req.author);
        ObjectNode rootfs = c.with("rootfs");
        rootfs.put("type", "layers");
        ArrayNode ids = rootfs.putArray("diff_ids");
        for (ImageRecord.Layer bl : base.layers) ids.add(bl.diffId);
        ids.add(layer.diffId);
        ArrayNode hist = c.has("history") && c.get("history").isArray() ? (ArrayNode) c.get("history") : c.putArray("history");
        int nonEmpty = 0;
        for (JsonNode h : hist) if (!h.path("empty_layer").asBoolean(false)) nonEmpty++;
        // a history that does not account for every base layer: fill it up, as tools check the count
        for (int i = nonEmpty; i < base.layers.size(); i++) {
            hist.addObject().put("created_by", "layer " + (i + 1) + " of " + ImageStore.displayName(base));
        }
        ObjectNode h = hist.addObject();
        h.put("created", now);
        h.put("created_by", req.createdBy);
        if (req.author != null) h.put("author", req.author);
        if (req.comment != null) h.put("comment", req.comment);
        return c;
    }

    /** An IOException in one line: for a file system error its reason alone ("No space left on device"), not the paths. */
    static String reason(IOException e) {
        if (e instanceof java.nio.file.FileSystemException && ((java.nio.file.FileSystemException) e).getReason() != null) {
            return ((java.nio.file.FileSystemException) e).getReason();
        }
        return ImageStore.message(e);
    }

    static byte[] compact(JsonNode n) throws IOException {
        return Json.MAPPER.writer().without(SerializationFeature.INDENT_OUTPUT).writeValueAsBytes(n);
    }

    /** An OutputStream that hashes (sha256) and counts what passes. */
    static final class Hashing extends FilterOutputStream {
        final MessageDigest md = Digest.sha256();
        long count;

        Hashing(OutputStream out) { super(out); }

        @Override public void write(int b) throws IOException {
            out.write(b);
            md.update((byte) b);
            count++;
        }

        @Override public void write(byte[] b, int off, int len) throws IOException {
            out.write(b, off, len);
            md.update(b, off, len);
            count += len;
        }
    }
}
