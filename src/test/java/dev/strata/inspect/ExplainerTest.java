package dev.strata.inspect;

import dev.strata.inspect.Explanation.Role;
import dev.strata.inspect.Explanation.Verdict;
import dev.strata.layer.Markers.OpaqueForm;
import dev.strata.layer.Markers.WhiteoutForm;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ExplainerTest {
    @TempDir Path tmp;

    private static Explanation explain(Fixture f, String path) {
        try (Stack s = f.open()) {
            return new Explainer(s).explain(path);
        }
    }

    private static Role role(Explanation e, int layer) { return e.says.get(layer).role(); }

    @Test void upperFileHidesLowerFiles() throws IOException {
        Fixture f = Fixture.of(tmp, 2, true);
        Fixture.file(f.upper(), "etc/passwd", "upper");
        Fixture.file(f.lower(2), "etc/passwd", "lower2!");
        Explanation e = explain(f, "/etc/passwd");
        assertEquals(Verdict.FILE, e.verdict);
        assertEquals(0, e.verdictLayer);
        assertEquals(Role.SHOWN, role(e, 0));
        assertEquals(Role.ABSENT, role(e, 1), "lower1 has no /etc at all");
        assertEquals(Role.HIDDEN, role(e, 2));
        assertEquals(7, e.says.get(2).raw().probe().node().size());
        assertTrue(e.says.get(2).roleText().contains("upper above holds a regular file"), e.says.get(2).roleText());
        assertTrue(e.verdictText.contains("regular file of upper"), e.verdictText);
        assertEquals(2, e.steps.size());
        assertArrayEquals(new int[]{0, 2}, e.steps.get(0).lookup().merge, "/etc merges upper and lower2");
    }

    @Test void lookupIsTopDownAmongLowersWithoutUpper() throws IOException {
        Fixture f = Fixture.of(tmp, 3, false);
        Fixture.file(f.lower(2), "a", "two");
        Fixture.file(f.lower(3), "a", "three");
        Explanation e = explain(f, "a");
        assertEquals(Verdict.FILE, e.verdict);
        assertEquals(1, e.verdictLayer, "lower2 (index 1) is the top holder");
        assertEquals("lower2", e.says.get(1).layer().label());
        assertEquals(Role.ABSENT, role(e, 0));
        assertEquals(Role.HIDDEN, role(e, 2));
    }

    @Test void directoriesMergeAcrossLayersWithCounts() throws IOException {
        Fixture f = Fixture.of(tmp, 2, true);
        Fixture.file(f.upper(), "d/u", "1");
        Fixture.file(f.upper(), "d/same", "upper");
        Fixture.file(f.lower(1), "d/l1", "1");
        Fixture.file(f.lower(1), "d/same", "lower1");
        Fixture.dir(f.lower(1), "d/sub");
        Fixture.dir(f.lower(2), "d/sub");
        Fixture.file(f.lower(2), "d/l2", "1");
        Fixture.whiteout(f.lower(1), "d/gone", WhiteoutForm.WH_FILE);
        Fixture.file(f.lower(2), "d/gone", "x");
        Explanation e = explain(f, "/d");
        assertEquals(Verdict.DIR, e.verdict);
        assertEquals(Role.SHOWN, role(e, 0));
        assertEquals(Role.MERGED, role(e, 1));
        assertEquals(Role.MERGED, role(e, 2));
        assertTrue(e.mergeEnd.contains("bottom of the stack"), e.mergeEnd);
        assertEquals(5, e.dir.visible(), "u, same, l1, sub, l2");
        var up = e.dir.layers().get(0);
        assertEquals(2, up.entries());
        assertEquals(2, up.shown());
        var l1 = e.dir.layers().get(1);
        assertEquals(3, l1.entries(), "l1, same, sub");
        assertEquals(2, l1.shown(), "l1 and sub");
        assertEquals(1, l1.hidden(), "same is overridden by upper");
        assertEquals(1, l1.whiteouts());
        var l2 = e.dir.layers().get(2);
        assertEquals(3, l2.entries(), "sub, l2, gone");
        assertEquals(1, l2.shown());
        assertEquals(1, l2.merged(), "sub is merged below lower1's sub");
        assertEquals(1, l2.hidden(), "gone is whited out");
    }

    @ParameterizedTest @EnumSource(WhiteoutForm.class)
    void everyWhiteoutFormHidesBelow(WhiteoutForm form) throws IOException {
        Fixture f = Fixture.of(tmp, 2, true);
        Fixture.whiteout(f.upper(), "dir/file", form);
        Fixture.file(f.lower(1), "dir/file", "below");
        Fixture.file(f.lower(2), "dir/file", "further below");
        Explanation e = explain(f, "/dir/file");
        assertEquals(Verdict.WHITED_OUT, e.verdict);
        assertEquals(0, e.verdictLayer);
        assertEquals(Role.WHITEOUT, role(e, 0));
        assertEquals(form, e.says.get(0).raw().probe().whiteout());
        assertTrue(e.verdictText.contains(form.label), e.verdictText);
        assertEquals(Role.HIDDEN, role(e, 1));
        assertEquals(Role.HIDDEN, role(e, 2));
        // the merged listing does not show it, and counts the whiteout
        Explanation d = explain(f, "/dir");
        assertEquals(0, d.dir.visible());
        assertEquals(1, d.dir.layers().get(0).whiteouts());
    }

    @Test void trustedXattrWhiteout() throws IOException {
        Fixture f = Fixture.of(tmp, 1, true);
        Fixture.trustedXattrWhiteout(f.upper(), "x");
        Fixture.file(f.lower(1), "x", "data");
        Explanation e = explain(f, "/x");
        assertEquals(Verdict.WHITED_OUT, e.verdict);
        assertEquals(WhiteoutForm.XATTR, e.says.get(0).raw().probe().whiteout());
    }

    @ParameterizedTest @EnumSource(OpaqueForm.class)
    void everyOpaqueFormStopsTheMerge(OpaqueForm form) throws IOException {
        Fixture f = Fixture.of(tmp, 2, true);
        Fixture.opaque(f.upper(), "var/log", form);
        Fixture.file(f.upper(), "var/log/new", "n");
        Fixture.file(f.lower(1), "var/log/old", "o");
        Fixture.file(f.lower(2), "var/log/older", "o");
        Explanation d = explain(f, "/var/log");
        assertEquals(Verdict.DIR, d.verdict);
        assertEquals(Lookup.Stop.OPAQUE, d.steps.get(1).lookup().stop);
        assertArrayEquals(new int[]{0}, d.steps.get(1).lookup().merge);
        assertEquals(form, d.says.get(0).raw().probe().opaque());
        assertTrue(d.mergeEnd.contains(form.label), d.mergeEnd);
        assertEquals(Role.HIDDEN, role(d, 1));
        assertEquals(1, d.dir.visible(), "only 'new'");

        Explanation e = explain(f, "/var/log/old");
        assertEquals(Verdict.ABSENT, e.verdict);
        assertEquals(Role.HIDDEN, role(e, 1));
        assertTrue(e.says.get(1).roleText().contains("opaque directory in upper"), e.says.get(1).roleText());
        assertTrue(e.verdictText.contains("does not count"), e.verdictText);
    }

    @Test void opaqueInALowerLayerStopsThere() throws IOException {
        Fixture f = Fixture.of(tmp, 3, false);
        Fixture.file(f.lower(1), "d/a", "1");
        Fixture.opaque(f.lower(2), "d", OpaqueForm.USER_XATTR);
        Fixture.file(f.lower(2), "d/b", "2");
        Fixture.file(f.lower(3), "d/c", "3");
        Explanation e = explain(f, "/d");
        assertArrayEquals(new int[]{0, 1}, e.steps.get(0).lookup().merge);
        assertEquals(2, e.dir.visible());
        assertEquals(Role.HIDDEN, role(e, 2));
    }

    @Test void whiteoutOfAParentDecides() throws IOException {
        Fixture f = Fixture.of(tmp, 1, true);
        Fixture.whiteout(f.upper(), "etc/ssh", WhiteoutForm.WH_FILE);
        Fixture.file(f.lower(1), "etc/ssh/sshd_config", "cfg");
        Explanation e = explain(f, "/etc/ssh/sshd_config");
        assertEquals(Verdict.WHITED_OUT, e.verdict);
        assertEquals("etc/ssh", e.steps.get(e.steps.size() - 1).rel());
        assertEquals(Role.WHITEOUT, role(e, 0));
        assertEquals(Role.HIDDEN, role(e, 1));
        assertTrue(e.says.get(1).roleText().startsWith("hidden (a parent)"), e.says.get(1).roleText());
        assertTrue(e.verdictText.contains("/etc/ssh is whited out in upper"), e.verdictText);
    }

    @Test void nonDirectoryBelowADirectoryStopsTheMerge() throws IOException {
        Fixture f = Fixture.of(tmp, 2, true);
        Fixture.file(f.upper(), "a/mine", "u");
        Fixture.file(f.lower(1), "a", "I am a file");
        Fixture.file(f.lower(2), "a/x", "deep");
        Explanation d = explain(f, "/a");
        assertEquals(Verdict.DIR, d.verdict);
        assertEquals(Lookup.Stop.NONDIR_BELOW_DIR, d.steps.get(0).lookup().stop);
        assertEquals(Role.IGNORED, role(d, 1));
        assertEquals(Role.HIDDEN, role(d, 2));
        assertTrue(d.mergeEnd.contains("stops at lower1"), d.mergeEnd);
        Explanation e = explain(f, "/a/x");
        assertEquals(Verdict.ABSENT, e.verdict);
        assertEquals(Role.HIDDEN, role(e, 2));
    }

    @Test void whiteoutBelowADirectoryEndsTheMerge() throws IOException {
        Fixture f = Fixture.of(tmp, 2, true);
        Fixture.file(f.upper(), "d/top", "u");
        Fixture.whiteout(f.lower(1), "d", WhiteoutForm.WH_FILE);
        Fixture.file(f.lower(2), "d/bottom", "b");
        Explanation d = explain(f, "/d");
        assertEquals(Verdict.DIR, d.verdict);
        assertArrayEquals(new int[]{0}, d.steps.get(0).lookup().merge);
        assertEquals(Lookup.Stop.WHITEOUT, d.steps.get(0).lookup().stop);
        assertEquals(1, d.dir.visible());
    }

    @Test void aFileAsParentMeansNotADirectory() throws IOException {
        Fixture f = Fixture.of(tmp, 1, true);
        Fixture.file(f.upper(), "a", "file");
        Fixture.file(f.lower(1), "a/b", "below");
        Explanation e = explain(f, "/a/b");
        assertEquals(Verdict.NOT_A_DIR, e.verdict);
        assertEquals(Role.NOT_A_DIR, role(e, 0));
        assertEquals(Role.HIDDEN, role(e, 1));
        assertTrue(e.verdictText.contains("ENOTDIR"), e.verdictText);
        assertEquals("a", e.says.get(0).raw().ancestorRel());
    }

    @Test void symlinksAreNotFollowedEvenInsideALayer() throws IOException {
        Fixture f = Fixture.of(tmp, 1, false);
        Fixture.symlink(f.lower(1), "etc", "/etc");
        Explanation e = explain(f, "/etc/passwd");
        assertEquals(Verdict.NOT_A_DIR, e.verdict);
        assertTrue(e.verdictText.contains("not followed"), e.verdictText);
        assertTrue(e.verdictText.contains("-> /etc"), e.verdictText);
        // the layer alone is also looked at without following the link (no host /etc/passwd leaks in)
        assertEquals("etc", e.says.get(0).raw().ancestorRel());
        assertNull(e.dir);
        Explanation link = explain(f, "/etc");
        assertEquals(Verdict.FILE, link.verdict);
        assertEquals("/etc", link.says.get(0).raw().probe().node().linkTarget());
    }

    @Test void markerNamesAreNeverShown() throws IOException {
        Fixture f = Fixture.of(tmp, 1, false);
        Fixture.whiteout(f.lower(1), "x", WhiteoutForm.WH_FILE);
        Explanation e = explain(f, "/.wh.x");
        assertEquals(Verdict.MARKER, e.verdict);
        assertEquals(Role.MARKER, role(e, 0));
        assertEquals(WhiteoutForm.WH_FILE, explain(f, "/x").says.get(0).raw().probe().whiteout());
    }

    @Test void anEntryWinsOverItsWhFileInTheSameLayer() throws IOException {
        Fixture f = Fixture.of(tmp, 2, false);
        Fixture.file(f.lower(1), "x", "here");
        Fixture.whiteout(f.lower(1), "x", WhiteoutForm.WH_FILE);
        Fixture.file(f.lower(2), "x", "below");
        Explanation e = explain(f, "/x");
        assertEquals(Verdict.FILE, e.verdict);
        assertEquals(0, e.verdictLayer);
    }

    @Test void rootMergesEverythingAndIgnoresRootOpaqueMarkers() throws IOException {
        Fixture f = Fixture.of(tmp, 1, true);
        Files.write(f.upper().resolve(".wh..wh..opq"), new byte[0]);
        Fixture.file(f.lower(1), "low", "l");
        Fixture.file(f.upper(), "up", "u");
        Explanation e = explain(f, "/");
        assertEquals(Verdict.DIR, e.verdict);
        assertEquals(2, e.dir.visible());
        assertTrue(e.dir.layers().get(0).opaqueFile());
        assertEquals(Verdict.FILE, explain(f, "/low").verdict);
    }

    @Test void absentEverywhere() throws IOException {
        Fixture f = Fixture.of(tmp, 2, true);
        Explanation e = explain(f, "/nothing/here");
        assertEquals(Verdict.ABSENT, e.verdict);
        assertEquals(1, e.steps.size(), "the lookup ends at the first missing component");
        assertTrue(e.verdictText.contains("upper, lower1, lower2"), e.verdictText);
    }

    @Test void pathsAreNormalizedLexically() {
        assertEquals(List.of("a", "c"), Explainer.components("//a/./b/../c/"));
        assertEquals(List.of(), Explainer.components("/../.."));
        assertEquals(List.of("etc"), Explainer.components("etc"));
    }

    @Test void namesThatAreNotUtf8() throws IOException {
        Fixture f = Fixture.of(tmp, 1, false);
        String name = "caf\u00e9\u00ff"; // bytes 63 61 66 e9 ff: not UTF-8
        Fixture.rawFile(f.lower(1), name, "x");
        Explanation e = explain(f, "/" + name);
        assertEquals(Verdict.FILE, e.verdict);
        String text = ExplainReport.text(e);
        assertTrue(text.contains("/caf\\xe9\\xff"), text);
        String json = new String(ExplainReport.json(e), java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(json.contains("\"path\" : \"/caf\\\\xe9\\\\xff\""), json);
        assertTrue(json.contains("\"path_b64\" : \"L2NhZun/\""), json);
    }

    @Test void textReportShowsEveryLayerAndTheVerdict() throws IOException {
        Fixture f = Fixture.of(tmp, 1, true);
        Fixture.file(f.upper(), "f", "abc");
        Fixture.file(f.lower(1), "f", "abcdef");
        String text = ExplainReport.text(explain(f, "/f"));
        assertTrue(text.matches("(?s).*\\n  upper +" + java.util.regex.Pattern.quote(f.upper().toString()) + "\\n.*"), text);
        assertTrue(text.contains("regular file, 3 bytes, -rw-r--r--"), text);
        assertTrue(text.contains("regular file, 6 bytes"), text);
        assertTrue(text.contains("verdict: /f is the regular file of upper"), text);
        assertNotNull(Json.MAPPER.readTree(ExplainReport.json(explain(f, "/f"))));
    }

    /** A renamed directory (overlay.redirect, as redirect_dir=on writes it): explain follows it and says so. */
    @Test void redirectedDirectoriesAreFollowedAndNamed() throws IOException {
        Fixture f = Fixture.of(tmp, 2, true);
        Fixture.file(f.lower(1), "a/f", "lower1 f");
        Fixture.file(f.lower(2), "a/g", "lower2 g");
        Fixture.file(f.lower(2), "c/d/h", "deep");
        Fixture.dir(f.upper(), "b");
        Fixture.setxattr(f.upper().resolve("b"), "user.overlay.redirect", "a");      // renamed in place: relative
        Fixture.whiteout(f.upper(), "a", WhiteoutForm.WH_FILE);
        Fixture.dir(f.upper(), "n/e");
        Fixture.setxattr(f.upper().resolve("n/e"), "user.overlay.redirect", "/c/d"); // moved elsewhere: absolute
        Explanation e = explain(f, "/b/f");
        assertEquals(Verdict.FILE, e.verdict);
        assertEquals(1, e.verdictLayer);
        assertTrue(e.verdictText.contains(f.lower(1) + "/a/f"), e.verdictText);
        String step = ExplainReport.stepText(e, e.steps.get(0));
        assertTrue(step.contains("redirected by upper (overlay.redirect=\"a\")"), step);
        assertArrayEquals(new int[]{0, 1, 2}, e.steps.get(0).lookup().merge, "/b merges the upper's b and both lowers' a");
        assertEquals("a/f", e.says.get(1).raw().redirectedRel(), "lower1 is shown at the path the lookup asked it for");
        assertTrue(ExplainReport.rawText(e.says.get(1).raw()).startsWith("at /a/f (followed redirect): regular file"),
                ExplainReport.rawText(e.says.get(1).raw()));
        e = explain(f, "/b/g");
        assertEquals(2, e.verdictLayer);
        e = explain(f, "/n/e/h");
        assertEquals(Verdict.FILE, e.verdict);
        assertTrue(e.verdictText.contains(f.lower(2) + "/c/d/h"), e.verdictText);
        assertTrue(ExplainReport.stepText(e, e.steps.get(1)).contains("asked for /c/d"), ExplainReport.stepText(e, e.steps.get(1)));
        assertEquals(Verdict.WHITED_OUT, explain(f, "/a").verdict, "the old name is whited out");
    }
}
