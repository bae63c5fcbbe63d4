#!/usr/bin/env bash
# Installs what strata needs on Debian/Ubuntu (as root: apt-get), builds it, and (as root, with
# --install) puts the `strata` command on PATH so `mount -t fuse.strata` works.
#   bash scripts/setup.sh            # packages (if root) + build
#   bash scripts/setup.sh --install  # ... and link /usr/local/bin/strata
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"

need_pkgs=()
command -v java >/dev/null || need_pkgs+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null || need_pkgs+=(maven)
command -v fusermount3 >/dev/null || need_pkgs+=(fuse3)
ldconfig -p 2>/dev/null | grep -q 'libfuse\.so\.2' || {
  # libfuse2 was renamed libfuse2t64 on newer Debian/Ubuntu
  if apt-cache show libfuse2t64 >/dev/null 2>&1; then need_pkgs+=(libfuse2t64); else need_pkgs+=(libfuse2); fi
}
command -v getfattr >/dev/null || need_pkgs+=(attr)
command -v setsid >/dev/null || need_pkgs+=(util-linux)
# the shared daemon's client (src/main/c/strata-client.c): a C compiler and libc headers
{ command -v cc >/dev/null && echo '#include <sys/socket.h>' | cc -E -x c - >/dev/null 2>&1; } || need_pkgs+=(gcc libc6-dev)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    # a second look now that the package lists are fresh
    pk=()
    for p in "${need_pkgs[@]}"; do
      if [ "$p" = libfuse2 ] && ! apt-cache show libfuse2 >/dev/null 2>&1; then p=libfuse2t64; fi
      pk+=("$p")
    done
    apt-get install -y -qq "${pk[@]}" >/dev/null
  else
    echo "setup: missing packages: ${need_pkgs[*]} (run as root, or: sudo apt-get install ${need_pkgs[*]})" >&2
    exit 1
  fi
fi

echo "setup: building (mvn package)"
if [ -t 1 ]; then
  mvn -B -q package -DskipTests
else
  # Debian's Maven 3.8 prints colour resets (ESC[0m) even in batch mode: keep logs and pipes clean
  mvn -B -q -Dstyle.color=never package -DskipTests 2>&1 | sed 's/\x1b\[[0-9;]*m//g'
fi

# The shared daemon's client: bin/strata hands it a mount request in milliseconds (README, "Process
# model"); without it every mount runs a JVM of its own, as before.
if [ ! -x target/strata-client ] || [ src/main/c/strata-client.c -nt target/strata-client ]; then
  cc -O2 -Wall -o target/strata-client src/main/c/strata-client.c
fi

# Class-data sharing archive: start-up (mount-ready time) drops when the JVM maps pre-parsed classes.
# The classes one real mount cycle loads are listed (where this machine can mount: root and /dev/fuse)
# and dumped into one static archive that replaces the JDK's default one: only what the mount daemon
# uses is mapped (15 MB resident, against 17 MB for the JDK's archive plus a dynamic one on top of it:
# issue 14).
if [ ! -f target/strata.jsa ] || [ target/strata.jar -nt target/strata.jsa ]; then
  rm -f target/strata.jsa target/strata.classlist
  if [ "$(id -u)" = 0 ] && [ -c /dev/fuse ]; then
    t=$(mktemp -d)
    mkdir -p "$t"/{l,u,w,m}
    echo x > "$t/l/f"
    STRATA_JAVA_OPTS="-Xshare:off -XX:DumpLoadedClassList=$here/target/strata.classlist" \
      bin/strata mount -f -o lowerdir="$t/l",upperdir="$t/u",workdir="$t/w" "$t/m" >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 100); do grep -q " $t/m fuse" /proc/self/mounts && break; sleep 0.1; done
    if grep -q " $t/m fuse" /proc/self/mounts; then
      ls -la "$t/m" >/dev/null; cat "$t/m/f" >/dev/null; echo y >> "$t/m/f"; rm -f "$t/m/f"; find "$t/m" >/dev/null
      umount "$t/m" 2>/dev/null || fusermount3 -u "$t/m" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    rm -rf "$t"
    # the class path as bin/strata gives it (-jar: the jar and its manifest's Class-Path); the dump
    # warns about classes it cannot archive (JFR events, generated classes), which is expected
    if [ -s target/strata.classlist ]; then
      java -Xshare:dump -XX:SharedClassListFile=target/strata.classlist -XX:SharedArchiveFile=target/strata.jsa \
        -Dfile.encoding=ISO-8859-1 -XX:+UseSerialGC -cp "$here/target/strata.jar" >/dev/null 2>&1 || rm -f target/strata.jsa
    fi
    rm -f target/strata.classlist
  fi
fi

if [ "${1:-}" = --install ]; then
  if [ "$(id -u)" != 0 ]; then echo "setup: --install needs root" >&2; exit 1; fi
  ln -sf "$here/bin/strata" /usr/local/bin/strata
  echo "setup: /usr/local/bin/strata -> $here/bin/strata (mount -t fuse.strata now works)"
fi
echo "setup: done. Try: bin/strata --help"
