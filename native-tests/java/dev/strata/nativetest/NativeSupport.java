package dev.strata.nativetest;

import dev.strata.posix.Posix;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Assumptions;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** Environment checks, temp directories and child processes for the native tests. */
public final class NativeSupport {
    private NativeSupport() {}

    /**
     * CI mode: a native test that cannot run is a failure, not a skip. On with -Dstrata.requireNative=true
     * (scripts/test.sh sets it as root with /dev/fuse) or, unless that property says false, with CI=true
     * in the environment.
     */
    public static boolean nativeRequired() {
        String p = System.getProperty("strata.requireNative", "");
        if (!p.isEmpty()) return Boolean.parseBoolean(p);
        return "true".equalsIgnoreCase(System.getenv("CI"));
    }

    /**
     * Skips the calling test (with a message) unless it runs as root with /dev/fuse and the kernel overlay;
     * in CI mode ({@link #nativeRequired()}) fails it instead, so that CI cannot stay green by testing nothing.
     */
    public static void assumeNativeEnvironment() {
        String why = environmentProblem();
        if (why == null) return;
        if (nativeRequired()) {
            Assertions.fail("native test cannot run, and CI mode (-Dstrata.requireNative=true or CI=true) requires it: " + why);
        }
        Assumptions.abort("native test skipped: " + why);
    }

    /** Why native tests cannot run here, or null if they can. */
    static String environmentProblem() {
        if (Posix.geteuid() != 0) return "needs root (mount, mknod, trusted.* xattrs)";
        if (!Files.exists(Paths.get("/dev/fuse"))) return "no /dev/fuse";
        if (!kernelHasOverlay()) return "no overlay in /proc/filesystems (modprobe overlay)";
        if (!"ISO-8859-1".equals(java.nio.charset.Charset.defaultCharset().name())) {
            return "the JVM must run with -Dfile.encoding=ISO-8859-1 (names are bytes)";
        }
        return null;
    }

    /**
     * Whether the kernel has the overlay file system. -Dstrata.pretendNoOverlay=true says no (the harness
     * self-test's stand-in for a machine without the module).
     */
    public static boolean kernelHasOverlay() {
        if (Boolean.getBoolean("strata.pretendNoOverlay")) return false;
        try {
            for (String l : Files.readAllLines(Paths.get("/proc/filesystems"))) {
                String[] f = l.trim().split("\\s+");
                if (f[f.length - 1].equals("overlay")) return true;
            }
        } catch (IOException e) {
            return false;
        }
        return false;
    }

    /** The strata project directory (holds bin/strata): -Dstrata.home, else Maven's basedir, else the cwd. */
    public static Path projectHome() {
        String h = System.getProperty("strata.home");
        if (h == null || h.isEmpty()) h = System.getProperty("basedir");
        if (h == null || h.isEmpty()) h = System.getProperty("user.dir");
        return Paths.get(h).toAbsolutePath();
    }

    /**
     * bin/strata as {@code user} can run it: this tree's, or, where that user cannot reach the tree (a
     * clone under /root or in a 0700 temp directory), a copy of the launcher, jars, class archive and
     * client under {@code tmp} (which the user must be able to enter) that everyone may read.
     */
    public static Path launcherFor(String user, Path tmp) throws java.io.IOException {
        Path home = projectHome(), launcher = home.resolve("bin/strata");
        Proc.Result access = Proc.run(Paths.get("/"), 30, "runuser", "-u", user, "--", "sh", "-c",
                "test -x '" + launcher + "' && test -r '" + home.resolve("target/strata.jar") + "'");
        return access.exit == 0 ? launcher : copyOfStrata(tmp.resolve("strata-for-" + user));
    }

    /** A copy of this tree's launcher, jars, class archive, jffi stub and client in {@code dist}, readable by everyone; returns its bin/strata. */
    public static Path copyOfStrata(Path dist) throws java.io.IOException {
        Path home = projectHome();
        Files.createDirectories(dist.resolve("target"));
        Proc.Result c = Proc.run(Paths.get("/"), 120, "sh", "-c", "cp -a '" + home + "/bin' '" + home + "/libexec' '" + dist + "/' && cp -a '" + home + "/target/strata.jar' '"
                + home + "/target/lib' '" + dist + "/target/' && { cp -a '" + home + "/target/strata.jsa' '" + dist
                + "/target/' 2>/dev/null || true; } && { cp -a '" + home + "/target/strata-client' '" + dist
                + "/target/' 2>/dev/null || true; } && { cp -a '" + home + "/target/native' '" + dist
                + "/target/' 2>/dev/null || true; } && chmod -R a+rX '" + dist + "'");
        if (c.exit != 0) throw new java.io.IOException("cannot copy strata to " + dist + ": " + c);
        return dist.resolve("bin/strata");
    }

