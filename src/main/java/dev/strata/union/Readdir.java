package dev.strata.union;

import dev.strata.layer.Layer;
import dev.strata.layer.Markers;
import dev.strata.posix.Getdents;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;
import dev.strata.union.Union.DirSink;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static dev.strata.posix.Errno.*;
import static dev.strata.posix.Posix.*;

/**
 * Directory listings (the kernel's readdir.c): the merge of a directory's layers, cached per node.
 */
final class Readdir {
    private final Overlay ovl;

    Readdir(Overlay ovl) { this.ovl = ovl; }

    public int readdir(String path, DirSink sink) {
        ovl.lock.readLock().lock();
        try {
            Node n = ovl.namei.resolve(path);
            int e = Namei.err(n);
            if (e != 0) return e;
            if (!n.isDir()) return -ENOTDIR;
            Node.Listing cached = n.listing;
            if (cached != null) return replay(n, cached, sink);
            ListingBuilder b = new ListingBuilder(sink);
            int r = readdir(n, b, true);
            if (r == 0 && b.complete) n.listing = b.build();
            return r;
        } finally {
            ovl.lock.readLock().unlock();
        }
    }

    /** Largest listing kept in memory (entries); bigger directories are merged on every readdir. */
    static final int MAX_CACHED_LISTING = 50_000;

    /** Passes entries on and records them, so the next readdir of an unchanged directory costs no syscall. */
    static final class ListingBuilder implements DirSink {
        final DirSink next;
        final ArrayList<String> names = new ArrayList<>();
        final ArrayList<Integer> types = new ArrayList<>();
        final ArrayList<Long> inos = new ArrayList<>();
        boolean complete = true;

        ListingBuilder(DirSink next) { this.next = next; }

        @Override public boolean entry(String name, int type, long ino) {
            if (names.size() < MAX_CACHED_LISTING) {
                names.add(name);
                types.add(type);
                inos.add(ino);
            } else {
                complete = false;
            }
            boolean more = next.entry(name, type, ino);
            if (!more) complete = false;
            return more;
        }

        Node.Listing build() {
            int n = names.size();
            int[] t = new int[n];
            long[] i = new long[n];
            for (int k = 0; k < n; k++) { t[k] = types.get(k); i[k] = inos.get(k); }
            return new Node.Listing(names, t, i);
        }
    }

    static int replay(Node n, Node.Listing l, DirSink sink) {
        for (int k = 0, size = l.size(); k < size; k++) {
            if (!sink.entry(l.name(k), l.type(k), l.ino(k))) break;
        }
        return 0;
    }

    static final int DT_UNKNOWN = 0, DT_FIFO = 1, DT_CHR = 2, DT_DIR = 4, DT_BLK = 6, DT_REG = 8,
            DT_LNK = 10, DT_SOCK = 12;

    static int dtToMode(int dt) {
        switch (dt) {
            case DT_FIFO: return S_IFIFO;
            case DT_CHR: return S_IFCHR;
            case DT_DIR: return S_IFDIR;
            case DT_BLK: return S_IFBLK;
            case DT_REG: return S_IFREG;
            case DT_LNK: return S_IFLNK;
            case DT_SOCK: return S_IFSOCK;
            default: return 0;
        }
    }

    /**
     * Most entries one merged listing may hold (names given to the sink plus names seen in the layers):
     * a listing is built whole by the transport (its offsets are cookies in a sorted listing) as the
     * kernel overlay keeps a whole merged directory in its ovl_dir_cache, so a directory a user filled
     * with millions of names would otherwise take the heap. Scaled with the heap (2 KiB of it per entry,
     * where an entry costs about 150-250 bytes while it is built): 3M entries with the default heap
     * on this 24 GiB machine, 131,072 with -Xmx256m, never fewer than 65,536. Past it readdir fails with
     * ENOMEM ("Cannot allocate memory") and the daemon goes on.
     */
    static int maxListing = (int) Math.min(8L << 20, Math.max(1L << 16, Runtime.getRuntime().maxMemory() / 2048));

