package dev.strata.image;

import dev.strata.posix.Posix;
import dev.strata.posix.Stat;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

import static dev.strata.image.RawTar.b;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** What one layer tar becomes on disk: every kind of entry, metadata, names as bytes, markers, sparse files. */
class LayerExtractorTest {
    @TempDir Path tmp;
    private int n;

    /** Extracts a tar into a fresh directory and returns it (and the stats through lastStats). */
    LayerExtractor.Stats lastStats;

    Path extract(byte[] tar) throws IOException {
        Path dir = Files.createDirectory(tmp.resolve("layer" + (n++)));
        int fd = Posix.openat(Posix.AT_FDCWD, dir.toString(), Posix.O_PATH | Posix.O_DIRECTORY, 0);
        assertTrue(fd >= 0);
        try (LayerExtractor ex = new LayerExtractor(fd, "test layer", () -> Long.MAX_VALUE, Long.MAX_VALUE)) {
            ex.extract(new TarReader(new ByteArrayInputStream(tar)));
            lastStats = ex.stats;
        } finally {
            Posix.close(fd);
        }
        return dir;
    }

    static Map<String, String> map(String... kv) {
        Map<String, String> m = new TreeMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put(kv[i], kv[i + 1]);
        return m;
    }

    @Test
    void extractsFilesDirectoriesLinksFifosWithTheirModes() throws IOException {
        byte[] tar = new TestImages.CcTar()
                .dir("etc", 0755)
                .file("etc/hosts", "127.0.0.1 localhost", 0644)
                .file("bin/tool", "x", 04755)
                .symlink("bin/sh", "/bin/busybox")
                .symlink("up", "../../../../etc/passwd")
                .hardlink("etc/hosts.bak", "etc/hosts")
                .dir("ro", 0555)
                .file("ro/f", "r", 0444)
                .file("ro/sub/g", "g", 0600)
                .dir("sticky", 01777)
                .file("sgid", "s", 02755)
                .bytes();
        byte[] withFifo = concat(tar, new RawTar().entry(b("pipe"), '6', null, null, 0640, 0, 0, 0, 0, null).bytes());
        Path dir = extract(withFifo);
        assertEquals(map(
                "bin", "dir 0755",
                "bin/sh", "link -> /bin/busybox",
                "bin/tool", "file 4755 'x'",
                "etc", "dir 0755",
                "etc/hosts", "file 0644 '127.0.0.1 localhost' links=2",
                "etc/hosts.bak", "file 0644 '127.0.0.1 localhost' links=2",
                "pipe", "fifo 0640",
                "ro", "dir 0555",
                "ro/f", "file 0444 'r'",
                "ro/sub", "dir 0755",
                "ro/sub/g", "file 0600 'g'",
                "sgid", "file 2755 's'",
                "sticky", "dir 1777",
                "up", "link -> ../../../../etc/passwd"), Snapshot.of(dir));
        assertEquals(5, lastStats.files);
        assertEquals(1, lastStats.hardlinks);
        assertEquals(2, lastStats.symlinks);
        assertEquals(1, lastStats.fifos);
        assertEquals(19 + 1 + 1 + 1 + 1, lastStats.contentBytes); // hosts, tool, f, g, sgid
    }

    /** Concatenates two archives, dropping the first one's end records. */
    static byte[] concat(byte[] a, byte[] b) {
        int end = a.length;
        while (end >= 512 && isZero(a, end - 512)) end -= 512;
        byte[] out = new byte[end + b.length];
        System.arraycopy(a, 0, out, 0, end);
        System.arraycopy(b, 0, out, end, b.length);
        return out;
    }

    private static boolean isZero(byte[] a, int off) {
        for (int i = off; i < off + 512; i++) if (a[i] != 0) return false;
        return true;
    }

