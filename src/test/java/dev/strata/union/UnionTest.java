package dev.strata.union;

import dev.strata.layer.Markers;
import dev.strata.options.MountOptions;
import dev.strata.posix.Buffers;
import dev.strata.posix.Errno;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;
import jnr.ffi.Pointer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

import static dev.strata.posix.Posix.*;
import static org.junit.jupiter.api.Assertions.*;

/** The engine without FUSE: lookup, merge, whiteouts, opaque directories, copy-up, rename rules. */
class UnionTest {
    @TempDir Path tmp;
    Path l1, l2, l3, upper, work;
    Union u;
    final List<String> events = new ArrayList<>();

    @BeforeEach void layers() throws IOException {
        l1 = Files.createDirectories(tmp.resolve("l1"));
        l2 = Files.createDirectories(tmp.resolve("l2"));
        l3 = Files.createDirectories(tmp.resolve("l3"));
        upper = Files.createDirectories(tmp.resolve("upper"));
        work = Files.createDirectories(tmp.resolve("work"));
    }

    @AfterEach void close() {
        if (u != null) u.close();
    }

    Union mount() {
        MountOptions.Builder b = new MountOptions.Builder();
        b.lowerDirs = List.of(l1, l2, l3);
        b.upperDir = upper;
        b.workDir = work;
        u = Union.open(b.build(), new UnionEvents() {
            @Override public void copiedUp(String path, String from, String type, long bytes, long ns, String m) {
                events.add("copy-up " + path);
            }
            @Override public void whiteout(String path, String form) { events.add("whiteout " + path); }
            @Override public void opaque(String path, String form) { events.add("opaque " + path); }
            @Override public void renameRefused(String from, String to, String why) { events.add("exdev " + from); }
        });
        return u;
    }

    static void write(Path p, String s) throws IOException {
        Files.createDirectories(p.getParent());
        Files.writeString(p, s, StandardCharsets.ISO_8859_1);
    }

    static void whiteoutDevice(Path dir, String name) {
        int r = Posix.mknodat(AT_FDCWD, dir.resolve(name).toString(), S_IFCHR, 0);
        if (r < 0) throw new org.opentest4j.TestAbortedException("mknod of a whiteout needs privilege here: " + Errno.name(r));
    }

    Stat stat(String path) {
        Stat st = new Stat();
        int r = u.getattr(path, st.pointer());
        return r == 0 ? st : null;
    }

    int errnoOf(String path) {
        return u.getattr(path, new Stat().pointer());
    }

    String read(String path) {
        int fd = u.open(path, O_RDONLY);
        assertTrue(fd >= 0, "open " + path + ": " + Errno.name(fd));
        try {
            Pointer buf = Buffers.get(1 << 16);
            long n = u.read(fd, buf, 1 << 16, 0);
            assertTrue(n >= 0);
            byte[] b = new byte[(int) n];
            buf.get(0, b, 0, (int) n);
            return new String(b, StandardCharsets.ISO_8859_1);
        } finally {
            u.release(fd);
        }
    }

    void append(String path, String s) {
        int fd = u.open(path, O_WRONLY | O_APPEND);
        assertTrue(fd >= 0, "open for append " + path + ": " + Errno.name(fd));
        try {
            byte[] b = s.getBytes(StandardCharsets.ISO_8859_1);
            Pointer buf = Buffers.get(b.length);
            buf.put(0, b, 0, b.length);
            assertEquals(b.length, u.write(fd, buf, b.length, 0));
        } finally {
            u.release(fd);
        }
    }

    Set<String> ls(String path) {
        int[] e = new int[1];
        List<String> l = u.list(path, e);
        assertEquals(0, e[0], "readdir " + path);
        assertEquals(l.size(), new TreeSet<>(l).size(), "duplicates in " + l);
        return new TreeSet<>(l);
    }

    // ------------------------------------------------------------------ lookup and merge

