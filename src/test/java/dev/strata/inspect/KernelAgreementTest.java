package dev.strata.inspect;

import dev.strata.posix.Posix;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The kernel's overlayfs is the oracle: the same layer directories are mounted with
 * {@code mount -t overlay} and every path of every layer is explained; what explain says is visible
 * (type, and for non-directories the very inode) must be what the kernel shows, and the merged listing
 * must be the kernel's. Only the marker forms the kernel reads are used (0/0 devices, overlay.whiteout
 * xattrs, overlay.opaque=y; trusted.* by default, user.* with the userxattr option). Needs root.
 */
@Tag("native")
class KernelAgreementTest {
    @TempDir Path tmp;

    @BeforeAll static void needsRootAndOverlay() throws IOException {
        Assumptions.assumeTrue(Posix.geteuid() == 0, "needs root to mount the kernel overlay");
        Assumptions.assumeTrue(Files.readString(Path.of("/proc/filesystems")).contains("\toverlay\n"),
                "the kernel has no overlay filesystem");
    }

    /** What a path of the merged view is: type, and the inode for non-directories. */
    record Seen(String type, long ino) {}

    @Test void handBuiltStackWithUpper() throws Exception {
        Fixture f = Fixture.of(tmp.resolve("layers"), 2, true);
        Fixture.file(f.lower(2), "etc/passwd", "root");
        Fixture.file(f.lower(2), "etc/ssh/sshd_config", "cfg");
        Fixture.file(f.lower(2), "opt/big", "x".repeat(1000));
        Fixture.file(f.lower(2), "var/log/old", "o");
        Fixture.file(f.lower(2), "mixed/x", "under a file");
        Fixture.file(f.lower(1), "etc/hosts", "h");
        whiteoutDev(f.lower(1), "opt/big");
        Fixture.dir(f.lower(1), "var/log");
        xattr(f.lower(1).resolve("var/log"), "trusted.overlay.opaque", "y");
        Fixture.file(f.lower(1), "var/log/new", "n");
        Fixture.file(f.lower(1), "mixed", "a file between two dirs");
        Fixture.file(f.upper(), "etc/passwd", "root changed");
        whiteoutDev(f.upper(), "etc/ssh");
        Fixture.file(f.upper(), "mixed/top", "t");
        // an xattr whiteout: the kernel lists it unless the directory (and layer root) say "x"
        xattr(f.upper(), "trusted.overlay.opaque", "x");
        Fixture.dir(f.upper(), "etc");
        xattr(f.upper().resolve("etc"), "trusted.overlay.opaque", "x");
        Path xw = Fixture.file(f.upper(), "etc/hosts", "");
        xattr(xw, "trusted.overlay.whiteout", "");
        Fixture.symlink(f.upper(), "link", "etc");
        compare(f, false);
    }

    @Test void explainAndDiffFindAKernelOverlayMount() throws Exception {
        Fixture f = Fixture.of(tmp.resolve("layers"), 1, true);
        Fixture.file(f.lower(1), "etc/passwd", "root");
        Fixture.file(f.lower(1), "etc/hosts", "h");
        whiteoutDev(f.upper(), "etc/hosts");
        Fixture.file(f.upper(), "new", "n");
        Path mnt = Files.createDirectories(tmp.resolve("mnt with space"));
        Path work = Files.createDirectories(tmp.resolve("work"));
        run("mount", "-t", "overlay", "overlay", "-o", "lowerdir=" + f.lower(1) + ",upperdir=" + f.upper() + ",workdir=" + work,
                mnt.toString());
        try {
            var r = InspectCommandsTest.run("explain", mnt + "/etc/passwd");
            assertEquals(0, r.code(), r.err());
            assertTrue(r.out().contains("verdict: /etc/passwd is the regular file of lower1"), r.out());
            var d = InspectCommandsTest.run("diff", mnt.toString());
            assertEquals(0, d.code(), d.err());
            assertTrue(d.out().contains("D /etc/hosts\n") && d.out().contains("A /new\n"), d.out());
            var inside = InspectCommandsTest.run("diff", mnt + "/etc");
            assertEquals(1, inside.code());
            assertEquals("strata: " + mnt + "/etc is not a mount point: it is inside the kernel overlay mount at " + mnt + "\n",
                    inside.err(), "not a strata mount");
        } finally {
            run("umount", mnt.toString());
        }
    }

