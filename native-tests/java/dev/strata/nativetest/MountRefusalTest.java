package dev.strata.nativetest;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Layer stacks the kernel overlay refuses to mount, against the kernel (the oracle): strata must refuse
 * each too, with one line and a non-zero exit, and mount nothing. One directory as two lower layers
 * ("conflicting lowerdir path"), a lower or data-only layer inside another ("overlapping lowerdir
 * path"), a lower layer inside the upper, the upper as the workdir, the workdir inside the upper.
 */
@Tag("native")
class MountRefusalTest {
    @Test void whatTheKernelRefusesStrataRefuses() throws Exception {
        NativeSupport.assumeNativeEnvironment();
        Assumptions.assumeTrue(Mounter.underTest() instanceof Mounter.Strata, "strata's launcher; the target is " + Mounter.underTest());
        Path dir = NativeSupport.newTempDir("refusal");
        Path mnt = Files.createDirectory(dir.resolve("mnt"));
        String launcher = NativeSupport.projectHome().resolve("bin/strata").toString();
        try {
            Path l = Files.createDirectories(dir.resolve("l/sub")).getParent(), l2 = Files.createDirectory(dir.resolve("l2"));
            Path u = Files.createDirectory(dir.resolve("u")), w = Files.createDirectory(dir.resolve("w"));
            Files.createDirectories(u.resolve("in"));
            Map<String, String> cases = new LinkedHashMap<>();
            cases.put("one directory as two lower layers", "lowerdir=" + l + ":" + l2 + ":" + l + ",upperdir=" + u + ",workdir=" + w);
            cases.put("a lower layer inside another", "lowerdir=" + l + ":" + l.resolve("sub") + ",upperdir=" + u + ",workdir=" + w);
            cases.put("a data-only layer inside a lower one", "lowerdir=" + l + "::" + l.resolve("sub"));
            cases.put("a lower layer inside the upper", "lowerdir=" + u.resolve("in") + ",upperdir=" + u + ",workdir=" + w);
            cases.put("the upper as the workdir", "lowerdir=" + l + ",upperdir=" + u + ",workdir=" + u);
            cases.put("the workdir inside the upper", "lowerdir=" + l + ",upperdir=" + u + ",workdir=" + u.resolve("in"));
            List<String> wrong = new ArrayList<>();
            int refused = 0;
            for (Map.Entry<String, String> c : cases.entrySet()) {
                NativeSupport.Proc.Result k = NativeSupport.Proc.run(Path.of("/"), 60, "mount", "-t", "overlay", "overlay", "-o", c.getValue(), mnt.toString());
                if (unmount(mnt) || k.exit == 0) continue; // this kernel mounts it: nothing to hold strata to
                refused++;
                NativeSupport.Proc.Result s = NativeSupport.Proc.run(Path.of("/"), 120, Map.of("STRATA_DAEMON", "0"),
                        List.of(launcher, "mount", "-o", c.getValue(), mnt.toString()));
                boolean strataMounted = unmount(mnt);
                String err = s.stderr.strip();
                if (strataMounted || s.exit == 0) wrong.add(c.getKey() + ": strata mounted it (exit " + s.exit + ")");
                else if (err.isEmpty() || err.contains("\n") || err.contains("Exception")) wrong.add(c.getKey() + ": not one line: " + err);
            }
            assertEquals(List.of(), wrong, "stacks the kernel overlay refuses");
            Assumptions.assumeTrue(refused > 0, "this kernel refused none of " + cases.keySet());
        } finally {
            unmount(mnt);
            NativeSupport.deleteTree(dir);
        }
    }

    /** Unmounts whatever is at mnt (Mounts#unmountAllUnder); whether something was. */
    private static boolean unmount(Path mnt) {
        boolean was = Mounts.isMounted(mnt);
        Mounts.unmountAllUnder(mnt, "umount");
        return was;
    }
}
