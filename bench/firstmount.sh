#!/usr/bin/env bash
# A first mount with nothing running (the shared daemon's JVM start), interleaved between strata trees
# (an A/B of launcher or JVM changes), as root in a private mount namespace: each round mounts a copy
# of /usr/lib/python3.11 once per tree, from the launcher's start to its exit (mount-ready), with a
# socket directory of its own (so a fresh daemon every time) and the daemon's warm-up off, then
# unmounts and ends that daemon. Prints every run and the median per tree.
#   sudo bench/firstmount.sh [--rounds N] TREE[:JVM-OPTIONS] ...    (default: this tree, 11 rounds)
# JVM-OPTIONS go to STRATA_JAVA_OPTS (the launcher then also computes a socket key: a few ms more);
# e.g. bench/firstmount.sh /old/checkout . '.:-XX:CICompilerCount=2'
set -euo pipefail
if [ "${STRATA_BENCH_NS:-}" != 1 ]; then
  [ "$(id -u)" = 0 ] || { echo "bench firstmount: needs root (it mounts)" >&2; exit 1; }
  exec env STRATA_BENCH_NS=1 unshare -m --propagation private "$0" "$@"
fi
rounds=11
if [ "${1:-}" = --rounds ]; then rounds=$2; shift 2; fi
here=$(cd -P "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ $# -gt 0 ] || set -- "$here"
t=$(mktemp -d /var/tmp/strata-firstmount.XXXXXX)
trap 'for m in $(grep -o " $t/[^ ]*" /proc/self/mounts | sort -r); do umount -l "$m"; done; rm -rf "$t"' EXIT
cp -a /usr/lib/python3.11 "$t/l"
out=$t/runs
for r in $(seq "$rounds"); do
  for spec in "$@"; do
    tree=${spec%%:*} jvm=
    [ "$spec" != "$tree" ] && jvm=${spec#*:}
    tree=$(cd -P "$tree" && pwd)
    rm -rf "$t/r"; mkdir -p "$t/r/sock" "$t/r/u" "$t/r/w" "$t/r/m"; chmod 700 "$t/r/sock"
    s=$(date +%s%N)
    env STRATA_DAEMON_DIR="$t/r/sock" STRATA_WARMUP=0 ${jvm:+STRATA_JAVA_OPTS="$jvm"} \
      "$tree/bin/strata" -o "lowerdir=$t/l,upperdir=$t/r/u,workdir=$t/r/w" "$t/r/m"
    e=$(date +%s%N)
    printf '%s\t%s\n' "$spec" $(( (e - s) / 1000000 )) | tee -a "$out"
    umount "$t/r/m"
    for p in $(pgrep -f "strata.jar .*$t/r/u" || true); do kill "$p" 2>/dev/null || true; done
    while pgrep -f "strata.jar .*$t/r/u" >/dev/null; do sleep 0.05; done
    sleep 0.3
  done
done
echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$out" <<'EOF'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    spec, ms = line.rstrip("\n").split("\t")
    runs.setdefault(spec, []).append(int(ms))
for spec, v in runs.items():
    print(f"{spec}: median {statistics.median(v):.0f} ms over {len(v)} ({min(v)}-{max(v)})")
EOF
