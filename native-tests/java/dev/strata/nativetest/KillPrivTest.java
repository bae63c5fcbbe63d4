package dev.strata.nativetest;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * What a write, truncate, O_TRUNC, fallocate or chown does to S_ISUID, S_ISGID and security.capability,
 * on the kernel overlay and on the target, for lower files (copied up by the operation) and upper
 * files. The kernel transport negotiates FUSE_HANDLE_KILLPRIV_V2 and clears the bits itself where the
 * kernel asks (README, "Transports"); the libfuse transport leaves it to the kernel's own FUSE rules.
 *
 * <p>Every file is named {@code lo|up _ MODE[c] _ OP}: its layer, its mode (c: it also has
 * security.capability = cap_net_raw+ep) and the one operation done to it. Operations by uid 1000, who is
 * not in the files' group 0 unless said: uw write, ut ftruncate, uT truncate(2), uo O_TRUNC, ug write
 * by a member of group 0 (supplementary), uF fallocate, uc write while root holds a read-only open (no
 * passthrough: the page-cache path), uC write through a descriptor opened before the owner set the
 * bits (the file is 1000's). By root: rw write, rt ftruncate, ro O_TRUNC, rc chown 1000:1000,
 * rn chown(-1, -1), rm chmod 0755 and rx setxattr (copy-ups that must keep the capability). Then every
 * file's mode, owner, size and capability must be the same on both mounts.
 */
@Tag("native")
class KillPrivTest {
    /** cap_net_raw+ep as a VFS_CAP_REVISION_2 security.capability value (what setcap writes). */
    static final byte[] CAP_NET_RAW = {1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    static final String[] USER_MODES = {"6777", "6767", "2767", "4777", "0777c", "6777c"};
    static final String[] USER_OPS = {"uw", "ut", "uT", "uo", "ug", "uF", "uc", "uC"};
    /**
     * Root's write to a file with set-id bits and a capability is left out: the kernel keeps the bits,
     * strata clears them, because the SETATTR the kernel sends strata for it is the same as chown(-1, -1)'s,
     * which must clear them (AttrOps#setattr).
     */
    static final String[] ROOT_MODES = {"6777", "6767", "0777c"};
    static final String[] ROOT_OPS = {"rw", "rt", "ro", "rc", "rn", "rm", "rx"};

    static final String SCRIPT = String.join("\n",
            "U='setpriv --reuid=1000 --regid=1000 --clear-groups'",
            "G='setpriv --reuid=1000 --regid=1000 --groups=0'",
            "for f in $(ls | sort); do",
            "  m=${f#*_}; m=${m%%_*}; m=${m%c}",
            "  case ${f##*_} in",
            "    uw) $U sh -c \"echo x >> $f\" ;;",
            "    ut) $U truncate -s 2 $f ;;",
            "    uT) $U perl -e 'truncate($ARGV[0], 3) or die \"$!\\n\"' $f ;;",
            "    uo) $U sh -c \": > $f\" ;;",
            "    ug) $G sh -c \"echo x >> $f\" ;;",
            "    uF) $U fallocate -l 8192 $f ;;",
            "    uc) sh -c \"exec 3< $f; $U sh -c 'echo x >> $f'\" ;;",
            "    uC) $U sh -c \"exec 3>> $f && chmod $m $f && echo x >&3\" ;;",
            "    rw) echo y >> $f ;;",
            "    rt) truncate -s 2 $f ;;",
            "    ro) : > $f ;;",
            "    rc) chown 1000:1000 $f ;;",
            "    rn) perl -e 'chown(-1, -1, $ARGV[0]) or die \"$!\\n\"' $f ;;",
            "    rm) chmod 0755 $f ;;",
            "    rx) setfattr -n user.x -v 1 $f ;;",
            "    hl) $U sh -c \"echo x >> $f\" ;;",
            "  esac || echo \"$f: failed\"",
            "done",
            "for f in $(ls | sort); do",
            "  echo \"$(stat -c '%n %a %u:%g %s' $f) $(getfattr -h -n security.capability -e hex $f 2>/dev/null | sed -n 's/^security.capability=//p')\"",
            "done");

    private Pair pair;

    @AfterEach void tearDown() { if (pair != null) pair.close(); }

    static boolean libfuse() { return Mounter.libfuseTransport(); }

    /** Lower files and upper files, one per case; in the upper also a set-id file with two names (direct I/O on strata). */
    static LayerSet layers(Path root) {
        LayerSet s = LayerSet.create(root, 1);
        for (Tree t : new Tree[]{new Tree(s.lowers.get(0)), new Tree(s.upper)}) {
            String pre = t.root().equals(s.upper) ? "up" : "lo";
            t.dir("", 0755);
            for (String m : USER_MODES) for (String op : USER_OPS) {
                // the libfuse transport gets the kernel's own FUSE rule: S_ISGID only goes with group-execute
                // (fs/fuse/dir.c fuse_setattr), where the VFS also clears it for a caller outside the group
                if (libfuse() && (m.equals("6767") || m.equals("2767")) && !op.equals("ug") && !op.equals("uC")) continue;
                file(t, pre + "_" + m + "_" + op, m, op.equals("uC"));
            }
            for (String m : ROOT_MODES) for (String op : ROOT_OPS) file(t, pre + "_" + m + "_" + op, m, false);
        }
        // libfuse 2 drops the kernel's FUSE_WRITE_KILL_SUIDGID of a direct-I/O write: strata decides it itself there
        new Tree(s.upper).file("up_6777_hl", "data\n", 06777, 0, 0).hardlink("up_6777_hl", "up_6777_hl2");
        new Tree(s.upper).file("up_2757_hl", "data\n", 02757, 0, 0).hardlink("up_2757_hl", "up_2757_hl2");
        for (Path l : s.lowers) new Tree(l).fixTimes();
        return s;
    }

    /** "6767c": mode 06767 with a capability. uC files start as 1000's 0666 (the owner sets the bits while writing). */
    private static void file(Tree t, String name, String mode, boolean ownerSetsBits) {
        boolean cap = mode.endsWith("c");
        int m = Integer.parseInt(cap ? mode.substring(0, mode.length() - 1) : mode, 8);
        if (ownerSetsBits) t.file(name, "data\n", 0666, 1000, 1000);
        else t.file(name, "data\n", m, 0, 0);
        if (cap) t.rawXattr(name, "security.capability", CAP_NET_RAW);
    }

    @Test void setIdBitsAndCapabilitiesAsTheKernelOverlay() {
        NativeSupport.assumeNativeEnvironment();
        for (String tool : new String[]{"setpriv", "getfattr", "setfattr", "perl", "fallocate"}) {
            org.junit.jupiter.api.Assumptions.assumeTrue(NativeSupport.onPath(tool), "native test skipped: no " + tool);
        }
        pair = new Pair("killpriv", Mounter.kernel(), Mounter.underTest(), KillPrivTest::layers);
        pair.keepOnClose();
        Both b = new Both("killpriv", pair);
        NativeSupport.Proc.Result k = Both.run(pair.ref, SCRIPT), s = Both.run(pair.tgt, SCRIPT);
        Map<String, String> ref = lines(k.stdout), tgt = lines(s.stdout);
        assertEquals("", k.stderr.strip(), "the script fails on the reference (a wrong scenario)");

        // the reference, where the outcome is fixed (else the scenario, or the machine, is not what it seems)
        expect(ref, "up_6777_uw", "777 0:0 7");              // a non-root write clears both (group-execute set)
        expect(ref, "up_6767_ug", "2767 0:0 7");             // S_ISGID without group-execute stays for a member
        expect(ref, "lo_6777_rw", "6777 0:0 7");             // root (CAP_FSETID) keeps them
        expect(ref, "lo_0777c_rw", "777 0:0 7");             // a write removes the capability, whoever writes
        expect(ref, "lo_0777c_rm", "755 0:0 5 0x0100000200200000000000000000000000000000"); // copy-up keeps it
        expect(ref, "up_6777_rc", "777 1000:1000 5");        // chown clears them, even root's
        if (!libfuse()) expect(ref, "up_6767_uw", "767 0:0 7"); // outside the group: S_ISGID goes too
        expect(ref, "up_2757_hl", "757 0:0 7");              // so through a name of a file with two (direct I/O on strata)

        List<String> diff = new ArrayList<>();
        for (Map.Entry<String, String> e : ref.entrySet()) {
            String t = tgt.get(e.getKey());
            if (!e.getValue().equals(t)) diff.add(e.getKey() + ": " + pair.refLabel() + " " + e.getValue() + " / " + pair.tgtLabel() + " " + t);
        }
        for (String n : tgt.keySet()) if (!ref.containsKey(n)) diff.add(n + ": only on " + pair.tgtLabel() + ": " + tgt.get(n));
        if (!diff.isEmpty() || !k.stderr.equals(s.stderr)) {
            fail("set-id bits / capabilities differ (name: mode owner size capability):\n  " + String.join("\n  ", diff)
                    + (k.stderr.equals(s.stderr) ? "" : "\nstderr: " + pair.refLabel() + ": " + k.stderr + "\n" + pair.tgtLabel() + ": " + s.stderr)
                    + pair.targetLog());
        }
        b.finish();
    }

    private static void expect(Map<String, String> ref, String name, String want) {
        assertEquals(want, ref.get(name), "the kernel overlay's result for " + name + " (the scenario is wrong, or the kernel differs on this machine)");
    }

    /** "name rest..." lines (plus any "name: failed" lines) keyed by name. */
    private static Map<String, String> lines(String out) {
        Map<String, String> m = new LinkedHashMap<>();
        for (String l : out.split("\n")) {
            if (l.isBlank()) continue;
            int sp = l.indexOf(' ');
            String key = sp < 0 ? l : l.substring(0, sp);
            String val = sp < 0 ? "" : l.substring(sp + 1).strip();
            m.merge(key, val, (a, c) -> a + " | " + c);
        }
        return m;
    }
}
