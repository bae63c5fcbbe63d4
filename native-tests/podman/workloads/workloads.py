#!/usr/bin/env python3
"""Real image workloads in podman with the kernel overlay, fuse-overlayfs and strata, root and rootless.

Run through scripts/workloads.sh (as root). A Debian bookworm base made with mmdebstrap from Debian's
mirror, imported into one fresh podman store per (mode, system); then in each store:
  build      `podman build` of native-tests/podman/workloads/Containerfile (apt-get install/purge, useradd,
             compileall, make -j2, sqlite3 WAL, git gc, chown -R of lower trees, files removed while open)
  run        `podman run --rm` of the built image: the checks (VERIFY) print the same thing everywhere
  exec       two `podman exec` at once in a kept container: one writes (new files, appends to a lower
             file), the other reads (find, tar) meanwhile
  diff       `podman diff` of that container
  commit     `podman commit`, then `podman run --rm` of the committed image: VERIFY again
  restart    `podman restart` of the container (unmount, mount again), then VERIFY in it
  parallel   three `podman run --rm` of the built image at once: make, compileall, sqlite, apt-get purge
  export     `podman export` of the container, listed (modes, owners, sizes, checksums: listing.py)
Each row: exit code and seconds; the outputs, `podman diff` and the listings are compared with the
kernel overlay's of the same mode. Exits 1 when a strata row failed or differed (or a kernel row failed),
0 otherwise (fuse-overlayfs's failures and differences are reported, not counted), 0 with one line when
the mirror is not reachable (skipped).
"""

import argparse
import datetime
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
MIRROR = "http://deb.debian.org/debian"
BASE = "localhost/wl-bookworm:latest"
BUILT = "localhost/wl-built:latest"
COMMITTED = "localhost/wl-committed:latest"
SYSTEMS = ["kernel", "fuse-overlayfs", "strata"]
MODES = ["root", "rootless"]
FS_TYPE = {"kernel": "overlay", "fuse-overlayfs": "fuse.fuse-overlayfs", "strata": "fuse.strata"}
OUTSIDE = ["/var/lib/containers", "/run/containers", "/run/libpod", "/run/runc", "/run/crun"]
STEPS = ["apt-install", "apt-purge", "reinstall", "caps", "opaque", "users", "compileall", "make", "sqlite", "git", "chown-R", "open-unlinked", "suid-sticky"]
# What the built image must hold, printed the same way on every system.
VERIFY = ("set -e; id builder; stat -c '%U:%G %a' /usr/share/doc/git /home/builder; "
          "test ! -e /usr/bin/less && test ! -e /etc/debian_version && echo purged-and-unlinked; "
          "getcap /usr/bin/ping /usr/bin/dd; ls /usr/share/man /etc/cron.d; stat -c '%A %h' /usr/bin/sed /usr/share/man/man1/x.1; "
          "/src/cbuild/prog; sqlite3 /var/lib/wl.db 'PRAGMA integrity_check;' 'SELECT count(*), sum(n) FROM t;'; "
          "git -C /srv/repo fsck --strict 2>&1; git -C /srv/repo log --format=%H | head -1; "
          "python3 -c 'import json, email, sqlite3; print(\"py ok\")'; "
          "ls /data/w 2>/dev/null | wc -l; md5sum /etc/bash.bashrc; cat /usr/share/doc/git/copyright | md5sum")
WRITER = ("mkdir -p /data/w && i=0; while [ $i -lt 1500 ]; do echo $i > /data/w/f$i; echo $i >> /etc/bash.bashrc; "
          "i=$((i+1)); done; cat /etc/os-release >> /usr/share/doc/git/copyright; rm /data/w/f7 /etc/issue; "
          "mv /usr/share/doc/zlib1g /usr/share/doc-zlib; echo written")
# Three containers of the built image at once (one shared strata daemon serves their mounts).
PARALLEL = ("set -e; cd /src/cbuild && make -s clean && make -s -j2 && ./prog; "
            "find /usr/lib/python3/dist-packages -name __pycache__ -prune -exec rm -rf {} +; "
            "python3 -m compileall -q /usr/lib/python3/dist-packages && find /usr/lib/python3/dist-packages -name '*.pyc' | wc -l; "
            "sqlite3 -cmd '.timeout 5000' /var/lib/wl.db \"INSERT INTO t(v, n) VALUES ('par', 2);\" 'SELECT count(*) FROM t;'; "
            "apt-get purge -y -qq sqlite3 >/dev/null 2>&1; test ! -e /usr/bin/sqlite3 && echo purged")
