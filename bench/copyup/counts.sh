#!/bin/bash
# Counts per small copy-up that do not depend on the machine's load (issue 14): thread wake-ups by who
# wakes whom (and how many go to another CPU), context switches and CPU time of the caller and of
# strata's daemon, for the kernel overlay and strata -o passthrough=0, with and without fsync, as root.
#
#   bash bench/copyup/counts.sh [--rounds N] [--warm N] [--systems kernel,strata,kernel-volatile,strata-volatile]
#                               [--home DIR] [--base DIR] [--workdir DIR] [--scratch-fs]
#
# Uses the lower layer of run.sh (WORKDIR/lower: b/ holds the 300 files measured) and adds WORKDIR/lower/w-N,
# N files for a warm-up (default 1800): strata runs here in a process of its own (a new JVM per mount), whose
# JIT still compiles after the 300 copy-ups of run.sh's warm-up. Each run: mount, append-loop over w-N, then
# over b/ under `perf stat` (caller; daemon threads) and `perf record` of sched_waking/sched_switch. Upper
# and work directories as in run.sh: spread over the block groups (chattr +T on their parent) and kept
# until the end, so that no run allocates inodes among recently freed ones (ext4 without a journal);
# --scratch-fs as in run.sh: each run's upper and work on a new ext4 of its own (loop device). --base DIR
# adds the systems strata-base and strata-base-volatile: the strata of checkout DIR (an A/B).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
home="$(cd "$here/../.." && pwd)"
rounds=3 warm=1800 systems="kernel,strata,kernel-volatile,strata-volatile" work=/var/tmp/strata-bench/copyup scratch=0 base=""
args=("$@")
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --warm) warm="$2"; shift 2 ;;
    --systems) systems="$2"; shift 2 ;;
    --home) home="$2"; shift 2 ;;
    --base) base="$2"; shift 2 ;;
    --workdir) work="$2"; shift 2 ;;
    --scratch-fs) scratch=1; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "counts.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "counts.sh: needs root (it mounts)" >&2; exit 1; }
command -v perf >/dev/null || { echo "counts.sh: needs perf" >&2; exit 1; }
[ -e "$work/lower/ready" ] || { echo "counts.sh: no lower layer in $work (bash bench/copyup/run.sh --rounds 1 builds it)" >&2; exit 1; }
if [ -z "${COUNTS_NS:-}" ]; then
  COUNTS_NS=1 exec unshare -m --propagation private bash "$0" "${args[@]}"
fi
gcc -O2 -o "$work/append-loop" "$here/append-loop.c"
w="$work/lower/w-$warm"
if [ ! -d "$w" ]; then
  mkdir -p "$w.tmp"; i=0
  while [ $i -lt "$warm" ]; do
    for f in "$work"/lower/a/*; do
      [ $i -lt "$warm" ] || break
      cp "$f" "$w.tmp/$i-$(basename "$f")"; i=$((i + 1))
    done
  done
  mv "$w.tmp" "$w"
fi
run="$(mktemp -d /var/tmp/copyup-counts.XXXXXX)"; chattr +T "$run" 2>/dev/null || true
mnt="$run/mnt"; mkdir -p "$mnt"
trap 'umount "$mnt" 2>/dev/null || true; umount "$run"/*/ 2>/dev/null || true; rm -rf "$run"' EXIT
IFS=, read -r -a sys <<<"$systems"
[ -n "$base" ] && sys+=(strata-base strata-base-volatile)
n="$(ls "$work/lower/b" | wc -l)"
echo "date $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg) strata $(git -C "$home" rev-parse --short HEAD 2>/dev/null || echo "$home") copy-ups $n warm-up $warm"
for ((r = 0; r < rounds; r++)); do
  for ((j = 0; j < ${#sys[@]}; j++)); do
    s="${sys[$(((j + r) % ${#sys[@]}))]}"
    d="$run/$r-$j"; mkdir -p "$d"
    if [ "$scratch" = 1 ]; then
      truncate -s 1G "$d.img" && mkfs.ext4 -q "$d.img" && mount -o loop "$d.img" "$d"
    fi
    mkdir -p "$d/upper" "$d/wd"
    o="lowerdir=$work/lower,upperdir=$d/upper,workdir=$d/wd"
    case "$s" in *-volatile) o="$o,volatile" ;; esac
    pid=""
    case "$s" in
      kernel*) mount -t overlay overlay -o "$o" "$mnt" ;;
      strata-base*) STRATA_DAEMON=0 "$base/bin/strata" mount -o "$o,passthrough=0" "$mnt"
               pid="$(pgrep -n -f -- "$mnt")" ;;
      strata*) STRATA_DAEMON=0 "$home/bin/strata" mount -o "$o,passthrough=0" "$mnt"
               pid="$(pgrep -n -f -- "$mnt")" ;;
      *) echo "counts.sh: unknown system $s" >&2; exit 2 ;;
    esac
    "$work/append-loop" "$mnt/w-$warm" >/dev/null
    ps=""
    if [ -n "$pid" ]; then
      perf stat -x, -e task-clock,context-switches -p "$pid" -o "$run/daemon.stat" & ps=$!
      sleep 0.3
    fi
    line="$(perf record -q -o "$run/sched.data" -a -e sched:sched_waking,sched:sched_switch -- \
      perf stat -x, -e task-clock,context-switches -o "$run/caller.stat" "$work/append-loop" "$mnt/b")"
    if [ -n "$ps" ]; then sleep 0.1; kill -INT "$ps"; wait "$ps" || true; fi
    tids=""; [ -n "$pid" ] && tids="$(ls "/proc/$pid/task" | tr '\n' ' ')"
    umount "$mnt"
    while grep -q " $mnt " /proc/mounts; do sleep 0.1; done
    if [ "$scratch" = 1 ]; then
      # the daemon of a mount of its own lets go of the upper and work directories as it ends
      for _ in $(seq 100); do umount "$d" 2>/dev/null && break; sleep 0.1; done
      rm -f "$d.img"
    fi
    perf script -i "$run/sched.data" -F comm,tid,cpu,event,trace 2>/dev/null >"$run/sched.txt" || true
    python3 - "$s" "$n" "$run" "$tids" "$line" <<'EOF'
