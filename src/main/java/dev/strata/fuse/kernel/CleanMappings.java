package dev.strata.fuse.kernel;

import dev.strata.posix.Posix;

import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;

/**
 * Drops, at rest, this process's page-table entries of file mappings that hold only clean page-cache
 * pages: the JVM's own code (libjvm.so, 13 MB once it has run), the class-data archive's read-only
 * region (when it is mapped where it was dumped: bin/strata asks for that), libc, the JDK's other
 * libraries and its modules image. They count in the daemon's Rss and Pss (in a rootless podman
 * container's user namespace nothing else maps them), yet they are the file's pages in the page cache:
 * MADV_DONTNEED on them frees nothing the system cannot take back anyway, and the next request maps
 * again, with a minor fault per page group (fault-around), those it runs through (issue 14).
 *
 * <p>Only a mapping that cannot hold anything but the file's pages qualifies: a file of the file
 * system (its name starts with '/', not a device), private or shared, neither writable nor locked,
 * with no anonymous page ({@code Anonymous: 0 kB} in /proc/self/smaps: a private page once written,
 * such as a relocated archive's or a library's relocation data protected read-only afterwards, is
 * the process's only copy, and MADV_DONTNEED would revert it to the file's content). A dirty page of
 * such a mapping is the page cache's (written to the file, not yet written back): it stays there. A
 * mapping that is writable is never touched, whatever it holds now.
 */
final class CleanMappings {
    private CleanMappings() {}

    /** One mapping of /proc/self/smaps, with the fields that decide. */
    record Mapping(long start, long end, String perms, String path, long rssKb, long anonymousKb, long lockedKb) {
        /** Whether its pages are all clean file pages that MADV_DONTNEED may drop from this process. */
        boolean droppable() {
            return path.startsWith("/") && !path.startsWith("/dev/")
                    && perms.length() == 4 && perms.charAt(0) == 'r' && perms.charAt(1) == '-'
                    && (perms.charAt(3) == 'p' || perms.charAt(3) == 's')
                    && rssKb > 0 && anonymousKb == 0 && lockedKb == 0;
        }
    }

    /** What one pass did: the mappings dropped, their resident kB before, and the calls that failed. */
    record Result(int mappings, long kb, int failed) {}

    /**
     * Reads /proc/self/smaps and drops every {@link Mapping#droppable} mapping's pages. The calls come
     * one after the other from two arrays: what runs between and after them maps its pages again (on
     * 6.18 a fault maps the whole large folio: up to 2 MiB of the class-data archive for one method's
     * bytecodes), so little runs there.
     */
    static Result dropClean() {
        java.util.List<Mapping> all;
        try (InputStream in = new FileInputStream("/proc/self/smaps")) {
            all = parse(in);
        } catch (IOException e) {
            return new Result(0, 0, 0);
        }
        long[] start = new long[all.size()], len = new long[all.size()];
        int n = 0;
        long kb = 0;
        for (Mapping m : all) {
            if (!m.droppable()) continue;
            start[n] = m.start();
            len[n++] = m.end() - m.start();
            kb += m.rssKb();
        }
        int failed = 0;
        for (int i = 0; i < n; i++) {
            if (Posix.madvise(start[i], len[i], Posix.MADV_DONTNEED) < 0) failed++;
        }
        return new Result(n - failed, kb, failed);
    }

    /**
     * Parses smaps text (a header line per mapping, "start-end perms offset dev inode [path]", then
     * "Key: value kB" lines). Reads bytes and keeps one {@link Mapping} per mapping with a path
     * (anonymous ones are skipped without allocating).
     */
    static java.util.List<Mapping> parse(InputStream in) throws IOException {
        java.util.List<Mapping> out = new java.util.ArrayList<>();
        byte[] buf = new byte[16384];
        byte[] line = new byte[4096];
        int len = 0;
        Parser p = new Parser(out);
        int r;
        while ((r = in.read(buf)) > 0) {
            for (int i = 0; i < r; i++) {
                byte b = buf[i];
                if (b == '\n') {
                    p.line(line, len);
                    len = 0;
                } else if (len < line.length) {
                    line[len++] = b;
                }
            }
        }
        if (len > 0) p.line(line, len);
        p.finish();
        return out;
    }

    private static final class Parser {
        private final java.util.List<Mapping> out;
        private boolean open;
        private long start, end, rss, anon, locked;
        private String perms, path;

        Parser(java.util.List<Mapping> out) { this.out = out; }

        void line(byte[] l, int n) {
            int dash = header(l, n);
            if (dash > 0) {
                finish();
                start = hex(l, 0, dash);
                int sp = indexOf(l, n, (byte) ' ', dash);
                end = hex(l, dash + 1, sp);
                int f = sp + 1;
                int permsEnd = indexOf(l, n, (byte) ' ', f);
                // the path is what follows the fifth field (offset, device, inode), after spaces
                int field = permsEnd, k = 0;
                while (k < 3 && field < n) {
                    field = skip(l, n, field);
                    field = indexOf(l, n, (byte) ' ', field);
                    k++;
                }
                int ps = skip(l, n, field);
                path = ps < n ? new String(l, ps, n - ps, java.nio.charset.StandardCharsets.ISO_8859_1) : "";
                open = !path.isEmpty();
                if (open) perms = new String(l, f, permsEnd - f, java.nio.charset.StandardCharsets.ISO_8859_1);
                rss = anon = locked = 0;
                return;
            }
            if (!open) return;
            if (starts(l, n, "Rss:")) rss = kb(l, n, 4);
            else if (starts(l, n, "Anonymous:")) anon = kb(l, n, 10);
            else if (starts(l, n, "Locked:")) locked = kb(l, n, 7);
        }

        void finish() {
            if (open) out.add(new Mapping(start, end, perms, path, rss, anon, locked));
            open = false;
        }

        /** The index of the '-' of a header line ("hex-hex "), or -1 for a "Key: value" line. */
        private static int header(byte[] l, int n) {
            int i = 0;
            while (i < n && digit(l[i]) >= 0) i++;
            return i > 0 && i < n && l[i] == '-' ? i : -1;
        }

        private static int digit(byte b) {
            if (b >= '0' && b <= '9') return b - '0';
            if (b >= 'a' && b <= 'f') return b - 'a' + 10;
            return -1;
        }

        private static long hex(byte[] l, int from, int to) {
            long v = 0;
            for (int i = from; i < to; i++) v = (v << 4) | digit(l[i]);
            return v;
        }

        private static int indexOf(byte[] l, int n, byte c, int from) {
            for (int i = from; i < n; i++) if (l[i] == c) return i;
            return n;
        }

        private static int skip(byte[] l, int n, int from) {
            while (from < n && l[from] == ' ') from++;
            return from;
        }

        private static boolean starts(byte[] l, int n, String key) {
            if (n < key.length()) return false;
            for (int i = 0; i < key.length(); i++) if (l[i] != key.charAt(i)) return false;
            return true;
        }

        private static long kb(byte[] l, int n, int from) {
            int i = skip(l, n, from);
            long v = 0;
            while (i < n && l[i] >= '0' && l[i] <= '9') v = v * 10 + (l[i++] - '0');
            return v;
        }
    }
}
