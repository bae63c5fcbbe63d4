package dev.strata.nativetest;

import dev.strata.posix.Posix;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The harness checked against the oracle: the standard layers mean on the kernel overlay what
 * LayerBuilder says they mean, two kernel mounts of identical copies agree, a corrupted copy is caught,
 * nothing stays mounted after close, and a hung daemon fails the test in bounded time.
 */
@Tag("native")
class HarnessSelfTest {
    @BeforeEach void env() { NativeSupport.assumeNativeEnvironment(); }

    @Test void standardLayersMeanWhatTheBuilderSays() {
        Path dir = NativeSupport.newTempDir("selftest");
        try {
            LayerSet s = LayerBuilder.standard(dir.resolve("a"));
            try (Mount m = Mounter.kernel().mount(s)) {
                Snapshot k = Snapshot.take("kernel", s.mnt);
                assertNull(k.get("gone"), "whiteout of a dir");
                assertNull(k.get("etc/hosts"), "whiteout of a file");
                assertNull(k.get("data/ghost"), "whiteout in the top layer");
                assertNotNull(k.get("etc/passwd"));
                assertNull(k.get("opq/old1"), "opaque dir hides the layer below");
                assertNotNull(k.get("opq/new1"));
                assertNotNull(k.get("opq/top"), "layer above an opaque dir still merges");
                assertEquals(sha("top version\n"), k.get("shadow.txt").sha256());
                for (String n : new String[]{"merged/from0", "merged/from1", "merged/from2", "merged/sub/s0", "merged/sub/s2"}) {
                    assertNotNull(k.get(n), n);
                }
                assertEquals("file", k.get("tdir").type());
                assertNull(k.get("tdir/child"));
                assertEquals("dir", k.get("tfile").type());
                assertEquals(3, k.get("data/hl1").nlink());
                assertEquals(k.get("data/hl1").ino(), k.get("data/sub/hl3").ino());
                assertEquals("fifo", k.get("pipe").type());
                assertEquals(04755, k.get("usr/bin/tool").perm());
                assertEquals("blue", k.get("xattr.txt").xattrs().get("user.color"));
                assertFalse(k.get("opq").xattrs().containsKey("trusted.overlay.opaque"), "the kernel hides its own xattrs");
                assertNotNull(k.get(LayerBuilder.NON_UTF8_FILE));
                assertNotNull(k.get(LayerBuilder.NON_UTF8_INNER));
                assertEquals(1, k.get("").nlink(), "merged root: the kernel reports nlink 1");
                assertEquals("yes", k.get("data/sparse.img").fields(Snapshot.Options.all()).get("holes"));
            }
            assertTrue(Mounts.mountedUnder(dir).isEmpty(), "still mounted: " + Mounts.mountedUnder(dir));
        } finally {
            NativeSupport.deleteTree(dir);
        }
    }

    @Test void twoKernelMountsOfIdenticalCopiesAgree() {
        try (Pair p = new Pair("k2k", Mounter.kernel(), Mounter.kernel(), LayerBuilder::standard)) {
            assertEquals(List.of(), p.treeDiff(Snapshot.Options.all(), 40));
            // the same operations through both keep them equal
            for (Op op : new Op[]{Op.append("shadow.txt", 10, 1), Op.unlink("etc/passwd"), Op.rename("merged/from2", "merged/x", 0),
                    Op.mkdir("gone", 0700), Op.chmod("usr/bin/tool", 0700), Op.setxattr("owned", "user.k", "v", 0)}) {
                assertEquals(p.refOps.run(op), p.tgtOps.run(op), op.toString());
            }
            assertEquals(List.of(), p.treeDiff(Snapshot.Options.all(), 40));
        }
    }

    @Test void aCorruptedLowerCopyIsCaught() {
        // one byte of one lower file differs in the second copy: the comparator must name exactly it
        try (Pair p = new Pair("corrupt", Mounter.kernel(), Mounter.kernel(), root -> {
            LayerSet s = LayerBuilder.standard(root);
            if (root.getFileName().toString().equals("tgt")) {
                Tree t = new Tree(s.lowers.get(2));
                int fd = Tree.check(Posix.openat(Posix.AT_FDCWD, t.abs("data/big.bin"), Posix.O_WRONLY, 0), "open");
                try { Tree.writeAll(fd, new byte[]{1, 2, 3}, 2_000_000, "corrupt"); } finally { Posix.close(fd); }
                Tree.check(Posix.fchmodat(Posix.AT_FDCWD, t.abs("owned"), 0600), "chmod");
                t.fixTimes();
            }
            return s;
        })) {
            List<String> d = p.treeDiff(Snapshot.Options.all(), 40);
            assertEquals(2, d.size(), d.toString());
            assertTrue(d.get(0).startsWith("data/big.bin: sha256"), d.toString());
            assertTrue(d.get(1).startsWith("owned: mode kernel=0640 kernel#2=0600"), d.toString());
        }
    }

