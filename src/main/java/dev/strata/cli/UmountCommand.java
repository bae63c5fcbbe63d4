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
        if (!isFuseMount(m)) throw new UserError(m + " is not a FUSE mount");
        String err = FuseMount.unmount(m, lazy);
        if (err != null) throw new UserError("cannot unmount " + m + ": " + err);
        return 0;
    }

    static boolean isFuseMount(Path m) throws java.io.IOException {
        for (String line : Files.readAllLines(Paths.get("/proc/self/mounts"), java.nio.charset.StandardCharsets.ISO_8859_1)) {
            String[] f = line.split(" ");
            if (f.length > 2 && unescape(f[1]).equals(dev.strata.posix.Names.toNative(m.toString())) && f[2].startsWith("fuse")) return true;
        }
        return false;
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
