package dev.strata.image;

import com.fasterxml.jackson.databind.JsonNode;

import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;

/** One image chosen from a source: its metadata (already verified) and its layer blobs, bottom first. */
final class SourceImage implements Closeable {
    /** How to read one layer blob. */
    interface Opener { InputStream open() throws IOException; }

    static final class LayerBlob {
        /** Expected blob digest, or null when the source does not say (docker archives, layer tars). */
        final Digest digest;
        /** Expected blob size, or -1. */
        final long size;
        /** Expected diff_id (uncompressed digest), or null for a single layer tar. */
        final Digest diffId;
        final String mediaType;
        final Opener opener;
        /** The blob for messages. */
        final String label;

        LayerBlob(Digest digest, long size, Digest diffId, String mediaType, Opener opener, String label) {
            this.digest = digest; this.size = size; this.diffId = diffId; this.mediaType = mediaType;
            this.opener = opener; this.label = label;
        }
    }

    String format;
    String description;
    Digest manifestDigest;
    JsonNode manifest;
    byte[] configBytes;
    JsonNode config;
    Platform platform;
    final List<String> names = new ArrayList<>();
    final List<LayerBlob> layers = new ArrayList<>();
    final List<Closeable> resources = new ArrayList<>();

    @Override public void close() throws IOException {
        IOException first = null;
        for (int i = resources.size() - 1; i >= 0; i--) { // last opened, first closed
            try {
                resources.get(i).close();
            } catch (IOException e) {
                if (first == null) first = e;
            }
        }
        if (first != null) throw first;
    }
}
