package dev.strata.fuse.kernel;

import dev.strata.fuse.kernel.Inodes.KNode;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;
import dev.strata.union.Union;

import static dev.strata.fuse.kernel.Proto.*;
import static dev.strata.posix.Errno.*;

/**
 * Requests on names: LOOKUP, MKNOD, MKDIR, SYMLINK, LINK, UNLINK, RMDIR, RENAME(2).
 */
final class EntryOps extends Family {
    EntryOps(KernelFS fs, Worker w) { super(fs, w); }

    void lookup(long unique, KNode dir, String name) {
        String p = fs.inodes.childPath(dir, name);
        if (p == null) { w.error(unique, ENOENT); return; }
        int r = fs.union.getattr(p, w.stat);
        if (r == -ENOENT && fs.negativeCache) {
            // a negative entry the kernel may cache: node id 0
            for (int i = 0; i < ENTRY_OUT; i += 8) w.outData.putLong(i, 0);
            w.outData.putLong(16, fs.entrySec);
            w.outData.putInt(32, fs.entryNsec);
            w.reply(unique, ENTRY_OUT);
            return;
        }
        if (r < 0) { w.error(unique, -r); return; }
        w.replyEntry(unique, dir, name);
    }

    /** After a create-like call: the new name's entry, or the error. */
    void created(long unique, KNode dir, String name, String p, int r) {
        if (r < 0) { w.error(unique, -r); return; }
        r = fs.union.getattr(p, w.stat);
        if (r < 0) { w.error(unique, -r); return; }
        w.replyEntry(unique, dir, name);
    }

    void symlink(long unique, KNode dir) {
        String name = w.cstr(IN_HEADER);
        String target = w.cstr(w.cstrEnd(IN_HEADER));
        String p = fs.inodes.childPath(dir, name);
        if (p == null) { w.error(unique, ENOENT); return; }
        created(unique, dir, name, p, fs.union.symlink(target, p, w.uid(), w.gid()));
    }

    void mknod(long unique, KNode dir) {
        long rdev = w.in.getInt(IN_HEADER + 4) & 0xffffffffL;
        String name = w.cstr(IN_HEADER + 16);
        String p = fs.inodes.childPath(dir, name);
        if (p == null) { w.error(unique, ENOENT); return; }
        int mode = masked(dir, w.in.getInt(IN_HEADER), w.in.getInt(IN_HEADER + 8));
        created(unique, dir, name, p, fs.union.mknod(p, mode, rdev, w.uid(), w.gid()));
    }

    void mkdir(long unique, KNode dir) {
        String name = w.cstr(IN_HEADER + 8);
        String p = fs.inodes.childPath(dir, name);
        if (p == null) { w.error(unique, ENOENT); return; }
        int mode = masked(dir, w.in.getInt(IN_HEADER), w.in.getInt(IN_HEADER + 4));
        created(unique, dir, name, p, fs.union.mkdir(p, mode, w.uid(), w.gid()));
    }

    /**
     * The mode a new object gets. With POSIX ACLs the kernel passes the umask along instead of
     * applying it: it applies unless the parent has a default ACL (which the upper layer's file
     * system then applies, as on the kernel overlay).
     */
    int masked(KNode dir, int mode, int umask) {
        if (!fs.posixAcl || umask == 0) return mode;
        String dp = fs.inodes.path(dir);
        if (dp != null && fs.union.getxattr(dp, "system.posix_acl_default", w.outData, 0) > 0) return mode;
        return mode & ~umask;
    }

    void remove(long unique, KNode dir, String name, boolean isDir) {
        String p = fs.inodes.childPath(dir, name);
        if (p == null) { w.error(unique, ENOENT); return; }
        KNode held = fs.inodes.peek(dir, name);
        byte[] snapshot = keptStat(held, p);
        int keep = keepRemoved(held, p, snapshot);
        int r = isDir ? fs.union.rmdir(p) : fs.union.unlink(p);
        if (r < 0) {
            if (keep >= 0) fs.union.release(keep);
            w.error(unique, -r);
            return;
        }
        KNode gone = fs.inodes.remove(dir, name);
        if (gone != null && snapshot != null) fs.inodes.x(gone).removedStat = snapshot;
        kept(gone, keep);
        // the file's other nodes show one link less (a node shared by its names: the kernel drops it itself)
        KNode file = gone != null ? gone : held;
        if (file != null && !isDir) w.notes.invalidateSiblings(fs.inodes.ino(file), file);
        detachedByRemoval(gone);
        w.reply(unique, 0);
    }

