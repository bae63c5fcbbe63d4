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
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The shared daemon (README, "Process model"), through bin/strata as podman and users run it: mounts
 * of one user in one mount namespace are served by one process; unmounting one (strata umount,
 * fusermount -u) leaves the others working; a daemon killed with SIGKILL leaves every mount it served
 * answering ENOTCONN, which strata umount clears; another uid's launcher is refused and mounts with a
 * process of its own; a failing request gives its one line and exit code through the daemon. Each test
 * has its own socket directory (STRATA_DAEMON_DIR) and a short idle time, so its daemon is its own.
 * A request the daemon must serve runs with STRATA_JAVA=/bin/false: had the launcher started a JVM
 * instead, the mount would fail ("the mount daemon stopped before the mount was ready").
 */
@Tag("native")
class SharedDaemonTest {
    Path dir, strata, sockets;

    @BeforeEach void setUp() throws IOException {
        NativeSupport.assumeNativeEnvironment();
        org.junit.jupiter.api.Assumptions.assumeTrue(Mounter.Strata.unavailableReason(NativeSupport.projectHome()) == null,
                "strata is not built");
        Path home = NativeSupport.projectHome();
        strata = home.resolve("bin/strata");
        assertTrue(Files.isExecutable(home.resolve("target/strata-client")),
                "target/strata-client is not built (bash scripts/setup.sh)");
        dir = NativeSupport.newTempDir("daemon");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x")); // nobody reaches its mount
        sockets = Files.createDirectory(dir.resolve("sockets"), PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
    }

    @AfterEach void cleanUp() throws InterruptedException {
        if (dir == null) return;
        Mounts.unmountAllUnder(dir, "umount");
        for (long pid : processesNaming(dir)) ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
        NativeSupport.deleteTree(dir);
    }

    // ------------------------------------------------------------------ helpers

    Map<String, String> env(boolean mustBeServed) {
        Map<String, String> e = new HashMap<>();
        e.put("STRATA_DAEMON_DIR", sockets.toString());
        e.put("STRATA_DAEMON_IDLE", "1");
        if (mustBeServed) e.put("STRATA_JAVA", "/bin/false");
        return e;
    }

    NativeSupport.Proc.Result strata(Map<String, String> env, String... args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(strata.toString());
        cmd.addAll(List.of(args));
        Map<String, String> e = new HashMap<>(env);
        return NativeSupport.Proc.run(dir, 120, e, cmd);
    }

    void ok(NativeSupport.Proc.Result r) {
        assertEquals(0, r.exit, r.command + ": " + r);
    }

    /** A lower layer NAME with file f holding NAME, an upper, a work dir and a mountpoint. */
    String[] layers(String name) throws IOException {
        Path l = Files.createDirectories(dir.resolve(name + "-l"));
        Files.writeString(l.resolve("f"), name);
        Files.createDirectories(dir.resolve(name + "-u"));
        Files.createDirectories(dir.resolve(name + "-w"));
        Files.createDirectories(dir.resolve(name + "-m"));
        return new String[]{"lowerdir=" + l + ",upperdir=" + dir.resolve(name + "-u") + ",workdir=" + dir.resolve(name + "-w"),
                dir.resolve(name + "-m").toString()};
    }

    /** strata JVMs whose command line names something under {@code under}. */
    static List<Long> processesNaming(Path under) {
        List<Long> out = new ArrayList<>();
        java.io.File[] procs = new java.io.File("/proc").listFiles((d, n) -> n.chars().allMatch(Character::isDigit));
        if (procs == null) return out;
        for (java.io.File p : procs) {
            try {
                String cmd = new String(Files.readAllBytes(p.toPath().resolve("cmdline")), StandardCharsets.ISO_8859_1);
                if (cmd.contains("strata.jar") && cmd.contains(under.toString())) out.add(Long.parseLong(p.getName()));
            } catch (IOException | RuntimeException e) {
                // gone meanwhile
            }
        }
        return out;
    }

    /** The targets of process pid's descriptors that start with prefix. */
    static List<String> openUnder(long pid, String prefix) {
        List<String> out = new ArrayList<>();
        java.io.File[] fds = new java.io.File("/proc/" + pid + "/fd").listFiles();
        if (fds == null) return out;
        for (java.io.File f : fds) {
            try {
                String t = Files.readSymbolicLink(f.toPath()).toString();
                if (t.startsWith(prefix)) out.add(t);
            } catch (IOException | RuntimeException e) {
                // closed meanwhile
            }
        }
        return out;
    }

    /**
     * The daemon's descriptors on files and directories of these trees, found by identity (dev, inode)
     * through /proc/PID/fd, not by path: strata opens the layers through detached copies of their mounts,
     * whose paths /proc shows from the copy's root.
     */
    static List<String> heldIn(long pid, Path... trees) throws IOException {
        java.util.Set<String> ids = new java.util.HashSet<>();
        for (Path t : trees) {
            if (!Files.exists(t, java.nio.file.LinkOption.NOFOLLOW_LINKS)) continue;
            try (var w = Files.walk(t)) {
                for (Path p : (Iterable<Path>) w::iterator) {
                    try {
                        var a = Files.readAttributes(p, "unix:dev,ino", java.nio.file.LinkOption.NOFOLLOW_LINKS);
                        ids.add(a.get("dev") + ":" + a.get("ino"));
                    } catch (IOException e) {
                        // gone meanwhile
                    }
                }
            }
        }
        List<String> out = new ArrayList<>();
        java.io.File[] fds = new java.io.File("/proc/" + pid + "/fd").listFiles();
        if (fds == null) return out;
        for (java.io.File f : fds) {
            try {
                var a = Files.readAttributes(f.toPath(), "unix:dev,ino"); // through the magic link
                if (ids.contains(a.get("dev") + ":" + a.get("ino"))) out.add(f + " -> " + Files.readSymbolicLink(f.toPath()));
            } catch (IOException | RuntimeException e) {
                // closed meanwhile
            }
        }
        return out;
    }

    /** stat(1) of PATH in a child (a hung daemon cannot hang the test): exit and stderr. */
    static NativeSupport.Proc.Result stat(Path p) {
        return NativeSupport.Proc.run(Path.of("/"), 30, "stat", "-c", "%s", p.toString());
    }

    static String procMountsLine(Path m) throws IOException {
        String line = null;
        for (String l : Files.readAllLines(Path.of("/proc/self/mounts"), StandardCharsets.ISO_8859_1)) {
            if (l.split(" ")[1].equals(m.toString())) line = l;
        }
        return line;
    }

    static void awaitGone(long pid, long millis) throws InterruptedException {
        for (long end = System.currentTimeMillis() + millis; System.currentTimeMillis() < end && ProcessHandle.of(pid).isPresent(); ) {
            Thread.sleep(50);
        }
    }

    // ------------------------------------------------------------------ tests

    /**
     * --log (what the differential tests' Mounter passes) goes through the daemon: the mount is served
     * there (STRATA_JAVA=/bin/false: no process of its own could start), the daemon creates the log 0600
     * relative to the caller's cwd and holds each mount's log for as long as that mount lives; the first
     * mount (the one that became the daemon) has its own log too, not the daemon's stderr for all.
     */
    @Test void mountsWithALogAreServedByTheDaemonEachWithItsLog() throws Exception {
        String[] a = layers("a"), b = layers("b");
        ok(strata(env(false), "mount", "--log", "a.log", "-o", a[0], a[1]));
        List<Long> first = processesNaming(dir);
        assertEquals(1, first.size(), "one strata process: " + first);
        long daemon = first.get(0);
        ok(strata(env(true), "mount", "--log=b.log", "-o", b[0], b[1]));
        assertEquals(List.of(daemon), Mounts.registeredPids(Path.of(b[1])), "the mount with --log is served by the daemon");
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve("b.log"))));
        assertEquals("b", Files.readString(Path.of(b[1]).resolve("f")));
        assertEquals(List.of(dir.resolve("a.log").toString()), openUnder(daemon, dir.resolve("a.log").toString()),
                "the first mount's log is its own (held once, not as the daemon's stderr for every mount)");
        assertEquals(List.of(dir.resolve("b.log").toString()), openUnder(daemon, dir.resolve("b.log").toString()),
                "the daemon writes b's log");
        ok(strata(env(false), "umount", b[1]));
        List<String> held = openUnder(daemon, dir.resolve("b.log").toString());
        for (long end = System.currentTimeMillis() + 10_000; !held.isEmpty() && System.currentTimeMillis() < end; ) {
            Thread.sleep(100);
            held = openUnder(daemon, dir.resolve("b.log").toString());
        }
        assertEquals(List.of(), held, "an unmounted mount's log is closed");
        assertEquals("a", Files.readString(Path.of(a[1]).resolve("f")));
        // a log the daemon may not write for the caller (a symlink) goes to a process of its own
        Files.createSymbolicLink(dir.resolve("c.log"), dir.resolve("a.log"));
        String[] c = layers("c");
        NativeSupport.Proc.Result r = strata(env(true), "mount", "--log=c.log", "-o", c[0], c[1]);
        assertNotEquals(0, r.exit, "a symlinked log is not opened by the daemon: " + r);
        assertFalse(Mounts.isMounted(Path.of(c[1])));
        ok(strata(env(false), "umount", a[1]));
    }

    /**
     * image commit --pause of a mount served by the shared daemon holds that mount's requests only: during
     * the commit a lookup in it waits while one in another mount of the same daemon answers, the daemon is
     * never stopped (SIGSTOP would stop both), and the waiting lookup is answered once the commit ends.
     * A commit killed during its pause leaves the mount answering (the pause ends with its connection).
     */
    @Test void commitPausePausesOnlyItsMountOnTheSharedDaemon() throws Exception {
        Path src = Files.createDirectories(dir.resolve("src/etc"));
        Files.writeString(src.resolve("conf"), "conf");
        NativeSupport.Proc.Result tar = NativeSupport.Proc.run(dir, 60, "tar", "-C", dir.resolve("src").toString(), "-cf", "base.tar", ".");
        ok(tar);
        String store = dir.resolve("store").toString();
        ok(strata(env(false), "image", "import", "base.tar", "--name", "base:1", "--store", store, "-q"));
        String json = strata(env(false), "image", "inspect", "base:1", "--json", "--store", store).stdout;
        String layer = new com.fasterxml.jackson.databind.ObjectMapper().readTree(json).path("layerDirsTopFirst").get(0).asText();
        for (String n : List.of("a-u", "a-w", "a-m")) Files.createDirectories(dir.resolve(n));
        // a mount of the store's layer with -o lowerdir= goes to the shared daemon (--image would not)
        ok(strata(env(false), "-o", "lowerdir=" + layer + ",upperdir=a-u,workdir=a-w", "a-m"));
        String[] b = layers("b");
        ok(strata(env(true), "-o", b[0], b[1]));
        long daemon = Mounts.registeredPids(dir.resolve("a-m")).get(0);
        assertEquals(List.of(daemon), Mounts.registeredPids(Path.of(b[1])), "one daemon serves both mounts");
        Path ma = dir.resolve("a-m"), mb = Path.of(b[1]);
        // an upper that takes a while to commit (60 MB that gzip cannot shrink)
        ok(NativeSupport.Proc.run(dir, 120, "sh", "-c", "head -c 60000000 /dev/urandom > a-m/big.bin"));

        for (boolean killCommit : new boolean[]{false, true}) {
            ProcessBuilder cb = new ProcessBuilder(strata.toString(), "image", "commit", "--pause", ma.toString(),
                    "paused:" + (killCommit ? 2 : 1), "--store", store, "-q").redirectErrorStream(true);
            cb.environment().putAll(env(false)); // this test's daemon
            Process commit = cb.start();
            boolean sawPausedAlone = false, sawStopped = false;
            Process waiting = null;
            int i = 0;
            while (commit.isAlive() && !sawPausedAlone) {
                // new names each time: a lookup the kernel has not cached goes to the daemon
                Process pa = new ProcessBuilder("stat", ma.resolve("new-" + killCommit + "-" + i).toString()).redirectErrorStream(true).start();
                Process pb = new ProcessBuilder("stat", mb.resolve("new-" + killCommit + "-" + i).toString()).redirectErrorStream(true).start();
                i++;
                boolean bDone = pb.waitFor(5, java.util.concurrent.TimeUnit.SECONDS);
                boolean aDone = pa.waitFor(500, java.util.concurrent.TimeUnit.MILLISECONDS);
                String st = Files.readString(Path.of("/proc/" + daemon + "/stat"));
                if (st.substring(st.lastIndexOf(')') + 2).startsWith("T")) sawStopped = true;
                if (!aDone && bDone && commit.isAlive()) {
                    sawPausedAlone = true;
                    waiting = pa;
                } else if (!aDone) {
                    pa.waitFor(60, java.util.concurrent.TimeUnit.SECONDS);
                }
            }
            assertTrue(sawPausedAlone, "during the commit a lookup in the paused mount waited while one in the other mount answered"
                    + (commit.isAlive() ? "" : " (commit: exit " + commit.waitFor() + ", " + new String(commit.getInputStream().readAllBytes()).strip() + ")"));
            assertFalse(sawStopped, "the shared daemon was not stopped");
            if (killCommit) commit.destroyForcibly();
            commit.waitFor(120, java.util.concurrent.TimeUnit.SECONDS);
            if (!killCommit) assertEquals(0, commit.exitValue(), new String(commit.getInputStream().readAllBytes()));
            assertTrue(waiting.waitFor(30, java.util.concurrent.TimeUnit.SECONDS),
                    "the lookup held during the pause is answered once the commit " + (killCommit ? "was killed" : "ended"));
            assertEquals("conf", Files.readString(ma.resolve("etc/conf")), "the paused mount answers again");
        }
        ok(strata(env(false), "image", "inspect", "paused:1", "--store", store));
        ok(strata(env(false), "umount", mb.toString()));
        ok(strata(env(false), "umount", ma.toString()));
    }

    /**
     * A mount asking for other JVM settings (STRATA_JAVA_OPTS, STRATA_HEAP) is never served by a daemon
     * started without them: it gets a daemon of its own, which later mounts with the same settings share.
     */
    @Test void mountsWithOtherJvmSettingsGetADaemonOfTheirOwn() throws Exception {
        String[] a = layers("a"), b = layers("b"), c = layers("c");
        ok(strata(env(false), "-o", a[0], a[1]));
        List<Long> plain = Mounts.registeredPids(Path.of(a[1]));
        assertEquals(1, plain.size(), "one daemon: " + plain);
        Map<String, String> opts = env(false);
        opts.put("STRATA_JAVA_OPTS", "-Dstrata.test.setting=1");
        ok(strata(opts, "-o", b[0], b[1]));
        List<Long> other = Mounts.registeredPids(Path.of(b[1]));
        assertEquals(1, other.size(), "one daemon: " + other);
        assertNotEquals(plain, other, "the mount with other JVM settings has a daemon of its own");
        Map<String, String> served = env(true);
        served.put("STRATA_JAVA_OPTS", "-Dstrata.test.setting=1");
        ok(strata(served, "-o", c[0], c[1]));
        assertEquals(other, Mounts.registeredPids(Path.of(c[1])), "the same settings share that daemon");
        assertEquals("c", Files.readString(Path.of(c[1]).resolve("f")));
    }

    /**
     * A launcher never hands a mount to a daemon of another build: another copy of strata (another
     * strata.jar), and the same copy after its jar was rebuilt (an upgrade while a daemon runs), each get a
     * daemon of their own; the first daemon keeps serving its mount.
     */
    @Test void anotherBuildOfStrataGetsADaemonOfItsOwn() throws Exception {
        String[] a = layers("a"), b = layers("b"), c = layers("c");
        Path copy = NativeSupport.copyOfStrata(dir.resolve("copy"));
        Path launcher = strata;
        try {
            strata = copy;
            ok(strata(env(false), "-o", a[0], a[1]));
            List<Long> first = Mounts.registeredPids(Path.of(a[1]));
            assertEquals(1, first.size(), "one daemon: " + first);
            strata = launcher;
            ok(strata(env(false), "-o", b[0], b[1]));
            List<Long> other = Mounts.registeredPids(Path.of(b[1]));
            assertEquals(1, other.size(), "one daemon: " + other);
            assertNotEquals(first, other, "another copy of strata has a daemon of its own");
            strata = copy;
            Path jar = copy.getParent().getParent().resolve("target/strata.jar");
            Files.setLastModifiedTime(jar, java.nio.file.attribute.FileTime.fromMillis(Files.getLastModifiedTime(jar).toMillis() + 60_000));
            ok(strata(env(false), "-o", c[0], c[1]));
            List<Long> rebuilt = Mounts.registeredPids(Path.of(c[1]));
            assertEquals(1, rebuilt.size(), "one daemon: " + rebuilt);
            assertNotEquals(first, rebuilt, "a rebuilt strata.jar has a daemon of its own");
            assertEquals("a", Files.readString(Path.of(a[1]).resolve("f")), "the first daemon still serves its mount");
            assertEquals("c", Files.readString(Path.of(c[1]).resolve("f")));
        } finally {
            strata = launcher;
        }
    }

    /** Threads of process pid whose name starts with prefix. */
    static int threadsNamed(long pid, String prefix) {
        int n = 0;
        java.io.File[] tasks = new java.io.File("/proc/" + pid + "/task").listFiles();
        if (tasks == null) return 0;
        for (java.io.File t : tasks) {
            try {
                if (Files.readString(t.toPath().resolve("comm")).startsWith(prefix)) n++;
            } catch (IOException | RuntimeException e) {
                // ended meanwhile
            }
        }
        return n;
    }

    /** Waits (at most 10 s) until pid has at most max threads named prefix; returns how many it has. */
    static int awaitThreadsAtMost(long pid, String prefix, int max) throws InterruptedException {
        return awaitThreadsAtMost(pid, prefix, max, 10_000);
    }

    /** Waits (at most ms) until pid has at most max threads named prefix; returns how many it has. */
    static int awaitThreadsAtMost(long pid, String prefix, int max, long ms) throws InterruptedException {
        int n = threadsNamed(pid, prefix);
        for (long end = System.currentTimeMillis() + ms; n > max && System.currentTimeMillis() < end; ) {
            Thread.sleep(100);
            n = threadsNamed(pid, prefix);
        }
        return n;
    }

    /** Resident kB of the daemon's mappings of libjvm.so (/proc/PID/smaps). */
    static long libjvmKb(long pid) throws IOException {
        long kb = 0;
        boolean jvm = false;
        for (String l : Files.readAllLines(Path.of("/proc/" + pid + "/smaps"), StandardCharsets.ISO_8859_1)) {
            if (l.matches("^[0-9a-f]+-[0-9a-f]+ .*")) jvm = l.endsWith("/libjvm.so");
            else if (jvm && l.startsWith("Rss:")) kb += Long.parseLong(l.replaceAll("[^0-9]", ""));
        }
        return kb;
    }

    static long awaitLibjvmBelow(long pid, long kb) throws Exception {
        long now = libjvmKb(pid);
        for (long end = System.currentTimeMillis() + 30_000; now >= kb && System.currentTimeMillis() < end; ) {
            Thread.sleep(200);
            now = libjvmKb(pid);
        }
        return now;
    }

    /**
     * Issue 14: once requests stop, the daemon unmaps the clean file pages it ran through (libjvm.so's
     * 13 MB among them: fuse/kernel/CleanMappings.java), and serves on as before: reads of lower and
     * upper files, a copy-up, a new file, a listing, twice over (each time after a rest).
     */
    static String expected(int i, int round) {
        return "lower " + i + "\n".repeat(i) + (i < round ? "appended " + i : "");
    }

    @Test void aDaemonAtRestUnmapsItsCodeAndServesOnAfter() throws Exception {
        String[] a = layers("a");
        Path lower = dir.resolve("a-l");
        for (int i = 0; i < 50; i++) Files.writeString(lower.resolve("g" + i), "lower " + i + "\n".repeat(i));
        ok(strata(env(false), "-o", a[0], a[1]));
        long daemon = processesNaming(dir).get(0);
        Path m = Path.of(a[1]);
        for (int round = 0; round < 2; round++) {
            for (int i = 0; i < 50; i++) assertEquals(expected(i, round), Files.readString(m.resolve("g" + i)));
            long busy = libjvmKb(daemon);
            if (round == 0) assertTrue(busy > 6_000, "libjvm.so mapped while serving: " + busy + " kB");
            long rest = awaitLibjvmBelow(daemon, 6_000);
            assertTrue(rest < 6_000, "at rest the daemon holds " + rest + " kB of libjvm.so (" + busy + " kB while serving)");
            // after the drop: the same answers
            for (int i = 0; i < 50; i++) assertEquals(expected(i, round), Files.readString(m.resolve("g" + i)));
            Files.writeString(m.resolve("g" + round), "appended " + round, java.nio.file.StandardOpenOption.APPEND);
            Files.writeString(m.resolve("new" + round), "new " + round);
            assertEquals("lower " + round + "\n".repeat(round) + "appended " + round, Files.readString(m.resolve("g" + round)));
            assertEquals("new " + round, Files.readString(dir.resolve("a-u/new" + round)), "written to the upper layer");
            try (var list = Files.list(m)) {
                assertEquals(52 + round, list.count(), "f, g0..g49 and the new files");
            }
        }
        assertEquals(List.of(daemon), processesNaming(dir), "one daemon served it all");
        ok(strata(env(false), "umount", a[1]));
    }

    /**
     * Issue 14: a mount's FUSE workers start as requests need them and end when two others wait, so
     * that a mount between requests holds two threads (the one that took a request and the one started
     * to wait meanwhile) rather than four, and a mount quiet for a while one: the daemon wakes the other
     * with a request of the kernel's that needs no reply (NOTIFY_RETRIEVE of no data: fuse/kernel/
     * Workers#shed), and it ends. A burst of parallel requests is still served, a quiet mount serves on
     * after (its next request starts a second worker again), and an unmounted mount's workers end.
     */
    @Test void aQuietMountHoldsOneWorker() throws Exception {
        String[] a = layers("a"), b = layers("b"), c = layers("c");
        ok(strata(env(false), "-o", a[0], a[1]));
        long daemon = processesNaming(dir).get(0);
        ok(strata(env(true), "-o", b[0], b[1]));
        ok(strata(env(true), "-o", c[0], c[1]));
        Path mb = Path.of(b[1]);
        for (String[] m : List.of(a, b, c)) assertTrue(Files.readString(Path.of(m[1]).resolve("f")).length() == 1);
        assertTrue(threadsNamed(daemon, "strata-fuse-") >= 6, "two workers for each of three mounts between requests");
        // quiet 3 s: the drop, then the worker woken parks 2 s and ends; its thread waits 5 s for another task
        assertEquals(3, awaitThreadsAtMost(daemon, "strata-fuse-", 3, 30_000), "one worker for each of three quiet mounts");
        // parallel requests on b: more workers serve them, then those beyond one end once b is quiet again
        ok(NativeSupport.Proc.run(dir, 60, "sh", "-c", "for i in 1 2 3 4 5 6 7 8; do (mkdir -p " + mb + "/d$i/e && for j in 1 2 3 4 5 6 7 8 9 10; do"
                + " echo $j > " + mb + "/d$i/e/f$j; cat " + mb + "/d$i/e/f$j >/dev/null; done) & done; wait"));
        assertEquals("10\n", Files.readString(mb.resolve("d8/e/f10")));
        assertTrue(threadsNamed(daemon, "strata-fuse-") > 3, "the burst had more workers");
        assertEquals(3, awaitThreadsAtMost(daemon, "strata-fuse-", 3, 30_000), "back to one worker a mount");
        // quiet mounts serve on: reads, a copy-up, a new file, in parallel
        ok(NativeSupport.Proc.run(dir, 60, "sh", "-c", "for m in " + a[1] + " " + c[1] + "; do (cat $m/f >/dev/null && echo x >> $m/f"
                + " && for j in 1 2 3 4 5; do echo $j > $m/n$j & done; wait) & done; wait"));
        for (String[] m : List.of(a, c)) {
            Path mp = Path.of(m[1]);
            assertEquals(m == a ? "ax\n" : "cx\n", Files.readString(mp.resolve("f")));
            for (int j = 1; j <= 5; j++) assertEquals(j + "\n", Files.readString(mp.resolve("n" + j)));
        }
        ok(strata(env(false), "umount", mb.toString()));
        assertEquals(2, awaitThreadsAtMost(daemon, "strata-fuse-", 2, 30_000), "an unmounted mount's workers ended, the others' shed again");
    }

    /** Resident kB of the FUSE workers' buffers: the anonymous mappings marked MADV_DONTFORK ("dc"), and how many. */
    static long[] bufferKb(long pid) throws IOException {
        long kb = 0, rss = 0, n = 0;
        for (String l : Files.readAllLines(Path.of("/proc/" + pid + "/smaps"), StandardCharsets.ISO_8859_1)) {
            if (l.startsWith("Rss:")) rss = Long.parseLong(l.replaceAll("[^0-9]", ""));
            else if (l.startsWith("VmFlags:") && (" " + l.substring(8) + " ").contains(" dc ")) {
                kb += rss;
                n++;
            }
        }
        return new long[]{kb, n};
    }

    /**
     * Issue 14: a worker's request and reply buffers (1 MiB each, for WRITEs and READ replies of up to
     * max_write) keep only their first 32 KiB resident once the mount rests, also when small requests
     * followed the large ones within the 2 s the worker waits before it gives the rest back (it used to
     * keep them then, until its next large request), and with two workers waiting on /dev/fuse.
     */
    @Test void workersGiveBackTheirBuffersPagesAfterLargeRequests() throws Exception {
        String[] a = layers("a");
        ok(strata(env(false), "-o", a[0] + ",passthrough=0", a[1]));
        long daemon = processesNaming(dir).get(0);
        Path m = Path.of(a[1]);
        // 1 MiB WRITEs and 128 KiB READ replies through the buffers (O_DIRECT: no page cache between),
        // then small requests every 0.3 s for longer than a worker waits before it gives them back
        ok(NativeSupport.Proc.run(dir, 60, "sh", "-c", "dd if=/dev/zero of=" + m + "/big bs=1M count=16 oflag=direct status=none"
                + " && dd if=" + m + "/big of=/dev/null bs=128k iflag=direct status=none"));
        long[] busy = bufferKb(daemon);
        assertTrue(busy[1] > 0, "the workers' buffers are marked MADV_DONTFORK (dc in smaps)");
        assertTrue(busy[0] > 1024, "the buffers held the large requests' pages: " + busy[0] + " kB");
        ok(NativeSupport.Proc.run(dir, 60, "sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do stat " + m + "/f >/dev/null; sleep 0.3; done"));
        long[] rest = busy;
        long limit = 0;
        for (long end = System.currentTimeMillis() + 15_000; System.currentTimeMillis() < end; Thread.sleep(200)) {
            rest = bufferKb(daemon);
            limit = 64L * Math.max(rest[1], threadsNamed(daemon, "strata-fuse-")); // adjacent buffers may share a mapping
            if (rest[0] <= limit) break;
        }
        assertTrue(rest[0] <= limit, "at rest the workers' buffers hold " + rest[0] + " kB (" + busy[0] + " kB busy)");
        assertEquals(16L << 20, Files.size(m.resolve("big")));
        assertEquals("a", Files.readString(m.resolve("f")), "served on after");
        ok(strata(env(false), "umount", a[1]));
    }

    @Test void mountsShareOneDaemonAndUnmountingOneLeavesTheOthers() throws Exception {
        String[] a = layers("a"), b = layers("b"), c = layers("c");
        NativeSupport.Proc.Result started = strata(env(false), "-o", a[0], a[1]);
        ok(started);
        // as fuse-overlayfs, a mount program that says nothing (the daemon's JVM options print nothing)
        assertEquals("", started.stdout, "the first mount's output");
        List<Long> first = processesNaming(dir);
        assertEquals(1, first.size(), "one strata process: " + first);
        long daemon = first.get(0);
        // podman's form, then the mount command with paths relative to the caller's cwd (not the daemon's)
        ok(strata(env(true), "-o", b[0], b[1]));
        ok(strata(env(true), "mount", "-o", "lowerdir=c-l,upperdir=c-u,workdir=c-w", "c-m"));
        assertEquals(List.of(daemon), processesNaming(dir), "still one strata process");
        Path ma = Path.of(a[1]), mb = Path.of(b[1]), mc = Path.of(c[1]);
        for (Path m : List.of(ma, mb, mc)) {
            assertEquals(List.of(daemon), Mounts.registeredPids(m), "the record of " + m + " names the daemon");
            assertTrue(procMountsLine(m).contains(" fuse.strata "), procMountsLine(m));
        }
        assertEquals("a", Files.readString(ma.resolve("f")));
        assertEquals("c", Files.readString(mc.resolve("f")));

        // find in b so that every worker of b opened directories of its layers (a cache per thread)
        NativeSupport.Proc.run(dir, 30, "sh", "-c", "for i in 1 2 3 4 5 6 7 8; do mkdir -p " + mb + "/d$i/e && ls -l " + mb + "/d$i/e >/dev/null & done; wait");
        Path[] bTrees = {dir.resolve("b-l"), dir.resolve("b-u"), dir.resolve("b-w")};
        assertFalse(heldIn(daemon, dir.resolve("b-u")).isEmpty(), "the test sees the daemon's descriptors");
        ok(strata(env(false), "umount", mb.toString()));
        assertFalse(Mounts.isMounted(mb));
        List<String> held = heldIn(daemon, bTrees);
        for (long end = System.currentTimeMillis() + 10_000; !held.isEmpty() && System.currentTimeMillis() < end; ) {
            Thread.sleep(100);
            held = heldIn(daemon, bTrees);
        }
        assertEquals(List.of(), held, "an unmounted mount's engine closed every descriptor of its layers");
        Files.writeString(ma.resolve("f"), "a2");
        Files.writeString(mc.resolve("f"), "c2");
        assertEquals("a2", Files.readString(dir.resolve("a-u/f")));
        assertEquals("c2", Files.readString(dir.resolve("c-u/f")));
        assertEquals("b", Files.readString(dir.resolve("b-l/f")));

        ok(NativeSupport.Proc.run(dir, 30, "fusermount3", "-u", mc.toString()));
        assertFalse(Mounts.isMounted(mc));
        assertEquals("a2", Files.readString(ma.resolve("f")), "the first mount still works");
        assertTrue(ProcessHandle.of(daemon).isPresent());
        // a mount again after others went: the same daemon
        ok(strata(env(true), "-o", b[0], b[1]));
        assertEquals(List.of(daemon), Mounts.registeredPids(mb));
        assertEquals("b", Files.readString(mb.resolve("f")));

        ok(strata(env(false), "umount", mb.toString()));
        ok(strata(env(false), "umount", ma.toString()));
        awaitGone(daemon, 15_000);
        assertFalse(ProcessHandle.of(daemon).isPresent(), "the daemon ends after its idle time (1 s here) without mounts");
        assertEquals(List.of(), Mounts.registeredPids(ma), "no record left");
        try (var s = Files.list(sockets)) {
            assertEquals(List.of(), s.toList(), "the socket and its lock file are removed");
        }
    }

    /**
     * Issue 14: every build of strata names its daemon's socket anew, and each daemon left its lock file
     * behind for good. A daemon that ends removes its socket and lock file; one that starts removes what
     * ended daemons left (a socket and a lock file nobody holds), and leaves a lock file a live daemon
     * holds alone.
     */
    @Test void aDaemonRemovesWhatEndedDaemonsLeftAndLeavesNothingBehind() throws Exception {
        Path staleSock = Files.createFile(sockets.resolve("mnt-1-user-2-0badc0de.sock"));
        Path staleLock = Files.createFile(sockets.resolve("mnt-1-user-2-0badc0de.sock.lock"));
        Path heldLock = Files.createFile(sockets.resolve("mnt-1-user-2-0feedbee.sock.lock"));
        Process holder = new ProcessBuilder("flock", "-x", heldLock.toString(), "sleep", "120").start();
        try {
            for (long end = System.currentTimeMillis() + 10_000; System.currentTimeMillis() < end; Thread.sleep(50)) {
                if (NativeSupport.Proc.run(dir, 10, "flock", "-n", "-x", heldLock.toString(), "true").exit != 0) break;
            }
            assertNotEquals(0, NativeSupport.Proc.run(dir, 10, "flock", "-n", "-x", heldLock.toString(), "true").exit,
                    "the test's flock holds " + heldLock);
            String[] a = layers("a");
            ok(strata(env(false), "-o", a[0], a[1]));
            List<Long> pids = processesNaming(dir);
            assertEquals(1, pids.size(), pids.toString());
            assertFalse(Files.exists(staleSock), "a socket whose lock file nobody held is removed");
            assertFalse(Files.exists(staleLock), "and its lock file");
            assertTrue(Files.exists(heldLock), "a lock file a daemon holds is left alone");
            ok(strata(env(false), "umount", a[1]));
            awaitGone(pids.get(0), 15_000);
            assertFalse(ProcessHandle.of(pids.get(0)).isPresent(), "the daemon ends after its idle time");
            try (var s = Files.list(sockets)) {
                assertEquals(List.of(heldLock), s.toList(), "the daemon removed its socket and its lock file");
            }
        } finally {
            holder.destroyForcibly();
            holder.waitFor();
        }
    }

    /**
     * bin/strata through a symlink elsewhere (as setup.sh --install links /usr/local/bin/strata): the first
     * mount, with no daemon, goes from the client on to libexec/strata-jvm, which starts the JVM that
     * becomes the daemon; the next one is served by it (STRATA_JAVA=/bin/false); the mount.fuse3 form
     * (SOURCE MOUNTPOINT -o, which the daemon refuses) and STRATA_DAEMON=0 get a process of their own.
     */
    @Test void aSymlinkedLauncherHandsMountsToTheDaemonAndFallsBackToTheJvm() throws Exception {
        Path links = Files.createDirectory(dir.resolve("links"));
        Path link = Files.createSymbolicLink(links.resolve("strata"), strata);
        String[] a = layers("a"), b = layers("b"), c = layers("c"), d = layers("d");
        Path saved = strata;
        try {
            strata = link;
            ok(strata(env(false), "-o", a[0], a[1]));
            List<Long> first = processesNaming(dir);
            assertEquals(1, first.size(), "one strata process: " + first);
            ok(strata(env(true), "-o", b[0], b[1]));
            assertEquals(first, processesNaming(dir), "the second mount is the daemon's");
            assertEquals(first, Mounts.registeredPids(Path.of(b[1])));
            ok(strata(env(false), "overlay", c[1], "-o", c[0]));
            Map<String, String> own = env(false);
            own.put("STRATA_DAEMON", "0");
            ok(strata(own, "-o", d[0], d[1]));
            for (String[] x : List.of(c, d)) {
                List<Long> pids = Mounts.registeredPids(Path.of(x[1]));
                assertEquals(1, pids.size(), x[1] + ": " + pids);
                assertFalse(first.contains(pids.get(0)), x[1] + " is served by a process of its own");
            }
            for (String n : List.of("a", "b", "c", "d")) assertEquals(n, Files.readString(dir.resolve(n + "-m/f")));
            assertEquals(1, strata(env(true), "-o", b[0], dir.resolve("missing").toString()).exit,
                    "a mount the daemon fails gives its exit code, without starting a JVM");
        } finally {
            strata = saved;
        }
    }

    @Test void aKilledDaemonLeavesEveryMountNotConnectedAndUmountClearsThem() throws Exception {
        String[] a = layers("a"), b = layers("b");
        ok(strata(env(false), "-o", a[0], a[1]));
        ok(strata(env(true), "-o", b[0], b[1]));
        List<Long> pids = processesNaming(dir);
        assertEquals(1, pids.size(), pids.toString());
        ProcessHandle.of(pids.get(0)).ifPresent(ProcessHandle::destroyForcibly);
        awaitGone(pids.get(0), 10_000);
        for (String[] x : List.of(a, b)) {
            NativeSupport.Proc.Result r = stat(Path.of(x[1]).resolve("f"));
            assertNotEquals(0, r.exit, r.toString());
            assertTrue(r.stderr.contains("Transport endpoint is not connected"), x[1] + ": " + r);
            assertTrue(Mounts.isMounted(Path.of(x[1])), "the dead mount says so until unmounted");
        }
        for (String[] x : List.of(a, b)) {
            ok(strata(env(false), "umount", x[1]));
            assertFalse(Mounts.isMounted(Path.of(x[1])));
        }
        // the killed daemon's socket is still there: the next mount starts a daemon that replaces it
        ok(strata(env(false), "-o", a[0], a[1]));
        ok(strata(env(true), "-o", b[0], b[1]));
        assertEquals("b", Files.readString(Path.of(b[1]).resolve("f")));
        assertEquals(1, processesNaming(dir).size(), processesNaming(dir).toString());
    }

    @Test void aFailingRequestGivesItsOneLineThroughTheDaemon() throws Exception {
        String[] a = layers("a");
        ok(strata(env(false), "-o", a[0], a[1]));
        Files.createDirectories(dir.resolve("x-m"));
        NativeSupport.Proc.Result r = strata(env(true), "-o", "lowerdir=" + dir.resolve("missing"), dir.resolve("x-m").toString());
        assertEquals(1, r.exit, r.toString());
        assertEquals("strata: lowerdir " + dir.resolve("missing") + " does not exist", r.stderr.strip());
        r = strata(env(true), "-o", "lowerdir=" + dir.resolve("a-l") + ",bogus_option", dir.resolve("x-m").toString());
        assertEquals(0, r.exit, r.toString());
        assertTrue(r.stderr.startsWith("strata: warning: "), "a warning reaches the caller: " + r);
        ok(strata(env(false), "umount", dir.resolve("x-m").toString()));
        assertEquals("a", Files.readString(Path.of(a[1]).resolve("f")), "the daemon's other mount is untouched");
        // what the daemon does not serve takes a JVM of its own (here /bin/false: the launcher says it stopped)
        r = strata(env(true), "-o", "lowerdir=" + dir.resolve("a-l") + ",transport=libfuse", dir.resolve("x-m").toString());
        assertEquals(1, r.exit, r.toString());
        assertEquals("strata: the mount daemon stopped before the mount was ready", r.stderr.strip());
    }

    @Test void anotherUsersLauncherIsRefusedAndMountsWithAProcessOfItsOwn() throws Exception {
        String[] a = layers("a");
        ok(strata(env(false), "-o", a[0], a[1]));
        long daemon = processesNaming(dir).get(0);
        Path sock;
        try (var s = Files.list(sockets)) {
            sock = s.filter(p -> p.toString().endsWith(".sock")).findFirst().orElseThrow();
        }
        // let uid 65534 reach root's socket (test only): its own socket directory holds a link to it
        Files.setPosixFilePermissions(sockets, PosixFilePermissions.fromString("rwx--x--x"));
        Files.setPosixFilePermissions(sock, PosixFilePermissions.fromString("rw-rw-rw-"));
        Path theirs = Files.createDirectory(dir.resolve("nobody-sockets"));
        Files.createSymbolicLink(theirs.resolve(sock.getFileName()), sock);
        Path l = Files.createDirectories(dir.resolve("n-l")), m = Files.createDirectories(dir.resolve("n-m"));
        Files.writeString(l.resolve("f"), "n");
        ok(NativeSupport.Proc.run(dir, 30, "chown", "-R", "nobody:", theirs.toString(), l.toString(), m.toString()));
        ok(NativeSupport.Proc.run(dir, 30, "chmod", "700", theirs.toString()));
        ok(NativeSupport.Proc.run(dir, 30, "runuser", "-u", "nobody", "--", "test", "-S", theirs.resolve(sock.getFileName()).toString()));

        // its own process is /bin/false here (uid 65534 cannot open /dev/fuse on every machine): the
        // launcher's "stopped" message shows the request was refused and went to a process of its own
        NativeSupport.Proc.Result r = NativeSupport.Proc.run(dir, 120,
                Map.of("HOME", "/tmp", "STRATA_DAEMON_DIR", theirs.toString(), "STRATA_JAVA", "/bin/false"),
                List.of("runuser", "-u", "nobody", "--", NativeSupport.launcherFor("nobody", dir).toString(), "-o", "lowerdir=" + l, m.toString()));
        assertEquals(1, r.exit, r.toString());
        assertEquals("strata: the mount daemon stopped before the mount was ready", r.stderr.strip());
        assertFalse(Mounts.isMounted(m), "root's daemon did not mount it: " + procMountsLine(m));
        assertFalse(Mounts.registeredPids(m).contains(daemon), "root's daemon does not serve it");
        assertTrue(ProcessHandle.of(daemon).isPresent());
        assertEquals("a", Files.readString(Path.of(a[1]).resolve("f")));
        ok(strata(env(false), "umount", a[1]));
    }
}
