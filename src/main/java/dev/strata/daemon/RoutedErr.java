package dev.strata.daemon;

import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

/**
 * The daemon's System.err: what a request's thread prints (the mount's warnings and errors before it
 * is ready) goes to that request's client as lines for its stderr; everything else to the daemon's own
 * stderr (its log, or /dev/null). A mount with a log of its own ({@code --log}) has it set on the thread
 * that serves it ({@link #logTo}), which its worker threads inherit: its later lines go there.
 */
final class RoutedErr extends OutputStream {
    private static final ThreadLocal<Server.Reply> TARGET = new ThreadLocal<>();
    private static final ThreadLocal<ByteArrayOutputStream> LINE = ThreadLocal.withInitial(ByteArrayOutputStream::new);
    private static final InheritableThreadLocal<PrintStream> MOUNT_LOG = new InheritableThreadLocal<>();
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
        if (r != null) {
            TARGET.set(r);
            return;
        }
        TARGET.remove();
        LINE.remove(); // an unfinished line stays with the request it was for (the thread may serve another: Threads)
    }

    /** This thread's and the threads it starts from now on: lines not for a client go to {@code log} (null: the daemon's). */
    static void logTo(PrintStream log) {
        if (log == null) MOUNT_LOG.remove(); else MOUNT_LOG.set(log);
    }

    /** This thread's mount log (null: the daemon's), for a thread kept across mounts to take over ({@link Threads}). */
    static PrintStream mountLog() {
        return MOUNT_LOG.get();
    }

    private PrintStream out() {
        PrintStream l = MOUNT_LOG.get();
        return l != null ? l : fallback;
    }

    @Override public void write(int b) {
        Server.Reply r = TARGET.get();
        if (r == null || !r.open()) { out().write(b); return; }
        if (b == '\n') flushLine(r); else LINE.get().write(b);
    }

    @Override public void write(byte[] b, int off, int len) {
        Server.Reply r = TARGET.get();
        if (r == null || !r.open()) { out().write(b, off, len); return; }
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
        if (TARGET.get() == null) out().flush();
    }
}
