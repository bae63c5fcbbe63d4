#!/usr/bin/env bash
# strata mount ARCHIVE (issue 16) against import + mount and umoci unpack: time to the first `ls` of the
# root, time of a full `tar -c` of the tree, and what the store (or bundle) grew by on disk.
#
#   sudo bench/lazy.sh [--work DIR] [--src "DIR..."]      (as root: umoci keeps owners, mounts need it)
#
# The image: one layer per source directory (default /usr/lib/jvm: large files; /usr/share/doc and
# /usr/include: ~14,000 small ones), imported once and exported by strata as an OCI layout (gzip layers)
# and a docker archive (uncompressed layers). Rows:
#   lazy, 1st       strata mount ARCHIVE M --store S (empty S: the layers are indexed)
#   lazy, 2nd       the same again on the same S (index reused)
#   import + mount  strata image import ARCHIVE --store S2 (empty) && strata mount --image
#   umoci unpack    umoci unpack --image OCI:1 BUNDLE (OCI only), then ls/tar of BUNDLE/rootfs
# "ls" is from the start of the command to the end of `ls -la` of the root; "tar -c" is
# `tar -cf - -C ROOT . | wc -c` afterwards. The page cache is not dropped (the machine is shared):
# every row reads what the previous ones left cached, the archive included. One run per row.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
strata=$here/bin/strata
work=/var/tmp/strata-bench-lazy
srcs="/usr/lib/jvm /usr/share/doc /usr/include"
while [ $# -gt 0 ]; do
  case "$1" in
    --work) work=$2; shift 2 ;;
    --src) srcs=$2; shift 2 ;;
    *) echo "usage: $0 [--work DIR] [--src \"DIR...\"]" >&2; exit 2 ;;
  esac
done
if [ -z "${STRATA_BENCH_INNER:-}" ]; then
  export STRATA_BENCH_INNER=1
  exec unshare -m --propagation private "$0" --work "$work" --src "$srcs"
fi
command -v umoci >/dev/null || { echo "umoci is not installed (apt-get install -y umoci)" >&2; exit 1; }

rm -rf --one-file-system "$work"
mkdir -p "$work"
cd "$work"
cleanup() {
  for m in $(awk -v w="$work" '$2 ~ "^"w {print $2}' /proc/mounts | sort -r); do "$strata" umount "$m" 2>/dev/null || umount -l "$m"; done
}
trap cleanup EXIT

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
disk() { du -sB1 "$1" 2>/dev/null | cut -f1; }
mb() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1048576 }'; }

echo "building the image from: $srcs" >&2
store0=$work/store0
layers=()
i=0
for s in $srcs; do
  i=$((i + 1))
  tar --numeric-owner -C "$(dirname "$s")" -cf "layer$i.tar" "$(basename "$s")"
  layers+=("layer$i.tar")
done
# a multi-layer image: import the first layer, then each further one as a commit of a mount that adds it
"$strata" image import layer1.tar --name bench:1 --store "$store0" -q
for ((k = 2; k <= i; k++)); do
  mkdir -p m0 && "$strata" mount --image bench:$((k - 1)) --store "$store0" --upper "u$k" m0
  tar -C m0 -xf "layer$k.tar"
  "$strata" image commit m0 bench:$k --store "$store0" >/dev/null
  "$strata" umount m0
done
"$strata" image export bench:$i oci --store "$store0" >/dev/null
"$strata" image export bench:$i docker.tar --format docker-archive --store "$store0" >/dev/null
echo "OCI layout $(mb "$(disk oci)") MiB (gzip), docker archive $(mb "$(stat -c %s docker.tar)") MiB" >&2

rows=()
measure() { # label, root dir, start time, store dir
  local label=$1 root=$2 t0=$3 st=$4 t1 t2 bytes
  ls -la "$root" >/dev/null
  t1=$(now)
  bytes=$(tar -cf - -C "$root" . | wc -c)
  t2=$(now)
  rows+=("| $label | $(secs "$t0" "$t1") | $(secs "$t1" "$t2") | $(mb "$(disk "$st")") |")
  echo "$label: ls $(secs "$t0" "$t1") s, tar -c $(secs "$t1" "$t2") s ($(mb "$bytes") MiB), disk $(mb "$(disk "$st")") MiB" >&2
}

for src in oci docker.tar; do
  fmt=$([ "$src" = oci ] && echo "OCI, gzip" || echo "docker, plain")
  s=$work/store-lazy-$src; m=$work/m-$src
  mkdir -p "$m"
  t0=$(now); "$strata" mount "$work/$src" "$m" --store "$s"; measure "lazy, 1st ($fmt)" "$m" "$t0" "$s"
  "$strata" umount "$m"
  t0=$(now); "$strata" mount "$work/$src" "$m" --store "$s"; measure "lazy, 2nd ($fmt)" "$m" "$t0" "$s"
  "$strata" umount "$m"
  s2=$work/store-import-$src
  t0=$(now); "$strata" image import "$work/$src" --name b:1 --store "$s2" -q
  "$strata" mount --image b:1 --store "$s2" "$m"; measure "import + mount ($fmt)" "$m" "$t0" "$s2"
  "$strata" umount "$m"
done
t0=$(now); umoci unpack --image "$work/oci:$i" "$work/bundle" >/dev/null 2>&1
measure "umoci unpack (OCI, gzip)" "$work/bundle/rootfs" "$t0" "$work/bundle"

echo
echo "| way | to the first \`ls\` (s) | \`tar -c\` of the tree (s) | disk (MiB) |"
echo "|---|---|---|---|"
printf '%s\n' "${rows[@]}"
