package dev.strata.image;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import java.util.zip.GZIPOutputStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** kill -9 in the middle of an extraction leaves no half layer, and the next import cleans up. */
class InterruptedImportTest {
    @TempDir Path tmp;

    @Test
    void killedImportLeavesNoHalfLayer() throws Exception {
        // ~96 MiB of files (a small gzip): extraction takes long enough to be caught in the act
        Path src = tmp.resolve("big.tar.gz");
        try (OutputStream os = new GZIPOutputStream(Files.newOutputStream(src), 1 << 16)) {
            RawTar t = new RawTar();
            byte[] data = new byte[64 * 1024];
            for (int i = 0; i < 1536; i++) t.file("d/f" + i, data, 0644);
            os.write(t.bytes());
        }
        Path store = tmp.resolve("store");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process p = new ProcessBuilder(java, "-Dfile.encoding=ISO-8859-1", "-cp", System.getProperty("java.class.path"),
                "dev.strata.cli.Main", "image", "import", src.toString(), "--store", store.toString())
                .redirectErrorStream(true).redirectOutput(tmp.resolve("child.log").toFile()).start();
        boolean caught = false;
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (System.nanoTime() < deadline && p.isAlive()) {
                Path staging = staging(store);
                if (staging != null && Files.exists(staging.resolve("d/f100"))) {
                    p.destroyForcibly(); // SIGKILL
                    caught = true;
                    break;
                }
                Thread.sleep(5);
            }
        } finally {
            p.destroyForcibly();
            p.waitFor(30, TimeUnit.SECONDS);
        }
        assertTrue(caught, "the import finished (or never reached d/f100) before it could be killed: " + Files.readString(tmp.resolve("child.log")));
        assertEquals(List.of(), list(store.resolve("layers/sha256")), "no layer appeared");
        assertEquals(List.of(), list(store.resolve("images")));
        assertTrue(list(store.resolve("tmp")).stream().anyMatch(n -> n.startsWith("layer-")), "the half layer is in tmp");

        ImageStoreTest.Capture c = new ImageStoreTest.Capture();
        Path small = Files.write(tmp.resolve("small.tar"), new RawTar().file("x", "y").bytes());
        ImageStore.open(store).importImage(new ImageStore.ImportRequest(small), c);
        assertTrue(c.said("Removed 1 stale temporary item(s) left by an interrupted import"), c.infos.toString());
        assertEquals(List.of(), list(store.resolve("tmp")));
        assertEquals(1, list(store.resolve("layers/sha256")).stream().filter(n -> !n.endsWith(".json")).count());
    }

    private static Path staging(Path store) throws IOException {
        Path t = store.resolve("tmp");
        if (!Files.isDirectory(t)) return null;
        try (Stream<Path> s = Files.list(t)) {
            return s.filter(x -> x.getFileName().toString().startsWith("layer-")).findFirst().orElse(null);
        }
    }

    private static List<String> list(Path d) throws IOException {
        if (!Files.exists(d)) return List.of();
        try (Stream<Path> s = Files.list(d)) {
            return s.map(x -> x.getFileName().toString()).sorted().collect(Collectors.toList());
        }
    }
}
