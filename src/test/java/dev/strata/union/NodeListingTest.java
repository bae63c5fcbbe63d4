package dev.strata.union;

import org.junit.jupiter.api.Test;

import java.util.List;

import static dev.strata.posix.Posix.*;
import static org.junit.jupiter.api.Assertions.*;

/** A cached listing gives back each name byte for byte (any byte but '/' and NUL), its type and inode number. */
class NodeListingTest {
    @Test void packedNamesComeBackAsTheyWere() {
        List<String> names = List.of(".", "..", "", "a", "caf\u00e9", "\u00ff\u0080x", "long-" + "n".repeat(250));
        int[] types = {S_IFDIR, S_IFDIR, S_IFREG, S_IFLNK, S_IFSOCK, S_IFCHR, S_IFIFO};
        long[] inos = {1, 2, 3, Long.MAX_VALUE, -1, 1L << 40, 7};
        Node.Listing l = new Node.Listing(names, types, inos);
        assertEquals(names.size(), l.size());
        for (int k = 0; k < names.size(); k++) {
            assertEquals(names.get(k), l.name(k));
            assertEquals(types[k], l.type(k));
            assertEquals(inos[k], l.ino(k));
        }
        assertEquals(0, new Node.Listing(List.of(), new int[0], new long[0]).size());
    }
}
