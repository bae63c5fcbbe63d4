package dev.strata.fuse.kernel;

import dev.strata.options.MountOptions;
import dev.strata.options.OptionParser;
import dev.strata.posix.Posix;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BackingMountsTest {
    private static long mode(String opts) {
        return BackingMounts.upperMode(OptionParser.parse(List.of("lowerdir=/a," + opts), Path.of("/")));
    }

    @Test void theUpperCopyHasTheMountsMode() {
        assertEquals(Posix.MOUNT_ATTR_RELATIME, mode("rw"));
        assertEquals(Posix.MOUNT_ATTR_NOATIME, mode("noatime"));
        assertEquals(Posix.MOUNT_ATTR_STRICTATIME | Posix.MOUNT_ATTR_NODIRATIME, mode("strictatime,nodiratime"));
    }

    @Test void aLayerMountThatAlreadyHasTheModeNeedsNoCopy() {
        long relatime = Posix.ST_RELATIME, noatime = Posix.ST_NOATIME, strict = 0;
        assertTrue(BackingMounts.hasMode(relatime, Posix.MOUNT_ATTR_RELATIME), "a relatime upper on a relatime mount");
        assertFalse(BackingMounts.hasMode(relatime, Posix.MOUNT_ATTR_NOATIME), "a lower on a relatime mount");
        assertTrue(BackingMounts.hasMode(noatime, Posix.MOUNT_ATTR_NOATIME));
        assertTrue(BackingMounts.hasMode(noatime | Posix.ST_NODIRATIME, Posix.MOUNT_ATTR_NOATIME), "noatime covers directories");
        assertFalse(BackingMounts.hasMode(noatime, Posix.MOUNT_ATTR_RELATIME));
        assertTrue(BackingMounts.hasMode(strict, Posix.MOUNT_ATTR_STRICTATIME));
        assertFalse(BackingMounts.hasMode(strict, Posix.MOUNT_ATTR_RELATIME));
        assertFalse(BackingMounts.hasMode(relatime, Posix.MOUNT_ATTR_RELATIME | Posix.MOUNT_ATTR_NODIRATIME));
        assertTrue(BackingMounts.hasMode(relatime | Posix.ST_NODIRATIME, Posix.MOUNT_ATTR_RELATIME | Posix.MOUNT_ATTR_NODIRATIME));
        assertFalse(BackingMounts.hasMode(-1, Posix.MOUNT_ATTR_RELATIME), "fstatfs failed: make the copy");
    }
}
