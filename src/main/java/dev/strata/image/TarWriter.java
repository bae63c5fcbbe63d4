package dev.strata.image;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.TreeMap;

/**
 * A minimal, deterministic tar writer: ustar headers, with a PAX extended header only where ustar
 * cannot say it (long names, large sizes or ids, sub-second mtimes, xattrs). Names and link targets
 * are byte strings (ISO-8859-1 Strings) written as they are; xattr values are raw bytes (PAX
 * {@code SCHILY.xattr.NAME}), which commons-compress's writer cannot do (it encodes values as UTF-8).
 * Nothing that changes by itself (atime, ctime, user names, the writer's clock) goes in.
 */
final class TarWriter implements AutoCloseable {
    static final byte REG = '0', LINK = '1', SYMLINK = '2', CHR = '3', BLK = '4', DIR = '5', FIFO = '6';
    private static final int BLOCK = 512;

    private final OutputStream out;
    private long written;

    TarWriter(OutputStream out) { this.out = out; }

    /** One member's header fields; name without a trailing '/' (added for directories). */
    static final class Header {
        String name;
        byte type;
        int mode;
        long uid, gid;
        long size;
        long mtimeSec;
        long mtimeNsec;
        String linkName = "";
        long devMajor, devMinor;
        Map<String, byte[]> xattrs = new TreeMap<>();
    }

    /** Writes a header; the caller then writes exactly {@code h.size} bytes with {@link #data}. */
    void header(Header h) throws IOException {
        String name = h.type == DIR ? h.name + "/" : h.name;
        byte[] nameB = name.getBytes(StandardCharsets.ISO_8859_1);
        byte[] linkB = h.linkName.getBytes(StandardCharsets.ISO_8859_1);
        Map<String, byte[]> pax = new TreeMap<>();
        if (nameB.length > 100) pax.put("path", nameB);
        if (linkB.length > 100) pax.put("linkpath", linkB);
        if (h.size > 077777777777L) pax.put("size", ascii(Long.toString(h.size)));
        if (h.uid > 07777777) pax.put("uid", ascii(Long.toString(h.uid)));
        if (h.gid > 07777777) pax.put("gid", ascii(Long.toString(h.gid)));
        if (h.mtimeNsec != 0 || h.mtimeSec < 0 || h.mtimeSec > 077777777777L) {
            pax.put("mtime", ascii(h.mtimeSec + (h.mtimeNsec != 0 ? "." + String.format("%09d", h.mtimeNsec) : "")));
        }
        for (Map.Entry<String, byte[]> x : h.xattrs.entrySet()) pax.put("SCHILY.xattr." + x.getKey(), x.getValue());
        if (!pax.isEmpty()) {
            byte[] body = paxBody(pax);
            byte[] ph = ustar(clip("PaxHeaders/" + lastComponent(h.name)), (byte) 'x', 0644, 0, 0, body.length,
                    Math.max(0, Math.min(h.mtimeSec, 077777777777L)), new byte[0], 0, 0);
            write(ph);
            write(body);
            pad(body.length);
        }
        write(ustar(clip(nameB), h.type, h.mode, Math.min(h.uid, 07777777), Math.min(h.gid, 07777777),
                Math.min(h.size, 077777777777L), Math.max(0, Math.min(h.mtimeSec, 077777777777L)), clip(linkB),
                h.devMajor, h.devMinor));
    }

    /** Copies exactly {@code size} bytes of the member's data, then pads to the block. */
    void data(InputStream in, long size) throws IOException {
        byte[] buf = new byte[65536];
        long left = size;
        while (left > 0) {
            int n = in.read(buf, 0, (int) Math.min(buf.length, left));
            if (n < 0) throw new IOException("file shrank while being written (" + (size - left) + " of " + size + " bytes)");
            write(buf, 0, n);
            left -= n;
        }
        pad(size);
    }

    void data(byte[] b) throws IOException {
        write(b);
        pad(b.length);
    }

    /** The end-of-archive marker (two zero blocks). Does not close the stream. */
    void finish() throws IOException {
        write(new byte[BLOCK * 2]);
        out.flush();
    }

    long written() { return written; }

    @Override public void close() throws IOException { out.close(); }

    private void pad(long size) throws IOException {
        int r = (int) (size % BLOCK);
        if (r != 0) write(new byte[BLOCK - r]);
    }

    private void write(byte[] b) throws IOException { write(b, 0, b.length); }

    private void write(byte[] b, int off, int len) throws IOException {
        out.write(b, off, len);
        written += len;
    }

    private static byte[] ascii(String s) { return s.getBytes(StandardCharsets.US_ASCII); }

    private static String lastComponent(String name) {
        int i = name.lastIndexOf('/');
        return i < 0 ? name : name.substring(i + 1);
    }

    private static byte[] clip(String s) { return clip(s.getBytes(StandardCharsets.ISO_8859_1)); }

    private static byte[] clip(byte[] b) {
        if (b.length <= 100) return b;
        byte[] c = new byte[100];
        System.arraycopy(b, 0, c, 0, 100);
        return c;
    }

    /** PAX records "LEN key=value\n", LEN counting itself. */
    static byte[] paxBody(Map<String, byte[]> records) {
        java.io.ByteArrayOutputStream o = new java.io.ByteArrayOutputStream();
        for (Map.Entry<String, byte[]> e : records.entrySet()) {
            byte[] k = e.getKey().getBytes(StandardCharsets.ISO_8859_1);
            int rest = 1 + k.length + 1 + e.getValue().length + 1; // ' ' key '=' value '\n'
            int len = rest + 1;
            while (Integer.toString(len).length() + rest != len) len++;
            o.writeBytes(ascii(Integer.toString(len)));
            o.write(' ');
            o.writeBytes(k);
            o.write('=');
            o.writeBytes(e.getValue());
            o.write('\n');
        }
        return o.toByteArray();
    }

    private static byte[] ustar(byte[] name, byte type, int mode, long uid, long gid, long size, long mtime,
                                byte[] link, long devMajor, long devMinor) {
        byte[] h = new byte[BLOCK];
        System.arraycopy(name, 0, h, 0, Math.min(100, name.length));
        octal(h, 100, 8, mode & 07777);
        octal(h, 108, 8, uid);
        octal(h, 116, 8, gid);
        octal(h, 124, 12, size);
        octal(h, 136, 12, mtime);
        h[156] = type;
        System.arraycopy(link, 0, h, 157, Math.min(100, link.length));
        System.arraycopy(ascii("ustar\0"), 0, h, 257, 6);
        h[263] = '0';
        h[264] = '0';
        if (type == CHR || type == BLK) {
            octal(h, 329, 8, Math.min(devMajor, 07777777));
            octal(h, 337, 8, Math.min(devMinor, 07777777));
        }
        for (int i = 148; i < 156; i++) h[i] = ' ';
        long sum = 0;
        for (byte b : h) sum += b & 0xff;
        octal(h, 148, 7, sum);
        h[155] = ' ';
        return h;
    }

    /** A zero-padded octal number of len-1 digits and a NUL. */
    private static void octal(byte[] h, int off, int len, long v) {
        String s = Long.toOctalString(v);
        int digits = len - 1;
        if (s.length() > digits) throw new IllegalArgumentException("value too large for the tar header: " + v);
        for (int i = 0; i < digits - s.length(); i++) h[off + i] = '0';
        System.arraycopy(ascii(s), 0, h, off + digits - s.length(), s.length());
        h[off + digits] = 0;
    }
}