    @Test void topLayerWinsAndDirectoriesMerge() throws IOException {
        write(l1.resolve("etc/motd"), "top");
        write(l2.resolve("etc/motd"), "middle");
        write(l3.resolve("etc/motd"), "bottom");
        write(l3.resolve("etc/passwd"), "root");
        write(l2.resolve("etc/hosts"), "hosts");
        mount();
        assertEquals("top", read("/etc/motd"));
        assertEquals(Set.of("hosts", "motd", "passwd"), ls("/etc"));
        assertEquals(1, stat("/etc").nlink(), "merged directories report nlink 1 like the kernel");
    }

    @Test void nonDirectoryHidesDirectoriesBelow() throws IOException {
        write(l1.resolve("x"), "file");
        write(l2.resolve("x/inner"), "hidden");
        mount();
        assertEquals(S_IFREG, stat("/x").type());
        assertEquals(-Errno.ENOTDIR, errnoOf("/x/inner"));
    }

    @Test void aDirectoryAboveAFileStopsTheMerge() throws IOException {
        write(l1.resolve("d/a"), "a");
        write(l2.resolve("d"), "a file named d");
        write(l3.resolve("d/b"), "b");
        mount();
        assertEquals(Set.of("a"), ls("/d"));
    }

    @Test void everyWhiteoutFormHidesLowerNames() throws IOException {
        write(l3.resolve("dir/dev"), "x");
        write(l3.resolve("dir/whfile"), "x");
        write(l3.resolve("dir/xattr"), "x");
        write(l3.resolve("dir/kept"), "x");
        Files.createDirectories(l1.resolve("dir"));
        whiteoutDevice(l1.resolve("dir"), "dev");
        write(l1.resolve("dir/.wh.whfile"), "");
        // an xattr whiteout counts in a directory marked overlay.opaque=x (as the kernel reads them)
        Files.createDirectories(l2.resolve("dir"));
        write(l2.resolve("dir/xattr"), "");
        assertEquals(0, Posix.lsetxattr(l2.resolve("dir/xattr").toString(), Markers.TRUSTED_WHITEOUT, new byte[]{'y'}, 0));
        assertEquals(0, Posix.lsetxattr(l2.resolve("dir").toString(), Markers.TRUSTED_OPAQUE, new byte[]{'x'}, 0));
        mount();
        assertEquals(Set.of("kept"), ls("/dir"));
        for (String n : List.of("dev", "whfile", "xattr")) assertEquals(-Errno.ENOENT, errnoOf("/dir/" + n), n);
        assertEquals(-Errno.ENOENT, errnoOf("/dir/.wh.whfile"), "markers are never visible");
    }

    @Test void everyOpaqueFormStopsTheMerge() throws IOException {
        for (String d : List.of("trusted", "user", "file")) {
            write(l1.resolve(d + "/new"), "n");
            write(l2.resolve(d + "/old"), "o");
        }
        assertEquals(0, Posix.lsetxattr(l1.resolve("trusted").toString(), Markers.TRUSTED_OPAQUE, new byte[]{'y'}, 0));
        assertEquals(0, Posix.lsetxattr(l1.resolve("user").toString(), Markers.USER_OPAQUE, new byte[]{'y'}, 0));
        write(l1.resolve("file/.wh..wh..opq"), "");
        mount();
        for (String d : List.of("trusted", "user", "file")) {
            assertEquals(Set.of("new"), ls("/" + d), d);
            assertEquals(-Errno.ENOENT, errnoOf("/" + d + "/old"), d);
        }
    }

    @Test void namesAreBytes() throws IOException {
        String name = "caf\u00e9-\u00ff\u0080"; // Latin-1 chars = raw bytes 0xe9 0xff 0x80: not UTF-8
        // created with the byte-transparent natives: NIO encodes names with the locale's charset
        int fd = Posix.openat(AT_FDCWD, l2 + "/" + name, O_CREAT | O_WRONLY, 0644);
        assertTrue(fd >= 0);
        Pointer b = Buffers.get(5);
        b.put(0, "bytes".getBytes(), 0, 5);
        assertEquals(5, Posix.pwrite(fd, b, 5, 0));
        Posix.close(fd);
        mount();
        assertTrue(ls("/").contains(name));
        assertEquals("bytes", read("/" + name));
        append("/" + name, "!");
        assertEquals("bytes!", read("/" + name));
        assertEquals(0, u.rename("/" + name, "/plain", 0));
        assertEquals(0, u.unlink("/plain"));
        assertEquals(Set.of(), ls("/"));
    }

