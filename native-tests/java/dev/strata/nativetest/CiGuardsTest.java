package dev.strata.nativetest;

import dev.strata.posix.Posix;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.opentest4j.AssertionFailedError;
import org.opentest4j.TestAbortedException;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.attribute.PosixFilePermissions;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The guards that keep CI from staying green without testing strata, each shown to turn a run red
 * (no root needed; runs in {@code mvn verify}): a launcher that fails, a missing overlay module in CI
 * mode, a native class that skipped. The hung daemon is in {@link HarnessSelfTest} (it needs a mount).
 */
class CiGuardsTest {
    @TempDir Path tmp;

    /** A project home whose bin/strata fails the way a broken build does. */
    private Path brokenHome() throws Exception {
        Path home = tmp.resolve("home");
        Files.createDirectories(home.resolve("bin"));
        Files.createDirectories(home.resolve("target"));
        Files.writeString(home.resolve("target/strata.jar"), "not a jar");
        Path l = home.resolve("bin/strata");
        Files.writeString(l, "#!/bin/sh\necho 'Error: Unable to access jarfile (broken build)' >&2\nexit 1\n");
        Files.setPosixFilePermissions(l, PosixFilePermissions.fromString("rwxr-xr-x"));
        return home;
    }

    @Test void aLauncherThatFailsFailsTheTestWhenTheTargetIsPinned() throws Exception {
        Path home = brokenHome();
        AssertionFailedError e = assertThrows(AssertionFailedError.class, () -> Mounter.underTest("strata", home, false));
        assertTrue(e.getMessage().contains("-Dstrata.target=strata, but strata cannot be launched")
                && e.getMessage().contains("broken build"), e.getMessage());
        // auto in CI mode fails too instead of comparing the kernel with itself ...
        e = assertThrows(AssertionFailedError.class, () -> Mounter.underTest("auto", home, true));
        assertTrue(e.getMessage().contains("compare the kernel with itself"), e.getMessage());
        // ... which stays what a developer's run without a build does
        assertEquals("kernel", Mounter.underTest("auto", home, false).name());
    }

    @Test void aMissingOverlayModuleFailsInCiModeAndSkipsOtherwise() {
        String pretend = System.getProperty("strata.pretendNoOverlay"), req = System.getProperty("strata.requireNative");
        try {
            System.setProperty("strata.pretendNoOverlay", "true");
            System.setProperty("strata.requireNative", "true");
            AssertionFailedError e = assertThrows(AssertionFailedError.class, NativeSupport::assumeNativeEnvironment);
            if (Posix.geteuid() == 0 && Files.exists(Paths.get("/dev/fuse"))) {
                assertTrue(e.getMessage().contains("no overlay in /proc/filesystems"), e.getMessage());
            }
            assertTrue(e.getMessage().contains("CI mode"), e.getMessage());
            System.setProperty("strata.requireNative", "false");
            assertThrows(TestAbortedException.class, NativeSupport::assumeNativeEnvironment);
        } finally {
            restore("strata.pretendNoOverlay", pretend);
            restore("strata.requireNative", req);
        }
    }

    private static void restore(String k, String v) {
        if (v == null) System.clearProperty(k);
        else System.setProperty(k, v);
    }

    @Test void aSkippedNativeClassFailsCiAndEveryRunIsCounted() throws Exception {
        Path src = tmp.resolve("src/x");
        Files.createDirectories(src);
        Files.writeString(src.resolve("MountTest.java"), "package x;\n@Tag(\"native\")\nclass MountTest {}\n");
        Files.writeString(src.resolve("OtherTest.java"), "package x;\n@Tag(\"native\")\nclass OtherTest {}\n");
        Files.writeString(src.resolve("PlainTest.java"), "package x;\n/** not @Tag(\"native\") */\nclass PlainTest {}\n");
        Path main = tmp.resolve("main"), second = tmp.resolve("second");
        Files.createDirectories(main);
        Files.createDirectories(second);
        report(main, "x.MountTest", "<testcase name=\"a\" classname=\"x.MountTest\"><skipped message=\"native test skipped: no overlay\"/></testcase>"
                + "<testcase name=\"b\" classname=\"x.MountTest\"><skipped/></testcase>");
        report(main, "x.OtherTest", "<testcase name=\"c\" classname=\"x.OtherTest\"/>");
        report(main, "x.PlainTest", "<testcase name=\"d\" classname=\"x.PlainTest\"><skipped/></testcase>");
        String sources = tmp.resolve("src").toString();
        assertEquals(1, SurefireReport.run(new String[]{"--ci", "--sources", sources, main.toString()}), "a native class that only skipped");
        assertEquals(0, SurefireReport.run(new String[]{"--sources", sources, main.toString()}), "outside CI: reported, not failed");

        // the class ran in the second run (reports of both runs add up): fine, unless one class never ran at all
        report(second, "x.MountTest", "<testcase name=\"a\" classname=\"x.MountTest\"/>");
        assertEquals(0, SurefireReport.run(new String[]{"--ci", "--expect-all", "--sources", sources, main.toString(), second.toString()}));
        assertEquals(1, SurefireReport.run(new String[]{"--ci", "--expect-all", "--sources", sources, second.toString()}), "OtherTest never ran");
        assertEquals(0, SurefireReport.run(new String[]{"--ci", "--sources", sources, second.toString()}), "-Dtest=...: only what ran counts");

        SurefireReport r = new SurefireReport();
        r.read(main);
        r.read(second);
        String summary = r.summary(SurefireReport.nativeClasses(java.util.List.of(tmp.resolve("src")))).get(0);
        assertEquals("test: native tests run: 2 (skipped: 2) in 2 of 2 native classes", summary);
    }

    private static void report(Path dir, String cls, String cases) throws Exception {
        Files.writeString(dir.resolve("TEST-" + cls + ".xml"), "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"" + cls
                + "\" tests=\"0\">" + cases + "</testsuite>\n");
    }
}
