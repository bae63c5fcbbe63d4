#!/bin/bash
# Small copy-ups through a mount, interleaved (issue 14): the kernel overlay, fuse-overlayfs and strata
# with -o passthrough=0 (and optionally a second strata build) on the same lower layer, as root.
#
#   bash bench/copyup/run.sh [--rounds N] [--systems kernel,fuse-overlayfs,strata] [--base HOME]
#                            [--opts EXTRA] [--workdir DIR] [--warm N] [--scratch-fs] [--user USER]
#
# The lower layer (built once in WORKDIR/lower): a/ and b/, 300 .py files (< 64 KiB) of /usr/lib/python3.11 each.
# Each round mounts every system on a fresh upper (order rotated per round), runs append-loop over a/
# (warm-up: a new strata daemon is still compiling) and over b/ (measured): open(O_WRONLY|O_APPEND),
# write, close per file, one copy-up each. Prints every run and the medians of b/ per system.
# --warm N warms up over WORKDIR/lower/w-N (N files, built once) instead of a/: strata with a process of
# its own per mount still compiles (C1) during b/ after a/'s 300 copy-ups (a third of its samples).
# Each run's upper and work directories are made in a directory of their own, spread over the file
# system's block groups (chattr +T on their parent: ext4's Orlov placement for top-level directories),
# and kept until the end: on an ext4 without a journal (as / here), inodes freed in the last seconds to
# minutes are skipped one by one at each allocation in their group (recently_deleted()), which made an
# O_TMPFILE in a directory near the last run's deleted files cost ~90 us instead of ~3, for every system.
# Still, other processes free inodes too, and which group a run lands in varies: --scratch-fs puts each
# run's upper and work directories on a new ext4 of their own (mkfs, with a journal, on a loop device
# whose file is in WORKDIR), the same start for every system.
# --base HOME adds 'strata-base', the strata of another checkout (an A/B run); --opts adds mount options
# to every system (e.g. fsync=0 for strata, volatile for the kernel: give them per system in the code).
# --user USER mounts and runs the loops rootless, as rootless podman's mount program does: as USER in a
# user namespace of its own (unshare -Ur, USER mapped to root), no passthrough for anyone, the kernel
# overlay with userxattr; the lower layer is copied once to WORKDIR/lower-USER owned by USER (the image's
# files are the user's in its namespace), and each run's directories are USER's. USER needs /dev/fuse
# (native-tests/podman/rootless-user.sh sets it up).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
home="$(cd "$here/../.." && pwd)"
rounds=5 systems="kernel,fuse-overlayfs,strata" base="" work=/var/tmp/strata-bench/copyup extra="" warm="" scratch=0 user=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --systems) systems="$2"; shift 2 ;;
    --base) base="$2"; shift 2 ;;
    --opts) extra="$2"; shift 2 ;;
    --workdir) work="$2"; shift 2 ;;
    --warm) warm="$2"; shift 2 ;;
    --scratch-fs) scratch=1; shift ;;
    --user) user="$2"; shift 2 ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "run.sh: needs root (it mounts)" >&2; exit 1; }
if [ -z "${COPYUP_BENCH_NS:-}" ]; then
  COPYUP_BENCH_NS=1 exec unshare -m --propagation private bash "$0" --rounds "$rounds" --systems "$systems" \
    ${base:+--base "$base"} ${extra:+--opts "$extra"} --workdir "$work" ${warm:+--warm "$warm"} \
    $([ "$scratch" = 1 ] && echo --scratch-fs) ${user:+--user "$user"}
fi
if [ -n "$user" ]; then
  id -u "$user" >/dev/null 2>&1 || { echo "run.sh: no user $user (native-tests/podman/rootless-user.sh USER makes one)" >&2; exit 1; }
  command -v setpriv >/dev/null || { echo "run.sh: --user needs setpriv (util-linux)" >&2; exit 1; }
fi
[ -n "$base" ] && case ",$systems," in *,strata-base,*) ;; *) systems="$systems,strata-base" ;; esac
mkdir -p "$work"
gcc -O2 -o "$work/append-loop" "$here/append-loop.c"
if [ ! -e "$work/lower/ready" ]; then
  rm -rf "$work/lower"; mkdir -p "$work/lower/a" "$work/lower/b"
  i=0
  while read -r f; do
    d=a; [ $i -ge 300 ] && d=b
    cp "$f" "$work/lower/$d/$(printf %03d $i)-$(basename "$f")"; i=$((i + 1))
  done < <(find /usr/lib/python3.11 -name '*.py' -size -64k | sort | head -600)
  touch "$work/lower/ready"
