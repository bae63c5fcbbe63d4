package dev.strata.nativetest;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Every live mount of this JVM, so none outlives it: {@link Mount#close()} unmounts normally, a shutdown
 * hook unmounts what is left on exit or SIGTERM, and a reaper process per mount (in its own session,
 * reading a pipe from this JVM) unmounts it if the JVM dies without running hooks (SIGKILL, crash).
 */
public final class Mounts {
    private Mounts() {}

    private static final Set<Mount> LIVE = new LinkedHashSet<>();
    private static boolean hooked;

    static synchronized void register(Mount m) {
        if (!hooked) {
            Runtime.getRuntime().addShutdownHook(new Thread(Mounts::closeAll, "nativetest-unmount-all"));
            Thread w = new Thread(Mounts::watch, "nativetest-hang-watchdog");
            w.setDaemon(true);
            w.start();
            hooked = true;
        }
        LIVE.add(m);
    }

    // ------------------------------------------------------------------ hangs

    /** Seconds a guarded call on a mount may take before the FUSE daemons are killed (-Dstrata.hangTimeout). */
    static final long HANG_SECONDS = Long.getLong("strata.hangTimeout", 120);
    /** When the guarded call began (nanoTime, never 0), 0 when none runs, CLAIMED once the watchdog acts on it. */
    private static final java.util.concurrent.atomic.AtomicLong BUSY = new java.util.concurrent.atomic.AtomicLong();
    private static final long CLAIMED = Long.MIN_VALUE;
    private static volatile String busyWhat;
    private static volatile long busyLimitSeconds = HANG_SECONDS;
    private static volatile String hang;

    /**
     * Runs a call that goes through a mount. A FUSE daemon that never answers would block the test
     * forever (the syscall cannot be interrupted): if the call takes longer than HANG_SECONDS, a
     * watchdog kills the FUSE daemons of every live mount (the syscall then fails with ENOTCONN) and the
     * call ends with an AssertionError that says so.
     */
    public static <T> T guarded(String what, java.util.function.Supplier<T> call) {
        return guarded(what, HANG_SECONDS, call);
    }

    /** {@link #guarded(String, java.util.function.Supplier)} with a limit of its own (the harness self-test's). */
    static <T> T guarded(String what, long seconds, java.util.function.Supplier<T> call) {
        busyWhat = what;
        busyLimitSeconds = seconds;
        hang = null;
        long start = System.nanoTime();
        BUSY.set(start == 0 || start == CLAIMED ? 1 : start);
        T r;
        boolean claimed;
        try {
            r = call.get();
        } finally {
            claimed = BUSY.getAndSet(0) == CLAIMED;
        }
        if (claimed) {
            // the watchdog took this call: the daemons it killed made it return; wait for its message
            long end = System.nanoTime() + 30_000_000_000L;
            while (hang == null && System.nanoTime() < end) {
                try { Thread.sleep(10); } catch (InterruptedException e) { Thread.currentThread().interrupt(); break; }
            }
            String h = hang;
            hang = null;
            throw new AssertionError(h != null ? h : "HANG: '" + what + "' did not return within " + seconds + " s");
        }
        return r;
    }

    private static void watch() {
        while (true) {
            try { Thread.sleep(1000); } catch (InterruptedException e) { return; }
            long since = BUSY.get();
            long limit = busyLimitSeconds;
            if (since == 0 || since == CLAIMED || System.nanoTime() - since < limit * 1_000_000_000L) continue;
            if (!BUSY.compareAndSet(since, CLAIMED)) continue; // the call returned meanwhile
            StringBuilder msg = new StringBuilder("HANG: '" + busyWhat + "' did not return within " + limit + " s; killed FUSE daemons:");
            List<Mount> all;
            synchronized (Mounts.class) { all = new ArrayList<>(LIVE); }
            for (Mount m : all) {
                if (m.implementation().startsWith("kernel")) continue;
                for (long pid : daemonPids(m.path())) {
                    msg.append(" ").append(m.implementation()).append(" pid ").append(pid).append(" (").append(m.path()).append(")");
                    ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
                }
            }
            System.err.println("[nativetest] " + msg);
            hang = msg.toString();
        }
    }

    /** The FUSE daemons serving mnt: processes started by these tests whose command line names mnt (not the reapers). */
    static List<Long> daemonPids(Path mnt) {
        List<Long> out = new ArrayList<>();
        String want = mnt.toString();
        long self = ProcessHandle.current().pid();
        java.io.File[] procs = new java.io.File("/proc").listFiles((d, n) -> n.chars().allMatch(Character::isDigit));
        if (procs == null) return out;
        for (java.io.File p : procs) {
            long pid = Long.parseLong(p.getName());
            if (pid == self) continue;
            try {
                String[] argv = new String(Files.readAllBytes(p.toPath().resolve("cmdline")), StandardCharsets.ISO_8859_1).split("\0");
                String cmd = String.join(" ", argv);
                if (!cmd.contains(want) || argv.length == 0) continue;
                if (argv[0].endsWith("fuse-overlayfs") || cmd.contains("strata.jar")) out.add(pid);
            } catch (IOException | RuntimeException e) {
                // gone meanwhile
            }
        }
        // a mount served by the shared daemon (README, "Process model"): its record names the daemon
        for (long pid : registeredPids(mnt)) {
            if (pid == self || out.contains(pid)) continue;
            try {
                if (new String(Files.readAllBytes(Path.of("/proc/" + pid + "/cmdline")), StandardCharsets.ISO_8859_1).contains("strata.jar")) out.add(pid);
            } catch (IOException | RuntimeException e) {
                // gone meanwhile
            }
        }
        return out;
    }

    /** The pids in strata's mount records (root's registry, /run/strata/mounts) for mountpoint mnt. */
    static List<Long> registeredPids(Path mnt) {
        List<Long> out = new ArrayList<>();
        java.io.File[] recs = new java.io.File("/run/strata/mounts").listFiles((d, n) -> n.endsWith(".json"));
        if (recs == null) return out;
        java.util.regex.Pattern mp = java.util.regex.Pattern.compile("\"mountpoint\"\\s*:\\s*\"((?:[^\"\\\\]|\\\\.)*)\"");
        java.util.regex.Pattern pid = java.util.regex.Pattern.compile("\"pid\"\\s*:\\s*(\\d+)");
        for (java.io.File f : recs) {
            try {
                String json = Files.readString(f.toPath(), StandardCharsets.ISO_8859_1);
                java.util.regex.Matcher a = mp.matcher(json), b = pid.matcher(json);
                if (a.find() && b.find() && a.group(1).equals(mnt.toString())) out.add(Long.parseLong(b.group(1)));
            } catch (IOException | RuntimeException e) {
                // removed meanwhile
            }
        }
        return out;
    }

    static synchronized void deregister(Mount m) { LIVE.remove(m); }

    /** Unmounts every mount still registered (used by the shutdown hook and by test cleanup). */
    public static void closeAll() {
        List<Mount> all;
        synchronized (Mounts.class) { all = new ArrayList<>(LIVE); }
        for (int i = all.size() - 1; i >= 0; i--) {
            try { all.get(i).close(); } catch (Throwable t) { System.err.println("[nativetest] unmount failed: " + t); }
        }
    }

    /** Mount points from /proc/self/mounts (octal escapes decoded), in order. */
    public static List<String> mountPoints() {
        List<String> out = new ArrayList<>();
        try {
            for (String line : Files.readAllLines(Paths.get("/proc/self/mounts"), StandardCharsets.ISO_8859_1)) {
                String[] f = line.split(" ");
                if (f.length >= 3) out.add(unescape(f[1]));
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot read /proc/self/mounts", e);
        }
        return out;
    }

    /** The filesystem type of the mount at exactly this path, or null if nothing is mounted there. */
    public static String fsTypeAt(Path mnt) {
        String want = mnt.toAbsolutePath().normalize().toString();
        String type = null;
        try {
            for (String line : Files.readAllLines(Paths.get("/proc/self/mounts"), StandardCharsets.ISO_8859_1)) {
                String[] f = line.split(" ");
                if (f.length >= 3 && unescape(f[1]).equals(want)) type = f[2]; // last one wins (stacked mounts)
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot read /proc/self/mounts", e);
        }
        return type;
    }

    public static boolean isMounted(Path mnt) { return fsTypeAt(mnt) != null; }

    /**
     * Unmounts everything mounted below {@code dir}, the innermost (last listed) first: with
     * {@code umount} followed by the mountpoint (e.g. {@code bin/strata umount}, or plain {@code umount}),
     * then lazily ({@code umount -l}) where a mount stays. For a test's cleanup, failed or not.
     */
    public static void unmountAllUnder(Path dir, String... umount) {
        List<String> left = mountedUnder(dir);
        for (int i = left.size() - 1; i >= 0; i--) {
            String[] cmd = java.util.Arrays.copyOf(umount, umount.length + 1);
            cmd[umount.length] = left.get(i);
            NativeSupport.Proc.run(Path.of("/"), 30, cmd);
            if (isMounted(Path.of(left.get(i)))) NativeSupport.Proc.run(Path.of("/"), 30, "umount", "-l", left.get(i));
        }
    }

    /** Mount points at or below dir. */
    public static List<String> mountedUnder(Path dir) {
        String d = dir.toAbsolutePath().normalize().toString();
        List<String> out = new ArrayList<>();
        for (String m : mountPoints()) if (m.equals(d) || m.startsWith(d + "/")) out.add(m);
        return out;
    }

    static String unescape(String s) {
        if (s.indexOf('\\') < 0) return s;
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\' && i + 3 < s.length()) {
                try {
                    b.append((char) Integer.parseInt(s.substring(i + 1, i + 4), 8));
                    i += 3;
                    continue;
                } catch (NumberFormatException ignored) { }
            }
            b.append(c);
        }
        return b.toString();
    }

    /**
     * Starts a reaper for a mount: a shell in its own session that blocks reading a pipe from this JVM;
     * when the JVM dies the pipe closes and the shell runs {@code unmountScript} (if mnt is still mounted).
     * Returns the process (destroy it after a normal unmount), or null if it could not be started.
     */
    static Process startReaper(Path mnt, String unmountScript) {
        String script = "while read -r _; do :; done; "
                + "if mountpoint -q " + sh(mnt.toString()) + "; then " + unmountScript + "; fi";
        ProcessBuilder pb = new ProcessBuilder("setsid", "sh", "-c", script);
        pb.redirectOutput(ProcessBuilder.Redirect.DISCARD);
        pb.redirectError(ProcessBuilder.Redirect.DISCARD);
        try {
            return pb.start();
        } catch (IOException e) {
            System.err.println("[nativetest] cannot start a reaper for " + mnt + ": " + e);
            return null;
        }
    }

    /** Single-quotes a string for sh. */
    public static String sh(String s) { return "'" + s.replace("'", "'\\''") + "'"; }

    /**
     * Whether process pid holds a file of dir open: a regular file on dir's file system that is in dir or
     * has no name at all (O_TMPFILE). By identity, not by the descriptor's path: strata opens the layers
     * through detached copies of their mounts, whose paths /proc shows from the copy's root.
     */
    static boolean holdsFileIn(long pid, Path dir) {
        java.util.Set<Object> inDir = new java.util.HashSet<>();
        Object dev;
        try {
            dev = Files.getAttribute(dir, "unix:dev");
            try (var names = Files.list(dir)) {
                for (Path p : (Iterable<Path>) names::iterator) {
                    try {
                        inDir.add(Files.getAttribute(p, "unix:ino", java.nio.file.LinkOption.NOFOLLOW_LINKS));
                    } catch (IOException e) {
                        // gone meanwhile
                    }
                }
            }
        } catch (IOException e) {
            return false;
        }
        try (var fds = Files.list(Path.of("/proc/" + pid + "/fd"))) {
            for (Path fd : (Iterable<Path>) fds::iterator) {
                try {
                    var a = Files.readAttributes(fd, "unix:dev,ino,nlink,mode"); // through the magic link: the file
                    if (((Integer) a.get("mode") & 0170000) != 0100000 || !dev.equals(a.get("dev"))) continue;
                    if ((Integer) a.get("nlink") == 0 || inDir.contains(a.get("ino"))) return true;
                } catch (IOException e) {
                    // closed meanwhile
                }
            }
        } catch (IOException e) {
            return false; // the process is gone
        }
        return false;
    }
}
