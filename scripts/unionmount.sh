#!/usr/bin/env bash
# Runs an existing checkout of the overlayfs conformance suite unionmount-testsuite
# (https://github.com/amir73il/unionmount-testsuite, not bundled) against this copy's bin/strata,
# the way fuse-overlayfs's CI runs it: `./run --ov --fuse=strata [suite args]`. The suite mounts
# `mount -t fuse.strata strata /mnt -o lowerdir=...,upperdir=...,workdir=...`, which mount.fuse3
# hands to the program `strata` on mount(8)'s own PATH (it resets PATH to /usr/local/sbin:...:/bin):
# inside the private namespace a tmpfs over /usr/local/sbin holds links to what was there and
# `strata` -> this copy's bin/strata, so no file outside the namespace changes.
#
#   scripts/unionmount.sh PATH-TO-CHECKOUT [suite args]
#   scripts/unionmount.sh ~/unionmount-testsuite                       # every test, default mode
#   scripts/unionmount.sh ~/unionmount-testsuite --xdev rename-file    # args go to ./run after --fuse=strata
#   scripts/unionmount.sh ~/uts --ov=2 --maxfs=1                       # a first --ov[=N] replaces --ov
#   UNIONMOUNT_MNTOPTIONS=redirect_dir=on scripts/unionmount.sh ~/uts  # strata options for every mount
#
# Everything runs in a private mount namespace (unshare -m): the suite's tmpfs layers on /lower,
# /upper, /base and the union on /mnt never reach the rest of the machine, and the suite's clean-up
# (./run --clean-up) unmounts them before the namespace goes. Needs root, /dev/fuse, python3.
#
# One guard: the suite unmounts the layers' tmpfs right after the union. The kernel overlay holds
# only private clones of its layers' mounts, and strata reads its layers through detached copies
# of their mounts (layer/Detached) for the same reason; where strata cannot make those copies (no
# mount privileges) its descriptors keep a layer's tmpfs busy until the daemon has heard of the
# unmount, a few milliseconds after umount(2) returned (FUSE_DESTROY, which a server could answer
# first, goes to fuseblk mounts only). The suite's `umount` (found on its PATH) is wrapped here to
# retry "target is busy" for up to 10 s, and says on stderr when it had to; nothing else is changed.
set -euo pipefail

die() { echo "unionmount: $*" >&2; exit 2; }

[ $# -ge 1 ] || die "usage: scripts/unionmount.sh PATH-TO-CHECKOUT [suite args]"
suite=$1; shift
[ -x "$suite/run" ] || die "$suite: not a unionmount-testsuite checkout (no executable ./run)"
[ "$(id -u)" = 0 ] || die "needs root (the suite mounts tmpfs layers and the union)"
[ -c /dev/fuse ] || die "no /dev/fuse"
command -v python3 >/dev/null || die "needs python3"
command -v unshare >/dev/null || die "needs unshare (util-linux)"
[ -x /sbin/mount.fuse3 ] || [ -x /usr/sbin/mount.fuse3 ] || die "needs mount.fuse3 (package fuse3)"

here=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$here/bin/strata" ] || die "$here/bin/strata missing"
[ -f "$here/target/strata.jar" ] || die "strata is not built: run bash scripts/setup.sh"

# The suite's own mount points (left in place, empty, as the suite's CI leaves them).
mkdir -p /lower /upper /mnt /base

suite=$(cd "$suite" && pwd)
mode=--ov
case "${1:-}" in --ov|--ov=*) mode=$1; shift;; esac
# The suite's clean-up runs even when a test fails.
unshare -m --propagation private bash -c '
    set -e
    strata=$1; mode=$2; shift 2
    cd "$1"; shift
    sbin=/usr/local/sbin
    saved=$(mktemp -d /tmp/strata-unionmount.XXXXXX)
    mount --bind "$sbin" "$saved"
    mount -t tmpfs -o mode=0755 strata-unionmount "$sbin"
    for f in "$saved"/* "$saved"/.[!.]*; do [ -e "$f" ] && ln -s "$f" "$sbin/"; done
    ln -sf "$strata" "$sbin/strata"
    wrap=$(mktemp -d /tmp/strata-unionmount.XXXXXX)
    printf "%s\n" "#!/bin/sh" \
        "# retries a busy unmount: the FUSE server closes its layer descriptors after umount returns" \
        "i=0; while ! err=\$(/usr/bin/umount \"\$@\" 2>&1); do" \
        "  case \"\$err\" in *busy*) ;; *) echo \"\$err\" >&2; exit 32;; esac" \
        "  i=\$((i+1)); [ \$i -ge 1000 ] && { echo \"\$err\" >&2; exit 32; }; sleep 0.01; done" \
        "[ \$i -gt 0 ] && echo \"unionmount: umount \$* was busy, done after \$i retries\" >&2; exit 0" > "$wrap/umount"
    chmod 755 "$wrap/umount"
    export PATH="$wrap:$PATH"
    set +e
    rc=0
    ./run "$mode" --fuse=strata "$@" || rc=$?
    ./run --clean-up >/dev/null 2>&1 || true
    /usr/bin/umount "$sbin"; /usr/bin/umount "$saved"; rmdir "$saved"; rm -rf "$wrap"
    exit $rc' unionmount "$here/bin/strata" "$mode" "$suite" "$@"
