package dev.strata.union;

import dev.strata.layer.At;
import dev.strata.layer.Layer;
import dev.strata.layer.Markers;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;

import static dev.strata.posix.Errno.*;
import static dev.strata.posix.Posix.*;

/**
 * Creating names (the kernel's dir.c, creating): mkdir, mknod, symlink, create, O_TMPFILE, link,
 * over a whiteout through the workdir, opaque where lower entries would merge in.
 */
final class Create {
    private final Overlay ovl;

    Create(Overlay ovl) { this.ovl = ovl; }

    /** Creates the object itself at (dirfd, name); returns an fd (files), 0, or -errno. */
    interface Creator {
        int create(int dirfd, String name);
    }

    int checkNewName(String name) {
        if (name.length() > Overlay.NAME_MAX) return -ENAMETOOLONG;
        if (Markers.isMarkerName(name)) return -EINVAL;
        return 0;
    }

    /**
     * Creates a new name in the merged view (which the caller checked is absent): in the upper directly,
     * or over a whiteout through the workdir so the swap is atomic; a directory created where a whiteout
     * hid lower entries is made opaque. {@code chown} false for hard links (they share the inode).
     */
    int createName(Node dir, String name, boolean isDir, int mode, int uid, int gid, boolean chown,
                           Creator c) {
        int r = ovl.copy.copyUp(dir, true);
        if (r < 0) return r;
        Layer up = ovl.stack[0];
        String rel = Layer.child(dir.rel, name);
        Node old = ovl.namei.child(dir, name);
        Stat st = Stat.local2();
        boolean overDev = up.lstat(rel, st) == 0;  // only a whiteout can be there: the name is absent
        // but a removed lower object copied back under the name while it was known absent (RemovedLower):
        // ovl_create_over_whiteout finds no whiteout there
        if (overDev && ovl.removedLower.hidden(rel)) return -ESTALE;
        boolean whFile = Markers.hasWhFile(up, dir.rel, name);
        boolean opaque = isDir && (old.whiteout || overDev || whFile || ovl.namei.lowerHas(dir, name));
        int gidToSet = gid;
        int finalMode = mode;
        if (chown && (ovl.root || ovl.overrides.enabled())) {
            Stat ds = new Stat();
            if (up.lstat(dir.rel, ds) == 0) {
                ovl.overrides.apply(0, up, dir.rel, ds.pointer()); // the group and mode the directory shows
                if ((ds.mode() & 02000) != 0) {
                    // a setgid directory gives new entries its group, and new directories its setgid bit;
                    // objects built in the workdir must get them explicitly
                    gidToSet = ovl.opts.gidMapping.toContainer(ds.gid());
                    if (isDir) finalMode |= 02000;
                }
            }
        }
        int result;
        Stat pst = Stat.local2();
        boolean keepTimes = false;
        long as = 0, an = 0, ms = 0, mn = 0;
        if (overDev || opaque) {
            // built in the workdir, which has no default ACL of its own: where the upper directory has
            // one, the object is made in a scratch directory of the workdir that carries it, so the
            // upper's file system gives it the mode and ACLs it would give it in place (as the kernel
            // overlay's ovl_create_over_whiteout does with posix_acl_create)
            String scratch = withDefaultAcl(up, dir.rel);
            String tmp = scratch == null ? ovl.tmpName() : scratch + "/" + ovl.tmpName();
            result = c.create(ovl.workFd, tmp);
            if (result < 0) {
                if (scratch != null) Posix.unlinkat(ovl.workFd, scratch, AT_REMOVEDIR);
                return result;
            }
            r = chown ? own(ovl.workFd, tmp, finalMode, uid, gidToSet) : 0;
            if (r == 0 && opaque) {
                int[] e = new int[1];
                Markers.OpaqueForm f = Markers.markOpaque(At.of(ovl.workFd, tmp), e);
                if (f == null) r = e[0]; else ovl.events.opaque("/" + rel, f.label);
            }
            if (r == 0) {
                if (overDev && isDir) {
                    r = ovl.copy.moveIntoUpper(tmp, rel, RENAME_EXCHANGE);
                    if (r == 0) Posix.unlinkat(ovl.workFd, tmp, 0); // the whiteout, now in the workdir
                } else {
                    r = ovl.copy.moveIntoUpper(tmp, rel, 0);
                }
            }
            if (r < 0) {
                if (result > 0) Posix.close(result);
                Tree.removeAt(ovl.workFd, tmp);
            }
            if (scratch != null) Posix.unlinkat(ovl.workFd, scratch, AT_REMOVEDIR);
            if (r < 0) return r;
        } else {
            try (At a = up.at(rel)) {
                if (!a.ok()) return a.err();
                result = c.create(a.dirfd(), a.name());
                if (result < 0) return result;
                r = chown ? own(a.dirfd(), a.name(), finalMode, uid, gidToSet) : 0;
                if (r < 0) {
                    if (result > 0) Posix.close(result);
                    Posix.unlinkat(a.dirfd(), a.name(), isDir ? AT_REMOVEDIR : 0);
                    return r;
                }
                if (isDir && Rename.merged(dir) && !ovl.opts.allowOfflineChanges()) {
                    // ovl_create_upper: with index, metacopy, redirect_dir=on or xino=on, a new directory in
                    // a merged one is made opaque at once (the kernel lets this optimization fail)
                    int[] e = new int[1];
                    Markers.OpaqueForm f = Markers.markOpaque(a, e);
                    if (f != null) ovl.events.opaque("/" + rel, f.label);
                }
            }
        }
        if (whFile) {
            try (At a = up.at(Layer.child(dir.rel, Markers.WH_PREFIX + name))) {
                if (a.ok()) Posix.unlinkat(a.dirfd(), a.name(), 0);
            }
        }
        dir.forget(name);
        return result;
    }

