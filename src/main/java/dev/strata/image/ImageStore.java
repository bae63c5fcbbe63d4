package dev.strata.image;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.strata.posix.Errno;
import dev.strata.posix.Posix;

import java.io.IOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileStore;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The image store: layers extracted once and shared between images, keyed by diff_id.
 * <pre>
 * STORE/lock                      flock'ed by imports and removals (one writer at a time)
 * STORE/tmp/                      staging: layers are extracted here, then renamed into place;
 *                                 anything found here when the lock is taken is stale and removed
 * STORE/layers/sha256/HEX/        an extracted layer (HEX = diff_id), usable as an overlay lowerdir
 * STORE/layers/sha256/HEX.json    its {@link LayerInfo}, written before the directory is renamed in
 * STORE/layers/sha256/HEX.tar.gz  its blob, for layers made by 'image commit' (export uses it as it is)
 * STORE/images/ID.json            an {@link ImageRecord} (ID = sha256 of the image config)
 * </pre>
 * A layer directory appears only complete (rename is the commit), so an interrupted import (kill -9,
 * full disk) leaves no half layer. Reading (list, find, lowerDirsTopFirst) takes no lock: records and
 * layers are replaced by rename only.
 */
public final class ImageStore {
    final Path root, layersDir, imagesDir, tmpDir, lockFile;
    private FileStore fileStore;

    private ImageStore(Path root) {
        this.root = root.toAbsolutePath().normalize();
        this.layersDir = this.root.resolve("layers").resolve("sha256");
        this.imagesDir = this.root.resolve("images");
        this.tmpDir = this.root.resolve("tmp");
        this.lockFile = this.root.resolve("lock");
    }

    /** {@code $XDG_DATA_HOME/strata}, else {@code ~/.local/share/strata}. */
    public static Path defaultLocation() {
        String x = System.getenv("XDG_DATA_HOME");
        if (x != null && x.startsWith("/")) return Path.of(x, "strata");
        String home = System.getenv("HOME");
        if (home == null || home.isEmpty()) home = System.getProperty("user.home");
        return Path.of(home, ".local", "share", "strata");
    }

    /** Opens a store (nothing is created until the first import). */
    public static ImageStore open(Path root) {
        ImageStore s = new ImageStore(root);
        if (Files.isDirectory(s.root.resolve("layers"), LinkOption.NOFOLLOW_LINKS)) {
            try {
                tighten(s.root, DIR_MODE);
            } catch (IOException | RuntimeException ignored) {
                // reading a store we may not change
            }
        }
        return s;
    }

    public Path root() { return root; }

    /** The directory of an extracted layer (whether or not it exists). */
    public Path layerDir(Digest diffId) { return layersDir.resolve(diffId.hex()); }

    /** The gzip blob of a layer, kept for layers strata wrote itself ('image commit'); may not exist. */
    public Path layerBlob(Digest diffId) { return layersDir.resolve(diffId.hex() + ".tar.gz"); }

    // =================================================================== import

    /** What to import and how. */
    public static final class ImportRequest {
        public Path source;
        /** NAME[:TAG] to give the image, or null to use the names the source carries. */
        public String name;
        /** Which image of a source holding several (a ref name or tag), or null. */
        public String ref;
        /** The platform to pick from a multi-platform index, or null (linux/amd64). */
        public Platform platform;
        /** Largest uncompressed size accepted for one layer. */
        public long maxLayerBytes = Long.MAX_VALUE;

        public ImportRequest(Path source) { this.source = source; }
    }

    public static final class ImportResult {
        public ImageRecord image;
        public int extracted, reused;
        public boolean alreadyPresent;
    }

    public ImportResult importImage(ImportRequest req, ImportListener l) {
        ImageRef name = req.name == null ? null : ImageRef.parse(req.name);
        createDirs();
        try (StoreLock lock = StoreLock.exclusive(lockFile, l)) {
            cleanTmp(l);
            try (SourceImage src = Sources.open(req.source, tmpDir, req.ref, req.platform, l)) {
                return importLocked(req, name, src, l);
            }
        } catch (IOException e) {
            throw new ImageException(req.source + ": " + message(e));
        }
    }