    @ParameterizedTest @ValueSource(ints = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
    void randomStacks(int seed) throws Exception {
        boolean user = seed % 2 == 0;
        Random rnd = new Random(seed);
        int lowers = 2 + rnd.nextInt(3);
        Fixture f = Fixture.of(tmp.resolve("layers"), lowers, seed % 3 == 0);
        List<Path> all = new ArrayList<>();
        if (f.upper() != null) all.add(f.upper());
        all.addAll(f.lowers);
        String ns = user ? "user" : "trusted";
        for (Path layer : all) {
            xattr(layer, ns + ".overlay.opaque", "x");
            generate(rnd, layer, layer, 0, ns);
        }
        compare(f, user);
    }

    private static final String[] NAMES = {"a", "b", "c", "d"};

    /** Fills directory dir of a layer with random entries (kernel marker forms only). */
    private static void generate(Random rnd, Path layer, Path dir, int depth, String ns) throws IOException {
        boolean opaque = "y".equals(getxattr(dir, ns + ".overlay.opaque"));
        for (String n : NAMES) {
            Path p = dir.resolve(n);
            int r = rnd.nextInt(100);
            if (r < 30) continue;
            if (r < 52) { Files.writeString(p, "x".repeat(rnd.nextInt(50))); continue; }
            if (r < 80 && depth < 3) {
                Files.createDirectory(p);
                if (rnd.nextInt(5) == 0) xattr(p, ns + ".overlay.opaque", "y");
                else xattr(p, ns + ".overlay.opaque", "x");
                generate(rnd, layer, p, depth + 1, ns);
                continue;
            }
            if (r < 92 && !opaque) {
                if (rnd.nextBoolean() || ns.equals("user")) {
                    Files.write(p, new byte[0]);
                    xattr(p, ns + ".overlay.whiteout", "");
                } else {
                    whiteoutDev(dir, n);
                }
                continue;
            }
            if (r < 96) { Files.createSymbolicLink(p, Path.of(NAMES[rnd.nextInt(NAMES.length)])); continue; }
            Files.writeString(p, "file");
        }
    }

    private void compare(Fixture f, boolean userxattr) throws Exception {
        Map<String, Seen> mine = new TreeMap<>();
        TreeSet<String> universe = new TreeSet<>();
        List<String> explained = new ArrayList<>();
        try (Stack s = f.open()) {
            walkMerged(s, Lookup.root(s, s.all()), mine);
            List<Path> layers = new ArrayList<>();
            if (f.upper() != null) layers.add(f.upper());
            layers.addAll(f.lowers);
            for (Path l : layers) universe.addAll(pathsOf(l));
            Explainer ex = new Explainer(s);
            for (String p : universe) {
                Explanation e = ex.explain(p);
                boolean visible = e.verdict == Explanation.Verdict.FILE || e.verdict == Explanation.Verdict.DIR;
                explained.add(p + " " + (visible ? "visible" : "gone") + (visible && e.verdict == Explanation.Verdict.FILE
                        ? " ino " + e.says.get(e.verdictLayer).raw().probe().node().ino() : ""));
            }
        }
        Map<String, Seen> kernel = new TreeMap<>();
        List<String> kernelSays = new ArrayList<>();
        Path mnt = Files.createDirectories(tmp.resolve("mnt"));
        StringBuilder opts = new StringBuilder("lowerdir=" + f.lowerdirOption());
        if (f.upper() != null) {
            Path work = Files.createDirectories(tmp.resolve("work"));
            opts.append(",upperdir=").append(f.upper()).append(",workdir=").append(work);
        }
        if (userxattr) opts.append(",userxattr");
        run("mount", "-t", "overlay", "overlay", "-o", opts.toString(), mnt.toString());
        try {
            walkKernel(mnt, kernel);
            for (String p : universe) {
                Seen k = kernelLookup(mnt, p);
                kernelSays.add(p + " " + (k == null ? "gone" : "visible") + (k != null && !k.type.equals("dir") ? " ino " + k.ino : ""));
            }
        } finally {
            run("umount", mnt.toString());
        }
        // Kernel quirk: a directory that is not merged (one layer only) is listed straight from that layer,
        // whiteouts included, though they cannot be looked up; strata never lists a whiteout. Every such
        // name must be one that explain calls whited out.
        List<String> listedWhiteouts = new ArrayList<>();
        kernel.entrySet().removeIf(e -> {
            if (!e.getValue().type.startsWith("unstatable")) return false;
            listedWhiteouts.add(e.getKey());
            return true;
        });
        try (Stack s = f.open()) {
            for (String p : listedWhiteouts) {
                Explanation e = new Explainer(s).explain(p);
                assertEquals(Explanation.Verdict.WHITED_OUT, e.verdict, p + ": the kernel lists it but cannot stat it");
                assertTrue(e.verdictText.contains("note: kernel overlayfs"), e.verdictText);
            }
        }
        assertEquals(kernel, mine, "the merged tree (readdir + lstat) differs from the kernel's");
        assertEquals(kernelSays, explained, "explain's verdicts differ from the kernel's");
        assertTrue(universe.size() > 0);
    }

    /** The merged tree as strata's listing sees it. */
    private static void walkMerged(Stack s, Lookup dir, Map<String, Seen> out) {
        Listing l = Listing.read(s, dir);
        for (Lookup lk : l.visible()) {
            Node n = lk.topProbe().node();
            out.put(lk.rel, new Seen(n.typeKey(), n.isDir() ? 0 : n.ino()));
            if (lk.result == Lookup.Result.DIR) walkMerged(s, lk, out);
        }
    }

    /** The merged tree as the kernel shows it (links not followed). */
    private static void walkKernel(Path mnt, Map<String, Seen> out) throws IOException {
        Files.walkFileTree(mnt, new SimpleFileVisitor<>() {
            @Override public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes a) {
                if (!dir.equals(mnt)) out.put(mnt.relativize(dir).toString(), new Seen("dir", 0));
                return FileVisitResult.CONTINUE;
            }
            @Override public FileVisitResult visitFile(Path file, BasicFileAttributes a) throws IOException {
                String t = a.isRegularFile() ? "file" : a.isSymbolicLink() ? "symlink" : "other";
                long ino = (Long) Files.getAttribute(file, "unix:ino", LinkOption.NOFOLLOW_LINKS);
                out.put(mnt.relativize(file).toString(), new Seen(t, ino));
                return FileVisitResult.CONTINUE;
            }
            @Override public FileVisitResult visitFileFailed(Path file, IOException e) {
                // the kernel listed a name it cannot stat (e.g. an xattr whiteout it did not filter)
                out.put(mnt.relativize(file).toString(), new Seen("unstatable: " + e.getClass().getSimpleName(), 0));
                return FileVisitResult.CONTINUE;
            }
        });
    }

