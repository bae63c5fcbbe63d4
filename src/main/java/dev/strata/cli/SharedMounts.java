package dev.strata.cli;

import dev.strata.daemon.Server;
import dev.strata.options.MountOptions;

import java.nio.file.Path;

/**
 * The shared daemon's requests (see {@link Server}): each is a mount command line from bin/strata,
 * run in this process with the client's cwd; the answer goes to the client once the mount is ready.
 * What needs a process of its own is refused (the client then starts one): anything but a plain
 * kernel-transport mount, i.e. another command, -f/-d, --image, -o debug, trace= or
 * transport=libfuse, and a mount this process may not make itself.
 */
final class SharedMounts implements Server.Handler {
    /** Thrown inside a request when it must go to a process of its own. */
    static final class Refused extends RuntimeException {
        Refused(String why) { super(why, null, false, false); }
    }

    /** The request's side of a mount served here (MountCommand#session). */
    static final class Session {
        final Server.Reply reply;
        Session(Server.Reply reply) { this.reply = reply; }
        void ready() { reply.exit(0); }
    }

    /** Seconds a pause waits for the requests being served to end before it gives up. */
    static final long PAUSE_DRAIN_MILLIS = 30_000;

    /**
     * image commit --pause (dev.strata.daemon.PauseClient): holds the requests of the mount served here
     * at {@code mountpoint} once those being served have ended, and says so; resumes it when the client's
     * connection ends (the commit is done, or its process died), so a pause never outlives the commit.
     * Refused (the committer then stops the mount's own process) if no mount here is at {@code mountpoint}.
     */
    static int pause(Path mountpoint, Server.Reply reply) {
        dev.strata.fuse.kernel.Gate gate = dev.strata.fuse.kernel.Gate.of(mountpoint);
        if (gate == null) {
            reply.refuse("no mount at " + mountpoint + " is served here");
            return 0;
        }
        try {
            if (!gate.hold(PAUSE_DRAIN_MILLIS)) {
                System.err.println("strata: --pause: requests on " + mountpoint + " were still being served after "
                        + PAUSE_DRAIN_MILLIS / 1000 + " s; not paused");
                return 1;
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return 1;
        }
        try {
            reply.err(dev.strata.daemon.PauseClient.PAUSED);
            reply.awaitClientEnd();
        } finally {
            gate.release();
        }
        return 0;
    }

    /** Why a parsed mount cannot be served by the shared daemon, or null. */
    static String refusal(MountCommand m, MountOptions opts) {
        if (m.foreground || m.debug || opts.debug) return "debug or foreground";
        if (m.image != null || m.store != null || m.upper != null || m.work != null) return "--image";
        if (m.archive != null) return "an archive";
        if (opts.traceFile != null) return "trace";
        if (opts.transport.equals("libfuse")) return "transport=libfuse";
        return null;
    }

    @Override public int serve(String[] args, Path cwd, Server.Reply reply) {
        if (args.length == 2 && args[0].equals(dev.strata.daemon.PauseClient.REQUEST)) return pause(Path.of(args[1]), reply);
        // only the plain forms: strata [mount] -o ... MOUNTPOINT (anything unusual takes today's path)
        if (args.length == 0 || !(args[0].equals("mount") || args[0].startsWith("-o"))) {
            reply.refuse("not a plain mount");
            return 0;
        }
        String[] a = Main.normalize(args);
        MountCommand m = MountCommand.parseQuick(a);
        if (m == null) {
            reply.refuse("not a plain mount");
            return 0;
        }
        m.cwd = cwd;
        m.session = new Session(reply);
        try {
            return m.call();
        } catch (Refused e) {
            reply.refuse(e.getMessage());
            return 0;
        } catch (UserError e) {
            System.err.println("strata: " + e.getMessage());
            return e.exitCode();
        } finally {
            dev.strata.layer.At.releaseThreadCache(); // the engine's calls on this thread (opening the layers)
        }
    }
}
