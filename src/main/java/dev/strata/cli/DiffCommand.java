package dev.strata.cli;

import dev.strata.inspect.DiffReport;
import dev.strata.inspect.Differ;
import dev.strata.inspect.InspectException;
import dev.strata.posix.Names;
import dev.strata.inspect.Out;
import dev.strata.inspect.Stack;
import dev.strata.inspect.StackSpec;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.util.List;
import java.util.concurrent.Callable;

/** {@code strata diff}: the changes an upper layer makes to its lowers, like docker diff. */
@Command(name = "diff", mixinStandardHelpOptions = true,
        description = {
                "List what the upper layer changes in the merged view, like 'docker diff'.",
                "",
                "  A path  added: in the merged view, not in the lowers (everything under an added directory too)",
                "  D path  deleted: in the lowers, hidden by a whiteout or an opaque directory of the upper",
                "          (only the top of a deleted tree is listed)",
                "  C path  changed: a non-directory the upper holds (copied up or replaced), a change of type,",
                "          or a directory whose mode, owner, mtime or xattrs changed or whose entries were",
                "          added or deleted",
                "Sorted by path, a directory right before its contents. Give the mount point of a running strata "
                        + "mount or of a kernel overlay mount, or --upperdir with --lowerdir (or -o upperdir=...,lowerdir=...)."})
public final class DiffCommand implements Callable<Integer> {

    @Parameters(index = "0", arity = "0..1", paramLabel = "MOUNTPOINT", description = "a running strata mount, or a kernel overlay mount")
    String mountpoint;

    @Mixin ExplainCommand.StackOptions stackOptions;

    @Option(names = "--json", description = "print JSON: {\"changes\": [{\"kind\", \"path\", \"type\", ...}]}")
    boolean json;

    @Override public Integer call() {
        try {
            StackSpec spec;
            if (stackOptions.given()) {
                if (mountpoint != null) throw new UserError("give either a mount point or --upperdir/--lowerdir, not both");
                spec = stackOptions.spec();
            } else if (mountpoint != null) {
                spec = ExplainCommand.StackOptions.ofMount(mountpoint);
            } else {
                throw new UserError("diff needs a mount point, or --upperdir and --lowerdir");
            }
            if (spec.upperdir() == null) {
                throw new UserError(mountpoint != null ? Names.display(Names.fromArgument(mountpoint))
                        + " is a read-only mount (no upper layer): nothing to diff" : "diff needs an upper layer (--upperdir)");
            }
            try (Stack stack = Stack.open(spec)) {
                List<Differ.Change> changes = Differ.diff(stack);
                if (json) Out.printBytes(DiffReport.json(changes));
                else Out.print(DiffReport.text(changes));
            }
            return 0;
        } catch (InspectException e) {
            throw new UserError(e.getMessage());
        }
    }
}