    // ------------------------------------------------------------------ copy-up

    @Test void writeCopiesUpWithMetadataAndParents() throws IOException {
        Path f = l2.resolve("a/b/file");
        write(f, "hello");
        Files.setPosixFilePermissions(f, java.util.EnumSet.of(java.nio.file.attribute.PosixFilePermission.OWNER_READ,
                java.nio.file.attribute.PosixFilePermission.OWNER_WRITE, java.nio.file.attribute.PosixFilePermission.GROUP_READ));
        assertEquals(0, Posix.lsetxattr(f.toString(), "user.note", "kept".getBytes(), 0));
        Files.setLastModifiedTime(f, FileTime.fromMillis(1_000_000_000_123L));
        mount();
        long inoBefore = stat("/a/b/file").ino();
        append("/a/b/file", " world");
        Path up = upper.resolve("a/b/file");
        assertEquals("hello world", Files.readString(up));
        assertEquals("hello", Files.readString(f), "lower layers are never written");
        assertEquals(0640, Files.getAttribute(up, "unix:mode", java.nio.file.LinkOption.NOFOLLOW_LINKS) instanceof Integer
                ? ((Integer) Files.getAttribute(up, "unix:mode")) & 07777 : -1);
        assertArrayEquals("kept".getBytes(), Posix.lgetxattr(up.toString(), "user.note"));
        assertEquals(inoBefore, stat("/a/b/file").ino(), "st_ino stays the same across copy-up");
        assertTrue(events.contains("copy-up /a") && events.contains("copy-up /a/b") && events.contains("copy-up /a/b/file"), events.toString());
        assertEquals(0, Files.list(work.resolve("work")).count(), "nothing is left in the workdir");
    }

    @Test void copyUpUnderAVeryDeepTreeOnAWorkersStack() throws Exception {
        // 1,500 nested lower directories: the copy-up of the file at the bottom copies up every one of
        // them, on a thread with a FUSE worker's stack (daemon/Threads), as the kernel overlay does
        int depth = 1500;
        int fd = Posix.openat(AT_FDCWD, l1.toString(), O_RDONLY | O_DIRECTORY, 0);
        StringBuilder path = new StringBuilder();
        for (int i = 0; i < depth; i++) {
            assertEquals(0, Posix.mkdirat(fd, "d", 0755));
            int next = Posix.openat(fd, "d", O_RDONLY | O_DIRECTORY, 0);
            Posix.close(fd);
            assertTrue(next >= 0);
            fd = next;
            path.append("/d");
        }
        int f = Posix.openat(fd, "f", O_WRONLY | O_CREAT, 0644);
        assertTrue(f >= 0);
        Posix.close(f);
        Posix.close(fd);
        String file = path + "/f";
        mount();
        int[] r = {Integer.MIN_VALUE};
        Throwable[] thrown = {null};
        Thread t = new Thread(null, () -> {
            try {
                r[0] = u.chmod(file, 0600);
            } catch (Throwable e) {
                thrown[0] = e;
            }
        }, "worker-sized", 256 * 1024);
        t.start();
        t.join();
        assertNull(thrown[0]);
        assertEquals(0, r[0]);
        assertEquals(0600, stat(file).mode() & 07777);
        assertTrue(events.contains("copy-up " + file), "the file was copied up");
        assertEquals(depth + 1, events.stream().filter(e -> e.startsWith("copy-up ")).count(), "every directory above it too");
    }

