#!/usr/bin/env bash
# Open, read and close N small upper files through a strata mount, R runs; prints the median seconds
# per pass. What it is for: the cost a FUSE passthrough open pays for its backing file (since the
# access-time work, the file reopened below a copy of the layer's mount: BackingMounts). Root only.
#
#   bash bench/open-upper.sh [--files N] [--runs R] [--home DIR] [-o OPTS]
#       --home: the strata checkout whose bin/strata mounts (default: this one); run it once with an
#       older build's home (e.g. git worktree / git archive of another commit, built) to compare.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
files=2000 runs=5 home=$here opts=""
while [ $# -gt 0 ]; do
  case "$1" in
    --files) files=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --home) home=$2; shift 2 ;;
    -o) opts=,$2; shift 2 ;;
    *) echo "open-upper: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "open-upper: needs root (a tmpfs and a FUSE mount)" >&2; exit 1; }
exec unshare -m --propagation private bash -s "$home" "$files" "$runs" "$opts" <<'INNER'
set -euo pipefail
home=$1 files=$2 runs=$3 opts=$4
d=$(mktemp -d /tmp/strata-open-upper.XXXXXX)
mount -t tmpfs -o mode=0700 tmpfs "$d"
trap 'umount "$d/m" 2>/dev/null; umount "$d"; rmdir "$d"' EXIT
mkdir -p "$d/l" "$d/u/f" "$d/w" "$d/m"
python3 -c 'import sys; [open(f"{sys.argv[1]}/f{i}", "w").write("x" * 100) for i in range(int(sys.argv[2]))]' "$d/u/f" "$files"
"$home/bin/strata" mount -o "lowerdir=$d/l,upperdir=$d/u,workdir=$d/w$opts" "$d/m"
python3 - "$d/m/f" "$files" "$runs" <<'PY'
import os, sys, time, statistics
root, n, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
names = [f"{root}/f{i}" for i in range(n)]
for p in names: os.stat(p)               # lookups out of the way
times = []
for r in range(runs + 1):
    t = time.perf_counter()
    for p in names:
        fd = os.open(p, os.O_RDONLY); os.read(fd, 4096); os.close(fd)
    if r: times.append(time.perf_counter() - t)   # the first pass warms up
print(f"open+read+close of {n} upper files: median {statistics.median(times):.3f} s "
      f"({statistics.median(times) / n * 1e6:.1f} us each), runs {', '.join(f'{x:.3f}' for x in times)}")
PY
INNER
