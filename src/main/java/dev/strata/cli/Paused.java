package dev.strata.cli;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A strata mount's daemon stopped with SIGSTOP, continued (SIGCONT) by {@link #close} or, if this
 * process ends first (an error, SIGTERM, ^C), by a shutdown hook. The engine keeps the upper
 * consistent at every step a crash could stop it at (copy-up and whiteouts through the workdir), so
 * a stopped daemon leaves an upper a crash would leave: whole operations only.
 */
final class Paused implements AutoCloseable {
    private final long pid;
    private final Thread hook;

    private Paused(long pid) {
        this.pid = pid;
        this.hook = new Thread(() -> signal(pid, "CONT"));
    }

    /** Refuses early (before any work) what {@link #stop} would refuse. */
    static void check(String mountpoint) { daemonOf(mountpoint); }

    private static dev.strata.inspect.MountInfo daemonOf(String mountpoint) {
        java.util.Optional<dev.strata.inspect.MountRegistry.Located> at =
                dev.strata.inspect.MountRegistry.locate(Path.of(dev.strata.posix.Names.fromArgument(mountpoint)));
        if (at.isEmpty()) {
            throw new UserError("--pause needs a strata mount: " + mountpoint + " has no strata daemon to stop"
                    + " (stop the programs that write to it instead, e.g. 'podman pause')");
        }
        dev.strata.inspect.MountInfo m = at.get().mount();
        long start = startTime(m.pid());
        if (m.pid() <= 0 || start == 0 || (m.startTime() != 0 && start != m.startTime())) {
            throw new UserError("--pause: the daemon of the mount at " + m.mountpoint() + " (pid " + m.pid()
                    + ") is not visible from here (another PID namespace?); commit without --pause");
        }
        return m;
    }

    /**
     * Pauses the mount: through the shared daemon's socket when that daemon serves it (only this
     * mount's requests are held, until the returned pause is closed or this process ends), else by
     * stopping the process of its own that serves it; refused for a process that serves other mounts
     * too and cannot be asked (a SIGSTOP would stop them all).
     */
    static AutoCloseable stop(String mountpoint) {
        dev.strata.inspect.MountInfo m = daemonOf(mountpoint);
        try {
            dev.strata.daemon.PauseClient c = dev.strata.daemon.PauseClient.pause(m.mountpoint());
            if (c != null) return c;
        } catch (java.io.IOException e) {
            throw new UserError("--pause: " + e.getMessage());
        }
        long others = dev.strata.inspect.MountRegistry.live().stream()
                .filter(o -> o.pid() == m.pid() && !o.mountpoint().equals(m.mountpoint())).count();
        if (others > 0) {
            throw new UserError("--pause: the strata daemon of " + m.mountpoint() + " (pid " + m.pid() + ") serves "
                    + others + " other mount" + (others > 1 ? "s" : "") + " and cannot be asked to pause this one from here"
                    + " (another user or namespace?); commit without --pause");
        }
        Paused p = new Paused(m.pid());
        Runtime.getRuntime().addShutdownHook(p.hook);
        if (!signal(m.pid(), "STOP")) {
            Runtime.getRuntime().removeShutdownHook(p.hook);
            throw new UserError("--pause: cannot stop the daemon of the mount at " + m.mountpoint() + " (pid " + m.pid() + ")");
        }
        return p;
    }

    @Override public void close() {
        signal(pid, "CONT");
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException ignored) {
            // shutting down: the hook runs anyway
        }
    }

    private static boolean signal(long pid, String sig) {
        try {
            return new ProcessBuilder("kill", "-" + sig, Long.toString(pid)).redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD).start().waitFor() == 0;
        } catch (java.io.IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** Field 22 (starttime) of /proc/PID/stat, or 0. */
    private static long startTime(long pid) {
        try {
            String st = Files.readString(Path.of("/proc/" + pid + "/stat"), java.nio.charset.StandardCharsets.ISO_8859_1);
            String[] f = st.substring(st.lastIndexOf(')') + 2).trim().split(" ");
            return Long.parseLong(f[19]);
        } catch (java.io.IOException | RuntimeException e) {
            return 0;
        }
    }
}
