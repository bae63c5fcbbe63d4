#!/usr/bin/env python3
"""The rootless benchmark's memory rows alone, with where strata's daemon memory goes (issue 14).

Ten rootless podman containers that each run the benchmark's lighter workloads (find, tar, the import:
bench/rootless/rootless.py's TEN_WORK), then their mount programs' Pss sum after 7 s at rest, as the
benchmark reads it; for strata also its Pss by area (Java heap, class-data archive, JIT code, thread
stacks, malloc arenas, libjvm: /proc/PID/smaps, areas found by address, no attach), and with --sample S
its Pss by area every 0.5 s for S seconds after the tenth container's work. --prelude runs the
benchmark's sequence first (container starts, keep-id runs, the work container's workloads), so that
the daemon has the history it has in the benchmark. --full has each of the ten run every workload of
the benchmark (copy-ups, untar, rm -rf, dd and the re-read too) instead of the lighter ones. One round,
one system: a probe, not the benchmark.
    sudo python3 bench/rootless/tenmem.py [--system strata|fuse-overlayfs] [--prelude] [--full] [--sample S]
                                          [--strata BIN] [--env K=V ...] [--jcmd 'CMD ARGS' ...]
                                          [--maps KB] [--threads]
--env passes variables to podman and so to the mount program (e.g. STRATA_JAVA_OPTS=-Dstrata.cacheIdleMillis=0);
--jcmd runs a jcmd command on strata's daemon after the reading (e.g. VM.native_memory, with
--env STRATA_JAVA_OPTS=-XX:NativeMemoryTracking=summary); --maps KB lists the daemon's anonymous
mappings of at least KB kB of Pss; --threads each thread's stack Pss by its name.
"""
import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rootless as R  # noqa: E402


def mappings(pid):
    """/proc/PID/smaps as (low, high, permissions, file name or "", {field: kB}) per mapping."""
    cur = None
    for line in open(f"/proc/{pid}/smaps"):
        m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$", line)
        if m:
            if cur:
                yield cur
            cur = (int(m.group(1), 16), int(m.group(2), 16), m.group(3), m.group(4).strip(), {})
            continue
        m = re.match(r"^(\w+):\s+(\d+) kB", line)
        if m and cur:
            cur[4][m.group(1)] = int(m.group(2))
        elif line.startswith("VmFlags:") and cur:
            cur[4]["VmFlags"] = line.split(":", 1)[1].strip()
    if cur:
        yield cur


def areas(pid, dirty=None):
    """Pss (kB) by area of a JVM's /proc/PID/smaps (and into `dirty`, its Private_Dirty kB by area)."""
    sps = []
    for t in glob.glob(f"/proc/{pid}/task/*/syscall"):
        try:
            f = open(t).read().split()
            if len(f) >= 8:
                sps.append(int(f[-2], 16))  # the stack pointer of a thread in a system call
        except OSError:
            pass
    out = {}
    for lo, hi, perm, name, kb in mappings(pid):
        if name.endswith(".jsa"):
            cur = "class-data archive, " + ("written part" if "w" in perm else "read-only part")
        elif "libjvm" in name:
            cur = "libjvm.so"
        elif name == "[heap]":
            cur = "malloc: main arena ([heap])"
        elif name:
            cur = "other files"
        elif 0x600000000 <= lo and hi <= 0x800000000:
            cur = "Java heap"  # below the archive at 0x800000000 (compressed oops, heap < 2 GiB)
        elif "x" in perm:
            cur = "JIT code"
        elif any(lo <= sp < hi for sp in sps):
            cur = "thread stacks"
        else:
            cur = "other anonymous (malloc arenas, metaspace, buffers)"
        out[cur] = out.get(cur, 0) + kb.get("Pss", 0)
        if dirty is not None:
            dirty[cur] = dirty.get(cur, 0) + kb.get("Private_Dirty", 0)
    return out


def short(area):
    """An area's name without its details (for a line of samples)."""
    return area.split(',')[0].split(' (')[0]


