package dev.strata.nativetest;

import org.junit.jupiter.api.Assertions;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Mounts a {@link LayerSet} with one overlay implementation: the kernel overlay (the oracle), strata
 * (bin/strata of this project) or fuse-overlayfs. Each mount returns only once it shows in
 * /proc/self/mounts and is registered for cleanup.
 */
public abstract class Mounter {
    /** Short name used in messages: "kernel", "strata", "fuse-overlayfs". */
    public abstract String name();

    /** Mounts the layer set on layers.mnt; throws with the implementation's message on failure. */
    public abstract Mount mount(LayerSet layers);

    @Override public String toString() { return name(); }

    // ------------------------------------------------------------------ the implementations

    /** Options pinned for the oracle so results do not depend on the machine's module defaults. */
    public static final String KERNEL_PINNED_OPTIONS = "redirect_dir=off,index=off,metacopy=off";

    public static Mounter kernel() { return new Kernel(pinned(features())); }
    /** The kernel overlay with the pinned options, the given features (e.g. "redirect_dir=on") replacing theirs. */
    public static Mounter kernel(String features) { return new Kernel(pinned(features)); }
    /** strata with the given overlay features (e.g. "redirect_dir=on") before -Dstrata.mountOptions. */
    public static Mounter strata(String features) { return new Strata(NativeSupport.projectHome(), features); }

    /**
     * Overlay features both sides are mounted with: -Dstrata.features=redirect_dir=on (scripts/test.sh
     * runs the random, scenario and cross-mount tests a second time so). Empty by default: the kernel
     * gets {@link #KERNEL_PINNED_OPTIONS}, strata its defaults.
     */
    public static String features() { return System.getProperty("strata.features", "").strip(); }

    /**
     * Whether the mounts are made with redirect_dir=on (lower and merged directories can be renamed),
     * or with metacopy=on, which implies it.
     */
    public static boolean redirectDirOn() { return ("," + features() + ",").contains(",redirect_dir=on,") || metacopyOn(); }
    /** Whether {@link #features()} has index=on (lower hard links are one inode; the workdir's index is part of the upper's state). */
    public static boolean indexOn() { return ("," + features() + ",").contains(",index=on,"); }
    /** Whether the mounts are made with metacopy=on (metadata-only copy-ups). */
    public static boolean metacopyOn() { return ("," + features() + ",").contains(",metacopy=on,"); }

    static String pinned(String features) {
        if (features == null || features.isEmpty()) return KERNEL_PINNED_OPTIONS;
        StringBuilder b = new StringBuilder();
        java.util.Set<String> keys = new java.util.HashSet<>();
        for (String f : features.split(",")) keys.add(f.split("=", 2)[0]);
        // metacopy=on implies redirect_dir=on and conflicts with an explicit redirect_dir=off (as in strata)
        if (("," + features + ",").contains(",metacopy=on,")) keys.add("redirect_dir");
        for (String o : KERNEL_PINNED_OPTIONS.split(",")) if (!keys.contains(o.split("=", 2)[0])) b.append(o).append(',');
        return b.append(features).toString();
    }
    /** The kernel overlay with only the layer options (the machine's defaults for everything else). */
    public static Mounter kernelDefaults() { return new Kernel(null); }
    public static Mounter strata() { return new Strata(NativeSupport.projectHome(), features()); }
    public static Mounter fuseOverlayfs() { return new FuseOverlayfs(); }

    /**
     * The implementation compared with the kernel: -Dstrata.target=strata|kernel|fuse-overlayfs|auto.
     * auto (the default, for developers) uses strata when this project has a built launcher with a mount
     * command, else the kernel (kernel-vs-kernel validates the harness) and says so on stderr. strata
     * (what CI and scripts/test.sh pin) fails the test when strata cannot be launched, and so does auto in
     * CI mode ({@link NativeSupport#nativeRequired()}): a comparison of the kernel with itself tests nothing.
     */
    public static Mounter underTest() {
        return underTest(System.getProperty("strata.target", "auto"), NativeSupport.projectHome(), NativeSupport.nativeRequired());
    }

