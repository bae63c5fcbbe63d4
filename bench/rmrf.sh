#!/usr/bin/env bash
# rm -rf of a lower tree through a strata mount: wall time and the mount process's CPU time (user +
# system, from /proc/PID/stat), median of R runs, each on a fresh upper over the same two lower layers.
# Each mount first removes a tree of the same shape untimed (the JVM's compiler warms up on it).
# With several --home checkouts the runs are interleaved (A B A B ...), so a busy machine weighs on
# each alike. Root only (a tmpfs and FUSE mounts); each mount has a process of its own (STRATA_DAEMON=0)
# so its CPU time is the mount's alone.
#
#   bash bench/rmrf.sh [--files N] [--runs R] [--home DIR]... [-o OPTS]
#       --home: a strata checkout whose bin/strata mounts (default: this one); give two to compare
#       builds (e.g. one made with git archive of an older commit, built with scripts/setup.sh).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
files=10000 runs=5 opts="" homes=()
while [ $# -gt 0 ]; do
  case "$1" in
    --files) files=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --home) homes+=("$(cd "$2" && pwd)"); shift 2 ;;
    -o) opts=,$2; shift 2 ;;
    *) echo "rmrf: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ ${#homes[@]} -gt 0 ] || homes=("$here")
[ "$(id -u)" = 0 ] || { echo "rmrf: needs root (a tmpfs and FUSE mounts)" >&2; exit 1; }
exec unshare -m --propagation private bash -s "$files" "$runs" "$opts" "${homes[@]}" <<'INNER'
set -euo pipefail
files=$1 runs=$2 opts=$3; shift 3
d=$(mktemp -d /tmp/strata-rmrf.XXXXXX)
mount -t tmpfs -o mode=0700 tmpfs "$d"
trap 'umount "$d/m" 2>/dev/null || true; umount "$d"; rmdir "$d"' EXIT
mkdir -p "$d/l1" "$d/l2" "$d/m"
# two layers that merge: the same directories in both, the files split between them
python3 - "$d" "$files" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(2 * n):
    sub = f"{'t' if i < n else 'w'}/d{i % 50}/e{(i // 50) % 10}"
    layer = "l1" if i % 2 else "l2"
    os.makedirs(f"{root}/{layer}/{sub}", exist_ok=True)
    with open(f"{root}/{layer}/{sub}/f{i}", "w") as f: f.write("x" * 64)
PY
export STRATA_DAEMON=0
declare -A wall cpu
for r in $(seq 1 "$runs"); do
  for h in "$@"; do
    rm -rf "$d/u" "$d/w"; mkdir -p "$d/u" "$d/w"
    "$h/bin/strata" mount -o "lowerdir=$d/l1:$d/l2,upperdir=$d/u,workdir=$d/w$opts" "$d/m"
    pid=$(pgrep -f -- "upperdir=$d/u," | head -1)
    [ -n "$pid" ] || { echo "rmrf: no mount process found for $d/m" >&2; exit 1; }
    rm -rf "$d/m/w"
    t0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
    s=$(date +%s.%N)
    rm -rf "$d/m/t"
    e=$(date +%s.%N)
    t1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
    [ -z "$(ls -A "$d/m")" ] || { echo "rmrf: $d/m not empty after rm -rf" >&2; exit 1; }
    umount "$d/m"
    tick=$(getconf CLK_TCK)
    wall[$h]+="$(echo "$e - $s" | bc) "
    cpu[$h]+="$(echo "scale=3; ($t1 - $t0) / $tick" | bc) "
  done
done
for h in "$@"; do
  python3 - "$h" "$files" "${wall[$h]}" "${cpu[$h]}" <<'PY'
import sys, statistics
h, n, w, c = sys.argv[1], sys.argv[2], [float(x) for x in sys.argv[3].split()], [float(x) for x in sys.argv[4].split()]
print(f"{h}: rm -rf of {n} lower files: wall median {statistics.median(w):.3f} s ({', '.join(f'{x:.3f}' for x in w)}), "
      f"mount process CPU median {statistics.median(c):.2f} s ({', '.join(f'{x:.2f}' for x in c)})")
PY
done
INNER
