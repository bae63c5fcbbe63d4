package dev.strata.inspect;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

class KernelMountsTest {
    static final String MOUNTINFO = String.join("\n",
            "27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw",
            "68 27 0:40 / /var/lib/c/merged rw,relatime shared:40 - overlay overlay rw,lowerdir=/l/a\\0401:/l/b,"
                    + "upperdir=/u\\134x,workdir=/w,uuid=on",
            "69 68 0:41 / /var/lib/c/merged/dev/shm rw - tmpfs shm rw,size=64000k",
            "70 27 0:42 /sub /bound rw - overlay overlay ro,lowerdir=/top:/bottom::/data1",
            "71 27 0:43 / /plus rw - overlay overlay ro,lowerdir+=/p1,lowerdir+=/p2,datadir+=/d",
            "");

    @Test void parsesOverlaysWithEscapesAndDataOnlyLayers() {
        List<KernelMounts.Mount> m = KernelMounts.parse(MOUNTINFO);
        assertEquals(5, m.size());
        assertNull(m.get(0).stack());
        StackSpec s = m.get(1).stack();
        assertEquals(List.of(Path.of("/l/a 1"), Path.of("/l/b")), s.lowerdirs());
        assertEquals(Path.of("/u\\x"), s.upperdir());
        assertEquals(List.of(Path.of("/top"), Path.of("/bottom")), m.get(3).stack().lowerdirs(), "data-only layers left out");
        assertNull(m.get(3).stack().upperdir());
        assertEquals(List.of(Path.of("/p1"), Path.of("/p2")), m.get(4).stack().lowerdirs());
    }

    @Test void locatesTheInnermostMount() {
        List<KernelMounts.Mount> m = KernelMounts.parse(MOUNTINFO);
        var at = KernelMounts.locate(m, Path.of("/var/lib/c/merged/etc/passwd")).orElseThrow();
        assertEquals("etc/passwd", at.rel());
        assertEquals(Path.of("/var/lib/c/merged"), at.mount().mountpoint());
        assertTrue(KernelMounts.locate(m, Path.of("/var/lib/c/merged/dev/shm/x")).isEmpty(), "inside a tmpfs on top");
        assertTrue(KernelMounts.locate(m, Path.of("/etc/passwd")).isEmpty(), "on ext4");
        assertEquals("sub/x", KernelMounts.locate(m, Path.of("/bound/x")).orElseThrow().rel(), "a bind of a subdirectory");
        assertEquals("sub", KernelMounts.locate(m, Path.of("/bound")).orElseThrow().rel());
    }
}
