package dev.strata.image;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.regex.Pattern;

/**
 * Recognises an import SOURCE: an OCI layout directory, a directory holding an unpacked docker archive,
 * an OCI or docker archive (tar, possibly gzip/zstd-compressed), or a single layer tar (plain, gzip or
 * zstd). Compression is detected from magic bytes.
 */
final class Sources {
    private Sources() {}

    private static final Pattern ARCHIVE_MEMBER = Pattern.compile(
            "oci-layout|index\\.json|manifest\\.json|repositories|blobs(/.*)?|[0-9a-f]{64}(\\.json|/.*)?");

    static SourceImage open(Path source, Path tmpDir, String wantRef, Platform wantPlatform, ImportListener listener)
            throws IOException {
        String label = source.toString();
        if (!Files.exists(source)) throw new ImageException(label + ": no such file or directory");
        SourceImage img = new SourceImage();
        try {
            if (Files.isDirectory(source)) {
                DirFiles files = new DirFiles(source, label);
                img.resources.add(files);
                String base = baseName(source);
                if (files.exists("index.json")) {
                    img.format = "OCI layout";
                    return OciReader.read(files, label, wantRef, wantPlatform, base, img);
                }
                if (files.exists("manifest.json")) {
                    img.format = "docker archive";
                    return DockerArchiveReader.read(files, label, wantRef, wantPlatform, img);
                }
                throw new ImageException(label + ": not an OCI image layout (no index.json) nor a docker archive (no manifest.json)");
            }
            if (!Files.isRegularFile(source)) throw new ImageException(label + ": not a regular file or directory");
            if (!Files.isReadable(source)) throw new ImageException(label + ": permission denied");
            Compression c;
            byte[] head = new byte[512];
            int n;
            try (InputStream in = Files.newInputStream(source)) {
                n = in.readNBytes(head, 0, head.length);
            }
            c = Compression.detect(head, n, label);
            Path tarFile = source;
            if (c == Compression.NONE) {
                if (!looksLikeTar(head, n)) {
                    throw new ImageException(label + ": not a tar archive, OCI layout or docker archive");
                }
            } else if (startsLikeImageArchive(source, c, label)) {
                Path spooled = spool(source, c, tmpDir, label, listener);
                img.resources.add(() -> Files.deleteIfExists(spooled));
                tarFile = spooled;
            } else {
                return layerTar(source, label, img);
            }
            TarFiles files;
            try {
                files = new TarFiles(tarFile, label);
            } catch (IOException | RuntimeException e) {
                if (tarFile != source) throw new ImageException(label + ": corrupt archive: " + e.getMessage());
                return layerTar(source, label, img); // commons-compress's random-access reader is stricter; stream it
            }
            img.resources.add(files);
            // a root filesystem may well hold an index.json or manifest.json of its own: ask for more
            if (files.exists("index.json") && (files.exists("oci-layout") || tarFile != source)) {
                img.format = "OCI archive";
                return OciReader.read(files, label, wantRef, wantPlatform, baseName(source), img);
            }
            if (files.exists("manifest.json") && (tarFile != source || looksLikeDockerManifest(files))) {
                img.format = "docker archive";
                return DockerArchiveReader.read(files, label, wantRef, wantPlatform, img);
            }
            if (tarFile != source) throw new ImageException(label + ": not an OCI or docker archive");
            files.close();
            img.resources.remove(files);
            return layerTar(source, label, img);
        } catch (IOException | RuntimeException e) {
            img.close();
            if (e instanceof NoSuchFileException) throw new ImageException(label + ": no such file: " + e.getMessage());
            throw e;
        }
    }

    private static SourceImage layerTar(Path source, String label, SourceImage img) throws IOException {
        img.format = "layer tar";
        img.layers.add(new SourceImage.LayerBlob(null, Files.size(source), null, null,
                () -> Files.newInputStream(source), label));
        img.names.add(ImageRef.sanitizeName(baseName(source)) + ":latest");
        return img;
    }

