package dev.strata.cli;

import dev.strata.fuse.FuseMount;
import dev.strata.fuse.kernel.KernelMount;
import dev.strata.fuse.Log;
import dev.strata.image.ImageException;
import dev.strata.image.ImageStore;
import dev.strata.options.MountOptions;
import dev.strata.options.OptionParser;
import dev.strata.options.Validator;
import dev.strata.union.Union;
import dev.strata.union.UnionEvents;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * {@code strata mount -o lowerdir=A:B,upperdir=U,workdir=W MOUNTPOINT}, also reached as
 * {@code strata -o OPTS MOUNTPOINT} (fuse-overlayfs, podman) and {@code strata SOURCE MOUNTPOINT -o OPTS}
 * (mount.fuse3, so {@code mount -t fuse.strata} works). Returns once the mount is ready unless -f.
 */
@Command(name = "mount", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = {"Mount a union of layer directories.",
                "Options (-o, comma-separated, may repeat): lowerdir=A:B:C (top first, \\: for a colon),",
                "upperdir=DIR, workdir=DIR (same filesystem as upperdir; without both the mount is read-only),",
                "fsync=0, volatile, timeout=SECONDS, static_nlink, noacl, xattr_permissions=0|1|2,",
                "uidmapping=:C:H:N..., gidmapping=..., squash_to_root, squash_to_uid=N, squash_to_gid=N,",
                "context=..., trace=FILE, allow_other, allow_root, ro, debug. Unknown options are ignored with a warning."})
public final class MountCommand implements Callable<Integer> {
    @Option(names = "-o", paramLabel = "OPTIONS", description = "mount options (see above)")
    List<String> options = new ArrayList<>();

    @Option(names = {"-f", "--foreground"}, description = "stay in the foreground (the launcher otherwise returns once ready)")
    boolean foreground;

    @Option(names = {"-d", "--debug"}, description = "debug output (implies -f)")
    boolean debug;

    @Option(names = "--log", paramLabel = "FILE", description = "where the daemon writes errors once detached (default: discarded)")
    String logFile;

    @Option(names = "--image", paramLabel = "NAME[:TAG]",
            description = "mount an imported image's layers (see 'strata image import'); read-only unless --upper")
    String image;

    @Option(names = "--store", paramLabel = "DIR", description = "image store (default: $XDG_DATA_HOME/strata)")
    Path store;

    @Option(names = "--upper", paramLabel = "DIR",
            description = "with --image: writable upper directory (created if missing)")
    Path upper;

    @Option(names = "--work", paramLabel = "DIR",
            description = "with --upper: work directory (default: UPPER.work beside it, created if missing)")
    Path work;

    @Parameters(arity = "1..2", paramLabel = "[SOURCE] MOUNTPOINT",
            description = "the mountpoint; a first argument (mount.fuse3's source) is ignored")
    List<String> positional = new ArrayList<>();

    /**
     * Parses {@code mount [-o OPTS]... [-f] [-d] [--log FILE] [--image REF] [--store DIR] [--upper DIR]
     * [--work DIR] [SOURCE] MOUNTPOINT} without picocli; returns null for anything else (help, unknown
     * flags, wrong arity), which then goes through picocli and its messages.
     */
    static MountCommand parseQuick(String[] a) {
        MountCommand m = new MountCommand();
        for (int i = 1; i < a.length; i++) {
            String x = a[i];
            String next = i + 1 < a.length ? a[i + 1] : null;
            if (x.equals("-o") && next != null) { m.options.add(next); i++; }
            else if (x.startsWith("-o") && x.length() > 2) m.options.add(x.substring(2));
            else if (x.equals("-f") || x.equals("--foreground")) m.foreground = true;
            else if (x.equals("-d") || x.equals("--debug")) m.debug = true;
            else if (x.equals("--log") && next != null) { m.logFile = next; i++; }
            else if (x.equals("--image") && next != null) { m.image = next; i++; }
            else if (x.equals("--store") && next != null) { m.store = Paths.get(next); i++; }
            else if (x.equals("--upper") && next != null) { m.upper = Paths.get(next); i++; }
            else if (x.equals("--work") && next != null) { m.work = Paths.get(next); i++; }
            else if (x.startsWith("-") && !x.equals("-")) return null;
            else m.positional.add(x);
        }
        return m.positional.isEmpty() || m.positional.size() > 2 ? null : m;
    }

