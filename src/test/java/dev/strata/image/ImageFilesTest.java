package dev.strata.image;

import dev.strata.posix.Posix;
import dev.strata.posix.Stat;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * image cat and cp on links of every kind (symbolic: chains, loops, absolute, through '..', to a
 * directory, to a hidden path; hard), a whiteout and an opaque directory, and the image root's own
 * metadata kept by commit. Two layers, no mount.
 */
class ImageFilesTest {
    @TempDir Path tmp;
    ImageStore store;

    @BeforeEach
    void twoLayerImage() throws IOException {
        byte[] bottom = new TestImages.CcTar()
                .dir("etc", 0755)
                .file("etc/conf", "conf", 0644)
                .file("etc/old", "old", 0644)
                .dir("usr/lib/gone", 0755)
                .file("usr/lib/gone/a", "a", 0644)
                .dir("opt/x", 0755)
                .file("opt/x/hidden", "hidden", 0644)
                .file("bin/tool", "tool", 0755)
                .hardlink("bin/tool2", "bin/tool")
                .bytes();
        byte[] top = new TestImages.CcTar()
                .dir("usr/lib", 0755)
                .file("usr/lib/.wh.gone", "", 0644)
                .dir("opt/x", 0755)
                .file("opt/x/.wh..wh..opq", "", 0644)
                .file("opt/x/new", "new", 0644)
                .dir("l", 0755)
                .symlink("l/loop1", "loop2")
                .symlink("l/loop2", "/l/loop1")
                .symlink("l/self", "self")
                .symlink("l/chain1", "chain2")
                .symlink("l/chain2", "/l/chain3")
                .symlink("l/chain3", "../etc/conf")
                .symlink("l/out", "../../../../../../etc")
                .symlink("l/etcdir", "/etc")
                .symlink("l/togone", "/usr/lib/gone/a")
                .symlink("l/tohidden", "../opt/x/hidden")
                .symlink("l/dangling", "/nowhere")
                .bytes();
        Path oci = TestImages.ociLayout(tmp.resolve("oci"), "1",
                new TestImages.Layer(bottom, "gzip"), new TestImages.Layer(top, "gzip"));
        store = ImageStore.open(tmp.resolve("store"));
        ImageStore.ImportRequest req = new ImageStore.ImportRequest(oci);
        req.name = "img:1";
        store.importImage(req, ImportListener.QUIET);
    }

    String cat(String path) throws IOException {
        try (ImageFiles f = ImageFiles.open(store, "img:1")) {
            ByteArrayOutputStream o = new ByteArrayOutputStream();
            f.cat(path, o);
            return o.toString(java.nio.charset.StandardCharsets.ISO_8859_1);
        }
    }

    String catError(String path) {
        return assertThrows(ImageException.class, () -> cat(path)).getMessage();
    }

    @Test
    void catFollowsLinksInsideTheImage() throws IOException {
        assertEquals("conf", cat("/l/chain1"), "a chain of relative and absolute links");
        assertEquals("conf", cat("/l/out/conf"), "'..' past the root through a link stays at the image's root");
        assertEquals("conf", cat("/l/etcdir/conf"), "a path through a link to a directory");
        assertEquals("old", cat("/l/etcdir/../etc/old"), "'..' after a directory link goes up from its target");
        assertEquals("tool", cat("/bin/tool2"), "a hard link: the content");
    }

    @Test
    void aLinkLoopIsOneLineLikeEloop() {
        for (String p : List.of("/l/loop1", "/l/self", "/l/loop2/x")) {
            String m = catError(p);
            assertTrue(m.contains("too many levels of symbolic links"), m);
            assertFalse(m.contains("\n"), m);
        }
    }

    @Test
    void hiddenPathsAreNotFoundAndTheLayerIsNamed() {
        String wh = catError("/usr/lib/gone/a");
        assertTrue(wh.contains("/usr/lib/gone is whited out in lower1"), wh);
        assertTrue(wh.contains("lower1 = layer 2 of 2"), wh);
        String viaLink = catError("/l/togone");
        assertTrue(viaLink.contains("/usr/lib/gone is whited out in lower1"), "the link's target is named: " + viaLink);
        String opq = catError("/opt/x/hidden");
        assertTrue(opq.contains("opaque") && opq.contains("lower2 holds it"), opq);
        String opqLink = catError("/l/tohidden");
        assertTrue(opqLink.contains("/opt/x/hidden") && opqLink.contains("opaque"), opqLink);
        String dangling = catError("/l/dangling");
        assertTrue(dangling.contains("/nowhere") && dangling.contains("no such file"), dangling);
        for (String m : List.of(wh, viaLink, opq, opqLink, dangling)) assertFalse(m.contains("\n"), m);
    }

