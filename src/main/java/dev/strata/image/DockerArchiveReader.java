package dev.strata.image;

import com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reads a docker archive ({@code docker save}, {@code skopeo copy ... docker-archive:}): manifest.json
 * lists each image's config file, tags and layer files. Digests are checked where the archive names
 * files by digest (config {@code <hex>.json}, {@code blobs/sha256/<hex>} in docker 25+); every layer is
 * checked against the config's diff_ids while it is extracted.
 */
final class DockerArchiveReader {
    private DockerArchiveReader() {}

    private static final Pattern BY_DIGEST = Pattern.compile("(?:.*/)?(?:blobs/sha256/)?([0-9a-f]{64})(?:\\.json)?");
    private static final Pattern BLOB = Pattern.compile("(?:.*/)?blobs/sha256/([0-9a-f]{64})");

    static SourceImage read(SourceFiles files, String label, String wantRef, Platform wantPlatform, SourceImage img)
            throws IOException {
        JsonNode manifest = Json.parse(Json.readCapped(files.open("manifest.json"), OciReader.MAX_INDEX,
                files.describe("manifest.json")), files.describe("manifest.json"));
        if (!manifest.isArray() || manifest.size() == 0) {
            throw new ImageException(label + ": manifest.json lists no image");
        }
        List<String> all = new ArrayList<>();
        JsonNode chosen = null;
        for (JsonNode e : manifest) {
            List<String> tags = tags(e);
            all.addAll(tags);
            if (wantRef != null && matches(tags, wantRef) && chosen == null) chosen = e;
        }
        if (wantRef != null && chosen == null) {
            throw new ImageException(label + ": no image '" + wantRef + "' in it"
                    + (all.isEmpty() ? " (its images have no tags)" : " (it has: " + String.join(", ", all) + ")"));
        }
        if (chosen == null) {
            if (manifest.size() > 1) {
                throw new ImageException(label + " holds " + manifest.size() + " images"
                        + (all.isEmpty() ? "" : " (" + String.join(", ", all) + ")") + ": choose one with --ref");
            }
            chosen = manifest.get(0);
        }
        String configPath = Json.text(chosen, "Config");
        if (configPath == null) throw new ImageException(label + ": manifest.json has an image without Config");
        byte[] cbytes = Json.readCapped(files.open(configPath), OciReader.MAX_CONFIG, files.describe(configPath));
        Digest cd = Digest.of(cbytes);
        Matcher m = BY_DIGEST.matcher(configPath);
        if (m.matches() && !m.group(1).equals(cd.hex())) {
            throw new ImageException(label + ": config " + configPath + " is corrupt (its content hashes to " + cd + ")");
        }
        JsonNode config = Json.parse(cbytes, files.describe(configPath));
        List<Digest> diffIds = OciReader.diffIds(config, label);
        JsonNode layers = chosen.get("Layers");
        if (layers == null || !layers.isArray()) throw new ImageException(label + ": manifest.json has an image without Layers");
        if (layers.size() != diffIds.size()) {
            throw new ImageException(label + ": manifest.json lists " + layers.size() + " layers but the config has "
                    + diffIds.size() + " diff_ids");
        }
        Platform p = Platform.fromJson(config);
        if (wantPlatform != null && !wantPlatform.accepts(p)) {
            throw new ImageException(label + ": the image is for " + p + ", not " + wantPlatform);
        }
        img.configBytes = cbytes;
        img.config = config;
        img.platform = p;
        for (int i = 0; i < layers.size(); i++) {
            String path = layers.get(i).asText();
            if (!files.exists(path)) throw new ImageException(label + ": layer " + (i + 1) + " (" + Digest.clip(path) + ") is missing");
            Matcher bm = BLOB.matcher(path);
            Digest d = bm.matches() ? Digest.ofHexOrNull(bm.group(1)) : null;
            img.layers.add(new SourceImage.LayerBlob(d, files.size(path), diffIds.get(i), null, () -> files.open(path),
                    files.describe(path)));
        }
        for (String t : tags(chosen)) if (ImageRef.tryParse(t) != null) img.names.add(ImageRef.parse(t).toString());
        return img;
    }

    private static List<String> tags(JsonNode e) {
        List<String> out = new ArrayList<>();
        JsonNode t = e.get("RepoTags");
        if (t != null && t.isArray()) for (JsonNode n : t) out.add(n.asText());
        return out;
    }

    private static boolean matches(List<String> tags, String want) {
        ImageRef w = ImageRef.tryParse(want);
        for (String t : tags) {
            if (t.equals(want)) return true;
            ImageRef r = ImageRef.tryParse(t);
            if (w != null && w.equals(r)) return true;
        }
        return false;
    }
}
