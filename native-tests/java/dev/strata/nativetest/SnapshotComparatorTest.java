package dev.strata.nativetest;

import dev.strata.posix.Posix;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The comparator itself, on plain directories (no mount, no root): two identical builds compare equal,
 * and each kind of corruption of one copy is reported on the right name and field. If this test
 * passes, an empty diff between two mounts means something.
 */
class SnapshotComparatorTest {
    private Path dir;
    private Tree a, b;

    @BeforeEach void build() {
        dir = NativeSupport.newTempDir("comparator");
        a = sample(new Tree(dir.resolve("a")));
        b = sample(new Tree(dir.resolve("b")));
    }

    @AfterEach void clean() { NativeSupport.deleteTree(dir); }

    private static Tree sample(Tree t) {
        t.root().toFile().mkdirs();
        t.dir("", 0755);
        t.file("plain.txt", "hello\n").file("sub/nested/deep.txt", "deep\n");
        t.file("data.bin", LayerBuilder.bytes(1, 200_000), 0640, Posix.geteuid(), Posix.getgid());
        t.sparse("sparse.img", 4 << 20, new long[]{1 << 20}, LayerBuilder.bytes(2, 4096));
        t.symlink("link", "plain.txt");
        t.file("hl1", "linked\n").hardlink("hl1", "sub/hl2");
        t.fifo("pipe", 0600);
        t.file("x.txt", "x\n").xattr("x.txt", "user.k", "v1");
        t.file(Names.bytes('c', 'a', 'f', 0xe9), "latin-1\n");
        t.fixTimes();
        return t;
    }

    private List<String> diff() {
        return Snapshot.diff(Snapshot.take("a", a.root()), Snapshot.take("b", b.root()), Snapshot.Options.all(), 50);
    }

    private void assertReported(String name, String field) {
        List<String> d = diff();
        assertTrue(d.stream().anyMatch(l -> l.contains(name) && l.contains(field)),
                "expected a difference on " + name + " / " + field + ", got: " + d);
    }

    @Test void identicalBuildsCompareEqual() {
        Snapshot sa = Snapshot.take("a", a.root());
        assertEquals(List.of(), diff());
        assertTrue(sa.size() >= 12, "walk found too few entries: " + sa.dump());
        assertEquals("symlink", sa.get("link").type());
        assertEquals("plain.txt", sa.get("link").target());
        assertEquals(2, sa.get("hl1").nlink());
        assertEquals(sa.get("hl1").ino(), sa.get("sub/hl2").ino());
        assertEquals("v1", sa.get("x.txt").xattrs().get("user.k"));
        assertEquals("fifo", sa.get("pipe").type());
        assertTrue(sa.entries().containsKey(Names.bytes('c', 'a', 'f', 0xe9)), "non-UTF-8 name missing: " + sa.dump());
    }

    @Test void contentChangeOfSameSizeIsCaught() {
        overwrite(b, "plain.txt", "HELLO\n".getBytes(), 0);
        b.fixTimes();
        assertReported("plain.txt", "sha256");
    }

    @Test void changeDeepInsideABigFileIsCaught() {
        overwrite(b, "data.bin", new byte[]{42}, 150_000);
        b.fixTimes();
        assertReported("data.bin", "sha256");
    }

    @Test void modeChangeIsCaught() {
        Tree.check(Posix.fchmodat(Posix.AT_FDCWD, b.abs("plain.txt"), 0600), "chmod");
        assertReported("plain.txt", "mode");
    }

    @Test void xattrChangeIsCaught() {
        b.xattr("x.txt", "user.k", "v2");
        assertReported("x.txt", "xattr user.k");
        b.xattr("plain.txt", "user.new", "n");
        assertReported("plain.txt", "xattr user.new");
    }

    @Test void symlinkTargetIsCaught() {
        Tree.check(Posix.unlinkat(Posix.AT_FDCWD, b.abs("link"), 0), "unlink");
        b.symlink("link", "other.txt").fixTimes();
        assertReported("link", "target");
    }

    @Test void extraAndMissingEntriesAreCaught() {
        b.file("sub/nested/extra", "");
        Tree.check(Posix.unlinkat(Posix.AT_FDCWD, b.abs("pipe"), 0), "unlink");
        b.fixTimes();
        assertReported("sub/nested/extra", "only in b");
        assertReported("pipe", "only in a");
    }

    @Test void typeChangeIsCaught() {
        Tree.check(Posix.unlinkat(Posix.AT_FDCWD, b.abs("pipe"), 0), "unlink");
        b.file("pipe", "").fixTimes();
        assertReported("pipe", "type");
    }

    @Test void brokenHardLinkIsCaught() {
        Tree.check(Posix.unlinkat(Posix.AT_FDCWD, b.abs("sub/hl2"), 0), "unlink");
        b.file("sub/hl2", "linked\n").fixTimes();
        assertReported("hl1", "nlink");
        assertReported("hl1", "same inode as");
    }

    @Test void lostHoleIsCaught() {
        // same content, but the holes are filled with written zeros
        byte[] zeros = new byte[1 << 20];
        overwrite(b, "sparse.img", zeros, 0);
        for (int i = 2; i < 4; i++) overwrite(b, "sparse.img", zeros, (long) i << 20);
        b.fixTimes();
        List<String> d = diff();
        assertTrue(d.stream().noneMatch(l -> l.contains("sha256")), "content is the same: " + d);
        assertReported("sparse.img", "holes");
    }

    @Test void preservedTimeIsCompared() {
        Tree.check(Posix.utimensat(Posix.AT_FDCWD, b.abs("plain.txt"), 1_000_000_000L, 5, 1_000_000_000L, 6, 0), "utimens");
        assertReported("plain.txt", "mtime");
        // a time "now" on one side and an old one on the other is a difference too (a lost utimens)
        Tree.check(Posix.utimensat(Posix.AT_FDCWD, b.abs("plain.txt"), 0, Posix.UTIME_NOW, 0, Posix.UTIME_NOW, 0), "utimens");
        assertReported("plain.txt", "mtime");
    }

    @Test void nonUtf8NameChangeIsCaught() {
        String old = Names.bytes('c', 'a', 'f', 0xe9), renamed = Names.bytes('c', 'a', 'f', 0xe8);
        Tree.check(Posix.renameat2(Posix.AT_FDCWD, b.abs(old), Posix.AT_FDCWD, b.abs(renamed), 0), "rename");
        List<String> d = diff();
        assertTrue(d.stream().anyMatch(l -> l.contains("only in a: caf\\xe9")), d.toString());
        assertTrue(d.stream().anyMatch(l -> l.contains("only in b: caf\\xe8")), d.toString());
    }

    @Test void diffIsBounded() {
        for (int i = 0; i < 30; i++) b.file("many/f" + i, "x");
        b.fixTimes();
        List<String> d = Snapshot.diff(Snapshot.take("a", a.root()), Snapshot.take("b", b.root()), Snapshot.Options.all(), 5);
        assertEquals(6, d.size(), d.toString());
        assertTrue(d.get(5).startsWith("... and "), d.toString());
    }

    private static void overwrite(Tree t, String rel, byte[] data, long off) {
        int fd = Tree.check(Posix.openat(Posix.AT_FDCWD, t.abs(rel), Posix.O_WRONLY, 0), "open " + rel);
        try { Tree.writeAll(fd, data, off, rel); } finally { Posix.close(fd); }
    }
}