    private ImportResult importLocked(ImportRequest req, ImageRef name, SourceImage src, ImportListener l) throws IOException {
        int n = src.layers.size();
        if (n == 0) {
            // an overlay needs at least one lower layer: refuse here rather than store an image no mount can show
            throw new ImageException(req.source + ": the image has no layers; nothing imported");
        }
        l.info("Importing " + src.format + " " + req.source + (src.platform != null ? " (" + src.platform + ")" : "")
                + ", " + n + (n == 1 ? " layer" : " layers"));
        ImportResult res = new ImportResult();
        List<ImageRecord.Layer> recLayers = new ArrayList<>();
        Set<Digest> added = new LinkedHashSet<>();
        boolean ok = false;
        try {
            for (int i = 0; i < n; i++) {
                SourceImage.LayerBlob b = src.layers.get(i);
                String where = "layer " + (i + 1) + "/" + n;
                ImageRecord.Layer rl = new ImageRecord.Layer();
                rl.mediaType = b.mediaType;
                rl.blobSize = b.size;
                rl.digest = b.digest == null ? null : b.digest.toString();
                if (b.diffId != null && isLayer(b.diffId)) {
                    fillFromInfo(rl, b.diffId);
                    l.info(where + " " + b.diffId.shortHex() + ": already in the store, not extracted again");
                    res.reused++;
                } else {
                    BlobExtraction.Extracted ex = extract(b, i, n, req.maxLayerBytes, l);
                    rl.diffId = ex.diffId.toString();
                    rl.digest = ex.blobDigest.toString();
                    rl.blobSize = ex.blobSize;
                    rl.tarSize = ex.info.tarSize;
                    rl.contentSize = ex.info.contentSize;
                    if (isLayer(ex.diffId)) { // a layer tar imported again, or the same layer twice in one image
                        int r = Trees.remove(ex.dir);
                        if (r < 0) l.warning("cannot remove " + ex.dir + ": " + Posix.strerror(r));
                        l.info(where + " " + ex.diffId.shortHex() + ": already in the store, not extracted again");
                        res.reused++;
                    } else {
                        writeJson(layersDir.resolve(ex.diffId.hex() + ".json"), ex.info);
                        commit(ex.dir, layerDir(ex.diffId));
                        added.add(ex.diffId);
                        l.info(where + " " + ex.diffId.shortHex() + ": extracted (" + Human.bytes(ex.info.contentSize)
                                + ", " + ex.info.files + (ex.info.files == 1 ? " file" : " files") + ")");
                        warnings(where, ex.stats, l);
                        res.extracted++;
                    }
                }
                recLayers.add(rl);
            }
            byte[] config = src.configBytes != null ? src.configBytes : synthesizeConfig(recLayers);
            Digest id = Digest.of(config);
            List<String> names = new ArrayList<>();
            if (name != null) names.add(name.toString());
            else names.addAll(src.names);
            if (names.isEmpty()) names.add(ImageRef.sanitizeName(Sources.baseName(req.source)) + ":latest");

            ImageRecord rec = new ImageRecord();
            rec.id = id.toString();
            rec.manifestDigest = src.manifestDigest == null ? null : src.manifestDigest.toString();
            rec.format = src.format;
            rec.source = req.source.toAbsolutePath().normalize().toString();
            rec.platform = src.platform == null ? null : src.platform.toString();
            rec.imported = Instant.now().toString();
            rec.layers = recLayers;
            rec.config = src.config != null ? src.config : Json.parse(config, "config");
            rec.manifest = src.manifest;
            ImageRecord old = readRecord(imagesDir.resolve(id.hex() + ".json"));
            res.alreadyPresent = old != null;
            Set<String> all = new LinkedHashSet<>();
            if (old != null) all.addAll(old.names);
            all.addAll(names);
            rec.names = new ArrayList<>(all);
            for (ImageRecord other : images()) {
                if (other.id.equals(rec.id)) continue;
                if (other.names.removeAll(names)) {
                    writeJson(recordPath(other), other);
                    l.info("The name " + String.join(", ", names) + " moved from image " + shortId(other)
                            + (other.names.isEmpty() ? " (now unnamed; 'strata image rm " + shortId(other) + "' removes it)" : ""));
                }
            }
            writeJson(recordPath(rec), rec);
            res.image = rec;
            ok = true;
            return res;
        } finally {
            if (!ok) {
                for (Digest d : added) StoreRemoval.removeLayer(this, d.hex());
            }
        }
    }

