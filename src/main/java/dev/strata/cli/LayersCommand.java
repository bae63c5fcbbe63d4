package dev.strata.cli;

import dev.strata.inspect.InspectException;
import dev.strata.inspect.LayerAnalysis;
import dev.strata.inspect.LayerReport;
import dev.strata.inspect.Out;
import dev.strata.inspect.Stack;
import dev.strata.inspect.StackSpec;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.util.concurrent.Callable;

/** {@code strata layers}: per layer, its content and the bytes that layers above make invisible. */
@Command(name = "layers", mixinStandardHelpOptions = true,
        description = {
                "Show what each layer holds, and the bytes that layers above make invisible.",
                "Per layer (top first): files, directories, symbolic links, bytes of regular files "
                        + "(hard links once), whiteouts, opaque directories, and the bytes that layers above "
                        + "make invisible (wasted: overridden, whited out, or under an opaque directory), with "
                        + "an efficiency figure like dive's (visible bytes / all bytes).",
                "Deleting a file in a later layer hides it but does not shrink the layer that holds it: "
                        + "that is what the wasted column shows.",
                "JSON: a name that is valid UTF-8 is written as text; otherwise the field holds it with \\xNN "
                        + "escapes and a sibling field <name>_b64 holds the raw bytes in base64."})
public final class LayersCommand implements Callable<Integer> {

    @Parameters(index = "0", arity = "0..1", paramLabel = "MOUNTPOINT", description = "a running strata mount, or a kernel overlay mount")
    String mountpoint;

    @Mixin ExplainCommand.StackOptions stackOptions;

    @Option(names = "--top", paramLabel = "N", defaultValue = "10",
            description = "list the N largest invisible files (default ${DEFAULT-VALUE}; 0: none)")
    int top;

    @Option(names = "--json", description = "print JSON for tools")
    boolean json;

    @Option(names = "--image", paramLabel = "NAME[:TAG]", description = "an imported image (see 'strata image import')")
    String image;

    @Option(names = "--store", paramLabel = "DIR", description = "image store (default: $XDG_DATA_HOME/strata)")
    java.nio.file.Path store;

    @Override public Integer call() {
        if (top < 0) throw new UserError("--top must be 0 or more");
        try {
            try (Stack stack = Stack.open(spec())) {
                LayerAnalysis a = LayerAnalysis.analyze(stack, top);
                if (json) Out.printBytes(LayerReport.json(stack, a));
                else Out.print(LayerReport.text(stack, a));
            }
            return 0;
        } catch (InspectException e) {
            throw new UserError(e.getMessage());
        }
    }

    /**
     * The stack to analyze. This is the one place that chooses the source: an imported image (its
     * layer directories top first), a running mount, or layer directories.
     */
    private StackSpec spec() {
        if (image != null) {
            if (stackOptions.given() || mountpoint != null) {
                throw new UserError("give one of --image, a mount point, or --lowerdir/--upperdir");
            }
            try {
                dev.strata.image.ImageStore st = dev.strata.image.ImageStore.open(
                        store != null ? store : dev.strata.image.ImageStore.defaultLocation());
                return StackSpec.ofLayers(st.lowerDirsTopFirst(image), null);
            } catch (dev.strata.image.ImageException e) {
                throw new UserError(e.getMessage());
            }
        }
        if (store != null) throw new UserError("--store goes with --image");
        if (stackOptions.given()) {
            if (mountpoint != null) throw new UserError("give either a mount point or --lowerdir/--upperdir, not both");
            return stackOptions.spec();
        }
        if (mountpoint != null) return ExplainCommand.StackOptions.ofMount(mountpoint);
        throw new UserError("layers needs a mount point, or --lowerdir (and --upperdir)");
    }
}
