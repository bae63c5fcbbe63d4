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
 * The layers' own mounts, against the kernel overlay, which reads its layers through private clones of
 * their mounts: a mount made inside a lower directory after the union's stays out of it; the lower's
 * mount and the mount the upper and workdir are on can be unmounted while the union is mounted (they are
 * not busy), and the union goes on reading, copying up and creating. (strata before its layers were
 * detached copies: "target is busy", and the later mount showed through.)
 */
@Tag("native")
class LayerMountsTest {
    private static final String SCRIPT = String.join("\n",
            "mount -t tmpfs later \"$L/d\" && echo later > \"$L/d/later\"",
            "echo \"d after a mount in the lower's d: $(ls d | tr '\\n' ' ')\"",
            "umount \"$L/d\"",
            "umount \"$L\" 2>&1 && echo 'the lower mount: unmounted'",
            "umount \"$UP\" 2>&1 && echo 'the upper mount: unmounted'",
            "cat d/f && echo more >> d/f && cat d/f && echo new > d/new && ls d | tr '\\n' ' ' && echo",
            "");

    @Test void layerMountsAreNotHeldAndLaterMountsStayOut() {
        NativeSupport.assumeNativeEnvironment();
        Path dir = NativeSupport.newTempDir("layermounts");
        List<Path> tmpfs = new ArrayList<>();
        try {
            List<String> out = new ArrayList<>();
            for (String side : new String[]{"kernel", "target"}) {
                LayerSet ls = layers(dir.resolve(side), tmpfs);
                Mounter m = side.equals("kernel") ? Mounter.kernel() : Mounter.underTest();
                try (Mount mnt = m.mount(ls)) {
                    String env = "export L='" + ls.lowers.get(0) + "' UP='" + ls.upper.getParent() + "'\n";
                    NativeSupport.Proc.Result r = Both.run(mnt, env + SCRIPT);
                    assertEquals(0, r.exit, side + ": " + r);
                    out.add(r.stdout);
                }
            }
            assertTrue(out.get(0).contains("the lower mount: unmounted") && out.get(0).contains("the upper mount: unmounted"),
                    "the kernel overlay holds neither mount: " + out.get(0));
            assertEquals(out.get(0), out.get(1), "kernel vs target");
        } finally {
            for (Path t : tmpfs) NativeSupport.Proc.run(Path.of("/"), 30, "umount", t.toString());
            NativeSupport.deleteTree(dir);
        }
    }

    /** The lower (d/f) on a tmpfs of its own; the upper and the workdir on another, side by side. */
    private static LayerSet layers(Path root, List<Path> tmpfs) {
        Path lower = root.resolve("lower"), up = root.resolve("up"), mnt = root.resolve("mnt");
        try {
            for (Path p : List.of(lower, up, mnt)) Files.createDirectories(p);
            for (Path p : List.of(lower, up)) {
                NativeSupport.Proc.Result r = NativeSupport.Proc.run(Path.of("/"), 30, "mount", "-t", "tmpfs", "tmpfs", p.toString());
                if (r.exit != 0) fail("mount tmpfs: " + r);
                tmpfs.add(p);
            }
            Files.createDirectories(lower.resolve("d"));
            Files.writeString(lower.resolve("d/f"), "lower\n");
            Files.createDirectories(up.resolve("u"));
            Files.createDirectories(up.resolve("w"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return new LayerSet(root, List.of(lower), up.resolve("u"), up.resolve("w"), mnt);
    }
}
