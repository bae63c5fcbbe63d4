package dev.strata.nativetest;

import dev.strata.posix.Errno;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The POSIX edge cases the issue lists, each run on the kernel overlay and on the target, compared,
 * and where the issue fixes the answer, checked against it: paths up to and beyond PATH_MAX,
 * NAME_MAX, fstat of an unlinked open file, mknod c 0 0, inode numbers, hard-linked lower files
 * across copy-up and remount, names that are not UTF-8, setgid directories, device nodes, statfs.
 */
@Tag("native")
class EdgeCaseTest {
    /** A 200-byte name component; 20 of them plus slashes make a relative path of 4,019 bytes. */
    static final String LONG = "d".repeat(199) + "x";
    /** Levels of LONG in the lower-layer chain: 28 * 201 = 5,628 bytes, beyond PATH_MAX. */
    static final int DEEP_LEVELS = 28;

    private Pair pair;
    private Both b;

    @BeforeEach void setUp(TestInfo info) {
        NativeSupport.assumeNativeEnvironment();
        String name = info.getTestMethod().map(java.lang.reflect.Method::getName).orElse("edge");
        pair = new Pair("edge-" + name, Mounter.kernel(), Mounter.underTest(), EdgeCaseTest::layersWithDeepLower);
        pair.keepOnClose();
        b = new Both(name, pair);
    }

    @AfterEach void tearDown() { if (pair != null) pair.close(); }

    /** The standard layers plus, in the bottom lower, a directory chain deeper than PATH_MAX with a file at the bottom. */
    static LayerSet layersWithDeepLower(Path root) {
        LayerSet s = LayerBuilder.standard(root);
        int fd = Tree.check(Posix.openat(Posix.AT_FDCWD, s.lowers.get(2).toString(), Posix.O_RDONLY | Posix.O_DIRECTORY, 0), "open l2");
        Tree.check(Posix.mkdirat(fd, "deep", 0755), "mkdir deep");
        // a lower fifo and an empty lower directory, only here (changesThroughTheDescriptorOfARemovedLowerObject)
        Tree.check(Posix.mknodat(fd, "pipe2", Posix.S_IFIFO | 0640, 0), "mkfifo pipe2");
        Tree.check(Posix.mkdirat(fd, "ldir", 0750), "mkdir ldir");
        int cur = Tree.check(Posix.openat(fd, "deep", Posix.O_RDONLY | Posix.O_DIRECTORY, 0), "open deep");
        Posix.close(fd);
        for (int i = 0; i < DEEP_LEVELS; i++) {
            Tree.check(Posix.mkdirat(cur, LONG, 0755), "mkdir level " + i);
            int next = Tree.check(Posix.openat(cur, LONG, Posix.O_RDONLY | Posix.O_DIRECTORY, 0), "open level " + i);
            Posix.close(cur);
            cur = next;
        }
        int f = Tree.check(Posix.openat(cur, "bottom.txt", Posix.O_WRONLY | Posix.O_CREAT, 0644), "create bottom");
        Tree.writeAll(f, "at the bottom\n".getBytes(), 0, "bottom");
        Posix.close(f);
        Posix.close(cur);
        new Tree(s.lowers.get(2)).fixTimes();
        return s;
    }

    /** Runs fn on each mount root; results must be equal; returns the reference's. */
    private String same(String what, Function<String, String> fn) {
        String k = Mounts.guarded(what + " on " + pair.refLabel(), () -> fn.apply(pair.ref.abs("")));
        String s = Mounts.guarded(what + " on " + pair.tgtLabel(), () -> fn.apply(pair.tgt.abs("")));
        b.note(what + " -> " + k + (k.equals(s) ? "" : " / " + s));
        if (!k.equals(s)) fail("[edge] " + what + ":\n  " + pair.refLabel() + ": " + k + "\n  " + pair.tgtLabel() + ": " + s + pair.targetLog());
        return k;
    }

    private static String err(long r) { return r < 0 ? Errno.name((int) r) : "OK"; }

    /** Opens each directory of rel (a/b/c) below dirfd in turn, returning the last fd or -errno. */
    private static int walk(int dirfd, List<String> names) {
        int cur = Posix.dup(dirfd);
        for (String n : names) {
            int next = Posix.openat(cur, n, Posix.O_RDONLY | Posix.O_DIRECTORY, 0);
            Posix.close(cur);
            if (next < 0) return next;
            cur = next;
        }
        return cur;
    }

    private static List<String> repeat(String n, int times) {
        List<String> l = new ArrayList<>();
        for (int i = 0; i < times; i++) l.add(n);
        return l;
    }

    // ------------------------------------------------------------------ PATH_MAX

    @Test void relativePathsUpToPathMax() {
        same("mkdir chain of 20 x 200-byte names (fd by fd)", root -> {
            int fd = Posix.openat(Posix.AT_FDCWD, root, Posix.O_RDONLY | Posix.O_DIRECTORY, 0);
            int cur = Posix.dup(fd);
            String r = "OK";
            for (int i = 0; i < 20 && r.equals("OK"); i++) {
                r = err(Posix.mkdirat(cur, LONG, 0755));
                int next = Posix.openat(cur, LONG, Posix.O_RDONLY | Posix.O_DIRECTORY, 0);
                Posix.close(cur);
                cur = next;
            }
            Posix.close(cur);
            Posix.close(fd);
            return r;
        });
        String rel20 = String.join("/", repeat(LONG, 20));             // 4,019 bytes
        String file = rel20 + "/" + "f".repeat(4095 - rel20.length() - 1); // exactly 4,095 bytes: the longest legal path
        assertEquals(4095, file.length());
        String made = same("create + write + fstatat with a 4,095-byte path relative to the mount root", root -> {
            int fd = Posix.openat(Posix.AT_FDCWD, root, Posix.O_RDONLY | Posix.O_DIRECTORY, 0);
            try {
                int f = Posix.openat(fd, file, Posix.O_WRONLY | Posix.O_CREAT, 0644);
                if (f < 0) return "create " + err(f);
                Tree.writeAll(f, "x".getBytes(), 0, "f");
                Posix.close(f);
                Stat st = new Stat();
                int r = Posix.fstatat(fd, file, st, Posix.AT_SYMLINK_NOFOLLOW);
                return "stat " + err(r) + (r == 0 ? " " + OpExecutor.describe(st) : "");
            } finally { Posix.close(fd); }
        });
        assertTrue(made.startsWith("stat OK file 0644 0:0 size=1"), made);
        String tooLong = same("a 4,096-byte relative path", root -> {
            int fd = Posix.openat(Posix.AT_FDCWD, root, Posix.O_RDONLY | Posix.O_DIRECTORY, 0);
            try { return err(Posix.openat(fd, file + "g", Posix.O_WRONLY | Posix.O_CREAT, 0644)); } finally { Posix.close(fd); }
        });
        assertEquals("ENAMETOOLONG", tooLong);
        String moved = same("rename and unlink with 4,000-byte relative paths", root -> {
            int fd = Posix.openat(Posix.AT_FDCWD, root, Posix.O_RDONLY | Posix.O_DIRECTORY, 0);
            try {
                String other = rel20 + "/short";
                return err(Posix.renameat2(fd, file, fd, other, 0)) + " " + err(Posix.symlinkat("short", fd, file))
                        + " " + err(Posix.unlinkat(fd, other, 0));
            } finally { Posix.close(fd); }
        });
        assertEquals("OK OK OK", moved);
        b.trees();
        b.finish();
    }

