package dev.strata.nativetest;

import java.nio.file.Path;
import java.util.List;

/**
 * One live mount. {@link #close()} unmounts it (trying each unmount command until the mount point is
 * gone), is idempotent, and is what every test calls in finally / @AfterEach.
 */
public final class Mount implements AutoCloseable {
    private final String implementation;
    private final LayerSet layers;
    private final List<List<String>> unmountCommands;
    private final Process reaper;
    private boolean closed;
    /** The daemon's log file, if the implementation writes one (strata --log). */
    Path log;

    Mount(String implementation, LayerSet layers, List<List<String>> unmountCommands, Process reaper) {
        this.implementation = implementation;
        this.layers = layers;
        this.unmountCommands = unmountCommands;
        this.reaper = reaper;
        Mounts.register(this);
    }

    public String implementation() { return implementation; }
    public LayerSet layers() { return layers; }
    public Path path() { return layers.mnt; }
    /** Absolute path of rel ("" = the mount root) inside the mount, as a Latin-1 string (one char per byte). */
    public String abs(String rel) { return rel.isEmpty() ? layers.mnt.toString() : layers.mnt + "/" + rel; }

    @Override public synchronized void close() {
        if (closed) return;
        StringBuilder log = new StringBuilder();
        for (int attempt = 0; attempt < 3 && Mounts.isMounted(layers.mnt); attempt++) {
            for (List<String> cmd : unmountCommands) {
                if (!Mounts.isMounted(layers.mnt)) break;
                NativeSupport.Proc.Result r = NativeSupport.Proc.run(Path.of("/"), 60, null, cmd);
                if (r.exit != 0) log.append("\n  ").append(String.join(" ", cmd)).append(": ").append(r);
                waitUnmounted(2000);
            }
            if (Mounts.isMounted(layers.mnt)) sleep(500);
        }
        closed = true;
        Mounts.deregister(this);
        if (reaper != null) reaper.destroy();
        if (Mounts.isMounted(layers.mnt)) {
            throw new IllegalStateException(implementation + " mount on " + layers.mnt + " could not be unmounted:" + log);
        }
    }

    private void waitUnmounted(long millis) {
        long end = System.currentTimeMillis() + millis;
        while (Mounts.isMounted(layers.mnt) && System.currentTimeMillis() < end) sleep(50);
    }

    private static void sleep(long ms) {
        try { Thread.sleep(ms); } catch (InterruptedException e) { Thread.currentThread().interrupt(); }
    }

    /** The last lines of the daemon's log (empty if none): errors the daemon logged explain many mismatches. */
    public String logTail(int lines) {
        if (log == null || !java.nio.file.Files.exists(log)) return "";
        try {
            List<String> all = java.nio.file.Files.readAllLines(log, java.nio.charset.StandardCharsets.ISO_8859_1);
            return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
        } catch (java.io.IOException e) {
            return "";
        }
    }

    @Override public String toString() { return implementation + " " + layers; }
}
