#!/usr/bin/env python3
"""Rootless podman: its own kernel overlay, fuse-overlayfs and strata as overlay.mount_program.

Run through `scripts/bench.sh podman [--rounds N]` or `bench/rootless.sh`; bench/README.md
("rootless, no passthrough") describes the method. Needs root to prepare the benchmark user
(subordinate ids, a /dev/fuse ACL) and to read the mount programs' memory; podman itself runs as
that user, with every store, runtime and temp directory under one temp dir that is removed at the end.
"""

import argparse
import datetime
import fcntl
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
IMAGE = "localhost/strata-bench:latest"
RUN_FLAGS = ["--runtime", "runc", "--network", "none"]
LOCK = "/run/strata-rootless-bench.lock"
OUTSIDE = ["/var/lib/containers", "/run/containers", "/run/libpod", "/run/runc", "/run/crun"]
PY_IMPORT = "python3 -c 'import json, email, http.client'"
COPYUP_LIST = "find /usr/lib/python3.11 -name '*.py' > /tmp/py-files"
COPYUP_LOOP = "n=0; while read -r f; do echo '# strata bench' >> \"$f\"; n=$((n+1)); done < /tmp/py-files; echo $n"
RM_TREES = "/usr/share/zoneinfo /usr/lib/x86_64-linux-gnu/perl-base"
SYSTEMS = ["kernel", "fuse-overlayfs", "strata"]
ALL_SYSTEMS = SYSTEMS + ["strata-wb"]
FS_TYPE = {"kernel": "overlay", "fuse-overlayfs": "fuse.fuse-overlayfs", "strata": "fuse.strata", "strata-wb": "fuse.strata"}
# strata-wb (not a default column): strata with the writeback cache, which a rootless user turns on with
# storage.conf's `mountopt = "writeback=on"` (podman hands mount options to the mount program)
MOUNTOPT = {"strata-wb": "writeback=on"}


class BenchError(Exception):
    """A failure that ends the run with one line."""


