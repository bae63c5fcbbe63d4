package dev.strata.options;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The direction of uidmapping/gidmapping as fuse-overlayfs 1.10 applies it (checked on this machine). */
class IdMappingTest {
    @Test void diskIdsShowShiftedIntoTheHostRangeLikeFuseOverlayfs() {
        // podman --uidmap 0:100000:65536 passes uidmapping=:0:100000:65536; fuse-overlayfs then shows a
        // file owned by 5 on disk as 100005, and chown to 100007 through the mount stores 7.
        IdMapping m = IdMapping.parse(":0:100000:65536");
        assertEquals(100005, m.toContainer(5));
        assertEquals(7, m.toHost(100007));
        assertEquals(IdMapping.OVERFLOW, m.toContainer(70000));
        assertEquals(-1, m.toHost(0));
    }

    @Test void keepIdMappingFromRootlessPodman() {
        // rootless --userns=keep-id for uid 1001: container 0 -> 1, 1001 -> 0, 1002.. -> 1002..
        IdMapping m = IdMapping.parse(":0:1:1001:1001:0:1:1002:1002:64535");
        assertEquals(1, m.toContainer(0));
        assertEquals(0, m.toContainer(1001));
        assertEquals(1002, m.toContainer(1002));
        assertEquals(1001, m.toHost(0));
        assertEquals(0, m.toHost(1));
    }
}
