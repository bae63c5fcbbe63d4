#!/usr/bin/env python3
"""strata against the kernel overlay and fuse-overlayfs, on the same layer stack.

Run through `scripts/bench.sh compare [--runs N] [--quick] ...` (which builds strata first);
bench/README.md describes the method. Needs root (mount, drop_caches). Runs inside a private
mount namespace so that no mount of ours leaks into (or is copied by) anything else.
"""

import argparse
import datetime
import fcntl
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import stack  # noqa: E402

DEFAULT_WORKDIR = os.environ.get("STRATA_BENCH_DIR", "/var/tmp/strata-bench")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def now():
    return time.perf_counter()


class MountError(Exception):
    pass


class WorkloadError(Exception):
    pass


# ---------------------------------------------------------------- systems

class System:
    """One union filesystem implementation and how to mount it."""

    def __init__(self, key, label, daemon):
        self.key, self.label, self.daemon = key, label, daemon
        self.skip_reason = None

    def mount_cmd(self, lowers, upper, work, mnt):
        raise NotImplementedError

    def available(self):
        """None if the system can be tried, else why not."""
        return None


class Kernel(System):
    def __init__(self):
        super().__init__("kernel", "kernel overlay", daemon=False)

    def mount_cmd(self, lowers, upper, work, mnt):
        return ["mount", "-t", "overlay", "overlay", "-o",
                f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}", mnt]

    def available(self):
        with open("/proc/filesystems") as f:
            if "overlay" in f.read():
                return None
        subprocess.run(["modprobe", "overlay"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open("/proc/filesystems") as f:
            return None if "overlay" in f.read() else "the kernel has no overlay filesystem"


class FuseOverlayfs(System):
    def __init__(self):
        super().__init__("fuse-overlayfs", "fuse-overlayfs", daemon=True)

    def mount_cmd(self, lowers, upper, work, mnt):
        return ["fuse-overlayfs", "-o", f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}", mnt]

    def available(self):
        return None if shutil.which("fuse-overlayfs") else "fuse-overlayfs is not installed (apt-get install fuse-overlayfs)"


class Strata(System):
    def __init__(self, home):
        super().__init__("strata", "strata", daemon=True)
        self.home = home

    def mount_cmd(self, lowers, upper, work, mnt):
        return [os.path.join(self.home, "bin", "strata"), "mount", "-o",
                f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}", mnt]

    def available(self):
        if not os.path.isfile(os.path.join(self.home, "target", "strata.jar")):
            return "strata is not built (mvn -B -q package -DskipTests)"
        return None


# ---------------------------------------------------------------- mounts and processes

def mounted(path):
    with open("/proc/self/mounts") as f:
        for line in f:
            mp = line.split()[1].replace("\\040", " ")
            if mp == path:
                return True
    return False


def fuse_holders():
    """PIDs of processes that hold /dev/fuse open."""
    out = set()
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{p}/fd"):
                try:
                    if os.readlink(f"/proc/{p}/fd/{fd}") == "/dev/fuse":
                        out.add(int(p))
                        break
                except OSError:
                    pass
        except OSError:
            pass
    return out


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("latin-1")
    except OSError:
        return ""


def alive(pid):
    """True while pid exists and is not a zombie (our daemons are reaped by init, not by us)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return False


def proc_mb(pid, name, key):
    """The kB value of KEY in /proc/PID/NAME (status, smaps_rollup), in MB; None if it cannot be read."""
    try:
        with open(f"/proc/{pid}/{name}") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def rss_mb(pid):
    return proc_mb(pid, "status", "VmRSS")


def pss_mb(pid):
    return proc_mb(pid, "smaps_rollup", "Pss")


def cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


class Mounts:
    """Every mount this run made and every daemon it started, so that they can all be undone."""

    def __init__(self):
        self.active = {}   # mountpoint -> daemon pid (or None)
        self.finished_cpu = 0.0   # CPU seconds of the daemons already unmounted

    def daemon_cpu(self):
        """CPU seconds used by every daemon this run started (live ones read now)."""
        live = sum(cpu_seconds(p) or 0.0 for p in self.active.values() if p)
        return self.finished_cpu + live

    def mount(self, system, lowers, upper, work, mnt, marker, logf):
        if mounted(mnt):
            raise MountError(f"{mnt} is already mounted")
        before = fuse_holders() if system.daemon else set()
        cmd = system.mount_cmd(lowers, upper, work, mnt)
        self.active[mnt] = None
        with open(logf, "ab") as lf:
            lf.write(f"$ {' '.join(cmd)}\n".encode())
            lf.flush()
            t0 = now()
            # output to a file, not a pipe: a daemon that keeps the pipe open would hang us
            rc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=lf, stderr=lf).returncode
            if rc != 0:
                self._adopt(system, mnt, before)
                raise MountError(f"{' '.join(cmd[:2])} exited with status {rc}: {first_line(logf)}")
            deadline = t0 + 60
            while True:
                try:
                    os.stat(os.path.join(mnt, marker))
                    break
                except OSError:
                    if now() > deadline:
                        self._adopt(system, mnt, before)
                        raise MountError(f"{mnt}: {marker} not visible 60 s after the mount command")
                    time.sleep(0.0005)
            ready = now() - t0
        pid = self._adopt(system, mnt, before)
        if system.daemon and pid is None:
            raise MountError(f"{system.label}: could not find the daemon process for {mnt}")
        return ready, pid

    def _adopt(self, system, mnt, before):
        """Find the daemon this mount started: a new /dev/fuse holder naming our mountpoint."""
        if not system.daemon:
            return None
        for _ in range(50):
            new = [p for p in fuse_holders() - before if mnt in cmdline(p)]
            if len(new) == 1:
                self.active[mnt] = new[0]
                return new[0]
            time.sleep(0.02)
        return None

    def umount(self, mnt):
        pid = self.active.get(mnt)
        err = None
        if pid is not None:
            self.finished_cpu += cpu_seconds(pid) or 0.0
        if mounted(mnt):
            for attempt in range(20):
                p = subprocess.run(["umount", mnt], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                if p.returncode == 0 or not mounted(mnt):
                    break
                time.sleep(0.25)
            else:
                err = f"umount {mnt} kept failing ({p.stdout.decode().strip()}); detached it (umount -l)"
                subprocess.run(["umount", "-l", mnt])
        if pid is not None:
            deadline = now() + 20
            while alive(pid) and now() < deadline:
                time.sleep(0.01)
            if alive(pid):
                err = (err or "") + f" daemon {pid} still running 20 s after unmount: SIGTERM"
                os.kill(pid, signal.SIGTERM)
                deadline = now() + 5
                while alive(pid) and now() < deadline:
                    time.sleep(0.05)
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
        self.active.pop(mnt, None)
        if err:
            log(err.strip())

    def cleanup(self):
        for mnt in list(self.active):
            try:
                self.umount(mnt)
            except Exception as e:  # keep going: every mount must be tried
                log(f"cleanup of {mnt} failed: {e}")


def first_line(path):
    """The first line the mount command printed (its error), shortened."""
    try:
        with open(path, "rb") as f:
            lines = [ln.strip() for ln in f.read().decode("utf-8", "replace").splitlines() if ln.strip()]
        lines = [ln for ln in lines if not ln.startswith("$ ")]
        if not lines:
            return "(no output)"
        return lines[0] if len(lines[0]) <= 200 else lines[0][:200] + "..."
    except OSError:
        return "(no output)"


# ---------------------------------------------------------------- helpers

def pressure_total(kind):
    """Microseconds some task stalled on `kind` (cpu, io) since boot, or None without PSI."""
    try:
        with open(f"/proc/pressure/{kind}") as f:
            for line in f:
                if line.startswith("some"):
                    return int(line.split("total=")[1])
    except (OSError, IndexError, ValueError):
        pass
    return None


def busy_cpu_seconds():
    """CPU seconds all CPUs spent on anything but idle and I/O wait since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:8]]   # user nice system idle iowait irq softirq
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / CLK_TCK


