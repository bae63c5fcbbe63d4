package dev.strata.bench;

import dev.strata.options.MountOptions;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;
import dev.strata.union.Union;
import dev.strata.union.UnionEvents;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.List;

/**
 * Builds layer stacks for the benchmarks under a scratch directory and removes them again. The scratch
 * root is {@code -Dstrata.bench.tmp=DIR} (default /var/tmp, which is disk-backed: /tmp may be tmpfs,
 * where copy-up and page-cache behaviour differ from a real upper layer).
 */
final class BenchFs {
    private BenchFs() {}

    static Path scratch(String what) throws IOException {
        Path base = Paths.get(System.getProperty("strata.bench.tmp", "/var/tmp"));
        return Files.createTempDirectory(base, "strata-jmh-" + what + "-");
    }

    /** A stack: lowers (top first), an upper and a workdir, all under root. */
    static final class Stack {
        final Path root;
        final List<Path> lowers = new ArrayList<>();
        final Path upper, work;

        Stack(Path root, int nLowers) throws IOException {
            this.root = root;
            for (int i = 0; i < nLowers; i++) lowers.add(Files.createDirectories(root.resolve("l" + i)));
            upper = Files.createDirectories(root.resolve("upper"));
            work = Files.createDirectories(root.resolve("work"));
        }

        Union open() {
            MountOptions.Builder b = new MountOptions.Builder();
            b.lowerDirs = lowers;
            b.upperDir = upper;
            b.workDir = work;
            return Union.open(b.build(), UnionEvents.NONE);
        }
    }

    static void file(Path p, int size) throws IOException {
        byte[] b = new byte[size];
        for (int i = 0; i < size; i++) b[i] = (byte) ('a' + i % 26);
        Files.write(p, b);
    }

    /** A kernel-style whiteout (char device 0/0); where mknod is refused, the OCI {@code .wh.NAME} form. */
    static void whiteoutDevice(Path dir, String name) throws IOException {
        int r = Posix.mknodat(Posix.AT_FDCWD, dir.resolve(name).toString(), Posix.S_IFCHR, 0);
        if (r < 0) whiteoutFile(dir, name);
    }

    static void whiteoutFile(Path dir, String name) throws IOException {
        Files.createFile(dir.resolve(".wh." + name));
    }

    /** Opaque through the trusted xattr (root), else the user one, else a {@code .wh..wh..opq} file. */
    static void opaqueXattr(Path dir) throws IOException {
        byte[] y = {'y'};
        if (Posix.lsetxattr(dir.toString(), "trusted.overlay.opaque", y, 0) == 0) return;
        if (Posix.lsetxattr(dir.toString(), "user.overlay.opaque", y, 0) == 0) return;
        opaqueFile(dir);
    }

    static void opaqueFile(Path dir) throws IOException {
        Files.createFile(dir.resolve(".wh..wh..opq"));
    }

    static void xattr(Path p, String name, String value) {
        int r = Posix.lsetxattr(p.toString(), name, value.getBytes(StandardCharsets.ISO_8859_1), 0);
        if (r < 0) throw new IllegalStateException("setxattr " + name + " on " + p + ": " + Posix.strerror(r));
    }

    static byte[] getxattr(Path p, String name) {
        return Posix.lgetxattr(p.toString(), name);
    }

    static Stat lstat(Path p) {
        Stat st = new Stat();
        int r = Posix.fstatat(Posix.AT_FDCWD, p.toString(), st, Posix.AT_SYMLINK_NOFOLLOW);
        if (r < 0) throw new IllegalStateException("lstat " + p + ": " + Posix.strerror(r));
        return st;
    }

    static void check(boolean ok, String what) {
        if (!ok) throw new IllegalStateException("benchmark set-up check failed: " + what);
    }

    interface SetUp {
        void run() throws IOException;
    }

    /**
     * Runs a benchmark's set-up; if it fails, removes {@code root} before rethrowing (JMH does not call
     * the @TearDown of a state whose @Setup threw, so the tree would be left behind).
     */
    static void building(Path root, SetUp body) throws IOException {
        try {
            body.run();
        } catch (IOException | RuntimeException | Error e) {
            try { delete(root); } catch (IOException | RuntimeException suppressed) { e.addSuppressed(suppressed); }
            throw e;
        }
    }

    /** Removes a tree (never follows symlinks); null-safe. */
    static void delete(Path root) throws IOException {
        if (root == null || !Files.exists(root, java.nio.file.LinkOption.NOFOLLOW_LINKS)) return;
        Files.walkFileTree(root, new SimpleFileVisitor<>() {
            @Override public FileVisitResult visitFile(Path f, BasicFileAttributes a) throws IOException {
                Files.delete(f);
                return FileVisitResult.CONTINUE;
            }
            @Override public FileVisitResult postVisitDirectory(Path d, IOException e) throws IOException {
                if (e != null) throw e;
                Files.delete(d);
                return FileVisitResult.CONTINUE;
            }
        });
    }

    /** Empties a directory, keeping it. */
    static void clear(Path dir) throws IOException {
        try (var s = Files.list(dir)) {
            for (Path p : (Iterable<Path>) s::iterator) delete(p);
        }
    }
}
