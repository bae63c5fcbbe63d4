package dev.strata.image;

import com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads an OCI image layout (index.json, blobs/sha256/...), as a directory or inside an archive:
 * follows nested indexes (manifest lists), picks one image by ref and platform, and verifies the
 * digest and size of every JSON blob it reads. Layer blobs are verified later, while streaming.
 */
final class OciReader {
    static final String OCI_INDEX = "application/vnd.oci.image.index.v1+json";
    static final String DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
    static final String OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
    static final String DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
    static final String OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
    static final String DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json";
    static final String REF_NAME = "org.opencontainers.image.ref.name";
    static final String CONTAINERD_NAME = "io.containerd.image.name";

    static final long MAX_INDEX = 16 << 20, MAX_MANIFEST = 16 << 20, MAX_CONFIG = 64 << 20;

    private final SourceFiles files;
    private final String label;

    private static final class Candidate {
        final JsonNode desc;
        final String refName, fullName;
        Platform platform;
        Candidate(JsonNode desc, String refName, String fullName, Platform platform) {
            this.desc = desc; this.refName = refName; this.fullName = fullName; this.platform = platform;
        }
        String ref() { return fullName != null ? fullName : refName; }
    }

    private OciReader(SourceFiles files, String label) {
        this.files = files;
        this.label = label;
    }

    /** Chooses and reads one image; {@code baseName} names it when the layout only gives a tag. */
    static SourceImage read(SourceFiles files, String label, String wantRef, Platform wantPlatform, String baseName,
                            SourceImage into) throws IOException {
        return new OciReader(files, label).read(wantRef, wantPlatform, baseName, into);
    }

    private SourceImage read(String wantRef, Platform wantPlatform, String baseName, SourceImage img) throws IOException {
        if (!files.exists("index.json")) throw new ImageException(label + ": not an OCI image layout (no index.json)");
        JsonNode index = Json.parse(Json.readCapped(files.open("index.json"), MAX_INDEX, files.describe("index.json")),
                files.describe("index.json"));
        if (files.exists("oci-layout")) {
            JsonNode lay = Json.parse(Json.readCapped(files.open("oci-layout"), 1 << 16, files.describe("oci-layout")),
                    files.describe("oci-layout"));
            String v = Json.text(lay, "imageLayoutVersion");
            if (v != null && !v.startsWith("1.")) {
                throw new ImageException(label + ": unsupported OCI layout version " + v);
            }
        }
        List<Candidate> cands = new ArrayList<>();
        collect(index, null, null, cands, 0);
        if (cands.isEmpty()) throw new ImageException(label + ": the OCI layout holds no image manifest");

        Set<String> refs = new LinkedHashSet<>();
        for (Candidate c : cands) if (c.ref() != null) refs.add(c.ref());
        if (wantRef != null) {
            List<Candidate> m = new ArrayList<>();
            for (Candidate c : cands) if (refMatches(c, wantRef)) m.add(c);
            if (m.isEmpty()) {
                throw new ImageException(label + ": no image '" + wantRef + "' in it"
                        + (refs.isEmpty() ? " (its images have no names)" : " (it has: " + String.join(", ", refs) + ")"));
            }
            cands = m;
        } else if (refs.size() > 1) {
            throw new ImageException(label + " holds several images (" + String.join(", ", refs) + "): choose one with --ref");
        }

        Candidate chosen = choosePlatform(cands, wantPlatform);
        Digest md = Digest.parse(Json.text(chosen.desc, "digest"), label + ": manifest descriptor");
        byte[] mbytes = readBlob(chosen.desc, MAX_MANIFEST, "manifest");
        JsonNode manifest = Json.parse(mbytes, label + ": manifest " + md);
        String mt = Json.text(manifest, "mediaType");
        if (manifest.has("manifests")) throw new ImageException(label + ": manifest " + md + " is an index, not an image");
        if (mt != null && !mt.equals(OCI_MANIFEST) && !mt.equals(DOCKER_MANIFEST)) {
            throw new ImageException(label + ": manifest " + md + " has unsupported type " + mt);
        }
        JsonNode cdesc = manifest.get("config");
        if (cdesc == null || !cdesc.isObject()) throw new ImageException(label + ": manifest " + md + " has no config");
        String ct = Json.text(cdesc, "mediaType");
        if (ct != null && !ct.equals(OCI_CONFIG) && !ct.equals(DOCKER_CONFIG)) {
            throw new ImageException(label + ": " + md + " is not a container image (config type " + ct + ")");
        }
        byte[] cbytes = readBlob(cdesc, MAX_CONFIG, "config");
        JsonNode config = Json.parse(cbytes, label + ": image config");
        List<Digest> diffIds = diffIds(config, label);
        JsonNode layers = manifest.get("layers");
        if (layers == null || !layers.isArray()) throw new ImageException(label + ": manifest " + md + " has no layer list");
        if (layers.size() != diffIds.size()) {
            throw new ImageException(label + ": manifest lists " + layers.size() + " layers but the config has "
                    + diffIds.size() + " diff_ids");
        }

        img.manifestDigest = md;
        img.manifest = manifest;
        img.configBytes = cbytes;
        img.config = config;
        img.platform = Platform.fromJson(config);
        if (img.platform == null) img.platform = chosen.platform;
        for (int i = 0; i < layers.size(); i++) {
            JsonNode l = layers.get(i);
            String lt = Json.text(l, "mediaType");
            if (lt != null && (lt.contains("encrypted") || !(lt.contains(".tar") || lt.contains("layer")))) {
                throw new ImageException(label + ": layer " + (i + 1) + " has unsupported type " + lt);
            }
            Digest d = Digest.parse(Json.text(l, "digest"), label + ": layer " + (i + 1));
            String path = blobPath(d);
            if (!files.exists(path)) {
                boolean foreign = lt != null && (lt.contains("foreign") || lt.contains("nondistributable"));
                throw new ImageException(label + ": layer " + (i + 1) + " blob " + d + " is missing"
                        + (foreign ? " (a non-distributable layer that the layout does not include)" : ""));
            }
            long size = l.has("size") ? l.get("size").asLong(-1) : -1;
            img.layers.add(new SourceImage.LayerBlob(d, size, diffIds.get(i), lt, () -> files.open(path), files.describe(path)));
        }
        if (chosen.fullName != null && ImageRef.tryParse(chosen.fullName) != null) {
            img.names.add(ImageRef.parse(chosen.fullName).toString());
        } else if (chosen.refName != null) {
            ImageRef r = chosen.refName.contains(":") || chosen.refName.contains("/")
                    ? ImageRef.tryParse(chosen.refName) : ImageRef.tryParse(baseName + ":" + chosen.refName);
            if (r != null) img.names.add(r.toString());
        }
        return img;
    }