    @Test void mountsAreGoneAfterAFailureInsideTheTest() {
        Path[] dir = new Path[1];
        RuntimeException boom = new RuntimeException("test body failed");
        try (Pair p = new Pair("fail", Mounter.kernel(), Mounter.kernel(), LayerBuilder::standard)) {
            dir[0] = p.dir;
            p.refOps.run(Op.holdOpen(0, "shadow.txt", Posix.O_RDONLY)); // an open descriptor must not block the unmount
            throw boom;
        } catch (RuntimeException e) {
            assertEquals(boom, e);
        }
        assertTrue(Mounts.mountedUnder(dir[0]).isEmpty(), "still mounted: " + Mounts.mountedUnder(dir[0]));
    }

    /**
     * A daemon that stops answering (SIGSTOP in the middle of a call) fails the test in bounded time: the
     * watchdog kills it, the call returns, and the guarded call ends in an AssertionError saying HANG.
     */
    @Test void aHungDaemonFailsTheTestInBoundedTime() {
        String why = Mounter.Strata.unavailableReason(NativeSupport.projectHome());
        if (why != null && !NativeSupport.nativeRequired()) org.junit.jupiter.api.Assumptions.abort("strata is not built: " + why);
        // SIGSTOPs the process serving its mount: one of its own (a stopped shared daemon stops every mount it serves)
        Mounter strata = Mounter.underTest("strata", NativeSupport.projectHome(), NativeSupport.nativeRequired()).ownProcess();
        Path dir = NativeSupport.newTempDir("hang");
        try {
            LayerSet s = LayerSet.create(dir.resolve("x"), 1);
            try (Mount m = strata.mount(s)) {
                List<Long> pids = Mounts.daemonPids(m.path());
                assertEquals(1, pids.size(), "one daemon: " + pids);
                NativeSupport.Proc.Result stop = NativeSupport.Proc.run(Path.of("/"), 10, "kill", "-STOP", String.valueOf(pids.get(0)));
                assertEquals(0, stop.exit, stop.toString());
                // SIGSTOP takes effect as each thread next leaves the kernel: wait until all are stopped
                String states = threadStates(pids.get(0));
                for (long until = System.nanoTime() + 5_000_000_000L; !states.matches("T+") && System.nanoTime() < until; states = threadStates(pids.get(0))) sleep(10);
                String mountedBefore = mountLine(m.path()), stoppedStates = states;
                long t0 = System.nanoTime();
                String name = m.abs("not-looked-up-before-" + t0);
                int[] got = new int[2];
                AssertionError e = org.junit.jupiter.api.Assertions.assertThrows(AssertionError.class,
                        () -> Mounts.guarded("lstat of a new name", 3, () -> {
                            got[0] = Posix.fstatat(Posix.AT_FDCWD, name, new dev.strata.posix.Stat(), Posix.AT_SYMLINK_NOFOLLOW);
                            got[1] = Posix.errno();
                            return got[0];
                        }),
                        () -> "the lstat through a stopped daemon returned " + got[0] + " (errno " + got[1] + ") after "
                                + (System.nanoTime() - t0) / 1000 + " us; daemon threads' states " + stoppedStates + " then "
                                + threadStates(pids.get(0)) + "; mount before: " + mountedBefore + "; after: " + mountLine(m.path()));
                long secs = (System.nanoTime() - t0) / 1_000_000_000L;
                assertTrue(e.getMessage().startsWith("HANG: 'lstat of a new name' did not return within 3 s"), e.getMessage());
                assertTrue(secs < 30, "the hang ended the call after " + secs + " s");
                long end = System.nanoTime() + 10_000_000_000L;
                while (ProcessHandle.of(pids.get(0)).map(ProcessHandle::isAlive).orElse(false) && System.nanoTime() < end) sleep(50);
                assertTrue(ProcessHandle.of(pids.get(0)).map(h -> !h.isAlive()).orElse(true), "the stopped daemon was killed");
            }
            assertTrue(Mounts.mountedUnder(dir).isEmpty(), "still mounted: " + Mounts.mountedUnder(dir));
        } finally {
            NativeSupport.deleteTree(dir);
        }
    }

