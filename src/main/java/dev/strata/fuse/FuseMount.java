package dev.strata.fuse;

import dev.strata.options.MountOptions;
import dev.strata.posix.Posix;
import dev.strata.union.Union;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Mounts a {@link Union} with libfuse 2 (through jnr-fuse) and serves it until it is unmounted.
 * The FUSE options let the kernel cache what overlay semantics allow (layers do not change under a
 * live mount): long entry/attr timeouts, kernel_cache, 128 KiB requests, our inode numbers.
 */
public final class FuseMount {
    private FuseMount() {}

    /** libfuse options for a configuration. */
    static List<String> fuseOptions(MountOptions opts, boolean root) {
        List<String> o = new ArrayList<>();
        o.add("fsname=" + opts.fsnameOrDefault().replace("\\", "\\\\").replace(",", "\\,"));
        o.add("subtype=" + opts.subtypeOrDefault().replace("\\", "\\\\").replace(",", "\\,"));
        o.add("use_ino");
        o.add("nonempty");
        o.add("big_writes");
        o.add("max_write=131072");
        o.add("max_read=131072");
        o.add("auto_cache"); // page cache kept across opens unless the file changed (hard links: see README)
        String t = String.format(Locale.ROOT, "%.3f", opts.timeoutSeconds);
        o.add("entry_timeout=" + t);
        o.add("attr_timeout=" + String.format(Locale.ROOT, "%.3f", opts.attrTimeoutSeconds));
        o.add("negative_timeout=" + t);
        o.add("default_permissions");
        if (root) {
            // allow_root (only root and the owner) and allow_other are exclusive: the user's choice wins
            if (!opts.fuseOptions.contains("allow_root")) o.add("allow_other");
            // as the kernel overlay: device nodes and setuid binaries in the layers work (libfuse 2
            // would add nodev,nosuid)
            if (!opts.nodev()) o.add("dev");
            if (!opts.nosuid()) o.add("suid");
        }
        if (opts.nodev()) o.add("nodev");
        if (opts.nosuid()) o.add("nosuid");
        if (opts.noexec()) o.add("noexec");
        // libfuse 2 knows noatime among the mount flags, not relatime/strictatime/nodiratime (fusermount
        // mounts with the kernel's default, relatime); the daemon's own reads follow the mode either way
        if (opts.atime == dev.strata.options.MountOptions.Atime.NOATIME) o.add("noatime");
        if (opts.readOnly()) o.add("ro");
        for (String f : opts.fuseOptions) {
            if (!o.contains(f) && !(f.equals("rw") && opts.readOnly()) && !f.equals("default_permissions")) o.add(f);
        }
        if (opts.context != null && !opts.context.isEmpty()) o.add("context=" + opts.context);
        return o;
    }

    /**
     * Mounts and blocks until the file system is unmounted. {@code ready} runs once the kernel has
     * connected (the mount is usable); {@code debug} makes libfuse print every request. Returns libfuse's exit status; non-zero if the mount failed.
     */
    public static int serve(Union union, Path mountpoint, boolean debug, Runnable ready, Log log) {
        Posix.umask(0); // modes arrive with the caller's umask applied; don't apply the daemon's again
        union.libfuseHidesOpenFiles();
        AtomicBoolean up = new AtomicBoolean();
        StrataFS fs = new StrataFS(union, () -> {
            up.set(true);
            ready.run();
        }, log);
        List<String> opts = fuseOptions(union.options(), Posix.geteuid() == 0);
        String[] args = {"-o", String.join(",", opts)};
        if (debug) log.debug("fuse options: " + String.join(",", opts));
        Thread hook = new Thread(() -> {
            if (up.get()) unmount(mountpoint, true);
        }, "strata-unmount");
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            // jnr-fuse hands the path to libfuse in the default (byte-transparent) charset
            fs.mount(java.nio.file.Paths.get(dev.strata.posix.Names.toNative(mountpoint.toString())), true,
                    debug, args);
            return up.get() ? 0 : 1;
        } catch (RuntimeException e) {
            if (!up.get()) return 1;
            throw e;
        } finally {
            up.set(false);
            try { Runtime.getRuntime().removeShutdownHook(hook); } catch (IllegalStateException ignored) { }
        }
    }

    /**
     * Unmounts a FUSE mount: umount2 as root, else fusermount3/fusermount. Returns null on success or a
     * one-line reason.
     */
    public static String unmount(Path mountpoint, boolean lazy) {
        if (Posix.geteuid() == 0) {
            int r = Posix.umount2(dev.strata.posix.Names.toNative(mountpoint.toString()), lazy ? Posix.MNT_DETACH : 0);
            if (r == 0) return null;
            if (r != -dev.strata.posix.Errno.EPERM) return Posix.strerror(r);
        }
        for (String tool : new String[]{"fusermount3", "fusermount"}) {
            try {
                List<String> cmd = new ArrayList<>(List.of(tool, "-u"));
                if (lazy) cmd.add("-z");
                cmd.add(mountpoint.toString());
                Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
                String out = new String(p.getInputStream().readAllBytes()).trim();
                if (p.waitFor() == 0) return null;
                return out.isEmpty() ? tool + " failed" : out.replace('\n', ' ');
            } catch (java.io.IOException e) {
                // try the next tool
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return "interrupted";
            }
        }
        return "no fusermount3 or fusermount found";
    }
}
