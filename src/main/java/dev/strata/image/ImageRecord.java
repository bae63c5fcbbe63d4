package dev.strata.image;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.List;

/**
 * An image in the store, as written to {@code STORE/images/<id hex>.json}. {@link #layers} are in
 * image order, <b>bottom (base) layer first</b>, as in the manifest and in the config's
 * {@code rootfs.diff_ids}; a mount wants them reversed (see {@link ImageStore#lowerDirsTopFirst}).
 */
public final class ImageRecord {
    public int schemaVersion = 1;
    /** sha256 of the image config ("sha256:..."), as docker reports image ids. */
    public String id;
    /** NAME:TAG labels pointing at this image (empty for an image whose names moved elsewhere). */
    public List<String> names = new ArrayList<>();
    /** The manifest's digest, when the source had a manifest (OCI); null for docker archives and layer tars. */
    public String manifestDigest;
    /** "OCI layout", "OCI archive", "docker archive" or "layer tar". */
    public String format;
    public String source;
    public String platform;
    /** When it was imported (ISO-8601). */
    public String imported;
    public List<Layer> layers = new ArrayList<>();
    /** The image config (entrypoint, cmd, env, workdir, history...), as in the source. */
    public JsonNode config;
    public JsonNode manifest;

    /** One layer of the image. */
    public static final class Layer {
        /** sha256 of the uncompressed tar: the key of the layer in the store. */
        public String diffId;
        /** sha256 of the blob as stored in the source (compressed or not). */
        public String digest;
        public String mediaType;
        /** Blob size in the source. */
        public long blobSize = -1;
        /** Uncompressed tar size. */
        public long tarSize = -1;
        /** Bytes of file content once extracted. */
        public long contentSize = -1;
    }

    public ImageRecord() {}
}
