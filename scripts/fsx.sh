#!/usr/bin/env bash
# Runs the file system exercisers kernel developers use, xfstests' fsx and fsstress (ltp/fsx.c and
# ltp/fsstress.c, not bundled: build them yourself and point this script at the directory holding the
# two binaries), against bin/strata mounts and against the kernel overlay on identical layers, and
# prints a table. As root (it mounts), in a private mount namespace of its own; everything it mounted is
# unmounted and its temporary directory removed, also when interrupted.
#
#   scripts/fsx.sh [--quick] [--ops N] [--seeds "1 2 3"] [--stress-ops N] [--keep] FSX-BUILD-DIR
#
# fsx: on each configuration (strata's defaults, passthrough=0, transport=libfuse, writeback=on,
# redirect_dir=on,index=on,metacopy=on; the kernel overlay with the defaults and with those features),
# on a new file, on lower files (copied up by fsx's first open: a 300,000-byte one and a 6 MiB one,
# the latter also after a chmod, a metadata-only copy-up with metacopy=on), with O_DIRECT (-Z, aligned)
# on a new file and on a lower one, on one name of a lower hard-linked file while another process reads
# the other name, and while another process reads the same file through a descriptor it opened before
# the copy-up (that descriptor must then read what a new open reads). Each run: -N ops for each seed,
# with collapse/insert range off on both sides (-C -I: FUSE cannot do them, the kernel overlay can),
# so both sides run the same operations; clone/dedupe/exchange range are off on both (ext4 has none).
# fsstress: -p 4 -n N in a merged directory over two lower trees (made by fsstress itself: files,
# directories, hard links, symlinks, xattrs, whiteout-like devices), with -v; every process's log of
# operations and their errno is compared with the kernel overlay's for the same seed (the lines of
# FIEMAP, dedupe and collapse/insert, which FUSE lacks, are off on both; on the libfuse transport also
# renameat2 flags and hard links, on writeback=on hard links: see README, "Transports"). Then: no EIO,
# ENOTCONN, ESTALE or EMFILE, the mount still answers, the unmount succeeds, the tree (listing and
# checksums) is the kernel overlay's, and the kernel overlay mounted on strata's upper and workdir
# shows the same listing and checksums strata showed.
set -u -o pipefail

usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
quick=0 ops=20000 seeds="1 2 3" sops=2000 keep=0 build=""
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1 ;;
    --ops) ops=${2:?}; shift ;;
    --seeds) seeds=${2:?}; shift ;;
    --stress-ops) sops=${2:?}; shift ;;
    --keep) keep=1 ;;
    -h|--help) usage ;;
    -*) echo "fsx.sh: unknown option $1" >&2; exit 2 ;;
    *) build=$1 ;;
  esac
  shift
done
[ -n "$build" ] || usage
if [ "$quick" = 1 ]; then ops=5000; seeds=${seeds%% *}; sops=1000; fi
build=$(cd "$build" 2>/dev/null && pwd) || { echo "fsx.sh: no directory $1" >&2; exit 2; }
FSX=$build/fsx FSS=$build/fsstress
[ -x "$FSX" ] || [ -x "$FSS" ] || { echo "fsx.sh: neither $build/fsx nor $build/fsstress is an executable" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "fsx.sh: must run as root (it mounts strata with mount(2) and the kernel overlay)" >&2; exit 2; }
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || { echo "fsx.sh: the kernel has no overlay file system (the reference)" >&2; exit 2; }
home=$(cd "$(dirname "$0")/.." && pwd)
STRATA=$home/bin/strata
[ -f "$home/target/strata.jar" ] || { echo "fsx.sh: strata is not built: run mvn -B -q package -DskipTests && bash scripts/setup.sh in $home" >&2; exit 2; }
command -v python3 > /dev/null || { echo "fsx.sh: needs python3 (the concurrent reader)" >&2; exit 2; }

if [ "${FSX_SH_UNSHARED:-}" != 1 ]; then
  export FSX_SH_UNSHARED=1
  exec unshare -m --propagation private "$0" --ops "$ops" --seeds "$seeds" --stress-ops "$sops" $([ $keep = 1 ] && echo --keep) "$build"
fi