    @Test
    void timesKeepNanosecondsAndDirectoriesKeepTheirsAfterTheirContents() throws IOException {
        Map<String, byte[]> fileTimes = new LinkedHashMap<>();
        fileTimes.put("mtime", b("1700000000.123456789"));
        fileTimes.put("atime", b("1700000100.5"));
        Map<String, byte[]> dirTimes = new LinkedHashMap<>();
        dirTimes.put("mtime", b("1500000000.25"));
        byte[] tar = new RawTar()
                .withPax("d/", '5', null, dirTimes)
                .withPax("d/f", '0', b("data"), fileTimes)
                .file("d/later", "written after the directory entry")
                .mtime(1234567890L).file("plain", "p")
                .bytes();
        Path dir = extract(tar);
        Stat st = new Stat();
        assertEquals(0, Posix.fstatat(Posix.AT_FDCWD, dir + "/d/f", st, Posix.AT_SYMLINK_NOFOLLOW));
        assertEquals(1700000000L, st.mtime());
        assertEquals(123456789L, st.mtimeNs());
        assertEquals(1700000100L, st.atime());
        assertEquals(500000000L, st.atimeNs());
        assertEquals(0, Posix.fstatat(Posix.AT_FDCWD, dir + "/d", st, Posix.AT_SYMLINK_NOFOLLOW));
        assertEquals(1500000000L, st.mtime(), "directory mtime set after its contents were written");
        assertEquals(250000000L, st.mtimeNs());
        assertEquals(0, Posix.fstatat(Posix.AT_FDCWD, dir + "/plain", st, Posix.AT_SYMLINK_NOFOLLOW));
        assertEquals(1234567890L, st.mtime());
        assertEquals(0L, st.mtimeNs());
    }

    @Test
    void xattrsComeFromRawPaxRecordsSoBinaryValuesSurvive() throws IOException {
        byte[] binary = {0, 1, (byte) 0xff, (byte) 0x80, (byte) 0xc3, 0x28, '\n', 0};
        Map<String, byte[]> pax = new LinkedHashMap<>();
        pax.put("SCHILY.xattr.user.text", b("hello"));
        pax.put("SCHILY.xattr.user.binary", binary);
        pax.put("LIBARCHIVE.xattr.user.from%20bsdtar", b(Base64.getEncoder().encodeToString(b("bsd\u0000value"))));
        Map<String, byte[]> dirPax = new LinkedHashMap<>();
        dirPax.put("SCHILY.xattr.user.dir", b("on a directory"));
        Map<String, byte[]> linkPax = new LinkedHashMap<>();
        linkPax.put("SCHILY.xattr.user.nope", b("user xattrs are not allowed on symlinks"));
        byte[] tar = new RawTar()
                .withPax("f", '0', b("content"), pax)
                .withPax("d/", '5', null, dirPax)
                .entry(b("l"), '2', null, b("f"), 0777, 0, 0, 0, 0, linkPax)
                .bytes();
        Path dir = extract(tar);
        assertArrayEquals(b("hello"), Posix.lgetxattr(dir + "/f", "user.text"));
        assertArrayEquals(binary, Posix.lgetxattr(dir + "/f", "user.binary"));
        assertArrayEquals(b("bsd\u0000value"), Posix.lgetxattr(dir + "/f", "user.from bsdtar"));
        assertArrayEquals(b("on a directory"), Posix.lgetxattr(dir + "/d", "user.dir"));
        assertEquals(1, lastStats.skippedXattrs, "the symlink's user xattr is skipped, not fatal");
        assertTrue(lastStats.firstSkippedXattr.startsWith("user.nope on 'l'"), lastStats.firstSkippedXattr);
    }

