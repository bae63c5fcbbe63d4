package dev.strata.nativetest;

import dev.strata.posix.Errno;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * metacopy=on (overlayfs.rst "Metadata only copy up"), against the kernel overlay mounted with the same
 * option: chmod, chown, touch and setfattr of lower regular files copy up their metadata only (the
 * uppers carry overlay.metacopy at the same paths and grow by no data), reads come from the lower data
 * (st_size and st_blocks as the kernel shows them), rename and link give the kernel's absolute redirect,
 * and writes, truncate, O_TRUNC and a write open without a write bring the data up (the mark goes).
 * Remounts in between make lookups read the marks from the layers. Each upper is read by the other
 * implementation; with metacopy=off both refuse the metadata-only copies (EPERM).
 */
@Tag("native")
class MetacopyTest {
    static final String ON = "metacopy=on";
    private Pair pair;

    @AfterEach void tearDown() { if (pair != null) pair.close(); }

    private Both both(String name) {
        NativeSupport.assumeNativeEnvironment();
        pair = new Pair("mc-" + name, Mounter.kernel(ON), RedirectDirTest.target(ON), LayerBuilder::standard);
        pair.keepOnClose();
        return new Both(name, pair);
    }

    /** The files the scenario changes the metadata of: lower regular files of every layer. */
    static final String META = "chmod 600 data/big.bin && chown 1000:50 usr/lib/libx.so.1 && touch -d 2001-02-03 shadow.txt"
            + " && setfattr -n user.mc -v 1 xattr.txt && chmod 640 data/sparse.img && chmod 700 data/hl1 && chown 7 etc/passwd"
            + " && touch -m -d 2002-01-01 deldir/sub/b && chmod 644 usr/bin/tool && setfattr -x user.color xattr.txt";

    static final String LOOK = "stat -c '%n %s %b %a %u %g %h %Y' data/big.bin usr/lib/libx.so.1 shadow.txt xattr.txt"
            + " data/sparse.img data/hl1 data/hl2 etc/passwd deldir/sub/b usr/bin/tool"
            + " && md5sum data/big.bin usr/lib/libx.so.1 shadow.txt xattr.txt data/sparse.img data/hl1 etc/passwd deldir/sub/b"
            + " && getfattr -d --absolute-names xattr.txt | cat && ls -A data usr/lib | cat";

    @Test void metadataOnlyCopyUpThenData() {
        Both b = both("scenario");
        long[] before = {du(pair.refLayers.upper), du(pair.tgtLayers.upper)};
        b.shOk(META);
        b.shOk(LOOK);
        long[] grown = {du(pair.refLayers.upper) - before[0], du(pair.tgtLayers.upper) - before[1]};
        // big.bin (3 MiB) and sparse.img (2 MiB of data) came up without their data, on both
        assertTrue(grown[0] < 512, "the kernel's upper grew by " + grown[0] + " KiB: was it mounted with metacopy=on?");
        assertTrue(grown[1] < 512, "the target's upper grew by " + grown[1] + " KiB for metadata changes (kernel: " + grown[0] + ")");
        assertSameMarks(pair, true);
        b.remount();
        b.shOk(LOOK);
        // a rename and a link of metadata-only copies: the kernel's absolute redirect finds the data
        b.shOk("mv data/big.bin moved.bin && mv usr/lib/libx.so.1 usr/libx && ln shadow.txt data/shadow-link"
                + " && mv deldir/sub/b deldir/b-moved && ln data/hl1 hl-link && mv data/sparse.img data/sparse2.img"
                + " && md5sum moved.bin usr/libx data/shadow-link deldir/b-moved hl-link data/sparse2.img");
        assertSameMarks(pair, true);
        b.remount();
        b.shOk("stat -c '%n %s %b %a %u %h' moved.bin usr/libx data/shadow-link shadow.txt deldir/b-moved hl-link data/sparse2.img"
                + " && md5sum moved.bin usr/libx data/shadow-link deldir/b-moved hl-link && ls -A data usr usr/lib deldir deldir/sub | cat");
        // data changes: the first write open copies the data up and removes the mark
        // (not st_blocks of sparse2.img: the kernel's copy-up fills holes in 1 MiB chunks, strata keeps them)
        b.shOk("exec 3<moved.bin && echo appended >> moved.bin && md5sum moved.bin && tail -c 20 <&3 | od -c | tail -2"
                + " && truncate -s 100 usr/libx && : > xattr.txt && exec 4<>data/hl1 && exec 4>&-"
                + " && echo w >> data/shadow-link && cat shadow.txt && truncate -s 3000000 data/sparse2.img"
                + " && stat -c '%n %s %b' moved.bin usr/libx xattr.txt data/hl1 data/shadow-link shadow.txt && stat -c '%n %s' data/sparse2.img"
                + " && md5sum usr/libx data/hl1 data/sparse2.img");
        assertSameMarks(pair, false);
        b.remount();
        // a metadata-only copy open for reading, removed, then truncated through /proc/self/fd: the data comes up first
        // (truncate(2) by that path: an open of it for writing is ENOENT on strata for any removed upper file)
        b.shOk("exec 5<usr/bin/tool && rm usr/bin/tool && python3 -c \"import os; os.truncate('/proc/self/fd/5', 12)\" && od -c <&5 | head -3"
                + " && stat -L -c '%s %a' /proc/self/fd/5");
        b.shOk("md5sum moved.bin usr/libx xattr.txt data/hl1 data/shadow-link shadow.txt etc/passwd deldir/b-moved hl-link"
                + " && rm etc/passwd hl-link data/shadow-link deldir/b-moved && ls -A etc data deldir | cat");
        b.finish();
        assertSameMarks(pair, false);
        RedirectDirTest.crossRead(pair, ON);
    }

