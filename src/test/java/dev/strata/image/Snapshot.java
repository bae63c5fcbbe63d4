package dev.strata.image;

import dev.strata.layer.Layer;
import dev.strata.layer.Markers;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A layer directory described as "path -> what", read the way the union engine reads it (through
 * dev.strata.layer.Markers): every whiteout form is "whiteout" at the hidden name, every opaque form
 * adds " opaque" to the directory. Names are byte-exact (ISO-8859-1 strings).
 */
final class Snapshot {
    private Snapshot() {}

    static Map<String, String> of(Path dir) {
        return of(dir, false);
    }

    /**
     * Everything a mount shows of each entry: what {@link #of(Path)} says plus the owner, every xattr
     * (name=value, sorted) and the sha256 of a regular file's whole content.
     */
    static Map<String, String> full(Path dir) {
        return of(dir, true);
    }

    private static Map<String, String> of(Path dir, boolean full) {
        Map<String, String> out = new TreeMap<>();
        int[] err = {0};
        Layer layer = Layer.open(dir, 0, false, err);
        if (layer == null) throw new IllegalStateException("cannot open " + dir + ": " + Posix.strerror(err[0]));
        try {
            Pointer buf = Memory.allocateDirect(Posix.RT, 32768);
            walk(layer, dir, "", out, buf, full);
        } finally {
            layer.close();
        }
        return out;
    }

    private static void walk(Layer layer, Path root, String dirRel, Map<String, String> out, Pointer buf, boolean full) {
        int fd = layer.openDir(dirRel, Posix.O_RDONLY);
        if (fd < 0) throw new IllegalStateException("cannot open " + dirRel + ": " + Posix.strerror(fd));
        List<String[]> names;
        try {
            names = Trees.list(fd, buf);
        } finally {
            Posix.close(fd);
        }
        List<String> dirs = new ArrayList<>();
        Stat st = new Stat();
        for (String[] n : names) {
            String name = n[0];
            String rel = Layer.child(dirRel, name);
            if (name.equals(Markers.OPAQUE_FILE)) continue;
            if (name.startsWith(Markers.WH_PREFIX)) {
                out.put(Layer.child(dirRel, name.substring(Markers.WH_PREFIX.length())), "whiteout");
                continue;
            }
            if (layer.lstat(rel, st) != 0) throw new IllegalStateException("lstat " + rel);
            if (Markers.entryWhiteout(layer, rel, st) != null) {
                out.put(rel, "whiteout");
                continue;
            }
            String perm = String.format("%04o", st.perm());
            switch (st.type()) {
                case Posix.S_IFDIR:
                    out.put(rel, "dir " + perm + (Markers.opaque(layer, rel) != null ? " opaque" : ""));
                    dirs.add(rel);
                    break;
                case Posix.S_IFREG:
                    out.put(rel, "file " + perm + " " + content(layer, rel, st) + (st.nlink() > 1 ? " links=" + st.nlink() : ""));
                    break;
                case Posix.S_IFLNK: {
                    int[] e = {0};
                    try (var a = layer.at(rel)) {
                        out.put(rel, "link -> " + Posix.readlinkat(a.dirfd(), a.name(), e));
                    }
                    break;
                }
                case Posix.S_IFIFO: out.put(rel, "fifo " + perm); break;
                case Posix.S_IFCHR: out.put(rel, "chr " + (st.rdev() >> 8 & 0xfff) + "," + (st.rdev() & 0xff) + " " + perm); break;
                case Posix.S_IFBLK: out.put(rel, "blk " + (st.rdev() >> 8 & 0xfff) + "," + (st.rdev() & 0xff) + " " + perm); break;
                default: out.put(rel, "other");
            }
        }
        if (full) {
            for (String[] n : names) {
                String rel = Layer.child(dirRel, n[0]);
                String e = out.get(rel);
                if (e == null || e.equals("whiteout") || layer.lstat(rel, st) != 0) continue;
                out.put(rel, e + " owner=" + st.uid() + ":" + st.gid() + (st.type() == Posix.S_IFREG ? " sha256=" + sha256(layer, rel) : "")
                        + " xattrs=" + xattrs(root + "/" + rel));
            }
        }
        for (String d : dirs) walk(layer, root, d, out, buf, full);
    }

    private static String sha256(Layer layer, String rel) {
        int fd = layer.openat(rel, Posix.O_RDONLY, 0);
        if (fd < 0) return "unreadable(" + Posix.strerror(fd) + ")";
        try {
            java.security.MessageDigest md = java.security.MessageDigest.getInstance("SHA-256");
            Pointer p = Memory.allocateDirect(Posix.RT, 1 << 16);
            byte[] b = new byte[1 << 16];
            long off = 0;
            for (long n; (n = Posix.pread(fd, p, b.length, off)) > 0; off += n) {
                p.get(0, b, 0, (int) n);
                md.update(b, 0, (int) n);
            }
            return java.util.HexFormat.of().formatHex(md.digest());
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        } finally {
            Posix.close(fd);
        }
    }

    /** Every xattr of path (not following a link), sorted, values hex where not printable. */
    private static String xattrs(String path) {
        Map<String, String> x = new TreeMap<>();
        for (String name : Posix.llistxattr(path)) {
            byte[] v = Posix.lgetxattr(path, name);
            x.put(name, v == null ? "<unreadable>" : printable(v) ? new String(v, StandardCharsets.ISO_8859_1) : "0x" + java.util.HexFormat.of().formatHex(v));
        }
        return x.toString();
    }

    private static boolean printable(byte[] v) {
        for (byte c : v) if (c < 0x20 || c > 0x7e) return false;
        return true;
    }

    private static String content(Layer layer, String rel, Stat st) {
        if (st.size() > 256) return "size=" + st.size();
        int fd = layer.openat(rel, Posix.O_RDONLY, 0);
        if (fd < 0) return "unreadable";
        try {
            Pointer p = Memory.allocateDirect(Posix.RT, 512);
            long n = Posix.pread(fd, p, 512, 0);
            byte[] b = new byte[(int) Math.max(0, n)];
            p.get(0, b, 0, b.length);
            return "'" + new String(b, StandardCharsets.ISO_8859_1) + "'";
        } finally {
            Posix.close(fd);
        }
    }
}
