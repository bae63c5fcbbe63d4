package dev.strata.nativetest;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The mark of a volatile mount (overlayfs.rst, "Volatile mount"), against the kernel overlay: a mount
 * with {@code volatile} leaves workdir/work/incompat/volatile/dirty, and no later mount of that workdir,
 * volatile or not, strata's or the kernel's, is allowed while work/incompat holds anything (the upper may
 * not have reached the disk). Both ways: the kernel's mark refuses strata, strata's refuses the kernel;
 * once the mark is removed (as podman does before it mounts a container's layer again), both mount, and
 * the empty work/incompat goes.
 */
@Tag("native")
class VolatileMarkTest {
    @Test void aVolatileMountsMarkRefusesLaterMountsOnBothSides() throws IOException {
        NativeSupport.assumeNativeEnvironment();
        Mounter target = Mounter.underTest();
        Assumptions.assumeTrue(target instanceof Mounter.Strata, "strata's volatile mark; the target is " + target);
        Mounter kernel = Mounter.kernel();
        Path dir = NativeSupport.newTempDir("volatile");
        try {
            for (String first : new String[]{"kernel", "strata"}) {
                LayerSet ls = LayerSet.create(dir.resolve(first), 1);
                Files.writeString(ls.lowers.get(0).resolve("f"), "lower\n");
                // the kernel's pinned options plus volatile; strata's own defaults plus volatile
                Mounter m = first.equals("kernel") ? Mounter.kernel("volatile") : target;
                try (Mount mnt = m.mount(first.equals("kernel") ? ls : ls.withOptions("volatile"))) {
                    Files.writeString(Path.of(mnt.abs("f")), "x\n", StandardOpenOption.APPEND);
                }
                Path mark = ls.work.resolve("work/incompat/volatile/dirty");
                assertTrue(Files.isRegularFile(mark, LinkOption.NOFOLLOW_LINKS), first + "'s volatile mount left " + mark);
                for (Mounter second : new Mounter[]{kernel, target}) {
                    IllegalStateException e = assertThrows(IllegalStateException.class, () -> second.mount(ls).close(),
                            second + " must refuse the workdir " + first + "'s volatile mount marked");
                    if (second == target) {
                        assertTrue(e.getMessage().contains("holds the incompatible feature 'volatile'"), e.getMessage());
                    }
                }
                assertTrue(Files.exists(mark, LinkOption.NOFOLLOW_LINKS), "a refused mount leaves the mark: " + mark);
                // what podman does before it mounts a layer again (containers/storage, drivers/overlay: get)
                NativeSupport.deleteTree(ls.work.resolve("work/incompat/volatile"));
                for (Mounter second : new Mounter[]{kernel, target}) {
                    try (Mount mnt = second.mount(ls)) {
                        assertEquals("lower\nx\n", Files.readString(Path.of(mnt.abs("f"))), second + " after " + first + "'s volatile mount");
                    }
                    assertFalse(Files.exists(ls.work.resolve("work/incompat"), LinkOption.NOFOLLOW_LINKS),
                            second + " removes the empty work/incompat");
                    Files.createDirectories(ls.work.resolve("work/incompat")); // empty again for the other side
                }
            }
        } finally {
            NativeSupport.deleteTree(dir);
        }
    }
}
