"""Build the layer stack that bench/compare.py mounts with every system.

The stack is generated once per size ("full" or "quick") and generator version, under
WORKDIR/stack-<size>-v<version>/, and reused by later runs. It is built in a temporary
directory and renamed into place only when complete, so an interrupted build is never used.

Layout (lowerdir=lower1:lower2:lower3, lower1 on top):
  lower3  a copy of real trees from this machine (/usr/share and a /usr/lib/python3.* tree for
          the full size), a large file of random data (copy-up test), and half of a merged
          directory tree of small files (rm -rf test).
  lower2  modifies and deletes (char 0/0 whiteouts) a few thousand lower3 files, whites out whole
          directories, makes one lower3 directory opaque (trusted.overlay.opaque=y) with new
          content, adds new files and directories, and holds the other half of the rm -rf tree.
  lower1  a small top layer: modifies and deletes files of both layers below, adds a few, and
          holds the marker file polled for mount-ready.
Outside the stack: a tar of small files for the untar test.

Every choice is drawn from a seeded random generator over sorted file lists, so the same
source trees give the same stack.
"""

import glob
import io
import json
import os
import random
import shutil
import stat
import subprocess
import sys
import tarfile
from dataclasses import dataclass, asdict, field

GEN_VERSION = 1
READY_MARKER = ".bench-ready"
BIG_REL = "var/lib/bench/huge.bin"
RMTREE_REL = "srv/rmtree"
UNTAR_TOP = "untarred"


@dataclass
class Sizes:
    name: str
    sources: list            # source trees copied into lower3 (those that exist are used)
    big_mib: int             # the large lower file for the copy-up-on-open test
    rm_files: int            # files in the rm -rf tree (half in lower3, half in lower2)
    untar_files: int         # files in the untar tarball
    copyup_files: int        # small lower files appended to
    dd_mib: int              # size of the sequential write/read files
    modify2: int
    delete2: int
    add2: int
    dir_whiteouts2: int
    modify1: int
    delete1: int
    add1: int


def _python_lib():
    found = sorted(p for p in glob.glob("/usr/lib/python3*") if os.path.isdir(p))
    # prefer the versioned stdlib tree (python3.11), which is the bigger, more typical one
    versioned = [p for p in found if os.path.basename(p) != "python3"]
    return versioned[-1:] or found[-1:]


FULL = Sizes("full", ["/usr/share"] + _python_lib(), big_mib=1024, rm_files=10000,
             untar_files=10000, copyup_files=1000, dd_mib=1024,
             modify2=2000, delete2=2000, add2=1500, dir_whiteouts2=20,
             modify1=200, delete1=200, add1=200)
QUICK = Sizes("quick", ["/usr/share/doc", "/usr/share/perl", "/usr/share/vim", "/usr/share/zoneinfo"],
              big_mib=128, rm_files=2000, untar_files=2000, copyup_files=200, dd_mib=256,
              modify2=300, delete2=300, add2=200, dir_whiteouts2=5,
              modify1=50, delete1=50, add1=50)


def log(msg):
    print(f"[stack] {msg}", file=sys.stderr, flush=True)


