package dev.strata.image;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.Locale;

/** An image platform, {@code os/arch[/variant]} as in OCI indexes and image configs. */
public final class Platform {
    public static final Platform DEFAULT = new Platform("linux", "amd64", null);

    private final String os, arch, variant;

    Platform(String os, String arch, String variant) {
        this.os = os;
        this.arch = normArch(arch);
        this.variant = variant == null || variant.isEmpty() ? null : variant;
    }

    /** Parses "os/arch[/variant]" (the --platform option). */
    public static Platform parse(String s) {
        String[] p = s.split("/", -1);
        if (p.length < 2 || p.length > 3 || p[0].isEmpty() || p[1].isEmpty() || (p.length == 3 && p[2].isEmpty())) {
            throw new ImageException("invalid platform '" + Digest.clip(s) + "': use os/arch[/variant], e.g. linux/arm64");
        }
        return new Platform(p[0].toLowerCase(Locale.ROOT), p[1].toLowerCase(Locale.ROOT), p.length == 3 ? p[2] : null);
    }

    /** From an OCI descriptor's "platform" object or an image config (os, architecture, variant); null if absent. */
    static Platform fromJson(JsonNode n) {
        if (n == null || !n.hasNonNull("os") || !n.hasNonNull("architecture")) return null;
        return new Platform(n.get("os").asText(), n.get("architecture").asText(),
                n.hasNonNull("variant") ? n.get("variant").asText() : null);
    }

    private static String normArch(String a) {
        switch (a) {
            case "x86_64": case "x86-64": return "amd64";
            case "aarch64": return "arm64";
            case "i386": case "i686": return "386";
            default: return a;
        }
    }

    public String os() { return os; }
    public String arch() { return arch; }
    public String variant() { return variant; }

    /** True for "unknown/unknown" entries (build attestations in buildx indexes). */
    boolean isUnknown() { return os.equals("unknown") || arch.equals("unknown"); }

    /**
     * Whether an image of platform {@code have} satisfies this wanted platform: same os and arch, and the
     * same variant when one is asked for (arm64 without variant counts as v8).
     */
    boolean accepts(Platform have) {
        if (have == null || !os.equals(have.os) || !arch.equals(have.arch)) return false;
        if (variant == null) return true;
        return normVariant(variant).equals(normVariant(have.variant));
    }

    private String normVariant(String v) {
        if (v == null) return arch.equals("arm64") ? "v8" : "";
        return v;
    }

    @Override public String toString() { return os + "/" + arch + (variant == null ? "" : "/" + variant); }
    @Override public boolean equals(Object o) { return o instanceof Platform && o.toString().equals(toString()); }
    @Override public int hashCode() { return toString().hashCode(); }
}