    /** lstat through the mount, one component at a time so no link is followed; null if not there. */
    private static Seen kernelLookup(Path mnt, String rel) throws IOException {
        Path cur = mnt;
        String[] parts = rel.split("/");
        for (int i = 0; i < parts.length; i++) {
            cur = cur.resolve(parts[i]);
            BasicFileAttributes a;
            try {
                a = Files.readAttributes(cur, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
            } catch (IOException e) {
                return null;
            }
            if (i < parts.length - 1 && !a.isDirectory()) return null;
            if (i == parts.length - 1) {
                String t = a.isDirectory() ? "dir" : a.isRegularFile() ? "file" : a.isSymbolicLink() ? "symlink" : "other";
                return new Seen(t, (Long) Files.getAttribute(cur, "unix:ino", LinkOption.NOFOLLOW_LINKS));
            }
        }
        return null;
    }

    /** Every path that exists in a layer (markers included: the kernel is asked about them too). */
    private static List<String> pathsOf(Path layer) throws IOException {
        List<String> out = new ArrayList<>();
        Files.walkFileTree(layer, new SimpleFileVisitor<>() {
            @Override public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes a) {
                if (!dir.equals(layer)) out.add(layer.relativize(dir).toString());
                return FileVisitResult.CONTINUE;
            }
            @Override public FileVisitResult visitFile(Path file, BasicFileAttributes a) {
                out.add(layer.relativize(file).toString());
                return FileVisitResult.CONTINUE;
            }
        });
        return out;
    }

    private static void whiteoutDev(Path layer, String rel) throws IOException {
        Path p = layer.resolve(rel);
        Files.createDirectories(p.getParent());
        int r = Posix.mknodat(Posix.AT_FDCWD, p.toString(), Posix.S_IFCHR | 0644, 0);
        if (r != 0) throw new IOException("mknod " + p + ": " + r);
    }

    private static void xattr(Path p, String name, String value) {
        Fixture.setxattr(p, name, value);
    }

    private static String getxattr(Path p, String name) {
        byte[] v = Posix.lgetxattr(p.toString(), name);
        return v == null ? null : new String(v, StandardCharsets.ISO_8859_1);
    }

    private static void run(String... cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        if (!p.waitFor(30, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IOException(String.join(" ", cmd) + ": timed out");
        }
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (p.exitValue() != 0) throw new IOException(String.join(" ", cmd) + ": exit " + p.exitValue() + ": " + out);
    }
}
