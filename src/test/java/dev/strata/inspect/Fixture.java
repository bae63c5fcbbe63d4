package dev.strata.inspect;

import dev.strata.layer.Markers.OpaqueForm;
import dev.strata.layer.Markers.WhiteoutForm;
import dev.strata.posix.Errno;
import dev.strata.posix.Posix;
import org.junit.jupiter.api.Assumptions;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Builds layer directories for tests: files, directories, links, and every whiteout and opaque form. */
final class Fixture {
    final Path root;
    final List<Path> lowers = new ArrayList<>();
    Path upper;

    Fixture(Path root) { this.root = root; }

    /** Creates the lower layers lower1..lowerN (top first) and, if asked, an upper. */
    static Fixture of(Path tmp, int lowers, boolean upper) throws IOException {
        Fixture f = new Fixture(tmp);
        if (upper) f.upper = Files.createDirectories(tmp.resolve("upper"));
        for (int i = 1; i <= lowers; i++) f.lowers.add(Files.createDirectories(tmp.resolve("lower" + i)));
        return f;
    }

    Path upper() { return upper; }
    Path lower(int i) { return lowers.get(i - 1); }

    StackSpec spec() { return new StackSpec(lowers, upper); }
    Stack open() { return Stack.open(spec()); }

    String lowerdirOption() {
        StringBuilder sb = new StringBuilder();
        for (Path p : lowers) sb.append(sb.length() > 0 ? ":" : "").append(p);
        return sb.toString();
    }

    static Path file(Path layer, String rel, String content) throws IOException {
        Path p = layer.resolve(rel);
        Files.createDirectories(p.getParent());
        Files.write(p, content.getBytes(StandardCharsets.ISO_8859_1));
        return p;
    }

    /** A file whose name is a byte string (may be invalid UTF-8): made with the native call, not NIO. */
    static void rawFile(Path layer, String relBytes, String content) {
        int fd = Posix.openat(Posix.AT_FDCWD, layer + "/" + relBytes, Posix.O_CREAT | Posix.O_WRONLY | Posix.O_TRUNC, 0644);
        if (fd < 0) throw new IllegalStateException("create " + relBytes + ": " + Errno.name(fd));
        byte[] b = content.getBytes(StandardCharsets.ISO_8859_1);
        jnr.ffi.Pointer buf = jnr.ffi.Memory.allocateDirect(Posix.RT, Math.max(1, b.length));
        buf.put(0, b, 0, b.length);
        Posix.pwrite(fd, buf, b.length, 0);
        Posix.close(fd);
    }

    static Path dir(Path layer, String rel) throws IOException { return Files.createDirectories(layer.resolve(rel)); }

    static Path symlink(Path layer, String rel, String target) throws IOException {
        Path p = layer.resolve(rel);
        Files.createDirectories(p.getParent());
        return Files.createSymbolicLink(p, Path.of(target));
    }

    /** Writes a whiteout of rel in the given form; skips the test where this user may not make that form. */
    static void whiteout(Path layer, String rel, WhiteoutForm form) throws IOException {
        Path p = layer.resolve(rel);
        Files.createDirectories(p.getParent());
        switch (form) {
            case CHAR_DEVICE: {
                int r = Posix.mknodat(Posix.AT_FDCWD, p.toString(), Posix.S_IFCHR | 0644, 0);
                Assumptions.assumeTrue(r == 0, "mknod of a 0/0 character device refused here: " + Errno.name(r));
                break;
            }
            case WH_FILE:
                Files.write(p.getParent().resolve(".wh." + p.getFileName()), new byte[0]);
                break;
            case XATTR:
                Files.write(p, new byte[0]);
                setxattr(p, "user.overlay.whiteout", "");
                break;
            default: throw new AssertionError(form);
        }
    }

    /** A zero-size file with trusted.overlay.whiteout (the kernel's form; needs CAP_SYS_ADMIN). */
    static void trustedXattrWhiteout(Path layer, String rel) throws IOException {
        Path p = layer.resolve(rel);
        Files.createDirectories(p.getParent());
        Files.write(p, new byte[0]);
        int r = Posix.lsetxattr(p.toString(), "trusted.overlay.whiteout", new byte[0], 0);
        Assumptions.assumeTrue(r == 0, "trusted.* xattrs refused here (needs root): " + Errno.name(r));
    }

    /** Makes directory rel opaque in the given form; skips the test where this user may not. */
    static Path opaque(Path layer, String rel, OpaqueForm form) throws IOException {
        Path p = Files.createDirectories(layer.resolve(rel));
        switch (form) {
            case TRUSTED_XATTR: {
                int r = Posix.lsetxattr(p.toString(), "trusted.overlay.opaque", "y".getBytes(StandardCharsets.US_ASCII), 0);
                Assumptions.assumeTrue(r == 0, "trusted.* xattrs refused here (needs root): " + Errno.name(r));
                break;
            }
            case USER_XATTR:
                setxattr(p, "user.overlay.opaque", "y");
                break;
            case WH_OPQ_FILE:
                Files.write(p.resolve(".wh..wh..opq"), new byte[0]);
                break;
            default: throw new AssertionError(form);
        }
        return p;
    }

    static void setxattr(Path p, String name, String value) {
        int r = Posix.lsetxattr(p.toString(), name, value.getBytes(StandardCharsets.ISO_8859_1), 0);
        if (r != 0) throw new IllegalStateException("setxattr " + name + " on " + p + ": " + Errno.name(r));
    }

    static boolean isRoot() { return Posix.geteuid() == 0; }
}
