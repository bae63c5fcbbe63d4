package dev.strata.union;

import dev.strata.options.MountOptions;
import dev.strata.posix.Buffers;
import dev.strata.posix.Posix;
import jnr.ffi.Pointer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static dev.strata.posix.Errno.*;
import static dev.strata.posix.Posix.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * The append-only and immutable flags as each operation of the engine checks them on the nodes it
 * resolves itself ({@link Protect}), without FUSE: what is refused with EPERM, in which order with the
 * operation's own errors, and that a refused change copies nothing up (ProtattrTest compares the same
 * with the kernel overlay through a mount).
 */
class ProtectOpsTest {
    @TempDir Path tmp;
    Path lower, upper, work;
    Union u;
    Path lowerFlagged;

    @BeforeEach void layers() throws IOException {
        lower = Files.createDirectories(tmp.resolve("lower"));
        upper = Files.createDirectories(tmp.resolve("upper"));
        work = Files.createDirectories(tmp.resolve("work"));
        Files.writeString(lower.resolve("lf"), "lower\n");
        Files.writeString(lower.resolve("lg"), "lower g\n");
        Files.createDirectories(lower.resolve("ld"));
        Files.writeString(lower.resolve("ld/c"), "c\n");
        Files.write(lower.resolve("big"), new byte[(int) UnlockedCopy.UNLOCKED_COPY_MIN + 4096]);
        MountOptions.Builder b = new MountOptions.Builder();
        b.lowerDirs = List.of(lower);
        b.upperDir = upper;
        b.workDir = work;
        u = Union.open(b.build(), null);
    }

    @AfterEach void close() {
        if (u != null) u.close();
        if (lowerFlagged != null) realFlags(lowerFlagged, 0);
    }

    /** chattr through the engine: the flags it shows, with the append-only / immutable bits given. */
    private int chattr(String path, int fsFlags) {
        Pointer buf = Buffers.get(64);
        int r = u.getFileattr(path, FS_IOC_GETFLAGS, buf);
        if (r < 0) return r;
        buf.putInt(0, buf.getInt(0) & ~(FS_APPEND_FL | FS_IMMUTABLE_FL) | fsFlags);
        return u.setFileattr(path, FS_IOC_SETFLAGS, buf);
    }

    /** FS_IOC_SETFLAGS on a layer's own file (CAP_LINUX_IMMUTABLE and a file system with the flags). */
    private static int realFlags(Path p, int fsFlags) {
        int fd = Posix.openat(AT_FDCWD, p.toString(), O_RDONLY | O_NONBLOCK, 0);
        if (fd < 0) return fd;
        try {
            Pointer b = Buffers.get(8);
            b.putInt(0, fsFlags);
            return Posix.ioctl(fd, FS_IOC_SETFLAGS, b.address());
        } finally {
            Posix.close(fd);
        }
    }

    @Test void anImmutableFileRefusesChangesButNotReads() {
        assertEquals(0, chattr("/lf", FS_IMMUTABLE_FL));
        int fd = u.open("/lf", O_RDONLY);
        assertTrue(fd >= 0);
        u.release(fd);
        assertEquals(-EPERM, u.open("/lf", O_WRONLY));
        assertEquals(-EPERM, u.open("/lf", O_RDONLY | O_TRUNC));
        assertEquals(-EPERM, u.truncate("/lf", 0));
        assertEquals(-EPERM, u.chmod("/lf", 0600));
        assertEquals(-EPERM, u.chown("/lf", 1, 1));
        assertEquals(0, u.chown("/lf", -1, -1));                              // no change asked: no check
        assertEquals(-EPERM, u.utimens("/lf", 0, UTIME_NOW, 0, UTIME_NOW)); // a touch: immutable refuses it
        assertEquals(-EPERM, u.utimens("/lf", 5, 0, 5, 0));
        Pointer v = Buffers.get(8);
        v.putByte(0, (byte) '1');
        assertEquals(-EPERM, u.setxattr("/lf", "user.x", v, 1, 0));
        assertEquals(-EPERM, u.setxattr("/lf", "user.overlay.x", v, 1, 0));  // the flags first, then the name
        assertEquals(-EOPNOTSUPP, u.setxattr("/lg", "user.overlay.x", v, 1, 0));
        assertEquals(-EPERM, u.removexattr("/lf", "user.x"));
        assertEquals(-EPERM, u.unlink("/lf"));
        assertEquals(-EPERM, u.rename("/lf", "/x", 0));
        assertEquals(0, u.rename("/lf", "/lf", 0));                          // onto itself: nothing to check
        assertEquals(-EPERM, u.rename("/lg", "/lf", 0));                     // over it
        assertEquals(-EPERM, u.rename("/lg", "/lf", RENAME_EXCHANGE));
        assertEquals(-EPERM, u.link("/lf", "/x"));
        assertEquals(-EPERM, u.create("/lf", 0644, O_WRONLY | O_CREAT, 0, 0)); // an existing name: may_open answers
        assertEquals(-EEXIST, u.create("/lg", 0644, O_WRONLY | O_CREAT, 0, 0));
        assertEquals(0, chattr("/lf", 0));
        assertEquals(0, u.unlink("/lf"));
    }

