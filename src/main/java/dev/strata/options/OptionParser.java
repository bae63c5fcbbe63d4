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
            "norelatime", "async", "sync", "auto", "noauto", "user", "nouser",
            "users", "_netdev", "nofail", "defaults", "lazytime", "nolazytime", "silent", "loud",
            "splice_read", "splice_write", "splice_move", "big_writes", "kernel_cache", "auto_cache",
            "use_ino", "hard_remove", "noxattrs", "plugins", "threaded");

    /** Every option strata knows (for "did you mean"). */
    static final List<String> KNOWN = List.of(
            "lowerdir", "lowerdir+", "datadir+", "verity", "upperdir", "workdir", "fsync", "volatile", "timeout", "attr_timeout", "static_nlink",
            "redirect_dir", "index", "metacopy", "userxattr", "noacl", "xattr_permissions", "uidmapping", "gidmapping", "squash_to_root", "squash_to_uid",
            "squash_to_gid", "context", "trace", "debug", "passthrough", "writeback", "transport", "fsname", "subtype",
            "xino", "uuid", "nfs_export", "suid", "nosuid", "dev", "nodev", "exec", "noexec", "noatime", "relatime", "strictatime", "atime",
            "nodiratime", "diratime", "allow_other", "allow_root", "ro", "rw");

    public static MountOptions parse(List<String> optionStrings, Path cwd) {
        MountOptions.Builder b = new MountOptions.Builder();
        List<String> lost = new ArrayList<>(); // upperdir/workdir given under a misspelt name
        for (String s : optionStrings) {
            for (String opt : split(s)) apply(b, opt, cwd, lost);
        }
        nfsExportRules(b);
        metacopyRules(b);
        // the kernel's ovl_fs_params_verify: userxattr means redirect_dir=nofollow (redirects are
        // trusted.* information an unprivileged mounter could forge in user.*); another mode given with
        // it is refused, with the kernel's message ("off" is "follow" here, as on this kernel)
        if (b.userXattr) {
            if (b.redirectDirGiven && !"nofollow".equals(b.redirectDir)) {
                throw new IllegalArgumentException("conflicting options: userxattr,redirect_dir=" + b.redirectDir);
            }
            b.redirectDir = "nofollow";
        }
        if (b.lowerDirs.isEmpty() && !b.dataDirs.isEmpty()) {
            throw new IllegalArgumentException("at least one non-data lowerdir is required"); // the kernel's words
        }
        if (b.lowerDirs.isEmpty()) {
            throw new IllegalArgumentException("no lowerdir given (-o lowerdir=DIR[:DIR...])"
                    + (lost.isEmpty() ? "" : ": " + lost.get(0)));
        }
        if ((b.upperDir == null) != (b.workDir == null)) {
            String why = b.upperDir == null ? "workdir given without upperdir" : "upperdir given without workdir";
            throw new IllegalArgumentException(lost.isEmpty() ? why : why + " (" + lost.get(0) + ")");
        }
        if (b.upperDir == null && !lost.isEmpty()) {
            b.warnings.add("mounted read-only (no upperdir): " + String.join("; ", lost));
        }
        return b.build();
    }

    /**
     * The kernel's rules for metacopy (ovl_fs_params_verify): metacopy=on needs redirect_dir=on and
     * turns it on when redirect_dir is not given; given with another redirect_dir, or with userxattr
     * (which the kernel mounts with redirect_dir=nofollow), it is refused as "conflicting options".
     */
    /**
     * nfs_export=on as the kernel's ovl_fs_params_verify refuses it (given with index=off or metacopy=on);
     * otherwise it falls back to off with a warning: strata has no NFS export (a FUSE mount's node ids
     * do not outlive it), as the kernel falls back where it cannot have one.
     */
    static void nfsExportRules(MountOptions.Builder b) {
        if (!b.nfsExport) return;
        String fallback = "nfs_export=on is not supported (a FUSE mount's node ids do not outlive it): falling back to nfs_export=off";
        // no upper and redirects followed: the kernel falls back before it looks at index or metacopy
        if (b.upperDir == null && !"nofollow".equals(b.redirectDir)) { b.warnings.add(fallback); return; }
        if (b.indexGiven && !b.index) throw new IllegalArgumentException("conflicting options: nfs_export=on,index=off");
        if (b.metacopy) throw new IllegalArgumentException("conflicting options: nfs_export=on,metacopy=on");
        b.warnings.add(fallback);
    }

    static void metacopyRules(MountOptions.Builder b) {
        if (!b.metacopy) return;
        if (!b.redirectDirGiven) b.redirectDir = "on";
        else if (!b.redirectDir.equals("on")) throw new IllegalArgumentException("conflicting options: metacopy=on,redirect_dir=" + b.redirectDir);
        if (b.userXattr) throw new IllegalArgumentException("conflicting options: userxattr,metacopy=on");
    }

    /** The known option nearest to {@code key} (at most 2 edits away), or null. */
    static String nearest(String key) {
        String best = null;
        int bestD = 3;
        for (String k : KNOWN) {
            int d = distance(key, k);
            if (d < bestD) { bestD = d; best = k; }
        }
        return best != null && bestD <= (key.length() <= 4 ? 1 : 2) ? best : null;
    }

    /** Edit distance with adjacent transpositions (optimal string alignment). */
    public static int distance(String a, String b) {
        int[][] d = new int[a.length() + 1][b.length() + 1];
        for (int i = 0; i <= a.length(); i++) d[i][0] = i;
        for (int j = 0; j <= b.length(); j++) d[0][j] = j;
        for (int i = 1; i <= a.length(); i++) {
            for (int j = 1; j <= b.length(); j++) {
                int c = a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1;
                d[i][j] = Math.min(Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1), d[i - 1][j - 1] + c);
                if (i > 1 && j > 1 && a.charAt(i - 1) == b.charAt(j - 2) && a.charAt(i - 2) == b.charAt(j - 1)) {
                    d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
                }
            }
        }
        return d[a.length()][b.length()];
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

    private static void apply(MountOptions.Builder b, String opt, Path cwd, List<String> lost) {
        if (opt.isEmpty()) return; // podman passes ",," and trailing commas
        int eq = opt.indexOf('=');
        String key = eq < 0 ? opt : opt.substring(0, eq);
        String val = eq < 0 ? null : opt.substring(eq + 1);
        switch (key) {
            case "lowerdir": {
                String v = need(key, val);
                if (b.lowerdirGiven) b.warnings.add("lowerdir given more than once: the last one (" + val + ") is used");
                // as the kernel: lowerdir= replaces every lower layer given before, lowerdir+= ones too
                List<List<String>> split = splitLowerdir(v);
                b.lowerDirs.clear();
                b.dataDirs.clear();
                for (String p : split.get(0)) b.lowerDirs.add(path(cwd, p));
                for (String p : split.get(1)) b.dataDirs.add(path(cwd, p));
                b.lowerdirGiven = true;
                break;
            }
            case "lowerdir+":
            case "datadir+": {
                // the new mount API's spellings (Linux 6.8+), one layer each, in order; the kernel
                // takes the path as it is (no \: unescaping) and refuses these after lowerdir=
                String v = need(key, val);
                if (b.lowerdirGiven) throw new IllegalArgumentException("lowerdir+ and datadir+ cannot follow lowerdir");
                if (key.equals("lowerdir+")) {
                    if (!b.dataDirs.isEmpty()) throw new IllegalArgumentException("regular lower layers cannot follow data layers");
                    b.lowerDirs.add(path(cwd, v));
                } else {
                    b.dataDirs.add(path(cwd, v));
                }
                break;
            }
            case "verity": {
                String v = need(key, val);
                if (!v.equals("off") && !v.equals("on") && !v.equals("require")) {
                    throw new IllegalArgumentException("verity must be off, on or require");
                }
                b.verity = v;
                break;
            }
            case "upperdir": b.upperDir = path(cwd, unescape(need(key, val))); break;
            case "workdir": b.workDir = path(cwd, unescape(need(key, val))); break;
            case "fsync": {
                // fuse-overlayfs's fsync=0|1 and the kernel's fsync=auto|strict|volatile (6.12+)
                String v = need(key, val);
                switch (v) {
                    case "0": b.fsync = false; break;
                    case "1": case "auto": b.fsync = true; b.fsyncStrict = false; break;
                    case "strict": b.fsync = true; b.fsyncStrict = true; break;
                    case "volatile": b.volatileMode = true; break;
                    default: throw new IllegalArgumentException("fsync must be auto, strict or volatile (or fuse-overlayfs's 0 or 1)");
                }
                break;
            }
            case "volatile": b.volatileMode = true; break;
            case "timeout": b.timeoutSeconds = number(key, need(key, val)); break;
            case "attr_timeout": b.attrTimeoutSeconds = number(key, need(key, val)); break;
            case "static_nlink": b.staticNlink = true; break;
            case "redirect_dir": {
                String v = need(key, val);
                if (!v.equals("on") && !v.equals("follow") && !v.equals("nofollow") && !v.equals("off")) {
                    throw new IllegalArgumentException("redirect_dir must be on, follow, nofollow or off");
                }
                b.redirectDir = v.equals("off") ? "follow" : v;
                b.redirectDirGiven = true;
                break;
            }
            case "userxattr": b.userXattr = true; break;
            case "xino": {
                String v = need(key, val);
                if (!v.equals("on") && !v.equals("off") && !v.equals("auto")) throw new IllegalArgumentException("xino must be on, off or auto");
                b.xino = v;
                break;
            }
            case "nfs_export": {
                // the kernel's bool parameter; strata has no NFS export (node ids do not outlive a mount),
                // so =on falls back to off with a warning, as the kernel does where the index cannot be used
                String v = val == null ? "on" : val;
                if (!v.equals("on") && !v.equals("off")) throw new IllegalArgumentException("nfs_export must be on or off");
                b.nfsExport = v.equals("on");
                break;
            }
            case "uuid": {
                // checked as the kernel checks it; a FUSE mount's statfs f_fsid is 0 whatever it says (README)
                String v = need(key, val);
                if (!v.equals("on") && !v.equals("off") && !v.equals("null") && !v.equals("auto")) {
                    throw new IllegalArgumentException("uuid must be on, off, null or auto");
                }
                b.uuid = v;
                break;
            }
            case "metacopy": {
                String v = need(key, val);
                if (!v.equals("on") && !v.equals("off")) throw new IllegalArgumentException("metacopy must be on or off");
                b.metacopy = v.equals("on");
                break;
            }
            case "noacl": b.noAcl = true; break;
            case "index": {
                String v = need(key, val);
                if (!v.equals("on") && !v.equals("off")) throw new IllegalArgumentException("index must be on or off");
                b.index = v.equals("on");
                b.indexGiven = true;
                break;
            }
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
            case "suid": b.suid = true; break;
            case "nosuid": b.suid = false; break;
            case "dev": b.dev = true; break;
            case "nodev": b.dev = false; break;
            case "exec": b.exec = true; break;
            case "noexec": b.exec = false; break;
            case "atime": case "relatime": b.atime = MountOptions.Atime.RELATIME; break; // mount(8): atime = the default, relatime
            case "noatime": b.atime = MountOptions.Atime.NOATIME; break;
            case "strictatime": b.atime = MountOptions.Atime.STRICTATIME; break;
            case "nodiratime": b.nodiratime = true; break;
            case "diratime": b.nodiratime = false; break;
            case "fsname": b.fsname = unescape(need(key, val)); break;
            case "subtype": b.subtype = need(key, val); break;
            case "passthrough": b.passthrough = !"0".equals(need(key, val)); break;
            case "writeback": {
                // strata's on/off/auto, and fuse-overlayfs's writeback=1/0
                String v = need(key, val);
                switch (v) {
                    case "on": case "1": b.writeback = "on"; break;
                    case "off": case "0": b.writeback = "off"; break;
                    case "auto": b.writeback = "auto"; break;
                    default: throw new IllegalArgumentException("writeback must be on, off or auto (or 1, 0)");
                }
                break;
            }
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
                else if (!IGNORED.contains(key) && !key.startsWith("x-")) {
                    String near = nearest(key);
                    b.warnings.add("unknown option '" + opt + "' ignored" + (near == null ? "" : " (did you mean " + near + "?)"));
                    if ("upperdir".equals(near) || "workdir".equals(near)) {
                        lost.add("'" + key + "' is not an option (did you mean " + near + "?)");
                    }
                }
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

    /**
     * lowerdir value -> {regular layers, data-only layers}, as the kernel splits it
     * (ovl_parse_param_split_lowerdirs): ':' separates layers, "::" puts the next layer (and every one
     * after it) among the data-only layers, "\:" is a colon and "\\" a backslash; three colons, a
     * trailing colon, a leading one and a regular layer after a data-only one are refused with the
     * kernel's message.
     */
    static List<List<String>> splitLowerdir(String v) {
        if (v.charAt(0) == ':') throw new IllegalArgumentException("cannot append lower layer");
        List<String> regular = new ArrayList<>(), data = new ArrayList<>();
        StringBuilder cur = new StringBuilder();
        boolean dataNext = false;
        int i = 0, n = v.length();
        while (i < n) {
            char c = v.charAt(i);
            if (c == '\\' && i + 1 < n) { cur.append(v.charAt(i + 1)); i += 2; continue; }
            if (c != ':') { cur.append(c); i++; continue; }
            int colons = 0;
            while (i < n && v.charAt(i) == ':') { colons++; i++; }
            if (colons > 2) {
                throw new IllegalArgumentException("only single ':' or double '::' sequences of unescaped colons in lowerdir mount option allowed");
            }
            if (i == n) throw new IllegalArgumentException("unescaped trailing colons in lowerdir mount option");
            (dataNext ? data : regular).add(cur.toString());
            cur.setLength(0);
            if (colons == 1 && dataNext) throw new IllegalArgumentException("regular lower layers cannot follow data lower layers");
            dataNext = colons == 2;
        }
        (dataNext ? data : regular).add(cur.toString());
        return List.of(regular, data);
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
