#!/usr/bin/env python3
"""Issue 14, rootless metadata workloads as root: the rootless podman bench's container sequence
(cold find, warm find, first python import, tar of /usr, untar of the stdlib into /tmp, rm -rf of two
lower trees) on one fresh mount, per phase: FUSE requests by opcode (the mount's debug log), daemon
CPU (/proc/PID/stat), daemon syscalls (strace -c -f), wall time.

  python3 bench/meta/phases.py --lower DIR[:DIR...] [--system NAME=HOME|fuse-overlayfs]...
                               [--mode count|cpu|strace|perreq] [--rounds N] [--phases a,b,...]
                               [--like-podman] [--jvm-opts NAME=JAVA_OPTS]... (--opts: the same)

--jvm-opts (or --opts) gives a strata system STRATA_JAVA_OPTS (e.g. two systems of one checkout, one
with -Dstrata.splice=false). --lower: layers top first (e.g. those of bench/rootless/make-image.sh, unpacked). strata runs with
-o passthrough=0 (the rootless data path) and a process of its own (STRATA_DAEMON=0). count mode
mounts with -d (slower: counts only), cpu mode plainly (CPU and wall; rounds interleaved), strace
mode attaches `strace -c -f` to the daemon for each phase (strace 6.1 leaves getxattrat out of its
counts), perreq mode `strace -f` of every call, each counted against the FUSE request the same thread
read last: system calls per request, by opcode (strata only: it reads one request per read(2)). Root only; runs in a private mount
namespace; the upper and workdir are under a temp dir that is removed.

--like-podman (cpu mode): the daemon as the rootless podman benchmark's work container finds it:
strata's shared daemon (a daemon directory of the run's own) started by the first of 7 warm-up mounts
that each run what a container start runs through the mount (the runtime's mount points, /bin/true or
`id -u` from the image), then the work mount, 7 s at rest (the benchmark's memory reading), and the
phases run inside the mount with the image's busybox (chroot), as `podman exec` runs them. The
daemon's CPU per phase is that of the one shared process; per-thread CPU (JIT compiler threads,
workers, GC) is printed with --threads. --jvm-opts NAME=OPTS: STRATA_JAVA_OPTS for system NAME (an A/B
of JVM options: --system a=HOME --system b=HOME --jvm-opts b=-X...).
"""
import argparse, collections, os, re, shutil, signal, subprocess, sys, tempfile, time

OPS = {1: "LOOKUP", 2: "FORGET", 3: "GETATTR", 4: "SETATTR", 5: "READLINK", 6: "SYMLINK", 8: "MKNOD",
       9: "MKDIR", 10: "UNLINK", 11: "RMDIR", 12: "RENAME", 13: "LINK", 14: "OPEN", 15: "READ",
       16: "WRITE", 17: "STATFS", 18: "RELEASE", 20: "FSYNC", 21: "SETXATTR", 22: "GETXATTR",
       23: "LISTXATTR", 24: "REMOVEXATTR", 25: "FLUSH", 26: "INIT", 27: "OPENDIR", 28: "READDIR",
       29: "RELEASEDIR", 30: "FSYNCDIR", 34: "ACCESS", 35: "CREATE", 36: "INTERRUPT", 38: "DESTROY",
       39: "IOCTL", 42: "BATCH_FORGET", 43: "FALLOCATE", 44: "READDIRPLUS", 45: "RENAME2", 46: "LSEEK",
       47: "COPY_FILE_RANGE", 51: "TMPFILE"}

PHASES = {
    "find_cold": "find {m} -xdev | wc -l",
    "find_warm": "find {m} -xdev | wc -l",
    "py_first": "chroot {m} /usr/bin/python3 -c 'import json, email, http.client'",
    "py_warm": "chroot {m} /usr/bin/python3 -c 'import json, email, http.client'",
    "tar": "tar -cf - -C {m} usr | wc -c",
    "untar": "mkdir -p {m}/tmp && tar -C {m}/tmp -xf {m}/srv/python3.11-stdlib.tar",
    "rm": "rm -rf {m}/usr/share/zoneinfo {m}/usr/lib/x86_64-linux-gnu/perl-base",
}