    private static boolean refMatches(Candidate c, String want) {
        if (want.equals(c.refName) || want.equals(c.fullName)) return true;
        ImageRef w = ImageRef.tryParse(want), f = c.fullName == null ? null : ImageRef.tryParse(c.fullName);
        return w != null && f != null && w.equals(f);
    }

    private void collect(JsonNode index, String refName, String fullName, List<Candidate> out, int depth) throws IOException {
        if (depth > 4) throw new ImageException(label + ": indexes nested too deeply");
        JsonNode ms = index.get("manifests");
        if (ms == null || !ms.isArray()) throw new ImageException(label + ": index has no manifest list");
        for (JsonNode d : ms) {
            JsonNode ann = d.get("annotations");
            String rn = ann != null && ann.hasNonNull(REF_NAME) ? ann.get(REF_NAME).asText() : refName;
            String fn = ann != null && ann.hasNonNull(CONTAINERD_NAME) ? ann.get(CONTAINERD_NAME).asText() : fullName;
            String mt = Json.text(d, "mediaType");
            if (OCI_INDEX.equals(mt) || DOCKER_LIST.equals(mt)) {
                byte[] b = readBlob(d, MAX_INDEX, "index");
                collect(Json.parse(b, label + ": index " + Json.text(d, "digest")), rn, fn, out, depth + 1);
            } else if (mt == null || OCI_MANIFEST.equals(mt) || DOCKER_MANIFEST.equals(mt)) {
                if (ann != null && "attestation-manifest".equals(Json.text(ann, "vnd.docker.reference.type"))) continue;
                out.add(new Candidate(d, rn, fn, Platform.fromJson(d.get("platform"))));
            }
        }
    }

    private Candidate choosePlatform(List<Candidate> cands, Platform want) throws IOException {
        List<Candidate> known = new ArrayList<>();
        for (Candidate c : cands) if (c.platform == null || !c.platform.isUnknown()) known.add(c);
        if (!known.isEmpty()) cands = known;
        if (cands.size() == 1 && want == null) return cands.get(0);
        Platform w = want != null ? want : Platform.DEFAULT;
        Map<String, Candidate> seen = new LinkedHashMap<>();
        for (Candidate c : cands) {
            if (c.platform == null) c.platform = platformFromConfig(c.desc);
            if (w.accepts(c.platform)) return c;
            seen.put(String.valueOf(c.platform), c);
        }
        throw new ImageException(label + ": no image for " + w + " (it has: " + String.join(", ", seen.keySet())
                + "); choose one with --platform");
    }

    private Platform platformFromConfig(JsonNode desc) throws IOException {
        JsonNode m = Json.parse(readBlob(desc, MAX_MANIFEST, "manifest"), label + ": manifest");
        JsonNode cd = m.get("config");
        if (cd == null) return null;
        return Platform.fromJson(Json.parse(readBlob(cd, MAX_CONFIG, "config"), label + ": image config"));
    }

    static String blobPath(Digest d) { return "blobs/sha256/" + d.hex(); }

    /** Reads a JSON blob named by a descriptor and checks its size and digest. */
    private byte[] readBlob(JsonNode desc, long max, String what) throws IOException {
        Digest d = Digest.parse(Json.text(desc, "digest"), label + ": " + what + " descriptor");
        String path = blobPath(d);
        if (!files.exists(path)) throw new ImageException(label + ": " + what + " blob " + d + " is missing");
        byte[] b = Json.readCapped(files.open(path), max, files.describe(path));
        Digest got = Digest.of(b);
        if (!got.equals(d)) {
            throw new ImageException(label + ": " + what + " blob " + d + " is corrupt (its content hashes to " + got + ")");
        }
        long size = desc.has("size") ? desc.get("size").asLong(-1) : -1;
        if (size >= 0 && size != b.length) {
            throw new ImageException(label + ": " + what + " blob " + d + " is " + b.length + " bytes, the descriptor says " + size);
        }
        return b;
    }

    /** The config's rootfs.diff_ids, in order (bottom layer first). */
    static List<Digest> diffIds(JsonNode config, String label) {
        JsonNode rootfs = config.get("rootfs");
        JsonNode ids = rootfs == null ? null : rootfs.get("diff_ids");
        if (ids == null || !ids.isArray()) throw new ImageException(label + ": image config has no rootfs.diff_ids");
        List<Digest> out = new ArrayList<>();
        for (JsonNode n : ids) out.add(Digest.parse(n.asText(), label + ": config diff_id"));
        return out;
    }
}