    @Test void readOnlyOpenSeesDataWrittenAfterCopyUpLikeTheKernel() throws IOException {
        // overlayfs.rst once said such a descriptor keeps the old data; since Linux 4.19 reads go to the
        // copy, and the kernel on the test machine is the oracle
        write(l2.resolve("f"), "old");
        mount();
        int ro = u.open("/f", O_RDONLY);
        assertTrue(ro >= 0);
        try {
            int fd = u.open("/f", O_WRONLY | O_TRUNC);
            assertTrue(fd >= 0);
            byte[] b = "new!".getBytes();
            Pointer p = Buffers.get(4);
            p.put(0, b, 0, 4);
            assertEquals(4, u.write(fd, p, 4, 0));
            u.release(fd);
            Pointer buf = Buffers.get(16);
            assertEquals(4, u.read(ro, buf, 16, 0), "the read-only descriptor reads the copy");
        } finally {
            u.release(ro);
        }
        assertEquals("new!", read("/f"));
        assertEquals("old", Files.readString(l2.resolve("f")));
    }

    @Test void copyUpKeepsHoles() throws IOException {
        Path f = l2.resolve("sparse");
        try (java.io.RandomAccessFile r = new java.io.RandomAccessFile(f.toFile(), "rw")) {
            r.seek(64L << 20);
            r.write(1);
        }
        mount();
        assertEquals(0, u.chmod("/sparse", 0600)); // metadata change copies up with data
        Stat st = new Stat();
        assertEquals(0, Posix.fstatat(AT_FDCWD, upper.resolve("sparse").toString(), st, 0));
        assertEquals((64L << 20) + 1, st.size());
        assertTrue(st.blocks() * 512 < (8L << 20), "holes stay holes, allocated: " + st.blocks() * 512);
    }

    @Test void largeCopyUpIsWrittenBackAsItGoesWithHolesAndDataIntact() throws IOException {
        // past DataCopy.STREAM_MIN: pieces are written back and dropped behind the copy; data ranges
        // around holes and a trailing hole (the size comes from ftruncate) must come out the same
        Path f = l2.resolve("big.img");
        long size = DataCopy.STREAM_MIN + (24L << 20);
        long[] at = {0, 5L << 20, DataCopy.STREAM_MIN - 4096, DataCopy.STREAM_MIN + (3L << 20)};
        byte[] piece = new byte[3 << 20];
        for (int i = 0; i < piece.length; i++) piece[i] = (byte) (i * 31 + 7);
        try (java.io.RandomAccessFile r = new java.io.RandomAccessFile(f.toFile(), "rw")) {
            for (long o : at) { r.seek(o); r.write(piece); }
            r.setLength(size);
        }
        mount();
        int fd = u.open("/big.img", O_WRONLY | O_APPEND);
        assertTrue(fd >= 0, Errno.name(fd));
        u.release(fd);
        Path up = upper.resolve("big.img");
        assertEquals(size, Files.size(up));
        try (java.io.RandomAccessFile a = new java.io.RandomAccessFile(f.toFile(), "r");
             java.io.RandomAccessFile b = new java.io.RandomAccessFile(up.toFile(), "r")) {
            byte[] x = new byte[1 << 20], y = new byte[1 << 20];
            for (long o = 0; o < size; o += x.length) {
                a.seek(o); a.readFully(x);
                b.seek(o); b.readFully(y);
                assertArrayEquals(x, y, "data at " + o);
            }
        }
        Stat st = new Stat();
        assertEquals(0, Posix.fstatat(AT_FDCWD, up.toString(), st, 0));
        assertTrue(st.blocks() * 512 < (24L << 20), "holes stay holes, allocated: " + st.blocks() * 512);
        assertEquals(0, Files.list(work.resolve("work")).count(), "nothing is left in the workdir");
    }

    @Test void truncateToZeroCopiesNoData() throws IOException {
        write(l2.resolve("big"), "x".repeat(100_000));
        mount();
        assertEquals(0, u.truncate("/big", 0));
        assertEquals(0, Files.size(upper.resolve("big")));
        assertEquals(0, stat("/big").size());
    }

