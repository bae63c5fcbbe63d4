package dev.strata.nativetest;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * A mount at rest: its engine drops the nodes it caches (fuse/kernel/Rest, union/NodeCache#evictAtRest;
 * here after 0.5 s without a request, -Dstrata.restEvictMillis=500, instead of 3 s) while the kernel
 * keeps its entries and the caller keeps files open. What follows must be what the kernel overlay
 * does: the same inode numbers, open files that follow their names' removal and renames, renames
 * and removals of entries whose nodes went, listings of merged directories.
 */
@Tag("native")
class RestEvictionTest {
    private Pair pair;

    @AfterEach void tearDown() {
        if (pair != null) pair.close();
    }

    @Test void whatTheKernelHoldsAfterTheEngineDroppedItsNodes() {
        NativeSupport.assumeNativeEnvironment();
        String old = System.getProperty("strata.javaOpts", "");
        System.setProperty("strata.javaOpts", (old + " -Dstrata.restEvictMillis=500").trim());
        try {
            pair = new Pair("rest-eviction", Mounter.kernel(), Mounter.underTest(), LayerBuilder::standard);
        } finally {
            System.setProperty("strata.javaOpts", old);
        }
        Both b = new Both("rest-eviction", pair);
        b.shOk("python3 - <<'EOF'\n"
                + "import os, time, hashlib\n"
                + "def walk():\n"
                + "    out = {}\n"
                + "    for d, dirs, files in os.walk('.'):\n"
                + "        for n in sorted(dirs + files):\n"
                + "            p = os.path.join(d, n); st = os.lstat(p); out[p] = (st.st_ino, st.st_mode, st.st_nlink, st.st_size)\n"
                + "    return out\n"
                + "low = os.open('data/big.bin', os.O_RDONLY)\n"
                + "up = os.open('shadow.txt', os.O_RDWR | os.O_APPEND)\n"
                + "os.write(up, b'appended\\n')\n"
                + "before = walk()\n"
                + "time.sleep(1.6)\n"
                + "after = walk()\n"
                + "print('same after rest:', before == after, len(before))\n"
                + "try: os.rename('merged', 'merged2'); print('renamed merged')\n"
                + "except OSError as e: print('rename merged:', e.strerror)\n"
                + "os.rename('tdir', 'tdir2'); os.unlink('shadow.txt'); os.write(up, b'after unlink\\n')\n"
                + "st = os.fstat(up); print('removed open file', st.st_nlink, st.st_size)\n"
                + "os.rename('data/big.bin', 'moved.bin'); print('renamed lower', hashlib.md5(os.pread(low, 1 << 20, 4096)).hexdigest())\n"
                + "os.mkdir('opq/new'); os.unlink('deldir/a')\n"
                + "time.sleep(1.6)\n"
                + "print('listings', sorted(os.listdir('merged')), sorted(os.listdir('deldir')), sorted(os.listdir('opq')), sorted(os.listdir('data')))\n"
                + "print('moved', os.stat('moved.bin').st_ino == before['./data/big.bin'][0], os.path.exists('shadow.txt'))\n"
                + "print('fstat', os.fstat(low).st_size, os.fstat(up).st_nlink)\n"
                + "after2 = walk()\n"
                + "print('kept', sorted(p for p in after2 if p in before and after2[p][0] == before[p][0])[:40])\n"
                + "os.close(low); os.close(up)\n"
                + "EOF");
        b.finish();
    }
}
