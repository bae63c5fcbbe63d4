package dev.strata.fuse.kernel;

import dev.strata.fuse.kernel.Inodes.KNode;
import dev.strata.posix.Posix;

import java.util.ArrayList;

import static dev.strata.fuse.kernel.Proto.*;
import static dev.strata.posix.Errno.*;

/**
 * READDIR and READDIRPLUS: a directory's listing taken at offset 0 and answered by cookies.
 */
final class DirOps extends Family {
    DirOps(KernelFS fs, Worker w) { super(fs, w); }

    void readdir(long unique, KNode dir, boolean plus) {
        long offset = w.in.getLong(IN_HEADER + 8);
        int size = Math.min(w.in.getInt(IN_HEADER + 16), KernelFS.OUT_BUF - OUT_HEADER);
        String p = fs.inodes.path(dir);
        Listing h = fs.inodes.listing(dir);
        if (offset == 0 || h == null) {
            // a listing is taken at offset 0 (and where none is kept) and shared by every reader of
            // the directory: offsets are cookies in name order, not indexes, so a reader that goes on
            // in a newer listing neither repeats nor skips a name that stayed (see Listing)
            if (p == null) { w.error(unique, ENOENT); return; }
            ArrayList<String> names = new ArrayList<>();
            ArrayList<Integer> types = new ArrayList<>();
            ArrayList<Long> inos = new ArrayList<>();
            int r = fs.union.readdir(p, (name, type, ino) -> {
                names.add(name);
                types.add(type);
                inos.add(ino);
                return true;
            });
            if (r < 0) { w.error(unique, -r); return; }
            h = Listing.of(names, types, inos);
            fs.inodes.x(dir).listing = h;
        }
        // the entries that fit (a name is one byte per char: names are Latin-1 strings of their bytes)
        int first = h.after(offset), end = first, total = 0;
        for (; end < h.names.length; end++) {
            int need = record(h.names[end].length(), plus);
            if (total + need > size) break;
            total += need;
        }
        pos = 0;
        final Listing l = h;
        if (plus && p != null) {
            // the attributes of all of them with the directory resolved once (not once per entry)
            fs.union.getattrEach(p, h.names, first, end, w.stat, (i, r) -> {
                put(l, i, dir, true, r == 0);
                return true;
            });
        } else {
            for (int i = first; i < end; i++) put(h, i, dir, plus, false);
        }
        if (pos == 0 && fs.inodes.listing(dir) == h) fs.inodes.x(dir).listing = null; // the end was read: the engine keeps its own cache
        w.reply(unique, pos);
    }

    /** Where the next entry of the reply being built goes. */
    private int pos;

    private static int record(int nameLength, boolean plus) {
        int rec = DIRENT + ((nameLength + 7) & ~7);
        return plus ? ENTRY_OUT + rec : rec;
    }

    /**
     * Adds entry i of listing h to the reply at {@link #pos}: with plus its fuse_entry_out first, from
     * the attributes in the worker's stat where {@code filled}, else zeros (the kernel then only lists it).
     */
    private void put(Listing h, int i, KNode dir, boolean plus, boolean filled) {
        String name = h.names[i];
        byte[] nb = name.getBytes(Posix.NAMES);
        int d = pos;
        if (plus) {
            if (filled) w.entry(pos, dir, name);
            else for (int j = 0; j < ENTRY_OUT; j += 8) w.outData.putLong(pos + j, 0);
            d = pos + ENTRY_OUT;
        }
        int rec = DIRENT + ((nb.length + 7) & ~7);
        w.outData.putLong(d, h.inos[i]);
        w.outData.putLong(d + 8, h.cookies[i]);
        w.outData.putInt(d + 16, nb.length);
        w.outData.putInt(d + 20, (h.types[i] >>> 12) & 0xf);
        w.outData.put(d + DIRENT, nb, 0, nb.length);
        for (int j = DIRENT + nb.length; j < rec; j++) w.outData.putByte(d + j, (byte) 0);
        pos = d + rec;
    }
}
