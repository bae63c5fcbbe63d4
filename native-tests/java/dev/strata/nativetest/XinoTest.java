package dev.strata.nativetest;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * xino (overlayfs.rst "Inode properties") with layers on two file systems, against the kernel overlay:
 * a lower layer on a tmpfs of its own, an upper and a second lower on the test directory's file system.
 * With xino=on and xino=auto the kernel puts the file system's index in the high bits of st_ino (and
 * readdir's d_ino); strata must show the same numbers for lower files and directories, upper files,
 * a merged directory, a copied-up file and a file of the lower on the upper's file system, with and
 * without an upper layer.
 */
@Tag("native")
class XinoTest {
    /**
     * Each number as its high byte and the layer file whose inode number its low bits are (the layers are
     * the environment's U, L0, L1): the two sides' layers are different directories, so raw numbers of
     * files on the test file system differ. The merged directory m is left out: its upper part is not a
     * copy-up, and the kernel shows its top lower directory's number there where strata shows the
     * upper's, with or without xino (README, st_ino).
     */
    static final String SCRIPT = String.join("\n",
            "python3 - <<'EOF'",
            "import os",
            "def show(p, ino):",
            "    lo = ino & ((1 << 56) - 1)",
            "    src = [l for l in ('U', 'L0', 'L1') if os.environ.get(l) and os.path.lexists(os.path.join(os.environ[l], p))",
            "           and os.lstat(os.path.join(os.environ[l], p)).st_ino == lo]",
            "    return '%s: high=%x low=%s' % (p, ino >> 56, src[0] if src else lo)",
            "for p in ['.', 'f', 'd', 'd/x', 'm/u', 'm/lx', 'm/l1', 'g', 'h']:",
            "    try: print('stat', show(p, os.lstat(p).st_ino))",
            "    except OSError as e: print('stat', p, e.strerror)",
            "for d in ['.', 'd', 'm']:",
            "    print('readdir', d, sorted(show(os.path.normpath(os.path.join(d, e.name)), e.inode()) for e in os.scandir(d) if e.name != 'm'))",
            "EOF",
            "");

    @Test void inodeNumbersAcrossFileSystems() {
        NativeSupport.assumeNativeEnvironment();
        Path dir = NativeSupport.newTempDir("xino");
        List<Path> tmpfs = new ArrayList<>();
        try {
            for (String xino : new String[]{"xino=on", "xino=auto"}) {
                for (boolean upper : new boolean[]{true, false}) {
                    List<String> out = new ArrayList<>();
                    for (String side : new String[]{"kernel", "target"}) {
                        LayerSet ls = layers(dir.resolve(xino.substring(5) + (upper ? "-u-" : "-ro-") + side), tmpfs);
                        if (!upper) ls = ls.readOnly("ro");
                        Mounter m = side.equals("kernel") ? Mounter.kernel(xino) : Mounter.underTest();
                        try (Mount mnt = m.mount(ls.withOptions(side.equals("kernel") ? null : xino))) {
                            String env = "export L0='" + ls.lowers.get(0) + "' L1='" + ls.lowers.get(1) + "'" + (upper ? " U='" + ls.upper + "'" : "") + "\n";
                            String script = env + SCRIPT + (upper ? "chmod 600 f m/lx && echo after && " + SCRIPT : "");
                            NativeSupport.Proc.Result r = Both.run(mnt, script);
                            assertEquals(0, r.exit, side + " " + xino + ": " + r);
                            out.add(r.stdout);
                        }
                    }
                    assertEquals(out.get(0), out.get(1), xino + (upper ? "" : " without an upper") + ": kernel vs target");
                    assertTrue(out.get(0).contains("stat f: high=" + (upper ? "80" : "40") + " low=L0"),
                            "the kernel put the file system's index in the high bits: " + out.get(0));
                }
            }
        } finally {
            for (Path t : tmpfs) NativeSupport.Proc.run(Path.of("/"), 30, "umount", t.toString());
            NativeSupport.deleteTree(dir);
        }
    }

    /** l0 on a tmpfs of its own (f, d/x, m/lx), l1 on the test file system (h, m/l1), upper (g, m/u). */
    private static LayerSet layers(Path root, List<Path> tmpfs) {
        LayerSet s = LayerSet.create(root, 2);
        Path l0 = s.lowers.get(0), l1 = s.lowers.get(1);
        NativeSupport.Proc.Result r = NativeSupport.Proc.run(Path.of("/"), 30, "mount", "-t", "tmpfs", "tmpfs", l0.toString());
        if (r.exit != 0) fail("mount tmpfs: " + r);
        tmpfs.add(l0);
        try {
            Files.writeString(l0.resolve("f"), "f\n");
            Files.createDirectories(l0.resolve("d"));
            Files.writeString(l0.resolve("d/x"), "x\n");
            Files.createDirectories(l0.resolve("m"));
            Files.writeString(l0.resolve("m/lx"), "lx\n");
            Files.writeString(l1.resolve("h"), "h\n");
            Files.createDirectories(l1.resolve("m"));
            Files.writeString(l1.resolve("m/l1"), "l1\n");
            Files.writeString(s.upper.resolve("g"), "g\n");
            Files.createDirectories(s.upper.resolve("m"));
            Files.writeString(s.upper.resolve("m/u"), "u\n");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return s;
    }
}
