package dev.strata.cli;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** User mistakes end with one line on stderr and a non-zero exit, never a stack trace. */
class MainTest {
    final ByteArrayOutputStream err = new ByteArrayOutputStream();
    PrintStream oldErr;

    @BeforeEach void capture() {
        oldErr = System.err;
        System.setErr(new PrintStream(err, true));
    }

    @AfterEach void restore() { System.setErr(oldErr); }

    String errText() { return err.toString(); }

    @Test void forms() {
        assertArrayEquals(new String[]{"mount", "-o", "lowerdir=/a", "/m"}, Main.normalize(new String[]{"-o", "lowerdir=/a", "/m"}));
        assertArrayEquals(new String[]{"mount", "strata", "/m", "-o", "x"}, Main.normalize(new String[]{"strata", "/m", "-o", "x"}));
        assertArrayEquals(new String[]{"umount", "/m"}, Main.normalize(new String[]{"umount", "/m"}));
        assertArrayEquals(new String[]{"--version"}, Main.normalize(new String[]{"--version"}));
    }

    @Test void missingLowerdirIsOneLine(@TempDir Path t) throws Exception {
        Path m = Files.createDirectory(t.resolve("m"));
        int rc = Main.run("mount", "-o", "lowerdir=" + t.resolve("absent"), m.toString());
        assertEquals(1, rc);
        assertEquals("strata: lowerdir " + t.resolve("absent") + " does not exist\n", errText());
    }

    @Test void badOptionValueIsUsageError(@TempDir Path t) {
        int rc = Main.run("-o", "lowerdir=/x,timeout=later", t.toString());
        assertEquals(2, rc);
        assertEquals("strata: option timeout=later: not a number\n", errText());
    }

    @Test void unknownFlag() {
        int rc = Main.run("mount", "--frob", "/m");
        assertEquals(2, rc);
        assertTrue(errText().startsWith("strata: Unknown option: '--frob'"), errText());
        assertFalse(errText().contains("\tat "), "no stack trace");
    }

    @Test void umountOfSomethingNotMounted(@TempDir Path t) {
        assertEquals(1, Main.run("umount", t.toString()));
        assertEquals("strata: " + t + " is not a FUSE mount\n", errText());
    }
}