    @Test void symlinkAndXattrsOnMergedView() throws IOException {
        Files.createSymbolicLink(l2.resolve("link"), Path.of("target/of/link"));
        mount();
        int[] e = new int[1];
        assertEquals("target/of/link", u.readlink("/link", e));
        assertEquals(0, u.chown("/link", -1, -1));
        assertTrue(Files.isSymbolicLink(upper.resolve("link")), "a chown copies the symlink up as a symlink");
    }

    // ------------------------------------------------------------------ removing and creating

    @Test void unlinkOfLowerFileLeavesWhiteoutOnlyWhereNeeded() throws IOException {
        write(l2.resolve("lower"), "l");
        mount();
        assertEquals(0, u.mknod("/fresh", S_IFREG | 0644, 0, 0, 0));
        assertEquals(0, u.unlink("/lower"));
        assertEquals(0, u.unlink("/fresh"));
        assertEquals(-Errno.ENOENT, errnoOf("/lower"));
        assertEquals(Set.of(), ls("/"));
        assertTrue(Markers.whiteout(u.layers().get(0), "", "lower") != null, "a whiteout hides the lower file");
        assertFalse(Files.exists(upper.resolve("fresh"), java.nio.file.LinkOption.NOFOLLOW_LINKS),
                "an upper-only file needs no whiteout");
        assertFalse(Files.exists(upper.resolve(".wh.fresh")));
    }

    @Test void rmdirOfMergedTreeAndMkdirOverItIsOpaque() throws IOException {
        write(l2.resolve("d/a"), "a");
        write(l3.resolve("d/b"), "b");
        mount();
        assertEquals(-Errno.ENOTEMPTY, u.rmdir("/d"));
        assertEquals(0, u.unlink("/d/a"));
        assertEquals(0, u.unlink("/d/b"));
        assertEquals(0, u.rmdir("/d"));
        assertEquals(-Errno.ENOENT, errnoOf("/d"));
        assertEquals(0, u.mkdir("/d", 0755, 0, 0));
        assertEquals(Set.of(), ls("/d"), "a directory made over a deleted one shows nothing from below");
        assertNotNull(Markers.opaque(u.layers().get(0), "d"));
    }

    @Test void createOverWhiteoutReplacesIt() throws IOException {
        write(l2.resolve("f"), "lower");
        mount();
        assertEquals(0, u.unlink("/f"));
        int fd = u.create("/f", 0644, O_WRONLY, 0, 0);
        assertTrue(fd >= 0, Errno.name(fd));
        u.release(fd);
        assertEquals("", read("/f"));
        assertEquals(Set.of("f"), ls("/"));
    }

    @Test void userCannotForgeWhiteoutsOrMarkerNames() throws IOException {
        mount();
        assertEquals(-Errno.EPERM, u.mknod("/wh", S_IFCHR, 0, 0, 0));
        assertEquals(-Errno.EINVAL, u.mkdir("/.wh.x", 0755, 0, 0));
        assertEquals(-Errno.ENAMETOOLONG, u.mkdir("/" + "n".repeat(256), 0755, 0, 0));
    }

    @Test void overlayXattrsSetThroughTheMountAreEscapedLikeTheKernel() throws IOException {
        Files.createDirectories(l1.resolve("d"));
        write(l2.resolve("d/below"), "b");
        mount();
        Pointer y = jnr.ffi.Memory.allocateDirect(Posix.RT, 1); // not the shared scratch buffer: copy-up uses it
        y.putByte(0, (byte) 'y');
        int r = u.setxattr("/d", "trusted.overlay.opaque", y, 1, 0);
        org.junit.jupiter.api.Assumptions.assumeTrue(r != -Errno.EPERM, "trusted xattrs need root");
        assertEquals(0, r);
        assertArrayEquals(new byte[]{'y'}, Posix.lgetxattr(upper.resolve("d").toString(), "trusted.overlay.overlay.opaque"));
        assertNull(Posix.lgetxattr(upper.resolve("d").toString(), "trusted.overlay.opaque"), "never a real marker");
        mount().close();
        u = mount();
        assertEquals(Set.of("below"), ls("/d"), "the directory is still merged");
        Pointer buf = jnr.ffi.Memory.allocateDirect(Posix.RT, 256);
        int n = u.listxattr("/d", buf, 256);
        assertTrue(n > 0);
        byte[] b = new byte[n];
        buf.get(0, b, 0, n);
        assertTrue(new String(b, StandardCharsets.ISO_8859_1).contains("trusted.overlay.opaque\0"), "listed under the name it was set with");
        assertEquals(-Errno.EOPNOTSUPP, u.setxattr("/", "user.overlay.opaque", y, 1, 0), "user.overlay.* are markers strata reads");
    }

