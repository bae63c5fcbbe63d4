package dev.strata.nativetest;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Data-only lower layers and verity (overlayfs.rst "Data-only lower layers", "fs-verity support") against
 * the kernel overlay mounted with the same options: layers as composefs builds them, a metadata layer of
 * sparse files carrying overlay.metacopy and an absolute overlay.redirect, and two data layers of objects,
 * mounted as {@code lowerdir=meta::data1::data2} (and with the new mount API's lowerdir+=/datadir+=).
 * Listings, stat (st_blocks estimated from the size until the first open, as the kernel does), content,
 * the errors of missing, non-regular or symlinked data, the refusals without metacopy=on, the copy-up of
 * such files into an upper (metadata only and with data) and the upper each side wrote, read by the other.
 * This kernel has no fs-verity (CONFIG_FS_VERITY unset; see README): verity=on/require are compared where
 * it answers (no digest on a data file: EIO; require without a digest: EIO; copy-ups record none).
 */
@Tag("native")
class DataOnlyTest {
    private Pair pair;

    @AfterEach void tearDown() { if (pair != null) pair.close(); }

    /** A digest in overlay.metacopy as composefs writes it: struct ovl_metacopy, sha256 (algorithm 1). */
    static byte[] metacopyWithDigest(int version) {
        byte[] v = new byte[36];
        v[0] = (byte) version;
        v[1] = 36;
        v[3] = 1;
        for (int i = 4; i < v.length; i++) v[i] = (byte) (i * 7);
        return v;
    }

    /** A metadata-only copy in the metadata layer: a sparse file of the object's size, marked, redirected. */
    static void meta(Tree t, String rel, long size, int mode, String redirect, byte[] metacopy) {
        t.sparse(rel, size, new long[0], new byte[0]);
        Tree.check(dev.strata.posix.Posix.fchmodat(dev.strata.posix.Posix.AT_FDCWD, t.abs(rel), mode), "chmod " + rel);
        t.rawXattr(rel, "trusted.overlay.metacopy", metacopy);
        if (redirect != null) t.xattr(rel, "trusted.overlay.redirect", redirect);
    }

    /** root/l0 (metadata), root/d1 and root/d2 (data-only), upper, work, mnt. */
    static LayerSet composefs(Path root) {
        LayerSet s = LayerSet.create(root, 1);
        List<Path> data = List.of(root.resolve("d1"), root.resolve("d2"));
        Tree d1 = new Tree(data.get(0)), d2 = new Tree(data.get(1));
        try {
            for (Path d : data) Files.createDirectories(d);
        } catch (java.io.IOException e) {
            throw new IllegalStateException(e);
        }
        byte[] tool = LayerBuilder.bytes(11, 150_000);
        d1.file("ab/0123tool", tool, 0644, 0, 0);
        d1.file("cd/motd", "hello world\n");
        d1.file("00/both", "first data layer\n");
        d2.file("00/both", "second data layer\n");
        d2.file("ef/two", "only in the second data layer\n");
        d2.sparse("11/sparse", 3 << 20, new long[]{1 << 20}, LayerBuilder.bytes(12, 5000));
        d1.dir("dirobj", 0755);
        d1.symlink("lnk", "cd");
        d2.symlink("lnk", "ef"); // in both: the error is the last data layer's (ELOOP), as on the kernel
        // names of the data layers never show in the merged tree
        d1.file("visible", "a data layer's own name\n");
        d1.file("etc/secret", "a data layer's own path\n");
        Tree m = new Tree(s.lowers.get(0));
        byte[] empty = new byte[0];
        m.dir("bin", 0755).dir("etc", 0755).dir("usr", 0755).dir("usr/share", 0755).dir("usr/share/doc", 0755);
        meta(m, "bin/tool", tool.length, 0755, "/ab/0123tool", empty);
        m.file("etc/hosts", "127.0.0.1 localhost\n");
        meta(m, "etc/motd", 12, 0644, "/cd/motd", empty);
        meta(m, "usr/share/doc/two", 30, 0444, "/ef/two", empty);
        meta(m, "both", 17, 0644, "/00/both", empty);
        meta(m, "sparse.img", 3 << 20, 0600, "/11/sparse", empty);
        meta(m, "dup1", 12, 0644, "/cd/motd", empty);
        meta(m, "dup2", 12, 0640, "/cd/motd", empty);
        m.hardlink("dup1", "dup1-link"); // one metadata-only inode with two names (index=on keeps it one)
        meta(m, "missing", 9, 0644, "/99/none", empty);
        meta(m, "isdir", 9, 0644, "/dirobj", empty);
        meta(m, "viasym", 12, 0644, "/lnk/motd", empty);
        meta(m, "digest", 12, 0644, "/cd/motd", metacopyWithDigest(0));
        meta(m, "badversion", 12, 0644, "/cd/motd", metacopyWithDigest(1));
        m.fixTimes();
        d1.fixTimes();
        d2.fixTimes();
        return s.withData(data);
    }

    /** Files whose reads the scripts compare (each with its own outcome). */
    static final String FILES = "bin/tool etc/hosts etc/motd usr/share/doc/two both sparse.img dup1 dup2 missing isdir viasym digest badversion";

    /** What a script shows of the tree: names, then stat before any open, reads, stat after. */
    static final String LOOK = "ls -A . etc bin usr/share/doc | cat"
            + " && stat -c '%n %s %b %a %h' " + FILES
            + " && for f in " + FILES + "; do md5sum $f 2>&1 || true; done"
            + " && stat -c '%n %s %b' " + FILES
            + " && for f in visible etc/secret ab ab/0123tool 11; do stat -c %n $f 2>&1 || true; done";

    private Both both(String name, String features, java.util.function.Function<Path, LayerSet> layers) {
        NativeSupport.assumeNativeEnvironment();
        pair = new Pair("do-" + name, Mounter.kernel(features), RedirectDirTest.target(features), layers);
        pair.keepOnClose();
        return new Both(name, pair);
    }

    private static LayerSet readOnly(Path root) { return composefs(root).readOnly("ro"); }

    /** Read-only mounts with each mode that matters: what a composefs image shows, byte for byte as the kernel. */
    @Test void readOnlyAsTheKernel() {
        for (String f : new String[]{"", "metacopy=on", "redirect_dir=nofollow", "verity=on", "verity=require"}) {
            Both b = both("ro-" + (f.isEmpty() ? "default" : f.replace('=', '-')), f, DataOnlyTest::readOnly);
            b.shOk(LOOK);
            // the first data layer wins; the second is asked where the first has nothing (verity=require: EIO, no digests)
            Both.Shell r = b.sh("cat both usr/share/doc/two");
            if (!f.equals("verity=require")) {
                assertEquals("first data layer\nonly in the second data layer\n", r.ref.stdout, "the kernel read other data: a wrong scenario");
            } else {
                assertTrue(r.ref.stderr.contains("both: Input/output error"), r.ref.stderr);
            }
            b.trees();
            pair.close();
            pair = null;
        }
    }

    /** The kernel's errors where they say something: read the outputs of both for the expected errno names. */
    @Test void errorsAreTheKernels() {
        Both b = both("errors", "verity=on", DataOnlyTest::readOnly);
        Both.Shell r = b.sh("for f in missing isdir viasym digest badversion etc/motd; do cat $f >/dev/null 2>&1; echo \"$f $?\"; done;"
                + " cat missing isdir viasym digest 2>&1 >/dev/null | sed 's/^cat: //'; true");
        String out = r.ref.stdout;
        assertTrue(out.contains("missing: No such file or directory"), out);
        assertTrue(out.contains("isdir: No such file or directory"), out);
        assertTrue(out.contains("viasym: Too many levels of symbolic links"), out);
        assertTrue(out.contains("digest: Input/output error"), out); // no fs-verity on this kernel's data files
        assertTrue(out.contains("etc/motd 0"), out);
        b.trees();
    }

    /**
     * The same layers given as lowerdir+= and datadir+= (Linux 6.8's new mount API spellings, which
     * mount(2) takes too): the same tree as lowerdir=meta::d1::d2.
     */
    @Test void lowerdirPlusAndDatadirPlus() {
        NativeSupport.assumeNativeEnvironment();
        Path dir = NativeSupport.newTempDir("do-plus");
        try {
            List<Snapshot> shots = new ArrayList<>();
            for (boolean kernel : new boolean[]{true, false}) {
                LayerSet s = composefs(dir.resolve(kernel ? "k" : "s"));
                String opts = "lowerdir+=" + s.lowers.get(0) + ",datadir+=" + s.data.get(0) + ",datadir+=" + s.data.get(1);
                try (Mount m = mountRaw(kernel, s, opts)) {
                    shots.add(Snapshot.take(kernel ? "kernel" : "strata", m.path()));
                }
            }
            List<String> d = Snapshot.diff(shots.get(0), shots.get(1), Snapshot.Options.fromProperties(), 40);
            if (!d.isEmpty()) fail("lowerdir+=,datadir+=: kernel vs strata:\n  " + String.join("\n  ", d));
        } finally {
            NativeSupport.deleteTree(dir);
        }
    }

    /** A mount of layers with exactly these options (no lowerdir= of the layer set). */
    private static Mount mountRaw(boolean kernel, LayerSet s, String opts) {
        String mnt = s.mnt.toString();
        NativeSupport.Proc.Result r;
        List<List<String>> unmount;
        if (kernel) {
            unmount = List.of(List.of("umount", mnt), List.of("umount", "-l", mnt));
            r = NativeSupport.Proc.run(Path.of("/"), 60, "mount", "-t", "overlay", "overlay", "-o", opts, mnt);
        } else {
            String launcher = NativeSupport.projectHome().resolve("bin/strata").toString();
            unmount = List.of(List.of(launcher, "umount", mnt), List.of("umount", "-l", mnt));
            r = NativeSupport.Proc.run(NativeSupport.projectHome(), 120, launcher, "mount", "-o", opts, mnt);
        }
        if (r.exit != 0 || !Mounts.isMounted(s.mnt)) {
            for (List<String> c : unmount) if (Mounts.isMounted(s.mnt)) NativeSupport.Proc.run(Path.of("/"), 30, null, c);
            fail((kernel ? "kernel" : "strata") + " mount -o " + opts + " failed: " + r);
        }
        return new Mount(kernel ? "kernel" : "strata", s, unmount, null);
    }

    /**
     * With an upper: metadata changes of files whose data is in a data-only layer copy up their metadata
     * only (metacopy=on; the upper's overlay.metacopy and redirects as the kernel's), or everything
     * (metacopy=off); writes bring the data up; a remount reads the uppers; each side's upper is then
     * read by the other implementation.
     */
    @Test void copyUpIntoAnUpper() {
        for (String f : new String[]{"metacopy=on", "", "metacopy=on,verity=on", "metacopy=on,index=on"}) {
            Both b = both("up-" + (f.isEmpty() ? "default" : f.replace('=', '-').replace(',', '_')), f, DataOnlyTest::composefs);
            // st_blocks: with index=on the copy-ups of files with one name copy their data on both sides,
            // and strata's own origin xattr takes an ext4 block of its own there (README: strata records
            // its own origin), so %b is compared without index=on only
            String blocks = f.contains("index=on") ? "" : " %b";
            b.shOk("chmod 700 bin/tool && chown 7:8 etc/motd && touch -m -d 2003-04-05 both && setfattr -n user.x -v 1 dup1"
                    + " && stat -c '%n %s" + blocks + " %a %u %g %Y' bin/tool etc/motd both dup1 && md5sum bin/tool etc/motd both dup1 dup2");
            // a metadata change of a copy without data, or whose data is a symlink: the copy-up's lookup fails first
            b.sh("chmod 600 missing; chmod 600 viasym; touch isdir; ls -A | cat");
            if (f.contains("metacopy=on")) {
                b.shOk("mv bin/tool bin/tool2 && ln etc/motd motd-link && md5sum bin/tool2 motd-link");
                MetacopyTest.assertSameMarks(pair, true);
            }
            b.remount();
            b.shOk("stat -c '%n %s" + blocks + " %a %h' etc/motd both dup1 dup1-link && md5sum etc/motd both dup1 dup1-link dup2 sparse.img");
            b.shOk("echo appended >> etc/motd && truncate -s 5 both && echo via-link >> dup1-link && cat etc/motd both dup1 dup2"
                    + " && stat -c '%n %s" + blocks + " %h' etc/motd both dup1 dup1-link");
            b.finish();
            MetacopyTest.assertSameMarks(pair, false);
            RedirectDirTest.crossRead(pair, f);
            pair.close();
            pair = null;
        }
    }

    /**
     * verity=require: a metadata-only copy without a digest is refused before its copy-up (EIO, nothing in
     * the upper); a metadata change of a plain lower file copies its data up (no fs-verity digest to
     * record here), as the kernel's ovl_need_meta_copy_up falls back to a full copy.
     */
    @Test void verityRequireRefusesCopyUp() {
        Both b = both("require", "metacopy=on,verity=require", DataOnlyTest::composefs);
        Both.Shell r = b.sh("chmod 600 etc/motd; echo $?; cat etc/hosts; chmod 600 etc/hosts; echo $?; ls -A | cat");
        assertTrue(r.ref.stderr.contains("Input/output error"), r.ref.stderr);
        b.finish();
        assertFalse(Files.exists(pair.tgtLayers.upper.resolve("etc/motd")), "a refused copy-up left the file in the upper");
        assertTrue(Files.exists(pair.tgtLayers.upper.resolve("etc/hosts")), "etc/hosts was not copied up");
        assertTrue(MetacopyTest.marks(pair.tgtLayers.upper).isEmpty(), "a metadata-only copy without a digest under verity=require");
    }

    /** Bad option combinations: refused as the kernel refuses them, with one line and exit != 0. */
    @Test void optionRulesAsTheKernel() {
        NativeSupport.assumeNativeEnvironment();
        Path dir = NativeSupport.newTempDir("do-opts");
        try {
            LayerSet s = composefs(dir);
            String a = s.lowers.get(0).toString(), d = s.data.get(0).toString();
            String up = ",upperdir=" + s.upper + ",workdir=" + s.work;
            String[][] bad = {
                    {"lowerdir=" + a + ":::" + d, "only single ':' or double '::' sequences of unescaped colons in lowerdir mount option allowed"},
                    {"lowerdir=" + a + "::", "unescaped trailing colons in lowerdir mount option"},
                    {"lowerdir=::" + d + up, "cannot append lower layer"},
                    {"lowerdir=" + a + "::" + d + ":" + a, "regular lower layers cannot follow data lower layers"},
                    {"lowerdir=" + a + ",datadir+=" + d, "lowerdir+ and datadir+ cannot follow lowerdir"},
                    {"datadir+=" + d + ",lowerdir+=" + a, "regular lower layers cannot follow data layers"},
                    {"datadir+=" + d + up, "at least one non-data lowerdir is required"},
                    {"lowerdir=" + a + "::" + d + ",verity=yes", "verity must be off, on or require"}};
            String launcher = NativeSupport.projectHome().resolve("bin/strata").toString();
            for (String[] c : bad) {
                NativeSupport.Proc.Result k = NativeSupport.Proc.run(Path.of("/"), 60, "mount", "-t", "overlay", "overlay", "-o", c[0], s.mnt.toString());
                if (Mounts.isMounted(s.mnt)) NativeSupport.Proc.run(Path.of("/"), 30, "umount", s.mnt.toString());
                assertNotEquals(0, k.exit, "the kernel mounted -o " + c[0]);
                NativeSupport.Proc.Result t = NativeSupport.Proc.run(NativeSupport.projectHome(), 60, launcher, "mount", "-o", c[0], s.mnt.toString());
                if (Mounts.isMounted(s.mnt)) NativeSupport.Proc.run(Path.of("/"), 30, launcher, "umount", s.mnt.toString());
                assertNotEquals(0, t.exit, "strata mounted -o " + c[0]);
                assertEquals("strata: " + c[1], t.stderr.strip(), "-o " + c[0]);
            }
            // and what the kernel takes, strata takes: verity without metacopy, with userxattr; data layers without metacopy
            for (String ok : new String[]{"lowerdir=" + a + "::" + d + ",verity=on,metacopy=off", "lowerdir=" + a + "::" + d + ",verity=require,userxattr",
                    "lowerdir+=" + a + ",datadir+=" + d + up}) {
                for (boolean kernel : new boolean[]{true, false}) {
                    try (Mount m = mountRaw(kernel, s, ok)) {
                        assertTrue(Mounts.isMounted(m.path()));
                    }
                }
            }
        } finally {
            NativeSupport.deleteTree(dir);
        }
    }
}
