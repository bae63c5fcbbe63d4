package dev.strata.fuse.kernel;

import dev.strata.fuse.Callers;
import dev.strata.fuse.kernel.Inodes.KNode;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;

import static dev.strata.fuse.kernel.Proto.*;
import static dev.strata.posix.Errno.*;

/**
 * Requests on attributes: GETATTR, SETATTR, READLINK, STATFS, and the rules for clearing S_ISUID /
 * S_ISGID (FUSE_HANDLE_KILLPRIV_V2) as the VFS decides them.
 */
final class AttrOps extends Family {
    AttrOps(KernelFS fs, Worker w) { super(fs, w); }

    void getattr(long unique, KNode node) {
        int flags = w.in.getInt(IN_HEADER);
        int r;
        if ((flags & GETATTR_FH) != 0) {
            r = fs.union.fgetattr((int) w.in.getLong(IN_HEADER + 8), w.stat);
        } else {
            String p = fs.inodes.path(node);
            int fd;
            byte[] removed = fs.inodes.removedStat(node);
            if (p != null) r = fs.union.getattr(p, w.stat);
            else if ((fd = w.files.openFd(node)) >= 0) r = removedAttr(node, fd);
            else if (removed != null) { w.stat.put(0, removed, 0, removed.length); r = 0; }
            else r = -ENOENT;
        }
        if (r < 0) { w.error(unique, -r); return; }
        fs.inodes.setIno(node, w.stat.getLong(Stat.OFF_INO));
        w.replyAttr(unique, node);
    }

