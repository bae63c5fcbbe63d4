package dev.strata.union;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** overlay.protattr's format, as the kernel's ovl_check_protattr reads it and ovl_set_protattr writes it. */
class ProtectTest {
    private static int parse(String v) { return Protect.parse(v == null ? null : v.getBytes(StandardCharsets.US_ASCII)); }

    @Test void lettersAreTheFlags() {
        assertEquals(Protect.APPEND, parse("a"));
        assertEquals(Protect.IMMUTABLE, parse("i"));
        assertEquals(Protect.APPEND | Protect.IMMUTABLE, parse("ai"));
        assertEquals(Protect.APPEND | Protect.IMMUTABLE, parse("ia"));
    }

    /** An empty value or any other letter: "incompatible overlay.protattr format", the whole value ignored. */
    @Test void anythingElseIsIgnoredWhole() {
        assertEquals(0, parse(null));
        assertEquals(0, parse(""));
        assertEquals(0, parse("ax"));
        assertEquals(0, parse("i\0"));
    }

    /** Written 'a' before 'i', as the kernel writes them. */
    @Test void format() {
        assertArrayEquals("a".getBytes(StandardCharsets.US_ASCII), Protect.format(Protect.APPEND));
        assertArrayEquals("i".getBytes(StandardCharsets.US_ASCII), Protect.format(Protect.IMMUTABLE));
        assertArrayEquals("ai".getBytes(StandardCharsets.US_ASCII), Protect.format(Protect.APPEND | Protect.IMMUTABLE));
        assertEquals(0, Protect.format(0).length);
    }

    @Test void fsFlagsBothWays() {
        assertEquals(Protect.APPEND | Protect.IMMUTABLE, Protect.fromFsFlags(0x30 | 0x80));
        assertEquals(0x30, Protect.toFsFlags(Protect.APPEND | Protect.IMMUTABLE));
        assertEquals(0x18, Protect.toXflags(Protect.APPEND | Protect.IMMUTABLE));
    }
}
