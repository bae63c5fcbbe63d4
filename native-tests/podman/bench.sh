#!/usr/bin/env bash
# Mount-ready time as podman sees it: strata against fuse-overlayfs as overlay.mount_program (as root).
# For each program: a fresh podman store under a temp dir, the test image loaded, then N times
# `podman run --rm IMAGE true`, timing (a) the whole podman run and (b) the mount program itself
# (a wrapper times from exec to return, i.e. until the mount is ready). Prints medians in ms.
#   bash native-tests/podman/bench.sh [N]      (default N=9; needs install.sh done and a built strata)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
n=${1:-9}
[ "$(id -u)" = 0 ] || { echo "bench: needs root" >&2; exit 1; }
t=$(mktemp -d /tmp/strata-podman-bench.XXXXXX)
cleanup() {
  for s in "$t"/*/; do
    [ -d "$s/root" ] || continue
    podman --root "$s/root" --runroot "$s/run" --tmpdir "$s/tmp" rm -af >/dev/null 2>&1 || true
    grep -o " $s[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  done
  rm -rf "$t"
}
trap cleanup EXIT
bash "$here/make-image.sh" "$t/img"
tar -C "$t/img" -cf "$t/img.tar" .
median() { sort -n | awk '{a[NR]=$1} END{ if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
now() { date +%s%N; }
for prog in "$repo/bin/strata" /usr/bin/fuse-overlayfs; do
  name=$(basename "$prog")
  s=$t/$name
  mkdir -p "$s"
  cat > "$s/wrap.sh" <<W
#!/bin/sh
case "\$1" in -o) ;; *) exec "$prog" "\$@" ;; esac
t0=\$(date +%s%N)
"$prog" "\$@"
rc=\$?
t1=\$(date +%s%N)
echo \$(( (t1 - t0) / 1000000 )) >> "$s/mount-ms"
exit \$rc
W
  chmod +x "$s/wrap.sh"
  p=(podman --root "$s/root" --runroot "$s/run" --tmpdir "$s/tmp" --cgroup-manager cgroupfs --events-backend file
     --storage-driver overlay --storage-opt "overlay.mount_program=$s/wrap.sh")
  "${p[@]}" load -q -i "$t/img.tar" >/dev/null
  # one warm-up run (page cache, podman's own first-run setup)
  "${p[@]}" run --rm --runtime runc --network none --ulimit nofile=20000:20000 --ulimit nproc=32768:32768 localhost/strata-test true
  : > "$s/mount-ms"; : > "$s/run-ms"
  for _ in $(seq "$n"); do
    a=$(now)
    "${p[@]}" run --rm --runtime runc --network none --ulimit nofile=20000:20000 --ulimit nproc=32768:32768 localhost/strata-test true
    b=$(now)
    echo $(( (b - a) / 1000000 )) >> "$s/run-ms"
  done
  echo "$name: podman run --rm true: median $(median < "$s/run-ms") ms (runs: $(tr '\n' ' ' < "$s/run-ms"))"
  echo "$name: mount program until ready: median $(median < "$s/mount-ms") ms (runs: $(tr '\n' ' ' < "$s/mount-ms"))"
done