def sample(pid, seconds, label):
    """Prints the daemon's Pss by area every 0.5 s for `seconds` s."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        a = areas(pid)
        print(f"{label}{time.monotonic() - t0:5.1f} s: {sum(a.values()) / 1024:5.1f} MB  " +
              " ".join(f"{short(k)}={v / 1024:.1f}" for k, v in sorted(a.items(), key=lambda x: -x[1])), flush=True)
        time.sleep(0.5)


def show(pid):
    d = {}
    a = areas(pid, d)
    print("   Pss (of it written, MB)")
    for k, v in sorted(a.items(), key=lambda x: -x[1]):
        print(f"  {v / 1024:6.1f} ({d.get(k, 0) / 1024:4.1f})  {k}")
    print(f"  {sum(a.values()) / 1024:6.1f}  total Pss; {len(os.listdir(f'/proc/{pid}/task'))} threads", flush=True)


def anonymous(pid, least):
    """Prints the daemon's anonymous mappings of at least `least` kB of Pss: address, size, Pss, flags."""
    rows = [(kb.get("Pss", 0), lo, hi, perm, kb.get("VmFlags", "")) for lo, hi, perm, name, kb in mappings(pid) if not name]
    print("  anonymous mappings (kB of Pss, size):")
    for pss, lo, hi, perm, flags in sorted(rows, reverse=True):
        if pss >= least:
            print(f"  {pss:7d}  {lo:x} {(hi - lo) // 1024:8d} kB {perm} {flags}")


def stacks(pid):
    """Prints each thread's stack Pss (kB) by thread name: the mapping its stack pointer is in (threads
    in a system call only; a mapping two threads share, e.g. two stacks merged into one, counts once)."""
    maps = [(lo, hi, kb.get("Pss", 0)) for lo, hi, perm, name, kb in mappings(pid) if not name]
    seen, rows = set(), []
    for t in sorted(glob.glob(f"/proc/{pid}/task/*")):
        try:
            f = open(f"{t}/syscall").read().split()
            comm = open(f"{t}/comm").read().strip()
        except OSError:
            continue
        if len(f) < 8:
            rows.append((-1, comm, "running"))
            continue
        sp = int(f[-2], 16)
        m = next(((lo, hi, pss) for lo, hi, pss in maps if lo <= sp < hi), None)
        if m is None:
            rows.append((-1, comm, "no mapping"))
        elif m[0] in seen:
            rows.append((0, comm, f"shares {m[0]:x}"))
        else:
            seen.add(m[0])
            rows.append((m[2], comm, f"{m[0]:x} {(m[1] - m[0]) // 1024} kB"))
    print("  thread stacks (kB of Pss):")
    for pss, comm, where in sorted(rows, key=lambda r: -r[0]):
        print(f"  {pss:7d}  {comm:20s} {where}")


