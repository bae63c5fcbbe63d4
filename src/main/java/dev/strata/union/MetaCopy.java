package dev.strata.union;

import dev.strata.layer.Layer;
import dev.strata.layer.Markers;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;

import static dev.strata.posix.Errno.*;
import static dev.strata.posix.Posix.*;

/**
 * Metadata-only copy-up (metacopy=on; the kernel's overlayfs.rst "Metadata only copy up", copy_up.c
 * ovl_need_meta_copy_up and ovl_copy_up_meta_inode_data). A change of metadata (chmod, chown, utimens,
 * setxattr, file flags, link, rename) of a lower regular file copies up its metadata only: the upper
 * file has the lower file's size but no data (sparse) and carries an empty {@code overlay.metacopy}
 * xattr (trusted., or user. where the origin is user.), as the kernel writes it without fs-verity.
 * Reads go to the file below that has the data ({@link Node#dataLayer()}; found through overlay.redirect
 * when the file was renamed, see {@link LayerLookup}). The first write open, truncate or other change of
 * data copies the data into the upper file in place and then removes the xattr, as the kernel does (a
 * crash in between leaves a metadata-only copy, whose reads still go below: nothing is lost).
 */
final class MetaCopy {
    private final Overlay ovl;

    MetaCopy(Overlay ovl) { this.ovl = ovl; }

    /** Copies a regular file's data for a copy-up into out: from the file below for a metadata-only copy n. */
    int copyData(Node n, Layer src, int in, int out, long size, String[] method) {
        if (!n.metacopy() || n.dataLayer() == src.index()) return ovl.dataCopy.copy(src.index(), in, out, size, ovl.opts.fsync, method);
        int dl = n.dataLayer();
        int data = ovl.stack[dl].openat(n.relIn(dl), O_RDONLY | O_NOFOLLOW, true);
        if (data < 0) return data;
        try {
            return ovl.dataCopy.copy(dl, data, out, size, ovl.opts.fsync, method);
        } finally {
            Posix.close(data);
        }
    }

    /**
     * Makes the unnamed copy out of n a metadata-only one: its size without data, and the metacopy mark:
     * empty, or with verity=on/require the fs-verity digest of n's data file (see {@link Lowerdata#metacopyValue};
     * EIO with verity=require where it has none, as the kernel's copy-up).
     */
    int mark(Node n, int out, long size) {
        int dl = n.dataLayer();
        byte[] value = ovl.lowerdata.metacopyValue(ovl.stack[dl], n.relIn(dl));
        if (value == null) {
            ovl.events.dataRefused("/" + n.rel, "copy-up: its data file has no fs-verity digest (verity=require)");
            return -EIO;
        }
        int r = Posix.ftruncate(out, size);
        return r < 0 ? r : Posix.fsetxattr(out, ovl.metacopyXattr, value, 0);
    }

    /** {@link #mark} for a copy built under the name tmp in the workdir. */
    int markNamed(Node n, String tmp, long size) {
        int fd = Posix.openat(ovl.workFd, tmp, O_WRONLY | O_NOFOLLOW, 0);
        if (fd < 0) return fd;
        try {
            return mark(n, fd, size);
        } finally {
            Posix.close(fd);
        }
    }

    /** The node's state once its metadata-only copy has a name in the upper (under the exclusive lock). */
    void copiedUpMeta(Node n, Layer src, Stat st, long ino, boolean keepIno, long t0) {
        if (!keepIno) {
            n.ino = 0;
            if (n.parent != null) {
                n.parent.listing = null;
                ovl.events.numberChanged("/" + n.parent.rel);
            }
        }
        int dl = n.dataLayer(); // the lower file itself, or the data below a lower metadata-only copy
        n.layers = new int[]{0, dl};
        n.verified = false; // its digest is the upper copy's from now on (OVL_VERIFIED_DIGEST cleared)
        // descriptors opened read-only on the lower file keep reading it (it still has the data); their
        // fstat and changes go to the upper copy, the inode's (seen once the name is renamed over or removed)
        if (!ovl.files.lowerHandles.isEmpty()) ovl.copy.switchLowerHandles(n, ino, keepIno, true);
        ovl.events.copiedUp("/" + n.rel, src.root().toString(), "file", 0, System.nanoTime() - t0,
                "metadata only: " + ovl.metacopyXattr + ", data stays in " + ovl.stack[dl].root());
    }