TMP=$(mktemp -d /tmp/strata-fsx.XXXXXX)
mounted=()
cleanup() {
  local m
  for m in "${mounted[@]}"; do
    if grep -q " $m fuse" /proc/mounts; then "$STRATA" umount "$m" > /dev/null 2>&1 || umount -l "$m" 2> /dev/null
    elif grep -q " $m " /proc/mounts; then umount "$m" 2> /dev/null || umount -l "$m" 2> /dev/null; fi
  done
  [ $keep = 1 ] && echo "kept $TMP" >&2 || rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# mount_it KIND OPTS LAYERS-DIR MNT: KIND strata|kernel; LAYERS-DIR has l1 l2 u w
mount_it() {
  local kind=$1 opts=$2 d=$3 m=$4 o
  o="lowerdir=$d/l1:$d/l2,upperdir=$d/u,workdir=$d/w${opts:+,$opts}"
  mkdir -p "$m"
  mounted+=("$m")
  if [ "$kind" = kernel ]; then mount -t overlay overlay -o "$o" "$m"
  else "$STRATA" mount --log "$d/strata.log" -o "$o" "$m"; fi
}
unmount_it() {
  local kind=$1 m=$2
  if [ "$kind" = kernel ]; then umount "$m"; else "$STRATA" umount "$m"; fi
}
# the kernel's options for a strata configuration (the features; the rest are strata's own)
kernel_opts() { case $1 in *metacopy=on*|*index=on*|*redirect_dir=on*) echo "redirect_dir=on,index=on,metacopy=on" ;; esac; }

CONFIGS=("" "passthrough=0" "transport=libfuse" "writeback=on" "redirect_dir=on,index=on,metacopy=on")
rows=()
fail=0

# ------------------------------------------------------------------ fsx
fsx_layers() { # fresh layers for one run
  local d=$1
  rm -rf "$d"; mkdir -p "$d/l1" "$d/l2" "$d/u" "$d/w"
  head -c 300000 /dev/urandom > "$d/l2/small"
  head -c $((6 * 1024 * 1024 + 123)) /dev/urandom > "$d/l2/big"
  ln "$d/l2/big" "$d/l2/big2"
  head -c $((6 * 1024 * 1024)) /dev/urandom > "$d/l2/aligned"
}
# fsx_run KIND OPTS CASE SEED -> prints "ok", or "FAIL(rc) first line" ; leaves output in $d/out
fsx_run() {
  local kind=$1 opts=$2 case=$3 seed=$4 d=$TMP/fsx m args rp="" rc res extra=""
  m=$d/m
  fsx_layers "$d"
  mount_it "$kind" "$opts" "$d" "$m" > "$d/mount.err" 2>&1 || { echo "MOUNT FAILED: $(head -1 "$d/mount.err")"; return; }
  case $case in
    new) args="./newfile" ;;
    lower-small) args="-k ./small" ;;
    lower-6MiB) args="-k -o 262144 ./big" ;;
    lower-6MiB-chmod) chmod 600 "$m/big"; args="-k -o 262144 ./big" ;;
    direct-new) args="-Z -R -W -r 4096 -w 4096 -t 4096 ./newfile" ;;
    direct-lower) args="-k -Z -R -W -r 4096 -w 4096 -t 4096 -o 262144 ./aligned" ;;
    hardlink-reader|reader)
      local target=big; [ $case = hardlink-reader ] && target=big2
      python3 - "$m/$target" "$d/stop" > "$d/reader" 2>&1 <<'EOF' &
import hashlib, os, sys
path, stop = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_RDONLY)
open(stop + '.ready', 'w').close()
def whole(fd):
    size, out, off = os.fstat(fd).st_size, bytearray(), 0
    while off < size:
        b = os.pread(fd, min(1 << 20, size - off), off)
        if not b:
            break
        out += b
        off += len(b)
    return bytes(out)
errors = 0
while not os.path.exists(stop):
    try:
        whole(fd)
    except OSError as e:
        errors += 1
        print('read error:', e)