    /** metacopy=off over uppers with metadata-only copies: the kernel refuses them (EPERM), and so must the target. */
    /**
     * With index=on, a name of a lower hard link removed after a chmod through another name made the
     * index entry a metadata-only copy: the removal brings the name up metadata only (ovl_nlink_start's
     * ovl_copy_up), so the entry keeps its mark and its times (seed 1004 with
     * redirect_dir=on,index=on,metacopy=on, op #57: strata copied the data, and every name showed a new mtime).
     */
    @Test void removingANameOfAnIndexedMetadataOnlyCopy() {
        NativeSupport.assumeNativeEnvironment();
        String on = "index=on,metacopy=on";
        pair = new Pair("mc-nlink", Mounter.kernel(on), RedirectDirTest.target(on), LayerBuilder::standard);
        pair.keepOnClose();
        Both b = new Both("nlink", pair);
        b.shOk("chmod 0444 data/sub/hl3 && rm data/hl1 && stat -c '%n %h %a %.9Y' data/hl2 data/sub/hl3 && exec 3<data/hl2 && rm data/hl2"
                + " && stat -c '%n %h %.9Y' data/sub/hl3 && cat data/sub/hl3 | sha256sum");
        b.remount();
        b.shOk("stat -c '%n %h %a %.9Y' data/sub/hl3 && sha256sum data/sub/hl3");
        b.finish();
    }

    /**
     * A metadata-only copy with two names (a lower file chmod'ed, then linked): a write open through one
     * name copies the data up, which on the kernel overlay gives the file a new mtime and ctime, shown
     * through the other name at once (seed 1012 with redirect_dir=on,index=on,metacopy=on, op #374: the
     * other name kept the times strata's kernel side had cached).
     */
    @Test void aWriteOpenOfALinkedMetadataOnlyCopyShowsThroughTheOtherName() {
        NativeSupport.assumeNativeEnvironment();
        String on = "index=on,metacopy=on";
        pair = new Pair("mc-wopen", Mounter.kernel(on), RedirectDirTest.target(on), LayerBuilder::standard);
        pair.keepOnClose();
        Both b = new Both("wopen", pair);
        b.shOk(ScenarioTest.TIMES_CHANGED + "chmod 0640 private/secret && ln private/secret etc/pw2 && stat -c '%n %h %a' etc/pw2 private/secret"
                + " && f etc/pw2 'dd status=none if=/dev/null of=private/secret conv=notrunc' && f private/secret true");
        b.finish();
    }

