package dev.strata.union;

import dev.strata.layer.At;
import dev.strata.layer.Layer;
import dev.strata.layer.Markers;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;

import static dev.strata.posix.Errno.*;
import static dev.strata.posix.Posix.*;

/**
 * Removing names (the kernel's dir.c, removing): unlink and rmdir, and the whiteouts they leave.
 */
final class Remove {
    private final Overlay ovl;

    Remove(Overlay ovl) { this.ovl = ovl; }

    /** Puts a whiteout at upper/rel, replacing whatever is there (through the workdir: atomic). */
    int whiteoutAt(Node dir, String name, boolean replacingDir) {
        Layer up = ovl.stack[0];
        String rel = Layer.child(dir.rel, name);
        String tmp = ovl.tmpName();
        int[] e = new int[1];
        Markers.WhiteoutForm f = Markers.createWhiteout(ovl.workFd, tmp, e);
        if (f == null) return e[0];
        if (f == Markers.WhiteoutForm.WH_FILE) {
            // unprivileged: no device whiteouts; remove the entry, then leave .wh.NAME beside it
            Posix.unlinkat(ovl.workFd, Markers.WH_PREFIX + tmp, 0);
            Stat st = Stat.local2();
            if (up.lstat(rel, st) == 0) {
                int r = st.isDir() ? Tree.removeDir(up, rel) : unlinkUpper(rel, 0);
                if (r < 0) return r;
            }
            try (At a = up.at(Layer.child(dir.rel, Markers.WH_PREFIX + name))) {
                if (!a.ok()) return a.err();
                int fd = Posix.openat(a.dirfd(), a.name(), O_CREAT | O_WRONLY | O_TRUNC, 0);
                if (fd < 0) return fd;
                Posix.close(fd);
            }
            ovl.events.whiteout("/" + rel, f.label);
            return 0;
        }
        int r;
        if (replacingDir) {
            r = ovl.copy.moveIntoUpper(tmp, rel, RENAME_EXCHANGE);
            if (r == 0) Tree.removeAt(ovl.workFd, tmp);
        } else {
            // the whiteout (a device, not a directory) replaces a file or takes a free name: no
            // directory moves, so the directories this thread keeps open stay usable (Posix.renameNonDir)
            try (At a = up.at(rel)) {
                r = a.ok() ? Posix.renameNonDir(ovl.workFd, tmp, a.dirfd(), a.name(), 0) : a.err();
            }
        }
        if (r < 0) Posix.unlinkat(ovl.workFd, tmp, 0);
        else ovl.events.whiteout("/" + rel, f.label);
        return r;
    }

    int unlinkUpper(String rel, int flags) {
        try (At a = ovl.stack[0].at(rel)) {
            return a.ok() ? Posix.unlinkat(a.dirfd(), a.name(), flags) : a.err();
        }
    }

    /** Whether the object at a mount path is in the upper layer (false if absent or only in lowers). */
    public boolean isUpper(String path) {
        ovl.lock.readLock().lock();
        try {
            Node n = ovl.namei.resolve(path);
            return Namei.err(n) == 0 && ovl.hasUpper && n.top() == 0;
        } finally {
            ovl.lock.readLock().unlock();
        }
    }

    /**
     * The upper file's own inode number where the object at a mount path is a regular file in the upper
     * layer with more than one name there (a hard link of the upper file system), else 0. Its names are
     * one file, as the kernel overlay's one inode for them (hashed by the upper inode: ovl_get_inode), so
     * the kernel transport gives them one node.
     */
    public long upperLinkedInode(String path) {
        ovl.lock.readLock().lock();
        try {
            Node n = ovl.namei.resolve(path);
            if (Namei.err(n) != 0 || !ovl.hasUpper || n.top() != 0 || n.type != S_IFREG) return 0;
            Stat st = Stat.local2();
            return ovl.stack[0].lstat(n.rel, st) == 0 && st.isRegular() && st.nlink() > 1 ? st.ino() : 0;
        } finally {
            ovl.lock.readLock().unlock();
        }
    }

