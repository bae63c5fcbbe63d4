#!/bin/bash
# Cold walks through a fresh mount, interleaved, as root (issue 14): `tar -cf - usr | wc -c` (every file
# opened and read) and `find usr -printf '%s %i\n'` (lookups and listings) over the 3-layer stack of
# bench/compare (WORKDIR/stack-full-v1, built by `scripts/bench.sh compare` once), strata with
# -o passthrough=0 and a process of its own per mount, for several builds of strata (an A/B), with the
# kernel overlay and fuse-overlayfs as references.
#
#   bash bench/copyup/walk-ab.sh [--rounds N] [--walks tar,find] [--drop] [--stack DIR]
#                                [--strata NAME=HOME]... [--systems kernel,fuse-overlayfs]
#
# --strata NAME=HOME adds the strata of checkout HOME (built with scripts/setup.sh) as system NAME;
# without any, this checkout is 'strata'. --drop drops the page cache before each walk (cold disk too;
# otherwise only the mount is new: what is measured is the work per request). Prints each run (wall
# seconds and, for strata, the daemon's CPU seconds from /proc/PID/stat) and the medians per system.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
home="$(cd "$here/../.." && pwd)"
rounds=5 walks="tar,find" drop=0 stack=/var/tmp/strata-bench/stack-full-v1 refs="kernel,fuse-overlayfs"
stratas=()
args=("$@")
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --walks) walks="$2"; shift 2 ;;
    --drop) drop=1; shift ;;
    --stack) stack="$2"; shift 2 ;;
    --strata) stratas+=("$2"); shift 2 ;;
    --systems) refs="$2"; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "walk-ab.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "walk-ab.sh: needs root (it mounts)" >&2; exit 1; }
[ -d "$stack/lower3/usr" ] || { echo "walk-ab.sh: no stack at $stack (scripts/bench.sh compare builds it)" >&2; exit 1; }
if [ -z "${WALK_AB_NS:-}" ]; then
  WALK_AB_NS=1 exec unshare -m --propagation private bash "$0" "${args[@]}"
fi
[ ${#stratas[@]} -eq 0 ] && stratas=("strata=$home")
declare -A homes
sys=()
IFS=, read -r -a rs <<<"$refs"
for s in "${rs[@]}"; do [ -n "$s" ] && sys+=("$s"); done
for e in "${stratas[@]}"; do homes["${e%%=*}"]="${e#*=}"; sys+=("${e%%=*}"); done
IFS=, read -r -a ws <<<"$walks"
work="$(mktemp -d /var/tmp/walk-ab.XXXXXX)"
mnt="$work/mnt"; mkdir -p "$mnt"
results="$work/results.txt"; : >"$results"
trap 'umount "$mnt" 2>/dev/null || true; rm -rf "$work"' EXIT
cpu() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat" 2>/dev/null || echo 0; }
echo "date $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg) drop=$drop"
for ((r = 0; r < rounds; r++)); do
  for w in "${ws[@]}"; do
    for ((j = 0; j < ${#sys[@]}; j++)); do
      s="${sys[$(((j + r) % ${#sys[@]}))]}"
      rm -rf "$work/upper" "$work/wd"; mkdir -p "$work/upper" "$work/wd"
      o="lowerdir=$stack/lower1:$stack/lower2:$stack/lower3,upperdir=$work/upper,workdir=$work/wd"
      pid=""
      case "$s" in
        kernel) mount -t overlay overlay -o "$o" "$mnt" ;;
        fuse-overlayfs) fuse-overlayfs -o "$o" "$mnt" 2>/dev/null ;;
        *) STRATA_DAEMON=0 "${homes[$s]}/bin/strata" mount -o "$o,passthrough=0" "$mnt"
           pid="$(pgrep -n -f -- "$mnt" || true)" ;;
      esac
      [ "$drop" = 1 ] && { sync; echo 3 >/proc/sys/vm/drop_caches; }
      c0=0; [ -n "$pid" ] && c0="$(cpu "$pid")"
      t0="$(date +%s.%N)"
      case "$w" in
        tar) (cd "$mnt" && tar -cf - usr | wc -c >/dev/null) ;;
        find) find "$mnt/usr" -printf '%s %i\n' >/dev/null ;;
      esac
      t1="$(date +%s.%N)"
      c1=0; [ -n "$pid" ] && c1="$(cpu "$pid")"
      umount "$mnt"
      while grep -q " $mnt " /proc/mounts; do sleep 0.1; done
      line="$(printf 'round %d walk %s system %s wall %.3f cpu %.2f' "$r" "$w" "$s" "$(echo "$t1 - $t0" | bc)" "$(echo "$c1 - $c0" | bc)")"
      echo "$line" | tee -a "$results"
    done
  done
done
echo "load after $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$results" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    w = line.split()
    kv = dict(zip(w[0::2], w[1::2]))
    rows.setdefault((kv["walk"], kv["system"]), []).append(kv)
print("%-6s %-16s %5s %10s %10s" % ("walk", "system", "runs", "wall s", "cpu s"))
for (walk, s), rs in rows.items():
    med = lambda k: statistics.median(float(x[k]) for x in rs)
    print("%-6s %-16s %5d %10.3f %10.2f" % (walk, s, len(rs), med("wall"), med("cpu")))
EOF
