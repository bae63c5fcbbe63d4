package dev.strata.fuse;

import java.io.PrintStream;
import java.time.LocalTime;

/** The daemon's log: one line per event on stderr (which a daemonized mount points at its log file or /dev/null). */
public final class Log {
    private final boolean debug;
    public Log(boolean debug) { this.debug = debug; }

    public void error(String msg) { line("error", msg); }
    public void warn(String msg) { line("warning", msg); }
    public void debug(String msg) { if (debug) line("debug", msg); }

    private static synchronized void line(String level, String msg) {
        PrintStream err = System.err;
        err.println(LocalTime.now() + " strata: " + level + ": " + msg);
        err.flush();
    }
}
