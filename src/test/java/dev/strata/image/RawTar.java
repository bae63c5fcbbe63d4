package dev.strata.image;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A tar writer with byte-level control, for archives commons-compress will not write: names and PAX
 * values that are not UTF-8, binary xattrs, absolute names, '..', absurd sizes, hostile links. Strings
 * are taken as ISO-8859-1 (one char per byte). Long names go into a PAX path record automatically.
 */
final class RawTar {
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private long mtime = 1_600_000_000L;

    static byte[] b(String s) { return s.getBytes(StandardCharsets.ISO_8859_1); }

    RawTar mtime(long t) { this.mtime = t; return this; }

    /** A member with full control: name/link as raw bytes, PAX records written first if any. */
    RawTar entry(byte[] name, char type, byte[] data, byte[] link, int mode, long uid, long gid,
                 int major, int minor, Map<String, byte[]> pax) {
        Map<String, byte[]> records = pax == null ? new LinkedHashMap<>() : new LinkedHashMap<>(pax);
        byte[] hname = name;
        if (name.length > 100 && !records.containsKey("path")) {
            records.put("path", name);
            hname = b("longname");
        }
        byte[] hlink = link == null ? new byte[0] : link;
        if (hlink.length > 100 && !records.containsKey("linkpath")) {
            records.put("linkpath", hlink);
            hlink = b("longlink");
        }
        if (!records.isEmpty()) paxHeader('x', records);
        long size = data == null ? 0 : data.length;
        header(hname, type, size, hlink, mode, uid, gid, major, minor);
        if (data != null) {
            out.write(data, 0, data.length);
            pad(data.length);
        }
        return this;
    }

    /** Writes a PAX extended header ('x' local, 'g' global) with raw record values. */
    RawTar paxHeader(char type, Map<String, byte[]> records) {
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        for (Map.Entry<String, byte[]> r : records.entrySet()) body.writeBytes(record(r.getKey(), r.getValue()));
        byte[] d = body.toByteArray();
        header(b("PaxHeader/x"), type, d.length, new byte[0], 0644, 0, 0, 0, 0);
        out.write(d, 0, d.length);
        pad(d.length);
        return this;
    }

    /** A GNU long name ('L') member followed by the real header with a truncated name. */
    RawTar gnuLongName(byte[] longName, char type, byte[] data) {
        byte[] ln = new byte[longName.length + 1];
        System.arraycopy(longName, 0, ln, 0, longName.length);
        header(b("././@LongLink"), 'L', ln.length, new byte[0], 0644, 0, 0, 0, 0);
        out.write(ln, 0, ln.length);
        pad(ln.length);
        byte[] shortName = new byte[Math.min(99, longName.length)];
        System.arraycopy(longName, 0, shortName, 0, shortName.length);
        header(shortName, type, data == null ? 0 : data.length, new byte[0], 0644, 0, 0, 0, 0);
        if (data != null) { out.write(data, 0, data.length); pad(data.length); }
        return this;
    }

    static byte[] record(String key, byte[] value) {
        byte[] k = b(key);
        int body = 1 + k.length + 1 + value.length + 1; // ' ' key '=' value '\n'
        int len = body + String.valueOf(body).length();
        if (String.valueOf(len).length() != String.valueOf(body).length()) len++;
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        o.writeBytes(b(len + " "));
        o.writeBytes(k);
        o.write('=');
        o.writeBytes(value);
        o.write('\n');
        return o.toByteArray();
    }

    RawTar file(String name, String content) { return file(name, b(content), 0644); }
    RawTar file(String name, byte[] content, int mode) { return entry(b(name), '0', content, null, mode, 0, 0, 0, 0, null); }
    RawTar dir(String name, int mode) { return entry(b(name), '5', null, null, mode, 0, 0, 0, 0, null); }
    RawTar symlink(String name, String target) { return entry(b(name), '2', null, b(target), 0777, 0, 0, 0, 0, null); }
    RawTar hardlink(String name, String target) { return entry(b(name), '1', null, b(target), 0644, 0, 0, 0, 0, null); }
    RawTar chr(String name, int major, int minor) { return entry(b(name), '3', null, null, 0644, 0, 0, major, minor, null); }
    RawTar fifo(String name) { return entry(b(name), '6', null, null, 0644, 0, 0, 0, 0, null); }
    RawTar withPax(String name, char type, byte[] data, Map<String, byte[]> pax) {
        return entry(b(name), type, data, null, 0644, 0, 0, 0, 0, pax);
    }

    /** A regular-file header that claims {@code size} bytes (base-256 when large) with no data behind it. */
    RawTar claim(String name, long size) {
        header(b(name), '0', size, new byte[0], 0644, 0, 0, 0, 0);
        return this;
    }

    /** The archive with its two zero end records. */
    byte[] bytes() {
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        o.writeBytes(out.toByteArray());
        o.writeBytes(new byte[1024]);
        return o.toByteArray();
    }

    /** Without the end records (a truncated archive). */
    byte[] bytesUnterminated() { return out.toByteArray(); }

    private void header(byte[] name, char type, long size, byte[] link, int mode, long uid, long gid, int major, int minor) {
        byte[] h = new byte[512];
        if (name.length > 100 || link.length > 100) throw new IllegalArgumentException("use PAX for long names");
        System.arraycopy(name, 0, h, 0, name.length);
        octal(h, 100, 8, mode);
        octal(h, 108, 8, uid);
        octal(h, 116, 8, gid);
        if (size > 077777777777L) { // base-256
            h[124] = (byte) 0x80;
            for (int i = 0; i < 8; i++) h[135 - i] = (byte) (size >>> (8 * i));
        } else {
            octal(h, 124, 12, size);
        }
        octal(h, 136, 12, mtime);
        h[156] = (byte) type;
        System.arraycopy(link, 0, h, 157, link.length);
        System.arraycopy(b("ustar\u000000"), 0, h, 257, 8);
        octal(h, 329, 8, major);
        octal(h, 337, 8, minor);
        for (int i = 148; i < 156; i++) h[i] = ' ';
        long sum = 0;
        for (byte x : h) sum += x & 0xff;
        byte[] cs = b(String.format("%06o", sum));
        System.arraycopy(cs, 0, h, 148, 6);
        h[154] = 0;
        h[155] = ' ';
        out.write(h, 0, 512);
    }

    private static void octal(byte[] h, int off, int len, long v) {
        String s = Long.toOctalString(v);
        if (s.length() > len - 1) throw new IllegalArgumentException("value too large for field: " + v);
        s = "0".repeat(len - 1 - s.length()) + s;
        System.arraycopy(b(s), 0, h, off, len - 1);
        h[off + len - 1] = 0;
    }

    private void pad(long n) {
        int r = (int) (n % 512);
        if (r != 0) out.write(new byte[512 - r], 0, 512 - r);
    }
}
