package dev.strata.posix;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * What this process may do in the initial user namespace, where the kernel asks {@code capable(CAP)}
 * of a mounter (FUSE passthrough's backing files, overlayfs's decoding of file handles): its user
 * namespace maps every id to itself ("0 0 4294967295" on one line of /proc/self/uid_map: the initial
 * one; a container's or rootless podman's does not) and the capability is in its effective set (CapEff
 * of /proc/self/status). Both files are read once per process: its namespaces and capabilities do not
 * change, and a shared daemon asks at every mount.
 */
public final class SelfCapabilities {
    private SelfCapabilities() {}

    public static final int CAP_DAC_READ_SEARCH = 2, CAP_SYS_ADMIN = 21;

    private static final class Read {
        static final String UID_MAP = read("/proc/self/uid_map");
        static final String STATUS = read("/proc/self/status");

        private static String read(String path) {
            try {
                return new String(Files.readAllBytes(Path.of(path)), StandardCharsets.ISO_8859_1);
            } catch (IOException | RuntimeException e) {
                return null;
            }
        }
    }

    /**
     * Whether this process has capability {@code cap} in the initial user namespace; {@code ifUnknown}
     * where it cannot tell (a file unreadable, a status without CapEff).
     */
    public static boolean initialNamespaceHas(int cap, boolean ifUnknown) {
        if (Read.UID_MAP == null || Read.STATUS == null) return ifUnknown;
        return initialNamespaceHas(Read.UID_MAP, Read.STATUS, cap, ifUnknown);
    }

    /** The same from the texts of /proc/self/uid_map and /proc/self/status (tests). */
    public static boolean initialNamespaceHas(String uidMap, String status, int cap, boolean ifUnknown) {
        try {
            String[] map = uidMap.trim().split("\\s+");
            if (map.length != 3 || !map[0].equals("0") || !map[1].equals("0") || !map[2].equals("4294967295")) return false;
            for (String line : status.split("\n")) {
                if (line.startsWith("CapEff:")) return (Long.parseUnsignedLong(line.substring(7).trim(), 16) & (1L << cap)) != 0;
            }
            return ifUnknown;
        } catch (RuntimeException e) {
            return ifUnknown;
        }
    }
}
