package dev.strata.nativetest;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The mount registry, the image store and a live mount: 'image rm' never deletes a layer that a live
 * mount shows, whatever PID or mount namespace the mount or other strata processes run in, whoever
 * deletes records, whichever store; image mounts are nosuid,nodev; the mount flags and names reach
 * /proc/mounts; the remains of a killed daemon are named, not stacked on. Drives bin/strata as a
 * user would; every mount made here is unmounted in {@link #cleanUp}.
 */
@Tag("native")
class RegistryTest {
    Path dir, strata;

    @BeforeEach void setUp() throws IOException {
        NativeSupport.assumeNativeEnvironment();
        org.junit.jupiter.api.Assumptions.assumeTrue(Mounter.Strata.unavailableReason(NativeSupport.projectHome()) == null,
                "strata is not built");
        strata = NativeSupport.projectHome().resolve("bin/strata");
        dir = NativeSupport.newTempDir("registry");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x")); // nobody reaches the mounts
    }

    @AfterEach void cleanUp() {
        if (dir == null) return;
        Mounts.unmountAllUnder(dir, strata.toString(), "umount");
        NativeSupport.deleteTree(dir);
    }

    // ------------------------------------------------------------------ helpers

    NativeSupport.Proc.Result run(String... args) {
        return NativeSupport.Proc.runProgram(dir, 120, strata, args);
    }

    NativeSupport.Proc.Result ok(String... args) {
        NativeSupport.Proc.Result r = run(args);
        assertEquals(0, r.exit, String.join(" ", args) + ": " + r);
        return r;
    }

    static NativeSupport.Proc.Result sh(String script) {
        return NativeSupport.Proc.run(Path.of("/"), 120, "bash", "-c", script);
    }

    /** A layer tar: etc/motd, and a setuid-root copy of id(1) in bin. */
    Path layerTar(String name, String motd) throws IOException {
        Path l = Files.createDirectories(dir.resolve("src-" + name));
        Files.createDirectories(l.resolve("etc"));
        Files.writeString(l.resolve("etc/motd"), motd);
        Files.createDirectories(l.resolve("bin"));
        Files.copy(Path.of("/usr/bin/id"), l.resolve("bin/id"));
        NativeSupport.Proc.Result r = sh("chown root:root '" + l + "/bin/id' && chmod 4755 '" + l + "/bin/id' && tar -C '" + l
                + "' --numeric-owner -cf '" + dir.resolve(name + ".tar") + "' .");
        assertEquals(0, r.exit, r.toString());
        return dir.resolve(name + ".tar");
    }

    Path store(String name) { return dir.resolve(name); }

    Path mkdir(String name) throws IOException { return Files.createDirectories(dir.resolve(name)); }

    static String procMountsLine(Path mnt) throws IOException {
        String line = null;
        for (String l : Files.readAllLines(Path.of("/proc/self/mounts"), StandardCharsets.ISO_8859_1)) {
            String[] f = l.split(" ");
            if (f.length > 3 && Mounts.unescape(f[1]).equals(mnt.toString())) line = l;
        }
        return line;
    }

    static long mountsAt(Path mnt) {
        return Mounts.mountPoints().stream().filter(m -> m.equals(mnt.toString())).count();
    }

    /** The registry record of the mount at mnt (root's registry), or null. */
    static Path recordOf(Path mnt) throws IOException {
        Path reg = Path.of("/run/strata/mounts");
        if (!Files.isDirectory(reg)) return null;
        try (Stream<Path> s = Files.list(reg)) {
            for (Path f : s.filter(p -> p.toString().endsWith(".json")).toList()) {
                String text = Files.readString(f, StandardCharsets.ISO_8859_1);
                if (text.contains("\"mountpoint\" : \"" + mnt + "\"")) return f;
            }
        }
        return null;
    }

    // ------------------------------------------------------------------ tests

    /** The reproduction: a strata mount in another PID namespace once wiped every record as stale. */
    @Test void aMountInAnotherPidNamespaceDoesNotLetImageRmDeleteLiveLayers() throws IOException {
        Path s = store("store");
        ok("image", "import", layerTar("v1", "hello\n").toString(), "--name", "img:v1", "--store", s.toString());
        Path im = mkdir("im");
        ok("mount", "--image", "img:v1", "--store", s.toString(), im.toString());
        NativeSupport.Proc.Result r = run("image", "rm", "img:v1", "--store", s.toString());
        assertEquals(1, r.exit, r.toString());
        assertTrue(r.stderr.contains("in use by the strata mount at " + im), r.toString());

        Path l = mkdir("L"), c = mkdir("C");
        Files.writeString(l.resolve("f"), "x");
        NativeSupport.Proc.Result ns = sh("unshare -m -p -f --mount-proc --propagation private bash -c '"
                + strata + " mount -o lowerdir=" + l + " " + c + " && " + strata + " umount " + c + "'");
        assertEquals(0, ns.exit, ns.toString());

        r = run("image", "rm", "img:v1", "--store", s.toString());
        assertEquals(1, r.exit, "still refused after a mount came and went in another PID namespace: " + r);
        assertEquals("hello\n", Files.readString(im.resolve("etc/motd")));
        assertEquals(0, run("explain", im.resolve("etc/motd").toString()).exit, "the record survived");

        // a record deleted by hand: the mount is still protected (the daemon's lock on the layer)
        Path rec = recordOf(im);
        assertTrue(rec != null, "the mount has a record");
        Files.delete(rec);
        r = run("image", "rm", "img:v1", "--store", s.toString());
        assertEquals(1, r.exit, r.toString());
        assertTrue(r.stderr.contains("in use by a live strata mount"), r.toString());
        r = run("image", "rm", "--force", "img:v1", "--store", s.toString());
        assertEquals(0, r.exit, r.toString());
        assertTrue(r.stdout.contains("Kept layer sha256:"), r.toString());
        assertEquals("hello\n", Files.readString(im.resolve("etc/motd")), "--force keeps what a mount holds");

        ok("umount", im.toString());
        ok("image", "import", layerTar("v2", "other\n").toString(), "--name", "img:v2", "--store", s.toString());
        r = ok("image", "rm", "img:v2", "--store", s.toString());
        assertEquals(2, r.stdout.lines().filter(x -> x.startsWith("Deleted layer")).count(), "the kept layer goes once free: " + r);
    }

    @Test void twoStoresHoldingTheSameLayerAreIndependent() throws IOException {
        Path tar = layerTar("v1", "hello\n");
        Path s1 = store("s1"), s2 = store("s2");
        ok("image", "import", tar.toString(), "--name", "img:v1", "--store", s1.toString());
        ok("image", "import", tar.toString(), "--name", "img:v1", "--store", s2.toString());
        Path m = mkdir("m");
        ok("mount", "--image", "img:v1", "--store", s1.toString(), m.toString());
        NativeSupport.Proc.Result r = ok("image", "rm", "img:v1", "--store", s2.toString());
        assertTrue(r.stdout.contains("Deleted layer"), r.toString());
        assertEquals(1, run("image", "rm", "img:v1", "--store", s1.toString()).exit);
        assertEquals("hello\n", Files.readString(m.resolve("etc/motd")));
        ok("umount", m.toString());
    }

    @Test void anotherUsersImageRmCannotDeleteWhatRootMounted() throws IOException {
        Path s = store("nobody-store");
        ok("image", "import", layerTar("v1", "hello\n").toString(), "--name", "img:v1", "--store", s.toString());
        assertEquals(0, sh("chown -R nobody: '" + s + "'").exit);
        Path m = mkdir("m");
        ok("mount", "--image", "img:v1", "--store", s.toString(), m.toString());
        NativeSupport.Proc.Result r = NativeSupport.Proc.run(dir, 120, Map.of("HOME", "/tmp", "STRATA_JAVA_OPTS", "-XX:-UsePerfData"), // no /tmp/hsperfdata_nobody left
                List.of("runuser", "-u", "nobody", "--", NativeSupport.launcherFor("nobody", dir).toString(), "image", "rm", "img:v1", "--store", s.toString()));
        assertEquals(1, r.exit, r.toString());
        assertTrue(r.stderr.contains("is in use by"), r.toString());
        assertEquals("hello\n", Files.readString(m.resolve("etc/motd")));
        ok("umount", m.toString());
    }

    @Test void registryAndStoreModes() throws IOException {
        Path s = store("store");
        ok("image", "import", layerTar("v1", "hello\n").toString(), "--name", "img:v1", "--store", s.toString());
        Path m = mkdir("m");
        ok("mount", "--image", "img:v1", "--store", s.toString(), m.toString());
        assertEquals("rwx------", mode(s), "root's store");
        assertEquals("rwxr-xr-x", mode(Path.of("/run/strata")));
        assertEquals("rwxr-xr-x", mode(Path.of("/run/strata/mounts")));
        Path rec = recordOf(m);
        assertEquals("rw-r--r--", mode(rec), "the record of a daemon running with umask 0");
        NativeSupport.Proc.Result r = NativeSupport.Proc.run(dir, 30, "runuser", "-u", "nobody", "--", "rm", "-f", rec.toString());
        assertNotEquals(0, r.exit, "another user cannot remove root's record");
        assertTrue(Files.exists(rec));
        r = NativeSupport.Proc.run(dir, 30, "runuser", "-u", "nobody", "--", "cat", s.resolve("lock").toString());
        assertNotEquals(0, r.exit, "another user cannot reach into root's store");
        ok("umount", m.toString());
    }

    /** Issue 12 (high): a setuid-root binary from an image does not run as root for another user. */
    @Test void imageMountsAreNosuidNodevUnlessAsked() throws IOException {
        Path s = store("store");
        ok("image", "import", layerTar("v1", "hello\n").toString(), "--name", "img:v1", "--store", s.toString());
        Path m = mkdir("m");
        ok("mount", "--image", "img:v1", "--store", s.toString(), m.toString());
        String line = procMountsLine(m);
        assertTrue(line.contains("nosuid") && line.contains("nodev"), line);
        NativeSupport.Proc.Result r = NativeSupport.Proc.run(dir, 30, "runuser", "-u", "nobody", "--", m.resolve("bin/id").toString(), "-u");
        assertEquals(0, r.exit, r.toString());
        assertEquals("65534", r.stdout.strip(), "the setuid bit is not honoured through an image mount");
        ok("umount", m.toString());

        ok("mount", "--image", "img:v1", "--store", s.toString(), "-o", "suid,dev", m.toString());
        line = procMountsLine(m);
        assertFalse(line.contains("nosuid") || line.contains("nodev"), line);
        r = NativeSupport.Proc.run(dir, 30, "runuser", "-u", "nobody", "--", m.resolve("bin/id").toString(), "-u");
        assertEquals("0", r.stdout.strip(), "with -o suid the bit works again (so the check above can fail): " + r);
        ok("umount", m.toString());

        // store layers given by path get the same defaults
        String layer = run("image", "inspect", "img:v1", "--json", "--store", s.toString()).stdout
                .replaceAll("(?s).*\"layerDirsTopFirst\"\\s*:\\s*\\[\\s*\"([^\"]+)\".*", "$1");
        ok("mount", "-o", "lowerdir=" + layer, m.toString());
        line = procMountsLine(m);
        assertTrue(line.contains("nosuid") && line.contains("nodev"), line);
        ok("umount", m.toString());
    }

    @Test void plainMountsKeepTheKernelDefaultsAndTakeFlagsAndNames() throws IOException {
        Path l = mkdir("l"), m = mkdir("m");
        Files.writeString(l.resolve("f"), "x");
        ok("mount", "-o", "lowerdir=" + l, m.toString());
        String line = procMountsLine(m);
        assertTrue(line.startsWith("strata " + m + " fuse.strata "), line);
        assertFalse(line.contains("nosuid") || line.contains("nodev") || line.contains("noexec"), line);
        ok("umount", m.toString());

        ok("mount", "-o", "lowerdir=" + l + ",nosuid,nodev,noexec,fsname=myimage,subtype=img", m.toString());
        line = procMountsLine(m);
        assertTrue(line.startsWith("myimage " + m + " fuse.img "), line);
        assertTrue(line.contains("nosuid") && line.contains("nodev") && line.contains("noexec"), line);
        ok("umount", m.toString());

        // mount.fuse3's form: strata SOURCE MOUNTPOINT -o OPTIONS (what mount -t fuse.strata runs)
        ok("/data/src", m.toString(), "-o", "lowerdir=" + l);
        assertTrue(procMountsLine(m).startsWith("/data/src " + m + " fuse.strata "), procMountsLine(m));
        ok("umount", m.toString());

        ok("-o", "lowerdir=" + l + ",transport=libfuse,nosuid,fsname=viafuse", m.toString());
        line = procMountsLine(m);
        assertTrue(line.startsWith("viafuse " + m + " fuse.strata ") && line.contains("nosuid"), line);
        ok("umount", m.toString());
    }

    @Test void theRemainsOfAKilledDaemonAreNamedNotStackedOn() throws Exception {
        Path l = mkdir("l"), m = mkdir("m");
        Files.writeString(l.resolve("f"), "x");
        ok("mount", "-o", "lowerdir=" + l, m.toString());
        List<Long> pids = Mounts.daemonPids(m);
        assertEquals(1, pids.size(), pids.toString());
        ProcessHandle.of(pids.get(0)).ifPresent(ProcessHandle::destroyForcibly);
        for (int i = 0; i < 100 && ProcessHandle.of(pids.get(0)).isPresent(); i++) Thread.sleep(50);
        NativeSupport.Proc.Result r = run("mount", "-o", "lowerdir=" + l, m.toString());
        assertEquals(1, r.exit, r.toString());
        assertEquals("strata: " + m + ": a strata mount whose daemon died is still there: run `strata umount " + m + "`",
                r.stderr.strip());
        assertEquals(1, mountsAt(m), "no second mount on the dead one");
        ok("umount", m.toString());
        assertEquals(0, mountsAt(m));
        ok("mount", "-o", "lowerdir=" + l, m.toString());
        assertEquals("x", Files.readString(m.resolve("f")));
        ok("umount", m.toString());
    }

    static String mode(Path p) throws IOException {
        return PosixFilePermissions.toString(Files.getPosixFilePermissions(p));
    }
}
