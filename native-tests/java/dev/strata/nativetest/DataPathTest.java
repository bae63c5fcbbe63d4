package dev.strata.nativetest;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The data path without FUSE passthrough (what rootless users get; {@code -o passthrough=0} as root),
 * and with it: what the kernel's page cache holds after writes through the mount, against the
 * kernel overlay on the same layers. Each test mounts strata with the options it names, added to
 * {@code -Dstrata.mountOptions}.
 */
@Tag("native")
class DataPathTest {
    private Pair pair;

    private Both mount(String name, String options) {
        NativeSupport.assumeNativeEnvironment();
        String old = System.getProperty("strata.mountOptions", "");
        if (!options.isEmpty()) System.setProperty("strata.mountOptions", (old.isEmpty() ? "" : old + ",") + options);
        try {
            pair = Pair.standard("dp-" + name);
        } finally {
            System.setProperty("strata.mountOptions", old);
        }
        pair.keepOnClose();
        return new Both(name, pair);
    }

    @AfterEach void tearDown() { if (pair != null) pair.close(); }

    /**
     * The pages a write put in the page cache stay there once the file's attributes are read again:
     * the first read after a write is served from memory, as on the kernel overlay (whose page cache is
     * the upper file's). Until the kernel was no longer asked to drop a file's pages on every changed
     * mtime (FUSE_AUTO_INVAL_DATA), the stat after the write emptied the cache (fincore: 0 bytes).
     */
    @Test void writtenPagesStayCachedAfterStat() {
        Both b = mount("writtenPagesStayCachedAfterStat", "passthrough=0");
        b.shOk("dd if=/dev/zero of=w.bin bs=1M count=4 status=none && stat -c %s w.bin && fincore -b -n -o RES w.bin"
                + " && dd if=/dev/zero of=w.bin bs=1M count=2 conv=notrunc,fsync status=none && stat -c %s w.bin"
                + " && fincore -b -n -o RES w.bin");
        b.finish();
    }

    private static final String CACHED_OPEN_THEN_OTHER_NAME = "python3 - <<'EOF'\n"
            + "import os\n"
            + "for name, other in (('etc/passwd', 'pw2'), ('up.txt', 'up2')):\n"
            + "    if not os.path.exists(name):\n"
            + "        with open(name, 'w') as f: f.write('abcdefgh' * 1024)\n"
            + "    fd = os.open(name, os.O_RDONLY)           # one name only: a page-cache open\n"
            + "    print(name, os.pread(fd, 8, 0))           # its pages are cached now\n"
            + "    os.link(name, other)                      # (a copy-up for the lower file)\n"
            + "    w = os.open(other, os.O_WRONLY)\n"
            + "    os.pwrite(w, b'XYZW', 2)                  # the same size: only the data changes\n"
            + "    os.close(w)\n"
            + "    os.stat(name)\n"
            + "    print(name, os.pread(fd, 8, 0), os.stat(name).st_size)\n"
            + "    m = open(name, 'rb'); print(m.read(8)); m.close()\n"
            + "    os.close(fd)\n"
            + "EOF";

    /**
     * A descriptor that was reading a file through its page cache before the file got a second name
     * reads what a write through that other name changed (the kernel overlay reads the upper file).
     * Seen failing (the old bytes) with FUSE_AUTO_INVAL_DATA off and only the attributes of the other
     * names invalidated after a write: the data of the other names must be dropped too.
     */
    @Test void writeThroughAnotherNameReachesACachedOpen() {
        Both b = mount("writeThroughAnotherNameReachesACachedOpen", "passthrough=0");
        b.shOk(CACHED_OPEN_THEN_OTHER_NAME);
        b.finish();
    }

    /** The same with the default options (passthrough for the upper file where the kernel has it). */
    @Test void writeThroughAnotherNameReachesACachedOpenDefaultOptions() {
        Both b = mount("writeThroughAnotherNameReachesACachedOpenDefaultOptions", "");
        b.shOk(CACHED_OPEN_THEN_OTHER_NAME);
        b.finish();
    }

    /**
     * The writeback cache ({@code -o passthrough=0,writeback=on}): what tar, editors and logs do to files
     * of one name, against the kernel overlay. Small writes gathered by the kernel reach the upper file
     * at close; a write-only open of a lower file overwriting part of a page (the kernel reads the rest
     * of the page through that open, so strata's descriptor must be readable); O_APPEND placed by the
     * kernel (strata's descriptor must not append on its own); truncate up and down; a shared mapping
     * written and msync'ed; fsync; sizes and "mtime changed" after each step; the uppers compared after
     * the unmount (every dirty page written back).
     */
    @Test void writebackCacheKeepsFilesOfOneName() {
        Both b = mount("writebackCacheKeepsFilesOfOneName", "passthrough=0,writeback=on");
        b.shOk("python3 - <<'EOF'\n"
                + "import os, mmap, time\n"
                + "def show(n):\n"
                + "    st = os.stat(n); print(n, st.st_size, oct(st.st_mode), open(n, 'rb').read()[:64])\n"
                + "os.makedirs('wb', exist_ok=True)\n"
                + "for i in range(20):\n"
                + "    fd = os.open('wb/f%d' % i, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)\n"
                + "    for j in range(7): os.write(fd, (b'%d-%d;' % (i, j)) * (100 + 50 * j))\n"
                + "    os.close(fd)\n"
                + "print(sum(os.stat('wb/f%d' % i).st_size for i in range(20)))\n"
                + "m0 = os.stat('etc/passwd').st_mtime_ns\n"
                + "fd = os.open('etc/passwd', os.O_WRONLY)           # a lower file: copy-up, then a partial page\n"
                + "os.pwrite(fd, b'XY', 3); os.close(fd); show('etc/passwd')\n"
                + "print('mtime changed', os.stat('etc/passwd').st_mtime_ns != m0)\n"
                + "fd = os.open('shadow.txt', os.O_WRONLY | os.O_APPEND)\n"
                + "os.write(fd, b'appended\\n'); os.pwrite(fd, b'pw\\n', 0); os.close(fd); show('shadow.txt')\n"
                + "fd = os.open('wb/f1', os.O_RDWR); os.ftruncate(fd, 10); os.write(fd, b'abc'); os.close(fd); show('wb/f1')\n"
                + "os.truncate('wb/f2', 9000); show('wb/f2')\n"
                + "fd = os.open('wb/f3', os.O_RDWR); m = mmap.mmap(fd, 4096); m[0:5] = b'MMAP!'; m.flush(); m.close(); os.close(fd); show('wb/f3')\n"
                + "fd = os.open('wb/sync', os.O_WRONLY | os.O_CREAT, 0o600); os.write(fd, b's' * 5000); os.fsync(fd); print(os.fstat(fd).st_size); os.close(fd)\n"
                + "fd = os.open('merged/from2', os.O_WRONLY | os.O_TRUNC); os.write(fd, b'new'); os.close(fd); show('merged/from2')\n"
                + "EOF\n"
                + "cat wb/f0 | md5sum && wc -c wb/* | tail -1");
        b.finish();
    }
}
