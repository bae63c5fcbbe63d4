package dev.strata.image;

import dev.strata.image.TestImages.Layer;
import dev.strata.layer.Markers;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static dev.strata.image.RawTar.b;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * What only root can check: ownership, device nodes, trusted/security xattrs, the privileged marker
 * forms, the kernel overlay reading a store's layers, and a full disk (a small tmpfs).
 * Run with {@code mvn -B -q test -Dstrata.excludedGroups= -Dtest='dev.strata.image.**'}.
 */
@Tag("native")
class NativeImageTest {
    @TempDir Path tmp;

    @BeforeEach
    void needRoot() {
        assumeTrue(Posix.geteuid() == 0, "needs root (ownership, devices, trusted xattrs, mounts)");
    }

    private Path extract(byte[] tar) throws IOException {
        Path dir = Files.createDirectory(tmp.resolve("layer"));
        int fd = Posix.openat(Posix.AT_FDCWD, dir.toString(), Posix.O_PATH | Posix.O_DIRECTORY, 0);
        try (LayerExtractor ex = new LayerExtractor(fd, "layer", () -> Long.MAX_VALUE, Long.MAX_VALUE)) {
            ex.extract(new TarReader(new ByteArrayInputStream(tar)));
        } finally {
            Posix.close(fd);
        }
        return dir;
    }

    private static Stat lstat(Path p) {
        Stat st = new Stat();
        assertEquals(0, Posix.fstatat(Posix.AT_FDCWD, p.toString(), st, Posix.AT_SYMLINK_NOFOLLOW), p.toString());
        return st;
    }

