package dev.strata.image;

import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarFile;

import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;

/**
 * Files of an uncompressed tar archive (oci-archive, docker save), read with random access: one pass
 * over the headers builds an index, then members are read where they lie. Symlinks and hard links
 * between members (older docker save links duplicate layers) are resolved inside the archive.
 */
final class TarFiles implements SourceFiles {
    private final TarFile tar;
    private final Map<String, TarArchiveEntry> byName = new HashMap<>();
    private final String label;

    TarFiles(Path file, String label) throws IOException {
        this.label = label;
        this.tar = new TarFile(FileChannel.open(file, StandardOpenOption.READ), 10240, 512,
                StandardCharsets.ISO_8859_1.name(), false);
        for (TarArchiveEntry e : tar.getEntries()) {
            String n = norm(e.getName());
            if (n != null) byName.put(n, e);
        }
    }

    /** Top-level-ish names present, for format detection. */
    Set<String> names() { return byName.keySet(); }

    private static String norm(String name) {
        StringBuilder sb = new StringBuilder();
        for (String c : name.split("/")) {
            if (c.isEmpty() || c.equals(".")) continue;
            if (c.equals("..")) return null;
            if (sb.length() > 0) sb.append('/');
            sb.append(c);
        }
        return sb.length() == 0 ? null : sb.toString();
    }

    private TarArchiveEntry resolve(String rel) {
        String cur = SourceFiles.clean(rel, label);
        for (int hops = 0; hops < 40; hops++) {
            TarArchiveEntry e = byName.get(cur);
            if (e == null) return null;
            if (e.isSymbolicLink()) {
                String t = e.getLinkName();
                int slash = cur.lastIndexOf('/');
                String joined = t.startsWith("/") ? t : (slash < 0 ? "" : cur.substring(0, slash + 1)) + t;
                cur = lexical(joined);
                if (cur == null) throw new ImageException(label + ": the link '" + Digest.clip(rel) + "' points outside the archive");
            } else if (e.isLink()) {
                cur = norm(e.getLinkName());
                if (cur == null) throw new ImageException(label + ": the link '" + Digest.clip(rel) + "' points outside the archive");
            } else {
                return e.isFile() && !e.isDirectory() ? e : null;
            }
        }
        throw new ImageException(label + ": too many levels of links at '" + Digest.clip(rel) + "'");
    }

    /** Resolves '.' and '..' lexically; null if the path climbs above the archive root. */
    private static String lexical(String p) {
        java.util.ArrayDeque<String> parts = new java.util.ArrayDeque<>();
        for (String c : p.split("/")) {
            if (c.isEmpty() || c.equals(".")) continue;
            if (c.equals("..")) {
                if (parts.isEmpty()) return null;
                parts.removeLast();
            } else {
                parts.addLast(c);
            }
        }
        return parts.isEmpty() ? null : String.join("/", parts);
    }

    @Override public boolean exists(String rel) { return resolve(rel) != null; }

    @Override public long size(String rel) {
        TarArchiveEntry e = resolve(rel);
        if (e == null) throw missing(rel);
        return e.getSize();
    }

    @Override public InputStream open(String rel) throws IOException {
        TarArchiveEntry e = resolve(rel);
        if (e == null) throw missing(rel);
        return tar.getInputStream(e);
    }

    private ImageException missing(String rel) {
        return new ImageException(label + ": " + Digest.clip(rel) + " is missing from the archive");
    }

    @Override public String describe(String rel) { return rel + " in " + label; }

    @Override public void close() throws IOException { tar.close(); }
}
