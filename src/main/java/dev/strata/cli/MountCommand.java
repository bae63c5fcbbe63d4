package dev.strata.cli;

import dev.strata.fuse.FuseMount;
import dev.strata.fuse.kernel.KernelMount;
import dev.strata.fuse.Log;
import dev.strata.image.ImageException;
import dev.strata.image.ImageStore;
import dev.strata.image.LayerLocks;
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
                "",
                "Returns once the mount is ready; the daemon stays until the file system is",
                "unmounted (strata umount MOUNTPOINT). Also reached as 'strata -o OPTIONS",
                "MOUNTPOINT' (fuse-overlayfs, podman) and 'strata SOURCE MOUNTPOINT -o OPTIONS'",
                "(mount.fuse3: mount -t fuse.strata SOURCE MOUNTPOINT -o OPTIONS).",
                "'strata mount ARCHIVE MOUNTPOINT' (no -o; or --archive ARCHIVE) mounts an image",
                "archive (OCI layout, docker archive, layer tar) without importing it."},
        footerHeading = "%nMount options (-o, comma-separated, may repeat; fuse-overlayfs syntax):%n",
        footer = {
                "  lowerdir=A:B:C        lower layers, leftmost on top; \\: is a literal colon;",
                "                        A:B::D::E: D and E are data-only layers",
                "  lowerdir+=A, datadir+=D",
                "                        one lower / data-only layer each, in order (not with",
                "                        lowerdir=)",
                "  verity=off|on|require check the fs-verity digests of metadata-only copies",
                "  upperdir=DIR          the writable layer (with workdir; without both the",
                "                        mount is read-only)",
                "  workdir=DIR           empty scratch directory on upperdir's file system",
                "  fsync=0, volatile     skip fsync (faster, not crash safe)",
                "  timeout=SECONDS       how long the kernel caches names (default 1000000)",
                "  attr_timeout=SECONDS  how long the kernel caches attributes (default 1000000)",
                "  transport=auto|kernel|libfuse",
                "                        speak FUSE on /dev/fuse (kernel; root or a user",
                "                        namespace's root) or through libfuse 2 and fusermount;",
                "                        auto (default) falls back to libfuse",
                "  passthrough=0         kernel transport: no FUSE passthrough of file data",
                "  writeback=on|off|auto kernel transport: the kernel's writeback cache (auto:",
                "                        where there is no passthrough; off by default: see",
                "                        README, Transports, for what it does not keep)",
                "  uidmapping=:C:H:N..., gidmapping=:C:H:N...",
                "                        id mapping in fuse-overlayfs's format",
                "  squash_to_root, squash_to_uid=N, squash_to_gid=N",
                "                        show every file as owned by root / N",
                "  static_nlink          directories report st_nlink 1",
                "  noacl                 refuse POSIX ACL xattrs",
                "  xattr_permissions=0|1|2",
                "                        keep owner and mode in an override xattr (podman)",
                "  context=CONTEXT       SELinux context (accepted for podman)",
                "  trace=FILE            narrate copy-ups, whiteouts, opaque directories",
                "  fsname=NAME           the source shown in /proc/mounts (default: the",
                "                        SOURCE argument, else strata)",
                "  subtype=NAME          the type shown in /proc/mounts is fuse.NAME",
                "                        (default fuse.strata)",
                "  nosuid, nodev, noexec mount flags; suid, dev, exec turn them off again.",
                "                        Default: none, as the kernel overlay; a mount of",
                "                        image store layers (--image) gets nosuid,nodev",
                "  allow_other, allow_root, ro, rw",
                "                        FUSE options (as root allow_other is always on)",
                "  debug                 debug output",
                "Unknown options are ignored with a warning (as fuse-overlayfs does), with the",
                "nearest known option suggested."})
public final class MountCommand implements Callable<Integer> {
    @Option(names = "-o", paramLabel = "OPTIONS", description = "mount options (see below)")
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

    @Option(names = "--archive", paramLabel = "SOURCE",
            description = "mount an image archive (OCI layout directory or tar, docker archive, layer tar) without "
                    + "importing it: read-only unless --upper (also: strata mount SOURCE MOUNTPOINT)")
    String archive;

    @Option(names = "--ref", paramLabel = "REF", description = "with an archive: which image of a source holding several")
    String ref;

    @Option(names = "--platform", paramLabel = "OS/ARCH[/VARIANT]",
            description = "with an archive: the platform to pick from a multi-platform index (default: linux/amd64)")
    String platform;

