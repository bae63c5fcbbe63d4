package dev.strata.inspect;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MountRegistryTest {
    @TempDir Path tmp;

    private static MountInfo mine(String mountpoint) {
        return MountInfo.ofThisProcess(Path.of(mountpoint), List.of(Path.of("/l1"), Path.of("/l2")), Path.of("/u"), Path.of("/w"));
    }

    @Test void directoryFollowsTheContract() {
        assertEquals(Path.of("/run/user/1000/strata/mounts"),
                MountRegistry.directory(Map.of("XDG_RUNTIME_DIR", "/run/user/1000"), 1000));
        assertEquals(Path.of("/run/strata/mounts"), MountRegistry.directory(Map.of(), 0));
        assertEquals(Path.of("/tmp/strata-1000/strata/mounts"), MountRegistry.directory(Map.of(), 1000));
        assertEquals(Path.of("/tmp/strata-1000/strata/mounts"), MountRegistry.directory(Map.of("XDG_RUNTIME_DIR", ""), 1000));
    }

    @Test void registerWritesTheContractAndCloseDeletes() throws Exception {
        Path dir = tmp.resolve("strata/mounts");
        MountInfo m = mine("/mnt/x");
        Path file;
        try (MountRegistry.Registration r = MountRegistry.register(dir, m)) {
            file = r.file();
            assertTrue(Files.isRegularFile(file));
            JsonNode o = Json.MAPPER.readTree(Files.readAllBytes(file));
            assertEquals("/mnt/x", o.get("mountpoint").asText());
            assertEquals("/l1", o.get("lowerdirs").get(0).asText());
            assertEquals("/l2", o.get("lowerdirs").get(1).asText());
            assertEquals("/u", o.get("upperdir").asText());
            assertEquals("/w", o.get("workdir").asText());
            assertEquals(ProcessHandle.current().pid(), o.get("pid").asLong());
            assertTrue(o.get("start_time").asLong() > 0);
            assertEquals(List.of(m), MountRegistry.list(dir));
        }
        assertFalse(Files.exists(file));
        assertEquals(List.of(), MountRegistry.list(dir));
    }

    @Test void readOnlyMountHasNullUpper() throws Exception {
        Path dir = tmp.resolve("m");
        MountInfo ro = MountInfo.ofThisProcess(Path.of("/mnt/ro"), List.of(Path.of("/l")), null, null);
        try (MountRegistry.Registration r = MountRegistry.register(dir, ro)) {
            JsonNode o = Json.MAPPER.readTree(Files.readAllBytes(r.file()));
            assertTrue(o.get("upperdir").isNull());
            MountInfo back = MountRegistry.read(r.file());
            assertNull(back.upperdir());
            assertNull(back.stack().upperdir());
        }
    }

    @Test void deadOrReusedPidsAreStaleAndCleanedUp() throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("m"));
        Process p = new ProcessBuilder("true").start();
        p.waitFor();
        long dead = p.pid();
        Files.writeString(dir.resolve("dead.json"),
                "{\"mountpoint\":\"/mnt/dead\",\"lowerdirs\":[\"/l\"],\"upperdir\":null,\"workdir\":null,\"pid\":" + dead + "}");
        MountInfo me = mine("/mnt/me");
        Files.writeString(dir.resolve("reused.json"), "{\"mountpoint\":\"/mnt/reused\",\"lowerdirs\":[\"/l\"],\"pid\":"
                + me.pid() + ",\"start_time\":" + (me.startTime() + 1) + "}");
        Files.writeString(dir.resolve("garbage.json"), "{not json");
        Files.writeString(dir.resolve("nolowers.json"), "{\"mountpoint\":\"/mnt/n\",\"lowerdirs\":[],\"pid\":" + me.pid() + "}");
        Files.writeString(dir.resolve("alive.json"),
                "{\"mountpoint\":\"/mnt/alive\",\"lowerdirs\":[\"/l\"],\"upperdir\":\"/u\",\"workdir\":\"/w\",\"pid\":" + me.pid() + "}");
        List<MountInfo> live = MountRegistry.list(dir);
        assertEquals(1, live.size(), live.toString());
        assertEquals(Path.of("/mnt/alive"), live.get(0).mountpoint());
        assertEquals(0, live.get(0).startTime(), "start_time is optional");
        assertEquals(4, MountRegistry.cleanup(dir));
        try (var s = Files.list(dir)) {
            assertEquals(List.of(dir.resolve("alive.json")), s.toList());
        }
    }

    @Test void locateFindsTheInnermostMountAndTheRelativePath() {
        List<MountInfo> live = List.of(mine("/mnt/a"), mine("/mnt/a/b"), mine("/srv"));
        Optional<MountRegistry.Located> at = MountRegistry.locate(live, Path.of("/mnt/a/b/etc/passwd"));
        assertTrue(at.isPresent());
        assertEquals(Path.of("/mnt/a/b"), at.get().mount().mountpoint());
        assertEquals("etc/passwd", at.get().rel());
        assertEquals("x", MountRegistry.locate(live, Path.of("/mnt/a/./c/../x")).get().rel());
        assertEquals("", MountRegistry.locate(live, Path.of("/srv")).get().rel());
        assertTrue(MountRegistry.locate(live, Path.of("/mnt/ab/x")).isEmpty(), "a name prefix is not a path prefix");
        assertTrue(MountRegistry.locate(live, Path.of("/elsewhere")).isEmpty());
    }

    @Test void namesThatAreNotUtf8SurviveTheRecord() throws Exception {
        Path dir = tmp.resolve("m");
        String odd = "/mnt/caf\u00e9"; // byte e9: not UTF-8
        String utf = new String("/mnt/\u65e5".getBytes(StandardCharsets.UTF_8), StandardCharsets.ISO_8859_1);
        try (var r1 = MountRegistry.register(dir, mine(odd)); var r2 = MountRegistry.register(dir, mine(utf))) {
            JsonNode o1 = Json.MAPPER.readTree(Files.readAllBytes(r1.file()));
            assertEquals("latin1", o1.get("names").asText());
            JsonNode o2 = Json.MAPPER.readTree(Files.readAllBytes(r2.file()));
            assertEquals("/mnt/\u65e5", o2.get("mountpoint").asText(), "UTF-8 names are written as text");
            assertNull(o2.get("names"));
            assertEquals(Path.of(odd), MountRegistry.read(r1.file()).mountpoint());
            assertEquals(Path.of(utf), MountRegistry.read(r2.file()).mountpoint());
        }
    }
}
