package dev.strata.fuse.kernel;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The choice of mappings the daemon may drop at rest, on a /proc/PID/smaps sample of the daemon's JVM. */
class CleanMappingsTest {
    static String entry(String header, long rss, long privDirty, long anon, long locked) {
        return header + "\n"
                + "Size:               8192 kB\nKernelPageSize:        4 kB\nMMUPageSize:           4 kB\n"
                + "Rss:                " + rss + " kB\nPss:                " + rss + " kB\nPss_Dirty:          " + privDirty + " kB\n"
                + "Shared_Clean:          0 kB\nShared_Dirty:          0 kB\n"
                + "Private_Clean:      " + (rss - privDirty) + " kB\nPrivate_Dirty:      " + privDirty + " kB\n"
                + "Referenced:         " + rss + " kB\nAnonymous:          " + anon + " kB\nKSM:                   0 kB\n"
                + "LazyFree:              0 kB\nAnonHugePages:         0 kB\nShmemPmdMapped:        0 kB\nFilePmdMapped:         0 kB\n"
                + "Shared_Hugetlb:        0 kB\nPrivate_Hugetlb:       0 kB\nSwap:                  0 kB\nSwapPss:               0 kB\n"
                + "Locked:                " + locked + " kB\nTHPeligible:           0\nVmFlags: rd mr mw me \n";
    }

    static final String LIBJVM = "/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so";
    static final String SAMPLE =
            // the archive mapped where it was dumped: rw region written (COW), ro region clean
            entry("800000000-800454000 rw-p 00001000 08:01 1311243                            /w/target/strata.jsa", 3948, 2092, 2092, 0)
            + entry("800454000-800bc7000 r--p 00455000 08:01 1311243                            /w/target/strata.jsa", 6668, 0, 0, 0)
            // a relocated archive: written everywhere
            + entry("7fa55c000000-7fa55cbc7000 rw-p 00001000 08:01 1311243                    /w/target/strata.jsa", 11700, 9936, 9936, 0)
            // the JVM's heap and an anonymous mapping: no path
            + entry("ff000000-ff800000 rw-p 00000000 00:00 0 ", 8192, 8192, 8192, 0)
            // libjvm: text (clean), relocation data made read-only after it was written, data
            + entry("7f0a10000000-7f0a10230000 r--p 00000000 08:01 2001                       " + LIBJVM, 1100, 0, 0, 0)
            + entry("7f0a10230000-7f0a11000000 r-xp 00230000 08:01 2001                       " + LIBJVM, 9800, 0, 0, 0)
            + entry("7f0a11200000-7f0a11280000 r--p 01200000 08:01 2001                       " + LIBJVM, 512, 512, 512, 0)
            + entry("7f0a11280000-7f0a11290000 rw-p 01280000 08:01 2001                       " + LIBJVM, 64, 64, 64, 0)
            // the modules image, shared read-only; a writable shared mapping
            + entry("7f0a20000000-7f0a28000000 r--s 00000000 08:01 3001                       /usr/lib/jvm/java-17-openjdk-amd64/lib/modules", 1300, 0, 0, 0)
            + entry("7f0a30000000-7f0a30001000 rw-s 00000000 08:01 3002                       /tmp/hsperfdata_root/123", 4, 0, 0, 0)
            // not resident at all; locked; a device; the vdso; a deleted file (still a file)
            + entry("7f0a40000000-7f0a40010000 r--p 00000000 08:01 4001                       /usr/lib/x86_64-linux-gnu/libz.so.1.2.13", 0, 0, 0, 0)
            + entry("7f0a41000000-7f0a41010000 r-xp 00000000 08:01 4002                       /usr/lib/locked.so", 64, 0, 0, 64)
            + entry("7f0a42000000-7f0a42010000 r--p 00000000 00:05 5                          /dev/zero", 64, 0, 0, 0)
            + entry("7ffd1000000-7ffd1002000 r-xp 00000000 00:00 0                          [vdso]", 8, 0, 0, 0)
            + entry("7f0a43000000-7f0a43010000 r-xp 00000000 00:1f 6001                       /tmp/jffi123.so (deleted)", 16, 0, 0, 0);

    static List<CleanMappings.Mapping> parse(String s) throws IOException {
        return CleanMappings.parse(new ByteArrayInputStream(s.getBytes(StandardCharsets.ISO_8859_1)));
    }

