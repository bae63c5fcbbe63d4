#!/usr/bin/env bash
# Builds the bundled example: three small image-like layers in DIR (default: ./example).
#   base/    a tiny root file system
#   middle/  changes it: overrides etc/motd, deletes docs/old.txt (whiteout),
#            replaces app/data/ by an opaque directory
#   top/     overrides app/config.ini
# Whiteouts are 0/0 character devices and opaque dirs carry trusted.overlay.opaque=y (the kernel
# format) when run as root; otherwise the OCI forms .wh.NAME and .wh..wh..opq are used.
set -euo pipefail
dir=${1:-example}
rm -rf "$dir"
mkdir -p "$dir"/{base,middle,top,upper,work,merged}
b=$dir/base m=$dir/middle t=$dir/top

mkdir -p "$b"/{etc,app/data,docs,bin}
echo "Welcome to the base layer" > "$b/etc/motd"
echo "NAME=strata-example" > "$b/etc/os-release"
printf '[app]\nmode=base\n' > "$b/app/config.ini"
echo "row 1 from base" > "$b/app/data/rows.csv"
echo "cache from base" > "$b/app/data/cache.bin"
echo "this file is deleted by the middle layer" > "$b/docs/old.txt"
echo "still here" > "$b/docs/README"
printf '#!/bin/sh\necho hello from the example\n' > "$b/bin/hello" && chmod 755 "$b/bin/hello"
ln -s ../etc/motd "$b/docs/motd-link"

mkdir -p "$m"/{etc,docs,app/data}
echo "Welcome to the middle layer (overrides base)" > "$m/etc/motd"
echo "rows rewritten in the middle layer" > "$m/app/data/rows.csv"
if [ "$(id -u)" = 0 ] && mknod "$m/docs/old.txt" c 0 0 2>/dev/null && \
   setfattr -n trusted.overlay.opaque -v y "$m/app/data" 2>/dev/null; then
  :
else
  rm -f "$m/docs/old.txt"
  : > "$m/docs/.wh.old.txt"
  : > "$m/app/data/.wh..wh..opq"
fi

mkdir -p "$t/app"
printf '[app]\nmode=top\n' > "$t/app/config.ini"
echo "example layers in $dir: top=$t middle=$m base=$b upper=$dir/upper work=$dir/work mountpoint=$dir/merged"