    /**
     * A new directory in the workdir carrying the default ACL of the upper directory {@code rel}, or
     * null where that has none (or the upper cannot take one: the object is then made as before).
     */
    private String withDefaultAcl(Layer up, String rel) {
        if (ovl.opts.noAcl) return null;
        byte[] acl;
        try (At a = up.at(rel)) {
            if (!a.ok()) return null;
            acl = Posix.getxattrAt(a.dirfd(), a.name(), "system.posix_acl_default");
        }
        if (acl == null || acl.length == 0) return null;
        String scratch = ovl.tmpName();
        if (Posix.mkdirat(ovl.workFd, scratch, 0700) < 0) return null;
        if (Posix.lsetxattr("/proc/self/fd/" + ovl.workFd + "/" + scratch, "system.posix_acl_default", acl, 0) < 0) {
            Posix.unlinkat(ovl.workFd, scratch, AT_REMOVEDIR);
            return null;
        }
        return scratch;
    }

    /** Gives a new object the caller's owner (the daemon creates as itself). */
    int own(int dirfd, String name, int mode, int uid, int gid) {
        int hu = ovl.attrs.hostUid(uid), hg = ovl.attrs.hostGid(gid);
        int t = mode & S_IFMT;
        if (ovl.overrides.enabled() && (t == 0 || ovl.overrides.writes(t))) {
            // owner and mode of a directory or regular file go to its override xattr; the inode stays the daemon's
            Stat st = Stat.local2();
            int r = Posix.fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW);
            if (r < 0) return r;
            if (ovl.overrides.writes(st.type())) return ovl.overrides.write("/proc/self/fd/" + dirfd + "/" + name, hu, hg, mode & 07777);
        }
        if (!ovl.root) return 0;
        if (ovl.opts.squashUid != null) hu = -1;
        if (ovl.opts.squashGid != null) hg = -1;
        int r = Posix.fchownat(dirfd, name, hu, hg, AT_SYMLINK_NOFOLLOW);
        if (r < 0) return r;
        if ((mode & 06000) != 0 && (mode & S_IFMT) != S_IFLNK) {
            // only the set-id bits are added: the permission bits are those the file system gave the
            // object (a default ACL of its directory masks them, as it does on the kernel overlay)
            Stat st = Stat.local2();
            r = Posix.fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW);
            if (r == 0 && (st.mode() & 06000) != (mode & 06000)) r = Posix.fchmodat(dirfd, name, st.mode() & 01777 | mode & 06000);
        }
        return r;
    }

    interface NewNameOp {
        int run(Node dir, String name);
    }

    /**
     * The checks every creation makes (parent a directory, name valid and absent, the directory not
     * immutable: {@link Protect#create}); returns the directory that will hold the new name, or null
     * with e[0] set. {@code openFlags}: for a create that opens the file when the name exists (O_CREAT
     * without O_EXCL), the flags whose may_open check (append-only, immutable) answers for an existing
     * name before EEXIST does; -1 otherwise.
     */
    Node newNameDir(String path, int openFlags, int[] e) {
        Node dir = ovl.namei.parentOf(path, e);
        if (e[0] != 0) return null;
        String name = Namei.lastName(path);
        if (name.length() > Overlay.NAME_MAX) { e[0] = -ENAMETOOLONG; return null; }
        Node existing = ovl.namei.child(dir, name);
        if (existing instanceof Namei.LookupError) { e[0] = Namei.err(existing); return null; }
        if (!existing.negative()) {
            int r = openFlags == -1 ? 0 : ovl.protect.open(existing, openFlags);
            e[0] = r != 0 ? r : -EEXIST;
            return null;
        }
        e[0] = ovl.protect.create(dir);
        if (e[0] == 0) e[0] = checkNewName(name);
        return e[0] == 0 ? dir : null;
    }

    /** Runs op for a new name at {@code path} after the common checks, under the exclusive lock. */
    int withNewName(String path, NewNameOp op) {
        return withNewName(path, -1, op);
    }

    private int withNewName(String path, int openFlags, NewNameOp op) {
        if (!ovl.hasUpper) return -EROFS;
        ovl.lock.writeLock().lock();
        try {
            int[] e = new int[1];
            Node dir = newNameDir(path, openFlags, e);
            return dir == null ? e[0] : op.run(dir, Namei.lastName(path));
        } finally {
            ovl.lock.writeLock().unlock();
        }
    }

    public int mkdir(String path, int mode, int uid, int gid) {
        return withNewName(path, (dir, name) ->
                createName(dir, name, true, mode, uid, gid, true, (fd, n) -> Posix.mkdirat(fd, n, mode & 07777)));
    }

    public int mknod(String path, int mode, long rdev, int uid, int gid) {
        if ((mode & S_IFMT) == S_IFCHR && rdev == 0) return -EPERM; // users cannot forge whiteouts
        return withNewName(path, (dir, name) ->
                createName(dir, name, false, mode, uid, gid, true, (fd, n) -> Posix.mknodat(fd, n, mode, rdev)));
    }

    public int symlink(String target, String path, int uid, int gid) {
        return withNewName(path, (dir, name) ->
                createName(dir, name, false, S_IFLNK | 0777, uid, gid, true, (fd, n) -> Posix.symlinkat(target, fd, n)));
    }

    /** Creates and opens a regular file; returns the descriptor. */
    public int create(String path, int mode, int flags, int uid, int gid) {
        return withNewName(path, flags, (dir, name) -> {
            int fd = createName(dir, name, false, mode, uid, gid, true,
                    (dfd, n) -> Posix.openat(dfd, n, ovl.files.fdFlags(flags & ~(O_EXCL | O_DIRECT)) | O_CREAT | O_EXCL, mode & 07777));
            if (fd >= 0) {
                Node n = ovl.namei.created(dir, name);
                if (!n.negative()) ovl.files.openFiles.put(fd, n);
            }
            return fd;
        });
    }

    /**
     * O_TMPFILE: an unnamed regular file in the upper copy of a directory, owned by the caller.
     * Returns its descriptor; {@link #linkFd} can give it a name.
     */
    public int tmpfile(String dirPath, int mode, int flags, int uid, int gid) {
        if (!ovl.hasUpper) return -EROFS;
        if (ovl.overrides.enabled()) return -EOPNOTSUPP; // the override xattr is written by name
        ovl.lock.writeLock().lock();
        try {
            Node dir = ovl.namei.resolve(dirPath);
            int e = Namei.err(dir);
            if (e != 0) return e;
            if (!dir.isDir()) return -ENOTDIR;
            int r = ovl.protect.create(dir); // vfs_tmpfile: write permission on the directory
            if (r != 0) return r;
            r = ovl.copy.copyUp(dir, true);
            if (r < 0) return r;
            int oflags = ovl.files.fdFlags(flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_DIRECT)) | O_TMPFILE;
            int fd = dir.rel.isEmpty() ? Posix.openat(ovl.stack[0].fd(), ".", oflags, mode & 07777)
                    : ovl.stack[0].openat(dir.rel, oflags, mode & 07777);
            if (fd < 0 || !ovl.root) return fd;
            int hg = ovl.attrs.hostGid(gid);
            Stat ds = Stat.local2();
            if (ovl.stack[0].lstat(dir.rel, ds) == 0 && (ds.mode() & 02000) != 0) hg = ds.gid(); // setgid directory
            r = Posix.fchown(fd, ovl.opts.squashUid != null ? -1 : ovl.attrs.hostUid(uid), ovl.opts.squashGid != null ? -1 : hg);
            if (r == 0 && (mode & 06000) != 0) r = Posix.fchmod(fd, mode & 07777);
            if (r < 0) {
                Posix.close(fd);
                return r;
            }
            return fd;
        } finally {
            ovl.lock.writeLock().unlock();
        }
    }

    /**
     * Gives a file known only by an open descriptor a name (linkat of /proc/self/fd/N or with AT_EMPTY_PATH
     * through the mount): an O_TMPFILE file from {@link #tmpfile}, or an upper file whose name was removed
     * (linkat then refuses it unless another name is left). A lower file never copied up is refused with
     * ENOENT, the kernel overlay's answer: a hard link to it in the upper would let writes reach the lower layer.
     */
    public int linkFd(int openFd, String to) {
        if (!ovl.hasUpper) return -EROFS;
        ovl.lock.writeLock().lock();
        try {
            int r = ovl.protect.linkFd(openFd);
            if (r != 0) return r;
            // a removed lower object: its overlay inode has no link left, and the VFS refuses before the overlay
            if (ovl.files.removedLowerObject(openFd)) return -ENOENT;
            int tmpFd = ovl.files.upperFdOf(openFd);
            if (tmpFd == -EEXIST) return -ENOENT;
            if (tmpFd < 0) return tmpFd;
            int[] pe = new int[1];
            Node dir = newNameDir(to, -1, pe);
            if (dir == null) return pe[0];
            Node old = ovl.files.nodeOf(openFd);
            if (old != null) { // a metadata-only copy: the new name must find the data too
                r = ovl.rename.setLinkRedirect(old, tmpFd, to);
                if (r < 0) return r;
            }
            if (ovl.attrs.hasOriginFd(tmpFd)) { // a name with an origin lands in dir, as by link (ovl_create_or_link)
                r = ovl.copy.copyUp(dir, true);
                if (r < 0) return r;
                ovl.attrs.markImpure(dir);
            }
            String proc = "/proc/self/fd/" + tmpFd;
            r = createName(dir, Namei.lastName(to), false, 0, -1, -1, false,
                    (fd, n) -> Posix.linkat(AT_FDCWD, proc, fd, n, AT_SYMLINK_FOLLOW));
            return Math.min(r, 0);
        } finally {
            ovl.lock.writeLock().unlock();
        }
    }

    public int link(String from, String to) {
        if (!ovl.hasUpper) return -EROFS;
        // libfuse 2 names a removed open file by the hidden path it gave it (OpenFiles#hidden): a link
        // of it (linkat of /proc/self/fd/N) goes through the open file, as on the kernel transport
        int hf = ovl.files.hiddenFd(from);
        if (hf != -1) return hf < 0 ? hf : linkFd(hf, to);
        ovl.lock.writeLock().lock();
        try {
            Node src = ovl.namei.resolve(from);
            int e = Namei.err(src);
            if (e != 0) return e;
            if (src.isDir()) return -EPERM;
            int r = ovl.protect.link(src);
            if (r != 0) return r;
            int[] pe = new int[1];
            Node dir = newNameDir(to, -1, pe); // checked before the copy-up, as the VFS does before overlayfs
            if (dir == null) return pe[0];
            String name = Namei.lastName(to);
            r = ovl.copy.copyUpMeta(src);
            if (r < 0) return r;
            if (src.metacopy()) {
                // the new name must find the data too: an absolute redirect to the old path (ovl_set_link_redirect)
                r = ovl.rename.setRedirect(src, false, to);
                if (r < 0) return r;
            }
            Layer up = ovl.stack[0];
            long ino = src.ino;
            if (ovl.attrs.hasOrigin(src.rel)) { // a name with an origin lands in dir (ovl_create_or_link)
                r = ovl.copy.copyUp(dir, true);
                if (r < 0) return r;
                ovl.attrs.markImpure(dir);
            }
            r = createName(dir, name, false, 0, -1, -1, false, (fd, n) -> {
                try (At a = up.at(src.rel)) {
                    return a.ok() ? Posix.linkat(a.dirfd(), a.name(), fd, n, 0) : a.err();
                }
            });
            if (r >= 0 && ino != 0) {
                Node nn = ovl.namei.child(dir, name);
                if (!nn.negative()) nn.ino = ino;
            }
            return Math.min(r, 0);
        } finally {
            ovl.lock.writeLock().unlock();
        }
    }
}