def log(msg):
    print(f"[rootless] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------- the rows
# key, label, unit ("s" or "MB"), kind: "host" (timed around the podman command), "exec" (timed inside
# the work container by stopwatch), "mem" (read from /proc)
ROWS = [
    ("run_true", "`podman run --rm IMG true` (whole command; median of 3 per round)", "s"),
    ("keepid_first", "`podman run --rm --userns=keep-id IMG id -u`, first run in the store", "s"),
    ("keepid_later", "the same, later runs (median of 2 per round)", "s"),
    ("idle_pss", "an idle container, alone: Pss of its mount program (MB)", "MB"),
    ("find_cold", "`find / -xdev \\| wc -l` first time", "s"),
    ("find_warm", "`find / -xdev \\| wc -l` again", "s"),
    ("py_first", f"`{PY_IMPORT}` first time", "s"),
    ("py_warm", f"`{PY_IMPORT}` again (warm)", "s"),
    ("tar", "`tar -cf - /usr \\| wc -c`", "s"),
    ("copyup", "append a line to each lower `*.py` file of /usr/lib/python3.11 (copy-up; how many: see Checks)", "s"),
    ("copyup_rm", "the same copy-ups in a `podman run --rm` container of their own (podman hands the mount `volatile`: no copy-up is fsync'ed)", "s"),
    ("untar", "untar the python3.11 stdlib (/srv/python3.11-stdlib.tar) into /tmp", "s"),
    ("rm", "`rm -rf` of two lower trees (/usr/share/zoneinfo, /usr/lib/x86_64-linux-gnu/perl-base)", "s"),
    ("dd", "`dd` 512 MiB (bs=1M) + fsync to /tmp", "s"),
    ("reread", "read that file again (its pages were just written): `dd of=/dev/null bs=1M`", "s"),
    ("rss_after", "resident memory (VmRSS) of the mount program after these workloads (MB)", "MB"),
    ("pss_after", "its Pss after these workloads (MB)", "MB"),
    ("ten_pss", "10 running containers that each ran find, tar and the import: Pss sum of their mount programs (MB)", "MB"),
    ("one_more", "one more idle container beside those 10: growth of the Pss sum (MB)", "MB"),
]
LABEL = {k: label for k, label, _ in ROWS}
UNIT = {k: unit for k, _, unit in ROWS}

# Workloads inside the work container, in this order: key -> (untimed set-up, timed command, untimed check).
# The check prints a value that must be the same for every column (entries found, bytes, files).
WORK = [
    ("find_cold", None, "find / -xdev | wc -l", None),
    ("find_warm", None, "find / -xdev | wc -l", None),
    ("py_first", None, PY_IMPORT + " && echo ok", None),
    ("py_warm", None, PY_IMPORT + " && echo ok", None),
    ("tar", None, "tar -cf - /usr | wc -c", None),
    ("copyup", COPYUP_LIST, COPYUP_LOOP, None),
    ("untar", "mkdir /tmp/stdlib", "tar -xf /srv/python3.11-stdlib.tar -C /tmp/stdlib", "find /tmp/stdlib | wc -l"),
    ("rm", None, f"rm -rf {RM_TREES}", f"ls -d {RM_TREES} 2>/dev/null | wc -l; find / -xdev | wc -l"),
    ("dd", None, "dd if=/dev/zero of=/tmp/big bs=1M count=512 conv=fsync 2>/dev/null", "stat -c %s /tmp/big"),
    # not cat: busybox's cat uses sendfile, which the kernel overlay serves to /dev/null without copying
    ("reread", None, "dd if=/tmp/big of=/dev/null bs=1M 2>&1 | tail -n 1", None),
]
TEN_WORK = f"find / -xdev > /dev/null && tar -cf - /usr | wc -c > /dev/null && {PY_IMPORT}"


# ------------------------------------------------------------------------------- helpers

def sh(cmd, timeout=600, check=True, **kw):
    r = subprocess.run(cmd, shell=isinstance(cmd, str), capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise BenchError(f"{cmd if isinstance(cmd, str) else shlex.join(cmd)} failed ({r.returncode}): "
                         f"{last_line(r.stderr or r.stdout)}")
    return r


def last_line(text):
    lines = [l for l in (text or "").splitlines() if l.strip() and "is not a shared mount" not in l]
    return lines[-1].strip() if lines else "(no output)"


def median(values):
    v = [x for x in values if x is not None]
    return statistics.median(v) if v else None


def read(path, default=""):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return default


def user_pids(uid):
    out = set()
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if os.stat(f"/proc/{p}").st_uid == uid:
                    out.add(int(p))
            except OSError:
                pass
    return out


def daemons(merged):
    """Processes holding /dev/fuse whose command line names the mount point MERGED."""
    want = merged.encode()
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                if want not in f.read():
                    continue
            if any(os.readlink(f"/proc/{p}/fd/{fd}") == "/dev/fuse" for fd in os.listdir(f"/proc/{p}/fd")):
                out.append(int(p))
        except OSError:
            pass
    return out


def registered(base, merged):
    """The pid in strata's mount record for MERGED (a shared daemon serves several mounts and its command
    line names only the first): the records of the store's user, XDG_RUNTIME_DIR/strata/mounts."""
    out = []
    d = os.path.join(base, "xdg", "strata", "mounts")
    try:
        names = os.listdir(d)
    except OSError:
        return out
    for n in names:
        try:
            with open(os.path.join(d, n)) as f:
                rec = json.load(f)
            if rec.get("mountpoint") == merged and isinstance(rec.get("pid"), int):
                out.append(rec["pid"])
        except (OSError, ValueError):
            pass
    return out


def kb(pid, path, field):
    m = re.search(rf"^{field}:\s+(\d+) kB", read(f"/proc/{pid}/{path}"), re.M)
    if not m:
        raise BenchError(f"no {field} in /proc/{pid}/{path} (process gone?)")
    return int(m.group(1))


# An idle container's memory is read once its mount program has been at rest for SETTLE_S seconds:
# strata's daemon gives back what it does not use at rest in passes from 0.25 s to ~11.5 s after the last request (all but the last within ~6.5 s)
# (malloc_trim, clean file pages unmapped: src/main/java/dev/strata/fuse/kernel/Rest.java);
# fuse-overlayfs's memory does not change at rest. No wait where there is no mount program (kernel).
SETTLE_S = 7


def settle(progs):
    time.sleep(SETTLE_S if progs else 1)


def pss_mb(pids):
    return sum(kb(p, "smaps_rollup", "Pss") for p in set(pids)) / 1024  # a shared daemon counts once


def rss_mb(pids):
    return sum(kb(p, "status", "VmRSS") for p in set(pids)) / 1024


# ------------------------------------------------------------------------------- one podman store

class Store:
    """A podman store of the benchmark user, entirely under BASE, with one mount program (or none)."""

    def __init__(self, base, user, system, program):
        self.base, self.system, self.program = base, system, program
        pw = pwd.getpwnam(user)
        self.uid, self.gid, self.user = pw.pw_uid, pw.pw_gid, user
        for d in ("root", "run", "tmp", "xdg", "home"):
            os.makedirs(os.path.join(base, d), exist_ok=True)
        os.chmod(os.path.join(base, "xdg"), 0o700)
        sh(["chown", "-R", f"{pw.pw_uid}:{pw.pw_gid}", base])
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "HOME": f"{base}/home", "XDG_RUNTIME_DIR": f"{base}/xdg", "XDG_CONFIG_HOME": f"{base}/home/.config",
               "XDG_DATA_HOME": f"{base}/home/.local/share", "TMPDIR": f"{base}/tmp", "USER": user,
               "LOGNAME": user, "LANG": "C.UTF-8"}
        self.prefix = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups", "env", "-i"] \
            + [f"{k}={v}" for k, v in env.items()] \
            + ["podman", "--root", f"{base}/root", "--runroot", f"{base}/run", "--tmpdir", f"{base}/tmp",
               "--cgroup-manager", "cgroupfs", "--events-backend", "file", "--storage-driver", "overlay"]
        if program:
            self.prefix += ["--storage-opt", f"overlay.mount_program={program}"]
        if system in MOUNTOPT:
            self.prefix += ["--storage-opt", f"overlay.mountopt={MOUNTOPT[system]}"]

    def podman(self, *args, timeout=300, check=True):
        r = subprocess.run(self.prefix + list(args), capture_output=True, text=True, timeout=timeout, cwd=self.base)
        if check and r.returncode != 0:
            shown = " ".join(a for a in args if a not in RUN_FLAGS)
            raise BenchError(f"{self.system}: podman {shown[:100]} failed ({r.returncode}): {last_line(r.stderr)}")
        return r

    def timed(self, *args):
        t = time.monotonic()
        r = self.podman(*args)
        return time.monotonic() - t, r.stdout.strip()

    def exec_timed(self, cid, command):
        r = self.podman("exec", cid, "stopwatch", "sh", "-c", command)
        return self.stopwatch(r, repr(command)), r.stdout.strip()

    def stopwatch(self, r, what):
        """The time the image's stopwatch printed on a podman command's stderr."""
        m = re.search(r"^@@stopwatch ([0-9.]+)$", r.stderr, re.M)
        if not m:
            raise BenchError(f"{self.system}: no time from stopwatch for {what}: {last_line(r.stderr)}")
        return float(m.group(1))

    def start(self, name):
        """Starts an idle container; returns (id, pid of its init, its merged dir)."""
        cid = self.podman("run", "-d", "--name", name, *RUN_FLAGS, IMAGE, "sleep", "1000000").stdout.strip()
        info = self.podman("inspect", "--format", "{{.State.Pid}} {{.GraphDriver.Data.MergedDir}}", cid).stdout.split()
        pid, merged = int(info[0]), info[1]
        root = [l.split() for l in read(f"/proc/{pid}/mounts").splitlines() if l.split()[1:2] == ["/"]]
        fstype = root[-1][2] if root else "(none)"
        if fstype != FS_TYPE[self.system]:
            raise BenchError(f"{self.system}: the container's / is {fstype}, not {FS_TYPE[self.system]}")
        return cid, pid, merged

    def mount_programs(self, merged):
        if self.program is None:
            return []
        pids = daemons(merged)
        for p in registered(self.base, merged):  # strata's shared daemon (bench/README)
            if p not in pids and os.path.exists(f"/proc/{p}") and b"strata.jar" in open(f"/proc/{p}/cmdline", "rb").read():
                pids.append(p)
        if not pids:
            raise BenchError(f"{self.system}: no process holding /dev/fuse names {merged}")
        return pids

    def pause_pid(self):
        try:
            return int(read(os.path.join(self.base, "tmp", "pause.pid")).strip())
        except ValueError:
            return -1

    def shutdown(self):
        """Removes every container (podman unmounts them), then ends the store's pause process."""
        try:
            self.podman("rm", "-af", "-t", "0", timeout=120, check=False)
        except (subprocess.TimeoutExpired, OSError) as e:
            log(f"{self.system}: podman rm -af: {e}")
        # strata's shared daemon outlives its last mount by STRATA_DAEMON_IDLE (300 s): end it now
        if self.program and self.system.startswith("strata"):
            for p in daemons(self.base):
                try:
                    if os.stat(f"/proc/{p}").st_uid == self.uid:
                        os.kill(p, signal.SIGTERM)
                except OSError:
                    pass
        pid = self.pause_pid()
        # only if it is this user's podman (the pause process), not a reused pid
        if pid > 0 and os.path.exists(f"/proc/{pid}") and os.stat(f"/proc/{pid}").st_uid == self.uid \
                and read(f"/proc/{pid}/comm").startswith("podman"):  # "podman pause"
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


