package dev.strata.cli;

import dev.strata.fuse.FuseMount;
import dev.strata.fuse.Log;
import dev.strata.options.MountOptions;
import dev.strata.options.OptionParser;
import dev.strata.options.Validator;
import dev.strata.union.Union;
import dev.strata.union.UnionEvents;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
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

    @Parameters(arity = "1..2", paramLabel = "[SOURCE] MOUNTPOINT",
            description = "the mountpoint; a first argument (mount.fuse3's source) is ignored")
    List<String> positional = new ArrayList<>();

    @Override public Integer call() {
        Path mountpoint = Paths.get(positional.get(positional.size() - 1)).toAbsolutePath().normalize();
        Path cwd = Paths.get("").toAbsolutePath();
        MountOptions opts;
        try {
            opts = OptionParser.parse(options, cwd);
        } catch (IllegalArgumentException e) {
            throw new UserError(e.getMessage(), 2);
        }
        for (String w : opts.warnings) System.err.println("strata: warning: unknown option '" + w + "' ignored");
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
        Union union;
        try {
            union = Union.open(opts, events);
        } catch (IllegalStateException e) {
            throw new UserError(e.getMessage());
        }
        Log log = new Log(opts.debug || debug);
        MountRecord record = new MountRecord(mountpoint, opts);
        int rc;
        try {
            rc = FuseMount.serve(union, mountpoint, () -> {
                record.register();
                if (background) {
                    Notify.send("ready");
                    Notify.detachStdio(logFile);
                }
            }, log);
        } finally {
            record.close();
            union.close();
        }
        if (rc != 0) {
            throw new UserError("cannot mount on " + mountpoint + " (is /dev/fuse usable and the fuse package installed?)");
        }
        return 0;
    }
}