    @Test void metacopyOffRefusesMetadataOnlyCopies() {
        Both b = both("off");
        b.shOk(META);
        b.finish();
        List<String> out = new ArrayList<>();
        for (Object[] side : new Object[][]{{Mounter.kernel(""), pair.refLayers}, {RedirectDirTest.target(""), pair.tgtLayers}}) {
            try (Mount m = ((Mounter) side[0]).mount((LayerSet) side[1]); OpExecutor ex = new OpExecutor(m.abs(""))) {
                StringBuilder s = new StringBuilder();
                for (Op op : new Op[]{Op.stat("data/big.bin"), Op.stat("shadow.txt"), Op.stat("etc/hosts"), Op.stat("data/ghost")}) {
                    s.append(op).append(" -> ").append(ex.run(op).errno).append('\n');
                }
                out.add(s.toString());
            }
        }
        assertEquals(out.get(0), out.get(1), "metacopy=off: kernel vs target");
        assertTrue(out.get(0).contains("-> " + Errno.EPERM), "the kernel refuses metadata-only copies without metacopy=on: " + out.get(0));
    }

    /**
     * Uppers with metadata-only copies (and their redirects) as the top lower layer of a read-only
     * mount: the data is found in the layers below, on the kernel and on the target alike, for the
     * kernel's upper and for the target's.
     */
    @Test void metadataOnlyCopiesInALowerLayer() {
        Both b = both("lower");
        b.shOk(META + " && mv data/big.bin moved.bin && ln shadow.txt data/shadow-link && mv deldir/sub/b deldir/b-moved");
        b.finish();
        Snapshot.Options o = Snapshot.Options.fromProperties();
        for (LayerSet written : new LayerSet[]{pair.refLayers, pair.tgtLayers}) {
            List<Path> lowers = new ArrayList<>();
            lowers.add(written.upper);
            lowers.addAll(written.lowers);
            LayerSet ro = new LayerSet(written.root, lowers, null, null, written.mnt);
            Snapshot k, t;
            try (Mount m = Mounter.kernel(ON).mount(ro)) { k = Snapshot.take("kernel", m.path()); }
            Mounter tm = RedirectDirTest.target(ON);
            try (Mount m = tm.mount(ro)) { t = Snapshot.take(tm.name().equals("kernel") ? "kernel#2" : tm.name(), m.path()); }
            List<String> d = Snapshot.diff(k, t, o, 40);
            if (!d.isEmpty()) fail("an upper with metadata-only copies as a lower layer (" + written.upper + "):\n  " + String.join("\n  ", d));
        }
    }

    /** Disk usage of a directory in KiB (du -sk). */
    static long du(Path dir) {
        NativeSupport.Proc.Result r = NativeSupport.Proc.run(dir, 60, null, List.of("du", "-sk", "."));
        assertEquals(0, r.exit, r.toString());
        return Long.parseLong(r.stdout.trim().split("\\s+")[0]);
    }

    /** overlay.metacopy and overlay.redirect of every file of an upper (trusted. or user.), by path. */
    static TreeMap<String, String> marks(Path upper) {
        TreeMap<String, String> m = new TreeMap<>();
        NativeSupport.Proc.Result r = NativeSupport.Proc.run(upper, 60, null,
                List.of("getfattr", "-R", "-h", "--absolute-names", "-m", "overlay\\.(metacopy|redirect)$", "-e", "text", "-d", "."));
        String file = null;
        for (String line : r.stdout.split("\n")) {
            if (line.startsWith("# file: ")) file = line.substring(8);
            else if (file != null && line.contains("overlay.")) m.merge(file, line.substring(line.indexOf("overlay.")), (a, c) -> a + " " + c);
        }
        return m;
    }

    static void assertSameMarks(Pair p, boolean expectMetacopy) {
        assertTrue(NativeSupport.onPath("getfattr"), "needs getfattr (apt-get install attr)");
        TreeMap<String, String> k = marks(p.refLayers.upper), s = marks(p.tgtLayers.upper);
        if (expectMetacopy) assertTrue(k.toString().contains("metacopy"), "the kernel made no metadata-only copy: the scenario tests nothing");
        assertEquals(k, s, "overlay.metacopy/redirect in the uppers: kernel vs " + p.tgtLabel());
    }
}
