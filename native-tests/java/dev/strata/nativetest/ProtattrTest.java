package dev.strata.nativetest;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The append-only and immutable flags (chattr +a / +i), which the kernel overlay keeps in
 * overlay.protattr on the upper file and enforces on its own inode, against the kernel overlay:
 * set through the mount on lower files (copied up), upper files and directories, then every operation
 * the VFS refuses for them (writes without O_APPEND, O_TRUNC, truncate, fallocate, chmod, chown,
 * explicit times, xattrs, unlink, rename, link, new names in an immutable directory, removals from an
 * append-only one) and those it allows (reads, appends, touch of an append-only file, changes to the
 * entries of an immutable directory), errno by errno through the tools' messages; lsattr; chattr by
 * uid 1000 (EPERM: CAP_LINUX_IMMUTABLE); a remount keeps them; chattr -i / -a frees them; a lower file
 * immutable in its own layer. Then each implementation's upper read by the other.
 */
@Tag("native")
class ProtattrTest {
    private Pair pair;
    private final List<Path> lowerImmutable = new ArrayList<>();

    @AfterEach void tearDown() {
        // the flags go first: an immutable file cannot be deleted, so the pair's tree would stay behind
        for (Path p : lowerImmutable) NativeSupport.Proc.run(p.getParent(), 30, "chattr", "-i", p.toString());
        if (pair == null) return;
        pair.close();
        // a test that failed half way leaves flags it set through the mounts in the uppers (unmounted now)
        if (Files.exists(pair.dir) && !Boolean.getBoolean("strata.keepFailed")) {
            NativeSupport.Proc.run(pair.dir, 60, "chattr", "-R", "-f", "-ia", pair.dir.toString());
            NativeSupport.deleteTree(pair.dir);
        }
    }

    /** Runs a command; prints the command, its exit code and its output (stderr: the errno's message). */
    static final String R = "r() { out=$(\"$@\" 2>&1); echo \"$* -> $? $out\"; }\n";
    static final String U = "U='setpriv --reuid=1000 --regid=1000 --clear-groups --inh-caps=-all'\n";

