package dev.strata.union;

import dev.strata.layer.At;
import dev.strata.layer.Layer;
import dev.strata.layer.Markers;
import dev.strata.options.IdMapping;
import dev.strata.posix.Buffers;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;
import jnr.ffi.Pointer;

import java.nio.charset.StandardCharsets;

import static dev.strata.posix.Errno.*;
import static dev.strata.posix.Posix.*;

/**
 * Attributes (the kernel's inode.c): presented inode numbers, stat as the mount shows it, id mapping,
 * readlink, statfs, and the attribute changes (chmod, chown, utimens, truncate) that copy up first.
 */
final class Attrs {
    private final Overlay ovl;

    Attrs(Overlay ovl) { this.ovl = ovl; }

    long mapIno(int layer, long ino) {
        if (ovl.singleDev) return ino;
        if (ovl.xinoShift > 0 && ino >>> ovl.xinoShift == 0) {
            // xino=on/auto: as the kernel's ovl_map_dev_ino (the upper's fsid is 0 even without an upper)
            return ino | ((long) (ovl.devIndex[layer] + (ovl.hasUpper ? 0 : 1)) << (ovl.xinoShift + 1));
        }
        return ino ^ ((long) ovl.devIndex[layer] << 56);
    }

    long presentedIno(Node n, long realIno) {
        long ino = n.ino;
        if (ino != 0) return ino;
        int top = n.top();
        ino = 0;
        if (ovl.hasUpper && top == 0) ino = n.fresh ? 0 : upperOrigin(n); // a file made here has no origin
        else if (ovl.index != null && top == ovl.index.layer) ino = parseOrigin(ovl.stack[top].getxattr(n.relIn(top), ovl.originXattr));
        if (ino == 0 && ovl.index != null && (top == 0 || top == ovl.index.layer) && n.type != S_IFDIR) ino = ovl.index.originIno(n);
        if (ino == 0) ino = mapIno(top, realIno);
        n.ino = ino;
        return ino;
    }

    /** The presented number recorded on the upper object at rel at its copy-up, or 0. */
    long origin(String rel) {
        return parseOrigin(ovl.stack[0].getxattr(rel, ovl.originXattr));
    }

    /**
     * The presented number of upper object n from its origin: the kernel's overlay.origin as ovl_getattr
     * uses it, else strata's own record where there is one (uppers it wrote before it wrote the kernel's
     * origin, or beside the null handle): a non-directory shows the lower inode its handle
     * decodes to while that has one link (an indexed one: see Index#originIno), a directory with an
     * origin the number of the lower directory it merges (found by name, as the kernel finds it). 0: none.
     */
    long upperOrigin(Node n) {
        if (ovl.origins == null || n.parent == null) return origin(n.rel); // the root shows the upper's (ovl_get_root)
        // the kernel's first: what strata writes now, so an upper it wrote costs one getxattr here
        byte[] v = ovl.stack[0].getxattr(n.rel, ovl.origins.xattr);
        long ino = v == null ? 0 : n.isDir() ? lowerDirIno(n) : decodedIno(v, n.type);
        return ino != 0 ? ino : origin(n.rel);
    }

    /** The presented number of the lower object a non-directory's origin value v names, or 0 (see {@link #upperOrigin}). */
    long decodedIno(byte[] v, int type) {
        long[] o = ovl.origins.decode(v);
        if (o == null || o[3] != type || o[2] != 1) return 0;
        return mapIno((int) o[0], o[1]);
    }

    /** The number of the topmost lower directory a merged directory n holds, or 0 if it holds none. */
    long lowerDirIno(Node n) {
        if (n.layers.length < 2) return 0;
        int li = n.layers[1];
        if (ovl.index != null && li == ovl.index.layer) return 0;
        Stat st = Stat.local2();
        String at = n.relIn(li);
        int r = at.isEmpty() ? Posix.fstatat(ovl.stack[li].fd(), "", st, AT_EMPTY_PATH) : ovl.stack[li].lstat(at, st);
        return r == 0 && st.isDir() ? mapIno(li, st.ino()) : 0;
    }

