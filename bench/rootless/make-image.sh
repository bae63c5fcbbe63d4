#!/usr/bin/env bash
# Writes the rootless benchmark's image, an OCI layout, to DIR without any network (as root):
#   layers 1-2: the podman test's busybox image (native-tests/podman/make-image.sh: busybox, a
#               whiteout, an opaque directory)
#   layer 3 "base": what a Debian base image carries, copied from this host: /usr/share/zoneinfo,
#               /usr/share/i18n, /usr/share/perl5, /usr/lib/x86_64-linux-gnu/{perl-base,gconv};
#               /lib and /lib64 as links into /usr (merged /usr)
#   layer 4 "python": the host's /usr/bin/python3.11 (+ python3 link), the shared libraries ldd names,
#               /usr/lib/python3.11 as it is (mtimes kept, so the __pycache__ files stay valid),
#               more busybox applet links (tar, dd, sync, ...) and /usr/local/bin/stopwatch (a static
#               timer built here with gcc from stopwatch.c)
#   layer 5 "app": /srv/python3.11-stdlib.tar (a tar of the host's /usr/lib/python3.11, for the untar
#               row) and a whiteout of a layer-4 file
# The image is named localhost/strata-bench:latest. Prints one line: layers, entries, size.
# Usage: make-image.sh DIR      then: tar -C DIR -cf IMG.tar . && podman load -i IMG.tar
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=$1
py=/usr/bin/python3.11
[ -x "$py" ] && [ -d /usr/lib/python3.11 ] || { echo "make-image: needs the host's python3.11 ($py, /usr/lib/python3.11)" >&2; exit 1; }
command -v gcc >/dev/null || { echo "make-image: needs gcc and libc6-dev (apt-get install gcc libc6-dev) for the static timer" >&2; exit 1; }
bash "$repo/native-tests/podman/make-image.sh" "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Layer tars as root:root, names sorted, mtimes kept (python checks them against its .pyc files).
mktar() { # SRC TAR
  (cd "$1" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort) > "$work/list"
  tar -C "$1" --numeric-owner --owner=0 --group=0 --format=pax \
      --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
      --no-recursion -cf "$2" -T "$work/list"
}
copy() { # HOST-PATH LAYER-DIR: the path and what is below it, at the same place in the layer
  mkdir -p "$2$(dirname "$1")"
  cp -a "$1" "$2$(dirname "$1")/"
}

l3=$work/l3
mkdir -p "$l3/usr/lib" "$l3/usr/lib64" "$l3/usr/share"
ln -s usr/lib "$l3/lib"
ln -s usr/lib64 "$l3/lib64"
for d in /usr/share/zoneinfo /usr/share/i18n /usr/share/perl5 /usr/lib/x86_64-linux-gnu/perl-base /usr/lib/x86_64-linux-gnu/gconv; do
  [ -d "$d" ] && copy "$d" "$l3"
done

l4=$work/l4
mkdir -p "$l4/usr/bin" "$l4/usr/local/bin" "$l4/bin"
cp -a "$py" "$l4/usr/bin/"
ln -s python3.11 "$l4/usr/bin/python3"
copy /usr/lib/python3.11 "$l4"
# the libraries as ldd names them, stored under /usr (the image's /lib and /lib64 point there)
for lib in $(ldd "$py" | grep -o '/[^ ]*'); do
  dest=$lib
  case "$lib" in /lib/*|/lib64/*) dest=/usr$lib ;; esac
  mkdir -p "$l4$(dirname "$dest")"
  cp -L "$lib" "$l4$dest"
done
for a in tar dd sync xargs du sed awk cut tr uname ps date sh; do
  [ -e "$l4/bin/$a" ] || ln -s busybox "$l4/bin/$a"
done
rm -f "$l4/bin/sh" # layer 1 has it
gcc -static -O2 -s -o "$l4/usr/local/bin/stopwatch" "$here/stopwatch.c"

l5=$work/l5
mkdir -p "$l5/srv" "$l5/usr/lib/python3.11"
tar -C /usr/lib --numeric-owner --owner=0 --group=0 -cf "$l5/srv/python3.11-stdlib.tar" python3.11
: > "$l5/usr/lib/python3.11/.wh.antigravity.py"

for n in 3 4 5; do mktar "$work/l$n" "$work/l$n.tar"; done
# append the three layers to the manifest and config of the busybox image, rename it
python3 - "$out" "$work/l3.tar" "$work/l4.tar" "$work/l5.tar" <<'PY'
import hashlib, json, os, shutil, sys, tarfile
out, tars = sys.argv[1], sys.argv[2:]
blobs = os.path.join(out, "blobs", "sha256")
def put(data_or_path):
    if isinstance(data_or_path, bytes):
        h = hashlib.sha256(data_or_path).hexdigest()
        with open(os.path.join(blobs, h), "wb") as f: f.write(data_or_path)
        return h, len(data_or_path)
    d = hashlib.sha256()
    with open(data_or_path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""): d.update(chunk)
    h = d.hexdigest()
    shutil.move(data_or_path, os.path.join(blobs, h))
    return h, os.path.getsize(os.path.join(blobs, h))
def get(digest):
    with open(os.path.join(blobs, digest.split(":")[1])) as f: return json.load(f)
index = json.load(open(os.path.join(out, "index.json")))
manifest = get(index["manifests"][0]["digest"])
config = get(manifest["config"]["digest"])
for old in (index["manifests"][0]["digest"], manifest["config"]["digest"]):
    os.remove(os.path.join(blobs, old.split(":")[1]))
names = ["base: zoneinfo, i18n, perl, gconv", "python3.11 + stdlib + stopwatch", "app: stdlib tarball, a whiteout"]
for t, name in zip(tars, names):
    h, n = put(t)
    manifest["layers"].append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + h, "size": n})
    config["rootfs"]["diff_ids"].append("sha256:" + h)
    config["history"].append({"created": "2024-01-01T00:00:00Z", "created_by": "strata rootless bench: " + name})
config["config"]["Env"] = ["PATH=/usr/local/bin:/usr/bin:/bin"]
h, n = put(json.dumps(config).encode())
manifest["config"] = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + h, "size": n}
h, n = put(json.dumps(manifest).encode())
index["manifests"][0].update({"digest": "sha256:" + h, "size": n})
index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] = "strata-bench"
json.dump(index, open(os.path.join(out, "index.json"), "w"))
entries = size = 0
for layer in manifest["layers"]:
    with tarfile.open(os.path.join(blobs, layer["digest"].split(":")[1])) as t:
        for m in t:
            entries += 1
            size += m.size
print(f"{len(manifest['layers'])} layers, {entries} entries, {size / 1e6:.0f} MB of file data")
PY