    @Test
    void ownershipModesDevicesAndPrivilegedXattrs() throws IOException {
        // security.capability v2 for cap_net_bind_service=ep: binary, with NUL and high bytes
        byte[] cap = {1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
        byte[] opaque = {(byte) 0xde, (byte) 0xad, 0, (byte) 0xbe, (byte) 0xef};
        byte[] tar = new RawTar()
                .entry(b("dir"), '5', null, null, 0700, 42, 43, 0, 0, null)
                .entry(b("dir/suid"), '0', b("#!/bin/true\n"), null, 06755, 1234, 5678, 0, 0,
                        Map.of("SCHILY.xattr.security.capability", cap, "SCHILY.xattr.trusted.blob", opaque))
                .entry(b("lnk"), '2', null, b("dir/suid"), 0777, 7, 8, 0, 0, Map.of("SCHILY.xattr.trusted.l", b("on a link")))
                .entry(b("dev/null"), '3', null, null, 0666, 0, 0, 1, 3, null)
                .entry(b("dev/loop0"), '4', null, null, 0660, 0, 6, 7, 0, null)
                .entry(b("dev/big"), '3', null, null, 0600, 0, 0, 300, 70000, null)
                .entry(b("fifo"), '6', null, null, 0620, 99, 98, 0, 0, null)
                .file(".wh.gone", "")
                .dir("o", 0755)
                .file("o/.wh..wh..opq", "")
                .entry(b("x"), '5', null, null, 0755, 0, 0, 0, 0, Map.of("SCHILY.xattr.trusted.overlay.opaque", b("y")))
                .entry(b("z"), '0', b("z"), null, 0644, 0, 0, 0, 0, Map.of("SCHILY.xattr.trusted.overlay.redirect", b("/etc")))
                .bytes();
        Path dir = extract(tar);

        Stat st = lstat(dir.resolve("dir"));
        assertEquals(42, st.uid());
        assertEquals(43, st.gid());
        assertEquals(0700, st.perm());
        st = lstat(dir.resolve("dir/suid"));
        assertEquals(1234, st.uid());
        assertEquals(5678, st.gid());
        assertEquals(06755, st.perm(), "setuid/setgid survive the chown (chmod comes after it)");
        assertArrayEquals(cap, Posix.lgetxattr(dir + "/dir/suid", "security.capability"), "capability set after the chown");
        assertArrayEquals(opaque, Posix.lgetxattr(dir + "/dir/suid", "trusted.blob"));
        st = lstat(dir.resolve("lnk"));
        assertEquals(7, st.uid());
        assertEquals(8, st.gid());
        assertArrayEquals(b("on a link"), Posix.lgetxattr(dir + "/lnk", "trusted.l"));
        st = lstat(dir.resolve("dev/null"));
        assertEquals(Posix.S_IFCHR, st.type());
        assertEquals(LayerExtractor.makedev(1, 3), st.rdev());
        assertEquals(0666, st.perm());
        st = lstat(dir.resolve("dev/loop0"));
        assertEquals(Posix.S_IFBLK, st.type());
        assertEquals(LayerExtractor.makedev(7, 0), st.rdev());
        assertEquals(6, st.gid());
        assertEquals(LayerExtractor.makedev(300, 70000), lstat(dir.resolve("dev/big")).rdev());
        st = lstat(dir.resolve("fifo"));
        assertEquals(Posix.S_IFIFO, st.type());
        assertEquals(99, st.uid());
        assertEquals(0620, st.perm());

        int[] err = {0};
        dev.strata.layer.Layer layer = dev.strata.layer.Layer.open(dir, 0, false, err);
        try {
            assertEquals(Markers.WhiteoutForm.CHAR_DEVICE, Markers.whiteout(layer, "", "gone"));
            assertFalse(Files.exists(dir.resolve(".wh.gone")), "root writes the kernel's form, not a .wh. file");
            assertEquals(Markers.OpaqueForm.TRUSTED_XATTR, Markers.opaque(layer, "o"));
            assertFalse(Files.exists(dir.resolve("o/.wh..wh..opq")));
            assertEquals(Markers.OpaqueForm.TRUSTED_XATTR, Markers.opaque(layer, "x"), "an opaque xattr in the tar is kept");
            assertEquals(null, Posix.lgetxattr(dir + "/z", "trusted.overlay.redirect"), "other overlay xattrs are dropped");
        } finally {
            layer.close();
        }
    }

    /** The kernel overlay, given the store's layer directories, shows the image as the layers mean it. */
    @Test
    void theKernelOverlayReadsTheStoresLayers() throws Exception {
        assumeTrue(Files.readString(Path.of("/proc/filesystems")).contains("overlay"), "no overlay in this kernel");
        Layer base = new Layer(ImageStoreTest.baseTar(), "gzip"), top = new Layer(ImageStoreTest.topTar("v2"), "zstd");
        Path layout = TestImages.ociLayout(tmp.resolve("img"), "1", base, top);
        ImageStore store = ImageStore.open(tmp.resolve("store"));
        store.importImage(new ImageStore.ImportRequest(layout), ImportListener.QUIET);
        List<Path> dirs = store.lowerDirsTopFirst("img:1");
        Path mnt = Files.createDirectory(tmp.resolve("mnt"));
        String lower = dirs.stream().map(Path::toString).collect(Collectors.joining(":"));
        Process p = new ProcessBuilder("mount", "-t", "overlay", "overlay", "-o", "ro,lowerdir=" + lower, mnt.toString())
                .redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0, "the kernel overlay cannot mount the store's layers: " + out);
        try {
            assertFalse(Files.exists(mnt.resolve("etc/os-release")), "the whiteout hides the base file");
            assertEquals(List.of("b"), list(mnt.resolve("var/cache")), "the opaque directory hides the base's contents");
            assertEquals("v2", Files.readString(mnt.resolve("usr/bin/app")));
            assertEquals("v1", Files.readString(mnt.resolve("usr/bin/app-link")));
            assertEquals(List.of("etc", "usr", "var"), list(mnt));
        } finally {
            Process u = new ProcessBuilder("umount", mnt.toString()).redirectErrorStream(true).start();
            u.getInputStream().readAllBytes();
            u.waitFor(30, TimeUnit.SECONDS);
        }
        assertFalse(Files.readString(Path.of("/proc/self/mounts")).contains(mnt.toString()), "unmounted");
    }

