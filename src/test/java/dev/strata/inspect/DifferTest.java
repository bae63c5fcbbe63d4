package dev.strata.inspect;

import dev.strata.inspect.Differ.Change;
import dev.strata.inspect.Differ.Kind;
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
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DifferTest {
    @TempDir Path tmp;

    private static List<String> diff(Fixture f) {
        try (Stack s = f.open()) {
            List<String> out = new ArrayList<>();
            for (Change c : Differ.diff(s)) out.add(c.kind() + " " + c.path());
            return out;
        }
    }

    private static List<Change> changes(Fixture f) {
        try (Stack s = f.open()) {
            return Differ.diff(s);
        }
    }

    /** Makes the upper's copy of a lower directory look untouched (same mode and mtime). */
    private static void sameMeta(Path lowerDir, Path upperDir) throws IOException {
        Files.setPosixFilePermissions(upperDir, Files.getPosixFilePermissions(lowerDir));
        Files.setLastModifiedTime(upperDir, Files.getLastModifiedTime(lowerDir));
    }

    @Test void emptyUpperMeansNoChanges() throws IOException {
        Fixture f = Fixture.of(tmp, 1, true);
        Fixture.file(f.lower(1), "etc/passwd", "x");
        assertEquals(List.of(), diff(f));
    }

    @Test void addChangeDelete() throws IOException {
        Fixture f = Fixture.of(tmp, 2, true);
        Fixture.file(f.lower(2), "etc/passwd", "root");
        Fixture.file(f.lower(2), "etc/group", "g");
        Fixture.file(f.lower(1), "etc/hosts", "h");
        Fixture.file(f.upper(), "etc/passwd", "root changed");
        Fixture.file(f.upper(), "etc/new", "n");
        Fixture.whiteout(f.upper(), "etc/hosts", WhiteoutForm.WH_FILE);
        Fixture.whiteout(f.upper(), "etc/never-existed", WhiteoutForm.XATTR);
        Fixture.file(f.upper(), "newdir/a/b", "deep");
        assertEquals(List.of("C /etc", "A /etc/new", "C /etc/passwd", "D /etc/hosts", "A /newdir", "A /newdir/a",
                "A /newdir/a/b").stream().sorted((x, y) -> Differ.compareRel(x.substring(3), y.substring(3))).toList(),
                diff(f));
    }

    @Test void sortedComponentByComponent() {
        List<String> paths = new ArrayList<>(List.of("a-b", "a/b", "a", "a/b/c", "ab", "a.b"));
        paths.sort(Differ::compareRel);
        assertEquals(List.of("a", "a/b", "a/b/c", "a-b", "a.b", "ab"), paths);
    }

    @ParameterizedTest @EnumSource(WhiteoutForm.class)
    void deletedDirectoryListsOnlyItsTop(WhiteoutForm form) throws IOException {
        Fixture f = Fixture.of(tmp, 1, true);
        Fixture.file(f.lower(1), "d/x/y", "1");
        Fixture.file(f.lower(1), "d/z", "1");
        Fixture.whiteout(f.upper(), "d", form);
        List<Change> c = changes(f);
        assertEquals(1, c.size(), c.toString());
        assertEquals(Kind.D, c.get(0).kind());
        assertEquals("/d", c.get(0).path());
        assertEquals("dir", c.get(0).type());
    }

    @ParameterizedTest @EnumSource(OpaqueForm.class)
    void opaqueDirectoryExpandsIntoDeletesAndAdds(OpaqueForm form) throws IOException {
        Fixture f = Fixture.of(tmp, 2, true);
        Fixture.file(f.lower(1), "app/keep", "old");
        Fixture.file(f.lower(1), "app/gone1", "old");
        Fixture.file(f.lower(2), "app/gone2", "old");
        Fixture.file(f.lower(2), "app/sub/inner", "old");
        Path app = Fixture.opaque(f.upper(), "app", form);
        Fixture.file(f.upper(), "app/keep", "new");
        Fixture.file(f.upper(), "app/fresh", "new");
        Fixture.dir(f.upper(), "app/sub");
        sameMeta(f.lower(1).resolve("app"), app);
        sameMeta(f.lower(2).resolve("app/sub"), f.upper().resolve("app/sub"));
        List<String> d = diff(f);
        // app/sub exists in both, but the upper's sub (under an opaque dir) hides the lower's inner
        assertEquals(List.of("C /app", "A /app/fresh", "D /app/gone1", "D /app/gone2", "C /app/keep", "C /app/sub",
                "D /app/sub/inner"), d);
    }

    @Test void opaqueDirectoryWithNothingNewOnlyDeletes() throws IOException {
        Fixture f = Fixture.of(tmp, 1, true);
        Fixture.file(f.lower(1), "cache/a", "1");
        Fixture.file(f.lower(1), "cache/b", "1");
        Path c = Fixture.opaque(f.upper(), "cache", OpaqueForm.USER_XATTR);
        sameMeta(f.lower(1).resolve("cache"), c);
        assertEquals(List.of("C /cache", "D /cache/a", "D /cache/b"), diff(f));
        Change dir = changes(f).get(0);
        assertEquals(List.of("entries"), dir.why());
    }

    @Test void copiedUpParentWithSameMetadataIsNotListed() throws IOException {
        Fixture f = Fixture.of(tmp, 1, true);
        Fixture.file(f.lower(1), "etc/ssh/sshd_config", "old");
        Fixture.file(f.upper(), "etc/ssh/sshd_config", "new");
        sameMeta(f.lower(1).resolve("etc/ssh"), f.upper().resolve("etc/ssh"));
        sameMeta(f.lower(1).resolve("etc"), f.upper().resolve("etc"));
        assertEquals(List.of("C /etc/ssh/sshd_config"), diff(f));
    }

    @Test void directoryMetadataChangesAreNamed() throws IOException {
        Fixture f = Fixture.of(tmp, 1, true);
        Path low = Fixture.dir(f.lower(1), "d");
        Path up = Fixture.dir(f.upper(), "d");
        sameMeta(low, up);
        Files.setPosixFilePermissions(up, PosixFilePermissions.fromString("rwx------"));
        Fixture.setxattr(up, "user.note", "hello");
        Fixture.setxattr(up, "user.overlay.origin", "private: not a change");
        List<Change> c = changes(f);
        assertEquals(1, c.size(), c.toString());
        assertEquals(List.of("mode", "xattrs"), c.get(0).why());
    }

    @Test void privateXattrsAloneAreNoChange() throws IOException {
        Fixture f = Fixture.of(tmp, 1, true);
        Path low = Fixture.dir(f.lower(1), "d");
        Path up = Fixture.dir(f.upper(), "d");
        Fixture.setxattr(up, "user.overlay.impure", "y");
        sameMeta(low, up);
        assertEquals(List.of(), diff(f));
    }

    @Test void typeChanges() throws IOException {
        Fixture f = Fixture.of(tmp, 1, true);
        Fixture.file(f.lower(1), "was-file", "x");
        Fixture.file(f.lower(1), "was-dir/inner", "x");
        Fixture.file(f.upper(), "was-file/now-inside", "y");
        Fixture.file(f.upper(), "was-dir", "now a file");
        List<Change> c = changes(f);
        List<String> s = c.stream().map(x -> x.kind() + " " + x.path() + " " + x.type() + "<-" + x.oldType()).toList();
        assertEquals(List.of("C /was-dir file<-dir", "C /was-file dir<-file", "A /was-file/now-inside file<-null"), s);
    }

    @Test void fileReplacedBySymlinkAndSameContentCopyUp() throws IOException {
        Fixture f = Fixture.of(tmp, 1, true);
        Fixture.file(f.lower(1), "a", "same");
        Fixture.file(f.lower(1), "b", "x");
        Fixture.file(f.upper(), "a", "same");
        Fixture.symlink(f.upper(), "b", "a");
        List<String> s = changes(f).stream().map(x -> x.kind() + " " + x.path() + " " + x.why()).toList();
        assertEquals(List.of("C /a [upper]", "C /b [type]"), s);
    }

    @Test void unchangedTimeOnCopiedUpDirButNewEntry() throws IOException {
        Fixture f = Fixture.of(tmp, 1, true);
        Path low = Fixture.dir(f.lower(1), "d");
        Fixture.file(f.upper(), "d/new", "n");
        Path up = f.upper().resolve("d");
        Files.setLastModifiedTime(up, FileTime.fromMillis(Files.getLastModifiedTime(low).toMillis()));
        sameMeta(low, up);
        assertEquals(List.of("C /d", "A /d/new"), diff(f));
    }

    @Test void needsAnUpper() throws IOException {
        Fixture f = Fixture.of(tmp, 1, false);
        try (Stack s = f.open()) {
            InspectException e = assertThrows(InspectException.class, () -> Differ.diff(s));
            assertTrue(e.getMessage().contains("upper"));
        }
    }

    @Test void jsonCarriesKindPathTypeAndWhy() throws IOException {
        Fixture f = Fixture.of(tmp, 1, true);
        Fixture.file(f.lower(1), "x", "1");
        Fixture.file(f.upper(), "x", "2");
        String json = new String(DiffReport.json(changes(f)), StandardCharsets.UTF_8);
        var tree = Json.MAPPER.readTree(json);
        assertEquals("C", tree.get("changes").get(0).get("kind").asText());
        assertEquals("/x", tree.get("changes").get(0).get("path").asText());
        assertEquals("file", tree.get("changes").get(0).get("type").asText());
        assertEquals("C /x\n", DiffReport.text(changes(f)));
    }

    /**
     * Directories renamed with redirect_dir (overlay.redirect on the upper's directory, the old name whited
     * out): R with where the lowers have them, what changed inside compared with that directory, no D for
     * the old name; a renamed directory inside a renamed one; a redirect whose target the lowers do not
     * have is an A.
     */
    @Test void directoriesRenamedWithRedirectsAreRenames() throws IOException {
        Fixture f = Fixture.of(tmp, 1, true);
        Fixture.file(f.lower(1), "a/f", "f");
        Fixture.file(f.lower(1), "a/g", "g");
        Fixture.file(f.lower(1), "a/s/h", "h");
        Fixture.file(f.lower(1), "c/d/k", "k");
        Fixture.dir(f.upper(), "b");
        Fixture.setxattr(f.upper().resolve("b"), "user.overlay.redirect", "a");
        sameMeta(f.lower(1).resolve("a"), f.upper().resolve("b"));
        Fixture.whiteout(f.upper(), "a", WhiteoutForm.WH_FILE);
        Fixture.file(f.upper(), "b/new", "n");                          // added inside the renamed directory
        Fixture.whiteout(f.upper(), "b/g", WhiteoutForm.WH_FILE);        // deleted inside it
        Fixture.dir(f.upper(), "b/t");                                   // a directory renamed inside it
        Fixture.setxattr(f.upper().resolve("b/t"), "user.overlay.redirect", "s");
        sameMeta(f.lower(1).resolve("a/s"), f.upper().resolve("b/t"));
        Fixture.whiteout(f.upper(), "b/s", WhiteoutForm.WH_FILE);
        Fixture.dir(f.upper(), "e");
        Fixture.setxattr(f.upper().resolve("e"), "user.overlay.redirect", "/c/d");   // moved elsewhere
        sameMeta(f.lower(1).resolve("c/d"), f.upper().resolve("e"));
        Fixture.whiteout(f.upper(), "c/d", WhiteoutForm.WH_FILE);
        Fixture.dir(f.upper(), "x");
        Fixture.setxattr(f.upper().resolve("x"), "user.overlay.redirect", "/nowhere");
        sameMeta(f.lower(1).resolve("c"), f.upper().resolve("c"));
        assertEquals(List.of("R /b", "D /b/g", "A /b/new", "R /b/t", "C /c", "R /e", "A /x"), diff(f));
        List<Change> c = changes(f);
        assertEquals("/a", c.get(0).from());
        assertEquals("/a/s", c.get(3).from());
        assertEquals("/c/d", c.get(5).from());
        String text = DiffReport.text(c);
        assertTrue(text.startsWith("R /b (from /a)\n"), text);
        assertEquals("/a", Json.MAPPER.readTree(DiffReport.json(c)).get("changes").get(0).get("from").asText());
    }
}