    private LayerSet layers(Path root) {
        LayerSet s = LayerSet.create(root, 1);
        Path l = s.lowers.get(0);
        try {
            Files.writeString(l.resolve("lf"), "lower\n");
            Files.writeString(l.resolve("lg"), "lower g\n");
            Files.createDirectories(l.resolve("ld"));
            Files.writeString(l.resolve("ld/c"), "c\n");
            Files.createDirectories(l.resolve("ld2"));
            Files.writeString(l.resolve("ld2/c"), "c2\n");
            Files.writeString(l.resolve("li"), "immutable in its layer\n");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        // a lower file immutable in its own layer: the overlay shows the real file's flag (ovl_copyflags)
        NativeSupport.Proc.Result r = NativeSupport.Proc.run(l, 30, "chattr", "+i", "li");
        if (r.exit != 0) fail("chattr +i on the lower layer's file system: " + r);
        lowerImmutable.add(l.resolve("li"));
        return s;
    }

    private Both both(String name) {
        NativeSupport.assumeNativeEnvironment();
        assertTrue(NativeSupport.onPath("chattr") && NativeSupport.onPath("lsattr") && NativeSupport.onPath("setpriv"),
                "needs chattr, lsattr (e2fsprogs) and setpriv");
        pair = new Pair("protattr-" + name, Mounter.kernel(), Mounter.underTest(), this::layers);
        pair.keepOnClose();
        return new Both(name, pair);
    }

    static final String SET = R + U + String.join("\n",
            "echo uf > uf && mkdir ud && echo n > ud/n && echo h > uh",
            "r chattr +i lf; r chattr +a lg; r chattr +i uf; r chattr +i ld; r chattr +a ld2; r chattr +a ud; r chattr +ia uh",
            "r lsattr -d lf lg uf ld ld2 ud uh li",
            "");

    static final String REFUSED_AND_ALLOWED = R + U + String.join("\n",
            // files: may_open, vfs_truncate, notify_change, xattr_permission, may_delete, vfs_link, vfs_fallocate
            "for f in lf lg uf uh li; do",
            "  r sh -c \"echo a >> $f\"; r sh -c \"echo a > $f\"; r cat $f; r truncate -s 0 $f; r touch $f",
            "  r touch -d 2020-01-01 $f; r touch -m $f; r chmod 600 $f; r chown 1 $f; r python3 -c \"import os; os.chown('$f', -1, -1)\"",
            "  r python3 -c \"import os; os.truncate('$f', 1)\"; r setfattr -n user.x -v 1 $f; r setfattr -x user.x $f",
            "  r fallocate -l 100 $f",
            // vfs_fallocate on a descriptor that may write: KEEP_SIZE only on an append-only file
            "  r python3 -c \"import ctypes, os; fd = os.open('$f', os.O_WRONLY | os.O_APPEND); c = ctypes.CDLL(None, use_errno=True); L = ctypes.c_long; "
                    + "print(c.fallocate(fd, 0, L(0), L(100)), ctypes.get_errno(), c.fallocate(fd, 1, L(0), L(200)), ctypes.get_errno())\"",
            "  r python3 -c \"import os; os.open('$f', os.O_RDONLY | os.O_TRUNC)\"",
            "  r python3 -c \"import os; os.close(os.open('$f', os.O_WRONLY | os.O_APPEND))\"",
            "  r rm -f $f; r mv $f $f.2; r mv ld2/c $f; r ln $f $f.l",
            "done",
            // an immutable directory: no new name, no removal, no rename; its entries stay writable
            "r touch ld/new; r mkdir ld/nd; r ln -s x ld/sl; r mknod ld/p p; r rm ld/c; r mv ld/c ld/c2; r mv ud/n ld/n",
            "r sh -c 'echo z >> ld/c'; r cat ld/c; r chmod 700 ld; r rmdir ld; r mv ld ldx; r touch ld; r setfattr -n user.y -v 1 ld",
            // append-only directories: new names yes, removals and renames out no
            "r touch ld2/new; r rm ld2/c; r rm ld2/new; r mv ld2/c ld2/c3; r mv ld2/new ld2/c; r mv uf ld2/uf; r sh -c 'echo z > ld2/c'",
            "r touch ud/n2; r rm ud/n; r mkdir ud/d; r rmdir ud/d; r touch ud; r chmod 700 ud",
            // a write through a descriptor opened before the flag, and ftruncate of it
            "r sh -c 'exec 3>>lg; chattr -a lg && chattr +i lg && echo q >&3 && cat lg; chattr -i lg; chattr +a lg'",
            "r python3 -c \"import os; fd = os.open('lg', os.O_WRONLY | os.O_APPEND); os.ftruncate(fd, 1)\"",
            "r sh -c 'exec 3>>lg; chattr -a lg && chattr +i lg && python3 -c \"import os; os.ftruncate(3, 2)\"; cat lg; chattr -i lg; chattr +a lg'",
            // through a descriptor whose name moved (the directory renamed): fchmod, fsetxattr, futimens refused
            "mkdir dd && echo f > dd/f && r sh -c 'exec 3<>dd/f; chattr +i dd/f && mv dd dd2 && python3 -c \"import os; os.ftruncate(3, 1)\"; "
                    + "python3 -c \"import os; os.fchmod(3, 0o600)\"; python3 -c \"import os; os.setxattr(3, \\\"user.q\\\", b\\\"1\\\")\"; "
                    + "python3 -c \"import os; os.utime(3, (1, 1))\"; chattr -i dd2/f; stat -c \"%s %a\" dd2/f'",
            // only CAP_LINUX_IMMUTABLE changes them (fileattr_set_prepare), owner or not
            "chown 1000 ud/n2",
            "r $U chattr -i uf; r $U chattr -a ud; r $U chattr +i ud/n2; r $U chattr +a ud/n2; r $U chattr +A ud/n2; r $U lsattr ud/n2",
            "r lsattr -d lf lg uf ld ld2 ud uh li ud/n2",
            "");

    static final String CLEAR = R + String.join("\n",
            "r chattr -i lf uf ld li; r chattr -a lg ld2 ud; r chattr -ia uh",
            "r lsattr -d lf lg uf ld ld2 ud uh li",
            "r sh -c 'echo b > lf'; r sh -c 'echo b > li'; r rm uh; r touch ld/new; r rm ld2/c; r cat lf li",
            "");

    @Test void flagsRefuseWhatTheKernelRefuses() {
        Both b = both("ops");
        b.shOk(SET);
        b.shOk(REFUSED_AND_ALLOWED);
        // O_TMPFILE in an immutable directory (vfs_tmpfile); the libfuse transport has no O_TMPFILE at all
        if (!Mounter.libfuseTransport()) b.shOk(R + "r python3 -c \"import os; os.open('ld', os.O_TMPFILE | os.O_WRONLY, 0o600)\"");
        b.remount();
        b.shOk(R + "r lsattr -d lf lg uf ld ld2 ud uh li; r sh -c 'echo x > lf'; r rm ld2/c; r touch ld/x; r sh -c 'echo y >> lg'");
        b.shOk(CLEAR);
        b.finish();
    }

    /**
     * Flags set by one implementation, read by the other (the upper written by the kernel mounted by
     * the target, and the other way round): lsattr and the refusals agree, and clearing works.
     */
    @Test void crossMountBothWays() {
        Both b = both("cross");
        b.shOk(SET);
        b.finish();
        String script = R + "r lsattr -d lf lg uf ld ld2 ud uh li\n"
                + "r sh -c 'echo x > lf'; r sh -c 'echo y >> lg'; r rm ld2/c; r touch ld/x; r rm uh; r cat lg\n"
                + "r chattr -i lf ld; r chattr -a ld2; r sh -c 'echo x > lf'; r touch ld/x; r rm ld2/c\n"
                + "r lsattr -d lf lg ld ld2\n";
        List<String> out = new ArrayList<>();
        // the kernel's upper read by the target, the target's by the kernel
        for (Object[] side : new Object[][]{{Mounter.underTest(), pair.refLayers}, {Mounter.kernel(), pair.tgtLayers}}) {
            LayerSet ls = ((LayerSet) side[1]).withFreshWorkAndMnt("x");
            try (Mount m = ((Mounter) side[0]).mount(ls)) {
                NativeSupport.Proc.Result r = Both.run(m, script);
                assertEquals(0, r.exit, r.toString());
                out.add(r.stdout.replace(m.path().toString(), "$MNT"));
            }
        }
        assertEquals(out.get(0), out.get(1), "the kernel's upper read by the target vs the target's read by the kernel");
        assertTrue(out.get(0).contains("----i---------e------- lf") && out.get(0).contains("echo x > lf -> 2 "),
                "flags read from the other implementation's upper: " + out.get(0));
    }
}
