package dev.strata.nativetest;

import dev.strata.posix.Posix;
import dev.strata.posix.Stat;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;

/**
 * A seeded stream of operations over a fixed pool of names: every name of the starting tree (lower,
 * merged, whited-out, opaque, nested) plus new names in each directory and in new nested directories.
 * To keep most operations meaningful it asks the reference mount which pool names exist right now
 * (lstat only, which changes nothing), so the same seed gives the same sequence as long as the
 * reference behaves the same.
 */
public final class OpGenerator {
    /** The stream choices are drawn from; mmap ops swap in their own (see {@link #next}). */
    private Random rnd;
    /** Choices of mmap operations: a stream of their own, so that without them a seed gives the same sequence as before they existed. */
    private final Random mmapRnd;
    /** Choices of the operations added for issue 17 (see {@link #nextExtra}) and of the user an op runs as: a stream of their own too. */
    private final Random extraRnd;
    /** The chattr sequences' own stream (see {@link #chattr}). */
    private final Random chattrRnd;
    /** Operations decided earlier that must come next (an unlink right after a hold-open). */
    private final java.util.ArrayDeque<Op> pending = new java.util.ArrayDeque<>();
    private final Set<String> excluded;
    private final String refRoot;
    private final List<String> pool = new ArrayList<>();
    private final List<String> dirPool = new ArrayList<>();
    private final boolean renameFlags, hold, mknod, link, dirRename, mmap;
    private final String[] xattrs;
    private final int[] modes;
    private long counter, mmapCounter;

    static final String[] NEW_LEAVES = {"f1", "f2", "d1", "x.txt", Names.bytes('n', 0xe9, 0xff), ".hidden"};
    static final String[] NEW_DIRS = {"n1", "n1/n2", "n1/n2/n3", "merged/nsub", "opq/nsub", "gone/again"};
    static final int[] MODES = {0644, 0600, 0755, 0700, 0444, 0000, 04755, 02755, 01777, 0640, 06711};
    static final int[] IDS = {0, 1000, 1001, 65534, 50};
    static final String[] XATTRS = {"user.a", "user.b", "user.color", "user.bin", "trusted.t", "trusted.overlay.opaque"};
    static final String[] LINK_TARGETS = {"f1", "../etc", "nowhere", "/nonexistent-strata-test/passwd", Names.bytes('t', 0xfe), "shadow.txt", "."};

    /**
     * @param start the reference mount's starting tree (names come from it)
     * @param refRoot the reference mount point (asked whether names exist)
     */
    public OpGenerator(long seed, Snapshot start, String refRoot, Set<String> excluded) {
        for (String x : excluded) {
            if (!KNOWN_EXCLUSIONS.contains(x)) throw new IllegalArgumentException("unknown exclusion " + x + ", known: " + KNOWN_EXCLUSIONS);
        }
        this.rnd = new Random(seed);
        this.mmapRnd = new Random(seed ^ 0x6d6d6170L);
        this.extraRnd = new Random(seed ^ 0x6578747261L);
        this.chattrRnd = new Random(seed ^ 0x6368617474L);
        this.excluded = Set.copyOf(excluded);
        this.refRoot = refRoot;
        this.renameFlags = !excluded.contains("renameFlags");
        this.hold = !excluded.contains("hold");
        this.mknod = !excluded.contains("mknod");
        this.link = !excluded.contains("link");
        this.dirRename = !excluded.contains("dirRename");
        this.mmap = !excluded.contains("mmap");
        List<String> xs = new ArrayList<>();
        for (String x : XATTRS) {
            if (excluded.contains("trustedXattrs") && x.startsWith("trusted.")) continue;
            if (excluded.contains("overlayXattrs") && x.startsWith("trusted.overlay.")) continue;
            xs.add(x);
        }
        this.xattrs = xs.toArray(new String[0]);
        this.modes = java.util.Arrays.stream(MODES).filter(m -> !excluded.contains("setgid") || (m & 02000) == 0).toArray();
        Set<String> names = new LinkedHashSet<>();
        Set<String> dirs = new LinkedHashSet<>();
        dirs.add("");
        for (Snapshot.Entry e : start.entries().values()) {
            if (e.rel.isEmpty() || e.rel.length() > 200) continue;
            names.add(e.rel);
            if (e.type().equals("dir")) dirs.add(e.rel);
        }
        // names that exist only in lower layers below a whiteout or opaque dir are still good names to try
        for (String hidden : new String[]{"gone", "gone/x", "gone/sub", "etc/hosts", "opq/old1", "data/ghost", "tdir/child", "tfile"}) names.add(hidden);
        for (String d : NEW_DIRS) { dirs.add(d); names.add(d); }
        for (String d : dirs) {
            for (String leaf : NEW_LEAVES) names.add(d.isEmpty() ? leaf : d + "/" + leaf);
        }
        pool.addAll(names);
        dirPool.addAll(dirs);
    }

