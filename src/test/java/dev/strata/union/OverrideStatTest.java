package dev.strata.union;

import dev.strata.options.IdMapping;
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
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;

import static dev.strata.posix.Posix.*;
import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The stat override of fuse-overlayfs (xattr_permissions, podman's overlay.force_mask), through the engine
 * without FUSE: layers as containers-storage unpacks them with force_mask (every inode 0755, the real owner
 * and mode in user.containers.override_stat, also on the layer root).
 */
class OverrideStatTest {
    static final String CONTAINERS = "user.containers.override_stat";

    @TempDir Path tmp;
    Path lower, lower2, upper, work;
    Union u;
    final int me = Posix.geteuid();

    @BeforeEach void layers() throws IOException {
        lower = Files.createDirectories(tmp.resolve("lower"));
        lower2 = Files.createDirectories(tmp.resolve("lower2"));
        upper = Files.createDirectories(tmp.resolve("upper"));
        work = Files.createDirectories(tmp.resolve("work"));
        assumeTrue(Posix.lsetxattr(lower.toString(), "user.strata-test", new byte[]{'1'}, 0) == 0,
                "the temp dir's file system takes no user.* xattrs");
    }

    @AfterEach void close() {
        if (u != null) u.close();
    }

    Union mount(int xattrPermissions) {
        return mount(xattrPermissions, IdMapping.IDENTITY);
    }

    Union mount(int xattrPermissions, IdMapping uids) {
        MountOptions.Builder b = new MountOptions.Builder();
        b.lowerDirs = List.of(lower, lower2);
        b.upperDir = upper;
        b.workDir = work;
        b.xattrPermissions = xattrPermissions;
        b.uidMapping = uids;
        u = Union.open(b.build(), null);
        return u;
    }

    /** A layer entry as containers-storage writes it with force_mask: inode mode 0755, the real one in the xattr. */
    static Path forced(Path p, boolean dir, String override) throws IOException {
        if (dir) Files.createDirectories(p);
        else {
            Files.createDirectories(p.getParent());
            Files.writeString(p, "data of " + p.getFileName());
        }
        Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rwxr-xr-x"));
        if (override != null) setx(p, CONTAINERS, override);
        return p;
    }

    static void setx(Path p, String name, String value) {
        int r = Posix.lsetxattr(p.toString(), name, value.getBytes(StandardCharsets.US_ASCII), 0);
        assertEquals(0, r, "setxattr " + name + " on " + p + ": " + Errno.name(r));
    }

    static String getx(Path p, String name) {
        byte[] v = Posix.lgetxattr(p.toString(), name);
        return v == null ? null : new String(v, StandardCharsets.US_ASCII);
    }

    Stat stat(String path) {
        Stat st = new Stat();
        int r = u.getattr(path, st.pointer());
        assertEquals(0, r, "getattr " + path + ": " + Errno.name(r));
        return st;
    }

    static Stat realStat(Path p) {
        Stat st = new Stat();
        assertEquals(0, Posix.fstatat(AT_FDCWD, p.toString(), st, AT_SYMLINK_NOFOLLOW), "lstat " + p);
        return st;
    }

    static String owner(Stat st) { return st.uid() + ":" + st.gid() + ":" + Integer.toOctalString(st.perm()); }

    List<String> xattrNames(String path) {
        Pointer buf = Buffers.get(65536);
        int n = u.listxattr(path, buf, 65536);
        assertTrue(n >= 0, "listxattr " + path + ": " + Errno.name(n));
        List<String> out = new ArrayList<>();
        int start = 0;
        for (int i = 0; i < n; i++) {
            if (buf.getByte(i) == 0) {
                byte[] b = new byte[i - start];
                buf.get(start, b, 0, b.length);
                out.add(new String(b, StandardCharsets.ISO_8859_1));
                start = i + 1;
            }
        }
        return out;
    }

    void containersLayer() throws IOException {
        forced(lower, true, "0:0:0555");
        forced(lower.resolve("root"), true, "0:0:0700");
        forced(lower.resolve("etc/shadow"), false, "0:42:0640");
        forced(lower.resolve("etc"), true, "0:0:0755");
        forced(lower.resolve("home/u/notes"), false, "1000:1000:0600");
        forced(lower.resolve("home/u"), true, "1000:1000:02750");
        forced(lower.resolve("bare"), false, null); // no xattr: its own attributes show
        Files.createSymbolicLink(lower.resolve("link"), Path.of("etc/shadow"));
    }

    // ------------------------------------------------------------------ parsing

    @Test void parsesWhatContainersStorageAndFuseOverlayfsWrite() {
        assertEquals("0:0:0755", OverrideStat.parse("0:0:0755".getBytes()).toString());
        assertEquals("1000:1000:0644", OverrideStat.parse("1000:1000:0644:file".getBytes()).toString(), "newer 4-field form");
        assertEquals("33:44:0644", OverrideStat.parse("33:44:100644".getBytes()).toString(), "fuse-overlayfs 1.x stores the type bits");
        assertEquals("4294967294:0:04755", OverrideStat.parse("4294967294:0:4755\0".getBytes()).toString());
        OverrideStat.Value keep = OverrideStat.parse("-1:5:0600".getBytes());
        assertEquals(-1, keep.uid, "fuse-overlayfs before 1.14 wrote -1 for an unchanged id");
        assertNull(OverrideStat.parse("0:0".getBytes()));
        assertNull(OverrideStat.parse("a:b:c".getBytes()));
        assertNull(OverrideStat.parse("0:0:0999".getBytes()), "not octal");
        assertEquals("0:0:00", OverrideStat.format(0, 0, 0));
        assertEquals("65534:7:01777", OverrideStat.format(65534, 7, 041777));
    }

    // ------------------------------------------------------------------ reading

    @Test void lowerOverrideShowsThroughGetattr() throws IOException {
        containersLayer();
        mount(0); // a layer whose root carries the xattr is read this way whatever the options (as fuse-overlayfs)
        assertEquals("0:0:700", owner(stat("/root")));
        assertEquals(S_IFDIR, stat("/root").type());
        assertEquals("0:42:640", owner(stat("/etc/shadow")));
        assertEquals(S_IFREG, stat("/etc/shadow").type());
        assertEquals("1000:1000:2750", owner(stat("/home/u")));
        assertEquals("1000:1000:600", owner(stat("/home/u/notes")));
        assertEquals(me + ":" + realStat(lower).gid() + ":755", owner(stat("/bare")), "no xattr: the inode's own");
        assertEquals(S_IFLNK, stat("/link").type(), "symlinks carry no override");
        assertEquals(0777, stat("/link").perm());
    }

    @Test void fileXattrsOfALayerWithoutTheRootMarkAreNotRead() throws IOException {
        forced(lower.resolve("f"), false, "1000:1000:0600"); // the layer root has no override xattr
        mount(0);
        assertEquals(me + ":" + realStat(lower.resolve("f")).gid() + ":755", owner(stat("/f")));
    }

    @Test void overrideIdsAreOnDiskIdsAndGoThroughTheMapping() throws IOException {
        containersLayer();
        mount(2, IdMapping.parse("0:100000:65536"));
        assertEquals(100000 + 1000, stat("/home/u/notes").uid(), "on-disk 1000 shows as 101000 with uidmapping 0:100000");
    }

    @Test void overrideXattrsAreHiddenAndCannotBeSetThroughTheMount() throws IOException {
        containersLayer();
        setx(lower.resolve("etc/shadow"), "user.keep", "v");
        mount(2);
        assertEquals(List.of("user.keep"), xattrNames("/etc/shadow"));
        assertEquals(-Errno.ENODATA, u.getxattr("/etc/shadow", CONTAINERS, Buffers.get(256), 256));
        assertEquals(-Errno.ENODATA, u.getxattr("/etc/shadow", OverrideStat.USER, Buffers.get(256), 256));
        Pointer v = Buffers.get(16);
        v.put(0, "0:0:0777".getBytes(), 0, 8);
        assertEquals(-Errno.EPERM, u.setxattr("/etc/shadow", CONTAINERS, v, 8, 0));
        assertEquals(-Errno.EPERM, u.removexattr("/etc/shadow", CONTAINERS));
        assertEquals("0:42:640", owner(stat("/etc/shadow")));
    }

    // ------------------------------------------------------------------ writing (xattr_permissions=2)

    @Test void upperRootTakesTheImageRootsOwnerAndMode() throws IOException {
        containersLayer();
        mount(2);
        assertEquals("0:0:0555", getx(upper, CONTAINERS), "written at mount, as fuse-overlayfs does");
        assertEquals("0:0:555", owner(stat("/")));
    }

    @Test void chmodAndChownChangeTheXattrNotTheInode() throws IOException {
        containersLayer();
        mount(2);
        Path up = upper.resolve("etc/shadow");
        assertEquals(0, u.chmod("/etc/shadow", 0600));
        assertEquals("0:42:600", owner(stat("/etc/shadow")));
        assertEquals("0:42:0600", getx(up, CONTAINERS));
        assertEquals(0755, realStat(up).perm(), "the inode keeps its mode");
        assertEquals(0, u.chown("/etc/shadow", 33, -1));
        assertEquals("33:42:600", owner(stat("/etc/shadow")), "-1 leaves the group");
        assertEquals("33:42:0600", getx(up, CONTAINERS));
        assertEquals(realStat(lower.resolve("etc/shadow")).uid(), realStat(up).uid(), "the inode keeps its owner");
        assertEquals("0:42:0640", getx(lower.resolve("etc/shadow"), CONTAINERS), "the lower layer is untouched");
        assertEquals(0, u.chmod("/etc", 0700));
        assertEquals("0:0:700", owner(stat("/etc")));
        assertEquals(0755, realStat(upper.resolve("etc")).perm());
    }

    @Test void chownWritesOnDiskIdsUnderAMapping() throws IOException {
        containersLayer();
        mount(2, IdMapping.parse("0:100000:65536"));
        assertEquals(0, u.chown("/home/u/notes", 100033, -1));
        assertEquals("33:1000:0600", getx(upper.resolve("home/u/notes"), CONTAINERS));
        assertEquals(100033, stat("/home/u/notes").uid());
    }

    @Test void copyUpKeepsTheOverride() throws IOException {
        containersLayer();
        mount(2);
        int fd = u.open("/home/u/notes", O_WRONLY | O_APPEND);
        assertTrue(fd >= 0, Errno.name(fd));
        u.release(fd);
        assertEquals("1000:1000:0600", getx(upper.resolve("home/u/notes"), CONTAINERS));
        assertEquals("1000:1000:02750", getx(upper.resolve("home/u"), CONTAINERS), "parents copied up keep theirs too");
        assertEquals("1000:1000:600", owner(stat("/home/u/notes")));
        assertEquals("1000:1000:2750", owner(stat("/home/u")));
    }

    @Test void copyUpRecordsTheInodesOwnerWhereTheLowerHasNoOverride() throws IOException {
        containersLayer();
        mount(2);
        assertEquals(0, u.chmod("/bare", 0640));
        Stat real = realStat(lower.resolve("bare"));
        assertEquals(real.uid() + ":" + real.gid() + ":0640", getx(upper.resolve("bare"), CONTAINERS));
    }

    @Test void newObjectsRecordTheCallersOwnerAndMode() throws IOException {
        containersLayer();
        mount(2);
        int fd = u.create("/etc/new.conf", S_IFREG | 0640, O_WRONLY, 33, 44);
        assertTrue(fd >= 0, Errno.name(fd));
        u.release(fd);
        assertEquals(0, u.mkdir("/etc/new.d", 0750, 33, 44));
        assertEquals("33:44:0640", getx(upper.resolve("etc/new.conf"), CONTAINERS));
        assertEquals("33:44:0750", getx(upper.resolve("etc/new.d"), CONTAINERS));
        assertEquals("33:44:640", owner(stat("/etc/new.conf")));
        assertEquals("33:44:750", owner(stat("/etc/new.d")));
        assertEquals(me, realStat(upper.resolve("etc/new.conf")).uid(), "the inode stays the daemon's");
        assertEquals(0, u.symlink("new.conf", "/etc/new.link", 33, 44));
        assertNull(getx(upper.resolve("etc/new.link"), CONTAINERS), "symlinks take no user.* xattr");
    }

    @Test void aSetgidDirectoryShownByItsOverrideGivesItsGroup() throws IOException {
        containersLayer();
        mount(2);
        assertEquals(0, u.mkdir("/home/u/sub", 0755, 33, 44));
        assertEquals("33:1000:02755", getx(upper.resolve("home/u/sub"), CONTAINERS),
                "setgid parent (shown 02750, group 1000): new directory gets group 1000 and the setgid bit");
    }

    @Test void openButUnlinkedFileKeepsItsOverride() throws IOException {
        containersLayer();
        mount(2);
        int fd = u.open("/home/u/notes", O_RDWR);
        assertTrue(fd >= 0, Errno.name(fd));
        try {
            assertEquals(0, u.unlink("/home/u/notes"));
            Stat st = new Stat();
            assertEquals(0, u.fgetattr(fd, st.pointer()));
            assertEquals("1000:1000:600", owner(st));
        } finally {
            u.release(fd);
        }
    }

    @Test void remountReadsTheUpperAgain() throws IOException {
        containersLayer();
        mount(2);
        assertEquals(0, u.chmod("/etc/shadow", 0604));
        u.close();
        u = null;
        mount(2);
        assertEquals("0:42:604", owner(stat("/etc/shadow")));
    }

    @Test void olderFuseOverlayfsUpperXattrIsReadWhenTheContainersOneIsMissing() throws IOException {
        containersLayer();
        forced(upper.resolve("old"), false, null);
        setx(upper.resolve("old"), OverrideStat.USER, "5:6:100640"); // what fuse-overlayfs 1.10 wrote for new files
        mount(2);
        assertEquals("5:6:640", owner(stat("/old")));
    }

    @Test void withoutXattrPermissionsChmodChangesTheInode() throws IOException {
        containersLayer();
        mount(0);
        assertEquals(0, u.chmod("/etc/shadow", 0600));
        assertEquals(0600, realStat(upper.resolve("etc/shadow")).perm());
        assertEquals(0600, stat("/etc/shadow").perm());
    }

    // ------------------------------------------------------------------ xattr_permissions=1

    @Test void privilegedNameWithXattrPermissions1() throws IOException {
        assumeTrue(me == 0, "security.* xattrs need root");
        forced(lower, true, null);
        setx(lower, OverrideStat.PRIVILEGED, "0:0:0711");
        forced(lower.resolve("f"), false, null);
        setx(lower.resolve("f"), OverrideStat.PRIVILEGED, "7:8:0604");
        mount(1);
        assertEquals("7:8:604", owner(stat("/f")));
        assertEquals("0:0:0711", getx(upper, OverrideStat.PRIVILEGED));
        assertEquals(0, u.chmod("/f", 0600));
        assertEquals("7:8:0600", getx(upper.resolve("f"), OverrideStat.PRIVILEGED));
        assertFalse(xattrNames("/f").contains(OverrideStat.PRIVILEGED));
    }
}
