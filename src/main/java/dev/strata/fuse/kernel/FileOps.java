package dev.strata.fuse.kernel;

import dev.strata.fuse.kernel.Inodes.KNode;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;
import dev.strata.union.Union;
import jnr.ffi.Pointer;

import static dev.strata.fuse.kernel.Proto.*;
import static dev.strata.posix.Errno.*;

/**
 * Requests on open files: OPEN, CREATE, TMPFILE, READ, WRITE, RELEASE, FALLOCATE, LSEEK, COPY_FILE_RANGE, the
 * transport's open-file table and FUSE passthrough.
 */
final class FileOps extends Family {
    FileOps(KernelFS fs, Worker w) { super(fs, w); }

    void open(long unique, KNode node) {
        String p = w.pathOrError(unique, node);
        if (p == null) return;
        int flags = w.in.getInt(IN_HEADER);
        int fd = fs.union.open(p, flags);
        if (fd < 0) { w.error(unique, -fd); return; }
        if ((w.in.getInt(IN_HEADER + 4) & OPEN_KILL_SUIDGID) != 0) {
            // O_TRUNC by a caller without CAP_FSETID
            int r = w.attrs.killSuidGid(p, fd);
            if (r < 0) { fs.union.release(fd); w.error(unique, -r); return; }
        }
        // other names of the file, or other nodes the kernel holds for it (a name removed while open:
        // the file may have one name left, and a change through it must reach the other node's cache)
        long ino = fs.inodes.ino(node);
        // (a node its names share, a hard-linked upper file's, is one kernel inode with one cache for all).
        // Under the writeback cache only the file's own other names count: the kernel keeps mtime itself
        // and a direct-I/O write does not move it (fuse_direct_write_iter), so a write open with direct
        // I/O would leave the mtime it shows behind; and the other nodes of the same st_ino are a lower
        // hard link's other names, which the copy-up of this one made other files (no index: its cache
        // goes with the writeback cache, see MountOptions#writebackExact)
        boolean otherNames = fs.writeback
                ? !fs.inodes.shared(node) && fs.union.hasOtherNames(fd)
                : fs.inodes.hasSiblings(ino, node) || !fs.inodes.shared(node) && fs.union.hasOtherNames(fd);
        // a write open of a metadata-only copy copies its data up, which changes its mtime and ctime on
        // the kernel overlay (ovl_copy_up_meta_inode_data), as every other name of the file shows
        if (otherNames && ((flags & Posix.O_ACCMODE) != Posix.O_RDONLY || (flags & Posix.O_TRUNC) != 0)) w.notes.invalidateSiblings(ino, node);
        openReply(0, fd, node, otherNames);
        if (!w.reply(unique, OPEN_OUT)) w.unclaimed(fd);
    }

    /**
     * Fills a fuse_open_out for a descriptor. With passthrough, the kernel reads and writes the layer
     * file itself, when (a) the descriptor never has to move to another file (not a read-only lower
     * file that a copy-up may replace) and (b) no other open of the same kernel inode is not a
     * passthrough one (page cache or direct I/O); and always while the inode has passthrough opens (the kernel refuses to mix
     * modes on one inode). Otherwise a file with several names gets direct I/O:
     * each name is its own kernel inode with its own cache, and every write must reach strata so
     * that the attributes the kernel holds for the other names can be invalidated.
     */
    void openReply(int off, int fd, KNode node, boolean otherNames) {
        int backing = 0;
        NodeExtra x;
        while (true) {
            x = fs.inodes.x(node);
            synchronized (x) {
                if (!x.dropped) {
                    backing = shareOrOpenBacking(x, fd, otherNames);
                    // a direct-I/O open counts too: a shared mapping of it puts the kernel inode in page-cache mode
                    // (fuse_file_mmap), and a passthrough open of the inode after that fails with EIO
                    if (backing <= 0) x.cachedOpens++;
                    break;
                }
            }
            // its last open closed meanwhile and took the node's extra state away (Inodes#dropIfIdle): a new one
        }
        boolean cached = backing <= 0;
        int openFlags = w.in.getInt(IN_HEADER); // the flags of OPEN, CREATE and TMPFILE alike
        int acc = openFlags & Posix.O_ACCMODE;
        if (backing > 0 && acc != Posix.O_RDONLY) {
            boolean first;
            synchronized (x) { first = x.writablePassthrough++ == 0; }
            // what the kernel holds of the attributes from before this open would hide the times a
            // write through a shared mapping of it sets on the layer file (no request tells strata)
            if (first) w.notes.invalidate(node.id, -1);
        }
        fs.openFiles.put(fd, new KernelFS.OpenFile(node, x, cached, backing > 0, otherNames, acc != Posix.O_RDONLY,
                (openFlags & Posix.O_DIRECT) != 0));
        w.outData.putLong(off, fd);
        w.outData.putInt(off + 8, backing > 0 ? FOPEN_PASSTHROUGH : otherNames ? FOPEN_DIRECT_IO : FOPEN_KEEP_CACHE);
        w.outData.putInt(off + 12, Math.max(backing, 0));
    }