    /**
     * The kinds of operation -Dstrata.random.exclude can leave out. Since issue 17: tmpfile (O_TMPFILE,
     * linked or not), whiteoutFlag (renameat2 RENAME_WHITEOUT), fallocate (modes 0, KEEP_SIZE,
     * PUNCH_HOLE|KEEP_SIZE), copyRange (copy_file_range), seek (the SEEK_DATA/SEEK_HOLE map), otrunc
     * (O_TRUNC opens), asUser (ops run as uid 1000 or 65534), removedFd (fchmod, fchown, futimens,
     * fsetxattr, ftruncate and linkat of /proc/self/fd/N on held descriptors, most of them of files
     * removed right after the open), remount (RandomDifferentialTest unmounts and remounts both halfway).
     * Since issue 18: renameOverFd (a name held open, another renamed over it, then the descriptor used:
     * fstat, read, fchmod), renameOverPath (the same for a directory held with O_DIRECTORY and a name
     * held with O_PATH), sgidChmod (chmod with S_ISGID by uid 1000 of a file chown'ed to 1000 in group
     * 50 or 0, which it is not in). Since issue 15: chattr (+a/+i/+ai of a file or directory, operations
     * the flag may refuse, the flags cleared).
     */
    public static final Set<String> KNOWN_EXCLUSIONS = Set.of("overlayXattrs", "trustedXattrs", "renameFlags", "hold", "mknod", "link", "dirRename", "setgid", "mmap",
            "tmpfile", "whiteoutFlag", "fallocate", "copyRange", "seek", "otrunc", "asUser", "removedFd", "remount",
            "renameOverFd", "renameOverPath", "sgidChmod", "chattr");

    /** About one operation in this many is one of nextExtra's (when any of them is enabled). */
    static final int EXTRA_ONE_IN = 6;
    /** About one operation in this many starts a chattr sequence (see {@link #chattr}). */
    static final int CHATTR_ONE_IN = 50;
    /** About one operation in this many runs as a non-root user (uid = gid = 1000 or 65534). */
    static final int AS_USER_ONE_IN = 8;
    static final int[] USERS = {1000, 65534};

