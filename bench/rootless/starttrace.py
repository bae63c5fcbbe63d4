#!/usr/bin/env python3
"""Where the time of one rootless `podman run --rm IMG true` goes, per mount program (issue 14).

Run as root: `python3 bench/rootless/starttrace.py [--runs N] [--systems ...] [--keep-id]`. Uses the
rootless benchmark's set-up (bench/rootless/rootless.py: its user, a fresh store per system under one
temp dir, the same image) and the kernel's own tracing (a private tracefs instance, so nothing else on
the machine is disturbed): exec, fork, exit, mount and umount events of podman's process tree, and the
FUSE request stream (fuse_request_send/end) of the container's mount. Prints, per system, the median
timeline of N runs (ms from podman's exec) and the FUSE requests by opcode with the time from each
request's send to its reply. No strace: it would slow podman's threads more than what is measured.
"""

import argparse
import collections
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import rootless as rl  # noqa: E402

TRACEFS = "/sys/kernel/tracing"
EVENTS = ["sched/sched_process_fork", "sched/sched_process_exec", "sched/sched_process_exit",
          "syscalls/sys_enter_mount", "syscalls/sys_exit_mount", "syscalls/sys_enter_umount",
          "syscalls/sys_exit_umount", "fuse/fuse_request_send", "fuse/fuse_request_end"]
LINE = re.compile(r"^\s*(?P<comm>.+?)-(?P<tid>\d+)\s+\(\s*(?P<tgid>[-\d]+)\)\s+\[\d+\]\s+\S+\s+"
                  r"(?P<ts>[\d.]+):\s+(?P<ev>\w+):\s*(?P<rest>.*)$")


def w(path, text):
    with open(path, "w") as f:
        f.write(text)


class Tracer:
    def __init__(self, syscalls=False):
        self.mounted = False
        if not os.path.isdir(os.path.join(TRACEFS, "events")):
            subprocess.run(["mount", "-t", "tracefs", "nodev", TRACEFS], check=True)
            self.mounted = True
        self.inst = os.path.join(TRACEFS, "instances", f"strata-start-{os.getpid()}")
        os.mkdir(self.inst)
        w(os.path.join(self.inst, "buffer_size_kb"), "65536")
        w(os.path.join(self.inst, "options/record-tgid"), "1")
        self.events = EVENTS + (["raw_syscalls/sys_enter"] if syscalls else [])
        for e in self.events:
            w(os.path.join(self.inst, "events", e, "enable"), "1")

    def start(self):
        w(os.path.join(self.inst, "trace"), "")
        w(os.path.join(self.inst, "tracing_on"), "1")

    def stop(self):
        w(os.path.join(self.inst, "tracing_on"), "0")
        with open(os.path.join(self.inst, "trace")) as f:
            return f.read()

    def close(self):
        w(os.path.join(self.inst, "tracing_on"), "0")
        for e in self.events:
            try:
                w(os.path.join(self.inst, "events", e, "enable"), "0")
            except OSError:
                pass
        os.rmdir(self.inst)
        if self.mounted:
            subprocess.run(["umount", TRACEFS], check=False)


def parse(text):
    out = []
    for line in text.splitlines():
        m = LINE.match(line)
        if m:
            out.append((float(m["ts"]), int(m["tid"]), int(m["tgid"]) if m["tgid"].lstrip("-").isdigit() else -1,
                        m["comm"].strip(), m["ev"], m["rest"]))
    return out


