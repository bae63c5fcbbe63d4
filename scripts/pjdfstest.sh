#!/usr/bin/env bash
# Runs the pjdfstest POSIX suite (not bundled: pjd/pjdfstest on GitHub, built beforehand) on
# bin/strata and on the kernel overlay over the same kind of layers, side by side, and compares the
# failures. Builds nothing; needs root, /dev/fuse, the overlay module and `prove` (perl).
#   bash scripts/pjdfstest.sh [--jobs N] [--subdir] [--only kernel|strata] [--keep DIR] \
#        PATH-TO-CHECKOUT [MOUNT-OPTIONS] [TEST-DIR...]
# PATH-TO-CHECKOUT holds the built `pjdfstest` binary and tests/ (conf, misc.sh, */NN.t).
# MOUNT-OPTIONS (comma separated) go to strata; the kernel overlay's own options among them
# (redirect_dir, index, metacopy, xino, uuid, nfs_export, userxattr, volatile, ...) go to the
# kernel's mount as well. TEST-DIR limits the run to tests/TEST-DIR (e.g. chown rename).
# --subdir runs the tests in a merged directory that exists in the lower layer (with lower files
# in it) instead of the merged root. --only runs one side; --jobs is prove's -j (default 4: the
# tests mostly sleep); --keep DIR keeps both prove logs (every test's ok/not ok line).
# Everything is mounted inside a private mount namespace, unmounted and removed at the end,
# whatever happens. Exit status: 1 if strata failed a test the kernel overlay passed (with --only:
# if the side run failed any), 2 for a usage or setup error, else 0.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() { echo "pjdfstest: $*" >&2; exit 2; }

jobs=4 subdir=0 only="" keep=""
while [ $# -gt 0 ]; do
  case "$1" in
    --jobs) [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || die "--jobs needs a number"; jobs=$2; shift 2 ;;
    --subdir) subdir=1; shift ;;
    --only) [ $# -ge 2 ] || die "--only needs kernel or strata"; only=$2; shift 2 ;;
    --keep) [ $# -ge 2 ] || die "--keep needs a directory"; keep=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --) shift; break ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || die "usage: scripts/pjdfstest.sh [--jobs N] [--subdir] [--only kernel|strata] PATH-TO-CHECKOUT [MOUNT-OPTIONS] [TEST-DIR...]"
suite=$(cd "$1" 2>/dev/null && pwd) || die "$1: no such directory"
shift
opts=""
if [ $# -gt 0 ] && { [ -z "$1" ] || [ ! -d "$suite/tests/$1" ]; }; then opts=$1; shift; fi
case "$only" in ""|kernel|strata) ;; *) die "--only takes kernel or strata, not $only" ;; esac
[ -x "$suite/pjdfstest" ] || die "$suite/pjdfstest: not built (build it in the checkout first)"
[ -f "$suite/tests/misc.sh" ] || die "$suite/tests/misc.sh: not a pjdfstest checkout"
for d in "$@"; do [ -d "$suite/tests/$d" ] || die "$suite/tests/$d: no such test directory"; done
[ "$(id -u)" = 0 ] || die "needs root (the suite changes owners and makes devices)"
command -v prove >/dev/null || die "prove not found (Debian: apt-get install perl)"
[ -x "$here/bin/strata" ] || die "$here/bin/strata not found (run scripts/setup.sh)"
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || die "no overlay file system in this kernel"

# Into a private mount namespace once: every mount below dies with it.
if [ -z "${PJDFSTEST_NS:-}" ]; then
  PJDFSTEST_NS=1 exec unshare -m --propagation private bash "$0" --jobs "$jobs" \
    $([ $subdir = 1 ] && echo --subdir) ${only:+--only "$only"} ${keep:+--keep "$keep"} \
    -- "$suite" ${opts:+"$opts"} "$@"
fi

kernel_opts=""
IFS=, read -ra words <<< "$opts"
for w in "${words[@]}"; do
  case "${w%%=*}" in
    redirect_dir|index|metacopy|xino|uuid|nfs_export|userxattr|volatile|verity|fsync)
      kernel_opts="$kernel_opts,$w" ;;
  esac
done