    /** Whether the upper object at rel has an origin (strata's or the kernel's): moving it makes its new parent impure. */
    boolean hasOrigin(String rel) {
        if (origin(rel) != 0) return true;
        return ovl.origins != null && ovl.stack[0].getxattr(rel, ovl.origins.xattr) != null;
    }

    /** {@link #hasOrigin} of the upper object an open descriptor is on (through its /proc/self/fd link). */
    boolean hasOriginFd(int fd) {
        if (Posix.getxattrFd(fd, ovl.originXattr, null, 0) >= 0) return true;
        return ovl.origins != null && Posix.getxattrFd(fd, ovl.origins.xattr, null, 0) >= 0;
    }

    /** {@link #origin} of the entry name of an open upper directory. */
    long originAt(int dirFd, String name) {
        return parseOrigin(Posix.getxattrAt(dirFd, name, ovl.originXattr));
    }

    static long parseOrigin(byte[] o) {
        if (o == null) return 0;
        try { return Long.parseLong(new String(o, StandardCharsets.US_ASCII).trim()); } catch (NumberFormatException e) { return 0; }
    }

    /** Whether the upper part of directory dir is marked impure (read once per node). */
    boolean impure(Node dir) {
        byte s = dir.impure;
        if (s == 0) {
            byte[] v = ovl.stack[0].getxattr(dir.rel, ovl.impureXattr);
            dir.impure = s = (byte) (v != null ? 1 : 2);
        }
        return s == 1;
    }

    /**
     * Marks dir's upper directory impure before an entry with an origin lands in it (a copy-up, a link
     * or a rename from another directory), as the kernel's ovl_set_impure does, so readdir shows the
     * number lstat shows. Best effort: without the marker readdir shows the upper number.
     */
    void markImpure(Node dir) {
        if (dir.impure == 1) return;
        if (impure(dir)) return;
        try (At a = ovl.stack[0].at(dir.rel)) {
            if (a.ok() && Posix.lsetxattr(a.xattrPath(), ovl.impureXattr, new byte[]{'y'}, 0) == 0) dir.impure = 1;
        }
    }

    /**
     * Takes the impure marker off dir's upper directory, as the kernel's readdir does when it finds an
     * impure directory that is not merged without an entry that shows another number than its own
     * (ovl_cache_get_impure: "a good opportunity to get rid of an unneeded impure flag"): best effort,
     * the directory counts as pure from now on either way. Whether the marker went (the directory's
     * ctime changed).
     */
    boolean dropImpure(Node dir) {
        try (At a = ovl.stack[0].at(dir.rel)) {
            dir.impure = 2;
            return a.ok() && Posix.lremovexattr(a.xattrPath(), ovl.impureXattr) == 0;
        }
    }

    /** Patches a struct stat filled from the top layer into what the mount shows. */
    void present(Node n, Pointer st) {
        st.putLong(Stat.OFF_INO, presentedIno(n, st.getLong(Stat.OFF_INO)));
        if (n.isDir() && (n.merged() || ovl.opts.staticNlink)) st.putLong(Stat.OFF_NLINK, 1);
        else if (ovl.index != null && !n.isDir()) ovl.index.presentNlink(n, st);
        if (ovl.overrides.reads(n.top())) ovl.overrides.apply(n.top(), ovl.stack[n.top()], n.relIn(n.top()), st);
        mapOwner(st);
    }

    void mapOwner(Pointer st) {
        IdMapping um = ovl.opts.uidMapping, gm = ovl.opts.gidMapping;
        if (ovl.opts.squashUid != null) st.putInt(Stat.OFF_UID, ovl.opts.squashUid);
        else if (!um.isIdentity()) st.putInt(Stat.OFF_UID, um.toContainer(st.getInt(Stat.OFF_UID)));
        if (ovl.opts.squashGid != null) st.putInt(Stat.OFF_GID, ovl.opts.squashGid);
        else if (!gm.isIdentity()) st.putInt(Stat.OFF_GID, gm.toContainer(st.getInt(Stat.OFF_GID)));
    }

