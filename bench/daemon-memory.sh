#!/usr/bin/env bash
# The shared daemon's memory by area (issue 14), as root in a private mount namespace, without podman:
# a copy of /usr/lib/python3.11 as the lower layer of every mount, -o passthrough=0 as rootless podman
# gets; bench/jvm-memory.py's breakdown (the JVM runs with -XX:NativeMemoryTracking=detail, which adds
# ~1 MB and a socket key of its own) 6 s after: the first mount is ready; that mount ran find, tar,
# 300 appends to lower files (copy-ups), an untar and dd 512 MiB write + read; nine more mounts ran
# find and tar; then the growth of Pss for an 11th idle mount.
#   sudo bench/daemon-memory.sh [STRATA_TREE]     (default: this tree)
set -uo pipefail
if [ "${STRATA_BENCH_NS:-}" != 1 ]; then
  [ "$(id -u)" = 0 ] || { echo "bench daemon-memory: needs root (it mounts)" >&2; exit 1; }
  exec env STRATA_BENCH_NS=1 unshare -m --propagation private "$0" "$@"
fi
here=$(cd -P "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tree=${1:-$here/..}
S=$tree/bin/strata
t=$(mktemp -d /var/tmp/strata-daemon-memory.XXXXXX)
trap 'for m in $(grep -o " $t/[^ ]*" /proc/self/mounts | sort -r); do umount -l "$m"; done; rm -rf "$t"' EXIT
mkdir -m 700 "$t/sock"
export STRATA_DAEMON_DIR=$t/sock STRATA_DAEMON_IDLE=0 STRATA_JAVA_OPTS="-XX:NativeMemoryTracking=detail ${STRATA_JAVA_OPTS:-}"
cp -a /usr/lib/python3.11 "$t/l"
tar -cf "$t/stdlib.tar" -C /usr/lib python3.11/json python3.11/email python3.11/http
for i in $(seq 0 10); do mkdir -p "$t/u$i" "$t/w$i" "$t/m$i"; done
mnt() { "$S" -o "lowerdir=$t/l,upperdir=$t/u$1,workdir=$t/w$1,passthrough=0" "$t/m$1"; }
pss() { awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup"; }
mnt 0 || exit 1
pid=$(pgrep -nf "strata.jar -o lowerdir=$t/l,upperdir=$t/u0,")
sleep 6; echo "== the daemon at rest after its first mount"; "$here/jvm-memory.py" "$pid"
m=$t/m0
find "$m" >/dev/null; tar -cf - -C "$m" . | wc -c >/dev/null
find "$m" -name '*.py' | head -300 | while read -r f; do echo '#' >> "$f"; done
mkdir "$m/x"; tar -xf "$t/stdlib.tar" -C "$m/x"
dd if=/dev/zero of="$m/big" bs=1M count=512 conv=fsync status=none; dd if="$m/big" of=/dev/null bs=1M status=none; rm -f "$m/big"
sleep 6; echo "== after the workloads"; "$here/jvm-memory.py" "$pid"
for i in $(seq 1 9); do mnt "$i"; find "$t/m$i" >/dev/null; tar -cf - -C "$t/m$i" . | wc -c >/dev/null; done
sleep 6; echo "== 10 mounts that ran find and tar"; "$here/jvm-memory.py" "$pid"
a=$(pss); mnt 10; sleep 6; b=$(pss)
echo "== an 11th, idle mount: Pss grew $(( (b - a) )) kB"
for i in $(seq 0 10); do umount "$t/m$i"; done