    /** One of the operations added for issue 17, drawn from rnd (the caller swaps in extraRnd); null if all are excluded. */
    private Op nextExtra() {
        List<String> kinds = new ArrayList<>();
        for (String k : new String[]{"tmpfile", "whiteoutFlag", "fallocate", "copyRange", "seek", "otrunc", "removedFd", "renameOverFd", "sgidChmod"}) {
            if (excluded.contains(k)) continue;
            if (k.equals("whiteoutFlag") && !renameFlags) continue;
            if ((k.equals("removedFd") || k.equals("renameOverFd")) && !hold) continue;
            if (k.equals("sgidChmod") && excluded.contains("asUser")) continue;
            kinds.add(k);
            if (k.equals("removedFd")) { kinds.add(k); kinds.add(k); }   // several ops make one removed-file sequence
        }
        if (kinds.isEmpty()) return null;
        long[] offs = {0, 1, 4096, 65536, 1L << 20, (1L << 20) + 5, 3L << 20};
        long[] lens = {1, 4096, 5000, 1L << 20, 2L << 20};
        int slot = rnd.nextInt(OpExecutor.SLOTS);
        switch (kinds.get(rnd.nextInt(kinds.size()))) {
            case "tmpfile":
                return Op.tmpfile(nameOfType(Posix.S_IFDIR, 0.9), rnd.nextInt(4) == 0 ? null : freshName(0.8), pick(modes) & 0777,
                        new int[]{0, 10, 5000}[rnd.nextInt(3)], seed());
            case "whiteoutFlag":
                return Op.rename(name(0.85), rnd.nextBoolean() ? freshName(0.6) : name(0.7), Posix.RENAME_WHITEOUT);
            case "fallocate":
                return Op.fallocate(nameOfType(Posix.S_IFREG, 0.9), new int[]{0, 1, 3}[rnd.nextInt(3)], offs[rnd.nextInt(offs.length)], lens[rnd.nextInt(lens.length)]);
            case "copyRange":
                return Op.copyRange(nameOfType(Posix.S_IFREG, 0.9), nameOfType(Posix.S_IFREG, 0.9), offs[rnd.nextInt(offs.length)],
                        offs[rnd.nextInt(offs.length)], lens[rnd.nextInt(lens.length)]);
            case "seek":
                return Op.seekMap(nameOfType(Posix.S_IFREG, 0.9));
            case "otrunc":
                return Op.openTrunc(nameOfType(Posix.S_IFREG, 0.8), new int[]{Posix.O_WRONLY, Posix.O_RDWR | Posix.O_CREAT, Posix.O_RDONLY}[rnd.nextInt(3)], pick(modes) & 0777);
            case "renameOverFd":
                return renameOverFd(slot);
            case "sgidChmod": {
                // chmod asking for S_ISGID by the owner, who is not in the file's group: the kernel clears it
                String n = name(0.9);
                pending.add(Op.chmod(n, pick(modes) | 02000).asUser(1000));
                pending.add(Op.stat(n));
                return Op.chown(n, 1000, rnd.nextBoolean() ? 50 : 0);
            }
            default: // removedFd
                switch (rnd.nextInt(8)) {
                    case 0: case 1: {
                        // open a file (often a lower one) and remove its name at once: the ops below then act on a removed file
                        String n = nameOfType(Posix.S_IFREG, 0.95);
                        if (rnd.nextInt(4) > 0) pending.add(Op.unlink(n));
                        return Op.holdOpen(slot, n, rnd.nextInt(3) == 0 ? Posix.O_RDWR : Posix.O_RDONLY);
                    }
                    case 2: return Op.fchmodHeld(slot, pick(modes));
                    case 3: return Op.fchownHeld(slot, pick(IDS), pick(IDS));
                    case 4: return Op.futimensHeld(slot, rnd.nextInt(4) == 0 ? -2 : 1_000_000_000L + rnd.nextInt(500_000_000), rnd.nextInt(1_000_000_000));
                    case 5: return Op.fsetxattrHeld(slot, pick(xattrs), "fd" + rnd.nextInt(10));
                    case 6: return Op.ftruncateHeld(slot, new long[]{0, 3, 5000, 1L << 20}[rnd.nextInt(4)]);
                    default: return Op.linkHeld(slot, freshName(0.9));
                }
        }
    }

    /**
     * A name held open, then another name renamed over it, then the descriptor used. A regular file
     * (read-only or read-write: fstat, read or fchmod, then fstat), or (renameOverPath) an empty directory
     * held with O_DIRECTORY that a new directory replaces, or any name held with O_PATH: fstat, then the
     * slot is closed (the removedFd ops are not meant for directories and O_PATH descriptors).
     */
    private Op renameOverFd(int slot) {
        List<Op> ops = new ArrayList<>();
        if (!excluded.contains("renameOverPath") && rnd.nextInt(3) == 0) {
            String n, src;
            if (rnd.nextBoolean()) {
                n = rnd.nextBoolean() ? freshName(0.9) : nameOfType(Posix.S_IFDIR, 0.9);
                src = freshName(0.9);
                if (!exists(n)) ops.add(Op.mkdir(n, pick(modes) & 07777));
                ops.add(Op.holdOpen(slot, n, Posix.O_RDONLY | Posix.O_DIRECTORY));
                ops.add(Op.mkdir(src, 0755));
            } else {
                n = name(0.9);
                src = name(0.85);
                ops.add(Op.holdOpen(slot, n, Posix.O_PATH | Posix.O_NOFOLLOW));
            }
            ops.add(Op.rename(src, n, 0));
            ops.add(Op.fstatHeld(slot));
            ops.add(Op.closeHeld(slot));
        } else {
            String n = nameOfType(Posix.S_IFREG, 0.95);
            ops.add(Op.holdOpen(slot, n, rnd.nextInt(3) == 0 ? Posix.O_RDWR : Posix.O_RDONLY));
            ops.add(Op.rename(rnd.nextBoolean() ? nameOfType(Posix.S_IFREG, 0.9) : name(0.85), n, 0));
            switch (rnd.nextInt(3)) {
                case 0: ops.add(Op.readHeld(slot)); break;
                case 1: ops.add(Op.fchmodHeld(slot, pick(modes))); break;
                default:
            }
            ops.add(Op.fstatHeld(slot));
        }
        pending.addAll(ops.subList(1, ops.size()));
        return ops.get(0);
    }