    private void warnings(String where, LayerExtractor.Stats s, ImportListener l) {
        if (s.skippedDevices > 0) {
            l.warning(where + ": skipped " + s.skippedDevices + " device node(s) (creating them needs root), e.g. '"
                    + MemberNames.show(s.firstSkippedDevice) + "'");
        }
        if (s.skippedXattrs > 0) {
            l.warning(where + ": skipped " + s.skippedXattrs + " extended attribute(s) that could not be set, e.g. "
                    + s.firstSkippedXattr);
        }
        if (s.droppedPrivateXattrs > 0) {
            l.warning(where + ": dropped " + s.droppedPrivateXattrs + " overlay-private xattr(s) (trusted.overlay.*, "
                    + "user.overlay.*, user.strata.*) from the archive");
        }
        if (s.ownershipNotKept > 0) {
            l.warning(where + ": not root: " + s.ownershipNotKept + " entries keep your ownership, not the archive's");
        }
    }

    private static byte[] synthesizeConfig(List<ImageRecord.Layer> layers) throws IOException {
        ObjectNode c = Json.MAPPER.createObjectNode();
        c.put("os", "linux");
        ObjectNode rootfs = c.putObject("rootfs");
        rootfs.put("type", "layers");
        ArrayNode ids = rootfs.putArray("diff_ids");
        for (ImageRecord.Layer l : layers) ids.add(l.diffId);
        c.putObject("config");
        return Json.MAPPER.writer().without(com.fasterxml.jackson.databind.SerializationFeature.INDENT_OUTPUT)
                .writeValueAsBytes(c);
    }

    /** See {@link BlobExtraction#extract}. */
    BlobExtraction.Extracted extract(SourceImage.LayerBlob b, int i, int n, long maxBytes, ImportListener l) throws IOException {
        return BlobExtraction.extract(this, b, i, n, maxBytes, l);
    }

    static String message(Throwable e) {
        String m = e.getMessage();
        return m == null ? e.getClass().getSimpleName() : m.replace('\n', ' ');
    }

    long usableBytes() {
        try {
            if (fileStore == null) fileStore = Files.getFileStore(tmpDir);
            return fileStore.getUsableSpace();
        } catch (IOException e) {
            return Long.MAX_VALUE;
        }
    }

    /** Renames a finished layer directory into place: the commit point of an extraction. */
    void commit(Path from, Path to) throws IOException {
        int r = Posix.renameat2(Posix.AT_FDCWD, from.toString(), Posix.AT_FDCWD, to.toString(), Posix.RENAME_NOREPLACE);
        if (r == -Errno.EINVAL || r == -Errno.ENOSYS) {
            Files.move(from, to, StandardCopyOption.ATOMIC_MOVE);
        } else if (r < 0) {
            throw new ImageException("cannot move the extracted layer into " + to + ": " + Posix.strerror(r));
        }
    }

    boolean isLayer(Digest d) { return Files.isDirectory(layerDir(d), LinkOption.NOFOLLOW_LINKS); }

    private void fillFromInfo(ImageRecord.Layer rl, Digest diffId) {
        rl.diffId = diffId.toString();
        LayerInfo info = layerInfo(diffId.hex());
        if (info != null) {
            rl.tarSize = info.tarSize;
            rl.contentSize = info.contentSize;
        }
    }

    /** The info of a stored layer, or null. */
    public LayerInfo layerInfo(String hex) {
        Path p = layersDir.resolve(hex + ".json");
        try {
            return Files.isRegularFile(p) ? Json.MAPPER.readValue(p.toFile(), LayerInfo.class) : null;
        } catch (IOException e) {
            return null;
        }
    }

    /**
     * The store's own directories are 0700 and its lock file 0600, whatever the umask: layers hold
     * setuid binaries and device nodes from images, which must not be reachable by other users. A store
     * made with looser modes (by an older strata) is tightened here, if it is ours.
     */
    static final java.util.Set<java.nio.file.attribute.PosixFilePermission> DIR_MODE =
            java.nio.file.attribute.PosixFilePermissions.fromString("rwx------");

