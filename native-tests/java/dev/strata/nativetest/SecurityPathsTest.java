package dev.strata.nativetest;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Issue 12, part B: what the daemon must never do whatever the layers or the callers put in its way.
 * Each scenario is a small Python program run on a kernel overlay and on the implementation under test,
 * over identical layers; their outputs must be equal (where the kernel has an answer), and the
 * implementation must not hang.
 */
@Tag("native")
class SecurityPathsTest {
    @BeforeEach void env() {
        NativeSupport.assumeNativeEnvironment();
        Assumptions.assumeTrue(NativeSupport.onPath("python3"), "python3 is not installed");
    }

    /** Builds the layers of one scenario under root (called once per implementation). */
    interface Setup {
        void build(LayerSet layers, Path root) throws Exception;
    }

    /** The output of script (argv: mount point, scenario root, extra) on each implementation, kernel first. */
    private static List<String> onBoth(String name, int lowers, Setup setup, String script, long timeoutSeconds,
                                       String... extra) throws Exception {
        List<String> out = new ArrayList<>();
        Mounter[] impls = {Mounter.kernel(), Mounter.underTest()};
        Path dir = NativeSupport.newTempDir(name);
        try {
            Path py = dir.resolve("scenario.py");
            Files.writeString(py, script);
            for (int i = 0; i < impls.length; i++) {
                Mounter impl = impls[i];
                Path root = dir.resolve(i == 0 ? "oracle" : "target");
                LayerSet layers = LayerSet.create(root, lowers);
                setup.build(layers, root);
                try (Mount m = impl.mount(layers)) {
                    List<String> cmd = new ArrayList<>(List.of("python3", py.toString(), m.path().toString(), root.toString()));
                    cmd.addAll(List.of(extra));
                    NativeSupport.Proc.Result r = NativeSupport.Proc.run(root, timeoutSeconds, null, cmd);
                    assertEquals(0, r.exit, impl + ": " + r + (m.log != null ? "\n" + m.logTail(20) : ""));
                    out.add(r.stdout.replace(root.toString(), "ROOT"));
                }
            }
            return out;
        } finally {
            NativeSupport.deleteTree(dir);
        }
    }

    private static void py(Path cwd, String code, String... args) {
        List<String> cmd = new ArrayList<>(List.of("python3", "-c", code));
        cmd.addAll(List.of(args));
        NativeSupport.Proc.Result r = NativeSupport.Proc.run(cwd, 60, null, cmd);
        assertEquals(0, r.exit, "setup: " + r);
    }

    // ---------------------------------------------------------------- symlinks inside the daemon