def jcmd(pid, uid, cmd):
    """Runs `jcmd PID CMD` as the daemon's user in its namespaces (the attach socket is in its /tmp)."""
    gid = R.pwd.getpwuid(uid).pw_gid
    r = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--init-groups", "nsenter", "-t", str(pid),
                        "-U", "-m", "--preserve-credentials", "jcmd", str(pid), *cmd.split()],
                       capture_output=True, text=True)
    print(f"--- jcmd {cmd} (exit {r.returncode})\n{r.stdout}{r.stderr}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--system", default="strata", choices=["strata", "fuse-overlayfs"])
    ap.add_argument("--strata", default=os.path.join(R.REPO, "bin", "strata"))
    ap.add_argument("--user", default="strata-bench")
    ap.add_argument("--prelude", action="store_true")
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--sample", type=float, default=0)
    ap.add_argument("--env", action="append", default=[])
    ap.add_argument("--jcmd", action="append", default=[])
    ap.add_argument("--maps", type=int, default=0, metavar="KB")
    ap.add_argument("--threads", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("tenmem: needs root (it reads the mount programs' memory); podman runs as --user")
    r = subprocess.run(["bash", os.path.join(R.REPO, "native-tests/podman/rootless-user.sh"), args.user],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"tenmem: cannot prepare the user {args.user}: {R.last_line(r.stderr)}")
    uid = R.pwd.getpwnam(args.user).pw_uid
    before = R.user_pids(uid)
    if before:
        raise SystemExit(f"tenmem: the user {args.user} already runs processes ({' '.join(map(str, sorted(before)))})")
    tmp = tempfile.mkdtemp(prefix="srm.", dir="/var/tmp")
    os.chmod(tmp, 0o711)
    st = None
    try:
        R.sh(["bash", os.path.join(R.HERE, "make-image.sh"), f"{tmp}/img"])
        R.sh(["tar", "-C", f"{tmp}/img", "-cf", f"{tmp}/img.tar", "."])
        os.chmod(f"{tmp}/img.tar", 0o644)
        program = args.strata if args.system == "strata" else "/usr/bin/fuse-overlayfs"
        st = R.Store(f"{tmp}/s", args.user, args.system, program)
        i = st.prefix.index("podman")
        st.prefix[i:i] = args.env
        st.podman("load", "-q", "-i", f"{tmp}/img.tar")
        if args.prelude:
            for _ in range(4):
                st.podman("run", "--rm", *R.RUN_FLAGS, R.IMAGE, "true")
            for _ in range(3):
                st.podman("run", "--rm", "--userns=keep-id", *R.RUN_FLAGS, R.IMAGE, "id", "-u")
            c, _, m = st.start("work")
            progs = st.mount_programs(m)
            R.settle(progs)
            print(f"an idle container, alone: {R.pss_mb(progs):.1f} MB")
            for _key, setup, command, _check in R.WORK:
                if setup:
                    st.podman("exec", c, "sh", "-c", setup)
                R.sh("sync")
                st.exec_timed(c, command)
            st.podman("rm", "-f", "-t", "0", c)
        progs = []
        for k in range(10):
            c, _, m = st.start(f"ten{k}")
            if args.full:
                for _key, setup, command, _check in R.WORK:
                    if setup:
                        st.podman("exec", c, "sh", "-c", setup)
                    st.exec_timed(c, command)
            else:
                st.podman("exec", c, "sh", "-c", R.TEN_WORK)
            progs += st.mount_programs(m)
        pid = sorted(set(progs))[0]
        sample(pid, args.sample, "")
        if not args.sample:
            R.settle(progs)
        print(f"10 running containers: Pss sum {R.pss_mb(progs):.1f} MB")
        if args.system == "strata":
            show(pid)
            if args.maps:
                anonymous(pid, args.maps)
            if args.threads:
                stacks(pid)
            for cmd in args.jcmd:
                jcmd(pid, uid, cmd)
        # read before the start, as the benchmark does (a shared daemon is one process: a reading of both
        # after it would count its growth twice over, and show none)
        ten, was = R.pss_mb(progs), areas(pid) if args.system == "strata" else {}
        c, _, m = st.start("eleven")
        more = st.mount_programs(m)
        sample(pid, args.sample, "eleventh ")  # the same samples after the eleventh's start
        if not args.sample:
            R.settle(more)
        print(f"one more idle container: {R.pss_mb(progs + more) - ten:+.1f} MB")
        if args.system == "strata":  # where the daemon's growth is, by area (MB)
            after = areas(pid)
            grew = {k: (after.get(k, 0) - was.get(k, 0)) / 1024 for k in set(was) | set(after)}
            print("  " + " ".join(f"{short(k)}={v:+.1f}" for k, v in sorted(grew.items(), key=lambda x: -abs(x[1])) if abs(v) >= 0.1))
    finally:
        if st:
            st.shutdown()
        # what this run started and is still there (strata's daemon waits out its idle time once its
        # last mount is gone, when the store's shutdown no longer finds it by its mounts): ended by pid
        R.wait_gone({"uid": uid, "before": before}, 10)
        R.sh(["rm", "-rf", tmp], check=False)


if __name__ == "__main__":
    main()