def own_cpu_seconds(mounts):
    """CPU seconds of this process, its waited-for children and the daemons it started."""
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime + mounts.daemon_cpu()


def wait_quiet(max_wait):
    """Wait (up to max_wait s) until other work leaves the machine alone: until, over a 2-second
    window in which we do nothing, the CPUs were busy for less than 0.2 CPU and tasks waited for
    I/O less than 10% of the time (PSI). Returns the seconds waited."""
    os.sync()   # our own write-back is not someone else's load
    start = now()
    busy = False
    while True:
        t0, c0, io0 = now(), busy_cpu_seconds(), pressure_total("io")
        time.sleep(2)
        dt = now() - t0
        cpus = (busy_cpu_seconds() - c0) / dt
        io = (pressure_total("io") - io0) / 1e4 / dt if io0 is not None else 0.0
        if cpus < 0.2 and io < 10.0:
            if busy:
                log("  machine quiet again")
            return now() - start
        if now() - start >= max_wait:
            log("  still busy: measuring anyway (see other_cpu under \"Every run\" in the report)")
            return now() - start
        if not busy:
            log(f"  machine busy (other work used {cpus:.1f} CPUs; tasks waited for I/O {io:.0f}% of the time): "
                f"waiting up to {max_wait:.0f} s")
            busy = True


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def shell(cmd, cwd):
    """Run a bash pipeline; return (seconds, stdout)."""
    t0 = now()
    p = subprocess.run(["bash", "-c", "set -o pipefail; " + cmd], cwd=cwd,
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    t = now() - t0
    if p.returncode != 0:
        lines = p.stderr.decode("utf-8", "replace").strip().splitlines()
        more = f" (and {len(lines) - 3} more lines)" if len(lines) > 3 else ""
        raise WorkloadError(f"`{cmd}` exited {p.returncode}: {' / '.join(lines[:3])}{more}")
    return t, p.stdout.decode("utf-8", "replace")


def dd_bytes(stderr_text):
    m = re.search(r"^(\d+) bytes", stderr_text, re.M)
    return int(m.group(1)) if m else None


def dd(args, cwd):
    t0 = now()
    p = subprocess.run(["dd"] + args, cwd=cwd, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t = now() - t0
    err = p.stderr.decode("utf-8", "replace")
    if p.returncode != 0:
        raise WorkloadError(f"dd {' '.join(args)} exited {p.returncode}: {err.strip()[-300:]}")
    return t, dd_bytes(err)


def read_all(path_list):
    """Read files directly (outside any mount) so that their pages are cached."""
    for root in path_list:
        subprocess.run(["bash", "-c", "tar -cf - . | cat > /dev/null"], cwd=root, check=True,
                       stderr=subprocess.DEVNULL)


def fmt_size(mib):
    return f"{mib // 1024} GiB" if mib % 1024 == 0 else f"{mib} MiB"


# ---------------------------------------------------------------- workloads

class Workloads:
    """The table rows, in the order they run within one system's sequence."""

    def __init__(self, sz):
        big, dd_ = fmt_size(sz["big_mib"]), fmt_size(sz["dd_mib"])
        n_cu, n_rm, n_ut = sz["copyup_files"], sz["rm_files"], sz["untar_files"]
        # key, label, unit, strict check (values must equal the kernel's)
        self.rows = [
            ("mount_cold", "mount ready, caches dropped", "s", False),
            ("find_cold", "`find` + stat of every entry, cold (caches dropped, fresh mount)", "s", True),
            ("find_warm", "`find` + stat of every entry, warm (same mount, again)", "s", True),
            ("rss_find", "daemon resident memory after the finds", "MB", False),
            ("ls_warm", "`ls -lR`, warm", "s", True),
            ("du_warm", "`du -s`, warm", "s", False),
            ("tar", "`tar -cf - .` of the whole mount (lower data cached)", "s", True),
            ("rss_tar", "daemon resident memory after the tar", "MB", False),
            ("copyup_small", f"copy-up: append 1 byte to {n_cu:,} small lower files", "s", True),
            ("copyup_big", f"copy-up: open a {big} lower file for append, first write done", "s", True),
            ("untar", f"untar {n_ut:,} small files into the mount", "s", True),
            ("rm_tree", f"`rm -rf` of a lower tree of {n_rm:,} files (merged over 2 layers)", "s", True),
            ("cpu_session1", "daemon CPU time (user+sys) over the rows above", "s", False),
            ("mount_warm", "mount ready, warm caches", "s", False),
            ("write_1m", f"sequential write {dd_}, bs=1M, conv=fsync", "s", True),
            ("write_4k", f"sequential write {dd_}, bs=4k, conv=fsync", "s", True),
            ("read_1m_cold", f"sequential read {dd_}, bs=1M, caches dropped", "s", True),
            ("read_4k_cold", f"sequential read {dd_}, bs=4k, caches dropped", "s", True),
            ("read_1m_warm", f"sequential read {dd_}, bs=1M, again (warm)", "s", True),
        ]
        self.keys = [r[0] for r in self.rows]


def run_sequence(system, run_idx, ctx, mounts, only):
    """Mount `system` on a fresh upper and run every workload once. Returns (values, checks, errors)."""
    man, stack_dir, sz = ctx["manifest"], ctx["stack_dir"], ctx["manifest"]["sizes"]
    lowers = [os.path.join(stack_dir, n) for n in ("lower1", "lower2", "lower3")]
    base = os.path.join(ctx["workdir"], "runs", system.key)
    upper, work, mnt = (os.path.join(base, n) for n in ("upper", "work", "mnt"))
    logf = os.path.join(ctx["logdir"], f"{system.key}-run{run_idx + 1}.log")
    for d in (upper, work):
        if os.path.exists(d):
            shutil.rmtree(d)
    for d in (upper, work, mnt):
        os.makedirs(d, exist_ok=True)
    marker = man["ready_marker"]
    values, checks, errors = {}, {}, {}

    def want(key):
        return only is None or key in only

    def measure(key, fn):
        if not want(key):
            return
        os.sync()   # no dirty data from an earlier step is written back during this one
        try:
            t, check = fn()
            values[key] = t
            if check is not None:
                checks[key] = check
            log(f"  {system.key:15s} run {run_idx + 1}  {key:14s} {t:9.3f}" + (f"   [{check}]" if check is not None else ""))
        except (WorkloadError, OSError) as e:
            errors[key] = str(e)
            log(f"  {system.key:15s} run {run_idx + 1}  {key:14s} FAILED: {e}")

    pid = None
    p0 = {k: pressure_total(k) for k in ("cpu", "io")}
    c0, own0 = busy_cpu_seconds(), own_cpu_seconds(mounts)
    t_seq = now()
    try:
        # ---- session 1: metadata, tar, copy-up, untar, rm
        drop_caches()
        ready, pid = mounts.mount(system, lowers, upper, work, mnt, marker, logf)
        if want("mount_cold"):
            values["mount_cold"] = ready
            log(f"  {system.key:15s} run {run_idx + 1}  mount_cold     {ready:9.3f}")
        def counted(cmd):
            """Time a pipeline whose output starts with a number (a count): (seconds, number)."""
            return lambda: (lambda r: (r[0], int(r[1].split()[0])))(shell(cmd, mnt))
        find = counted("find . -printf '%i %n %s %T@\\n' | wc -l")
        measure("find_cold", find)
        measure("find_warm", find)
        if pid and want("rss_find"):
            values["rss_find"] = rss_mb(pid)
        measure("ls_warm", counted("ls -lR --color=never . | wc -l"))
        measure("du_warm", counted("du -s ."))
        if want("tar"):
            read_all(lowers)   # every system starts the tar with the lower data in the page cache
        measure("tar", counted("tar -cf - . | wc -c"))
        if pid and want("rss_tar"):
            values["rss_tar"] = rss_mb(pid)

        def copyup_small():
            paths = [os.path.join(mnt, r) for r in man["copyup_files"]]
            before = sum(os.lstat(p).st_size for p in paths)
            t0 = now()
            for p in paths:
                fd = os.open(p, os.O_WRONLY | os.O_APPEND)
                try:
                    if os.write(fd, b"x") != 1:
                        raise WorkloadError(f"short write on {p}")
                finally:
                    os.close(fd)
            t = now() - t0
            grown = sum(os.lstat(p).st_size for p in paths) - before
            return t, grown
        measure("copyup_small", copyup_small)

        def copyup_big():
            big = os.path.join(mnt, man["big_file"])
            with open(os.path.join(stack_dir, "lower3", man["big_file"]), "rb") as f:   # source cached
                while f.read(1 << 20):
                    pass
            size = os.lstat(big).st_size
            t0 = now()
            fd = os.open(big, os.O_WRONLY | os.O_APPEND)
            try:
                n = os.write(fd, b"x")
                t = now() - t0
            finally:
                os.close(fd)
            if n != 1:
                raise WorkloadError("short write")
            return t, os.lstat(big).st_size - size
        measure("copyup_big", copyup_big)

        def untar():
            t, _ = shell(f"tar -xf {os.path.join(stack_dir, man['untar_tar'])}", mnt)
            _, out = shell(f"find {man['untar_top']} -type f | wc -l", mnt)
            return t, int(out)
        measure("untar", untar)

        def rm_tree():
            t, _ = shell(f"rm -rf {man['rm_tree']}", mnt)
            if os.path.lexists(os.path.join(mnt, man["rm_tree"])):
                raise WorkloadError(f"{man['rm_tree']} still exists after rm -rf")
            return t, "gone"
        measure("rm_tree", rm_tree)
        if pid and want("cpu_session1"):
            values["cpu_session1"] = cpu_seconds(pid)
        mounts.umount(mnt)
        pid = None

        # ---- session 2: sequential I/O on a fresh mount (the upper keeps session 1's changes)
        if not any(want(k) for k in ("mount_warm", "write_1m", "write_4k", "read_1m_cold",
                                     "read_4k_cold", "read_1m_warm")):
            return values, checks, errors
        os.sync()
        ready, pid = mounts.mount(system, lowers, upper, work, mnt, marker, logf)
        if want("mount_warm"):
            values["mount_warm"] = ready
            log(f"  {system.key:15s} run {run_idx + 1}  mount_warm     {ready:9.3f}")
        n1m = sz["dd_mib"]
        measure("write_1m", lambda: dd(["if=/dev/zero", "of=dd-1m.bin", "bs=1M", f"count={n1m}", "conv=fsync"], mnt))
        measure("write_4k", lambda: dd(["if=/dev/zero", "of=dd-4k.bin", "bs=4k", f"count={n1m * 256}", "conv=fsync"], mnt))
        if os.path.exists(os.path.join(mnt, "dd-4k.bin")):
            os.unlink(os.path.join(mnt, "dd-4k.bin"))
        have_file = os.path.exists(os.path.join(mnt, "dd-1m.bin"))
        if not have_file and want("read_1m_cold"):
            # the write row was filtered out or failed: make the file to read, untimed
            dd(["if=/dev/zero", "of=dd-1m.bin", "bs=1M", f"count={n1m}", "conv=fsync"], mnt)

        def cold_read(bs):
            drop_caches()
            return dd(["if=dd-1m.bin", "of=/dev/null", f"bs={bs}"], mnt)
        measure("read_1m_cold", lambda: cold_read("1M"))
        measure("read_4k_cold", lambda: cold_read("4k"))
        measure("read_1m_warm", lambda: dd(["if=dd-1m.bin", "of=/dev/null", "bs=1M"], mnt))
    except MountError as e:
        errors["mount"] = str(e)
        log(f"  {system.key:15s} run {run_idx + 1}  MOUNT FAILED: {e}")
    finally:
        mounts.umount(mnt)
        wall = now() - t_seq
        values["other_cpu"] = max(0.0, (busy_cpu_seconds() - c0) - (own_cpu_seconds(mounts) - own0)) / wall
        elapsed = wall * 1e6
        for k in ("cpu", "io"):
            p1 = pressure_total(k)
            if p0[k] is not None and p1 is not None and elapsed > 0:
                values[f"stall_{k}"] = 100.0 * (p1 - p0[k]) / elapsed
        for d in (upper, work):
            shutil.rmtree(d, ignore_errors=True)
    return values, checks, errors


def probe(system, ctx, mounts):
    """Mount a tiny stack once; None if it works, else the reason (first line of the error)."""
    why = system.available()
    if why:
        return why
    base = os.path.join(ctx["workdir"], "probe", system.key)
    shutil.rmtree(base, ignore_errors=True)
    dirs = {n: os.path.join(base, n) for n in ("l1", "l2", "upper", "work", "mnt")}
    for d in dirs.values():
        os.makedirs(d)
    with open(os.path.join(dirs["l2"], "probe"), "w") as f:
        f.write("probe\n")
    logf = os.path.join(ctx["logdir"], f"{system.key}-probe.log")
    try:
        mounts.mount(system, [dirs["l1"], dirs["l2"]], dirs["upper"], dirs["work"], dirs["mnt"], "probe", logf)
        with open(os.path.join(dirs["mnt"], "probe")) as f:
            if f.read() != "probe\n":
                return "a probe mount shows the wrong file content"
        return None
    except MountError as e:
        return str(e)
    finally:
        mounts.umount(dirs["mnt"])
        shutil.rmtree(base, ignore_errors=True)


# ---------------------------------------------------------------- report

def damon_pageout():
    """If DAMON pages out memory that goes unused (as in some VMs), after how many seconds; else None."""
    base = "/sys/kernel/mm/damon/admin/kdamonds"

    def rd(path):
        with open(path) as f:
            return f.read().strip()
    try:
        for kd in os.listdir(base):
            if not kd.isdigit() or rd(f"{base}/{kd}/state") != "on":
                continue
            for ctx in os.listdir(f"{base}/{kd}/contexts"):
                if not ctx.isdigit():
                    continue
                c = f"{base}/{kd}/contexts/{ctx}"
                aggr_us = int(rd(f"{c}/monitoring_attrs/intervals/aggr_us"))
                for sc in os.listdir(f"{c}/schemes"):
                    if sc.isdigit() and rd(f"{c}/schemes/{sc}/action") == "pageout":
                        return int(rd(f"{c}/schemes/{sc}/access_pattern/age/min")) * aggr_us / 1e6
    except (OSError, ValueError):
        pass
    return None


def machine_info(workdir, strata_home):
    def cmd(args):
        try:
            p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
            return p.stdout.decode("utf-8", "replace").strip()
        except (OSError, subprocess.TimeoutExpired):
            return "unknown"
    mem = "unknown"
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    java = os.environ.get("STRATA_JAVA") or (os.path.join(os.environ["JAVA_HOME"], "bin", "java")
                                            if os.environ.get("JAVA_HOME") else "java")
    jdk = cmd([java, "-version"]).splitlines()
    params = {}
    pdir = "/sys/module/overlay/parameters"
    for p in ("redirect_dir", "index", "metacopy", "xino_auto"):
        try:
            with open(os.path.join(pdir, p)) as f:
                params[p] = f.read().strip()
        except OSError:
            pass
    fo = cmd(["fuse-overlayfs", "--version"]).splitlines()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram": mem,
        "kernel": platform.release(),
        "os": cmd(["bash", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "workdir_fs": cmd(["findmnt", "-n", "-o", "FSTYPE,SOURCE,OPTIONS", "-T", workdir]),
        "jdk": jdk[1] if len(jdk) > 1 else (jdk[0] if jdk else "unknown"),
        "fuse_overlayfs": ", ".join(ln for ln in fo if "version" in ln) or "not installed",
        "overlay_params": params,
        "strata_commit": cmd(["git", "-C", strata_home, "log", "-1", "--format=%h %s"]),
        "damon_pageout_s": damon_pageout(),
        "virtual": " hypervisor" in open("/proc/cpuinfo").read(),
    }


def fmt_val(v, unit):
    if v is None:
        return "–"
    if unit == "MB":
        return f"{v:.1f} MB"
    if unit == "%":
        return f"{v:.0f}%"
    if unit == "CPUs":
        return f"{v:.2f}"
    if v >= 100:
        return f"{v:.1f}"
    if v >= 10:
        return f"{v:.2f}"
    return f"{v:.3f}"


def fmt_ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.2f}"


def report(ctx, systems, results, wl, info, started, finished, wall):
    """results[system][run] = (values, checks, errors). Returns markdown."""
    keys = wl.keys
    skipped = {s.key: s.skip_reason for s in systems if s.skip_reason}
    measured = [s for s in systems if not s.skip_reason]
    med = {}
    for s in measured:
        for k in keys:
            vals = [r[0][k] for r in results[s.key] if k in r[0] and r[0][k] is not None]
            med[(s.key, k)] = statistics.median(vals) if vals else None
    # checks: values a workload produced (entry counts, bytes); strict ones must equal the kernel's
    oracle_key = "kernel" if "kernel" in results else (measured[0].key if measured else None)
    notes, flagged = [], set()
    for row in wl.rows:
        k, strict = row[0], row[3]
        per = {}
        for s in measured:
            seen = sorted({str(r[1][k]) for r in results[s.key] if k in r[1]})
            if seen:
                per[s.key] = seen
        if oracle_key in per:
            ref = per[oracle_key]
            for sk, seen in per.items():
                if len(seen) > 1 and strict:
                    notes.append(f"{sk}, {k}: the check value differed between runs: {', '.join(seen)}")
                    flagged.add((sk, k))
                elif strict and seen != ref:
                    notes.append(f"{sk}, {k}: check value {seen[0]} differs from {oracle_key}'s {ref[0]}")
                    flagged.add((sk, k))
    errs = []
    for s in measured:
        for i, r in enumerate(results[s.key]):
            for k, e in r[2].items():
                errs.append(f"{s.label}, run {i + 1}, {k}: {e}")
                flagged.add((s.key, k))

    col = {s.key: s for s in systems}
    names = [s.key for s in systems]
    all_runs = [r for s in measured for r in results[s.key]]
    busy = [r for r in all_runs if (r[0].get("other_cpu") or 0) > 0.25]
    out = []
    date = started.strftime("%Y-%m-%d")
    sz = ctx["manifest"]["sizes"]
    man = ctx["manifest"]
    out.append(f"# strata against the kernel overlay and fuse-overlayfs — {date}")
    out.append("")
    out.append(f"Generated by `scripts/bench.sh compare{' --quick' if sz['name'] == 'quick' else ''}"
               f" --runs {ctx['runs']}` ({started.strftime('%Y-%m-%d %H:%M')} to "
               f"{finished.strftime('%H:%M')}, wall time {wall / 60:.1f} min). Method: bench/README.md.")
    out.append("")
    out.append("**Method.** One layer stack for every system: three lower layers "
               f"(lower3 {man['layer_entries']['lower3']:,} entries copied from {', '.join(man['sources'])}, "
               f"a {fmt_size(sz['big_mib'])} random file and half of a {sz['rm_files']:,}-file tree; "
               f"lower2 {man['layer_entries']['lower2']:,} entries: modified files, char 0/0 whiteouts of files "
               f"and directories, an opaque directory, new files, the other half of the tree; lower1 "
               f"{man['layer_entries']['lower1']:,} entries on top). Each run of a system mounts that stack on a "
               "fresh, empty upper and workdir (on the same filesystem) and runs every row in table order; "
               "systems are interleaved (kernel, fuse-overlayfs, strata, kernel, ...), and the table shows the "
               f"median of {ctx['runs']} run(s). `sync` runs (untimed) before every row so no row pays for an "
               "earlier one's write-back. \"Cold\" means `echo 3 > /proc/sys/vm/drop_caches` and a fresh mount "
               "just before; the tar and copy-up rows start with the lower layers' data in the page cache "
               "(read directly from the layer directories, untimed), the same for every system. Mount ready is "
               "the time from starting the mount command until a file of the top layer can be stat'ed through "
               "the mountpoint. Resident memory is the daemon's VmRSS (the kernel overlay has no daemon). "
               f"All processes of the benchmark, the daemons included, run at niceness {ctx['nice']} (against "
               "other work on the machine). Times are wall-clock seconds (lower is better); ratios are of the "
               "medians.")
    out.append("")
    out.append("**Machine.** " + "; ".join([
        f"{info['nproc']} CPUs ({info['cpu']})", f"RAM {info['ram']}", f"kernel {info['kernel']}",
        info["os"], f"work dir {ctx['workdir']} on {info['workdir_fs']}", f"JDK: {info['jdk']}",
        f"fuse-overlayfs: {info['fuse_overlayfs']}",
        "kernel overlay parameters: " + (", ".join(f"{k}={v}" for k, v in info["overlay_params"].items()) or "unknown"),
        f"strata commit {info['strata_commit']}",
        *([f"DAMON pages out memory left untouched for about {info['damon_pageout_s']:.0f} s (page cache "
           "included), so \"warm\" means touched within that time"] if info.get("damon_pageout_s") else []),
        f"load average at start {ctx['load_start']}, at end {ctx['load_end']}"]) + ".")
    out.append("")
    mount_opts = {"kernel": "`mount -t overlay overlay -o lowerdir=L1:L2:L3,upperdir=U,workdir=W MNT`",
                  "fuse-overlayfs": "`fuse-overlayfs -o lowerdir=L1:L2:L3,upperdir=U,workdir=W MNT` (default options)",
                  "strata": "`bin/strata mount -o lowerdir=L1:L2:L3,upperdir=U,workdir=W MNT` (default options)"}
    out.append("**Mount commands.** " + "; ".join(f"{col[n].label}: {mount_opts[n]}" for n in names) + ".")
    out.append("")
    for n in names:
        if skipped.get(n):
            out.append(f"**{col[n].label} not measured:** {skipped[n]}")
            out.append("")
    if busy:
        out.append(f"**Noise:** in {len(busy)} of {len(all_runs)} runs other work on the machine used more than "
                   f"a quarter of a CPU on average (of {os.cpu_count()}; see other_cpu under \"Every run\"); "
                   "the spread of those runs is wider than the file systems alone would give.")
        out.append("")

    hdr = ["Workload"] + [col[n].label for n in names] + ["strata/kernel", "strata/fuse-overlayfs",
                                                          "fuse-overlayfs/kernel"]
    out.append("| " + " | ".join(hdr) + " |")
    out.append("|" + "---|" + "---:|" * (len(hdr) - 1))
    for key, label, unit, _ in wl.rows:
        if all(med.get((n, key)) is None for n in names) and not any(k == key for _, k in flagged):
            continue   # not run (--only)
        cells = [label + (" (MB)" if unit == "MB" else "")]
        for n in names:
            if skipped.get(n):
                cells.append("not measured")
                continue
            v = med.get((n, key))
            if n == "kernel" and unit == "MB":
                cells.append("no daemon")
                continue
            if key == "cpu_session1" and n == "kernel":
                cells.append("no daemon")
                continue
            c = fmt_val(v, unit)
            if (n, key) in flagged:
                c += " ⚠"
            cells.append(c)
        st, ke, fo = med.get(("strata", key)), med.get(("kernel", key)), med.get(("fuse-overlayfs", key))
        kernel_ok = unit != "MB" and key != "cpu_session1"
        cells.append(fmt_ratio(st, ke) if kernel_ok else "–")
        cells.append(fmt_ratio(st, fo))
        cells.append(fmt_ratio(fo, ke) if kernel_ok else "–")
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    out.append("Ratios below 1.0 mean strata is faster (or smaller). ⚠ marks a cell with a failure or a "
               "check that did not match; see the notes.")
    out.append("")
    if info.get("virtual"):
        out.append("This machine is a virtual machine. A FUSE request is a round trip between the process and "
                   "the daemon; when the vCPUs are idle, every wake-up costs the hypervisor's latency, so the "
                   "FUSE rows that make many small requests (`ls -lR`, tar, untar, rm) depend on how busy the "
                   "machine is (bench/README.md, \"Reading the table\").")
        out.append("")
    # check values
    out.append("## Checks")
    out.append("")
    out.append("Values each workload produced (entry and line counts, bytes of tar output, bytes grown by the "
               "copy-up rows, files after untar, bytes moved by dd); the strict ones must equal the kernel "
               "overlay's.")
    out.append("")
    out.append("| Workload | " + " | ".join(col[n].label for n in names if not skipped.get(n)) + " |")
    out.append("|---|" + "---:|" * len([n for n in names if not skipped.get(n)]))
    for key, label, unit, strict in wl.rows:
        row = []
        anyv = False
        for n in names:
            if skipped.get(n):
                continue
            seen = sorted({str(r[1][key]) for r in results[n] if key in r[1]})
            anyv |= bool(seen)
            row.append(" / ".join(seen) if seen else "–")
        if anyv:
            out.append(f"| {key}{'' if strict else ' (informative)'} | " + " | ".join(row) + " |")
    out.append("")
    if notes or errs:
        out.append("## Notes")
        out.append("")
        for n in notes + errs:
            out.append(f"- {n}")
        out.append("")
    # raw runs
    out.append("## Every run")
    out.append("")
    out.append("Each cell lists the runs in order. other_cpu is how many CPUs work other than the benchmark "
               "(its own processes, the commands it runs and the daemons it starts) kept busy on average during "
               "the run, from /proc/stat; kernel threads writing back the benchmark's data count as other work, "
               "so it is rarely exactly 0. stall_cpu and stall_io are the share of the run's wall time in which "
               "some task on the machine, the benchmark's own included, waited for a CPU or for I/O (Linux PSI).")
    out.append("")
    stall_rows = [("other_cpu", "", "CPUs", False), ("stall_cpu", "", "%", False), ("stall_io", "", "%", False)]
    for key, label, unit, _ in wl.rows + stall_rows:
        row = []
        for n in names:
            if skipped.get(n):
                continue
            vals = [r[0].get(key) for r in results[n]]
            row.append(" ".join(fmt_val(v, unit) if v is not None else "–" for v in vals))
        out.append(f"| {key} | " + " | ".join(row) + " |")
    out.append("")
    return "\n".join(out)


# ---------------------------------------------------------------- main

def parse_args(argv):
    ap = argparse.ArgumentParser(prog="scripts/bench.sh compare",
                                 description="strata against the kernel overlay and fuse-overlayfs")
    ap.add_argument("--runs", type=int, help="runs per system (default 5; 1 with --quick)")
    ap.add_argument("--quick", action="store_true", help="a small stack and 1 run: checks the script works")
    ap.add_argument("--systems", default="kernel,fuse-overlayfs,strata",
                    help="comma-separated subset of kernel,fuse-overlayfs,strata")
    ap.add_argument("--only", help="comma-separated workload keys to run (default all)")
    ap.add_argument("--workdir", default=DEFAULT_WORKDIR, help=f"stack and scratch directory (default {DEFAULT_WORKDIR})")
    ap.add_argument("--out", help="markdown result file (default bench/results/compare-DATE.md; "
                                  "bench/results/tmp/compare-DATE-quick.md with --quick)")
    ap.add_argument("--strata-home", default=REPO, help=argparse.SUPPRESS)
    ap.add_argument("--strata-skip", help=argparse.SUPPRESS)   # set by scripts/bench.sh when the build failed
    ap.add_argument("--max-wait", type=float, default=120,
                    help="seconds in all that runs may wait for other load to pass before they start (default 120; 0: never)")
    ap.add_argument("--nice", type=int, default=-10,
                    help="niceness increment for the benchmark and the daemons it starts (default -10)")
    ap.add_argument("--no-unshare", action="store_true", help="do not enter a private mount namespace")
    a = ap.parse_args(argv)
    if a.runs is None:
        a.runs = 1 if a.quick else 5
    if a.runs < 1:
        ap.error("--runs must be at least 1")
    return a


def main(argv):
    a = parse_args(argv)
    if os.geteuid() != 0:
        print("bench: compare needs root (mount, drop_caches)", file=sys.stderr)
        return 2
    if not a.no_unshare and os.environ.get("STRATA_BENCH_NS") != "1":
        env = dict(os.environ, STRATA_BENCH_NS="1")
        os.execvpe("unshare", ["unshare", "-m", "--propagation", "private", sys.executable,
                               os.path.abspath(__file__)] + argv, env)
    if a.nice:
        # every process of the benchmark, the daemons included (they inherit it), gets the same
        # priority, above the builds and tests that may share the machine
        os.nice(a.nice)
    wanted = [s.strip() for s in a.systems.split(",") if s.strip()]
    all_sys = {"kernel": Kernel(), "fuse-overlayfs": FuseOverlayfs(), "strata": Strata(a.strata_home)}
    bad = [w for w in wanted if w not in all_sys]
    if bad:
        print(f"bench: unknown system {bad[0]} (choose from {', '.join(all_sys)})", file=sys.stderr)
        return 2
    systems = [all_sys[k] for k in all_sys if k in wanted]
    sizes = stack.QUICK if a.quick else stack.FULL
    wl = Workloads(vars(sizes))
    only = None
    if a.only:
        only = set(x.strip() for x in a.only.split(",") if x.strip())
        unknown = only - set(wl.keys)
        if unknown:
            print(f"bench: unknown workload {sorted(unknown)[0]} (choose from {', '.join(wl.keys)})", file=sys.stderr)
            return 2

    # SIGTERM/SIGHUP unwind like Ctrl-C, so the finally below unmounts everything
    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    started = datetime.datetime.now()
    t_start = now()
    os.makedirs(a.workdir, exist_ok=True)
    # one run at a time per work directory: two would share scratch space and disturb each other's times
    lock = open(os.path.join(a.workdir, "lock"), "a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        print(f"bench: another comparison is running in {a.workdir} ({holder}); wait for it to finish",
              file=sys.stderr)
        return 1
    lock.seek(0)
    lock.truncate()
    lock.write(f"pid {os.getpid()}, started {started.strftime('%H:%M:%S')}\n")
    lock.flush()
    logdir = os.path.join(a.workdir, "logs", started.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(logdir, exist_ok=True)
    mounts = Mounts()
    try:
        stack_dir, manifest = stack.build(a.workdir, sizes)
        wl = Workloads(manifest["sizes"])
        ctx = {"workdir": a.workdir, "stack_dir": stack_dir, "manifest": manifest, "logdir": logdir,
               "runs": a.runs, "nice": os.nice(0), "load_start": open("/proc/loadavg").read().split()[:3]}
        ctx["load_start"] = " ".join(ctx["load_start"])
        for s in systems:
            if s.key == "strata" and a.strata_skip:
                s.skip_reason = a.strata_skip
            else:
                s.skip_reason = probe(s, ctx, mounts)
            if s.skip_reason:
                log(f"skipping {s.label}: {s.skip_reason}")
        if all(s.skip_reason for s in systems):
            log("no system can be measured")
            return 1
        results = {s.key: [] for s in systems if not s.skip_reason}
        wait_left = a.max_wait
        for run in range(a.runs):
            for s in systems:
                if s.skip_reason:
                    continue
                log(f"run {run + 1}/{a.runs}: {s.label}")
                if wait_left > 0:
                    wait_left -= wait_quiet(wait_left)
                results[s.key].append(run_sequence(s, run, ctx, mounts, only))
        ctx["load_end"] = " ".join(open("/proc/loadavg").read().split()[:3])
        finished = datetime.datetime.now()
        wall = now() - t_start
        info = machine_info(a.workdir, a.strata_home)
        md = report(ctx, systems, results, wl, info, started, finished, wall)
        out = a.out or os.path.join(a.strata_home, "bench", "results",
                                    ("tmp/" if a.quick else "") +
                                    f"compare-{started.strftime('%Y-%m-%d')}{'-quick' if a.quick else ''}.md")
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w") as f:
            f.write(md)
        with open(os.path.splitext(out)[0] + ".json", "w") as f:
            json.dump({"machine": info, "runs": a.runs, "size": sizes.name, "started": started.isoformat(),
                       "wall_seconds": wall,
                       "skipped": {s.key: s.skip_reason for s in systems if s.skip_reason},
                       "results": {k: [{"values": v, "checks": c, "errors": e} for v, c, e in runs]
                                   for k, runs in results.items()}}, f, indent=1, default=str)
        print(md)
        log(f"wrote {out} (wall time {wall / 60:.1f} min; logs in {logdir})")
        return 0
    except KeyboardInterrupt as e:
        log(f"interrupted ({e or 'Ctrl-C'}): unmounting")
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        mounts.cleanup()
        for d in ("runs", "probe"):
            shutil.rmtree(os.path.join(a.workdir, d), ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
