package dev.strata.layer;

import dev.strata.posix.Names;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;

import java.io.IOException;
import java.nio.file.Path;

/**
 * The layers' directories opened through detached copies of their mounts (open_tree(2) with
 * OPEN_TREE_CLONE, not recursive), as the kernel overlay reads its layers through private clones of
 * their mounts ({@code clone_private_mount}). Every descriptor strata holds then pins its copy, not the
 * mount the user sees: that mount can be unmounted as soon as strata's own is, as with the kernel
 * overlay. (A FUSE server hears of its unmount only after umount(2) returned; until it has closed its
 * descriptors, a layer's own mount stayed busy: unionmount-testsuite's `umount /lower` right after the
 * union's failed now and then.) A mount made inside a layer directory later stays out of the union, as
 * on the kernel overlay. Where no copy can be made (no CAP_SYS_ADMIN over the mount namespace: EPERM;
 * before Linux 5.2: ENOSYS), the directories are opened as they are.
 */
public final class Detached {
    private Detached() {}

    /** An O_PATH descriptor of dir: the root of a copy of its mount made at dir, or dir itself; -errno. */
    public static int open(Path dir) {
        int fd = openPlain(dir);
        if (fd < 0) return fd;
        int c = clone(fd);
        if (c < 0) return fd;
        Posix.close(fd);
        return c;
    }

    /**
     * The upper and work directories through one copy of their common mount, as renames and links from
     * the workdir into the upper must stay within one mount: {root of the copy (keep it open while the
     * other two are used: a copy whose root descriptor is closed is dissolved, and cannot be copied again
     * for passthrough), upper, workdir}, O_PATH descriptors. Without a copy the first is -1 and the others
     * are the directories opened as they are (-errno where they cannot be). The copy is made at the
     * deepest directory above both (of their real paths); it is used only where the two descriptors
     * opened through it are the same directories as opened directly (a mount in between, or a path
     * changed meanwhile, makes them differ).
     */
    public static int[] openPair(Path upper, Path work) {
        int u = openPlain(upper), w = openPlain(work);
        if (u < 0 || w < 0) return new int[]{-1, u, w};
        int[] siblings = siblings(upper, work, u, w);
        if (siblings != null) return siblings;
        Path ru, rw;
        try {
            ru = upper.toRealPath();
            rw = work.toRealPath();
        } catch (IOException | RuntimeException e) {
            return new int[]{-1, u, w};
        }
        Path common = ru;
        while (common != null && !rw.startsWith(common)) common = common.getParent();
        if (common == null) return new int[]{-1, u, w};
        int cfd = openPlain(common);
        if (cfd < 0) return new int[]{-1, u, w};
        int root = clone(cfd);
        Posix.close(cfd);
        if (root < 0) return new int[]{-1, u, w};
        int[] pair = through(root, common.relativize(ru).toString(), common.relativize(rw).toString(), u, w);
        return pair != null ? pair : new int[]{-1, u, w};
    }

    /**
     * {root, upper, work}: the two opened below the copy's root by their relative names, if they are the
     * directories u and w (which are then closed); else null, and the copy closed.
     */
    private static int[] through(int root, String upperRel, String workRel, int u, int w) {
        int cu = below(root, upperRel), cw = below(root, workRel);
        if (cu >= 0 && cw >= 0 && same(cu, u) && same(cw, w)) {
            Posix.close(u);
            Posix.close(w);
            return new int[]{root, cu, cw};
        }
        if (cu >= 0) Posix.close(cu);
        if (cw >= 0) Posix.close(cw);
        Posix.close(root);
        return null;
    }

    /**
     * A copy of the mount at fd, made at fd's directory, and private as the kernel's clone_private_mount
     * makes its copies: a copy of a shared mount would otherwise be a peer of it (kernels that propagate
     * into detached trees then show a mount made later inside a layer); where that cannot be set
     * (before Linux 5.12) the copy is kept as it is.
     */
    private static int clone(int fd) {
        int c = Posix.openTreeClone(fd, "", Posix.AT_EMPTY_PATH);
        if (c >= 0) Posix.mountSetPrivate(c);
        return c;
    }

    /**
     * The common case without resolving paths (podman's .../ID/diff and .../ID/work): upper and work are
     * two names in one directory, the upper's parent. The copy is made there; null if they are not.
     */
    private static int[] siblings(Path upper, Path work, int u, int w) {
        Path un = upper.getFileName(), wn = work.getFileName();
        if (un == null || wn == null) return null;
        int parent = Posix.openat(u, "..", Posix.O_PATH | Posix.O_DIRECTORY, 0);
        if (parent < 0) return null;
        try {
            int pw = below(parent, wn.toString());
            if (pw < 0) return null;
            boolean same = same(pw, w);
            Posix.close(pw);
            if (!same) return null;
            int root = clone(parent);
            if (root < 0) return new int[]{-1, u, w};
            return through(root, un.toString(), wn.toString(), u, w);
        } finally {
            Posix.close(parent);
        }
    }

    private static int openPlain(Path dir) {
        return Posix.openat(Posix.AT_FDCWD, Names.toNative(dir.toString()), Posix.O_PATH | Posix.O_DIRECTORY, 0);
    }

    /** The directory rel below dir ("" : dir itself), its last name not followed if a symlink. */
    private static int below(int dir, String rel) {
        return Posix.openat(dir, rel.isEmpty() ? "." : Names.toNative(rel), Posix.O_PATH | Posix.O_DIRECTORY | Posix.O_NOFOLLOW, 0);
    }

    private static boolean same(int a, int b) {
        Stat x = new Stat(), y = new Stat();
        return Posix.fstat(a, x) == 0 && Posix.fstat(b, y) == 0 && x.dev() == y.dev() && x.ino() == y.ino();
    }
}
