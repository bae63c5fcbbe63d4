package dev.strata.image;

import java.util.regex.Pattern;

/**
 * A local image name, {@code NAME[:TAG]} ({@code :latest} when no tag is given). NAME may carry a
 * registry host with a port ({@code localhost:5000/app}); the tag is what follows the last ':' after
 * the last '/'. Names are local labels: nothing is normalised against a registry.
 */
public final class ImageRef {
    private static final Pattern NAME = Pattern.compile(
            "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*");
    private static final Pattern TAG = Pattern.compile("[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");

    private final String name, tag;

    private ImageRef(String name, String tag) { this.name = name; this.tag = tag; }

    /** Parses NAME[:TAG]; a bad name is an ImageException saying what is allowed. */
    public static ImageRef parse(String s) {
        ImageRef r = tryParse(s);
        if (r == null) {
            throw new ImageException("invalid image name '" + Digest.clip(String.valueOf(s)) + "': use NAME[:TAG] with"
                    + " lowercase letters, digits and . _ - / in NAME (e.g. alpine:3.19)");
        }
        return r;
    }

    /** Parses NAME[:TAG], or returns null. */
    public static ImageRef tryParse(String s) {
        if (s == null || s.isEmpty() || s.contains("@")) return null;
        int slash = s.lastIndexOf('/');
        int colon = s.lastIndexOf(':');
        String name = s, tag = "latest";
        if (colon > slash) { name = s.substring(0, colon); tag = s.substring(colon + 1); }
        if (!NAME.matcher(name).matches() || !TAG.matcher(tag).matches()) return null;
        return new ImageRef(name, tag);
    }

    /** A valid name made from arbitrary text (a file name): lowercased, other characters become '-'. */
    static String sanitizeName(String s) {
        String n = s.toLowerCase(java.util.Locale.ROOT).replaceAll("[^a-z0-9._-]+", "-")
                .replaceAll("^[^a-z0-9]+", "").replaceAll("[^a-z0-9]+$", "").replaceAll("[._-]{2,}", "-");
        return n.isEmpty() ? "image" : n;
    }

    public String name() { return name; }
    public String tag() { return tag; }
    @Override public String toString() { return name + ":" + tag; }
    @Override public boolean equals(Object o) {
        return o instanceof ImageRef && ((ImageRef) o).name.equals(name) && ((ImageRef) o).tag.equals(tag);
    }
    @Override public int hashCode() { return name.hashCode() * 31 + tag.hashCode(); }
}
