package dev.strata.nativetest;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Drives a {@link Pair} step by step for scenario tests: every operation or shell script runs on the
 * reference and on the target, and its results must agree; {@link #finish()} then checks the visible
 * trees, unmounts, compares what the two uppers mean and checks that no lower layer changed.
 */
public final class Both {
    public final Pair p;
    private final String name;
    private final List<String> steps = new ArrayList<>();
    final Snapshot.Options opts = Snapshot.Options.fromProperties();

    public Both(String name, Pair p) {
        this.name = name;
        this.p = p;
    }

    private String context() {
        return "[" + name + "] " + p.refLabel() + " vs " + p.tgtLabel() + p.targetLog() + "\nsteps so far:\n  " + String.join("\n  ", steps);
    }

    /** Runs op on both; the outcomes must be equal. Returns the reference's outcome. */
    public OpExecutor.Outcome same(Op op) {
        OpExecutor.Outcome k = p.refOps.run(op), s = p.tgtOps.run(op);
        steps.add(op + " -> " + k + (k.equals(s) ? "" : " / " + s));
        if (!k.equals(s)) fail(context() + "\noperation results differ: " + op + "\n  " + p.refLabel() + ": " + k + "\n  " + p.tgtLabel() + ": " + s);
        return k;
    }

    /** Runs op on both; both must give errno (0 = success). */
    public OpExecutor.Outcome expect(Op op, int errno) {
        OpExecutor.Outcome k = same(op);
        if (k.errno != errno) {
            fail(context() + "\n" + op + ": the reference gave " + k + ", the scenario expects " + dev.strata.posix.Errno.name(errno)
                    + " (the scenario is wrong, or the kernel differs on this machine)");
        }
        return k;
    }

    /** Runs op on both, returns {reference, target} outcomes without requiring them to agree. */
    public OpExecutor.Outcome[] each(Op op) {
        OpExecutor.Outcome k = p.refOps.run(op), s = p.tgtOps.run(op);
        steps.add(op + " -> " + k + " / " + s);
        return new OpExecutor.Outcome[]{k, s};
    }

    /** The result of a script on both sides, with each mount's path replaced by $MNT. */
    public static final class Shell {
        public final NativeSupport.Proc.Result ref, tgt;
        Shell(NativeSupport.Proc.Result ref, NativeSupport.Proc.Result tgt) { this.ref = ref; this.tgt = tgt; }
    }

    /** Runs a bash script in each mount (cwd = mount, $MNT = mount); exit code, stdout and stderr must match. */
    public Shell sh(String script) {
        NativeSupport.Proc.Result k = run(p.ref, script), s = run(p.tgt, script);
        String kOut = norm(k, p.ref), sOut = norm(s, p.tgt);
        steps.add("sh: " + script.strip().replace("\n", "; ") + " -> exit " + k.exit);
        if (k.exit != s.exit || !kOut.equals(sOut)) {
            fail(context() + "\nshell results differ for: " + script + "\n--- " + p.refLabel() + ":\n" + kOut
                    + "\n--- " + p.tgtLabel() + ":\n" + sOut);
        }
        return new Shell(k, s);
    }

    /** Like {@link #sh} but the script must also succeed (exit 0) on the reference. */
    public Shell shOk(String script) {
        Shell r = sh(script);
        if (r.ref.exit != 0) fail(context() + "\nthe script fails on the reference (a wrong scenario): " + script + "\n" + norm(r.ref, p.ref));
        return r;
    }

    static NativeSupport.Proc.Result run(Mount m, String script) {
        Map<String, String> env = new HashMap<>();
        env.put("MNT", m.path().toString());
        env.put("TZ", "UTC");
        return NativeSupport.Proc.run(m.path(), 120, env, List.of("bash", "-c", "set -o pipefail\n" + script));
    }

    private static String norm(NativeSupport.Proc.Result r, Mount m) {
        String mnt = m.path().toString();
        return ("exit " + r.exit + "\nstdout:\n" + r.stdout + "\nstderr:\n" + r.stderr).replace(mnt, "$MNT");
    }

    /** The visible trees must be equal now. */
    public void trees() {
        List<String> d = p.treeDiff(opts, 40);
        if (!d.isEmpty()) fail(context() + "\nthe trees differ:\n  " + String.join("\n  ", d));
    }

    /** Trees equal; unmount; uppers mean the same; lowers untouched. */
    public void finish() {
        trees();
        p.unmount();
        List<String> ud = Snapshot.diff(Snapshot.upperMeaning(p.refLabel(), p.refLayers.upper, p.refLayers.lowers),
                Snapshot.upperMeaning(p.tgtLabel(), p.tgtLayers.upper, p.tgtLayers.lowers), opts, 40);
        if (!ud.isEmpty()) fail(context() + "\nthe upper layers mean different things:\n  " + String.join("\n  ", ud));
        p.refLowers.assertUnchanged(context());
        p.tgtLowers.assertUnchanged(context());
    }

    /** Remounts both (same layers, fresh mounts). */
    public void remount() {
        trees();
        p.unmount();
        p.mount();
        steps.add("(remounted both)");
    }

    public void note(String s) { steps.add("# " + s); }
}