    /**
     * A file is opened in a directory that is then renamed; a symlink to a directory outside the layers
     * takes the old name. lseek(SEEK_END) and fstat on the descriptor must report the open file, never
     * the file the symlink reaches (which the daemon would otherwise stat: its size, mode and owner).
     */
    @Test void openFileInRenamedDirectoryIsNotReachedThroughASymlinkAtTheOldName() throws Exception {
        String script = String.join("\n",
                "import os, sys",
                "m, root = sys.argv[1], sys.argv[2]",
                "outside = root + '/outside'",
                "os.chdir(m)",
                "os.mkdir('d')",
                "fd = os.open('d/x', os.O_RDWR | os.O_CREAT, 0o640)",
                "os.pwrite(fd, b'abc', 0)",
                "os.rename('d', 'e')",
                "os.symlink(outside, 'd')",
                "os.pwrite(fd, b'hello', 0)",
                "end = os.lseek(fd, 0, os.SEEK_END)",
                "st = os.fstat(fd)",
                "print('end', end, 'size', st.st_size, 'mode', oct(st.st_mode), 'uid', st.st_uid, 'nlink', st.st_nlink)",
                "os.pwrite(fd, b'!', end)",
                "print('end2', os.lseek(fd, 0, os.SEEK_END), 'fstat2', os.fstat(fd).st_size)",
                "os.close(fd)",
                "print('e/x', open('e/x', 'rb').read())",
                "print('d ->', os.readlink('d'), 'outside/x', os.stat(outside + '/x').st_size)",
                "");
        List<String> out = onBoth("symlink", 1, (layers, root) -> {
            Files.createDirectories(root.resolve("outside"));
            Files.write(root.resolve("outside/x"), new byte[12345]);
            Files.setPosixFilePermissions(root.resolve("outside/x"), java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
        }, script, 60);
        assertTrue(out.get(0).contains("end 5 size 5"), "the kernel: " + out.get(0));
        assertEquals(out.get(0), out.get(1));
    }

    // ---------------------------------------------------------------- readdir

    /**
     * A directory marked overlay.opaque=x holds empty files with a 3000-byte overlay.whiteout value
     * (zeros) among ordinary ones: listing it must end, and show what the kernel shows.
     */
    @Test void longWhiteoutXattrValuesDoNotHangReaddir() throws Exception {
        String script = String.join("\n",
                "import os, sys",
                "print(sorted(os.listdir(sys.argv[1] + '/o')))",
                "");
        List<String> out = onBoth("readdir", 2, (layers, root) -> {
            Path top = layers.lowers.get(0).resolve("o"), bottom = layers.lowers.get(1).resolve("o");
            Files.createDirectories(top);
            Files.createDirectories(bottom);
            for (int i = 0; i < 60; i++) {
                Files.writeString(bottom.resolve("w" + i), "below");
                Files.write(top.resolve("w" + i), new byte[0]);
                Files.writeString(top.resolve("keep" + i), "kept");
            }
            py(root, String.join("\n",
                    "import os, sys",
                    "top = sys.argv[1]",
                    "os.setxattr(top, 'trusted.overlay.opaque', b'x')",
                    "for i in range(60): os.setxattr(top + '/w%d' % i, 'trusted.overlay.whiteout', bytes(3000))"),
                    top.toString());
        }, script, 30);
        assertFalse(out.get(0).contains("'w"), "the kernel hides the whiteouts: " + out.get(0));
        assertEquals(out.get(0), out.get(1));
    }

    // ---------------------------------------------------------------- copy-up and locking

    static final long BIG = 512L << 20;

    /**
     * While one thread's open(O_WRONLY) copies a 512 MiB lower file up, a stat of an unrelated file, a
     * listing and a read elsewhere in the mount finish before that open returns; and two descriptors
     * opened for writing on the same file at the same time reach one copy (both writes are in it).
     * Relative order only, no absolute time limit. (-Dstrata.target=kernel checks the test itself.)
     */
    @Test void aLargeCopyUpDoesNotStallTheMount() throws Exception {
        Mounter t = Mounter.underTest();
        Path dir = NativeSupport.newTempDir("copyup-lock");
        try {
            LayerSet layers = LayerSet.create(dir.resolve("x"), 1);
            Path low = layers.lowers.get(0);
            byte[] piece = new byte[1 << 20];
            for (int i = 0; i < piece.length; i++) piece[i] = (byte) (i * 131 + 17);
            try (java.io.RandomAccessFile r = new java.io.RandomAccessFile(low.resolve("big.bin").toFile(), "rw")) {
                for (long o = 0; o < BIG; o += piece.length) r.write(piece);
            }
            Files.createDirectories(low.resolve("elsewhere/sub"));
            for (int i = 0; i < 20; i++) Files.writeString(low.resolve("elsewhere/f" + i), "small " + i);
            try (Mount m = t.mount(layers)) {
                long[] openReturned = new long[2];
                Throwable[] failed = new Throwable[2];
                Thread[] writers = new Thread[2];
                for (int k = 0; k < 2; k++) {
                    int kk = k;
                    writers[k] = new Thread(() -> {
                        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(m.abs("big.bin"), "rw")) {
                            openReturned[kk] = System.nanoTime();
                            f.seek(kk);
                            f.write('A' + kk);
                        } catch (Throwable e) {
                            failed[kk] = e;
                        }
                    }, "copy-up-" + k);
                }
                writers[0].start();
                waitForCopyUp(m, layers, writers[0]);
                writers[1].start(); // the same file again, while the first copy runs
                Thread.sleep(50);
                long t0 = System.nanoTime();
                java.nio.file.attribute.BasicFileAttributes a = Files.readAttributes(Path.of(m.abs("elsewhere/f7")),
                        java.nio.file.attribute.BasicFileAttributes.class, java.nio.file.LinkOption.NOFOLLOW_LINKS);
                long statDone = System.nanoTime();
                List<String> names;
                try (var ls = Files.list(Path.of(m.abs("elsewhere")))) {
                    names = ls.map(p -> p.getFileName().toString()).sorted().toList();
                }
                String read = Files.readString(Path.of(m.abs("elsewhere/f3")));
                long allDone = System.nanoTime();
                for (Thread w : writers) w.join(300_000);
                for (Throwable e : failed) if (e != null) throw new AssertionError("a writer failed", e);
                assertEquals(7, a.size());
                assertEquals(21, names.size());
                assertEquals("small 3", read);
                assertTrue(openReturned[0] > allDone,
                        "stat, ls and read waited for the copy-up: they finished " + (allDone - openReturned[0]) / 1_000_000
                                + " ms after the copying open returned (stat took " + (statDone - t0) / 1_000_000 + " ms)");
            }
            Path up = layers.upper.resolve("big.bin");
            assertEquals(BIG, Files.size(up));
            try (java.io.RandomAccessFile r = new java.io.RandomAccessFile(up.toFile(), "r")) {
                assertEquals('A', r.read(), "the first writer's byte is in the one copy");
                assertEquals('B', r.read(), "the second writer's byte is in the one copy");
                byte[] b = new byte[piece.length];
                r.seek(BIG - piece.length);
                r.readFully(b);
                assertTrue(java.util.Arrays.equals(piece, b), "the data was copied");
            }
            try (var s = Files.list(layers.work.resolve("work"))) {
                assertEquals(List.of(), s.toList(), "nothing is left in the workdir");
            }
        } finally {
            NativeSupport.deleteTree(dir);
        }
    }