    /**
     * Copies the data of the metadata-only copy n into its upper file and removes the metacopy mark
     * (ovl_copy_up_meta_inode_data): in place, keeping the file's capabilities, which the write drops.
     * With {@code data=false} (the file is truncated to 0 next) no data is copied. Under the exclusive lock.
     */
    int dataUp(Node n, boolean data) {
        long t0 = System.nanoTime();
        Layer up = ovl.stack[0];
        int dl = n.dataLayer();
        Layer src = ovl.stack[dl];
        Stat st = new Stat();
        int r = up.lstat(n.rel, st);
        if (r < 0) return r;
        int out = up.openat(n.rel, O_WRONLY | O_NOFOLLOW, false);
        if (out < 0) return out;
        long bytes = 0;
        String[] method = {"metadata"};
        try {
            if (!marked(out)) {
                // another name of this upper file got the data first (a hard link made after the copy-up)
                n.layers = Node.single(0);
                return 0;
            }
            if (data && st.size() > 0) {
                byte[] cap = Posix.fgetxattr(out, CopyUp.CAPABILITY);
                int in = src.openat(n.relIn(dl), O_RDONLY | O_NOFOLLOW, true);
                if (in < 0) return in;
                try {
                    r = ovl.dataCopy.copy(dl, in, out, st.size(), ovl.opts.fsync, method);
                } finally {
                    Posix.close(in);
                }
                if (r == 0 && ovl.opts.fsync) r = Posix.fsync(out);
                if (r < 0) return r;
                bytes = st.size();
                if (cap != null) {
                    r = Posix.fsetxattr(out, CopyUp.CAPABILITY, cap, 0);
                    if (r < 0) return r;
                }
            }
            r = removeMark(out);
            if (r < 0) return r;
        } finally {
            Posix.close(out);
        }
        n.layers = Node.single(0);
        // descriptors that read the data below read the upper file from now on
        if (!ovl.files.lowerHandles.isEmpty()) ovl.copy.switchLowerHandles(n, n.ino, true, false);
        for (OpenFiles.MetaHandle m : ovl.files.metaHandles.values()) {
            if ((m.node != n && m.metaIno != st.ino()) || m.upperFd >= 0) continue;
            int fd = up.openat(n.rel, O_RDONLY | O_NOFOLLOW, ovl.files.noatime(false));
            if (fd >= 0) m.upperFd = fd;
        }
        ovl.events.copiedUp("/" + n.rel, src.root().toString(), "file data", bytes, System.nanoTime() - t0,
                method[0] + "; " + ovl.metacopyXattr + " removed");
        return 0;
    }

    /**
     * For a descriptor of a metadata-only copy whose name is gone (see {@link Attrs#truncateRemoved}):
     * copies the data below into its upper file, open for writing as {@code out}, and removes the mark;
     * reads through the descriptor go to the upper file from then on. 0 when there is nothing to do.
     * Under the exclusive lock.
     */
    int dataUpThrough(int fd, int out) {
        OpenFiles.MetaHandle m = ovl.files.metaHandles.get(fd);
        if (m == null || m.upperFd >= 0 || !marked(out)) return 0;
        Stat st = Stat.local2();
        int r = Posix.fstat(out, st);
        if (r < 0) return r;
        if (st.size() > 0) {
            byte[] cap = Posix.fgetxattr(out, CopyUp.CAPABILITY);
            r = ovl.dataCopy.copy(m.node.dataLayer(), m.dataFd, out, st.size(), ovl.opts.fsync, new String[1]);
            if (r == 0 && ovl.opts.fsync) r = Posix.fsync(out);
            if (r == 0 && cap != null) r = Posix.fsetxattr(out, CopyUp.CAPABILITY, cap, 0);
            if (r < 0) return r;
        }
        r = removeMark(out);
        if (r < 0) return r;
        int rd = Posix.openat(AT_FDCWD, "/proc/self/fd/" + fd, O_RDONLY, 0);
        if (rd >= 0) m.upperFd = rd;
        return 0;
    }

    /** Whether an open upper file still carries the metacopy mark. */
    static boolean marked(int fd) {
        byte[] v = Posix.fgetxattr(fd, Markers.TRUSTED_METACOPY);
        if (v == null) v = Posix.fgetxattr(fd, Markers.USER_METACOPY);
        return v != null;
    }

    /**
     * Whether the metadata-only copy n in the upper still is one: false once its data came up through
     * another name of the same upper file (a hard link), and n then reads its upper file as any other.
     */
    boolean stillMetacopy(Node n) {
        if (!n.metacopy()) return false;
        int t = n.top();
        // a lower metadata-only copy stays one; an upper one, or an index entry (index=on) another name
        // shows, loses its mark when its data is copied up (through any of its names)
        if (t != 0 && (ovl.index == null || t != ovl.index.layer)) return true;
        Layer l = ovl.stack[t];
        String p = n.relIn(t);
        if (l.getxattr(p, Markers.TRUSTED_METACOPY) != null || l.getxattr(p, Markers.USER_METACOPY) != null) return true;
        n.layers = Node.single(t);
        return false;
    }

    /** Removes the metacopy mark in whichever namespace the file has it (the kernel writes one). */
    private int removeMark(int fd) {
        int r = Posix.fremovexattr(fd, Markers.TRUSTED_METACOPY);
        int u = Posix.fremovexattr(fd, Markers.USER_METACOPY);
        if (r == 0 || u == 0) return 0;
        return r == -ENODATA && u == -ENODATA ? 0 : r != -ENODATA ? r : u;
    }
}