    @Test void pathsBeyondPathMaxThroughDescriptorsAndCd() {
        String deep = same("mkdir 30 levels of 200-byte names, create, write, rename, stat at the bottom", root -> {
            int fd = Posix.openat(Posix.AT_FDCWD, root, Posix.O_RDONLY | Posix.O_DIRECTORY, 0);
            int cur = fd;
            StringBuilder r = new StringBuilder();
            for (int i = 0; i < 30; i++) {
                int m = Posix.mkdirat(cur, LONG, 0755);
                if (m < 0) { r.append("mkdir@").append(i).append(' ').append(err(m)); break; }
                int next = Posix.openat(cur, LONG, Posix.O_RDONLY | Posix.O_DIRECTORY, 0);
                Posix.close(cur);
                cur = next;
                if (cur < 0) return r + "open@" + i + " " + err(cur);
            }
            int f = Posix.openat(cur, "bottom", Posix.O_RDWR | Posix.O_CREAT, 0600);
            r.append("create ").append(err(f));
            if (f >= 0) { Tree.writeAll(f, "deep data\n".getBytes(), 0, "bottom"); Posix.close(f); }
            r.append(" rename ").append(err(Posix.renameat2(cur, "bottom", cur, "renamed", 0)));
            Stat st = new Stat();
            int s = Posix.fstatat(cur, "renamed", st, Posix.AT_SYMLINK_NOFOLLOW);
            r.append(" stat ").append(err(s)).append(s == 0 ? " " + OpExecutor.describe(st) : "");
            r.append(" mkdir ").append(err(Posix.mkdirat(cur, "leaf", 0700)));
            Posix.close(cur);
            return r.toString();
        });
        assertEquals("create OK rename OK stat OK file 0600 0:0 size=10 nlink=1 mkdir OK", deep);
        b.shOk("n=" + LONG + "; cd deep; for i in $(seq " + DEEP_LEVELS + "); do cd $n; done; cat bottom.txt; echo appended >> bottom.txt;"
                + " cat bottom.txt; mkdir -p x/y && echo hi > x/y/z && mv x/y/z x/z2 && ls -1A . x && rm -r x");
        b.remount();
        String bottom = same("read the copied-up file at the bottom of the lower chain after remount", root -> {
            List<String> names = new ArrayList<>(List.of("deep"));
            names.addAll(repeat(LONG, DEEP_LEVELS));
            int d = Posix.openat(Posix.AT_FDCWD, root, Posix.O_RDONLY | Posix.O_DIRECTORY, 0);
            int cur = walk(d, names);
            Posix.close(d);
            if (cur < 0) return "walk " + err(cur);
            int f = Posix.openat(cur, "bottom.txt", Posix.O_RDONLY, 0);
            Posix.close(cur);
            if (f < 0) return "open " + err(f);
            Pointer buf = Memory.allocateDirect(Posix.RT, 4096);
            long n = Posix.pread(f, buf, 4096, 0);
            Posix.close(f);
            byte[] out = new byte[(int) Math.max(0, n)];
            buf.get(0, out, 0, out.length);
            return new String(out, java.nio.charset.StandardCharsets.ISO_8859_1);
        });
        assertEquals("at the bottom\nappended\n", bottom);
        b.finish();
    }

    // ------------------------------------------------------------------ NAME_MAX

    @Test void namesLongerThanNameMaxGetEnametoolong() {
        String n255 = "n".repeat(255), n256 = "n".repeat(256);
        b.expect(Op.create(n255, 0644), 0);
        b.expect(Op.stat(n255), 0);
        b.expect(Op.rename(n255, "merged/" + n255, 0), 0);
        b.expect(Op.create(n256, 0644), Errno.ENAMETOOLONG);
        b.expect(Op.create("merged/" + n256, 0644), Errno.ENAMETOOLONG);
        b.expect(Op.mkdir(n256, 0755), Errno.ENAMETOOLONG);
        b.expect(Op.stat(n256), Errno.ENAMETOOLONG);
        b.expect(Op.stat("etc/" + n256 + "/x"), Errno.ENAMETOOLONG);
        b.expect(Op.symlink("t", n256), Errno.ENAMETOOLONG);
        b.expect(Op.link("shadow.txt", n256), Errno.ENAMETOOLONG);
        b.expect(Op.rename("shadow.txt", n256, 0), Errno.ENAMETOOLONG);
        b.expect(Op.mkfifo(n256, 0644), Errno.ENAMETOOLONG);
        b.expect(Op.unlink(n256), Errno.ENAMETOOLONG);
        assertEquals("255", same("statvfs f_namemax", root -> Long.toString(statvfs(root)[STATVFS_NAMEMAX])));
        b.finish();
    }