    /** The state letters of a process's threads (e.g. "SSST"), "" if it is gone. */
    static String threadStates(long pid) {
        StringBuilder b = new StringBuilder();
        java.io.File[] tasks = new java.io.File("/proc/" + pid + "/task").listFiles();
        if (tasks == null) return "";
        for (java.io.File t : tasks) {
            try {
                String st = java.nio.file.Files.readString(t.toPath().resolve("stat"));
                b.append(st.charAt(st.lastIndexOf(')') + 2));
            } catch (java.io.IOException | RuntimeException e) {
                // the thread ended meanwhile
            }
        }
        return b.toString();
    }

    /** The line of /proc/self/mountinfo whose mount point is p, or "not mounted". */
    static String mountLine(Path p) {
        try {
            String want = " " + p + " ";
            return java.nio.file.Files.readAllLines(Path.of("/proc/self/mountinfo")).stream()
                    .filter(l -> l.contains(want)).reduce((a, b) -> b).orElse("not mounted");
        } catch (java.io.IOException e) {
            return e.toString();
        }
    }

    @Test void upperMeaningIgnoresSpellingButNotSense() {
        Path dir = NativeSupport.newTempDir("meaning");
        try {
            LayerSet s = LayerBuilder.standard(dir.resolve("s"));
            Tree a = new Tree(dir.resolve("ua")), b = new Tree(dir.resolve("ub"));
            a.root().toFile().mkdirs();
            b.root().toFile().mkdirs();
            // the same meaning, spelled the kernel's way in a and the OCI way (plus bookkeeping xattrs) in b
            a.dir("", 0755).whiteout("shadow.txt").dir("etc", 0755).opaque("etc").file("etc/new", "n\n").dir("fresh", 0755).opaque("fresh");
            b.dir("", 0755).file(".wh.shadow.txt", "").dir("etc", 0755).file("etc/.wh..wh..opq", "").file("etc/new", "n\n")
                    .xattr("etc/new", "user.strata.origin", "x").dir("fresh", 0755);
            a.fixTimes();
            b.fixTimes();
            List<String> same = Snapshot.diff(Snapshot.upperMeaning("a", a.root(), s.lowers), Snapshot.upperMeaning("b", b.root(), s.lowers),
                    Snapshot.Options.all(), 20);
            assertEquals(List.of(), same, "fresh/ has no lower dir: its opaque marker means nothing");
            // a real difference: b no longer makes etc opaque
            Tree.check(Posix.unlinkat(Posix.AT_FDCWD, b.abs("etc/.wh..wh..opq"), 0), "unlink");
            b.fixTimes();
            List<String> d = Snapshot.diff(Snapshot.upperMeaning("a", a.root(), s.lowers), Snapshot.upperMeaning("b", b.root(), s.lowers),
                    Snapshot.Options.all(), 20);
            assertEquals(List.of("etc: xattr opaque a=y b=<none>"), d);
            // gone/ is whited out in a middle lower: an opaque marker on an upper gone/ means nothing either
            assertFalse(Snapshot.lowerHasDir(s.lowers, "gone"));
            assertTrue(Snapshot.lowerHasDir(s.lowers, "opq"));
            assertFalse(Snapshot.lowerHasDir(s.lowers, "tdir"), "a file in l1 hides the dir in l2");
            assertTrue(Snapshot.lowerHasDir(s.lowers, "tfile"));
        } finally {
            NativeSupport.deleteTree(dir);
        }
    }

    private static void sleep(long ms) {
        try { Thread.sleep(ms); } catch (InterruptedException e) { Thread.currentThread().interrupt(); }
    }

    static String sha(String s) {
        try {
            StringBuilder b = new StringBuilder();
            for (byte x : java.security.MessageDigest.getInstance("SHA-256").digest(s.getBytes(java.nio.charset.StandardCharsets.ISO_8859_1))) {
                b.append(String.format("%02x", x & 0xff));
            }
            return b.toString();
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }
}
