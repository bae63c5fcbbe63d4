package dev.strata.nativetest.podman;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * One podman store kept entirely under a base directory ({@code --root}, {@code --runroot},
 * {@code --tmpdir}, and for a rootless user also HOME and XDG_RUNTIME_DIR), using strata as
 * {@code overlay.mount_program} through a wrapper that logs every call (arguments, cwd, uid).
 */
final class Podman {
    /** One call of the mount program as podman made it. */
    static final class Call {
        final int uid;
        final String cwd;
        final List<String> args;

        Call(int uid, String cwd, List<String> args) {
            this.uid = uid;
            this.cwd = cwd;
            this.args = args;
        }

        boolean isMount() { return args.size() == 3 && args.get(0).equals("-o"); }

        /** The -o value split on commas, empty options kept (podman passes ",," and a trailing ","). */
        List<String> options() { return Arrays.asList(args.get(1).split(",", -1)); }

        @Override public String toString() { return "uid=" + uid + " cwd=" + cwd + " args=" + args; }
    }

    static final Duration LIMIT = Duration.ofSeconds(180);

    final Path base;
    final String user;          // null: podman runs as root
    final Path wrapper, callLog;
    private final Map<String, String> env = new LinkedHashMap<>();
    private final List<String> global;

    Podman(Path base, String user, Path mountProgram) throws IOException {
        this(base, user, mountProgram, List.of());
    }

    /** storageOpts: more {@code --storage-opt} values for every command (e.g. overlay.force_mask=shared). */
    Podman(Path base, String user, Path mountProgram, List<String> storageOpts) throws IOException {
        this.base = base;
        this.user = user;
        for (String d : new String[]{"root", "run", "tmp", "xdg", "home"}) Files.createDirectories(base.resolve(d));
        Files.setPosixFilePermissions(base.resolve("xdg"), PosixFilePermissions.fromString("rwx------"));
        callLog = base.resolve("mount-program.log");
        wrapper = base.resolve("mount-program.sh");
        // Logs each call as "CALL uid cwd" then one "ARG x" line per argument, then runs strata. The
        // shared daemon ends 1 s after podman unmounted its last mount (not 300 s), so that the tests
        // can check nothing is left running.
        Files.writeString(wrapper, "#!/bin/sh\n"
                + "{ echo \"CALL $(id -u) $PWD\"; for a in \"$@\"; do echo \"ARG $a\"; done; } >> '" + callLog + "'\n"
                + "export STRATA_DAEMON_IDLE=\"${STRATA_DAEMON_IDLE:-1}\"\n"
                + "exec '" + mountProgram + "' \"$@\"\n");
        Files.setPosixFilePermissions(wrapper, PosixFilePermissions.fromString("rwxr-xr-x"));
        Files.writeString(callLog, "");
        Files.setPosixFilePermissions(callLog, PosixFilePermissions.fromString("rw-rw-rw-"));
        if (user != null) {
            env.put("HOME", base.resolve("home").toString());
            env.put("XDG_RUNTIME_DIR", base.resolve("xdg").toString());
            env.put("XDG_CONFIG_HOME", base.resolve("home/.config").toString());
            env.put("XDG_DATA_HOME", base.resolve("home/.local/share").toString());
            env.put("TMPDIR", base.resolve("tmp").toString());
            Cmd.Result r = Cmd.run("chown", "-R", user + ":", base.toString());
            assertEquals(0, r.exit, r.describe());
        } else {
            env.put("TMPDIR", base.resolve("tmp").toString());
        }
        List<String> g = new ArrayList<>(List.of("podman", "--root", base.resolve("root").toString(), "--runroot",
                base.resolve("run").toString(), "--tmpdir", base.resolve("tmp").toString(), "--cgroup-manager", "cgroupfs",
                "--events-backend", "file", "--storage-driver", "overlay", "--storage-opt", "overlay.mount_program=" + wrapper));
        for (String o : storageOpts) g.addAll(List.of("--storage-opt", o));
        global = List.copyOf(g);
    }

    /** The command line for podman ARGS (through runuser and env for a rootless user). */
    List<String> command(List<String> args) {
        List<String> c = new ArrayList<>();
        if (user != null) {
            c.addAll(List.of("runuser", "-u", user, "--", "env"));
            env.forEach((k, v) -> c.add(k + "=" + v));
        }
        c.addAll(global);
        c.addAll(args);
        return c;
    }

    Cmd.Result run(String... args) {
        return Cmd.run(command(List.of(args)), user == null ? env : null, base, LIMIT);
    }

    /** Runs podman ARGS, fails the test unless it exits 0, returns stdout. */
    String ok(String... args) {
        Cmd.Result r = run(args);
        assertEquals(0, r.exit, () -> "podman failed:\n" + r.describe() + "\nmount program calls:\n" + callsText());
        return r.out;
    }

    /** The options `podman run` needs on this kind of machine (see docs/podman.md). */
    List<String> runFlags() {
        List<String> f = new ArrayList<>(List.of("--runtime", "runc", "--network", "none"));
        if (user == null) f.addAll(List.of("--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"));
        return f;
    }

    /** podman run [run flags] EXTRA... IMAGE sh -c SCRIPT; fails unless it exits 0; returns stdout. */
    String runSh(List<String> extra, String image, String script) {
        List<String> a = new ArrayList<>(List.of("run"));
        a.addAll(runFlags());
        a.addAll(extra);
        a.addAll(List.of(image, "sh", "-c", script));
        return ok(a.toArray(new String[0]));
    }

    List<Call> calls() {
        List<Call> out = new ArrayList<>();
        List<String> lines;
        try {
            lines = Files.readAllLines(callLog, StandardCharsets.ISO_8859_1);
        } catch (IOException e) {
            return out;
        }
        Integer uid = null;
        String cwd = null;
        List<String> args = null;
        for (String l : lines) {
            if (l.startsWith("CALL ")) {
                if (args != null) out.add(new Call(uid, cwd, args));
                String[] p = l.split(" ", 3);
                uid = Integer.parseInt(p[1]);
                cwd = p.length > 2 ? p[2] : "";
                args = new ArrayList<>();
            } else if (l.startsWith("ARG ") && args != null) {
                args.add(l.substring(4));
            }
        }
        if (args != null) out.add(new Call(uid, cwd, args));
        return out;
    }

    String callsText() {
        StringBuilder sb = new StringBuilder();
        for (Call c : calls()) sb.append(c).append('\n');
        return sb.toString();
    }

    /** pid of rootless podman's pause process (it holds the user and mount namespaces), or -1. */
    long pausePid() {
        try {
            return Long.parseLong(Files.readString(base.resolve("tmp/pause.pid")).trim());
        } catch (IOException | NumberFormatException e) {
            return -1;
        }
    }

    /** Removes every container of this store; stops the rootless pause process. Never throws. */
    void shutdown() {
        try {
            run("rm", "-af", "-t", "0");
            run("rmi", "-af");
        } catch (RuntimeException ignored) {
            // best effort: the caller still unmounts and deletes
        }
        long pause = pausePid();
        if (pause > 0) {
            ProcessHandle.of(pause).ifPresent(h -> {
                // only if it is podman's pause process for this store (same user), not a reused pid
                if (h.info().command().map(c -> c.endsWith("podman")).orElse(false)) {
                    h.destroy();
                    try {
                        h.onExit().get(10, java.util.concurrent.TimeUnit.SECONDS);
                    } catch (Exception e) {
                        h.destroyForcibly();
                    }
                }
            });
        }
    }
}
