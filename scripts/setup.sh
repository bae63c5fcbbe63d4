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
# the launcher and the shared daemon's client (src/main/c/strata.c): a C compiler and libc headers
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

# The launcher, bin/strata, and the shared daemon's client (src/main/c/strata.c, one source): a mount
# request goes to the running daemon in a few milliseconds (README, "Process model") from this one
# process. Linked statically where libc6-dev has the static libc: podman runs its mount program for
# every container, and a static program starts with less work (no dynamic loader, no libc to map).
build_c() { # OUTPUT [CFLAGS...]: built beside it, then moved in place (a running launcher is not rewritten)
  local out=$1; shift
  if [ ! -x "$out" ] || [ src/main/c/strata.c -nt "$out" ] || ! head -c 4 "$out" | grep -q ELF; then
    cc -O2 -Wall -static "$@" -o "$out.tmp" src/main/c/strata.c 2>/dev/null \
      || cc -O2 -Wall "$@" -o "$out.tmp" src/main/c/strata.c
    mv -f "$out.tmp" "$out"
  fi
}
mkdir -p bin
build_c bin/strata -DSTRATA_LAUNCHER
build_c target/strata-client

# Class-data sharing archive: start-up (mount-ready time) drops when the JVM maps pre-parsed classes.
# The classes a shared daemon loads while it serves what containers do (below) are listed (where this
# machine can mount: root and /dev/fuse) and dumped into one static archive that replaces the JDK's
# default one: only what the mount daemon uses is mapped (15 MB resident, against 17 MB for the JDK's
# archive plus a dynamic one on top of it: issue 14). A class the list misses is loaded from the jar
# when first needed (parsed and verified), and a lambda it misses is spun then: a cost on that request.
cds_workload() { # MOUNT TMP: what a container's first requests and the rootless benchmark's rows do
  local m=$1 t=$2
  ls -la "$m" >/dev/null; find "$m" >/dev/null; ls -lR "$m" >/dev/null
  find "$m" -type f -exec cat {} + >/dev/null; readlink "$m/d/l" >/dev/null; stat "$m/d/f" >/dev/null
  [ -t 0 ] < "$m/f"; df "$m" >/dev/null 2>&1 || true
  echo y >> "$m/f"; echo y >> "$m/d/sub/a"                            # copy-ups
  mkdir -p "$m/new"; tar -C "$m/new" -xf "$t/a.tar"                   # create, write, modes, times
  chmod 600 "$m/d/f"; touch -d @0 "$m/d/h"; chown 1:1 "$m/d/sub/b"    # copy-up of metadata
  ln "$m/new/x" "$m/new/x2"; mv "$m/new/x2" "$m/new/x3"; ln -s x "$m/new/s"; truncate -s 1 "$m/new/x3"
  mv "$m/d/sub" "$m/sub2" 2>/dev/null || true                         # EXDEV: no redirect_dir
  rm -rf "$m/d" "$m/new"; rmdir "$m/sub2" 2>/dev/null || true         # whiteouts, removals
}
export -f cds_workload
if [ ! -f target/strata.jsa ] || [ target/strata.jar -nt target/strata.jsa ]; then
  rm -f target/strata.jsa target/strata.classlist
  if [ "$(id -u)" = 0 ] && [ -c /dev/fuse ] && command -v unshare >/dev/null; then
    t=$(mktemp -d)
    mkdir -p "$t"/{l1/d,l2/d/sub,u,w,m,m2,src/s}
    echo x > "$t/l2/f"; for f in f g h sub/a sub/b; do echo x > "$t/l2/d/$f"; done; ln -s f "$t/l2/d/l"
    echo x > "$t/l1/d/f2"; mknod "$t/l1/d/g" c 0 0 2>/dev/null || true
    echo x > "$t/src/x"; echo x > "$t/src/s/y"; chmod 640 "$t/src/x"; tar -C "$t/src" -cf "$t/a.tar" .
    # the shared daemon (as under podman): the first mount starts it, the second is handed to it; in a
    # mount namespace of its own, so nothing is left mounted should a step fail
    STRATA_DAEMON_DIR="$t/d" STRATA_DAEMON_IDLE=1 \
    STRATA_JAVA_OPTS="-Xshare:off -XX:DumpLoadedClassList=$here/target/strata.classlist" \
      unshare -m --propagation private bash -c '
        t=$1
        bin/strata mount -o lowerdir="$t/l1:$t/l2",upperdir="$t/u",workdir="$t/w" "$t/m" >/dev/null 2>&1 || exit 0
        bin/strata mount -o lowerdir="$t/l1:$t/l2" "$t/m2" >/dev/null 2>&1 && { ls -la "$t/m2" >/dev/null; umount "$t/m2"; }
        cds_workload "$t/m" "$t"
        umount "$t/m"' _ "$t" || true
    # the daemon ends 1 s after its last mount, and writes the list's last lines as it exits
    for _ in $(seq 150); do pgrep -f -- "-XX:DumpLoadedClassList=$here/target/strata.classlist" >/dev/null || break; sleep 0.1; done
    rm -rf "$t"
    # the class path as bin/strata gives it (-jar: the jar and its manifest's Class-Path); the dump
    # warns about classes it cannot archive (JFR events, generated classes), which is expected
    if [ -s target/strata.classlist ]; then
      java -Xshare:dump -XX:SharedClassListFile=target/strata.classlist -XX:SharedArchiveFile=target/strata.jsa \
        -Dfile.encoding=ISO-8859-1 -XX:+UseSerialGC -cp "$here/target/strata.jar" >/dev/null 2>&1 || rm -f target/strata.jsa
    fi
    rm -f target/strata.classlist
    # The archive just written sits in the page cache in the large folios of the write (up to 2 MiB
    # on ext4 since Linux 6.16), and the mount daemon maps its read-only part from there: every page
    # it drops at rest (fuse/kernel/CleanMappings) that is touched again maps its whole folio back.
    # Read back from the disk, the file's folios are readahead's (128 KiB): the daemon at rest kept
    # 0.9 MB of that part instead of 1.8 (issue 14). So the written pages leave the cache.
    if [ -f target/strata.jsa ]; then
      sync target/strata.jsa 2>/dev/null && dd if=target/strata.jsa iflag=nocache count=0 status=none 2>/dev/null || true
    fi
  fi
fi

if [ "${1:-}" = --install ]; then
  if [ "$(id -u)" != 0 ]; then echo "setup: --install needs root" >&2; exit 1; fi
  ln -sf "$here/bin/strata" /usr/local/bin/strata
  echo "setup: /usr/local/bin/strata -> $here/bin/strata (mount -t fuse.strata now works)"
fi
echo "setup: done. Try: bin/strata --help"