import collections, re, sys
s, n, run, tids, line = sys.argv[1], int(sys.argv[2]), sys.argv[3], set(sys.argv[4].split()), sys.argv[5]
def stat(f):
    try:
        v = {}
        for l in open(f):
            w = l.split(',')
            if len(w) > 2 and w[0].replace('.', '').isdigit(): v[w[2]] = float(w[0])
        return v.get('task-clock', 0) * 1000 / n, v.get('context-switches', 0) / n
    except OSError:
        return None
def role(comm, tid):
    if comm.startswith('append-loop'): return 'caller'
    if tid in tids: return 'worker' if comm.startswith('strata-fuse') else 'jvm'
    return None
wake = collections.Counter(); cross = collections.Counter()
rx = re.compile(r'^\s*(\S.*?)\s+(\d+)\s+\[(\d+)\]\s+(\S+):\s+(.*)$')
for l in open(run + '/sched.txt'):
    m = rx.match(l)
    if not m or not m.group(4).endswith('sched_waking'): continue
    mm = re.search(r'comm=(.*?) pid=(\d+) prio=\d+ target_cpu=(\d+)', m.group(5))
    if not mm: continue
    a, b = role(m.group(1), m.group(2)), role(mm.group(1), mm.group(2))
    if a is None and b is None: continue
    k = (a or 'kernel', b or 'kernel')
    wake[k] += 1
    if int(mm.group(3)) != int(m.group(3)): cross[k] += 1
kv = dict(zip(line.split()[0::2], line.split()[1::2]))
c, d = stat(run + '/caller.stat'), stat(run + '/daemon.stat') if tids else None
out = "system %s total_s %s open_p50 %s open_p90 %s caller_cpu_us %.1f caller_cs %.2f" % (
    s, kv.get('total_s'), kv.get('open_p50'), kv.get('open_p90'), c[0], c[1])
if d: out += " daemon_cpu_us %.1f daemon_cs %.2f" % d
for k in [('caller', 'worker'), ('worker', 'caller'), ('worker', 'worker'), ('kernel', 'worker'), ('worker', 'kernel'), ('kernel', 'caller')]:
    out += " %s>%s %.2f/%.2f" % (k[0], k[1], wake[k] / n, cross[k] / n)
print(out)
open(run + '/results.txt', 'a').write(out + '\n')
EOF
  done
done
echo "load after $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$run/results.txt" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    w = line.split()
    rows.setdefault(w[1], []).append(dict(zip(w[2::2], w[3::2])))
print("medians per copy-up; wake-ups as all/to another CPU")
keys = ["total_s", "open_p50", "caller_cpu_us", "caller_cs", "daemon_cpu_us", "daemon_cs", "caller>worker", "worker>caller", "worker>worker", "kernel>worker", "kernel>caller"]
print("%-16s %s" % ("system", " ".join("%13s" % k for k in keys)))
for s, rs in rows.items():
    def med(k):
        v = [x[k] for x in rs if k in x]
        if not v: return "-"
        if "/" in v[0]:
            return "%.2f/%.2f" % (statistics.median(float(x.split("/")[0]) for x in v), statistics.median(float(x.split("/")[1]) for x in v))
        return "%.4g" % statistics.median(float(x) for x in v)
    print("%-16s %s" % (s, " ".join("%13s" % med(k) for k in keys)))
EOF
