package dev.strata.image;

import dev.strata.posix.Posix;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.Set;

/** Removing images and the layers no image uses any more (garbage collection), under the store lock. */
final class StoreRemoval {
    private StoreRemoval() {}

    /**
     * Removes a name; when the image has no name left (or was given by id) the image goes, with the
     * layers no other image uses (and any layer no image uses at all).
     */
    static ImageStore.RemoveResult remove(ImageStore s, String ref) {
        if (!Files.isDirectory(s.imagesDir)) s.find(ref); // throws the usual "no image" message
        s.createDirs();
        try (StoreLock lock = StoreLock.exclusive(s.lockFile, ImportListener.QUIET)) {
            s.cleanTmp(ImportListener.QUIET);
            ImageRecord rec = s.find(ref);
            ImageStore.RemoveResult res = new ImageStore.RemoveResult();
            ImageRef r = ImageRef.tryParse(ref);
            boolean byName = r != null && rec.names.contains(r.toString());
            if (byName && rec.names.size() > 1) {
                rec.names.remove(r.toString());
                s.writeJson(s.recordPath(rec), rec);
                res.untagged = r.toString();
                return res;
            }
            Files.delete(s.recordPath(rec));
            res.removed = rec;
            Set<String> used = new HashSet<>();
            for (ImageRecord o : s.images()) used.addAll(ImageStore.distinctLayers(o));
            Set<String> candidates = new LinkedHashSet<>();
            try (DirectoryStream<Path> ds = Files.newDirectoryStream(s.layersDir)) {
                for (Path p : ds) {
                    String f = p.getFileName().toString();
                    String hex = f.endsWith(".json") ? f.substring(0, f.length() - 5) : f;
                    if (Digest.ofHexOrNull(hex) != null && !used.contains(hex)) candidates.add(hex);
                }
            }
            for (String hex : candidates) {
                LayerInfo info = s.layerInfo(hex);
                int held = LayerLocks.tryExclusive(s.layersDir.resolve(hex));
                if (held == -1) { // a live mount shows it: keep it; a later removal collects it once free
                    res.keptLayers.add("sha256:" + hex);
                    continue;
                }
                boolean gone;
                try {
                    gone = removeLayer(s, hex);
                } finally {
                    if (held >= 0) Posix.close(held);
                }
                if (gone) {
                    res.removedLayers.add("sha256:" + hex);
                    if (info != null) res.freedBytes += info.contentSize;
                }
            }
            return res;
        } catch (IOException e) {
            throw new ImageException("cannot update the image store " + s.root + ": " + ImageStore.message(e));
        }
    }

    /** Removes a layer: out of sight first (rename into tmp), then its files. Returns whether a directory went. */
    static boolean removeLayer(ImageStore s, String hex) throws IOException {
        Path dir = s.layersDir.resolve(hex);
        boolean had = Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS);
        if (had) {
            Path gone = s.tmpDir.resolve("removed-" + hex);
            Trees.remove(gone);
            Files.move(dir, gone, StandardCopyOption.ATOMIC_MOVE);
            int r = Trees.remove(gone);
            if (r < 0) throw new ImageException("cannot remove layer " + hex + ": " + Posix.strerror(r));
        }
        Files.deleteIfExists(s.layersDir.resolve(hex + ".json"));
        Files.deleteIfExists(s.layersDir.resolve(hex + ".tar.gz"));
        return had;
    }

    /**
     * Removes the lazy layers of {@code strata mount ARCHIVE} (STORE/lazy/sha256/HEX with HEX.tar and
     * HEX.index) that no live mount holds (the same exclusive, non-blocking flock as a layer's removal)
     * and that {@code inUse} does not name (a kernel overlay mount of it), under the store lock.
     */
    static ImageStore.RemoveResult pruneLazy(ImageStore s, java.util.function.Predicate<Path> inUse) {
        ImageStore.RemoveResult res = new ImageStore.RemoveResult();
        Path lazyDir = s.root.resolve("lazy").resolve("sha256");
        if (!Files.isDirectory(lazyDir, LinkOption.NOFOLLOW_LINKS)) return res;
        try (StoreLock lock = StoreLock.exclusive(s.lockFile, ImportListener.QUIET)) {
            s.cleanTmp(ImportListener.QUIET);
            Set<String> entries = new java.util.TreeSet<>();
            try (DirectoryStream<Path> ds = Files.newDirectoryStream(lazyDir)) {
                for (Path p : ds) {
                    String f = p.getFileName().toString();
                    String hex = f.endsWith(dev.strata.layer.LazyTar.TAR) ? f.substring(0, f.length() - 4)
                            : f.endsWith(dev.strata.layer.LazyTar.INDEX) ? f.substring(0, f.length() - 6) : f;
                    if (Digest.ofHexOrNull(hex) != null) entries.add(hex);
                }
            }
            for (String hex : entries) {
                Path dir = lazyDir.resolve(hex);
                int held = Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS) ? LayerLocks.tryExclusive(dir) : -2;
                if (held == -1 || (held >= 0 && inUse.test(dir))) {
                    if (held >= 0) Posix.close(held);
                    res.keptLayers.add("sha256:" + hex);
                    continue;
                }
                try {
                    if (held >= 0) {
                        Path gone = s.tmpDir.resolve("removed-lazy-" + hex);
                        Trees.remove(gone);
                        Files.move(dir, gone, StandardCopyOption.ATOMIC_MOVE);
                        int r = Trees.remove(gone);
                        if (r < 0) throw new ImageException("cannot remove the lazy layer " + hex + ": " + Posix.strerror(r));
                    }
                } finally {
                    if (held >= 0) Posix.close(held);
                }
                for (String ext : new String[]{dev.strata.layer.LazyTar.TAR, dev.strata.layer.LazyTar.INDEX}) {
                    Path f = lazyDir.resolve(hex + ext);
                    if (Files.exists(f, LinkOption.NOFOLLOW_LINKS)) {
                        res.freedBytes += Files.size(f);
                        Files.delete(f);
                    }
                }
                res.removedLayers.add("sha256:" + hex);
            }
            return res;
        } catch (IOException e) {
            throw new ImageException("cannot update the image store " + s.root + ": " + ImageStore.message(e));
        }
    }
}
