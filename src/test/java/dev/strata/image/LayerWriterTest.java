package dev.strata.image;

import dev.strata.layer.Markers;
import dev.strata.posix.Posix;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static dev.strata.image.RawTar.b;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** An upper (or layer) directory written as an OCI layer tar: every entry type, marker form, xattrs, hard links, order. */
class LayerWriterTest {
    @TempDir Path tmp;

    static byte[] write(Path dir) throws IOException {
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        LayerWriter.write(dir.toString(), o);
        return o.toByteArray();
    }

    static Map<String, TarItem> read(byte[] tar) throws IOException {
        Map<String, TarItem> out = new LinkedHashMap<>();
        TarReader r = new TarReader(new ByteArrayInputStream(tar));
        for (TarItem it; (it = r.next()) != null; ) out.put(it.name, it);
        return out;
    }

    private static void setx(Path p, String name, byte[] v) {
        assertEquals(0, Posix.lsetxattr(p.toString(), name, v, 0), "setxattr " + name + " on " + p);
    }

    private static boolean userXattrs(Path dir) {
        return Posix.lsetxattr(dir.toString(), "user.probe", b("1"), 0) == 0;
    }

    @Test
    void everyEntryTypeWithModesTimesAndBinaryXattrs() throws Exception {
        Path d = Files.createDirectory(tmp.resolve("upper"));
        assumeTrue(userXattrs(d), "user xattrs needed on " + tmp);
        Posix.lremovexattr(d.toString(), "user.probe");
        Files.createDirectories(d.resolve("etc"));
        Files.writeString(d.resolve("etc/conf"), "hello");
        assertEquals(0, Posix.fchmodat(Posix.AT_FDCWD, d.resolve("etc/conf").toString(), 04750));
        Files.setLastModifiedTime(d.resolve("etc/conf"), FileTime.from(1_600_000_000_123_456_789L, TimeUnit.NANOSECONDS));
        Files.createSymbolicLink(d.resolve("etc/link"), Path.of("../nowhere"));
        assertEquals(0, Posix.mknodat(Posix.AT_FDCWD, d.resolve("fifo").toString(), Posix.S_IFIFO | 0640, 0));
        byte[] bin = {0, (byte) 0xff, '\n', '=', 0, 1};
        setx(d.resolve("etc/conf"), "user.bin", bin);
        setx(d.resolve("etc/conf"), "user.overlay.origin", b("private"));
        setx(d.resolve("etc/conf"), "user.strata.x", b("private"));
        String longName = "d/" + "n".repeat(150);
        Files.createDirectories(d.resolve("d"));
        Files.writeString(d.resolve(longName), "long");

        Map<String, TarItem> m = read(write(d));
        assertEquals(List.of("d/", longName, "etc/", "etc/conf", "etc/link", "fifo"), new ArrayList<>(m.keySet()),
                "sorted by name, directories before their content, no root member");
        TarItem conf = m.get("etc/conf");
        assertEquals(04750, conf.mode());
        assertEquals(Posix.geteuid(), conf.uid());
        assertEquals(java.time.Instant.ofEpochSecond(1_600_000_000L, 123_456_789), conf.mtime(), "mtime with its nanoseconds");
        assertArrayEquals(bin, conf.xattrs.get("user.bin"), "binary xattr byte for byte");
        assertFalse(conf.xattrs.containsKey("user.overlay.origin"), "overlay-private xattrs are not exported");
        assertFalse(conf.xattrs.containsKey("user.strata.x"));
        assertEquals(TarWriter.SYMLINK, m.get("etc/link").type());
        assertEquals("../nowhere", m.get("etc/link").linkName);
        assertEquals(TarWriter.FIFO, m.get("fifo").type());
        assertEquals(0640, m.get("fifo").mode());
        assertEquals(4, m.get(longName).size());
    }

    @Test
    void whiteoutsInEveryFormBecomeWhFiles() throws Exception {
        Path d = Files.createDirectory(tmp.resolve("upper"));
        assumeTrue(userXattrs(d), "user xattrs needed on " + tmp);
        Posix.lremovexattr(d.toString(), "user.probe");
        Files.writeString(d.resolve(".wh.a"), "");                           // .wh. file
        Files.writeString(d.resolve("b"), "");                               // xattr whiteout (user form)
        setx(d.resolve("b"), Markers.USER_WHITEOUT, b("y"));
        boolean chr = Posix.mknodat(Posix.AT_FDCWD, d.resolve("c").toString(), Posix.S_IFCHR, 0) == 0; // 0/0 device
        Files.createDirectories(d.resolve("aufs"));
        Files.writeString(d.resolve(".wh..wh.plnk"), "");                   // AUFS bookkeeping: dropped

        Map<String, TarItem> m = read(write(d));
        List<String> want = new ArrayList<>(List.of(".wh.a", ".wh.b"));
        if (chr) want.add(".wh.c");
        want.add("aufs/");
        assertEquals(want, new ArrayList<>(m.keySet()));
        for (String w : want) {
            if (w.endsWith("/")) continue;
            assertEquals(TarWriter.REG, m.get(w).type());
            assertEquals(0, m.get(w).size());
            assertTrue(m.get(w).xattrs.isEmpty());
        }
    }