    /** An id given through the mount, as stored on disk; ids outside the mapping are stored as the overflow id (as fuse-overlayfs does). */
    int hostUid(int uid) {
        if (uid == -1) return -1;
        int h = ovl.opts.uidMapping.toHost(uid);
        return h == -1 ? IdMapping.OVERFLOW : h;
    }

    int hostGid(int gid) {
        if (gid == -1) return -1;
        int h = ovl.opts.gidMapping.toHost(gid);
        return h == -1 ? IdMapping.OVERFLOW : h;
    }

    public int getattr(String path, Pointer st) {
        if (!ovl.files.hidden.isEmpty()) {
            Node h = ovl.files.hidden.get(path);
            if (h != null) return hiddenAttr(h, st);
        }
        ovl.lock.readLock().lock();
        try {
            return getattrResolved(path, ovl.namei.resolve(path, false), st);
        } finally {
            ovl.lock.readLock().unlock();
        }
    }

    /** See {@link Union#getattrEach}. */
    void getattrEach(String dirPath, String[] names, int from, int to, Pointer st, Union.EntryStat sink) {
        if (!ovl.files.hidden.isEmpty()) { // libfuse's hidden names go by path
            for (int i = from; i < to; i++) {
                int r = isDot(names[i]) ? -ENOENT : getattr(childPath(dirPath, names[i]), st);
                if (!sink.entry(i, r)) return;
            }
            return;
        }
        ovl.lock.readLock().lock();
        try {
            Node dir = ovl.namei.resolve(dirPath);
            int de = Namei.err(dir);
            if (de == 0 && !dir.isDir()) de = -ENOTDIR;
            for (int i = from; i < to; i++) {
                String name = names[i];
                int r;
                if (isDot(name)) {
                    r = -ENOENT;
                } else if (de != 0) {
                    r = de;
                } else {
                    // as resolve(path, false) ends: the cached child as it is, else a lookup
                    Node c = dir.children().get(name);
                    r = getattrResolved(null, c != null ? c : ovl.namei.child(dir, name), st);
                    if (r == RESOLVE_AGAIN) {
                        // as resolve(path) ends: the confirming lookup
                        Node n = ovl.namei.child(dir, name);
                        int e = Namei.err(n);
                        r = e != 0 ? e : getattr(n, st);
                    }
                }
                if (!sink.entry(i, r)) return;
            }
        } finally {
            ovl.lock.readLock().unlock();
        }
    }

    private static boolean isDot(String name) {
        return name.equals(".") || name.equals("..");
    }

    private static String childPath(String dirPath, String name) {
        return dirPath.length() == 1 ? "/" + name : dirPath + "/" + name;
    }

    /** {@link #getattrResolved} without a path: the node must be looked up again (see there). */
    private static final int RESOLVE_AGAIN = Integer.MIN_VALUE;

    /**
     * getattr of node n, which resolve(path, false) gave (caller holds the read lock). With a null path,
     * answers {@link #RESOLVE_AGAIN} where the confirming lookup is needed.
     */
    private int getattrResolved(String path, Node n, Pointer st) {
        int e = Namei.err(n);
        if (e != 0) return e;
        int r = getattr(n, st);
        if (r < 0 || !n.listed) return r;
        // a regular file readdir entered: this stat confirms it unless it shows an empty file,
        // which may be an xattr whiteout, or a metadata-only copy (its mark read here where the
        // lookup would read it, see LayerLookup#mayBeMetacopy): then the confirming lookup decides
        if ((st.getInt(Stat.OFF_MODE) & S_IFMT) == n.type && st.getLong(Stat.OFF_SIZE) != 0
                && (!mayBeMetacopy(n, st) || Markers.metacopy(ovl.stack[n.top()], n.relIn(n.top())) == 0)) {
            n.listed = false;
            return 0;
        }
        if (path == null) return RESOLVE_AGAIN;
        n = ovl.namei.resolve(path);
        e = Namei.err(n);
        return e != 0 ? e : getattr(n, st);
    }

