package dev.strata.union;

import dev.strata.layer.Detached;
import dev.strata.layer.Layer;
import dev.strata.options.MountOptions;
import dev.strata.posix.Posix;
import jnr.ffi.Pointer;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BooleanSupplier;

/**
 * The union engine: kernel-overlayfs semantics over a stack of layer directories, as POSIX operations
 * that return 0 / a count / {@code -errno}. Paths are mount-relative ("/" or "/a/b"); internally
 * everything goes through {@link Node}s. Nothing here knows about FUSE.
 *
 * <p>This class is the facade the transports call; each operation is done by the part of the engine
 * for its concern, as in the kernel's fs/overlayfs: {@link Namei} (lookup), {@link Attrs} (inode.c),
 * {@link Readdir}, {@link CopyUp} (copy_up.c), {@link Create}, {@link Remove} and {@link Rename}
 * (dir.c), {@link Xattrs}, {@link FileAttr} (lsattr / chattr flags) and {@link OpenFiles} (file.c),
 * all sharing one {@link Overlay} (the mount's state and lock).
 */
public final class Union implements AutoCloseable {
    private final Overlay ovl;
    /** The upperdir's and workdir's in-use locks, held until close (null: read-only). */
    private final InUse inUse;

    /** The root of the detached copy of the upper's and workdir's mount (see {@link Detached#openPair}), or -1. */
    private final int mountCopy;

    private Union(Overlay ovl, InUse inUse, int mountCopy) { this.ovl = ovl; this.inUse = inUse; this.mountCopy = mountCopy; }

    /**
     * Opens the layers of a validated configuration. Throws {@link IllegalStateException} with a one-line
     * message if a directory cannot be opened.
     */
    public static Union open(MountOptions opts, UnionEvents events) {
        List<Layer> layers = new ArrayList<>();
        int[] err = new int[1];
        boolean upper = opts.upperDir != null;
        int workFd = -1;
        // the upper and the workdir through one detached copy of their mount (see Detached)
        int[] uw = upper ? Detached.openPair(opts.upperDir, opts.workDir) : new int[]{-1, -1, -1};
        InUse inUse = null;
        try {
            if (upper) {
                if (uw[1] < 0) throw new IllegalStateException("cannot open " + opts.upperDir + ": " + Posix.strerror(uw[1]));
                if (uw[2] < 0) throw new IllegalStateException("cannot open workdir " + opts.workDir + ": " + Posix.strerror(uw[2]));
                // before the workdir is emptied: another mount may be using it
                inUse = InUse.take(opts, uw[1], uw[2], w -> System.err.println("strata: warning: " + w));
                layers.add(Layer.adopt(uw[1], opts.upperDir, 0, true));
                uw[1] = -1; // the layer's now
            }
            for (Path p : opts.allLowerDirs()) layers.add(Overlay.openLayer(p, layers.size(), false, err));
            if (upper) workFd = Overlay.prepareWork(opts.workDir, uw[2], opts.volatileMode);
        } catch (RuntimeException e) {
            for (Layer l : layers) l.close();
            if (inUse != null) inUse.close();
            for (int i = 0; i < uw.length; i++) {
                if (uw[i] >= 0) Posix.close(uw[i]);
                uw[i] = -1;
            }
            throw e;
        } finally {
            if (uw[2] >= 0) Posix.close(uw[2]);
            uw[2] = -1;
        }
        int mountCopy = uw[0];
        IndexMount.Setup ix = null;
        if (upper && opts.index) {
            try {
                ix = IndexMount.prepare(opts, layers, workFd, w -> System.err.println("strata: warning: " + w));
            } catch (RuntimeException e) {
                for (Layer l : layers) l.close();
                Posix.close(workFd);
                inUse.close();
                if (mountCopy >= 0) Posix.close(mountCopy);
                throw e;
            }
            if (ix != null) layers.add(ix.layer);
        }
        Overlay o = new Overlay(opts, layers.toArray(new Layer[0]), upper, workFd, events == null ? UnionEvents.NONE : events, ix);
        Union u = new Union(o, inUse, mountCopy);
        int r = o.overrides.initUpperRoot(o.stack);
        if (r < 0) {
            u.close();
            throw new IllegalStateException("xattr_permissions: cannot record owner and mode on " + opts.upperDir + ": " + Posix.strerror(r));
        }
        return u;
    }

    @Override public void close() {
        ovl.close();
        if (inUse != null) inUse.close();
        if (mountCopy >= 0) Posix.close(mountCopy);
    }

    /**
     * An operation through a descriptor after its append-only / immutable check ({@link Protect}): the
     * check's error, else the operation's result. Operations by path check the nodes they resolve themselves.
     */
    private static int or(int refused, java.util.function.IntSupplier op) { return refused != 0 ? refused : op.getAsInt(); }

    /** The mount's state, for the engine's own tests. */
    Overlay overlay() { return ovl; }