    /**
     * The backing id for a new open of the node whose extra state is x (under its lock), or <= 0 for none
     * (page cache or direct I/O): the one its passthrough opens share, else a new one where passthrough
     * may be had.
     */
    private int shareOrOpenBacking(NodeExtra x, int fd, boolean otherNames) {
        if (x.passthroughOpens > 0) {
            // the kernel wants every open of an inode in passthrough mode to be one too, sharing
            // its backing file (it opens that anew with each open's own flags)
            x.passthroughOpens++;
            return x.backingId;
        }
        if (!fs.passthrough || x.cachedOpens != 0 || otherNames || !fs.union.stableFd(fd)) return 0;
        // the backing file is the same file opened on a copy of its layer's mount that has the
        // mount's atime mode (see BackingMounts); the kernel opens it anew for each open
        int copy = fs.backingMounts == null ? -1 : fs.union.reopenBeneath(fd, fs.backingMounts::root);
        int backing = x.backingId = backingOpen(copy >= 0 ? copy : fd);
        if (copy >= 0) Posix.close(copy);
        if (backing > 0) x.passthroughOpens++;
        return backing;
    }

    /** Registers a descriptor as a passthrough backing file; returns its id, or <= 0 (then: no passthrough). */
    int backingOpen(int fd) {
        w.note.putInt(40, fd);
        w.note.putInt(44, 0);
        w.note.putLong(48, 0);
        int id = Posix.ioctl(fs.devFd, DEV_IOC_BACKING_OPEN, w.note.address() + 40);
        if (id == -EPERM || id == -EINVAL || id == -EOPNOTSUPP || id == -ENOTTY || id == -ENOSYS) {
            // not permitted or not supported here (e.g. a layer on a stacked file system): stop
            // trying, and say so, since file data then goes through strata (slower, still right)
            if (fs.passthrough) {
                fs.passthrough = false;
                fs.log.warn("FUSE passthrough off for this mount: the kernel refused a backing file ("
                        + Posix.strerror(id) + "); file data is served by strata");
            }
        } else if (id < 0) {
            fs.log.debug("no passthrough for one open: " + Posix.strerror(id)); // EMFILE, ENOMEM, ...: this open only
        }
        return id;
    }

    void create(long unique, KNode dir) {
        int flags = w.in.getInt(IN_HEADER);
        String name = w.cstr(IN_HEADER + 16);
        String p = fs.inodes.childPath(dir, name);
        if (p == null) { w.error(unique, ENOENT); return; }
        int mode = w.entries.masked(dir, w.in.getInt(IN_HEADER + 4), w.in.getInt(IN_HEADER + 8));
        int fd = fs.union.create(p, mode, flags, w.uid(), w.gid());
        if (fd < 0) { w.error(unique, -fd); return; }
        if ((w.in.getInt(IN_HEADER + 12) & OPEN_KILL_SUIDGID) != 0) {
            // O_TRUNC without O_EXCL by a caller without CAP_FSETID: the name may have existed after all
            int r = w.attrs.killSuidGid(p, fd);
            if (r < 0) { fs.union.release(fd); w.error(unique, -r); return; }
        }
        if (opened(unique, fd, fs.union.getattr(p, w.stat))) replyOpened(unique, fd, w.entry(0, dir, name));
    }

    /** After creating an open file: true if its attributes are in {@link Worker#stat}, else it is closed and the error answered. */
    boolean opened(long unique, int fd, int getattr) {
        if (getattr >= 0) return true;
        fs.union.release(fd);
        w.error(unique, -getattr);
        return false;
    }

    /** Answers CREATE/TMPFILE: the entry already at outData, then the open file. */
    void replyOpened(long unique, int fd, KNode k) {
        openReply(ENTRY_OUT, fd, k, false);
        if (!w.reply(unique, ENTRY_OUT + OPEN_OUT)) {
            w.unclaimed(fd);
            fs.inodes.forget(k.id, 1); // nor will it forget the entry's reference
        }
    }

