package dev.strata.fuse.kernel;

import dev.strata.fuse.Log;
import dev.strata.options.MountOptions;
import dev.strata.posix.Stat;
import dev.strata.union.Union;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The daemon's rest passes drop the cached engine nodes of a mount that has been quiet for
 * {@link Rest#IDLE_DROP_MS}, once per quiet spell, and leave a mount that served a request since alone
 * (the transport is not started: the mounts' {@link KernelFS#servedAt} stands for their workers; they
 * are not in {@link Rest#MOUNTS}, so a watcher another test started does not drop them meanwhile).
 */
class RestTest {
    @TempDir Path tmp;
    final List<Union> unions = new ArrayList<>();

    @AfterEach void close() {
        for (Union u : unions) u.close();
    }

    KernelFS mount(String name) throws IOException {
        Path lower = tmp.resolve(name + "/lower");
        for (int d = 0; d < 5; d++) {
            for (int f = 0; f < 5; f++) {
                Path p = lower.resolve("d" + d + "/f" + f);
                Files.createDirectories(p.getParent());
                Files.writeString(p, name);
            }
        }
        MountOptions.Builder b = new MountOptions.Builder();
        b.lowerDirs = List.of(lower);
        b.upperDir = Files.createDirectories(tmp.resolve(name + "/upper"));
        b.workDir = Files.createDirectories(tmp.resolve(name + "/work"));
        b.passthrough = false;
        Union u = Union.open(b.build(), null);
        unions.add(u);
        KernelFS fs = new KernelFS(u, -1, new Log(false), false, -1);
        return fs;
    }

    static void lookUpAll(Union u) {
        Stat st = new Stat();
        for (int d = 0; d < 5; d++) {
            for (int f = 0; f < 5; f++) assertEquals(0, u.getattr("/d" + d + "/f" + f, st.pointer()));
        }
    }

    @Test void onlyAMountQuietLongEnoughLosesItsCacheAndOnlyOncePerQuietSpell() throws IOException {
        assertTrue(Rest.IDLE_DROP_MS > 0);
        KernelFS quiet = mount("quiet"), busy = mount("busy");
        lookUpAll(quiet.union);
        lookUpAll(busy.union);
        long idle = Rest.IDLE_DROP_MS * 1_000_000L;
        quiet.servedAt = System.nanoTime() - idle - 1_000_000_000L;
        busy.servedAt = System.nanoTime() + 60_000_000_000L; // a request "now" for the whole test
        List<KernelFS> both = List.of(quiet, busy);
        assertEquals(30, Rest.dropIdle(both), "5 directories and their 25 files of the quiet mount");
        assertEquals(0, Rest.dropIdle(both), "nothing came since: not again");
        // a request came (and looked everything up again), then the mount was quiet again
        lookUpAll(quiet.union);
        quiet.servedAt = System.nanoTime() - idle - 1;
        assertEquals(30, Rest.dropIdle(both));
        // the busy mount kept its nodes all along
        assertEquals(30, busy.union.dropCachedNodes());
    }
}
