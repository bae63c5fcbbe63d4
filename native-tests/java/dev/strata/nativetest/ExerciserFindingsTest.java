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

    /**
     * fsx -Z on a lower file reported bad data on every configuration of strata and none of the kernel
     * overlay: its probe copy_file_range(fd, 0, fd, 1, 1) on its O_DIRECT descriptor copied the byte
     * (strata's descriptors are not O_DIRECT), where ext4 under the kernel overlay refuses a range not
     * aligned to its blocks with EINVAL. copy_file_range between O_DIRECT and buffered descriptors of a
     * lower file (copied up by the write open), an upper one and a new one, aligned and not, within one
     * file and between two; then the data.
     */
    @Test void copyFileRangeOfDirectDescriptorsAsTheKernel() {
        Both b = mount("cfr-direct", "");
        b.shOk("head -c 20000 data/big.bin > new.bin && cp data/big.bin up.bin\n"
                + "python3 - <<'EOF'\n"
                + "import os\n"
                + "def cfr(a, b, n, o1, o2):\n"
                + "    try: return os.copy_file_range(a, b, n, o1, o2)\n"
                + "    except OSError as e: return e.strerror\n"
                + "for name in ('data/big.bin', 'up.bin', 'new.bin'):\n"
                + "    for fa, fb in ((os.O_DIRECT, os.O_DIRECT), (os.O_DIRECT, 0), (0, os.O_DIRECT), (0, 0)):\n"
                + "        a = os.open(name, os.O_RDWR | fa); b = os.open('new.bin', os.O_RDWR | fb)\n"
                + "        print(name, fa != 0, fb != 0, [cfr(x, y, n, o1, o2) for x, y in ((a, a), (a, b))\n"
                + "              for n, o1, o2 in ((1, 0, 1), (4096, 0, 8192), (10, 100, 5000), (4096, 512, 12288), (8192, 4096, 40960))])\n"
                + "        os.close(a); os.close(b)\n"
                + "EOF\n"
                + "md5sum data/big.bin up.bin new.bin");
        b.finish();
    }

    static int descriptors(long pid) throws java.io.IOException {
        try (var s = Files.list(Path.of("/proc/" + pid + "/fd"))) {
            return (int) s.count();
        }
    }
}
