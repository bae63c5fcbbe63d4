#!/usr/bin/env bash
# Runs every test: the engine's unit tests and, as root with /dev/fuse and the overlay module, the
# native tests that mount strata and the kernel overlay and compare them. Installs what it needs.
#   bash scripts/test.sh                 # everything this machine can run
#   bash scripts/test.sh -Dtest=UnionTest   # extra Maven arguments pass through
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
bash scripts/setup.sh
groups=""
if [ "$(id -u)" != 0 ] || [ ! -c /dev/fuse ] || ! grep -qw overlay /proc/filesystems; then
  modprobe overlay 2>/dev/null || true
fi
if [ "$(id -u)" != 0 ] || [ ! -c /dev/fuse ]; then
  echo "test: not root or no /dev/fuse: native tests (real mounts) are skipped"
  groups="native"
fi
# The random differential test runs fixed seeds here (3 x 2,000 operations) so that CI is repeatable;
# run it with -Dstrata.seed=N / -Dstrata.runs=N / -Dstrata.ops=N to explore further. Everything runs
# with strata's default options, i.e. the kernel FUSE transport with long attribute/entry caches.
user_args=$#
set -- -Dstrata.seed=1000 -Dstrata.runs=3 "$@"
# Tests that mount run in a private mount namespace so that no mount can leak into the host's,
# even if the JVM is killed.
ns=()
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && [ "${STRATA_NO_UNSHARE:-}" = "" ]; then
  ns=(unshare -m --propagation private)
fi
"${ns[@]}" mvn -B verify -Dstrata.excludedGroups="$groups" "$@"
# The fallback transport (libfuse 2, used where mount(2) of FUSE is not permitted) passes the same
# differential and edge-case tests once more, with attr_timeout=0: libfuse 2's path-based API cannot
# invalidate the attributes the kernel caches (see README, "Transports").
if [ -z "$groups" ] && [ "$user_args" = 0 ] && [ "${STRATA_SKIP_LIBFUSE:-}" = "" ]; then
  "${ns[@]}" mvn -B surefire:test -Dstrata.excludedGroups= -Dtest='RandomDifferentialTest,EdgeCaseTest,CrossMountTest,KillPrivTest' \
    -Dsurefire.failIfNoSpecifiedTests=false -Dstrata.mountOptions=transport=libfuse,attr_timeout=0 \
    -Dstrata.seed=1000 -Dstrata.runs=1
fi
# JMH: one benchmark for one short iteration, so that 'scripts/bench.sh jmh' keeps working (~5 s)
if [ "$user_args" = 0 ] && [ "${STRATA_SKIP_JMH:-}" = "" ]; then
  bash scripts/bench.sh jmh --no-build 'StatBaselineBench.fstatat' -p depth=1 -f 1 -wi 0 -i 1 -r 1s -foe true >/dev/null
fi
# What the rootless podman test leaves (README, "Tests"): the system user strata-test with its
# /etc/subuid and /etc/subgid ranges stays for later runs; its strata registry (/tmp/strata-UID) and
# JVM perf data (/tmp/hsperfdata_strata-test) go once none of its processes runs.
if [ "$(id -u)" = 0 ] && id -u strata-test >/dev/null 2>&1 && ! pgrep -u strata-test >/dev/null; then
  rm -rf --one-file-system "/tmp/strata-$(id -u strata-test)" /tmp/hsperfdata_strata-test
fi
