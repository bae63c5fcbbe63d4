package dev.strata.union;

import dev.strata.layer.At;
import dev.strata.layer.Layer;
import dev.strata.layer.Markers;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;

import java.nio.charset.StandardCharsets;

import static dev.strata.posix.Errno.*;
import static dev.strata.posix.Posix.*;

/**
 * Copy-up (the kernel's copy_up.c): a lower object and its parents brought into the upper layer,
 * through O_TMPFILE or a named temporary in the workdir, data, xattrs, owner, mode and times.
 */
final class CopyUp {
    private final Overlay ovl;

    CopyUp(Overlay ovl) { this.ovl = ovl; }

    /**
     * Ensures n exists in the upper layer with its data (parents first); with {@code data=false} a
     * file's data is not copied (it is about to be truncated to 0). A metadata-only copy in the upper
     * gets its data now (the kernel's ovl_copy_up_meta_inode_data).
     */
    int copyUp(Node n, boolean data) {
        return copyUp(n, data, false, null);
    }

    /** {@link #copyUp(Node, boolean)} with the lower file's attributes {@link UnlockedCopy#copyDataUnlocked} read in the same request, if they are n's. */
    int copyUp(Node n, boolean data, Seen seen) {
        return copyUp(n, data, false, seen);
    }

    /**
     * The attributes of the lower file a request's {@link UnlockedCopy#copyDataUnlocked} read and left to the copy-up
     * that follows under the exclusive lock: one lstat less per copy-up (a lower layer does not change
     * under a live mount; the copy-up checks that the node still is that lower file).
     */
    static final class Seen {
        Node node;
        int layer = -1;
        final Stat st = new Stat();
    }

    /**
     * Copy-up for a change of metadata only (chmod, chown, utimens, xattrs, flags, link, rename): with
     * metacopy=on a lower regular file gets a metadata-only copy (see {@link MetaCopy}), else as {@link #copyUp}.
     */
    int copyUpMeta(Node n) {
        return copyUp(n, true, ovl.opts.metacopy, null);
    }

    private int copyUp(Node n, boolean data, boolean metaOk, Seen seen) {
        if (!ovl.hasUpper) return -EROFS;
        if (n.negative()) return -ENOENT;
        // as the kernel's ovl_copy_up_flags: the data of a metadata-only copy is looked up (data-only
        // layers) and its fs-verity digest checked before any copy-up, even one of metadata only
        int v = ovl.lowerdata.verify(n);
        if (v < 0) return v;
        if (n.top() == 0) return metaOk || !n.metacopy() ? 0 : ovl.metaCopy.dataUp(n, data);
        // verity=require: metadata only where the data file has an fs-verity digest to record, else a
        // full copy (the kernel's ovl_need_meta_copy_up)
        if (metaOk && n.type == S_IFREG && ovl.opts.verityRequire()) metaOk = ovl.lowerdata.dataHasVerity(n);
        int pr = copyUpAncestors(n);
        if (pr < 0) return pr;
        if (ovl.index != null) { // a file with several lower names: through the index (Index)
            int ir = ovl.index.copyUp(n, data, metaOk);
            if (ir != Index.NOT_INDEXED) return ir;
        }
        long t0 = System.nanoTime();
        Layer src = ovl.stack[n.top()];
        Stat st;
        int r;
        if (seen != null && seen.node == n && seen.layer == n.top()) {
            st = seen.st;
        } else {
            st = new Stat();
            r = src.lstat(n.relIn(n.top()), st);
            if (r < 0) return r;
        }
        long ino = ovl.attrs.presentedIno(n, st.ino());
        // A lower file with several links: its copy is a new, separate file (no index), and the kernel
        // shows it with the upper inode number, so no origin is recorded (ovl_do_copy_up).
        boolean keepIno = st.type() == S_IFDIR || st.nlink() <= 1;
        long origin = keepIno ? ino : 0;
        ovl.attrs.markImpure(n.parent); // every copy-up marks its parent (ovl_set_impure)
        long[] bytes = {0};
        boolean meta = metaOk && st.type() == S_IFREG;
        String[] method = {meta ? "metadata only" : "metadata"};
        r = st.type() == S_IFREG && tmpfileWorks ? copyFileUp(n, src, st, data, meta, origin, bytes, method) : NO_TMPFILE;
        if (r == NO_TMPFILE) r = copyThroughWorkdir(n, src, st, data, meta, origin, bytes, method);
        if (r < 0) return r;
        if (meta) {
            ovl.metaCopy.copiedUpMeta(n, src, st, ino, keepIno, t0);
            return 0;
        }
        copiedUp(n, src, st, ino, keepIno, bytes[0], t0, method[0]);
        return 0;
    }