    static Mounter underTest(String target, Path home, boolean required) {
        switch (target) {
            case "strata": {
                String why = Strata.unavailableReason(home);
                if (why != null) Assertions.fail("-Dstrata.target=strata, but strata cannot be launched: " + why);
                return new Strata(home, features());
            }
            case "kernel": return kernel();
            case "fuse-overlayfs": return fuseOverlayfs();
            case "auto":
            case "": {
                String why = Strata.unavailableReason(home);
                if (why == null) return new Strata(home, features());
                if (required) {
                    Assertions.fail("strata.target=auto would compare the kernel with itself, which CI mode"
                            + " (-Dstrata.requireNative=true or CI=true) does not accept: " + why);
                }
                if (!warned) System.err.println("[nativetest] strata.target=auto: comparing the kernel with itself (" + why + ")");
                warned = true;
                return kernel();
            }
            default:
                throw new IllegalArgumentException("-Dstrata.target must be strata, kernel, fuse-overlayfs or auto, not " + target);
        }
    }

    private static boolean warned;

    static void requireMounted(String impl, LayerSet layers, NativeSupport.Proc.Result r, List<List<String>> unmount) {
        if (!Mounts.isMounted(layers.mnt)) {
            // a failed start may still have left something half-mounted a moment later: clean up anyway
            for (List<String> c : unmount) NativeSupport.Proc.run(Path.of("/"), 30, null, c);
            throw new IllegalStateException(impl + " mount of " + layers + " failed: " + r);
        }
    }

    static final class Kernel extends Mounter {
        private final String extra;
        Kernel(String extra) { this.extra = extra; }
        @Override public String name() { return extra == null ? "kernel(defaults)" : "kernel"; }
        @Override public Mount mount(LayerSet layers) {
            String opts = layers.overlayOptions() + (extra == null ? "" : "," + extra);
            String mnt = layers.mnt.toString();
            List<List<String>> unmount = List.of(List.of("umount", mnt), List.of("umount", "-l", mnt));
            Process reaper = Mounts.startReaper(layers.mnt, "umount " + Mounts.sh(mnt) + " || umount -l " + Mounts.sh(mnt));
            NativeSupport.Proc.Result r = NativeSupport.Proc.run(Path.of("/"), 60, "mount", "-t", "overlay", "overlay", "-o", opts, mnt);
            try {
                requireMounted(name(), layers, r, unmount);
            } catch (RuntimeException e) {
                if (reaper != null) reaper.destroy();
                throw e;
            }
            return new Mount(name(), layers, unmount, reaper);
        }
    }

    /**
     * This mounter, but strata in a process of its own for each mount (STRATA_DAEMON=0): for a test
     * that kills or stops the process serving its mount, which with the shared daemon would take every
     * other mount of this JVM's daemon with it. Other implementations: themselves.
     */
    public Mounter ownProcess() { return this; }

    static final class Strata extends Mounter {
        private final Path home;
        private final String features;
        private final boolean own;
        Strata(Path home, String features) { this(home, features, false); }
        Strata(Path home, String features, boolean own) {
            this.home = home; this.features = features == null ? "" : features; this.own = own;
        }
        @Override public String name() { return "strata"; }
        @Override public Mounter ownProcess() { return own ? this : new Strata(home, features, true); }

        /**
         * How the mount is launched: as podman's mounts, through the shared daemon of this JVM's user and
         * mount namespace (README, "Process model"), which ends a few seconds after the last mount so that
         * no JVM outlives the tests' namespace for long; STRATA_DAEMON=0 in the environment, or
         * {@link #ownProcess()}, gives each mount a process of its own.
         */
        Map<String, String> env() {
            Map<String, String> e = new HashMap<>();
            if (own) e.put("STRATA_DAEMON", "0");
            if (System.getenv("STRATA_DAEMON_IDLE") == null) e.put("STRATA_DAEMON_IDLE", "5");
            // -Dstrata.javaOpts: the daemon's JVM options (its own daemon then: one started without them
            // serves no such mount), e.g. -Dstrata.spliceMin=0 to answer every READ by splice
            String javaOpts = System.getProperty("strata.javaOpts", "");
            if (!javaOpts.isEmpty()) e.put("STRATA_JAVA_OPTS", javaOpts);
            return e;
        }

        Path launcher() { return home.resolve("bin/strata"); }