    void release(long unique) {
        w.result(unique, closeOpenFile((int) w.in.getLong(IN_HEADER)));
    }

    /** Forgets an open file (its share of the node's cache and passthrough state) and closes it. */
    int closeOpenFile(int fd) {
        KernelFS.OpenFile f = fs.openFiles.remove(fd);
        if (f != null) {
            int close = 0;
            NodeExtra x = f.x;
            synchronized (x) {
                if (f.cached) x.cachedOpens--;
                if (f.passthrough && f.writable) x.writablePassthrough--;
                if (f.passthrough && --x.passthroughOpens == 0) {
                    close = x.backingId;
                    x.backingId = 0;
                }
            }
            if (close > 0) {
                w.note.putInt(40, close);
                Posix.ioctl(fs.devFd, DEV_IOC_BACKING_CLOSE, w.note.address() + 40);
            }
            fs.inodes.dropIfIdle(f.node, x);
        }
        return fs.union.release(fd);
    }

    /** A descriptor open on a node, else the one kept on it since its removal (NodeExtra#removedFd), or -1. */
    int openFd(KNode node) {
        for (java.util.Map.Entry<Integer, KernelFS.OpenFile> e : fs.openFiles.entrySet()) {
            if (e.getValue().node.equals(node)) return e.getKey();
        }
        NodeExtra x = fs.inodes.xIfAny(node);
        return x == null ? -1 : x.removedFd;
    }

    /** Whether the node is open for writing (through strata: passthrough opens are opened through it too). */
    boolean openForWriting(KNode node) {
        for (KernelFS.OpenFile f : fs.openFiles.values()) if (f.node.equals(node) && f.writable) return true;
        return false;
    }

    /** O_TMPFILE: a file without a name; the kernel holds it as a node of its own. */
    void tmpfile(long unique, KNode dir) {
        int flags = w.in.getInt(IN_HEADER);
        String p = fs.inodes.path(dir);
        if (p == null) { w.error(unique, ENOENT); return; }
        int mode = w.entries.masked(dir, w.in.getInt(IN_HEADER + 4), w.in.getInt(IN_HEADER + 8));
        int fd = fs.union.tmpfile(p, mode, flags, w.uid(), w.gid());
        if (fd < 0) { w.error(unique, -fd); return; }
        if (!opened(unique, fd, fs.union.fgetattr(fd, w.stat))) return;
        KNode k = fs.inodes.anonymous(w.stat.getLong(Stat.OFF_INO));
        w.fillEntry(0, k);
        replyOpened(unique, fd, k);
    }

    void read(long unique) {
        int fd = (int) w.in.getLong(IN_HEADER);
        long off = w.in.getLong(IN_HEADER + 8);
        int size = Math.min(w.in.getInt(IN_HEADER + 16), KernelFS.OUT_BUF - OUT_HEADER);
        if ((w.in.getInt(IN_HEADER + 32) & Posix.O_DIRECT) != 0 && readDirect(unique, fd, off, size)) return;
        if (w.splices.read(unique, fd, off, size)) return;
        long n = fs.union.read(fd, w.outData, size, off);
        if (n < 0) { w.error(unique, (int) -n); return; }
        w.reply(unique, (int) n);
    }