    void setattr(long unique, KNode node) {
        int b = IN_HEADER;
        int valid = w.in.getInt(b);
        long fh = w.in.getLong(b + 8);
        boolean hasFh = (valid & FATTR_FH) != 0;
        String p = fs.inodes.path(node);
        boolean removed = p == null && !hasFh;
        if (removed) {
            // a removed name that is still open: change the open file (truncate of /proc/self/fd/N)
            int fd = w.files.openFd(node);
            if (fd < 0) { w.error(unique, ENOENT); return; }
            fh = fd;
            hasFh = true;
        }
        // the writeback cache's flush of the times the kernel keeps (fuse_flush_times, at close and fsync:
        // FATTR_MTIME and FATTR_CTIME, whenever it marked them dirty, also for a ctime of its own after an
        // unlink): for a removed name, where that mtime is the file's already, nothing changes (the close of
        // a read-only descriptor of a removed lower file, which cannot be copied up, must not fail). Not for
        // a named file: a `touch -m` within the same clock tick looks the same, and must meet its checks
        if (fs.writeback && p == null && (valid & ~(FATTR_FH | FATTR_LOCKOWNER | FATTR_CTIME)) == FATTR_MTIME) {
            int r = fs.union.fgetattr((int) fh, w.stat);
            if (r == 0 && w.stat.getLong(Stat.OFF_MTIME) == w.in.getLong(b + 40)
                    && w.stat.getLong(Stat.OFF_MTIME_NS) == (w.in.getInt(b + 60) & 0xffffffffL)) {
                w.replyAttr(unique, node);
                return;
            }
        }
        // FATTR_KILL_SUIDGID (with a size: the caller lacks CAP_FSETID; with an owner: always): what to
        // clear is decided on the attributes before the change, as the VFS does, and cleared after it.
        // A SETATTR that changes nothing is notify_change(ATTR_KILL_SUID/SGID...) reaching fuse_setattr,
        // which (with HANDLE_KILLPRIV_V2) leaves the clearing to the server: file_remove_privs before a
        // write by a caller without CAP_FSETID (fallocate, copy_file_range and passthrough writes have
        // no flag of their own), or chown(f, -1, -1), which clears S_ISUID whoever calls it
        // (under the writeback cache the kernel keeps ctime itself and sends it along: FATTR_CTIME,
        // which strata cannot set and leaves to the file system)
        boolean killOnly = fs.killPriv && (valid & ~(FATTR_FH | FATTR_LOCKOWNER | FATTR_CTIME)) == 0;
        int kill = -1;
        if (((valid & FATTR_KILL_SUIDGID) != 0 || killOnly) && (valid & FATTR_MODE) == 0) {
            kill = privsToKill(p, hasFh ? (int) fh : -1, killOnly || (valid & (FATTR_UID | FATTR_GID)) != 0);
            // chown(f, -1, -1) becomes a mode change where there are bits to clear, which the VFS allows
            // only the owner or CAP_FOWNER (setattr_prepare): the kernel overlay answers EPERM and keeps
            // them. The same empty SETATTR also comes from file_remove_privs (ATTR_FORCE: no check)
            // before a write by a caller without CAP_FSETID, who holds the file open for writing
            if (killOnly && kill >= 0 && !ownerOrCapable(w.privStat.getInt(Stat.OFF_UID)) && !w.files.openForWriting(node)) {
                w.error(unique, EPERM);
                return;
            }
        }
        int r = 0;
        if ((valid & FATTR_MODE) != 0) {
            int mode = w.in.getInt(b + 68);
            r = p != null ? fs.union.chmod(p, mode) : fs.union.fchmod((int) fh, mode);
        }
        if (r == 0 && (valid & (FATTR_UID | FATTR_GID)) != 0) {
            int u = (valid & FATTR_UID) != 0 ? w.in.getInt(b + 76) : -1;
            int g = (valid & FATTR_GID) != 0 ? w.in.getInt(b + 80) : -1;
            r = p != null ? fs.union.chown(p, u, g) : fs.union.fchown((int) fh, u, g);
        }
        if (r == 0 && (valid & FATTR_SIZE) != 0) {
            long size = w.in.getLong(b + 16);
            r = removed ? fs.union.truncateRemoved((int) fh, size) : hasFh ? fs.union.ftruncate((int) fh, size) : fs.union.truncate(p, size);
        }
        // (a truncate under the writeback cache comes with the kernel's "now" as mtime and ctime: the
        // truncate itself sets them, with the permission of a truncate through that descriptor)
        boolean truncateTimes = (valid & (FATTR_SIZE | FATTR_ATIME)) == FATTR_SIZE && nowUnderWriteback(valid, b);
        if (r == 0 && (valid & (FATTR_ATIME | FATTR_MTIME)) != 0 && !truncateTimes) {
            long as = Posix.UTIME_OMIT, an = Posix.UTIME_OMIT, ms = 0, mn = Posix.UTIME_OMIT;
            if ((valid & FATTR_ATIME) != 0) {
                if ((valid & FATTR_ATIME_NOW) != 0) { as = 0; an = Posix.UTIME_NOW; }
                else { as = w.in.getLong(b + 32); an = w.in.getInt(b + 56) & 0xffffffffL; }
            } else as = 0;
            if ((valid & FATTR_MTIME) != 0) {
                if ((valid & FATTR_MTIME_NOW) != 0 || nowUnderWriteback(valid, b)) { ms = 0; mn = Posix.UTIME_NOW; }
                else { ms = w.in.getLong(b + 40); mn = w.in.getInt(b + 60) & 0xffffffffL; }
            }
            r = p != null ? fs.union.utimens(p, as, an, ms, mn) : fs.union.futimens((int) fh, as, an, ms, mn);
        }
        // chown(f, -1, -1) of a lower file: the kernel overlay copies it up (as any setattr), bits or not
        if (r == 0 && killOnly && p != null) r = fs.union.chown(p, -1, -1);
        if (r == 0 && kill >= 0) r = setMode(p, hasFh ? (int) fh : -1, kill);
        if (r < 0) { w.error(unique, -r); return; }
        r = p != null ? fs.union.getattr(p, w.stat) : removedAttr(node, (int) fh);
        if (r < 0) { w.error(unique, -r); return; }
        // the file's other nodes the kernel holds (other names, and names removed or renamed over that a
        // descriptor still holds) show the change at once, as the kernel overlay's one inode does:
        // st_nlink 1 now does not mean no other node caches the old attributes (a name removed since)
        if ((w.stat.getInt(Stat.OFF_MODE) & Posix.S_IFMT) != Posix.S_IFDIR) w.notes.invalidateSiblings(w.stat.getLong(Stat.OFF_INO), node);
        w.replyAttr(unique, node);
    }

    /**
     * Under the writeback cache the kernel keeps mtime itself and so sends "now" as a time of its own
     * instead of FATTR_MTIME_NOW (fuse.h iattr_to_fattr, trust_local_cmtime), with the ctime it set in
     * the same moment (setattr_copy: both from one current_time): an mtime equal to that ctime is a
     * "now". What it permits differs: a file's owner may touch an append-only file to now, not to a time
     * of their choosing (the kernel overlay answers `touch` 0 and `touch -d` EPERM).
     */
    private boolean nowUnderWriteback(int valid, int b) {
        return fs.writeback && (valid & FATTR_CTIME) != 0
                && w.in.getLong(b + 40) == w.in.getLong(b + 48) && w.in.getInt(b + 60) == w.in.getInt(b + 64);
    }