    // ------------------------------------------------------------------ open, unlinked

    @Test void fstatOfAnOpenUnlinkedFile() {
        b.expect(Op.create("fresh", 0644), 0);
        b.expect(Op.holdOpen(0, "fresh", Posix.O_RDWR), 0);
        b.expect(Op.unlink("fresh"), 0);
        String st = b.expect(Op.fstatHeld(0), 0).detail;
        assertTrue(st.contains(" nlink=0"), "an open upper file unlinked: the kernel reports st_nlink 0, got " + st);
        b.expect(Op.readHeld(0), 0);
        b.expect(Op.holdOpen(1, "etc/passwd", Posix.O_RDWR), 0);    // copied up by the open for writing
        b.expect(Op.unlink("etc/passwd"), 0);
        b.same(Op.fstatHeld(1));
        b.expect(Op.holdOpen(2, "shadow.txt", Posix.O_RDONLY), 0);  // a lower file, still lower
        b.expect(Op.unlink("shadow.txt"), 0);
        b.same(Op.fstatHeld(2));
        b.same(Op.readHeld(2));
        b.same(Op.listdir(""));                                     // no .fuse_hidden* names show
        for (int i = 0; i < 3; i++) b.expect(Op.closeHeld(i), 0);
        b.finish();
    }

    /**
     * Issue 18.1: a descriptor whose name another file or directory was renamed over still answers
     * fstat with the victim's attributes (st_nlink 0 for an upper one, a lower one untouched), for a
     * regular file opened for I/O and with O_PATH, a fifo, a symlink (O_PATH), an empty upper directory
     * and an empty lower one. On the libfuse transport only the regular file opened for I/O: libfuse 2
     * keeps no name for a node it did not open (README, "Transports").
     */
    @Test void fstatAfterARenameOverAnOpenName() {
        boolean libfuse = Mounter.libfuseTransport();
        String[][] victims = libfuse ? new String[][]{{"file", "rdwr"}, {"shadow.txt", "lower"}}
                : new String[][]{{"file", "rdwr"}, {"file", "path"}, {"fifo", "rdonly"}, {"link", "path"}, {"dir", "dir"},
                        {"tmp", "lowerdir"}, {"shadow.txt", "lower"}};
        int i = 0;
        for (String[] v : victims) {
            String kind = v[0], how = v[1], name = kind.equals("tmp") || kind.equals("shadow.txt") ? kind : "v" + i + kind;
            String src = "src" + i;
            int flags = Posix.O_RDONLY;
            switch (kind) {
                case "file": b.expect(Op.create(name, 0644), 0); b.expect(Op.write(name, 0, 10, 7), 0); break;
                case "fifo": b.expect(Op.mkfifo(name, 0640), 0); break;
                case "link": b.expect(Op.symlink("nowhere", name), 0); flags = Posix.O_PATH | Posix.O_NOFOLLOW; break;
                case "dir": b.expect(Op.mkdir(name, 0750), 0); break;
                default:
            }
            if (how.equals("rdwr")) flags = Posix.O_RDWR;
            if (how.equals("path")) flags = Posix.O_PATH | Posix.O_NOFOLLOW;
            if (how.endsWith("dir")) flags = Posix.O_RDONLY | Posix.O_DIRECTORY;
            if (how.endsWith("dir")) b.expect(Op.mkdir(src, 0700), 0); else b.expect(Op.create(src, 0600), 0);
            int slot = i % OpExecutor.SLOTS;
            b.expect(Op.holdOpen(slot, name, flags), 0);
            b.expect(Op.rename(src, name, 0), 0);
            String st = b.expect(Op.fstatHeld(slot), 0).detail;
            boolean lower = how.startsWith("lower");
            assertTrue(st.contains(lower ? " nlink=" : " nlink=0") && !(lower && st.contains(" nlink=0")),
                    "kernel: the victim's attributes, st_nlink 0 for an upper one (" + kind + " " + how + "): " + st);
            if (how.equals("rdwr") || how.equals("lower")) b.same(Op.readHeld(slot));
            if (how.equals("rdwr")) {
                b.expect(Op.fchmodHeld(slot, 0600), 0);
                b.same(Op.fstatHeld(slot));
            }
            b.expect(Op.closeHeld(slot), 0);
            i++;
        }
        b.finish();
    }

    /**
     * linkat of /proc/self/fd/N for a file whose opened name was removed while it still has another
     * name: the kernel overlay links it (the inode still has a name), and answers ENOENT for one whose
     * last name went (an upper file) or a lower file never copied up (the overlay inode's count is 0).
     * Seeds 3001, 3003 and 3004 on the libfuse transport (op #1337, #723, #750: ENOENT on strata, which
     * looked the hidden name libfuse 2 gives a removed open file up as a path). A name with an origin
     * linked so makes its directory impure, as a link by name does.
     */
    @Test void linkThroughTheDescriptorOfARemovedName() {
        b.expect(Op.create("two", 0644), 0);
        b.expect(Op.write("two", 0, 100, 11), 0);
        b.expect(Op.link("two", "other"), 0);
        b.expect(Op.holdOpen(0, "two", Posix.O_RDONLY), 0);
        b.expect(Op.unlink("two"), 0);
        b.expect(Op.linkHeld(0, "again"), 0);
        String st = b.expect(Op.stat("again"), 0).detail;
        assertTrue(st.contains(" nlink=2"), "kernel: the link joins the remaining name: " + st);
        b.same(Op.stat("other"));
        b.expect(Op.create("one", 0644), 0);
        b.expect(Op.holdOpen(1, "one", Posix.O_RDWR), 0);
        b.expect(Op.unlink("one"), 0);
        b.expect(Op.linkHeld(1, "one-again"), Errno.ENOENT);
        b.expect(Op.holdOpen(2, "shadow.txt", Posix.O_RDONLY), 0);   // a lower file
        b.expect(Op.unlink("shadow.txt"), 0);
        b.expect(Op.linkHeld(2, "shadow-again"), Errno.ENOENT);
        // a copied-up lower file (it has an origin) linked into a directory not marked impure yet: the
        // kernel marks it (ovl_create_or_link), so that listings show the origin's number as stat does
        // (seed 3003 on the libfuse transport, op #749: the upper number in d_ino on strata)
        b.expect(Op.chmod("owned", 0644), 0);
        b.expect(Op.link("owned", "owned.2"), 0);
        b.expect(Op.holdOpen(0, "owned", Posix.O_RDONLY), 0);
        b.expect(Op.unlink("owned"), 0);
        b.expect(Op.linkHeld(0, "shared/owned.3"), 0);
        b.same(Op.listdir("shared"));
        b.trees();
        for (int i = 0; i < 3; i++) b.expect(Op.closeHeld(i), 0);
        b.finish();
    }