        /** Null if strata can be used, else why not (not built, no mount command yet, a launcher that fails). */
        static synchronized String unavailableReason(Path home) {
            return REASONS.computeIfAbsent(home.toAbsolutePath().normalize(), h -> {
                Path launcher = h.resolve("bin/strata");
                if (!Files.isExecutable(launcher)) return "no launcher " + launcher;
                if (!Files.exists(h.resolve("target/strata.jar"))) return "not built: run mvn -B -q package -DskipTests in " + h;
                NativeSupport.Proc.Result r = NativeSupport.Proc.run(h, 60, launcher.toString(), "mount", "--help");
                if (r.exit != 0) return "'" + launcher + " mount --help' failed: " + r.toString().strip();
                return "";
            }).transform(w -> w.isEmpty() ? null : w);
        }
        private static final Map<Path, String> REASONS = new HashMap<>();

        @Override public Mount mount(LayerSet layers) {
            String mnt = layers.mnt.toString();
            String launcher = launcher().toString();
            List<List<String>> unmount = List.of(List.of(launcher, "umount", mnt), List.of("fusermount3", "-u", mnt),
                    List.of("fusermount", "-u", mnt), List.of("umount", "-l", mnt));
            Process reaper = Mounts.startReaper(layers.mnt, Mounts.sh(launcher) + " umount " + Mounts.sh(mnt)
                    + " || fusermount3 -u " + Mounts.sh(mnt) + " || umount -l " + Mounts.sh(mnt));
            String opts = layers.overlayOptions();
            if (!features.isEmpty()) opts += "," + features;
            String extra = System.getProperty("strata.mountOptions", "");
            if (!extra.isEmpty()) opts += "," + extra;
            Path log = layers.root.resolve("strata-" + layers.mnt.getFileName() + ".log");
            List<String> cmd = new ArrayList<>(Arrays.asList(launcher, "mount", "--log=" + log, "-o", opts, mnt));
            NativeSupport.Proc.Result r = NativeSupport.Proc.run(home, 120, env(), cmd);
            try {
                if (r.exit != 0) {
                    for (List<String> c : unmount) if (Mounts.isMounted(layers.mnt)) NativeSupport.Proc.run(Path.of("/"), 30, null, c);
                    throw new IllegalStateException("strata mount of " + layers + " failed: " + r);
                }
                requireMounted(name(), layers, r, unmount);
            } catch (RuntimeException e) {
                if (reaper != null) reaper.destroy();
                throw e;
            }
            Mount m = new Mount(name(), layers, unmount, reaper);
            m.log = log;
            return m;
        }
    }

    static final class FuseOverlayfs extends Mounter {
        @Override public String name() { return "fuse-overlayfs"; }
        static boolean installed() { return NativeSupport.onPath("fuse-overlayfs"); }
        @Override public Mount mount(LayerSet layers) {
            String mnt = layers.mnt.toString();
            List<List<String>> unmount = List.of(List.of("fusermount3", "-u", mnt), List.of("umount", "-l", mnt));
            Process reaper = Mounts.startReaper(layers.mnt, "fusermount3 -u " + Mounts.sh(mnt) + " || umount -l " + Mounts.sh(mnt));
            NativeSupport.Proc.Result r = NativeSupport.Proc.run(Path.of("/"), 60, "fuse-overlayfs", "-o", layers.overlayOptions(), mnt);
            try {
                requireMounted(name(), layers, r, unmount);
            } catch (RuntimeException e) {
                if (reaper != null) reaper.destroy();
                throw e;
            }
            return new Mount(name(), layers, unmount, reaper);
        }
    }

    /**
     * Whether strata's mounts get the kernel's writeback cache from -Dstrata.mountOptions (writeback=on,
     * or writeback=auto with passthrough=0): the kernel then keeps the ctime of regular files itself
     * (README, "Transports").
     */
    public static boolean writebackCache() {
        String o = "," + System.getProperty("strata.mountOptions", "") + ",";
        if (o.contains(",transport=libfuse,")) return false;
        return o.contains(",writeback=on,") || o.contains(",writeback=1,") || o.contains(",writeback=auto,") && o.contains(",passthrough=0,");
    }

    /** Whether strata is tested on its libfuse 2 transport (-Dstrata.mountOptions with transport=libfuse). */
    public static boolean libfuseTransport() {
        return System.getProperty("strata.mountOptions", "").contains("transport=libfuse");
    }
}