    @Test void parsesEveryMappingWithAPath() throws IOException {
        List<CleanMappings.Mapping> all = parse(SAMPLE);
        assertEquals(14, all.size(), "every mapping but the anonymous one: " + all);
        CleanMappings.Mapping ro = all.get(1);
        assertEquals(0x800454000L, ro.start());
        assertEquals(0x800bc7000L, ro.end());
        assertEquals("r--p", ro.perms());
        assertEquals("/w/target/strata.jsa", ro.path());
        assertEquals(6668, ro.rssKb());
        CleanMappings.Mapping relro = all.get(5);
        assertEquals(LIBJVM, relro.path());
        assertEquals(512, relro.anonymousKb());
        assertEquals("/tmp/jffi123.so (deleted)", all.get(13).path());
        assertEquals(64, all.get(10).lockedKb());
        assertEquals("[vdso]", all.get(12).path());
    }

    @Test void dropsOnlyReadOnlyFileMappingsWithoutAnonymousPages() throws IOException {
        List<String> dropped = parse(SAMPLE).stream().filter(CleanMappings.Mapping::droppable)
                .map(m -> Long.toHexString(m.start()) + " " + m.perms()).toList();
        assertEquals(List.of("800454000 r--p", "7f0a10000000 r--p", "7f0a10230000 r-xp", "7f0a20000000 r--s",
                "7f0a43000000 r-xp"), dropped);
    }

    @Test void aReadOnlyMappingWithOneCopiedPageStays() throws IOException {
        // a page written before the mapping became read-only (or by a debugger): Anonymous alone decides
        String s = entry("7f0a10230000-7f0a11000000 r-xp 00230000 08:01 2001 " + LIBJVM, 9800, 0, 4, 0);
        assertTrue(parse(s).stream().noneMatch(CleanMappings.Mapping::droppable));
        // and a writable mapping never qualifies, even clean
        assertTrue(parse(entry("7f0a10230000-7f0a11000000 rw-p 00230000 08:01 2001 " + LIBJVM, 9800, 0, 0, 0))
                .stream().noneMatch(CleanMappings.Mapping::droppable));
    }

    static long rssOf(String path) throws IOException {
        try (var in = new java.io.FileInputStream("/proc/self/smaps")) {
            return CleanMappings.parse(in).stream().filter(m -> m.path().equals(path)).mapToLong(CleanMappings.Mapping::rssKb).sum();
        }
    }

    /**
     * In this JVM: a file just written (its pages dirty in the page cache), mapped read-only and read through is unmapped (nothing else touches it) and
     * reads the same after; a private copy written in a mapping of the same file keeps what was written.
     */
    @Test void theLiveProcessDropsCleanPagesAndKeepsWrittenOnes(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws IOException {
        java.nio.file.Path f = dir.resolve("data");
        byte[] content = new byte[1 << 20];
        new java.util.Random(7).nextBytes(content);
        java.nio.file.Files.write(f, content);
        try (var ch = java.nio.channels.FileChannel.open(f, java.nio.file.StandardOpenOption.READ, java.nio.file.StandardOpenOption.WRITE)) {
            var ro = ch.map(java.nio.channels.FileChannel.MapMode.READ_ONLY, 0, content.length);
            var cow = ch.map(java.nio.channels.FileChannel.MapMode.PRIVATE, 0, 4096);
            long sum = 0;
            for (int i = 0; i < content.length; i += 4096) sum += ro.get(i);
            cow.put(0, (byte) (content[0] + 1));
            String path = f.toRealPath().toString();
            assertTrue(rssOf(path) >= 1024, "read through: " + rssOf(path) + " kB resident (" + sum + ")");
            CleanMappings.Result r = CleanMappings.dropClean();
            assertEquals(0, r.failed(), "madvise refused: " + r);
            assertTrue(r.mappings() > 0 && r.kb() >= 1024, "dropped: " + r);
            assertTrue(rssOf(path) <= 4, "only the written private page stays: " + rssOf(path) + " kB");
            byte[] back = new byte[content.length];
            ro.get(0, back);
            assertTrue(java.util.Arrays.equals(content, back), "the read-only mapping reads the file");
            assertEquals((byte) (content[0] + 1), cow.get(0), "the private page keeps what was written");
            assertEquals(content[1], cow.get(1));
        }
    }
}