    /** Whether a lookup would read the metacopy mark of the file n's top layer holds (see LayerLookup#mayBeMetacopy). */
    private boolean mayBeMetacopy(Node n, Pointer st) {
        int top = n.top();
        if (top == 0 && ovl.hasUpper) return true;
        if (ovl.lastForFiles(top)) return false;
        long blocks = st.getLong(Stat.OFF_BLOCKS);
        return blocks <= 8 || blocks * 512 < st.getLong(Stat.OFF_SIZE);
    }

    int getattr(Node n, Pointer st) {
        Layer l = ovl.stack[n.top()];
        String at = n.relIn(n.top());
        int r;
        if (at.isEmpty()) r = Posix.fstatat(l.fd(), "", st, AT_EMPTY_PATH);
        else try (At a = l.at(at)) {
            r = a.ok() ? Posix.fstatat(a.dirfd(), a.name(), st, AT_SYMLINK_NOFOLLOW) : a.err();
        }
        if (r < 0) return r;
        ovl.lazy.blocks(n.top(), st);
        if (n.metacopy()) dataBlocks(n, st);
        present(n, st);
        return 0;
    }

    /**
     * st_blocks of a metadata-only copy: those of the file that holds its data, as the kernel's
     * ovl_getattr shows them (the copy itself has none).
     */
    void dataBlocks(Node n, Pointer st) {
        if (n.lowerdataRedirect != null) {
            // data in a data-only layer not looked up yet: estimated from the size, as the kernel does
            // to spare the lookup (round_up(size, blksize) >> 9)
            long size = st.getLong(Stat.OFF_SIZE), bs = st.getLong(Stat.OFF_BLKSIZE);
            if (bs > 0) st.putLong(Stat.OFF_BLOCKS, (size + bs - 1) / bs * bs >> 9);
            return;
        }
        int dl = n.dataLayer();
        Stat d = Stat.local2();
        if (ovl.stack[dl].lstat(n.relIn(dl), d) == 0) st.putLong(Stat.OFF_BLOCKS, d.blocks());
    }

    int hiddenAttr(Node h, Pointer st) {
        for (java.util.Map.Entry<Integer, Node> e : ovl.files.openFiles.entrySet()) {
            if (e.getValue() != h) continue;
            // a read-only open of the lower file reads its upper copy once there is one (as fgetattr does)
            int r = Posix.fstat(ovl.files.currentFd(e.getKey()), st);
            if (r < 0) continue;
            st.putLong(Stat.OFF_INO, h.ino != 0 ? h.ino : st.getLong(Stat.OFF_INO));
            compensateHiddenNlink(st);
            if (!h.negative() && ovl.overrides.reads(h.top())) ovl.overrides.applyFd(h.top(), e.getKey(), st);
            mapOwner(st);
            return 0;
        }
        return -ENOENT;
    }

    /**
     * libfuse 2 subtracts one from st_nlink of a file it has hidden (removed while open). The
     * descriptor's own count is already right (0 for an upper file, the lower file's count for a
     * lower one, as the kernel overlay shows), so add the one back.
     */
    void compensateHiddenNlink(Pointer st) {
        if (!ovl.files.libfuseHidesOpenFiles) return;
        long nl = st.getLong(Stat.OFF_NLINK);
        if (nl > 0) st.putLong(Stat.OFF_NLINK, nl + 1);
    }

