package dev.strata.cli;

import dev.strata.inspect.ExplainReport;
import dev.strata.inspect.Explainer;
import dev.strata.inspect.Explanation;
import dev.strata.inspect.InspectException;
import dev.strata.inspect.KernelMounts;
import dev.strata.inspect.MountRegistry;
import dev.strata.posix.Names;
import dev.strata.inspect.Out;
import dev.strata.inspect.Stack;
import dev.strata.inspect.StackSpec;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.Callable;

/** {@code strata explain PATH}: every layer's say on one path of the merged view, and the verdict. */
@Command(name = "explain", mixinStandardHelpOptions = true,
        description = {
                "Explain why a path of the merged view looks the way it does.",
                "Shows what every layer holds there (top first), which whiteout, opaque directory or file "
                        + "decides, and the verdict.",
                "PATH is a path inside a running strata mount (or a kernel overlay mount, e.g. a container's),"
                        + " or, with --lowerdir (or -o lowerdir=...), a path of the merged view of those layer"
                        + " directories (e.g. /etc/passwd).",
                "Links are not followed. Names that are not printable are shown with \\xNN escapes "
                        + "(a backslash as \\\\)."},
        exitCodeListHeading = "%nExit status:%n",
        exitCodeList = {"0:explained (whether the path exists or not)",
                "1:nothing to explain: PATH is in no strata or kernel overlay mount, a layer cannot be read",
                "2:a usage mistake: unknown option, missing or extra argument, -o together with --lowerdir",
                "70:an internal error (a bug: please report it)"})
public final class ExplainCommand implements Callable<Integer> {

    @Parameters(index = "0", paramLabel = "PATH", description = "the path to explain")
    String path;

    @Mixin StackOptions stackOptions;

    @Option(names = "--json", description = "print JSON for tools (names that are not UTF-8: see \"strata layers --help\")")
    boolean json;

    @Override public Integer call() {
        try {
            String rel;
            StackSpec spec;
            if (stackOptions.given()) {
                spec = stackOptions.spec();
                rel = Names.fromArgument(path);
            } else {
                Path p = StackOptions.path(Names.fromArgument(path));
                MountRegistry.Located at = StackOptions.locate(p).orElseThrow(() -> new UserError(
                        Names.display(p.toString()) + " is not inside a running strata mount (nor a kernel overlay mount);"
                                + " give --lowerdir (and --upperdir) to explain layer directories"));
                spec = at.mount().stack();
                rel = at.rel();
            }
            try (Stack stack = Stack.open(spec)) {
                Explanation e = new Explainer(stack).explain(rel);
                if (json) Out.printBytes(ExplainReport.json(e));
                else Out.print(ExplainReport.text(e));
            }
            return 0;
        } catch (InspectException e) {
            throw new UserError(e.getMessage());
        }
    }

    /** The layer options shared by explain, diff and layers. */
    public static final class StackOptions {
        @Option(names = "--lowerdir", paramLabel = "A[:B...]",
                description = "lower layer directories, top first, colon separated (\\: escapes a colon)")
        String lowerdir;

        @Option(names = "--upperdir", paramLabel = "DIR", description = "the upper (writable) layer directory")
        String upperdir;

        @Option(names = "-o", paramLabel = "OPTIONS",
                description = "overlay mount options instead: lowerdir=A:B[,upperdir=U][,workdir=W] (others ignored)")
        String options;

        boolean given() { return lowerdir != null || upperdir != null || options != null; }

        StackSpec spec() {
            if (options != null) {
                if (lowerdir != null || upperdir != null) {
                    throw new UserError("give the layers either with -o or with --lowerdir/--upperdir, not both", 2);
                }
                return StackSpec.parseMountOptions(Names.fromArgument(options));
            }
            if (lowerdir == null) throw new UserError("--upperdir needs --lowerdir too", 2);
            return StackSpec.parse(Names.fromArgument(lowerdir), upperdir == null ? null : Names.fromArgument(upperdir));
        }

        static Path path(String s) {
            try {
                return Path.of(s);
            } catch (InvalidPathException e) {
                throw new UserError("bad path " + Names.display(s) + ": " + e.getReason());
            }
        }

        /** A strata mount (from the mount registry), else a kernel overlay mount, containing the path. */
        static Optional<MountRegistry.Located> locate(Path p) {
            Optional<MountRegistry.Located> at = MountRegistry.locate(p);
            return at.isPresent() ? at : KernelMounts.locate(p);
        }

        /** The stack of a mount point given on the command line (a strata mount, or a kernel overlay). */
        static StackSpec ofMount(String mountpoint) {
            Path p = path(Names.fromArgument(mountpoint));
            MountRegistry.Located at = locate(p).orElseThrow(() -> new UserError(
                    Names.display(p.toString()) + " is not a running strata mount (nor a kernel overlay mount);"
                            + " give --lowerdir (and --upperdir)"));
            if (!at.rel().isEmpty()) {
                boolean strata = MountRegistry.locate(p).isPresent();
                throw new UserError(Names.display(p.toString()) + " is not a mount point: it is inside the "
                        + (strata ? "strata" : "kernel overlay") + " mount at "
                        + Names.display(at.mount().mountpoint().toString()));
            }
            return at.mount().stack();
        }
    }
}