# ------------------------------------------------------------------------------- one round of one system

def measure(store, values, checks, notes, rnd):
    s = store.system
    st = store.base

    def put(key, value, check=None):
        values.setdefault(key, {}).setdefault(s, {})[rnd] = value
        if check is not None:
            checks.setdefault(key, {}).setdefault(rnd, {})[s] = check
        shown = "–" if value is None else (f"{value:.3f} s" if UNIT[key] == "s" else f"{value:.1f} MB")
        log(f"  {s:15} {key:13} {shown}" + (f"   [{check}]" if check is not None else ""))

    store.podman("load", "-q", "-i", os.path.join(os.path.dirname(st), "img.tar"))
    store.podman("run", "--rm", *RUN_FLAGS, IMAGE, "true")  # warm-up: the store's first container
    # the image's files in the page cache for every column alike (the loads were at different times)
    sh(f"tar -C {shlex.quote(st)}/root/overlay -cf - . | cat > /dev/null")

    put("run_true", median([store.timed("run", "--rm", *RUN_FLAGS, IMAGE, "true")[0] for _ in range(3)]))
    t, out = store.timed("run", "--rm", "--userns=keep-id", *RUN_FLAGS, IMAGE, "id", "-u")
    put("keepid_first", t, out)
    later = [store.timed("run", "--rm", "--userns=keep-id", *RUN_FLAGS, IMAGE, "id", "-u") for _ in range(2)]
    put("keepid_later", median([t for t, _ in later]), later[-1][1])
    # the copy-ups of a short-lived container: `run --rm` gives the mount `volatile` (podman 4.3 passes
    # it to the kernel overlay and to a mount program alike), where the work container's are durable
    r = store.podman("run", "--rm", "-e", f"LOOP={COPYUP_LOOP}", *RUN_FLAGS, IMAGE, "sh", "-c",
                     f'{COPYUP_LIST} && sync && stopwatch sh -c "$LOOP"')
    put("copyup_rm", store.stopwatch(r, "the copy-ups in a --rm container"), r.stdout.strip())

    cid, _, merged = store.start("work")
    progs = store.mount_programs(merged)
    settle(progs)
    put("idle_pss", pss_mb(progs) if progs else None)
    for key, setup, command, check in WORK:
        if setup:
            store.podman("exec", cid, "sh", "-c", setup)
        sh("sync")
        try:
            t, out = store.exec_timed(cid, command)
        except BenchError as e:
            notes.append(f"round {rnd}, {s}, {key}: {e}")
            put(key, None)
            continue
        if check:
            out = store.podman("exec", cid, "sh", "-c", check).stdout.strip()
        put(key, t, " ".join(out.split()) or None)
    if progs:
        put("rss_after", rss_mb(progs))
        put("pss_after", pss_mb(progs))
    else:
        put("rss_after", None)
        put("pss_after", None)
    store.podman("rm", "-f", "-t", "0", cid)

    # ten containers, each after the lighter workloads; then one more, idle
    all_progs = []
    for i in range(10):
        c, _, m = store.start(f"ten{i}")
        store.podman("exec", c, "sh", "-c", TEN_WORK)
        all_progs += store.mount_programs(m)
    settle(all_progs)
    ten = pss_mb(all_progs) if all_progs else None
    put("ten_pss", ten)
    c, _, m = store.start("eleven")
    more = store.mount_programs(m)
    settle(more)
    put("one_more", pss_mb(all_progs + more) - ten if more else None)
    store.podman("rm", "-af", "-t", "0", timeout=300)