    /** fstat of an open file: the current merged attributes, or the descriptor's own once the name is gone. */
    public int fgetattr(int fd, Pointer st) {
        Node n = ovl.files.openFiles.get(fd);
        if (n != null && !n.stale()) {
            ovl.lock.readLock().lock();
            try {
                // the name (or a directory above it) may have moved since the open: its path is then
                // stale (another object, even a symlink, may sit there now) and the descriptor answers
                if (!n.stale() && getattr(n, st) == 0) return 0;
            } finally {
                ovl.lock.readLock().unlock();
            }
        }
        OpenFiles.LowerHandle h = ovl.files.lowerHandles.isEmpty() ? null : ovl.files.lowerHandles.get(fd);
        int real = h != null ? OpenFiles.current(h, fd) : fd;
        int r = Posix.fstat(real, st);
        if (r < 0) return r;
        if (n != null && real == fd && ovl.lazy.of(fd) != null) ovl.lazy.blocks(n.top(), st);
        if (h != null && real != fd && h.dataBelow) { // a metadata-only copy: the blocks of the file holding the data
            Stat d = Stat.local2();
            if (Posix.fstat(fd, d) == 0) st.putLong(Stat.OFF_BLOCKS, d.blocks());
        }
        if (ovl.index != null) ovl.index.presentNlinkFd(real, st); // an indexed file's overlay count
        // an unlinked upper file shows st_nlink 0 by itself; a lower one keeps its own count, as on the kernel
        if (n != null) {
            st.putLong(Stat.OFF_INO, n.ino != 0 ? n.ino : st.getLong(Stat.OFF_INO));
            if (n.deleted) compensateHiddenNlink(st);
            if (!n.negative() && ovl.overrides.reads(n.top())) ovl.overrides.applyFd(n.top(), fd, st);
        }
        mapOwner(st);
        return 0;
    }

    public int readlink(String path, Pointer buf, long size) {
        ovl.lock.readLock().lock();
        try {
            Node n = ovl.namei.resolve(path);
            int e = Namei.err(n);
            if (e != 0) return e;
            if (n.type != S_IFLNK) return -EINVAL;
            try (At a = ovl.stack[n.top()].at(n.relIn(n.top()))) {
                if (!a.ok()) return a.err();
                long r = Posix.readlinkat(a.dirfd(), a.name(), buf, size - 1);
                if (r < 0) return (int) r;
                buf.putByte(r, (byte) 0);
                return 0;
            }
        } finally {
            ovl.lock.readLock().unlock();
        }
    }

    /** Reads a symlink target as a string (tests, tools). */
    public String readlink(String path, int[] err) {
        Pointer buf = Buffers.get(4096);
        int r = readlink(path, buf, 4096);
        err[0] = r;
        if (r < 0) return null;
        return buf.getString(0, 4096, Posix.NAMES);
    }

    public int statfs(Pointer out) {
        int r = Posix.fstatvfs(ovl.stack[0].fd(), out);
        if (r < 0) return r;
        // f_namemax is the last long before the spare fields: struct statvfs on x86_64
        out.putLong(80, Overlay.NAME_MAX);
        return 0;
    }

    interface UpperOp {
        int run(Node n, At at);
    }

    /**
     * Copies n up (with or without data) and runs op on its upper location, once {@code check} (the
     * append-only / immutable check of the change, {@link Protect}) let the node it resolved through.
     */
    int onUpper(String path, boolean data, Protect.Check check, UpperOp op) {
        return onUpper(path, data, false, false, check, op);
    }

    /**
     * As {@link #onUpper} for a change of metadata only: with metacopy=on a lower regular file is copied
     * up without its data ({@link CopyUp#copyUpMeta}), as the kernel's ovl_setattr and ovl_xattr_set do.
     */
    int onUpperMeta(String path, Protect.Check check, UpperOp op) {
        return onUpper(path, !ovl.opts.metacopy, true, false, check, op);
    }

    /**
     * As {@link #onUpperMeta} for xattrs, ACLs included (the kernel's ovl_xattr_set and
     * ovl_set_or_remove_acl): these change the inode's upper where it has one, so a name that shows an
     * index entry (index=on: its lower file was copied up through another name) is changed on that entry
     * without being linked up: no copy-up of its parent, no link, no ctime from one. Every other change
     * (ovl_setattr, ovl_fileattr_set, an open for writing) goes through ovl_copy_up, which links it up.
     */
    int onInodeUpper(String path, Protect.Check check, UpperOp op) {
        return onUpper(path, !ovl.opts.metacopy, true, true, check, op);
    }

