package dev.strata.nativetest;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code strata mount ARCHIVE} (issue 16) through {@code bin/strata}: the merged tree of a lazy mount
 * equals the mount of the same image imported ({@link Snapshot}: content, modes, owners, xattrs, times,
 * hard links, holes), for an OCI layout (gzip layers), a docker archive (uncompressed layers), a gzip
 * and a plain single layer tar, the first time (the layers are indexed) and the second (reused); the
 * data map and st_blocks of lazy files; a writable lazy mount (copy-up of a lazy file, then read)
 * equals an imported one after the same changes; a corrupt blob is refused and leaves nothing behind.
 */
@Tag("native")
class LazyMountTest {
    Path dir, strata, store, lazyStore;

    @BeforeEach void setUp() {
        NativeSupport.assumeNativeEnvironment();
        org.junit.jupiter.api.Assumptions.assumeTrue(Mounter.Strata.unavailableReason(NativeSupport.projectHome()) == null,
                "strata is not built");
        strata = NativeSupport.projectHome().resolve("bin/strata");
        dir = NativeSupport.newTempDir("lazy-mount");
        store = dir.resolve("store");
        lazyStore = dir.resolve("lazy-store");
    }

    @AfterEach void cleanUp() {
        if (dir == null) return;
        Mounts.unmountAllUnder(dir, strata.toString(), "umount");
        NativeSupport.deleteTree(dir);
    }

    NativeSupport.Proc.Result run(String... args) {
        return NativeSupport.Proc.runProgram(dir, 300, strata, args);
    }

    NativeSupport.Proc.Result ok(String... args) {
        NativeSupport.Proc.Result r = run(args);
        assertEquals(0, r.exit, String.join(" ", args) + ": " + r);
        return r;
    }

    static String sh(String script) {
        NativeSupport.Proc.Result r = NativeSupport.Proc.run(Path.of("/"), 300, "bash", "-ec", script);
        assertEquals(0, r.exit, script + ": " + r);
        return r.stdout;
    }

    static void assertSame(Snapshot a, Snapshot b) {
        List<String> d = Snapshot.diff(a, b, Snapshot.Options.all().dirNlink(false), 40);
        assertTrue(d.isEmpty(), a.label() + " vs " + b.label() + ":\n  " + String.join("\n  ", d));
    }

    /** A layer tar by GNU tar: xattrs, a device, a fifo, hard links, owners, set-id bits, a sparse member, old times. */
    Path baseTar() {
        Path tar = dir.resolve("base.tar");
        sh("cd " + Mounts.sh(dir.toString()) + " && mkdir -p src/etc src/usr/share/doc/pkg src/opt/x src/bin src/dev src/run"
                + " && echo conf > src/etc/conf && echo keep > src/etc/keep && echo doc > src/usr/share/doc/pkg/README"
                + " && echo old1 > src/opt/x/old1 && echo old2 > src/opt/x/old2 && printf '#!/bin/sh\\necho tool\\n' > src/bin/tool"
                + " && chmod 4755 src/bin/tool && ln src/bin/tool src/bin/tool2 && ln -s ../etc/conf src/bin/conf-link"
                + " && head -c 3000001 /dev/urandom > src/opt/big && : > src/opt/empty"
                + " && truncate -s 8M src/opt/sparse && echo data | dd of=src/opt/sparse bs=1 seek=4000000 conv=notrunc status=none"
                + " && mknod src/dev/null c 1 3 && mkfifo src/run/fifo && chown 123:456 src/etc/keep && chmod 0640 src/etc/keep"
                + " && setfattr -n user.bin -v 0x00ff0a3d01 src/etc/conf && setfattr -n trusted.t -v on src/opt/x"
                + " && setfattr -n user.big -v big src/opt/big"
                + " && find src -exec touch -h -d '2019-05-01 12:00:00' {} +"
                + " && tar -S --xattrs --xattrs-include='*' --numeric-owner -C src -cf " + Mounts.sh(tar.toString()) + " .");
        return tar;
    }

    /** base:1 (the layer tar) and mine:1 (base:1 and a second layer: whiteouts, an opaque directory, new files), imported. */
    void images(Path base) {
        ok("image", "import", base.toString(), "--name", "base:1", "--store", store.toString(), "-q");
        Path live = mkdir("live");
        ok("mount", "--image", "base:1", "--store", store.toString(), "--upper", dir.resolve("u0").toString(), live.toString());
        try {
            sh("cd " + Mounts.sh(live.toString()) + " && echo more >> etc/conf && rm -rf usr/share/doc"
                    + " && rm -rf opt/x && mkdir opt/x && echo new > opt/x/new && ln etc/keep etc/keep-link"
                    + " && head -c 200000 /dev/urandom > opt/top && touch -d '2019-06-01' opt/top etc/conf opt/x/new");
            ok("image", "commit", live.toString(), "mine:1", "--store", store.toString());
        } finally {
            ok("umount", live.toString());
        }
    }

