package dev.strata.fuse.kernel;

/**
 * Node slot (a positive int) -> value, for what few of {@link Inodes}'s nodes have: an open-addressing
 * table (linear probing, backward-shift removal; 0, never a slot, marks a free entry). A column of
 * references cost 4 bytes a node, most of them null. Not synchronized (the Inodes lock guards it).
 */
final class SlotMap<V> {
    private static final int MIN = 64;
    private int[] keys = new int[MIN];
    private Object[] vals = new Object[MIN];
    private int size;

    private static int home(int s, int mask) {
        int h = s * 0x9E3779B9;
        return (h ^ (h >>> 16)) & mask;
    }

    private int indexOf(int s) {
        int m = keys.length - 1;
        for (int i = home(s, m); ; i = (i + 1) & m) if (keys[i] == s || keys[i] == 0) return i;
    }

    @SuppressWarnings("unchecked")
    V get(int s) {
        int i = indexOf(s);
        return keys[i] == s ? (V) vals[i] : null;
    }

    void put(int s, V v) {
        if (s <= 0) throw new IllegalArgumentException("slot " + s);
        int i = indexOf(s);
        if (keys[i] == 0) {
            keys[i] = s;
            size++;
        }
        vals[i] = v;
        if (size > keys.length - (keys.length >>> 2)) resize(keys.length * 2);
    }

    void remove(int s) {
        int i = indexOf(s);
        if (keys[i] != s) return;
        int m = keys.length - 1;
        keys[i] = 0;
        vals[i] = null;
        size--;
        for (int j = (i + 1) & m; keys[j] != 0; j = (j + 1) & m) { // move back what probed past i
            int h = home(keys[j], m);
            if (i <= j ? (i < h && h <= j) : (i < h || h <= j)) continue;
            keys[i] = keys[j];
            vals[i] = vals[j];
            keys[j] = 0;
            vals[j] = null;
            i = j;
        }
        if (size < keys.length >>> 3 && keys.length > MIN) resize(keys.length >>> 1);
    }

    int size() { return size; }

    private void resize(int length) {
        int[] ok = keys;
        Object[] ov = vals;
        keys = new int[length];
        vals = new Object[length];
        int m = length - 1;
        for (int k = 0; k < ok.length; k++) {
            if (ok[k] == 0) continue;
            int i = home(ok[k], m);
            while (keys[i] != 0) i = (i + 1) & m;
            keys[i] = ok[k];
            vals[i] = ov[k];
        }
    }
}
