package dev.strata.daemon;

import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

/**
 * The daemon's System.err: what a request's thread prints (the mount's warnings and errors before it
 * is ready) goes to that request's client as lines for its stderr; everything else to the daemon's own
 * stderr (its log, or /dev/null).
 */
final class RoutedErr extends OutputStream {
    private static final ThreadLocal<Server.Reply> TARGET = new ThreadLocal<>();
    private static final ThreadLocal<ByteArrayOutputStream> LINE = ThreadLocal.withInitial(ByteArrayOutputStream::new);
    private static volatile boolean installed;
    private final PrintStream fallback;

    private RoutedErr(PrintStream fallback) { this.fallback = fallback; }

    static synchronized void install() {
        if (installed) return;
        installed = true;
        System.setErr(new PrintStream(new RoutedErr(System.err), true, StandardCharsets.ISO_8859_1));
    }

    /** Lines this thread prints go to {@code r} while it is open (null: back to the daemon's stderr). */
    static void route(Server.Reply r) {
        if (r == null) TARGET.remove(); else TARGET.set(r);
    }

    @Override public void write(int b) {
        Server.Reply r = TARGET.get();
        if (r == null || !r.open()) { fallback.write(b); return; }
        if (b == '\n') flushLine(r); else LINE.get().write(b);
    }

    @Override public void write(byte[] b, int off, int len) {
        Server.Reply r = TARGET.get();
        if (r == null || !r.open()) { fallback.write(b, off, len); return; }
        for (int i = off; i < off + len; i++) {
            if (b[i] == '\n') flushLine(r); else LINE.get().write(b[i]);
        }
    }

    private static void flushLine(Server.Reply r) {
        ByteArrayOutputStream l = LINE.get();
        r.err(l.toString(StandardCharsets.ISO_8859_1));
        l.reset();
    }

    @Override public void flush() {
        if (TARGET.get() == null) fallback.flush();
    }
}