    /**
     * Before the reply to a removal (or rename over) that left a node the kernel holds without a name:
     * the kernel counts the removal itself once the reply is in (fuse_entry_unlinked: drop_nlink, and
     * the ctime it keeps), and under the writeback cache it then trusts the attributes it has, so an
     * fstat of a descriptor of the removed name would show st_nlink 0 where the kernel overlay shows
     * what the object has (a lower file: untouched). Their validity, dropped here, makes that fstat ask
     * strata. (Without the cache the kernel drops it itself: fuse_update_ctime.)
     */
    private void detachedByRemoval(KNode gone) {
        if (gone != null && fs.writeback) w.notes.invalidate(gone.id);
    }

    /**
     * Before the name p of a node the kernel holds is removed or renamed over (its attributes in
     * {@code snapshot}, from {@link #keptStat}): a descriptor the engine keeps on the object, which
     * changes through the kernel's descriptor of it act on (NodeExtra#removedFd), or -1. Not for a
     * regular file: the kernel opens those through strata, whose open file answers instead (one held
     * with O_PATH only keeps its snapshot), and removing names of regular files costs no extra open;
     * but for a regular file of the index (Union#indexedFile), whose snapshot would not follow it.
     */
    private int keepRemoved(KNode held, String p, byte[] snapshot) {
        if (held == null || snapshot == null) return -1;
        int type = java.nio.ByteBuffer.wrap(snapshot).order(java.nio.ByteOrder.nativeOrder()).getInt(Stat.OFF_MODE) & Posix.S_IFMT;
        // a regular file of the index (index=on): its names are one inode on the kernel overlay, which an
        // O_PATH descriptor of the removed name keeps following (st_nlink as the other names go, their
        // chmod and writes)
        if ((type == Posix.S_IFREG && !fs.union.indexedFile(p)) || w.files.openFd(held) >= 0) return -1;
        return fs.union.holdRemoved(p);
    }

    /** The name is gone: the node keeps the descriptor {@link #keepRemoved} took (released if none is held). */
    private void kept(KNode gone, int keep) {
        if (keep >= 0 && (gone == null || !fs.inodes.keepRemoved(gone, keep))) fs.union.release(keep);
    }

    /**
     * What {@code fstat} must show of a node the kernel holds once its name {@code p} is removed or
     * renamed over, where strata has no descriptor to ask: a directory (the kernel opens directories
     * without asking strata), a fifo, socket, device or symlink, a regular file opened with O_PATH (a
     * regular file strata opened is answered from that open file). As on the kernel overlay: an upper
     * object loses its link (a directory all of them: st_nlink 0), a lower one is untouched, a merged
     * directory stays at 1.
     */
    byte[] keptStat(KNode held, String p) {
        if (held == null || fs.union.getattr(p, w.stat) != 0) return null;
        if (fs.union.isUpper(p)) {
            long nlink = w.stat.getLong(Stat.OFF_NLINK);
            boolean dir = (w.stat.getInt(Stat.OFF_MODE) & Posix.S_IFMT) == Posix.S_IFDIR;
            w.stat.putLong(Stat.OFF_NLINK, dir ? (nlink == 1 ? 1 : 0) : Math.max(0, nlink - 1));
        }
        byte[] snapshot = new byte[Stat.SIZE];
        w.stat.get(0, snapshot, 0, Stat.SIZE);
        return snapshot;
    }

