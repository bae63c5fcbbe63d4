package dev.strata.inspect;

import dev.strata.cli.Main;
import dev.strata.layer.Markers.WhiteoutForm;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The three commands through the command line: output, JSON, and one-line errors with a non-zero exit. */
class InspectCommandsTest {
    @TempDir Path tmp;

    record Result(int code, String out, String err) {}

    static Result run(String... args) {
        PrintStream out = System.out, err = System.err;
        ByteArrayOutputStream o = new ByteArrayOutputStream(), e = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(o, true, StandardCharsets.ISO_8859_1));
            System.setErr(new PrintStream(e, true, StandardCharsets.ISO_8859_1));
            int code = Main.run(args);
            return new Result(code, o.toString(StandardCharsets.ISO_8859_1), e.toString(StandardCharsets.ISO_8859_1));
        } finally {
            System.setOut(out);
            System.setErr(err);
        }
    }

    private Fixture sample() throws IOException {
        Fixture f = Fixture.of(tmp, 2, true);
        Fixture.file(f.lower(2), "etc/passwd", "root");
        Fixture.file(f.lower(2), "etc/hosts", "h");
        Fixture.file(f.upper(), "etc/passwd", "root!");
        Fixture.whiteout(f.upper(), "etc/hosts", WhiteoutForm.WH_FILE);
        return f;
    }

    private static void assertOneLineError(Result r, String expected) {
        assertTrue(r.code() != 0, "exit code");
        assertEquals("", r.out());
        assertTrue(r.err().startsWith("strata: "), r.err());
        assertEquals(1, r.err().lines().count(), r.err());
        assertTrue(r.err().contains(expected), r.err());
    }

    @Test void explainOnLayerDirectories() throws IOException {
        Fixture f = sample();
        Result r = run("explain", "/etc/hosts", "--lowerdir", f.lowerdirOption(), "--upperdir", f.upper().toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("verdict: gone: /etc/hosts is whited out in upper (.wh. file)"), r.out());
        Result j = run("explain", "etc/passwd", "-o", "lowerdir=" + f.lowerdirOption() + ",upperdir=" + f.upper()
                + ",workdir=/nowhere", "--json");
        assertEquals(0, j.code(), j.err());
        var tree = Json.MAPPER.readTree(j.out());
        assertEquals("file", tree.get("verdict").get("kind").asText());
        assertEquals(0, tree.get("verdict").get("layer").asInt());
        assertEquals("hidden", tree.get("layers").get(2).get("role").asText());
    }

    @Test void diffAndLayers() throws IOException {
        Fixture f = sample();
        Result d = run("diff", "--upperdir", f.upper().toString(), "--lowerdir", f.lowerdirOption());
        assertEquals(0, d.code(), d.err());
        assertEquals(List.of("C /etc", "D /etc/hosts", "C /etc/passwd"), d.out().lines().toList());
        Result l = run("layers", "--lowerdir", f.lowerdirOption(), "--upperdir", f.upper().toString(), "--json");
        assertEquals(0, l.code(), l.err());
        var tree = Json.MAPPER.readTree(l.out());
        assertEquals(5, tree.get("wasted_bytes").asLong(), "root + h in lower2");
        Result t = run("layers", "--lowerdir", f.lowerdirOption(), "--upperdir", f.upper().toString());
        assertTrue(t.out().startsWith("LAYER"), t.out());
    }

    @Test void explainThroughARegisteredMount() throws Exception {
        Fixture f = sample();
        Path mnt = tmp.resolve("mnt");
        MountInfo m = MountInfo.ofThisProcess(mnt, f.lowers, f.upper(), null);
        MountRegistry.Registration reg;
        try {
            reg = MountRegistry.register(m);
        } catch (IOException e) {
            org.junit.jupiter.api.Assumptions.abort("cannot write the mount registry here: " + e.getMessage());
            return;
        }
        try (reg) {
            Result r = run("explain", mnt + "/etc/passwd");
            assertEquals(0, r.code(), r.err());
            assertTrue(r.out().contains("verdict: /etc/passwd is the regular file of upper"), r.out());
            Result d = run("diff", mnt.toString());
            assertEquals(0, d.code(), d.err());
            assertTrue(d.out().contains("D /etc/hosts"), d.out());
            assertOneLineError(run("diff", mnt + "/etc"), "is not a mount point: it is inside the strata mount at " + mnt);
        }
        assertOneLineError(run("explain", mnt + "/etc/passwd"), "is not inside a running strata mount");
    }

    @Test void userMistakesGiveOneLine() throws IOException {
        Fixture f = sample();
        assertOneLineError(run("explain", "/x", "--lowerdir", tmp.resolve("missing").toString()),
                "lower layer " + tmp.resolve("missing") + ": No such file or directory");
        assertOneLineError(run("explain", "/x", "--lowerdir", f.lowerdirOption(), "--upperdir", tmp.resolve("nope").toString()),
                "upper layer");
        assertOneLineError(run("explain", tmp.resolve("not-a-mount/x").toString()), "not inside a running strata mount");
        assertOneLineError(run("explain", "/x", "--upperdir", f.upper().toString()), "--upperdir needs --lowerdir");
        assertOneLineError(run("explain", "/x", "--lowerdir", "a::b"), "data-only");
        assertOneLineError(run("diff", "--lowerdir", f.lowerdirOption()), "needs an upper layer");
        assertOneLineError(run("diff"), "needs a mount point");
        assertOneLineError(run("layers"), "needs a mount point");
        assertOneLineError(run("layers", "--lowerdir", f.lowerdirOption(), "--top", "-1"), "--top");
        assertOneLineError(run("explain", "/x", "-o", "lowerdir=/a", "--lowerdir", "/b"), "not both");
        Result missingArg = run("explain");
        assertTrue(missingArg.code() != 0);
        assertFalse(missingArg.err().contains("Exception"), missingArg.err());
    }
}
