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

    private static final String INITIAL = "         0          0 4294967295\n";

    @Test void passthroughIsAskedForOnlyByAnAdminOfTheInitialUserNamespace() {
        String admin = "Name:\tjava\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\n";
        String noSysAdmin = "CapEff:\t000001ffffdfffff\n"; // bit 21 (CAP_SYS_ADMIN) dropped
        assertTrue(BackingMounts.initialNamespaceAdmin(INITIAL, admin), "root of the host");
        assertFalse(BackingMounts.initialNamespaceAdmin(INITIAL, noSysAdmin), "root without CAP_SYS_ADMIN (a container)");
        assertFalse(BackingMounts.initialNamespaceAdmin("         0       1000          1\n", admin),
                "uid 0 of a user namespace (unshare -r), all capabilities there");
        assertFalse(BackingMounts.initialNamespaceAdmin("         0       1000          1\n         1     100000      65536\n", admin),
                "rootless podman's namespace (a subordinate range)");
        assertTrue(BackingMounts.initialNamespaceAdmin(INITIAL, "Name:\tjava\n"), "no CapEff line: try, the kernel tells");
    }
}