    /**
     * chattr +a, +i or +ai of a file or directory, one to three operations on it that the flag refuses
     * (or, append-only, lets through: an append) and the flags cleared again, so a protected name never
     * blocks the rest of the run. Drawn from a stream of its own, and none of these operations changes a
     * name or a type even where the flag was not set: a seed gives the sequence it gave before they
     * existed, with these in between. Renames, removals and new names in a protected directory are
     * ProtattrTest's (the order of the VFS's checks differs there: README).
     */
    private Op chattr() {
        boolean dir = rnd.nextInt(3) == 0;
        String n = nameOfType(dir ? Posix.S_IFDIR : Posix.S_IFREG, 0.9);
        int[] flags = {Posix.FS_APPEND_FL, Posix.FS_IMMUTABLE_FL, Posix.FS_APPEND_FL | Posix.FS_IMMUTABLE_FL};
        List<Op> ops = new ArrayList<>();
        ops.add(Op.chattr(n, flags[rnd.nextInt(flags.length)]));
        for (int i = rnd.nextInt(3); i >= 0; i--) {
            switch (rnd.nextInt(6)) {
                case 0: ops.add(dir ? Op.stat(n) : Op.append(n, 100, 7_000_000L + rnd.nextInt(1000))); break;
                case 1: ops.add(dir ? Op.listdir(n) : Op.write(n, 0, 10, 7_000_000L + rnd.nextInt(1000))); break;
                case 2: ops.add(dir ? Op.stat(n) : Op.truncate(n, 3)); break;
                case 3: ops.add(Op.chmod(n, pick(modes))); break;
                case 4: ops.add(Op.setxattr(n, pick(xattrs), "v", 0)); break;
                default: ops.add(Op.utimens(n, 1_000_000_000L, 1_000_000_000L, 0, false)); break;
            }
        }
        ops.add(Op.chattr(n, 0));
        pending.addAll(ops.subList(1, ops.size()));
        return ops.get(0);
    }

    /**
     * What the libfuse 2 transport cannot serve (README, "Transports"): lseek (so SEEK_DATA/SEEK_HOLE see
     * every file as data), O_TMPFILE (EOPNOTSUPP), copy_file_range (the VFS copies in its place, with
     * its own EINVAL rules), fstat of a directory or an O_PATH descriptor whose name was renamed over
     * (libfuse 2 keeps no name for what it did not open), and changes through a file descriptor whose name
     * was renamed over (renameOverFd: fchmod gets ENOENT there; seen with 10a47dd's engine too). Left out of the random operations on that transport, always.
     */
    static final Set<String> LIBFUSE_CANNOT = Set.of("seek", "tmpfile", "copyRange", "renameOverPath", "renameOverFd");

    /** -Dstrata.random.exclude=a,b (see KNOWN_EXCLUSIONS), plus {@link #LIBFUSE_CANNOT} on the libfuse transport. */
    public static Set<String> excludedFromProperty() {
        Set<String> s = new LinkedHashSet<>();
        if (Mounter.libfuseTransport()) s.addAll(LIBFUSE_CANNOT);
        for (String x : System.getProperty("strata.random.exclude", "").split(",")) if (!x.isBlank()) s.add(x.strip());
        return s;
    }

    private boolean exists(String rel) {
        Stat st = new Stat();
        return Posix.fstatat(Posix.AT_FDCWD, rel.isEmpty() ? refRoot : refRoot + "/" + rel, st, Posix.AT_SYMLINK_NOFOLLOW) == 0;
    }
    private int typeOf(String rel) {
        Stat st = new Stat();
        return Posix.fstatat(Posix.AT_FDCWD, rel.isEmpty() ? refRoot : refRoot + "/" + rel, st, Posix.AT_SYMLINK_NOFOLLOW) == 0 ? st.type() : -1;
    }

    private <T> T pick(T[] a) { return a[rnd.nextInt(a.length)]; }
    private int pick(int[] a) { return a[rnd.nextInt(a.length)]; }