    /** Merges a directory's layers: upper first, duplicates, whiteouts and markers dropped. */
    int readdir(Node n, DirSink sink, boolean dots) {
        int max = maxListing;
        int[] count = {0};
        boolean[] tooMany = {false};
        DirSink inner = sink;
        sink = (name, type, ino) -> {
            if (++count[0] > max) { tooMany[0] = true; return false; }
            return inner.entry(name, type, ino);
        };
        int r = merge(n, sink, dots, max, tooMany);
        return tooMany[0] ? -ENOMEM : r;
    }

    int merge(Node n, DirSink sink, boolean dots, int max, boolean[] tooMany) {
        if (dots) {
            long self = dirIno(n);
            if (!sink.entry(".", S_IFDIR, self)) return 0;
            if (!sink.entry("..", S_IFDIR, n.parent == null ? self : dirIno(n.parent))) return 0;
        }
        Set<String> seen = n.layers.length > 1 ? new HashSet<>() : null;
        Stat st = Stat.local2();
        boolean[] stopped = {false};
        boolean[] renumbered = {false}; // an upper entry shows another number than its own (its origin's)
        for (int li : n.layers) {
            Layer l = ovl.stack[li];
            boolean xwh = li < 64 && (n.xwhMask & (1L << li)) != 0;
            // an impure upper directory holds copied-up entries that show their origin's number (as the
            // kernel's ovl_iterate looks up every entry of one): one getxattr per upper entry there only
            boolean origins = ovl.hasUpper && li == 0 && ovl.attrs.impure(n);
            // with redirect_dir=nofollow the kernel's lookup of such an entry (ovl_cache_update) fails on a
            // redirect it may not follow, and the listing leaves the name out
            boolean lookupDirs = origins && seen != null && !ovl.opts.redirectFollow();
            // names a copy-up put back where lookups found them absent (RemovedLower): left out of a
            // listing as the kernel's readdir leaves out an entry whose dentry is negative (an emptiness
            // check still sees them: ovl_check_empty_dir)
            boolean hide = dots && li == 0 && ovl.removedLower.anyHidden();
            String drel = n.relIn(li); // below a renamed directory: the old path in the lower layers
            // a lower directory's atime never changes (the kernel overlay reads them with O_NOATIME), the
            // upper's as the mount says (noatime, nodiratime: never)
            boolean noatime = !ovl.hasUpper || li != 0 || ovl.opts.nodiratime || ovl.opts.atime == dev.strata.options.MountOptions.Atime.NOATIME;
            int fd = l.openat(drel.isEmpty() ? "." : drel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, noatime);
            if (fd < 0) return fd;
            int r;
            try {
                // the entries are parsed from a buffer of their own: the whiteout checks below read
                // xattrs into the shared scratch buffer
                r = Getdents.read(fd, (dIno, dt, name) -> {
                    if (name.equals(".") || name.equals("..")) return true;
                    if (name.startsWith(Markers.WH_PREFIX)) {
                        if (seen != null && !name.equals(Markers.OPAQUE_FILE)) {
                            seen.add(name.substring(Markers.WH_PREFIX.length()));
                            if (seen.size() > max) { tooMany[0] = true; stopped[0] = true; return false; }
                        }
                        return true;
                    }
                    if (seen != null && !seen.add(name)) return true;
                    if (hide && ovl.removedLower.hidden(Layer.child(n.rel, name))) return true;
                    if (seen != null && seen.size() > max) { tooMany[0] = true; stopped[0] = true; return false; }
                    int type = dtToMode(dt);
                    if (dt == DT_CHR || dt == DT_UNKNOWN || (xwh && dt == DT_REG)) {
                        String crel = Layer.child(drel, name);
                        if (l.lstat(crel, st) < 0) return true;
                        type = st.type();
                        if (st.isWhiteoutDevice()) return true;
                        if (xwh && Markers.entryWhiteout(l, crel, st) != null) return true;
                    }
                    if (lookupDirs && type == S_IFDIR && ovl.namei.child(n, name) instanceof Namei.LookupError) return true;
                    if (type != S_IFDIR && type != 0) remember(n, name, li, type);
                    long ino = origins ? kernelOrigin(n, fd, name, type) : 0;
                    if (ino == 0 && origins) ino = ovl.attrs.originAt(fd, name);
                    // an indexed file the kernel wrote: the lower number its handle names, as stat shows
                    if (ino == 0 && origins && li == 0 && ovl.index != null && type != S_IFDIR && type != 0) ino = ovl.index.originIno(0, Layer.child(drel, name));
                    if (ino != 0 && ino != dIno) renumbered[0] = true;
                    if (!sink.entry(name, type, ino != 0 ? ino : ovl.attrs.mapIno(li, dIno))) { stopped[0] = true; return false; }
                    return true;
                });
            } finally {
                Posix.close(fd);
            }
            if (r < 0) return r;
            if (stopped[0]) return 0;
        }
        // a listing of an impure upper directory that is not merged, where no entry shows its origin's
        // number, takes the marker off, as the kernel's readdir does (ovl_iterate_real, only where its
        // layers share one file system or xino maps the numbers; not for its emptiness checks)
        if (dots && !renumbered[0] && n.layers.length == 1 && ovl.hasUpper && n.top() == 0
                && (ovl.singleDev || ovl.xinoShift > 0) && ovl.attrs.impure(n) && ovl.attrs.dropImpure(n)) {
            ovl.events.attributesChanged("/" + n.rel);
        }
        return 0;
    }