    /**
     * {@code strata mount --image} shows an imported image exactly as the kernel overlay shows the same
     * layer directories (every entry: type, mode, owner, size, content, link target, xattrs).
     */
    @Test
    void strataMountOfAnImageEqualsTheKernelOverlay() throws Exception {
        assumeTrue(Files.readString(Path.of("/proc/filesystems")).contains("overlay"), "no overlay in this kernel");
        Path home = Path.of(System.getProperty("user.dir"));
        assumeTrue(Files.isRegularFile(home.resolve("target/strata.jar")), "strata is not built (mvn package)");
        assumeTrue(Files.exists(Path.of("/dev/fuse")), "no /dev/fuse");
        Layer base = new Layer(ImageStoreTest.baseTar(), "gzip"), top = new Layer(ImageStoreTest.topTar("v2"), "zstd");
        // owners, xattrs and content beyond the first bytes that must show the same through both
        byte[] big = new byte[300_000];
        for (int i = 0; i < big.length; i++) big[i] = (byte) (i * 7 + i / 1000);
        Layer extra = new Layer(new RawTar().dir("opt", 0755)
                .entry(b("opt/owned"), '0', big, null, 0640, 1000, 1001, 0, 0, Map.of("SCHILY.xattr.user.note", b("kept")))
                .entry(b("opt/tagged"), '0', b("t"), null, 0600, 33, 44, 0, 0, Map.of("SCHILY.xattr.trusted.tag", new byte[]{0, 1, 2}))
                .bytes(), "none");
        Path layout = TestImages.ociLayout(tmp.resolve("img"), "1", base, top, extra);
        ImageStore store = ImageStore.open(tmp.resolve("store"));
        store.importImage(new ImageStore.ImportRequest(layout), ImportListener.QUIET);
        String lower = store.lowerDirsTopFirst("img:1").stream().map(Path::toString).collect(Collectors.joining(":"));
        Path kmnt = Files.createDirectory(tmp.resolve("kmnt")), smnt = Files.createDirectory(tmp.resolve("smnt"));
        Process p = new ProcessBuilder("mount", "-t", "overlay", "overlay", "-o", "ro,lowerdir=" + lower, kmnt.toString())
                .redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0, "the kernel overlay cannot mount the store's layers: " + out);
        try {
            Process s = new ProcessBuilder(home.resolve("bin/strata").toString(), "mount", "--image", "img:1",
                    "--store", tmp.resolve("store").toString(), smnt.toString()).redirectErrorStream(true).start();
            String sout = new String(s.getInputStream().readAllBytes());
            assertTrue(s.waitFor(60, TimeUnit.SECONDS) && s.exitValue() == 0, "strata mount --image: " + sout);
            try {
                Map<String, String> kernel = Snapshot.full(kmnt);
                assertEquals(kernel, Snapshot.full(smnt));
                assertTrue(kernel.get("opt/owned").matches("file 0640 size=300000 owner=1000:1001 sha256=[0-9a-f]{64} xattrs=\\{user.note=kept}"),
                        "owner, content and xattrs are compared: " + kernel.get("opt/owned"));
                assertTrue(kernel.get("opt/tagged").endsWith(" owner=33:44 sha256=" + TestImages.sha("t".getBytes()).replace("sha256:", "")
                        + " xattrs={trusted.tag=0x000102}"), kernel.get("opt/tagged"));
                assertEquals("v2", Files.readString(smnt.resolve("usr/bin/app")));
                assertFalse(Files.exists(smnt.resolve("etc/os-release")), "the whiteout hides the base file");
                Process rm = new ProcessBuilder(home.resolve("bin/strata").toString(), "image", "rm", "img:1",
                        "--store", tmp.resolve("store").toString()).redirectErrorStream(true).start();
                String rmOut = new String(rm.getInputStream().readAllBytes());
                assertTrue(rm.waitFor(60, TimeUnit.SECONDS));
                assertEquals(1, rm.exitValue(), rmOut);
                assertTrue(rmOut.contains("is in use by the strata mount at " + smnt), rmOut);
                assertEquals("v2", Files.readString(smnt.resolve("usr/bin/app")), "nothing was removed");
            } finally {
                Process u = new ProcessBuilder(home.resolve("bin/strata").toString(), "umount", smnt.toString())
                        .redirectErrorStream(true).start();
                u.getInputStream().readAllBytes();
                if (!u.waitFor(30, TimeUnit.SECONDS) || u.exitValue() != 0) {
                    new ProcessBuilder("umount", "-l", smnt.toString()).start().waitFor(30, TimeUnit.SECONDS);
                }
            }
        } finally {
            Process u = new ProcessBuilder("umount", kmnt.toString()).redirectErrorStream(true).start();
            u.getInputStream().readAllBytes();
            u.waitFor(30, TimeUnit.SECONDS);
        }
        String mounts = Files.readString(Path.of("/proc/self/mounts"));
        assertFalse(mounts.contains(kmnt.toString()) || mounts.contains(smnt.toString()), "unmounted");
    }

    private static List<String> list(Path d) throws IOException {
        try (Stream<Path> s = Files.list(d)) {
            return s.map(x -> x.getFileName().toString()).sorted().collect(Collectors.toList());
        }
    }

    /** A full disk (a 4 MiB tmpfs with 40 inodes) stops the import with a clear message and leaves no half layer. */
    @Test
    void aFullDiskLeavesNoHalfLayer() throws Exception {
        Path small = Files.createDirectory(tmp.resolve("small"));
        Process p = new ProcessBuilder("mount", "-t", "tmpfs", "-o", "size=4m,nr_inodes=40", "tmpfs", small.toString())
                .redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assumeTrue(p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0, "cannot mount tmpfs here: " + out);
        try {
            ImageStore store = ImageStore.open(small.resolve("store"));
            // more files than the tmpfs has inodes: the disk fills while writing (ENOSPC from the kernel)
            RawTar many = new RawTar();
            for (int i = 0; i < 100; i++) many.file("f" + i, "tiny");
            Path t0 = Files.write(tmp.resolve("many.tar"), many.bytes());
            ImageException e = assertThrows(ImageException.class,
                    () -> store.importImage(new ImageStore.ImportRequest(t0), ImportListener.QUIET));
            assertTrue(e.getMessage().matches("layer 1/1: no space left in the store while writing 'f\\d+' \\(No space left on device\\)"),
                    e.getMessage());
            assertEquals(List.of(), list(small.resolve("store/tmp")));
            assertEquals(List.of(), list(small.resolve("store/layers/sha256")));
            assertEquals(List.of(), list(small.resolve("store/images")));
            // files each smaller than the free space, together bigger: refused as the space runs out
            RawTar big = new RawTar();
            for (int i = 0; i < 12; i++) big.file("g" + i, new byte[512 * 1024], 0644);
            Path t1 = Files.write(tmp.resolve("big.tar"), TestImages.gzip(big.bytes()));
            e = assertThrows(ImageException.class, () -> store.importImage(new ImageStore.ImportRequest(t1), ImportListener.QUIET));
            assertTrue(e.getMessage().matches("layer 1/1: 'g\\d+' claims 512 KiB but only .* are free in the store"), e.getMessage());
            assertEquals(List.of(), list(small.resolve("store/tmp")));
            assertEquals(List.of(), list(small.resolve("store/layers/sha256")));
            // one file bigger than the disk: refused before writing
            Path t2 = Files.write(tmp.resolve("one.tar"), TestImages.gzip(new RawTar().file("big", new byte[8 << 20], 0644).bytes()));
            e = assertThrows(ImageException.class, () -> store.importImage(new ImageStore.ImportRequest(t2), ImportListener.QUIET));
            assertTrue(e.getMessage().matches("layer 1/1: 'big' claims 8.0 MiB but only .* are free in the store"), e.getMessage());
            assertEquals(List.of(), list(small.resolve("store/tmp")));
            // and once there is room, the store works
            Path t3 = Files.write(tmp.resolve("ok.tar"), new RawTar().file("ok", "fits").bytes());
            store.importImage(new ImageStore.ImportRequest(t3), ImportListener.QUIET);
            assertEquals(1, store.images().size());
        } finally {
            Process u = new ProcessBuilder("umount", small.toString()).redirectErrorStream(true).start();
            u.getInputStream().readAllBytes();
            u.waitFor(30, TimeUnit.SECONDS);
        }
        assertFalse(Files.readString(Path.of("/proc/self/mounts")).contains(small.toString()), "unmounted");
    }

    /** The same tar as root gives the owners of the archive, and an implied parent is root's. */
    @Test
    void impliedParentsBelongToRoot() throws IOException {
        Path dir = extract(new RawTar().entry(b("a/b/c"), '0', b("x"), null, 0644, 1000, 1000, 0, 0, null).bytes());
        assertEquals(0, lstat(dir.resolve("a")).uid());
        assertEquals(1000, lstat(dir.resolve("a/b/c")).uid());
    }
}
