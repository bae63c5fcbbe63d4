package dev.strata.fuse.kernel;

import dev.strata.fuse.kernel.Inodes.KNode;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class InodesTest {
    private final Inodes t = new Inodes();

    @Test void pathsAreBuiltFromTheNamesTheKernelHolds() {
        KNode a = t.lookup(t.root, "a", 10, false);
        KNode b = t.lookup(a, "b", 11, false);
        assertEquals("/", t.path(t.root));
        assertEquals("/a/b", t.path(b));
        assertEquals("/a/b/c", t.childPath(b, "c"));
        assertEquals("/x", t.childPath(t.root, "x"));
        assertSame(b, t.find("/a/b"));
        assertNull(t.find("/a/zz"));
    }

    @Test void aNameLookedUpAgainKeepsItsIdAndCountsReferences() {
        KNode a1 = t.lookup(t.root, "a", 10, false);
        KNode a2 = t.lookup(t.root, "a", 10, false);
        assertSame(a1, a2);
        assertEquals(2, a1.lookups);
        t.forget(a1.id, 1);
        assertSame(a1, t.get(a1.id));
        t.forget(a1.id, 1);
        assertNull(t.get(a1.id), "forgotten by the kernel: gone");
        KNode a3 = t.lookup(t.root, "a", 10, false);
        assertNotEquals(a1.id, a3.id, "ids are never reused");
    }

    @Test void aRemovedNameDetachesItsNodeUntilForgotten() {
        KNode a = t.lookup(t.root, "a", 10, false);
        assertSame(a, t.remove(t.root, "a"));
        assertNull(t.path(a), "no path once removed");
        assertSame(a, t.get(a.id), "still known for open files");
        KNode again = t.lookup(t.root, "a", 12, false);
        assertNotEquals(a.id, again.id, "a new object under the old name is a new kernel inode");
        t.forget(a.id, 1);
        assertNull(t.get(a.id));
        assertSame(again, t.find("/a"), "forgetting the detached node leaves the new name alone");
    }

    @Test void renameMovesTheSourceAndDetachesTheTarget() {
        KNode d = t.lookup(t.root, "d", 1, false);
        KNode f = t.lookup(d, "f", 2, false);
        KNode g = t.lookup(t.root, "g", 3, false);
        KNode sub = t.lookup(d, "sub", 4, false);
        KNode leaf = t.lookup(sub, "leaf", 5, false);
        assertSame(g, t.rename(d, "f", t.root, "g", false));
        assertEquals("/g", t.path(f));
        assertNull(t.path(g));
        t.rename(d, "sub", t.root, "moved", false);
        assertEquals("/moved/leaf", t.path(leaf), "descendants follow a directory rename");
    }

    @Test void exchangeSwapsTheTwoNodes() {
        KNode a = t.lookup(t.root, "a", 1, false);
        KNode b = t.lookup(t.root, "b", 2, false);
        assertNull(t.rename(t.root, "a", t.root, "b", true));
        assertEquals("/b", t.path(a));
        assertEquals("/a", t.path(b));
    }

    @Test void theOtherNamesOfAMultiLinkFileAreFoundByInodeNumber() {
        KNode x = t.lookup(t.root, "x", 77, true);
        KNode y = t.lookup(t.root, "y", 77, true);
        KNode z = t.lookup(t.root, "z", 78, false);
        assertArrayEquals(new long[]{y.id}, t.siblings(77, x));
        assertEquals(0, t.siblings(78, z).length, "single-link files are not tracked");
        t.markLinked(z, 77);
        assertEquals(2, t.siblings(77, x).length, "a name linked through the mount joins");
        t.forget(y.id, 1);
        assertArrayEquals(new long[]{z.id}, t.siblings(77, x), "forgotten nodes leave the set");
    }
}