    void write(long unique) {
        int fd = (int) w.in.getLong(IN_HEADER);
        long off = w.in.getLong(IN_HEADER + 8);
        int size = w.in.getInt(IN_HEADER + 16);
        if ((w.in.getInt(IN_HEADER + 20) & WRITE_KILL_SUIDGID) != 0) {
            // a caller without CAP_FSETID: cleared before the data change, as the VFS does. Direct-I/O
            // writes carry the flag with or without HANDLE_KILLPRIV_V2 (the kernel clears nothing for them)
            KernelFS.OpenFile f = fs.openFiles.get(fd);
            int r;
            fs.names.readLock().lock(); // the path must name this file while it is changed (see namesLock)
            try {
                r = w.attrs.killSuidGid(f == null ? null : fs.inodes.path(f.node), fd);
            } finally {
                fs.names.readLock().unlock();
            }
            if (r < 0) { w.error(unique, -r); return; }
        }
        // O_DIRECT in the file's flags (fuse_write_in.flags), unless the page cache writes back (FUSE_WRITE_CACHE)
        int direct = (w.in.getInt(IN_HEADER + 32) & Posix.O_DIRECT) != 0 && (w.in.getInt(IN_HEADER + 20) & WRITE_CACHE) == 0
                ? fs.union.direct(fd, true) : Union.NOT_DIRECT;
        long n;
        if (direct == Union.NOT_DIRECT) {
            n = fs.union.write(fd, w.writeData, size, off);
        } else if (direct < 0) {
            n = direct;
        } else {
            Pointer b = w.alignedOut(size); // the data where O_DIRECT's memory alignment holds
            w.writeData.transferTo(0, b, 0, size);
            n = Posix.pwrite(direct, b, size, off);
        }
        if (n < 0) { w.error(unique, (int) -n); return; }
        KernelFS.OpenFile f = fs.openFiles.get(fd);
        if (f != null && f.otherNames) w.notes.invalidateSiblingData(fs.inodes.ino(f.node), f.node);
        w.outData.putInt(0, (int) n);
        w.outData.putInt(4, 0);
        w.reply(unique, 8);
    }

    /**
     * A READ whose file carries O_DIRECT (fuse_read_in.flags), through the file's O_DIRECT descriptor
     * ({@link dev.strata.union.Union#direct}) into page-aligned memory of the reply buffer, and answered
     * from there: the layer's file system answers as under the kernel overlay. False where strata serves
     * it as any read.
     */
    private boolean readDirect(long unique, int fd, long off, int size) {
        int d = fs.union.direct(fd, false);
        if (d == Union.NOT_DIRECT) return false;
        if (d < 0) { w.error(unique, -d); return true; }
        long n = Posix.pread(d, w.alignedData, Math.min(size, KernelFS.MAX_WRITE), off);
        if (n < 0) { w.error(unique, (int) -n); return true; }
        w.replyAligned(unique, (int) n);
        return true;
    }

    void fallocate(long unique) {
        int fd = (int) w.in.getLong(IN_HEADER);
        long off = w.in.getLong(IN_HEADER + 8), len = w.in.getLong(IN_HEADER + 16);
        int mode = w.in.getInt(IN_HEADER + 24);
        int r = fs.union.fallocate(fd, mode, off, len);
        KernelFS.OpenFile f = fs.openFiles.get(fd);
        if (r == 0 && f != null && f.otherNames) w.notes.invalidateSiblingData(fs.inodes.ino(f.node), f.node);
        w.result(unique, r);
    }

    /**
     * COPY_FILE_RANGE (struct fuse_copy_file_range_in: fh_in, off_in, nodeid_out, fh_out, off_out, len,
     * flags): copied by the layers' file system. The reply's size is 32 bits: at most 1 GiB at a time
     * (copy_file_range may copy less than asked; callers loop). Where it cannot (EXDEV: another file
     * system, EOPNOTSUPP) the kernel falls back to copying through reads and writes.
     */
    void copyFileRange(long unique) {
        int in = (int) w.in.getLong(IN_HEADER), out = (int) w.in.getLong(IN_HEADER + 24);
        long inOff = w.in.getLong(IN_HEADER + 8), outOff = w.in.getLong(IN_HEADER + 32);
        long len = Math.min(w.in.getLong(IN_HEADER + 40), 1L << 30), flags = w.in.getLong(IN_HEADER + 48);
        KernelFS.OpenFile fi = fs.openFiles.get(in), f = fs.openFiles.get(out);
        long n = fs.union.copyFileRange(in, inOff, out, outOff, len, flags, fi != null && fi.direct, f != null && f.direct);
        if (n < 0) { w.error(unique, (int) -n); return; }
        if (f != null && f.otherNames) w.notes.invalidateSiblingData(fs.inodes.ino(f.node), f.node);
        w.outData.putInt(0, (int) n);
        w.outData.putInt(4, 0);
        w.reply(unique, 8);
    }

    void lseek(long unique) {
        int fd = (int) w.in.getLong(IN_HEADER);
        long off = w.in.getLong(IN_HEADER + 8);
        int whence = w.in.getInt(IN_HEADER + 16);
        // the file the reads come from (below a metadata-only copy: the data's; after a copy-up: the copy;
        // a lazy layer's file: its span of the tar)
        long r = fs.union.lseek(fd, off, whence);
        if (r < 0) { w.error(unique, (int) -r); return; }
        w.outData.putLong(0, r);
        w.reply(unique, 8);
    }
}