    /** Returns once the copy-up of the writer has begun (strata: the daemon holds a file in the workdir). */
    private static void waitForCopyUp(Mount m, LayerSet layers, Thread writer) throws Exception {
        List<Long> pids = Mounts.daemonPids(m.path());
        if (pids.size() != 1) { Thread.sleep(200); return; }
        Path work = layers.work.resolve("work");
        long deadline = System.nanoTime() + 60_000_000_000L;
        while (writer.isAlive() && System.nanoTime() < deadline) {
            if (Mounts.holdsFileIn(pids.get(0), work)) return;
            Thread.sleep(1);
        }
        Assumptions.assumeTrue(writer.isAlive(), "the copy-up finished before it could be watched");
    }

    // ---------------------------------------------------------------- rename and its whiteout

    /**
     * Renaming a lower file leaves the whiteout at the old name in the same step, with
     * renameat2(RENAME_WHITEOUT) as the kernel overlay does (seen with strace on the daemon), so no
     * crash can leave both names visible; the upper then holds what the kernel's would.
     */
    @Test void renamingALowerFileLeavesItsWhiteoutInOneStep() throws Exception {
        Mounter t = Mounter.underTest();
        Assumptions.assumeTrue(t instanceof Mounter.Strata, "watches the strata daemon; the target is " + t);
        Assumptions.assumeTrue(NativeSupport.onPath("strace"), "strace is not installed");
        Path dir = NativeSupport.newTempDir("rename-wh");
        try {
            LayerSet layers = LayerSet.create(dir.resolve("x"), 1);
            Files.writeString(layers.lowers.get(0).resolve("a.txt"), "lower a");
            Files.createDirectories(layers.lowers.get(0).resolve("sub"));
            Files.writeString(layers.lowers.get(0).resolve("sub/c.txt"), "lower c");
            Path trace = dir.resolve("trace.txt");
            try (Mount m = t.mount(layers)) {
                List<Long> pids = Mounts.daemonPids(m.path());
                assertEquals(1, pids.size(), "one daemon: " + pids);
                Process strace = new ProcessBuilder("strace", "-f", "-qq", "-e", "trace=renameat2", "-o", trace.toString(),
                        "-p", Long.toString(pids.get(0))).redirectErrorStream(true)
                        .redirectOutput(dir.resolve("strace.log").toFile()).start();
                try {
                    long deadline = System.nanoTime() + 20_000_000_000L;
                    while (!traced(pids.get(0)) && System.nanoTime() < deadline) Thread.sleep(20);
                    assertTrue(traced(pids.get(0)), "strace attached");
                    Files.move(Path.of(m.abs("a.txt")), Path.of(m.abs("b.txt")));
                    Files.move(Path.of(m.abs("sub/c.txt")), Path.of(m.abs("d.txt")));
                    assertEquals("lower a", Files.readString(Path.of(m.abs("b.txt"))));
                    assertFalse(Files.exists(Path.of(m.abs("a.txt"))));
                    assertFalse(Files.exists(Path.of(m.abs("sub/c.txt"))));
                } finally {
                    strace.destroy();
                    strace.waitFor();
                }
            }
            String calls = Files.readString(trace);
            assertEquals(2, calls.lines().filter(l -> l.contains("RENAME_WHITEOUT")).count(),
                    "two renames with RENAME_WHITEOUT:\n" + calls);
            for (String wh : new String[]{"a.txt", "sub/c.txt"}) {
                NativeSupport.Proc.Result r = NativeSupport.Proc.run(dir, 10, "stat", "-c", "%F %t:%T", layers.upper.resolve(wh).toString());
                assertEquals("character special file 0:0", r.stdout.strip(), wh + " in the upper");
            }
        } finally {
            NativeSupport.deleteTree(dir);
        }
    }

    private static boolean traced(long pid) throws java.io.IOException {
        for (String l : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
            if (l.startsWith("TracerPid:")) return !l.substring(10).strip().equals("0");
        }
        return false;
    }

    // ---------------------------------------------------------------- xattrs a copy-up must keep

