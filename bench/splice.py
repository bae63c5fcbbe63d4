#!/usr/bin/env python3
"""READ replies by splice against pread + write (issue 14): strata -o passthrough=0 with a process of
its own (STRATA_DAEMON=0), the same checkout twice, one with -Dstrata.splice=false, interleaved rounds;
the daemon's CPU (/proc/PID/stat utime + stime) and the wall time.

  python3 bench/splice.py [--home CHECKOUT] [--rounds N] [--mib N] [--sizes 4,16,64,...] [--dd-mib N]

crossover: reads (`dd bs=S`) of a lower file with two names whose pages are cached: strata opens a file
with several names for direct I/O (FOPEN_DIRECT_IO), so each READ the kernel sends is S bytes (O_DIRECT
reads would not do: strata reads those through the file opened with O_DIRECT, never by splice); per S the daemon's CPU per MiB and per READ, with splice (-Dstrata.spliceMin=0:
every read spliced) and without. dd: `dd bs=1M` of a lower file of --dd-mib MiB through a fresh mount,
the lower file's pages dropped first (cold: posix_fadvise DONTNEED) or cached (warm), with the default
threshold against -Dstrata.splice=false. Root only; runs in a private mount namespace; its files are
under a temp dir in /var/tmp that is removed.
"""
import argparse, os, shutil, subprocess, sys, tempfile, time

HOME = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def mounted(m):
    return any(l.split()[1] == m for l in open("/proc/mounts"))


class Mount:
    def __init__(self, home, work, opts):
        self.mnt = f"{work}/mnt"
        for d in ("upper", "wd"):
            shutil.rmtree(f"{work}/{d}", ignore_errors=True)
            os.makedirs(f"{work}/{d}")
        env = dict(os.environ, STRATA_DAEMON="0", STRATA_JAVA_OPTS=opts)
        o = f"lowerdir={work}/lower,upperdir={work}/upper,workdir={work}/wd,passthrough=0"
        self.p = subprocess.Popen([f"{home}/bin/strata", "mount", "-f", "-o", o, self.mnt], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(400):
            if mounted(self.mnt):
                return
            if self.p.poll() is not None:
                sys.exit("splice.py: strata did not mount")
            time.sleep(0.05)
        sys.exit("splice.py: strata did not mount in 20 s")

    def run(self, cmd):
        c0, t0 = cpu(self.p.pid), time.monotonic()
        subprocess.run(["sh", "-c", cmd], check=True, stdout=subprocess.DEVNULL)
        return cpu(self.p.pid) - c0, time.monotonic() - t0

    def close(self):
        subprocess.run(["umount", self.mnt])
        self.p.wait(timeout=30)


def drop(path):
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)


def warm(path):
    subprocess.run(["cat", path], stdout=subprocess.DEVNULL, check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", default=HOME)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--mib", type=int, default=256, help="MiB read per size in the crossover")
    ap.add_argument("--sizes", default="4,8,16,32,64,128,256,1024", help="KiB")
    ap.add_argument("--dd-mib", type=int, default=512)
    ap.add_argument("--only", default="crossover,dd")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("splice.py: needs root (it mounts)")
    if not os.environ.get("SPLICE_NS"):
        os.environ["SPLICE_NS"] = "1"
        os.execvp("unshare", ["unshare", "-m", "--propagation", "private", sys.executable] + sys.argv)
    work = tempfile.mkdtemp(prefix="splice-bench.", dir="/var/tmp")
    os.makedirs(f"{work}/mnt")
    os.makedirs(f"{work}/lower")
    size = max(args.mib, args.dd_mib)
    subprocess.run(["dd", "if=/dev/urandom", f"of={work}/lower/big", "bs=1M", f"count={size}", "status=none"], check=True)
    # the crossover's file: a copy with a second name (direct I/O without O_DIRECT, see above)
    shutil.copyfile(f"{work}/lower/big", f"{work}/lower/multi")
    os.link(f"{work}/lower/multi", f"{work}/lower/multi2")
    med = lambda xs: sorted(xs)[len(xs) // 2]
    only = args.only.split(",")
    systems = {"splice": "-Dstrata.spliceMin=0", "write": "-Dstrata.splice=false"}
    try:
        if "crossover" in only:
            res = {}
            warm(f"{work}/lower/multi")
            for r in range(args.rounds):
                for j, name in enumerate(sorted(systems, reverse=r % 2 == 1)):
                    m = Mount(args.home, work, systems[name])
                    try:
                        m.run(f"dd if={m.mnt}/multi of=/dev/null bs=1M count=16 status=none")  # warm-up
                        for kib in map(int, args.sizes.split(",")):
                            count = args.mib * 1024 // kib
                            c, w = m.run(f"dd if={m.mnt}/multi of=/dev/null bs={kib}K count={count} status=none")
                            res.setdefault((kib, name), []).append((c, w))
                    finally:
                        m.close()
            print(f"crossover: reads of a file with two names (direct I/O), {args.mib} MiB per size, {args.rounds} rounds, medians")
            print("| READ size | daemon CPU s, splice | pread+write | CPU us per READ, splice | pread+write | wall s, splice | pread+write |")
            print("|---:|---:|---:|---:|---:|---:|---:|")
            for kib in map(int, args.sizes.split(",")):
                n = args.mib * 1024 // kib
                s, p = res[(kib, "splice")], res[(kib, "write")]
                cs, cp = med([x[0] for x in s]), med([x[0] for x in p])
                print(f"| {kib} KiB | {cs:.2f} | {cp:.2f} | {cs / n * 1e6:.1f} | {cp / n * 1e6:.1f} | "
                      f"{med([x[1] for x in s]):.3f} | {med([x[1] for x in p]):.3f} |")
        if "dd" in only:
            systems = {"splice": "", "write": "-Dstrata.splice=false"}
            res = {}
            for r in range(args.rounds):
                for cache in ("cold", "warm"):
                    for name in sorted(systems, reverse=r % 2 == 1):
                        m = Mount(args.home, work, systems[name])
                        try:
                            (drop if cache == "cold" else warm)(f"{work}/lower/big")
                            c, w = m.run(f"dd if={m.mnt}/big of=/dev/null bs=1M count={args.dd_mib} status=none")
                            res.setdefault((cache, name), []).append((c, w))
                        finally:
                            m.close()
            print(f"\ndd bs=1M of a {args.dd_mib} MiB lower file through a fresh mount, {args.rounds} rounds, medians")
            print("| lower file's pages | daemon CPU s, splice | pread+write | wall s, splice | pread+write |")
            print("|---|---:|---:|---:|---:|")
            for cache in ("cold", "warm"):
                s, p = res[(cache, "splice")], res[(cache, "write")]
                print(f"| {cache} | {med([x[0] for x in s]):.2f} | {med([x[0] for x in p]):.2f} | "
                      f"{med([x[1] for x in s]):.3f} | {med([x[1] for x in p]):.3f} |")
            for (cache, name), rows in sorted(res.items()):
                print(f"  {cache} {name}: cpu " + " ".join(f"{x[0]:.2f}" for x in rows)
                      + "  wall " + " ".join(f"{x[1]:.3f}" for x in rows))
    finally:
        if mounted(f"{work}/mnt"):
            subprocess.run(["umount", "-l", f"{work}/mnt"])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
