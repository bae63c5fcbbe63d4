package dev.strata.nativetest;

import dev.strata.posix.Errno;
import dev.strata.posix.Posix;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * redirect_dir (overlayfs.rst "Redirect dir"), against the kernel overlay mounted with the same
 * option: renames of lower, merged, populated, empty, already moved and renamed-back directories, in
 * the same parent (a relative redirect) and to another (absolute), changes inside them, rmdir, and
 * RENAME_EXCHANGE, as unionmount-testsuite's rename-dir tests do. Each step must agree, and so must
 * the trees, with a remount in the middle (lookups from the layers, not from a cache). The uppers must
 * carry the same overlay.redirect values at the same paths (the kernel's on-disk format), and each
 * upper must read the same on the other implementation (redirect_dir=on, and the default, which
 * follows); with redirect_dir=nofollow both refuse a redirected directory with EPERM.
 */
@Tag("native")
class RedirectDirTest {
    static final String ON = "redirect_dir=on";
    private Pair pair;

    @AfterEach void tearDown() { if (pair != null) pair.close(); }

    /** The implementation under test with the given features (the kernel too when it is the target). */
    static Mounter target(String features) {
        Mounter t = Mounter.underTest();
        return t instanceof Mounter.Strata ? Mounter.strata(features) : t.name().equals("kernel") ? Mounter.kernel(features) : t;
    }

    private Both both(String name) {
        NativeSupport.assumeNativeEnvironment();
        pair = new Pair("rd-" + name, Mounter.kernel(ON), target(ON), LayerBuilder::standard);
        pair.keepOnClose();
        return new Both(name, pair);
    }

    @Test void renamesOfLowerAndMergedDirectories() {
        Both b = both("renames");
        b.expect(Op.rename("deldir", "deldir2", 0), 0);                  // merged (two lowers), same parent: relative
        b.expect(Op.rename("top", "merged/top", 0), 0);                  // lower only, to another parent: absolute
        b.expect(Op.rename("etc/conf.d", "conf.d", 0), 0);               // merged over three layers, up one level
        b.expect(Op.rename("merged/sub", "merged/sub2", 0), 0);          // relative, then moved on: absolute
        b.expect(Op.rename("merged/sub2", "sub3", 0), 0);
        b.expect(Op.rename("deldir2", "deldir", 0), 0);                  // renamed back
        b.expect(Op.rename("merged/top/a", "merged/top/a2", 0), 0);      // inside a moved directory
        b.expect(Op.mkdir("newdir", 0755), 0);
        b.expect(Op.rename("merged/top/a2/b", "newdir/b", 0), 0);        // out of two redirected parents
        b.expect(Op.rename("opq", "opq2", 0), 0);                        // opaque in the middle layer
        b.expect(Op.rename(LayerBuilder.NON_UTF8_DIR, "latin", 0), 0);
        b.expect(Op.rename("shared", "newdir/shared", 0), 0);
        b.expect(Op.mkdir("empty", 0755), 0);
        b.expect(Op.rename("private", "empty", 0), 0);                   // over an empty pure-upper directory
        b.expect(Op.rename("newdir/shared", "etc", 0), Errno.ENOTEMPTY); // over a populated merged one
        b.same(Op.rename("usr", "newdir", Posix.RENAME_EXCHANGE));      // two directories trade places
        b.same(Op.rename("data", "opq2", Posix.RENAME_NOREPLACE));
        b.shOk("find . -path ./data -prune -o -print | LC_ALL=C sort && cat usr/b/c/deep.txt deldir/sub/deeper/c conf.d/a.conf conf.d/b.conf conf.d/c.conf");
        b.remount();
        b.shOk("find . -path ./data -prune -o -print | LC_ALL=C sort && stat -c '%n %A %h %U %G' deldir conf.d sub3 merged/top opq2 deldir/* merged/top/*");
        // changes inside redirected directories: copy-up, whiteouts, new names, a nested rename
        b.shOk("echo more >> deldir/sub/b && rm deldir/a && touch deldir/new && mkdir deldir/sub/deeper/x"
                + " && echo c >> conf.d/c.conf && rm conf.d/a.conf && mv conf.d/b.conf conf.d/b2.conf"
                + " && mv deldir/sub deldir/sub-moved && mv deldir/sub-moved sub-out && stat -c '%n %A %h' sub-out sub-out/*"
                + " && cat sub-out/b && ls -A deldir conf.d sub-out sub-out/deeper | cat");
        b.expect(Op.rename("sub-out", "deldir/sub", 0), 0);              // back where it came from
        b.shOk("rm -r sub3 && rmdir merged/top/a2/h2 2>&1; rm -r merged/top && ls -A merged opq2 | cat");
        b.expect(Op.rmdir("latin"), Errno.ENOTEMPTY);
        b.shOk("mkdir deldir2 && touch deldir2/fresh && ls -A deldir2 deldir | cat");   // the old name is free again
        b.remount();
        b.shOk("find . -path ./data -prune -o -print | LC_ALL=C sort && cat deldir/sub/b");
        b.finish();
        assertSameRedirects(pair);
        crossRead(pair, ON);
        crossRead(pair, "");   // the default follows redirects (as the kernel's redirect_dir=off here)
    }

    /** mv of a merged directory is a rename now (one renameat, no copy), and the inode number stays. */
    /**
     * A lower or merged directory renamed over a populated pure upper directory: the kernel copies the
     * source (and its parents) up and sets its redirect before the upper's rename answers ENOTEMPTY, and
     * the upper's file system touches the old parent for the failed RENAME_WHITEOUT (ext4); over a merged
     * or copied-up directory the emptiness check comes first and nothing changes. Seeds 1006-1008 with
     * redirect_dir=on,index=on,metacopy=on (ops #682, #1013, #814) found strata answering first.
     */
    @Test void failedRenameOverAPopulatedUpperDirectory() {
        Both b = both("notempty");
        b.shOk(ScenarioTest.CHANGED_BY + "mkdir u && touch u/x && mkdir etc/u2 && touch etc/u2/y && chmod 700 etc/conf.d && ls top/a >/dev/null;"
                + " NAMES='. deldir u top top/a top/a/b etc etc/u2 etc/conf.d merged merged/sub';"
                + " d ren deldir u; d ren top/a/b etc/u2; d ren merged/sub etc/conf.d; d ren top/a etc/conf.d; true");
        b.remount();
        b.shOk("ls -A . deldir top/a u etc/u2 | cat");
        b.finish();
    }

    /**
     * The same where the source was copied up before and the target is a directory made over the
     * whiteout of a moved one (pure upper too): the redirect's ctime on the source and the old parent's
     * times from the failed RENAME_WHITEOUT show at once through the mount, though the rename failed
     * (the kernel transport drops what it cached of the nodes a failed rename involves; seed 1008, op #814).
     */
    @Test void failedRenameOfACopiedUpDirectoryShowsItsSideEffects() {
        Both b = both("notempty2");
        b.shOk(ScenarioTest.CHANGED_BY + "mv etc/conf.d d1 && mkdir etc/conf.d && touch etc/conf.d/f1 && chmod 640 top/a/b && ls top/a >/dev/null;"
                + " NAMES='top/a top/a/b etc/conf.d'; d ren top/a/b etc/conf.d; true");
        b.finish();
    }

    /**
     * With redirect_dir=on (or index, metacopy, xino=on) the kernel makes a directory created in a merged
     * one opaque at once (ovl_create_upper, unless ovl_allow_offline_changes): a later move of it into a
     * merged directory then has no opaque xattr left to set, so a rename of it that fails with ENOTEMPTY
     * leaves its ctime alone. Seed 1016 with redirect_dir=on,index=on,metacopy=on (op #1991) found
     * strata marking it only then, at the failed rename.
     */
    @Test void directoryMadeInAMergedOneIsOpaqueAtOnce() {
        Both b = both("mkdir-opaque");
        b.shOk(ScenarioTest.CHANGED_BY + "mkdir deldir/sub/nd u && touch u/x && mkdir top/a/b/nd2 && mkdir u/nd3;"
                + " NAMES='. deldir/sub deldir/sub/nd u top/a/b/nd2';"
                + " d ren deldir/sub/nd u; d ren top/a/b/nd2 u; ls -A deldir/sub top/a/b | cat");
        b.finish();
        // the xattr itself, in the uppers: on the two made in merged directories, not on the one in u
        for (String rel : List.of("deldir/sub/nd", "top/a/b/nd2", "u/nd3", "u")) {
            assertEquals(opaque(pair.refLayers.upper.resolve(rel)), opaque(pair.tgtLayers.upper.resolve(rel)), "overlay.opaque on upper " + rel);
        }
        assertEquals("y", opaque(pair.refLayers.upper.resolve("deldir/sub/nd")), "the kernel did not make it opaque: the scenario tests nothing");
    }

    private static String opaque(Path p) {
        for (String x : List.of("trusted.overlay.opaque", "user.overlay.opaque")) {
            byte[] v = Posix.lgetxattr(p.toString(), x);
            if (v != null) return new String(v, java.nio.charset.StandardCharsets.ISO_8859_1);
        }
        return null;
    }

    @Test void mvOfMergedDirectoryIsRename() {
        Both b = both("mv");
        b.shOk("a=$(stat -c %i deldir) && mv deldir moved && b=$(stat -c %i moved) && [ \"$a\" = \"$b\" ] && echo kept $((a == b))"
                + " && ls -A moved | cat");
        if (pair.tgtMounter instanceof Mounter.Strata) {
            // strace: mv made one rename and no mkdir (no copy fallback)
            assertTrue(NativeSupport.onPath("strace"), "needs strace");
            NativeSupport.Proc.Result r = NativeSupport.Proc.run(pair.tgt.path(), 60, null,
                    List.of("strace", "-f", "-e", "trace=rename,renameat,renameat2,mkdir,mkdirat", "mv", "etc", "etc2"));
            assertEquals(0, r.exit, r.toString());
            assertTrue(r.stderr.contains("rename") && !r.stderr.contains("mkdir"), "mv should rename, not copy: " + r.stderr);
            NativeSupport.Proc.run(pair.ref.path(), 60, null, List.of("mv", "etc", "etc2"));
        }
        b.finish();
        assertSameRedirects(pair);
    }

    /** Uppers with redirects mounted with redirect_dir=nofollow: a redirected directory is EPERM on both. */
    @Test void nofollowRefusesRedirects() {
        Both b = both("nofollow");
        b.expect(Op.rename("deldir", "deldir2", 0), 0);
        b.expect(Op.rename("top", "merged/top", 0), 0);
        b.finish();
        String nf = "redirect_dir=nofollow";
        List<String> out = new ArrayList<>();
        for (Object[] side : new Object[][]{{Mounter.kernel(nf), pair.refLayers}, {target(nf), pair.tgtLayers}}) {
            try (Mount m = ((Mounter) side[0]).mount((LayerSet) side[1]); OpExecutor ex = new OpExecutor(m.abs(""))) {
                StringBuilder s = new StringBuilder();
                for (Op op : new Op[]{Op.stat("deldir2"), Op.stat("merged/top"), Op.stat("merged/top/h1"), Op.stat("etc"), Op.stat("merged/from0")}) {
                    s.append(op).append(" -> ").append(ex.run(op).errno).append('\n');
                }
                // the listings of their parents leave out what cannot be looked up (ovl_cache_update)
                NativeSupport.Proc.Result ls = Both.run(m, "ls -A . merged | cat");
                s.append(ls.exit).append(' ').append(ls.stdout).append(ls.stderr.replace(m.path().toString(), "$MNT"));
                out.add(s.toString());
            }
        }
        assertEquals(out.get(0), out.get(1), "nofollow: kernel vs target");
        assertTrue(out.get(0).contains("-> " + Errno.EPERM), "the kernel refuses redirects with nofollow: " + out.get(0));
    }

    /**
     * userxattr means redirect_dir=nofollow (the kernel's ovl_fs_params_verify). The uppers of a
     * redirect_dir=on run, their trusted.overlay.* xattrs moved to user.overlay.* (what an unprivileged
     * mount reads), mounted with userxattr alone: a redirected directory is EPERM on both and left out of
     * its parent's listing. redirect_dir=on with userxattr is refused by both (strata with the kernel's
     * message), redirect_dir=nofollow with it is not.
     */
    @Test void userxattrMeansNofollow() {
        Both b = both("userxattr");
        b.expect(Op.rename("deldir", "deldir2", 0), 0);
        b.expect(Op.rename("top", "merged/top", 0), 0);
        b.finish();
        assertSameRedirects(pair);
        List<String> out = new ArrayList<>();
        for (Object[] side : new Object[][]{{Mounter.kernelDefaults(), pair.refLayers}, {target(""), pair.tgtLayers}}) {
            LayerSet ls = (LayerSet) side[1];
            toUserXattrs(ls.upper);
            for (String o : new String[]{"userxattr,redirect_dir=on", "userxattr,redirect_dir=nofollow"}) {
                LayerSet lo = ls.withFreshWorkAndMnt("o" + out.size() + o.length()).withOptions(o);
                NativeSupport.Proc.Result r = side[0] == Mounter.kernelDefaults() || ((Mounter) side[0]).name().equals("kernel")
                        ? NativeSupport.Proc.run(Path.of("/"), 60, "mount", "-t", "overlay", "overlay", "-o", lo.overlayOptions(), lo.mnt.toString())
                        : NativeSupport.Proc.run(Path.of("/"), 60, NativeSupport.projectHome().resolve("bin/strata").toString(), "mount", "-o", lo.overlayOptions(), lo.mnt.toString());
                NativeSupport.Proc.run(Path.of("/"), 60, "umount", lo.mnt.toString());
                boolean refused = o.contains("=on");
                assertEquals(refused, r.exit != 0, side[0] + " -o " + o + ": " + r);
                if (refused && !(side[0] == Mounter.kernelDefaults())) {
                    assertTrue(r.stderr.contains("conflicting options: userxattr,redirect_dir=on"), r.stderr);
                }
            }
            try (Mount m = ((Mounter) side[0]).mount(ls.withFreshWorkAndMnt("ux").withOptions("userxattr"));
                 OpExecutor ex = new OpExecutor(m.abs(""))) {
                StringBuilder sb = new StringBuilder();
                for (Op op : new Op[]{Op.stat("deldir2"), Op.stat("merged/top"), Op.stat("etc"), Op.stat("merged/from0")}) {
                    sb.append(op).append(" -> ").append(ex.run(op).errno).append('\n');
                }
                NativeSupport.Proc.Result ls2 = Both.run(m, "ls -A . merged | cat");
                sb.append(ls2.exit).append(' ').append(ls2.stdout).append(ls2.stderr.replace(m.path().toString(), "$MNT"));
                out.add(sb.toString());
            }
        }
        assertEquals(out.get(0), out.get(1), "userxattr: kernel vs target");
        assertTrue(out.get(0).contains("deldir2' -> " + Errno.EPERM) && !out.get(0).contains("\ndeldir2\n"),
                "the kernel refuses the redirect with userxattr: " + out.get(0));
    }

    /** Moves every trusted.overlay.* xattr under dir to user.overlay.* (an upper as an unprivileged mount writes it). */
    static void toUserXattrs(Path dir) {
        NativeSupport.Proc.Result r = NativeSupport.Proc.run(dir, 60, "python3", "-c", String.join("\n",
                "import os",
                "for root, dirs, files in os.walk('.'):",
                "    for n in [root] + [os.path.join(root, f) for f in dirs + files]:",
                "        for x in os.listxattr(n, follow_symlinks=False):",
                "            if x.startswith('trusted.overlay.'):",
                "                v = os.getxattr(n, x, follow_symlinks=False)",
                "                os.setxattr(n, 'user.overlay.' + x[len('trusted.overlay.'):], v, follow_symlinks=False)",
                "                os.removexattr(n, x, follow_symlinks=False)"));
        assertEquals(0, r.exit, r.toString());
    }

    /**
     * An upper the kernel wrote with redirect_dir=on, read by the target with its default options and
     * by the kernel with its pinned ones (redirect_dir=off, which follows here): the same tree.
     */
    @Test void kernelWrittenRedirectsReadWithDefaults() {
        NativeSupport.assumeNativeEnvironment();
        Path dir = NativeSupport.newTempDir("rd-read");
        try {
            LayerSet layers = LayerBuilder.standard(dir.resolve("x"));
            LowerLayers lowers = LowerLayers.snapshot(layers);
            try (Mount m = Mounter.kernel(ON).mount(layers)) {
                NativeSupport.Proc.Result r = Both.run(m, "mv deldir deldir2 && mv top merged/top && mv merged/top/a merged/top/a2"
                        + " && mv etc/conf.d conf.d && mv conf.d merged/conf && echo x >> merged/top/a2/h2 && rm merged/conf/b.conf");
                assertEquals(0, r.exit, r.toString());
            }
            Snapshot k, s;
            try (Mount m = Mounter.kernel("").mount(layers)) { k = Snapshot.take("kernel", m.path()); }
            Mounter t = target("");
            try (Mount m = t.mount(layers)) { s = Snapshot.take(t.name().equals("kernel") ? "kernel#2" : t.name(), m.path()); }
            List<String> d = Snapshot.diff(k, s, Snapshot.Options.fromProperties(), 40);
            if (!d.isEmpty()) fail("an upper with redirects, default options:\n  " + String.join("\n  ", d));
            lowers.assertUnchanged("[redirect] read with defaults");
        } finally {
            NativeSupport.deleteTree(dir);
        }
    }

    /** Without redirect_dir=on (the default) a lower directory rename stays EXDEV, as before. */
    @Test void defaultStillRefusesDirectoryRenames() {
        NativeSupport.assumeNativeEnvironment();
        pair = new Pair("rd-default", Mounter.kernel(""), target(""), LayerBuilder::standard);
        Both b = new Both("default", pair);
        b.expect(Op.rename("deldir", "deldir2", 0), Errno.EXDEV);
        b.expect(Op.rename("top", "merged/top", 0), Errno.EXDEV);
        b.finish();
    }

    /** overlay.redirect of every directory of both uppers (trusted. or user.), by path. */
    static TreeMap<String, String> redirects(Path upper) {
        TreeMap<String, String> m = new TreeMap<>();
        NativeSupport.Proc.Result r = NativeSupport.Proc.run(upper, 60, null,
                List.of("getfattr", "-R", "-h", "--absolute-names", "-m", "overlay\\.redirect$", "-e", "text", "-d", "."));
        String file = null;
        for (String line : r.stdout.split("\n")) {
            if (line.startsWith("# file: ")) file = line.substring(8);
            else if (file != null && line.contains("overlay.redirect=")) m.put(file, line.substring(line.indexOf('=') + 1));
        }
        return m;
    }

    static void assertSameRedirects(Pair p) {
        assertTrue(NativeSupport.onPath("getfattr"), "needs getfattr (apt-get install attr)");
        TreeMap<String, String> k = redirects(p.refLayers.upper), s = redirects(p.tgtLayers.upper);
        assertTrue(!k.isEmpty(), "the kernel wrote no redirect: the scenario tests nothing");
        assertEquals(k, s, "overlay.redirect in the uppers: kernel vs " + p.tgtLabel());
    }

    /** Each upper read by the other implementation (with features) shows what its writer showed. */
    static void crossRead(Pair p, String features) {
        Snapshot.Options o = Snapshot.Options.fromProperties();
        Snapshot kOwn, sOwn, kReadsS, sReadsK;
        try (Mount m = Mounter.kernel(features).mount(p.refLayers)) { kOwn = Snapshot.take("kernel", m.path()); }
        try (Mount m = target(features).mount(p.refLayers)) { sReadsK = Snapshot.take("target reading the kernel's upper", m.path()); }
        try (Mount m = target(features).mount(p.tgtLayers)) { sOwn = Snapshot.take("target", m.path()); }
        try (Mount m = Mounter.kernel(features).mount(p.tgtLayers)) { kReadsS = Snapshot.take("kernel reading the target's upper", m.path()); }
        List<String> d = Snapshot.diff(kOwn, sReadsK, o, 40);
        if (!d.isEmpty()) fail("[" + features + "] the target reads the kernel's upper differently:\n  " + String.join("\n  ", d));
        d = Snapshot.diff(kReadsS, sOwn, o, 40);
        if (!d.isEmpty()) fail("[" + features + "] the kernel reads the target's upper differently:\n  " + String.join("\n  ", d));
        p.refLowers.assertUnchanged("cross-read " + features);
        p.tgtLowers.assertUnchanged("cross-read " + features);
        assertTrue(Files.isDirectory(p.tgtLayers.upper));
    }
}
