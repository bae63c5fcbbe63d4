package dev.strata.image;

import java.util.Locale;

/** Human-readable sizes (binary units) and size parsing for options. */
public final class Human {
    private Human() {}

    private static final String[] UNITS = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};

    public static String bytes(long n) {
        if (n < 0) return "?";
        if (n < 1024) return n + " B";
        double v = n;
        int u = 0;
        while (v >= 1024 && u < UNITS.length - 1) { v /= 1024; u++; }
        return String.format(Locale.ROOT, v >= 100 ? "%.0f %s" : "%.1f %s", v, UNITS[u]);
    }

    /** Parses "123", "10K", "1.5G", "2GiB", "512MB" (binary multiples); throws ImageException otherwise. */
    public static long parseBytes(String s) {
        String t = s.trim().toUpperCase(Locale.ROOT);
        if (t.endsWith("IB")) t = t.substring(0, t.length() - 2);
        else if (t.endsWith("B")) t = t.substring(0, t.length() - 1);
        long mul = 1;
        if (!t.isEmpty()) {
            int k = "KMGTPE".indexOf(t.charAt(t.length() - 1));
            if (k >= 0) { mul = 1L << (10 * (k + 1)); t = t.substring(0, t.length() - 1); }
        }
        try {
            double v = Double.parseDouble(t);
            if (v < 0 || Double.isNaN(v) || v * mul > Long.MAX_VALUE || !t.matches("[0-9]+(\\.[0-9]+)?")) throw new NumberFormatException();
            return (long) (v * mul);
        } catch (NumberFormatException e) {
            throw new ImageException("invalid size '" + Digest.clip(s) + "' (e.g. 500M, 20G)");
        }
    }
}