    private int onUpper(String path, boolean data, boolean meta, boolean inodeUpper, Protect.Check check, UpperOp op) {
        if (!ovl.hasUpper) return -EROFS;
        CopyUp.Seen seen = null;
        if (data) {
            seen = new CopyUp.Seen();
            int r = ovl.unlockedCopy.copyDataUnlocked(path, check, seen);
            if (r < 0) return r;
        }
        ovl.lock.writeLock().lock();
        try {
            Node n = ovl.namei.resolve(path);
            int e = Namei.err(n);
            if (e != 0) return e;
            int r = check.check(n);
            if (r != 0) return r;
            if (inodeUpper && ovl.index != null && n.top() == ovl.index.layer) {
                try (At a = ovl.stack[n.top()].at(n.relIn(n.top()))) {
                    return a.ok() ? op.run(n, a) : a.err();
                }
            }
            r = meta ? ovl.copy.copyUpMeta(n) : ovl.copy.copyUp(n, data, seen);
            if (r < 0) return r;
            if (n.rel.isEmpty()) return op.run(n, At.of(ovl.stack[0].fd(), "."));
            try (At a = ovl.stack[0].at(n.rel)) {
                if (!a.ok()) return a.err();
                return op.run(n, a);
            }
        } finally {
            ovl.lock.writeLock().unlock();
        }
    }

    public int chmod(String path, int mode) {
        int hf = ovl.files.hiddenFd(path);
        if (hf != -1) return hf < 0 ? hf : fchmod(hf, mode);
        return onUpperMeta(path, ovl.protect.setattr(Protect.META), (n, a) -> {
            if (n.type == S_IFLNK) return -EOPNOTSUPP;
            if (ovl.overrides.writes(n.type)) return overrideOwnerMode(n, a, -1, -1, mode & 07777);
            return Posix.fchmodat(a.dirfd(), a.name(), mode & 07777);
        });
    }

    public int chown(String path, int uid, int gid) {
        int hf = ovl.files.hiddenFd(path);
        if (hf != -1) return hf < 0 ? hf : fchown(hf, uid, gid);
        int hu = hostUid(uid), hg = hostGid(gid);
        Protect.Check check = uid == -1 && gid == -1 ? Protect.Check.NONE : ovl.protect.setattr(Protect.META);
        return onUpperMeta(path, check, (n, a) -> ovl.overrides.writes(n.type) ? overrideOwnerMode(n, a, hu, hg, -1)
                : Posix.fchownat(a.dirfd(), a.name(), hu, hg, AT_SYMLINK_NOFOLLOW));
    }

    /** chmod/chown of an upper object whose owner and mode live in its override xattr (-1: unchanged). */
    int overrideOwnerMode(Node n, At a, int uid, int gid, int mode) {
        Stat st = Stat.local2();
        int r = Posix.fstatat(a.dirfd(), a.name(), st, AT_SYMLINK_NOFOLLOW);
        if (r < 0) return r;
        OverrideStat.Value cur = ovl.overrides.current(ovl.stack[0], n.rel, st);
        return ovl.overrides.write(a.xattrPath(), uid == -1 ? cur.uid : uid, gid == -1 ? cur.gid : gid, mode == -1 ? cur.mode : mode);
    }

    /** utimens with UTIME_NOW / UTIME_OMIT passed through in the nanosecond fields. */
    public int utimens(String path, long aSec, long aNsec, long mSec, long mNsec) {
        int hf = ovl.files.hiddenFd(path);
        if (hf != -1) return hf < 0 ? hf : futimens(hf, aSec, aNsec, mSec, mNsec);
        return onUpperMeta(path, ovl.protect.setattr(Protect.timesKind(aNsec, mNsec)), (n, a) -> Posix.utimensat(a.dirfd(), a.name(), aSec, aNsec, mSec, mNsec, AT_SYMLINK_NOFOLLOW));
    }

