package dev.strata.posix;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

class NamesTest {
    /** The byte string of some UTF-8 text. */
    private static String utf8(String text) { return new String(text.getBytes(StandardCharsets.UTF_8), StandardCharsets.ISO_8859_1); }

    @Test void printableAsciiIsKept() {
        assertEquals("/etc/passwd", Names.display("/etc/passwd"));
        assertEquals("a b~", Names.display("a b~"));
    }

    @Test void controlsAndBackslashesAreEscaped() {
        assertEquals("a\\\\b", Names.display("a\\b"));
        assertEquals("a\\nb\\tc\\rd", Names.display("a\nb\tc\rd"));
        assertEquals("\\x1b[31m\\x7f", Names.display("\u001b[31m\u007f"));
    }

    @Test void validUtf8PassesThroughAsItsBytes() {
        String cafe = utf8("caf\u00e9 \u65e5\u672c \ud83d\ude00");
        assertEquals(cafe, Names.display(cafe));
    }

    @Test void invalidUtf8BytesAreEscapedOneByOne() {
        assertEquals("caf\\xe9", Names.display("caf\u00e9"));          // a lone Latin-1 byte
        assertEquals("\\xc0\\xaf", Names.display("\u00c0\u00af"));     // overlong "/"
        assertEquals("\\xed\\xa0\\x80", Names.display("\u00ed\u00a0\u0080")); // a surrogate
        assertEquals("ab\\xe6\\x97", Names.display("ab\u00e6\u0097"));  // truncated sequence
    }

    @Test void invisibleUnicodeIsEscaped() {
        // U+202E RIGHT-TO-LEFT OVERRIDE and U+0085 NEXT LINE are valid UTF-8 but not shown raw
        assertEquals("a\\xe2\\x80\\xaeb", Names.display(utf8("a\u202eb")));
        assertEquals("\\xc2\\x85", Names.display(utf8("\u0085")));
    }

    @Test void jsonTextIsExactForUtf8AndEscapedOtherwise() {
        assertEquals("caf\u00e9\n", Names.jsonText(utf8("caf\u00e9\n")));
        assertNull(Names.jsonBytes(utf8("caf\u00e9")));
        assertEquals("caf\\xe9", Names.jsonText("caf\u00e9"));
        assertEquals("Y2Fm6Q==", Names.jsonBytes("caf\u00e9"));
    }

    @Test void utf8Check() {
        assertTrue(Names.isUtf8("plain"));
        assertTrue(Names.isUtf8(utf8("\u00e9")));
        assertFalse(Names.isUtf8("\u00e9"));
        assertEquals(utf8("\u00e9"), Names.fromUnicode("\u00e9"));
    }

    @Test void argumentsBecomeByteStrings() {
        // the test JVM decodes with the platform charset; re-encoding gives back the bytes
        String arg = new String(utf8("/caf\u00e9").getBytes(StandardCharsets.ISO_8859_1), Names.PLATFORM);
        String back = Names.fromArgument(arg);
        if (Names.PLATFORM.equals(StandardCharsets.UTF_8)) assertEquals(utf8("/caf\u00e9"), back);
        assertEquals("/plain", Names.fromArgument("/plain"));
    }
}