def _walk(root):
    """Sorted relative paths of every entry under root (not root itself), without following links."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        rel = "" if rel == "." else rel
        for n in dirnames + sorted(filenames):
            out.append(os.path.join(rel, n) if rel else n)
    out.sort()
    return out


def _rand_bytes(rng, n):
    return rng.randbytes(n) if n else b""


def _make_parents(layer, rel, lower3):
    """Create the parent directories of rel inside layer, copying mode and times from lower3."""
    parts = rel.split("/")[:-1]
    cur = ""
    for p in parts:
        cur = f"{cur}/{p}" if cur else p
        dst = os.path.join(layer, cur)
        if not os.path.isdir(dst):
            os.mkdir(dst)
            src = os.path.join(lower3, cur)
            if os.path.isdir(src):
                shutil.copystat(src, dst, follow_symlinks=False)


def _whiteout(layer, rel, lower3):
    _make_parents(layer, rel, lower3)
    os.mknod(os.path.join(layer, rel), stat.S_IFCHR | 0o000, os.makedev(0, 0))


def _modify(layer, rel, src_layer, lower3, tag):
    _make_parents(layer, rel, lower3)
    dst = os.path.join(layer, rel)
    shutil.copy2(os.path.join(src_layer, rel), dst)
    with open(dst, "ab") as f:
        f.write(f"\n# modified in {tag}\n".encode())


def _add_file(layer, rel, lower3, rng, max_size):
    _make_parents(layer, rel, lower3)
    with open(os.path.join(layer, rel), "wb") as f:
        f.write(_rand_bytes(rng, rng.randrange(0, max_size)))


def _write_big(path, mib, rng):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    chunk = 1 << 20
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(rng.randbytes(chunk))
        f.flush()
        os.fsync(f.fileno())


def _small_tree(layer, top, dirs, first, count, rng, max_size):
    """Files top/dNN/fNNNNN for file numbers first..first+count-1 spread over `dirs` directories."""
    for i in range(first, first + count):
        d = os.path.join(layer, top, f"d{i % dirs:03d}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i:05d}"), "wb") as f:
            f.write(_rand_bytes(rng, rng.randrange(0, max_size)))


def _make_tar(path, n, rng):
    dirs = max(1, n // 100)
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tf:
        for d in range(dirs):
            ti = tarfile.TarInfo(f"{UNTAR_TOP}/d{d:03d}")
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 1700000000
            tf.addfile(ti)
        for i in range(n):
            data = _rand_bytes(rng, rng.randrange(0, 8192))
            ti = tarfile.TarInfo(f"{UNTAR_TOP}/d{i % dirs:03d}/f{i:05d}")
            ti.size, ti.mode, ti.mtime = len(data), 0o644, 1700000000
            tf.addfile(ti, io.BytesIO(data))


def _subtree_sizes(entries):
    """Number of entries below each directory path (directories only appear as keys if non-empty)."""
    sizes = {}
    for e in entries:
        parts = e.split("/")
        for k in range(1, len(parts)):
            p = "/".join(parts[:k])
            sizes[p] = sizes.get(p, 0) + 1
    return sizes


def build(workdir, sizes: Sizes):
    """Return (stack_dir, manifest), building the stack if it is not cached yet."""
    final = os.path.join(workdir, f"stack-{sizes.name}-v{GEN_VERSION}")
    mpath = os.path.join(final, "manifest.json")
    if os.path.isfile(mpath):
        with open(mpath) as f:
            return final, json.load(f)
    os.makedirs(workdir, exist_ok=True)
    tmp = final + ".building"
    if os.path.exists(tmp):
        shutil.rmtree(tmp)
    os.makedirs(tmp)
    rng = random.Random(20240601 + GEN_VERSION)
    l1, l2, l3 = (os.path.join(tmp, n) for n in ("lower1", "lower2", "lower3"))
    for d in (l1, l2, l3):
        os.mkdir(d)

    sources = [s for s in sizes.sources if os.path.isdir(s)]
    if not sources:
        raise SystemExit(f"bench: none of the source trees exist: {', '.join(sizes.sources)}")
    log(f"lower3: copying {', '.join(sources)}")
    for s in sources:
        dst_parent = os.path.join(l3, os.path.dirname(s).lstrip("/"))
        os.makedirs(dst_parent, exist_ok=True)
        subprocess.run(["cp", "-a", s, dst_parent + "/"], check=True)
    # what the copy gave us, before we add the synthetic parts
    base = _walk(l3)
    kinds = {}
    for rel in base:
        st = os.lstat(os.path.join(l3, rel))
        kinds[rel] = (stat.S_IFMT(st.st_mode), st.st_size)

    log(f"lower3: {sizes.big_mib} MiB random file, rm tree part 1")
    _write_big(os.path.join(l3, BIG_REL), sizes.big_mib, rng)
    rm_dirs = max(1, sizes.rm_files // 100)
    half = sizes.rm_files // 2
    _small_tree(l3, RMTREE_REL, rm_dirs, 0, half, rng, 4096)

    # --- choose what the upper lowers change, from disjoint slices of the copied tree ---
    subtree = _subtree_sizes(base)
    dirs = [d for d in base if kinds[d][0] == stat.S_IFDIR]
    # an opaque directory: a sizeable directory, hidden below lower2
    opaque_pool = [d for d in dirs if 100 <= subtree.get(d, 0) <= 2000 and d.count("/") >= 2]
    opaque = rng.choice(opaque_pool) if opaque_pool else None
    taken_dirs = [opaque] if opaque else []

    def under(rel, tops):
        return any(rel == t or rel.startswith(t + "/") for t in tops)

    wo_pool = [d for d in dirs if 3 <= subtree.get(d, 0) <= 200 and d.count("/") >= 2]
    rng.shuffle(wo_pool)
    dir_whiteouts = []
    for d in wo_pool:
        if len(dir_whiteouts) >= sizes.dir_whiteouts2:
            break
        if not under(d, taken_dirs) and not any(t.startswith(d + "/") for t in taken_dirs):
            dir_whiteouts.append(d)
            taken_dirs.append(d)

    files = [r for r in base if kinds[r][0] == stat.S_IFREG and not under(r, taken_dirs)]
    rng.shuffle(files)
    small = [r for r in files if kinds[r][1] <= 64 * 1024]
    copyup = sorted(small[:sizes.copyup_files])
    copyup_set = set(copyup)
    rest = [r for r in files if r not in copyup_set]
    pos = 0

    def take(n):
        nonlocal pos
        out = rest[pos:pos + n]
        pos += n
        return out

    modify2, delete2 = take(sizes.modify2), take(sizes.delete2)
    modify1, delete1 = take(sizes.modify1), take(sizes.delete1)
    # cross-layer: lower1 re-modifies and deletes some files that lower2 modified
    cross_mod1 = modify2[: max(1, sizes.modify1 // 4)]
    cross_del1 = modify2[max(1, sizes.modify1 // 4): max(1, sizes.modify1 // 4) + max(1, sizes.delete1 // 4)]
    existing_dirs = [d for d in dirs if not under(d, taken_dirs)]

    log(f"lower2: {len(modify2)} modified, {len(delete2)} whited out, "
        f"{len(dir_whiteouts)} directories whited out, opaque {opaque}, {sizes.add2} added")
    for r in modify2:
        _modify(l2, r, l3, l3, "lower2")
    for r in delete2:
        _whiteout(l2, r, l3)
    for d in dir_whiteouts:
        _whiteout(l2, d, l3)
    if opaque:
        _make_parents(l2, opaque + "/x", l3)
        subprocess.run(["setfattr", "-n", "trusted.overlay.opaque", "-v", "y", os.path.join(l2, opaque)],
                       check=True)
        for i in range(30):
            _add_file(l2, f"{opaque}/opaque-new-{i:03d}.txt", l3, rng, 4096)
    added2 = []
    for i in range(sizes.add2):
        if i % 3 == 0:   # new files in existing directories
            rel = f"{rng.choice(existing_dirs)}/bench-added2-{i:05d}.dat"
        else:            # a new directory tree
            rel = f"usr/share/bench-new2/g{i % 50:02d}/file-{i:05d}.dat"
        _add_file(l2, rel, l3, rng, 16384)
        added2.append(rel)
    _small_tree(l2, RMTREE_REL, rm_dirs, half, sizes.rm_files - half, rng, 4096)

    log(f"lower1: {len(modify1) + len(cross_mod1)} modified, {len(delete1) + len(cross_del1)} whited out, "
        f"{sizes.add1} added")
    for r in modify1:
        _modify(l1, r, l3, l3, "lower1")
    for r in cross_mod1:
        _modify(l1, r, l2, l3, "lower1")
    for r in delete1 + cross_del1:
        _whiteout(l1, r, l3)
    for r in added2[: max(1, sizes.add1 // 10)]:
        _whiteout(l1, r, l3)
    for i in range(sizes.add1):
        _add_file(l1, f"{rng.choice(existing_dirs)}/bench-added1-{i:05d}.dat", l3, rng, 16384)
    with open(os.path.join(l1, READY_MARKER), "w") as f:
        f.write("strata bench stack\n")

    log(f"untar source: {sizes.untar_files} files")
    tar_path = os.path.join(tmp, "small.tar")
    _make_tar(tar_path, sizes.untar_files, rng)

    counts = {n: len(_walk(os.path.join(tmp, n))) for n in ("lower1", "lower2", "lower3")}
    manifest = {
        "generator_version": GEN_VERSION,
        "sizes": asdict(sizes),
        "sources": sources,
        "layer_entries": counts,
        "opaque_dir": opaque,
        "dir_whiteouts": dir_whiteouts,
        "ready_marker": READY_MARKER,
        "big_file": BIG_REL,
        "rm_tree": RMTREE_REL,
        "untar_tar": "small.tar",
        "untar_top": UNTAR_TOP,
        "copyup_files": copyup,
    }
    with open(os.path.join(tmp, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    os.sync()
    os.rename(tmp, final)
    log(f"stack ready in {final}: layer entries {counts}")
    return final, manifest


if __name__ == "__main__":
    wd = sys.argv[1] if len(sys.argv) > 1 else "/var/tmp/strata-bench"
    which = sys.argv[2] if len(sys.argv) > 2 else "quick"
    d, m = build(wd, FULL if which == "full" else QUICK)
    print(d, json.dumps(m["layer_entries"]))