    @Option(names = "--store", paramLabel = "DIR", description = "image store (default: $XDG_DATA_HOME/strata)")
    Path store;

    @Option(names = "--upper", paramLabel = "DIR",
            description = "with --image or an archive: writable upper directory (created if missing)")
    Path upper;

    @Option(names = "--work", paramLabel = "DIR",
            description = "with --upper: work directory (default: UPPER.work beside it, created if missing)")
    Path work;

    @Parameters(arity = "1..2", paramLabel = "[SOURCE] MOUNTPOINT",
            description = "the mountpoint; a first argument (mount.fuse3's SOURCE) is shown as the source in /proc/mounts")
    List<String> positional = new ArrayList<>();

    /** The archive mounted without import ({@code --archive}, or a first operand that is one), or null. */
    private Path archiveSource;

    /** The caller's working directory (a shared daemon's request), or null for this process's own. */
    Path cwd;
    /** The shared daemon's request this mount answers (see {@link SharedMounts}), or null. */
    SharedMounts.Session session;

    /**
     * Parses {@code mount [-o OPTS]... [-f] [-d] [--log[=] FILE] [--image REF] [--store DIR] [--upper DIR]
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
            else if (x.startsWith("--log=")) m.logFile = x.substring(6);
            else if (x.equals("--image") && next != null) { m.image = next; i++; }
            else if (x.equals("--store") && next != null) { m.store = Paths.get(next); i++; }
            else if (x.equals("--upper") && next != null) { m.upper = Paths.get(next); i++; }
            else if (x.equals("--work") && next != null) { m.work = Paths.get(next); i++; }
            else if (x.equals("--archive") && next != null) { m.archive = next; i++; }
            else if (x.startsWith("-") && !x.equals("-")) return null;
            else m.positional.add(x);
        }
        return m.positional.isEmpty() || m.positional.size() > 2 ? null : m;
    }

    /**
     * The archive of {@code strata mount --archive SOURCE M}, or of {@code strata mount SOURCE M} without
     * -o or --image when SOURCE is a regular file or a directory holding an OCI layout or docker archive
     * (index.json or manifest.json); null for every other form, which keeps its meaning.
     */
    private Path archiveSource(Path cwd) {
        if (archive != null) return cwd.resolve(archive).normalize();
        if (!options.isEmpty() || image != null || positional.size() != 2) return null;
        Path p = cwd.resolve(positional.get(0)).normalize();
        if (Files.isRegularFile(p) || Files.isRegularFile(p.resolve("index.json")) || Files.isRegularFile(p.resolve("manifest.json"))) {
            return p;
        }
        if (!Files.exists(p, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            throw new UserError(positional.get(0) + ": no such file or directory (strata mount SOURCE MOUNTPOINT mounts an image archive)");
        }
        return null;
    }

    /** The lazy layers of the archive (built into the store the first time), top first. */
    private List<Path> archiveLowers() {
        ImageStore.ImportRequest req = new ImageStore.ImportRequest(archiveSource);
        req.ref = ref;
        try {
            if (platform != null) req.platform = dev.strata.image.Platform.parse(platform);
            ImageStore st = ImageStore.open(store != null ? store : ImageStore.defaultLocation());
            return dev.strata.image.LazyLayers.prepare(st, req, new ImageCommand.Printer(true)).lowersTopFirst;
        } catch (ImageException | IllegalArgumentException e) {
            throw new UserError(e.getMessage());
        }
    }

    /** The -o options that mount an image: its layers, and an upper/work pair if asked for (created later). */
    private String imageLowers() {
        for (String o : options) {
            for (String part : o.split(",")) {
                if (part.startsWith("lowerdir=") || part.startsWith("lowerdir+=") || part.startsWith("datadir+=")
                        || part.startsWith("upperdir=") || part.startsWith("workdir=")) {
                    throw new UserError("--image gives the layers: use --upper/--work instead of -o " + part.split("=")[0] + "=", 2);
                }
            }
        }
        if (upper == null && work != null) throw new UserError("--work needs --upper", 2);
        List<Path> lowers;
        if (archiveSource != null) {
            lowers = archiveLowers();
        } else try {
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
        if (upper != null) {
            b.append(",upperdir=").append(escape(upperPath().toString())).append(",workdir=").append(escape(workPath().toString()));
        }
        return b.toString();
    }

    private Path upperPath() { return upper.toAbsolutePath().normalize(); }

    private Path workPath() {
        Path u = upperPath();
        return work != null ? work.toAbsolutePath().normalize() : u.resolveSibling(u.getFileName() + ".work");
    }

    /**
     * --upper/--work are created if missing, once the options and the image were checked (the
     * directories checks need them); returns the directories made, which a refusal removes again.
     */
    private List<Path> createUpperWork() {
        List<Path> made = new ArrayList<>();
        try {
            for (Path d : List.of(upperPath(), workPath())) {
                List<Path> missing = new ArrayList<>();
                for (Path p = d; p != null && !Files.exists(p, java.nio.file.LinkOption.NOFOLLOW_LINKS); p = p.getParent()) missing.add(0, p);
                Files.createDirectories(d);
                made.addAll(missing);
            }
        } catch (IOException e) {
            throw new UserError("cannot create " + e.getMessage());
        }
        return made;
    }

    /**
     * A FUSE mount whose daemon was killed stays mounted and answers ENOTCONN: mounting on it would
     * stack a second mount (or fail as "does not exist"). Say what is there and how to clear it; strata
     * does not unmount it by itself, since it may be another user's or another program's mount.
     */
    static void refuseDeadMount(Path mountpoint) {
        dev.strata.posix.Stat st = new dev.strata.posix.Stat();
        int r = dev.strata.posix.Posix.fstatat(dev.strata.posix.Posix.AT_FDCWD,
                dev.strata.posix.Names.toNative(mountpoint.toString()), st, 0);
        if (r != -107 /* ENOTCONN */) return;
        String type = UmountCommand.fuseType(mountpoint);
        if (type != null && (type.equals("fuse.strata") || type.startsWith("fuse.strata"))) {
            throw new UserError(mountpoint + ": a strata mount whose daemon died is still there: run `strata umount "
                    + mountpoint + "`");
        }
        throw new UserError(mountpoint + ": a " + (type == null ? "mount" : type + " mount")
                + " whose daemon died is still there: unmount it first (umount " + mountpoint + ")");
    }

    private static String escape(String path) {
        return path.replace("\\", "\\\\").replace(":", "\\:").replace(",", "\\,");
    }

    @Override public Integer call() {
        Path cwd = this.cwd != null ? this.cwd : Paths.get("").toAbsolutePath();
        archiveSource = archiveSource(cwd);
        if (archiveSource != null && session != null) throw new SharedMounts.Refused("an archive");
        if (archiveSource != null && image != null) throw new UserError("--archive and --image: give one of them", 2);
        if ((ref != null || platform != null) && archiveSource == null) {
            throw new UserError("--ref and --platform go with an archive (strata mount --archive SOURCE MOUNTPOINT)", 2);
        }
        boolean fromStore = image != null || archiveSource != null;
        Path mountpoint = cwd.resolve(positional.get(positional.size() - 1)).normalize();
        MountOptions opts;
        List<String> all = new ArrayList<>();
        // mount.fuse3's SOURCE is what /proc/mounts shows as the source (-o fsname= still wins)
        if (positional.size() == 2) all.add("fsname=" + positional.get(0).replace("\\", "\\\\").replace(",", "\\,"));
        // image layers come from untrusted archives: no setuid, no devices unless asked (-o suid,dev)
        if (fromStore) all.add("nosuid,nodev");
        all.addAll(options);
        if (fromStore) all.add(imageLowers());
        else if (upper != null || work != null || store != null) {
            throw new UserError("--upper, --work and --store go with --image or an archive (use -o upperdir=,workdir= otherwise)", 2);
        }
        try {
            opts = OptionParser.parse(all, cwd);
            if (image == null && (opts.suid == null || opts.dev == null)
                    && opts.allLowerDirs().stream().anyMatch(LayerLocks::isStoreLayer)) {
                // store layers given with -o lowerdir=: the same defaults as --image
                all.add(positional.size() == 2 ? 1 : 0, "nosuid,nodev");
                opts = OptionParser.parse(all, cwd);
            }
        } catch (IllegalArgumentException e) {
            throw new UserError(e.getMessage(), 2);
        }
        if (session != null) {
            String why = SharedMounts.refusal(this, opts);
            if (why != null) throw new SharedMounts.Refused(why);
        }
        for (String w : opts.warnings) System.err.println("strata: warning: " + w);
        refuseDeadMount(mountpoint);
        List<Path> created = fromStore && upper != null ? createUpperWork() : List.of();
        List<String> problems = Validator.check(opts, mountpoint);
        if (!problems.isEmpty()) {
            for (int i = created.size() - 1; i >= 0; i--) {
                try { Files.deleteIfExists(created.get(i)); } catch (IOException ignored) { /* not empty: leave it */ }
            }
            throw new UserError(problems.get(0) + (problems.size() > 1 ? " (and " + (problems.size() - 1) + " more problem"
                    + (problems.size() > 2 ? "s" : "") + ")" : ""));
        }
        boolean background = session != null || (Notify.active() && !foreground && !debug);
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
        // a lock on each store layer for as long as this daemon lives: 'image rm' does not delete them
        LayerLocks locks;
        try {
            locks = LayerLocks.holdShared(opts.allLowerDirs());
        } catch (ImageException e) {
            throw new UserError(e.getMessage());
        }
        Union union;
        try {
            union = Union.open(opts, kernel ? KernelMount.events(events) : events);
        } catch (IllegalStateException e) {
            locks.close();
            throw new UserError(e.getMessage());
        }
        Log log = new Log(opts.debug || debug);
        // the first kernel mount that bin/strata sent here for want of a shared daemon becomes it
        String socket = System.getenv("STRATA_DAEMON_SOCKET");
        java.util.concurrent.atomic.AtomicReference<dev.strata.daemon.Server> server = new java.util.concurrent.atomic.AtomicReference<>(
                session == null && kernel && background && socket != null && !socket.isEmpty() && archiveSource == null
                        ? dev.strata.daemon.Server.start(socket, new SharedMounts()) : null);
        // a mount served by the shared daemon (or the first one, which becomes it) writes its own --log:
        // the daemon's stderr is not its, and the daemon's other mounts do not write this mount's log
        java.io.PrintStream mountLog = null;
        if (logFile != null && (session != null || server.get() != null)) {
            try {
                mountLog = MountLog.open(logFile, cwd);
            } catch (SharedMounts.Refused e) {
                if (session != null) {
                    union.close();
                    locks.close();
                    throw e; // to a process of its own, which opens it as the caller
                }
                // the first mount: its process's stderr goes to the file, as without a daemon
            }
        }
        // inherited by the threads this one starts from here on (the mount's workers); the daemon's
        // accept thread was started above, before this, so the requests it serves do not inherit it
        if (mountLog != null) dev.strata.daemon.Server.logTo(mountLog);
        java.io.PrintStream ownLog = mountLog;
        MountRecord record = new MountRecord(mountpoint, opts);
        // the record is written while the file system mounts (the ready signal waits for it, so that
        // explain/diff find a mount as soon as the command returns); closed below whatever happens
        MountOptions warmUp = kernel ? opts : null; // opts and kernel are assigned more than once above
        int rc;
        try {
            record.start();
            Runnable ready = () -> {
                record.awaitRecorded();
                if (session != null) {
                    session.ready();
                } else if (background) {
                    if (server.get() != null) {
                        server.get().firstReady();
                        if (warmUp != null) dev.strata.fuse.kernel.WarmUp.afterFirstMount(warmUp);
                    }
                    Notify.send("ready");
                    Notify.detachStdio(ownLog != null ? null : logFile);
                }
            };
            rc = kernel ? KernelMount.serve(union, mountpoint, debug || opts.debug, ready, log) : KernelMount.NOT_PERMITTED;
            if (rc == KernelMount.NOT_PERMITTED) {
                if (session != null) throw new SharedMounts.Refused("mount(2) not permitted");
                dev.strata.daemon.Server s = server.getAndSet(null);
                if (s != null) s.firstEnded(); // a process that cannot mount(2) serves no other mount
                if (opts.transport.equals("kernel")) {
                    throw new UserError("cannot mount " + mountpoint + " with transport=kernel: mount(2) of FUSE is not permitted here");
                }
                log.debug("mount(2) not permitted: mounting through libfuse (fusermount)");
                if ("on".equals(opts.writeback)) {
                    log.warn("writeback=on is ignored: the libfuse transport has no writeback cache (kernel transport only)");
                }
                rc = FuseMount.serve(union, mountpoint, debug || opts.debug, ready, log);
            }
        } finally {
            dev.strata.daemon.Server s = server.getAndSet(null);
            if (s != null) s.firstEnded();
            record.close();
            union.close();
            locks.close();
            if (ownLog != null) {
                dev.strata.daemon.Server.logTo(null);
                ownLog.close();
            }
        }
        if (rc != 0) {
            throw new UserError("cannot mount on " + mountpoint + " (is /dev/fuse usable and the fuse package installed?)");
        }
        return 0;
    }
}
