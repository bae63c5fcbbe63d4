package dev.strata.fuse.kernel;

/**
 * The names of the kernel's nodes ({@link Inodes.KNode}), their bytes packed one after another in
 * chunks of 64 KiB instead of a byte array each: a node keeps an address here and a length. A byte
 * array cost 16 bytes of header and up to 7 of padding besides its reference (a 13-byte name took
 * 36 bytes, here 13). Chunks are allocated as they fill, so the pool is never more than a chunk
 * larger than the names in it; a freed name is garbage until {@link NodeTable} copies the live names
 * into a new pool (once garbage outweighs them). Under the Inodes lock.
 *
 * <p>An address is the chunk's index times 2^16 plus the offset in the chunk. Names are chars of
 * ISO-8859-1 strings, one byte each; none is longer than a chunk (the kernel's names are at most 1024
 * bytes: FUSE_NAME_MAX).
 */
final class NamePool {
    static final int CHUNK_BITS = 16;
    static final int CHUNK = 1 << CHUNK_BITS;

    private byte[][] chunks = new byte[4][];
    private int last = -1;  // the chunk being filled
    private int fill = CHUNK; // bytes used in it
    private long live, garbage;

    /** Stores a name; returns its address. */
    int add(String name) {
        int len = name.length();
        if (len > CHUNK) throw new IllegalArgumentException("name longer than " + CHUNK + " bytes");
        int at = reserve(len);
        byte[] c = chunks[at >>> CHUNK_BITS];
        int o = at & (CHUNK - 1);
        for (int i = 0; i < len; i++) c[o + i] = (byte) name.charAt(i);
        return at;
    }

    /** Stores a name held in another pool; returns its address here. */
    int copyFrom(NamePool from, int at, int len) {
        int to = reserve(len);
        System.arraycopy(from.chunks[at >>> CHUNK_BITS], at & (CHUNK - 1), chunks[to >>> CHUNK_BITS], to & (CHUNK - 1), len);
        return to;
    }

    private int reserve(int len) {
        if (fill + len > CHUNK) {
            if (++last == chunks.length) chunks = java.util.Arrays.copyOf(chunks, chunks.length * 2);
            chunks[last] = new byte[CHUNK];
            fill = 0;
        }
        int at = last << CHUNK_BITS | fill;
        fill += len;
        live += len;
        return at;
    }

    /** A name is no longer used (its bytes stay until the next compaction). */
    void free(int len) {
        live -= len;
        garbage += len;
    }

    /** Whether a compaction would give back much: freed names outweigh the live ones, and a few chunks. */
    boolean wantsCompaction() {
        return garbage > live && garbage > 4L * CHUNK;
    }

    boolean equals(int at, int len, String name) {
        if (len != name.length()) return false;
        byte[] c = chunks[at >>> CHUNK_BITS];
        int o = at & (CHUNK - 1);
        for (int i = 0; i < len; i++) if ((c[o + i] & 0xff) != name.charAt(i)) return false;
        return true;
    }

    /** String.hashCode of the name, from its bytes. */
    int hash(int at, int len) {
        byte[] c = chunks[at >>> CHUNK_BITS];
        int o = at & (CHUNK - 1), h = 0;
        for (int i = 0; i < len; i++) h = 31 * h + (c[o + i] & 0xff);
        return h;
    }

    void copyTo(int at, int len, byte[] dst, int dstOff) {
        System.arraycopy(chunks[at >>> CHUNK_BITS], at & (CHUNK - 1), dst, dstOff, len);
    }

    /** Bytes of live names and of chunks (for tests). */
    long live() { return live; }
    long allocated() { return (long) (last + 1) * CHUNK; }
}
