#!/usr/bin/env bash
# Real image workloads in podman: the kernel overlay, fuse-overlayfs and strata as mount_program, as
# root and rootless (user strata-test), on a Debian bookworm image built from Debian's mirror with
# mmdebstrap. Compares exit codes, outputs, `podman diff` and a listing of `podman export`; prints a
# table of results and seconds. Skips with one line when the mirror is not reachable.
#   bash scripts/workloads.sh [--systems kernel,fuse-overlayfs,strata] [--modes root,rootless] [--out FILE]
# Needs root and a built strata (bash scripts/setup.sh). See native-tests/podman/workloads/workloads.py.
set -euo pipefail
here=$(cd -P "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ "$(id -u)" -ne 0 ]; then
  echo "workloads: needs root (it prepares the rootless user and the podman stores)" >&2
  exit 2
fi
exec python3 "$here/../native-tests/podman/workloads/workloads.py" "$@"
