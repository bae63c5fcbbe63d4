package dev.strata.fuse.kernel;

import dev.strata.fuse.Callers;
import dev.strata.fuse.kernel.Inodes.KNode;

import static dev.strata.fuse.kernel.Proto.*;
import static dev.strata.posix.Errno.*;

/**
 * Requests on extended attributes: SETXATTR, GETXATTR, LISTXATTR, REMOVEXATTR.
 */
final class XattrOps extends Family {
    XattrOps(KernelFS fs, Worker w) { super(fs, w); }

    void setxattr(long unique, KNode node) {
        int size = w.in.getInt(IN_HEADER), flags = w.in.getInt(IN_HEADER + 4);
        int nameOff = IN_HEADER + 8;
        String name = w.cstr(nameOff);
        int valueOff = w.cstrEnd(nameOff);
        String p = fs.inodes.path(node);
        int r;
        if (p != null) {
            r = fs.union.setxattr(p, name, w.in.slice(valueOff), size, flags);
        } else {
            int fd = w.files.openFd(node); // a removed name that is still open: through the open file
            r = fd < 0 ? -ENOENT : fs.union.fsetxattr(fd, name, w.in.slice(valueOff), size, flags);
        }
        changed(node, r);
        w.result(unique, r);
    }

    /**
     * After SETXATTR or REMOVEXATTR: the file's ctime changed, which its other names show too (the
     * kernel drops only this node's attributes).
     */
    private void changed(KNode node, int r) {
        if (r == 0) w.notes.invalidateSiblings(fs.inodes.ino(node), node);
    }

    void xattrRead(long unique, KNode node, boolean get) {
        String p = fs.inodes.path(node);
        int fd = p == null ? w.files.openFd(node) : -1; // a removed name that is still open: through the open file
        if (p == null && fd < 0) { w.error(unique, ENOENT); return; }
        int size = Math.min(w.in.getInt(IN_HEADER), KernelFS.OUT_BUF - OUT_HEADER);
        int r;
        if (get) {
            String name = w.cstr(IN_HEADER + 8);
            r = p != null ? fs.union.getxattr(p, name, w.outData, size) : fs.union.fgetxattr(fd, name, w.outData, size);
        } else {
            java.util.function.BooleanSupplier trusted = () -> Callers.capable(w.in.getInt(IH_PID), w.uid(), Callers.CAP_SYS_ADMIN);
            r = p != null ? fs.union.listxattr(p, w.outData, size, trusted) : fs.union.flistxattr(fd, w.outData, size, trusted);
        }
        if (r < 0) { w.error(unique, -r); return; }
        if (size == 0) {
            w.outData.putInt(0, r);
            w.outData.putInt(4, 0);
            w.reply(unique, 8);
        } else {
            w.reply(unique, r);
        }
    }

    void removexattr(long unique, KNode node) {
        String p = fs.inodes.path(node);
        int r;
        if (p != null) {
            r = fs.union.removexattr(p, w.cstr(IN_HEADER));
        } else {
            int fd = w.files.openFd(node); // a removed name that is still open: through the open file
            r = fd < 0 ? -ENOENT : fs.union.fremovexattr(fd, w.cstr(IN_HEADER));
        }
        changed(node, r);
        w.result(unique, r);
    }
}