    @Test
    void opaqueDirectoriesInEveryFormGetTheOpqMember() throws Exception {
        Path d = Files.createDirectory(tmp.resolve("upper"));
        assumeTrue(userXattrs(d), "user xattrs needed on " + tmp);
        Posix.lremovexattr(d.toString(), "user.probe");
        Files.createDirectories(d.resolve("x"));
        setx(d.resolve("x"), Markers.USER_OPAQUE, b("y"));
        Files.writeString(d.resolve("x/kept"), "k");
        Files.createDirectories(d.resolve("y"));
        Files.writeString(d.resolve("y/" + Markers.OPAQUE_FILE), "");
        Files.createDirectories(d.resolve("z"));
        setx(d.resolve("z"), Markers.USER_OPAQUE, b("x")); // 'x': holds xattr whiteouts, not opaque

        Map<String, TarItem> m = read(write(d));
        assertEquals(List.of("x/", "x/.wh..wh..opq", "x/kept", "y/", "y/.wh..wh..opq", "z/"), new ArrayList<>(m.keySet()));
        assertTrue(m.get("x/").xattrs.isEmpty(), "the opaque xattr itself is not exported");
    }

    @Test
    void hardLinksBecomeTarLinksToTheFirstName() throws Exception {
        Path d = Files.createDirectory(tmp.resolve("upper"));
        Files.createDirectories(d.resolve("a"));
        Files.writeString(d.resolve("b"), "data");
        Files.createLink(d.resolve("a/l"), d.resolve("b"));
        Map<String, TarItem> m = read(write(d));
        assertEquals(List.of("a/", "a/l", "b"), new ArrayList<>(m.keySet()));
        assertEquals(TarWriter.REG, m.get("a/l").type(), "the first name in member order carries the data");
        assertEquals(4, m.get("a/l").size());
        assertEquals(TarWriter.LINK, m.get("b").type());
        assertEquals("a/l", m.get("b").linkName);
        assertEquals(0, m.get("b").size());
    }

    @Test
    void sameTreeSameBytesAndItExtractsBack() throws Exception {
        Path d = Files.createDirectory(tmp.resolve("upper"));
        for (int i = 0; i < 30; i++) Files.writeString(d.resolve("f" + (i * 7919 % 31)), "x".repeat(i));
        Files.createDirectories(d.resolve("sub/deeper"));
        Files.writeString(d.resolve("sub/deeper/file"), "content");
        Files.writeString(d.resolve("sub/.wh.gone"), "");
        byte[] one = write(d);
        byte[] two = write(d);
        assertArrayEquals(one, two);
        assertEquals(0, one.length % 512);
        // reading a file (atime changes) does not change the tar
        Files.readString(d.resolve("sub/deeper/file"));
        assertArrayEquals(one, write(d));

        Path back = Files.createDirectory(tmp.resolve("back"));
        int fd = Posix.openat(Posix.AT_FDCWD, back.toString(), Posix.O_PATH | Posix.O_DIRECTORY, 0);
        try (LayerExtractor ex = new LayerExtractor(fd, "t", () -> Long.MAX_VALUE, Long.MAX_VALUE)) {
            ex.extract(new TarReader(new ByteArrayInputStream(one)));
        } finally {
            Posix.close(fd);
        }
        assertEquals(Snapshot.of(d), Snapshot.of(back));
        assertArrayEquals(one, write(back), "the extracted layer writes the same tar again");
    }

    @Test
    void binaryNamesSurvive() throws Exception {
        Path d = Files.createDirectory(tmp.resolve("upper"));
        String name = new String(new byte[]{'n', (byte) 0xe9, (byte) 0xff, 'x'}, StandardCharsets.ISO_8859_1);
        int fd = Posix.openat(Posix.AT_FDCWD, d + "/" + name, Posix.O_CREAT | Posix.O_WRONLY, 0644);
        assertTrue(fd >= 0);
        Posix.close(fd);
        Map<String, TarItem> m = read(write(d));
        assertNotNull(m.get(name), "name bytes kept: " + m.keySet());
    }

    @Test
    void redirectsAndMetacopyAreRefusedSocketsSkippedOverridesApplied() throws Exception {
        Path d = Files.createDirectory(tmp.resolve("upper"));
        assumeTrue(userXattrs(d), "user xattrs needed on " + tmp);
        Posix.lremovexattr(d.toString(), "user.probe");
        Files.writeString(d.resolve("f"), "x");
        setx(d.resolve("f"), "user.containers.override_stat", b("1000:2000:0750"));
        try (java.nio.channels.ServerSocketChannel ch = java.nio.channels.ServerSocketChannel.open(java.net.StandardProtocolFamily.UNIX)) {
            ch.bind(java.net.UnixDomainSocketAddress.of(d.resolve("sock")));
        }
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        LayerWriter.Stats st = LayerWriter.write(d.toString(), o);
        Map<String, TarItem> m = read(o.toByteArray());
        assertEquals(List.of("f"), new ArrayList<>(m.keySet()), "the socket is skipped");
        assertEquals(1, st.skippedSockets);
        assertEquals(1000, m.get("f").uid());
        assertEquals(2000, m.get("f").gid());
        assertEquals(0750, m.get("f").mode());
        assertTrue(m.get("f").xattrs.isEmpty(), "the override xattr itself is not exported");

        Files.createDirectories(d.resolve("moved"));
        setx(d.resolve("moved"), "user.overlay.redirect", b("/elsewhere"));
        ImageException e = assertThrows(ImageException.class, () -> write(d));
        assertTrue(e.getMessage().contains("redirect_dir=on"), e.getMessage());
        Posix.lremovexattr(d.resolve("moved").toString(), "user.overlay.redirect");
        setx(d.resolve("f"), "user.overlay.metacopy", new byte[0]);
        e = assertThrows(ImageException.class, () -> write(d));
        assertTrue(e.getMessage().contains("metacopy=on"), e.getMessage());
    }

    @Test
    void notADirectoryIsOneLine() throws Exception {
        Path f = Files.writeString(tmp.resolve("file"), "x");
        ImageException e = assertThrows(ImageException.class, () -> write(f));
        assertTrue(e.getMessage().contains("not a directory"), e.getMessage());
    }
}