    /**
     * d_ino of an upper entry of an impure directory from the kernel's overlay.origin, as stat shows it
     * ({@link Attrs#upperOrigin}): a non-directory's decoded handle, a directory's lower directory (looked
     * up, as the kernel's ovl_cache_update looks every such entry up). 0: none.
     */
    private long kernelOrigin(Node dir, int fd, String name, int type) {
        if (ovl.origins == null || type == 0) return 0;
        byte[] v = Posix.getxattrAt(fd, name, ovl.origins.xattr);
        if (v == null) return 0;
        if (type != S_IFDIR) return ovl.attrs.decodedIno(v, type);
        Node c = ovl.namei.child(dir, name);
        if (c instanceof Namei.LookupError || c.negative() || !c.isDir()) return 0;
        return dirIno(c);
    }

    /**
     * readdir already knows where a non-directory comes from (its top layer, whiteouts applied), so it
     * enters the child in the cache: the lookups that usually follow (ls -l, find) cost no syscall.
     */
    void remember(Node dir, String name, int layer, int type) {
        Children ch = dir.children();
        if (ch.containsKey(name)) return;
        if (ovl.index != null && layer != 0) return; // a lower name may show an index entry: left to lookup
        String rel = Layer.child(dir.rel, name), at = Layer.child(dir.relIn(layer), name);
        String[] paths = null;
        if (!at.equals(rel)) (paths = new String[ovl.stack.length])[layer] = at;
        Node c = new Node(dir, rel, Node.single(layer), paths, type, false, 0);
        c.listed = type == S_IFREG; // it may be an xattr whiteout: the first lookup confirms it
        ovl.namei.cache(ch, name, c);
    }

    long dirIno(Node n) {
        if (n.ino != 0) return n.ino;
        Stat st = Stat.local2();
        Layer l = ovl.stack[n.top()];
        String at = n.relIn(n.top());
        int r = at.isEmpty() ? Posix.fstatat(l.fd(), "", st, AT_EMPTY_PATH) : l.lstat(at, st);
        if (r < 0) return 1;
        return ovl.attrs.presentedIno(n, st.ino());
    }

    /** The merged names of a directory (without . and ..), for checks and tools. */
    public List<String> list(String path, int[] err) {
        List<String> out = new ArrayList<>();
        err[0] = readdir(path, (name, type, ino) -> {
            if (!name.equals(".") && !name.equals("..")) out.add(name);
            return true;
        });
        return out;
    }

    boolean isEmptyDir(Node n, int[] err) {
        boolean[] empty = {true};
        err[0] = readdir(n, (name, type, ino) -> {
            empty[0] = false;
            return false;
        }, false);
        return empty[0];
    }
}