    @Test
    void namesAreBytesEvenWhenNotUtf8() throws IOException {
        String latin = "caf\u00e9";                     // byte E9: not valid UTF-8 on its own
        String paxName = "d\u00ff\u00fe/n\u00e9\u0080";  // raw PAX path bytes FF FE ... E9 80
        Map<String, byte[]> pax = new LinkedHashMap<>();
        pax.put("path", b(paxName));
        String utf8 = new String("\u65e5\u672c".getBytes(StandardCharsets.UTF_8), StandardCharsets.ISO_8859_1);
        byte[] tar = new RawTar()
                .file(latin, "ustar name")
                .withPax("ignored-by-pax", '0', b("pax name"), pax)
                .file(utf8, "utf-8 name")
                .entry(b("link\u00e9"), '2', null, b("target\u00ff"), 0777, 0, 0, 0, 0, null)
                .bytes();
        Map<String, String> snap = Snapshot.of(extract(tar));
        assertEquals("file 0644 'ustar name'", snap.get(latin));
        assertEquals("file 0644 'pax name'", snap.get(paxName));
        assertEquals("file 0644 'utf-8 name'", snap.get(utf8));
        assertEquals("link -> target\u00ff", snap.get("link\u00e9"));
        assertEquals(5, snap.size(), snap.toString()); // the four above, plus the directory d\u00ff\u00fe
    }

    @Test
    void longNamesAndLinkTargets() throws IOException {
        String deep = "a".repeat(90) + "/" + "b".repeat(90) + "/" + "c".repeat(90) + "/file";
        String gnu = "g".repeat(80) + "/" + "h".repeat(80) + "\u00e9";
        String target = "/" + "t".repeat(250);
        byte[] tar = concat(new RawTar()
                .file(deep, "deep")
                .symlink("longlink", target)
                .bytes(), new RawTar().gnuLongName(b(gnu), '0', b("gnu")).bytes());
        Map<String, String> snap = Snapshot.of(extract(tar));
        assertEquals("file 0644 'deep'", snap.get(deep));
        assertEquals("link -> " + target, snap.get("longlink"));
        assertEquals("file 0644 'gnu'", snap.get(gnu));
    }

    @Test
    void whiteoutsAndOpaqueDirectoriesInTheFormTheMountReads() throws IOException {
        byte[] tar = new RawTar()
                .dir("a", 0755)
                .file(".wh.gone", "")
                .file("a/.wh.sub", "")
                .dir("b", 0750)
                .file("b/.wh..wh..opq", "")
                .file("b/keep", "k")
                .file("same", "kept")
                .file(".wh.same", "")          // a whiteout of a name this layer has: the entry wins
                .chr("c0", 0, 0)               // an overlay whiteout stored as a device
                .file(".wh..wh.plnk/1.2", "")  // AUFS bookkeeping: skipped
                .file("./later/.wh.x", "")
                .file("later/x", "x is back")  // an entry after its whiteout replaces it
                .bytes();
        Map<String, String> snap = Snapshot.of(extract(tar));
        assertEquals(map(
                "a", "dir 0755",
                "a/sub", "whiteout",
                "b", "dir 0750 opaque",
                "b/keep", "file 0644 'k'",
                "c0", "whiteout",
                "gone", "whiteout",
                "later", "dir 0755",
                "later/x", "file 0644 'x is back'",
                "same", "file 0644 'kept'"), snap);
        assertEquals(1, lastStats.skippedAufs);
        assertEquals(1, lastStats.opaques);
    }

    @Test
    void laterEntriesReplaceEarlierOnesWithoutWritingThroughSymlinks() throws IOException {
        Path outside = Files.writeString(tmp.resolve("outside-file"), "untouched");
        byte[] tar = new RawTar()
                .file("x", "a file first")
                .dir("x", 0700)
                .file("x/y", "then a directory")
                .symlink("s", outside.toString())
                .file("s", "a file replaces the symlink")
                .dir("d", 0755)
                .file("d/inner", "i")
                .file("d", "a file replaces the directory")
                .symlink("sd", tmp.toString())
                .dir("sd", 0755)
                .file("sd/f", "inside the layer")
                .bytes();
        Path dir = extract(tar);
        assertEquals(map(
                "d", "file 0644 'a file replaces the directory'",
                "s", "file 0644 'a file replaces the symlink'",
                "sd", "dir 0755",
                "sd/f", "file 0644 'inside the layer'",
                "x", "dir 0700",
                "x/y", "file 0644 'then a directory'"), Snapshot.of(dir));
        assertEquals("untouched", Files.readString(outside));
        assertTrue(!Files.exists(tmp.resolve("f")));
    }

