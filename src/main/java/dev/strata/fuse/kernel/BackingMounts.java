package dev.strata.fuse.kernel;

import dev.strata.fuse.Log;
import dev.strata.layer.Layer;
import dev.strata.options.MountOptions;
import dev.strata.posix.Posix;
import dev.strata.posix.SelfCapabilities;
import dev.strata.union.Union;

import java.util.List;

/**
 * Detached copies of the layers' mounts (open_tree(2) clones) carrying the mount's access-time mode,
 * for the backing files of FUSE passthrough. The kernel reads a passthrough file through a file it opens
 * on the backing file's own path, so whether a read or a mapping updates the atime is decided by the
 * mount of the descriptor strata registered, not by the FUSE mount's flags. As the kernel overlay
 * reads its layers through private clones of their mounts: the upper's copy has the mount's mode
 * ({@code relatime}, {@code noatime}, {@code strictatime}, and {@code nodiratime}), each lower's copy
 * {@code noatime} (the kernel overlay opens real lower files with O_NOATIME and shows no access to
 * them). A layer whose own mount already has that mode gets no copy (the common case of a relatime
 * upper: each passthrough open then saves the reopen); where a copy cannot be made (no
 * CAP_SYS_ADMIN, a kernel before 5.12), a backing file is the descriptor strata reads itself, with the
 * layer mount's own atime rule.
 */
final class BackingMounts implements AutoCloseable {
    private final int[] roots;

    BackingMounts(Union union, Log log) {
        List<Layer> layers = union.layers();
        MountOptions opts = union.options();
        roots = new int[layers.size()];
        for (int i = 0; i < roots.length; i++) {
            Layer l = layers.get(i);
            long mode = l.isUpper() ? upperMode(opts) : Posix.MOUNT_ATTR_NOATIME;
            if (hasMode(Posix.mountFlags(l.fd()), mode)) {
                roots[i] = -1; // the layer's own mount already says so: its descriptors serve as they are
                continue;
            }
            int c = Posix.openTreeClone(l.fd(), "", Posix.AT_EMPTY_PATH);
            if (c >= 0) {
                int r = Posix.mountSetattr(c, mode, Posix.MOUNT_ATTR__ATIME | Posix.MOUNT_ATTR_NODIRATIME);
                if (r < 0) {
                    Posix.close(c);
                    c = r;
                }
            }
            if (c < 0) log.debug("no copy of the mount of " + l + " for passthrough: " + Posix.strerror(c)
                    + "; reads through the kernel update atime as that mount says");
            roots[i] = c;
        }
    }

    private static volatile Boolean permitted;

    /**
     * Whether the kernel registers passthrough backing files for this process: it wants
     * CAP_SYS_ADMIN in the initial user namespace (fs/fuse/backing.c: {@code capable(CAP_SYS_ADMIN)}).
     * Uid 0 in a user namespace, as rootless podman runs its mount program, has not: asking for
     * passthrough there only made each mount clone its layers' mounts for nothing, negotiate
     * passthrough at INIT and then have its first open refused (EPERM) before serving data itself
     * (issue 14: container start). Decided once per process (its namespaces do not change); if the
     * process cannot tell, it tries, and the first refused backing file turns passthrough off.
     */
    static boolean permitted() {
        Boolean p = permitted;
        if (p == null) permitted = p = Posix.geteuid() == 0 && SelfCapabilities.initialNamespaceHas(SelfCapabilities.CAP_SYS_ADMIN, true);
        return p;
    }

    /**
     * From /proc/self/uid_map and /proc/self/status: the initial user namespace (it maps every id to
     * itself, "0 0 4294967295" on one line) and CAP_SYS_ADMIN (bit 21) in the effective set. A status
     * without CapEff says nothing: true (the first backing file then tells).
     */
    static boolean initialNamespaceAdmin(String uidMap, String status) {
        return SelfCapabilities.initialNamespaceHas(uidMap, status, SelfCapabilities.CAP_SYS_ADMIN, true);
    }

    static long upperMode(MountOptions opts) {
        long dir = opts.nodiratime ? Posix.MOUNT_ATTR_NODIRATIME : 0;
        switch (opts.atime) {
            case NOATIME: return dir | Posix.MOUNT_ATTR_NOATIME;
            case STRICTATIME: return dir | Posix.MOUNT_ATTR_STRICTATIME;
            default: return dir | Posix.MOUNT_ATTR_RELATIME;
        }
    }

    /** Whether a mount with these statfs flags treats atime as the MOUNT_ATTR_* mode says. */
    static boolean hasMode(long stFlags, long mode) {
        if (stFlags < 0) return false;
        boolean noatime = (mode & Posix.MOUNT_ATTR__ATIME) == Posix.MOUNT_ATTR_NOATIME;
        if ((stFlags & Posix.ST_NOATIME) != 0 || noatime) return ((stFlags & Posix.ST_NOATIME) != 0) == noatime;
        boolean relatime = (mode & Posix.MOUNT_ATTR__ATIME) == Posix.MOUNT_ATTR_RELATIME;
        boolean nodiratime = (mode & Posix.MOUNT_ATTR_NODIRATIME) != 0;
        return ((stFlags & Posix.ST_RELATIME) != 0) == relatime && ((stFlags & Posix.ST_NODIRATIME) != 0) == nodiratime;
    }

    /** The root of layer i's copy, or -1. */
    int root(int layer) { return layer >= 0 && layer < roots.length && roots[layer] >= 0 ? roots[layer] : -1; }

    @Override public void close() {
        for (int i = 0; i < roots.length; i++) if (roots[i] >= 0) { Posix.close(roots[i]); roots[i] = -1; }
    }
}