    /** A fresh directory under /tmp (or -Dstrata.testTmp) for one test; delete it with {@link #deleteTree}. */
    public static Path newTempDir(String prefix) {
        try {
            Path base = Paths.get(System.getProperty("strata.testTmp", System.getProperty("java.io.tmpdir", "/tmp")));
            Files.createDirectories(base);
            return Files.createTempDirectory(base, "strata-nt-" + prefix + "-");
        } catch (IOException e) {
            throw new IllegalStateException("cannot create a temp dir: " + e, e);
        }
    }

    /**
     * Removes a test directory. Refuses (and leaves it) if anything is still mounted below it, so a
     * failed unmount never lets rm reach through a live mount; rm stays on one filesystem anyway.
     */
    public static void deleteTree(Path dir) {
        if (dir == null) return;
        List<String> mounted = Mounts.mountedUnder(dir);
        if (!mounted.isEmpty()) {
            System.err.println("[nativetest] NOT deleting " + dir + ": still mounted below it: " + mounted);
            return;
        }
        Proc.Result r = Proc.run(Paths.get("/"), 120, "rm", "-rf", "--one-file-system", dir.toString());
        if (r.exit != 0) System.err.println("[nativetest] rm -rf " + dir + " failed: " + r.stderr);
    }

    /** Runs child processes with a timeout, capturing output as ISO-8859-1 text. */
    public static final class Proc {
        public static final class Result {
            public final int exit;
            public final String stdout, stderr;
            public final List<String> command;
            Result(List<String> command, int exit, String stdout, String stderr) {
                this.command = command; this.exit = exit; this.stdout = stdout; this.stderr = stderr;
            }
            @Override public String toString() {
                return "exit " + exit + (stdout.isEmpty() ? "" : "\nstdout: " + stdout.strip())
                        + (stderr.isEmpty() ? "" : "\nstderr: " + stderr.strip());
            }
        }

        public static Result run(Path cwd, long timeoutSeconds, String... cmd) {
            return run(cwd, timeoutSeconds, null, Arrays.asList(cmd));
        }

        /** {@code program args...} (e.g. bin/strata and a subcommand) in cwd. */
        public static Result runProgram(Path cwd, long timeoutSeconds, Path program, String... args) {
            List<String> cmd = new ArrayList<>(args.length + 1);
            cmd.add(program.toString());
            cmd.addAll(Arrays.asList(args));
            return run(cwd, timeoutSeconds, null, cmd);
        }

        public static Result run(Path cwd, long timeoutSeconds, Map<String, String> env, List<String> cmd) {
            ProcessBuilder pb = new ProcessBuilder(new ArrayList<>(cmd));
            if (cwd != null) pb.directory(cwd.toFile());
            pb.environment().put("LC_ALL", "C");
            // a shared strata daemon a test's command starts ends soon after its last mount (default 300 s),
            // so none outlives the test's namespace (Mounter sets the same for its mounts)
            if (System.getenv("STRATA_DAEMON_IDLE") == null) pb.environment().put("STRATA_DAEMON_IDLE", "5");
            if (env != null) pb.environment().putAll(env);
            Path out = null, err = null;
            try {
                out = Files.createTempFile("strata-nt-out", ".txt");
                err = Files.createTempFile("strata-nt-err", ".txt");
                pb.redirectOutput(out.toFile());
                pb.redirectError(err.toFile());
                pb.redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
                Process p = pb.start();
                if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                    p.destroyForcibly();
                    p.waitFor(10, TimeUnit.SECONDS);
                    return new Result(cmd, 124, read(out), read(err) + "\n[timed out after " + timeoutSeconds + " s]");
                }
                return new Result(cmd, p.exitValue(), read(out), read(err));
            } catch (IOException e) {
                return new Result(cmd, 127, "", "cannot run " + cmd + ": " + e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return new Result(cmd, 130, "", "interrupted");
            } finally {
                try { if (out != null) Files.deleteIfExists(out); if (err != null) Files.deleteIfExists(err); }
                catch (IOException ignored) { }
            }
        }

        private static String read(Path p) throws IOException {
            return new String(Files.readAllBytes(p), StandardCharsets.ISO_8859_1);
        }
    }

    /** True if a program is on PATH. */
    public static boolean onPath(String prog) {
        for (String d : System.getenv().getOrDefault("PATH", "/usr/bin:/bin").split(":")) {
            if (!d.isEmpty() && Files.isExecutable(Paths.get(d, prog))) return true;
        }
        return false;
    }
}
