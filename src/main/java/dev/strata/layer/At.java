package dev.strata.layer;

import dev.strata.posix.Posix;

/**
 * A place to make one *at call: a directory descriptor and a name (or short path) relative to it.
 * Paths longer than {@link Layer#PIECE} are walked piece by piece so no call sees more than PATH_MAX.
 */
public final class At implements AutoCloseable {
    private final int dirfd;
    private final String name;
    private final boolean owned;
    private final int err;

    At(int dirfd, String name, boolean owned) { this(dirfd, name, owned, 0); }
    private At(int dirfd, String name, boolean owned, int err) {
        this.dirfd = dirfd; this.name = name; this.owned = owned; this.err = err;
    }

    /** Wraps an existing directory descriptor (not closed by this At). */
    public static At of(int dirfd, String name) { return new At(dirfd, name, false); }

    static At walk(int rootFd, String rel) {
        int cur = rootFd;
        boolean owned = false;
        String rest = rel;
        while (rest.length() > Layer.PIECE) {
            int cut = rest.lastIndexOf('/', Layer.PIECE);
            if (cut <= 0) { if (owned) Posix.close(cur); return new At(-1, null, false, -dev.strata.posix.Errno.ENAMETOOLONG); }
            int next = Posix.openat(cur, rest.substring(0, cut), Posix.O_PATH | Posix.O_DIRECTORY | Posix.O_NOFOLLOW, 0);
            if (owned) Posix.close(cur);
            if (next < 0) return new At(-1, null, false, next);
            cur = next;
            owned = true;
            rest = rest.substring(cut + 1);
        }
        return new At(cur, rest, owned);
    }

    public boolean ok() { return err == 0; }
    public int err() { return err; }
    public int dirfd() { return dirfd; }
    public String name() { return name; }

    /** A path for the l*xattr calls (which have no *at form) that reaches the same object. */
    public String xattrPath() {
        return "/proc/self/fd/" + dirfd + "/" + name;
    }

    @Override public void close() { if (owned) Posix.close(dirfd); }
}
