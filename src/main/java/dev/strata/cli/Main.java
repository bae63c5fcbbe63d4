package dev.strata.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

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

    /** Names of the subcommands (kept without loading picocli: see {@link #run}). */
    static final java.util.Set<String> SUBCOMMANDS = java.util.Set.of(
            "mount", "umount", "unmount", "image", "explain", "diff", "layers", "help");

    /** Runs the CLI and returns the exit code (tests call this instead of main). */
    public static int run(String... args) {
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
