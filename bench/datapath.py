#!/usr/bin/env python3
"""The data path without FUSE passthrough (issue 14, deliverable 3), as root: strata with
-o passthrough=0 (what rootless podman users get) against fuse-overlayfs and the kernel overlay on
the same small stack, the rows of the rootless podman table that go through the data path.

    sudo scripts/bench.sh datapath [--rounds N] [--systems kernel,fuse-overlayfs,strata,strata-wb,strata-pt]
                                   [--dd-mib N] [--workdir DIR] [--out FILE] [--note TEXT]

The stack (built once in WORKDIR/stack-v1, ~150 MB): lower2 is a copy of /usr/lib/python3.11
(the stdlib, as in the podman image), lower1 a few files over it; stdlib.tar is a tar of it for the
untar row. Every round mounts each system on a fresh upper/workdir (systems interleaved), drops the
page cache before the cold rows, and times:

  find_cold   find . -printf '%i %n %s %T@\\n' after drop_caches on a fresh mount
  copyup      append one line to each lower *.py file (one copy-up each, fsync'ed unless the
              system skips it: fuse-overlayfs does)
  untar       tar -x of stdlib.tar into a new directory of the mount
  dd_write    dd bs=1M count=N conv=fsync of zeros to a new file
  reread1     the first read of that file after the write (dd bs=1M of=/dev/null)
  reread2     the second read
  append_again  one more line to each of those (already copied up) files: the round trips alone

Numbers are medians over the rounds, in seconds. The machine this runs on may be busy: say so with
the numbers (the result file records the load average before and after).
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROWS = [("find_cold", "`find` first time (fresh mount, caches dropped)"),
        ("copyup", "append a line to each lower `*.py` (copy-ups)"),
        ("append_again", "append again to the same files (no copy-up)"),
        ("untar", "untar the stdlib into the mount"),
        ("dd_write", "`dd` N MiB + fsync"),
        ("reread1", "read that file (first time after the write)"),
        ("reread2", "read it again")]


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, executable="/bin/bash", check=True, **kw)


def drop_caches():
    sh("sync")
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def build_stack(work):
    stack = os.path.join(work, "stack-v1")
    if os.path.exists(os.path.join(stack, "ready")):
        return stack
    src = "/usr/lib/python3.11"
    if not os.path.isdir(src):
        sys.exit("datapath: " + src + " is missing (apt-get install python3.11)")
    shutil.rmtree(stack, ignore_errors=True)
    os.makedirs(os.path.join(stack, "lower1"), mode=0o755)
    sh(f"cp -a {src} {stack}/lower2")
    # a few files of the top layer over the stdlib
    for name in ("json/__init__.py", "os.py", "site.py"):
        shutil.copy2(os.path.join(stack, "lower2", name), os.path.join(stack, "lower1", os.path.basename(name)))
    sh(f"tar -C {src} -cf {stack}/stdlib.tar .")
    open(os.path.join(stack, "ready"), "w").close()
    return stack


def mount(system, stack, upper, work, mnt, home):
    lowers = f"{stack}/lower1:{stack}/lower2"
    opts = f"lowerdir={lowers},upperdir={upper},workdir={work}"
    if system == "kernel":
        cmd = ["mount", "-t", "overlay", "overlay", "-o", opts, mnt]
    elif system == "fuse-overlayfs":
        cmd = ["fuse-overlayfs", "-o", opts, mnt]
    elif system == "strata":
        cmd = [os.path.join(home, "bin", "strata"), "mount", "-o", opts + ",passthrough=0", mnt]
    elif system == "strata-wb":
        cmd = [os.path.join(home, "bin", "strata"), "mount", "-o", opts + ",passthrough=0,writeback=on", mnt]
    elif system == "strata-pt":
        cmd = [os.path.join(home, "bin", "strata"), "mount", "-o", opts, mnt]
    else:
        sys.exit("datapath: unknown system " + system)
    subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL if system == "fuse-overlayfs" else None)


def umount(mnt):
    for cmd in (["umount", mnt], ["umount", "-l", mnt]):
        if subprocess.run(cmd, stderr=subprocess.DEVNULL).returncode == 0:
            return


def timed(cmd, cwd):
    t = time.perf_counter()
    subprocess.run(cmd, shell=True, executable="/bin/bash", check=True, cwd=cwd, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def one_round(system, stack, base, home, dd_mib):
    upper, work, mnt = (os.path.join(base, d) for d in ("upper", "work", "mnt"))
    for d in (upper, work):
        shutil.rmtree(d, ignore_errors=True)
    for d in (upper, work, mnt):
        os.makedirs(d, mode=0o755, exist_ok=True)
    drop_caches()
    mount(system, stack, upper, work, mnt, home)
    r = {}
    try:
        r["find_cold"] = timed("find . -printf '%i %n %s %T@\\n' > /dev/null", mnt)
        # the same page cache for every system before the copy-ups: the lower data read directly
        sh(f"cat $(find {stack}/lower1 {stack}/lower2 -name '*.py') > /dev/null")
        sh("sync")
        r["copyup"] = timed("find . -name '*.py' -type f -print0 | while IFS= read -r -d '' f; do echo '# x' >> \"$f\"; done", mnt)
        r["append_again"] = timed("find . -name '*.py' -type f -print0 | while IFS= read -r -d '' f; do echo '# y' >> \"$f\"; done", mnt)
        sh("sync")
        r["untar"] = timed(f"mkdir -m 0755 untar && tar -C untar -xf {stack}/stdlib.tar", mnt)
        sh("sync")
        r["dd_write"] = timed(f"dd if=/dev/zero of=dd.bin bs=1M count={dd_mib} conv=fsync status=none", mnt)
        r["reread1"] = timed("dd if=dd.bin of=/dev/null bs=1M status=none", mnt)
        r["reread2"] = timed("dd if=dd.bin of=/dev/null bs=1M status=none", mnt)
    finally:
        umount(mnt)
        for d in (upper, work):  # the round's writes (the dd file alone is N MiB)
            shutil.rmtree(d, ignore_errors=True)
    return r


def main():
    ap = argparse.ArgumentParser(description="the data path without passthrough against fuse-overlayfs (root)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--systems", default="kernel,fuse-overlayfs,strata")
    ap.add_argument("--dd-mib", type=int, default=512)
    ap.add_argument("--workdir", default=os.environ.get("STRATA_BENCH_DIR", "/var/tmp/strata-bench") + "/datapath")
    ap.add_argument("--out", help="markdown result (default bench/results/tmp/datapath-DATE-TIME.md)")
    ap.add_argument("--note", help="a bold line under the title (e.g. what else ran)")
    ap.add_argument("--strata-home", default=REPO)
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("datapath: needs root (it mounts and drops the page cache)")
    systems = a.systems.split(",")
    if "fuse-overlayfs" in systems and not shutil.which("fuse-overlayfs"):
        print("datapath: fuse-overlayfs not installed: left out", file=sys.stderr)
        systems.remove("fuse-overlayfs")
    os.makedirs(a.workdir, mode=0o755, exist_ok=True)
    stack = build_stack(a.workdir)
    load0 = open("/proc/loadavg").read().split()[:3]
    results = {s: [] for s in systems}
    for i in range(a.rounds):
        for s in systems:
            r = one_round(s, stack, os.path.join(a.workdir, "run", s), a.strata_home, a.dd_mib)
            results[s].append(r)
            print(f"[datapath] round {i + 1} {s:15s} " + " ".join(f"{k}={v:.3f}" for k, v in r.items()), file=sys.stderr)
    load1 = open("/proc/loadavg").read().split()[:3]
    rev = subprocess.run(["git", "-C", a.strata_home, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    med = {(s, k): statistics.median(r[k] for r in results[s]) for s in systems for k, _ in ROWS}
    lines = [f"# data path without passthrough, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
             f"`scripts/bench.sh datapath --rounds {a.rounds} --systems {a.systems} --dd-mib {a.dd_mib}`, strata at {rev};"
             f" load average {' '.join(load0)} before, {' '.join(load1)} after. Medians of {a.rounds} interleaved rounds, seconds."
             " `strata` is `-o passthrough=0`, `strata-wb` `-o passthrough=0,writeback=on` (the kernel's writeback cache),"
             " `strata-pt` the default (passthrough as root).", ""]
    if a.note:
        lines[1:1] = ["", f"**{a.note}**"]
    lines.append("| row | " + " | ".join(systems) + (" | strata/fuse-overlayfs |" if "strata" in systems and "fuse-overlayfs" in systems else ""))
    lines.append("|---|" + "---:|" * len(systems) + ("---:|" if "strata" in systems and "fuse-overlayfs" in systems else ""))
    for k, label in ROWS:
        row = f"| {label.replace('N MiB', str(a.dd_mib) + ' MiB')} | " + " | ".join(f"{med[(s, k)]:.3f}" for s in systems)
        if "strata" in systems and "fuse-overlayfs" in systems:
            row += f" | {med[('strata', k)] / med[('fuse-overlayfs', k)]:.2f}" if med[("fuse-overlayfs", k)] > 0 else " | –"
        lines.append(row + " |")
    lines += ["", "Every round:", ""]
    for s in systems:
        for i, r in enumerate(results[s]):
            lines.append(f"- {s} round {i + 1}: " + ", ".join(f"{k} {v:.3f}" for k, v in r.items()))
    out = a.out or os.path.join(REPO, "bench", "results", "tmp", time.strftime("datapath-%Y-%m-%d-%H%M%S.md", time.gmtime()))
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"[datapath] written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