held = hashlib.md5(whole(fd)).hexdigest()
fresh = hashlib.md5(whole(os.open(path, os.O_RDONLY))).hexdigest()
print('errors=%d %s' % (errors, 'same' if held == fresh else 'held descriptor reads other data than a new open'))
EOF
      rp=$!
      while [ ! -e "$d/stop.ready" ] && kill -0 $rp 2> /dev/null; do sleep 0.05; done
      args="-k -o 262144 ./big" ;;
  esac
  # the libfuse transport has no copy_file_range: the kernel copies through reads and writes, which
  # strata serves without O_DIRECT's alignment rules (README, "Not there yet"), so fsx -Z's probe
  # copy_file_range(fd, 0, fd, 1, 1) of an existing file would change it: none there (-E)
  case $opts,$case in *transport=libfuse*,direct-*) args="-E $args" ;; esac
  (cd "$m" && timeout 1800 "$FSX" -C -I -N "$ops" -S "$seed" -P "$d" $args > "$d/out" 2>&1); rc=$?
  if [ -n "$rp" ]; then
    touch "$d/stop"; wait $rp
    local r; r=$(tr '\n' ' ' < "$d/reader")
    case $r in "errors=0 same "*) ;; *) extra=" reader: $r" ;; esac
    # the other name of the hard link: one file with index=on, a copy broken by the copy-up without
    if [ $case = hardlink-reader ]; then
      if cmp -s "$m/big" "$m/big2"; then extra="$extra [names: one file]"; else extra="$extra [names: two files]"; fi
    fi
  fi
  if ! stat "$m" > /dev/null 2>&1; then extra="$extra MOUNT DEAD"; fi
  unmount_it "$kind" "$m" 2> "$d/umount.err" || extra="$extra UNMOUNT FAILED: $(head -1 "$d/umount.err")"
  if [ $rc = 0 ] && grep -q 'A-OK' "$d/out"; then res="ok"; else res="FAIL(rc=$rc) $(grep -m1 -E 'BAD|error|Size|short|fsx:' "$d/out")"; fi
  echo "$res$extra"
}

