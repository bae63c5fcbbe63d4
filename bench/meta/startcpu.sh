#!/usr/bin/env bash
# The shared daemon's CPU at start for two sets of JVM options (STRATA_JAVA_OPTS, A and B; B empty by
# default): a first mount (the daemon starts), 3 s at rest,
# the daemon's CPU (/proc/PID/stat: user+system ticks, 10 ms each) and its C1 compiler thread's;
# interleaved rounds. As root, in a private mount namespace.
#   bench/meta/startcpu.sh ROUNDS OPTS-A [OPTS-B]
# (a daemon directory of its own for each, so each mount starts a daemon; mount-ready time printed too)
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "startcpu: needs root (it mounts)" >&2; exit 1; }
if [ -z "${STARTCPU_NS:-}" ]; then STARTCPU_NS=1 exec unshare -m --propagation private "$0" "$@"; fi
home=$(cd "$(dirname "$0")/../.." && pwd)
rounds=${1:-5}
t=$(mktemp -d /var/tmp/startcpu.XXXXXX)
trap 'umount "$t/m" 2>/dev/null || true; rm -rf "$t"' EXIT
mkdir -p "$t"/{l,u,w,m}
echo x > "$t/l/f"
lower=$t/l
a=${2:?startcpu: ROUNDS OPTS-A [OPTS-B]}
b=${3:-}
tot_a=0 tot_b=0
for r in $(seq "$rounds"); do
  for mode in "$a" "$b"; do
    rm -rf "$t/u" "$t/w" "$t/d"; mkdir -p "$t/u" "$t/w"
    start=$(date +%s%N)
    STRATA_DAEMON_DIR=$t/d STRATA_DAEMON_IDLE=1 STRATA_JAVA_OPTS="$mode" \
      "$home/bin/strata" mount -o "lowerdir=$lower,upperdir=$t/u,workdir=$t/w,passthrough=0" "$t/m"
    ready=$(( ($(date +%s%N) - start) / 1000000 ))
    pid=$(for p in /proc/[0-9]*; do grep -qa "STRATA_DAEMON_DIR=$t/d" "$p/environ" 2>/dev/null && grep -qa strata.jar "$p/cmdline" && basename "$p"; done | head -1 || true)
    sleep 3
    read -r -a f < <(sed 's/.*) //' "/proc/$pid/stat")
    cpu=$(( f[11] + f[12] ))
    c1=0
    for tk in /proc/$pid/task/*; do
      if grep -q "C1 Compiler" "$tk/comm" 2>/dev/null; then read -r -a g < <(sed 's/.*) //' "$tk/stat"); c1=$(( c1 + g[11] + g[12] )); fi
    done
    echo "[$mode] ready_ms=$ready cpu_ticks=$cpu c1_ticks=$c1"
    if [ "$mode" = "$a" ]; then tot_a=$((tot_a + cpu)); else tot_b=$((tot_b + cpu)); fi
    umount "$t/m"
    while [ -e "/proc/$pid" ]; do sleep 0.1; done
  done
done
echo "total ticks over $rounds rounds: A $tot_a, B $tot_b"
