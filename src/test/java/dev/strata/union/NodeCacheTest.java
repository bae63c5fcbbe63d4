package dev.strata.union;

import dev.strata.options.MountOptions;
import dev.strata.posix.Errno;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static dev.strata.posix.Posix.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * The node tree under a small bound (-Dstrata.nodeCache): it stays bounded without dropping everything,
 * and what a lookup cannot rebuild survives eviction: st_ino (copied-up files, hard links), open files
 * whose name is removed or renamed, reads that follow a copy-up, renames of evicted entries.
 */
class NodeCacheTest {
    static final int BOUND = 32;
    @TempDir Path tmp;
    Path lower, lower2, upper, work;
    Union u;

    @BeforeEach void layers() throws IOException {
        lower = Files.createDirectories(tmp.resolve("lower"));
        lower2 = Files.createDirectories(tmp.resolve("lower2"));
        upper = Files.createDirectories(tmp.resolve("upper"));
        work = Files.createDirectories(tmp.resolve("work"));
        for (int d = 0; d < 20; d++) {
            for (int f = 0; f < 10; f++) write(lower.resolve("d" + d + "/f" + f), "d" + d + "f" + f + "\n");
        }
        write(lower2.resolve("d0/under"), "from lower2\n");
        Files.createLink(lower.resolve("d1/link"), lower.resolve("d1/f0"));
    }

    @AfterEach void close() {
        if (u != null) u.close();
    }

    void mount() {
        MountOptions.Builder b = new MountOptions.Builder();
        b.lowerDirs = List.of(lower, lower2);
        b.upperDir = upper;
        b.workDir = work;
        String old = System.getProperty("strata.nodeCache");
        System.setProperty("strata.nodeCache", Integer.toString(BOUND));
        try {
            u = Union.open(b.build(), null);
        } finally {
            if (old == null) System.clearProperty("strata.nodeCache"); else System.setProperty("strata.nodeCache", old);
        }
    }

    static void write(Path p, String s) throws IOException {
        Files.createDirectories(p.getParent());
        Files.writeString(p, s, StandardCharsets.ISO_8859_1);
    }

    Stat stat(String path) {
        Stat st = new Stat();
        int r = u.getattr(path, st.pointer());
        assertEquals(0, r, path + ": " + Errno.name(r));
        return st;
    }

    /** Looks up every entry (as find does) and lets the cache drop what it picked. */
    Map<String, Long> statAll() {
        Map<String, Long> inos = new HashMap<>();
        for (int d = 0; d < 20; d++) {
            int[] err = new int[1];
            for (String name : u.list("/d" + d, err)) inos.put("/d" + d + "/" + name, stat("/d" + d + "/" + name).ino());
            inos.put("/d" + d, stat("/d" + d).ino());
        }
        u.overlay().namei.nodes.drainNow();
        return inos;
    }

    /** As statAll, then every directory is taken as a victim: only what is held stays. */
    Map<String, Long> statAllEvictAll() {
        Map<String, Long> inos = statAll();
        u.overlay().namei.nodes.evictAllNow();
        return inos;
    }

    int cachedNodes() {
        return count(u.overlay().rootNode);
    }

    static int count(Node n) {
        int c = 0;
        var kids = n.childrenIfAny();
        if (kids != null) for (Node k : kids.snapshot()) c += 1 + count(k);
        return c;
    }

    @Test void theTreeStaysNearItsBoundAndKeepsTheRecentDirectories() {
        mount();
        statAll();
        int cached = cachedNodes();
        // 20 directories x 11 entries were looked up: the tree keeps about the bound, not everything
        // and not nothing (a cliff would have dropped the whole tree)
        assertTrue(cached <= BOUND + 20, "cached nodes: " + cached);
        assertTrue(cached >= BOUND / 2, "cached nodes: " + cached);
        assertTrue(u.overlay().namei.nodes.dropped.get() > 0);
    }

    @Test void inodeNumbersStayAcrossEviction() throws IOException {
        mount();
        Map<String, Long> before = statAll();
        assertEquals(before.get("/d1/f0"), before.get("/d1/link"));
        // a copy-up keeps the lower number (origin xattr); a copied-up hard link gets the upper one
        assertEquals(0, u.chmod("/d2/f3", 0600));
        assertEquals(0, u.chmod("/d3", 0700));
        long linkIno = stat("/d1/link").ino();
        assertEquals(0, u.chmod("/d1/link", 0600));
        long copiedLink = stat("/d1/link").ino();
        long[] ftruncated = {stat("/d4/f4").ino()};
        int fd = u.open("/d4/f4", O_WRONLY);
        assertTrue(fd >= 0);
        assertEquals(0, u.release(fd));
        for (int i = 0; i < 3; i++) {
            Map<String, Long> after = i == 1 ? statAllEvictAll() : statAll();
            for (Map.Entry<String, Long> e : before.entrySet()) {
                if (e.getKey().equals("/d1/link")) continue;
                assertEquals(e.getValue(), after.get(e.getKey()), e.getKey());
            }
            assertEquals(copiedLink, after.get("/d1/link"));
            assertEquals(ftruncated[0], after.get("/d4/f4"));
        }
        assertEquals(linkIno, before.get("/d1/link"));
        assertTrue(u.overlay().namei.nodes.dropped.get() > 0);
    }

