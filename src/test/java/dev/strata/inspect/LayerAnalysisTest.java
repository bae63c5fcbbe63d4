package dev.strata.inspect;

import dev.strata.inspect.LayerAnalysis.Cause;
import dev.strata.inspect.LayerAnalysis.Stats;
import dev.strata.layer.Markers.OpaqueForm;
import dev.strata.layer.Markers.WhiteoutForm;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LayerAnalysisTest {
    @TempDir Path tmp;

    private static LayerAnalysis analyze(Fixture f) {
        try (Stack s = f.open()) {
            return LayerAnalysis.analyze(s, 10);
        }
    }

    private static String bytes(int n) { return "x".repeat(n); }

    private static void assertBalanced(LayerAnalysis a) {
        for (Stats s : a.layers) {
            assertEquals(s.bytes, s.visibleBytes + s.wastedBytes, "layer " + s.layer + ": visible + wasted = bytes");
            long by = 0;
            for (long b : s.wastedBy) by += b;
            assertEquals(s.wastedBytes, by);
        }
    }

    @Test void countsWhatEachLayerHolds() throws IOException {
        Fixture f = Fixture.of(tmp, 1, true);
        Fixture.file(f.lower(1), "a/b/c", bytes(100));
        Fixture.file(f.lower(1), "a/d", bytes(20));
        Fixture.symlink(f.lower(1), "a/link", "d");
        Fixture.file(f.upper(), "e", bytes(3));
        LayerAnalysis a = analyze(f);
        Stats up = a.layers.get(0), low = a.layers.get(1);
        assertEquals(1, up.files);
        assertEquals(0, up.dirs);
        assertEquals(3, up.bytes);
        assertEquals(2, low.files);
        assertEquals(2, low.dirs);
        assertEquals(1, low.symlinks);
        assertEquals(120, low.bytes);
        assertEquals(0, a.wastedBytes());
        assertEquals(1.0, a.efficiency());
        assertBalanced(a);
    }

    @ParameterizedTest @EnumSource(WhiteoutForm.class)
    void whitedOutBytesAreWasted(WhiteoutForm form) throws IOException {
        Fixture f = Fixture.of(tmp, 2, false);
        Fixture.file(f.lower(2), "big", bytes(1000));
        Fixture.file(f.lower(2), "small", bytes(10));
        Fixture.whiteout(f.lower(1), "big", form);
        LayerAnalysis a = analyze(f);
        Stats top = a.layers.get(0), bottom = a.layers.get(1);
        assertEquals(1, top.whiteouts[form.ordinal()]);
        assertEquals(0, top.files, "a whiteout is not a file");
        assertEquals(1000, bottom.wastedBytes);
        assertEquals(1000, bottom.wastedBy[Cause.WHITED_OUT.ordinal()]);
        assertEquals(10, bottom.visibleBytes);
        assertEquals(10.0 / 1010, a.efficiency(), 1e-9);
        assertEquals("big", a.largest.get(0).rel());
        assertEquals(0, a.largest.get(0).byLayer());
        assertBalanced(a);
    }

    @Test void overriddenFilesAndWhitedOutTrees() throws IOException {
        Fixture f = Fixture.of(tmp, 2, true);
        Fixture.file(f.lower(2), "etc/passwd", bytes(50));
        Fixture.file(f.lower(1), "etc/passwd", bytes(60));
        Fixture.file(f.upper(), "etc/passwd", bytes(70));
        Fixture.file(f.lower(2), "tree/x/y", bytes(5));
        Fixture.file(f.lower(2), "tree/z", bytes(6));
        Fixture.whiteout(f.lower(1), "tree", WhiteoutForm.WH_FILE);
        LayerAnalysis a = analyze(f);
        assertEquals(0, a.layers.get(0).wastedBytes);
        assertEquals(60, a.layers.get(1).wastedBy[Cause.OVERRIDDEN.ordinal()]);
        assertEquals(50, a.layers.get(2).wastedBy[Cause.OVERRIDDEN.ordinal()]);
        assertEquals(11, a.layers.get(2).wastedBy[Cause.WHITED_OUT.ordinal()]);
        assertEquals(70, a.visibleBytes());
        assertBalanced(a);
    }

    @ParameterizedTest @EnumSource(OpaqueForm.class)
    void opaqueDirectoriesAboveWasteWhatTheyHide(OpaqueForm form) throws IOException {
        Fixture f = Fixture.of(tmp, 1, true);
        Fixture.file(f.lower(1), "cache/a", bytes(400));
        Fixture.file(f.lower(1), "cache/deep/b", bytes(40));
        Fixture.opaque(f.upper(), "cache", form);
        Fixture.file(f.upper(), "cache/new", bytes(1));
        LayerAnalysis a = analyze(f);
        assertEquals(1, a.layers.get(0).opaque[form.ordinal()]);
        assertEquals(440, a.layers.get(1).wastedBy[Cause.OPAQUE.ordinal()]);
        assertEquals(1, a.layers.get(0).visibleBytes);
        assertBalanced(a);
    }

    @Test void nonDirectoryBelowDirectoryIsOverridden() throws IOException {
        Fixture f = Fixture.of(tmp, 2, true);
        Fixture.dir(f.upper(), "a");
        Fixture.file(f.lower(1), "a", bytes(9));
        Fixture.file(f.lower(2), "a/under", bytes(8));
        LayerAnalysis a = analyze(f);
        assertEquals(9, a.layers.get(1).wastedBy[Cause.OVERRIDDEN.ordinal()]);
        assertEquals(8, a.layers.get(2).wastedBy[Cause.OVERRIDDEN.ordinal()]);
        assertEquals(2, a.largest.get(1).layer(), "the 8-byte file of lower2 is second");
        assertEquals(1, a.largest.get(1).byLayer(), "hidden by lower1's file");
        assertBalanced(a);
    }

    @Test void hardLinksCountOnceAndAreVisibleIfAnyNameIs() throws IOException {
        Fixture f = Fixture.of(tmp, 1, true);
        Path one = Fixture.file(f.lower(1), "one", bytes(500));
        Files.createLink(f.lower(1).resolve("two"), one);
        Fixture.whiteout(f.upper(), "one", WhiteoutForm.WH_FILE);
        LayerAnalysis a = analyze(f);
        Stats low = a.layers.get(1);
        assertEquals(2, low.files);
        assertEquals(500, low.bytes);
        assertEquals(500, low.visibleBytes, "still reachable as /two");
        assertEquals(0, low.wastedBytes);
        Fixture.whiteout(f.upper(), "two", WhiteoutForm.WH_FILE);
        low = analyze(f).layers.get(1);
        assertEquals(500, low.wastedBytes);
    }

    @Test void reportText() throws IOException {
        Fixture f = Fixture.of(tmp, 1, true);
        Fixture.file(f.lower(1), "big", bytes(3000));
        Fixture.whiteout(f.upper(), "big", WhiteoutForm.WH_FILE);
        try (Stack s = f.open()) {
            LayerAnalysis a = LayerAnalysis.analyze(s, 5);
            String t = LayerReport.text(s, a);
            assertTrue(t.contains("efficiency 0.0%"), t);
            assertTrue(t.contains("2.9 KiB  lower1  /big  (whited out above: upper)"), t);
            var json = Json.MAPPER.readTree(new String(LayerReport.json(s, a), StandardCharsets.UTF_8));
            assertEquals(3000, json.get("wasted_bytes").asLong());
            assertEquals(3000, json.get("layers").get(1).get("wasted_by").get("whited_out").asLong());
            assertEquals(1, json.get("layers").get(0).get("whiteouts").get("wh_file").asLong());
        }
    }

    @Test void human() {
        assertEquals("0 B", LayerReport.human(0));
        assertEquals("1023 B", LayerReport.human(1023));
        assertEquals("1.5 KiB", LayerReport.human(1536));
        assertEquals("1.0 MiB", LayerReport.human(1 << 20));
        assertEquals("0.0%", LayerReport.percent(0));
        assertEquals("100.0%", LayerReport.percent(1));
        assertEquals("<0.1%", LayerReport.percent(0.00001));
        assertEquals(">99.9%", LayerReport.percent(0.99999));
        assertEquals("25.0%", LayerReport.percent(0.25));
    }

    /** A renamed lower directory (overlay.redirect): its files are visible under the new name, not wasted. */
    @Test void filesOfARenamedDirectoryAreVisible() throws IOException {
        Fixture f = Fixture.of(tmp, 1, true);
        Fixture.file(f.lower(1), "a/f", bytes(100));
        Fixture.file(f.lower(1), "a/g", bytes(10));
        Fixture.dir(f.upper(), "b");
        Fixture.setxattr(f.upper().resolve("b"), "user.overlay.redirect", "a");
        Fixture.whiteout(f.upper(), "a", WhiteoutForm.WH_FILE);
        Fixture.whiteout(f.upper(), "b/g", WhiteoutForm.WH_FILE);
        Fixture.file(f.lower(1), "a/sub/h", bytes(50));
        Fixture.opaque(f.upper(), "b/sub", OpaqueForm.WH_OPQ_FILE);
        LayerAnalysis a = analyze(f);
        assertEquals(60, a.wastedBytes(), "b/g (a/g below) is whited out, b/sub (a/sub below) opaque; a/f shows as b/f");
        assertBalanced(a);
    }
}
