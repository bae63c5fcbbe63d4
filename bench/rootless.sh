#!/usr/bin/env bash
# Rootless podman benchmark: podman's own rootless kernel overlay, fuse-overlayfs and strata as
# overlay.mount_program, run as an unprivileged user (default strata-bench). See bench/README.md
# ("rootless, no passthrough").
#   bench/rootless.sh [--rounds N] [--systems kernel,fuse-overlayfs,strata] [--user U] [--out FILE] [--note TEXT]
# Needs root (it prepares the user and reads the mount programs' memory) and a built strata
# (bash scripts/setup.sh; scripts/bench.sh podman builds first).
set -euo pipefail
here=$(cd -P "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for a in "$@"; do
  case "$a" in -h|--help) exec python3 "$here/rootless/rootless.py" --help ;; esac
done
if [ "$(id -u)" -ne 0 ]; then
  echo "bench podman: needs root (it prepares the benchmark user and reads the mount programs' memory)" >&2
  exit 2
fi
exec python3 "$here/rootless/rootless.py" "$@"
