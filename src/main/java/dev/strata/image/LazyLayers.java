package dev.strata.image;

import dev.strata.layer.LazyTar;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The layers of an image archive for a mount without import ({@code strata mount ARCHIVE}): each layer
 * once as a lazy layer of the store, reused by later mounts.
 * <pre>
 * STORE/lazy/sha256/HEX/         the skeleton: the layer's tree as an import writes it, regular files
 *                                empty (sparse, with their size); a lowerdir (see {@link LazyTar})
 * STORE/lazy/sha256/HEX.tar      the uncompressed layer tar their data is read from
 * STORE/lazy/sha256/HEX.index    inode number -> offset of the data in HEX.tar
 * </pre>
 * HEX is the layer's diff_id (the digest of the uncompressed tar, which is what the three files depend
 * on: the same layer from an OCI layout and from a docker archive is built once), or for a single layer
 * tar, which has none, the digest of the file as given. A layer is built while its blob streams through
 * the import's own checks (the same {@link BlobExtraction}, {@link LayerExtractor} and its refusals);
 * both digests are verified before the entry is renamed into place (the directory last: the commit), so
 * a mismatch or an interrupted build leaves nothing a mount would use.
 */
public final class LazyLayers {
    private LazyLayers() {}

    /** The layers to mount and what it took. */
    public static final class Result {
        /** Skeleton directories, top layer first (lowerdir order). */
        public final List<Path> lowersTopFirst = new ArrayList<>();
        public int built, reused;
        public String format;
    }

    /** The lazy layers of {@code req.source} (built where missing), under the store's lock. */
    public static Result prepare(ImageStore store, ImageStore.ImportRequest req, ImportListener l) {
        store.createDirs();
        Path lazyDir = store.root.resolve("lazy").resolve("sha256");
        try {
            for (Path d : List.of(lazyDir.getParent(), lazyDir)) {
                if (!Files.isDirectory(d, LinkOption.NOFOLLOW_LINKS)) Files.createDirectory(d);
                Files.setPosixFilePermissions(d, ImageStore.DIR_MODE);
            }
        } catch (IOException e) {
            throw new ImageException("cannot create " + lazyDir + ": " + ImageStore.message(e));
        }
        try (StoreLock lock = StoreLock.exclusive(store.lockFile, l)) {
            store.cleanTmp(l);
            try (SourceImage src = Sources.open(req.source, store.tmpDir, req.ref, req.platform, l)) {
                int n = src.layers.size();
                if (n == 0) throw new ImageException(req.source + ": the image has no layers; nothing to mount");
                Result res = new Result();
                res.format = src.format;
                List<Path> bottomFirst = new ArrayList<>();
                for (int i = 0; i < n; i++) bottomFirst.add(layer(store, lazyDir, src.layers.get(i), i, n, req.maxLayerBytes, l, res));
                Set<Path> seen = new HashSet<>();
                for (int i = n - 1; i >= 0; i--) if (seen.add(bottomFirst.get(i))) res.lowersTopFirst.add(bottomFirst.get(i));
                return res;
            }
        } catch (IOException e) {
            throw new ImageException(req.source + ": " + ImageStore.message(e));
        }
    }

    private static Path layer(ImageStore store, Path lazyDir, SourceImage.LayerBlob b, int i, int n, long max,
                              ImportListener l, Result res) throws IOException {
        String where = "layer " + (i + 1) + "/" + n;
        Digest key = b.diffId != null ? b.diffId : b.digest != null ? b.digest : digestOf(b, where);
        Path dir = lazyDir.resolve(key.hex());
        if (Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
            l.info(where + " " + key.shortHex() + ": indexed before, reused");
            res.reused++;
            return dir;
        }
        BlobExtraction.Extracted ex = BlobExtraction.extract(store, b, i, n, max, l, true);
        try {
            if (b.diffId == null && b.digest == null && !key.equals(ex.blobDigest)) {
                throw new ImageException(where + ": " + b.label + " changed while it was read");
            }
            move(ex.lazyRoot.resolve("layer.tar"), lazyDir.resolve(key.hex() + LazyTar.TAR));
            move(ex.lazyRoot.resolve("index"), lazyDir.resolve(key.hex() + LazyTar.INDEX));
            store.commit(ex.dir, dir);
        } finally {
            Trees.remove(ex.lazyRoot);
        }
        l.info(where + " " + key.shortHex() + ": indexed (" + ex.lazy.lazyFiles + " files, "
                + Human.bytes(ex.lazy.lazyBytes) + " left in the tar)");
        res.built++;
        return dir;
    }

    private static void move(Path from, Path to) throws IOException {
        Files.move(from, to, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    /** The sha256 of a blob the source gives no digest for (a single layer tar): its key in the store. */
    private static Digest digestOf(SourceImage.LayerBlob b, String where) throws IOException {
        try (InputStream in = b.opener.open()) {
            HashingInputStream h = new HashingInputStream(in);
            h.drain();
            return h.digest();
        } catch (IOException e) {
            throw new ImageException(where + ": cannot read " + b.label + ": " + ImageStore.message(e));
        }
    }

    /** Whether {@code dir} is a lazy layer of a store ({@code STORE/lazy/sha256/HEX}, STORE holding a lock file). */
    public static boolean isLazyLayer(Path dir) {
        Path d = dir.toAbsolutePath().normalize();
        Path sha = d.getParent();
        if (sha == null || Digest.ofHexOrNull(String.valueOf(d.getFileName())) == null) return false;
        if (!"sha256".equals(String.valueOf(sha.getFileName()))) return false;
        Path lazy = sha.getParent();
        return lazy != null && "lazy".equals(String.valueOf(lazy.getFileName())) && lazy.getParent() != null
                && Files.exists(lazy.getParent().resolve("lock"), LinkOption.NOFOLLOW_LINKS);
    }
}
