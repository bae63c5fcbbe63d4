package dev.strata.posix;

import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;

/**
 * Names are bytes. Inside strata a name or path is a Java String with one char per byte (ISO-8859-1),
 * which is what the native calls and libfuse see. Strings that come from the command line or NIO are
 * real Unicode text decoded with the platform's file-name charset (sun.jnu.encoding); these convert
 * between the two.
 */
public final class Names {
    private Names() {}

    private static final Charset JNU = jnu();

    private static Charset jnu() {
        try {
            return Charset.forName(System.getProperty("sun.jnu.encoding", "UTF-8"));
        } catch (RuntimeException e) {
            return StandardCharsets.UTF_8;
        }
    }

    /** Text (as the command line or NIO gave it) to the byte string the native calls take. */
    public static String toNative(String text) {
        if (isAscii(text)) return text;
        return new String(text.getBytes(JNU), StandardCharsets.ISO_8859_1);
    }

    /** A native byte string back to text for messages and NIO. */
    public static String toText(String nativeName) {
        if (isAscii(nativeName)) return nativeName;
        return new String(nativeName.getBytes(StandardCharsets.ISO_8859_1), JNU);
    }

    private static boolean isAscii(String s) {
        for (int i = 0; i < s.length(); i++) if (s.charAt(i) >= 0x80) return false;
        return true;
    }
}
