"""The first requests of a fresh mount on a warm shared daemon (issue 14), as root, no podman.

usage: sudo python3 bench/firstreq.py --lower DIR [--rounds N] [--gap S] NAME=TREE...

Each TREE is a built strata checkout; each gets its own daemon (STRATA_DAEMON_DIR=/tmp/strata-firstreq-NAME,
started by its first mount and stopped at the end). Rounds are interleaved (NAME1, NAME2, ..., then the other way round), each:
mount LOWER with a fresh upper (`-o passthrough=0`), then what runc and ld.so do first in a container
(stat of a few paths, readlink of the symlinks, `chroot M /usr/bin/env true`: open, read and mmap of env,
ld.so and libc), umount, then sleep GAP seconds (the daemon's rest passes start 0.25 s after its last
request). The first 3 rounds per tree are not counted. A private tracefs instance records
fuse_request_send/end of the mount's connection (its st_dev). Per tree, medians of: all three, the mount command,
the workload, the umount, the FUSE requests (count, sum of send-to-reply, INIT's, the median request),
and per mount in the daemon: minor faults (/proc/PID/stat field 10), CPU (utime+stime, mean over the
rounds: ticks), threads started (task ids not seen before).
"""
import argparse, os, re, shutil, statistics, subprocess, sys, time

TRACEFS = "/sys/kernel/tracing"
LINE = re.compile(r"\s([\d.]+):\s+(fuse_request_send|fuse_request_end):\s+connection (\d+) req (\d+)"
                  r"(?: opcode \d+ \((\w+)\))?")


def w(path, text):
    with open(path, "w") as f:
        f.write(text)


def daemon_pid(ddir):
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/environ", "rb") as f:
                env = f.read()
            with open(f"/proc/{p}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm == "java" and f"STRATA_DAEMON_DIR={ddir}".encode() in env.split(b"\0"):
            return int(p)
    return None


def stat_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return int(fields[7]), int(fields[11]) + int(fields[12])  # minflt, utime+stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lower", required=True)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--gap", type=float, default=0.1)
    ap.add_argument("trees", nargs="+")
    a = ap.parse_args()
    trees = [t.split("=", 1) for t in a.trees]
    work = f"/tmp/firstreq-run-{os.getpid()}"
    inst = os.path.join(TRACEFS, "instances", f"firstreq-{os.getpid()}")
    os.mkdir(inst)
    res = {n: [] for n, _ in trees}
    seen = {n: set() for n, _ in trees}
    try:
        w(os.path.join(inst, "buffer_size_kb"), "8192")
        for e in ("fuse_request_send", "fuse_request_end"):
            w(os.path.join(inst, "events/fuse", e, "enable"), "1")
        for i in range(a.rounds + 3):
            for name, tree in (trees if i % 2 == 0 else trees[::-1]):
                ddir = f"/tmp/strata-firstreq-{name}"
                env = dict(os.environ, STRATA_DAEMON_DIR=ddir)
                d = f"{work}/{name}"
                shutil.rmtree(d, ignore_errors=True)
                for s in ("u", "w", "m"):
                    os.makedirs(f"{d}/{s}")
                m = d + "/m"
                pid = daemon_pid(ddir)
                before = stat_of(pid) if pid else None
                w(os.path.join(inst, "trace"), "")
                w(os.path.join(inst, "tracing_on"), "1")
                t0 = time.perf_counter()
                subprocess.run([tree + "/bin/strata", "-o",
                                f"lowerdir={a.lower},upperdir={d}/u,workdir={d}/w,passthrough=0", m],
                               check=True, env=env)
                t1 = time.perf_counter()
                try:
                    for p in ("", "/usr", "/usr/bin/env", "/etc/passwd", "/proc", "/tmp"):
                        os.stat(m + p)
                    for p in ("/bin", "/lib", "/lib64"):
                        os.readlink(m + p)
                    subprocess.run(["chroot", m, "/usr/bin/env", "true"], check=True)
                    t2 = time.perf_counter()
                    conn = os.minor(os.stat(m).st_dev)
                    if pid is None:
                        pid = daemon_pid(ddir)
                    tids = set(int(t) for t in os.listdir(f"/proc/{pid}/task"))
                finally:
                    subprocess.run(["umount", m], check=True)
                t3 = time.perf_counter()
                w(os.path.join(inst, "tracing_on"), "0")
                with open(os.path.join(inst, "trace")) as f:
                    text = f.read()
                pend, lat, init = {}, [], None
                for line in text.splitlines():
                    mm = LINE.search(line)
                    if not mm or int(mm[3]) != conn:
                        continue
                    if mm[2] == "fuse_request_send":
                        pend[int(mm[4])] = (float(mm[1]), mm[5])
                    elif int(mm[4]) in pend:
                        s, op = pend.pop(int(mm[4]))
                        if op == "FUSE_DESTROY":
                            continue
                        lat.append(float(mm[1]) - s)
                        if op == "FUSE_INIT":
                            init = float(mm[1]) - s
                after = stat_of(pid) if before else None
                new = len(tids - seen[name]) if seen[name] else None
                seen[name] |= tids
                if i >= 3:
                    res[name].append(dict(total=t3 - t0, mount=t1 - t0, work=t2 - t1, umount=t3 - t2, n=len(lat),
                                          fsum=sum(lat), init=init or 0, fmed=statistics.median(lat) if lat else 0,
                                          minflt=after[0] - before[0] if after else 0,
                                          cpu=after[1] - before[1] if after else 0, threads=new or 0))
                shutil.rmtree(d, ignore_errors=True)
                time.sleep(a.gap)
    finally:
        w(os.path.join(inst, "tracing_on"), "0")
        for e in ("fuse_request_send", "fuse_request_end"):
            w(os.path.join(inst, "events/fuse", e, "enable"), "0")
        os.rmdir(inst)
        shutil.rmtree(work, ignore_errors=True)
        for name, tree in trees:
            ddir = f"/tmp/strata-firstreq-{name}"
            pid = daemon_pid(ddir)
            if pid:
                os.kill(pid, 15)
    med = lambda n, k, f=1: statistics.median(r[k] for r in res[n]) * f
    print(f"| tree | all ms | mount ms | workload ms | umount ms | FUSE requests | FUSE sum ms | INIT us | "
          f"median request us | daemon minor faults | daemon CPU ticks (mean) | threads started |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, _ in trees:
        cpu = statistics.mean(r["cpu"] for r in res[n])
        print(f"| {n} | {med(n, 'total', 1e3):.2f} | {med(n, 'mount', 1e3):.2f} | {med(n, 'work', 1e3):.2f} | {med(n, 'umount', 1e3):.2f} | "
              f"{med(n, 'n'):.0f} | {med(n, 'fsum', 1e3):.2f} | {med(n, 'init', 1e6):.0f} | {med(n, 'fmed', 1e6):.1f} | "
              f"{med(n, 'minflt'):.0f} | {cpu:.2f} | {med(n, 'threads'):.0f} |")


if __name__ == "__main__":
    sys.exit(main())