    /**
     * Copies up the ancestors of n that are not in the upper yet, the highest first, one after the
     * other (as the kernel's ovl_copy_up_flags, which loops up to the first ancestor in the upper): a
     * call per level of the tree exhausted a worker's stack below some 1,500 directories, and the
     * copy-up answered EIO where the kernel overlay copies up.
     */
    int copyUpAncestors(Node n) {
        Node first = n.parent;
        if (first == null || (!first.negative() && first.top() == 0)) return 0; // the parent is in the upper: so are its ancestors
        java.util.ArrayDeque<Node> todo = new java.util.ArrayDeque<>();
        for (Node p = first; p != null; p = p.parent) {
            if (p.negative()) return -ENOENT; // as a copy-up of it would answer, before any copy
            if (p.top() == 0) break;
            todo.push(p);
        }
        while (!todo.isEmpty()) {
            int r = copyUp(todo.pop(), true);
            if (r < 0) return r;
        }
        return 0;
    }

    /** The node's state once its copy has a name in the upper (under the exclusive lock). */
    void copiedUp(Node n, Layer src, Stat st, long ino, boolean keepIno, long bytes, long t0, String method) {
        copiedUp(n, src, st, ino, keepIno, bytes, t0, method, true);
    }

    /**
     * {@link #copiedUp}; {@code hasData}: the upper copy holds the data (not a metadata-only index entry),
     * so descriptors opened read-only on the lower file read it from now on (else only their fstat and
     * changes go to it).
     */
    void copiedUp(Node n, Layer src, Stat st, long ino, boolean keepIno, long bytes, long t0, String method, boolean hasData) {
        if (!keepIno) {
            n.ino = 0;
            if (n.parent != null) { // listings of the parent showed the lower number
                n.parent.listing = null;
                ovl.events.numberChanged("/" + n.parent.rel);
            }
        }
        if (n.isDir()) {
            int[] l = new int[n.layers.length + 1];
            System.arraycopy(n.layers, 0, l, 1, n.layers.length);
            n.layers = l;
        } else {
            n.layers = Node.single(0);
        }
        if (st.type() == S_IFREG && !ovl.files.lowerHandles.isEmpty()) switchLowerHandles(n, ino, keepIno, !hasData);
        ovl.events.copiedUp("/" + n.rel, src.root().toString(), typeName(st.type()), bytes, System.nanoTime() - t0, method);
    }

    /**
     * Whether a copy of this type is fsync'ed once complete, data and metadata, before it gets its name in
     * the upper: only with fsync=strict, as the kernel's (6.12+, for upper file systems that do not keep
     * the order of metadata changes, as ubifs): every regular file and directory where metacopy is off.
     * The default (fsync=auto) syncs the data of a regular file only, right after it is copied
     * ({@link #syncData}), as the kernel does: on this machine's kernel (6.18) a copy-up of 200
     * directories flushes the disk 0 times with fsync=auto, 200 times with strict (/proc/diskstats).
     */
    boolean syncMetadata(int type) {
        return ovl.opts.fsyncStrict && !ovl.opts.metacopy && (type == S_IFREG || type == S_IFDIR);
    }

