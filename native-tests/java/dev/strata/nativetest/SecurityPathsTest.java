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
            for (Mounter impl : impls) {
                Path root = dir.resolve(impl.name().replaceAll("[^a-z]", ""));
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
}