base=$(mktemp -d /tmp/pjdfstest.XXXXXX) || die "mktemp failed"
chmod 755 "$base"   # the suite runs calls as uid 65534, which must reach the mount
mounted=()
cleanup() {
  for m in "${mounted[@]}"; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
  done
  if [ -n "$keep" ]; then mkdir -p "$keep" && cp "$base"/*.log "$keep"/ 2>/dev/null; fi
  rm -rf "$base"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Lower layer: a few files and directories, and the directory --subdir runs in.
make_lower() {
  local l=$1
  mkdir -p "$l/etc" "$l/usr/bin" "$l/data/sub/deeper" "$l/emptydir"
  echo hello > "$l/etc/hostname"; echo data > "$l/data/file"; echo sub > "$l/data/sub/f"
  printf '#!/bin/sh\n' > "$l/usr/bin/tool"; chmod 755 "$l/usr/bin/tool"
  ln -s ../etc/hostname "$l/data/link"; ln "$l/data/file" "$l/data/hardlink"
  chmod 755 "$l" "$l"/* "$l/data/sub" "$l/data/sub/deeper"
}

run_side() {   # side -> $base/$side.log, $base/$side.failed ("test.t N" lines)
  local side=$1 d=$base/$1 rc
  mkdir -p "$d/lower" "$d/upper" "$d/work" "$d/merged"
  chmod 755 "$d" "$d/merged"
  make_lower "$d/lower"
  local o="lowerdir=$d/lower,upperdir=$d/upper,workdir=$d/work"
  if [ "$side" = kernel ]; then
    mount -t overlay overlay -o "$o$kernel_opts" "$d/merged" || die "kernel overlay mount failed (-o $o$kernel_opts)"
  else
    STRATA_DAEMON=0 "$here/bin/strata" mount -o "$o${opts:+,$opts}" "$d/merged" || die "strata mount failed (-o $o${opts:+,$opts})"
  fi
  mounted+=("$d/merged")
  local cwd=$d/merged
  [ $subdir = 1 ] && cwd=$d/merged/data/sub
  local targets=()
  if [ $# -gt 1 ]; then for t in "${@:2}"; do targets+=("$suite/tests/$t"); done; else targets=("$suite/tests"); fi
  local t0=$SECONDS
  (cd "$cwd" && prove -v -j "$jobs" -r "${targets[@]}") > "$base/$side.log" 2>&1
  rc=$?
  echo "$side: prove exit $rc in $((SECONDS - t0)) s" >&2
  # "Failed tests:  3, 7-9" under each failed script's line, in prove's summary.
  awk '
    /^\/.*\.t +\(Wstat/ { f=$1; sub(".*/tests/", "", f); next }
    f && /Failed tests?:/ { sub(/.*Failed tests?: */, ""); n=split($0, a, /, */)
      for (i = 1; i <= n; i++) { if (split(a[i], r, "-") == 2) { for (j = r[1]; j <= r[2]; j++) print f, j } else print f, a[i] } ; next }
    f && /Parse errors|Non-zero/ { print f, "(" $0 ")" ; next }
    /^[^ ]/ { f="" }' "$base/$side.log" | sed 's/  */ /g' | sort -u > "$base/$side.failed"
  umount "$d/merged" || umount -l "$d/merged"
  mounted=()
}

summary() {   # side -> "files tests failed-tests"
  local log=$base/$1.log
  local files tests
  files=$(grep -Eo '^Files=[0-9]+' "$log" | cut -d= -f2)
  tests=$(grep -Eo 'Tests=[0-9]+' "$log" | cut -d= -f2)
  echo "${files:-?} ${tests:-?} $(wc -l < "$base/$1.failed")"
}

sides=(kernel strata)
[ -n "$only" ] && sides=("$only")
for s in "${sides[@]}"; do run_side "$s" "$@"; done

echo
echo "pjdfstest: ${opts:-default options}$([ $subdir = 1 ] && echo ', in a lower directory')"
printf '%-8s %6s %7s %7s\n' side files tests failed
for s in "${sides[@]}"; do
  read -r f t n <<< "$(summary "$s")"
  printf '%-8s %6s %7s %7s\n' "$s" "$f" "$t" "$n"
done
status=0
if [ ${#sides[@]} = 2 ]; then
  only_strata=$(comm -13 "$base/kernel.failed" "$base/strata.failed")
  only_kernel=$(comm -23 "$base/kernel.failed" "$base/strata.failed")
  both=$(comm -12 "$base/kernel.failed" "$base/strata.failed")
  [ -n "$both" ] && { echo "failed on both (the kernel's behaviour is the spec):"; echo "$both" | sed 's/^/  /'; }
  [ -n "$only_kernel" ] && { echo "failed on the kernel overlay only:"; echo "$only_kernel" | sed 's/^/  /'; }
  if [ -n "$only_strata" ]; then
    echo "FAILED on strata only:"; echo "$only_strata" | sed 's/^/  /'
    grep -E '^not ok' "$base/strata.log" | grep -v '# TODO' | head -40 | cut -c1-200 | sed 's/^/  strata: /'
    status=1
  else
    echo "strata fails nothing the kernel overlay passes"
  fi
else
  sed 's/^/  failed: /' "$base/$only.failed"
  [ -s "$base/$only.failed" ] && status=1
fi
exit $status