# ------------------------------------------------------------------------------- report

def fmt(key, v):
    if v is None:
        return "–"
    return f"{v:.3f}" if UNIT[key] == "s" else f"{v:.1f}"


def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b not in (None, 0) else "–"


def versions(strata):
    def first(cmd):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            return (r.stdout.strip().splitlines() or ["?"])[0]
        except (OSError, subprocess.TimeoutExpired):
            return "?"
    fo = "?"
    try:
        r = subprocess.run(["fuse-overlayfs", "--version"], capture_output=True, text=True, timeout=30)
        m = re.search(r"fuse-overlayfs: version (\S+)", r.stdout + r.stderr)
        fo = m.group(1) if m else "?"
    except OSError:
        pass
    commit = subprocess.run(["git", "-C", REPO, "log", "-1", "--format=%h"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return {"podman": first(["podman", "--version"]).replace("podman version ", ""),
            "runc": first(["runc", "--version"]).replace("runc version ", ""),
            "fuse-overlayfs": fo,
            "strata": f"{first([strata, '--version'])} at {commit or '?'}{' (+ uncommitted changes)' if dirty else ''}"}


def machine():
    model = re.search(r"^model name\s*:\s*(.*)$", read("/proc/cpuinfo"), re.M)
    mem = re.search(r"^MemTotal:\s+(\d+)", read("/proc/meminfo"), re.M)
    return (f"{os.cpu_count()} CPUs ({model.group(1) if model else '?'}), "
            f"RAM {int(mem.group(1)) / 1048576:.1f} GiB, kernel {os.uname().release}")


def report(args, systems, values, checks, notes, info):
    lines = [f"# Rootless podman, no passthrough: kernel overlay, fuse-overlayfs and strata ({info['date']})", ""]
    if args.note:
        lines += [f"**{args.note}**", ""]
    if float(info["load0"].split()[0]) > os.cpu_count() / 2 or float(info["load1"].split()[0]) > os.cpu_count() / 2:
        lines += [f"**⚠ The machine was busy (load average {info['load0']} at the start, {info['load1']} at the end, "
                  f"{os.cpu_count()} CPUs): these numbers are not the result; rerun on a quiet machine.**", ""]
    lines += [
        f"- command: `{info['command']}`",
        f"- machine: {machine()}; load average at the start {info['load0']}, at the end {info['load1']}",
        f"- podman {info['v']['podman']} (rootless, user `{args.user}`), runc {info['v']['runc']}, "
        f"fuse-overlayfs {info['v']['fuse-overlayfs']}, strata: {info['v']['strata']}",
        f"- image: {info['image']} (busybox, Debian base files, python3.11 with its shared libraries and stdlib, "
        "a stdlib tarball; bench/rootless/make-image.sh)",
        f"- {args.rounds} round(s), columns interleaved (the order rotates per round); medians over the rounds; "
        f"a fresh store per column and round; {info['minutes']:.1f} minutes in all",
        "- \"kernel\" is podman's own rootless overlay (no mount program, `userxattr`); memory rows: the mount "
        "programs' processes, found as the holders of /dev/fuse whose command line names the container's mount",
        "",
        "| workload (inside the container unless it says otherwise) | " + " | ".join(systems)
        + (" | strata / fuse-overlayfs" if {"strata", "fuse-overlayfs"} <= set(systems) else "")
        + (" | strata / kernel" if {"strata", "kernel"} <= set(systems) else "") + " |",
        "|---|" + "---:|" * len(systems)
        + ("---:|" if {"strata", "fuse-overlayfs"} <= set(systems) else "")
        + ("---:|" if {"strata", "kernel"} <= set(systems) else ""),
    ]
    for key, label, _ in ROWS:
        med = {s: median(values.get(key, {}).get(s, {}).values()) for s in systems}
        if key in checks and any(len(set(c.values())) > 1 for c in checks[key].values()):
            label += " ⚠"
        row = f"| {label} | " + " | ".join(fmt(key, med[s]) for s in systems)
        if {"strata", "fuse-overlayfs"} <= set(systems):
            row += f" | {ratio(med['strata'], med['fuse-overlayfs'])}"
        if {"strata", "kernel"} <= set(systems):
            row += f" | {ratio(med['strata'], med['kernel'])}"
        lines.append(row + " |")
    lines += ["", "## Every round", "", "| row | " + " | ".join(systems) + " |", "|---|" + "---|" * len(systems)]
    for key, _, _ in ROWS:
        cells = []
        for s in systems:
            per = values.get(key, {}).get(s, {})
            cells.append(" ".join(fmt(key, per.get(r)) for r in range(1, args.rounds + 1)))
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    lines += ["", "## Checks (the value each workload printed, per round: must agree between the columns)", ""]
    for key in checks:
        for r, by in sorted(checks[key].items()):
            mark = "" if len(set(by.values())) == 1 else " ⚠ differ"
            lines.append(f"- {key}, round {r}: " + "; ".join(f"{s} `{v}`" for s, v in by.items()) + mark)
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(prog="scripts/bench.sh podman", description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument("--systems", default=",".join(SYSTEMS), help="columns (default kernel,fuse-overlayfs,strata)")
    ap.add_argument("--user", default="strata-bench", help="the rootless user (created if missing; default strata-bench)")
    ap.add_argument("--strata", default=os.path.join(REPO, "bin", "strata"), help="the strata launcher (default: this tree's)")
    ap.add_argument("--out", help="result file (default bench/results/rootless-DATE.md; with fewer than 3 rounds bench/results/tmp/)")
    ap.add_argument("--note", help="a line to put in bold under the title (e.g. that the machine was busy)")
    args = ap.parse_args()
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    if args.rounds < 1 or not systems or any(s not in ALL_SYSTEMS for s in systems):
        ap.error(f"--rounds must be at least 1 and --systems a list of {','.join(ALL_SYSTEMS)}")
    if os.geteuid() != 0:
        raise BenchError("needs root (it prepares the benchmark user and reads the mount programs' memory); podman runs as that user")

    lockf = open(LOCK, "a+")
    try:
        fcntl.flock(lockf, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise BenchError(f"another rootless benchmark is running (lock {LOCK})")

    r = subprocess.run(["bash", os.path.join(REPO, "native-tests/podman/install.sh")], capture_output=True, text=True)
    if r.returncode != 0:
        raise BenchError(last_line(r.stderr))
    for cmd, pkg in (("fuse-overlayfs", "fuse-overlayfs"), ("gcc", "gcc libc6-dev"), ("setpriv", "util-linux")):
        if ("fuse-overlayfs" in systems or cmd != "fuse-overlayfs") and not shutil.which(cmd):
            raise BenchError(f"{cmd} is missing: apt-get install {pkg}")
    if any(x.startswith("strata") for x in systems) and not os.access(os.path.join(os.path.dirname(os.path.dirname(args.strata)),
                                                          "target", "strata.jar"), os.R_OK):
        raise BenchError(f"strata is not built next to {args.strata}: run 'bash scripts/setup.sh' first")

    r = subprocess.run(["bash", os.path.join(REPO, "native-tests/podman/rootless-user.sh"), args.user],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise BenchError(f"cannot prepare the user {args.user}: {last_line(r.stderr)}")
    acl_added = "acl-added" in r.stdout
    uid = pwd.getpwnam(args.user).pw_uid
    before = user_pids(uid)
    state = {"stores": [], "tmp": None, "acl": acl_added, "uid": uid, "before": before,
             "outside": [p for p in OUTSIDE if not os.path.exists(p)]}
    try:
        if before:
            raise BenchError(f"the user {args.user} already runs processes ({' '.join(map(str, sorted(before)))}); "
                             "stop them or pick another --user")
        run(args, systems, state)
    finally:
        cleanup(state, args.user)


def run(args, systems, state):
    t0 = time.monotonic()
    load0 = " ".join(read("/proc/loadavg").split()[:3])
    # short: rootless podman refuses a --runroot longer than 50 characters
    tmp = state["tmp"] = tempfile.mkdtemp(prefix="srb.", dir="/var/tmp")
    os.chmod(tmp, 0o711)
    strata = os.path.abspath(args.strata)
    if any(x.startswith("strata") for x in systems):
        home = os.path.dirname(os.path.dirname(strata))
        ok = subprocess.run(["setpriv", f"--reuid={state['uid']}", f"--regid={pwd.getpwnam(args.user).pw_gid}",
                             "--init-groups", "sh", "-c", f"test -x {shlex.quote(strata)} && "
                             f"test -r {shlex.quote(home)}/target/strata.jar"], capture_output=True).returncode == 0
        if not ok:  # the user cannot read the tree (e.g. under /root): a copy it can run
            dist = os.path.join(tmp, "dist")
            os.makedirs(os.path.join(dist, "target"))
            sh(f"cp -a {shlex.quote(home)}/bin {shlex.quote(home)}/libexec {dist}/ && cp -a {shlex.quote(home)}/target/strata.jar "
               f"{shlex.quote(home)}/target/lib {dist}/target/ && {{ cp -a {shlex.quote(home)}/target/strata.jsa "
               f"{dist}/target/ 2>/dev/null || true; }} && {{ cp -a {shlex.quote(home)}/target/strata-client "
               f"{dist}/target/ 2>/dev/null || true; }} && {{ cp -a {shlex.quote(home)}/target/native "
               f"{dist}/target/ 2>/dev/null || true; }} && chmod -R a+rX {dist}")
            strata = os.path.join(dist, "bin", "strata")
    programs = {"kernel": None, "fuse-overlayfs": shutil.which("fuse-overlayfs"), "strata": strata, "strata-wb": strata}
    v = versions(strata)  # before the run: what is measured, not what the tree is at the end

    log("building the image (bench/rootless/make-image.sh)")
    image = sh(["bash", os.path.join(HERE, "make-image.sh"), os.path.join(tmp, "img")]).stdout.strip().splitlines()[-1]
    sh(["tar", "-C", os.path.join(tmp, "img"), "-cf", os.path.join(tmp, "img.tar"), "."])
    os.chmod(os.path.join(tmp, "img.tar"), 0o644)
    shutil.rmtree(os.path.join(tmp, "img"))
    log(f"image: {image}")

    values, checks, notes = {}, {}, []
    for rnd in range(1, args.rounds + 1):
        order = systems[(rnd - 1) % len(systems):] + systems[:(rnd - 1) % len(systems)]
        log(f"round {rnd}/{args.rounds}: {', '.join(order)} (load average {' '.join(read('/proc/loadavg').split()[:3])})")
        for s in order:
            store = Store(os.path.join(tmp, f"{rnd}{s[0]}"), args.user, s, programs[s])
            state["stores"].append(store)
            try:
                measure(store, values, checks, notes, rnd)
            except (BenchError, subprocess.TimeoutExpired) as e:
                notes.append(f"round {rnd}, {s}: stopped: {e}")
                log(f"  {s}: stopped: {e}")
            finally:
                store.shutdown()
                wait_gone(state, 30)
                sh(["rm", "-rf", store.base], check=False)
                state["stores"].remove(store)
    info = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
            "command": " ".join(["scripts/bench.sh podman"] + [shlex.quote(a) for a in sys.argv[1:]]),
            "load0": load0, "load1": " ".join(read("/proc/loadavg").split()[:3]), "image": image,
            "v": v, "minutes": (time.monotonic() - t0) / 60}
    text = report(args, systems, values, checks, notes, info)
    out = args.out
    if not out:
        day = datetime.date.today().isoformat()
        out = os.path.join(REPO, "bench", "results", f"rootless-{day}.md") if args.rounds >= 3 else \
            os.path.join(REPO, "bench", "results", "tmp", f"rootless-{day}-{time.strftime('%H%M%S')}.md")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        f.write(text)
    print(text)
    log(f"written to {out}")
    if notes:
        raise BenchError(f"{len(notes)} row(s) or column(s) failed: see Notes in {out}")


def wait_gone(state, seconds):
    """Waits for the processes of the user that this run started to end; ends them by pid if they stay."""
    deadline = time.monotonic() + seconds
    while True:
        left = user_pids(state["uid"]) - state["before"]
        if not left:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.3)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in left:
            log(f"ending pid {p} ({read(f'/proc/{p}/comm').strip()}) by {sig.name}")
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        time.sleep(3)
        left = user_pids(state["uid"]) - state["before"]
        if not left:
            return


def cleanup(state, user):
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    for store in list(state["stores"]):
        store.shutdown()
    if state["tmp"] or state["stores"]:
        wait_gone(state, 30)
    tmp = state["tmp"]
    if tmp:
        for line in sorted(read("/proc/self/mounts").splitlines(), key=len, reverse=True):
            f = line.split()
            if len(f) > 1 and f[1].startswith(tmp + "/"):
                subprocess.run(["umount", "-l", f[1]], capture_output=True)
        subprocess.run(["rm", "-rf", tmp], capture_output=True)
    if state["acl"]:
        subprocess.run(["setfacl", "-x", f"u:{user}", "/dev/fuse"], capture_output=True)
    for p in state["outside"]:
        if os.path.exists(p):
            subprocess.run(["find", p, "-depth", "-type", "d", "-empty", "-delete"], capture_output=True)


def on_signal(signum, _frame):
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    for _s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(_s, on_signal)
    try:
        main()
    except BenchError as e:
        print(f"bench podman: {e}", file=sys.stderr)
        sys.exit(1)