    /**
     * Whether the object at a mount path is a regular file of the index (index=on): a lower file with
     * several names, or an upper name of an index entry. The kernel overlay gives all its names one inode
     * (hashed by its origin: ovl_get_inode), which a descriptor of a name keeps after the name goes, and
     * which follows what is done through the other names (st_nlink, mode, size): the kernel transport
     * keeps a descriptor of the file for a removed name then ({@link OpenFiles#holdRemoved}).
     */
    public boolean indexedFile(String path) {
        if (ovl.index == null) return false;
        ovl.lock.readLock().lock();
        try {
            Node n = ovl.namei.resolve(path);
            if (Namei.err(n) != 0 || n.negative() || n.type != S_IFREG) return false;
            return ovl.index.needsIndex(n) || ovl.index.indexedName(n) != null;
        } finally {
            ovl.lock.readLock().unlock();
        }
    }

    public int unlink(String path) {
        if (!ovl.files.hidden.isEmpty() && ovl.files.hidden.remove(path) != null) return 0;
        if (!ovl.hasUpper) return -EROFS;
        ovl.lock.writeLock().lock();
        try {
            Node n = ovl.namei.resolve(path);
            int e = Namei.err(n);
            if (e != 0) return e;
            e = ovl.protect.delete(n); // append-only, immutable (may_delete)
            if (e != 0) return e;
            if (n.isDir()) return -EISDIR;
            Node dir = n.parent;
            int r = removeName(dir, n, false);
            if (r == 0) markGone(n, true);
            return r;
        } finally {
            ovl.lock.writeLock().unlock();
        }
    }

    public int rmdir(String path) {
        if (!ovl.hasUpper) return -EROFS;
        ovl.lock.writeLock().lock();
        try {
            Node n = ovl.namei.resolve(path);
            int e = Namei.err(n);
            if (e != 0) return e;
            e = ovl.protect.delete(n);
            if (e != 0) return e;
            if (!n.isDir()) return -ENOTDIR;
            if (n.parent == null) return -EBUSY;
            int[] re = new int[1];
            if (!ovl.readdir.isEmptyDir(n, re)) return -ENOTEMPTY;
            if (re[0] < 0) return re[0];
            int r = removeName(n.parent, n, true);
            if (r == 0) markGone(n, true);
            return r;
        } finally {
            ovl.lock.writeLock().unlock();
        }
    }

    int removeName(Node dir, Node n, boolean isDir) {
        String[] indexed = {null};
        if (ovl.index != null && !isDir) { // a name of an indexed file comes up first (ovl_nlink_start)
            int r = ovl.index.nlinkStart(n, indexed);
            if (r < 0) return r;
        }
        int r = removeName0(dir, n, isDir);
        if (r == 0 && indexed[0] != null) ovl.index.nlinkEnd(indexed[0]);
        return r;
    }

    private int removeName0(Node dir, Node n, boolean isDir) {
        boolean inUpper = n.top() == 0;
        boolean needWhiteout = !inUpper || ovl.namei.lowerHas(dir, n.name());
        int r;
        if (!needWhiteout) {
            r = isDir ? Tree.removeDir(ovl.stack[0], n.rel) : unlinkUpper(n.rel, 0);
        } else {
            r = ovl.copy.copyUp(dir, true);
            if (r < 0) return r;
            r = whiteoutAt(dir, n.name(), isDir && inUpper);
        }
        dir.forget(n.name());
        return r;
    }

    void markGone(Node n, boolean deleted) {
        n.gone = true;
        if (deleted) n.deleted = true;
        ovl.files.nameGone(n, deleted);
    }

    /** libfuse hides an open file that is being removed: remove it for real and remember the hidden name. */
    int hide(Node src, String hiddenPath) {
        int r = removeName(src.parent, src, false);
        if (r < 0) return r;
        markGone(src, true);
        ovl.files.hidden.put(hiddenPath, src);
        return 0;
    }
}
