#!/usr/bin/env bash
# Installs what the podman native test needs (Debian/Ubuntu, as root): podman, runc (crun 1.8 refuses
# hybrid cgroup setups), uidmap (newuidmap/newgidmap for rootless), busybox-static (the test image is
# made from /bin/busybox, no network), acl (setfacl for /dev/fuse). Idempotent and quiet: installs
# only what is missing. Exit 0 when everything is there, non-zero (with one line on stderr) otherwise.
set -uo pipefail
missing=()
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v runc >/dev/null 2>&1 || missing+=(runc)
command -v newuidmap >/dev/null 2>&1 || missing+=(uidmap)
[ -x /bin/busybox ] && /bin/busybox --help 2>&1 | grep -q 'static\|BusyBox' && ldd /bin/busybox 2>&1 | grep -q 'not a dynamic' \
  || missing+=(busybox-static)
command -v setfacl >/dev/null 2>&1 || missing+=(acl)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "podman install: missing ${missing[*]} and not root" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# --no-install-recommends: no slirp4netns, buildah or catatonit; the test runs with --network none.
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
  apt-get update -qq >/dev/null 2>&1
  if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
    echo "podman install: apt-get install ${missing[*]} failed" >&2
    exit 1
  fi
fi
exit 0