    @Test
    void layerRootEntrySetsTheRootAndImpliedParentsAre0755() throws IOException {
        byte[] tar = new RawTar().dir("./", 0711).file("p/q/r", "deep").bytes();
        Path dir = extract(tar);
        Stat st = new Stat();
        assertEquals(0, Posix.fstatat(Posix.AT_FDCWD, dir.toString(), st, 0));
        assertEquals(0711, st.perm());
        assertEquals(map("p", "dir 0755", "p/q", "dir 0755", "p/q/r", "file 0644 'deep'"), Snapshot.of(dir));
    }

    @Test
    void rootWithoutAnEntryIs0755() throws IOException {
        Path dir = extract(new RawTar().file("f", "x").bytes());
        Stat st = new Stat();
        assertEquals(0, Posix.fstatat(Posix.AT_FDCWD, dir.toString(), st, 0));
        assertEquals(0755, st.perm());
    }

    @Test
    void sparseFilesKeepTheirHoles() throws Exception {
        assumeTrue(Files.isExecutable(Path.of("/usr/bin/tar")) || Files.isExecutable(Path.of("/bin/tar")),
                "GNU tar is needed to write sparse archives");
        Path src = Files.createDirectory(tmp.resolve("sparse-src"));
        Path f = src.resolve("holes");
        long size = 64L << 20;
        try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
            raf.setLength(size);
            raf.seek(1 << 20);
            raf.write(b("in the middle"));
            raf.seek(size - 3);
            raf.write(b("end"));
        }
        byte[] expected = Files.readAllBytes(f);
        for (String[] format : new String[][]{{"--format=posix", "--sparse-version=1.0"}, {"--format=posix", "--sparse-version=0.1"},
                {"--format=gnu", "--sparse"}}) {
            Path tarFile = tmp.resolve("sparse" + (n) + ".tar");
            Process p = new ProcessBuilder("tar", "-S", format[0], format[1], "-C", src.toString(), "-cf", tarFile.toString(), "holes")
                    .redirectErrorStream(true).start();
            assertTrue(p.waitFor(60, TimeUnit.SECONDS));
            assertEquals(0, p.exitValue(), new String(p.getInputStream().readAllBytes()));
            assertTrue(Files.size(tarFile) < (1 << 20), "the archive itself is sparse");
            Path dir = extract(Files.readAllBytes(tarFile));
            Path out = dir.resolve("holes");
            assertEquals(size, Files.size(out), String.join(" ", format));
            assertArrayEquals(expected, Files.readAllBytes(out), String.join(" ", format));
            Stat st = new Stat();
            assertEquals(0, Posix.fstatat(Posix.AT_FDCWD, out.toString(), st, 0));
            assertTrue(st.blocks() * 512 < (1 << 20), "holes stay holes: " + st.blocks() + " blocks, " + String.join(" ", format));
            assertEquals(size, lastStats.contentBytes);
        }
    }

    @Test
    void hardLinkToASymlinkLinksTheSymlinkItself() throws IOException {
        byte[] tar = new RawTar().symlink("sl", "/nowhere").hardlink("sl2", "sl").bytes();
        Path dir = extract(tar);
        Stat a = new Stat(), c = new Stat();
        assertEquals(0, Posix.fstatat(Posix.AT_FDCWD, dir + "/sl", a, Posix.AT_SYMLINK_NOFOLLOW));
        assertEquals(0, Posix.fstatat(Posix.AT_FDCWD, dir + "/sl2", c, Posix.AT_SYMLINK_NOFOLLOW));
        assertEquals(a.ino(), c.ino());
        assertTrue(Posix.isLnk(c.mode()));
        assertNotEquals(0, a.ino());
    }
}
