package dev.strata.nativetest.podman;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** Runs a command with a time limit; output goes through temp files so no pipe can fill up. */
final class Cmd {
    /** The outcome of one command. */
    static final class Result {
        final List<String> command;
        final int exit;
        final String out, err;

        Result(List<String> command, int exit, String out, String err) {
            this.command = command;
            this.exit = exit;
            this.out = out;
            this.err = err;
        }

        boolean ok() { return exit == 0; }

        /** A description for assertion messages. */
        String describe() {
            return "$ " + String.join(" ", command) + "\nexit " + exit + "\n--- stdout\n" + out + "--- stderr\n" + err;
        }
    }

    private Cmd() {}

    static Result run(List<String> command, Map<String, String> env, Path cwd, Duration limit) {
        Path out = null, err = null;
        try {
            out = Files.createTempFile("strata-cmd", ".out");
            err = Files.createTempFile("strata-cmd", ".err");
            ProcessBuilder pb = new ProcessBuilder(command).redirectOutput(out.toFile()).redirectError(err.toFile())
                    .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
            if (cwd != null) pb.directory(cwd.toFile());
            if (env != null) pb.environment().putAll(env);
            Process p = pb.start();
            int exit;
            if (!p.waitFor(limit.toMillis(), TimeUnit.MILLISECONDS)) {
                p.descendants().forEach(ProcessHandle::destroyForcibly);
                p.destroyForcibly();
                p.waitFor(10, TimeUnit.SECONDS);
                exit = -1;
            } else {
                exit = p.exitValue();
            }
            String o = Files.readString(out, StandardCharsets.ISO_8859_1);
            String e = Files.readString(err, StandardCharsets.ISO_8859_1);
            if (exit == -1) e += "\n(killed after " + limit.toSeconds() + " s)\n";
            return new Result(new ArrayList<>(command), exit, o, e);
        } catch (IOException e) {
            return new Result(new ArrayList<>(command), 127, "", "cannot run: " + e.getMessage() + "\n");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new Result(new ArrayList<>(command), -1, "", "interrupted\n");
        } finally {
            try {
                if (out != null) Files.deleteIfExists(out);
                if (err != null) Files.deleteIfExists(err);
            } catch (IOException ignored) {
                // temp files; nothing to do
            }
        }
    }

    static Result run(String... command) {
        return run(List.of(command), null, null, Duration.ofSeconds(120));
    }
}
