package dev.strata.fuse.kernel;

import java.util.List;

/**
 * A merged directory listing: names, S_IFMT types and inode numbers, ordered by a cookie derived from
 * each name (the readdir offset that continues after it; "." and ".." come first as 1 and 2). Several
 * readers of one directory share the listing and any of them may replace it with a newer one (each
 * read from offset 0 takes one): since an offset names a position in the name space rather than an
 * index into one snapshot, a reader that continues in a newer listing still sees every name that
 * stayed in the directory exactly once. Cookies fit in 31 bits, so 32-bit programs can use them.
 */
final class Listing {
    final String[] names;
    final int[] types;
    final long[] inos;
    /** Ascending; cookies[i] is the offset to continue after entry i. */
    final long[] cookies;

    private Listing(String[] names, int[] types, long[] inos, long[] cookies) {
        this.names = names; this.types = types; this.inos = inos; this.cookies = cookies;
    }

    /** Cookies above this leave room for the rare collisions (each takes the next free value). */
    static final long COOKIE_SPAN = (1L << 31) - (1L << 20) - 3;

    /** The cookie a name starts from: a hash of its bytes in [3, 2^31 - 2^20). */
    static long cookie(String name) {
        if (name.equals(".")) return 1;
        if (name.equals("..")) return 2;
        long h = 0xcbf29ce484222325L; // FNV-1a over the name's bytes (chars are bytes), then mixed
        for (int i = 0; i < name.length(); i++) h = (h ^ (name.charAt(i) & 0xff)) * 0x100000001b3L;
        h ^= h >>> 33;
        h *= 0xff51afd7ed558ccdL;
        h ^= h >>> 33;
        return 3 + Long.remainderUnsigned(h, COOKIE_SPAN);
    }

    /** Orders entries by cookie (names break ties; a later one of equal cookie takes the next value). */
    static Listing of(List<String> names, List<Integer> types, List<Long> inos) {
        int n = names.size();
        long[] keys = new long[n]; // cookie << 32 | index: a primitive sort, no boxing for large directories
        for (int i = 0; i < n; i++) keys[i] = cookie(names.get(i)) << 32 | i;
        java.util.Arrays.sort(keys);
        for (int k = 0; k < n; ) {
            int e = k + 1;
            while (e < n && keys[e] >>> 32 == keys[k] >>> 32) e++;
            if (e - k > 1) { // equal cookies: order them by name, so every listing agrees
                Long[] run = new Long[e - k];
                for (int j = k; j < e; j++) run[j - k] = keys[j];
                java.util.Arrays.sort(run, (x, y) -> names.get((int) (long) x).compareTo(names.get((int) (long) y)));
                for (int j = k; j < e; j++) keys[j] = run[j - k];
            }
            k = e;
        }
        String[] nm = new String[n];
        int[] ty = new int[n];
        long[] in = new long[n], ck = new long[n];
        long prev = 0;
        for (int k = 0; k < n; k++) {
            int i = (int) keys[k];
            nm[k] = names.get(i);
            ty[k] = types.get(i);
            in[k] = inos.get(i);
            ck[k] = prev = Math.max(keys[k] >>> 32, prev + 1);
        }
        return new Listing(nm, ty, in, ck);
    }

    /** The index of the first entry after offset {@code off} (0: the start). */
    int after(long off) {
        int lo = 0, hi = cookies.length;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (cookies[mid] <= off) lo = mid + 1; else hi = mid;
        }
        return lo;
    }
}
