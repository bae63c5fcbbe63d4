package dev.strata.image;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Raw PAX extended-header records ({@code "%d %s=%s\n"}), keys as Latin-1 strings and values as the
 * exact bytes. commons-compress decodes values as UTF-8, which corrupts binary xattr values and names
 * that are not UTF-8; strata reads path, linkpath and xattrs from these raw records instead.
 */
final class PaxRecords {
    private PaxRecords() {}

    static final String SCHILY_XATTR = "SCHILY.xattr.";
    static final String LIBARCHIVE_XATTR = "LIBARCHIVE.xattr.";

    /** Parses a PAX header block; malformed records are an ImageException. */
    static Map<String, byte[]> parse(byte[] b, int len) {
        Map<String, byte[]> out = new LinkedHashMap<>();
        int pos = 0;
        while (pos < len) {
            if (b[pos] == 0) break; // padding some writers leave
            int sp = pos;
            long recLen = 0;
            while (sp < len && b[sp] >= '0' && b[sp] <= '9') {
                recLen = recLen * 10 + (b[sp] - '0');
                if (recLen > len) throw new ImageException("corrupt PAX header: record longer than the header");
                sp++;
            }
            if (sp == pos || sp >= len || b[sp] != ' ') throw new ImageException("corrupt PAX header: bad record length");
            int end = pos + (int) recLen;
            if (recLen < 5 || end > len || b[end - 1] != '\n') throw new ImageException("corrupt PAX header: bad record");
            int eq = -1;
            for (int i = sp + 1; i < end - 1; i++) if (b[i] == '=') { eq = i; break; }
            if (eq < 0) throw new ImageException("corrupt PAX header: record without '='");
            String key = new String(b, sp + 1, eq - sp - 1, StandardCharsets.ISO_8859_1);
            byte[] value = new byte[end - 1 - (eq + 1)];
            System.arraycopy(b, eq + 1, value, 0, value.length);
            out.put(key, value);
            pos = end;
        }
        return out;
    }

    /**
     * The xattrs in a record map: {@code SCHILY.xattr.NAME=raw bytes} (GNU tar, Go, commons-compress)
     * and {@code LIBARCHIVE.xattr.URLENCODED-NAME=base64} (bsdtar); SCHILY wins when both name one xattr.
     */
    static void xattrs(Map<String, byte[]> records, Map<String, byte[]> into) {
        for (Map.Entry<String, byte[]> e : records.entrySet()) {
            String k = e.getKey();
            if (k.startsWith(LIBARCHIVE_XATTR) && k.length() > LIBARCHIVE_XATTR.length()) {
                String name = percentDecode(k.substring(LIBARCHIVE_XATTR.length()));
                try {
                    String v = new String(e.getValue(), StandardCharsets.ISO_8859_1).trim();
                    into.putIfAbsent(name, Base64.getMimeDecoder().decode(v));
                } catch (IllegalArgumentException ex) {
                    throw new ImageException("corrupt PAX header: bad base64 in " + Digest.clip(k));
                }
            }
        }
        for (Map.Entry<String, byte[]> e : records.entrySet()) {
            String k = e.getKey();
            if (k.startsWith(SCHILY_XATTR) && k.length() > SCHILY_XATTR.length()) {
                into.put(k.substring(SCHILY_XATTR.length()), e.getValue());
            }
        }
    }

    private static String percentDecode(String s) {
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '%' && i + 2 < s.length()) {
                int hi = Character.digit(s.charAt(i + 1), 16), lo = Character.digit(s.charAt(i + 2), 16);
                if (hi >= 0 && lo >= 0) {
                    o.write(hi * 16 + lo);
                    i += 2;
                    continue;
                }
            }
            o.write(c & 0xff);
        }
        return new String(o.toByteArray(), StandardCharsets.ISO_8859_1);
    }
}