fi
lower="$work/lower"
if [ -n "$user" ]; then
  lower="$work/lower-$user"
  if [ ! -e "$lower/ready" ]; then
    rm -rf "$lower" && cp -a "$work/lower" "$lower" && chown -R "$user:" "$lower" && chmod 755 "$work"
  fi
fi
wdir=a
if [ -n "$warm" ]; then
  wdir="w-$warm"
  if [ ! -d "$lower/$wdir" ]; then
    mkdir -p "$lower/$wdir.tmp"; i=0
    while [ $i -lt "$warm" ]; do
      for f in "$lower"/a/*; do
        [ $i -lt "$warm" ] || break
        cp -p "$f" "$lower/$wdir.tmp/$i-$(basename "$f")"; i=$((i + 1))
      done
    done
    mv "$lower/$wdir.tmp" "$lower/$wdir"
  fi
fi
mnt="$work/mnt"; mkdir -p "$mnt"
runs="$work/runs.$$"; mkdir -p "$runs"; chattr +T "$runs" 2>/dev/null || true
trap 'umount "$mnt" 2>/dev/null || true; umount "$runs"/*/ 2>/dev/null || true; rm -rf "$runs"' EXIT
IFS=, read -r -a sys <<<"$systems"
results="$work/results.txt"; : >"$results"
echo "date $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg) strata $(git -C "$home" rev-parse --short HEAD 2>/dev/null || echo "$home")"
for ((r = 0; r < rounds; r++)); do
  for ((j = 0; j < ${#sys[@]}; j++)); do
    s="${sys[$(((j + r) % ${#sys[@]}))]}"
    d="$runs/$r-$j"; mkdir -p "$d"
    if [ "$scratch" = 1 ]; then
      truncate -s 1G "$d.img" && mkfs.ext4 -q "$d.img" && mount -o loop "$d.img" "$d"
    fi
    mkdir -p "$d/upper" "$d/wd"
    o="lowerdir=$lower,upperdir=$d/upper,workdir=$d/wd${extra:+,$extra}"
    case "$s" in
      kernel) m=(mount -t overlay overlay -o "$o${user:+,userxattr}" "$mnt") ;;
      fuse-overlayfs) m=(fuse-overlayfs -o "$o" "$mnt") ;;
      strata) m=(env STRATA_DAEMON=0 "$home/bin/strata" mount -o "$o,passthrough=0" "$mnt") ;;
      strata-base) m=(env STRATA_DAEMON=0 "$base/bin/strata" mount -o "$o,passthrough=0" "$mnt") ;;
      *) echo "run.sh: unknown system $s" >&2; exit 2 ;;
    esac
    one='set -e; "${@:4}"; "$1/append-loop" "$2/$3" >/dev/null; "$1/append-loop" "$2/b"; umount "$2"'
    if [ -z "$user" ]; then
      line="$(bash -c "$one" run "$work" "$mnt" "$wdir" "${m[@]}")"
      while grep -q " $mnt " /proc/mounts; do sleep 0.1; done
    else
      # the mount lives and ends in the user's own namespaces; its daemon goes with its unmount
      chown -R "$user:" "$d"
      line="$(XDG_RUNTIME_DIR="$d" setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups \
        unshare -Urm --propagation private bash -c "$one" run "$work" "$mnt" "$wdir" "${m[@]}")"
    fi
    if [ "$scratch" = 1 ]; then
      # the daemon of a mount of its own lets go of the upper and work directories as it ends
      for _ in $(seq 100); do umount "$d" 2>/dev/null && break; sleep 0.1; done
      rm -f "$d.img"
    fi
    echo "round $r $s $line" | tee -a "$results"
  done
done
echo "load after $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$results" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    w = line.split()
    kv = dict(zip(w[3::2], w[4::2]))
    rows.setdefault(w[2], []).append(kv)
print("%-16s %6s %12s %14s %14s" % ("system", "runs", "b/ total s", "open p50 us", "open p90 us"))
for s, rs in rows.items():
    med = lambda k: statistics.median(float(x[k]) for x in rs)
    print("%-16s %6d %12.4f %14.1f %14.1f" % (s, len(rs), med("total_s"), med("open_p50"), med("open_p90")))
EOF