    /**
     * fstat through a descriptor of a node whose name is gone. A directory keeps the st_nlink its removal
     * left ({@link EntryOps#keptStat}: a merged one shows 1 on the kernel overlay, whatever its upper
     * directory counts), the rest is the inode's as changes through the descriptor left it.
     */
    private int removedAttr(KNode node, int fd) {
        int r = fs.union.fgetattr(fd, w.stat);
        byte[] kept = fs.inodes.removedStat(node);
        if (r == 0 && kept != null && (w.stat.getInt(Stat.OFF_MODE) & Posix.S_IFMT) == Posix.S_IFDIR) {
            w.stat.putLong(Stat.OFF_NLINK, java.nio.ByteBuffer.wrap(kept).order(java.nio.ByteOrder.nativeOrder()).getLong(Stat.OFF_NLINK));
        }
        return r;
    }

    void readlink(long unique, KNode node) {
        String p = w.pathOrError(unique, node);
        if (p == null) return;
        int r = fs.union.readlink(p, w.outData, 4096);
        if (r < 0) { w.error(unique, -r); return; }
        int len = 0;
        while (len < 4096 && w.outData.getByte(len) != 0) len++;
        w.reply(unique, len);
    }

    /**
     * inode_owner_or_capable for the request's caller: its fsuid is the file's owner as the mount shows
     * it, or it has CAP_FOWNER (see {@link Callers} for the rule).
     */
    boolean ownerOrCapable(int owner) {
        return w.uid() == owner || Callers.capable(w.in.getInt(IH_PID), w.uid(), Callers.CAP_FOWNER);
    }

    /** Clears what a write or O_TRUNC by a caller without CAP_FSETID clears on the file at p (null: by fd) / fd. */
    int killSuidGid(String p, int fd) {
        int mode = privsToKill(p, fd, false);
        return mode < 0 ? 0 : setMode(p, fd, mode);
    }

    /**
     * The mode a regular file keeps once the request's caller changed it, as the VFS's
     * setattr_should_drop_suidgid / setattr_should_drop_sgid decide (fs/attr.c): S_ISUID goes, S_ISGID
     * goes if group-execute is set or the caller is not in the file's group, nor (orCapable: a chown)
     * has CAP_FSETID; write, truncate and O_TRUNC are flagged only for callers without it. -1: nothing
     * to clear (or the file cannot be read, which the operation itself will report).
     */
    int privsToKill(String p, int fd, boolean orCapable) {
        int r = fd >= 0 ? fs.union.fgetattr(fd, w.privStat) : p != null ? fs.union.getattr(p, w.privStat) : -ENOENT;
        if (r < 0) return -1;
        int mode = w.privStat.getInt(Stat.OFF_MODE);
        if ((mode & Posix.S_IFMT) != Posix.S_IFREG || (mode & (KernelFS.S_ISUID | KernelFS.S_ISGID)) == 0) return -1;
        int keep = mode & 07777 & ~KernelFS.S_ISUID;
        if ((mode & KernelFS.S_ISGID) != 0
                && ((mode & KernelFS.S_IXGRP) != 0 || !callerInGroupOrCapable(w.privStat.getInt(Stat.OFF_GID), orCapable))) {
            keep &= ~KernelFS.S_ISGID;
        }
        return keep == (mode & 07777) ? -1 : keep;
    }

    int setMode(String p, int fd, int mode) {
        return p != null ? fs.union.chmod(p, mode) : fs.union.fchmod(fd, mode);
    }

    /**
     * Whether the request's caller is in group gid (its fsgid, or a supplementary group) or, if asked,
     * has CAP_FSETID; the groups and capabilities are read from /proc/PID/status (the header has only
     * the fsuid/fsgid). Only consulted for a set-group-ID file without group-execute.
     */
    boolean callerInGroupOrCapable(int gid, boolean orCapable) {
        return dev.strata.fuse.Callers.inGroupOrCapable(w.in.getInt(IH_PID), w.uid(), w.gid(), gid, orCapable);
    }

    void statfs(long unique) {
        int r = fs.union.statfs(w.stat);
        if (r < 0) { w.error(unique, -r); return; }
        // struct statvfs (x86_64): bsize 0, frsize 8, blocks 16, bfree 24, bavail 32, files 40, ffree 48, namemax 80
        w.outData.putLong(0, w.stat.getLong(16));
        w.outData.putLong(8, w.stat.getLong(24));
        w.outData.putLong(16, w.stat.getLong(32));
        w.outData.putLong(24, w.stat.getLong(40));
        w.outData.putLong(32, w.stat.getLong(48));
        w.outData.putInt(40, (int) w.stat.getLong(0));
        w.outData.putInt(44, (int) w.stat.getLong(80));
        w.outData.putInt(48, (int) w.stat.getLong(8));
        for (int i = 52; i < KSTATFS; i += 4) w.outData.putInt(i, 0);
        w.reply(unique, KSTATFS);
    }
}