    Path mkdir(String name) {
        try {
            return Files.createDirectories(dir.resolve(name));
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /** What an imported image's mount shows. */
    Snapshot imported(String image) {
        Path m = mkdir("ref-" + image.replace(':', '-'));
        ok("mount", "--image", image, "--store", store.toString(), m.toString());
        try {
            return Snapshot.take("imported " + image, m);
        } finally {
            ok("umount", m.toString());
        }
    }

    /** The mount of {@code source} imported as {@code name} (the same archive the lazy mount reads). */
    Snapshot importedFrom(Path source, String name) {
        ok("image", "import", source.toString(), "--name", name, "--store", store.toString(), "-q");
        return imported(name);
    }

    long lazyEntries() throws IOException {
        Path d = lazyStore.resolve("lazy/sha256");
        if (!Files.isDirectory(d)) return 0;
        try (Stream<Path> s = Files.list(d)) {
            return s.count();
        }
    }

    /** A lazy mount of source equals the imported image, twice: the first builds the index, the second reuses it. */
    void lazyEqualsImported(Path source, Snapshot ref, boolean viaOperand, boolean builds) throws IOException {
        long before = lazyEntries(), afterFirst = -1;
        for (int round = 1; round <= 2; round++) {
            Path m = mkdir("lazy-" + source.getFileName() + "-" + round);
            NativeSupport.Proc.Result r = viaOperand
                    ? ok("mount", source.toString(), m.toString(), "--store", lazyStore.toString())
                    : ok("mount", "--archive", source.toString(), "--store", lazyStore.toString(), m.toString());
            try {
                assertTrue(r.stderr.isEmpty() || !r.stderr.contains("Exception"), r.stderr);
                assertSame(ref, Snapshot.take("lazy " + source.getFileName() + " (mount " + round + ")", m));
                // a lazy file is data from end to end (SEEK_DATA/SEEK_HOLE), with the blocks of a written-out file
                String map = sh("python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); "
                        + "print(os.lseek(fd, 0, os.SEEK_DATA), os.lseek(fd, 0, os.SEEK_HOLE), os.fstat(fd).st_blocks)' "
                        + Mounts.sh(m.resolve("opt/big").toString()));
                assertEquals("0 3000001 " + (3000001L + 4095) / 4096 * 8, map.trim(), "data map and st_blocks of a lazy file");
                assertEquals(ref.get("opt/big").sha256(), sh("sha256sum < " + Mounts.sh(m.resolve("opt/big").toString())).split(" ")[0]);
            } finally {
                ok("umount", m.toString());
            }
            if (round == 1) {
                afterFirst = lazyEntries();
                if (builds) assertTrue(afterFirst > before, "the first mount indexed the layers");
                else assertEquals(before, afterFirst, "the layers were indexed before: nothing indexed again");
            } else {
                assertEquals(afterFirst, lazyEntries(), "the second mount reuses the index");
                assertTrue(r.stdout.isEmpty() && r.stderr.isEmpty(), "a quiet mount: " + r);
            }
        }
        Path tmp = lazyStore.resolve("tmp");
        try (Stream<Path> s = Files.list(tmp)) {
            assertEquals(0, s.count(), "nothing left in the store's tmp");
        }
    }

    @Test void lazyMountsEqualTheImportedMounts() throws IOException {
        Path base = baseTar();
        images(base);
        Snapshot baseRef = imported("base:1");
        Path oci = dir.resolve("oci"), docker = dir.resolve("docker.tar");
        ok("image", "export", "mine:1", oci.toString(), "--store", store.toString());
        ok("image", "export", "mine:1", docker.toString(), "--format", "docker-archive", "--store", store.toString());
        sh("cd " + Mounts.sh(dir.toString()) + " && gzip -k base.tar");

        lazyEqualsImported(oci, importedFrom(oci, "oci:1"), true, true);                  // OCI layout: gzip layers
        long afterOci = lazyEntries();
        lazyEqualsImported(docker, importedFrom(docker, "docker:1"), false, false);        // docker archive: uncompressed layers
        assertEquals(afterOci, lazyEntries(), "the docker archive's layers are the OCI layout's (same diff_ids): reused");
        lazyEqualsImported(dir.resolve("base.tar.gz"), baseRef, true, true);    // a gzip layer tar
        lazyEqualsImported(base, baseRef, false, true);                         // a plain layer tar
    }

    @Test void writableLazyMountEqualsAWritableImportedMount() throws IOException {
        Path base = baseTar();
        images(base);
        Path oci = dir.resolve("oci");
        ok("image", "export", "mine:1", oci.toString(), "--store", store.toString());
        Path lazy = mkdir("lazy"), imp = mkdir("imported");
        ok("mount", "--archive", oci.toString(), "--store", lazyStore.toString(), "--upper", dir.resolve("ul").toString(), lazy.toString());
        ok("image", "import", oci.toString(), "--name", "oci:1", "--store", store.toString(), "-q");
        ok("mount", "--image", "oci:1", "--store", store.toString(), "--upper", dir.resolve("ui").toString(), imp.toString());
        try {
            // a read-only open before the copy-up reads the copy after it; chmod, rm, rename, cp of lazy files
            String script = " && exec 3< opt/big && echo tail >> opt/big && sha256sum <&3 && sha256sum opt/big"
                    + " && chmod 0600 etc/keep && rm opt/empty && mv opt/sparse opt/sparse2 && sha256sum opt/sparse2 bin/tool2"
                    + " && cp opt/big opt/big-copy && touch -d '2019-07-01' opt/big opt/big-copy opt";
            String a = sh("cd " + Mounts.sh(lazy.toString()) + script);
            String b = sh("cd " + Mounts.sh(imp.toString()) + script);
            assertEquals(b, a, "the same script gives the same output");
            assertSame(Snapshot.take("imported, changed", imp), Snapshot.take("lazy, changed", lazy));
            // the copied-up file is in the upper in full, data and all
            assertEquals(sh("sha256sum < " + Mounts.sh(dir.resolve("ui/opt/big").toString())),
                    sh("sha256sum < " + Mounts.sh(dir.resolve("ul/opt/big").toString())));
            // image prune keeps the lazy layers a live mount uses, and the mount keeps reading them
            long entries = lazyEntries();
            NativeSupport.Proc.Result p = ok("image", "prune", "--store", lazyStore.toString());
            assertTrue(p.stdout.contains("Kept lazy layer") && !p.stdout.contains("Deleted"), p.toString());
            assertEquals(entries, lazyEntries(), "nothing removed under the live mount");
            assertEquals(sh("sha256sum < " + Mounts.sh(imp.resolve("opt/sparse2").toString())),
                    sh("sha256sum < " + Mounts.sh(lazy.resolve("opt/sparse2").toString())));
        } finally {
            ok("umount", lazy.toString());
            ok("umount", imp.toString());
        }
        // once unmounted, prune removes them (skeleton, tar and index), and frees the tars' bytes
        NativeSupport.Proc.Result p = ok("image", "prune", "--store", lazyStore.toString());
        assertTrue(p.stdout.contains("Deleted lazy layer sha256:") && !p.stdout.contains("Kept"), p.toString());
        assertEquals(0, lazyEntries(), "no lazy layer left");
        assertFalse(p.stdout.contains("Freed 0 B"), p.stdout);
        assertTrue(Mounts.mountedUnder(dir).isEmpty());
    }

    @Test void aCorruptBlobIsRefusedAndLeavesNothing() throws IOException {
        Path base = baseTar();
        images(base);
        Path oci = dir.resolve("oci");
        ok("image", "export", "mine:1", oci.toString(), "--store", store.toString());
        // flip one byte in the middle of the largest blob (a layer)
        sh("cd " + Mounts.sh(oci.resolve("blobs/sha256").toString()) + " && f=$(ls -S | head -1)"
                + " && n=$(stat -c %s $f) && printf 'X' | dd of=$f bs=1 seek=$((n / 2)) conv=notrunc status=none");
        Path m = mkdir("m");
        NativeSupport.Proc.Result r = run("mount", oci.toString(), m.toString(), "--store", lazyStore.toString());
        assertEquals(1, r.exit, r.toString());
        assertTrue(r.stderr.contains("is corrupt") || r.stderr.contains("corrupt or truncated"), r.stderr);
        assertEquals(1, r.stderr.trim().split("\n").length, "one line: " + r.stderr);
        assertFalse(Mounts.isMounted(m), "nothing mounted");
        // only the layers verified before the corrupt one may be there; the corrupt one is not
        Path lazy = lazyStore.resolve("lazy/sha256");
        try (Stream<Path> s = Files.exists(lazy) ? Files.list(lazy) : Stream.empty()) {
            assertTrue(s.count() <= 3, "at most the first layer (dir, tar, index)");
        }
        try (Stream<Path> s = Files.list(lazyStore.resolve("tmp"))) {
            assertEquals(0, s.count(), "nothing left in the store's tmp");
        }
    }
}
