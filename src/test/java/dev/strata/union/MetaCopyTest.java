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
import java.util.List;

import static dev.strata.posix.Posix.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * metacopy=on in the engine (no FUSE): metadata-only copy-up and its data copy-up, and the lookup of
 * metadata-only copies as the kernel's ovl_lookup does it (data below, through a redirect, passing
 * over other metadata-only copies; EIO without data, EPERM without the option). Marks are written as
 * user.overlay.* here, which strata reads as it reads trusted.overlay.*, so the test needs no root.
 */
class MetaCopyTest {
    @TempDir Path tmp;
    Path l1, l2, upper, work;
    Union u;

    @BeforeEach void layers() throws IOException {
        l1 = Files.createDirectories(tmp.resolve("l1"));
        l2 = Files.createDirectories(tmp.resolve("l2"));
        upper = Files.createDirectories(tmp.resolve("upper"));
        work = Files.createDirectories(tmp.resolve("work"));
    }

    @AfterEach void close() { if (u != null) u.close(); }

    Union mount(boolean metacopy) {
        MountOptions.Builder b = new MountOptions.Builder();
        b.lowerDirs = List.of(l1, l2);
        b.upperDir = upper;
        b.workDir = work;
        b.metacopy = metacopy;
        if (metacopy) b.redirectDir = "on";
        return u = Union.open(b.build(), UnionEvents.NONE);
    }

    static void write(Path p, String s) throws IOException {
        Files.createDirectories(p.getParent());
        Files.writeString(p, s, StandardCharsets.ISO_8859_1);
    }

    /** A metadata-only copy as the kernel writes it: same size, no data, an empty mark (user. here). */
    static void metacopyFile(Path p, long size, String redirect) throws IOException {
        Files.createDirectories(p.getParent());
        Files.write(p, new byte[0]);
        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(p.toFile(), "rw")) { f.setLength(size); }
        mark(p, Markers.USER_METACOPY, "");
        if (redirect != null) mark(p, Markers.USER_REDIRECT, redirect);
    }

    static void mark(Path p, String name, String value) {
        int r = Posix.lsetxattr(p.toString(), name, value.getBytes(StandardCharsets.ISO_8859_1), 0);
        if (r < 0) throw new org.opentest4j.TestAbortedException("user xattrs refused here: " + Errno.name(r));
    }

    String read(String path) {
        int fd = u.open(path, O_RDONLY);
        assertTrue(fd >= 0, path + ": " + Errno.name(fd));
        try {
            Pointer buf = Buffers.get(4096);
            long n = u.read(fd, buf, 4096, 0);
            assertTrue(n >= 0, Errno.name((int) n));
            byte[] b = new byte[(int) n];
            buf.get(0, b, 0, (int) n);
            return new String(b, StandardCharsets.ISO_8859_1);
        } finally {
            u.release(fd);
        }
    }

    Stat stat(String path) {
        Stat st = new Stat();
        int r = u.getattr(path, st.pointer());
        assertEquals(0, r, path + ": " + Errno.name(r));
        return st;
    }

    boolean marked(Path p) {
        return Posix.lgetxattr(p.toString(), Markers.TRUSTED_METACOPY) != null || Posix.lgetxattr(p.toString(), Markers.USER_METACOPY) != null;
    }

    @Test void chmodCopiesMetadataOnlyAndAWriteOpenTheData() throws IOException {
        write(l2.resolve("d/f"), "lower data\n");
        mount(true);
        assertEquals(0, u.chmod("/d/f", 0600));
        Path up = upper.resolve("d/f");
        assertTrue(marked(up), "overlay.metacopy on the upper copy");
        Stat onDisk = new Stat();
        assertEquals(0, Posix.fstatat(AT_FDCWD, up.toString(), onDisk.pointer(), AT_SYMLINK_NOFOLLOW));
        assertEquals(11, onDisk.size());
        // no data in the upper copy (its xattrs, the origin handle among them, may take a block of their own, as the kernel's)
        int ufd = Posix.openat(AT_FDCWD, up.toString(), O_RDONLY, 0);
        assertTrue(ufd >= 0, Errno.name(ufd));
        try {
            assertEquals(-Errno.ENXIO, Posix.lseek(ufd, 0, SEEK_DATA), "no data in the upper copy");
        } finally {
            Posix.close(ufd);
        }
        assertEquals(0600, stat("/d/f").perm());
        assertEquals("lower data\n", read("/d/f"));
        int fd = u.open("/d/f", O_RDWR);
        assertTrue(fd >= 0, Errno.name(fd));
        u.release(fd);
        assertFalse(marked(up), "the data came up: the mark is gone");
        assertEquals("lower data\n", Files.readString(up));
        assertEquals("lower data\n", read("/d/f"));
    }

    @Test void withoutTheOptionCopyUpsCopyData() throws IOException {
        write(l2.resolve("f"), "data\n");
        mount(false);
        assertEquals(0, u.chmod("/f", 0600));
        assertFalse(marked(upper.resolve("f")));
        assertEquals("data\n", Files.readString(upper.resolve("f")));
    }

    @Test void lookupFindsTheDataBelowThroughRedirectsAndPastOtherMetacopies() throws IOException {
        write(l2.resolve("a/orig"), "bottom data\n");
        metacopyFile(l1.resolve("a/orig"), 12, null);              // an intermediate metadata-only copy
        metacopyFile(upper.resolve("moved"), 12, "/a/orig");       // renamed: an absolute redirect
        metacopyFile(upper.resolve("a/orig"), 12, null);
        metacopyFile(upper.resolve("nodata"), 5, null);             // nothing below it
        mount(true);
        assertEquals("bottom data\n", read("/moved"));
        assertEquals("bottom data\n", read("/a/orig"));
        assertEquals(-Errno.EIO, u.getattr("/nodata", new Stat().pointer()));
    }

    @Test void withoutTheOptionAMetadataOnlyCopyIsRefused() throws IOException {
        write(l2.resolve("f"), "data\n");
        metacopyFile(upper.resolve("f"), 5, null);
        mount(false);
        assertEquals(-Errno.EPERM, u.getattr("/f", new Stat().pointer()));
    }

    @Test void aRenamedMetadataOnlyCopyGetsARedirect() throws IOException {
        write(l2.resolve("d/f"), "data\n");
        mount(true);
        assertEquals(0, u.chmod("/d/f", 0640));
        assertEquals(0, u.mkdir("/e", 0755, 0, 0));
        assertEquals(0, u.rename("/d/f", "/e/g", 0));
        byte[] r = Posix.lgetxattr(upper.resolve("e/g").toString(), Markers.TRUSTED_REDIRECT);
        if (r == null) r = Posix.lgetxattr(upper.resolve("e/g").toString(), Markers.USER_REDIRECT);
        assertNotNull(r);
        assertEquals("/d/f", new String(r, StandardCharsets.ISO_8859_1));
        assertEquals("data\n", read("/e/g"));
        u.close();
        mount(true);
        assertEquals("data\n", read("/e/g"));
        assertEquals(0640, stat("/e/g").perm());
    }
}