    /**
     * A lower file with other names held open read-only, its name copied up (a chmod: the copy is a file of
     * its own, index=off) and removed: fchmod and fstat through the descriptor act on the copy, which has
     * no name left (st_nlink 0), as on the kernel overlay. On the libfuse transport strata answered fstat
     * of the hidden name from the descriptor's lower file (libfuse seed 3010, op #174: 0644 nlink=3).
     */
    @Test void fstatOfARemovedCopyThroughAnEarlierLowerOpen() {
        b.expect(Op.holdOpen(0, "data/hl1", Posix.O_RDONLY), 0);
        b.expect(Op.chmod("data/hl1", 0640), 0);
        b.expect(Op.unlink("data/hl1"), 0);
        b.expect(Op.fchmodHeld(0, 0444), 0);
        String st = b.expect(Op.fstatHeld(0), 0).detail;
        assertTrue(st.startsWith("file 0444") && st.contains(" nlink=0"), "kernel: the removed copy: " + st);
        b.same(Op.readHeld(0));
        b.same(Op.stat("data/hl2"));
        b.expect(Op.closeHeld(0), 0);
        b.finish();
    }

    /**
     * An upper fifo the kernel opened itself (FUSE sends no OPEN for it), removed (unlinked, renamed over)
     * while open: fchmod, fchown, futimens and fsetxattr through its descriptor still change the removed
     * upper inode on the kernel overlay, and fstat shows it (seed 3000, op #959: fsetxattr of a removed
     * fifo, ENOENT on strata, which kept no handle on it). A device node, socket or symlink goes the
     * same way (a regular file held only with O_PATH keeps its attributes for fstat). Not on the libfuse transport (README, "Transports").
     */
    @Test void changesThroughTheDescriptorOfARemovedFifo() {
        Assumptions.assumeFalse(Mounter.libfuseTransport(), "libfuse 2 keeps no name for a node it did not open");
        b.expect(Op.mkfifo("fifo1", 0640), 0);
        b.expect(Op.holdOpen(0, "fifo1", Posix.O_RDWR), 0);
        b.expect(Op.unlink("fifo1"), 0);
        b.expect(Op.fchmodHeld(0, 0604), 0);
        b.expect(Op.fchownHeld(0, 1000, 50), 0);
        b.expect(Op.futimensHeld(0, 1_000_000_000L, 5), 0);
        b.same(Op.fsetxattrHeld(0, "trusted.t", "v"));
        b.same(Op.fsetxattrHeld(0, "user.a", "v"));               // EPERM: no user.* xattrs on a fifo
        b.same(Op.fsetxattrHeld(0, "trusted.overlay.opaque", "y"));
        String st = b.expect(Op.fstatHeld(0), 0).detail;
        assertTrue(st.contains("0604 1000:50") && st.contains(" nlink=0"), "kernel: the removed fifo changed: " + st);
        b.expect(Op.mkfifo("fifo2", 0600), 0);
        b.expect(Op.create("other", 0644), 0);
        b.expect(Op.holdOpen(1, "fifo2", Posix.O_RDWR), 0);
        b.expect(Op.rename("other", "fifo2", 0), 0);
        b.expect(Op.fchmodHeld(1, 0660), 0);
        b.same(Op.fstatHeld(1));
        for (int i = 0; i < 2; i++) b.expect(Op.closeHeld(i), 0);
        b.finish();
    }

    /**
     * A lower fifo and a lower directory held open by the kernel (no open reaches strata), removed, then
     * changed through the descriptor. The kernel overlay copies the object up (ovl_copy_up of the
     * unhashed dentry): the fifo's copy is renamed over the whiteout its removal left, so fchmod, fchown,
     * futimens and fsetxattr succeed and fstat shows them; the name stays absent where a lookup found it
     * absent in between (a negative dentry), a creation there fails with ESTALE, and a remount shows the
     * copy. Without a lookup in between, the next one finds the copy. A directory's copy cannot replace
     * the whiteout: ENOTDIR, nothing changes. strata answered ENOENT to all of these (README "Not there
     * yet" until now); the lower layer never changes (finish checks it).
     */
    @Test void changesThroughTheDescriptorOfARemovedLowerObject() {
        Assumptions.assumeFalse(Mounter.libfuseTransport(), "libfuse 2 keeps no name for a node it did not open");
        b.expect(Op.holdOpen(0, "pipe", Posix.O_RDWR), 0);
        b.expect(Op.unlink("pipe"), 0);
        b.expect(Op.stat("pipe"), Errno.ENOENT);
        b.expect(Op.fchmodHeld(0, 0604), 0);
        b.expect(Op.fchownHeld(0, 1000, 50), 0);
        b.expect(Op.futimensHeld(0, 1_000_000_000L, 5), 0);
        b.same(Op.fsetxattrHeld(0, "trusted.t", "v"));
        b.same(Op.fsetxattrHeld(0, "user.a", "v"));                  // EPERM: no user.* xattrs on a fifo
        String st = b.expect(Op.fstatHeld(0), 0).detail;
        assertTrue(st.contains("0604 1000:50") && st.contains(" nlink=1"), "kernel: the copied-up fifo: " + st);
        b.expect(Op.stat("pipe"), Errno.ENOENT);
        b.same(Op.listdir(""));
        b.expect(Op.mkfifo("pipe", 0600), Errno.ESTALE);
        b.expect(Op.mkdir("pipe", 0755), Errno.ESTALE);
        b.expect(Op.create("other", 0644), 0);
        b.expect(Op.rename("other", "pipe", 0), Errno.ESTALE);
        b.expect(Op.unlink("pipe"), Errno.ENOENT);
        b.expect(Op.fchmodHeld(0, 0640), 0);                          // the copy changes now
        b.same(Op.fstatHeld(0));
        // no lookup between the removal and the change: the copy shows at once
        b.expect(Op.holdOpen(1, "pipe2", Posix.O_RDWR), 0);
        b.expect(Op.unlink("pipe2"), 0);
        b.expect(Op.futimensHeld(1, 1_000_000_000L, 7), 0);
        b.same(Op.stat("pipe2"));
        b.same(Op.listdir(""));
        b.same(Op.fstatHeld(1));
        // an empty lower directory: ENOTDIR, and it stays as it was
        b.expect(Op.holdOpen(2, "ldir", Posix.O_RDONLY | Posix.O_DIRECTORY), 0);
        b.expect(Op.rmdir("ldir"), 0);
        b.expect(Op.fchmodHeld(2, 0705), Errno.ENOTDIR);
        b.expect(Op.fchownHeld(2, 1000, 50), Errno.ENOTDIR);
        b.expect(Op.futimensHeld(2, 1_000_000_000L, 7), Errno.ENOTDIR);
        b.same(Op.fsetxattrHeld(2, "user.a", "v"));
        b.same(Op.fstatHeld(2));
        b.expect(Op.stat("ldir"), Errno.ENOENT);
        b.same(Op.listdir(""));
        for (int i = 0; i < 3; i++) b.expect(Op.closeHeld(i), 0);
        b.remount();                                                   // the fifo's copy under its name
        String again = b.expect(Op.stat("pipe"), 0).detail;
        assertTrue(again.startsWith("fifo 0640 1000:50"), "kernel: the copy after a remount: " + again);
        b.same(Op.listdir(""));
        b.finish();
    }

