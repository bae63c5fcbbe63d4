#!/usr/bin/env python3
"""Resident memory of a running JVM by area: /proc/PID/smaps mappings attributed to the regions that
`jcmd PID VM.native_memory detail` names (the JVM must run with -XX:NativeMemoryTracking=detail, e.g.
STRATA_JAVA_OPTS for bin/strata); file mappings by file (libjvm.so, the class-data archive, other
shared objects); the FUSE workers' request and reply buffers by the MADV_DONTFORK flag they carry
("dc" in VmFlags: fuse/kernel/Worker.java). Anonymous memory NMT does not name is the C heap (glibc's
malloc arenas: what the JVM freed and malloc kept, jnr/jffi's allocations). The report of `jcmd
VM.native_memory detail` itself loads libjvm's symbol tables into the C heap (ElfFile, about 4 MB,
kept for good): they are shown apart, as "NMT's own symbol tables", from the first report on. Also
prints smaps_rollup's Pss and Rss, the thread count and NMT's committed sizes.
    bench/jvm-memory.py PID [Rss|Pss]     (default Rss: what the process holds were it alone)
"""
import collections
import os
import re
import subprocess
import sys

pid = sys.argv[1]
field = sys.argv[2] if len(sys.argv) > 2 else "Rss"
nmt = subprocess.run(["jcmd", pid, "VM.native_memory", "detail"], capture_output=True, text=True).stdout
regions = sorted((int(m.group(1), 16), int(m.group(2), 16), m.group(3).strip())
                 for m in re.finditer(r"^\[0x([0-9a-f]+) - 0x([0-9a-f]+)\] reserved \d+KB for ([^\n]+?) from", nmt, re.M))
if not regions:
    print("no NMT regions: run the JVM with -XX:NativeMemoryTracking=detail", file=sys.stderr)


def file_area(name):
    if name.endswith(".jsa"):
        return "class-data archive (file)"
    if "libjvm" in name:
        return "libjvm.so"
    if ".so" in name:
        return "other shared objects"
    return "other files (" + os.path.basename(name) + ")"


# what NMT's own report malloc'ed to decode its call stacks (ElfFile: libjvm's symbol and string tables)
decoder_kb = sum(int(m.group(1)) for m in re.finditer(
    r"ElfFile::ElfFile[^\n]*\n\s+\(malloc=(\d+)KB type=Internal", nmt))
areas = collections.Counter()


def account(start, end, name, kb, flags):
    if name and not name.startswith("["):
        areas[file_area(name)] += kb
        return
    if " dc" in flags:
        areas["FUSE worker buffers"] += kb
        return
    overlap = collections.Counter()
    for s, e, what in regions:
        o = min(end, e) - max(start, s)
        if o > 0:
            overlap[what] += o
    if not overlap:
        areas["C heap (malloc arenas)" + (" " + name if name else "")] += kb
        return
    total = sum(overlap.values())
    for what, o in overlap.items():
        areas["JVM: " + what] += kb * o / total


cur = None
with open(f"/proc/{pid}/smaps") as f:
    for line in f:
        m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$", line)
        if m:
            if cur:
                account(*cur)
            cur = [int(m.group(1), 16), int(m.group(2), 16), m.group(3).strip(), 0, ""]
        elif line.startswith(field + ":"):
            cur[3] = int(line.split()[1])
        elif line.startswith("VmFlags:"):
            cur[4] = line.rstrip()
if cur:
    account(*cur)
if decoder_kb:
    heap_keys = [k for k in areas if k.startswith("C heap")]
    if heap_keys:
        k = max(heap_keys, key=lambda x: areas[x])
        moved = min(areas[k], decoder_kb)
        areas[k] -= moved
        areas["NMT's own symbol tables (C heap, since the first detail report)"] += moved
for what, kb in sorted(areas.items(), key=lambda x: -x[1]):
    if kb >= 100:
        print(f"{kb / 1024:7.1f}  {what}")
print(f"{sum(areas.values()) / 1024:7.1f}  total {field}")
roll = open(f"/proc/{pid}/smaps_rollup").read()
get = lambda k: int(re.search(rf"^{k}:\s+(\d+)", roll, re.M).group(1)) / 1024
print(f"smaps_rollup: Pss {get('Pss'):.1f} MB, Rss {get('Rss'):.1f} MB; {len(os.listdir(f'/proc/{pid}/task'))} threads")
for m in re.finditer(r"^-\s+(\S[^(]*)\(reserved=\d+KB, committed=(\d+)KB\)", nmt, re.M):
    if int(m.group(2)) >= 100:
        print(f"  NMT {m.group(1).strip():26s} committed {int(m.group(2)) / 1024:6.1f} MB")
