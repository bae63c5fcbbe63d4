package dev.strata.cli;

import dev.strata.fuse.FuseMount;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.concurrent.Callable;

/** {@code strata umount MOUNTPOINT}: unmounts a strata mount (the daemon then exits). */
@Command(name = "umount", aliases = "unmount", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = "Unmount a strata mount.")
public final class UmountCommand implements Callable<Integer> {
    @Option(names = {"-z", "--lazy"}, description = "detach now even if busy (lazy unmount)")
    boolean lazy;

    @Parameters(paramLabel = "MOUNTPOINT")
    String mountpoint;

    @Override public Integer call() throws Exception {
        Path m = Paths.get(mountpoint).toAbsolutePath().normalize();
        if (!isFuseMount(m)) {
            dev.strata.posix.Stat st = new dev.strata.posix.Stat();
            int r = dev.strata.posix.Posix.fstatat(dev.strata.posix.Posix.AT_FDCWD, dev.strata.posix.Names.toNative(m.toString()), st,
                    dev.strata.posix.Posix.AT_SYMLINK_NOFOLLOW);
            if (r == -dev.strata.posix.Errno.ENOENT) throw new UserError(m + " does not exist");
            throw new UserError(m + " is not a FUSE mount");
        }
        String err = FuseMount.unmount(m, lazy);
        if (err != null) throw new UserError("cannot unmount " + m + ": " + err);
        return 0;
    }

    static boolean isFuseMount(Path m) {
        return fuseType(m) != null;
    }

    /** The type of the topmost FUSE mount at {@code m} in /proc/self/mounts ("fuse.strata"...), or null. */
    static String fuseType(Path m) {
        String type = null;
        try {
            for (String line : Files.readAllLines(Paths.get("/proc/self/mounts"), java.nio.charset.StandardCharsets.ISO_8859_1)) {
                String[] f = line.split(" ");
                if (f.length > 2 && unescape(f[1]).equals(dev.strata.posix.Names.toNative(m.toString()))) {
                    type = f[2].startsWith("fuse") ? f[2] : null; // the last line is the mount on top
                }
            }
        } catch (java.io.IOException e) {
            return null;
        }
        return type;
    }

    private static String unescape(String s) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\' && i + 3 < s.length()) {
                b.append((char) Integer.parseInt(s.substring(i + 1, i + 4), 8));
                i += 3;
            } else b.append(c);
        }
        return b.toString();
    }
}
