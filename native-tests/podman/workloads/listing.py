#!/usr/bin/env python3
"""Lists a tar (a `podman export`) read from stdin: one line per member, sorted by name:
   NAME TYPE MODE UID:GID SIZE SHA256-or-LINK-TARGET [XATTR=HASH,...]
Git pack names are shown as pack-X. Times are left out (every system builds at its own time). --skip FILE: names (fnmatch patterns, one a
line) whose content differs by nature (logs with dates, caches): listed with '-' as content."""
import fnmatch, hashlib, re, sys, tarfile

skip = []
if len(sys.argv) > 2 and sys.argv[1] == "--skip":
    skip = [l.strip() for l in open(sys.argv[2]) if l.strip() and not l.startswith("#")]
lines = []
with tarfile.open(fileobj=sys.stdin.buffer, mode="r|") as t:
    for m in t:
        name = m.name.lstrip("./") or "."
        name = re.sub(r"pack-[0-9a-f]{40}", "pack-X", name)  # git names packs by content
        kind = {tarfile.REGTYPE: "f", tarfile.AREGTYPE: "f", tarfile.DIRTYPE: "d", tarfile.SYMTYPE: "l",
                tarfile.LNKTYPE: "h", tarfile.CHRTYPE: "c", tarfile.BLKTYPE: "b", tarfile.FIFOTYPE: "p"}.get(m.type, "?")
        size = m.size if kind == "f" else 0
        if kind in ("l", "h"):
            what = "-> " + m.linkname.lstrip("./") if kind == "h" else "-> " + m.linkname
        elif kind == "f":
            if any(fnmatch.fnmatch(name, p) for p in skip):
                what, size = "-", "-"
            else:
                f = t.extractfile(m)
                what = hashlib.sha256(f.read()).hexdigest()[:16]
        elif kind in ("c", "b"):
            what = f"{m.devmajor},{m.devminor}"
        else:
            what = ""
        xattrs = ",".join(f"{k[13:]}={hashlib.sha256(v.encode('utf-8', 'surrogateescape')).hexdigest()[:8]}"
                          for k, v in sorted(m.pax_headers.items()) if k.startswith("SCHILY.xattr."))
        lines.append(f"{name} {kind} {m.mode:04o} {m.uid}:{m.gid} {size} {what}{' ' + xattrs if xattrs else ''}".rstrip())
sys.stdout.write("\n".join(sorted(lines)) + "\n")
