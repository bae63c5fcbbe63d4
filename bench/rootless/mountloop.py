"""Inside `podman unshare` (bench/rootless/starttrace.py --mount-loop N): N rounds, interleaved, of each
strata launcher given mounting the first 5 image layers of the store in the working directory with an
upper, then one stat through the mount, then umount. Prints per round: launcher, microseconds until the
mount command returned, microseconds of the first stat (which waits for INIT if that is not answered
yet). The first 3 rounds (a daemon starting) are not printed."""
import glob, os, shutil, subprocess, sys, time, hashlib, statistics
n = int(sys.argv[1]); launchers = sys.argv[2:]
base = os.getcwd()
lowers = ":".join(sorted(glob.glob(base + "/root/overlay/*/diff"))[:5])
res = {l: ([], []) for l in launchers}
for i in range(n):
    for l in launchers:
        d = base + "/ml/" + hashlib.md5(l.encode()).hexdigest()[:8]
        shutil.rmtree(d, ignore_errors=True)
        for s in ("u", "w", "m"): os.makedirs(f"{d}/{s}")
        t0 = time.perf_counter()
        subprocess.run([l, "-o", f"lowerdir={lowers},upperdir={d}/u,workdir={d}/w", d + "/m"], check=True)
        t1 = time.perf_counter()
        os.stat(d + "/m/bin/busybox")
        t2 = time.perf_counter()
        subprocess.run(["umount", d + "/m"], check=True)
        if i >= 3:
            print(l, int((t1 - t0) * 1e6), int((t2 - t1) * 1e6), flush=True)
