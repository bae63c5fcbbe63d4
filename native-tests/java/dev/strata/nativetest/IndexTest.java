package dev.strata.nativetest;

import dev.strata.posix.Errno;
import dev.strata.posix.Posix;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * index=on (overlayfs.rst "Index"), against the kernel overlay mounted with the same option: lower hard
 * links (data/hl1, data/hl2, data/sub/hl3 in two directories; top/h1, top/a/h2) written through one
 * name, chmod'ed through another, linked, unlinked and renamed (also over each other), with remounts:
 * every step's output (content, st_nlink, mode, whether the names are one inode and keep the lower
 * inode number) and the trees must agree. Then the workdir's index entries and the overlay xattrs as
 * the kernel leaves them (overlay.nlink values, overlay.origin naming the entry, overlay.upper on the
 * index directory, the upper root's origin), and each upper read by the other implementation with
 * index=on. And the mount-time checks: an upper used with other lower layers, and a workdir whose index
 * belongs to another upper, are refused by both.
 */
@Tag("native")
class IndexTest {
    static final String ON = "index=on";
    private Pair pair;

    @AfterEach void tearDown() { if (pair != null) pair.close(); }

    private Both both(String name) { return both(name, ON); }

    /** Both sides on the standard layers with these overlay options (the kernel's the same). */
    private Both both(String name, String options) {
        NativeSupport.assumeNativeEnvironment();
        pair = new Pair("ix-" + name, Mounter.kernel(options), RedirectDirTest.target(options), LayerBuilder::standard);
        pair.keepOnClose();
        return new Both(name, pair);
    }

    /** Prints, for names of one file: whether they are one inode, and that inode is the lower file's, then nlink/mode/size/content. */
    static final String SAME = "same() { low=$1; shift; a=$(stat -c %i \"$1\"); for f; do [ \"$(stat -c %i \"$f\")\" = \"$a\" ] || echo \"$f: another inode\"; done;"
            + " [ \"$a\" = \"$low\" ] && echo \"$# names, lower st_ino\" || echo \"$# names, st_ino changed\"; stat -c '%n %h %a %s' \"$@\"; cat \"$1\"; }; ";

    @Test void lowerHardLinksStayOneInode() {
        Both b = both("links");
        String ino = "L=$(stat -c %i data/hl1); T=$(stat -c %i top/h1); ";
        b.shOk(ino + SAME + "same $L data/hl1 data/hl2 data/sub/hl3 && same $T top/h1 top/a/h2");
        b.shOk(ino + SAME + "echo written >> data/hl2 && same $L data/hl1 data/hl2 data/sub/hl3");
        b.shOk(ino + SAME + "chmod 600 data/sub/hl3 && same $L data/sub/hl3 data/hl1 data/hl2");
        b.remount();
        b.shOk(SAME + "L=$(stat -c %i data/hl1) && same $L data/hl1 data/hl2 data/sub/hl3 && ls -li data data/sub | awk '{print $2, $3, $NF}'");
        b.shOk(SAME + "L=$(stat -c %i data/hl1) && ln data/hl1 newlink && same $L data/hl1 data/hl2 data/sub/hl3 newlink");
        b.shOk(SAME + "L=$(stat -c %i data/hl1) && rm data/hl2 && same $L data/hl1 data/sub/hl3 newlink && ls data | cat");
        b.shOk(SAME + "L=$(stat -c %i data/hl1) && mv data/sub/hl3 moved && same $L data/hl1 moved newlink");
        // a lower name never copied up, removed: the kernel indexes the file first (ovl_nlink_start)
        b.shOk(SAME + "T=$(stat -c %i top/h1) && rm top/h1 && same $T top/a/h2 && echo t >> top/a/h2 && same $T top/a/h2");
        b.remount();
        // rename of one name of a file onto another name of it does nothing; over another file drops a link
        b.shOk(SAME + "L=$(stat -c %i data/hl1) && mv -T moved newlink 2>&1; same $L data/hl1 moved newlink");
        b.shOk(SAME + "L=$(stat -c %i data/hl1) && mv -T top/a/h2 newlink && same $L data/hl1 moved && stat -c '%n %h %a' newlink && cat newlink");
        b.shOk(SAME + "L=$(stat -c %i data/hl1) && rm moved && same $L data/hl1 && rm data/hl1 && ls -A data | cat");
        b.remount();
        b.shOk("find . -path ./data -o -name 'hl*' -o -name newlink | LC_ALL=C sort | xargs -r stat -c '%n %h %a %s'");
        b.finish();
        assertSameIndex(pair);
        RedirectDirTest.crossRead(pair, ON);
    }

    /**
     * A name of a lower hard link held open for writing (so brought up through the index) and another file
     * renamed over it: fstat through the descriptor counts one link less, as the kernel's ovl_nlink_end
     * leaves overlay.nlink (seed 1011 with redirect_dir=on,index=on,metacopy=on, op #221: st_nlink 2 on
     * strata, 1 on the kernel); the same after an unlink of the held name.
     */
    @Test void aHeldNameRenamedOverOrRemovedCountsOneLinkLess() {
        heldNameRenamedOverOrRemoved(both("held"));
    }

    /**
     * Another file renamed over the second upper name of a lower hard link brought up through the index
     * (the two upper names share strata's kernel node, the names still below have nodes of their own):
     * every name left counts one link less, also those still below, whose attributes the kernel had
     * cached (seed 7260002 with redirect_dir=on,index=on,metacopy=on, op #588: st_nlink 5 on strata, 4
     * on the kernel, after a rename over a name made with linkat of a held descriptor).
     */
    @Test void anUpperNameRenamedOverLeavesEveryOtherNameOneLinkLess() {
        Both b = both("renover");
        b.shOk(SAME + "L=$(stat -c %i data/hl1) && echo w >> data/hl2 && ln data/hl2 extra && same $L data/hl1 data/hl2 data/sub/hl3 extra");
        b.shOk(SAME + "L=$(stat -c %i data/hl1) && echo o > other && mv other extra && same $L data/hl1 data/sub/hl3 data/hl2");
        b.shOk(SAME + "L=$(stat -c %i data/hl1) && ln data/hl2 extra2 && rm extra2 && same $L data/sub/hl3 data/hl1 data/hl2");
        b.finish();
        assertSameIndex(pair);
    }

    /**
     * With metacopy=on, a held name of a lower hard link renamed over (which brings the file up through
     * the index, metadata only) and then named again through its descriptor (linkat of /proc/self/fd/N):
     * the new name reads the data below through an absolute redirect to the old path, as the kernel's
     * ovl_link sets it (seed 10030004 with redirect_dir=on,index=on,metacopy=on, op #24: EIO on strata,
     * the new name had no way to its data). Also for an upper metadata-only copy chmod'ed, held, removed
     * and named again.
     */
    @Test void aMetadataOnlyCopyNamedAgainThroughItsDescriptorFindsItsData() {
        Both b = both("linkfd", "index=on,metacopy=on");
        b.expect(Op.holdOpen(0, "data/sub/hl3", Posix.O_RDONLY), 0);
        b.expect(Op.rename("deldir/a", "data/sub/hl3", 0), 0);
        b.expect(Op.fchmodHeld(0, 0700), 0);
        b.same(Op.fstatHeld(0));
        b.expect(Op.linkHeld(0, "data/.hidden"), 0);
        b.same(Op.read("data/.hidden"));
        b.same(Op.stat("data/.hidden"));
        b.expect(Op.chmod("etc/passwd", 0640), 0);                 // an upper metadata-only copy
        b.expect(Op.holdOpen(1, "etc/passwd", Posix.O_RDONLY), 0);
        b.expect(Op.unlink("etc/passwd"), 0);
        b.expect(Op.linkHeld(1, "etc/passwd2"), Errno.ENOENT);   // its last name went: nothing to link
        b.expect(Op.closeHeld(0), 0);
        b.expect(Op.closeHeld(1), 0);
        b.shOk("cat data/.hidden data/hl1 && stat -c '%n %h %a %s' data/.hidden data/hl1 data/hl2");
        b.remount();
        b.shOk("cat data/.hidden data/hl1 && stat -c '%n %h %a %s' data/.hidden data/hl1 data/hl2");
        b.finish();
    }

    /**
     * A name of a lower hard link held with O_PATH (the kernel opens nothing through strata), then renamed
     * over: the kernel overlay's names of an indexed file are one inode (ovl_get_inode hashes it by its
     * origin), which ovl_nlink_start brings up through the index and ovl_nlink_end counts one link less,
     * and which the descriptor keeps following: st_nlink as the other names go (0 after the last), their
     * chmod and writes (seed 12040004 with index=on, op #17: fstat-held st_nlink 3 on strata, 2 on the
     * kernel: strata answered from a snapshot of the lower file). Also for a name below of a file already
     * indexed through another name, and for an upper name of it.
     */
    @Test void aNameHeldWithOPathFollowsItsIndexedFileAfterItGoes() {
        heldWithOPath(both("opath"));
    }

    /** The same with metacopy=on: the index entry is a metadata-only copy. */
    @Test void aNameHeldWithOPathFollowsItsMetadataOnlyIndexedFileAfterItGoes() {
        heldWithOPath(both("opathmc", "index=on,metacopy=on"));
    }

    private void heldWithOPath(Both b) {
        int path = Posix.O_PATH | Posix.O_NOFOLLOW;
        b.expect(Op.holdOpen(0, "data/sub/hl3", path), 0);
        b.expect(Op.rename("merged/from2", "data/sub/hl3", 0), 0);
        b.same(Op.fstatHeld(0));
        b.expect(Op.unlink("data/hl2"), 0);
        b.same(Op.fstatHeld(0));
        b.expect(Op.chmod("data/hl1", 0600), 0);
        b.same(Op.fstatHeld(0));
        b.expect(Op.append("data/hl1", 4, 5), 0);
        b.same(Op.fstatHeld(0));
        b.expect(Op.holdOpen(1, "data/hl1", path), 0);
        b.expect(Op.unlink("data/hl1"), 0);
        b.same(Op.fstatHeld(0));
        b.same(Op.fstatHeld(1));
        // top/h1 indexed through top/a/h2 first (and linked again, so that its index entry stays): a name
        // below, then an upper name
        b.expect(Op.append("top/a/h2", 3, 7), 0);
        b.expect(Op.link("top/a/h2", "top/kept"), 0);
        b.expect(Op.holdOpen(0, "top/h1", path), 0);
        b.expect(Op.holdOpen(1, "top/a/h2", path), 0);
        b.expect(Op.unlink("top/h1"), 0);
        b.same(Op.fstatHeld(0));
        b.same(Op.fstatHeld(1));
        b.expect(Op.rename("merged/from1", "top/a/h2", 0), 0);
        b.same(Op.fstatHeld(0));
        b.same(Op.fstatHeld(1));
        b.expect(Op.closeHeld(0), 0);
        b.expect(Op.closeHeld(1), 0);
        b.finish();
        assertSameIndex(pair);
    }

    /** The same with metacopy=on: chmod brings a name up metadata only. */
    @Test void aHeldNameOfAMetadataOnlyCopyRenamedOverOrRemovedCountsOneLinkLess() {
        Both b = both("heldmc", "index=on,metacopy=on");
        b.expect(Op.chmod("top/a/h2", 0640), 0);
        heldNameRenamedOverOrRemoved(b);
    }

    private static void heldNameRenamedOverOrRemoved(Both b) {
        b.expect(Op.append("top/h1", 1, 3), 0);                    // both names brought up, one moved
        b.expect(Op.append("top/a/h2", 10, 9), 0);
        b.expect(Op.rename("top/a/h2", "moved-h2", 0), 0);
        b.expect(Op.holdOpen(0, "top/h1", Posix.O_RDWR), 0);
        b.expect(Op.create("other", 0644), 0);
        b.expect(Op.rename("other", "top/h1", 0), 0);
        b.same(Op.fstatHeld(0));
        b.expect(Op.holdOpen(1, "data/hl1", Posix.O_RDWR), 0);
        b.expect(Op.unlink("data/hl1"), 0);
        b.same(Op.fstatHeld(1));
        b.expect(Op.closeHeld(0), 0);
        b.expect(Op.closeHeld(1), 0);
        b.shOk("stat -c '%n %h' moved-h2 data/hl2 data/sub/hl3");
        b.finish();
    }

    /**
     * xattrs through names of a lower hard link still only below once another name brought the file up
     * through the index: the kernel's ovl_xattr_set changes the inode's upper, the index entry, without
     * linking the name up (no copy-up of its parent, no ctime from a link), and get/list read the entry;
     * XATTR_REPLACE of a missing name is ENODATA, XATTR_CREATE of a present one EEXIST, a second removal
     * ENODATA, all without a link-up; after a remount the names (looked up through the index) show the
     * entry's xattrs (seed 560466868 with redirect_dir=on,index=on,metacopy=on, op #36: a replace through
     * data/sub/hl3 linked it up on strata only). The lower file carries user.low. Before that, with no name
     * up: a removal of a missing xattr fails without a copy-up, a replace of one (ENODATA) copies the file up
     * through the index and links the name up first, as the kernel does.
     */
    @Test void xattrsThroughANameStillBelow() {
        Both b = withLowerXattr("ix-xattr", ON);
        xattrsThroughANameStillBelow(b, "truncate -s 0 data/hl1");
        b.finish();
        assertSameIndex(pair);
    }

    /** The same with metacopy=on: chmod leaves a metadata-only index entry, whose data stays below. */
    @Test void xattrsThroughANameStillBelowOfAMetadataOnlyCopy() {
        Both b = withLowerXattr("ix-xattrmc", "index=on,metacopy=on");
        xattrsThroughANameStillBelow(b, "chmod 600 data/hl1");
        // a write through a name still below brings it up, data and all
        b.shOk(SAME + "L=$(stat -c %i data/hl1) && echo more >> data/hl2 && same $L data/hl1 data/hl2 data/sub/hl3");
        b.finish();
        assertSameIndex(pair);
    }

    private Both withLowerXattr(String name, String options) {
        NativeSupport.assumeNativeEnvironment();
        pair = new Pair(name, Mounter.kernel(options), RedirectDirTest.target(options), root -> {
            LayerSet l = LayerBuilder.standard(root);
            NativeSupport.Proc.Result r = NativeSupport.Proc.run(root, 30, "setfattr", "-n", "user.low", "-v", "1",
                    l.lowers.get(2).resolve("data/hl1").toString());
            assertEquals(0, r.exit, r.toString());
            return l;
        });
        pair.keepOnClose();
        return new Both(name, pair);
    }

    /** sx PATH NAME VALUE FLAGS: setxattr(2) with flags (1 XATTR_CREATE, 2 XATTR_REPLACE), printing ok or the error. */
    static final String SX = "sx() { python3 -c 'import os, sys\n"
            + "try: os.setxattr(sys.argv[1], sys.argv[2], sys.argv[3].encode(), int(sys.argv[4]), follow_symlinks=False); print(\"ok\")\n"
            + "except OSError as e: print(sys.argv[1], os.strerror(e.errno))' \"$@\"; }; ";

    private void xattrsThroughANameStillBelow(Both b, String bringUp) {
        // x: the user.* xattrs of each name (listxattr and getxattr); t: the ctime of a name
        String x = SAME + SX + "x() { getfattr -h -d -m '^user[.]' --absolute-names \"$@\" 2>&1 | sed '/^$/d'; };"
                + " t() { stat -c %z \"$1\"; }; L=$(stat -c %i data/hl1); ";
        // before any name is up: a removal of a missing xattr fails without a copy-up, a failed replace copies up
        b.shOk(x + "setfattr -x user.none data/sub/hl3; echo \"exit $?\"; sx top/a/h2 user.none v 2; stat -c '%n %h' data/sub top/a");
        b.shOk(x + bringUp + " && same $L data/hl1 data/hl2 data/sub/hl3 && stat -c '%n %h' data/sub");
        b.shOk(x + "a=$(t data/sub/hl3); sx data/sub/hl3 user.b v 2;"
                + " [ \"$(t data/sub/hl3)\" = \"$a\" ] && echo ctime kept; stat -c '%n %h' data/sub; x data/hl1 data/sub/hl3");
        b.shOk(x + "a=$(t data/hl1); sx data/sub/hl3 user.a 1 0;"
                + " [ \"$(t data/hl1)\" = \"$a\" ] || echo ctime changed; stat -c '%n %h' data/sub; x data/hl1 data/hl2 data/sub/hl3");
        b.shOk(x + "sx data/hl2 user.a 2 1; sx data/hl2 user.b 2 2; setfattr -x user.low data/hl2; echo \"exit $?\";"
                + " setfattr -x user.low data/sub/hl3; echo \"exit $?\"; x data/hl1 data/hl2 data/sub/hl3; stat -c '%n %h' data/sub");
        b.shOk(x + "sx data/hl2 user.c 3 1; sx data/sub/hl3 user.a 4 2; x data/hl1 data/hl2 data/sub/hl3");
        b.remount();
        b.shOk(x + "x data/sub/hl3 data/hl2; setfattr -x user.c data/sub/hl3; echo \"exit $?\"; setfattr -x user.c data/hl2; echo \"exit $?\";"
                + " sx data/hl2 user.a 5 1; sx data/sub/hl3 user.d 5 2; x data/hl1; same $L data/hl1 data/hl2 data/sub/hl3; stat -c '%n %h' data data/sub");
        // file flags and truncate go through ovl_copy_up: they link the name up (its parent copied up)
        b.shOk(x + "chattr +a data/sub/hl3 && chattr -a data/sub/hl3 && stat -c '%n %h' data/sub && truncate -s 3 data/hl2"
                + " && same $L data/hl1 data/hl2 data/sub/hl3 && x data/sub/hl3");
        b.trees();
    }

    /**
     * Descriptors opened read-only on names of a lower hard link, then brought up as a metadata-only copy
     * through the index (a rename over one name, which ovl_nlink_start copies up first; a chmod of the
     * other): they keep reading the data below, still the file's, and once a write through a third name
     * brings the data up they read the upper copy, while fstat shows the upper copy throughout (seed 1041
     * with redirect_dir=on,index=on,metacopy=on, op #13: strata read zeros, the upper copy's hole; seeds
     * 1023 and 1026, fstat: the lower file's st_nlink).
     */
    @Test void heldNamesBroughtUpMetadataOnlyKeepReadingTheData() {
        Both b = both("heldread", "index=on,metacopy=on");
        b.expect(Op.holdOpen(0, "data/sub/hl3", Posix.O_RDONLY), 0);
        b.expect(Op.holdOpen(1, "data/hl2", Posix.O_RDONLY), 0);
        b.expect(Op.rename("xattr.txt", "data/sub/hl3", 0), 0);
        b.same(Op.readHeld(0));
        b.same(Op.fstatHeld(0));
        b.same(Op.readHeld(1));
        b.expect(Op.chmod("data/hl2", 0600), 0);
        b.same(Op.readHeld(0));
        b.same(Op.fstatHeld(0));
        b.same(Op.readHeld(1));
        b.expect(Op.append("data/hl1", 10, 5), 0);
        b.same(Op.readHeld(0));
        b.same(Op.readHeld(1));
        b.same(Op.fstatHeld(0));
        b.expect(Op.closeHeld(0), 0);
        b.expect(Op.closeHeld(1), 0);
        // a file of one name (not indexed) copied up metadata only, then renamed over: the descriptor reads
        // the data below and shows (and changes) the upper copy, the inode's
        b.expect(Op.holdOpen(2, "owned", Posix.O_RDONLY), 0);
        b.expect(Op.chmod("owned", 0600), 0);
        b.expect(Op.rename("shadow.txt", "owned", 0), 0);
        b.same(Op.fstatHeld(2));
        b.same(Op.readHeld(2));
        b.expect(Op.fchmodHeld(2, 0604), 0);
        b.same(Op.fstatHeld(2));
        b.expect(Op.closeHeld(2), 0);
        b.shOk("stat -c '%n %h %a %s' data/hl1 data/hl2 && cat data/hl2 | od -c | tail -2");
        b.finish();
        assertSameIndex(pair);
    }

    /** Writes and chmods through every name in turn, remounting, until each name is in the upper. */
    @Test void everyNameBroughtUp() {
        Both b = both("all");
        String s = SAME + "L=$(stat -c %i data/hl1); ";
        b.shOk(s + "echo 1 >> data/hl1 && same $L data/hl1 data/hl2 data/sub/hl3");
        b.remount();
        b.shOk(s + "touch -d 2001-01-01 data/hl2 && stat -c '%Y' data/sub/hl3 && same $L data/hl1 data/hl2 data/sub/hl3");
        b.shOk(s + "chown 1000:1000 data/sub/hl3 && stat -c '%u %g' data/hl1 && same $L data/hl1 data/hl2 data/sub/hl3");
        b.remount();
        b.shOk(s + "ln data/sub/hl3 data/sub/hl4 && rm data/hl1 data/hl2 && same $L data/sub/hl3 data/sub/hl4");
        b.shOk(SAME + "L=$(stat -c %i data/sub/hl4) && rm data/sub/hl3 && same $L data/sub/hl4 && ls -A data data/sub | cat");
        b.finish();
        assertSameIndex(pair);
        RedirectDirTest.crossRead(pair, ON);
    }

    /**
     * st_ino itself (not only which names share one) of names of an indexed file, some in the upper and
     * some showing the index entry, on the same layers: an upper and index the kernel wrote read by the
     * target, and the target's read by the kernel, give the lower file's number on both.
     */
    @Test void inodeNumbersOfEachOthersIndex() {
        NativeSupport.assumeNativeEnvironment();
        Path dir = NativeSupport.newTempDir("ix-ino");
        try {
            String look = "stat -c '%n %i %h %a %s' data/hl1 data/hl2 data/sub/hl3 top/h1 top/a/h2 && ls -i data | sort -k2";
            String change = "chmod 600 data/hl2 && echo x >> top/a/h2";
            for (boolean kernelWrites : new boolean[]{true, false}) {
                Mounter writer = kernelWrites ? Mounter.kernel(ON) : RedirectDirTest.target(ON);
                Mounter reader = kernelWrites ? RedirectDirTest.target(ON) : Mounter.kernel(ON);
                LayerSet l = LayerBuilder.standard(dir.resolve(kernelWrites ? "k" : "t"));
                String lower;
                try (Mount m = writer.mount(l)) {
                    lower = Both.run(m, look).stdout;
                    NativeSupport.Proc.Result r = Both.run(m, change);
                    assertEquals(0, r.exit, r.toString());
                }
                String own, other;
                try (Mount m = writer.mount(l)) { own = Both.run(m, look).stdout; }
                try (Mount m = reader.mount(l)) { other = Both.run(m, look).stdout; }
                String what = kernelWrites ? "the target reading the kernel's index" : "the kernel reading the target's index";
                assertEquals(own, other, what);
                // the numbers are the lower files' (the mode changed)
                assertEquals(lower.replaceAll(" 644 ", " X ").replaceAll(" 600 ", " X ").replaceAll(" [0-9]+\n", "\n"),
                        own.replaceAll(" 644 ", " X ").replaceAll(" 600 ", " X ").replaceAll(" [0-9]+\n", "\n"), what + ": st_ino kept");
            }
        } finally {
            NativeSupport.deleteTree(dir);
        }
    }

    /**
     * A lower file of 2 MiB with two names (large copy-ups move their data outside the engine's lock):
     * written through one name, which is then removed; the other, which shows the index entry (no upper
     * name left but the entry's own), opened for writing.
     */
    @Test void largeLinkedFile() {
        NativeSupport.assumeNativeEnvironment();
        pair = new Pair("ix-large", Mounter.kernel(ON), RedirectDirTest.target(ON), root -> {
            LayerSet l = LayerBuilder.standard(root);
            Path big = l.lowers.get(0).resolve("big1");
            try {
                Files.write(big, LayerBuilder.bytes(7, 2 << 20));
                Files.createLink(l.lowers.get(0).resolve("big2"), big);
            } catch (java.io.IOException e) {
                throw new IllegalStateException(e);
            }
            return l;
        });
        pair.keepOnClose();
        Both b = new Both("large", pair);
        String s = SAME + "L=$(stat -c %i big1); ";
        b.shOk(s + "echo one >> big1 && same $L big1 big2 | sed -n 1,3p && sha256sum big1 big2");
        // the only upper name goes: the other name shows an index entry that is no name's in the upper
        b.shOk(SAME + "L=$(stat -c %i big2) && rm big1 && echo three >> big2 && same $L big2 | sed -n 1,2p && sha256sum big2");
        b.remount();
        b.shOk(SAME + "L=$(stat -c %i big2) && same $L big2 | sed -n 1,2p && sha256sum big2");
        b.finish();
        assertSameIndex(pair);
    }

    /**
     * The index entries (type, mode, link count, overlay.nlink), which upper names carry overlay.nlink and
     * an overlay.origin naming an index entry that is their inode, overlay.upper on the index directory
     * and overlay.origin on the upper root: the same on both sides (names and handles hold inode numbers,
     * which differ between the two copies of the layers, so the handles are compared by their length).
     * Temporaries ({@code #N}: the kernel keeps its shared whiteout in the index directory, which is its
     * work directory with index=on) are left out; the next mount of either removes them.
     */
    static void assertSameIndex(Pair p) {
        assertTrue(NativeSupport.onPath("getfattr"), "needs getfattr (apt-get install attr)");
        String k = describe(p.refLayers), s = describe(p.tgtLayers);
        assertTrue(k.contains("index entry"), "the kernel left no index entry: the scenario tests nothing\n" + k);
        assertEquals(k, s, "index and overlay xattrs: kernel vs " + p.tgtLabel());
    }

    static String describe(LayerSet l) {
        String script = "x() { getfattr -h --absolute-names -n \"trusted.overlay.$2\" -e $3 --only-values \"$1\" 2>/dev/null; };"
                + " echo \"root origin: $(x \"$U\" origin hex | wc -c)\"; echo \"index upper: $(x \"$W/index\" upper hex | wc -c) $(stat -c %a \"$W/index\")\";"
                + " for e in \"$W\"/index/*; do [ -e \"$e\" ] || continue; case $(basename \"$e\") in \\#*) continue;; esac; o=$(x \"$e\" origin hex); n=$(x \"$e\" nlink text);"
                + "  [ \"$o\" = \"0x$(basename \"$e\")\" ] && m=origin=name || m=origin-mismatch;"
                + "  echo \"index entry $(stat -c '%F %a %h' \"$e\") nlink=$n $m\"; done | LC_ALL=C sort;"
                + " cd \"$U\" && find . ! -type d | LC_ALL=C sort | while read -r f; do n=$(x \"$f\" nlink text); [ -n \"$n\" ] || continue;"
                + "  o=$(x \"$f\" origin hex); i=$(stat -c %i \"$f\"); j=$(stat -c %i \"$W/index/${o#0x}\" 2>/dev/null);"
                + "  [ \"$i\" = \"$j\" ] && m=index-inode || m=not-the-index-inode; echo \"$f nlink=$n $m\"; done";
        Map<String, String> env = new HashMap<>();
        env.put("U", l.upper.toString());
        env.put("W", l.work.toString());
        NativeSupport.Proc.Result r = NativeSupport.Proc.run(l.root, 60, env, List.of("bash", "-c", script));
        assertEquals(0, r.exit, r.toString());
        return r.stdout;
    }

    /**
     * Mount-time: an upper used with index=on over other lower layers is refused (the upper root's origin),
     * and so is a workdir whose index belongs to another upper (the index dir's overlay.upper); strata says
     * so in one line with exit 1. Where both mount, a stale leftover index entry is removed.
     */
    @Test void mountTimeChecks() throws Exception {
        NativeSupport.assumeNativeEnvironment();
        Path dir = NativeSupport.newTempDir("ix-mount");
        try {
            Path other = dir.resolve("other-lower");
            Files.createDirectories(other);
            for (Mounter m : new Mounter[]{Mounter.kernel(ON), RedirectDirTest.target(ON)}) {
                String side = m.name();
                LayerSet l = LayerBuilder.standard(dir.resolve(side));
                try (Mount mt = m.mount(l)) {
                    assertTrue(Files.exists(mt.path().resolve("data/hl1")));
                }
                // the same upper over another lowerdir
                List<Path> lowers = new ArrayList<>(l.lowers);
                lowers.set(0, other);
                LayerSet moved = new LayerSet(l.root, lowers, l.upper, l.work, l.mnt);
                IllegalStateException e = assertThrows(IllegalStateException.class, () -> m.mount(moved).close(), side + ": other lowers accepted");
                if (m instanceof Mounter.Strata) assertTrue(e.getMessage().contains("failed to verify upper root origin"), e.getMessage());
                // the workdir with another upper
                Path upper2 = l.root.resolve("upper2");
                NativeSupport.Proc.run(l.root, 30, "mkdir", "-p", upper2.toString());
                LayerSet other2 = new LayerSet(l.root, l.lowers, upper2, l.work, l.mnt);
                e = assertThrows(IllegalStateException.class, () -> m.mount(other2).close(), side + ": a workdir of another upper accepted");
                if (m instanceof Mounter.Strata) assertTrue(e.getMessage().contains("failed to verify index dir 'upper' xattr"), e.getMessage());
                // a leftover temporary in the index is removed at mount
                Path tmp = l.work.resolve("index/#1234");
                NativeSupport.Proc.run(l.root, 30, "touch", tmp.toString());
                try (Mount mt = m.mount(l)) {
                    assertFalse(Files.exists(tmp), side + ": the stale index entry is still there");
                }
            }
            if (RedirectDirTest.target(ON) instanceof Mounter.Strata) {
                // one line on stderr, exit 1, from bin/strata itself
                LayerSet l = LayerBuilder.standard(dir.resolve("cli"));
                try (Mount mt = RedirectDirTest.target(ON).mount(l)) { assertTrue(Files.exists(mt.path().resolve("data"))); }
                Path launcher = NativeSupport.projectHome().resolve("bin/strata");
                Map<String, String> env = new HashMap<>();
                env.put("STRATA_DAEMON", "0");
                NativeSupport.Proc.Result r = NativeSupport.Proc.run(l.root, 120, env, List.of(launcher.toString(), "mount", "-o",
                        "lowerdir=" + other + ",upperdir=" + l.upper + ",workdir=" + l.work + ",index=on", l.mnt.toString()));
                assertEquals(1, r.exit, r.toString());
                assertEquals(1, r.stderr.strip().split("\n").length, "one line: " + r.stderr);
                assertTrue(r.stderr.contains("failed to verify upper root origin"), r.stderr);
            }
        } finally {
            NativeSupport.deleteTree(dir);
        }
    }
    /**
     * An upperdir and workdir in use by a mount (ovl_inuse_trylock): a second mount of them is refused with
     * index=on (EBUSY; strata: one line, exit 1) and goes ahead without index (the kernel warns, strata too),
     * and once the first is unmounted index=on mounts again. strata sees its own mounts only (the kernel's
     * in-use mark is an inode flag): each side is checked against itself.
     */
    @Test void upperAndWorkdirInUse() throws Exception {
        NativeSupport.assumeNativeEnvironment();
        Path dir = NativeSupport.newTempDir("ix-inuse");
        try {
            for (boolean kernel : new boolean[]{true, false}) {
                Mounter on = kernel ? Mounter.kernel(ON) : RedirectDirTest.target(ON);
                Mounter off = kernel ? Mounter.kernel("index=off") : RedirectDirTest.target("index=off");
                LayerSet l = LayerBuilder.standard(dir.resolve(kernel ? "k" : "t"));
                LayerSet second = new LayerSet(l.root, l.lowers, l.upper, l.work, l.root.resolve("mnt2"));
                Files.createDirectories(second.mnt);
                try (Mount first = on.mount(l)) {
                    IllegalStateException e = assertThrows(IllegalStateException.class, () -> on.mount(second).close(), on + ": a second index=on mount accepted");
                    if (on instanceof Mounter.Strata) assertTrue(e.getMessage().contains("is in-use as upperdir/workdir of another mount"), e.getMessage());
                    try (Mount m = off.mount(second)) {
                        assertTrue(Files.exists(m.path().resolve("data/hl1")), off + ": the index=off mount beside it");
                    }
                    assertTrue(Files.exists(first.path().resolve("data/hl1")));
                }
                try (Mount m = on.mount(second)) {
                    assertTrue(Files.exists(m.path().resolve("data/hl1")), on + ": index=on once the first mount is gone");
                }
            }
        } finally {
            NativeSupport.deleteTree(dir);
        }
    }
    /** Prepares $1 with four lower files of two names each, each indexed by the kernel, then changed offline (see indexEntriesAtMount). */
    static final String PREPARE_INDEX = "set -e; R=$1; mkdir -p $R/lower $R/upper $R/work $R/mnt; cd $R;"
            + " for f in a b c d; do echo $f > lower/${f}1; ln lower/${f}1 lower/${f}2; done;"
            + " mount -t overlay overlay -o lowerdir=lower,upperdir=upper,workdir=work,index=on mnt;"
            + " chmod 600 mnt/a1 mnt/b1 mnt/c1 mnt/d1; umount mnt;"
            + " for f in a b c d; do echo \"$f $(find work/index -inum $(stat -c %i upper/${f}1) -printf %f)\"; done > names;"
            + " rm upper/b1 upper/c1 upper/d1 lower/b1 lower/b2;"
            + " setfattr -n trusted.overlay.nlink -v U-1 work/index/$(awk '$1==\"c\"{print $2}' names)";
    /** Copies $1's upper and workdir to $2 (the index dir's overlay.upper dropped: another upper root), $3: a family whose entry loses its origin. */
    static final String COPY_INDEX = "set -e; mkdir -p $2/mnt; cp -a --preserve=all $1/upper $1/work $2/; setfattr -x trusted.overlay.upper $2/work/index;"
            + " if [ -n \"$3\" ]; then setfattr -x trusted.overlay.origin $2/work/index/$(awk -v f=$3 '$1==f{print $2}' $1/names); fi";
    static final String LEFT = "for n in $(ls $2/work/index); do awk -v n=$n '$2==n{printf $1}' $1/names; done";

    /**
     * The index's mount-time checks (readdir.c ovl_indexdir_cleanup, namei.c ovl_verify_index) on entries
     * the kernel wrote and that were changed offline: (a) an entry with an upper name is kept; (b) one
     * whose upper name is gone and whose lower file is deleted no longer decodes: stale, removed; (c) one
     * whose overlay.nlink leaves no name: orphan, removed; (d) one without upper name whose lower file
     * still has its names: kept. The same upper and workdir, copied, are mounted by the kernel and by the
     * target: the same entries must be left. Then an entry without its origin xattr refuses both mounts.
     */
    @Test void indexEntriesAtMount() {
        NativeSupport.assumeNativeEnvironment();
        Path dir = NativeSupport.newTempDir("ix-clean");
        try {
            Path p = dir.resolve("p");
            NativeSupport.Proc.Result r = NativeSupport.Proc.run(dir, 60, "bash", "-c", PREPARE_INDEX, "-", p.toString());
            assertEquals(0, r.exit, r.toString());
            for (String lost : new String[]{"", "a"}) {
                String kernelLeft = null;
                for (Mounter m : new Mounter[]{Mounter.kernel(ON), RedirectDirTest.target(ON)}) {
                    Path c = dir.resolve(m.name() + lost);
                    r = NativeSupport.Proc.run(dir, 60, "bash", "-c", COPY_INDEX, "-", p.toString(), c.toString(), lost);
                    assertEquals(0, r.exit, r.toString());
                    LayerSet l = new LayerSet(c, List.of(p.resolve("lower")), c.resolve("upper"), c.resolve("work"), c.resolve("mnt"));
                    if (lost.isEmpty()) {
                        try (Mount mt = m.mount(l)) { assertTrue(Files.exists(mt.path().resolve("a2"))); }
                    } else {
                        IllegalStateException e = assertThrows(IllegalStateException.class, () -> m.mount(l).close(), m + ": an index entry without origin accepted");
                        if (m instanceof Mounter.Strata) assertTrue(e.getMessage().contains("failed to verify index entry"), e.getMessage());
                    }
                    String left = NativeSupport.Proc.run(dir, 60, "bash", "-c", LEFT, "-", p.toString(), c.toString()).stdout;
                    if (kernelLeft == null) kernelLeft = left;
                    else assertEquals(kernelLeft, left, "index entries left (a-d, see the comment) by the kernel and by " + m);
                }
                if (lost.isEmpty()) assertEquals("ad", kernelLeft.chars().sorted().collect(StringBuilder::new, StringBuilder::appendCodePoint, StringBuilder::append).toString(), "the kernel's choice");
            }
        } finally {
            NativeSupport.deleteTree(dir);
        }
    }
}