    /**
     * Drops this mount's cached engine nodes that nothing holds (a node an open file uses stays, and
     * the directories above it): what a later request needs is looked up again from the layers, with
     * the same result ({@link NodeCache}). The kernel transport calls it for a mount that has been
     * quiet a while (fuse/kernel/Rest). Returns how many nodes went, or -1 if an operation held the
     * engine's lock (nothing was dropped; try later).
     */
    public int dropCachedNodes() { return ovl.namei.nodes.evictAllIfFree(); }

    public boolean readOnly() { return !ovl.hasUpper; }
    public MountOptions options() { return ovl.opts; }
    public List<Layer> layers() { return List.of(ovl.lookupStack); }

    /** Called by the libfuse 2 transport: its hiding renames remove the file, and st_nlink is compensated. */
    public void libfuseHidesOpenFiles() { ovl.files.libfuseHidesOpenFiles(); }
    /** The kernel keeps a writeback cache of file data: files opened for writing must be readable, without O_APPEND (see OpenFiles#fdFlags). */
    public void writebackCache() { ovl.files.writebackCache(); }

    /** Receives merged directory entries: name, type (S_IFMT bits), inode number. */
    public interface DirSink {
        /** Returns false to stop (the FUSE buffer is full). */
        boolean entry(String name, int type, long ino);
    }

    // ------------------------------------------------------------------ attributes (Attrs)

    public int getattr(String path, Pointer st) { return ovl.attrs.getattr(path, st); }

    /** Takes the attributes of one entry of a listing (READDIRPLUS): see {@link #getattrEach}. */
    public interface EntryStat {
        /** r: what getattr of dir/names[i] answered, its attributes in st if 0. Returns false to stop. */
        boolean entry(int i, int r);
    }

    /**
     * getattr of dirPath/names[i] for i in [from, to), each into st, until sink answers false: what
     * {@link #getattr} answers for each path, with the directory resolved once rather than once per entry
     * ("." and ".." are not looked up: -ENOENT).
     */
    public void getattrEach(String dirPath, String[] names, int from, int to, Pointer st, EntryStat sink) {
        ovl.attrs.getattrEach(dirPath, names, from, to, st, sink);
    }
    public int fgetattr(int fd, Pointer st) { return ovl.attrs.fgetattr(fd, st); }
    public int readlink(String path, Pointer buf, long size) { return ovl.attrs.readlink(path, buf, size); }
    public String readlink(String path, int[] err) { return ovl.attrs.readlink(path, err); }
    public int statfs(Pointer out) { return ovl.attrs.statfs(out); }
    public int chmod(String path, int mode) { return ovl.attrs.chmod(path, mode); }
    public int chown(String path, int uid, int gid) { return ovl.attrs.chown(path, uid, gid); }
    public int utimens(String path, long aSec, long aNsec, long mSec, long mNsec) { return ovl.attrs.utimens(path, aSec, aNsec, mSec, mNsec); }
    public int truncate(String path, long size) { return ovl.attrs.truncate(path, size); }
    public int fchmod(int fd, int mode) { return or(ovl.protect.fsetattr(fd, Protect.META), () -> ovl.attrs.fchmod(fd, mode)); }
    public int fchown(int fd, int uid, int gid) {
        return or(uid == -1 && gid == -1 ? 0 : ovl.protect.fsetattr(fd, Protect.META), () -> ovl.attrs.fchown(fd, uid, gid));
    }
    public int truncateRemoved(int fd, long size) { return or(ovl.protect.fsetattr(fd, Protect.SIZE), () -> ovl.attrs.truncateRemoved(fd, size)); }
    public int futimens(int fd, long aSec, long aNsec, long mSec, long mNsec) {
        return or(ovl.protect.fsetattr(fd, Protect.timesKind(aNsec, mNsec)), () -> ovl.attrs.futimens(fd, aSec, aNsec, mSec, mNsec));
    }

    // ------------------------------------------------------------------ directory listings (Readdir)

    public int readdir(String path, DirSink sink) { return ovl.readdir.readdir(path, sink); }
    public List<String> list(String path, int[] err) { return ovl.readdir.list(path, err); }

    // ------------------------------------------------------------------ creating names (Create)

    public int mkdir(String path, int mode, int uid, int gid) { return ovl.create.mkdir(path, mode, uid, gid); }
    public int mknod(String path, int mode, long rdev, int uid, int gid) { return ovl.create.mknod(path, mode, rdev, uid, gid); }
    public int symlink(String target, String path, int uid, int gid) { return ovl.create.symlink(target, path, uid, gid); }
    public int create(String path, int mode, int flags, int uid, int gid) { return ovl.create.create(path, mode, flags, uid, gid); }
    public int tmpfile(String dirPath, int mode, int flags, int uid, int gid) { return ovl.create.tmpfile(dirPath, mode, flags, uid, gid); }
    public int linkFd(int openFd, String to) { return ovl.create.linkFd(openFd, to); }
    public int link(String from, String to) { return ovl.create.link(from, to); }

    // ------------------------------------------------------------------ removing names (Remove)

