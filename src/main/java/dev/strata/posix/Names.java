package dev.strata.posix;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.Charset;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Base64;

/**
 * Names are bytes. Inside strata a name or path is a Java string holding one char per byte
 * (ISO-8859-1, see the launcher), which is what the native calls and libfuse see. Strings that come
 * from the command line or NIO are real Unicode text decoded with the platform's file-name charset
 * ({@code sun.jnu.encoding}): {@link #toNative}, {@link #toText} and {@link #fromArgument} convert
 * between the two. This class also turns byte strings into text for people and tools.
 *
 * <p><b>Terminal</b> ({@link #display}): printable ASCII is shown as is; a backslash is doubled; tab,
 * newline and carriage return are shown as {@code \t \n \r}; a valid UTF-8 sequence of a printable
 * character is passed through as its original bytes (so a UTF-8 terminal shows it); every other byte
 * (control characters, invalid UTF-8, Unicode format and line/paragraph separator characters such as
 * bidi overrides) is shown as {@code \xNN}. The result is again a byte string: print it through a
 * byte-transparent (ISO-8859-1) stream, as the inspect package's Out does.
 *
 * <p><b>JSON</b> ({@link #jsonText}, {@link #jsonBytes}): a name whose bytes are valid UTF-8 is
 * written as that text (JSON escapes control characters itself), exactly. A name that is not valid
 * UTF-8 is written in its terminal form (above), and the same object carries a sibling field
 * {@code <field>_b64} with the raw bytes in base64; a tool that needs the exact bytes uses that field
 * when it is present.
 */
public final class Names {
    private Names() {}

    public static byte[] bytes(String s) { return s.getBytes(StandardCharsets.ISO_8859_1); }

    /**
     * The charset the JVM decoded the command line and encodes NIO paths with ({@code sun.jnu.encoding}).
     * The launcher asks for ISO-8859-1, but JDK 17 takes it from the locale (UTF-8 on most systems).
     */
    static final Charset PLATFORM = platform();

    private static Charset platform() {
        try {
            return Charset.forName(System.getProperty("sun.jnu.encoding", "UTF-8"));
        } catch (RuntimeException e) {
            return StandardCharsets.UTF_8;
        }
    }

    /**
     * The byte string of a command-line argument. The JVM decoded the argument with {@link #PLATFORM};
     * where that lost bytes (a name that is not valid in it), the raw bytes are taken from
     * /proc/self/cmdline (the entry that decodes to the same text, or its part after "=" for
     * {@code --option=value}).
     */
    public static String fromArgument(String arg) {
        if (PLATFORM.equals(StandardCharsets.ISO_8859_1)) return arg;
        if (arg.indexOf('\uFFFD') < 0 && PLATFORM.newEncoder().canEncode(arg)) {
            return new String(arg.getBytes(PLATFORM), StandardCharsets.ISO_8859_1);
        }
        try {
            byte[] all = Files.readAllBytes(Path.of("/proc/self/cmdline"));
            int start = 0;
            for (int i = 0; i <= all.length; i++) {
                if (i < all.length && all[i] != 0) continue;
                byte[] entry = Arrays.copyOfRange(all, start, i);
                start = i + 1;
                if (new String(entry, PLATFORM).equals(arg)) return new String(entry, StandardCharsets.ISO_8859_1);
                for (int k = 0; k < entry.length; k++) {
                    if (entry[k] != '=') continue;
                    byte[] tail = Arrays.copyOfRange(entry, k + 1, entry.length);
                    if (new String(tail, PLATFORM).equals(arg)) return new String(tail, StandardCharsets.ISO_8859_1);
                    break;
                }
            }
        } catch (IOException | RuntimeException e) {
            // fall through: keep what the JVM decoded
        }
        return new String(arg.getBytes(PLATFORM), StandardCharsets.ISO_8859_1);
    }

    /** Text (as the command line or NIO gave it) to the byte string the native calls take. */
    public static String toNative(String text) {
        if (isAscii(text)) return text;
        return new String(text.getBytes(PLATFORM), StandardCharsets.ISO_8859_1);
    }

    /** A native byte string back to text for messages and NIO. */
    public static String toText(String nativeName) {
        if (isAscii(nativeName)) return nativeName;
        return new String(nativeName.getBytes(StandardCharsets.ISO_8859_1), PLATFORM);
    }

