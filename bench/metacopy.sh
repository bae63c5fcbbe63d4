#!/bin/bash
# metacopy: chown -R and chmod -R of a large lower tree, the time each takes and how much the upper
# grew by (du -sk), for the kernel overlay with and without metacopy=on, fuse-overlayfs, and strata
# with and without metacopy=on. Root only.
#
#   sudo bash bench/metacopy.sh [--runs N] [--src DIR] [--workdir DIR] [--out FILE]
#
# The lower layer is a copy of --src (default /usr/lib/python3.11 and /usr/share/locale, real files
# of real sizes), made once in WORKDIR/metacopy-lower. Each run mounts every system in turn
# (interleaved, so a busy moment hits all alike) on a fresh upper, drops the page cache, times
# `chown -R 4321:4321 MNT/tree` then `chmod -R g+w MNT/tree`, and reads `du -sk` of the upper after each.
# Medians over the runs go to bench/results/metacopy-DATE.md, every run listed too.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); REPO=$(dirname "$HERE")
RUNS=3; WORK=${STRATA_BENCH_DIR:-/var/tmp/strata-bench}; OUT=""; SRC=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2;;
    --workdir) WORK=$2; shift 2;;
    --out) OUT=$2; shift 2;;
    --src) SRC+=("$2"); shift 2;;
    *) echo "metacopy.sh: unknown argument $1" >&2; exit 2;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "metacopy.sh: needs root" >&2; exit 1; }
[ ${#SRC[@]} -gt 0 ] || SRC=(/usr/lib/python3.11 /usr/share/locale)
[ -n "$OUT" ] || OUT="$REPO/bench/results/metacopy-$(date -u +%F).md"
export STRATA_DAEMON_DIR=${STRATA_DAEMON_DIR:-/tmp/strata-daemon-bench-metacopy}; mkdir -p -m 700 "$STRATA_DAEMON_DIR"
export STRATA_DAEMON=0

LOWER="$WORK/metacopy-lower"
if [ ! -e "$LOWER/.complete" ]; then
  rm -rf "$LOWER"; mkdir -p "$LOWER/tree"
  for s in "${SRC[@]}"; do cp -a "$s" "$LOWER/tree/"; done
  sync; touch "$LOWER/.complete"
fi
files=$(find "$LOWER/tree" -type f | wc -l); entries=$(find "$LOWER/tree" | wc -l); lowerkb=$(du -sk "$LOWER/tree" | cut -f1)

SYSTEMS="kernel kernel-mc fuse-overlayfs strata strata-mc"
command -v fuse-overlayfs >/dev/null || SYSTEMS=${SYSTEMS/fuse-overlayfs /}
declare -A RES
mountit() { # system upper work mnt
  local o="lowerdir=$LOWER,upperdir=$2,workdir=$3"
  case "$1" in
    kernel) mount -t overlay overlay -o "$o,redirect_dir=off,index=off,metacopy=off" "$4";;
    kernel-mc) mount -t overlay overlay -o "$o,index=off,metacopy=on" "$4";;
    fuse-overlayfs) fuse-overlayfs -o "$o" "$4";;
    strata) "$REPO/bin/strata" mount -o "$o" "$4";;
    strata-mc) "$REPO/bin/strata" mount -o "$o,metacopy=on" "$4";;
  esac
}
now() { date +%s.%N; }
for run in $(seq 1 "$RUNS"); do
  for s in $SYSTEMS; do
    d="$WORK/metacopy-run"; rm -rf "$d"; mkdir -p "$d/u" "$d/w" "$d/m"
    unshare -m --propagation private bash -c "
      set -e
      $(declare -f mountit now); LOWER='$LOWER'; REPO='$REPO'
      mountit $s $d/u $d/w $d/m
      trap 'umount $d/m 2>/dev/null || fusermount3 -u $d/m 2>/dev/null || true' EXIT
      sync; echo 3 > /proc/sys/vm/drop_caches
      t0=\$(now); chown -R 4321:4321 $d/m/tree; t1=\$(now); du1=\$(du -sk $d/u | cut -f1)
      t2=\$(now); chmod -R g+w $d/m/tree; t3=\$(now); du2=\$(du -sk $d/u | cut -f1)
      echo \"\$(echo \"\$t1 - \$t0\" | bc) \$du1 \$(echo \"\$t3 - \$t2\" | bc) \$du2\"
    " > "$d/result" 2> "$d/err" || { echo "$s: failed: $(tail -2 "$d/err")" >&2; RES[$s,$run]="failed"; continue; }
    RES[$s,$run]=$(tail -1 "$d/result")
    echo "[bench] run $run $s: chown s, upper KiB, chmod s, upper KiB = ${RES[$s,$run]}" >&2
  done
done
rm -rf "$WORK/metacopy-run"

median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "-"; else if (NR % 2) printf "%.3f\n", a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }
{
  echo "# metacopy: chown -R and chmod -R of a lower tree ($(date -u +%F))"
  echo
  echo "Lower: copies of ${SRC[*]}: $entries entries, $files files, $((lowerkb / 1024)) MiB; one lower layer, fresh upper each run,"
  echo "page cache dropped before \`chown -R 4321:4321\`, then \`chmod -R g+w\` on the same mount. Medians of $RUNS runs"
  echo "(systems interleaved). Upper: \`du -sk\` of the upper after each step. Kernel $(uname -r), $(nproc) CPUs,"
  echo "strata $(git -C "$REPO" rev-parse --short HEAD)."
  echo
  echo "| system | chown -R (s) | upper after chown (MiB) | chmod -R (s) | upper after chmod (MiB) |"
  echo "|---|---|---|---|---|"
  for s in $SYSTEMS; do
    c=(); u1=(); m=(); u2=()
    for run in $(seq 1 "$RUNS"); do
      v=${RES[$s,$run]}; [ "$v" = failed ] && continue
      set -- $v; c+=("$1"); u1+=("$2"); m+=("$3"); u2+=("$4")
    done
    mc=$(printf '%s\n' "${c[@]}" | median); mm=$(printf '%s\n' "${m[@]}" | median)
    mu1=$(printf '%s\n' "${u1[@]}" | median); mu2=$(printf '%s\n' "${u2[@]}" | median)
    printf '| %s | %s | %s | %s | %s |\n' "$s" "$mc" "$(awk "BEGIN{printf \"%.1f\", $mu1/1024}")" "$mm" "$(awk "BEGIN{printf \"%.1f\", $mu2/1024}")"
  done
  echo
  echo "Every run (chown s, upper KiB, chmod s, upper KiB):"
  echo
  for s in $SYSTEMS; do for run in $(seq 1 "$RUNS"); do echo "- $s run $run: ${RES[$s,$run]}"; done; done
} > "$OUT"
cat "$OUT"