    public boolean isUpper(String path) { return ovl.remove.isUpper(path); }
    /** See {@link Remove#upperLinkedInode}: the upper inode of a hard-linked upper regular file, or 0. */
    public long upperLinkedInode(String path) { return ovl.remove.upperLinkedInode(path); }
    /** See {@link Remove#indexedFile}: a regular file whose names share one inode through the index. */
    public boolean indexedFile(String path) { return ovl.remove.indexedFile(path); }
    public int unlink(String path) { return ovl.remove.unlink(path); }
    public int rmdir(String path) { return ovl.remove.rmdir(path); }

    // ------------------------------------------------------------------ rename (Rename)

    public int rename(String from, String to, int flags) { return ovl.rename.rename(from, to, flags); }

    // ------------------------------------------------------------------ extended attributes (Xattrs)

    public int getxattr(String path, String name, Pointer value, long size) {
        return ovl.xattrs.getxattr(path, name, value, size);
    }
    public int listxattr(String path, Pointer list, long size) { return ovl.xattrs.listxattr(path, list, size); }
    public int listxattr(String path, Pointer list, long size, BooleanSupplier showTrusted) {
        return ovl.xattrs.listxattr(path, list, size, showTrusted);
    }
    public int setxattr(String path, String name, Pointer value, long size, int flags) { return ovl.xattrs.setxattr(path, name, value, size, flags); }
    public int removexattr(String path, String name) { return ovl.xattrs.removexattr(path, name); }
    public int fgetxattr(int fd, String name, Pointer value, long size) {
        return ovl.xattrs.fgetxattr(fd, name, value, size);
    }
    public int flistxattr(int fd, Pointer list, long size, BooleanSupplier showTrusted) {
        return ovl.xattrs.flistxattr(fd, list, size, showTrusted);
    }
    public int fsetxattr(int fd, String name, Pointer value, long size, int flags) {
        return or(ovl.protect.fxattr(fd), () -> ovl.xattrs.fsetxattr(fd, name, value, size, flags));
    }
    public int fremovexattr(int fd, String name) { return or(ovl.protect.fxattr(fd), () -> ovl.xattrs.fremovexattr(fd, name)); }

    // ------------------------------------------------------------------ file attribute flags (FileAttr)

    public int getFileattr(String path, long cmd, Pointer buf) { return ovl.fileattr.getFileattr(path, cmd, buf); }
    public int setFileattr(String path, long cmd, Pointer buf) { return ovl.fileattr.setFileattr(path, cmd, buf); }
    /** FS_APPEND_FL / FS_IMMUTABLE_FL as lsattr shows them on path (0 where it does not resolve). */
    public int protFlags(String path) { return ovl.fileattr.protFlags(path); }

    // ------------------------------------------------------------------ open files (OpenFiles)

    public int open(String path, int flags) { return ovl.files.open(path, flags); }
    public boolean hasOtherNames(int fd) { return ovl.files.hasOtherNames(fd); }
    public boolean stableFd(int fd) { return ovl.files.stableFd(fd); }
    public int reopenBeneath(int fd, java.util.function.IntUnaryOperator rootOfLayer) { return ovl.files.reopenBeneath(fd, rootOfLayer); }
    public long read(int fd, Pointer buf, long size, long off) { return ovl.files.read(fd, buf, size, off); }
    public long lseek(int fd, long off, int whence) { return ovl.files.lseek(fd, off, whence); }
    /** Bytes a read of [off, off + size) of an open file gets now (see OpenFiles#readable), or -errno. */
    public long readable(int fd, long off, long size, Pointer st) { return ovl.files.readable(fd, off, size, st); }
    /** splice(2) of an open file's bytes into a pipe, from where its reads go (see OpenFiles#splice). */
    public long splice(int fd, long off, long len, int pipe, Pointer offBuf) { return ovl.files.splice(fd, off, len, pipe, offBuf); }

    public long write(int fd, Pointer buf, long size, long off) { return ovl.files.write(fd, buf, size, off); }
    /** The O_DIRECT descriptor a read or write of an open file that carries O_DIRECT goes through (see OpenFiles#direct). */
    public int direct(int fd, boolean write) { return ovl.files.direct(fd, write); }
    /** What {@link #direct} answers for a file whose direct I/O strata serves as any other (a lazy layer's file). */
    public static final int NOT_DIRECT = OpenFiles.NOT_DIRECT;
    public long copyFileRange(int in, long inOff, int out, long outOff, long len, long flags, boolean directIn, boolean directOut) {
        return ovl.files.copyFileRange(in, inOff, out, outOff, len, flags, directIn, directOut);
    }
    public int ftruncate(int fd, long size) { return or(ovl.protect.ftruncate(fd), () -> ovl.files.ftruncate(fd, size)); }
    public int fsync(int fd, boolean dataOnly) { return ovl.files.fsync(fd, dataOnly); }
    public int fallocate(int fd, int mode, long off, long len) { return or(ovl.protect.fallocate(fd, mode), () -> ovl.files.fallocate(fd, mode, off, len)); }
    public int release(int fd) { return ovl.files.release(fd); }
    /** An O_PATH descriptor kept on the object at path before its name goes (see OpenFiles#holdRemoved), or -1. */
    public int holdRemoved(String path) { return ovl.files.holdRemoved(path); }
}
