#!/usr/bin/env bash
# Mount-ready time as podman sees it: strata against fuse-overlayfs as overlay.mount_program (as root).
# Two podman stores under a temp dir (one per program), the test image loaded in each, then N rounds
# of `podman run --rm IMAGE true`, alternating the programs so that machine load hits both alike.
# Reports medians of (a) the whole podman run and (b) the mount program itself: a wrapper times it
# from exec to return, i.e. until the mount is ready, which every container start waits for.
#   bash native-tests/podman/bench.sh [N]      (default N=11; run install.sh and build strata first)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
n=${1:-11}
[ "$(id -u)" = 0 ] || { echo "bench: needs root" >&2; exit 1; }
command -v podman >/dev/null && command -v fuse-overlayfs >/dev/null \
  || { echo "bench: needs podman (native-tests/podman/install.sh) and fuse-overlayfs" >&2; exit 1; }
t=$(mktemp -d /tmp/spb.XXXXXX)
# podman and runc keep some state outside --root: remove what this run creates
outside=()
for d in /var/lib/containers /run/runc /run/containers /run/libpod; do [ -e "$d" ] || outside+=("$d"); done
cleanup() {
  set +e
  for s in "$t"/*/; do
    [ -d "$s/root" ] || continue
    podman --root "$s/root" --runroot "$s/run" --tmpdir "$s/tmp" rm -af >/dev/null 2>&1 || true
    grep -o " ${s%/}/[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  done
  rm -rf "$t"
  for d in "${outside[@]}"; do
    [ -e "$d" ] || continue
    if [ "$d" = /var/lib/containers ]; then rm -rf "$d"; else find "$d" -depth -type d -empty -delete; fi
  done
}
trap cleanup EXIT
bash "$here/make-image.sh" "$t/img"
tar -C "$t/img" -cf "$t/img.tar" .
median() { sort -n | awk '{a[NR]=$1} END{ if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
progs=("$repo/bin/strata" /usr/bin/fuse-overlayfs)
podman_for() { # NAME -> the podman command line for that store
  local s=$t/$1
  echo podman --root "$s/root" --runroot "$s/run" --tmpdir "$s/tmp" --cgroup-manager cgroupfs --events-backend file \
    --storage-driver overlay --storage-opt "overlay.mount_program=$s/wrap.sh"
}
run_flags=(--rm --runtime runc --network none --ulimit nofile=20000:20000 --ulimit nproc=32768:32768)
for prog in "${progs[@]}"; do
  name=$(basename "$prog"); s=$t/$name
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
  $(podman_for "$name") load -q -i "$t/img.tar" >/dev/null
  $(podman_for "$name") run "${run_flags[@]}" localhost/strata-test true   # warm-up
  : > "$s/mount-ms"; : > "$s/run-ms"
done
for _ in $(seq "$n"); do
  for prog in "${progs[@]}"; do
    name=$(basename "$prog")
    a=$(date +%s%N)
    $(podman_for "$name") run "${run_flags[@]}" localhost/strata-test true
    b=$(date +%s%N)
    echo $(( (b - a) / 1000000 )) >> "$t/$name/run-ms"
  done
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"
for prog in "${progs[@]}"; do
  name=$(basename "$prog"); s=$t/$name
  echo "$name: mount program until ready: median $(median < "$s/mount-ms") ms (runs: $(tr '\n' ' ' < "$s/mount-ms"))"
  echo "$name: podman run --rm true:      median $(median < "$s/run-ms") ms (runs: $(tr '\n' ' ' < "$s/run-ms"))"
done
