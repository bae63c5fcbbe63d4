package dev.strata.fuse.kernel;

import dev.strata.fuse.kernel.Inodes.KNode;
import dev.strata.posix.Posix;

import java.util.ArrayList;

import static dev.strata.fuse.kernel.Proto.*;
import static dev.strata.posix.Errno.ENOENT;

/**
 * A worker's notifications to the kernel (NOTIFY_INVAL_INODE) that drop what it caches of nodes a
 * request changed besides the one it names: copied-up nodes and their parents, listings whose inode
 * numbers changed, the other names of a multi-link file. Written with the worker's {@code note} buffer,
 * on the worker's thread.
 */
final class Invalidations {
    private final Worker w;
    private final KernelFS fs;
    /** What the engine reported during the current request (the worker's lists: KernelFS.COPIED/RELISTED). */
    private final ArrayList<String> copied, relisted;

    Invalidations(KernelFS fs, Worker w, ArrayList<String> copied, ArrayList<String> relisted) {
        this.w = w;
        this.fs = fs;
        this.copied = copied;
        this.relisted = relisted;
    }

    /**
     * Before the reply: attribute invalidations for nodes this request changed besides its own (what it
     * copied up and their parents), and cached listings that show a changed inode number.
     */
    void sendNotes() {
        if (!relisted.isEmpty()) {
            for (String p : relisted) {
                KNode k = fs.inodes.find(p);
                if (k != null) invalidate(k.id, 0); // its cached listing, and attributes
            }
            relisted.clear();
        }
        if (copied.isEmpty()) return;
        for (String p : copied) {
            KNode k = fs.inodes.find(p);
            if (k != null) invalidate(k.id);
            // and its parent's: the upper directory's ctime changed with it (a new entry, its times
            // put back, the impure marker), as the kernel overlay shows
            int slash = p.lastIndexOf('/');
            KNode d = fs.inodes.find(slash <= 0 ? "/" : p.substring(0, slash));
            if (d != null) invalidate(d.id);
        }
        copied.clear();
    }

    void invalidate(long id) {
        invalidate(id, -1); // attributes only
    }

    /** NOTIFY_INVAL_INODE: the node's attributes, and from byte {@code off} on its cached data (-1: none). */
    void invalidate(long id, long off) {
        w.note.putInt(0, OUT_HEADER + 24);
        w.note.putInt(4, NOTIFY_INVAL_INODE);
        w.note.putLong(8, 0);
        w.note.putLong(16, id);
        w.note.putLong(24, off);
        w.note.putLong(32, 0);    // to the end
        long r = Posix.write(fs.devFd, w.note, OUT_HEADER + 24);
        if (r < 0 && r != -ENOENT) fs.log.debug("invalidate node " + id + ": " + Posix.strerror((int) r));
    }

    void invalidateSiblings(long ino, KNode except) {
        for (long id : fs.inodes.siblings(ino, except)) invalidate(id);
    }

    /**
     * After a change of a file's data through one name: the other names' attributes and cached data.
     * The kernel drops a node's pages by itself only when the size it is told differs (strata does not
     * ask for AUTO_INVAL_DATA, which would also drop them on every changed mtime, so after each write
     * through the mount: see {@link InitOps#init})
     */
    void invalidateSiblingData(long ino, KNode except) {
        for (long id : fs.inodes.siblings(ino, except)) invalidate(id, 0);
    }
}
