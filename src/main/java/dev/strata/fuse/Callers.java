package dev.strata.fuse;

import dev.strata.posix.Posix;
import dev.strata.posix.Stat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * What the daemon knows of the process behind a request beyond the uid and gid the request carries:
 * its capabilities, for the checks the kernel leaves to a FUSE server (the owner-or-CAP_FOWNER check of
 * the 32-bit flag ioctl and of chown(f, -1, -1), CAP_SYS_ADMIN for listing trusted.* xattrs,
 * CAP_LINUX_IMMUTABLE for changing the append-only and immutable flags).
 *
 * <p>The rule: a caller has a capability when its effective set (/proc/PID/status, CapEff) holds it
 * and it lives in the daemon's own user namespace, which is the mount's (the kernel's
 * {@code ns_capable(fc->user_ns, cap)} for a process of that namespace). A capability held only inside
 * a child user namespace (a container's root in a user namespace of its own) does not count. A caller
 * that is gone before the daemon looks counts as capable only with uid 0 in the request.
 */
public final class Callers {
    public static final int CAP_FOWNER = 3, CAP_FSETID = 4, CAP_LINUX_IMMUTABLE = 9, CAP_SYS_ADMIN = 21;

    private Callers() {}

    /** Whether process pid (request uid) has capability cap by the rule above. */
    public static boolean capable(int pid, int uid, int cap) {
        List<String> lines;
        try {
            lines = Files.readAllLines(Path.of("/proc/" + pid + "/status"), StandardCharsets.ISO_8859_1);
        } catch (IOException | RuntimeException e) {
            return uid == 0;
        }
        boolean has = false;
        for (String l : lines) {
            if (l.startsWith("CapEff:")) {
                try {
                    has = (Long.parseUnsignedLong(l.substring(7).trim(), 16) & (1L << cap)) != 0;
                } catch (NumberFormatException e) {
                    return false;
                }
                break;
            }
        }
        return has && sameUserNamespace(pid);
    }

    /**
     * Whether process pid (fsuid and fsgid as in the request) is in group gid (its fsgid, or a
     * supplementary group) or, if asked, has CAP_FSETID in its effective set (this check reads the bit
     * alone, without the user-namespace rule above); read from /proc/PID/status, in one pass. A caller
     * that is gone counts as capable only with uid 0 (and asked). For the VFS's
     * setattr_should_drop_sgid: only consulted for a set-group-ID file without group-execute.
     */
    public static boolean inGroupOrCapable(int pid, int fsuid, int fsgid, int gid, boolean orCapable) {
        if (fsgid == gid) return true;
        List<String> lines;
        try {
            lines = Files.readAllLines(Path.of("/proc/" + pid + "/status"), StandardCharsets.ISO_8859_1);
        } catch (IOException | RuntimeException e) {
            return orCapable && fsuid == 0; // the caller is gone: its fsgid is all there is
        }
        for (String l : lines) {
            if (l.startsWith("Groups:")) {
                for (String g : l.substring(7).trim().split("\\s+")) {
                    if (!g.isEmpty() && Integer.parseUnsignedInt(g) == gid) return true;
                }
            } else if (orCapable && l.startsWith("CapEff:")) {
                if ((Long.parseUnsignedLong(l.substring(7).trim(), 16) & (1L << CAP_FSETID)) != 0) return true;
            }
        }
        return false;
    }

    private static boolean sameUserNamespace(int pid) {
        Stat mine = new Stat(), theirs = new Stat();
        if (Posix.fstatat(Posix.AT_FDCWD, "/proc/self/ns/user", mine, 0) < 0) return false;
        if (Posix.fstatat(Posix.AT_FDCWD, "/proc/" + pid + "/ns/user", theirs, 0) < 0) return false;
        return mine.ino() == theirs.ino() && mine.dev() == theirs.dev();
    }
}
