package dev.strata.fuse.kernel;

import dev.strata.fuse.FuseMount;
import dev.strata.fuse.Log;
import dev.strata.options.MountOptions;
import dev.strata.posix.Names;
import dev.strata.posix.Posix;
import dev.strata.union.Union;
import dev.strata.union.UnionEvents;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;

import static dev.strata.posix.Errno.*;

/**
 * Mounts a {@link Union} by speaking the kernel's FUSE protocol on /dev/fuse directly (no libfuse):
 * opens the device, mounts it with mount(2) (root, or uid 0 of a user namespace that owns its mount
 * namespace, as podman runs mount programs), and serves requests on worker threads ({@link Workers}) until the
 * file system is unmounted.
 */
public final class KernelMount {
    private KernelMount() {}

    /** {@link #serve}'s answer when this process may not mount FUSE itself (use fusermount via libfuse). */
    public static final int NOT_PERMITTED = -2;

    static final int MS_RDONLY = 1, MS_NOSUID = 2, MS_NODEV = 4, MS_NOEXEC = 8;
    static final int MS_NOATIME = 1024, MS_NODIRATIME = 2048, MS_RELATIME = 1 << 21, MS_STRICTATIME = 1 << 24;

    /**
     * Engine events for a mount served here: copy-ups are noted so the kernel's cached attributes of
     * the copied-up nodes can be invalidated, and directories whose listing shows a changed inode
     * number so the kernel's cached listing of them can be; everything is passed on to {@code next}.
     */
    public static UnionEvents events(UnionEvents next) {
        return new UnionEvents() {
            @Override public void copiedUp(String path, String fromLayer, String type, long bytes, long nanos, String method) {
                KernelFS.copiedUp(path);
                next.copiedUp(path, fromLayer, type, bytes, nanos, method);
            }
            @Override public void numberChanged(String dir) {
                KernelFS.listingChanged(dir);
                next.numberChanged(dir);
            }
            @Override public void attributesChanged(String path) {
                KernelFS.copiedUp(path); // its cached attributes go, as after a copy-up
                next.attributesChanged(path);
            }
            @Override public void whiteout(String path, String form) { next.whiteout(path, form); }
            @Override public void opaque(String path, String form) { next.opaque(path, form); }
            @Override public void renameRefused(String from, String to, String why) { next.renameRefused(from, to, why); }
            @Override public void redirected(String from, String to, String redirect, String xattr) { next.redirected(from, to, redirect, xattr); }
            @Override public void dataRefused(String path, String why) { next.dataRefused(path, why); }
            @Override public void dataFound(String path) {
                KernelFS.copiedUp(path); // its cached attributes (st_blocks) go
                next.dataFound(path);
            }
        };
    }

    /** The mount(2) flags of the access-time mode (what /proc/mounts then shows, as for the kernel overlay). */
    static long atimeFlags(MountOptions opts) {
        long f = opts.nodiratime ? MS_NODIRATIME : 0;
        switch (opts.atime) {
            case NOATIME: return f | MS_NOATIME;
            case STRICTATIME: return f | MS_STRICTATIME;
            default: return f | MS_RELATIME;
        }
    }

    /** The mount(2) data string. */
    static String mountData(int fd, MountOptions opts, boolean root) {
        List<String> o = new ArrayList<>();
        o.add("fd=" + fd);
        o.add("rootmode=40000");
        o.add("user_id=" + Posix.getuid());
        o.add("group_id=" + Posix.getgid());
        o.add("default_permissions");
        // allow_root is enforced per request (only root and the owner); the kernel only knows allow_other
        if (root || opts.fuseOptions.contains("allow_other") || opts.fuseOptions.contains("allow_root")) o.add("allow_other");
        if (opts.context != null && !opts.context.isEmpty()) o.add("context=" + opts.context);
        return String.join(",", o);
    }

