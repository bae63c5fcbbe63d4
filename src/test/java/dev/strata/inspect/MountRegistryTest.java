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

    @Test void aRecordIsLiveExactlyWhileItsLockIsHeldWhateverItsPid() throws Exception {
        Path dir = tmp.resolve("strata/mounts");
        Process p = new ProcessBuilder("true").start();
        p.waitFor();
        long dead = p.pid();
        // a daemon in another PID namespace: its pid is not (or is another process) here, its lock is held
        MountInfo other = new MountInfo(Path.of("/mnt/otherns"), List.of(Path.of("/l")), null, null, dead, 0);
        try (MountRegistry.Registration held = MountRegistry.register(dir, other)) {
            // records without a lock: whatever their pid says, nobody keeps them alive
            MountInfo me = mine("/mnt/me");
            Files.writeString(dir.resolve("unlocked.json"), "{\"mountpoint\":\"/mnt/unlocked\",\"lowerdirs\":[\"/l\"],\"pid\":"
                    + me.pid() + ",\"start_time\":" + me.startTime() + ",\"lock\":\"flock\"}");
            // a record of an older strata (no "lock"): judged by its pid, as before
            Files.writeString(dir.resolve("legacy.json"), "{\"mountpoint\":\"/mnt/legacy\",\"lowerdirs\":[\"/l\"],\"pid\":"
                    + me.pid() + ",\"start_time\":" + me.startTime() + "}");
            Files.writeString(dir.resolve("legacydead.json"), "{\"mountpoint\":\"/mnt/legacydead\",\"lowerdirs\":[\"/l\"],\"pid\":"
                    + dead + "}");
            Files.writeString(dir.resolve("garbage.json"), "{not json");
            List<Path> live = MountRegistry.list(dir).stream().map(MountInfo::mountpoint).sorted().toList();
            assertEquals(List.of(Path.of("/mnt/legacy"), Path.of("/mnt/otherns")), live);
            assertEquals(3, MountRegistry.cleanup(dir));
            try (MountRegistry.Registration again = MountRegistry.register(dir, mine("/mnt/second"))) {
                assertTrue(Files.exists(held.file()), "registering another mount keeps the live record");
                assertEquals(3, MountRegistry.list(dir).size());
            }
            Files.delete(dir.resolve("legacy.json"));
            try (var s = Files.list(dir)) {
                assertEquals(List.of(held.file()), s.toList());
            }
        }
        assertEquals(List.of(), MountRegistry.list(dir));
    }

    @Test void modesDoNotDependOnTheUmaskAndLooseOnesAreTightened() throws Exception {
        Path dir = tmp.resolve("rt/strata/mounts");
        int old = dev.strata.posix.Posix.umask(0); // as in the mount daemon
        try {
            try (MountRegistry.Registration r = MountRegistry.register(dir, mine("/mnt/m"))) {
                assertEquals("rw-r--r--", mode(r.file()));
                assertEquals("rwx------", mode(dir));
                assertEquals("rwx------", mode(dir.getParent()));
            }
            Files.setPosixFilePermissions(dir, java.nio.file.attribute.PosixFilePermissions.fromString("rwxrwxrwx"));
            Files.setPosixFilePermissions(dir.getParent(), java.nio.file.attribute.PosixFilePermissions.fromString("rwxrwxrwx"));
            try (MountRegistry.Registration r = MountRegistry.register(dir, mine("/mnt/m"))) {
                assertEquals("rwx------", mode(dir), "an old world-writable registry is tightened");
                assertEquals("rwx------", mode(dir.getParent()));
            }
        } finally {
            dev.strata.posix.Posix.umask(old);
        }
        assertEquals(java.util.Set.copyOf(java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x")),
                MountRegistry.dirMode(Path.of("/run/strata/mounts")), "root's system registry is readable by all");
    }

    private static String mode(Path p) throws java.io.IOException {
        return java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(p));
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