    @Test void aFileJustCreatedIsUnflaggedUntilChattrAndShowsWhatALookupShows() {
        // its node is made without a lookup, its flags known to be none (Namei.created, Protect.created)
        int fd = u.create("/new", 0644, O_WRONLY | O_CREAT | O_EXCL, 0, 0);
        assertTrue(fd >= 0);
        u.release(fd);
        assertEquals(0, u.utimens("/new", 5, 0, 5, 0));
        Pointer a = jnr.ffi.Memory.allocateDirect(Posix.RT, 256), b = jnr.ffi.Memory.allocateDirect(Posix.RT, 256);
        assertEquals(0, u.getattr("/new", a));
        assertEquals(0, chattr("/new", FS_IMMUTABLE_FL));
        assertEquals(-EPERM, u.utimens("/new", 6, 0, 6, 0));
        assertEquals(-EPERM, u.unlink("/new"));
        assertEquals(0, chattr("/new", 0));
        assertEquals(0, u.utimens("/new", 5, 0, 5, 0));
        u.close();
        MountOptions.Builder o = new MountOptions.Builder();
        o.lowerDirs = List.of(lower);
        o.upperDir = upper;
        o.workDir = work;
        u = Union.open(o.build(), null);       // a new mount looks the same file up
        assertEquals(0, u.getattr("/new", b));
        for (int off : new int[]{dev.strata.posix.Stat.OFF_INO, dev.strata.posix.Stat.OFF_MODE, dev.strata.posix.Stat.OFF_NLINK, dev.strata.posix.Stat.OFF_SIZE, dev.strata.posix.Stat.OFF_MTIME}) {
            assertEquals(a.getLong(off), b.getLong(off), "stat field at " + off);
        }
        assertEquals(0, u.unlink("/new"));
    }

    @Test void anAppendOnlyFileTakesAppendsAndTouches() {
        assertEquals(0, chattr("/lg", FS_APPEND_FL));
        int fd = u.open("/lg", O_WRONLY | O_APPEND);
        assertTrue(fd >= 0);
        u.release(fd);
        assertEquals(-EPERM, u.open("/lg", O_WRONLY));
        assertEquals(-EPERM, u.open("/lg", O_WRONLY | O_APPEND | O_TRUNC));
        assertEquals(0, u.utimens("/lg", 0, UTIME_NOW, 0, UTIME_NOW));
        assertEquals(-EPERM, u.utimens("/lg", 5, 0, 5, 0));
        assertEquals(-EPERM, u.truncate("/lg", 1));
        assertEquals(-EPERM, u.unlink("/lg"));
    }

    @Test void anImmutableDirectoryTakesNoNewNameAndLosesNone() {
        assertEquals(0, chattr("/ld", FS_IMMUTABLE_FL));
        assertEquals(-EPERM, u.mkdir("/ld/n", 0755, 0, 0));
        assertEquals(-EPERM, u.symlink("x", "/ld/s", 0, 0));
        assertEquals(-EPERM, u.mknod("/ld/p", S_IFIFO | 0644, 0, 0, 0));
        assertEquals(-EPERM, u.create("/ld/n", 0644, O_WRONLY | O_CREAT | O_EXCL, 0, 0));
        assertEquals(-EEXIST, u.mkdir("/ld/c", 0755, 0, 0));                 // an existing name: its own error
        assertEquals(-ENOENT, u.mkdir("/ld/no/n", 0755, 0, 0));
        assertEquals(-EPERM, u.tmpfile("/ld", 0600, O_WRONLY, 0, 0));
        assertEquals(-EPERM, u.link("/lg", "/ld/l"));
        assertEquals(-EPERM, u.unlink("/ld/c"));
        assertEquals(-EPERM, u.rename("/ld/c", "/c2", 0));
        assertEquals(-EPERM, u.rename("/lg", "/ld/g", 0));
        assertEquals(-EPERM, u.rmdir("/ld"));
        int fd = u.open("/ld/c", O_WRONLY | O_APPEND);                        // its entries stay writable
        assertTrue(fd >= 0);
        u.release(fd);
        assertEquals(0, chattr("/ld", 0));
        assertEquals(0, u.mkdir("/ld/n", 0755, 0, 0));
    }

    /**
     * A large lower file (copied outside the exclusive lock) that its layer marks append-only: a chmod or
     * a write open is refused before anything is copied up.
     */
    @Test void aRefusedChangeOfALargeLowerFileCopiesNothingUp() {
        int r = realFlags(lower.resolve("big"), FS_APPEND_FL);
        org.junit.jupiter.api.Assumptions.assumeTrue(r == 0, "chattr +a in the lower layer needs CAP_LINUX_IMMUTABLE and ext4/xfs/btrfs/tmpfs");
        lowerFlagged = lower.resolve("big");
        assertEquals(-EPERM, u.chmod("/big", 0600));
        assertEquals(-EPERM, u.open("/big", O_RDWR));
        assertEquals(-EPERM, u.truncate("/big", 1));
        assertFalse(Files.exists(upper.resolve("big")), "nothing copied up");
        int fd = u.open("/big", O_WRONLY | O_APPEND);
        assertTrue(fd >= 0);
        u.release(fd);
        assertTrue(Files.exists(upper.resolve("big")), "an append copies it up");
    }
}
