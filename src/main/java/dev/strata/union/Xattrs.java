package dev.strata.union;

import dev.strata.layer.At;
import dev.strata.layer.Markers;
import dev.strata.posix.Posix;
import jnr.ffi.Pointer;

import java.util.ArrayList;
import java.util.List;

import static dev.strata.posix.Errno.*;
import static dev.strata.posix.Posix.*;

/**
 * Extended attributes (the kernel's xattrs.c): the overlay's private names hidden, trusted.overlay.*
 * escaped, by path and through an open file whose name is gone.
 */
final class Xattrs {
    private final Overlay ovl;

    Xattrs(Overlay ovl) { this.ovl = ovl; }

    static final String TRUSTED_OVERLAY = "trusted.overlay.";

    /** Where an overlay xattr set through the mount is stored (the kernel's escaping, Linux 6.7+). */
    static final String ESCAPED = "trusted.overlay.overlay.";

    /** user.overlay.* are markers strata reads (rootless, fuse-overlayfs): not settable through the mount. */
    static boolean isPrivate(String name) {
        return name.startsWith("user.overlay.");
    }

    /**
     * The on-disk name of an xattr given through the mount: {@code trusted.overlay.X} is stored as
     * {@code trusted.overlay.overlay.X}, as the kernel does, so it can never be taken for a marker.
     */
    static String diskXattr(String name) {
        return name.startsWith(TRUSTED_OVERLAY) ? ESCAPED + name.substring(TRUSTED_OVERLAY.length()) : name;
    }

    boolean aclRefused(String name) {
        return ovl.opts.noAcl && name.startsWith("system.posix_acl_");
    }

    public int getxattr(String path, String name, Pointer value, long size) {
        if (isPrivate(name)) return -EOPNOTSUPP;
        if (OverrideStat.isOverrideXattr(name)) return -ENODATA; // shown as owner and mode instead
        if (aclRefused(name)) return -EOPNOTSUPP;
        int hf = ovl.files.hiddenFd(path);
        if (hf != -1) return hf < 0 ? hf : fgetxattr(hf, name, value, size);
        ovl.lock.readLock().lock();
        try {
            Node n = ovl.namei.resolve(path);
            int e = Namei.err(n);
            if (e != 0) return e;
            try (At a = atOf(n)) {
                if (!a.ok()) return a.err();
                return (int) Posix.getxattrAt(a.dirfd(), a.name(), diskXattr(name), size == 0 ? null : value, size);
            }
        } finally {
            ovl.lock.readLock().unlock();
        }
    }

    At atOf(Node n) {
        String at = n.relIn(n.top());
        return at.isEmpty() ? At.of(ovl.stack[n.top()].fd(), ".") : ovl.stack[n.top()].at(at);
    }

    public int listxattr(String path, Pointer list, long size) {
        return listxattr(path, list, size, () -> true);
    }

    /**
     * listxattr; {@code trusted.*} names are listed only if showTrusted says so (asked only when there is
     * one): the kernel overlay lists them to callers with CAP_SYS_ADMIN only, which the transport knows.
     */
    public int listxattr(String path, Pointer list, long size, java.util.function.BooleanSupplier showTrusted) {
        int hf = ovl.files.hiddenFd(path);
        if (hf != -1) return hf < 0 ? hf : flistxattr(hf, list, size, showTrusted);
        ovl.lock.readLock().lock();
        try {
            Node n = ovl.namei.resolve(path);
            int e = Namei.err(n);
            if (e != 0) return e;
            List<String> names;
            try (At a = atOf(n)) {
                if (!a.ok()) return a.err();
                names = Posix.llistxattr(a.xattrPath());
            }
            return xattrList(names, list, size, showTrusted);
        } finally {
            ovl.lock.readLock().unlock();
        }
    }

    /** The names of a layer file's xattrs as the mount lists them, into {@code list} (size 0: the length of the real list, see the body). */
    int xattrList(List<String> names, Pointer list, long size, java.util.function.BooleanSupplier showTrusted) {
        {
            // as ovl_listxattr: the real file's list is read into the caller's size, and the names the
            // caller may not see are taken out of it afterwards; a size query (size 0) answers the real
            // list's length, hidden names included, and a list that does not fit is ERANGE, even where
            // what is left of it would
            int real = 0;
            for (String x : names) real += x.length() + 1; // names come decoded one char per byte (Posix.NAMES)
            if (size == 0) return real;
            if (real > size) return -ERANGE;
            int total = 0;
            List<byte[]> keep = new ArrayList<>();
            int shown = -1; // trusted.* shown: unknown until the first one
            for (String x : names) {
                if (x.startsWith(ESCAPED)) x = TRUSTED_OVERLAY + x.substring(ESCAPED.length());
                else if (Markers.isPrivateXattr(x) || aclRefused(x) || OverrideStat.isOverrideXattr(x)) continue;
                if (x.startsWith("trusted.")) {
                    if (shown < 0) shown = showTrusted.getAsBoolean() ? 1 : 0;
                    if (shown == 0) continue;
                }
                byte[] b = x.getBytes(NAMES);
                keep.add(b);
                total += b.length + 1;
            }
            int off = 0;
            for (byte[] b : keep) {
                list.put(off, b, 0, b.length);
                list.putByte(off + b.length, (byte) 0);
                off += b.length + 1;
            }
            return total;
        }
    }

