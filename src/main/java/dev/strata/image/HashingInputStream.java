package dev.strata.image;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.security.MessageDigest;

/**
 * Counts and sha256-hashes every byte that passes (a DigestInputStream that also counts), optionally
 * refusing more than {@code limit} bytes. Skips are reads, so nothing escapes the digest.
 */
final class HashingInputStream extends FilterInputStream {
    /** Thrown when more bytes pass than the limit allows. */
    static final class LimitExceeded extends IOException {
        LimitExceeded(String m) { super(m); }
    }

    interface Progress { void bytes(long total); }

    private final MessageDigest md = Digest.sha256();
    private final long limit;
    private final String limitMessage;
    private final Progress progress;
    private long count;
    private long lastReport;

    HashingInputStream(InputStream in, long limit, String limitMessage, Progress progress) {
        super(in);
        this.limit = limit;
        this.limitMessage = limitMessage;
        this.progress = progress;
    }

    HashingInputStream(InputStream in) { this(in, Long.MAX_VALUE, null, null); }

    @Override public int read() throws IOException {
        int b = in.read();
        if (b >= 0) {
            md.update((byte) b);
            add(1);
        }
        return b;
    }

    @Override public int read(byte[] b, int off, int len) throws IOException {
        int n = in.read(b, off, len);
        if (n > 0) {
            md.update(b, off, n);
            add(n);
        }
        return n;
    }

    private void add(long n) throws IOException {
        count += n;
        if (count > limit) throw new LimitExceeded(limitMessage);
        if (progress != null && count - lastReport >= (1 << 20)) {
            lastReport = count;
            progress.bytes(count);
        }
    }

    @Override public long skip(long n) throws IOException {
        byte[] buf = new byte[(int) Math.min(n, 65536)];
        long done = 0;
        while (done < n) {
            int r = read(buf, 0, (int) Math.min(buf.length, n - done));
            if (r < 0) break;
            done += r;
        }
        return done;
    }

    @Override public boolean markSupported() { return false; }
    @Override public synchronized void mark(int readlimit) {}
    @Override public synchronized void reset() throws IOException { throw new IOException("mark/reset not supported"); }

    /** Reads to the end of the stream (so the digest covers everything). */
    void drain() throws IOException {
        byte[] buf = new byte[65536];
        while (read(buf, 0, buf.length) >= 0) { /* hashing */ }
    }

    long count() { return count; }

    /** The sha256 of everything read so far (call once, at the end). */
    Digest digest() { return Digest.of(md); }
}