    /** A pool name; with probability pExisting one that exists now (if one is found in a few tries). */
    private String name(double pExisting) {
        boolean wantExisting = rnd.nextDouble() < pExisting;
        String p = pool.get(rnd.nextInt(pool.size()));
        for (int i = 0; i < 12 && wantExisting && !exists(p); i++) p = pool.get(rnd.nextInt(pool.size()));
        return p;
    }
    /** A name whose current type is wanted (S_IF*), if found in a few tries. */
    private String nameOfType(int type, double p) {
        if (rnd.nextDouble() >= p) return name(0.5);
        List<String> from = type == Posix.S_IFDIR ? dirPool : pool;
        String n = from.get(rnd.nextInt(from.size()));
        for (int i = 0; i < 20 && typeOf(n) != type; i++) n = from.get(rnd.nextInt(from.size()));
        return n;
    }
    private String freshName(double pFresh) {
        if (rnd.nextDouble() >= pFresh) return name(0.5);
        String p = pool.get(rnd.nextInt(pool.size()));
        for (int i = 0; i < 12 && exists(p); i++) p = pool.get(rnd.nextInt(pool.size()));
        return p;
    }

    private long seed() { return ++counter * 1_000_003L + rnd.nextInt(1000); }

    private Op nextMmap() {
        long[] offs = {0, 1, 4095, 4096, 10_000, 100_000, (1L << 20) + 5};
        int[] lens = {1, 100, 4096, 5000, 70_000};
        long seed = ++mmapCounter * 1_000_033L + rnd.nextInt(1000) + 7;
        int slot = rnd.nextInt(OpExecutor.SLOTS);
        switch (rnd.nextInt(10)) {
            case 0: case 1: case 2: return Op.mmapRead(nameOfType(Posix.S_IFREG, 0.9));
            case 3: case 4: case 5: return Op.mmapWrite(nameOfType(Posix.S_IFREG, 0.9), offs[rnd.nextInt(offs.length)], lens[rnd.nextInt(lens.length)], seed);
            case 6: case 7: case 8: return hold ? Op.mmapReadHeld(slot) : Op.mmapRead(nameOfType(Posix.S_IFREG, 0.9));
            default: return hold ? Op.mmapWriteHeld(slot, offs[rnd.nextInt(offs.length)], lens[rnd.nextInt(lens.length)], seed)
                    : Op.mmapWrite(nameOfType(Posix.S_IFREG, 0.9), offs[rnd.nextInt(offs.length)], lens[rnd.nextInt(lens.length)], seed);
        }
    }

    /** About one operation in this many is an mmap one. */
    static final int MMAP_ONE_IN = 25;

    public Op next() {
        // the issue-17 ops and the user an op runs as come from a stream of their own (as mmap ops do, see
        // nextClassic): with all of them excluded a seed gives the sequence it gave before they existed;
        // with them, the choices of the other ops change, since these ops change names and types
        if (!pending.isEmpty()) return pending.poll();
        if (!excluded.contains("chattr") && chattrRnd.nextInt(CHATTR_ONE_IN) == 0) {
            Random main = rnd;
            rnd = chattrRnd;
            try {
                return chattr();
            } finally {
                rnd = main;
            }
        }
        if (extraRnd.nextInt(EXTRA_ONE_IN) == 0) {
            Random main = rnd;
            rnd = extraRnd;
            try {
                Op x = nextExtra();
                if (x != null) return x;
            } finally {
                rnd = main;
            }
        }
        Op op = nextClassic();
        if (!excluded.contains("asUser") && extraRnd.nextInt(AS_USER_ONE_IN) == 0) op = op.asUser(USERS[extraRnd.nextInt(USERS.length)]);
        return op;
    }