if [ -x "$FSX" ]; then
  cases="new lower-small lower-6MiB lower-6MiB-chmod direct-new direct-lower hardlink-reader reader"
  for cfg in "${CONFIGS[@]}" "kernel" "kernel:redirect_dir=on,index=on,metacopy=on"; do
    kind=strata opts=$cfg
    case $cfg in kernel) kind=kernel opts="" ;; kernel:*) kind=kernel opts=${cfg#kernel:} ;; esac
    for case in $cases; do
      results=() ok=0 n=0 notes=""
      for seed in $seeds; do
        r=$(fsx_run "$kind" "$opts" "$case" "$seed")
        n=$((n + 1))
        case $r in ok|"ok "*) ok=$((ok + 1)); notes=${r#ok} ;; *) notes="$notes seed $seed: $r;"; [ $kind = strata ] && fail=1 ;; esac
      done
      label=${cfg:-defaults}; [ $kind = kernel ] && label="KERNEL ${opts:-defaults}"
      printf 'fsx       %-40s %-18s seeds %-8s %d/%d A-OK%s\n' "$label" "$case" "${seeds// /,}" $ok $n "$notes"
    done
  done
fi

# ------------------------------------------------------------------ fsstress
stress_layers() {
  local d=$1 seed=$2
  rm -rf "$d"; mkdir -p "$d/l1" "$d/l2" "$d/u" "$d/w"
  "$FSS" -d "$d/l2" -p 4 -n 1500 -s $((seed + 1000)) > /dev/null 2>&1
  "$FSS" -d "$d/l1" -p 4 -n 300 -s $((seed + 2000)) > /dev/null 2>&1
  rm -f "$d"/l1/fss* "$d"/l2/fss*
}
# the op log with what legitimately differs taken out: st_blocks (copy-up fills holes differently),
# the flags GETFLAGS leaves unset when it fails, listxattr's sizes (the kernel overlay's size query
# counts the overlay's hidden xattrs)
norm_log() {
  sed -e 's/\[-1 \([0-9]*\) \([0-9]*\) \([0-9]*\) [0-9]* \([0-9]*\)\]/[\1 \2 \3 \4]/g' \
      -e 's/\(: getattr .*\) [0-9]* -1$/\1 ? -1/' -e 's/\(: listfattr [^ ]*\) .*/\1/' "$1"
}
walk() { # listing and checksums of a mounted tree (find fails on the kernel overlay's listed whiteouts: go on)
  cd "$1" || return
  find . -printf '%y %m %u %g %s %n %p -> %l\n' 2> /dev/null | LC_ALL=C sort
  find . -type f -print0 2> /dev/null | LC_ALL=C sort -z | xargs -0 -r md5sum
  cd - > /dev/null
}
# stress_run KIND OPTS SEED MASK OUT: runs fsstress, leaves logs in OUT; prints notes
stress_run() {
  local kind=$1 opts=$2 seed=$3 mask=$4 out=$5 d=$TMP/stress m notes=""
  m=$d/m
  stress_layers "$d" "$seed"
  mount_it "$kind" "$opts" "$d" "$m" > "$d/mount.err" 2>&1 || { echo "MOUNT FAILED: $(head -1 "$d/mount.err")"; return; }
  rm -rf "$out"; mkdir -p "$out"
  timeout 1800 "$FSS" $mask -d "$m" -p 4 -n "$sops" -s "$seed" -v -V -o "$out/log" > "$out/stdout" 2>&1 || notes="$notes fsstress exit $?;"
  stat "$m" > /dev/null 2>&1 || notes="$notes MOUNT DEAD;"
  walk "$m" > "$out/walk"
  unmount_it "$kind" "$m" 2> "$d/umount.err" || notes="$notes UNMOUNT FAILED: $(head -1 "$d/umount.err");"
  if [ "$kind" = strata ]; then
    # strata's upper and workdir read back by the kernel overlay
    local ko; ko=$(kernel_opts "$opts")
    if mount_it kernel "$ko" "$d" "$d/k" > "$d/kmount.err" 2>&1; then
      walk "$d/k" > "$out/kwalk"
      umount "$d/k"
      cmp -s "$out/walk" "$out/kwalk" || notes="$notes kernel reads the upper DIFFERENTLY ($(diff "$out/walk" "$out/kwalk" | grep -c '^[<>]') lines);"
    else
      notes="$notes the kernel cannot mount the upper: $(head -1 "$d/kmount.err");"
    fi
    grep -q -i 'error\|exception' "$d/strata.log" 2> /dev/null && notes="$notes daemon log: $(grep -m1 -i 'error\|exception' "$d/strata.log");"
  fi
  echo "$notes"
}

if [ -x "$FSS" ]; then
  base="-f fiemap=0 -f deduperange=0 -f insert=0 -f collapse=0"
  for cfg in "${CONFIGS[@]}"; do
    mask=$base
    case $cfg in
      transport=libfuse) cfg="transport=libfuse,attr_timeout=0"; mask="$mask -f rnoreplace=0 -f rexchange=0 -f rwhiteout=0 -f link=0" ;;
      writeback=on) mask="$mask -f link=0" ;;
    esac
    ko=$(kernel_opts "$cfg")
    diffs=0 bad=0 notes="" ops_total=0
    for seed in $seeds; do
      ref=$TMP/ref.$seed.$(echo "$mask $ko" | md5sum | cut -c1-8)
      [ -d "$ref" ] || stress_run kernel "$ko" "$seed" "$mask" "$ref" > "$ref.notes"
      n=$(stress_run strata "$cfg" "$seed" "$mask" "$TMP/out")
      [ -n "$n" ] && notes="$notes seed $seed:$n"
      # the same operations with the same results leave the same tree
      cmp -s "$ref/walk" "$TMP/out/walk" || notes="$notes seed $seed: the tree differs from the kernel overlay's ($(diff "$ref/walk" "$TMP/out/walk" | grep -c '^[<>]') lines);"
      for i in $(seq 0 3); do
        [ -f "$TMP/out/log.$i" ] || { notes="$notes seed $seed: no log of process $i;"; continue; }
        ops_total=$((ops_total + $(grep -c '^[0-9]*/[0-9]*:' "$TMP/out/log.$i")))
        k=$(diff <(norm_log "$ref/log.$i") <(norm_log "$TMP/out/log.$i") | grep -c '^>')
        diffs=$((diffs + k))
        [ "$k" = 0 ] || notes="$notes seed $seed process $i, first difference: $(diff <(norm_log "$ref/log.$i") <(norm_log "$TMP/out/log.$i") | grep '^[<>]' | head -2 | tr '\n' ' ');"
        e=$(grep -c -E ' (5|107|116|24)$|error (5|107|116|24)$' "$TMP/out/log.$i")
        bad=$((bad + e))
      done
    done
    [ $diffs = 0 ] && [ $bad = 0 ] && [ -z "$notes" ] || fail=1
    printf 'fsstress  %-40s -p 4 -n %-6s seeds %-8s %d logged ops, %d differ from the kernel overlay, %d EIO/ENOTCONN/ESTALE/EMFILE%s\n' \
      "${cfg:-defaults}" "$sops" "${seeds// /,}" $ops_total $diffs $bad "${notes:+;$notes}"
  done
fi
exit $fail
