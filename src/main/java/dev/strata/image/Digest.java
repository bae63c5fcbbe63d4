package dev.strata.image;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.regex.Pattern;

/** A content digest, {@code sha256:<64 lowercase hex>} (the only algorithm image layouts use in practice). */
public final class Digest {
    private static final Pattern HEX = Pattern.compile("[0-9a-f]{64}");
    private final String hex;

    private Digest(String hex) { this.hex = hex; }

    /** Parses "sha256:hex"; anything else is an ImageException naming {@code what}. */
    public static Digest parse(String s, String what) {
        if (s == null) throw new ImageException(what + ": missing digest");
        int c = s.indexOf(':');
        if (c < 0) throw new ImageException(what + ": invalid digest '" + clip(s) + "'");
        String alg = s.substring(0, c), hex = s.substring(c + 1);
        if (!alg.equals("sha256")) {
            throw new ImageException(what + ": unsupported digest algorithm '" + clip(alg) + "' (only sha256)");
        }
        if (!HEX.matcher(hex).matches()) throw new ImageException(what + ": invalid digest '" + clip(s) + "'");
        return new Digest(hex);
    }

    public static Digest parse(String s) { return parse(s, "digest"); }

    /** A digest from its 64 hex characters, or null if it is not one. */
    public static Digest ofHexOrNull(String hex) {
        return hex != null && HEX.matcher(hex).matches() ? new Digest(hex) : null;
    }

    /** The sha256 of some bytes. */
    public static Digest of(byte[] data) { return new Digest(toHex(sha256().digest(data))); }

    /** Finishes a running sha256 (resets it). */
    static Digest of(MessageDigest md) { return new Digest(toHex(md.digest())); }

    public static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static String toHex(byte[] b) {
        char[] out = new char[b.length * 2];
        final char[] digits = "0123456789abcdef".toCharArray();
        for (int i = 0; i < b.length; i++) {
            out[2 * i] = digits[(b[i] >> 4) & 15];
            out[2 * i + 1] = digits[b[i] & 15];
        }
        return new String(out);
    }

    public String hex() { return hex; }
    /** The first 12 hex characters, as image ids are usually shown. */
    public String shortHex() { return hex.substring(0, 12); }
    @Override public String toString() { return "sha256:" + hex; }
    @Override public boolean equals(Object o) { return o instanceof Digest && ((Digest) o).hex.equals(hex); }
    @Override public int hashCode() { return hex.hashCode(); }

    static String clip(String s) { return s.length() > 80 ? s.substring(0, 77) + "..." : s; }
}