    /** A compressed tar whose first members look like an image archive rather than a root filesystem. */
    private static boolean startsLikeImageArchive(Path source, Compression c, String label) throws IOException {
        try (InputStream raw = Files.newInputStream(source);
             TarReader tar = new TarReader(c.decompress(raw))) {
            for (int i = 0; i < 8; i++) {
                TarItem it = tar.next();
                if (it == null) return false;
                String n = it.name;
                while (n.startsWith("./")) n = n.substring(2);
                while (n.endsWith("/")) n = n.substring(0, n.length() - 1);
                if (n.isEmpty() || n.equals(".")) continue;
                if (!ARCHIVE_MEMBER.matcher(n).matches()) return false;
                if (n.equals("index.json") || n.equals("manifest.json") || n.equals("oci-layout")) return true;
                if (n.startsWith("blobs/") || n.matches("[0-9a-f]{64}(\\.json|/.*)?")) return true;
            }
            return false;
        } catch (IOException e) {
            throw new ImageException(label + ": corrupt " + c.label + " data: " + e.getMessage());
        }
    }

    /** Decompresses a compressed image archive into the store's temp area for random access. */
    private static Path spool(Path source, Compression c, Path tmpDir, String label, ImportListener listener) throws IOException {
        Path out = Files.createTempFile(tmpDir, "source-", ".tar");
        listener.info("Decompressing " + label + " (" + c.label + ") into the store's temporary area");
        try (InputStream raw = Files.newInputStream(source);
             InputStream in = c.decompress(raw);
             OutputStream os = Files.newOutputStream(out, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
            in.transferTo(os);
        } catch (IOException e) {
            Files.deleteIfExists(out);
            String m = String.valueOf(e.getMessage());
            if (m.contains("No space left")) throw new ImageException("no space left in the store to decompress " + label);
            throw new ImageException(label + ": corrupt " + c.label + " data: " + m);
        }
        return out;
    }

    /** manifest.json of a docker archive is a JSON array of objects with Config and Layers. */
    private static boolean looksLikeDockerManifest(SourceFiles files) {
        try {
            if (files.size("manifest.json") > OciReader.MAX_INDEX) return false;
            com.fasterxml.jackson.databind.JsonNode n = Json.MAPPER.readTree(files.open("manifest.json"));
            return n != null && n.isArray() && n.size() > 0 && n.get(0).has("Config") && n.get(0).has("Layers");
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }

    /** A tar header: the checksum field matches the header's bytes (every tar format has one). */
    static boolean looksLikeTar(byte[] h, int n) {
        if (n < 512) return false;
        boolean zero = true;
        for (int i = 0; i < 512; i++) if (h[i] != 0) { zero = false; break; }
        if (zero) return true; // an empty archive
        long stored = 0;
        int i = 148;
        while (i < 156 && (h[i] == ' ' || h[i] == 0)) i++;
        for (; i < 156 && h[i] >= '0' && h[i] <= '7'; i++) stored = stored * 8 + (h[i] - '0');
        long unsigned = 0, signed = 0;
        for (int k = 0; k < 512; k++) {
            int b = (k >= 148 && k < 156) ? ' ' : h[k];
            unsigned += b & 0xff;
            signed += (k >= 148 && k < 156) ? ' ' : h[k];
        }
        return stored == unsigned || stored == signed;
    }

    static String baseName(Path p) {
        Path f = p.toAbsolutePath().normalize().getFileName();
        String n = f == null ? "image" : f.toString();
        String lower = n.toLowerCase(java.util.Locale.ROOT);
        for (String ext : new String[]{".tar.gz", ".tar.zst", ".tar.zstd", ".oci.tar", ".tgz", ".tzst", ".tar", ".gz", ".zst", ".oci"}) {
            if (lower.endsWith(ext) && lower.length() > ext.length()) return n.substring(0, n.length() - ext.length());
        }
        return n;
    }
}
