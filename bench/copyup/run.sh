#!/bin/bash
# Small copy-ups through a mount, interleaved (issue 14): the kernel overlay, fuse-overlayfs and strata
# with -o passthrough=0 (and optionally a second strata build) on the same lower layer, as root.
#
#   bash bench/copyup/run.sh [--rounds N] [--systems kernel,fuse-overlayfs,strata] [--base HOME]
#                            [--opts EXTRA] [--workdir DIR]
#
# The lower layer (built once in WORKDIR/lower): a/ and b/, 300 .py files (< 64 KiB) of /usr/lib/python3.11 each.
# Each round mounts every system on a fresh upper (order rotated per round), runs append-loop over a/
# (warm-up: a new strata daemon is still compiling) and over b/ (measured): open(O_WRONLY|O_APPEND),
# write, close per file, one copy-up each. Prints every run and the medians of b/ per system.
# --base HOME adds 'strata-base', the strata of another checkout (an A/B run); --opts adds mount options
# to every system (e.g. fsync=0 for strata, volatile for the kernel: give them per system in the code).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
home="$(cd "$here/../.." && pwd)"
rounds=5 systems="kernel,fuse-overlayfs,strata" base="" work=/var/tmp/strata-bench/copyup extra=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --systems) systems="$2"; shift 2 ;;
    --base) base="$2"; shift 2 ;;
    --opts) extra="$2"; shift 2 ;;
    --workdir) work="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "run.sh: needs root (it mounts)" >&2; exit 1; }
if [ -z "${COPYUP_BENCH_NS:-}" ]; then
  COPYUP_BENCH_NS=1 exec unshare -m --propagation private bash "$0" --rounds "$rounds" --systems "$systems" \
    ${base:+--base "$base"} ${extra:+--opts "$extra"} --workdir "$work"
fi
[ -n "$base" ] && case ",$systems," in *,strata-base,*) ;; *) systems="$systems,strata-base" ;; esac
mkdir -p "$work"
gcc -O2 -o "$work/append-loop" "$here/append-loop.c"
if [ ! -e "$work/lower/ready" ]; then
  rm -rf "$work/lower"; mkdir -p "$work/lower/a" "$work/lower/b"
  i=0
  while read -r f; do
    d=a; [ $i -ge 300 ] && d=b
    cp "$f" "$work/lower/$d/$(printf %03d $i)-$(basename "$f")"; i=$((i + 1))
  done < <(find /usr/lib/python3.11 -name '*.py' -size -64k | sort | head -600)
  touch "$work/lower/ready"
fi
mnt="$work/mnt"; mkdir -p "$mnt"
IFS=, read -r -a sys <<<"$systems"
results="$work/results.txt"; : >"$results"
echo "date $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg) strata $(git -C "$home" rev-parse --short HEAD 2>/dev/null || echo "$home")"
for ((r = 0; r < rounds; r++)); do
  for ((j = 0; j < ${#sys[@]}; j++)); do
    s="${sys[$(((j + r) % ${#sys[@]}))]}"
    rm -rf "$work/upper" "$work/wd"; mkdir -p "$work/upper" "$work/wd"
    o="lowerdir=$work/lower,upperdir=$work/upper,workdir=$work/wd${extra:+,$extra}"
    case "$s" in
      kernel) mount -t overlay overlay -o "$o" "$mnt" ;;
      fuse-overlayfs) fuse-overlayfs -o "$o" "$mnt" ;;
      strata) STRATA_DAEMON=0 "$home/bin/strata" mount -o "$o,passthrough=0" "$mnt" ;;
      strata-base) STRATA_DAEMON=0 "$base/bin/strata" mount -o "$o,passthrough=0" "$mnt" ;;
      *) echo "run.sh: unknown system $s" >&2; exit 2 ;;
    esac
    "$work/append-loop" "$mnt/a" >/dev/null
    line="$("$work/append-loop" "$mnt/b")"
    umount "$mnt"
    while grep -q " $mnt " /proc/mounts; do sleep 0.1; done
    echo "round $r $s $line" | tee -a "$results"
  done
done
echo "load after $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$results" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    w = line.split()
    kv = dict(zip(w[3::2], w[4::2]))
    rows.setdefault(w[2], []).append(kv)
print("%-16s %6s %12s %14s %14s" % ("system", "runs", "b/ total s", "open p50 us", "open p90 us"))
for s, rs in rows.items():
    med = lambda k: statistics.median(float(x[k]) for x in rs)
    print("%-16s %6d %12.4f %14.1f %14.1f" % (s, len(rs), med("total_s"), med("open_p50"), med("open_p90")))
EOF
rm -rf "$work/upper" "$work/wd"