    public int truncate(String path, long size) {
        if (size < 0) return -EINVAL;
        int hf = ovl.files.hiddenFd(path);
        if (hf != -1) return hf < 0 ? hf : truncateRemoved(hf, size);
        return onUpper(path, size > 0, ovl.protect.setattr(Protect.SIZE), (n, a) -> {
            if (n.isDir()) return -EISDIR;
            if (n.type != S_IFREG) return -EINVAL;
            int fd = Posix.openat(a.dirfd(), a.name(), O_WRONLY | O_NOFOLLOW, 0);
            if (fd < 0) return fd;
            try {
                return Posix.ftruncate(fd, size);
            } finally {
                Posix.close(fd);
            }
        });
    }

    /** chmod through an open file whose name was removed (see {@link OpenFiles#upperFdOf}). */
    public int fchmod(int fd, int mode) {
        return ovl.files.onUpperOf(fd, u -> {
            if (ovl.files.pathOnly(u)) {
                // an O_PATH descriptor (OpenFiles#holdRemoved): by its link; a symlink's mode is not changed
                Stat st = Stat.local2();
                int r = Posix.fstat(u, st);
                if (r < 0) return r;
                return st.type() == S_IFLNK ? -EOPNOTSUPP : Posix.fchmodat(AT_FDCWD, OpenFiles.proc(u), mode & 07777);
            }
            if (!keepsOverride(fd)) return Posix.fchmod(u, mode & 07777);
            OverrideStat.Value cur = currentOverride(u);
            return cur == null ? -EIO : ovl.overrides.write(u, cur.uid, cur.gid, mode & 07777);
        });
    }

    /** Whether an open file's owner and mode live in its override xattr (xattr_permissions). */
    private boolean keepsOverride(int fd) {
        Node n = ovl.files.openFiles.get(fd);
        return n != null && ovl.overrides.writes(n.type);
    }

    /** chown through an open file whose name was removed: ids mapped and the override kept as by {@link #chown}. */
    public int fchown(int fd, int uid, int gid) {
        int hu = hostUid(uid), hg = hostGid(gid);
        return ovl.files.onUpperOf(fd, u -> {
            if (ovl.files.pathOnly(u)) return Posix.fchownat(u, "", hu, hg, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
            if (!keepsOverride(fd)) return Posix.fchown(u, hu, hg);
            OverrideStat.Value cur = currentOverride(u);
            return cur == null ? -EIO : ovl.overrides.write(u, hu == -1 ? cur.uid : hu, hg == -1 ? cur.gid : hg, cur.mode);
        });
    }

    /** The owner and mode an upper file shows before id mapping: its override, else its inode's. */
    OverrideStat.Value currentOverride(int fd) {
        Stat st = Stat.local2();
        if (Posix.fstat(fd, st) < 0) return null;
        Pointer p = st.pointer();
        ovl.overrides.applyFd(0, fd, p);
        return new OverrideStat.Value(p.getInt(Stat.OFF_UID), p.getInt(Stat.OFF_GID), p.getInt(Stat.OFF_MODE) & 07777);
    }

    /**
     * truncate(2) of an open file whose name was removed (of /proc/self/fd/N: no descriptor of the caller
     * comes with it, and the one strata holds may be read-only): through a writable descriptor of the upper file.
     */
    public int truncateRemoved(int fd, long size) {
        return ovl.files.onUpperOf(fd, u -> {
            int w = Posix.openat(AT_FDCWD, "/proc/self/fd/" + u, O_WRONLY, 0);
            if (w < 0) return w;
            try {
                // a metadata-only copy gets its data first, as a truncate by name does (ovl_copy_up_with_data)
                int r = ovl.metaCopy.dataUpThrough(fd, w);
                if (r < 0) return r;
                return Posix.ftruncate(w, size);
            } finally {
                Posix.close(w);
            }
        });
    }

    /** utimens through an open file whose name was removed. */
    public int futimens(int fd, long aSec, long aNsec, long mSec, long mNsec) {
        return ovl.files.onUpperOf(fd, u -> ovl.files.pathOnly(u)
                ? Posix.utimensat(AT_FDCWD, OpenFiles.proc(u), aSec, aNsec, mSec, mNsec, 0) // the link leads to the object itself
                : Posix.futimens(u, aSec, aNsec, mSec, mNsec));
    }
}