    private Op nextClassic() {
        // mmap ops are drawn from their own stream and change no name or type (what the other choices
        // look at): with -Dstrata.random.exclude=mmap a seed gives exactly the sequence it gave before
        // they existed, and with them the same sequence with mmap ops in between
        if (mmap && mmapRnd.nextInt(MMAP_ONE_IN) == 0) {
            Random main = rnd;
            rnd = mmapRnd;
            try {
                return nextMmap();
            } finally {
                rnd = main;
            }
        }
        int w = rnd.nextInt(120);
        if (w < 8) return rnd.nextBoolean() ? Op.create(freshName(0.7), pick(modes)) : Op.createExcl(name(0.5), pick(modes));
        if (w < 17) {
            long[] offs = {0, 1, 4095, 4096, 65536, 100_000, (1L << 20) + 5};
            int[] lens = {1, 100, 4096, 5000, 70_000, 200_000};
            return Op.write(nameOfType(Posix.S_IFREG, 0.8), offs[rnd.nextInt(offs.length)], lens[rnd.nextInt(lens.length)], seed());
        }
        if (w < 23) return Op.append(nameOfType(Posix.S_IFREG, 0.8), new int[]{1, 10, 3000, 70_000}[rnd.nextInt(4)], seed());
        if (w < 29) {
            long[] lens = {0, 3, 4096, 10_000, 1L << 20, 9_000_000};
            String n = nameOfType(Posix.S_IFREG, 0.8);
            long len = lens[rnd.nextInt(lens.length)];
            return rnd.nextBoolean() ? Op.truncate(n, len) : Op.ftruncate(n, len);
        }
        if (w < 34) return Op.chmod(name(0.8), pick(modes));
        if (w < 38) {
            String n = name(0.8);
            return rnd.nextInt(3) == 0 ? Op.lchown(n, pick(IDS), pick(IDS)) : Op.chown(n, pick(IDS), pick(IDS));
        }
        if (w < 42) {
            long at = rnd.nextInt(8) == 0 ? -1 : rnd.nextInt(8) == 0 ? -2 : 1_000_000_000L + rnd.nextInt(500_000_000);
            long mt = rnd.nextInt(8) == 0 ? -1 : rnd.nextInt(10) == 0 ? -2 : 1_000_000_000L + rnd.nextInt(500_000_000);
            return Op.utimens(name(0.8), at, mt, rnd.nextInt(1_000_000_000), rnd.nextInt(3) == 0);
        }
        if (w < 47) {
            int flags = new int[]{0, 0, 0, Posix.XATTR_CREATE, Posix.XATTR_REPLACE}[rnd.nextInt(5)];
            String[] values = {"v", "", "a longer value " + rnd.nextInt(100), Names.bytes(0, 0xff, 'x')};
            return Op.setxattr(name(0.8), pick(xattrs), pick(values), flags);
        }
        if (w < 50) return Op.removexattr(name(0.8), pick(xattrs));
        if (w < 52) return rnd.nextBoolean() ? Op.getxattr(name(0.8), pick(xattrs)) : Op.listxattr(name(0.8));
        if (w < 56 && !link) return Op.symlink(pick(LINK_TARGETS), freshName(0.8));
        if (w < 56) return Op.link(nameOfType(Posix.S_IFREG, 0.7), freshName(0.8));
        if (w < 60) return Op.symlink(pick(LINK_TARGETS), freshName(0.8));
        if (w < 67) return Op.mkdir(freshName(0.8), pick(modes) & 07777);
        if (w < 72) return Op.rmdir(nameOfType(Posix.S_IFDIR, 0.7));
        if (w < 80) return Op.unlink(name(0.8));
        if (w < 91) {
            String from = rnd.nextInt(4) == 0 ? nameOfType(Posix.S_IFDIR, 0.9) : name(0.85);
            String to = rnd.nextBoolean() ? freshName(0.6) : name(0.7);
            int flags = 0;
            if (renameFlags && rnd.nextInt(4) == 0) flags = rnd.nextBoolean() ? Posix.RENAME_NOREPLACE : Posix.RENAME_EXCHANGE;
            if (!dirRename && typeOf(from) == Posix.S_IFDIR) return Op.stat(from);
            return Op.rename(from, to, flags);
        }
        if (w < 93) return Op.mkfifo(freshName(0.8), 0644);
        if (w < 95) {
            if (!mknod) return Op.mkfifo(freshName(0.8), 0600);
            return rnd.nextBoolean() ? Op.mknod(freshName(0.8), Posix.S_IFCHR, 0)          // a forged whiteout: EPERM
                    : Op.mknod(freshName(0.8), Posix.S_IFCHR | 0666, (1 << 8) | 3);   // /dev/null's numbers
        }
        if (w < 101) return Op.read(name(0.8));
        if (w < 106) return Op.stat(name(0.7));
        if (w < 107) return Op.readlink(nameOfType(Posix.S_IFLNK, 0.8));
        if (w < 110) return Op.listdir(nameOfType(Posix.S_IFDIR, 0.8));
        if (!hold) return Op.stat(name(0.7));
        int slot = rnd.nextInt(OpExecutor.SLOTS);
        switch (rnd.nextInt(4)) {
            case 0: return Op.holdOpen(slot, nameOfType(Posix.S_IFREG, 0.9), rnd.nextInt(3) == 0 ? Posix.O_RDWR : Posix.O_RDONLY);
            case 1: return Op.readHeld(slot);
            case 2: return Op.fstatHeld(slot);
            default: return Op.closeHeld(slot);
        }
    }
}