READER = ("for k in 1 2 3; do find / -xdev | wc -l > /dev/null; ls /data/w 2>/dev/null | wc -l > /dev/null; "
          "tar -cf - /usr/lib/python3.11 /etc | wc -c > /dev/null; done; echo read")


class Failure(Exception):
    """Ends the run with one line."""


def log(msg):
    print(f"[workloads] {msg}", file=sys.stderr, flush=True)


def sh(cmd, timeout=600, check=True, **kw):
    r = subprocess.run(cmd, shell=isinstance(cmd, str), capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise Failure(f"{cmd if isinstance(cmd, str) else shlex.join(cmd)} failed ({r.returncode}): {last_line(r.stderr)}")
    return r


def last_line(text):
    lines = [l for l in (text or "").splitlines() if l.strip() and "is not a shared mount" not in l]
    return lines[-1].strip() if lines else "(no output)"


class Store:
    """A podman store under BASE, run as root (user None) or as USER, with one mount program or none."""

    def __init__(self, base, user, system, program):
        self.base, self.user, self.system = base, user, system
        self.mount_ms = None
        for d in ("root", "run", "tmp", "xdg", "home", "daemon"):
            os.makedirs(os.path.join(base, d), exist_ok=True)
        for d in ("xdg", "daemon"):
            os.chmod(os.path.join(base, d), 0o700)
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TMPDIR": f"{base}/tmp",
               "LANG": "C.UTF-8", "HOME": f"{base}/home"}
        if user:
            pw = pwd.getpwnam(user)
            self.uid = pw.pw_uid
            env.update({"XDG_RUNTIME_DIR": f"{base}/xdg", "XDG_CONFIG_HOME": f"{base}/home/.config",
                        "XDG_DATA_HOME": f"{base}/home/.local/share", "USER": user, "LOGNAME": user})
            sh(["chown", "-R", f"{pw.pw_uid}:{pw.pw_gid}", base])
            self.prefix = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups", "env", "-i"]
        else:
            self.uid = 0
            self.prefix = ["env", "-i"]
        self.prefix += [f"{k}={v}" for k, v in env.items()]
        self.prefix += ["podman", "--root", f"{base}/root", "--runroot", f"{base}/run", "--tmpdir", f"{base}/tmp",
                        "--cgroup-manager", "cgroupfs", "--events-backend", "file", "--storage-driver", "overlay"]
        if program:
            # strata's shared daemon in this store's directory, ending 2 s after its last mount
            wrap = os.path.join(base, "mount-program.sh")
            # each call's time until the program returned (the mount is ready) goes to mount-ms
            self.mount_ms = os.path.join(base, "mount-ms")
            with open(wrap, "w") as f:
                f.write("#!/bin/sh\nexport STRATA_DAEMON_IDLE=2\n"
                        + (f"export STRATA_DAEMON_DIR={base}/daemon\n" if not user else "")
                        + "t0=$(date +%s%N)\n"
                        + f"{shlex.quote(program)} \"$@\"\nrc=$?\n"
                        + f"echo $(( ($(date +%s%N) - t0) / 1000000 )) >> {shlex.quote(self.mount_ms)}\nexit $rc\n")
            os.chmod(wrap, 0o755)
            with open(self.mount_ms, "w"):
                pass
            if user:
                os.chown(self.mount_ms, pw.pw_uid, pw.pw_gid)
            self.prefix += ["--storage-opt", f"overlay.mount_program={wrap}"]
        self.run_flags = ["--runtime", "runc"]
        if not user:
            self.run_flags += ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]

    def podman(self, *args, timeout=900, check=False):
        r = subprocess.run(self.prefix + list(args), capture_output=True, text=True, timeout=timeout, cwd=self.base)
        if check and r.returncode != 0:
            raise Failure(f"{self.system}: podman {' '.join(args)[:120]} failed ({r.returncode}): {last_line(r.stderr)}")
        return r

    def popen(self, *args):
        return subprocess.Popen(self.prefix + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=self.base)

    def pause_pid(self):
        try:
            with open(os.path.join(self.base, "tmp", "pause.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return -1

    def shutdown(self):
        """Removes the containers and images (podman unmounts them); ends this store's pause process."""
        for args in (("rm", "-af", "-t", "0"), ("rmi", "-af")):
            try:
                self.podman(*args, timeout=180)
            except (subprocess.TimeoutExpired, OSError) as e:
                log(f"{self.system}: podman {' '.join(args)}: {e}")
        pid = self.pause_pid()
        if self.user and pid > 0:
            try:  # only this user's podman pause process, not a reused pid
                if os.stat(f"/proc/{pid}").st_uid == self.uid and open(f"/proc/{pid}/comm").read().startswith("podman"):
                    os.kill(pid, signal.SIGTERM)
            except OSError:
                pass


class Row:
    """One workload on one store: exit code, seconds, the output compared between systems."""

    def __init__(self, rc, seconds, out=None, detail=""):
        self.rc, self.seconds, self.out, self.detail = rc, seconds, out, detail


def timed(store, *args, timeout=900):
    t = time.monotonic()
    r = store.podman(*args, timeout=timeout)
    return r, time.monotonic() - t


def listing(store, what):
    """The listing.py lines of `podman export WHAT` (a container), through a file in the store (rootless
    podman cannot open root's pipe as /dev/stdout)."""
    tar = os.path.join(store.base, "tmp", "export.tar")
    r = store.podman("export", "-o", tar, what)
    if r.returncode != 0:
        return r.returncode, None, last_line(r.stderr)
    with open(tar, "rb") as f:
        lst = subprocess.run([sys.executable, os.path.join(HERE, "listing.py"), "--skip", os.path.join(HERE, "skip.txt")],
                             stdin=f, capture_output=True, text=True)
    os.unlink(tar)
    if lst.returncode != 0:
        return lst.returncode, None, last_line(lst.stderr)
    return 0, lst.stdout, ""


def diff_lines(text):
    """`podman diff` output, sorted, without the "C DIR" lines of directories with a changed path below
    them: podman's naive diff (used with any mount program) marks every such parent, its native diff
    (the kernel overlay) does not."""
    lines = sorted(l for l in text.splitlines() if l.strip())
    paths = [l.split(" ", 1)[1] for l in lines if " " in l]
    return "\n".join(l for l in lines if not (l.startswith("C ") and any(p.startswith(l[2:].rstrip("/") + "/") for p in paths)))


def workloads(store, base_tar, rows, listings=None):
    """Runs every workload on STORE; fills ROWS[name] = Row."""
    s = store
    s.podman("import", "-q", base_tar, BASE, check=True)
    t = time.monotonic()
    r = s.podman("build", *s.run_flags, "--network", "host", "-t", BUILT, HERE, timeout=1800)
    total = time.monotonic() - t
    steps = {m.group(1): (int(m.group(3)), int(m.group(2)) / 1000)
             for m in re.finditer(r"^@@step (\S+) (\d+) (\d+)$", r.stdout + r.stderr, re.M)}
    for name in STEPS:
        rc, sec = steps.get(name, (None, None))
        rows[f"build: {name}"] = Row(rc if rc is not None else "not run", sec)
    rows["build (whole podman build)"] = Row(r.returncode, total, None if r.returncode else "",
                                            "" if r.returncode == 0 else last_line(r.stderr))
    if r.returncode != 0:
        return

    r, sec = timed(s, "run", "--rm", *s.run_flags, "--network", "none", BUILT, "sh", "-c", VERIFY)
    rows["run --rm: checks"] = Row(r.returncode, sec, r.stdout, last_line(r.stderr) if r.returncode else "")

    r, sec = timed(s, "run", "-d", "--name", "work", *s.run_flags, "--network", "none", BUILT, "sleep", "1000000")
    rows["run -d (start a kept container)"] = Row(r.returncode, sec, "", last_line(r.stderr) if r.returncode else "")
    if r.returncode != 0:
        return
    info = s.podman("inspect", "--format", "{{.State.Pid}}", "work").stdout.strip()
    mounts = [l.split() for l in open(f"/proc/{info}/mounts").read().splitlines() if l.split()[1:2] == ["/"]] \
        if info.isdigit() else []
    fstype = mounts[-1][2] if mounts else "?"
    if fstype != FS_TYPE[s.system]:
        raise Failure(f"{s.system}: the container's / is {fstype}, not {FS_TYPE[s.system]}")

    t = time.monotonic()
    w = s.popen("exec", "work", "sh", "-c", WRITER)
    rd = s.popen("exec", "work", "sh", "-c", READER)
    wo, we = w.communicate(timeout=900)
    ro, re_ = rd.communicate(timeout=900)
    sec = time.monotonic() - t
    rc = w.returncode or rd.returncode
    rows["exec: a writer and a reader at once"] = Row(rc, sec, wo + ro, last_line(we + re_) if rc else "")

    r, sec = timed(s, "diff", "work")
    rows["diff"] = Row(r.returncode, sec, diff_lines(r.stdout), last_line(r.stderr) if r.returncode else "")

    r, sec = timed(s, "commit", "-q", "work", COMMITTED)
    rows["commit"] = Row(r.returncode, sec, "", last_line(r.stderr) if r.returncode else "")
    if r.returncode == 0:
        r, sec = timed(s, "run", "--rm", *s.run_flags, "--network", "none", COMMITTED, "sh", "-c", VERIFY)
        rows["run --rm of the committed image: checks"] = Row(r.returncode, sec, r.stdout,
                                                              last_line(r.stderr) if r.returncode else "")

    r, sec = timed(s, "restart", "-t", "0", "work")
    if r.returncode == 0:
        r2, sec2 = timed(s, "exec", "work", "sh", "-c", VERIFY)
        rows["restart, then checks in it"] = Row(r2.returncode, sec + sec2, r2.stdout, last_line(r2.stderr) if r2.returncode else "")
    else:
        rows["restart, then checks in it"] = Row(r.returncode, sec, None, last_line(r.stderr))

    t = time.monotonic()
    procs = [s.popen("run", "--rm", *s.run_flags, "--network", "none", BUILT, "sh", "-c", PARALLEL) for _ in range(3)]
    outs = [p.communicate(timeout=900) for p in procs]
    sec = time.monotonic() - t
    rc = next((p.returncode for p in procs if p.returncode), 0)
    rows["3 containers at once: make, compileall, sqlite"] = Row(
        rc, sec, "".join(o for o, _ in outs), next((last_line(e) for p, (_, e) in zip(procs, outs) if p.returncode), ""))

    t = time.monotonic()
    rc, out, err = listing(s, "work")
    rows["export: listing of the container"] = Row(rc, time.monotonic() - t, out, err)
    if s.mount_ms:
        with open(s.mount_ms) as f:
            ms = sorted(int(x) for x in f.read().split())
        if ms:
            rows["mount program: calls (in all, seconds)"] = Row(0, sum(ms) / 1000, None, f"{len(ms)} calls")
    if listings and out:
        with open(os.path.join(listings, f"{s.user and 'rootless' or 'root'}-{s.system}.txt"), "w") as f:
            f.write(out)


def compare(rows_by_system, systems):
    """Marks rows whose output differs from the kernel's (or, without a kernel column, from the first)."""
    ref = "kernel" if "kernel" in systems else systems[0]
    diffs = {}
    for name in rows_by_system.get(ref, {}):
        a = rows_by_system[ref][name].out
        for s in systems:
            if s == ref or name not in rows_by_system.get(s, {}):
                continue
            b = rows_by_system[s][name].out
            if a is not None and b is not None and a != b:
                al, bl = set(a.splitlines()), set(b.splitlines())
                only_a, only_b = sorted(al - bl), sorted(bl - al)
                diffs[(s, name)] = ([f"- {ref}: {l}" for l in only_a[:15]] + [f"+ {s}: {l}" for l in only_b[:15]]
                                    + ([f"  ({len(only_a)} and {len(only_b)} lines in all)"]
                                       if len(only_a) > 15 or len(only_b) > 15 else []))
    return ref, diffs


def cell(row, differs):
    if row is None:
        return "–"
    ok = row.rc == 0
    sec = f" {row.seconds:.1f}" if row.seconds is not None else ""
    mark = "ok" if ok and not differs else ("differs" if ok else f"exit {row.rc}")
    if ok and row.detail.endswith(" calls"):
        mark = row.detail
    return mark + sec


def report(mode, systems, rows_by_system, ref, diffs):
    names = []
    for s in systems:
        for n in rows_by_system.get(s, {}):
            if n not in names:
                names.append(n)
    lines = [f"### {mode}", "", "| workload | " + " | ".join(systems) + " |", "|---|" + "---|" * len(systems)]
    for n in names:
        lines.append(f"| {n} | " + " | ".join(cell(rows_by_system.get(s, {}).get(n), (s, n) in diffs) for s in systems) + " |")
    fails = [(s, n, r) for s in systems for n, r in rows_by_system.get(s, {}).items() if r.rc != 0]
    # what makes the run fail: strata failing or differing, or the reference failing (nothing to compare
    # with); fuse-overlayfs's failures and differences are reported only
    bad = any(s in ("strata", ref) for s, _, _ in fails) or any(s == "strata" for s, _ in diffs)
    if fails or diffs:
        lines += ["", f"Differences from {ref} and failures ({mode}):", "```"]
        for s, n, r in fails:
            lines.append(f"{s}: {n}: exit {r.rc} {r.detail}")
        for (s, n), d in diffs.items():
            lines.append(f"{s}: {n}:")
            lines += ["  " + l for l in d]
        lines.append("```")
    return lines, bad


def fo_version():
    m = re.search(r"fuse-overlayfs: version \S+", sh("fuse-overlayfs --version 2>&1", check=False).stdout)
    return m.group(0) if m else "fuse-overlayfs (version unknown)"


def readable_copy(tmp, strata, user):
    """A copy of strata the rootless USER can run when it cannot read this tree."""
    home = os.path.dirname(os.path.dirname(strata))
    pw = pwd.getpwnam(user)
    ok = subprocess.run(["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups", "sh", "-c",
                         f"test -x {shlex.quote(strata)} && test -r {shlex.quote(home)}/target/strata.jar"],
                        capture_output=True).returncode == 0
    if ok:
        return strata
    dist = os.path.join(tmp, "dist")
    os.makedirs(os.path.join(dist, "target"))
    q = shlex.quote(home)
    sh(f"cp -a {q}/bin {q}/libexec {dist}/ && cp -a {q}/target/strata.jar {q}/target/lib {dist}/target/ && "
       f"{{ cp -a {q}/target/strata.jsa {q}/target/strata-client {dist}/target/ 2>/dev/null || true; }} && "
       f"{{ cp -a {q}/target/native {dist}/target/ 2>/dev/null || true; }} && chmod -R a+rX {dist}")
    return os.path.join(dist, "bin", "strata")


def main():
    ap = argparse.ArgumentParser(prog="scripts/workloads.sh", description=__doc__.split("\n\n")[0])
    ap.add_argument("--systems", default=",".join(SYSTEMS), help="columns (default kernel,fuse-overlayfs,strata)")
    ap.add_argument("--modes", default=",".join(MODES), help="root,rootless (default both)")
    ap.add_argument("--user", default="strata-test", help="the rootless user (prepared if missing; default strata-test)")
    ap.add_argument("--strata", default=os.path.join(REPO, "bin", "strata"), help="the strata launcher (default: this tree's)")
    ap.add_argument("--out", help="also write the report to this file")
    ap.add_argument("--listings", help="keep the export listings in this directory (MODE-SYSTEM.txt)")
    args = ap.parse_args()
    systems = [x for x in args.systems.split(",") if x]
    modes = [x for x in args.modes.split(",") if x]
    if not systems or any(x not in SYSTEMS for x in systems) or not modes or any(x not in MODES for x in modes):
        ap.error(f"--systems is a list of {','.join(SYSTEMS)}, --modes of {','.join(MODES)}")
    if os.geteuid() != 0:
        raise Failure("needs root (it prepares the rootless user and podman stores); podman runs rootless as --user")
    if subprocess.run(["curl", "-sfI", "--max-time", "15", f"{MIRROR}/dists/bookworm/Release"],
                      capture_output=True).returncode != 0:
        print(f"workloads: skipped: {MIRROR} is not reachable (the image is built from Debian's mirror)")
        return 0
    r = subprocess.run(["bash", os.path.join(REPO, "native-tests/podman/install.sh")], capture_output=True, text=True)
    if r.returncode != 0:
        raise Failure(last_line(r.stderr))
    need = [("mmdebstrap", "mmdebstrap")] + ([("fuse-overlayfs", "fuse-overlayfs")] if "fuse-overlayfs" in systems else [])
    missing = [pkg for cmd, pkg in need if not shutil.which(cmd)]
    if missing:
        sh(["apt-get", "install", "-y", "-qq", "--no-install-recommends"] + missing, timeout=900,
           env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    if "strata" in systems and not os.access(os.path.join(os.path.dirname(os.path.dirname(args.strata)),
                                                          "target", "strata.jar"), os.R_OK):
        raise Failure(f"strata is not built next to {args.strata}: run 'bash scripts/setup.sh' first")
    state = {"stores": [], "tmp": None, "acl": False, "outside": [p for p in OUTSIDE if not os.path.exists(p)]}
    try:
        return run(args, systems, modes, state)
    finally:
        cleanup(state, args.user)


def run(args, systems, modes, state):
    tmp = state["tmp"] = tempfile.mkdtemp(prefix="swl.", dir="/var/tmp")  # short: rootless --runroot <= 50 chars
    os.chmod(tmp, 0o711)
    if "rootless" in modes:
        r = subprocess.run(["bash", os.path.join(REPO, "native-tests/podman/rootless-user.sh"), args.user],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise Failure(f"cannot prepare the user {args.user}: {last_line(r.stderr)}")
        state["acl"] = "acl-added" in r.stdout
        state["uid"] = pwd.getpwnam(args.user).pw_uid
    log("building the Debian bookworm base with mmdebstrap")
    base_tar = os.path.join(tmp, "bookworm.tar")
    t = time.monotonic()
    sh(["mmdebstrap", "--quiet", "--variant=minbase", "--include=ca-certificates", "bookworm", base_tar, MIRROR], timeout=1200)
    os.chmod(base_tar, 0o644)
    log(f"base made in {time.monotonic() - t:.0f} s")
    strata = os.path.abspath(args.strata)
    out = [f"## podman workloads ({datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC)", "",
           f"- command: `scripts/workloads.sh {' '.join(shlex.quote(a) for a in sys.argv[1:])}`",
           f"- {last_line(sh(['podman', '--version']).stdout)}, {last_line(sh('runc --version | head -1', check=False).stdout)}, "
           f"{fo_version()}, strata at "
           f"{sh(['git', '-C', REPO, 'log', '-1', '--format=%h']).stdout.strip()}; load average "
           f"{' '.join(open('/proc/loadavg').read().split()[:3])} at the start, {os.cpu_count()} CPUs",
           "- each cell: result and seconds (build steps: inside the container; other rows: the podman command)", ""]
    bad = False
    for mode in modes:
        user = args.user if mode == "rootless" else None
        programs = {"kernel": None, "fuse-overlayfs": shutil.which("fuse-overlayfs"),
                    "strata": readable_copy(tmp, strata, user) if user and "strata" in systems else strata}
        rows_by_system = {}
        for system in systems:
            log(f"{mode}, {system}")
            store = Store(os.path.join(tmp, f"{mode[:5]}-{system[:2]}"), user, system, programs[system])
            state["stores"].append(store)
            rows = rows_by_system[system] = {}
            try:
                workloads(store, base_tar, rows, args.listings)
            except (Failure, subprocess.TimeoutExpired) as e:
                rows["(stopped)"] = Row("stopped", None, None, str(e))
            finally:
                for n, r in rows.items():
                    log(f"  {system:15} {n:45} {cell(r, False)} {r.detail}")
                store.shutdown()
                wait_gone(state, 30)
                sh(["rm", "-rf", store.base], check=False)
                state["stores"].remove(store)
        ref, diffs = compare(rows_by_system, systems)
        lines, b = report(mode, systems, rows_by_system, ref, diffs)
        bad |= b
        out += lines + [""]
    text = "\n".join(out)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 1 if bad else 0


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


def wait_gone(state, seconds):
    """Waits for the rootless user's processes this run started (podman, strata's daemon) to end."""
    if "uid" not in state:
        return
    deadline = time.monotonic() + seconds
    while user_pids(state["uid"]) and time.monotonic() < deadline:
        time.sleep(0.3)


def cleanup(state, user):
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    for store in list(state["stores"]):
        store.shutdown()
    wait_gone(state, 30)
    tmp = state["tmp"]
    if tmp:
        for line in sorted(open("/proc/self/mounts").read().splitlines(), key=len, reverse=True):
            f = line.split()
            if len(f) > 1 and f[1].startswith(tmp + "/"):
                subprocess.run(["umount", "-l", f[1]], capture_output=True)
        subprocess.run(["rm", "-rf", tmp], capture_output=True)
    if state["acl"]:
        subprocess.run(["setfacl", "-x", f"u:{user}", "/dev/fuse"], capture_output=True)
    for p in state["outside"]:
        if os.path.exists(p):
            if p == "/var/lib/containers":
                subprocess.run(["rm", "-rf", p], capture_output=True)
            else:
                subprocess.run(["find", p, "-depth", "-type", "d", "-empty", "-delete"], capture_output=True)


def on_signal(signum, _frame):
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    for _s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(_s, on_signal)
    try:
        sys.exit(main())
    except Failure as e:
        print(f"workloads: {e}", file=sys.stderr)
        sys.exit(1)
