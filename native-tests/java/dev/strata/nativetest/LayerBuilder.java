package dev.strata.nativetest;

import java.nio.file.Path;
import java.util.Random;

/**
 * Builds the standard three-lower layer set the differential tests share. Every build is identical
 * (same content, owners, modes, xattrs, times), so two copies can be mounted by two implementations.
 *
 * <pre>
 * l2 (bottom)                    l1 (middle)                     l0 (top)
 * etc/passwd, hosts, conf.d/a,b  etc/hosts = whiteout 0/0        etc/conf.d/a.conf overridden
 *                                etc/conf.d/c.conf
 * gone/x, gone/sub/y             gone = whiteout 0/0
 * opq/old1, opq/old2             opq/ opaque (trusted) + new1    opq/top
 * shadow.txt "bottom"            shadow.txt "middle"             shadow.txt "top"
 * merged/from2, merged/sub/s2    merged/from1                    merged/from0, merged/sub/s0
 * tdir/ (dir with child)         tdir = file (hides the dir)
 * tfile (file)                   tfile/ = dir with child
 * data/hl1,hl2,sub/hl3 (3 links) data/ghost                      data/ghost = whiteout 0/0
 * data/big.bin (3 MiB), sparse.img (8 MiB, 2 data extents)
 * usr/bin/tool 04755, usr/lib/libx.so -> libx.so.1               top/a/b/c/deep.txt, top/h1,a/h2 (links)
 * shared/ 02775 gid 50, tmp/ 01777, owned 0640 1000:1000, private/ 0700 1001:1001
 * pipe (fifo), xattr.txt user.color/user.bin, caf\xe9, \xff\xfe-dir/inner\x80.txt
 * deldir/ tree (for rm -r)       deldir/mid.txt                  etc-link -> etc, dangling -> nowhere
 * </pre>
 */
public final class LayerBuilder {
    private LayerBuilder() {}

    public static final String NON_UTF8_FILE = Names.bytes('c', 'a', 'f', 0xe9);
    public static final String NON_UTF8_DIR = Names.bytes(0xff, 0xfe, '-', 'd', 'i', 'r');
    public static final String NON_UTF8_INNER = NON_UTF8_DIR + "/" + Names.bytes('i', 'n', 'n', 'e', 'r', 0x80, '.', 't', 'x', 't');

    /** Creates root/{l0,l1,l2,upper,work,mnt} with the standard content. */
    public static LayerSet standard(Path root) {
        LayerSet s = LayerSet.create(root, 3);
        bottom(new Tree(s.lowers.get(2)));
        middle(new Tree(s.lowers.get(1)));
        top(new Tree(s.lowers.get(0)));
        for (Path l : s.lowers) new Tree(l).fixTimes();
        return s;
    }

    /** Deterministic pseudo-random bytes. */
    public static byte[] bytes(long seed, int n) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    static void bottom(Tree t) {
        t.dir("", 0755);
        t.dir("etc", 0755).file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n")
                .file("etc/hosts", "127.0.0.1 localhost\n").file("etc/conf.d/a.conf", "a=bottom\n").file("etc/conf.d/b.conf", "b=1\n");
        t.file("gone/x", "x\n").file("gone/sub/y", "y\n");
        t.file("opq/old1", "old1\n").file("opq/old2", "old2\n");
        t.file("shadow.txt", "bottom version\n");
        t.file("merged/from2", "from2\n").file("merged/sub/s2", "s2\n");
        t.file("tdir/child", "child of a dir hidden by a file\n");
        t.file("tfile", "a file hidden by a dir\n");
        t.file("data/hl1", "hard linked data\n").hardlink("data/hl1", "data/hl2").hardlink("data/hl1", "data/sub/hl3");
        t.file("data/big.bin", bytes(42, 3 * 1024 * 1024 + 123), 0644, 0, 0);
        byte[] block = bytes(7, 8192);
        t.sparse("data/sparse.img", 8L << 20, new long[]{1L << 20, 5L << 20}, block);
        t.file("usr/bin/tool", "#!/bin/sh\necho tool\n", 04755, 0, 0);
        t.file("usr/lib/libx.so.1", bytes(3, 5000), 0644, 0, 0).symlink("usr/lib/libx.so", "libx.so.1");
        t.dir("shared", 02775, 0, 50).file("shared/note", "shared\n", 0664, 1000, 50);
        t.dir("tmp", 01777);
        t.file("owned", "owned by 1000\n", 0640, 1000, 1000);
        t.dir("private", 0700, 1001, 1001).file("private/secret", "secret\n", 0600, 1001, 1001);
        t.fifo("pipe", 0644);
        t.file("xattr.txt", "has xattrs\n").xattr("xattr.txt", "user.color", "blue")
                .rawXattr("xattr.txt", "user.bin", new byte[]{0, 1, 2, (byte) 0xff});
        t.file(NON_UTF8_FILE, "latin-1 name\n").file(NON_UTF8_INNER, "inner\n");
        t.file("deldir/a", "a\n").file("deldir/sub/b", "b\n").file("deldir/sub/deeper/c", "c\n").symlink("deldir/link", "a");
        t.file("sym-owned-target", "t\n").symlink("sym-owned", "sym-owned-target", 1000, 1000);
    }

    static void middle(Tree t) {
        t.dir("", 0755);
        t.dir("etc", 0755).whiteout("etc/hosts").file("etc/conf.d/c.conf", "c=middle\n");
        t.whiteout("gone");
        t.dir("opq", 0755).opaque("opq").file("opq/new1", "new1\n");
        t.file("shadow.txt", "middle version\n");
        t.file("merged/from1", "from1\n");
        t.file("tdir", "a file over a dir\n");
        t.file("tfile/inside", "a dir over a file\n");
        t.file("data/ghost", "ghost\n");
        t.file("deldir/mid.txt", "mid\n");
        t.dir("usr", 0755).dir("usr/bin", 0755).file("usr/bin/tool2", "#!/bin/sh\necho tool2\n", 0755, 0, 0);
    }

    static void top(Tree t) {
        t.dir("", 0755);
        t.file("etc/conf.d/a.conf", "a=top\n");
        t.file("opq/top", "top of opaque\n");
        t.file("shadow.txt", "top version\n");
        t.file("merged/from0", "from0\n").file("merged/sub/s0", "s0\n");
        t.whiteout("data/ghost");
        t.file("top/a/b/c/deep.txt", "deep\n").xattr("top", "user.dirattr", "1");
        t.file("top/h1", "top hard link\n").hardlink("top/h1", "top/a/h2");
        t.symlink("etc-link", "etc").symlink("dangling", "nowhere").symlink("abs", "/nonexistent-strata-test/passwd");
    }
}