    /**
     * An upper directory (a new one, and a lower one copied up: merged) held open and renamed over by
     * another directory: fchmod, fchown, futimens and fsetxattr through the descriptor change the removed
     * upper directory on the kernel overlay, and fstat shows the change with the st_nlink the removal
     * left (seed 1007 with redirect_dir=on,index=on,metacopy=on, op #1529: fchmod ENOENT on strata).
     */
    @Test void changesThroughTheDescriptorOfADirectoryRenamedOver() {
        Assumptions.assumeFalse(Mounter.libfuseTransport(), "libfuse 2 keeps no name for a node it did not open");
        b.expect(Op.mkdir("vdir", 0750), 0);
        b.expect(Op.chmod("tmp", 0755), 0);                          // a lower directory copied up
        String[] victims = {"vdir", "tmp"};
        for (int i = 0; i < victims.length; i++) {
            b.expect(Op.mkdir("src" + i, 0700), 0);
            b.expect(Op.holdOpen(i, victims[i], Posix.O_RDONLY | Posix.O_DIRECTORY), 0);
            b.expect(Op.rename("src" + i, victims[i], 0), 0);
            b.expect(Op.fchmodHeld(i, 0705), 0);
            b.expect(Op.fchownHeld(i, 1000, 50), 0);
            b.expect(Op.futimensHeld(i, 1_000_000_000L, 7), 0);
            b.same(Op.fsetxattrHeld(i, "trusted.t", "v"));
            b.same(Op.fsetxattrHeld(i, "user.a", "v"));
            String st = b.expect(Op.fstatHeld(i), 0).detail;
            assertTrue(st.contains("0705 1000:50"), "kernel: the removed directory changed: " + st);
            b.expect(Op.closeHeld(i), 0);
        }
        b.finish();
    }

    /**
     * Issue 18.6: file handles. The kernel overlay without nfs_export refuses name_to_handle_at
     * (EOPNOTSUPP) and encodes only AT_HANDLE_FID handles, which cannot be opened; strata had FUSE
     * encode handles that open_by_handle_at then found stale (ESTALE) once the kernel dropped its
     * cache. Not on the libfuse transport: libfuse 2 cannot tell the kernel it has no export support.
     */
    @Test void fileHandlesAreRefusedAsOnTheKernelOverlay() {
        Assumptions.assumeFalse(Mounter.libfuseTransport(), "libfuse 2 cannot negotiate FUSE_NO_EXPORT_SUPPORT (README, Transports)");
        Assumptions.assumeTrue(NativeSupport.onPath("python3"), "python3 is not installed");
        b.expect(Op.mkdir("hdir", 0755), 0);
        b.shOk("python3 - <<'EOF'\n"
                + "import ctypes, os\n"
                + "libc = ctypes.CDLL(None, use_errno=True)\n"
                + "class FH(ctypes.Structure): _fields_ = [('bytes', ctypes.c_uint), ('type', ctypes.c_int), ('h', ctypes.c_ubyte * 128)]\n"
                + "for name in ['shadow.txt', 'etc/passwd', 'hdir', 'merged', '.']:\n"
                + "    for flags, label in [(0, 'plain'), (0x200, 'AT_HANDLE_FID')]:\n"
                + "        fh = FH(); fh.bytes = 128; mnt = ctypes.c_int()\n"
                + "        r = libc.name_to_handle_at(-100, name.encode(), ctypes.byref(fh), ctypes.byref(mnt), flags)\n"
                + "        out = 'ok' if r == 0 else os.strerror(ctypes.get_errno())\n"
                + "        if r == 0 and flags == 0:\n"
                + "            open('/proc/sys/vm/drop_caches', 'w').write('2')\n"
                + "            fd = libc.open_by_handle_at(os.open('.', os.O_RDONLY), ctypes.byref(fh), os.O_RDONLY)\n"
                + "            out += ', open_by_handle_at: ' + ('ok' if fd >= 0 else os.strerror(ctypes.get_errno()))\n"
                + "        print(name, label, out)\n"
                + "EOF");
        b.finish();
    }

    // ------------------------------------------------------------------ layer roots

