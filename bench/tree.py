#!/usr/bin/env python3
"""find + stat over a large generated tree: time of each pass and the daemon's memory after it.

Run through `scripts/bench.sh tree [--entries 300000|1000000|both] [--runs N] ...` (root). The trees
are generated once in WORKDIR/trees (600 directories x 500 files = 300,000 entries; 2,000 x 500 =
1,000,000) on the file system of the uppers, workdirs and mountpoints. For each run, and for each
system in turn (interleaved, so that a busy moment hits all of them alike): a fresh mount over the
tree (one lower layer, an empty upper), `echo 3 > /proc/sys/vm/drop_caches`, pass 1 (cold), pass 2
(warm, same mount), and after each pass the daemon's VmRSS and Pss (/proc/PID/smaps_rollup), read
after SETTLE seconds of quiet, and the daemon's CPU time for each pass. A pass is `find MNT -printf '%s %i\\n' > /dev/null`: `%s` makes find
stat every entry. Medians over the runs go to bench/results/tree-DATE.md (every run listed too).
"""

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import compare  # noqa: E402  (systems, mounts, daemons, drop_caches)

SHAPES = {300000: (600, 500), 1000000: (2000, 500)}
SETTLE = 2.0


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


class StrataNoPassthrough(compare.Strata):
    def __init__(self, home):
        super().__init__(home)
        self.key, self.label = "strata-nopt", "strata -o passthrough=0"

    def mount_cmd(self, lowers, upper, work, mnt):
        cmd = super().mount_cmd(lowers, upper, work, mnt)
        cmd[3] += ",passthrough=0"
        return cmd


class StrataAt(compare.Strata):
    """strata built elsewhere (--base-home: e.g. an older commit), to measure what a change did."""

    def __init__(self, home, label):
        super().__init__(home)
        self.key, self.label = "strata-base", label