def analyse(events, root_pid, daemon_pids):
    """Timeline marks (seconds from podman's exec) and the FUSE requests of the container's mount."""
    tree = {root_pid}
    marks = {}
    t0 = None
    mprog_pids = set()
    conns = set()
    pending = {}
    reqs = collections.defaultdict(list)  # opcode name -> [latency s]
    sysc = collections.Counter()  # the mount program's system calls (raw_syscalls, with --syscalls)
    serving = set(daemon_pids)
    first_req = last_req = None
    umount_pending = {}

    def mark(name, ts, last=False):
        if last or name not in marks:
            marks[name] = ts - t0

    for ts, tid, tgid, comm, ev, rest in events:
        if ev == "sched_process_fork":
            m = re.search(r"pid=(\d+) child_comm=.* child_pid=(\d+)", rest)
            child = int(re.search(r"child_pid=(\d+)", rest)[1])
            if m and int(m[1]) in tree or tgid in tree:
                tree.add(child)
            if tid in mprog_pids or tgid in mprog_pids:  # fuse-overlayfs's daemon child and its threads
                mprog_pids.add(child)
            continue
        in_tree = tid in tree or tgid in tree
        if ev == "sys_enter":
            if t0 is not None and (tgid in serving or tid in mprog_pids or tgid in mprog_pids):
                sysc[int(re.search(r"NR (\d+)", rest)[1])] += 1
            continue
        if ev == "sched_process_exec" and in_tree:
            fn = re.search(r"filename=(\S+)", rest)[1]
            base = os.path.basename(fn)
            if t0 is None and tid == root_pid and base == "podman":
                t0 = ts
                mark("podman exec", ts)
            if t0 is None:
                continue
            if base in ("fuse-overlayfs", "strata", "strata-client"):
                mark("mount program exec", ts)
                mprog_pids.add(tid)
            elif base == "runc":
                mark("runc first exec", ts)
                mark("runc last exec", ts, last=True)
            elif base == "conmon":
                mark("conmon exec", ts)
            elif base == "true":
                mark("container `true` exec", ts)
            elif base == "strata-jvm" or base == "java":
                mark("JVM started (!)", ts)
        elif t0 is None:
            continue
        elif ev == "sched_process_exit" and in_tree:
            if tid in mprog_pids:
                mark("mount program exit", ts)
            if comm == "true":
                mark("container `true` exit", ts)
            if tid == root_pid:
                mark("podman exit", ts)
        elif ev == "sys_enter_mount" and (in_tree or tgid in daemon_pids):
            mark("mount(2) enter", ts)
        elif ev == "sys_exit_mount" and (in_tree or tgid in daemon_pids):
            mark("mount(2) exit", ts)
        elif ev == "sys_enter_umount" and in_tree:
            umount_pending[tid] = ts
        elif ev == "sys_exit_umount" and tid in umount_pending:
            s = umount_pending.pop(tid)
            if "umount2 enter" not in marks or re.search(r"0x0\b", rest):
                mark("umount2 enter (last)", s, last=True)
                mark("umount2 exit (last)", ts, last=True)
        elif ev == "fuse_request_send":
            m = re.search(r"connection (\d+) req (\d+) opcode \d+ \((\w+)\)", rest)
            c = int(m[1])
            if m[3] == "FUSE_INIT" and (in_tree or tgid in daemon_pids):
                conns.add(c)
            if c in conns:
                pending[(c, int(m[2]))] = (ts, m[3].replace("FUSE_", ""))
                first_req = first_req if first_req is not None else ts
        elif ev == "fuse_request_end":
            m = re.search(r"connection (\d+) req (\d+)", rest)
            key = (int(m[1]), int(m[2]))
            if key in pending:
                s, op = pending.pop(key)
                reqs[op].append(ts - s)
                last_req = ts
    if first_req is not None:
        mark("first FUSE request", first_req)
    if last_req is not None:
        mark("last FUSE reply", last_req, last=True)
    for key, (s, op) in pending.items():
        reqs[op + " (no reply in trace)"].append(0.0)
    return marks, reqs, sysc


