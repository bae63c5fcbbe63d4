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

    @Test void umountOfSomethingThatDoesNotExist(@TempDir Path t) {
        assertEquals(1, Main.run("umount", t.resolve("nonexistent").toString()));
        assertEquals("strata: " + t.resolve("nonexistent") + " does not exist\n", errText());
    }

    @Test void aMisspeltCommandIsNotAMountSource(@TempDir Path t) throws Exception {
        Path m = Files.createDirectory(t.resolve("m"));
        assertEquals(2, Main.run("moutn", "-o", "lowerdir=" + t, m.toString()));
        assertEquals("strata: 'moutn' is not a strata command (did you mean mount?); see 'strata --help'\n", errText());
        err.reset();
        assertEquals(2, Main.run("moutn", m.toString(), "-o", "lowerdir=" + t), "the mount.fuse3 order too");
        assertTrue(errText().contains("did you mean mount?"), errText());
        err.reset();
        assertEquals(2, Main.run("frobnicate"));
        assertEquals("strata: 'frobnicate' is not a strata command; see 'strata --help'\n", errText());
        err.reset();
        assertEquals(2, Main.run("expalin", "/x"));
        assertTrue(errText().contains("did you mean explain?"), errText());
        // mount.fuse3 (mount -t fuse.strata SOURCE M -o OPTS) and a SOURCE that is a path stay mounts
        assertNull(Main.unknownCommand(new String[]{"strata", "/m", "-o", "lowerdir=/x"}));
        assertNull(Main.unknownCommand(new String[]{"overlay", "/m", "-o", "lowerdir=/x"}));
        assertNull(Main.unknownCommand(new String[]{t.toString(), "-o", "lowerdir=/x", "/m"}));
        assertNull(Main.unknownCommand(new String[]{"-o", "lowerdir=/x", "/m"}));
    }

    @Test void helpWorksAsACommand() {
        PrintStream oldOut = System.out;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        System.setOut(new PrintStream(out, true));
        try {
            assertEquals(0, Main.run("help"));
            assertTrue(out.toString().contains("Commands:"), out.toString());
            out.reset();
            assertEquals(0, Main.run("help", "mount"));
            String mount = out.toString();
            for (String o : new String[]{"lowerdir=", "upperdir=", "workdir=", "transport=", "passthrough=", "attr_timeout=",
                    "fsname=", "subtype=", "nosuid", "suid", "noexec", "uidmapping=", "xattr_permissions="}) {
                assertTrue(mount.contains(o), "mount --help lists " + o);
            }
            for (String line : mount.split("\n")) assertTrue(line.length() <= 80, "fits a terminal: " + line);
        } finally {
            System.setOut(oldOut);
        }
        assertEquals("", errText());
    }

    @Test void commandSummariesAreWholeSentences() {
        PrintStream oldOut = System.out;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        System.setOut(new PrintStream(out, true));
        try {
            Main.run("--help");
            Main.run("image", "--help");
        } finally {
            System.setOut(oldOut);
        }
        String all = (out + errText()).replaceAll("\n +", " ");
        for (String line : all.split("\n")) {
            if (line.matches("  [a-z]+(, [a-z]+)? +[A-Z].*")) {
                assertTrue(line.endsWith("."), "a summary ends its sentence: " + line);
            }
        }
        assertTrue(java.util.regex.Pattern.compile("diff +List what the upper layer changes in the merged view, like 'docker diff'\\.")
                .matcher(all).find(), all);
    }
}
