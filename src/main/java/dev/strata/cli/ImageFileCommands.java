package dev.strata.cli;

import dev.strata.image.Exporter;
import dev.strata.image.Human;
import dev.strata.image.ImageFiles;
import dev.strata.image.ImportListener;
import dev.strata.posix.Names;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.BufferedOutputStream;
import java.io.OutputStream;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code strata image export|cat|cp}: images out of the store (parsing and messages only; see dev.strata.image). */
final class ImageFileCommands {
    private ImageFileCommands() {}

    @Command(name = "export", mixinStandardHelpOptions = true,
            description = {"Write an image as an OCI image layout or a docker archive.",
                    "--format oci (default): DEST is a directory to create, or a file ending in .tar",
                    "(a tar of the layout); 'skopeo copy oci:DEST:TAG ...' and 'umoci unpack --image",
                    "DEST:TAG' read it. --format docker-archive: DEST is a 'docker save' tar",
                    "('podman load -i DEST', 'docker load').",
                    "Layers made by 'image commit' are exported as committed. Other layers are",
                    "written again from the store (it keeps them extracted, not as the original blobs): same",
                    "files, but new layer digests and so a new image id. DEST must not exist."},
            exitCodeListHeading = "%nExit status:%n",
            exitCodeList = {"0:exported", "1:an error (one line on stderr)", "2:a usage mistake"})
    static final class Export implements Callable<Integer> {
        @Parameters(index = "0", paramLabel = "NAME[:TAG]") String name;
        @Parameters(index = "1", paramLabel = "DEST") String dest;
        @Option(names = "--format", paramLabel = "FORMAT", description = "oci (default) or docker-archive") String format = "oci";
        @Option(names = {"-q", "--quiet"}, description = "print only errors") boolean quiet;
        @CommandLine.Mixin ImageCommand.StoreOption store = new ImageCommand.StoreOption();

        @Override public Integer call() {
            Exporter.Format f;
            switch (format) {
                case "oci": f = Exporter.Format.OCI; break;
                case "docker-archive": case "docker": f = Exporter.Format.DOCKER_ARCHIVE; break;
                default: throw new UserError("unknown --format '" + format + "': use oci or docker-archive", 2);
            }
            return ImageCommand.call(() -> {
                Exporter.Result r = Exporter.export(store.open(), name, Path.of(dest), f,
                        quiet ? ImportListener.QUIET : new ImageCommand.Printer(false));
                if (!quiet) {
                    System.out.println("Exported " + name + " to " + dest + " (" + (f == Exporter.Format.OCI
                            ? "OCI layout" + (r.tar ? " tar" : "") + ", ref " + r.tag : "docker archive") + "): "
                            + r.layers + (r.layers == 1 ? " layer, " : " layers, ") + Human.bytes(r.bytes) + ", image "
                            + r.imageId.substring(7, 19)
                            + (r.rewritten > 0 ? "; " + r.rewritten + " layer(s) written again from the store, with new digests" : ""));
                }
                return 0;
            });
        }
    }

    @Command(name = "cat", mixinStandardHelpOptions = true,
            description = {"Print a file of an image, without mounting it.",
                    "PATH is looked up through the layers as a mount shows it; symbolic links",
                    "are followed inside the image (never outside its root). When a whiteout or an",
                    "opaque directory hides the path, says which layer does."},
            exitCodeListHeading = "%nExit status:%n",
            exitCodeList = {"0:printed", "1:no such file in the image, not a file, or another error"})
    static final class Cat implements Callable<Integer> {
        @Parameters(index = "0", paramLabel = "IMAGE") String image;
        @Parameters(index = "1", paramLabel = "PATH") String path;
        @CommandLine.Mixin ImageCommand.StoreOption store = new ImageCommand.StoreOption();

        @Override public Integer call() {
            return ImageCommand.call(() -> {
                try (ImageFiles f = ImageFiles.open(store.open(), image)) {
                    OutputStream out = new BufferedOutputStream(System.out, 1 << 16);
                    f.cat(Names.fromArgument(path), out);
                    out.flush();
                    if (System.out.checkError()) throw new UserError("cannot write to the standard output");
                }
                return 0;
            });
        }
    }

    @Command(name = "cp", mixinStandardHelpOptions = true,
            description = {"Copy a file or a directory tree out of an image, without mounting it.",
                    "  strata image cp IMAGE:PATH DEST",
                    "DEST must not exist (an existing directory receives the copy under the path's",
                    "name). Modes, times and xattrs are kept, owners too when run as root; a",
                    "symbolic link is copied as a link (as docker cp does) unless -L is given or PATH",
                    "ends with '/'; hard links within the tree stay hard links. Links in the parents",
                    "of PATH are followed inside the image (never outside its root)."},
            exitCodeListHeading = "%nExit status:%n",
            exitCodeList = {"0:copied", "1:no such path in the image, DEST exists, or another error"})
    static final class Cp implements Callable<Integer> {
        @Parameters(index = "0", paramLabel = "IMAGE:PATH") String src;
        @Parameters(index = "1", paramLabel = "DEST") String dest;
        @Option(names = {"-q", "--quiet"}, description = "print only errors") boolean quiet;
        @Option(names = {"-L", "--follow-link"}, description = "when PATH is a symbolic link, copy what it points to (inside the image)")
        boolean follow;
        @CommandLine.Mixin ImageCommand.StoreOption store = new ImageCommand.StoreOption();

        @Override public Integer call() {
            int colon = src.indexOf(":/");
            if (colon < 0) colon = src.lastIndexOf(':');
            if (colon <= 0 || colon == src.length() - 1) {
                throw new UserError("give the source as IMAGE:PATH (e.g. alpine:3.19:/etc/os-release)", 2);
            }
            String image = src.substring(0, colon), path = src.substring(colon + 1);
            return ImageCommand.call(() -> {
                String d = Names.fromArgument(dest);
                dev.strata.posix.Stat st = new dev.strata.posix.Stat();
                if (dev.strata.posix.Posix.fstatat(dev.strata.posix.Posix.AT_FDCWD, d, st, 0) == 0 && st.isDir()) {
                    java.util.List<String> comps = dev.strata.inspect.Explainer.components(Names.fromArgument(path));
                    if (!comps.isEmpty()) d = d + "/" + comps.get(comps.size() - 1);
                }
                try (ImageFiles f = ImageFiles.open(store.open(), image)) {
                    ImageFiles.CopyStats cs = f.cp(Names.fromArgument(path), d, follow);
                    if (cs.skipped > 0) {
                        System.err.println("strata: warning: skipped " + cs.skipped + " device node(s) (creating them needs root), e.g. "
                                + Names.display(cs.firstSkipped));
                    }
                    if (cs.skippedXattrs > 0) {
                        System.err.println("strata: warning: " + cs.skippedXattrs + " extended attribute(s) could not be set on the copy");
                    }
                    if (!quiet && (cs.dirs > 0)) {
                        System.out.println("Copied " + cs.files + " files (" + Human.bytes(cs.bytes) + "), " + cs.dirs + " directories, "
                                + cs.symlinks + " symlinks, " + cs.hardlinks + " hard links, " + cs.others + " others to "
                                + Names.display(d));
                    }
                }
                return 0;
            });
        }
    }
}