    @Test
    void cpCopiesALinkAsALinkUnlessFollowedOrGivenWithATrailingSlash() throws IOException {
        Path out = Files.createDirectory(tmp.resolve("out"));
        try (ImageFiles f = ImageFiles.open(store, "img:1")) {
            f.cp("/l/etcdir", out.resolve("link").toString(), false);
            assertEquals("/etc", Files.readSymbolicLink(out.resolve("link")).toString(), "the link itself, as docker cp");
            f.cp("/l/etcdir/", out.resolve("slash").toString(), false);
            assertTrue(Files.isDirectory(out.resolve("slash"), java.nio.file.LinkOption.NOFOLLOW_LINKS),
                    "a trailing slash resolves the link, as in POSIX path resolution");
            assertEquals("conf", Files.readString(out.resolve("slash/conf")));
            f.cp("/l/chain1", out.resolve("followed").toString(), true);
            assertFalse(Files.isSymbolicLink(out.resolve("followed")));
            assertEquals("conf", Files.readString(out.resolve("followed")), "-L: the file the chain ends at");
            f.cp("/l/dangling", out.resolve("dangling").toString(), false);
            assertEquals("/nowhere", Files.readSymbolicLink(out.resolve("dangling")).toString());
            ImageException loop = assertThrows(ImageException.class, () -> f.cp("/l/loop1", out.resolve("loop").toString(), true));
            assertTrue(loop.getMessage().contains("too many levels of symbolic links"), loop.getMessage());
            assertFalse(Files.exists(out.resolve("loop"), java.nio.file.LinkOption.NOFOLLOW_LINKS));
            ImageException opq = assertThrows(ImageException.class, () -> f.cp("/opt/x/hidden", out.resolve("h").toString(), false));
            assertTrue(opq.getMessage().contains("opaque"), opq.getMessage());
        }
    }

    @Test
    void cpKeepsHardLinksTogetherInATreeAndCopiesOneAlone() throws IOException {
        Path out = Files.createDirectory(tmp.resolve("out"));
        try (ImageFiles f = ImageFiles.open(store, "img:1")) {
            f.cp("/bin", out.resolve("bin").toString(), false);
            f.cp("/bin/tool2", out.resolve("one").toString(), false);
        }
        Stat a = new Stat(), b = new Stat(), c = new Stat();
        Posix.fstatat(Posix.AT_FDCWD, out.resolve("bin/tool").toString(), a, 0);
        Posix.fstatat(Posix.AT_FDCWD, out.resolve("bin/tool2").toString(), b, 0);
        Posix.fstatat(Posix.AT_FDCWD, out.resolve("one").toString(), c, 0);
        assertEquals(a.ino(), b.ino());
        assertEquals(2, a.nlink());
        assertNotEquals(a.ino(), c.ino());
        assertEquals(1, c.nlink());
        assertEquals("tool", Files.readString(out.resolve("one")));
    }

    @Test
    void commitKeepsTheUpperRootsModeTimesAndXattrs() throws IOException {
        Path upper = Files.createDirectories(tmp.resolve("upper"));
        Files.writeString(upper.resolve("f"), "f");
        assertEquals(0, Posix.fchmodat(Posix.AT_FDCWD, upper.toString(), 0700));
        Files.setLastModifiedTime(upper, FileTime.fromMillis(1_600_000_000_123L));
        boolean xattr = Posix.lsetxattr(upper.toString(), "user.note", "root".getBytes(), 0) == 0;
        Committer.Request r = new Committer.Request();
        r.upper = upper.toString();
        r.base = "img:1";
        r.name = "img:2";
        Committer.Result res = Committer.commit(store, r, ImportListener.QUIET);
        Stat st = new Stat();
        assertEquals(0, Posix.fstatat(Posix.AT_FDCWD, store.layerDir(Digest.parse(res.layer.diffId)).toString(), st, 0));
        assertEquals(0700, st.perm(), "the layer's root is the upper's");
        try (ImageFiles f = ImageFiles.open(store, "img:2")) {
            ImageFiles.Resolved root = f.resolve("/", false);
            assertEquals(0700, root.st.perm());
            assertEquals(1_600_000_000L, root.st.mtime());
            assertEquals(123_000_000L, root.st.mtimeNs());
        }
        if (xattr) {
            byte[] v = Posix.lgetxattr(store.layerDir(Digest.parse(res.layer.diffId)).toString(), "user.note");
            assertEquals("root", v == null ? null : new String(v));
        }
        // the same upper (root included) gives the same layer
        r.name = "img:3";
        assertEquals(res.layer.diffId, Committer.commit(store, r, ImportListener.QUIET).layer.diffId);
    }
}