    void rename(long unique, KNode fromDir, int namesOff, int flags) {
        KNode toDir = fs.inodes.get(w.in.getLong(IN_HEADER));
        if (toDir == null) { w.error(unique, ESTALE); return; }
        String from = w.cstr(namesOff);
        String to = w.cstr(w.cstrEnd(namesOff));
        String fp = fs.inodes.childPath(fromDir, from), tp = fs.inodes.childPath(toDir, to);
        if (fp == null || tp == null) { w.error(unique, ENOENT); return; }
        boolean exchange = (flags & 2) != 0; // RENAME_EXCHANGE
        KNode moved = fs.inodes.peek(fromDir, from), other = exchange ? fs.inodes.peek(toDir, to) : null;
        // a node renamed over keeps answering fstat (keptStat); a rename that fails changed nothing
        KNode target = exchange ? null : fs.inodes.peek(toDir, to);
        byte[] snapshot = exchange ? null : keptStat(target, tp);
        int keep = keepRemoved(target, tp, snapshot);
        int r = fs.union.rename(fp, tp, flags);
        if (r < 0) {
            if (keep >= 0) fs.union.release(keep);
            // a rename the upper refused may have changed things first, as the kernel overlay's does:
            // the source copied up with its redirect (ctime), the old directory's times (ext4 makes and
            // drops the whiteout of a RENAME_WHITEOUT that fails with ENOTEMPTY)
            if (moved != null) w.notes.invalidate(moved.id);
            w.notes.invalidate(fromDir.id);
            if (toDir != fromDir) w.notes.invalidate(toDir.id);
            w.error(unique, -r);
            return;
        }
        KNode replaced = fs.inodes.rename(fromDir, from, toDir, to, exchange);
        if (replaced != null && snapshot != null) fs.inodes.x(replaced).removedStat = snapshot;
        kept(replaced, keep);
        // the replaced file's other names lost a link: also where its node lives on under another name (the
        // target was an alias of a node its upper names share, or that node's owner, whose name an alias took)
        KNode lost = replaced != null ? replaced : target;
        if (lost != null) w.notes.invalidateSiblings(fs.inodes.ino(lost), lost);
        detachedByRemoval(replaced);
        // a renamed file's ctime changed, which its other names show too
        if (moved != null) w.notes.invalidateSiblings(fs.inodes.ino(moved), moved);
        if (other != null) w.notes.invalidateSiblings(fs.inodes.ino(other), other);
        w.reply(unique, 0);
    }

    void link(long unique, KNode newDir) {
        KNode old = fs.inodes.get(w.in.getLong(IN_HEADER));
        if (old == null) { w.error(unique, ESTALE); return; }
        String name = w.cstr(IN_HEADER + 8);
        String op = fs.inodes.path(old), np = fs.inodes.childPath(newDir, name);
        if (np == null) { w.error(unique, ENOENT); return; }
        int r;
        if (op != null) {
            r = fs.union.link(op, np);
        } else {
            // a node without a name: an O_TMPFILE file (linkat AT_EMPTY_PATH) or a removed upper file is
            // named through its descriptor; a removed lower file is refused (Union#linkFd)
            int fd = w.files.openFd(old);
            r = fd >= 0 ? fs.union.linkFd(fd, np) : -ENOENT;
        }
        if (r < 0) { w.error(unique, -r); return; }
        r = fs.union.getattr(np, w.stat);
        if (r < 0) { w.error(unique, -r); return; }
        long ino = w.stat.getLong(Stat.OFF_INO);
        boolean regular = (w.stat.getInt(Stat.OFF_MODE) & Posix.S_IFMT) == Posix.S_IFREG;
        // the new name is the old node's (the kernel overlay's link gives the new dentry the old inode)
        // where the file is a hard link of the upper or had no name; else a node of its own
        KNode k = regular && fs.union.isUpper(np)
                ? fs.inodes.link(old, newDir, name, ino, w.upperLinked(newDir, name), w.multiLinkFile()) : null;
        if (k != null) {
            w.fillEntry(0, k);
        } else {
            fs.inodes.markLinked(old, ino); // the old name shares the inode now
            // its open files' writes now change another name's attributes: page-cache and direct-I/O opens
            // invalidate them from now on; passthrough writes bypass strata, so the new name's attributes
            // are not cached while those opens last (attrsMustBeFresh)
            for (KernelFS.OpenFile f : fs.openFiles.values()) if (f.node.equals(old)) f.otherNames = true;
            k = w.entry(0, newDir, name);
        }
        w.notes.invalidateSiblings(ino, k);
        w.reply(unique, ENTRY_OUT);
    }
}
