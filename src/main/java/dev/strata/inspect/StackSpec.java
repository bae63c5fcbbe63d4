package dev.strata.inspect;

import dev.strata.posix.Names;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Which directories make a stack: lower layers top first, and an optional upper. Built from the
 * command line ({@code --lowerdir A:B --upperdir U}), from overlay mount options
 * ({@code lowerdir=A:B,upperdir=U,workdir=W}), or from a running mount's record ({@link MountInfo}).
 * An imported image is another source: it only needs to list its layer directories top first
 * ({@link #ofLayers}).
 *
 * <p>As in overlay mount options, a backslash escapes the next character, so {@code \:} and
 * {@code \,} put a colon or a comma in a directory name.
 */
public record StackSpec(List<Path> lowerdirs, Path upperdir) {

    public StackSpec {
        lowerdirs = List.copyOf(lowerdirs);
        if (lowerdirs.isEmpty()) throw new InspectException("no lower layer given (--lowerdir A[:B...])");
    }

    /** The stack described by layer directories, top first (e.g. an image's layers, newest first). */
    public static StackSpec ofLayers(List<Path> topFirst, Path upperdir) { return new StackSpec(topFirst, upperdir); }

    /** Parses {@code --lowerdir} (colon separated, top first) and an optional {@code --upperdir}. */
    public static StackSpec parse(String lowerdir, String upperdir) {
        if (lowerdir == null || lowerdir.isEmpty()) throw new InspectException("no lower layer given (--lowerdir A[:B...])");
        if (lowerdir.contains("::")) {
            throw new InspectException("data-only lower layers (\"::\" in lowerdir) are not supported");
        }
        List<Path> lowers = new ArrayList<>();
        for (String part : split(lowerdir, ':')) {
            String p = unescape(part);
            if (p.isEmpty()) throw new InspectException("empty layer in lowerdir \"" + Names.display(lowerdir) + "\"");
            lowers.add(Path.of(p));
        }
        Path upper = upperdir == null || upperdir.isEmpty() ? null : Path.of(upperdir);
        return new StackSpec(lowers, upper);
    }

    /**
     * Parses overlay-style mount options: lowerdir, upperdir (workdir and every other option are
     * accepted and ignored, so a mount's whole option string can be pasted).
     */
    public static StackSpec parseMountOptions(String options) {
        String lower = null, upper = null;
        for (String opt : split(options, ',')) {
            int eq = opt.indexOf('=');
            String key = eq < 0 ? opt : opt.substring(0, eq);
            String value = eq < 0 ? "" : opt.substring(eq + 1);
            if (key.equals("lowerdir")) lower = value;
            else if (key.equals("upperdir")) upper = unescape(value);
            else if (key.equals("lowerdir+") || key.equals("datadir+")) {
                throw new InspectException("option " + key + " is not supported here; use lowerdir=A:B");
            }
        }
        if (lower == null) throw new InspectException("no lowerdir= in options \"" + Names.display(options) + "\"");
        return parse(lower, upper);
    }

    /** Splits on sep where it is not escaped by a backslash; escapes are kept for a later unescape. */
    static List<String> split(String s, char sep) {
        List<String> out = new ArrayList<>();
        StringBuilder cur = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\' && i + 1 < s.length()) { cur.append(c).append(s.charAt(++i)); continue; }
            if (c == sep) { out.add(cur.toString()); cur.setLength(0); continue; }
            cur.append(c);
        }
        out.add(cur.toString());
        return out;
    }

    static String unescape(String s) {
        if (s.indexOf('\\') < 0) return s;
        StringBuilder sb = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\' && i + 1 < s.length()) c = s.charAt(++i);
            sb.append(c);
        }
        return sb.toString();
    }
}