    // ------------------------------------------------------------------ rename

    @Test void renameRules() throws IOException {
        write(l2.resolve("lowerdir/f"), "f");
        write(l2.resolve("file"), "data");
        write(l3.resolve("target"), "old target");
        mount();
        assertEquals(-Errno.EXDEV, u.rename("/lowerdir", "/moved", 0), "a lower directory cannot move yet");
        assertTrue(events.contains("exdev /lowerdir"));
        assertEquals(0, u.rename("/file", "/target", 0));
        assertEquals("data", read("/target"));
        assertEquals(-Errno.ENOENT, errnoOf("/file"));
        assertEquals(Set.of("lowerdir", "target"), ls("/"));
        assertEquals(0, u.mkdir("/updir", 0755, 0, 0));
        assertEquals(0, u.mknod("/updir/x", S_IFREG | 0644, 0, 0, 0));
        assertEquals(0, u.rename("/updir", "/updir2", 0), "a pure upper directory moves");
        assertEquals(Set.of("x"), ls("/updir2"));
        assertEquals(-Errno.ENOTEMPTY, u.rename("/updir2", "/lowerdir", 0));
        assertEquals(-Errno.ENOTDIR, u.rename("/updir2", "/updir2/x/y", 0), "a file as the new name's parent");
        assertEquals(-Errno.EINVAL, u.rename("/updir2", "/updir2/sub", 0), "a directory into itself");
        assertEquals(-Errno.EEXIST, u.rename("/target", "/lowerdir", RENAME_NOREPLACE));
    }

    @Test void renameOverMergedEmptyDirectoryMakesItOpaque() throws IOException {
        write(l2.resolve("d/old"), "o");
        mount();
        assertEquals(0, u.unlink("/d/old"));
        assertEquals(0, u.mkdir("/n", 0755, 0, 0));
        assertEquals(0, u.mknod("/n/child", S_IFREG | 0644, 0, 0, 0));
        assertEquals(0, u.rename("/n", "/d", 0));
        assertEquals(Set.of("child"), ls("/d"));
        assertEquals(Set.of("d"), ls("/"));
    }

    @Test void longPathsBeyondPathMaxFromTheLayerRoot() throws IOException {
        mount();
        StringBuilder p = new StringBuilder();
        String comp = "d".repeat(200);
        for (int i = 0; i < 25; i++) { // 25 * 201 bytes: over PATH_MAX from the root
            p.append('/').append(comp);
            assertEquals(0, u.mkdir(p.toString(), 0755, 0, 0), "mkdir at depth " + i);
        }
        String f = p + "/file";
        int fd = u.create(f, 0644, O_WRONLY, 0, 0);
        assertTrue(fd >= 0, Errno.name(fd));
        u.release(fd);
        assertNotNull(stat(f));
        assertEquals(0, u.unlink(f));
        // remove bottom-up through the engine (JUnit's own cleanup cannot walk paths this long)
        String d = p.toString();
        while (!d.isEmpty()) {
            assertEquals(0, u.rmdir(d), "rmdir " + d.length());
            d = d.substring(0, d.lastIndexOf('/'));
        }
    }

    @Test void readOnlyWithoutUpper() throws IOException {
        write(l1.resolve("f"), "x");
        MountOptions.Builder b = new MountOptions.Builder();
        b.lowerDirs = List.of(l1);
        u = Union.open(b.build(), null);
        assertEquals(-Errno.EROFS, u.unlink("/f"));
        assertEquals(-Errno.EROFS, u.open("/f", O_WRONLY));
        assertEquals("x", read("/f"));
    }
}
