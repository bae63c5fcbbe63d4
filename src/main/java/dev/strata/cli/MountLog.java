package dev.strata.cli;

import dev.strata.posix.Posix;
import dev.strata.posix.Stat;

import java.io.FileOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * The error log of one mount served by the shared daemon ({@code --log FILE}): what the mount's
 * threads print goes there (dev.strata.daemon.Server#logTo), not to the daemon's own stderr, so each
 * mount's log holds its own lines as with a process per mount. The daemon runs as the caller's euid
 * (it serves no other), and the file must be that user's own: a file of another user (or a symlink)
 * is not opened here, the request then goes to a process of its own, which opens it as the caller.
 */
final class MountLog {
    private MountLog() {}

    /** Opens (appends to, creates 0600) {@code file} relative to {@code cwd}; Refused when the daemon must not. */
    static PrintStream open(String file, Path cwd) {
        Path p = cwd != null ? cwd.resolve(file) : Path.of(file);
        int fd = Posix.openat(Posix.AT_FDCWD, p.toString(),
                Posix.O_WRONLY | Posix.O_CREAT | Posix.O_APPEND | Posix.O_NOFOLLOW | Posix.O_NOCTTY, 0600);
        if (fd < 0) throw new SharedMounts.Refused("--log " + file + ": cannot open it here (errno " + -fd + ")");
        try {
            Stat st = new Stat();
            if (Posix.fstat(fd, st) < 0 || st.uid() != Posix.geteuid() || (st.mode() & 0170000) != 0100000) {
                throw new SharedMounts.Refused("--log " + file + ": not a regular file of this user");
            }
            // the same open file, as a Java stream (the descriptor itself is closed below)
            return new PrintStream(new FileOutputStream("/proc/self/fd/" + fd, true), true, StandardCharsets.ISO_8859_1);
        } catch (IOException e) {
            throw new SharedMounts.Refused("--log " + file + ": " + e.getMessage());
        } finally {
            Posix.close(fd);
        }
    }
}