def make_tree(workdir, entries):
    """The lower layer of ENTRIES entries, generated once (a .complete marker says it is whole)."""
    dirs, files = SHAPES[entries]
    root = os.path.join(workdir, "trees", f"tree-{entries}")
    lower = os.path.join(root, "lower")
    if os.path.exists(os.path.join(root, ".complete")):
        return lower
    log(f"generating {root}: {dirs} directories x {files} files (once)")
    subprocess.run(["rm", "-rf", root], check=True)
    os.makedirs(lower, mode=0o755)
    data = b"strata tree benchmark\n"
    for d in range(dirs):
        dp = os.path.join(lower, f"d{d:04d}")
        os.mkdir(dp, 0o755)
        for f in range(files - 1):  # the directory itself counts as one entry
            fd = os.open(os.path.join(dp, f"file-{f:04d}.txt"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, data)
            os.close(fd)
    os.sync()
    with open(os.path.join(root, ".complete"), "w") as f:
        f.write(f"{dirs} x {files}\n")
    return lower


def one_run(system, lower, workdir, mounts, logf):
    """Mount fresh, drop caches, two passes; returns {cold, warm, rss1, pss1, rss2, pss2}."""
    base = os.path.join(workdir, "tree-run")
    subprocess.run(["rm", "-rf", base], check=True)
    upper, work, mnt = (os.path.join(base, x) for x in ("upper", "work", "mnt"))
    for d in (upper, work, mnt):
        os.makedirs(d, mode=0o755)
    out = {}
    try:
        compare.drop_caches()
        _, pid = mounts.mount(system, [lower], upper, work, mnt, "d0000", logf)
        compare.drop_caches()
        cpu = compare.cpu_seconds(pid) if pid else None
        for i, key in ((1, "cold"), (2, "warm")):
            t0 = time.perf_counter()
            p = subprocess.run(["find", mnt, "-printf", "%s %i\\n"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
            out[key] = time.perf_counter() - t0
            if p.returncode != 0:
                raise compare.WorkloadError(f"find failed: {p.stderr.decode(errors='replace').strip()[:200]}")
            if pid:
                time.sleep(SETTLE)
                out[f"rss{i}"] = compare.rss_mb(pid)
                out[f"pss{i}"] = compare.pss_mb(pid)
                now = compare.cpu_seconds(pid)
                # the daemon's CPU time (user + system) for the pass: on a shared machine less
                # sensitive to what else runs than the pass's time
                out[f"cpu{i}"] = now - cpu if now is not None and cpu is not None else None
                cpu = now
    finally:
        mounts.umount(mnt)
        subprocess.run(["rm", "-rf", base])
    return out


def fmt(v, unit=""):
    if v is None:
        return "–"
    return f"{v:.2f}{unit}" if unit == "" else f"{v:.1f}{unit}"


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) / 1048576
    java = subprocess.run(["java", "-version"], stderr=subprocess.PIPE, text=True).stderr.splitlines()
    fo = subprocess.run(["fuse-overlayfs", "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                        text=True).stdout.splitlines() if os.path.exists("/usr/bin/fuse-overlayfs") else ["-"]
    rev = subprocess.run(["git", "-C", REPO, "log", "-1", "--format=%h"], stdout=subprocess.PIPE, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                           stdout=subprocess.PIPE, text=True).stdout.strip()
    return (f"{os.cpu_count()} CPUs ({cpu}), RAM {mem:.1f} GiB, {platform.platform()}, "
            f"{java[1] if len(java) > 1 else java[0]}, {next((l for l in fo if l.startswith('fuse-overlayfs')), fo[0])}, strata {rev}{' (uncommitted changes)' if dirty else ''}")


def main(argv):
    ap = argparse.ArgumentParser(prog="scripts/bench.sh tree", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", default="300000", choices=["300000", "1000000", "both"])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--systems", default="strata,strata-nopt,fuse-overlayfs,kernel",
                    help="comma separated: strata, strata-nopt (-o passthrough=0), fuse-overlayfs, kernel")
    ap.add_argument("--workdir", default=os.environ.get("STRATA_BENCH_TREE_DIR", "/var/tmp/strata-bench-tree"))
    ap.add_argument("--out", help="result file (default bench/results/tree-DATE.md)")
    ap.add_argument("--note", default="", help="a line for the result file (e.g. what else ran)")
    ap.add_argument("--strata-home", default=REPO)
    ap.add_argument("--base-home", help="a second strata tree (built: target/strata.jar) measured as system strata-base, "
                    "e.g. a checkout of an older commit; added to --systems")
    a = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("bench: tree needs root (it mounts and drops the page cache)", file=sys.stderr)
        return 2
    if os.environ.get("STRATA_BENCH_NS") != "1":
        os.environ["STRATA_BENCH_NS"] = "1"
        os.execvpe("unshare", ["unshare", "-m", "--propagation", "private", sys.executable,
                               os.path.abspath(__file__)] + argv, os.environ)
    all_systems = {"strata": compare.Strata(a.strata_home), "strata-nopt": StrataNoPassthrough(a.strata_home),
                   "fuse-overlayfs": compare.FuseOverlayfs(), "kernel": compare.Kernel()}
    keys = a.systems.split(",")
    if a.base_home:
        rev = subprocess.run(["git", "-C", a.base_home, "log", "-1", "--format=%h"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True).stdout.strip()
        all_systems["strata-base"] = StrataAt(a.base_home, f"strata at {rev or a.base_home}")
        if "strata-base" not in keys:
            keys.insert(0, "strata-base")
    systems = []
    for k in keys:
        if k not in all_systems:
            print(f"bench: unknown system '{k}' (one of {', '.join(all_systems)})", file=sys.stderr)
            return 2
        why = all_systems[k].available()
        if why:
            log(f"{k} skipped: {why}")
        else:
            systems.append(all_systems[k])
    sizes = [300000, 1000000] if a.entries == "both" else [int(a.entries)]
    os.makedirs(a.workdir, mode=0o755, exist_ok=True)
    logf = os.path.join(a.workdir, "tree-mount.log")
    started = datetime.datetime.now(datetime.timezone.utc)
    results = {}  # (entries, system key) -> list of run dicts
    mounts = compare.Mounts()
    try:
        for entries in sizes:
            lower = make_tree(a.workdir, entries)
            for run in range(a.runs):
                for s in systems:
                    log(f"{entries} entries, run {run + 1}/{a.runs}: {s.label}")
                    r = one_run(s, lower, a.workdir, mounts, logf)
                    log("  " + ", ".join(f"{k} {v:.2f}" for k, v in r.items() if v is not None))
                    results.setdefault((entries, s.key), []).append(r)
    finally:
        mounts.cleanup()
    ended = datetime.datetime.now(datetime.timezone.utc)
    out = a.out or os.path.join(REPO, "bench", "results", f"tree-{started:%Y-%m-%d}.md")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    cols = [("cold", "pass 1 (cold) s", ""), ("warm", "pass 2 (warm) s", ""),
            ("rss1", "VmRSS after 1 (MB)", " MB"), ("pss1", "Pss after 1 (MB)", " MB"),
            ("rss2", "VmRSS after 2 (MB)", " MB"), ("pss2", "Pss after 2 (MB)", " MB"),
            ("cpu1", "daemon CPU pass 1 (s)", ""), ("cpu2", "daemon CPU pass 2 (s)", "")]
    lines = [f"# find + stat over a generated tree ({started:%Y-%m-%d %H:%M}-{ended:%H:%M} UTC)", "",
             f"Command: `scripts/bench.sh tree {' '.join(argv)}`", "",
             f"Machine: {machine()}", ""]
    if a.note:
        lines += [a.note, ""]
    lines += ["Each pass is `find MNT -printf '%s %i\\n' > /dev/null` over one lower layer and an empty upper;",
              "pass 1 on a fresh mount after `echo 3 > /proc/sys/vm/drop_caches`, pass 2 right after on the same mount;",
              f"memory of the daemon process {SETTLE:.0f} s after each pass, and its CPU time (user + system) for each pass",
              f"(the settle time included). Medians of {a.runs} interleaved run(s).", ""]
    for entries in sizes:
        d, f = SHAPES[entries]
        lines += [f"## {entries:,} entries ({d} directories x {f})", "",
                  "| system | " + " | ".join(c[1] for c in cols) + " |",
                  "|---|" + "---:|" * len(cols)]
        for s in systems:
            rs = results.get((entries, s.key), [])
            cells = []
            for key, _, unit in cols:
                vals = [r[key] for r in rs if r.get(key) is not None]
                cells.append(fmt(statistics.median(vals), "") if vals else "–")
            lines.append(f"| {s.label} | " + " | ".join(cells) + " |")
        lines += ["", "Every run:", ""]
        for s in systems:
            for i, r in enumerate(results.get((entries, s.key), [])):
                lines.append(f"- {s.label} run {i + 1}: " + ", ".join(
                    f"{k} {v:.2f}" for k, v in r.items() if v is not None))
        lines.append("")
    with open(out, "w") as fo:
        fo.write("\n".join(lines))
    log(f"results in {out}")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
