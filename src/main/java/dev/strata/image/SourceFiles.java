package dev.strata.image;

import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;

/** The files of an image source: a directory (OCI layout, unpacked docker archive) or a tar of one. */
interface SourceFiles extends Closeable {
    /** Whether a regular file (following the source's own symlinks, within the source) exists at rel. */
    boolean exists(String rel);

    /** The size of the file at rel, or -1 if unknown; the file must exist. */
    long size(String rel) throws IOException;

    /** Opens the file at rel; ImageException if it is missing. */
    InputStream open(String rel) throws IOException;

    /** How to name rel in a message ("SOURCE/blobs/sha256/ab..", or "blobs/sha256/ab.. in SOURCE"). */
    String describe(String rel);

    @Override default void close() throws IOException {}

    /** A relative path inside a source, cleaned; absolute names and '..' are refused. */
    static String clean(String rel, String source) {
        if (rel == null || rel.isEmpty() || rel.indexOf('\0') >= 0 || rel.startsWith("/")) {
            throw new ImageException(source + ": invalid path '" + Digest.clip(String.valueOf(rel)) + "' in the image metadata");
        }
        StringBuilder sb = new StringBuilder();
        for (String c : rel.split("/")) {
            if (c.isEmpty() || c.equals(".")) continue;
            if (c.equals("..")) throw new ImageException(source + ": path '" + Digest.clip(rel) + "' in the image metadata leaves the source");
            if (sb.length() > 0) sb.append('/');
            sb.append(c);
        }
        if (sb.length() == 0) throw new ImageException(source + ": invalid path '" + Digest.clip(rel) + "' in the image metadata");
        return sb.toString();
    }
}