    /** Whether a copy's data is fsync'ed as soon as it is copied (the kernel's ovl_copy_up_file: fsync=auto and strict). */
    boolean syncData() {
        return ovl.opts.fsync;
    }

    /**
     * fsync of the complete copy workdir/tmp, a regular file or directory (the kernel's ovl_sync_file).
     * A daemon without CAP_DAC_OVERRIDE may not open a copy whose mode it just set (a directory without
     * read permission): then the whole upper file system is synced instead.
     */
    int syncNamed(String tmp, int type) {
        int fd = Posix.openat(ovl.workFd, tmp, O_RDONLY | O_NOFOLLOW | (type == S_IFDIR ? O_DIRECTORY : 0), 0);
        if (fd == -EACCES && type == S_IFREG) fd = Posix.openat(ovl.workFd, tmp, O_WRONLY | O_NOFOLLOW, 0);
        if (fd == -EACCES || fd == -EPERM) {
            int w = Posix.openat(ovl.workFd, ".", O_RDONLY | O_DIRECTORY, 0); // workFd is O_PATH: no syncfs through it
            if (w < 0) return w;
            try {
                return Posix.syncfs(w);
            } finally {
                Posix.close(w);
            }
        }
        if (fd < 0) return fd;
        try {
            return sync(fd);
        } finally {
            Posix.close(fd);
        }
    }

    /** Tests: given the descriptor of each copy about to be fsync'ed, to see what it holds by then. */
    volatile java.util.function.IntConsumer beforeSync;

    private int sync(int fd) {
        java.util.function.IntConsumer probe = beforeSync;
        if (probe != null) probe.accept(fd);
        return Posix.fsync(fd);
    }

    /** Returned by {@link #copyFileUp} where the workdir's file system has no O_TMPFILE. */
    static final int NO_TMPFILE = Integer.MIN_VALUE;

    /** Cleared once the workdir's file system refuses O_TMPFILE; copy-ups then use named temporary files. */
    volatile boolean tmpfileWorks = true;

    /**
     * Copies a regular file up as the kernel does (ovl_copy_up_tmpfile): an unnamed O_TMPFILE file in
     * the workdir receives the data, then xattrs, origin, owner, mode and times through its descriptor,
     * is fsync'ed once complete (see {@link #syncMetadata}), and only then gets a name in the upper (linkat). The upper never shows
     * a partial copy, and a crash at any point leaves nothing behind: an unnamed inode is freed with its
     * last descriptor. Against a named temporary file renamed into place this saves, per copy-up, the
     * writes of the workdir's directory block and inode inside fsync (ext4 syncs the parent of a newly
     * named file, not of an unnamed one: 4 block requests per fsync become 3) and the /proc/self/fd path
     * lookups of the metadata calls. Returns {@link #NO_TMPFILE} if the workdir refuses O_TMPFILE.
     */
    int copyFileUp(Node n, Layer src, Stat st, boolean data, boolean meta, long origin, long[] bytes, String[] method) {
        int out = prepareFileCopy(n, src, st, data, meta, origin, bytes, method);
        if (out < 0) return out;
        try {
            int r = linkIntoUpper(out, n.rel);
            // a hard link can be refused where a rename is not (fs.protected_hardlinks, an odd file system):
            // then this copy is made again the other way
            return r == -EPERM || r == -EACCES ? NO_TMPFILE : r;
        } finally {
            Posix.close(out);
        }
    }

