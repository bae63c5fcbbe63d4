#!/usr/bin/env bash
# The bundled example, end to end: builds strata (scripts/setup.sh), makes three layers
# (examples/make-layers.sh), mounts them with an upper directory, shows the merged tree, changes it
# (copy-up, whiteout, opaque directory), shows what landed in the upper layer, and unmounts.
#   bash scripts/example.sh [DIR]     (default DIR: /tmp/strata-example; needs root or fusermount)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${1:-/tmp/strata-example}
bash "$here/scripts/setup.sh" >/dev/null
bash "$here/examples/make-layers.sh" "$dir"
strata="$here/bin/strata"
mnt=$dir/merged
cleanup() { if grep -q " $mnt fuse" /proc/self/mounts; then "$strata" umount "$mnt" || true; fi; }
trap cleanup EXIT

run() { printf '\n$ %s\n' "$*"; "$@"; }
run "$strata" mount -o "lowerdir=$dir/top:$dir/middle:$dir/base,upperdir=$dir/upper,workdir=$dir/work" "$mnt"
cd "$mnt"
run find . -mindepth 1 | sort
run cat etc/motd            # the middle layer's copy hides the base one
run cat app/config.ini      # the top layer wins
run ls app/data             # opaque in the middle layer: base's cache.bin is gone
run ls docs                 # old.txt was whited out by the middle layer
echo "appended through the mount" >> etc/motd   # copy-up: the file moves to the upper layer first
rm docs/README                                   # a lower file: leaves a whiteout in the upper layer
mkdir -p notes && echo "new" > notes/today.txt   # new files go straight to the upper layer
run cat etc/motd
cd "$here"
run ls -la "$dir/upper" "$dir/upper/etc" "$dir/upper/docs"
run cat "$dir/middle/etc/motd"   # lower layers are never written
run "$strata" umount "$mnt"
trap - EXIT
echo
echo "The layers are in $dir; mount them again with:"
echo "  $strata mount -o lowerdir=$dir/top:$dir/middle:$dir/base,upperdir=$dir/upper,workdir=$dir/work $mnt"