    /**
     * Mounts and serves until unmounted. Returns 0 after a clean unmount, {@link #NOT_PERMITTED} if
     * mount(2) is refused for lack of privilege (nothing was mounted), or 1 with the reason logged.
     */
    public static int serve(Union union, Path mountpoint, boolean debug, Runnable ready, Log log) {
        Posix.umask(0); // modes arrive with the caller's umask applied; don't apply the daemon's again
        MountOptions opts = union.options();
        int fd = Posix.openat(Posix.AT_FDCWD, "/dev/fuse", Posix.O_RDWR, 0);
        if (fd < 0) {
            if (fd == -EACCES || fd == -EPERM) return NOT_PERMITTED;
            log.error("cannot open /dev/fuse: " + Posix.strerror(fd));
            return 1;
        }
        boolean root = Posix.geteuid() == 0;
        String target = Names.toNative(mountpoint.toString());
        long flags = 0;
        if (opts.readOnly() || opts.fuseOptions.contains("ro")) flags |= MS_RDONLY;
        if (opts.nosuid()) flags |= MS_NOSUID;
        if (opts.nodev()) flags |= MS_NODEV;
        if (opts.noexec()) flags |= MS_NOEXEC;
        flags |= atimeFlags(opts);
        String data = mountData(fd, opts, root);
        String source = opts.fsnameOrDefault(), type = "fuse." + opts.subtypeOrDefault();
        if (debug) log.debug("mount(2) " + type + " on " + mountpoint + " with " + data);
        int r = Posix.mount(source, target, type, flags, data);
        if (r == -EPERM && !root) {
            Posix.close(fd);
            return NOT_PERMITTED;
        }
        if (r == -EPERM || r == -EACCES) {
            // e.g. uid 0 in a user namespace without its own mount namespace: retry without device files/setuid
            r = Posix.mount(source, target, type, flags | MS_NOSUID | MS_NODEV, data);
            if (r == -EPERM) {
                Posix.close(fd);
                return NOT_PERMITTED;
            }
        }
        if (r < 0) {
            Posix.close(fd);
            log.error("mount " + mountpoint + ": " + Posix.strerror(r));
            return 1;
        }
        int allowOnly = opts.fuseOptions.contains("allow_root") ? Posix.geteuid() : -1;
        AtomicBoolean up = new AtomicBoolean(true);
        Thread hook = new Thread(() -> {
            if (up.get()) FuseMount.unmount(mountpoint, true);
        }, "strata-unmount");
        Runtime.getRuntime().addShutdownHook(hook);
        KernelFS fs = new KernelFS(union, fd, log, debug, allowOnly);
        fs.gate = Gate.register(mountpoint);
        Workers workers = new Workers(fs);
        fs.workers = workers;
        Rest.MOUNTS.add(fs);
        try {
            // Mounted: the command that mounted (a rootless container's mount program) may return now,
            // as fuse-overlayfs's returns once mount(2) did, not after the kernel's INIT (its child serves
            // that): whatever uses the mount waits in the kernel for INIT's reply, which this thread sends
            // next. Waiting for INIT put its round trip before the mount program's exit on every container
            // start (bench/rootless/starttrace.py: the mount program's exec to its exit 4.0 -> 3.1 ms,
            // fuse-overlayfs 1.5-1.8)
            try {
                ready.run();
            } catch (RuntimeException e) { // the mount is up and serves whatever became of its command
                log.error("mount " + mountpoint + ": telling the command it is ready: " + e);
            }
            workers.serveHere(); // this thread serves as the mount's lasting worker
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            up.set(false);
            Rest.MOUNTS.remove(fs);
            if (fs.backingMounts != null) fs.backingMounts.close();
            Gate.unregister(mountpoint, fs.gate);
            fs.closeNonBlocking();
            Posix.close(fd);
            try { Runtime.getRuntime().removeShutdownHook(hook); } catch (IllegalStateException ignored) { }
            Rest.mountEnded(); // what this mount held is garbage now: collected at the next rest
        }
        return 0;
    }
}
