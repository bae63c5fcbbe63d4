package dev.strata.cli;

import dev.strata.union.UnionEvents;

import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.LocalTime;
import java.time.format.DateTimeFormatter;

/** {@code -o trace[=FILE]}: one plain line per union event (copy-up, whiteout, opaque, refused rename). */
final class TraceLog implements UnionEvents {
    private final PrintStream out;

    private TraceLog(PrintStream out) { this.out = out; }

    static TraceLog open(String file) throws IOException {
        if (file == null || file.equals("-")) {
            // stderr of the daemon goes away when it detaches, so "-" keeps the original stream
            return new TraceLog(new PrintStream(new FileOutputStream(java.io.FileDescriptor.err), true,
                    StandardCharsets.ISO_8859_1));
        }
        OutputStream o = new FileOutputStream(file, true);
        return new TraceLog(new PrintStream(o, true, StandardCharsets.ISO_8859_1));
    }

    private static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("HH:mm:ss.SSS");

    private synchronized void line(String s) {
        out.println(TIME.format(LocalTime.now()) + " " + s);
    }

    @Override public void copiedUp(String path, String fromLayer, String type, long bytes, long nanos, String method) {
        line(String.format("copy-up %s %s from %s: %d bytes in %.3f ms (%s)", type, path, fromLayer, bytes,
                nanos / 1e6, method));
    }

    @Override public void whiteout(String path, String form) {
        line("whiteout " + path + " (" + form + ")");
    }

    @Override public void opaque(String path, String form) {
        line("opaque directory " + path + " (" + form + ")");
    }

    @Override public void renameRefused(String from, String to, String why) {
        line("rename " + from + " -> " + to + " refused with EXDEV: " + why
                + " (redirect_dir is not on; mv falls back to copy and delete)");
    }

    @Override public void dataRefused(String path, String why) {
        line("read of " + path + " refused: " + why);
    }

    @Override public void redirected(String from, String to, String redirect, String xattr) {
        line("rename " + from + " -> " + to + ": redirect " + xattr + "=" + redirect
                + " (the lower layers hold it at " + (redirect.startsWith("/") ? redirect : "its old name " + redirect) + ")");
    }
}
