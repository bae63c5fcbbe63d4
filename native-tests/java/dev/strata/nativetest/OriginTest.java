package dev.strata.nativetest;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The kernel's overlay.origin without index (copy_up.c ovl_set_origin_fh, namei.c ovl_check_origin):
 * strata writes the same bytes the kernel writes on the same copy-ups of the same lower objects, and each
 * implementation shows an upper the other wrote with the inode numbers the writer showed (copied-up
 * files, symlinks, fifos, directories, a file moved to another directory, a broken lower hard link);
 * and an upper strata wrote with its own older overlay.strata.origin keeps its numbers.
 */
@Tag("native")
class OriginTest {
    static final String OFF = "index=off";

    static final String CHANGE = "set -e; echo x >> etc/passwd; chmod 700 usr/bin/tool; touch merged/sub/newf; chmod 600 data/hl1;"
            + " mkdir n; mv merged/from1 n/moved; touch -h merged/sub/pw 2>/dev/null || true";
    static final String LOOK = "stat -c '%n %i' etc etc/passwd usr/bin/tool merged merged/sub merged/sub/newf data/hl1 data/hl2 n/moved;"
            + " for d in . etc merged merged/sub n data usr/bin; do echo \"== $d\"; ls -ai $d | sort -k2; done";
    /** Every upper object and its overlay.origin in hex ("-" where it has none). */
    static final String ORIGINS = "cd \"$1\" && find . -path ./. -prune -o -print | LC_ALL=C sort | while IFS= read -r f; do"
            + " v=$(getfattr -h -n trusted.overlay.origin -e hex \"$f\" 2>/dev/null | sed -n 's/^trusted.overlay.origin=//p'); echo \"$f ${v:--}\"; done";

    @Test void inodeNumbersOfEachOthersUpper() {
        NativeSupport.assumeNativeEnvironment();
        Path dir = NativeSupport.newTempDir("origin-ino");
        try {
            for (boolean kernelWrites : new boolean[]{true, false}) {
                Mounter writer = kernelWrites ? Mounter.kernel(OFF) : RedirectDirTest.target(OFF);
                Mounter reader = kernelWrites ? RedirectDirTest.target(OFF) : Mounter.kernel(OFF);
                LayerSet l = LayerBuilder.standard(dir.resolve(kernelWrites ? "k" : "t"));
                String during, own, other;
                try (Mount m = writer.mount(l)) {
                    NativeSupport.Proc.Result r = Both.run(m, CHANGE);
                    assertEquals(0, r.exit, r.toString());
                    during = Both.run(m, LOOK).stdout;
                }
                try (Mount m = writer.mount(l.withFreshWorkAndMnt("again"))) { own = Both.run(m, LOOK).stdout; }
                try (Mount m = reader.mount(l.withFreshWorkAndMnt("other"))) { other = Both.run(m, LOOK).stdout; }
                String what = kernelWrites ? "the target reading the kernel's upper" : "the kernel reading the target's upper";
                assertEquals(during, own, writer + ": st_ino and d_ino across a remount");
                assertEquals(own, other, what);
            }
        } finally {
            NativeSupport.deleteTree(dir);
        }
    }

    /** The same copy-ups of the same lower objects leave the same overlay.origin bytes on the same names. */
    @Test void sameOriginBytesAsTheKernel() {
        NativeSupport.assumeNativeEnvironment();
        Mounter t = RedirectDirTest.target(OFF);
        Path dir = NativeSupport.newTempDir("origin-bytes");
        try {
            LayerSet k = LayerBuilder.standard(dir.resolve("x"));
            LayerSet s = new LayerSet(k.root, k.lowers, k.root.resolve("upper-t"), k.root.resolve("work-t"), k.root.resolve("mnt-t"));
            for (Path p : new Path[]{s.upper, s.work, s.mnt}) Files.createDirectories(p);
            try (Mount m = Mounter.kernel(OFF).mount(k)) { assertEquals(0, Both.run(m, CHANGE).exit); }
            try (Mount m = t.mount(s)) { assertEquals(0, Both.run(m, CHANGE).exit); }
            String ko = NativeSupport.Proc.run(dir, 60, "bash", "-c", ORIGINS, "-", k.upper.toString()).stdout;
            String so = NativeSupport.Proc.run(dir, 60, "bash", "-c", ORIGINS, "-", s.upper.toString()).stdout;
            assertTrue(ko.contains("./etc/passwd 0x00fb"), ko);
            assertTrue(ko.contains("./data/hl1 -"), "a broken lower hard link has no origin:\n" + ko);
            assertEquals(ko, so, "overlay.origin of each upper object, kernel then " + t);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        } finally {
            NativeSupport.deleteTree(dir);
        }
    }

    /** An upper from before strata wrote the kernel's origin: its overlay.strata.origin still gives the number. */
    @Test void olderStrataOriginIsRead() {
        NativeSupport.assumeNativeEnvironment();
        Mounter t = RedirectDirTest.target(OFF);
        org.junit.jupiter.api.Assumptions.assumeTrue(t instanceof Mounter.Strata, "strata's own xattr");
        Path dir = NativeSupport.newTempDir("origin-old");
        try {
            LayerSet l = LayerBuilder.standard(dir.resolve("x"));
            try (Mount m = t.mount(l)) { assertEquals(0, Both.run(m, "echo x >> etc/passwd").exit); }
            Path f = l.upper.resolve("etc/passwd");
            NativeSupport.Proc.Result r = NativeSupport.Proc.run(dir, 30, "bash", "-c",
                    "setfattr -h -x trusted.overlay.origin \"$1\" && setfattr -h -n trusted.overlay.strata.origin -v 4242 \"$1\"", "-", f.toString());
            assertEquals(0, r.exit, r.toString());
            try (Mount m = t.mount(l.withFreshWorkAndMnt("again"))) {
                assertEquals("4242", Both.run(m, "stat -c %i etc/passwd").stdout.strip(), "the recorded number");
            }
        } finally {
            NativeSupport.deleteTree(dir);
        }
    }
}