    void createDirs() {
        try {
            for (Path d : List.of(root, root.resolve("layers"), layersDir, imagesDir, tmpDir)) {
                if (!Files.isDirectory(d)) Files.createDirectories(d);
                tighten(d, DIR_MODE);
            }
            if (!Files.exists(lockFile, LinkOption.NOFOLLOW_LINKS)) {
                try {
                    Files.createFile(lockFile);
                } catch (java.nio.file.FileAlreadyExistsException ignored) { /* raced */ }
            }
            tighten(lockFile, java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
        } catch (IOException e) {
            throw new ImageException("cannot create the image store at " + root + ": " + message(e));
        }
    }

    private static void tighten(Path p, java.util.Set<java.nio.file.attribute.PosixFilePermission> mode) throws IOException {
        Object uid = Files.getAttribute(p, "unix:uid", LinkOption.NOFOLLOW_LINKS);
        if (!(uid instanceof Integer) || (Integer) uid != Posix.geteuid()) return; // not ours to change
        if (!Files.getPosixFilePermissions(p, LinkOption.NOFOLLOW_LINKS).equals(mode)) Files.setPosixFilePermissions(p, mode);
    }

    /** Removes what an interrupted import left in STORE/tmp (called with the lock held). */
    void cleanTmp(ImportListener l) throws IOException {
        int count = 0;
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(tmpDir)) {
            for (Path p : ds) {
                int r = Trees.remove(p);
                if (r < 0) throw new ImageException("cannot remove the stale " + p + ": " + Posix.strerror(r));
                count++;
            }
        }
        if (count > 0) l.info("Removed " + count + " stale temporary item(s) left by an interrupted import");
    }

    void writeJson(Path dest, Object value) {
        try {
            Path t = Files.createTempFile(tmpDir, "json-", ".tmp");
            try {
                Json.MAPPER.writeValue(t.toFile(), value);
                try {
                    Files.move(t, dest, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                } catch (AtomicMoveNotSupportedException e) {
                    Files.move(t, dest, StandardCopyOption.REPLACE_EXISTING);
                }
            } finally {
                Files.deleteIfExists(t);
            }
        } catch (IOException e) {
            throw new ImageException("cannot write " + dest + ": " + message(e));
        }
    }

    Path recordPath(ImageRecord r) { return imagesDir.resolve(Digest.parse(r.id).hex() + ".json"); }

    private static ImageRecord readRecord(Path p) {
        if (!Files.isRegularFile(p)) return null;
        try {
            ImageRecord r = Json.MAPPER.readValue(p.toFile(), ImageRecord.class);
            if (r.id == null || r.layers == null) throw new ImageException("corrupt image record " + p);
            if (r.names == null) r.names = new ArrayList<>();
            return r;
        } catch (IOException e) {
            throw new ImageException("corrupt image record " + p + ": " + message(e));
        }
    }

    // =================================================================== queries

    /** Every image in the store (no particular order); empty if the store does not exist yet. */
    public List<ImageRecord> images() {
        List<ImageRecord> out = new ArrayList<>();
        if (!Files.isDirectory(imagesDir)) return out;
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(imagesDir, "*.json")) {
            for (Path p : ds) {
                ImageRecord r = readRecord(p);
                if (r != null) out.add(r);
            }
        } catch (IOException e) {
            throw new ImageException("cannot read the image store " + root + ": " + message(e));
        }
        out.sort(Comparator.comparing(r -> r.id));
        return out;
    }

    /** Finds an image by NAME[:TAG] (":latest" implied) or by a prefix of its id (4+ hex digits). */
    public ImageRecord find(String ref) {
        List<ImageRecord> all = images();
        ImageRef r = ImageRef.tryParse(ref);
        if (r != null) for (ImageRecord rec : all) if (rec.names.contains(r.toString())) return rec;
        String hex = ref.startsWith("sha256:") ? ref.substring(7) : ref;
        if (hex.matches("[0-9a-f]{4,64}")) {
            List<ImageRecord> m = new ArrayList<>();
            for (ImageRecord rec : all) if (Digest.parse(rec.id).hex().startsWith(hex)) m.add(rec);
            if (m.size() == 1) return m.get(0);
            if (m.size() > 1) throw new ImageException("image id prefix '" + ref + "' is ambiguous: give more digits");
        }
        throw new ImageException("no image '" + MemberNames.show(ref) + "' in the store " + root
                + " (see 'strata image ls')");
    }

    /**
     * The layer directories of an image for a mount, <b>top layer first</b> (lowerdir order). A layer
     * listed twice in the image appears once, at its topmost position (the lower copy can never show).
     * Throws an ImageException with a one-line message if the image is unknown or a layer is missing.
     */
    public List<Path> lowerDirsTopFirst(String ref) { return lowerDirsTopFirst(find(ref)); }

