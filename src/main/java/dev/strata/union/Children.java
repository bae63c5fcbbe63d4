package dev.strata.union;

/**
 * A directory node's cached children by name: an open-addressing table (linear probing) of the nodes
 * themselves, each found by the last part of its {@link Node#rel}. No key string and no entry object per
 * child: a {@code ConcurrentHashMap<String, Node>} cost about 90 bytes a child more (a 32-byte entry and
 * the name as a String of its own beside the rel that already ends with it), a third of what a cached
 * node cost in all (see {@link NodeCache}). Every node in the table is a child of its directory, so
 * its rel ends with "/" + name (or is the name, under the root).
 *
 * <p>Synchronized: lookups enter children under the engine's shared lock from several threads at once.
 */
final class Children {
    private Node[] table = new Node[4];
    private int size;

    /**
     * The home slot of a name's String.hashCode in a table of {@code length} slots (a power of two): the
     * top bits of the hash times 2^32 / golden ratio (Fibonacci hashing). The low bits of String.hashCode
     * (even spread by xor-ing the high half in) run in sequence for names that do (f1, f2 ... f100000:
     * files a program numbers), and with linear probing a run of taken slots is one cluster that every
     * lookup of a name that is not there walked to its end (measured: 17 slots per negative lookup in a
     * directory of 100,000 such names, 1.8 with this); the multiplication scatters them.
     */
    private static int home(int h, int length) {
        return (h * 0x9E3779B9) >>> (Integer.numberOfLeadingZeros(length) + 1);
    }

    /** String.hashCode of a node's name: the last part of its rel. */
    private static int hashOf(Node n) {
        String r = n.rel;
        int h = 0;
        for (int i = r.lastIndexOf('/') + 1, len = r.length(); i < len; i++) h = 31 * h + r.charAt(i);
        return h;
    }

    private static boolean named(Node n, String name) {
        String r = n.rel;
        int start = r.length() - name.length();
        return start >= 0 && (start == 0 || r.charAt(start - 1) == '/') && r.startsWith(name, start);
    }

    private int indexOf(String name) {
        Node[] t = table;
        int m = t.length - 1;
        for (int i = home(name.hashCode(), t.length); ; i = (i + 1) & m) {
            Node n = t[i];
            if (n == null || named(n, name)) return i;
        }
    }

    synchronized Node get(String name) {
        return table[indexOf(name)];
    }

    synchronized boolean containsKey(String name) {
        return table[indexOf(name)] != null;
    }

    /** Enters a child under its name unless one is there; returns the one there, or null. */
    synchronized Node putIfAbsent(Node c) {
        String name = c.name();
        int i = indexOf(name);
        Node prev = table[i];
        if (prev != null) return prev;
        table[i] = c;
        if (++size > table.length - (table.length >>> 2)) grow();
        return null;
    }

    /** Replaces the child of a name if it is {@code old} (the same name); whether it did. */
    synchronized boolean replace(String name, Node old, Node c) {
        int i = indexOf(name);
        if (table[i] != old || old == null) return false;
        table[i] = c;
        return true;
    }

    /** Takes out the child of a name, if any. */
    synchronized Node remove(String name) {
        int i = indexOf(name);
        Node n = table[i];
        if (n != null) delete(i);
        return n;
    }

    /** Takes out this very child, if it is the one its name leads to; whether it did. */
    synchronized boolean remove(Node c) {
        int i = indexOf(c.name());
        if (table[i] != c) return false;
        delete(i);
        return true;
    }

    synchronized int size() { return size; }

    synchronized boolean isEmpty() { return size == 0; }

    /** The children now (a copy: the table may change while the caller goes through them). */
    synchronized Node[] snapshot() {
        Node[] out = new Node[size];
        int k = 0;
        for (Node n : table) if (n != null) out[k++] = n;
        return out;
    }

    private void grow() {
        resize(table.length * 2);
    }

    private void resize(int length) {
        Node[] old = table, t = new Node[length];
        int m = t.length - 1;
        for (Node n : old) {
            if (n == null) continue;
            int i = home(hashOf(n), length);
            while (t[i] != null) i = (i + 1) & m;
            t[i] = n;
        }
        table = t;
    }

    /** Empties slot i and moves back the entries after it that probed past it (no tombstones). */
    private void delete(int i) {
        Node[] t = table;
        int m = t.length - 1;
        t[i] = null;
        size--;
        for (int j = (i + 1) & m; t[j] != null; j = (j + 1) & m) {
            int home = home(hashOf(t[j]), t.length);
            // t[j] stays where it is if its home lies cyclically in (i, j]
            if (i <= j ? (i < home && home <= j) : (i < home || home <= j)) continue;
            t[i] = t[j];
            t[j] = null;
            i = j;
        }
        if (size < t.length >>> 3 && t.length > 8) resize(t.length >>> 1); // what an eviction left
    }
}