    /**
     * An overlay.opaque=y mark on a layer's root hides nothing: the kernel overlay merges every layer
     * at the root whatever their roots carry (strata used to end the root's merge there).
     */
    @Test void opaqueMarksOnLayerRootsAreIgnored() {
        pair.close();
        pair = new Pair("edge-rootOpaque", Mounter.kernel(), Mounter.underTest(), root -> {
            LayerSet s = LayerBuilder.standard(root);
            for (Path p : List.of(s.lowers.get(0), s.lowers.get(1), s.upper)) {
                Tree.check(Posix.lsetxattr(p.toString(), "trusted.overlay.opaque", "y".getBytes(), 0), "opaque mark on " + p);
            }
            return s;
        });
        pair.keepOnClose();
        b = new Both("rootOpaque", pair);
        b.same(Op.listdir(""));
        b.same(Op.listdir("etc"));
        b.expect(Op.create("new-at-root", 0644), 0);
        b.same(Op.listdir(""));
        b.finish();
    }

    /**
     * An empty regular file with the overlay.whiteout xattr is a whiteout to the kernel overlay's lookup
     * in any layer (upper, middle, last lower) whether or not its directory is marked overlay.opaque=x;
     * the mark only makes readdir leave such names out. Outside such a directory both list the name and
     * neither can look it up (strata showed an empty file).
     */
    @Test void xattrWhiteoutsHideInEveryLayerWithoutTheOpaqueXMark() {
        pair.close();
        pair = new Pair("edge-xwhiteout", Mounter.kernel(), Mounter.underTest(), root -> {
            LayerSet s = LayerBuilder.standard(root);
            Tree top = new Tree(s.lowers.get(0)), mid = new Tree(s.lowers.get(1)), last = new Tree(s.lowers.get(2));
            Tree upper = new Tree(s.upper);
            for (Tree t : List.of(top, mid, last, upper)) t.dir("xw", 0755);
            last.file("xw/f", "below f\n");
            last.file("xw/g", "below g\n");
            mid.file("xw/u", "below u\n");
            for (String[] w : new String[][]{{"top", "xw/f"}, {"last", "xw/h"}, {"upper", "xw/u"}}) {
                Path p = (w[0].equals("top") ? s.lowers.get(0) : w[0].equals("last") ? s.lowers.get(2) : s.upper).resolve(w[1]);
                new Tree(p.getParent()).file(p.getFileName().toString(), "");
                Tree.check(Posix.lsetxattr(p.toString(), "trusted.overlay.whiteout", "y".getBytes(), 0), "xattr whiteout " + p);
            }
            for (Path l : s.lowers) new Tree(l).fixTimes();
            return s;
        });
        pair.keepOnClose();
        b = new Both("xwhiteout", pair);
        for (String n : new String[]{"xw/f", "xw/g", "xw/h", "xw/u"}) {
            b.same(Op.stat(n));
            b.same(Op.read(n));
        }
        b.same(Op.listdir("xw"));
        b.same(Op.stat("xw/f"));   // after the listing, which strata keeps, the lookup still finds nothing
        b.same(Op.read("xw/f"));
        b.finish();
    }

    // ------------------------------------------------------------------ forged whiteouts

    @Test void mknodOfAWhiteoutDeviceIsEperm() {
        for (String p : new String[]{"wh", "etc/wh", "top/a/wh", "merged/sub/wh", "gone", "etc/hosts", "data/ghost"}) {
            b.expect(Op.mknod(p, Posix.S_IFCHR, 0), Errno.EPERM);
            b.expect(Op.mknod(p, Posix.S_IFCHR | 0644, 0), Errno.EPERM);
        }
        b.expect(Op.mkdir("nd", 0755), 0);
        b.expect(Op.mknod("nd/wh", Posix.S_IFCHR, 0), Errno.EPERM);
        b.shOk("mknod cdev c 0 0 2>&1 | sed 's/.*: //'; true");
        b.finish();
    }

    // ------------------------------------------------------------------ inode numbers

    @Test void inodeNumbersUniqueAcrossLayersAndStableAcrossCopyUp() {
        Snapshot k0 = pair.refSnapshot(), s0 = pair.tgtSnapshot();
        assertUnique(k0, k0, "kernel");
        assertUnique(s0, k0, pair.tgtLabel());
        String[] singles = {"shadow.txt", "etc/passwd", "merged/from2", "usr/bin/tool", "pipe", "usr/lib/libx.so", "owned",
                LayerBuilder.NON_UTF8_FILE, "etc", "merged", "top/a/b/c"};
        b.expect(Op.append("shadow.txt", 5, 1), 0);
        b.expect(Op.append("etc/passwd", 5, 2), 0);
        b.expect(Op.setxattr("merged/from2", "user.k", "v", 0), 0);
        b.expect(Op.chmod("usr/bin/tool", 0700), 0);
        b.expect(Op.chmod("pipe", 0600), 0);
        b.expect(Op.lchown("usr/lib/libx.so", 1000, 1000), 0);
        b.expect(Op.chown("owned", 0, 0), 0);
        b.expect(Op.append(LayerBuilder.NON_UTF8_FILE, 3, 3), 0);
        b.expect(Op.chmod("etc", 0750), 0);
        b.expect(Op.create("merged/new", 0644), 0);
        b.expect(Op.create("top/a/b/c/new", 0644), 0);
        Snapshot k1 = pair.refSnapshot(), s1 = pair.tgtSnapshot();
        b.remount();
        Snapshot k2 = pair.refSnapshot(), s2 = pair.tgtSnapshot();
        StringBuilder bad = new StringBuilder();
        for (String n : singles) {
            boolean kernelKeeps = k0.get(n).ino() == k1.get(n).ino() && k1.get(n).ino() == k2.get(n).ino();
            boolean targetKeeps = s0.get(n).ino() == s1.get(n).ino() && s1.get(n).ino() == s2.get(n).ino();
            if (kernelKeeps != targetKeeps) {
                bad.append("\n  ").append(Names.show(n)).append(": kernel ino ").append(k0.get(n).ino()).append(" -> ").append(k1.get(n).ino())
                        .append(" -> ").append(k2.get(n).ino()).append(", ").append(pair.tgtLabel()).append(" ").append(s0.get(n).ino())
                        .append(" -> ").append(s1.get(n).ino()).append(" -> ").append(s2.get(n).ino()).append(" (copy-up, remount)");
            }
        }
        if (bad.length() > 0) fail("[edge] st_ino stability across copy-up differs from the kernel:" + bad);
        assertUnique(s2, k2, pair.tgtLabel() + " after copy-up and remount");
        b.finish();
    }

