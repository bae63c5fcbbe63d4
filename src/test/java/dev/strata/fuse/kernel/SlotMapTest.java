package dev.strata.fuse.kernel;

import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** The slot map against a HashMap: random puts and removals over a few key ranges, growing and shrinking. */
class SlotMapTest {
    @Test void behavesAsAMap() {
        Random rnd = new Random(7);
        SlotMap<String> m = new SlotMap<>();
        Map<Integer, String> ref = new HashMap<>();
        for (int op = 0; op < 200_000; op++) {
            int phase = op / 50_000; // grow to thousands of entries, then shrink back
            int key = 1 + (phase % 2 == 0 ? rnd.nextInt(4000) : rnd.nextInt(4000) * 1024);
            boolean grow = phase < 2 ? rnd.nextInt(3) > 0 : rnd.nextInt(3) == 0;
            if (grow) {
                String v = "v" + op;
                m.put(key, v);
                ref.put(key, v);
            } else {
                m.remove(key);
                ref.remove(key);
            }
            if (op % 97 == 0) for (int k : ref.keySet()) assertEquals(ref.get(k), m.get(k));
            assertEquals(ref.size(), m.size());
            assertEquals(ref.get(key), m.get(key));
        }
        for (int k : ref.keySet().toArray(new Integer[0])) m.remove(k);
        assertEquals(0, m.size());
        assertNull(m.get(1));
        assertThrows(IllegalArgumentException.class, () -> m.put(0, "x"));
    }
}