    public int setxattr(String path, String name, Pointer value, long size, int flags) {
        // as fuse-overlayfs: chmod/chown write the override xattr
        int refused = isPrivate(name) || aclRefused(name) ? -EOPNOTSUPP : OverrideStat.isOverrideXattr(name) ? -EPERM : 0;
        int hf = ovl.files.hiddenFd(path);
        if (hf != -1) return refused != 0 ? refused : hf < 0 ? hf : fsetxattr(hf, name, value, size, flags);
        return ovl.attrs.onInodeUpper(path, check(refused), (n, a) -> Posix.lsetxattr(a.xattrPath(), diskXattr(name), value, size, flags));
    }

    /**
     * The check of a setxattr or removexattr: the flags first (xattr_permission, before the file
     * system's handler sees the name), then what strata refuses of the name itself.
     */
    private Protect.Check check(int refused) {
        return n -> {
            int r = ovl.protect.xattr(n);
            return r != 0 ? r : refused;
        };
    }

    public int removexattr(String path, String name) {
        int refused = isPrivate(name) || aclRefused(name) ? -EOPNOTSUPP : OverrideStat.isOverrideXattr(name) ? -EPERM : 0;
        int hf = ovl.files.hiddenFd(path);
        if (hf != -1) return refused != 0 ? refused : hf < 0 ? hf : fremovexattr(hf, name);
        Protect.Check check = check(refused);
        // like the kernel: removing an xattr a lower object does not have fails without a copy-up
        ovl.lock.readLock().lock();
        try {
            Node n = ovl.namei.resolve(path);
            int e = Namei.err(n);
            if (e != 0) return e;
            e = check.check(n);
            if (e != 0) return e;
            if (!ovl.hasUpper || n.top() != 0) {
                try (At a = atOf(n)) {
                    if (!a.ok()) return a.err();
                    long r = Posix.getxattrAt(a.dirfd(), a.name(), diskXattr(name), null, 0);
                    if (r < 0) return (int) r;
                }
            }
        } finally {
            ovl.lock.readLock().unlock();
        }
        return ovl.attrs.onInodeUpper(path, check, (n, a) -> Posix.lremovexattr(a.xattrPath(), diskXattr(name)));
    }

    /** getxattr through an open file whose name was removed (a lower file's own, or its upper copy's). */
    public int fgetxattr(int fd, String name, Pointer value, long size) {
        if (isPrivate(name)) return -EOPNOTSUPP;
        if (OverrideStat.isOverrideXattr(name)) return -ENODATA;
        if (aclRefused(name)) return -EOPNOTSUPP;
        int c = ovl.files.currentFd(fd); // a lower file's or a removed lower object's copy, once it has one
        if (ovl.files.pathOnly(c)) return (int) Posix.getxattrFd(c, diskXattr(name), size == 0 ? null : value, size);
        return (int) Posix.fgetxattr(c, diskXattr(name), size == 0 ? null : value, size);
    }

    /** listxattr through an open file whose name was removed. */
    public int flistxattr(int fd, Pointer list, long size, java.util.function.BooleanSupplier showTrusted) {
        int c = ovl.files.currentFd(fd);
        if (ovl.files.pathOnly(c)) return xattrList(Posix.listxattrFd(c), list, size, showTrusted);
        return xattrList(Posix.flistxattr(c), list, size, showTrusted);
    }

    /** setxattr through an open file whose name was removed (the same names refused as by {@link #setxattr}). */
    public int fsetxattr(int fd, String name, Pointer value, long size, int flags) {
        if (isPrivate(name) || aclRefused(name)) return -EOPNOTSUPP;
        if (OverrideStat.isOverrideXattr(name)) return -EPERM;
        return ovl.files.onUpperOf(fd, u -> ovl.files.pathOnly(u) ? Posix.setxattrFd(u, diskXattr(name), value, size, flags)
                : Posix.fsetxattr(u, diskXattr(name), value, size, flags));
    }

    /** removexattr through an open file whose name was removed. */
    public int fremovexattr(int fd, String name) {
        if (isPrivate(name) || aclRefused(name)) return -EOPNOTSUPP;
        if (OverrideStat.isOverrideXattr(name)) return -EPERM;
        return ovl.files.onUpperOf(fd, u -> ovl.files.pathOnly(u) ? Posix.removexattrFd(u, diskXattr(name)) : Posix.fremovexattr(u, diskXattr(name)));
    }
}
