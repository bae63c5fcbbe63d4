package dev.strata.union;

import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** The children table against a HashMap: random enters, replaces and removals, in the root and below it. */
class ChildrenTest {
    static Node child(Node dir, String name) {
        return new Node(dir, dir.rel.isEmpty() ? name : dir.rel + "/" + name, Node.single(0), 0, false, 0);
    }

    @Test void behavesAsAMapByName() {
        Node root = new Node(null, "", Node.single(0), 0, false, 0);
        for (Node dir : new Node[]{root, child(child(root, "a"), "bc")}) {
            Random rnd = new Random(13);
            Children c = new Children();
            Map<String, Node> ref = new HashMap<>();
            for (int op = 0; op < 20_000; op++) {
                // few distinct names, some of them suffixes of others ("x1", "1"), so probing collides
                String name = (rnd.nextBoolean() ? "x" : "") + rnd.nextInt(300);
                switch (rnd.nextInt(5)) {
                    case 0, 1 -> {
                        Node n = child(dir, name);
                        Node prev = c.putIfAbsent(n);
                        assertSame(ref.get(name), prev, name);
                        ref.putIfAbsent(name, n);
                    }
                    case 2 -> assertSame(ref.remove(name), c.remove(name), name);
                    case 3 -> {
                        Node old = ref.get(name);
                        if (old == null) {
                            assertFalse(c.remove(child(dir, name)));
                        } else if (rnd.nextBoolean()) {
                            assertFalse(c.remove(child(dir, name)), "another node of the same name stays");
                            assertTrue(c.remove(old));
                            ref.remove(name);
                        } else {
                            Node n = child(dir, name);
                            assertTrue(c.replace(name, old, n));
                            assertFalse(c.replace(name, old, n));
                            ref.put(name, n);
                        }
                    }
                    default -> {
                        assertSame(ref.get(name), c.get(name), name);
                        assertEquals(ref.containsKey(name), c.containsKey(name));
                    }
                }
                assertEquals(ref.size(), c.size());
            }
            assertEquals(ref.size(), c.snapshot().length);
            for (Node n : c.snapshot()) assertSame(n, ref.get(n.name()));
            for (String name : ref.keySet().toArray(new String[0])) assertSame(ref.remove(name), c.remove(name));
            assertTrue(c.isEmpty());
            assertNull(c.get("x1"));
        }
    }

    /** Numbered names (what the home slot's multiplication is for): through growth, removals that move entries back, and shrinking. */
    @Test void numberedNamesThroughGrowthAndRemovals() {
        Node root = new Node(null, "", Node.single(0), 0, false, 0);
        Children c = new Children();
        int n = 100_000;
        Node[] nodes = new Node[n];
        for (int i = 0; i < n; i++) assertNull(c.putIfAbsent(nodes[i] = child(root, "f" + i)));
        for (int i = 0; i < n; i += 2) assertSame(nodes[i], c.remove("f" + i));
        for (int i = 0; i < n; i++) {
            assertSame(i % 2 == 0 ? null : nodes[i], c.get("f" + i), "f" + i);
            assertNull(c.get("g" + i));
        }
        for (int i = 1; i < n - 10; i += 2) assertTrue(c.remove(nodes[i]));
        assertEquals(5, c.size());
        for (int i = n - 9; i < n; i += 2) assertSame(nodes[i], c.get("f" + i));
    }
}
