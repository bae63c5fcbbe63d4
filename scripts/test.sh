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
# Tests that mount run in a private mount namespace so that no mount can leak into the host's,
# even if the JVM is killed.
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && [ "${STRATA_NO_UNSHARE:-}" = "" ]; then
  exec unshare -m --propagation private mvn -B verify -Dstrata.excludedGroups="$groups" "$@"
fi
exec mvn -B verify -Dstrata.excludedGroups="$groups" "$@"
