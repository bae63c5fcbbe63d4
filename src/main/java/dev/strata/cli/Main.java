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
                ImageCommand.class,
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
        System.exit(run(args));
    }

    /** Runs the CLI and returns the exit code (tests call this instead of main). */
    public static int run(String... args) {
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
        cl.setParameterExceptionHandler((ex, a) -> {
            System.err.println("strata: " + ex.getMessage());
            System.err.println("Try 'strata " + (ex.getCommandLine().getCommandName().equals("strata") ? "" :
                    ex.getCommandLine().getCommandName() + " ") + "--help' for more information.");
            return 2;
        });
        return cl.execute(args);
    }
}
