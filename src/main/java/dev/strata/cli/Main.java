package dev.strata.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.util.List;

/**
 * strata's command line. Parsing and messages only: each subcommand turns its arguments into a typed
 * request and calls the engine. A user mistake ends with one line on stderr and a non-zero exit.
 */
@Command(name = "strata", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = "A userspace union filesystem with kernel overlayfs semantics, through FUSE.",
        subcommands = {
                MountCommand.class,
                UmountCommand.class,
                ImageCommand.class,
                ExplainCommand.class,
                DiffCommand.class,
                LayersCommand.class,
                CommandLine.HelpCommand.class,
        })
public final class Main implements Runnable {
    public static final String VERSION = "0.1.0";

    static final class Version implements CommandLine.IVersionProvider {
        @Override public String[] getVersion() { return new String[]{"strata version " + VERSION}; }
    }

    @Override public void run() {
        new CommandLine(this).usage(System.err);
    }

    public static void main(String[] args) {
        int rc = run(args);
        Notify.send("exit " + rc);
        dev.strata.layer.At.releaseThreadCache(); // the first mount's layers are not held while others are served
        dev.strata.daemon.Server.awaitEnd(); // a shared daemon stays while it serves other mounts
        System.exit(rc);
    }

    /**
     * The fuse-overlayfs form ({@code strata -o OPTS MOUNTPOINT}, what podman runs) and the mount.fuse3
     * form ({@code strata SOURCE MOUNTPOINT -o OPTS}) are the mount command without its name.
     */
    static String[] normalize(String[] args) {
        if (args.length == 0) return args;
        String a = args[0];
        if (SUBCOMMANDS.contains(a)) return args;
        if (a.equals("-h") || a.equals("--help") || a.equals("-V") || a.equals("--version")) return args;
        String[] out = new String[args.length + 1];
        out[0] = "mount";
        System.arraycopy(args, 0, out, 1, args.length);
        return out;
    }

    /**
     * When the first word is neither a subcommand nor an option, it is mount.fuse3's SOURCE
     * ({@code strata SOURCE MOUNTPOINT -o OPTS}) or a fuse-overlayfs SOURCE only when the line can be a
     * mount: {@code -o} is given, and the word is followed by the mountpoint or is a path. A word close
     * to a command name (that is not an existing path) or any word without {@code -o} is taken as a
     * mistyped command: returns the one-line message, or null when the line is a mount.
     */
    static String unknownCommand(String[] args) {
        if (args.length == 0) return null;
        String w = args[0];
        if (SUBCOMMANDS.contains(w) || w.startsWith("-")) return null;
        String near = nearestCommand(w);
        boolean exists = java.nio.file.Files.exists(java.nio.file.Path.of(w), java.nio.file.LinkOption.NOFOLLOW_LINKS);
        boolean hasO = false;
        for (String a : args) if (a.startsWith("-o")) hasO = true;
        boolean mount = hasO && (near == null || exists)
                && (exists || w.contains("/") || (args.length > 1 && !args[1].startsWith("-")));
        if (mount) return null;
        return "'" + w + "' is not a strata command" + (near != null ? " (did you mean " + near + "?)" : "")
                + "; see 'strata --help'";
    }

    /** The command name at most 2 edits from {@code w} (1 for short words), or null. */
    static String nearestCommand(String w) {
        String best = null;
        int bestD = Integer.MAX_VALUE;
        for (String c : List.of("mount", "umount", "image", "explain", "diff", "layers", "help")) {
            int d = dev.strata.options.OptionParser.distance(w, c);
            if (d < bestD) { bestD = d; best = c; }
        }
        return bestD <= (w.length() <= 4 ? 1 : 2) ? best : null;
    }

    /** Names of the subcommands (kept without loading picocli: see {@link #run}). */
    static final java.util.Set<String> SUBCOMMANDS = java.util.Set.of(
            "mount", "umount", "unmount", "image", "explain", "diff", "layers", "help");

    /** Runs the CLI and returns the exit code (tests call this instead of main). */
    public static int run(String... args) {
        String unknown = unknownCommand(args);
        if (unknown != null) {
            System.err.println("strata: " + unknown);
            return 2;
        }
        String[] a = normalize(args);
        // The mount path is what podman pays for on every container start: parse it by hand when it is
        // plain, so picocli (whose Java 5 classes class-data sharing cannot archive) is not even loaded.
        MountCommand quick = a.length > 0 && a[0].equals("mount") ? MountCommand.parseQuick(a) : null;
        if (quick != null) {
            try {
                return quick.call();
            } catch (UserError e) {
                System.err.println("strata: " + e.getMessage());
                return e.exitCode();
            } catch (RuntimeException e) {
                System.err.println("strata: internal error: " + e);
                e.printStackTrace(System.err);
                return 70;
            }
        }
        CommandLine cl = new CommandLine(new Main());
        cl.setExecutionExceptionHandler((ex, cmd, parsed) -> {
            if (ex instanceof UserError) {
                System.err.println("strata: " + ex.getMessage());
                return ((UserError) ex).exitCode();
            }
            System.err.println("strata: internal error: " + ex);
            ex.printStackTrace(System.err);
            return 70;
        });
        cl.setParameterExceptionHandler((ex, ignored) -> {
            System.err.println("strata: " + ex.getMessage());
            System.err.println("Try 'strata " + (ex.getCommandLine().getCommandName().equals("strata") ? "" :
                    ex.getCommandLine().getCommandName() + " ") + "--help' for more information.");
            return 2;
        });
        return cl.execute(a);
    }
}
