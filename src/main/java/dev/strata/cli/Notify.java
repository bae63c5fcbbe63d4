package dev.strata.cli;

import dev.strata.posix.Posix;

import java.io.FileOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;

/**
 * The channel to the launcher (bin/strata) that started this JVM in the background for a mount: it
 * waits on a pipe (file descriptor STRATA_NOTIFY_FD) for "ready" or "exit N", so the command returns
 * once the mount is usable, as fuse-overlayfs does. Without the variable (foreground, tests) it is a no-op.
 */
final class Notify {
    private Notify() {}
    private static volatile boolean done;

    static boolean active() {
        return System.getenv("STRATA_NOTIFY_FD") != null && !done;
    }

    static synchronized void send(String msg) {
        String fdStr = System.getenv("STRATA_NOTIFY_FD");
        if (fdStr == null || done) return;
        done = true;
        try (FileOutputStream out = new FileOutputStream("/proc/self/fd/" + fdStr)) {
            out.write((msg + "\n").getBytes(StandardCharsets.UTF_8));
        } catch (IOException ignored) {
            // the launcher is gone; nothing to tell
        }
        try {
            Posix.close(Integer.parseInt(fdStr));
        } catch (NumberFormatException ignored) { }
    }

    /** Detaches the daemon from the terminal and the launcher's pipes once the mount is ready. */
    static void detachStdio(String logFile) {
        String target = logFile != null ? logFile : "/dev/null";
        int fd = Posix.openat(Posix.AT_FDCWD, target, Posix.O_WRONLY | Posix.O_CREAT | Posix.O_APPEND, 0600);
        int in = Posix.openat(Posix.AT_FDCWD, "/dev/null", Posix.O_RDONLY, 0);
        if (in >= 0) { Posix.dup2(in, 0); Posix.close(in); }
        if (fd >= 0) {
            Posix.dup2(fd, 1);
            Posix.dup2(fd, 2);
            Posix.close(fd);
        }
    }
}