    /**
     * A lower file with a named-user deny ACL, and an upper on a file system that takes no ACLs: the
     * copy-up must fail (EOPNOTSUPP) as the kernel's does (ovl_must_copy_xattr), not drop the ACL, and
     * leave nothing in the upper or the workdir; a file without an ACL still copies up. No local file
     * system here refuses ACLs (ext4 on this kernel has no noacl, tmpfs takes them, ramfs has no xattrs
     * at all, which the kernel accepts), so the upper is a strata mount with {@code -o noacl}; the kernel
     * overlay cannot be compared as it refuses FUSE as an upper.
     */
    @Test void aCopyUpThatCannotKeepAnAclFails() throws Exception {
        Mounter t = Mounter.underTest();
        Assumptions.assumeTrue(t instanceof Mounter.Strata, "the upper is a strata mount; the target is " + t);
        Assumptions.assumeTrue(NativeSupport.onPath("setfacl"), "needs setfacl");
        String script = String.join("\n",
                "import os, sys, errno",
                "m = sys.argv[1]",
                "def attempt(name, f):",
                "    try:",
                "        f(); print(name, 'ok')",
                "    except OSError as e:",
                "        print(name, errno.errorcode[e.errno])",
                "attempt('append acl', lambda: os.close(os.open(m + '/acl.txt', os.O_WRONLY | os.O_APPEND)))",
                "attempt('chmod acl', lambda: os.chmod(m + '/acl.txt', 0o600))",
                "attempt('append plain', lambda: os.close(os.open(m + '/plain.txt', os.O_WRONLY | os.O_APPEND)))",
                "print(sorted(os.listdir(m)))",
                "");
        Path dir = NativeSupport.newTempDir("acl");
        String launcher = NativeSupport.projectHome().resolve("bin/strata").toString();
        Path inner = dir.resolve("inner");
        try {
            Path py = dir.resolve("scenario.py");
            Files.writeString(py, script);
            Path lower = dir.resolve("lower"), mnt = dir.resolve("mnt");
            for (String d : new String[]{"lower", "mnt", "inner", "i-lower", "i-upper", "i-work"}) Files.createDirectories(dir.resolve(d));
            Files.writeString(lower.resolve("acl.txt"), "with an acl");
            Files.writeString(lower.resolve("plain.txt"), "without");
            run(dir, "setfacl", "-m", "u:1234:---", lower.resolve("acl.txt").toString());
            run(dir, launcher, "mount", "-o", "lowerdir=" + dir.resolve("i-lower") + ",upperdir=" + dir.resolve("i-upper")
                    + ",workdir=" + dir.resolve("i-work") + ",noacl", inner.toString());
            String stdout;
            try {
                Files.createDirectories(inner.resolve("upper"));
                Files.createDirectories(inner.resolve("work"));
                LayerSet layers = new LayerSet(dir, List.of(lower), inner.resolve("upper"), inner.resolve("work"), mnt);
                try (Mount m = t.mount(layers)) {
                    NativeSupport.Proc.Result r = NativeSupport.Proc.run(dir, 60, null, List.of("python3", py.toString(), m.path().toString()));
                    assertEquals(0, r.exit, r + "\n" + m.logTail(20));
                    stdout = r.stdout;
                }
                try (var ls = Files.list(inner.resolve("upper"))) {
                    assertEquals(List.of("plain.txt"), ls.map(p -> p.getFileName().toString()).sorted().toList(),
                            "only the file without an ACL was copied up");
                }
                try (var ls = Files.list(inner.resolve("work/work"))) {
                    assertEquals(List.of(), ls.toList(), "nothing is left in the workdir");
                }
            } finally {
                NativeSupport.Proc.Result r = NativeSupport.Proc.run(dir, 60, launcher, "umount", inner.toString());
                if (r.exit != 0) NativeSupport.Proc.run(dir, 60, "umount", "-l", inner.toString());
            }
            // the errno is the upper's refusal (EOPNOTSUPP from a plain setxattr; a strata upper answers
            // ENOENT for an xattr on an unnamed O_TMPFILE file): any error, but not success
            List<String> lines = stdout.lines().toList();
            assertTrue(lines.get(0).matches("append acl E[A-Z]+"), stdout);
            assertTrue(lines.get(1).matches("chmod acl E[A-Z]+"), stdout);
            assertEquals(List.of("append plain ok", "['acl.txt', 'plain.txt']"), lines.subList(2, 4), stdout);
        } finally {
            NativeSupport.deleteTree(dir);
        }
    }

    private static void run(Path cwd, String... cmd) {
        NativeSupport.Proc.Result r = NativeSupport.Proc.run(cwd, 120, cmd);
        assertEquals(0, r.exit, String.join(" ", cmd) + ": " + r);
    }
}
