#!/usr/bin/env bash
# Writes a two-layer OCI image layout to DIR without any network, from a static busybox:
#   layer 1: /bin/busybox + applet links, /etc/passwd, /data/{keep,gone,lower-del}.txt, /olddir/{x,y},
#            /tree/sub/deep.txt
#   layer 2: data/.wh.gone.txt (whiteout), olddir/.wh..wh..opq + olddir/z (opaque dir), data/keep.txt
#            replaced, data/added.txt
# Usage: make-image.sh DIR [BUSYBOX]   then: tar -C DIR -cf IMG.tar . && podman load -i IMG.tar   (-> localhost/strata-test:latest)
set -euo pipefail
out=$1
bb=${2:-/bin/busybox}
[ -x "$bb" ] || { echo "make-image: no static busybox at $bb (apt-get install busybox-static)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out/blobs/sha256"

# Reproducible tars: fixed owner, mtime and order.
mktar() { # SRC TAR
  (cd "$1" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort) > "$work/list"
  tar -C "$1" --numeric-owner --owner=0 --group=0 --mtime='2024-01-01 00:00:00Z' --format=pax \
      --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
      --no-recursion -cf "$2" -T "$work/list"
}

l1=$work/l1
mkdir -p "$l1/bin" "$l1/etc" "$l1/data" "$l1/olddir" "$l1/tree/sub" "$l1/tmp" "$l1/root" "$l1/proc" "$l1/sys" "$l1/dev"
cp "$bb" "$l1/bin/busybox"
for a in sh ls cat rm echo mkdir stat find test touch mv cp ln id chmod chown sort wc head grep true sleep env; do
  ln -s busybox "$l1/bin/$a"
done
chmod 1777 "$l1/tmp"
chmod 700 "$l1/root"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' > "$l1/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' > "$l1/etc/group"
echo keep-v1 > "$l1/data/keep.txt"
echo gone > "$l1/data/gone.txt"
echo lower-del > "$l1/data/lower-del.txt"
echo x > "$l1/olddir/x"
echo y > "$l1/olddir/y"
echo deep > "$l1/tree/sub/deep.txt"

l2=$work/l2
mkdir -p "$l2/data" "$l2/olddir"
echo keep-v2 > "$l2/data/keep.txt"
echo added > "$l2/data/added.txt"
: > "$l2/data/.wh.gone.txt"
: > "$l2/olddir/.wh..wh..opq"
echo z > "$l2/olddir/z"

blob() { # FILE -> prints digest hex, moves the file into blobs
  local h; h=$(sha256sum "$1" | cut -d' ' -f1)
  mv "$1" "$out/blobs/sha256/$h"
  echo "$h"
}
size() { stat -c %s "$out/blobs/sha256/$1"; }

mktar "$l1" "$work/l1.tar"
mktar "$l2" "$work/l2.tar"
d1=$(blob "$work/l1.tar")
d2=$(blob "$work/l2.tar")
cat > "$work/config.json" <<JSON
{"architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z","config":{"Env":["PATH=/bin"],"Cmd":["/bin/sh"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:$d1","sha256:$d2"]},"history":[{"created":"2024-01-01T00:00:00Z","created_by":"strata test layer 1"},{"created":"2024-01-01T00:00:00Z","created_by":"strata test layer 2"}]}
JSON
dc=$(blob "$work/config.json")
cat > "$work/manifest.json" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:$dc","size":$(size "$dc")},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:$d1","size":$(size "$d1")},{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:$d2","size":$(size "$d2")}]}
JSON
dm=$(blob "$work/manifest.json")
cat > "$out/index.json" <<JSON
{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:$dm","size":$(size "$dm"),"annotations":{"org.opencontainers.image.ref.name":"strata-test"}}]}
JSON
echo '{"imageLayoutVersion":"1.0.0"}' > "$out/oci-layout"
