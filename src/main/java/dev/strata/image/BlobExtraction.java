package dev.strata.image;

import dev.strata.posix.Posix;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.zip.ZipException;

/** One layer blob into a new directory of the store's tmp: streamed, decompressed, extracted and both digests verified. */
final class BlobExtraction {
    private BlobExtraction() {}

    static final class Extracted {
        Path dir;
        Digest diffId, blobDigest;
        long blobSize;
        LayerInfo info;
        LayerExtractor.Stats stats;
        /** A lazy build: the temporary directory holding {@code tree/} (= dir), {@code layer.tar} and {@code index}. */
        Path lazyRoot;
        LazyIndexer lazy;
    }

    static Extracted extract(ImageStore store, SourceImage.LayerBlob b, int i, int n, long maxBytes, ImportListener l) throws IOException {
        return extract(store, b, i, n, maxBytes, l, false);
    }

    /** Streams one blob: hash it, decompress, hash the tar, extract it into a new temp dir, verify both digests. */
    static Extracted extract(ImageStore store, SourceImage.LayerBlob b, int i, int n, long maxBytes, ImportListener l,
                             boolean lazy) throws IOException {
        String where = "layer " + (i + 1) + "/" + n + (b.diffId != null ? " (" + b.diffId.shortHex() + ")" : "");
        Path dir, top, grave = null;
        try {
            top = Files.createTempDirectory(store.tmpDir, lazy ? "lazy-" : "layer-");
            dir = top;
            if (lazy) {
                dir = Files.createDirectory(top.resolve("tree"));
                grave = Files.createDirectory(top.resolve("grave"));
            }
        } catch (IOException e) {
            throw new ImageException("cannot create a directory in " + store.tmpDir + ": " + ImageStore.message(e));
        }
        int rootFd = Posix.openat(Posix.AT_FDCWD, dir.toString(), Posix.O_PATH | Posix.O_DIRECTORY | Posix.O_NOFOLLOW, 0);
        if (rootFd < 0) throw new ImageException("cannot open " + dir + ": " + Posix.strerror(rootFd));
        int graveFd = grave == null ? -1 : Posix.openat(Posix.AT_FDCWD, grave.toString(), Posix.O_PATH | Posix.O_DIRECTORY | Posix.O_NOFOLLOW, 0);
        boolean ok = false;
        java.io.OutputStream tarCopy = null;
        try (InputStream raw = b.opener.open()) {
            HashingInputStream blob = new HashingInputStream(raw, Long.MAX_VALUE, null,
                    done -> l.progress(i + 1, n, done, b.size));
            l.progress(i + 1, n, 0, b.size);
            Compression.Detected det = Compression.sniff(blob, where);
            InputStream decompressed = det.compression.decompress(det.stream);
            if (lazy) {
                tarCopy = new java.io.BufferedOutputStream(Files.newOutputStream(top.resolve("layer.tar")), 1 << 20);
            }
            HashingInputStream tar = new HashingInputStream(lazy ? new LazyIndexer.Tee(decompressed, tarCopy) : decompressed,
                    maxBytes, "uncompressed size over the limit of " + Human.bytes(maxBytes), null);
            LayerExtractor ex = new LayerExtractor(rootFd, where, store::usableBytes, maxBytes);
            if (lazy) ex.metadataOnly = new LazyIndexer(tar, graveFd);
            try {
                ex.extract(new TarReader(tar));
                tar.drain();
                blob.drain();
                if (tarCopy != null) tarCopy.close();
            } catch (IOException | RuntimeException e) {
                if (b.digest != null) { // a corrupt blob explains any failure it causes: say so
                    Digest got = drainedDigest(blob);
                    if (got != null && !got.equals(b.digest)) throw corruptBlob(where, b, got);
                }
                if (e instanceof ImageException) throw e;
                throw new ImageException(where + ": " + readError(e, det.compression));
            } finally {
                ex.close();
                decompressed.close(); // frees zstd's native context
                l.progressDone();
            }
            Digest blobDigest = blob.digest(), diffId = tar.digest();
            if (b.digest != null && !blobDigest.equals(b.digest)) throw corruptBlob(where, b, blobDigest);
            if (b.size >= 0 && blob.count() != b.size) {
                throw new ImageException(where + ": blob " + b.label + " is " + blob.count() + " bytes, the manifest says " + b.size);
            }
            if (b.diffId != null && !diffId.equals(b.diffId)) {
                throw new ImageException(where + ": uncompressed content hashes to " + diffId
                        + " but the image config expects diff_id " + b.diffId + " (corrupt or mismatched layer)");
            }
            Extracted out = new Extracted();
            out.dir = dir;
            out.diffId = diffId;
            out.blobDigest = blobDigest;
            out.blobSize = blob.count();
            out.stats = ex.stats;
            if (lazy) {
                out.lazyRoot = top;
                out.lazy = ex.metadataOnly;
                ex.metadataOnly.writeIndex(top.resolve("index"));
            }
            LayerInfo info = new LayerInfo();
            LayerExtractor.Stats s = ex.stats;
            info.diffId = diffId.toString();
            info.tarSize = tar.count();
            info.contentSize = s.contentBytes;
            info.files = s.files; info.dirs = s.dirs; info.symlinks = s.symlinks; info.hardlinks = s.hardlinks;
            info.devices = s.devices; info.fifos = s.fifos; info.whiteouts = s.whiteouts; info.opaqueDirs = s.opaques;
            info.extractedAsRoot = Posix.geteuid() == 0;
            info.whiteoutForm = s.whiteoutForm;
            info.opaqueForm = s.opaqueForm;
            info.extracted = Instant.now().toString();
            out.info = info;
            ok = true;
            return out;
        } finally {
            Posix.close(rootFd);
            if (graveFd >= 0) Posix.close(graveFd);
            if (tarCopy != null) {
                try { tarCopy.close(); } catch (IOException ignored) { /* removed below, or reported above */ }
            }
            if (!ok) Trees.remove(top);
        }
    }

    private static Digest drainedDigest(HashingInputStream blob) {
        try {
            blob.drain();
            return blob.digest();
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    private static ImageException corruptBlob(String where, SourceImage.LayerBlob b, Digest got) {
        return new ImageException(where + ": blob " + b.digest + " is corrupt: its content hashes to " + got);
    }

    private static String readError(Throwable e, Compression c) {
        if (e instanceof HashingInputStream.LimitExceeded) return e.getMessage() + " (see --max-layer-size)";
        String m = ImageStore.message(e);
        if (e instanceof EOFException || e instanceof ZipException || e.getClass().getName().contains("Zstd")) {
            return "corrupt or truncated " + c.label + " data (" + m + ")";
        }
        if (m.contains("No space left")) return "no space left in the store (" + m + ")";
        return "corrupt or truncated layer tar (" + m + ")";
    }
}
