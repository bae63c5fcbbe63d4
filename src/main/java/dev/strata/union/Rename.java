package dev.strata.union;

import dev.strata.layer.At;
import dev.strata.layer.Layer;
import dev.strata.layer.Markers;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;

import static dev.strata.posix.Errno.*;
import static dev.strata.posix.Posix.*;

/**
 * Rename (the kernel's dir.c, ovl_rename): plain, RENAME_NOREPLACE and RENAME_EXCHANGE, with whiteouts
 * and opaque directories where lower names are involved.
 */
final class Rename {
    private final Overlay ovl;

    Rename(Overlay ovl) { this.ovl = ovl; }

    public int rename(String from, String to, int flags) {
        if (!ovl.hasUpper) return -EROFS;
        if ((flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT)) != 0) return -EINVAL;
        ovl.lock.writeLock().lock();
        try {
            Node src = ovl.namei.resolve(from);
            int e = Namei.err(src);
            if (e != 0) return e;
            if (src.parent == null) return -EBUSY;
            int[] pe = new int[1];
            Node dstDir = ovl.namei.parentOf(to, pe);
            if (pe[0] != 0) return pe[0];
            String dstName = Namei.lastName(to);
            if (ovl.files.libfuseHidesOpenFiles && dstName.startsWith(OpenFiles.FUSE_HIDDEN) && flags == 0 && !src.isDir()) {
                int r = ovl.protect.delete(src); // libfuse's unlink of an open file
                return r != 0 ? r : ovl.remove.hide(src, to);
            }
            if (dstName.length() > Overlay.NAME_MAX) return -ENAMETOOLONG;
            int r = ovl.create.checkNewName(dstName);
            if (r < 0) return r;
            Node dst = ovl.namei.child(dstDir, dstName);
            if (dst instanceof Namei.LookupError) return Namei.err(dst);
            if (src == dst) return 0;
            // two names of one upper file are one inode on the kernel overlay, and the VFS returns 0 for a
            // rename of an inode onto itself before overlayfs sees the flags; else ovl_rename refuses
            // RENAME_WHITEOUT (the FUSE side passes it on, and gives each name a node of its own)
            if ((flags & RENAME_WHITEOUT) != 0) return (flags & RENAME_NOREPLACE) == 0 && !dst.negative() && sameInode(src, dst) ? 0 : -EINVAL;
            // moving a directory into itself
            for (Node p = dstDir; p != null; p = p.parent) if (p == src) return -EINVAL;
            if ((flags & RENAME_EXCHANGE) != 0) {
                if (dst.negative()) return -ENOENT;
                r = ovl.protect.rename(src, dst, dstDir);
                return r != 0 ? r : exchange(src, dst);
            }
            if ((flags & RENAME_NOREPLACE) != 0 && !dst.negative()) return -EEXIST;
            r = ovl.protect.rename(src, dst, dstDir); // append-only, immutable (may_delete, may_create)
            if (r != 0) return r;
            if (!dst.negative()) {
                if (src.isDir() && !dst.isDir()) return -ENOTDIR;
                if (!src.isDir() && dst.isDir()) return -EISDIR;
            }
            // without redirect_dir=on the kernel refuses to move a lower or merged directory before it
            // looks at the target
            boolean redirect = src.isDir() && (src.layers.length > 1 || src.top() != 0);
            if (redirect && !ovl.opts.redirectWrite()) {
                ovl.events.renameRefused("/" + src.rel, "/" + Layer.child(dstDir.rel, dstName),
                        src.top() != 0 ? "directory is in a lower layer" : "directory merges lower layers");
                return -EXDEV;
            }
            // a directory that may hold whiteouts over lower entries is checked first (ovl_check_empty_dir);
            // a pure upper one only by the upper's own rename, after the copy-ups and the redirect
            boolean pureUpperDst = !dst.negative() && dst.isDir() && pureUpper(dst);
            if (!dst.negative()) {
                if (dst.isDir() && !pureUpperDst && !empty(dst)) return -ENOTEMPTY;
                if (sameInode(src, dst)) return 0; // hard links to one file: rename(2) does nothing
            }
            r = ovl.copy.copyUpMeta(src);
            if (r < 0) return r;
            String[] replacedIndexed = {null};
            if (ovl.index != null && !dst.negative() && !dst.isDir()) { // ovl_nlink_start of the replaced file
                r = ovl.index.nlinkStart(dst, replacedIndexed);
                if (r < 0) return r;
            }
            r = ovl.copy.copyUp(dstDir, true);
            if (r < 0) return r;
            Node srcDir = src.parent;
            if (redirect || src.metacopy()) {
                // a metadata-only copy keeps finding its data below through an absolute redirect
                r = setRedirect(src, srcDir == dstDir, "/" + Layer.child(dstDir.rel, dstName));
                if (r < 0) return r;
            }
            // an entry with an origin moving to another directory makes that one impure (ovl_rename)
            if (srcDir != dstDir && ovl.attrs.hasOrigin(src.rel)) ovl.attrs.markImpure(dstDir);
            boolean srcLower = ovl.namei.lowerHas(srcDir, src.name());
            Layer up = ovl.stack[0];
            String dstRel = Layer.child(dstDir.rel, dstName);
            Stat st = Stat.local2();
            boolean dstUpper = up.lstat(dstRel, st) == 0;
            boolean dstUpperIsDir = dstUpper && st.isDir();
            boolean dstUpperWhiteout = dstUpper && dst.negative();
            // a removed lower object copied back under a name known absent (RemovedLower): ovl_rename
            // finds no whiteout where the negative dentry says there is one
            if (dstUpperWhiteout && ovl.removedLower.hidden(dstRel)) return -ESTALE;
            boolean whFile = Markers.hasWhFile(up, dstDir.rel, dstName);
            if (src.isDir() && !redirect && merged(dstDir)) {
                // a pure upper directory moving into a merged one is made opaque, lower entries at the new
                // name or not, before the upper's own rename (which may still fail: ENOTEMPTY), as ovl_rename
                try (At a = up.at(src.rel)) {
                    int[] oe = new int[1];
                    if (!a.ok()) return a.err();
                    if (Markers.opaque(up, src.rel) == null) {
                        Markers.OpaqueForm f = Markers.markOpaque(a, oe);
                        if (f == null) return oe[0];
                        ovl.events.opaque("/" + dstRel, f.label);
                    }
                }
            }
            // a pure upper target: renameat2 on the upper answers ENOTEMPTY where it has entries (after
            // the copy-ups above, and with what the upper's file system does on the way, as on the kernel:
            // ext4 touches the old directory's times for a RENAME_WHITEOUT that fails)
            if (dstUpperIsDir && !pureUpperDst) {
                r = Tree.removeContents(up, dstRel); // only markers are left in a merged-empty directory
                if (r < 0) return r;
            }
            boolean srcWhiteoutDone = false;
            if (src.isDir() && dstUpperWhiteout) {
                // a directory cannot replace a device: swap them; the whiteout, now at the old name, stays
                // there if the old name needs one (in one step), else it is dropped
                r = renameUpper(src.rel, dstRel, RENAME_EXCHANGE);
                if (r == 0) {
                    srcWhiteoutDone = srcLower && up.lstat(src.rel, st) == 0 && st.isWhiteoutDevice();
                    if (!srcWhiteoutDone) r = ovl.remove.unlinkUpper(src.rel, 0);
                }
            } else if (srcLower) {
                r = renameLeavingWhiteout(srcDir, src, dstRel);
                srcWhiteoutDone = r == 0;
            } else {
                r = renameUpper(src.rel, dstRel, 0);
            }
            if (r < 0) return r;
            if (whFile) ovl.remove.unlinkUpper(Layer.child(dstDir.rel, Markers.WH_PREFIX + dstName), 0);
            if (srcLower && !srcWhiteoutDone) {
                r = ovl.remove.whiteoutAt(srcDir, src.name(), false);
                if (r < 0) return r;
            }
            if (!dst.negative()) ovl.remove.markGone(dst, true);
            if (replacedIndexed[0] != null) ovl.index.nlinkEnd(replacedIndexed[0]);
            ovl.remove.markGone(src, false);
            if (src.isDir()) ovl.removedLower.moved(src.rel, dstRel);
            srcDir.forget(src.name());
            dstDir.forget(dstName);
            return 0;
        } finally {
            ovl.lock.writeLock().unlock();
        }
    }

    /** The kernel's ovl_type_merge of a directory (copied up): in the upper and in a lower layer, not opaque. */
    static boolean merged(Node dir) {
        return dir.layers.length > 1 && dir.top() == 0;
    }

    private boolean empty(Node dir) {
        int[] re = new int[1];
        return ovl.readdir.isEmptyDir(dir, re);
    }

    /**
     * A directory only in the upper layer that was never copied up (no origin): the kernel's
     * ovl_pure_upper, a directory with no whiteouts to clear (OVL_WHITEOUTS is set on merged and
     * copied-up ones).
     */
    private boolean pureUpper(Node dir) {
        if (dir.layers.length != 1 || dir.top() != 0 || !ovl.hasUpper) return false;
        Layer up = ovl.stack[0];
        return ovl.attrs.origin(dir.rel) == 0 && up.getxattr(dir.rel, "trusted.overlay.origin") == null
                && up.getxattr(dir.rel, "user.overlay.origin") == null;
    }

    /** Two names of one inode: one upper file, or (index=on) one indexed file (see {@link Index#sameInode}). */
    private boolean sameInode(Node a, Node b) {
        return sameUpperInode(a, b) || ovl.index != null && ovl.index.sameInode(a, b);
    }

    /** The kernel's redirect_max: a longer redirect makes the rename EXDEV (mv then copies). */
    static final int REDIRECT_MAX = 256;

    /**
     * Stores overlay.redirect on the upper copy of a lower or merged directory about to move (the
     * kernel's ovl_set_redirect): a redirect it has is kept when the move stays in its directory or the
     * redirect is absolute; else a move within its directory records its old name, and a move to another
     * directory its old path from the root, made of its own and its ancestors' redirects where they have
     * them (ovl_get_redirect). Returns 0 or -errno (EXDEV when it would be over redirect_max).
     */
    int setRedirect(Node src, boolean samedir, String to) {
        Layer up = ovl.stack[0];
        String have = Markers.redirect(up, src.rel);
        // a file (a metadata-only copy) whose lower file has other names gets an absolute one even in its
        // directory, as two upper names of it may end up in different ones (ovl_need_absolute_redirect)
        boolean absolute = !samedir || (!src.isDir() && lowerNlink(src) > 1);
        if (have != null && (!absolute || have.startsWith("/"))) return 0;
        String redirect = absolute ? absoluteRedirect(src, src.top() == 0 ? have : null) : src.name();
        if (redirect.length() > REDIRECT_MAX) return -EXDEV;
        try (At a = up.at(src.rel)) {
            if (!a.ok()) return a.err();
            int r = Markers.setRedirect(a, ovl.redirectXattr, redirect);
            // as the kernel: a redirect the upper cannot hold means a move it cannot make (mv copies)
            if (r < 0) return r == -ENOSPC || r == -EDQUOT ? r : -EXDEV;
        }
        ovl.events.redirected("/" + src.rel, to, redirect, ovl.redirectXattr);
        return 0;
    }

    /**
     * The absolute redirect to n's path in the layers below (ovl_get_redirect with abs): its own redirect
     * ({@code own}, null for none) or name, then its directories', each directory's own redirect where it
     * has one, up to the root or an absolute one.
     */
    String absoluteRedirect(Node n, String own) {
        Layer up = ovl.stack[0];
        StringBuilder b = new StringBuilder();
        for (Node p = n; p.parent != null; p = p.parent) {
            String r = p == n ? own : p.top() == 0 ? Markers.redirect(up, p.rel) : null;
            b.insert(0, r != null ? r : p.name());
            if (r != null && r.startsWith("/")) break;
            b.insert(0, '/');
        }
        return b.toString();
    }

    /**
     * Before the metadata-only copy open as {@code upperFd} (its name removed; {@code n} the node it had)
     * gets a new name through its descriptor: an absolute redirect to its old path on the file, so every
     * name of it finds the data below, as the kernel's ovl_link sets it (ovl_set_link_redirect) unless the
     * file has an absolute one. Nothing for a file that is not metadata only.
     */
    int setLinkRedirect(Node n, int upperFd, String to) {
        if (Posix.fgetxattr(upperFd, ovl.metacopyXattr) == null) return 0;
        // the file's own redirect, not the one at n's path: another file may have that name by now
        byte[] v = Posix.fgetxattr(upperFd, ovl.redirectXattr);
        String have = v == null || v.length == 0 ? null : new String(v, Posix.NAMES);
        if (have != null && have.startsWith("/")) return 0;
        String redirect = absoluteRedirect(n, have);
        if (redirect.length() > REDIRECT_MAX) return -EXDEV;
        int r = Posix.fsetxattr(upperFd, ovl.redirectXattr, redirect.getBytes(Posix.NAMES), 0);
        if (r < 0) return r == -ENOSPC || r == -EDQUOT ? r : -EXDEV;
        ovl.events.redirected("/" + n.rel, to, redirect, ovl.redirectXattr);
        return 0;
    }

    /** st_nlink of the lower file a metadata-only copy reads its data from (1 if there is none). */
    private long lowerNlink(Node n) {
        if (n.layers.length < 2) return 1;
        int dl = n.dataLayer();
        Stat st = Stat.local2();
        return ovl.stack[dl].lstat(n.relIn(dl), st) == 0 ? st.nlink() : 1;
    }

    /** Cleared once the upper refuses RENAME_WHITEOUT (no CAP_MKNOD, a file system without it). */
    volatile boolean renameWhiteoutWorks = true;

    /**
     * Renames upper/src to dstRel and leaves a whiteout at the old name (a lower layer has it): in one
     * step with renameat2(RENAME_WHITEOUT) where the upper supports it, as the kernel overlay does.
     * Elsewhere a device whiteout is made in the workdir first, so only two renames are left between
     * the old name's disappearance and its whiteout; without device whiteouts (unprivileged) the .wh.
     * file follows the rename (it cannot come first: a listing would drop the entry while it is there).
     * Returns 0 with the whiteout in place, 1 if the rename is done but the whiteout still to make, or -errno.
     */
    int renameLeavingWhiteout(Node srcDir, Node src, String dstRel) {
        if (renameWhiteoutWorks) {
            int r = renameUpper(src.rel, dstRel, RENAME_WHITEOUT);
            if (r == 0) {
                ovl.events.whiteout("/" + src.rel, Markers.WhiteoutForm.CHAR_DEVICE.label);
                return 0;
            }
            if (r != -EINVAL && r != -EOPNOTSUPP && r != -EPERM && r != -ENOSYS) return r;
            renameWhiteoutWorks = false;
        }
        String tmp = ovl.tmpName();
        int[] e = new int[1];
        Markers.WhiteoutForm f = Markers.createWhiteout(ovl.workFd, tmp, e);
        if (f == null) return e[0];
        if (f != Markers.WhiteoutForm.CHAR_DEVICE) {
            Posix.unlinkat(ovl.workFd, Markers.WH_PREFIX + tmp, 0);
            int r = renameUpper(src.rel, dstRel, 0);
            return r < 0 ? r : 1;
        }
        int r = renameUpper(src.rel, dstRel, 0);
        if (r < 0) {
            Posix.unlinkat(ovl.workFd, tmp, 0);
            return r;
        }
        r = ovl.copy.moveIntoUpper(tmp, src.rel, 0);
        if (r < 0) {
            Posix.unlinkat(ovl.workFd, tmp, 0);
            return 1; // renamed: the caller tries the whiteout again its own way
        }
        ovl.events.whiteout("/" + src.rel, f.label);
        return 0;
    }

    boolean sameUpperInode(Node a, Node b) {
        if (a.isDir() || b.isDir() || a.top() != 0 || b.top() != 0) return false;
        Stat sa = new Stat(), sb = new Stat();
        return ovl.stack[0].lstat(a.rel, sa) == 0 && ovl.stack[0].lstat(b.rel, sb) == 0 && sa.ino() == sb.ino();
    }

    int renameUpper(String fromRel, String toRel, int flags) {
        Layer up = ovl.stack[0];
        try (At a = up.at(fromRel); At b = up.at(toRel)) {
            if (!a.ok()) return a.err();
            if (!b.ok()) return b.err();
            return Posix.renameat2(a.dirfd(), a.name(), b.dirfd(), b.name(), flags);
        }
    }

    /** RENAME_EXCHANGE: both names must exist; lower or merged directories cannot move. */
    int exchange(Node a, Node b) {
        if (b.negative()) return -ENOENT;
        boolean[] redirect = new boolean[2];
        for (int i = 0; i < 2; i++) {
            Node n = i == 0 ? a : b;
            redirect[i] = n.isDir() && (n.layers.length > 1 || n.top() != 0);
            if (redirect[i] && !ovl.opts.redirectWrite()) return -EXDEV;
        }
        int r = ovl.copy.copyUpMeta(a);
        if (r == 0) r = ovl.copy.copyUpMeta(b);
        if (r < 0) return r;
        if (redirect[0] || a.metacopy()) r = setRedirect(a, a.parent == b.parent, "/" + b.rel);
        if (r == 0 && (redirect[1] || b.metacopy())) r = setRedirect(b, a.parent == b.parent, "/" + a.rel);
        if (r < 0) return r;
        // a pure upper directory that moves into a merged directory must not merge with lower entries there
        for (Node[] p : new Node[][]{{a, b}, {b, a}}) {
            if (p[0].isDir() && !redirect[p[0] == a ? 0 : 1] && merged(p[1].parent) && Markers.opaque(ovl.stack[0], p[0].rel) == null) {
                try (At at = ovl.stack[0].at(p[0].rel)) {
                    int[] e = new int[1];
                    if (at.ok() && Markers.markOpaque(at, e) == null) return e[0];
                }
            }
        }
        if (a.parent != b.parent) { // entries with an origin moving to another directory make it impure
            if (ovl.attrs.hasOrigin(a.rel)) ovl.attrs.markImpure(b.parent);
            if (ovl.attrs.hasOrigin(b.rel)) ovl.attrs.markImpure(a.parent);
        }
        r = renameUpper(a.rel, b.rel, RENAME_EXCHANGE);
        if (r < 0) return r;
        ovl.remove.markGone(a, false);
        ovl.remove.markGone(b, false);
        a.parent.forget(a.name());
        b.parent.forget(b.name());
        return 0;
    }
}