    /** The -o options that mount an image: its layers, and an upper/work pair if asked for. */
    private String imageOptions() {
        for (String o : options) {
            for (String part : o.split(",")) {
                if (part.startsWith("lowerdir=") || part.startsWith("upperdir=") || part.startsWith("workdir=")) {
                    throw new UserError("--image gives the layers: use --upper/--work instead of -o " + part.split("=")[0] + "=", 2);
                }
            }
        }
        List<Path> lowers;
        try {
            ImageStore st = ImageStore.open(store != null ? store : ImageStore.defaultLocation());
            lowers = st.lowerDirsTopFirst(image);
        } catch (ImageException e) {
            throw new UserError(e.getMessage());
        }
        StringBuilder b = new StringBuilder("lowerdir=");
        for (int i = 0; i < lowers.size(); i++) {
            if (i > 0) b.append(':');
            b.append(escape(lowers.get(i).toString()));
        }
        if (upper == null && work != null) throw new UserError("--work needs --upper", 2);
        if (upper != null) {
            Path u = upper.toAbsolutePath().normalize();
            Path w = work != null ? work.toAbsolutePath().normalize() : u.resolveSibling(u.getFileName() + ".work");
            try {
                Files.createDirectories(u);
                Files.createDirectories(w);
            } catch (IOException e) {
                throw new UserError("cannot create " + e.getMessage());
            }
            b.append(",upperdir=").append(escape(u.toString())).append(",workdir=").append(escape(w.toString()));
        }
        return b.toString();
    }

    private static void joinQuietly(Thread t) {
        boolean interrupted = false;
        while (t.isAlive()) {
            try {
                t.join();
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) Thread.currentThread().interrupt();
    }

    private static String escape(String path) {
        return path.replace("\\", "\\\\").replace(":", "\\:").replace(",", "\\,");
    }

    @Override public Integer call() {
        // the mount records itself for explain/diff just before it is ready: load the JSON library meanwhile
        Thread warm = new Thread(dev.strata.inspect.MountRegistry::warmUp, "strata-warm-up");
        warm.setDaemon(true);
        warm.start();
        Path mountpoint = Paths.get(positional.get(positional.size() - 1)).toAbsolutePath().normalize();
        Path cwd = Paths.get("").toAbsolutePath();
        MountOptions opts;
        List<String> all = new ArrayList<>(options);
        if (image != null) all.add(imageOptions());
        else if (upper != null || work != null || store != null) {
            throw new UserError("--upper, --work and --store go with --image (use -o upperdir=,workdir= otherwise)", 2);
        }
        try {
            opts = OptionParser.parse(all, cwd);
        } catch (IllegalArgumentException e) {
            throw new UserError(e.getMessage(), 2);
        }
        for (String w : opts.warnings) System.err.println("strata: warning: " + w);
        List<String> problems = Validator.check(opts, mountpoint);
        if (!problems.isEmpty()) {
            throw new UserError(problems.get(0) + (problems.size() > 1 ? " (and " + (problems.size() - 1) + " more problem"
                    + (problems.size() > 2 ? "s" : "") + ")" : ""));
        }
        boolean background = Notify.active() && !foreground && !debug;
        if (background && "-".equals(opts.traceFile)) {
            throw new UserError("trace without a file needs -f (the daemon has no terminal): use -o trace=FILE", 2);
        }
        UnionEvents events = UnionEvents.NONE;
        if (opts.traceFile != null) {
            try {
                events = TraceLog.open(opts.traceFile);
            } catch (IOException e) {
                throw new UserError("cannot open trace file " + opts.traceFile + ": " + e.getMessage());
            }
        }
        boolean kernel = !opts.transport.equals("libfuse");
        Union union;
        try {
            union = Union.open(opts, kernel ? KernelMount.events(events) : events);
        } catch (IllegalStateException e) {
            throw new UserError(e.getMessage());
        }
        Log log = new Log(opts.debug || debug);
        MountRecord record = new MountRecord(mountpoint, opts);
        // the record is written while the file system mounts (the ready signal waits for it, so that
        // explain/diff find a mount as soon as the command returns); closed below whatever happens
        Thread registering = new Thread(record::register, "strata-register");
        int rc;
        try {
            registering.start();
            Runnable ready = () -> {
                joinQuietly(registering);
                if (background) {
                    Notify.send("ready");
                    Notify.detachStdio(logFile);
                }
            };
            rc = kernel ? KernelMount.serve(union, mountpoint, debug || opts.debug, ready, log) : KernelMount.NOT_PERMITTED;
            if (rc == KernelMount.NOT_PERMITTED) {
                if (opts.transport.equals("kernel")) {
                    throw new UserError("cannot mount " + mountpoint + " with transport=kernel: mount(2) of FUSE is not permitted here");
                }
                log.debug("mount(2) not permitted: mounting through libfuse (fusermount)");
                rc = FuseMount.serve(union, mountpoint, debug || opts.debug, ready, log);
            }
        } finally {
            joinQuietly(registering);
            record.close();
            union.close();
        }
        if (rc != 0) {
            throw new UserError("cannot mount on " + mountpoint + " (is /dev/fuse usable and the fuse package installed?)");
        }
        return 0;
    }
}
