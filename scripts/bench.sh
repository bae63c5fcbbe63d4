#!/usr/bin/env bash
# Benchmarks of strata (see bench/README.md).
#
#   scripts/bench.sh compare [--runs N] [--quick] [--systems kernel,fuse-overlayfs,strata]
#                            [--only KEYS] [--workdir DIR] [--out FILE] [--no-build]
#       strata against the kernel overlay and fuse-overlayfs on the same layer stack (root only);
#       writes bench/results/compare-DATE.md (--quick: bench/results/tmp/compare-DATE-quick.md).
#   scripts/bench.sh jmh [--no-build] [FILTER] [JMH options...]
#       the JMH benchmarks under bench/java (FILTER is a JMH regexp; default: all of them);
#       a run of all of them is kept in bench/results/jmh-DATE.txt, others in bench/results/tmp/.
#   scripts/bench.sh tree [--entries 300000|1000000|both] [--runs N] [--systems ...] [--base-home DIR] [--no-build]
#       find + stat twice over a generated tree (600 x 500 or 2,000 x 500 entries): time of each pass
#       and the daemon's memory after it, strata against fuse-overlayfs and the kernel overlay (root);
#       writes bench/results/tree-DATE.md.
#   scripts/bench.sh podman [--rounds N] [--systems ...] [--user U] [--note TEXT] [--no-build]
#       rootless podman: its kernel overlay, fuse-overlayfs and strata as mount program (as root;
#       podman runs as the user strata-bench); writes bench/results/rootless-DATE.md.
#   scripts/bench.sh datapath [--rounds N] [--systems kernel,fuse-overlayfs,strata,strata-wb,strata-pt]
#                             [--dd-mib N] [--out FILE] [--no-build]
#       the data path without FUSE passthrough (strata -o passthrough=0, as rootless users get it)
#       against fuse-overlayfs and the kernel overlay (root); writes bench/results/tmp/datapath-*.md.
set -euo pipefail
home=$(cd -P "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

usage() {
  sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
}

build() {
  # setup.sh builds (mvn package) and refreshes the class-data archive that bin/strata uses only when
  # it is newer than the jar: without it, mount-ready would be measured without the archive
  echo "[bench] building: scripts/setup.sh (mvn package + class-data archive)" >&2
  (cd "$home" && bash scripts/setup.sh >&2)
}

# root_bench NAME WHY PROGRAM... -- FIXED-ARGS... -- USER-ARGS...: the benchmarks that run one script as
# root (tree, podman, datapath): --help goes to the script, --no-build skips the build, other arguments
# follow the fixed ones
root_bench() {
  local name="$1" why="$2"; shift 2
  local prog=() fixed=() args=() no_build=0
  while [ "$1" != -- ]; do prog+=("$1"); shift; done; shift
  while [ "$1" != -- ]; do fixed+=("$1"); shift; done; shift
  for a in "$@"; do
    case "$a" in
      --no-build) no_build=1 ;;
      -h|--help) exec "${prog[@]}" --help ;;
      *) args+=("$a") ;;
    esac
  done
  if [ "$(id -u)" -ne 0 ]; then
    echo "bench: $name needs root ($why)" >&2
    exit 2
  fi
  [ $no_build -eq 1 ] || build
  exec "${prog[@]}" "${fixed[@]}" "${args[@]}"
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
# compare, tree and datapath measure one mount at a time, each strata mount with a process of its own
# (its start, its memory, found as the new /dev/fuse holder naming the mountpoint): a shared daemon
# would carry one run's JIT, heap and process into the next. bench/daemon.sh measures the hand-off to
# a running daemon; podman measures the daemon as containers use it. STRATA_DAEMON=1 overrides.
case "$cmd" in compare|tree|datapath) export STRATA_DAEMON="${STRATA_DAEMON:-0}" ;; esac
case "$cmd" in
  compare)
    args=() no_build=0
    for a in "$@"; do
      if [ "$a" = --no-build ]; then no_build=1; else args+=("$a"); fi
    done
    for a in "${args[@]}"; do
      case "$a" in -h|--help) exec python3 "$home/bench/compare.py" --help ;; esac
    done
    if [ "$(id -u)" -ne 0 ]; then
      echo "bench: compare needs root (it mounts and drops the page cache)" >&2
      exit 2
    fi
    # one comparison at a time: do not even build while another one is measuring
    workdir="${STRATA_BENCH_DIR:-/var/tmp/strata-bench}"
    for ((i = 0; i < ${#args[@]}; i++)); do
      case "${args[i]}" in
        --workdir) workdir="${args[i+1]:-$workdir}" ;;
        --workdir=*) workdir="${args[i]#--workdir=}" ;;
      esac
    done
    if [ -f "$workdir/lock" ] && ! flock -n "$workdir/lock" true; then
      echo "bench: another comparison is running in $workdir ($(cat "$workdir/lock")); wait for it to finish" >&2
      exit 1
    fi
    # measure the code as it is now; without a build, strata is skipped rather than measured stale
    if [ $no_build -eq 0 ] && ! build; then
      args+=(--strata-skip "the build failed (mvn -B -q package -DskipTests)")
    fi
    exec python3 "$home/bench/compare.py" --strata-home "$home" "${args[@]}"
    ;;
  jmh)
    filter="" jmh_build=1
    if [ "${1:-}" = --no-build ]; then jmh_build=0; shift; fi
    if [ $# -gt 0 ] && [[ $1 != -* ]]; then filter="$1"; shift; fi
    [ $jmh_build = 1 ] && build
    cd "$home"
    if [ ! -f target/test-classpath.txt ]; then
      echo "bench: target/test-classpath.txt is missing after the build" >&2
      exit 1
    fi
    if [ ! -f target/test-classes/META-INF/BenchmarkList ]; then
      echo "bench: no JMH benchmarks were compiled (bench/java has none yet?)" >&2
      exit 1
    fi
    # a full run is the latest result and goes to bench/results/; a filtered one to results/tmp/
    stamp=$(date +%Y-%m-%d)
    if [ -z "$filter" ] && [ $# -eq 0 ]; then out="bench/results/jmh-$stamp.txt"
    else mkdir -p bench/results/tmp; out="bench/results/tmp/jmh-$stamp-$(date +%H%M%S).txt"; fi
    {
      echo "# scripts/bench.sh jmh ${filter:+$filter }$*"
      echo "# $(date '+%Y-%m-%d %H:%M'); $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1));" \
           "RAM $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo); kernel $(uname -r);" \
           "$(java -version 2>&1 | sed -n 2p); strata $(git log -1 --format=%h 2>/dev/null || echo unknown)"
    } > "$out"
    # the forked benchmark JVMs inherit these options: names are bytes (see README)
    set +e
    java -Dfile.encoding=ISO-8859-1 -Dsun.jnu.encoding=ISO-8859-1 \
      -cp "target/test-classes:target/classes:$(cat target/test-classpath.txt)" \
      org.openjdk.jmh.Main ${filter:+"$filter"} "$@" 2>&1 | tee -a "$out"
    rc=${PIPESTATUS[0]}
    echo "[bench] output kept in $out" >&2
    exit "$rc"
    ;;
  tree)
    root_bench tree "it mounts and drops the page cache" python3 "$home/bench/tree.py" -- --strata-home "$home" -- "$@"
    ;;
  podman)
    root_bench podman "it prepares the benchmark user; podman itself runs as that user" bash "$home/bench/rootless.sh" -- -- "$@"
    ;;
  datapath)
    root_bench datapath "it mounts and drops the page cache" \
      unshare -m --propagation private python3 "$home/bench/datapath.py" -- --strata-home "$home" -- "$@"
    ;;
  -h|--help|help)
    usage
    ;;
  *)
    [ -n "$cmd" ] && echo "bench: unknown command '$cmd'" >&2
    usage
    exit 2
    ;;
esac
