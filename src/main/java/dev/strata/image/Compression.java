package dev.strata.image;

import com.github.luben.zstd.ZstdInputStreamNoFinalizer;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PushbackInputStream;
import java.util.zip.GZIPInputStream;

/** Layer and archive compression, detected from magic bytes (media types are not trusted for it). */
enum Compression {
    NONE("uncompressed"), GZIP("gzip"), ZSTD("zstd");

    final String label;
    Compression(String label) { this.label = label; }

    static final int MAGIC_BYTES = 6;

    /** Detects the compression from the first bytes of a stream; unsupported formats are an error. */
    static Compression detect(byte[] h, int n, String what) {
        if (n >= 2 && (h[0] & 0xff) == 0x1f && (h[1] & 0xff) == 0x8b) return GZIP;
        if (n >= 4 && (h[0] & 0xff) == 0x28 && (h[1] & 0xff) == 0xb5 && (h[2] & 0xff) == 0x2f && (h[3] & 0xff) == 0xfd) {
            return ZSTD;
        }
        if (n >= 6 && (h[0] & 0xff) == 0xfd && h[1] == '7' && h[2] == 'z' && h[3] == 'X' && h[4] == 'Z' && h[5] == 0) {
            throw new ImageException(what + " is xz-compressed, which is not supported (gzip, zstd or plain tar)");
        }
        if (n >= 3 && h[0] == 'B' && h[1] == 'Z' && h[2] == 'h') {
            throw new ImageException(what + " is bzip2-compressed, which is not supported (gzip, zstd or plain tar)");
        }
        return NONE;
    }

    /** Peeks at the first bytes of {@code in} and returns the detected compression and a stream that still has them. */
    static Detected sniff(InputStream in, String what) throws IOException {
        PushbackInputStream pb = new PushbackInputStream(in, MAGIC_BYTES);
        byte[] h = new byte[MAGIC_BYTES];
        int n = 0;
        while (n < h.length) {
            int r = pb.read(h, n, h.length - n);
            if (r < 0) break;
            n += r;
        }
        if (n > 0) pb.unread(h, 0, n);
        return new Detected(detect(h, n, what), pb, n);
    }

    static final class Detected {
        final Compression compression;
        final InputStream stream;
        final int available;
        Detected(Compression c, InputStream s, int available) { this.compression = c; this.stream = s; this.available = available; }
    }

    /** Wraps a raw stream in the decompressor (JDK gzip and zstd-jni are the fast ones, see the notes). */
    InputStream decompress(InputStream raw) throws IOException {
        switch (this) {
            case GZIP: return new GZIPInputStream(raw, 1 << 16);
            case ZSTD: return new BufferedInputStream(new ZstdInputStreamNoFinalizer(raw), 1 << 16);
            default: return raw;
        }
    }
}
