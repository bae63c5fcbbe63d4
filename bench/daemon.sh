#!/usr/bin/env bash
# The shared daemon (README, "Process model"), as root in a private mount namespace, on a copy of
# /usr/lib/python3.11 as the lower layer: mount-ready (launcher start to exit) of a first mount with
# nothing running, of a mount with a process of its own (STRATA_DAEMON=0), and of a mount handed to a
# running daemon (medians of --runs N, default 10); then the daemon's Pss (/proc/PID/smaps_rollup)
# serving 1 and 10 mounts that each ran find and tar, and the growth for an 11th, idle one.
#   sudo bench/daemon.sh [--runs N]
set -euo pipefail
if [ "${STRATA_BENCH_NS:-}" != 1 ]; then
  [ "$(id -u)" = 0 ] || { echo "bench daemon: needs root (it mounts)" >&2; exit 1; }
  exec env STRATA_BENCH_NS=1 unshare -m --propagation private "$0" "$@"
fi
runs=10
[ "${1:-}" = --runs ] && runs=$2
home=$(cd -P "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
S=$home/bin/strata
t=$(mktemp -d /var/tmp/strata-daemon-bench.XXXXXX)
trap 'for m in $(grep -o " $t/[^ ]*" /proc/self/mounts | sort -r); do umount -l "$m"; done; rm -rf "$t"' EXIT
mkdir -m 700 "$t/sock"
export STRATA_DAEMON_DIR=$t/sock
cp -a /usr/lib/python3.11 "$t/l"
for i in $(seq 0 10); do mkdir -p "$t/u$i" "$t/w$i" "$t/m$i"; done
ms() { local s e; s=$(date +%s%N); "$@"; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
mnt() { "$S" -o "lowerdir=$t/l,upperdir=$t/u$1,workdir=$t/w$1" "$t/m$1"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
daemon_of() { pgrep -nf "strata.jar -o lowerdir=$t/l,upperdir=$t/u$1,"; }
gone() { while pgrep -f "strata.jar -o lowerdir=$t/l," >/dev/null; do sleep 0.1; done; }
pss() { awk '/^Pss:/ {printf "%.1f", $2 / 1024}' "/proc/$1/smaps_rollup"; }

first=() own=() handed=()
for r in $(seq "$runs"); do
  first+=("$(STRATA_DAEMON_IDLE=0 ms mnt 0)"); umount "$t/m0"; gone
  own+=("$(STRATA_DAEMON=0 ms mnt 0)"); umount "$t/m0"; gone
  STRATA_DAEMON_IDLE=0 mnt 0
  handed+=("$(ms mnt 1)"); umount "$t/m1"; umount "$t/m0"; gone
done
echo "mount-ready, median of $runs (ms): first mount, nothing running $(printf '%s\n' "${first[@]}" | median)," \
  "own process (STRATA_DAEMON=0) $(printf '%s\n' "${own[@]}" | median)," \
  "handed to a running daemon $(printf '%s\n' "${handed[@]}" | median)"
mnt 0
pid=$(daemon_of 0)
work() { find "$t/m$1" > /dev/null; tar -cf - -C "$t/m$1" . | wc -c > /dev/null; }
work 0; sleep 1
one=$(pss "$pid")
for i in $(seq 1 9); do mnt "$i"; work "$i"; done
sleep 1
ten=$(pss "$pid")
mnt 10; sleep 1
eleven=$(pss "$pid")
echo "daemon Pss (MB): 1 mount $one, 10 mounts $ten, +1 idle mount $(awk -v a="$eleven" -v b="$ten" 'BEGIN {printf "%.1f", a - b}')" \
  "($(ls "/proc/$pid/task" | wc -l) threads; load average $(cut -d' ' -f1-3 /proc/loadavg))"
for i in $(seq 0 10); do umount "$t/m$i"; done
