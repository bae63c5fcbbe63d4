package dev.strata.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.annotation.JsonInclude;
import dev.strata.image.Committer;
import dev.strata.image.Human;
import dev.strata.image.ImageException;
import dev.strata.image.ImageRecord;
import dev.strata.image.ImageStore;
import dev.strata.image.ImportListener;
import dev.strata.image.Platform;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code strata image import|ls|rm|inspect}: the image store (parsing and messages only; see dev.strata.image). */
@Command(name = "image", mixinStandardHelpOptions = true,
        description = {"Container images: import OCI layouts, docker archives and layer tars into a layer",
                "store; commit a mount's changes as an image; export images; read files of an image."},
        subcommands = {ImageCommand.Import.class, ImageCommand.Ls.class, ImageCommand.Rm.class, ImageCommand.Prune.class, ImageCommand.Inspect.class,
                ImageCommand.Commit.class, ImageFileCommands.Export.class, ImageFileCommands.Cat.class, ImageFileCommands.Cp.class})
public final class ImageCommand implements Runnable {
    @Override public void run() {
        new CommandLine(this).usage(System.err);
    }

    static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT)
            .setSerializationInclusion(JsonInclude.Include.NON_NULL);

    /** --store, shared by every subcommand. */
    static final class StoreOption {
        @Option(names = "--store", paramLabel = "DIR",
                description = "The image store (default: $XDG_DATA_HOME/strata, else ~/.local/share/strata).")
        Path store;

        ImageStore open() { return ImageStore.open(store != null ? store : ImageStore.defaultLocation()); }
    }

    /** Runs store code, turning its errors into one-line user errors. */
    static <T> T call(Callable<T> c) {
        try {
            return c.call();
        } catch (ImageException e) {
            throw new UserError(e.getMessage());
        } catch (UserError e) {
            throw e;
        } catch (RuntimeException e) {
            throw e;
        } catch (Exception e) {
            throw new UserError(String.valueOf(e.getMessage()));
        }
    }

    // ------------------------------------------------------------------ import

    @Command(name = "import", mixinStandardHelpOptions = true,
            description = {"Import an image (OCI layout, docker archive or layer tar) into the store.",
                    "SOURCE is an OCI image layout (directory or tar), a docker archive (docker save), or a",
                    "single layer tar (plain, gzip or zstd). Layers already in the store are not extracted",
                    "again. An image without layers is refused (an overlay needs at least one)."})
    static final class Import implements Callable<Integer> {
        @Parameters(index = "0", paramLabel = "SOURCE", description = "OCI layout dir/tar, docker archive, or layer tar.")
        String source;

        @Option(names = "--name", paramLabel = "NAME[:TAG]", description = "Name for the image (default: the source's names).")
        String name;

        @Option(names = "--ref", paramLabel = "REF", description = "Which image of a source holding several (its ref name or tag).")
        String ref;

        @Option(names = "--platform", paramLabel = "OS/ARCH[/VARIANT]",
                description = "Platform to pick from a multi-platform index (default: linux/amd64).")
        String platform;

        @Option(names = "--max-layer-size", paramLabel = "SIZE",
                description = "Refuse layers whose uncompressed size exceeds SIZE (e.g. 20G). Default: no limit but the disk.")
        String maxLayerSize;

        @Option(names = {"-q", "--quiet"}, description = "Print only errors and warnings.")
        boolean quiet;

        @CommandLine.Mixin StoreOption store = new StoreOption();

        @Override public Integer call() {
            return ImageCommand.call(() -> {
                ImageStore.ImportRequest req = new ImageStore.ImportRequest(Path.of(source));
                req.name = name;
                req.ref = ref;
                if (platform != null) req.platform = Platform.parse(platform);
                if (maxLayerSize != null) req.maxLayerBytes = Human.parseBytes(maxLayerSize);
                Printer p = new Printer(quiet);
                ImageStore s = store.open();
                ImageStore.ImportResult r = s.importImage(req, p);
                p.clear();
                if (!quiet) {
                    String id = r.image.id.substring(7, 19);
                    String names = name != null ? dev.strata.image.ImageRef.parse(name).toString()
                            : String.join(", ", r.image.names);
                    if (r.extracted == 0 && r.alreadyPresent) {
                        System.out.println("Image " + id + " was already in the store; named " + names);
                    } else {
                        System.out.println("Imported " + names + " (image " + id + "): " + r.image.layers.size()
                                + (r.image.layers.size() == 1 ? " layer, " : " layers, ") + r.extracted + " extracted, "
                                + r.reused + " already in the store");
                    }
                }
                return 0;
            });
        }
    }

    /** Prints import messages; a progress line on stderr only when stderr is a terminal. */
    static final class Printer implements ImportListener {
        private final boolean quiet;
        private final boolean tty = stderrIsTty();
        private final PrintStream err = System.err;
        private boolean shown;
        private long lastNanos;

        Printer(boolean quiet) { this.quiet = quiet; }

        @Override public void info(String line) {
            if (quiet) return;
            clear();
            System.out.println(line);
            System.out.flush();
        }

        @Override public void warning(String line) {
            clear();
            err.println("strata: warning: " + line);
        }

        @Override public void waitingForLock(Path lockFile) {
            clear();
            err.println("strata: waiting for another import or removal to finish (" + lockFile + ")");
        }

        @Override public void progress(int layer, int layers, long done, long total) {
            if (!tty || quiet) return;
            long now = System.nanoTime();
            if (shown && now - lastNanos < 150_000_000L) return;
            lastNanos = now;
            String t = total > 0 ? " of " + Human.bytes(total) + " (" + Math.min(100, done * 100 / total) + "%)" : "";
            err.print("\r\033[K  layer " + layer + "/" + layers + ": " + Human.bytes(done) + t);
            err.flush();
            shown = true;
        }

        @Override public void progressDone() { clear(); }

        void clear() {
            if (shown) {
                err.print("\r\033[K");
                err.flush();
                shown = false;
            }
        }

        static boolean stderrIsTty() {
            try {
                String t = Files.readSymbolicLink(Path.of("/proc/self/fd/2")).toString();
                return t.startsWith("/dev/pts/") || t.startsWith("/dev/tty") || t.equals("/dev/console");
            } catch (Exception e) {
                return false;
            }
        }
    }

    // ------------------------------------------------------------------ commit

    @Command(name = "commit", mixinStandardHelpOptions = true,
            description = {"Record the changes of a mount (its upper directory) as a new image.",
                    "  strata image commit MOUNTPOINT NAME[:TAG]",
                    "  strata image commit --upper DIR --from IMAGE NAME[:TAG]",
                    "MOUNTPOINT: a strata mount (or a kernel overlay) of an image of the store.",
                    "The upper becomes one new OCI layer (gzip) over the base image's layers:",
                    "whiteouts become .wh.NAME, opaque directories get .wh..wh..opq; owners, modes,",
                    "times, xattrs (not overlay-private ones), hard links, devices, fifos,",
                    "symlinks are kept. The same upper gives the same layer digest. The base image",
                    "of a mount is the image whose layers it mounts (--from if several share them).",
                    "A mount in use may change while it is read: as with 'podman commit' without",
                    "--pause, what is written meanwhile may or may not be in the layer (a file that",
                    "shrinks while it is read stops the commit). --pause holds a strata mount's",
                    "requests meanwhile, or stop the writers first."},
            exitCodeListHeading = "%nExit status:%n",
            exitCodeList = {"0:committed", "1:an error (one line on stderr)", "2:a usage mistake"})
    static final class Commit implements Callable<Integer> {
        @Parameters(arity = "1..2", paramLabel = "[MOUNTPOINT] NAME[:TAG]") List<String> args;
        @Option(names = "--upper", paramLabel = "DIR", description = "commit this upper directory (with --from) instead of a mount") String upper;
        @Option(names = "--from", paramLabel = "IMAGE", description = "the base image the upper was mounted on") String from;
        @Option(names = {"-m", "--message"}, paramLabel = "TEXT", description = "a comment for the history entry") String message;
        @Option(names = "--author", paramLabel = "TEXT", description = "the author, in the config and its history entry") String author;
        @Option(names = "--force", description = "move NAME[:TAG] from the image that has it now") boolean force;
        @Option(names = {"-q", "--quiet"}, description = "print only the new image id") boolean quiet;
        @Option(names = "--pause", description = {"hold the strata mount's requests while its upper is read (only that mount's",
                "on a shared daemon; SIGSTOP of a process of its own): the layer is the upper as one moment left it;",
                "programs using the mount wait"}) boolean pause;
        @CommandLine.Mixin StoreOption store = new StoreOption();

        @Override public Integer call() {
            return ImageCommand.call(() -> {
                ImageStore s = store.open();
                Committer.Request req = new Committer.Request();
                if (pause && upper != null) throw new UserError("--pause goes with a MOUNTPOINT, not with --upper", 2);
                req.force = force;
                req.comment = message;
                req.author = author;
                if (upper != null) {
                    if (args.size() != 1) throw new UserError("with --upper give only NAME[:TAG] (no mount point)", 2);
                    if (from == null) throw new UserError("--upper needs --from IMAGE: the image the upper was mounted on", 2);
                    req.upper = dev.strata.posix.Names.fromArgument(upper);
                    req.base = from;
                    req.name = args.get(0);
                } else {
                    if (args.size() != 2) {
                        throw new UserError("give MOUNTPOINT NAME[:TAG], or --upper DIR --from IMAGE NAME[:TAG]", 2);
                    }
                    dev.strata.inspect.StackSpec spec = ExplainCommand.StackOptions.ofMount(args.get(0));
                    if (spec.upperdir() == null) {
                        throw new UserError(args.get(0) + " is a read-only mount (no upper directory): there is nothing to commit");
                    }
                    req.upper = spec.upperdir().toString();
                    req.base = from != null ? from : baseOf(s, spec.lowerdirs(), args.get(0));
                    req.name = args.get(1);
                    req.createdBy = "strata image commit " + args.get(0);
                }
                dev.strata.image.ImageRef.parse(req.name);
                if (pause) {
                    Paused.check(args.get(0));
                    req.whileReading = () -> Paused.stop(args.get(0));
                }
                Committer.Result r = Committer.commit(s, req, quiet ? ImportListener.QUIET : new Printer(false));
                String id = r.image.id.substring(7, 19);
                if (quiet) {
                    System.out.println(r.image.id);
                    return 0;
                }
                LayerWriterSummary.print(r, id);
                return 0;
            });
        }

        /** The image of the store whose layers (top first) are exactly the mount's lower layers. */
        static String baseOf(ImageStore s, List<Path> lowers, String mountpoint) {
            List<Path> want = new ArrayList<>();
            for (Path p : lowers) want.add(p.toAbsolutePath().normalize());
            ImageRecord found = null;
            List<String> names = new ArrayList<>();
            for (ImageRecord r : s.images()) {
                List<Path> dirs;
                try {
                    dirs = s.lowerDirsTopFirst(r);
                } catch (ImageException e) {
                    continue;
                }
                if (!dirs.equals(want)) continue;
                if (found == null) found = r;
                names.add(ImageStore.displayName(r));
            }
            if (found == null) {
                throw new UserError("the layers of the mount at " + mountpoint + " are not an image of the store " + s.root()
                        + "; give --from IMAGE (and --store if it is another store)");
            }
            if (names.size() > 1) {
                throw new UserError("the mount at " + mountpoint + " shows the layers of several images (" + String.join(", ", names)
                        + "): give --from IMAGE");
            }
            return found.id;
        }
    }

    /** The lines 'image commit' prints. */
    static final class LayerWriterSummary {
        static void print(Committer.Result r, String id) {
            ImageRecord.Layer l = r.layer;
            dev.strata.image.LayerWriter.Stats st = r.stats;
            System.out.println("Committed " + r.image.names.get(0) + " (image " + id + "): " + r.image.layers.size()
                    + " layers, new layer " + l.diffId.substring(7, 19) + " (" + Human.bytes(l.tarSize) + " tar, "
                    + Human.bytes(l.blobSize) + " gzip" + (r.layerReused ? ", already in the store" : "") + ")");
            System.out.println("  " + st.files + " files, " + st.dirs + " directories, " + st.symlinks + " symlinks, "
                    + st.hardlinks + " hard links, " + st.devices + " devices, " + st.fifos + " fifos, "
                    + st.whiteouts + " whiteouts, " + st.opaques + " opaque directories");
            if (st.skippedSockets > 0) {
                System.err.println("strata: warning: skipped " + st.skippedSockets + " socket(s) (a tar cannot hold them), e.g. "
                        + st.firstSkippedSocket);
            }
            if (r.nameMovedFrom != null) System.out.println("The name " + r.image.names.get(0) + " moved from image " + r.nameMovedFrom);
        }
    }

    // ------------------------------------------------------------------ ls

    @Command(name = "ls", mixinStandardHelpOptions = true,
            description = {"List the images in the store.",
                    "SIZE counts the content of the image's layers; SHARED the part in layers other images use too."})
    static final class Ls implements Callable<Integer> {
        @Option(names = "--json", description = "Print JSON.") boolean json;
        @CommandLine.Mixin StoreOption store = new StoreOption();

        @Override public Integer call() {
            return ImageCommand.call(() -> {
                List<ImageStore.Summary> list = store.open().list();
                if (json) {
                    ArrayNode a = JSON.createArrayNode();
                    for (ImageStore.Summary s : list) {
                        ObjectNode o = a.addObject();
                        o.put("name", s.name);
                        o.put("id", s.record.id);
                        o.put("layers", s.layers);
                        o.put("size", s.size);
                        o.put("sharedSize", s.sharedSize);
                    }
                    System.out.println(JSON.writeValueAsString(a));
                    return 0;
                }
                List<String[]> rows = new ArrayList<>();
                rows.add(new String[]{"NAME", "ID", "LAYERS", "SIZE", "SHARED"});
                for (ImageStore.Summary s : list) {
                    rows.add(new String[]{s.name, s.id, String.valueOf(s.layers), Human.bytes(s.size), Human.bytes(s.sharedSize)});
                }
                printTable(rows);
                return 0;
            });
        }
    }

    static void printTable(List<String[]> rows) {
        int[] w = new int[rows.get(0).length];
        for (String[] r : rows) for (int i = 0; i < r.length; i++) w[i] = Math.max(w[i], r[i].length());
        for (String[] r : rows) {
            StringBuilder b = new StringBuilder();
            for (int i = 0; i < r.length; i++) {
                boolean right = i >= 2;
                String cell = r[i];
                if (i > 0) b.append("  ");
                if (right) b.append(" ".repeat(w[i] - cell.length())).append(cell);
                else b.append(cell).append(i < r.length - 1 ? " ".repeat(w[i] - cell.length()) : "");
            }
            System.out.println(b.toString().stripTrailing());
        }
    }

    // ------------------------------------------------------------------ rm

    @Command(name = "rm", mixinStandardHelpOptions = true,
            description = {"Remove image names; an image with no name left goes with its unused layers.",
                    "Given by NAME[:TAG], a name is removed; the image goes when it has no name left (or",
                    "is given by id), with the layers no other image uses. Refused while a live mount (in",
                    "any PID or mount namespace) uses one of its layers; with --force the image goes and",
                    "the layers a mount holds stay until a later removal finds them free."})
    static final class Rm implements Callable<Integer> {
        @Parameters(arity = "1..*", paramLabel = "NAME") List<String> names;
        @CommandLine.Mixin StoreOption store = new StoreOption();
        @Option(names = "--force", description = "Remove the image even if a live mount uses its layers (those layers stay until unmounted).") boolean force;

        @Override public Integer call() {
            return ImageCommand.call(() -> {
                ImageStore s = store.open();
                for (String n : names) {
                    if (!force) refuseIfMounted(n, s.lowerDirsTopFirst(n));
                    ImageStore.RemoveResult r = s.remove(n);
                    if (r.untagged != null) {
                        System.out.println("Untagged " + r.untagged);
                        continue;
                    }
                    System.out.println("Deleted image " + r.removed.id.substring(7, 19)
                            + (r.removed.names.isEmpty() ? "" : " (" + String.join(", ", r.removed.names) + ")"));
                    for (String l : r.removedLayers) System.out.println("Deleted layer " + l);
                    for (String l : r.keptLayers) System.out.println("Kept layer " + l + ": a live mount uses it (removed by a later 'image rm' once unmounted)");
                    if (!r.removedLayers.isEmpty()) System.out.println("Freed " + Human.bytes(r.freedBytes));
                }
                return 0;
            });
        }
    }

    // ------------------------------------------------------------------ prune

    @Command(name = "prune", mixinStandardHelpOptions = true,
            description = {"Remove the layers 'strata mount ARCHIVE' indexed into the store.",
                    "Those in STORE/lazy go, except the ones a live mount uses; the next mount of that",
                    "archive indexes it again. Imported images and their layers are not touched (see 'image rm')."})
    static final class Prune implements Callable<Integer> {
        @CommandLine.Mixin StoreOption store = new StoreOption();

        @Override public Integer call() {
            return ImageCommand.call(() -> {
                ImageStore s = store.open();
                ImageStore.RemoveResult r = s.pruneLazy(dir -> {
                    try {
                        refuseIfMounted("", List.of(dir), false);
                        return false;
                    } catch (dev.strata.cli.UserError | java.io.IOException e) {
                        return true;
                    }
                });
                for (String l : r.removedLayers) System.out.println("Deleted lazy layer " + l);
                for (String l : r.keptLayers) System.out.println("Kept lazy layer " + l + ": a live mount uses it");
                System.out.println("Freed " + Human.bytes(r.freedBytes));
                return 0;
            });
        }
    }

    /**
     * Removing layers a live mount reads would pull files from under its users: refuse, naming the
     * mount, when a strata mount (from the mount registry) or a kernel overlay (from mountinfo) uses
     * one of the image's layer directories.
     */
    static void refuseIfMounted(String name, List<Path> layers) throws java.io.IOException {
        refuseIfMounted(name, layers, true);
    }

    /** {@link #refuseIfMounted}, with the layer lock check only when {@code locks} (prune holds the locks itself). */
    static void refuseIfMounted(String name, List<Path> layers, boolean locks) throws java.io.IOException {
        for (dev.strata.inspect.MountInfo m : dev.strata.inspect.MountRegistry.live()) {
            for (Path l : layers) {
                if (m.lowerdirs().contains(l.toAbsolutePath().normalize())) {
                    throw new dev.strata.cli.UserError("image " + name + " is in use by the strata mount at "
                            + m.mountpoint() + "; unmount it first (or use --force)");
                }
            }
        }
        // the proof that holds in any PID or mount namespace: a mount daemon's lock on the layer
        for (Path l : locks ? layers : List.<Path>of()) {
            if (dev.strata.image.LayerLocks.inUse(l)) {
                throw new dev.strata.cli.UserError("image " + name + " is in use by a live strata mount (layer "
                        + l.getFileName() + "); unmount it first (or use --force)");
            }
        }
        String mountinfo = Files.readString(Path.of("/proc/self/mountinfo"), java.nio.charset.StandardCharsets.ISO_8859_1);
        for (String line : mountinfo.split("\n")) {
            if (!line.contains(" - overlay ")) continue;
            for (Path l : layers) {
                String dir = dev.strata.posix.Names.toNative(l.toAbsolutePath().normalize().toString());
                if (line.contains("lowerdir=" + dir) || line.contains(":" + dir + ",") || line.contains(":" + dir + ":")
                        || line.contains(":" + dir + " ") || line.endsWith(":" + dir)) {
                    throw new dev.strata.cli.UserError("image " + name + " is in use by the overlay mount at "
                            + line.split(" ")[4] + "; unmount it first (or use --force)");
                }
            }
        }
    }

    // ------------------------------------------------------------------ inspect

    @Command(name = "inspect", mixinStandardHelpOptions = true,
            description = {"Show an image: its layers, config and layer directories.",
                    "Layers with digests and sizes, config (entrypoint, cmd, env, workdir...), layer directories."})
    static final class Inspect implements Callable<Integer> {
        @Parameters(index = "0", paramLabel = "NAME") String name;
        @Option(names = "--json", description = "Print the image record as JSON (with layerDirsTopFirst).") boolean json;
        @CommandLine.Mixin StoreOption store = new StoreOption();

        @Override public Integer call() {
            return ImageCommand.call(() -> {
                ImageStore s = store.open();
                ImageRecord r = s.find(name);
                List<Path> dirs = s.lowerDirsTopFirst(r);
                if (json) {
                    ObjectNode o = JSON.valueToTree(r);
                    ArrayNode a = o.putArray("layerDirsTopFirst");
                    for (Path p : dirs) a.add(p.toString());
                    System.out.println(JSON.writeValueAsString(o));
                    return 0;
                }
                PrintStream out = System.out;
                out.println("Names        " + (r.names.isEmpty() ? "<none>" : String.join(", ", r.names)));
                out.println("Id           " + r.id);
                if (r.manifestDigest != null) out.println("Manifest     " + r.manifestDigest);
                out.println("Source       " + r.format + " " + r.source);
                if (r.platform != null) out.println("Platform     " + r.platform);
                String created = r.config == null ? null : text(r.config, "created");
                if (created != null) out.println("Created      " + created);
                out.println("Imported     " + r.imported);
                out.println("Layers       " + r.layers.size() + " (bottom first)");
                int i = 1;
                for (ImageRecord.Layer l : r.layers) {
                    out.println(String.format("  %2d  %s  %9s", i++, l.diffId, Human.bytes(l.contentSize)));
                    if (l.digest != null && !l.digest.equals(l.diffId) || l.mediaType != null) {
                        out.println("      blob " + (l.digest == null ? "?" : l.digest) + "  " + Human.bytes(l.blobSize)
                                + (l.mediaType == null ? "" : "  " + l.mediaType));
                    }
                }
                JsonNode c = r.config == null ? null : r.config.get("config");
                if (c != null && c.size() > 0) {
                    out.println("Config");
                    field(out, "Entrypoint", c.get("Entrypoint"));
                    field(out, "Cmd", c.get("Cmd"));
                    field(out, "Env", c.get("Env"));
                    field(out, "WorkingDir", c.get("WorkingDir"));
                    field(out, "User", c.get("User"));
                    field(out, "ExposedPorts", c.get("ExposedPorts"));
                    field(out, "Volumes", c.get("Volumes"));
                    field(out, "Labels", c.get("Labels"));
                    field(out, "StopSignal", c.get("StopSignal"));
                }
                out.println("Layer dirs   (top first, as lowerdir=)");
                for (Path p : dirs) out.println("  " + p);
                return 0;
            });
        }

        private static String text(JsonNode n, String f) {
            JsonNode v = n.get(f);
            return v == null || v.isNull() ? null : v.asText();
        }

        private static void field(PrintStream out, String label, JsonNode v) throws Exception {
            if (v == null || v.isNull() || (v.isContainerNode() && v.size() == 0) || (v.isTextual() && v.asText().isEmpty())) return;
            String pad = String.format("  %-13s", label);
            if (label.equals("Env") && v.isArray()) {
                boolean first = true;
                for (JsonNode e : v) {
                    out.println((first ? pad : " ".repeat(pad.length())) + e.asText());
                    first = false;
                }
            } else if (v.isObject() && label.equals("Labels")) {
                boolean first = true;
                for (Iterator<Map.Entry<String, JsonNode>> it = v.fields(); it.hasNext(); ) {
                    Map.Entry<String, JsonNode> e = it.next();
                    out.println((first ? pad : " ".repeat(pad.length())) + e.getKey() + "=" + e.getValue().asText());
                    first = false;
                }
            } else if (v.isObject()) {
                List<String> keys = new ArrayList<>();
                v.fieldNames().forEachRemaining(keys::add);
                out.println(pad + String.join(" ", keys));
            } else if (v.isTextual()) {
                out.println(pad + v.asText());
            } else {
                out.println(pad + new ObjectMapper().writeValueAsString(v));
            }
        }
    }
}
