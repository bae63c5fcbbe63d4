#!/usr/bin/env bash
# Prepares an unprivileged user for rootless podman (as root; idempotent, quiet):
#   - creates USER (default strata-test) without a home directory if missing,
#   - gives it a 65536-id range in /etc/subuid and /etc/subgid if it has none (after any range in use),
#   - grants it rw on /dev/fuse with an ACL (/dev/fuse is 0600 here).
# Prints "acl-added" on stdout when it added the ACL (so the caller can remove it again with
# `setfacl -x u:USER /dev/fuse`).
set -euo pipefail
user=${1:-strata-test}
[ "$(id -u)" = 0 ] || { echo "rootless-user: needs root" >&2; exit 1; }
getent passwd root >/dev/null || { echo "rootless-user: /etc/passwd has no root entry (damaged?)" >&2; exit 1; }
if ! getent passwd "$user" >/dev/null; then
  g=(--user-group)
  getent group "$user" >/dev/null && g=(--gid "$user")   # a group left behind by an earlier user
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "${g[@]}" "$user"
fi
for f in /etc/subuid /etc/subgid; do
  [ -e "$f" ] || : > "$f"
  if ! grep -q "^$user:" "$f" && ! grep -q "^$(id -u "$user"):" "$f"; then
    start=$(awk -F: 'BEGIN{m=200000} NF==3 && $2+$3>m {m=$2+$3} END{print m}' "$f")
    echo "$user:$start:65536" >> "$f"
  fi
done
if ! getfacl -cp /dev/fuse 2>/dev/null | grep -q "^user:$user:rw"; then
  setfacl -m "u:$user:rw" /dev/fuse
  echo acl-added
fi
