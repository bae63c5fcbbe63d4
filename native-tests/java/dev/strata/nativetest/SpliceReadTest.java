package dev.strata.nativetest;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * READ replies by splice (the kernel transport without passthrough, SpliceReads): files of sizes around
 * pages and the pipe's capacity, read buffered (readahead, the end of the file inside the last READ) and
 * with O_DIRECT (READs of the caller's size, at and past the end, of 0 bytes), against the kernel
 * overlay (O_DIRECT reads go through the file opened with O_DIRECT, not by splice: FileOps#readDirect);
 * a file that shrank behind the mount (the reply carries what the file has now); reads of the caller's
 * offsets and lengths through a second name of each file (direct I/O: the kernel asks strata for
 * exactly what the caller reads, unaligned too), against the kernel overlay; the pread +
 * write fallback (a pipe too small to be used: the mount stops trying; a pipe smaller than some reads);
 * and the pipes: made by the workers that served large reads, closed when they end. strata's daemon
 * runs with the JVM options each test names (-Dstrata.javaOpts, so a daemon of their own).
 */
@Tag("native")
class SpliceReadTest {
    private Pair pair;
    private final List<Path> dirs = new ArrayList<>();
    private final List<Mount> mounts = new ArrayList<>();

    /** Sizes of the lower files: around a page, MIN (16 KiB), the pipe's 1 MiB less two pages, 1 MiB. */
    static final int[] SIZES = {1, 4095, 4096, 4097, 16383, 16384, 16385, 65539, (1 << 20) - 8192, (1 << 20) - 8191,
            (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 3 * (1 << 20) + 5};

    static LayerSet layers(Path root) {
        LayerSet s = LayerBuilder.standard(root);
        Tree t = new Tree(s.lowers.get(0));
        for (int i = 0; i < SIZES.length; i++) {
            t.file("splice/f" + SIZES[i], LayerBuilder.bytes(100 + i, SIZES[i]), 0644, 0, 0);
            // a second name: strata opens files with several names for direct I/O (FOPEN_DIRECT_IO)
            t.hardlink("splice/f" + SIZES[i], "splicel/f" + SIZES[i]);
        }
        new Tree(s.lowers.get(0)).fixTimes();
        return s;
    }

    private Both mount(String name, String options, String javaOpts) {
        NativeSupport.assumeNativeEnvironment();
        String old = System.getProperty("strata.mountOptions", ""), oldJava = System.getProperty("strata.javaOpts", "");
        System.setProperty("strata.mountOptions", (old.isEmpty() ? "" : old + ",") + options);
        System.setProperty("strata.javaOpts", javaOpts);
        try {
            pair = new Pair("splice-" + name, Mounter.kernel(), Mounter.underTest(), SpliceReadTest::layers);
        } finally {
            System.setProperty("strata.mountOptions", old);
            System.setProperty("strata.javaOpts", oldJava);
        }
        return new Both(name, pair);
    }

    @AfterEach void tearDown() {
        try {
            for (Mount m : mounts) m.close();
            if (pair != null) pair.close();
        } finally {
            for (Path d : dirs) NativeSupport.deleteTree(d);
        }
    }

    /**
     * Every file buffered (md5 of the whole) and by aligned O_DIRECT reads: of 0 bytes, of 1 MiB from 0,
     * past the end, across the end, at the end, beyond it, in the middle.
     */
    private static final String READ_ALL = "python3 - <<'EOF'\n"
            + "import os, mmap, hashlib\n"
            + "h = lambda b: hashlib.md5(b).hexdigest()[:12]\n"
            + "for n in sorted(os.listdir('splice'), key=lambda n: int(n[1:])):\n"
            + "    p = 'splice/' + n; size = os.stat(p).st_size\n"
            + "    with open(p, 'rb') as f: print(n, size, h(f.read()))\n"
            + "    fd = os.open(p, os.O_RDONLY | os.O_DIRECT); out = []\n"
            + "    end = size // 4096 * 4096\n"
            + "    for off, ln in ((0, 0), (0, 1 << 20), (0, (size + 8191) // 4096 * 4096), (4096, 65536), (end, 8192),\n"
            + "                    (max(end - 4096, 0), 16384), ((size + 4095) // 4096 * 4096, 4096), (end + 65536, 4096), (8192, 204800)):\n"
            + "        m = mmap.mmap(-1, max(ln, 4096))\n"
            + "        try: k = os.preadv(fd, [memoryview(m)[:ln]], off); out.append('%d+%d=%d:%s' % (off, ln, k, h(m[:k])))\n"
            + "        except OSError as e: out.append('%d+%d:%s' % (off, ln, e.strerror))\n"
            + "    os.close(fd); print(' ', ' '.join(out))\n"
            + "EOF";

    /** Every read by splice (-Dstrata.spliceMin=0), without passthrough. */
    @Test void everyReadSplicedAgreesWithTheKernel() {
        Both b = mount("everyReadSpliced", "passthrough=0", "-Dstrata.spliceMin=0");
        b.shOk(READ_ALL);
        b.shOk("cat data/big.bin | md5sum && cat data/sparse.img | md5sum && cat data/hl1 data/sub/hl3 | md5sum");
        b.finish();
    }

    /** The default threshold and the default options (lower files are read through strata even with passthrough). */
    @Test void defaultThresholdAgreesWithTheKernel() {
        Both b = mount("defaultThreshold", "", "");
        b.shOk(READ_ALL);
        b.finish();
    }

    /**
     * A file that shrank behind the mount after the kernel learned its size: the kernel asks for the
     * pages of the size it knows, strata's reply carries what the file holds now (the header's length is
     * counted before the splice), and the reader gets what the kernel overlay gives, which reads the upper
     * file. The file is made in the upper directory directly, so that the kernel has none of its pages.
     * Without the writeback cache (which a mount without passthrough takes by default): under it the
     * kernel keeps the size it knows for as long as it holds the inode and fills the rest with zeros (a
     * change of a layer behind the mount is undefined for an overlay, overlayfs.rst "Changes to
     * underlying filesystems"; README, "Transports").
     */
    @Test void fileShrunkBehindTheMount() {
        Both b = mount("fileShrunk", "passthrough=0,writeback=off", "-Dstrata.spliceMin=0");
        b.shOk("python3 - <<'EOF'\n"
                + "import os, hashlib\n"
                + "h = lambda b: hashlib.md5(b).hexdigest()[:12]\n"
                + "up = os.environ['MNT'] + '/../upper/'\n"
                + "for n, size, to in (('shrink', 300000, 100001), ('shrink2', 1 << 20, 4096), ('empty', 70000, 0)):\n"
                + "    with open(up + n, 'wb') as f: f.write(bytes(range(256)) * (size // 256) + b'x' * (size % 256))\n"
                + "    print(n, os.stat(n).st_size)\n"
                + "    os.truncate(up + n, to)\n"
                + "    with open(n, 'rb') as f: d = f.read(); print(n, len(d), h(d))\n"
                + "    os.unlink(n)  # strata's cached listing does not show names made behind it\n"
                + "EOF");
        b.finish();
    }

    /**
     * Reads at offsets and of lengths that are not page multiples, each one READ of the caller's size
     * (a second name of each file: strata opens it for direct I/O), spliced from every size up
     * (-Dstrata.spliceMin=0): the file's pages start part way into the pipe's first data page (one more
     * page than the length). Against the kernel overlay, and against the layer file itself.
     */
    @Test void unalignedReadsOfTheCallersSizeAgreeWithTheKernel() {
        Both b = mount("unaligned", "passthrough=0", "-Dstrata.spliceMin=0");
        String script = "python3 - <<'EOF'\n"
                + "import os, hashlib\n"
                + "h = lambda b: hashlib.md5(b).hexdigest()[:12]\n"
                + "for n in ('f65539', 'f1040385', 'f3145733'):\n"
                + "    fd = os.open(os.environ.get('DIR', 'splicel') + '/' + n, os.O_RDONLY)\n"
                + "    for off, ln in ((1, 65536), (4095, 1040384), (4097, 1040383), (12345, 200001), (65530, 9), (3145730, 100)):\n"
                + "        b = os.pread(fd, ln, off); print(n, off, ln, len(b), h(b))\n"
                + "    os.close(fd)\n"
                + "EOF";
        NativeSupport.Proc.Result layer = NativeSupport.Proc.run(pair.tgtLayers.lowers.get(0), 60,
                java.util.Map.of("DIR", "splice"), List.of("bash", "-c", script));
        assertEquals(0, layer.exit, layer.toString());
        b.shOk(script);
        NativeSupport.Proc.Result mounted = NativeSupport.Proc.run(pair.tgt.path(), 60, "bash", "-c", script);
        assertEquals(layer.stdout, mounted.stdout, "reads through strata against the layer file: " + mounted);
        b.finish();
    }

    /**
     * The fallback: a pipe too small for a read past the threshold (-Dstrata.splicePipe=4096) makes the
     * mount answer every READ by write (no pipe is kept); a pipe of 64 KiB splices the reads it holds
     * (up to 56 KiB) and answers the larger ones by write. Both agree with the kernel.
     */
    @Test void fallbackToWrite() {
        Both b = mount("fallbackRefused", "passthrough=0", "-Dstrata.splicePipe=4096");
        long pid = daemonOf(pair.tgt.path());
        int before = pipes(pid);
        b.shOk(READ_ALL);
        assertEquals(before, pipes(pid), "a mount that gave splice up keeps no pipe");
        b.finish();
        pair.close();
        pair = null;
        Both c = mount("fallbackSmallPipe", "passthrough=0", "-Dstrata.splicePipe=65536 -Dstrata.spliceMin=0");
        pid = daemonOf(pair.tgt.path());
        before = pipes(pid);
        c.shOk(READ_ALL);
        assertTrue(pipes(pid) > before, "a worker splices the reads its pipe holds");
        c.finish();
    }

    /**
     * The workers' pipes, counted in the shared daemon's descriptors: a mount's large reads in parallel
     * make one pipe per worker that served one; once that mount is gone its workers have ended and the
     * daemon holds the descriptors it held before the mount (another mount served meanwhile).
     */
    @Test void pipesClosedWhenWorkersEnd() throws Exception {
        NativeSupport.assumeNativeEnvironment();
        String oldJava = System.getProperty("strata.javaOpts", "");
        // no warm-up: its scratch union's descriptors come and go at the daemon's first rest, which
        // may fall between the two counts
        System.setProperty("strata.javaOpts", "-Dstrata.workerIdleMillis=300 -Dstrata.warmupRounds=0");
        try {
            Mounter strata = Mounter.underTest();
            if (!strata.name().equals("strata")) return; // the descriptors are strata's
            Path ad = NativeSupport.newTempDir("splice-fds-a"), bd = NativeSupport.newTempDir("splice-fds-b");
            dirs.add(ad);
            dirs.add(bd);
            LayerSet a = layers(ad), bl = layers(bd);
            Mount ma = strata.mount(a.withOptions("passthrough=0"));
            mounts.add(ma);
            long pid = daemonOf(ma.path());
            Thread.sleep(300);
            List<String> before = descriptors(pid);
            Mount mb = strata.mount(bl.withOptions("passthrough=0"));
            mounts.add(mb);
            assertEquals(List.of(pid), Mounts.registeredPids(mb.path()), "one daemon serves both mounts");
            NativeSupport.Proc.Result r = NativeSupport.Proc.run(mb.path(), 120, "bash", "-c",
                    "for i in 1 2 3 4; do dd if=splicel/f3145733 of=/dev/null bs=64K status=none & done; wait");
            assertEquals(0, r.exit, r.toString());
            int during = pipes(pid);
            assertTrue(during >= 2, "at least one worker of the second mount has its pipe (two ends): " + during);
            mb.close();
            mounts.remove(mb);
            List<String> after = descriptors(pid);
            for (long end = System.currentTimeMillis() + 10_000; !after.equals(before) && System.currentTimeMillis() < end; ) {
                Thread.sleep(100);
                after = descriptors(pid);
            }
            List<String> gained = new ArrayList<>(after), lost = new ArrayList<>(before);
            for (String d : before) gained.remove(d);
            for (String d : after) lost.remove(d);
            assertEquals(List.of(), gained, "descriptors the daemon holds after the second mount's unmount and did not before it (lost: " + lost + ")");
            assertEquals(List.of(), lost, "descriptors the daemon held before the second mount and no longer does");
        } finally {
            System.setProperty("strata.javaOpts", oldJava);
        }
    }

    static long daemonOf(Path mnt) {
        List<Long> pids = Mounts.registeredPids(mnt);
        if (pids.size() != 1) fail("no single strata process registered for " + mnt + ": " + pids);
        return pids.get(0);
    }

    /** The kinds of a process's descriptors ("pipe", "anon_inode:[eventpoll]", a path...), sorted; pipes without their inode. */
    static List<String> descriptors(long pid) throws java.io.IOException {
        List<String> out = new ArrayList<>();
        try (var s = Files.list(Path.of("/proc/" + pid + "/fd"))) {
            for (Path p : (Iterable<Path>) s::iterator) {
                try {
                    String t = Files.readSymbolicLink(p).toString();
                    out.add(t.startsWith("pipe:") ? "pipe" : t);
                } catch (java.io.IOException e) {
                    // closed meanwhile
                }
            }
        }
        out.sort(null);
        return out;
    }

    static int pipes(long pid) {
        try {
            return (int) descriptors(pid).stream().filter("pipe"::equals).count();
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
