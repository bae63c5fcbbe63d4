package dev.strata.image;

import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarConstants;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A tar reader (commons-compress underneath) that also keeps the raw bytes of the special entries
 * before each member: PAX extended headers (local and global) and GNU long name/link entries.
 * commons-compress parses them into Strings that lose bytes (UTF-8 decoding of PAX values, and
 * {@code setName} strips a leading '/'), so {@link #next()} takes the path, link target and xattrs from
 * the raw bytes. Names are ISO-8859-1 strings: one char per byte, so any byte sequence survives.
 */
final class TarReader extends TarArchiveInputStream {
    /** Largest special entry (PAX header, GNU long name) kept in memory. */
    static final int MAX_SPECIAL = 8 << 20;

    private static final class Seg {
        final byte type;
        final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        Seg(byte type) { this.type = type; }
    }

    private int depth;
    private final List<Seg> segs = new ArrayList<>();
    private TarArchiveEntry capturing;
    private Seg cur;
    private final Map<String, byte[]> globalRecords = new LinkedHashMap<>();

    TarReader(InputStream in) {
        super(in, TarConstants.DEFAULT_BLKSIZE, TarConstants.DEFAULT_RCDSIZE, StandardCharsets.ISO_8859_1.name(), false);
    }

    @Override public TarArchiveEntry getNextEntry() throws IOException {
        if (depth == 0) {
            segs.clear();
            capturing = null;
            cur = null;
        }
        depth++;
        try {
            return super.getNextEntry();
        } finally {
            depth--;
        }
    }

    @Override public int read(byte[] b, int off, int len) throws IOException {
        int n = super.read(b, off, len);
        if (n > 0 && depth > 0) {
            TarArchiveEntry e = getCurrentEntry();
            if (e != null && isSpecial(e)) {
                if (e != capturing) {
                    capturing = e;
                    cur = new Seg(e.getLinkFlag());
                    segs.add(cur);
                }
                if (cur.bytes.size() + n > MAX_SPECIAL) {
                    throw new ImageException("refusing archive: a PAX or long-name header is larger than "
                            + (MAX_SPECIAL >> 20) + " MiB");
                }
                cur.bytes.write(b, off, n);
            }
        }
        return n;
    }

    private static boolean isSpecial(TarArchiveEntry e) {
        return e.isPaxHeader() || e.isGlobalPaxHeader() || e.isGNULongNameEntry() || e.isGNULongLinkEntry();
    }

    /** The next member with its raw name, link target and xattrs, or null at the end of the archive. */
    TarItem next() throws IOException {
        TarArchiveEntry e = getNextEntry();
        if (e == null) return null;
        Map<String, byte[]> local = new LinkedHashMap<>();
        byte[] longName = null, longLink = null;
        for (Seg s : segs) {
            byte[] b = s.bytes.toByteArray();
            switch (s.type) {
                case 'x': case 'X': local.putAll(PaxRecords.parse(b, b.length)); break;
                case 'g': globalRecords.putAll(PaxRecords.parse(b, b.length)); break;
                case 'L': longName = trimNul(b); break;
                case 'K': longLink = trimNul(b); break;
                default: break;
            }
        }
        String name = latin1(local.get("path"));
        if (name == null) name = longName != null ? latin1(longName) : e.getName();
        String link = latin1(local.get("linkpath"));
        if (link == null) link = longLink != null ? latin1(longLink) : e.getLinkName();
        Map<String, byte[]> xattrs = new LinkedHashMap<>();
        PaxRecords.xattrs(globalRecords, xattrs);
        PaxRecords.xattrs(local, xattrs);
        return new TarItem(e, name, link, xattrs);
    }

    private static String latin1(byte[] b) {
        return b == null || b.length == 0 ? null : new String(b, StandardCharsets.ISO_8859_1);
    }

    private static byte[] trimNul(byte[] b) {
        int n = b.length;
        while (n > 0 && b[n - 1] == 0) n--;
        return n == b.length ? b : Arrays.copyOf(b, n);
    }
}