    /** No two entries share an inode number in snap unless the kernel shows them as the same file too. */
    private static void assertUnique(Snapshot snap, Snapshot kernel, String label) {
        Map<Long, List<String>> byIno = new HashMap<>();
        for (Snapshot.Entry e : snap.entries().values()) byIno.computeIfAbsent(e.ino(), x -> new ArrayList<>()).add(e.rel);
        StringBuilder bad = new StringBuilder();
        for (Map.Entry<Long, List<String>> g : byIno.entrySet()) {
            List<String> names = g.getValue();
            if (names.size() < 2) continue;
            long kIno = kernel.get(names.get(0)) == null ? -1 : kernel.get(names.get(0)).ino();
            for (String n : names) {
                Snapshot.Entry ke = kernel.get(n);
                if (ke == null || ke.ino() != kIno || ke.type().equals("dir")) {
                    bad.append("\n  ino ").append(g.getKey()).append(": ").append(names.stream().map(Names::show).toList());
                    break;
                }
            }
        }
        if (bad.length() > 0) fail("[edge] " + label + ": different files share an inode number:" + bad);
    }

    // ------------------------------------------------------------------ hard links in a lower

    @Test void hardLinkedLowerFileKeepsItsDataAfterCopyUpAndRemount() {
        b.expect(Op.append("data/hl1", 9, 77), 0);
        b.remount();
        String hl1 = b.expect(Op.read("data/hl1"), 0).detail, hl2 = b.expect(Op.read("data/hl2"), 0).detail;
        String hl3 = b.expect(Op.read("data/sub/hl3"), 0).detail;
        assertTrue(hl1.startsWith((17 + 9) + " bytes"), "hl1 keeps old data plus the append: " + hl1);
        b.same(Op.read("data/hl2"));
        b.same(Op.read("data/sub/hl3"));
        if (Mounter.indexOn()) {
            // index=on: lower hard links stay one inode across copy-up, so every name shows the append
            assertTrue(hl2.equals(hl1) && hl3.equals(hl1), "with index=on the other links show the append too: " + hl2 + " / " + hl3);
        } else {
            assertTrue(hl2.startsWith("17 bytes") && hl2.equals(hl3), "the other links keep the lower data: " + hl2 + " / " + hl3);
            assertNotEquals(hl1, hl2);
        }
        b.expect(Op.truncate("data/hl2", 4), 0);     // a second link copied up on its own
        b.remount();
        b.same(Op.read("data/hl1"));
        b.same(Op.read("data/hl2"));
        b.same(Op.read("data/sub/hl3"));
        b.finish();
    }

    // ------------------------------------------------------------------ names are bytes

    @Test void namesThatAreNotUtf8() {
        StringBuilder all = new StringBuilder();
        for (int c = 0x80; c <= 0xff; c++) all.append((char) c);      // 128 bytes, none valid UTF-8 alone
        String high = all.toString();
        String ctl = Names.bytes('a', '\n', 'b', '\t', 'c', 0x01, 0x7f, '\\');
        String dir2 = Names.bytes(0xc3, 0x28, '-', 'd');                // an invalid two-byte sequence
        b.same(Op.listdir(""));
        b.same(Op.listdir(LayerBuilder.NON_UTF8_DIR));
        b.same(Op.read(LayerBuilder.NON_UTF8_FILE));
        b.same(Op.read(LayerBuilder.NON_UTF8_INNER));
        b.expect(Op.append(LayerBuilder.NON_UTF8_INNER, 10, 5), 0);      // copy-up with a non-UTF-8 parent
        b.expect(Op.create(high, 0644), 0);
        b.expect(Op.write(high, 0, 100, 6), 0);
        b.expect(Op.create(ctl, 0600), 0);
        b.expect(Op.mkdir(dir2, 0755), 0);
        b.expect(Op.rename(high, dir2 + "/" + high, 0), 0);
        b.expect(Op.rename(LayerBuilder.NON_UTF8_FILE, dir2 + "/" + Names.bytes(0xe9, 0xe9), 0), 0);
        b.expect(Op.symlink(high, Names.bytes('l', 0xff)), 0);
        b.same(Op.readlink(Names.bytes('l', 0xff)));
        b.expect(Op.link(dir2 + "/" + high, Names.bytes('h', 0xa0)), 0);
        b.expect(Op.setxattr(dir2, "user.k", Names.bytes(0xff, 0), 0), 0);
        b.same(Op.listdir(dir2));
        b.expect(Op.unlink(ctl), 0);
        b.expect(Op.unlink(LayerBuilder.NON_UTF8_INNER), 0);
        b.shOk("ls -1A --quoting-style=escape | sort; rm -r $'\\xff\\xfe-dir' && ls -1A --quoting-style=escape $'\\xc3(-d' | sort");
        b.finish();
    }

    // ------------------------------------------------------------------ ownership and special files

