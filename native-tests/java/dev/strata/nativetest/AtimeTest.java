package dev.strata.nativetest;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Access times (issue 18 item 3) and the times a write through a shared mapping sets (item 4), against
 * the kernel overlay mounted with the same mount flag ({@code relatime} by default, {@code noatime},
 * {@code strictatime}): for each access (read, a second read, a read after a write, a mapping, an
 * exec of a script and of a binary) whether the file's atime changed, of upper and lower files alike;
 * and the flag /proc/mounts shows. Every file starts with atime and mtime in 2019, so the first access
 * is one relatime updates; a second access (50 ms later, past the coarse clock's tick) is not.
 */
@Tag("native")
class AtimeTest {
    private Pair pair;

    @AfterEach void tearDown() { if (pair != null) pair.close(); }

    /** The layers: a lower and an upper file of each kind, every time in 2019. */
    static LayerSet layers(Path root, String options) {
        LayerSet s = LayerSet.create(root, 2); // two lowers: the kernel overlay mounts no single lower read-only
        String script = "set -e\n"
                + "for d in " + s.lowers.get(0) + ":l " + s.upper + ":u; do dir=${d%:*}; p=${d##*:}\n"
                + "  echo data > $dir/${p}f; echo data > $dir/${p}g; echo data > $dir/${p}m; echo data > $dir/${p}w\n"
                + "  printf '#!/bin/sh\\ntrue\\n' > $dir/${p}x; chmod 755 $dir/${p}x; cp /bin/true $dir/${p}b\n"
                + "  mkdir $dir/${p}d; echo z > $dir/${p}d/z\n"
                + "  touch -h -d '2019-01-01 00:00:00' $dir/${p}d/z $dir/${p}?\n"
                + "done\n";
        NativeSupport.Proc.Result r = NativeSupport.Proc.run(root, 60, "bash", "-c", script);
        if (r.exit != 0) throw new IllegalStateException("cannot build the layers: " + r);
        return options == null ? s : s.withOptions(options);
    }

    /** A shell function: acc NAME FILE COMMAND... runs the command and says whether FILE's atime changed. */
    static final String ACC = "acc() { local n=$1 f=$2; shift 2; local b; b=$(stat -c %x \"$f\"); \"$@\" >/dev/null\n"
            + "  if [ \"$(stat -c %x \"$f\")\" = \"$b\" ]; then echo \"$n: atime kept\"; else echo \"$n: atime changed\"; fi; }\n"
            + "mapread() { python3 -c 'import mmap,sys; f=open(sys.argv[1],\"rb\"); m=mmap.mmap(f.fileno(),0,prot=mmap.PROT_READ); m[:]' \"$1\"; }\n"
            + "flags() { awk -v m=\"$MNT\" '$2==m {print $4}' /proc/mounts | tr , '\\n' | grep -x -e noatime -e relatime -e strictatime -e nodiratime | sort | tr '\\n' ' '; echo; }\n";

    /** Every access of the scenario, on the upper file (u*) and the lower one (l*) of each kind. */
    static final String ACCESSES = "for p in u l; do\n"
            + "  acc $p-read ${p}f cat ${p}f; sleep 0.05\n"
            + "  acc $p-read-again ${p}f cat ${p}f; sleep 0.05\n"
            + "  acc $p-mapped ${p}m mapread ${p}m; sleep 0.05\n"
            + "  acc $p-exec-script ${p}x ./${p}x; sleep 0.05\n"
            + "  acc $p-exec-binary ${p}b ./${p}b; sleep 0.05\n"
            + "  acc $p-listed ${p}d ls ${p}d; sleep 0.05\n"
            + "done\n"
            // a write (which copies a lower file up) makes the next read one that relatime updates, not the one after
            + "for p in u l; do\n"
            + "  echo more >> ${p}w; sleep 0.05\n"
            + "  acc $p-read-after-write ${p}w cat ${p}w; sleep 0.05\n"
            + "  acc $p-read-after-write-again ${p}w cat ${p}w; sleep 0.05\n"
            + "done\n";

    private Both both(String name, String options) {
        pair = new Pair("atime-" + name, Mounter.kernel(), Mounter.underTest(), root -> layers(root, options));
        pair.keepOnClose();
        return new Both(name, pair);
    }

    /**
     * The lower files the scenario read, mapped, ran, listed and copied up still have their 2019 atime
     * on disk: nothing done through a mount touches a lower layer (symlinks aside: see README). Seen on the layer
     * itself, since a read-only FUSE mount never asks for an atime again.
     */
    private void lowerAtimesKept() {
        for (LayerSet s : new LayerSet[]{pair.refLayers, pair.tgtLayers}) {
            for (String f : new String[]{"lf", "lm", "lx", "lb", "lw", "ld", "ld/z"}) {
                Path p = s.lowers.get(0).resolve(f);
                try {
                    java.nio.file.attribute.FileTime t = (java.nio.file.attribute.FileTime) java.nio.file.Files.getAttribute(p, "lastAccessTime",
                            java.nio.file.LinkOption.NOFOLLOW_LINKS);
                    if (!t.toString().startsWith("2019-01-01")) fail("the lower file " + p + " has atime " + t + " after the mount read it (2019-01-01 before)");
                } catch (java.io.IOException e) {
                    throw new IllegalStateException(e);
                }
            }
        }
    }

    /** What the reference says, as lines; and the scenario's own expectation of it (so a wrong scenario shows). */
    private static void expect(Both.Shell r, String name, String... lines) {
        for (String l : lines) {
            if (!r.ref.stdout.contains(l + "\n")) fail("[" + name + "] the kernel overlay does not give '" + l + "' (the scenario is wrong here):\n" + r.ref.stdout);
        }
    }

    @Test void relatimeByDefault() {
        NativeSupport.assumeNativeEnvironment();
        Both b = both("relatime", null);
        Both.Shell r = b.shOk(ACC + "flags\n" + ACCESSES);
        expect(r, "relatime", "relatime ", "u-read: atime changed", "u-read-again: atime kept", "l-read: atime kept", "u-listed: atime changed",
                "u-read-after-write: atime changed", "u-read-after-write-again: atime kept");
        b.finish();
        lowerAtimesKept();
    }

    @Test void noatime() {
        NativeSupport.assumeNativeEnvironment();
        Both b = both("noatime", "noatime");
        Both.Shell r = b.shOk(ACC + "flags\n" + ACCESSES);
        expect(r, "noatime", "noatime ", "u-read: atime kept", "u-exec-binary: atime kept", "u-read-after-write: atime kept");
        b.finish();
    }

    /**
     * Every read updates atime. Only where the kernel hands strata's reads to the layer file (FUSE
     * passthrough, root on the kernel transport): a read the kernel's page cache answers never reaches
     * strata (README, "Access times").
     */
    @Test void strictatime() {
        NativeSupport.assumeNativeEnvironment();
        String extra = System.getProperty("strata.mountOptions", "");
        Assumptions.assumeFalse(Mounter.libfuseTransport() || extra.contains("passthrough=0"),
                "strictatime is kept only with FUSE passthrough (kernel transport as root)");
        Both b = both("strictatime", "strictatime");
        Both.Shell r = b.shOk(ACC + ACCESSES);
        expect(r, "strictatime", "u-read: atime changed", "u-read-again: atime changed", "l-read: atime kept");
        b.finish();
    }

    /**
     * A read-only mount: every file is a lower one, which strata has the kernel read itself where it can
     * (FUSE passthrough): no access changes a lower file's atime, as on the kernel overlay.
     */
    @Test void readOnlyMountLeavesLowerAtimes() {
        NativeSupport.assumeNativeEnvironment();
        pair = new Pair("atime-ro", Mounter.kernel(), Mounter.underTest(), root -> layers(root, null).readOnly("ro"));
        pair.keepOnClose();
        Both b = new Both("read-only", pair);
        Both.Shell r = b.shOk(ACC + "acc l-read lf cat lf; sleep 0.05\nacc l-mapped lm mapread lm; sleep 0.05\n"
                + "acc l-exec-script lx ./lx; sleep 0.05\nacc l-exec-binary lb ./lb; sleep 0.05\nacc l-listed ld ls ld\n");
        expect(r, "read-only", "l-read: atime kept", "l-exec-binary: atime kept");
        b.trees();
        pair.unmount();
        pair.refLowers.assertUnchanged("read-only, kernel");
        pair.tgtLowers.assertUnchanged("read-only, " + pair.tgtLabel());
        lowerAtimesKept();
    }

    @Test void nodiratimeIsAMountFlag() {
        NativeSupport.assumeNativeEnvironment();
        Assumptions.assumeFalse(Mounter.libfuseTransport(), "libfuse 2 cannot pass nodiratime to the kernel");
        Both b = both("nodiratime", "nodiratime");
        Both.Shell r = b.shOk(ACC + "flags\nacc u-listed ud ls ud\nacc u-read uf cat uf\n");
        assertEquals("nodiratime relatime \nu-listed: atime kept\nu-read: atime changed", r.ref.stdout.strip(), "what the kernel overlay shows");
        b.finish();
    }

    /**
     * A write through a shared mapping changes mtime and ctime (seen after msync, after munmap without
     * msync, and of the file's other name), of an upper file, a lower one (copied up by the open) and a
     * hard-linked one.
     */
    /**
     * The same for files with one name, which strata opens with FUSE passthrough as root: the kernel
     * writes a shared mapping's pages to the layer file without a request, so only fresh attributes
     * show the times that sets (stats before the open and before the write must not hide them).
     */
    @Test void sharedMappingOfAPassthroughFileSetsMtimeAndCtime() {
        NativeSupport.assumeNativeEnvironment();
        Both b = both("mmap-times-one-name", null);
        b.shOk("times() { python3 - \"$@\" <<'PY'\n"
                + "import mmap, os, sys, time\n"
                + "p = sys.argv[1]\n"
                + "def t(n): s = os.stat(n); return (s.st_mtime_ns, s.st_ctime_ns)\n"
                + "for step, sync in ((0, True), (1, False)):\n"
                + "    a = t(p); fd = os.open(p, os.O_RDWR)\n"
                + "    m = mmap.mmap(fd, 4)\n"
                + "    time.sleep(0.05); b = t(p)\n"
                + "    m[0:2] = b'Y%d' % step\n"
                + "    if sync:\n"
                + "        m.flush(); print(p, 'msync', [x != y for x, y in zip(b, t(p))])\n"
                + "    m.close(); print(p, 'munmap', [x != y for x, y in zip(b, t(p))])\n"
                + "    os.close(fd); print(p, 'close', [x != y for x, y in zip(b, t(p))])\n"
                + "PY\n"
                + "}\n"
                + "times uf && times lf\n");
        b.finish();
    }

    @Test void sharedMappingWritesSetMtimeAndCtime() {
        NativeSupport.assumeNativeEnvironment();
        Assumptions.assumeFalse(Mounter.libfuseTransport(), "libfuse 2 refuses shared mappings of files with several names (README, Transports)");
        Both b = both("mmap-times", null);
        b.shOk("ln uf uf2 && ln lf lf2\n"
                + "times() { python3 - \"$@\" <<'PY'\n"
                + "import mmap, os, sys, time\n"
                + "p, other = sys.argv[1], sys.argv[2]\n"
                + "def t(n): s = os.stat(n); return (s.st_mtime_ns, s.st_ctime_ns)\n"
                + "fd = os.open(p, os.O_RDWR)\n"
                + "for step, sync in ((0, True), (1, False)):\n"
                + "    time.sleep(0.05); b, bo = t(p), t(other)\n"
                + "    m = mmap.mmap(fd, 4)\n"
                + "    m[0:2] = b'X%d' % step\n"
                + "    if sync:\n"
                + "        m.flush(); print(p, 'msync', [x != y for x, y in zip(b, t(p))])\n"
                + "    m.close(); print(p, 'munmap', [x != y for x, y in zip(b, t(p))], 'other name', [x != y for x, y in zip(bo, t(other))])\n"
                + "os.close(fd)\n"
                + "PY\n"
                + "}\n"
                + "times uf uf2 && times lf lf2\n");
        b.finish();
    }
}