    public List<Path> lowerDirsTopFirst(ImageRecord rec) {
        if (rec.layers.isEmpty()) {
            throw new ImageException("image " + displayName(rec) + " has no layers: there is nothing to mount");
        }
        List<Path> out = new ArrayList<>();
        Set<String> seen = new HashSet<>();
        for (int i = rec.layers.size() - 1; i >= 0; i--) {
            Digest d = Digest.parse(rec.layers.get(i).diffId);
            if (!seen.add(d.hex())) continue;
            Path p = layerDir(d);
            if (!Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
                throw new ImageException("image " + displayName(rec) + " is damaged: layer " + d + " is missing from "
                        + layersDir + "; import the image again");
            }
            out.add(p);
        }
        return out;
    }

    /** A line of 'image ls'. */
    public static final class Summary {
        public String name;
        public String id;
        public int layers;
        /** Content bytes of the image's distinct layers. */
        public long size;
        /** The part of size in layers that other images use too. */
        public long sharedSize;
        public ImageRecord record;
    }

    /** One summary per name (and one for each unnamed image), sorted by name. */
    public List<Summary> list() {
        List<ImageRecord> all = images();
        Map<String, Integer> users = new HashMap<>();
        for (ImageRecord r : all) for (String h : distinctLayers(r)) users.merge(h, 1, Integer::sum);
        Map<String, Long> sizes = new HashMap<>();
        List<Summary> out = new ArrayList<>();
        for (ImageRecord r : all) {
            long size = 0, shared = 0;
            for (String h : distinctLayers(r)) {
                long s = sizes.computeIfAbsent(h, k -> contentSize(r, k));
                size += Math.max(0, s);
                if (users.get(h) > 1) shared += Math.max(0, s);
            }
            List<String> names = r.names.isEmpty() ? List.of("<none>") : r.names;
            for (String nm : names) {
                Summary s = new Summary();
                s.name = nm;
                s.id = Digest.parse(r.id).shortHex();
                s.layers = r.layers.size();
                s.size = size;
                s.sharedSize = shared;
                s.record = r;
                out.add(s);
            }
        }
        out.sort(Comparator.comparing((Summary s) -> s.name.equals("<none>") ? 1 : 0).thenComparing(s -> s.name));
        return out;
    }

    private long contentSize(ImageRecord r, String hex) {
        LayerInfo i = layerInfo(hex);
        if (i != null) return i.contentSize;
        for (ImageRecord.Layer l : r.layers) if (l.diffId.endsWith(hex)) return l.contentSize;
        return -1;
    }

    static Set<String> distinctLayers(ImageRecord r) {
        Set<String> s = new LinkedHashSet<>();
        for (ImageRecord.Layer l : r.layers) s.add(Digest.parse(l.diffId).hex());
        return s;
    }

    public static String displayName(ImageRecord r) { return r.names.isEmpty() ? shortId(r) : r.names.get(0); }

    static String shortId(ImageRecord r) { return Digest.parse(r.id).shortHex(); }

    // =================================================================== removal

    public static final class RemoveResult {
        /** The name removed from an image that keeps other names, or null. */
        public String untagged;
        /** The image removed, or null. */
        public ImageRecord removed;
        public List<String> removedLayers = new ArrayList<>();
        /** Layers no image uses any more that were kept because a live mount holds them. */
        public List<String> keptLayers = new ArrayList<>();
        public long freedBytes;
    }

    /**
     * Removes a name; when the image has no name left (or was given by id) the image goes, with the
     * layers no other image uses (and any layer no image uses at all). See {@link StoreRemoval}.
     */
    public RemoveResult remove(String ref) { return StoreRemoval.remove(this, ref); }

    /** Removes the lazy layers ({@code strata mount ARCHIVE}) that no live mount holds and {@code inUse} does not name. */
    public RemoveResult pruneLazy(java.util.function.Predicate<Path> inUse) { return StoreRemoval.pruneLazy(this, inUse); }

    /** For tests: the layer directories present in the store. */
    List<String> layerHexes() throws IOException {
        List<String> out = new ArrayList<>();
        if (!Files.isDirectory(layersDir)) return out;
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(layersDir)) {
            for (Path p : ds) if (Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) out.add(p.getFileName().toString());
        }
        Collections.sort(out);
        return out;
    }

    Path tmpDir() { return tmpDir; }
}
