package dev.strata.inspect;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Kernel overlayfs mounts (e.g. those of docker or podman), read from /proc/self/mountinfo, so
 * {@code strata explain} also works on a path inside one: the kernel shows each mount's lowerdir and
 * upperdir among its options.
 */
public final class KernelMounts {
    private KernelMounts() {}

    /**
     * The kernel overlay mount containing the path (a byte string), and the path inside its view; empty
     * if the innermost mount containing the path is not an overlay.
     */
    public static Optional<MountRegistry.Located> locate(Path path) {
        List<Mount> mounts;
        try {
            mounts = parse(new String(Files.readAllBytes(Path.of("/proc/self/mountinfo")), StandardCharsets.ISO_8859_1));
        } catch (IOException e) {
            return Optional.empty();
        }
        return locate(mounts, path);
    }

    static Optional<MountRegistry.Located> locate(List<Mount> mounts, Path path) {
        Path abs = MountInfo.abs(path);
        Mount best = null;
        for (Mount m : mounts) {
            // later lines are later mounts: one mounted over another at the same place wins
            if (abs.startsWith(m.mountpoint())
                    && (best == null || m.mountpoint().getNameCount() >= best.mountpoint().getNameCount())) {
                best = m;
            }
        }
        if (best == null || best.stack() == null) return Optional.empty();
        String inside = best.mountpoint().relativize(abs).toString();
        String root = best.root().equals("/") ? "" : best.root().substring(1);
        String rel = root.isEmpty() ? inside : inside.isEmpty() ? root : root + "/" + inside;
        MountInfo info = new MountInfo(best.mountpoint(), best.stack().lowerdirs(), best.stack().upperdir(), null, 0, 0);
        return Optional.of(new MountRegistry.Located(info, rel));
    }

    /** A mount: where, which directory of its filesystem it shows, its type, and for an overlay its layers. */
    record Mount(Path mountpoint, String root, String type, StackSpec stack) {}

    /** The mounts of a mountinfo text, in order (later lines are later mounts). */
    static List<Mount> parse(String mountinfo) {
        List<Mount> out = new ArrayList<>();
        for (String line : mountinfo.split("\n")) {
            String[] f = line.split(" ");
            int dash = -1;
            for (int i = 6; i < f.length; i++) if (f[i].equals("-")) { dash = i; break; }
            if (dash < 0 || dash + 3 >= f.length) continue;
            String type = f[dash + 1];
            StackSpec stack = type.equals("overlay") ? overlayLayers(f[dash + 3]) : null;
            out.add(new Mount(Path.of(unescape(f[4])), unescape(f[3]), type, stack));
        }
        return out;
    }

    /** The layers in an overlay's super options; null if there is no lower layer. */
    private static StackSpec overlayLayers(String superOptions) {
        List<Path> lowers = new ArrayList<>();
        String upper = null;
        boolean dataOnly = false;
        for (String opt : superOptions.split(",")) {
            if (opt.startsWith("lowerdir=")) {
                for (String l : opt.substring("lowerdir=".length()).split(":", -1)) {
                    if (l.isEmpty()) { dataOnly = true; continue; } // "::": data-only layers follow, never looked up
                    if (!dataOnly) lowers.add(Path.of(unescape(l)));
                }
            } else if (opt.startsWith("lowerdir+=")) {
                lowers.add(Path.of(unescape(opt.substring("lowerdir+=".length()))));
            } else if (opt.startsWith("upperdir=")) {
                upper = unescape(opt.substring("upperdir=".length()));
            }
        }
        if (lowers.isEmpty()) return null;
        return new StackSpec(lowers, upper == null ? null : Path.of(upper));
    }

    /** Undoes the kernel's octal escapes (\040 for a space, \134 for a backslash...). */
    static String unescape(String s) {
        if (s.indexOf('\\') < 0) return s;
        StringBuilder sb = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\' && isOctal(s, i + 1)) {
                sb.append((char) Integer.parseInt(s.substring(i + 1, i + 4), 8));
                i += 3;
            } else {
                sb.append(c);
            }
        }
        return sb.toString();
    }

    private static boolean isOctal(String s, int from) {
        if (from + 3 > s.length()) return false;
        for (int k = from; k < from + 3; k++) if (s.charAt(k) < '0' || s.charAt(k) > '7') return false;
        return true;
    }
}
