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
        assertEquals(b, t.find("/a/b"));
        assertNull(t.find("/a/zz"));
    }

    @Test void aDirectoryOfManyNamesFindsEachOneTillItIsForgottenOrRemoved() {
        KNode d = t.lookup(t.root, "d", 9, false);
        int n = 5000;
        KNode[] k = new KNode[n];
        for (int i = 0; i < n; i++) k[i] = t.lookup(d, name(i), 100 + i, false);
        for (int i = 0; i < n; i++) {
            assertEquals(k[i], t.peek(d, name(i)));
            assertEquals("/d/" + name(i), t.path(k[i]));
        }
        for (int i = 0; i < n; i += 2) t.forget(k[i].id, 1);
        for (int i = 0; i < n; i += 3) if (i % 2 != 0) assertEquals(k[i], t.remove(d, name(i)));
        for (int i = 0; i < n; i++) {
            boolean there = i % 2 != 0 && i % 3 != 0;
            assertEquals(there ? k[i] : null, t.peek(d, name(i)), name(i));
        }
        assertNull(t.peek(d, "\u00e9t\u00e9"), "same length and chars but one");
    }

    @Test void namesOfForgottenRemovedAndRenamedNodesAreGivenBackAndTheOthersStayIntact() {
        KNode d = t.lookup(t.root, "dir", 5, false);
        java.util.List<KNode> kept = new java.util.ArrayList<>();
        for (int round = 0; round < 40; round++) { // 40 x 2000 names of ~60 bytes: several compactions
            KNode[] k = new KNode[2000];
            String pad = "-".repeat(50);
            for (int i = 0; i < k.length; i++) k[i] = t.lookup(d, round + pad + name(i), 1000L * round + i, false);
            for (int i = 0; i < k.length; i++) {
                if (i == round) { kept.add(k[i]); continue; }
                if (i % 3 == 0) t.forget(k[i].id, 1);
                else if (i % 3 == 1) t.remove(d, round + pad + name(i));
                else t.rename(d, round + pad + name(i), t.root, "r" + i, false); // each replaces the last
            }
        }
        assertTrue(t.namesForTests().live() < 200_000, "freed names are not kept: " + t.namesForTests().live());
        assertTrue(t.namesForTests().allocated() < 20L * NamePool.CHUNK, "garbage is compacted: " + t.namesForTests().allocated());
        for (int round = 0; round < kept.size(); round++) {
            String n = round + "-".repeat(50) + name(round);
            assertEquals("/dir/" + n, t.path(kept.get(round)));
            assertEquals(kept.get(round), t.peek(d, n));
            assertEquals(kept.get(round), t.find("/dir/" + n));
        }
        assertEquals("/r1997", t.path(t.peek(t.root, "r1997")));
    }

    /** Names are bytes (ISO-8859-1 strings): some not UTF-8, some of equal String hash ("Aa" and "BB"). */
    private static String name(int i) {
        return (i % 7 == 0 ? "\u00e9\u00ff" : i % 5 == 0 ? "Aa" : "BB") + i;
    }

    @Test void aNameLookedUpAgainKeepsItsIdAndCountsReferences() {
        KNode a1 = t.lookup(t.root, "a", 10, false);
        KNode a2 = t.lookup(t.root, "a", 10, false);
        assertEquals(a1, a2);
        assertEquals(2, t.lookups(a1));
        t.forget(a1.id, 1);
        assertEquals(a1, t.get(a1.id));
        t.forget(a1.id, 1);
        assertNull(t.get(a1.id), "forgotten by the kernel: gone");
        KNode a3 = t.lookup(t.root, "a", 10, false);
        assertNotEquals(a1.id, a3.id, "ids are never reused");
    }

    @Test void referenceCountsPastAnIntAreKeptWhole() {
        KNode a = t.lookup(t.root, "a", 10, false);
        KNode b = t.lookup(t.root, "b", 11, false);
        t.setLookupsForTests(a, Integer.MAX_VALUE);
        t.lookup(t.root, "a", 10, false);
        assertEquals(1L << 31, t.lookups(a));
        t.setLookupsForTests(b, 5L << 32);
        assertEquals(5L << 32, t.lookups(b));
        t.forget(a.id, (1L << 31) - 3);
        assertEquals(3, t.lookups(a));
        t.lookup(t.root, "a", 10, false);
        assertEquals(4, t.lookups(a));
        t.forget(b.id, 4L << 32);
        assertEquals(1L << 32, t.lookups(b));
        t.forget(a.id, 4);
        assertNull(t.get(a.id));
        assertEquals(b, t.get(b.id));
        t.forget(b.id, 1L << 32);
        assertNull(t.get(b.id));
        KNode c = t.lookup(t.root, "c", 12, false); // a freed slot starts from one reference
        assertEquals(1, t.lookups(c));
    }

    @Test void aFreedSlotServesANewNodeUnderANewIdAndTheTableGrows() {
        KNode[] made = new KNode[5000]; // more than the table's first size
        for (int i = 0; i < made.length; i++) made[i] = t.lookup(t.root, "n" + i, 100 + i, false);
        java.util.HashSet<Long> ids = new java.util.HashSet<>();
        for (KNode k : made) {
            assertTrue(ids.add(k.id), "distinct ids");
            assertEquals(k, t.get(k.id));
        }
        long old = made[17].id;
        t.forget(old, 1);
        assertNull(t.get(old));
        KNode reused = t.lookup(t.root, "again", 7, false);
        assertEquals((int) old, (int) reused.id, "the freed slot is taken again");
        assertNotEquals(old, reused.id, "under another generation");
        assertNull(t.get(old), "the old id names nothing");
        assertEquals(reused, t.get(reused.id));
        assertNull(t.get(0));
        assertNull(t.get(-1));
        assertNull(t.get(1L << 40 | 5));
        assertEquals(t.root, t.get(1));
    }

    @Test void aRemovedNameDetachesItsNodeUntilForgotten() {
        KNode a = t.lookup(t.root, "a", 10, false);
        assertEquals(a, t.remove(t.root, "a"));
        assertNull(t.path(a), "no path once removed");
        assertEquals(a, t.get(a.id), "still known for open files");
        KNode again = t.lookup(t.root, "a", 12, false);
        assertNotEquals(a.id, again.id, "a new object under the old name is a new kernel inode");
        t.forget(a.id, 1);
        assertNull(t.get(a.id));
        assertEquals(again, t.find("/a"), "forgetting the detached node leaves the new name alone");
    }

    @Test void renameMovesTheSourceAndDetachesTheTarget() {
        KNode d = t.lookup(t.root, "d", 1, false);
        KNode f = t.lookup(d, "f", 2, false);
        KNode g = t.lookup(t.root, "g", 3, false);
        KNode sub = t.lookup(d, "sub", 4, false);
        KNode leaf = t.lookup(sub, "leaf", 5, false);
        assertEquals(g, t.rename(d, "f", t.root, "g", false));
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

    private static Listing listing(java.util.List<String> names) {
        java.util.List<Integer> types = new java.util.ArrayList<>();
        java.util.List<Long> inos = new java.util.ArrayList<>();
        for (int i = 0; i < names.size(); i++) { types.add(0100000); inos.add(100L + i); }
        return Listing.of(names, types, inos);
    }

    @Test void listingOffsetsAreAscendingCookiesThatFitIn31BitsWithTheDotsFirst() {
        java.util.List<String> names = new java.util.ArrayList<>(java.util.List.of(".", ".."));
        for (int i = 0; i < 5000; i++) names.add("n" + i);
        Listing l = listing(names);
        assertEquals(".", l.names[0]);
        assertEquals("..", l.names[1]);
        assertEquals(1, l.cookies[0]);
        assertEquals(2, l.cookies[1]);
        for (int i = 1; i < l.cookies.length; i++) assertTrue(l.cookies[i] > l.cookies[i - 1], "ascending at " + i);
        assertTrue(l.cookies[l.cookies.length - 1] < (1L << 31), "fits a 32-bit d_off");
        assertEquals(0, l.after(0));
        assertEquals(2, l.after(2));
        assertEquals(l.names.length, l.after(l.cookies[l.cookies.length - 1]));
        assertEquals(l.cookies.length, new java.util.HashSet<>(java.util.Arrays.asList(l.names)).size());
    }

    @Test void aReaderThatGoesOnInANewerListingSeesEveryNameThatStayedExactlyOnce() {
        java.util.List<String> before = new java.util.ArrayList<>(), after = new java.util.ArrayList<>();
        for (int i = 0; i < 400; i++) before.add("e" + i);
        for (int i = 0; i < 400; i++) if (i % 7 != 0) after.add("e" + i);     // some removed meanwhile
        for (int i = 0; i < 50; i++) after.add("new" + i);                       // and some created
        Listing a = listing(before), b = listing(after);
        for (int cut = 0; cut <= before.size(); cut += 37) {
            java.util.List<String> seen = new java.util.ArrayList<>(java.util.Arrays.asList(a.names).subList(0, cut));
            long off = cut == 0 ? 0 : a.cookies[cut - 1];
            seen.addAll(java.util.Arrays.asList(b.names).subList(b.after(off), b.names.length));
            for (String n : after) {
                if (before.contains(n)) assertEquals(1, java.util.Collections.frequency(seen, n), n + " after a switch at " + cut);
            }
            assertEquals(seen.size(), new java.util.HashSet<>(seen).size(), "no name twice (switch at " + cut + ")");
        }
    }

    @Test void namesWithEqualCookiesGetDistinctOnesInNameOrder() {
        java.util.Map<Long, String> byCookie = new java.util.HashMap<>();
        String x = null, y = null;
        for (int i = 0; x == null; i++) {
            String n = "c" + i;
            String other = byCookie.putIfAbsent(Listing.cookie(n), n);
            if (other != null) { x = other; y = n; }
        }
        Listing l = listing(java.util.List.of(y, "zz", x));
        java.util.List<String> order = java.util.Arrays.asList(l.names);
        int ix = order.indexOf(x), iy = order.indexOf(y);
        assertEquals(1, Math.abs(ix - iy), "colliding names " + x + " and " + y + " are adjacent");
        assertEquals(x.compareTo(y) < 0, ix < iy, "in name order");
        assertEquals(l.cookies[Math.min(ix, iy)] + 1, l.cookies[Math.max(ix, iy)]);
    }

    @Test void aNameWhoseSiblingHasPassthroughOpensIsReported() {
        KNode g = t.lookup(t.root, "g", 90, false);
        t.x(g).passthroughOpens = 1;                 // opened while it had one name
        t.markLinked(g, 90);                    // then linked through the mount
        KNode h = t.lookup(t.root, "h", 90, true);
        assertTrue(t.passthroughElsewhere(90, h), "writes through g's passthrough opens bypass strata");
        assertFalse(t.passthroughElsewhere(90, g), "g's own kernel inode sees them");
        t.x(g).passthroughOpens = 0;
        assertFalse(t.passthroughElsewhere(90, h));
    }

    // ---- the names of a hard-linked upper file share one node

    @Test void theNamesOfAnUpperHardLinkShareOneNodeWithAReferenceEach() {
        KNode d = t.lookup(t.root, "d", 2, false);
        KNode a = t.lookup(t.root, "a", 7, true, 500);
        KNode b = t.lookup(d, "b", 7, true, 500);
        assertEquals(a, b, "one node for the file");
        assertEquals(2, t.lookups(a));
        assertTrue(t.shared(a));
        assertEquals(a, t.peek(d, "b"));
        assertEquals(a, t.find("/d/b"));
        assertEquals("/a", t.path(a));
        assertEquals(a, t.lookup(d, "b", 7, true, 500), "again: the alias");
        assertEquals(3, t.lookups(a));
        KNode other = t.lookup(t.root, "c", 7, true, 501);
        assertNotEquals(a, other, "another upper inode (a lower hard link broken by copy-ups shows the same st_ino)");
        KNode lower = t.lookup(t.root, "l", 7, true, 0);
        assertNotEquals(a, lower, "a lower hard link: a node of its own");
        assertArrayEquals(new long[]{other.id, lower.id}, sorted(t.siblings(7, a)));
    }

    @Test void removingTheNodesOwnNameGivesItAnotherOfItsNames() {
        KNode d = t.lookup(t.root, "d", 2, false);
        KNode a = t.lookup(t.root, "a", 7, true, 500);
        t.lookup(d, "b", 7, true, 500);
        assertNull(t.remove(t.root, "a"), "the node keeps a name");
        assertEquals("/d/b", t.path(a));
        assertNull(t.peek(t.root, "a"));
        assertEquals(a, t.peek(d, "b"));
        assertEquals(a, t.remove(d, "b"), "its last name: detached");
        assertNull(t.path(a));
        assertFalse(t.shared(a));
        assertNotEquals(a, t.lookup(t.root, "n", 7, true, 500), "the upper inode is free for a new node");
    }

    @Test void removingAnAliasLeavesTheNodeItsName() {
        KNode a = t.lookup(t.root, "a", 7, true, 500);
        t.lookup(t.root, "b", 7, true, 500);
        assertNull(t.remove(t.root, "b"));
        assertEquals("/a", t.path(a));
        assertNull(t.peek(t.root, "b"));
        assertNotEquals(a, t.lookup(t.root, "b", 8, false, 0), "b names another file now");
    }

    @Test void renamesMoveAliasesAndOwnNamesAlike() {
        KNode d = t.lookup(t.root, "d", 2, false);
        KNode a = t.lookup(t.root, "a", 7, true, 500);
        t.lookup(t.root, "b", 7, true, 500);
        assertNull(t.rename(t.root, "b", d, "b2", false));
        assertEquals(a, t.peek(d, "b2"));
        assertNull(t.rename(t.root, "a", d, "a2", false));
        assertEquals("/d/a2", t.path(a));
        assertNull(t.rename(d, "a2", d, "b2", false), "two names of one file: nothing happens");
        assertEquals(a, t.peek(d, "a2"));
        assertEquals(a, t.peek(d, "b2"));
        KNode x = t.lookup(t.root, "x", 9, false);
        assertNull(t.rename(t.root, "x", d, "b2", false), "an alias renamed over: the node keeps its name");
        assertEquals(x, t.peek(d, "b2"));
        assertEquals("/d/a2", t.path(a));
        KNode y = t.lookup(t.root, "y", 10, false);
        assertEquals(a, t.rename(t.root, "y", d, "a2", false), "its own name renamed over: it was the last, detached");
        assertEquals(y, t.peek(d, "a2"));
        assertEquals(2, t.lookups(a), "the kernel's references of both names stay till it forgets them");
        assertNull(t.path(a));
    }

    @Test void theOwnNameRenamedOverPassesToAnAlias() {
        KNode a = t.lookup(t.root, "a", 7, true, 500);
        t.lookup(t.root, "b", 7, true, 500);
        KNode y = t.lookup(t.root, "y", 10, false);
        assertNull(t.rename(t.root, "y", t.root, "a", false), "a replaced, b remains: not detached");
        assertEquals("/b", t.path(a));
        assertEquals(y, t.peek(t.root, "a"));
    }

    @Test void aLinkGivesTheNewNameTheOldNode() {
        KNode d = t.lookup(t.root, "d", 2, false);
        KNode f = t.lookup(t.root, "f", 7, false);  // one name when looked up
        KNode l = t.link(f, d, "l", 7, 500, true);
        assertEquals(f, l);
        assertEquals(2, t.lookups(f));
        assertEquals(f, t.peek(d, "l"));
        assertNull(t.link(f, d, "l", 7, 500, true), "a name the table holds: not twice");
        KNode tmp = t.anonymous(33);                 // O_TMPFILE, then linkat: its name
        assertEquals(tmp, t.link(tmp, d, "named", 33, 0, false));
        assertEquals("/d/named", t.path(tmp));
        assertNull(t.link(t.lookup(t.root, "g", 8, false), d, "g2", 8, 0, false), "no upper hard link: a node of its own");
    }

    @Test void forgettingTheNodeOrTheDirectoryOfAnAliasLeavesNothingBehind() {
        KNode d = t.lookup(t.root, "d", 2, false);
        KNode a = t.lookup(t.root, "a", 7, true, 500);
        t.lookup(d, "b", 7, true, 500);
        t.forget(d.id, 1);                           // the kernel let the directory go (and dentry b)
        assertEquals(2, t.lookups(a));
        t.forget(a.id, 2);
        assertEquals(0, t.lookups(a));
        KNode d2 = t.lookup(t.root, "d", 2, false);
        KNode b = t.lookup(d2, "b", 7, true, 500);
        assertNotEquals(a, b);
        assertEquals("/d/b", t.path(b));
        assertEquals(b, t.lookup(t.root, "a", 7, true, 500), "a is b's alias now");
    }

    private static long[] sorted(long[] v) { java.util.Arrays.sort(v); return v; }
}
