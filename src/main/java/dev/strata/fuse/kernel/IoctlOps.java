package dev.strata.fuse.kernel;

import dev.strata.fuse.Callers;
import dev.strata.fuse.kernel.Inodes.KNode;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;
import jnr.ffi.Pointer;

import static dev.strata.fuse.kernel.Proto.*;
import static dev.strata.posix.Errno.*;

/**
 * IOCTL: the file attribute flags (lsattr, chattr); every other ioctl is ENOTTY.
 */
final class IoctlOps extends Family {
    IoctlOps(KernelFS fs, Worker w) { super(fs, w); }

    /**
     * The ioctls the kernel sends for lsattr/chattr (fileattr_get/set: an OPEN, this, a RELEASE; a
     * directory's with FUSE_IOCTL_DIR and no handle): answered by path, on the top layer's file, a
     * set after a copy-up. Every other ioctl is not one a layer file answers for the mount: ENOTTY.
     */
    void ioctl(long unique, KNode node) {
        long cmd = w.in.getInt(IN_HEADER + 12) & 0xffffffffL;
        int inSize = w.in.getInt(IN_HEADER + 24), outSize = w.in.getInt(IN_HEADER + 28);
        boolean get = cmd == Posix.FS_IOC_GETFLAGS || cmd == Posix.FS_IOC32_GETFLAGS || cmd == Posix.FS_IOC_FSGETXATTR;
        boolean set = cmd == Posix.FS_IOC_SETFLAGS || cmd == Posix.FS_IOC32_SETFLAGS || cmd == Posix.FS_IOC_FSSETXATTR;
        int size = cmd == Posix.FS_IOC_FSGETXATTR || cmd == Posix.FS_IOC_FSSETXATTR ? Posix.FSXATTR_SIZE : 4;
        // the 32-bit numbers reach a FUSE server only from a 64-bit caller (the compat layer turns a
        // 32-bit caller's into the 64-bit ones), and only because the VFS does not know them there: it
        // then checks nothing. The kernel overlay and its layers' file systems answer ENOTTY
        if (!get && !set || cmd == Posix.FS_IOC32_GETFLAGS || cmd == Posix.FS_IOC32_SETFLAGS) { w.error(unique, ENOTTY); return; }
        if (get ? outSize < size : inSize < size) { w.error(unique, EINVAL); return; }
        String p = fs.inodes.path(node);
        if (p == null) { w.error(unique, ENOENT); return; }
        if (set) {
            // the VFS checks this before it sends the 64-bit ones (vfs_fileattr_set); checked again here
            // so that no flag ioctl a FUSE server is sent changes a file for a caller who is not its owner
            int r = fs.union.getattr(p, w.privStat);
            if (r < 0) { w.error(unique, -r); return; }
            if (!w.attrs.ownerOrCapable(w.privStat.getInt(Stat.OFF_UID))) { w.error(unique, EPERM); return; }
            // fileattr_set_prepare: the append-only and immutable flags change only with CAP_LINUX_IMMUTABLE
            // (the VFS checked it against the flags strata answered to its FS_IOC_GETFLAGS; again here)
            int v = w.in.getInt(IN_HEADER + IOCTL_IN);
            int prot = cmd == Posix.FS_IOC_FSSETXATTR
                    ? ((v & Posix.FS_XFLAG_APPEND) != 0 ? Posix.FS_APPEND_FL : 0) | ((v & Posix.FS_XFLAG_IMMUTABLE) != 0 ? Posix.FS_IMMUTABLE_FL : 0)
                    : v & (Posix.FS_APPEND_FL | Posix.FS_IMMUTABLE_FL);
            if (prot != fs.union.protFlags(p) && !Callers.capable(w.in.getInt(IH_PID), w.uid(), Callers.CAP_LINUX_IMMUTABLE)) {
                w.error(unique, EPERM);
                return;
            }
        }
        Pointer buf = w.outData.slice(IOCTL_OUT);
        for (int i = 0; i < Math.max(size, outSize) && i < 64; i++) buf.putByte(i, (byte) 0);
        int r;
        if (get) {
            r = fs.union.getFileattr(p, cmd == Posix.FS_IOC32_GETFLAGS ? Posix.FS_IOC_GETFLAGS : cmd, buf);
        } else {
            for (int i = 0; i < size; i++) buf.putByte(i, w.in.getByte(IN_HEADER + IOCTL_IN + i));
            r = fs.union.setFileattr(p, cmd == Posix.FS_IOC32_SETFLAGS ? Posix.FS_IOC_SETFLAGS : cmd, buf);
            if (r == 0) {
                // ctime changed, of every name of the file: the other names of a hard link too
                w.notes.invalidate(node.id);
                if (fs.union.getattr(p, w.stat) == 0 && w.multiLinkFile()) w.notes.invalidateSiblings(w.stat.getLong(Stat.OFF_INO), node);
            }
        }
        if (r < 0) { w.error(unique, -r); return; }
        for (int i = 0; i < IOCTL_OUT; i += 4) w.outData.putInt(i, 0);
        w.reply(unique, IOCTL_OUT + (get ? Math.min(outSize, 64) : 0));
    }
}
