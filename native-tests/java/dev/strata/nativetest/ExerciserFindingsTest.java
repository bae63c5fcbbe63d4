package dev.strata.nativetest;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What the file system exercisers (xfstests' fsx and fsstress, run by scripts/fsx.sh) found in strata,
 * reproduced with ordinary tools against the kernel overlay.
 */
@Tag("native")
class ExerciserFindingsTest {
    private Pair pair;

    @AfterEach void tearDown() {
        if (pair != null) pair.close();
    }

    private Both mount(String name, String options) {
        NativeSupport.assumeNativeEnvironment();
        String old = System.getProperty("strata.mountOptions", "");
        System.setProperty("strata.mountOptions", (old.isEmpty() ? "" : old + ",") + options);
        try {
            pair = new Pair("exerciser-" + name, Mounter.kernel(), Mounter.underTest(), LayerBuilder::standard);
            return new Both(name, pair); // its comparison options follow the transport (no holes on libfuse's)
        } finally {
            System.setProperty("strata.mountOptions", old);
        }
    }

    /**
     * fsstress on the libfuse transport failed with EMFILE after about 2,000 operations: every create,
     * mkdir, symlink... left two or three descriptors of its parent directory open in the daemon (the
     * engine's per-thread cache of layer directories, while jffi gives each libfuse callback a new Java
     * thread). With attr_timeout=0, which this transport's hard links need (README, Transports):
     * 1,200 new names in 20 directories, listed and stat'ed: the same as on the kernel overlay,
     * and the daemon holds about as many descriptors afterwards as before.
     */
    @Test void libfuseTransportKeepsNoDescriptorPerRequest() throws Exception {
        Both b = mount("libfuse-fds", "transport=libfuse,attr_timeout=0");
        List<Long> pids = Mounts.daemonPids(pair.tgt.path());
        boolean strata = pair.tgtMounter.name().equals("strata");
        if (strata) assertEquals(1, pids.size(), "one process serves the libfuse mount: " + pids);
        int before = strata ? descriptors(pids.get(0)) : 0;
        b.shOk("for d in $(seq 1 20); do mkdir -p new/d$d; for i in $(seq 1 30); do : > new/d$d/f$i; mkdir new/d$d/s$i; done; done\n"
                + "ln -s f1 new/d1/l1 && ln new/d1/f1 new/d1/h1 && mv new/d2/f1 new/d2/g1\n"
                + "find new | LC_ALL=C sort | md5sum && find new -type f | wc -l && find new -type d | wc -l");
        if (strata) {
            int after = descriptors(pids.get(0));
            assertTrue(after - before < 64, "the libfuse daemon held " + before + " descriptors before 1,200 creates and "
                    + after + " after them");
        }
        b.finish();
    }

    static int descriptors(long pid) throws java.io.IOException {
        try (var s = Files.list(Path.of("/proc/" + pid + "/fd"))) {
            return (int) s.count();
        }
    }
}