    /**
     * The unnamed half of {@link #copyFileUp}: an O_TMPFILE file in the workdir with the data and
     * metadata of the lower file. Needs no union lock (it reads only the read-only lower file and writes
     * only an unnamed inode). Returns its descriptor, {@link #NO_TMPFILE}, or -errno.
     */
    int prepareFileCopy(Node n, Layer src, Stat st, boolean data, boolean meta, long origin, long[] bytes, String[] method) {
        int in = src.openat(n.relIn(src.index()), O_RDONLY | O_NOFOLLOW, true); // a copy-up leaves the lower's atime alone, as the kernel's
        if (in < 0) return in;
        if (meta) data = false;
        int out = Posix.openat(ovl.workFd, ".", O_TMPFILE | O_WRONLY, 0600);
        if (out < 0) {
            Posix.close(in);
            if (out != -EOPNOTSUPP && out != -EISDIR && out != -EINVAL) return out;
            tmpfileWorks = false;
            return NO_TMPFILE;
        }
        int r = 0;
        try {
            if (data && st.size() > 0) {
                bytes[0] = st.size();
                r = ovl.metaCopy.copyData(n, src, in, out, st.size(), method);
                if (r == 0 && syncData()) r = sync(out);
            }
            if (r == 0 && meta) r = ovl.metaCopy.mark(n, out, st.size());
            if (r == 0) r = copyMetadata(in, out, st);
            if (r == 0 && origin != 0) r = writeOrigin(null, out, src.index(), n.relIn(src.index()), origin, false);
            if (r == 0) r = copyOverride(n, src, st, null, out);
            if (r == 0) ovl.fileattr.copyFileattr(in, out);
            if (r == 0 && syncMetadata(S_IFREG)) r = sync(out);
        } finally {
            Posix.close(in);
            if (r < 0) Posix.close(out);
        }
        return r < 0 ? r : out;
    }

    /** The way for every type: build the copy under a temporary name in the workdir, then rename it into the upper. */
    int copyThroughWorkdir(Node n, Layer src, Stat st, boolean data, boolean meta, long origin, long[] bytes, String[] method) {
        String tmp = ovl.tmpName();
        String from = n.relIn(src.index()); // below a renamed directory: its old path in the lower layer
        int r = createCopy(n, src, from, st, tmp, data && !meta, bytes, method);
        if (r == 0 && meta) r = ovl.metaCopy.markNamed(n, tmp, st.size());
        if (r == 0) r = finishCopy(src, from, st, tmp, origin);
        if (r == 0) r = copyOverride(n, src, st, tmp, -1);
        if (r == 0) ovl.fileattr.copyFileattr(src, from, st, tmp);
        if (r == 0 && syncMetadata(st.type())) r = syncNamed(tmp, st.type());
        if (r == 0) r = moveIntoUpper(tmp, n.rel, 0, true);
        if (r < 0) Tree.removeAt(ovl.workFd, tmp);
        return r;
    }

    /**
     * Read-only descriptors opened on the lower file before this copy-up read the upper copy from now
     * on (as on the kernel overlay since Linux 4.19), whatever later happens to the name.
     * {@code dataBelow}: n's upper copy is metadata only, so the handles read the lower file still (their
     * fstat and changes go to the copy), until a call without it once the data is up.
     */
    void switchLowerHandles(Node n, long ino, boolean sameFile, boolean dataBelow) {
        for (OpenFiles.LowerHandle h : ovl.files.lowerHandles.values()) {
            Node o = h.node;
            boolean match = o == n || (ino != 0 && o.ino == ino && (sameFile || o.rel.equals(n.rel)));
            if (!match) continue;
            if (h.upperFd >= 0) {
                if (!dataBelow) h.dataBelow = false; // the data came up: reads go to the upper copy
                continue;
            }
            int fd = ovl.stack[0].openat(n.rel, O_RDONLY | O_NOFOLLOW, ovl.files.noatime(false)); // under the write lock: the only writer
            if (fd < 0) continue;
            h.dataBelow = dataBelow;
            h.upperFd = fd;
        }
    }