# the podman benchmark's rows, run inside the mount with the image's busybox (like-podman)
PODMAN_PHASES = {
    "find_cold": "find / -xdev | wc -l",
    "find_warm": "find / -xdev | wc -l",
    "py_first": "python3 -c 'import json, email, http.client'",
    "py_warm": "python3 -c 'import json, email, http.client'",
    "tar": "tar -cf - /usr | wc -c",
    "untar": "mkdir -p /tmp/stdlib && tar -xf /srv/python3.11-stdlib.tar -C /tmp/stdlib",
    "rm": "rm -rf /usr/share/zoneinfo /usr/lib/x86_64-linux-gnu/perl-base",
}
# what a container start does through its mount (runc: its mount points, then the command), 7 times
# as the benchmark does before the work container (warm-up, 3 x true, 3 x keep-id id -u)
START = "mkdir -p {m}/proc {m}/dev {m}/sys {m}/etc {m}/run && touch {m}/etc/hosts {m}/etc/resolv.conf && chroot {m} /bin/sh -c {cmd}"


def thread_cpu(pid):
    """{thread name: CPU seconds} of a process, threads of one name summed."""
    out = collections.Counter()
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for t in tids:
        try:
            st = open(f"/proc/{pid}/task/{t}/stat").read()
        except OSError:
            continue
        name = st[st.index("(") + 1:st.rindex(")")]
        f = st.rsplit(")", 1)[1].split()
        name = re.sub(r"[0-9]+$", "#", name)
        out[name] += (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    return out


def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def mounted(m):
    return any(l.split()[1] == m for l in open("/proc/mounts"))


def mount(system, lower, work, mnt, mode, log):
    up, wd = f"{work}/upper", f"{work}/wd"
    for d in (up, wd):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    o = f"lowerdir={lower},upperdir={up},workdir={wd}"
    env = dict(os.environ, STRATA_DAEMON="0")
    if LIKE_PODMAN[0]:
        env = dict(os.environ, STRATA_DAEMON_DIR=f"{work}/daemon", STRATA_DAEMON_IDLE="1")
        env.pop("STRATA_DAEMON", None)
    if JVM_OPTS.get(system):
        env["STRATA_JAVA_OPTS"] = JVM_OPTS[system]
    if LIKE_PODMAN[0] and system != "fuse-overlayfs":
        r = subprocess.run([f"{HOMES[system]}/bin/strata", "mount", "-o", o + ",passthrough=0", mnt],
                           stdout=log, stderr=log, env=env)
        if r.returncode or not mounted(mnt):
            sys.exit(f"phases: {system} did not mount")
        return None
    if system == "fuse-overlayfs":
        cmd = ["fuse-overlayfs", "-f"] + (["-d"] if mode == "count" else []) + ["-o", o, mnt]
    else:
        cmd = [f"{HOMES[system]}/bin/strata", "mount", "-f"] + (["-d"] if mode == "count" else []) \
            + ["-o", o + ",passthrough=0", mnt]
    p = subprocess.Popen(cmd, stdout=log, stderr=log, env=env)
    for _ in range(300):
        if mounted(mnt):
            break
        if p.poll() is not None:
            sys.exit(f"phases: {system} did not mount")
        time.sleep(0.05)
    else:
        sys.exit(f"phases: {system} did not mount in 15 s")
    # the serving process: strata's launcher execs java (same pid); fuse-overlayfs -f stays
    return p


def count(logfile, start, system):
    c = collections.Counter()
    with open(logfile, "rb") as f:
        f.seek(start)
        for line in f:
            if system == "fuse-overlayfs":
                m = re.search(rb"opcode: (\w+)", line)
                if m:
                    c[m.group(1).decode()] += 1
            else:
                m = re.search(rb"debug: request (\d+) ", line)
                if m:
                    c[OPS.get(int(m.group(1)), m.group(1).decode())] += 1
    return c


def strace_summary(text):
    """Total calls and the top calls from strace -c output."""
    calls, top = 0, []
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 5 and f[0][0].isdigit() and f[-1] != "total":
            n = int(f[3])
            top.append((n, f[-1]))
        if f and f[-1] == "total":
            calls = int(f[3])
    top.sort(reverse=True)
    return calls, " ".join(f"{name}={n}" for n, name in top[:14])


def per_request(path):
    """{opcode: (requests, {syscall: count})}: each call counted against the request its thread read last."""
    last, reqs, calls = {}, collections.Counter(), collections.defaultdict(collections.Counter)
    for line in open(path, errors="replace"):
        m = re.match(r"(\d+)\s+(?:<\.\.\. )?(\w+)", line)
        if not m:
            continue
        tid, call = m.groups()
        if call == "read" and "resumed>" not in line or call == "read" and '"' in line:
            h = re.search(r'"((?:\\x[0-9a-f]{2}){8})', line)
            if h:
                b = bytes(int(x, 16) for x in re.findall(r"\\x([0-9a-f]{2})", h.group(1)))
                op = int.from_bytes(b[4:8], "little")
                if op in OPS:
                    last[tid] = OPS[op]
                    reqs[last[tid]] += 1
                    continue
        if call in ("read", "write", "futex", "restart_syscall") or tid not in last:
            continue  # the transport's own reads and replies, thread hand-offs
        calls[last[tid]][call.replace("syscall_0x1d0", "getxattrat")] += 1
    return {op: (n, calls[op]) for op, n in reqs.items()}


def shared_daemon(work):
    """The pid of the shared daemon serving the run's daemon directory."""
    want = f"STRATA_DAEMON_DIR={work}/daemon".encode()
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if b"strata.jar" in open(f"/proc/{p}/cmdline", "rb").read() and \
                        want in open(f"/proc/{p}/environ", "rb").read().split(b"\0"):
                    return int(p)
            except OSError:
                pass
    sys.exit("phases: no shared daemon found")


def warm_up(system, args, work, mnt, log):
    """What the podman benchmark's work container finds: 7 container starts through the same daemon."""
    for i in range(7):
        p = mount(system, args.lower, work, mnt, args.mode, log)
        cmd = "/bin/true" if i < 4 else "'id -u'"
        if WARM_CMD[0]:
            cmd = f"'{WARM_CMD[0]}'"
        subprocess.run(["sh", "-c", START.format(m=mnt, cmd=cmd)], stdout=log, stderr=log)
        subprocess.run(["umount", mnt])
        if p:
            p.wait(timeout=30)


def run_once(system, args, work, mnt, results):
    logf = f"{work}/log-{system}"
    with open(logf, "wb") as log:
        if LIKE_PODMAN[0]:
            warm_up(system, args, work, mnt, log)
        p = mount(system, args.lower, work, mnt, args.mode, log)
        pid = p.pid if p else shared_daemon(work)
        if LIKE_PODMAN[0]:
            subprocess.run(["sh", "-c", START.format(m=mnt, cmd="'sleep 0'")], stdout=log, stderr=log)
            time.sleep(7)  # the benchmark's idle reading
        try:
            for ph in args.phases:
                if LIKE_PODMAN[0]:
                    cmd = f"chroot {mnt} /bin/sh -c \"{PODMAN_PHASES[ph]}\""
                else:
                    cmd = PHASES[ph].format(m=mnt)
                time.sleep(0.3 if args.mode != "cpu" else 0.1)  # let the log/kernel settle
                off = os.path.getsize(logf)
                st = None
                if args.mode == "perreq":
                    st = subprocess.Popen(["strace", "-f", "-xx", "-s", "8", "-p", str(pid), "-o", f"{work}/st"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    time.sleep(1.0)
                if args.mode == "strace":
                    st = subprocess.Popen(["strace", "-c", "-f", "-p", str(pid), "-o", f"{work}/st"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    time.sleep(1.0)
                th0 = thread_cpu(pid)
                c0, t0 = cpu(pid), time.monotonic()
                r = subprocess.run(["sh", "-c", cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                t1, c1 = time.monotonic(), cpu(pid)
                th1 = thread_cpu(pid)
                if r.returncode:
                    print(f"  {system} {ph}: exit {r.returncode}: {r.stderr.decode().strip()[:200]}")
                row = {"wall": t1 - t0, "cpu": c1 - c0, "out": r.stdout.decode().strip()[:40],
                       "threads": {k: th1[k] - th0.get(k, 0) for k in th1 if th1[k] - th0.get(k, 0) > 0}}
                if args.mode == "count":
                    time.sleep(0.5)
                    row["ops"] = count(logf, off, system)
                if st:
                    time.sleep(0.3)
                    st.send_signal(signal.SIGINT)
                    st.wait()
                    if args.mode == "perreq":
                        row["perreq"] = per_request(f"{work}/st")
                    else:
                        row["calls"], row["top"] = strace_summary(open(f"{work}/st").read())
                results[system][ph].append(row)
        finally:
            subprocess.run(["umount", mnt])
            if p:
                p.wait(timeout=30)
            elif LIKE_PODMAN[0]:
                for _ in range(100):  # the daemon ends 1 s after its last mount (STRATA_DAEMON_IDLE)
                    if not os.path.exists(f"/proc/{pid}"):
                        break
                    time.sleep(0.1)
                else:
                    os.kill(pid, signal.SIGTERM)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lower", required=True)
    ap.add_argument("--system", action="append", default=[])
    ap.add_argument("--mode", default="cpu", choices=["count", "cpu", "strace", "perreq"])
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--phases", default=",".join(PHASES))
    ap.add_argument("--like-podman", action="store_true")
    ap.add_argument("--jvm-opts", "--opts", action="append", default=[], help="NAME=OPTS: STRATA_JAVA_OPTS for system NAME")
    ap.add_argument("--warm-up-cmd", default="", help="like-podman: what the warm-up containers run instead "
                    "(e.g. 'find / -xdev >/dev/null': the phases on a daemon already through their paths)")
    ap.add_argument("--threads", action="store_true", help="print CPU per thread (summed over rounds)")
    args = ap.parse_args()
    LIKE_PODMAN[0] = args.like_podman
    WARM_CMD[0] = args.warm_up_cmd
    for o in args.jvm_opts:
        name, opts = o.split("=", 1)
        JVM_OPTS[name] = opts
    if args.like_podman and args.mode != "cpu":
        sys.exit("phases: --like-podman goes with --mode cpu")
    args.phases = args.phases.split(",")
    if os.geteuid() != 0:
        sys.exit("phases: needs root (it mounts)")
    if not os.environ.get("PHASES_NS"):
        os.environ["PHASES_NS"] = "1"
        os.execvp("unshare", ["unshare", "-m", "--propagation", "private", sys.executable] + sys.argv)
    systems = []
    for s in args.system or ["fuse-overlayfs", f"strata={os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))}"]:
        if "=" in s:
            name, home = s.split("=", 1)
            HOMES[name] = home
            systems.append(name)
        else:
            systems.append(s)
    work = tempfile.mkdtemp(prefix="meta-phases.", dir="/var/tmp")
    mnt = f"{work}/mnt"
    os.makedirs(mnt)
    results = {s: collections.defaultdict(list) for s in systems}
    try:
        for r in range(args.rounds):
            for j in range(len(systems)):
                s = systems[(j + r) % len(systems)]
                run_once(s, args, work, mnt, results)
    finally:
        if mounted(mnt):
            subprocess.run(["umount", "-l", mnt])
        shutil.rmtree(work, ignore_errors=True)
    med = lambda xs: sorted(xs)[len(xs) // 2]
    for ph in args.phases:
        print(f"== {ph}")
        for s in systems:
            rows = results[s][ph]
            line = f"  {s:16s} wall {med([x['wall'] for x in rows]):.3f} cpu {med([x['cpu'] for x in rows]):.2f}"
            line += f"  out {rows[0]['out']}"
            if args.mode == "count":
                ops = rows[0]["ops"]
                line += f"  requests {sum(ops.values())}: " + " ".join(f"{k}={v}" for k, v in ops.most_common())
            if args.mode == "strace":
                line += f"  syscalls {med([x['calls'] for x in rows])}: {rows[0]['top']}"
            if args.mode == "perreq" and s != "fuse-overlayfs":
                pr = rows[0]["perreq"]
                tot = sum(sum(c.values()) for n, c in pr.values())
                line += f"  system calls besides read/write/futex: {tot}"
                for op, (n, c) in sorted(pr.items(), key=lambda kv: -kv[1][0]):
                    k = sum(c.values())
                    if n >= 3:
                        line += f"\n      {op:12s} {n:6d} requests {k / n:5.2f}/request: " + " ".join(
                            f"{name}={v / n:.2f}" for name, v in c.most_common(6))
            if args.threads:
                th = collections.Counter()
                for x in rows:
                    th.update(x["threads"])
                line += "\n      threads (s, all rounds): " + " ".join(f"{k}={v:.2f}" for k, v in th.most_common(8))
            if args.rounds > 1:
                line += "  walls " + " ".join(f"{x['wall']:.3f}" for x in rows)
                line += "  cpus " + " ".join(f"{x['cpu']:.2f}" for x in rows)
            print(line)


HOMES = {}
LIKE_PODMAN = [False]
JVM_OPTS = {}
WARM_CMD = [""]
if __name__ == "__main__":
    main()
