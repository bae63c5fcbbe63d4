package dev.strata.union;

import dev.strata.options.MountOptions;
import dev.strata.posix.Errno;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import static dev.strata.posix.Posix.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * When a copy-up fsyncs its copy, as the kernel's fsync= modes (6.12+): by default (fsync=auto) a copy
 * with data right after the data, nothing else (no directory, no empty file, no metadata-only copy);
 * with fsync=strict also every regular file and directory once the copy is complete (data, xattrs, mode,
 * times) and before it gets its name (metacopy off); with fsync=0 or volatile never. The engine's test
 * probe sees each copy's descriptor just before its fsync.
 */
class CopyUpSyncTest {
    @TempDir Path tmp;
    Path lower, upper, work;
    Union u;
    final List<Seen> synced = new CopyOnWriteArrayList<>();
    boolean userXattrs;

    /** What a copy held when it was about to be fsync'ed. */
    record Seen(int type, int perm, long mtime, long size, boolean xattr) {}

    static final long DIR_MTIME = 1_000_000_000L, FILE_MTIME = 1_100_000_000L, EMPTY_MTIME = 1_200_000_000L;

    @BeforeEach void layers() throws IOException {
        lower = Files.createDirectories(tmp.resolve("lower"));
        upper = Files.createDirectories(tmp.resolve("upper"));
        work = Files.createDirectories(tmp.resolve("work"));
        Path d = Files.createDirectories(lower.resolve("d"));
        Files.writeString(d.resolve("f"), "data", StandardCharsets.ISO_8859_1);
        userXattrs = Posix.lsetxattr(d.resolve("f").toString(), "user.x", new byte[]{'1'}, 0) == 0;
        Files.setPosixFilePermissions(d.resolve("f"), PosixFilePermissions.fromString("rw-r-----"));
        Files.setLastModifiedTime(d.resolve("f"), FileTime.fromMillis(FILE_MTIME * 1000));
        Files.write(lower.resolve("e"), new byte[0]);
        Files.setPosixFilePermissions(lower.resolve("e"), PosixFilePermissions.fromString("rw----r--"));
        Files.setLastModifiedTime(lower.resolve("e"), FileTime.fromMillis(EMPTY_MTIME * 1000));
        Files.writeString(lower.resolve("g"), "xyz", StandardCharsets.ISO_8859_1);
        Files.setPosixFilePermissions(lower.resolve("g"), PosixFilePermissions.fromString("rw-r--r--"));
        Files.setPosixFilePermissions(d, PosixFilePermissions.fromString("rwxr-x---"));
        Files.setLastModifiedTime(d, FileTime.fromMillis(DIR_MTIME * 1000));
    }

    @AfterEach void close() { if (u != null) u.close(); }

    void mount(boolean metacopy, boolean fsync) {
        mount(metacopy, fsync ? "auto" : "0");
    }

    void mount(boolean metacopy, String fsync) {
        MountOptions.Builder b = new MountOptions.Builder();
        b.lowerDirs = List.of(lower);
        b.upperDir = upper;
        b.workDir = work;
        b.metacopy = metacopy;
        if (metacopy) b.redirectDir = "on";
        b.fsync = !fsync.equals("0");
        b.fsyncStrict = fsync.equals("strict");
        u = Union.open(b.build(), UnionEvents.NONE);
        u.overlay().copy.beforeSync = fd -> {
            Stat st = new Stat();
            assertEquals(0, Posix.fstat(fd, st));
            synced.add(new Seen(st.type(), st.perm(), st.mtime(), st.size(), Posix.fgetxattr(fd, "user.x") != null));
        };
    }

    void openForWrite(String path) {
        int fd = u.open(path, O_WRONLY | O_APPEND);
        assertTrue(fd >= 0, path + ": " + Errno.name(fd));
        u.release(fd);
    }

    void copyUpsSyncCompleteCopies() {
        openForWrite("/d/f"); // the directory first, then the file
        openForWrite("/e");
        assertEquals(4, synced.size(), synced.toString());
        assertEquals(new Seen(S_IFDIR, 0750, DIR_MTIME, synced.get(0).size(), false), synced.get(0), "the directory, complete");
        assertEquals(4, synced.get(1).size(), "the file's data, right after it was copied");
        assertEquals(new Seen(S_IFREG, 0640, FILE_MTIME, 4, userXattrs), synced.get(2), "the file: data, mode, times, xattrs");
        assertEquals(new Seen(S_IFREG, 0604, EMPTY_MTIME, 0, false), synced.get(3), "an empty file is synced too");
    }

    @Test void strictSyncsEachCopyOnceCompleteThroughOTmpfile() {
        mount(false, "strict");
        copyUpsSyncCompleteCopies();
    }

    @Test void strictSyncsEachCopyOnceCompleteThroughTheWorkdir() {
        mount(false, "strict");
        u.overlay().copy.tmpfileWorks = false; // a workdir without O_TMPFILE: named copies renamed into place
        copyUpsSyncCompleteCopies();
    }

    /** fsync=auto, the default: the data of a copy, right after it is copied; no directory, no empty file. */
    @Test void byDefaultOnlyDataIsSyncedRightAfterItIsCopied() {
        mount(false, true);
        openForWrite("/d/f");
        openForWrite("/e");
        assertEquals(1, synced.size(), synced.toString());
        assertEquals(S_IFREG, synced.get(0).type());
        assertEquals(4, synced.get(0).size(), "the data is in the copy");
        u.overlay().copy.tmpfileWorks = false;
        openForWrite("/g");
        assertEquals(2, synced.size(), synced.toString());
        assertEquals(3, synced.get(1).size(), "through the workdir too");
    }

    @Test void withMetacopyOnlyDataIsSyncedRightAfterItIsCopied() {
        mount(true, true);
        assertEquals(0, u.chmod("/d/f", 0600)); // metadata only, the directory too: nothing synced
        openForWrite("/e");                      // no data: nothing synced
        assertEquals(List.of(), synced);
        openForWrite("/g");
        assertEquals(1, synced.size(), synced.toString());
        Seen g = synced.get(0);
        assertEquals(3, g.size(), "the data is in the copy");
        assertEquals(0600, g.perm(), "synced before the mode was copied (the unnamed copy's own 0600)");
    }

    /** A directory the daemon may not read once its mode is set (a daemon without CAP_DAC_OVERRIDE): still copied up, and synced. */
    @Test void aDirectoryWithoutReadPermissionIsCopiedUp() throws IOException {
        Path x = Files.createDirectories(lower.resolve("x"));
        Files.writeString(x.resolve("f"), "x", StandardCharsets.ISO_8859_1);
        Files.setPosixFilePermissions(x, PosixFilePermissions.fromString("-wx--x--x"));
        mount(false, true);
        openForWrite("/x/f");
        assertEquals(0311, stat(upper.resolve("x")).perm(), "the upper copy's mode");
        assertEquals("x", Files.readString(upper.resolve("x/f")));
    }

    static Stat stat(Path p) {
        Stat st = new Stat();
        assertEquals(0, Posix.fstatat(AT_FDCWD, p.toString(), st, AT_SYMLINK_NOFOLLOW));
        return st;
    }

    @Test void fsyncZeroSyncsNothing() {
        mount(false, false);
        openForWrite("/d/f");
        openForWrite("/e");
        assertEquals(List.of(), synced);
        assertTrue(Files.exists(upper.resolve("d/f")));
    }
}