    static String typeName(int t) {
        switch (t) {
            case S_IFDIR: return "directory";
            case S_IFREG: return "file";
            case S_IFLNK: return "symlink";
            case S_IFIFO: return "fifo";
            case S_IFCHR: return "char device";
            case S_IFBLK: return "block device";
            case S_IFSOCK: return "socket";
            default: return "object";
        }
    }

    int createCopy(Node n, Layer src, String rel, Stat st, String tmp, boolean data, long[] bytes, String[] method) {
        switch (st.type()) {
            case S_IFDIR:
                return Posix.mkdirat(ovl.workFd, tmp, 0700);
            case S_IFLNK: {
                int[] e = new int[1];
                String target;
                try (At a = src.at(rel)) {
                    if (!a.ok()) return a.err();
                    target = Posix.readlinkat(a.dirfd(), a.name(), e);
                }
                if (target == null) return e[0];
                return Posix.symlinkat(target, ovl.workFd, tmp);
            }
            case S_IFREG: {
                int in = src.openat(rel, O_RDONLY | O_NOFOLLOW, true);
                if (in < 0) return in;
                int out = Posix.openat(ovl.workFd, tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
                if (out < 0) { Posix.close(in); return out; }
                try {
                    if (!data || st.size() == 0) return 0;
                    bytes[0] = st.size();
                    int r = ovl.metaCopy.copyData(n, src, in, out, st.size(), method);
                    if (r == 0 && syncData()) r = sync(out);
                    return r;
                } finally {
                    Posix.close(in);
                    Posix.close(out);
                }
            }
            default:
                return Posix.mknodat(ovl.workFd, tmp, st.mode(), st.rdev());
        }
    }

    /** Owner, xattrs, origin, mode and times of a fresh copy in the workdir (named tmp). */
    int finishCopy(Layer src, String rel, Stat st, String tmp, long ino) {
        String dst = "/proc/self/fd/" + ovl.workFd + "/" + tmp;
        boolean lnk = st.type() == S_IFLNK;
        // owner first: chown(2) drops security.capability, which the kernel's copy-up keeps
        int r = Posix.fchownat(ovl.workFd, tmp, st.uid(), st.gid(), AT_SYMLINK_NOFOLLOW);
        if (r < 0 && ovl.root) return r;
        try (At a = src.at(rel)) {
            if (!a.ok()) return a.err();
            String sp = a.xattrPath();
            for (String x : Posix.llistxattr(sp)) {
                if (Markers.isPrivateXattr(x) && !x.startsWith(Xattrs.ESCAPED)) continue;
                byte[] v = Posix.lgetxattr(sp, x);
                if (v == null) continue;
                r = Posix.lsetxattr(dst, x, v, 0);
                if (r < 0 && xattrMustCopy(x, r)) return r;
            }
        }
        if (ino != 0) {
            r = writeOrigin(dst, -1, src.index(), rel, ino, lnk);
            if (r < 0) return r;
        }
        if (!lnk) {
            r = Posix.fchmodat(ovl.workFd, tmp, st.perm());
            if (r < 0) return r;
        }
        return Posix.utimensat(ovl.workFd, tmp, st.atime(), st.atimeNs(), st.mtime(), st.mtimeNs(), AT_SYMLINK_NOFOLLOW);
    }

    /**
     * Whether an xattr that could not be set on a copy fails the copy-up, as in the kernel's
     * ovl_copy_xattr: every error does, except EOPNOTSUPP for an xattr the upper does not know,
     * which is ignored unless it is a POSIX ACL or security.* (ovl_must_copy_xattr): dropping a deny
     * ACL or a security label would widen access. A daemon that is not root cannot set security.*
     * at all (EPERM) where the kernel's mounter could: there it stays best effort, ACLs do not.
     */
    boolean xattrMustCopy(String name, int err) {
        boolean acl = name.equals("system.posix_acl_access") || name.equals("system.posix_acl_default");
        boolean security = name.startsWith("security.");
        if (security && !ovl.root && (err == -EPERM || err == -EACCES)) return false;
        return err != -EOPNOTSUPP || acl || security;
    }

    static final String CAPABILITY = "security.capability";

    /**
     * Puts a file's capabilities back on its copy after a chown(2) of the copy (copyOverride), which
     * removes security.capability as the VFS does on every chown; the kernel overlay changes the copy's
     * owner with notify_change without ATTR_KILL_PRIV, which keeps them. (The metadata copies set the
     * owner before the xattrs for the same reason.)
     */
    void restoreCapability(Layer src, String rel, String tmp, int fd) {
        byte[] v;
        try (At a = src.at(rel)) {
            if (!a.ok()) return;
            v = Posix.lgetxattr(a.xattrPath(), CAPABILITY);
        }
        if (v == null) return;
        if (fd >= 0) Posix.fsetxattr(fd, CAPABILITY, v, 0); // best effort, as the other xattrs
        else Posix.lsetxattr("/proc/self/fd/" + ovl.workFd + "/" + tmp, CAPABILITY, v, 0);
    }

    /**
     * The origin of a copy that keeps its lower object's identity (at path, or the descriptor fd if it is
     * >= 0): the kernel's overlay.origin of layer li's object at rel ({@link Origins}), and strata's own
     * decimal overlay.strata.origin (the presented number ino) only where the kernel's value is the null
     * handle, which cannot carry the number. 0 or -errno.
     */
    int writeOrigin(String path, int fd, int li, String rel, long ino, boolean lnk) {
        if (ovl.origins == null || li <= 0 || li >= ovl.lookupStack.length) return 0;
        byte[] v = ovl.origins.valueFor(li, rel);
        int r = fd >= 0 ? ovl.origins.setFd(fd, v) : ovl.origins.set(path, v);
        if (r < 0) return r;
        if (!Origins.isHandle(v) && ino != 0 && (!lnk || ovl.root)) {
            byte[] d = Long.toString(ino).getBytes(StandardCharsets.US_ASCII);
            if (fd >= 0) Posix.fsetxattr(fd, ovl.originXattr, d, 0);
            else Posix.lsetxattr(path, ovl.originXattr, d, 0);
        }
        return 0;
    }

    /** Owner, xattrs, mode and times of a regular file's copy, from descriptor to descriptor. */
    int copyMetadata(int in, int out, Stat st) {
        // owner first: chown(2) drops security.capability, which the kernel's copy-up keeps
        int r = Posix.fchown(out, st.uid(), st.gid());
        if (r < 0 && ovl.root) return r;
        for (String x : Posix.flistxattr(in)) {
            if (Markers.isPrivateXattr(x) && !x.startsWith(Xattrs.ESCAPED)) continue;
            byte[] v = Posix.fgetxattr(in, x);
            if (v == null) continue;
            r = Posix.fsetxattr(out, x, v, 0);
            if (r < 0 && xattrMustCopy(x, r)) return r;
        }
        r = Posix.fchmod(out, st.perm());
        if (r < 0) return r;
        return Posix.futimens(out, st.atime(), st.atimeNs(), st.mtime(), st.mtimeNs());
    }

    /**
     * The owner and mode a copy shows: recorded in the copy's override xattr where the upper keeps them
     * there (xattr_permissions), else given to its inode when a lower override supplied them. The copy
     * is the descriptor fd if it is >= 0, else workdir/tmp.
     */
    int copyOverride(Node n, Layer src, Stat st, String tmp, int fd) {
        int top = n.top();
        OverrideStat.Value v = ovl.overrides.get(top, src, n.relIn(top), st.type());
        if (ovl.overrides.writes(st.type())) {
            int uid = v != null && v.uid != -1 ? v.uid : st.uid(), gid = v != null && v.gid != -1 ? v.gid : st.gid();
            int mode = v != null ? v.mode : st.perm();
            return fd >= 0 ? ovl.overrides.write(fd, uid, gid, mode) : ovl.overrides.write("/proc/self/fd/" + ovl.workFd + "/" + tmp, uid, gid, mode);
        }
        if (v == null) return 0;
        int r = fd >= 0 ? Posix.fchown(fd, v.uid, v.gid) : Posix.fchownat(ovl.workFd, tmp, v.uid, v.gid, AT_SYMLINK_NOFOLLOW);
        if (r < 0 && ovl.root) return r;
        if (r == 0 && st.type() == S_IFREG) restoreCapability(src, n.relIn(top), tmp, fd);
        return fd >= 0 ? Posix.fchmod(fd, v.mode) : Posix.fchmodat(ovl.workFd, tmp, v.mode);
    }

    /**
     * Renames workdir/tmp to upper/rel; for a copy-up the parent directory's times are kept (as the
     * kernel does) so that copy-up does not change what the parent shows. Creating or removing a name
     * changes the parent's times as usual.
     */
    int moveIntoUpper(String tmp, String rel, int flags) {
        return moveIntoUpper(tmp, rel, flags, false);
    }

    int moveIntoUpper(String tmp, String rel, int flags, boolean keepParentTimes) {
        Layer up = ovl.stack[0];
        String parent = Layer.parentOf(rel);
        Stat ps = Stat.local2();
        boolean keepTimes = keepParentTimes && up.lstat(parent, ps) == 0;
        long as = ps.atime(), an = ps.atimeNs(), ms = ps.mtime(), mn = ps.mtimeNs();
        int r;
        try (At a = up.at(rel)) {
            if (!a.ok()) return a.err();
            r = Posix.renameat2(ovl.workFd, tmp, a.dirfd(), a.name(), flags);
        }
        if (r == 0 && keepTimes) restoreTimes(parent, as, an, ms, mn);
        return r;
    }

    /**
     * Names a complete O_TMPFILE copy at upper/rel (linkat through /proc/self/fd, which needs no
     * privilege), keeping the parent directory's times as {@link #moveIntoUpper} does. Where something
     * is in the way (the upper changed under the mount), the copy replaces it as the rename did.
     */
    int linkIntoUpper(int fd, String rel) {
        Layer up = ovl.stack[0];
        String parent = Layer.parentOf(rel);
        Stat ps = Stat.local2();
        boolean keepTimes = up.lstat(parent, ps) == 0;
        long as = ps.atime(), an = ps.atimeNs(), ms = ps.mtime(), mn = ps.mtimeNs();
        String proc = "/proc/self/fd/" + fd;
        int r;
        try (At a = up.at(rel)) {
            if (!a.ok()) return a.err();
            r = Posix.linkat(AT_FDCWD, proc, a.dirfd(), a.name(), AT_SYMLINK_FOLLOW);
            if (r == -EEXIST) {
                String tmp = ovl.tmpName();
                r = Posix.linkat(AT_FDCWD, proc, ovl.workFd, tmp, AT_SYMLINK_FOLLOW);
                if (r == 0) {
                    r = Posix.renameat2(ovl.workFd, tmp, a.dirfd(), a.name(), 0);
                    if (r < 0) Posix.unlinkat(ovl.workFd, tmp, 0);
                }
            }
        }
        if (r == 0 && keepTimes) restoreTimes(parent, as, an, ms, mn);
        return r;
    }

    void restoreTimes(String rel, long as, long an, long ms, long mn) {
        Layer up = ovl.stack[0];
        if (rel.isEmpty()) { // the upper root too: the kernel overlay leaves its times as they were
            Posix.utimensat(up.fd(), ".", as, an, ms, mn, AT_SYMLINK_NOFOLLOW);
            return;
        }
        try (At a = up.at(rel)) {
            if (a.ok()) Posix.utimensat(a.dirfd(), a.name(), as, an, ms, mn, AT_SYMLINK_NOFOLLOW);
        }
    }
}
