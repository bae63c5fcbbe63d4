package dev.strata.union;

import dev.strata.options.MountOptions;
import dev.strata.posix.Errno;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
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
 * The kernel's overlay.origin in the engine (no FUSE), index=off: what a copy-up writes (a handle, the
 * null handle where handles cannot be decoded, nothing for a lower hard link) and the st_ino read back
 * after a remount: the lower inode's while its handle decodes to a one-link file of the same type, the
 * upper inode's once the lower file was replaced offline (a stale handle), strata's own decimal origin
 * where an upper has one.
 */
class OriginsTest {
    @TempDir Path tmp;
    Path lower, upper, work;
    Union u;

    @BeforeEach void layers() throws IOException {
        lower = Files.createDirectories(tmp.resolve("lower"));
        upper = Files.createDirectories(tmp.resolve("upper"));
        work = Files.createDirectories(tmp.resolve("work"));
        Files.writeString(lower.resolve("f"), "f\n");
        Files.writeString(lower.resolve("g"), "g\n");
        Files.writeString(lower.resolve("h1"), "h\n");
        Files.createLink(lower.resolve("h2"), lower.resolve("h1"));
        Files.createDirectories(lower.resolve("d"));
    }

    @AfterEach void close() { if (u != null) u.close(); }

    void mount() {
        if (u != null) u.close();
        MountOptions.Builder b = new MountOptions.Builder();
        b.lowerDirs = List.of(lower);
        b.upperDir = upper;
        b.workDir = work;
        u = Union.open(b.build(), UnionEvents.NONE);
    }

    long ino(String path) {
        Stat st = new Stat();
        int r = u.getattr(path, st.pointer());
        assertEquals(0, r, path + ": " + Errno.name(r));
        return st.ino();
    }

    static long realIno(Path p) throws IOException { return (Long) Files.getAttribute(p, "unix:ino"); }

    byte[] origin(Path p) { return u.overlay().origins == null ? null : Posix.lgetxattr(p.toString(), u.overlay().origins.xattr); }

    @Test void copyUpWritesTheKernelsOriginAndStInoComesBackFromIt() throws IOException {
        mount();
        long f = realIno(lower.resolve("f")), d = realIno(lower.resolve("d"));
        assertEquals(0, u.chmod("/f", 0600));
        assertEquals(0, u.chmod("/h1", 0600));
        assertEquals(0, u.chmod("/d", 0700));
        byte[] o = origin(upper.resolve("f"));
        assertNotNull(o, "overlay.origin on the copy");
        assertNull(origin(upper.resolve("h1")), "a lower hard link's copy is a new file: no origin");
        assertNotNull(origin(upper.resolve("d")), "a directory's copy has one");
        boolean handles = o.length > 0;
        // strata's own record only beside the null handle
        byte[] own = Posix.lgetxattr(upper.resolve("f").toString(), u.overlay().originXattr);
        assertEquals(handles, own == null, "overlay.strata.origin is written only where the origin is the null handle");
        if (handles) {
            assertEquals(0, FileHandles.check(o));
            assertEquals(o.length, o[2] & 0xff);
        }
        mount();
        assertEquals(f, ino("/f"), "a copied-up file keeps the lower inode number across a remount");
        assertEquals(d, ino("/d"), "a copied-up directory too");
        assertEquals(realIno(upper.resolve("h1")), ino("/h1"), "a broken lower hard link shows its upper inode");
    }

    @Test void aStaleHandleIsNoOrigin() throws IOException {
        mount();
        assertEquals(0, u.chmod("/g", 0600));
        byte[] o = origin(upper.resolve("g"));
        Assumptions.assumeTrue(o != null && o.length > 0, "no file handles decoded here (not root in the initial user namespace)");
        u.close();
        u = null;
        // the lower file replaced offline: its handle names a deleted inode
        Files.delete(lower.resolve("g"));
        Files.writeString(lower.resolve("g"), "other\n");
        mount();
        assertEquals(realIno(upper.resolve("g")), ino("/g"), "a handle that no longer decodes: the upper inode's number");
    }

    @Test void strataOwnOriginOfOlderUppersIsRead() throws IOException {
        mount();
        assertEquals(0, u.chmod("/f", 0600));
        String own = u.overlay().originXattr;
        Posix.lremovexattr(upper.resolve("f").toString(), u.overlay().origins.xattr);
        assertEquals(0, Posix.lsetxattr(upper.resolve("f").toString(), own, "777777".getBytes(StandardCharsets.US_ASCII), 0));
        mount();
        assertEquals(777777, ino("/f"));
    }
}
