package dev.strata.inspect;

import dev.strata.posix.Names;

import java.nio.file.Path;
import java.util.List;

/**
 * The record a running strata mount leaves in the {@link MountRegistry}: where it is mounted, its
 * layers (lowers top first), and the daemon's pid. {@code upperdir} and {@code workdir} are null for a
 * read-only mount. {@code startTime} is the daemon's start time in clock ticks since boot (field 22 of
 * /proc/PID/stat), so a reused pid is not mistaken for the mount; 0 when unknown.
 */
public record MountInfo(Path mountpoint, List<Path> lowerdirs, Path upperdir, Path workdir, long pid, long startTime) {

    public MountInfo {
        lowerdirs = List.copyOf(lowerdirs);
    }

    /** This process's pid and start time, read once (a shared daemon records a mount per container). */
    private static final class Self {
        static final long PID = ProcessHandle.current().pid();
        static final long START_TIME = MountRegistry.startTime(PID);
    }

    /** A record for this process (the mount daemon calls this), with its pid and start time. */
    public static MountInfo ofThisProcess(Path mountpoint, List<Path> lowerdirs, Path upperdir, Path workdir) {
        return new MountInfo(abs(mountpoint), lowerdirs.stream().map(MountInfo::abs).toList(),
                upperdir == null ? null : abs(upperdir), workdir == null ? null : abs(workdir), Self.PID,
                Self.START_TIME);
    }

    /** The layers of the mount as a stack. */
    public StackSpec stack() { return new StackSpec(lowerdirs, upperdir); }

    /** An absolute, normalized path; a relative one is taken from the working directory (as a byte string). */
    static Path abs(Path p) {
        if (p.isAbsolute()) return p.normalize();
        return Path.of(Names.toNative(System.getProperty("user.dir"))).resolve(p).normalize();
    }
}
