package dev.strata.union;

import dev.strata.layer.At;
import dev.strata.layer.Layer;
import dev.strata.layer.Markers;
import dev.strata.posix.Getdents;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

import static dev.strata.posix.Errno.*;
import static dev.strata.posix.Posix.*;

/**
 * Lower objects removed while the kernel holds them (the kernel's ovl_copy_up of an unhashed dentry):
 * a fifo, socket, device, symlink or directory of a lower layer whose name was removed (a whiteout
 * took it) or renamed over, held by the kernel without an open strata made (it opens fifos and devices
 * itself, directories without asking). fstat and the xattr reads through the kernel's descriptor answer
 * from the lower object (an O_PATH descriptor kept on it, {@link OpenFiles#holdRemoved}); a change
 * through it (fchmod, fchown, futimens, fsetxattr, fremovexattr) copies the object up first, as the
 * kernel overlay does: through the workdir, renamed into its parent's upper directory under its old
 * name, over the whiteout its removal left. So a fifo comes back under its name, with the change, while a
 * directory's copy cannot replace the whiteout (a device) and the change fails with ENOTDIR, as on the
 * kernel. Changes after the copy-up go to the copy. The lower object itself is only ever read.
 *
 * <p>What the mount shows of the name then follows the kernel's dentry cache, which the copy-up does
 * not touch: where a lookup found the name absent since the removal (the kernel then holds a negative
 * dentry for it, as strata's node cache holds a negative node), the name stays absent for lookups and
 * listings while the copy is in the upper layer ({@link #hidden}), and a creation there fails with
 * ESTALE (ovl_create_over_whiteout finds no whiteout; see Create#createName); a remount shows it. Where
 * no lookup came in between, the next one finds the copy. A name taken since by another object is
 * left alone: the kernel's copy would replace a non-directory (or an empty directory) there, which
 * strata does not do (ENOENT, README "Not there yet"); against a directory the kernel's rename fails
 * (EISDIR, ENOTEMPTY, ENOTDIR), and so does strata's.
 */
final class RemovedLower {
    private final Overlay ovl;

    RemovedLower(Overlay ovl) { this.ovl = ovl; }

    /** Mount paths whose upper object a copy-up put back while lookups had found the name absent. */
    private final Set<String> hidden = ConcurrentHashMap.newKeySet();

    /** Whether lookups and listings leave the name at mount path rel out (see the class comment). */
    boolean hidden(String rel) {
        return !hidden.isEmpty() && hidden.contains(rel);
    }

    boolean anyHidden() { return !hidden.isEmpty(); }

    /** A directory moved from {@code from} to {@code to}: the hidden names below it move with it, as dentries do. */
    void moved(String from, String to) {
        if (hidden.isEmpty()) return;
        String prefix = from.isEmpty() ? "" : from + "/";
        for (String h : hidden.toArray(new String[0])) {
            if (!h.startsWith(prefix)) continue;
            hidden.remove(h);
            hidden.add(to.isEmpty() ? h.substring(prefix.length()) : to + "/" + h.substring(prefix.length()));
        }
    }

    /**
     * An O_PATH descriptor of the lower object of n (a non-regular object, see the class comment), which
     * the engine keeps as a lower handle that copies up on change; -1 if it cannot be opened. Under the
     * engine's lock.
     */
    int hold(Node n) {
        int top = n.top();
        String at = n.relIn(top);
        int fd = ovl.stack[top].openat(at, O_PATH | O_NOFOLLOW, 0);
        if (fd < 0) return -1;
        if (n.ino == 0) {
            Stat st = Stat.local2();
            if (Posix.fstat(fd, st) == 0) n.ino = ovl.attrs.presentedIno(n, st.ino());
        }
        return fd;
    }

    /**
     * Copies up the object of a lower handle kept by {@link #hold} (under the exclusive lock): returns an
     * O_PATH descriptor of the copy, which changes then act on, or the errno the kernel overlay gives.
     */
    int copyUp(OpenFiles.LowerHandle h) {
        Node n = h.node, dir = n.parent;
        if (!ovl.hasUpper) return -EROFS;
        // its parent removed (or moved) since: the kernel's rename into the dead directory fails
        if (dir == null || dir.stale() || dir.negative() || dir.top() != 0) return -ENOENT;
        String name = n.name(), rel = Layer.child(dir.rel, name);
        int top = n.top();
        Layer src = ovl.stack[top], up = ovl.stack[0];
        Stat st = new Stat();
        int r = src.lstat(n.relIn(top), st);
        if (r < 0) return r;
        // what the old name holds now decides, as the kernel's rename of the copy over it does
        Stat at = new Stat();
        boolean present = up.lstat(rel, at) == 0;
        boolean whiteout = present ? at.isWhiteoutDevice() || LayerLookup.isXattrWhiteout(up, rel, at) : Markers.hasWhFile(up, dir.rel, name);
        if (present && !whiteout) {
            if (st.isDir() != at.isDir()) return st.isDir() ? -ENOTDIR : -EISDIR;
            return st.isDir() && !emptyUpperDir(rel) ? -ENOTEMPTY : -ENOENT;
        }
        if (st.isDir() && whiteout) return -ENOTDIR; // a directory cannot be renamed over a whiteout
        long t0 = System.nanoTime();
        long ino = ovl.attrs.presentedIno(n, st.ino());
        boolean keepIno = st.isDir() || st.nlink() <= 1;
        ovl.attrs.markImpure(dir);
        long[] bytes = {0};
        String[] method = {"metadata"};
        r = ovl.copy.copyThroughWorkdir(n, src, st, true, false, keepIno ? ino : 0, bytes, method);
        if (r < 0) return r;
        if (!present && whiteout) { // the unprivileged form: the .wh. file beside the name goes with the name's whiteout
            try (At a = up.at(Layer.child(dir.rel, Markers.WH_PREFIX + name))) {
                if (a.ok()) Posix.unlinkat(a.dirfd(), a.name(), 0);
            }
        }
        int u = up.openat(rel, O_PATH | O_NOFOLLOW, 0);
        ovl.copy.copiedUp(n, src, st, ino, keepIno, bytes[0], t0, method[0]);
        Children ch = dir.childrenIfAny();
        Node cached = ch == null ? null : ch.get(name);
        if (cached != null && cached.negative()) hidden.add(rel);
        else dir.forget(name);
        dir.listing = null;
        ovl.events.numberChanged("/" + dir.rel); // a listing the kernel keeps of dir may show the name now
        if (u < 0) return u;
        ovl.files.pathHandles.add(u);
        h.upperFd = u;
        return u;
    }

    private boolean emptyUpperDir(String rel) {
        int fd = ovl.stack[0].openat(rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
        if (fd < 0) return false;
        boolean[] empty = {true};
        try {
            Getdents.read(fd, (dIno, dt, name) -> {
                if (name.equals(".") || name.equals("..")) return true;
                empty[0] = false;
                return false;
            });
        } finally {
            Posix.close(fd);
        }
        return empty[0];
    }
}