ORDER = ["podman exec", "mount program exec", "mount(2) enter", "first FUSE request", "mount(2) exit",
         "mount program exit", "JVM started (!)", "conmon exec", "runc first exec", "container `true` exec",
         "container `true` exit", "runc last exec", "umount2 enter (last)", "umount2 exit (last)",
         "last FUSE reply", "podman exit"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--systems", default="kernel,fuse-overlayfs,strata")
    ap.add_argument("--user", default="strata-start")
    ap.add_argument("--strata", default=os.path.join(rl.REPO, "bin", "strata"))
    ap.add_argument("--alt", metavar="LAUNCHER", help="another strata launcher (e.g. another build) as the system strata-alt")
    ap.add_argument("--syscalls", action="store_true", help="count the mount program's system calls too")
    ap.add_argument("--mount-loop", type=int, metavar="N", help="instead: N rounds of mount + stat + umount by each strata launcher, inside podman unshare")
    ap.add_argument("--keep-id", action="store_true", help="`--userns=keep-id ... id -u` instead of `true`")
    ap.add_argument("--raw", metavar="PREFIX", help="keep the last run's raw trace of each system in PREFIX-SYSTEM.txt")
    args = ap.parse_args()
    systems = [s for s in args.systems.split(",") if s]
    r = subprocess.run(["bash", os.path.join(rl.REPO, "native-tests/podman/rootless-user.sh"), args.user],
                       capture_output=True, text=True, check=True)
    acl = "acl-added" in r.stdout
    import pwd
    uid = pwd.getpwnam(args.user).pw_uid
    tmp = tempfile.mkdtemp(prefix="sst.", dir="/var/tmp")
    os.chmod(tmp, 0o711)
    state = {"stores": [], "tmp": tmp, "acl": acl, "uid": uid, "before": rl.user_pids(uid), "outside": []}
    tracer = None
    try:
        img = os.path.join(tmp, "img")
        rl.sh(["bash", os.path.join(HERE, "make-image.sh"), img])
        rl.sh(["tar", "-C", img, "-cf", os.path.join(tmp, "img.tar"), "."])
        os.chmod(os.path.join(tmp, "img.tar"), 0o644)
        programs = {"kernel": None, "fuse-overlayfs": "/usr/bin/fuse-overlayfs", "strata": os.path.abspath(args.strata),
                    "strata-alt": os.path.abspath(args.alt) if args.alt else None}
        stores = {}
        for s in systems:
            st = rl.Store(os.path.join(tmp, s[0]), args.user, s, programs[s])
            state["stores"].append(st)
            st.podman("load", "-q", "-i", os.path.join(tmp, "img.tar"))
            st.podman("run", "--rm", *rl.RUN_FLAGS, rl.IMAGE, "true")
            stores[s] = st
        rl.sh(f"tar -C {tmp} -cf - . | cat > /dev/null")
        if args.mount_loop:
            st = stores[systems[-1]]
            launchers = [programs[s] for s in systems if s.startswith("strata")]
            r = st.podman("unshare", "python3", os.path.join(HERE, "mountloop.py"), str(args.mount_loop), *launchers, timeout=1800)
            by = collections.defaultdict(lambda: ([], []))
            for line in r.stdout.splitlines():
                l, a, b = line.split()
                by[l][0].append(int(a) / 1000)
                by[l][1].append(int(b) / 1000)
            print(f"\n## mount program alone (podman unshare), {args.mount_loop} interleaved rounds: median ms\n")
            print("| launcher | mount returns | then first stat |\n|---|---:|---:|")
            for l, (a, b) in by.items():
                print(f"| {l} | {statistics.median(a):.2f} | {statistics.median(b):.2f} |")
            return
        tracer = Tracer(args.syscalls)
        cmd = (["run", "--rm", "--userns=keep-id", *rl.RUN_FLAGS, rl.IMAGE, "id", "-u"] if args.keep_id
               else ["run", "--rm", *rl.RUN_FLAGS, rl.IMAGE, "true"])
        results = {s: [] for s in systems}
        for i in range(args.runs):
            for s in systems:
                st = stores[s]
                daemons = strata_daemons(st.uid) if s.startswith("strata") else set()
                tracer.start()
                t = time.monotonic()
                p = subprocess.Popen(st.prefix + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=st.base)
                err = p.communicate(timeout=120)[1]
                wall = time.monotonic() - t
                text = tracer.stop()
                if p.returncode != 0:
                    raise rl.BenchError(f"{s}: podman failed: {err.decode()[-300:]}")
                # the setpriv process execs env, which execs podman: the same pid
                daemons |= strata_daemons(st.uid) if s.startswith("strata") else set()
                marks, reqs, sysc = analyse(parse(text), p.pid, daemons)
                if args.raw:
                    with open(f"{args.raw}-{s}.txt", "w") as f:  # the last run's
                        f.write(f"# podman pid {p.pid} daemons {sorted(daemons)}\n" + text)
                results[s].append((wall, marks, reqs, sysc))
                mp = marks.get("mount program exit", 0) - marks.get("mount program exec", 0)
                rl.log(f"run {i + 1} {s}: {wall * 1000:.0f} ms, mount program {mp * 1000:.1f} ms, "
                       f"{sum(len(v) for v in reqs.values())} FUSE requests in {sum(map(sum, reqs.values())) * 1000:.1f} ms")
        report(systems, results, args)
    finally:
        if tracer:
            tracer.close()
        rl.cleanup(state, args.user)


def strata_daemons(uid):
    """The user's strata JVMs (a shared daemon holds /dev/fuse only while it serves a mount)."""
    out = set()
    for p in rl.user_pids(uid):
        if b"strata.jar" in rl.read(f"/proc/{p}/cmdline").encode():
            out.add(p)
    return out


def ms(v):
    return "–" if v is None else f"{v * 1000:.1f}"


def report(systems, results, args):
    what = "`podman run --rm --userns=keep-id IMG id -u`" if args.keep_id else "`podman run --rm IMG true`"
    print(f"\n## Timeline of {what}: ms from podman's exec, median of {args.runs} runs\n")
    print("| mark | " + " | ".join(systems) + " |")
    print("|---|" + "---:|" * len(systems))
    print("| whole command (wall, from Popen) | " + " | ".join(
        ms(statistics.median([r[0] for r in results[s]])) for s in systems) + " |")
    for k in ORDER:
        cells = []
        for s in systems:
            v = [r[1][k] for r in results[s] if k in r[1]]
            cells.append(ms(statistics.median(v)) if v else "–")
        if any(c != "–" for c in cells):
            print(f"| {k} | " + " | ".join(cells) + " |")
    for s in systems:
        if s == "kernel":
            continue
        print(f"\n### FUSE requests of the container's mount, {s} (median count per run; sum of send-to-reply ms)\n")
        ops = sorted({op for r in results[s] for op in r[2]})
        print("| opcode | count | sum ms | median us |")
        print("|---|---:|---:|---:|")
        tot_n, tot_t = [], []
        for r in results[s]:
            tot_n.append(sum(len(v) for v in r[2].values()))
            tot_t.append(sum(sum(v) for v in r[2].values()))
        for op in ops:
            n = statistics.median([len(r[2].get(op, [])) for r in results[s]])
            t = statistics.median([sum(r[2].get(op, [])) for r in results[s]])
            lat = [x for r in results[s] for x in r[2].get(op, [])]
            print(f"| {op} | {n:g} | {t * 1000:.2f} | {statistics.median(lat) * 1e6:.0f} |")
        print(f"| all | {statistics.median(tot_n):g} | {statistics.median(tot_t) * 1000:.2f} | |")
        if args.syscalls:
            names = syscall_names()
            total = collections.Counter()
            for r in results[s]:
                total.update(r[3])
            n = len(results[s])
            print(f"\nSystem calls of the mount program (its processes and threads; strata: the daemon's), "
                  f"per run: {sum(total.values()) / n:.0f}; the most made: "
                  + ", ".join(f"{names.get(k, k)} {v / n:.0f}" for k, v in total.most_common(14)))


def syscall_names():
    out = {}
    try:
        with open("/usr/include/x86_64-linux-gnu/asm/unistd_64.h") as f:
            for m in re.finditer(r"#define __NR_(\w+) (\d+)", f.read()):
                out[int(m[2])] = m[1]
    except OSError:
        pass
    return out


if __name__ == "__main__":
    try:
        main()
    except rl.BenchError as e:
        print(f"starttrace: {e}", file=sys.stderr)
        sys.exit(1)