    private static boolean isAscii(String s) {
        for (int i = 0; i < s.length(); i++) if (s.charAt(i) >= 0x80) return false;
        return true;
    }

    /** The byte string of some Unicode text encoded as UTF-8 (e.g. text read from a JSON file). */
    public static String fromUnicode(String text) {
        return new String(text.getBytes(StandardCharsets.UTF_8), StandardCharsets.ISO_8859_1);
    }

    /** True when the bytes of {@code s} are valid UTF-8. */
    public static boolean isUtf8(String s) {
        for (int i = 0; i < s.length(); i++) if (s.charAt(i) >= 0x80) return decode(s) != null;
        return true;
    }

    /** The bytes of {@code s} decoded as UTF-8, or null when they are not valid UTF-8. */
    public static String decode(String s) {
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes(s))).toString();
        } catch (CharacterCodingException e) {
            return null;
        }
    }

    /** The text to put in a JSON string field for this name (see the class comment). */
    public static String jsonText(String s) {
        String d = decode(s);
        return d != null ? d : display(s);
    }

    /** The base64 of the raw bytes when they are not valid UTF-8, else null (the _b64 sibling field). */
    public static String jsonBytes(String s) {
        return isUtf8(s) ? null : Base64.getEncoder().encodeToString(bytes(s));
    }

    /** The terminal form of a byte string (see the class comment); itself a byte string. */
    public static String display(String s) {
        StringBuilder out = null;
        int n = s.length();
        for (int i = 0; i < n; ) {
            int b = s.charAt(i) & 0xff;
            if (b >= 0x20 && b < 0x7f && b != '\\') {
                if (out != null) out.append((char) b);
                i++;
                continue;
            }
            if (out == null) out = new StringBuilder(n + 16).append(s, 0, i);
            if (b == '\\') { out.append("\\\\"); i++; continue; }
            if (b == '\n') { out.append("\\n"); i++; continue; }
            if (b == '\t') { out.append("\\t"); i++; continue; }
            if (b == '\r') { out.append("\\r"); i++; continue; }
            int len = b >= 0x80 ? utf8Length(s, i) : 0;
            if (len > 0 && printable(codePoint(s, i, len))) {
                out.append(s, i, i + len);
                i += len;
            } else {
                int end = len > 0 ? i + len : i + 1;
                for (; i < end; i++) hex(out, s.charAt(i) & 0xff);
            }
        }
        return out == null ? s : out.toString();
    }

    /** The display form of a path inside the merged view: "/" + rel. */
    public static String displayPath(String rel) { return display("/" + rel); }

    private static void hex(StringBuilder out, int b) {
        out.append("\\x").append(Character.forDigit(b >> 4, 16)).append(Character.forDigit(b & 15, 16));
    }

    /** Length of a valid, shortest-form UTF-8 sequence starting at i, or 0. */
    private static int utf8Length(String s, int i) {
        int b0 = s.charAt(i) & 0xff;
        int len;
        int min;
        if (b0 >= 0xc2 && b0 <= 0xdf) { len = 2; min = 0x80; }
        else if (b0 >= 0xe0 && b0 <= 0xef) { len = 3; min = 0x800; }
        else if (b0 >= 0xf0 && b0 <= 0xf4) { len = 4; min = 0x10000; }
        else return 0;
        if (i + len > s.length()) return 0;
        for (int k = 1; k < len; k++) if ((s.charAt(i + k) & 0xc0) != 0x80) return 0;
        int cp = codePoint(s, i, len);
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
        return len;
    }

    private static int codePoint(String s, int i, int len) {
        int b0 = s.charAt(i) & 0xff;
        int cp = len == 2 ? b0 & 0x1f : len == 3 ? b0 & 0x0f : b0 & 0x07;
        for (int k = 1; k < len; k++) cp = (cp << 6) | (s.charAt(i + k) & 0x3f);
        return cp;
    }

    private static boolean printable(int cp) {
        switch (Character.getType(cp)) {
            case Character.CONTROL: case Character.FORMAT: case Character.LINE_SEPARATOR:
            case Character.PARAGRAPH_SEPARATOR: case Character.SURROGATE: case Character.UNASSIGNED:
                return false;
            default:
                return true;
        }
    }
}
