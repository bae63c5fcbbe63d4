package dev.strata.options;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Parses fuse-overlayfs style mount options ({@code -o lowerdir=A:B,upperdir=U,workdir=W,...}).
 * Commas split options except inside double quotes or after a backslash; in lowerdir, ':' separates
 * layers and {@code \:} is a literal colon. Relative paths are resolved against {@code cwd} (podman
 * passes {@code lowerdir=l/XXXX:l/YYYY} relative to its overlay directory). Unknown options are
 * collected as warnings and ignored, as fuse-overlayfs does. Malformed values throw
 * {@link IllegalArgumentException} with a one-line message.
 */
public final class OptionParser {
    private OptionParser() {}

    /** Generic FUSE/mount options handed to libfuse or the kernel as they are. */
    private static final Set<String> PASS_THROUGH = Set.of(
            "allow_other", "allow_root", "default_permissions", "ro", "rw");
    /** Generic mount flags that mount(8)/mount.fuse may add; accepted and ignored (FUSE mounts honour them via the kernel). */
    private static final Set<String> IGNORED = Set.of(
            "dev", "nodev", "suid", "nosuid", "exec", "noexec", "atime", "noatime", "relatime", "norelatime",
            "strictatime", "diratime", "nodiratime", "async", "sync", "auto", "noauto", "user", "nouser",
            "users", "_netdev", "nofail", "defaults", "lazytime", "nolazytime", "silent", "loud",
            "splice_read", "splice_write", "splice_move", "big_writes", "kernel_cache", "auto_cache",
            "use_ino", "hard_remove", "writeback", "noxattrs", "plugins", "threaded", "redirect_dir", "index",
            "metacopy", "xino", "userxattr", "nfs_export", "uuid");

    public static MountOptions parse(List<String> optionStrings, Path cwd) {
        MountOptions.Builder b = new MountOptions.Builder();
        for (String s : optionStrings) {
            for (String opt : split(s)) apply(b, opt, cwd);
        }
        if (b.lowerDirs.isEmpty()) {
            throw new IllegalArgumentException("no lowerdir given (-o lowerdir=DIR[:DIR...])");
        }
        if ((b.upperDir == null) != (b.workDir == null)) {
            throw new IllegalArgumentException(b.upperDir == null
                    ? "workdir given without upperdir" : "upperdir given without workdir");
        }
        return b.build();
    }

    /** Splits one -o argument on commas outside quotes and not escaped with a backslash. */
    static List<String> split(String s) {
        List<String> out = new ArrayList<>();
        StringBuilder cur = new StringBuilder();
        boolean quoted = false;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\' && i + 1 < s.length()) {
                cur.append(c).append(s.charAt(++i));
            } else if (c == '"') {
                quoted = !quoted;
                cur.append(c);
            } else if (c == ',' && !quoted) {
                out.add(cur.toString());
                cur.setLength(0);
            } else {
                cur.append(c);
            }
        }
        out.add(cur.toString());
        return out;
    }

    private static void apply(MountOptions.Builder b, String opt, Path cwd) {
        if (opt.isEmpty()) return; // podman passes ",," and trailing commas
        int eq = opt.indexOf('=');
        String key = eq < 0 ? opt : opt.substring(0, eq);
        String val = eq < 0 ? null : opt.substring(eq + 1);
        switch (key) {
            case "lowerdir":
                b.lowerDirs.clear();
                for (String p : splitLayers(need(key, val))) b.lowerDirs.add(path(cwd, p));
                break;
            case "upperdir": b.upperDir = path(cwd, unescape(need(key, val))); break;
            case "workdir": b.workDir = path(cwd, unescape(need(key, val))); break;
            case "fsync": b.fsync = !"0".equals(need(key, val)); break;
            case "volatile": b.volatileMode = true; break;
            case "timeout": b.timeoutSeconds = number(key, need(key, val)); break;
            case "attr_timeout": b.attrTimeoutSeconds = number(key, need(key, val)); break;
            case "static_nlink": b.staticNlink = true; break;
            case "noacl": b.noAcl = true; break;
            case "xattr_permissions": {
                int v = (int) number(key, need(key, val));
                if (v < 0 || v > 2) throw new IllegalArgumentException("xattr_permissions must be 0, 1 or 2");
                b.xattrPermissions = v;
                break;
            }
            case "uidmapping": b.uidMapping = mapping(key, need(key, val)); break;
            case "gidmapping": b.gidMapping = mapping(key, need(key, val)); break;
            case "squash_to_root": b.squashUid = 0; b.squashGid = 0; break;
            case "squash_to_uid": b.squashUid = (int) number(key, need(key, val)); break;
            case "squash_to_gid": b.squashGid = (int) number(key, need(key, val)); break;
            case "context": case "fscontext": case "defcontext": case "rootcontext": b.context = val; break;
            case "trace": b.traceFile = val == null ? "-" : val; break;
            case "debug": b.debug = true; break;
            case "passthrough": b.passthrough = !"0".equals(need(key, val)); break;
            case "transport": {
                String t = need(key, val);
                if (!t.equals("auto") && !t.equals("kernel") && !t.equals("libfuse")) {
                    throw new IllegalArgumentException("transport must be auto, kernel or libfuse");
                }
                b.transport = t;
                break;
            }
            case "auto_unmount":
                // libfuse 2 hands auto_unmount to fusermount, whose protocol then hangs the mount; strata
                // unmounts itself on SIGTERM/SIGINT instead
                b.warnings.add("option auto_unmount is not supported with libfuse 2 and is ignored (strata unmounts on SIGTERM)");
                break;
            default:
                if (PASS_THROUGH.contains(key)) b.fuseOptions.add(opt);
                else if (!IGNORED.contains(key) && !key.startsWith("x-")) b.warnings.add("unknown option '" + opt + "' ignored");
        }
    }

    private static String need(String key, String val) {
        if (val == null || val.isEmpty()) throw new IllegalArgumentException("option " + key + " needs a value (" + key + "=...)");
        return val;
    }

    private static double number(String key, String val) {
        try {
            double d = Double.parseDouble(val);
            if (d < 0 || Double.isNaN(d)) throw new NumberFormatException();
            return d;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("option " + key + "=" + val + ": not a number");
        }
    }

    private static IdMapping mapping(String key, String val) {
        try {
            return IdMapping.parse(val);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("option " + key + ": " + e.getMessage());
        }
    }

    /** lowerdir value -> paths; ':' separates, "\:" is a colon, "\\" a backslash. */
    static List<String> splitLayers(String v) {
        List<String> out = new ArrayList<>();
        StringBuilder cur = new StringBuilder();
        for (int i = 0; i < v.length(); i++) {
            char c = v.charAt(i);
            if (c == '\\' && i + 1 < v.length()) cur.append(v.charAt(++i));
            else if (c == ':') { add(out, cur, v); cur.setLength(0); }
            else cur.append(c);
        }
        add(out, cur, v);
        return out;
    }

    private static void add(List<String> out, StringBuilder cur, String all) {
        if (cur.length() == 0) throw new IllegalArgumentException("empty layer in lowerdir=" + all);
        out.add(cur.toString());
    }

    private static String unescape(String v) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < v.length(); i++) {
            char c = v.charAt(i);
            if (c == '\\' && i + 1 < v.length()) sb.append(v.charAt(++i)); else sb.append(c);
        }
        return sb.toString();
    }

    private static Path path(Path cwd, String p) {
        return cwd.resolve(p).normalize();
    }
}
