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

    /**
     * Reads and writes through O_DIRECT descriptors that strata serves itself (no passthrough: rootless
     * mounts, files with several names, the libfuse transport): strata's descriptors are not O_DIRECT,
     * so every range was read and written where ext4 under the kernel overlay (whose real file carries
     * the overlay file's O_DIRECT) refuses offsets and lengths not aligned to its blocks with EINVAL. A
     * lower file read in place and opened for writing (copied up), a new file, a sparse one, O_APPEND,
     * O_DIRECT set and cleared by fcntl on an open file, reads across the end of the file; then the data.
     * (The caller's memory is page-aligned here: its alignment is what no FUSE file system can see.)
     */
    @Test void directIoAsTheKernel() {
        Both b = mount("direct-io", "passthrough=0");
        b.shOk("head -c 20000 data/big.bin > new.bin && truncate -s 1M sparse.bin && printf abc | dd of=sparse.bin bs=1 seek=300000 conv=notrunc 2>/dev/null\n"
                + "python3 - <<'EOF'\n"
                + "import os, mmap, fcntl\n"
                + "buf = mmap.mmap(-1, 1 << 20); buf[:] = bytes(range(256)) * 4096\n"
                + "def io(f, *a):\n"
                + "    try: return f(*a)\n"
                + "    except OSError as e: return e.strerror\n"
                + "def reads(fd):\n"
                + "    return [io(os.preadv, fd, [memoryview(buf)[:n]], o) for n, o in ((4096, 0), (4096, 1), (100, 0), (512, 512), (8192, 16384), (4096, 19968), (4096, 200000), (4096, 1 << 30))]\n"
                + "def writes(fd):\n"
                + "    return [io(os.pwritev, fd, [memoryview(buf)[:n]], o) for n, o in ((4096, 0), (4096, 1), (100, 0), (512, 4608), (8192, 24576))]\n"
                + "for name in ('data/big.bin', 'shadow.txt', 'data/sparse.img', 'new.bin', 'sparse.bin'):\n"
                + "    fd = os.open(name, os.O_RDONLY | os.O_DIRECT); print(name, 'ro', reads(fd)); os.close(fd)\n"
                + "for name in ('data/big.bin', 'new.bin', 'sparse.bin'):\n"
                + "    fd = os.open(name, os.O_RDWR | os.O_DIRECT); print(name, 'rw', writes(fd), reads(fd)); os.close(fd)\n"
                + "fd = os.open('new.bin', os.O_WRONLY | os.O_APPEND | os.O_DIRECT); print('append', writes(fd)); os.close(fd)\n"
                + "fd = os.open('sparse.bin', os.O_RDWR); print('buffered', writes(fd), reads(fd))\n"
                + "fcntl.fcntl(fd, fcntl.F_SETFL, os.O_DIRECT); print('setfl', writes(fd), reads(fd))\n"
                + "fcntl.fcntl(fd, fcntl.F_SETFL, 0); print('cleared', writes(fd), reads(fd)); os.close(fd)\n"
                + "EOF\n"
                + "md5sum data/big.bin new.bin sparse.bin && stat -c '%n %s' data/big.bin new.bin sparse.bin");
        b.finish();
    }

    /**
     * listxattr's size query (size 0) on the kernel overlay answers the real file's list length, the
     * overlay's own xattrs (trusted.overlay.origin of a copy-up, an opaque directory's) included, and a
     * buffer that holds what is shown but not the real list is ERANGE (ovl_listxattr filters after
     * vfs_listxattr); fsstress's attr_list compared sizes with it. Files with and without hidden
     * xattrs, lower and copied up, a directory made opaque.
     */
    @Test void listxattrSizesAsTheKernel() {
        Both b = mount("listxattr-size", "");
        b.shOk("setfattr -n user.a -v 1 xattr.txt && chmod 600 shadow.txt && mkdir -p opq/sub && touch opq/sub/f && setfattr -n user.b -v 2 opq/sub/f\n"
                + "python3 - <<'EOF'\n"
                + "import ctypes, os\n"
                + "libc = ctypes.CDLL(None, use_errno=True)\n"
                + "for p in ('xattr.txt', 'shadow.txt', 'data/big.bin', 'opq', 'opq/sub/f', 'merged'):\n"
                + "    n = libc.llistxattr(p.encode(), None, 0)\n"
                + "    shown = os.listxattr(p, follow_symlinks=False)\n"
                + "    need = sum(len(x) + 1 for x in shown)\n"
                + "    buf = ctypes.create_string_buffer(max(need, 1))\n"
                + "    r = libc.llistxattr(p.encode(), buf, need)\n"
                + "    print(p, 'query', n, 'shown', sorted(shown), 'into their size', r if r >= 0 else os.strerror(ctypes.get_errno()))\n"
                + "EOF");
        b.finish();
    }

    static int descriptors(long pid) throws java.io.IOException {
        try (var s = Files.list(Path.of("/proc/" + pid + "/fd"))) {
            return (int) s.count();
        }
    }
}