    @Test void setgidDirectoriesPassTheirGroupOn() {
        // shared/ is 02775 root:50 in the bottom lower
        b.expect(Op.mkdir("shared/sub", 0755), 0);
        b.expect(Op.create("shared/file", 0644), 0);
        b.expect(Op.mkfifo("shared/fifo", 0644), 0);
        b.expect(Op.symlink("file", "shared/link"), 0);
        String sub = b.expect(Op.stat("shared/sub"), 0).detail;
        assertTrue(sub.startsWith("dir 2755 0:50"), "kernel: a new dir in a setgid dir gets its group and S_ISGID: " + sub);
        b.same(Op.stat("shared/file"));
        b.same(Op.stat("shared/fifo"));
        b.same(Op.stat("shared/link"));
        b.shOk("mkdir -p shared/a/b && touch shared/a/b/c && stat -c '%n %a %g' shared/a shared/a/b shared/a/b/c");
        // over a whiteout: an implementation that builds the entry in its workdir must still give it the group
        for (Op make : new Op[]{Op.create("shared/note", 0644), Op.symlink("x", "shared/note"), Op.mkfifo("shared/note", 0600)}) {
            b.expect(Op.unlink("shared/note"), 0);
            b.expect(make, 0);
            String st = b.same(Op.stat("shared/note")).detail;
            assertTrue(st.contains(" 0:50 "), "kernel: group of the setgid dir: " + st);
        }
        b.expect(Op.unlink("shared/note"), 0);
        b.expect(Op.mkdir("shared/note", 0700), 0);
        b.same(Op.stat("shared/note"));
        b.finish();
    }

    /**
     * Issue 18.2: chmod by an owner outside the file's group clears S_ISGID (the kernel's rule, on a
     * lower and an upper file, a directory and through a descriptor); an entry made in a set-gid
     * directory with a default ACL gets the mode that ACL gives (not the mode asked for with S_ISGID
     * added), in place and over a whiteout (built in the workdir), and inherits the ACL. The ACL part
     * not on the libfuse transport, where the kernel applies the umask before strata sees the mode.
     */
    @Test void setgidRulesOfChmodAndOfDefaultAcls() {
        b.expect(Op.chmod("shared/note", 02775).asUser(1000), 0);    // lower, 1000:50, 1000 not in group 50
        assertTrue(b.same(Op.stat("shared/note")).detail.startsWith("file 0775 1000:50"), "kernel: S_ISGID cleared");
        b.expect(Op.create("shared/mine", 0644), 0);                  // upper, group 50 from the set-gid dir
        b.expect(Op.chown("shared/mine", 1000, -1), 0);
        b.expect(Op.chmod("shared/mine", 02755).asUser(1000), 0);
        b.same(Op.stat("shared/mine"));
        b.expect(Op.mkdir("shared/mydir", 0755), 0);
        b.expect(Op.chown("shared/mydir", 1000, -1), 0);
        b.expect(Op.chmod("shared/mydir", 02711).asUser(1000), 0);
        b.same(Op.stat("shared/mydir"));
        b.expect(Op.holdOpen(0, "shared/mine", Posix.O_RDONLY).asUser(1000), 0);
        b.expect(Op.fchmodHeld(0, 02700).asUser(1000), 0);
        b.same(Op.fstatHeld(0));
        b.expect(Op.closeHeld(0), 0);
        if (!Mounter.libfuseTransport() && NativeSupport.onPath("setfacl")) {
            b.shOk("setfacl -d -m u::rwx,g::rwx,o::rx shared && umask 022 && mkdir shared/sub && touch shared/file"
                    + " && rm shared/note && mkdir shared/note && mkdir -p shared/a/b && mknod shared/fifo p"
                    + " && stat -c '%n %A %u:%g' shared/sub shared/file shared/note shared/a shared/a/b shared/fifo"
                    + " && getfacl -cp shared/sub shared/file shared/note shared/a/b shared/fifo");
            String st = b.same(Op.stat("shared/sub")).detail;
            assertTrue(st.startsWith("dir 2775 "), "kernel: the default ACL's mode with S_ISGID: " + st);
        }
        b.finish();
    }

    @Test void deviceNodesAndMountFlags() {
        b.expect(Op.mknod("null", Posix.S_IFCHR | 0666, (1 << 8) | 3), 0);
        b.same(Op.write("null", 0, 100, 1));                   // a device node is usable (no nodev), as on the kernel overlay
        b.same(Op.read("null"));
        same("statvfs: nosuid / nodev / read-only flags, name max, size", root -> {
            long[] v = statvfs(root);
            long flags = v[STATVFS_FLAG];
            return "nosuid=" + ((flags & 2) != 0) + " nodev=" + ((flags & 4) != 0) + " rdonly=" + ((flags & 1) != 0)
                    + " namemax=" + v[STATVFS_NAMEMAX] + " bytes=" + v[STATVFS_BLOCKS] * v[STATVFS_FRSIZE];
        });
        b.finish();
    }

    @Test void whiteoutNamesAreRejectedByStrata() {
        Assumptions.assumeTrue(pair.tgtMounter.name().equals("strata"), "strata-only rule (the kernel allows .wh. names)");
        OpExecutor s = pair.tgtOps;
        for (Op op : new Op[]{Op.create(".wh.x", 0644), Op.mkdir(".wh.d", 0755), Op.symlink("t", ".wh.l"), Op.mkfifo("etc/.wh.p", 0644),
                Op.rename("shadow.txt", ".wh.shadow.txt", 0), Op.link("shadow.txt", "merged/.wh.h"), Op.create(".wh..wh..opq", 0644)}) {
            assertEquals(Errno.EINVAL, s.run(op).errno, "strata must refuse " + op + " with EINVAL (the issue)");
        }
        assertEquals("file", Snapshot.take("t", pair.tgtLayers.mnt).get("shadow.txt").type(), "the refused rename changed nothing");
    }

    // ------------------------------------------------------------------ statvfs

    static final int STATVFS_FRSIZE = 1, STATVFS_BLOCKS = 2, STATVFS_FLAG = 9, STATVFS_NAMEMAX = 10;

    /** struct statvfs (x86_64) as 11 longs: bsize, frsize, blocks, bfree, bavail, files, ffree, favail, fsid, flag, namemax. */
    static long[] statvfs(String path) {
        int fd = Tree.check(Posix.openat(Posix.AT_FDCWD, path, Posix.O_RDONLY | Posix.O_DIRECTORY, 0), "open " + path);
        try {
            Pointer buf = Memory.allocateDirect(Posix.RT, 112);
            Tree.check(Posix.fstatvfs(fd, buf), "fstatvfs " + path);
            long[] v = new long[11];
            for (int i = 0; i < 11; i++) v[i] = buf.getLong(i * 8L);
            return v;
        } finally {
            Posix.close(fd);
        }
    }
}