    @Test void anOpenFileRemovedAfterItsNodeWasPickedAnswersFromItsDescriptor() throws IOException {
        mount();
        int fd = u.create("/d0/up", 0644, O_RDWR, 0, 0);
        assertTrue(fd >= 0);
        byte[] data = "upper data\n".getBytes(StandardCharsets.ISO_8859_1);
        var buf = dev.strata.posix.Buffers.get(data.length);
        buf.put(0, data, 0, data.length);
        assertEquals(data.length, u.write(fd, buf, data.length, 0));
        statAllEvictAll();
        assertTrue(cachedNodes() <= 2, "held: the open file and its directory; cached: " + cachedNodes());
        // the name is removed and made again: fstat of the open file must show the removed file,
        // which it can only if the removal reached the node the open file holds
        assertEquals(0, u.unlink("/d0/up"));
        int again = u.create("/d0/up", 0644, O_WRONLY, 0, 0);
        assertTrue(again >= 0);
        Stat st = new Stat();
        assertEquals(0, u.fgetattr(fd, st.pointer()));
        assertEquals(data.length, st.size());
        assertEquals(0, st.nlink());
        assertEquals(0, stat("/d0/up").size());
        assertEquals(0, u.release(again));
        assertEquals(0, u.release(fd));
    }

    @Test void aReadOnlyOpenFollowsACopyUpMadeAfterEviction() throws IOException {
        mount();
        int ro = u.open("/d5/f5", O_RDONLY);
        assertTrue(ro >= 0);
        statAllEvictAll();
        int rw = u.open("/d5/f5", O_WRONLY | O_APPEND);
        assertTrue(rw >= 0);
        byte[] more = "more\n".getBytes(StandardCharsets.ISO_8859_1);
        var buf = dev.strata.posix.Buffers.get(more.length);
        buf.put(0, more, 0, more.length);
        assertEquals(more.length, u.write(rw, buf, more.length, "d5f5\n".length()));
        var in = dev.strata.posix.Buffers.get(64);
        long n = u.read(ro, in, 64, 0);
        byte[] got = new byte[(int) n];
        in.get(0, got, 0, got.length);
        assertEquals("d5f5\nmore\n", new String(got, StandardCharsets.ISO_8859_1));
        u.release(rw);
        u.release(ro);
    }

    @Test void renamesAndRemovalsOfEvictedEntries() throws IOException {
        mount();
        assertEquals(0, u.mkdir("/new", 0755, 0, 0));
        for (int i = 0; i < 5; i++) {
            int fd = u.create("/new/n" + i, 0644, O_WRONLY, 0, 0);
            assertTrue(fd >= 0);
            assertEquals(0, u.release(fd));
        }
        statAllEvictAll();
        assertEquals(0, cachedNodes());
        assertEquals(0, u.rename("/new", "/renamed", 0));
        assertEquals(-Errno.ENOENT, u.getattr("/new/n1", new Stat().pointer()));
        for (int i = 0; i < 5; i++) stat("/renamed/n" + i);
        statAll();
        assertEquals(0, u.rename("/d6/f6", "/d7/moved", 0));
        statAll();
        assertEquals(-Errno.ENOENT, u.getattr("/d6/f6", new Stat().pointer()));
        assertEquals("d6f6\n".length(), stat("/d7/moved").size());
        assertEquals(0, u.unlink("/d8/f8"));
        statAll();
        assertEquals(-Errno.ENOENT, u.getattr("/d8/f8", new Stat().pointer()));
        int[] err = new int[1];
        assertFalse(u.list("/d8", err).contains("f8"));
        // the merged directory still merges its lower2 part after eviction
        assertTrue(u.list("/d0", err).contains("under"));
        assertTrue(Files.exists(upper.resolve("d7/moved")));
        Stat wh = new Stat();
        assertEquals(0, Posix.fstatat(AT_FDCWD, upper.resolve("d8/f8").toString(), wh, AT_SYMLINK_NOFOLLOW));
        assertTrue(wh.isWhiteoutDevice() || Files.exists(upper.resolve("d8/.wh.f8")));
    }

    @Test void aQuietMountDropsWhatNothingHoldsUnlessAnOperationHoldsTheEngine() throws Exception {
        mount();
        int fd = u.open("/d3/f3", O_RDONLY);
        assertTrue(fd >= 0);
        Map<String, Long> before = statAll();
        assertTrue(cachedNodes() > 2, "cached: " + cachedNodes());
        // an operation holds the engine's lock (here: a reader on another thread): nothing is dropped
        var held = new java.util.concurrent.CountDownLatch(1);
        var done = new java.util.concurrent.CountDownLatch(1);
        Thread t = new Thread(() -> {
            u.overlay().lock.readLock().lock();
            try {
                held.countDown();
                done.await();
            } catch (InterruptedException ignored) {
                // the test ends
            } finally {
                u.overlay().lock.readLock().unlock();
            }
        });
        t.start();
        held.await();
        int cached = cachedNodes();
        assertEquals(-1, u.dropCachedNodes());
        assertEquals(cached, cachedNodes());
        done.countDown();
        t.join();
        // free: all but the open file's node and its directory go, and lookups give what they gave
        assertEquals(cached - 2, u.dropCachedNodes());
        assertEquals(2, cachedNodes(), "held: the open file and its directory");
        assertEquals(0, u.dropCachedNodes());
        Map<String, Long> after = statAll();
        assertEquals(before, after);
        assertEquals(0, u.release(fd));
    }
}
