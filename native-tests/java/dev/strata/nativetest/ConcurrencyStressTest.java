package dev.strata.nativetest;

import dev.strata.posix.Errno;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * Several threads work on one mount at once (the implementation under test, strata by default, over
 * the standard layers plus a {@code stress/} tree in the lowers) and check what holds whatever the
 * interleaving:
 * <ul>
 * <li>two threads each own a subtree ({@code stress/p0}, built from lower files and a merged directory,
 * and {@code stress/p1}, new) and keep an exact model of it: every operation's errno, every stat,
 * listing and read must be what the model says;</li>
 * <li>two threads share four lower files: they append records to them, chmod them through paths and
 * through descriptors held open read-only since before any copy-up, set xattrs, read them through the
 * held descriptors and rename them back and forth (copy-up races); only ENOENT may come from a name
 * that another thread moved, and never from an operation on a descriptor;</li>
 * <li>one thread creates, renames and removes names in a large merged directory that two threads list
 * at the same time with small getdents buffers (every name that is there throughout must be listed
 * exactly once, nothing twice), adds and removes hard links of a lower file and appends through them
 * (its own stats must see the exact link count and size through every name), and renames the
 * directory ({@code stress/rd/A <-> B}) in which the last thread creates, renames and removes names
 * through a descriptor held on it (never an error).</li>
 * </ul>
 * No operation may give EIO. After the threads: every name a listing shows can be lstat'ed and every
 * name the threads know exists is listed, the owned subtrees are exactly their models, the shared
 * files hold their original content plus every record appended (each thread's in its order) and the
 * held descriptors read the same, st_nlink of every file equals the names it has in the tree, the
 * daemon logged no error, and after unmounting, the kernel overlay mounted on the same layers (a fresh
 * workdir) shows exactly the tree the implementation showed.
 *
 * <p>-Dstrata.seed=N fixes each thread's sequence of operations (the interleaving stays up to the
 * scheduler), -Dstrata.stress.ops=N operations per thread (default 1000), -Dstrata.runs=N seeds in a
 * row, -Dstrata.target=kernel checks the test itself against the kernel overlay.
 */
@Tag("native")
class ConcurrencyStressTest {
    @BeforeEach void env() { NativeSupport.assumeNativeEnvironment(); }

    @Test void concurrentOperationsKeepTheirInvariants() {
        long seed = Long.getLong("strata.seed", System.currentTimeMillis() % 1_000_000_007L);
        int ops = Integer.getInteger("strata.stress.ops", 1000);
        int runs = Integer.getInteger("strata.runs", 1);
        for (int r = 0; r < runs; r++) runOne(seed + r, ops);
    }

    // ================================================================== layers

    static final String P0 = "stress/p0", P1 = "stress/p1", BIG = "stress/big", SHARED = "stress/shared",
            LINKS = "stress/links", ORIG = LINKS + "/orig", RD = "stress/rd";
    static final int SHARED_FILES = 4;
    /** Files opened and closed concurrently in every mode (g0 lower, g1 new): fixed size, written in 64-byte blocks. */
    static final int BUSY_FILES = 2, BLOCK = 64, BUSY_SIZE = 1 << 16;
    static final String BUSY_LINK = SHARED + "/g0.lnk";
    static String busyName(int k) { return SHARED + "/g" + k; }
    static byte[] busyOrig(int k) { return LayerBuilder.bytes(21 + k, BUSY_SIZE); }
    static final int[] SHARED_MODES = {0644, 0664, 0640, 0600};
    static final int[] PRIVATE_MODES = {0644, 0600, 0755, 0640, 0700};
    static final int MAX_LINKS = 3;

    /** The names of stress/big that no thread touches: e000..e398 but e299 (whited out in l1). */
    static final Set<String> STABLE = new TreeSet<>();
    static {
        for (int i = 0; i < 400; i++) if (i != 299) STABLE.add(String.format("e%03d", i));
    }

    /** The standard layers plus stress/ in the lowers (p0 merged over two lowers, a 399-name merged directory, shared files). */
    static LayerSet build(Path root) {
        LayerSet s = LayerBuilder.standard(root);
        Tree bottom = new Tree(s.lowers.get(2)), middle = new Tree(s.lowers.get(1)), top = new Tree(s.lowers.get(0));
        bottom.file(P0 + "/a", LayerBuilder.bytes(11, 3000), 0644, 0, 0).file(P0 + "/b", "bottom b\n")
                .file(P0 + "/sub/c", LayerBuilder.bytes(12, 70_000), 0644, 0, 0).file(P0 + "/sub/deeper/d", "d\n");
        middle.file(P0 + "/b", "middle b\n").file(P0 + "/m", "from the middle\n");
        top.file(P0 + "/sub/t", "top t\n");
        for (int k = 0; k < SHARED_FILES; k++) {
            if (k != 2) bottom.file(SHARED + "/f" + k, "bottom f" + k + "\n");
        }
        middle.file(SHARED + "/f2", "middle f2\n").file(SHARED + "/f3", "middle f3 over the bottom one\n");
        for (int i = 0; i < 300; i++) bottom.file(String.format("%s/e%03d", BIG, i), "e" + i + "\n");
        for (int i = 300; i < 400; i++) middle.file(String.format("%s/e%03d", BIG, i), "e" + i + "\n");
        middle.whiteout(BIG + "/e299");
        top.file(BIG + "/e150", "top e150\n");
        bottom.file(ORIG, "orig\n");
        bottom.file(busyName(0), busyOrig(0), 0644, 0, 0);
        top.dir("stress", 0755);
        for (Path l : s.lowers) new Tree(l).fixTimes();
        return s;
    }

    // ================================================================== the run

    static void runOne(long seed, int ops) {
        System.out.println("[stress] seed=" + seed + " ops/thread=" + ops + " (replay: -Dstrata.seed=" + seed
                + " -Dstrata.stress.ops=" + ops + "; the interleaving differs from run to run)");
        Path dir = NativeSupport.newTempDir("stress");
        Mount m = null, k = null;
        List<Worker> workers = new ArrayList<>();
        boolean keep = false;
        List<String> problems = new ArrayList<>();
        String who = "?";
        try {
            LayerSet s = build(dir.resolve("s"));
            LowerLayers lowers = LowerLayers.snapshot(s);
            Mounter impl = Mounter.underTest();
            who = impl.name();
            m = impl.mount(s);
            int umask = Posix.umask(022);
            Posix.umask(umask);
            boolean libfuse = Mounter.libfuseTransport();
            Ctx c = new Ctx(m.abs(""), seed, ops, umask, libfuse ? 0 : Posix.RENAME_NOREPLACE);
            for (String d : new String[]{P1, RD, RD + "/A"}) {
                int r = Posix.mkdirat(Posix.AT_FDCWD, c.abs(d), 0755);
                if (r < 0) throw new IllegalStateException("mkdir " + d + " through the mount: " + Errno.name(r));
            }
            int gfd = Posix.openat(Posix.AT_FDCWD, c.abs(busyName(1)), Posix.O_WRONLY | Posix.O_CREAT | Posix.O_EXCL, 0644);
            if (gfd < 0 || writeAt(gfd, busyOrig(1), 0) < 0) throw new IllegalStateException("create " + busyName(1) + " through the mount: " + Errno.name(gfd));
            Posix.close(gfd);
            DirWorker dw = new DirWorker(c, 4);
            workers.add(new PrivateWorker(c, 0, P0));
            workers.add(new PrivateWorker(c, 1, P1));
            workers.add(new SharedWorker(c, 2));
            workers.add(new SharedWorker(c, 3));
            workers.add(dw);
            workers.add(new ReaderWorker(c, 5, dw));
            for (Worker w : workers) w.setUp();
            long t0 = System.nanoTime();
            for (Worker w : workers) w.start();
            joinAll(workers, m, problems);
            long ms = (System.nanoTime() - t0) / 1_000_000;
            problems.addAll(c.violations);

            Snapshot snap = Snapshot.take(who, s.mnt);
            checkTree(snap, problems);
            for (Worker w : workers) if (!w.broken) w.finish(snap, problems);
            checkListedAndLstat(c, snap, workers, problems);
            for (Worker w : workers) w.closeFds();

            String logTail = m.logTail(40);
            Path log = m.log;
            m.close();
            m = null;
            if (log != null && Files.exists(log)) {
                try {
                    for (String line : Files.readAllLines(log, StandardCharsets.ISO_8859_1)) {
                        if (line.contains("error:")) problems.add("the daemon logged: " + line);
                    }
                } catch (IOException e) {
                    problems.add("cannot read the daemon log " + log + ": " + e);
                }
            }

            LayerSet ks = s.withFreshWorkAndMnt("kernel");
            k = Mounter.kernel().mount(ks);
            Snapshot ksnap = Snapshot.take("kernel", ks.mnt);
            k.close();
            k = null;
            List<String> d = Snapshot.diff(ksnap, snap, Snapshot.Options.fromProperties(), 30);
            if (!d.isEmpty()) {
                problems.add("the kernel overlay on the same layers after unmount shows another tree than " + who
                        + " did before:\n    " + String.join("\n    ", d));
            }
            problems.addAll(lowers.changes(20));
            int total = 0;
            for (Worker w : workers) total += w.done;
            System.out.println("[stress] seed=" + seed + ": " + workers.size() + " threads, " + total + " operations in " + ms + " ms on " + who
                    + (problems.isEmpty() ? ", all invariants hold" : ", " + problems.size() + " problems"));
            if (!problems.isEmpty()) {
                keep = Boolean.getBoolean("strata.keepFailed");
                fail("[stress] " + who + ", seed=" + seed + ", " + ops + " ops/thread: " + problems.size() + " problems\n  "
                        + String.join("\n  ", problems.subList(0, Math.min(problems.size(), 25)))
                        + "\nreplay (same per-thread sequences; the interleaving differs): mvn -B test -Dstrata.excludedGroups= "
                        + "-Dtest=ConcurrencyStressTest -Dstrata.seed=" + seed + " -Dstrata.stress.ops=" + ops
                        + (logTail.isEmpty() ? "" : "\n" + who + " log (last lines):\n  " + logTail.replace("\n", "\n  ")));
            }
        } finally {
            for (Worker w : workers) w.closeFds();
            List<Throwable> errors = new ArrayList<>();
            for (Mount x : new Mount[]{k, m}) {
                try { if (x != null) x.close(); } catch (Throwable t) { errors.add(t); }
            }
            if (keep) System.err.println("[stress] kept " + dir + " for inspection");
            else NativeSupport.deleteTree(dir);
            if (!errors.isEmpty()) throw new IllegalStateException("unmount failed: " + errors);
        }
    }

    /** Waits for the workers; a thread stuck in a syscall past the hang timeout gets the FUSE daemon killed. */
    private static void joinAll(List<Worker> workers, Mount m, List<String> problems) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Mounts.HANG_SECONDS);
        for (Worker w : workers) {
            try {
                w.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
        }
        List<String> stuck = new ArrayList<>();
        for (Worker w : workers) if (w.isAlive()) stuck.add(w.getName() + " in " + w.current);
        if (stuck.isEmpty()) return;
        problems.add("HANG: threads did not finish within " + Mounts.HANG_SECONDS + " s: " + stuck + "; killing the FUSE daemon");
        for (long pid : Mounts.daemonPids(m.path())) ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
        for (Worker w : workers) {
            try { w.join(10_000); } catch (InterruptedException e) { Thread.currentThread().interrupt(); }
        }
    }

    // ================================================================== shared state and the worker frame

    static final class Ctx {
        final String mnt;
        final long seed;
        final int ops, umask, renameFlags;
        final ConcurrentLinkedQueue<String> violations = new ConcurrentLinkedQueue<>();
        final AtomicBoolean stop = new AtomicBoolean();
        final CyclicBarrier start = new CyclicBarrier(6);

        Ctx(String mnt, long seed, int ops, int umask, int renameFlags) {
            this.mnt = mnt; this.seed = seed; this.ops = ops; this.umask = umask; this.renameFlags = renameFlags;
        }

        String abs(String rel) { return rel.isEmpty() ? mnt : mnt + "/" + rel; }
    }

    abstract static class Worker extends Thread {
        final Ctx c;
        final int id;
        final Random rnd;
        final Stat st = new Stat();
        final ArrayDeque<String> recent = new ArrayDeque<>();
        volatile String current = "(not started)";
        int done;
        /** Set at the first violation: the thread stops (its bookkeeping can no longer be trusted). */
        volatile boolean broken;

        Worker(Ctx c, int id, String role) {
            super("t" + id + "-" + role);
            setDaemon(true);
            this.c = c;
            this.id = id;
            this.rnd = new Random(c.seed * 1_000_003L + id * 7919L);
        }

        /** Runs on the main thread before any worker starts (opens held descriptors, reads the model). */
        abstract void setUp();
        abstract void op();
        /** Checks, after all threads joined, that the final tree is what this thread's bookkeeping says. */
        abstract void finish(Snapshot s, List<String> problems);
        /** Names this thread knows may exist (for the lstat-vs-listing check). */
        abstract Set<String> knownNames();
        void closeFds() { }

        @Override public void run() {
            try {
                c.start.await(60, TimeUnit.SECONDS);
                for (done = 0; done < c.ops && !broken && !c.stop.get(); done++) op();
                current = "(done)";
            } catch (Throwable t) {
                violation("crashed: " + t + " " + Arrays.toString(t.getStackTrace()).replace(", ", "\n        "));
            }
        }

        void note(String s) {
            recent.addLast(s);
            if (recent.size() > 10) recent.removeFirst();
        }

        /** A call's result (r < 0: -errno) must be one of the allowed errno values (0: success). */
        int expect(String what, long r, int... allowed) {
            int e = r < 0 ? (int) -r : 0;
            note(what + " -> " + Errno.name(e));
            for (int a : allowed) if (a == e) return (int) r;
            StringBuilder al = new StringBuilder();
            for (int a : allowed) al.append(al.length() == 0 ? "" : "/").append(Errno.name(a));
            violation(what + " gave " + Errno.name(e) + (e == Errno.EIO ? " (EIO is never allowed)" : "") + ", expected " + al);
            return (int) r;
        }

        void violation(String msg) {
            broken = true;
            if (c.violations.size() < 40) {
                c.violations.add(getName() + " op #" + done + ": " + msg + "\n      last operations of this thread: " + String.join(" | ", recent));
            }
        }

        String begin(String what) {
            current = what;
            return what;
        }

        <T> T pick(List<T> l) { return l.get(rnd.nextInt(l.size())); }
    }

    // ================================================================== syscall helpers (0 or -errno)

    static int errno(long r) { return r < 0 ? (int) r : 0; }

    static int open(String path, int flags, int mode) { return Posix.openat(Posix.AT_FDCWD, path, flags | Posix.O_NONBLOCK, mode); }

    static int writeAt(int fd, byte[] data, long off) {
        if (data.length == 0) return 0;
        Pointer buf = Memory.allocateDirect(Posix.RT, data.length);
        buf.put(0, data, 0, data.length);
        long done = 0;
        while (done < data.length) {
            long n = Posix.pwrite(fd, buf.slice(done), data.length - done, off + done);
            if (n < 0) return (int) n;
            if (n == 0) return -Errno.ENOSPC;
            done += n;
        }
        return 0;
    }

    static int append(int fd, byte[] data) {
        Pointer buf = Memory.allocateDirect(Posix.RT, Math.max(1, data.length));
        buf.put(0, data, 0, data.length);
        long done = 0;
        while (done < data.length) {
            long n = NtLibC.C.write(fd, buf.slice(done), data.length - done);
            if (n < 0) return -Posix.errno();
            if (n == 0) return -Errno.ENOSPC;
            done += n;
        }
        return 0;
    }

    /** The whole content of an open file (pread from 0), or null with err[0] = -errno. */
    static byte[] readFd(int fd, int[] err) {
        int chunk = 1 << 16;
        Pointer buf = Memory.allocateDirect(Posix.RT, chunk);
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        byte[] b = new byte[chunk];
        long off = 0;
        while (true) {
            long n = Posix.pread(fd, buf, chunk, off);
            if (n < 0) { err[0] = (int) n; return null; }
            if (n == 0) break;
            buf.get(0, b, 0, (int) n);
            out.write(b, 0, (int) n);
            off += n;
        }
        err[0] = 0;
        return out.toByteArray();
    }

    static byte[] readPath(String path, int[] err) {
        int fd = open(path, Posix.O_RDONLY, 0);
        if (fd < 0) { err[0] = fd; return null; }
        try { return readFd(fd, err); } finally { Posix.close(fd); }
    }

    /** The names of an open directory (read from its current offset) with getdents buffers of bufSize bytes, duplicates kept. */
    static List<String> listFd(int fd, int bufSize, int[] err) {
        List<String> out = new ArrayList<>();
        Pointer buf = Memory.allocateDirect(Posix.RT, bufSize);
        while (true) {
            long n = Posix.getdents64(fd, buf, bufSize);
            if (n < 0) { err[0] = (int) n; return null; }
            if (n == 0) break;
            int pos = 0;
            while (pos < n) {
                int reclen = buf.getShort(pos + 16) & 0xffff;
                int end = pos + 19;
                while (buf.getByte(end) != 0) end++;
                byte[] nb = new byte[end - pos - 19];
                buf.get(pos + 19, nb, 0, nb.length);
                String name = new String(nb, StandardCharsets.ISO_8859_1);
                if (!name.equals(".") && !name.equals("..")) out.add(name);
                pos += reclen;
            }
        }
        err[0] = 0;
        return out;
    }

    static List<String> list(String path, int bufSize, int[] err) {
        int fd = open(path, Posix.O_RDONLY | Posix.O_DIRECTORY, 0);
        if (fd < 0) { err[0] = fd; return null; }
        try { return listFd(fd, bufSize, err); } finally { Posix.close(fd); }
    }

    /** The names listed more than once. */
    static List<String> duplicates(List<String> names) {
        Set<String> seen = new HashSet<>();
        List<String> d = new ArrayList<>();
        for (String n : names) if (!seen.add(n)) d.add(n);
        return d;
    }

    static String sha256(byte[] data) {
        try {
            StringBuilder s = new StringBuilder();
            for (byte x : MessageDigest.getInstance("SHA-256").digest(data)) s.append(String.format("%02x", x & 0xff));
            return s.toString();
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    static String show(byte[] b) {
        String s = new String(b, StandardCharsets.ISO_8859_1);
        return s.length() <= 120 ? Names.show(s) : Names.show(s.substring(0, 60)) + "..." + Names.show(s.substring(s.length() - 60)) + " (" + s.length() + " bytes)";
    }

    // ================================================================== a thread's own subtree

    abstract static class MEntry {
        int mode;
        final TreeMap<String, String> xattrs = new TreeMap<>();
    }
    static final class MFile extends MEntry {
        byte[] data;
        int names = 1;
        MFile(byte[] data, int mode) { this.data = data; this.mode = mode; }
    }
    static final class MDir extends MEntry {
        /** Created by mkdir (pure upper: may be renamed); lower and merged directories give EXDEV. */
        final boolean movable;
        MDir(int mode, boolean movable) { this.mode = mode; this.movable = movable; }
    }

    /** Works only below its own directory and predicts every result exactly. */
    static final class PrivateWorker extends Worker {
        final String root;
        final TreeMap<String, MEntry> model = new TreeMap<>();
        int fresh;

        PrivateWorker(Ctx c, int id, String root) {
            super(c, id, "private");
            this.root = root;
        }

        @Override void setUp() {
            // the model starts as what the mount shows (stress/p0 merges two lowers; stress/p1 is new)
            Path top = Path.of(c.abs(root));
            Snapshot.walk(top, (dirfd, name, rel, s, dtype) -> {
                if (s == null) throw new IllegalStateException("cannot lstat " + rel + " in " + top);
                String full = rel.isEmpty() ? root : root + "/" + rel;
                MEntry e;
                if (s.isDir()) {
                    e = new MDir(s.perm(), false);
                } else {
                    int[] err = new int[1];
                    byte[] data = readPath(c.abs(full), err);
                    if (data == null) throw new IllegalStateException("cannot read " + full + ": " + Errno.name(err[0]));
                    e = new MFile(data, s.perm());
                }
                for (String x : Posix.llistxattr(c.abs(full))) {
                    if (x.startsWith("user.")) e.xattrs.put(x, Names.showBytes(Posix.lgetxattr(c.abs(full), x)));
                }
                model.put(full, e);
            });
        }

        List<String> files() {
            List<String> l = new ArrayList<>();
            for (Map.Entry<String, MEntry> e : model.entrySet()) if (e.getValue() instanceof MFile) l.add(e.getKey());
            return l;
        }
        List<String> dirs() {
            List<String> l = new ArrayList<>();
            for (Map.Entry<String, MEntry> e : model.entrySet()) if (e.getValue() instanceof MDir) l.add(e.getKey());
            return l;
        }
        String freshName(String dir) { return dir + "/n" + id + "_" + (fresh++); }
        Set<String> childrenOf(String dir) {
            Set<String> out = new TreeSet<>();
            for (String p : model.subMap(dir + "/", dir + "/\uffff").keySet()) {
                String rest = p.substring(dir.length() + 1);
                if (!rest.contains("/")) out.add(rest);
            }
            return out;
        }
        byte[] randomBytes(int n) {
            byte[] b = new byte[n];
            rnd.nextBytes(b);
            return b;
        }

        @Override void op() {
            int w = rnd.nextInt(100);
            List<String> files = files();
            if (files.isEmpty() && w < 60) w = 0;
            if (w < 10) create();
            else if (w < 19) pwrite(pick(files));
            else if (w < 26) appendTo(pick(files));
            else if (w < 31) truncate(pick(files));
            else if (w < 41) renameFile(pick(files));
            else if (w < 45) renameDir();
            else if (w < 51) link(pick(files));
            else if (w < 58) unlink(pick(files));
            else if (w < 64) mkdir();
            else if (w < 68) rmdir();
            else if (w < 75) readdir();
            else if (w < 83) stat();
            else if (w < 87) chmod();
            else if (w < 91) setxattr();
            else if (!files.isEmpty()) read(pick(files));
            else readdir();
        }

        void create() {
            String p = freshName(pick(dirs()));
            begin("create " + p);
            int fd = expect("create " + p, open(c.abs(p), Posix.O_WRONLY | Posix.O_CREAT | Posix.O_EXCL, 0644), 0);
            if (fd < 0) return;
            byte[] data = randomBytes(new int[]{0, 10, 5000, 20_000}[rnd.nextInt(4)]);
            try {
                if (expect("write " + data.length + " bytes to new " + p, writeAt(fd, data, 0), 0) < 0) return;
            } finally {
                Posix.close(fd);
            }
            model.put(p, new MFile(data, 0644 & ~c.umask));
        }

        void pwrite(String p) {
            MFile f = (MFile) model.get(p);
            long off = rnd.nextInt(f.data.length + 2000);
            byte[] data = randomBytes(1 + rnd.nextInt(8000));
            begin("pwrite " + p);
            int fd = expect("open for writing " + p, open(c.abs(p), Posix.O_WRONLY, 0), 0);
            if (fd < 0) return;
            try {
                if (expect("pwrite " + p + " off=" + off + " len=" + data.length, writeAt(fd, data, off), 0) < 0) return;
            } finally {
                Posix.close(fd);
            }
            int end = (int) Math.max(f.data.length, off + data.length);
            byte[] nd = Arrays.copyOf(f.data, end);
            System.arraycopy(data, 0, nd, (int) off, data.length);
            f.data = nd;
        }

        void appendTo(String p) {
            MFile f = (MFile) model.get(p);
            byte[] data = randomBytes(1 + rnd.nextInt(3000));
            begin("append " + p);
            int fd = expect("open for appending " + p, open(c.abs(p), Posix.O_WRONLY | Posix.O_APPEND, 0), 0);
            if (fd < 0) return;
            try {
                if (expect("append " + data.length + " bytes to " + p, append(fd, data), 0) < 0) return;
            } finally {
                Posix.close(fd);
            }
            byte[] nd = Arrays.copyOf(f.data, f.data.length + data.length);
            System.arraycopy(data, 0, nd, f.data.length, data.length);
            f.data = nd;
        }

        void truncate(String p) {
            MFile f = (MFile) model.get(p);
            int len = rnd.nextInt(f.data.length + 5000);
            begin("truncate " + p);
            if (rnd.nextBoolean()) {
                int r = NtLibC.C.truncate(c.abs(p), len) < 0 ? -Posix.errno() : 0;
                if (expect("truncate " + p + " " + len, r, 0) < 0) return;
            } else {
                int fd = expect("open for ftruncate " + p, open(c.abs(p), Posix.O_WRONLY, 0), 0);
                if (fd < 0) return;
                try {
                    if (expect("ftruncate " + p + " " + len, Posix.ftruncate(fd, len), 0) < 0) return;
                } finally {
                    Posix.close(fd);
                }
            }
            f.data = Arrays.copyOf(f.data, len);
        }

        void renameFile(String src) {
            String dst;
            List<String> files = files();
            if (rnd.nextInt(10) < 7) dst = freshName(pick(dirs()));
            else dst = pick(files);
            begin("rename " + src + " " + dst);
            if (expect("rename " + src + " " + dst, Posix.renameat2(Posix.AT_FDCWD, c.abs(src), Posix.AT_FDCWD, c.abs(dst), 0), 0) < 0) return;
            MFile f = (MFile) model.get(src);
            MEntry old = model.get(dst);
            if (old == f) return; // the same name, or two names of one file: rename(2) does nothing
            if (old != null) ((MFile) old).names--;
            model.remove(src);
            model.put(dst, f);
        }

        void renameDir() {
            List<String> ds = dirs();
            ds.remove(root);
            if (ds.isEmpty()) { mkdir(); return; }
            String src = pick(ds);
            List<String> targets = new ArrayList<>();
            for (String d : dirs()) if (!d.equals(src) && !d.startsWith(src + "/")) targets.add(d);
            String dst = freshName(pick(targets));
            MDir d = (MDir) model.get(src);
            begin("rename dir " + src + " " + dst);
            int r = expect("rename dir " + src + " " + dst + (d.movable ? "" : " (lower or merged)"),
                    Posix.renameat2(Posix.AT_FDCWD, c.abs(src), Posix.AT_FDCWD, c.abs(dst), 0), d.movable ? 0 : Errno.EXDEV);
            if (r < 0 || !d.movable) return;
            TreeMap<String, MEntry> moved = new TreeMap<>(model.subMap(src + "/", src + "/\uffff"));
            for (String p : moved.keySet()) model.remove(p);
            model.remove(src);
            model.put(dst, d);
            for (Map.Entry<String, MEntry> e : moved.entrySet()) model.put(dst + e.getKey().substring(src.length()), e.getValue());
        }

        void link(String src) {
            String dst = freshName(pick(dirs()));
            begin("link " + src + " " + dst);
            if (expect("link " + src + " " + dst, Posix.linkat(Posix.AT_FDCWD, c.abs(src), Posix.AT_FDCWD, c.abs(dst), 0), 0) < 0) return;
            MFile f = (MFile) model.get(src);
            f.names++;
            model.put(dst, f);
        }

        void unlink(String p) {
            begin("unlink " + p);
            if (expect("unlink " + p, Posix.unlinkat(Posix.AT_FDCWD, c.abs(p), 0), 0) < 0) return;
            ((MFile) model.remove(p)).names--;
        }

        void mkdir() {
            String p = freshName(pick(dirs()));
            begin("mkdir " + p);
            if (expect("mkdir " + p, Posix.mkdirat(Posix.AT_FDCWD, c.abs(p), 0755), 0) < 0) return;
            model.put(p, new MDir(0755 & ~c.umask, true));
        }

        void rmdir() {
            List<String> ds = dirs();
            ds.remove(root);
            if (ds.isEmpty()) { mkdir(); return; }
            String p = pick(ds);
            boolean empty = childrenOf(p).isEmpty();
            begin("rmdir " + p);
            if (expect("rmdir " + p, Posix.unlinkat(Posix.AT_FDCWD, c.abs(p), Posix.AT_REMOVEDIR), empty ? 0 : Errno.ENOTEMPTY) < 0) return;
            model.remove(p);
        }

        void readdir() {
            String d = pick(dirs());
            int size = new int[]{512, 1024, 4096, 65536}[rnd.nextInt(4)];
            begin("list " + d);
            int[] err = new int[1];
            List<String> names = list(c.abs(d), size, err);
            if (expect("list " + d + " (getdents buffer " + size + ")", err[0], 0) < 0) return;
            Set<String> want = childrenOf(d);
            List<String> sorted = new ArrayList<>(names);
            java.util.Collections.sort(sorted);
            if (!sorted.equals(new ArrayList<>(want))) {
                violation("list " + d + " shows " + sorted + ", expected " + want);
            }
        }

        void stat() {
            List<String> all = new ArrayList<>(model.keySet());
            String p = rnd.nextInt(10) == 0 ? freshName(pick(dirs())) : pick(all);
            MEntry e = model.get(p);
            begin("lstat " + p);
            int r = expect("lstat " + p, Posix.fstatat(Posix.AT_FDCWD, c.abs(p), st, Posix.AT_SYMLINK_NOFOLLOW), e == null ? Errno.ENOENT : 0);
            if (r < 0 || e == null) return;
            String got = describe(st), want = describe(e);
            if (!got.equals(want)) violation("lstat " + p + " shows " + got + ", expected " + want);
        }

        static String describe(Stat s) {
            return s.isDir() ? "dir " + String.format("%04o", s.perm())
                    : Snapshot.typeName(s.type()) + " " + String.format("%04o", s.perm()) + " size=" + s.size() + " nlink=" + s.nlink();
        }
        static String describe(MEntry e) {
            if (e instanceof MDir) return "dir " + String.format("%04o", e.mode);
            MFile f = (MFile) e;
            return "file " + String.format("%04o", f.mode) + " size=" + f.data.length + " nlink=" + f.names;
        }

        void chmod() {
            String p = pick(new ArrayList<>(model.keySet()));
            int mode = PRIVATE_MODES[rnd.nextInt(PRIVATE_MODES.length)];
            begin("chmod " + p);
            if (expect("chmod " + p + " " + Integer.toOctalString(mode), Posix.fchmodat(Posix.AT_FDCWD, c.abs(p), mode), 0) < 0) return;
            model.get(p).mode = mode;
        }

        void setxattr() {
            String p = pick(new ArrayList<>(model.keySet()));
            String name = "user.k" + rnd.nextInt(3), value = "v" + id + "." + done;
            begin("setxattr " + p);
            if (expect("setxattr " + p + " " + name, Posix.lsetxattr(c.abs(p), name, value.getBytes(StandardCharsets.ISO_8859_1), 0), 0) < 0) return;
            model.get(p).xattrs.put(name, value);
        }

        void read(String p) {
            begin("read " + p);
            int[] err = new int[1];
            byte[] data = readPath(c.abs(p), err);
            if (expect("read " + p, err[0], 0) < 0) return;
            byte[] want = ((MFile) model.get(p)).data;
            if (!Arrays.equals(data, want)) violation("read " + p + " gave " + show(data) + ", expected " + show(want));
        }

        @Override void finish(Snapshot s, List<String> problems) {
            Set<String> seen = new TreeSet<>();
            for (Snapshot.Entry e : s.entries().values()) {
                if (!e.rel.equals(root) && !e.rel.startsWith(root + "/")) continue;
                seen.add(e.rel);
                MEntry m = model.get(e.rel);
                if (m == null) { problems.add(getName() + ": " + e.rel + " exists (" + e + "), its thread did not make it"); continue; }
                String want, got;
                if (m instanceof MDir) {
                    want = "dir " + String.format("%04o", m.mode) + " " + m.xattrs;
                    got = e.type + " " + String.format("%04o", e.perm) + " " + userXattrs(e);
                } else {
                    MFile f = (MFile) m;
                    want = "file " + String.format("%04o", f.mode) + " size=" + f.data.length + " nlink=" + f.names + " sha=" + sha256(f.data).substring(0, 16) + " " + m.xattrs;
                    got = e.type + " " + String.format("%04o", e.perm) + " size=" + e.size + " nlink=" + e.nlink + " sha="
                            + (e.sha256 == null ? "-" : e.sha256.substring(0, 16)) + " " + userXattrs(e);
                }
                if (!want.equals(got)) problems.add(getName() + ": at the end " + e.rel + " is " + got + ", its thread expects " + want);
            }
            for (String p : model.keySet()) if (!seen.contains(p)) problems.add(getName() + ": at the end " + p + " is missing from the tree");
        }

        @Override Set<String> knownNames() { return new TreeSet<>(model.keySet()); }
    }

    static TreeMap<String, String> userXattrs(Snapshot.Entry e) {
        TreeMap<String, String> m = new TreeMap<>();
        for (Map.Entry<String, String> x : e.xattrs.entrySet()) if (x.getKey().startsWith("user.")) m.put(x.getKey(), x.getValue());
        return m;
    }

    // ================================================================== shared lower files

    static final Pattern RECORD = Pattern.compile("t[0-9]+\\.[0-9]+");

    static String sharedName(int k) { return SHARED + "/f" + k; }
    static String movedName(int k) { return SHARED + "/f" + k + ".mv"; }

    /** Appends records to, chmods, renames and reads the shared files; reads them through descriptors held since before any copy-up. */
    static final class SharedWorker extends Worker {
        final int[] held = new int[SHARED_FILES];
        /** Descriptors on the busy files opened and closed as the thread goes, with their access mode. */
        final int[] busy = {-1, -1}, busyMode = new int[BUSY_FILES];
        /** Records written to the busy files: file -> block -> records. */
        final List<Map<Integer, Set<String>>> busyWrites = List.of(new HashMap<>(), new HashMap<>());
        final byte[][] orig = new byte[SHARED_FILES][];
        final List<List<String>> appended = new ArrayList<>();
        int seq;

        SharedWorker(Ctx c, int id) {
            super(c, id, "shared");
            Arrays.fill(held, -1);
            for (int k = 0; k < SHARED_FILES; k++) appended.add(new ArrayList<>());
        }

        @Override void setUp() {
            for (int k = 0; k < SHARED_FILES; k++) {
                held[k] = open(c.abs(sharedName(k)), Posix.O_RDONLY, 0);
                if (held[k] < 0) throw new IllegalStateException("open " + sharedName(k) + ": " + Errno.name(held[k]));
                int[] err = new int[1];
                orig[k] = readFd(held[k], err);
                if (orig[k] == null) throw new IllegalStateException("read " + sharedName(k) + ": " + Errno.name(err[0]));
            }
        }

        @Override void closeFds() {
            for (int k = 0; k < SHARED_FILES; k++) if (held[k] >= 0) { Posix.close(held[k]); held[k] = -1; }
            for (int k = 0; k < BUSY_FILES; k++) if (busy[k] >= 0) { Posix.close(busy[k]); busy[k] = -1; }
        }

        /**
         * Opens, uses and closes the busy files in every access mode, concurrently with the other
         * shared thread and with the dir thread linking g0 (which turns its opens from passthrough or
         * page cache into direct I/O): every call must succeed, the size never changes.
         */
        void busyOp() {
            int k = rnd.nextInt(BUSY_FILES);
            String p = busyName(k);
            int w = rnd.nextInt(10);
            if (busy[k] < 0 || w < 2) {
                if (busy[k] >= 0) { begin("close " + p); expect("close " + p, Posix.close(busy[k]), 0); busy[k] = -1; }
                int mode = new int[]{Posix.O_RDONLY, Posix.O_RDWR, Posix.O_WRONLY}[rnd.nextInt(3)];
                String m = mode == Posix.O_RDONLY ? "O_RDONLY" : mode == Posix.O_RDWR ? "O_RDWR" : "O_WRONLY";
                begin("open " + p + " " + m);
                busy[k] = expect("open " + p + " " + m, open(c.abs(p), mode, 0), 0);
                busyMode[k] = mode;
                return;
            }
            if (w < 3) {
                begin("close " + p);
                expect("close " + p, Posix.close(busy[k]), 0);
                busy[k] = -1;
                return;
            }
            int block = rnd.nextInt(BUSY_SIZE / BLOCK);
            boolean canRead = busyMode[k] != Posix.O_WRONLY, canWrite = busyMode[k] != Posix.O_RDONLY;
            if (canWrite && (!canRead || rnd.nextBoolean())) {
                String rec = busyRecord(id, done);
                begin("pwrite " + p + " block " + block);
                if (expect("pwrite " + p + " block " + block, writeAt(busy[k], rec.getBytes(StandardCharsets.ISO_8859_1), (long) block * BLOCK), 0) == 0) {
                    busyWrites.get(k).computeIfAbsent(block, x -> new HashSet<>()).add(rec);
                }
            } else if (canRead) {
                begin("pread " + p + " block " + block);
                Pointer buf = Memory.allocateDirect(Posix.RT, BLOCK);
                long n = Posix.pread(busy[k], buf, BLOCK, (long) block * BLOCK);
                if (expect("pread " + p + " block " + block, n, 0) == 0 && n != BLOCK) violation("pread " + p + " block " + block + " read " + n + " bytes");
            }
            begin("fstat " + p);
            if (expect("fstat " + p, Posix.fstat(busy[k], st), 0) == 0 && st.size() != BUSY_SIZE) {
                violation("fstat " + p + " shows size " + st.size() + ", it is always " + BUSY_SIZE);
            }
        }

        /** Opens whichever of the two names the file has now. */
        int openEither(int k, int flags, String what) {
            String a = rnd.nextBoolean() ? sharedName(k) : movedName(k), b = a.equals(sharedName(k)) ? movedName(k) : sharedName(k);
            int fd = expect(what + " open " + a, open(c.abs(a), flags, 0), 0, Errno.ENOENT);
            if (fd == -Errno.ENOENT) fd = expect(what + " open " + b, open(c.abs(b), flags, 0), 0, Errno.ENOENT);
            return fd;
        }

        String either(int k) { return rnd.nextBoolean() ? sharedName(k) : movedName(k); }

        @Override void op() {
            if (rnd.nextInt(4) == 0) { busyOp(); return; }
            int k = rnd.nextInt(SHARED_FILES);
            int w = rnd.nextInt(100);
            if (w < 30) {
                String rec = "t" + id + "." + (seq++);
                begin("append " + rec + " to f" + k);
                int fd = openEither(k, Posix.O_WRONLY | Posix.O_APPEND, "append " + rec + ":");
                if (fd < 0) return;
                try {
                    if (expect("append " + rec + " to f" + k, append(fd, (rec + "\n").getBytes(StandardCharsets.ISO_8859_1)), 0) == 0) {
                        appended.get(k).add(rec);
                    }
                } finally {
                    Posix.close(fd);
                }
            } else if (w < 38) {
                String p = either(k);
                int mode = SHARED_MODES[rnd.nextInt(SHARED_MODES.length)];
                begin("chmod " + p);
                expect("chmod " + p + " " + Integer.toOctalString(mode), Posix.fchmodat(Posix.AT_FDCWD, c.abs(p), mode), 0, Errno.ENOENT);
            } else if (w < 46) {
                int mode = SHARED_MODES[rnd.nextInt(SHARED_MODES.length)];
                begin("fchmod held f" + k);
                expect("fchmod held f" + k + " " + Integer.toOctalString(mode), Posix.fchmod(held[k], mode), 0);
            } else if (w < 51) {
                byte[] v = ("h" + done).getBytes(StandardCharsets.ISO_8859_1);
                begin("fsetxattr held f" + k);
                int r = NtLibC.C.fsetxattr(held[k], "user.h" + id, v, v.length, 0) < 0 ? -Posix.errno() : 0;
                expect("fsetxattr held f" + k + " user.h" + id, r, 0);
            } else if (w < 55) {
                String p = either(k);
                begin("setxattr " + p);
                expect("setxattr " + p + " user.p" + id, Posix.lsetxattr(c.abs(p), "user.p" + id, ("p" + done).getBytes(StandardCharsets.ISO_8859_1), 0), 0, Errno.ENOENT);
            } else if (w < 67) {
                begin("read held f" + k);
                int[] err = new int[1];
                byte[] data = readFd(held[k], err);
                if (expect("read held f" + k, err[0], 0) == 0) checkContent("read through a descriptor held since before the copy-up of f" + k, k, data);
            } else if (w < 72) {
                begin("fstat held f" + k);
                if (expect("fstat held f" + k, Posix.fstat(held[k], st), 0) == 0) {
                    if (st.type() != Posix.S_IFREG || st.size() < orig[k].length) violation("fstat held f" + k + " shows " + PrivateWorker.describe(st));
                }
            } else if (w < 78) {
                begin("read f" + k);
                int fd = openEither(k, Posix.O_RDONLY, "read f" + k + ":");
                if (fd < 0) return;
                try {
                    int[] err = new int[1];
                    byte[] data = readFd(fd, err);
                    if (expect("read f" + k, err[0], 0) == 0) checkContent("read of f" + k, k, data);
                } finally {
                    Posix.close(fd);
                }
            } else if (w < 90) {
                boolean there = rnd.nextBoolean();
                String a = there ? sharedName(k) : movedName(k), b = there ? movedName(k) : sharedName(k);
                begin("rename " + a + " " + b);
                expect("rename " + a + " " + b + (c.renameFlags != 0 ? " NOREPLACE" : ""),
                        Posix.renameat2(Posix.AT_FDCWD, c.abs(a), Posix.AT_FDCWD, c.abs(b), c.renameFlags), 0, Errno.ENOENT);
            } else if (w < 95) {
                String p = either(k);
                begin("lstat " + p);
                if (expect("lstat " + p, Posix.fstatat(Posix.AT_FDCWD, c.abs(p), st, Posix.AT_SYMLINK_NOFOLLOW), 0, Errno.ENOENT) == 0
                        && (st.type() != Posix.S_IFREG || st.size() < orig[k].length)) {
                    violation("lstat " + p + " shows " + PrivateWorker.describe(st));
                }
            } else {
                begin("list " + SHARED);
                int[] err = new int[1];
                List<String> names = list(c.abs(SHARED), 512, err);
                if (expect("list " + SHARED, err[0], 0) < 0) return;
                List<String> dups = duplicates(names);
                if (!dups.isEmpty()) violation("list " + SHARED + " shows names twice: " + dups + " in " + names);
                for (String n : names) {
                    if (!n.matches("f[0-" + (SHARED_FILES - 1) + "](\\.mv)?|g[0-" + (BUSY_FILES - 1) + "]|g0\\.lnk")) violation("list " + SHARED + " shows an unknown name " + Names.show(n));
                }
            }
        }

        /** Content is the original followed by whole records (the last may be cut by a concurrent append). */
        void checkContent(String what, int k, byte[] data) {
            String why = contentProblem(orig[k], data, true);
            if (why != null) violation(what + ": " + why + ": " + show(data));
        }

        @Override void finish(Snapshot s, List<String> problems) { }

        static String busyRecord(int id, int step) {
            StringBuilder b = new StringBuilder("t" + id + "." + step + ":");
            while (b.length() < BLOCK) b.append('#');
            return b.toString();
        }

        @Override Set<String> knownNames() {
            Set<String> out = new TreeSet<>();
            for (int k = 0; k < SHARED_FILES; k++) { out.add(sharedName(k)); out.add(movedName(k)); }
            for (int k = 0; k < BUSY_FILES; k++) out.add(busyName(k));
            out.add(BUSY_LINK);
            return out;
        }
    }

    /** Why data is not the original followed by complete records "tN.M\n" (null if it is). */
    static String contentProblem(byte[] orig, byte[] data, boolean partialLastOk) {
        if (data.length < orig.length || !Arrays.equals(Arrays.copyOf(data, orig.length), orig)) return "does not start with the original content";
        String rest = new String(data, orig.length, data.length - orig.length, StandardCharsets.ISO_8859_1);
        String[] parts = rest.split("\n", -1);
        for (int i = 0; i < parts.length - 1; i++) {
            if (!RECORD.matcher(parts[i]).matches()) return "record " + i + " after the original is '" + Names.show(parts[i]) + "'";
        }
        String last = parts[parts.length - 1];
        if (!last.isEmpty() && !(partialLastOk && last.matches("t[0-9]*(\\.[0-9]*)?"))) return "ends with '" + Names.show(last) + "'";
        return null;
    }

    /** After the run: each shared file has one name and holds the original plus every record appended. */
    static void finishShared(Ctx c, List<SharedWorker> sw, List<String> problems) {
        for (int k = 0; k < BUSY_FILES; k++) {
            int[] err = new int[1];
            byte[] data = readPath(c.abs(busyName(k)), err);
            if (data == null) { problems.add("busy " + busyName(k) + ": read gave " + Errno.name(err[0])); continue; }
            if (data.length != BUSY_SIZE) { problems.add("busy " + busyName(k) + ": " + data.length + " bytes"); continue; }
            byte[] orig = busyOrig(k);
            for (int b = 0; b < BUSY_SIZE / BLOCK; b++) {
                byte[] got = Arrays.copyOfRange(data, b * BLOCK, (b + 1) * BLOCK);
                if (Arrays.equals(got, Arrays.copyOfRange(orig, b * BLOCK, (b + 1) * BLOCK))) continue;
                String g = new String(got, StandardCharsets.ISO_8859_1);
                boolean written = false;
                for (SharedWorker w : sw) written |= w.busyWrites.get(k).getOrDefault(b, Set.of()).contains(g);
                if (!written && sw.stream().noneMatch(w -> w.broken)) {
                    problems.add("busy " + busyName(k) + ": block " + b + " holds " + Names.show(g) + ", neither the original nor a record written to it");
                    break;
                }
            }
        }
        for (int k = 0; k < SHARED_FILES; k++) {
            Stat sa = new Stat(), sb = new Stat();
            int a = Posix.fstatat(Posix.AT_FDCWD, c.abs(sharedName(k)), sa, Posix.AT_SYMLINK_NOFOLLOW);
            int b = Posix.fstatat(Posix.AT_FDCWD, c.abs(movedName(k)), sb, Posix.AT_SYMLINK_NOFOLLOW);
            if ((a == 0) == (b == 0)) {
                problems.add("shared f" + k + ": lstat of f" + k + " gave " + Errno.name(a) + " and of f" + k + ".mv " + Errno.name(b) + " (exactly one must exist)");
                continue;
            }
            String name = a == 0 ? sharedName(k) : movedName(k);
            int perm = (a == 0 ? sa : sb).perm();
            if (Arrays.stream(SHARED_MODES).noneMatch(m -> m == perm)) problems.add("shared " + name + ": mode " + Integer.toOctalString(perm) + ", no thread set it");
            int[] err = new int[1];
            byte[] data = readPath(c.abs(name), err);
            if (data == null) { problems.add("shared: read " + name + ": " + Errno.name(err[0])); continue; }
            byte[] orig = sw.get(0).orig[k];
            String why = contentProblem(orig, data, false);
            if (why != null) { problems.add("shared " + name + " " + why + ": " + show(data)); continue; }
            String rest = new String(data, orig.length, data.length - orig.length, StandardCharsets.ISO_8859_1);
            List<String> records = rest.isEmpty() ? List.of() : Arrays.asList(rest.split("\n"));
            List<String> want = new ArrayList<>();
            for (SharedWorker w : sw) {
                if (w.broken) continue;
                want.addAll(w.appended.get(k));
                List<String> mine = new ArrayList<>();
                for (String r : records) if (r.startsWith("t" + w.id + ".")) mine.add(r);
                if (!mine.equals(w.appended.get(k))) {
                    problems.add("shared " + name + ": the records of " + w.getName() + " are " + mine + ", it appended " + w.appended.get(k));
                }
            }
            if (sw.stream().noneMatch(w -> w.broken) && records.size() != want.size()) {
                problems.add("shared " + name + ": " + records.size() + " records, " + want.size() + " were appended");
            }
            for (SharedWorker w : sw) {
                byte[] h = readFd(w.held[k], err);
                if (h == null) problems.add(w.getName() + ": read of its held descriptor on " + name + ": " + Errno.name(err[0]));
                else if (!Arrays.equals(h, data)) {
                    problems.add(w.getName() + ": its descriptor held on f" + k + " since before the copy-up reads " + show(h) + ", the name " + name + " reads " + show(data));
                }
                Stat hs = new Stat();
                int r = Posix.fstat(w.held[k], hs);
                if (r < 0 || hs.size() != data.length) {
                    problems.add(w.getName() + ": fstat of its held descriptor on " + name + ": " + (r < 0 ? Errno.name(r) : "size " + hs.size() + ", content " + data.length + " bytes"));
                }
            }
        }
    }

    // ================================================================== a big merged directory, hard links, a moving directory

    /** Creates, renames and removes names in stress/big; links stress/links/orig; renames stress/rd/A <-> B. */
    static final class DirWorker extends Worker {
        final TreeSet<String> files = new TreeSet<>(), dirs = new TreeSet<>(), links = new TreeSet<>();
        final Set<String> everUsed = new LinkedHashSet<>();
        final StringBuilder origContent = new StringBuilder("orig\n");
        boolean busyLinked;
        /** An append descriptor on orig kept open across links and unlinks (-1: none now). */
        int origFd = -1;
        /** The current name of the directory the reader holds a descriptor on. */
        volatile String rd = RD + "/A";
        /** Every link name this thread has created (the reader stats them). */
        final List<String> linkNames = java.util.Collections.synchronizedList(new ArrayList<>());
        int n;

        DirWorker(Ctx c, int id) { super(c, id, "dirs"); }

        @Override void setUp() { }

        @Override void closeFds() {
            if (origFd >= 0) { Posix.close(origFd); origFd = -1; }
        }

        @Override void op() {
            int w = rnd.nextInt(100);
            if (w < 18) {
                String p = BIG + "/v" + id + "_" + (n++);
                everUsed.add(p);
                begin("create " + p);
                int fd = expect("create " + p, open(c.abs(p), Posix.O_WRONLY | Posix.O_CREAT | Posix.O_EXCL, 0644), 0);
                if (fd < 0) return;
                try {
                    if (expect("write " + p, writeAt(fd, p.getBytes(StandardCharsets.ISO_8859_1), 0), 0) == 0) files.add(p);
                } finally {
                    Posix.close(fd);
                }
            } else if (w < 28 && !files.isEmpty()) {
                String p = pick(new ArrayList<>(files));
                begin("unlink " + p);
                if (expect("unlink " + p, Posix.unlinkat(Posix.AT_FDCWD, c.abs(p), 0), 0) == 0) files.remove(p);
            } else if (w < 36 && !files.isEmpty()) {
                String p = pick(new ArrayList<>(files)), q = BIG + "/r" + id + "_" + (n++);
                everUsed.add(q);
                begin("rename " + p + " " + q);
                if (expect("rename " + p + " " + q, Posix.renameat2(Posix.AT_FDCWD, c.abs(p), Posix.AT_FDCWD, c.abs(q), 0), 0) == 0) {
                    files.remove(p);
                    files.add(q);
                }
            } else if (w < 40) {
                String p = BIG + "/vd" + id + "_" + (n++);
                everUsed.add(p);
                begin("mkdir " + p);
                if (expect("mkdir " + p, Posix.mkdirat(Posix.AT_FDCWD, c.abs(p), 0755), 0) == 0) dirs.add(p);
            } else if (w < 44 && !dirs.isEmpty()) {
                String p = pick(new ArrayList<>(dirs));
                begin("rmdir " + p);
                if (expect("rmdir " + p, Posix.unlinkat(Posix.AT_FDCWD, c.abs(p), Posix.AT_REMOVEDIR), 0) == 0) dirs.remove(p);
            } else if (w < 52) {
                if (links.size() < MAX_LINKS) {
                    String p = LINKS + "/L" + (n++);
                    everUsed.add(p);
                    linkNames.add(p);
                    begin("link " + ORIG + " " + p);
                    if (expect("link " + ORIG + " " + p, Posix.linkat(Posix.AT_FDCWD, c.abs(ORIG), Posix.AT_FDCWD, c.abs(p), 0), 0) == 0) links.add(p);
                } else {
                    unlinkLink();
                }
            } else if (w < 57 && !links.isEmpty()) {
                unlinkLink();
            } else if (w < 63) {
                List<String> names = new ArrayList<>(links);
                names.add(ORIG);
                String p = pick(names), line = "a" + (n++) + "\n";
                if (rnd.nextBoolean()) {
                    // through a descriptor kept open across links and unlinks (opened while orig had one name or several)
                    if (origFd < 0 || rnd.nextInt(8) == 0) {
                        if (origFd >= 0) Posix.close(origFd);
                        begin("open for appending (kept) " + p);
                        origFd = expect("open for appending (kept) " + p, open(c.abs(p), Posix.O_WRONLY | Posix.O_APPEND, 0), 0);
                        if (origFd < 0) return;
                    }
                    begin("append through the kept descriptor");
                    if (expect("append through the kept descriptor", append(origFd, line.getBytes(StandardCharsets.ISO_8859_1)), 0) == 0) origContent.append(line);
                    return;
                }
                begin("append to " + p);
                int fd = expect("open for appending " + p, open(c.abs(p), Posix.O_WRONLY | Posix.O_APPEND, 0), 0);
                if (fd < 0) return;
                try {
                    if (expect("append to " + p, append(fd, line.getBytes(StandardCharsets.ISO_8859_1)), 0) == 0) origContent.append(line);
                } finally {
                    Posix.close(fd);
                }
            } else if (w < 66) {
                // link or unlink a second name of g0 while the shared threads open, write and close it
                begin((busyLinked ? "unlink " : "link ") + BUSY_LINK);
                int r = busyLinked ? Posix.unlinkat(Posix.AT_FDCWD, c.abs(BUSY_LINK), 0)
                        : Posix.linkat(Posix.AT_FDCWD, c.abs(busyName(0)), Posix.AT_FDCWD, c.abs(BUSY_LINK), 0);
                if (expect((busyLinked ? "unlink " : "link " + busyName(0) + " ") + BUSY_LINK, r, 0) == 0) busyLinked = !busyLinked;
                String p = rnd.nextBoolean() || !busyLinked ? busyName(0) : BUSY_LINK;
                if (expect("lstat " + p, Posix.fstatat(Posix.AT_FDCWD, c.abs(p), st, Posix.AT_SYMLINK_NOFOLLOW), 0) == 0
                        && (st.nlink() != (busyLinked ? 2 : 1) || st.size() != BUSY_SIZE)) {
                    violation("lstat " + p + " shows nlink=" + st.nlink() + " size=" + st.size() + ", expected nlink=" + (busyLinked ? 2 : 1) + " size=" + BUSY_SIZE);
                }
            } else if (w < 70) {
                String to = rd.endsWith("/A") ? RD + "/B" : RD + "/A";
                begin("rename " + rd + " " + to);
                if (expect("rename " + rd + " " + to, Posix.renameat2(Posix.AT_FDCWD, c.abs(rd), Posix.AT_FDCWD, c.abs(to), 0), 0) == 0) rd = to;
            } else if (w < 82) {
                listBig(this);
            } else if (w < 92) {
                // the exact link count and size through every name: the kernel's cached attributes of the
                // other names must have been invalidated by each link, unlink and write
                List<String> names = new ArrayList<>(links);
                names.add(ORIG);
                String p = pick(names);
                begin("lstat " + p);
                if (expect("lstat " + p, Posix.fstatat(Posix.AT_FDCWD, c.abs(p), st, Posix.AT_SYMLINK_NOFOLLOW), 0) < 0) return;
                if (st.nlink() != names.size() || st.size() != origContent.length()) {
                    violation("lstat " + p + " shows nlink=" + st.nlink() + " size=" + st.size() + ", expected nlink=" + names.size()
                            + " size=" + origContent.length() + " (names: " + names + ")");
                }
            } else {
                List<String> names = new ArrayList<>(links);
                names.add(ORIG);
                String p = pick(names);
                begin("read " + p);
                int[] err = new int[1];
                byte[] data = readPath(c.abs(p), err);
                if (expect("read " + p, err[0], 0) == 0 && !new String(data, StandardCharsets.ISO_8859_1).equals(origContent.toString())) {
                    violation("read " + p + " gave " + show(data) + ", expected " + Names.show(origContent.toString()));
                }
            }
        }

        void unlinkLink() {
            String p = pick(new ArrayList<>(links));
            begin("unlink " + p);
            if (expect("unlink " + p, Posix.unlinkat(Posix.AT_FDCWD, c.abs(p), 0), 0) == 0) links.remove(p);
        }

        @Override void finish(Snapshot s, List<String> problems) {
            Set<String> want = new TreeSet<>();
            for (String e : STABLE) want.add(BIG + "/" + e);
            want.addAll(files);
            want.addAll(dirs);
            Set<String> got = new TreeSet<>();
            for (String rel : s.entries().keySet()) if (rel.startsWith(BIG + "/")) got.add(rel);
            if (!got.equals(want)) {
                Set<String> extra = new TreeSet<>(got), missing = new TreeSet<>(want);
                extra.removeAll(want);
                missing.removeAll(got);
                problems.add(getName() + ": at the end " + BIG + " has unexpected names " + extra + " and lacks " + missing);
            }
            Set<String> wantLinks = new TreeSet<>(links);
            wantLinks.add(ORIG);
            Set<String> gotLinks = new TreeSet<>();
            for (String rel : s.entries().keySet()) if (rel.startsWith(LINKS + "/")) gotLinks.add(rel);
            if (!gotLinks.equals(wantLinks)) problems.add(getName() + ": at the end " + LINKS + " holds " + gotLinks + ", expected " + wantLinks);
            String sha = sha256(origContent.toString().getBytes(StandardCharsets.ISO_8859_1));
            for (String p : wantLinks) {
                Snapshot.Entry e = s.get(p);
                if (e == null) continue;
                if (e.nlink != wantLinks.size() || !sha.equals(e.sha256)) {
                    problems.add(getName() + ": at the end " + p + " has nlink=" + e.nlink + " size=" + e.size + ", expected nlink=" + wantLinks.size()
                            + " size=" + origContent.length() + (sha.equals(e.sha256) ? "" : " (content differs)"));
                }
            }
            if ((s.get(BUSY_LINK) != null) != busyLinked) problems.add(getName() + ": at the end " + BUSY_LINK + (busyLinked ? " is missing" : " exists"));
            String other = rd.endsWith("/A") ? RD + "/B" : RD + "/A";
            if (s.get(rd) == null || s.get(other) != null) problems.add(getName() + ": at the end the renamed directory should be " + rd + " (and " + other + " absent)");
        }

        @Override Set<String> knownNames() {
            Set<String> out = new TreeSet<>(everUsed);
            out.add(RD + "/A");
            out.add(RD + "/B");
            return out;
        }
    }

    /** Lists stress/big with a small getdents buffer: every stable name exactly once, no name twice, no stranger. */
    static void listBig(Worker w) {
        int size = new int[]{512, 1024, 2048, 4096}[w.rnd.nextInt(4)];
        w.begin("list " + BIG);
        int[] err = new int[1];
        List<String> names = list(w.c.abs(BIG), size, err);
        if (w.expect("list " + BIG + " (getdents buffer " + size + ")", err[0], 0) < 0) return;
        List<String> dups = duplicates(names);
        Set<String> missing = new TreeSet<>(STABLE);
        missing.removeAll(names);
        List<String> strange = new ArrayList<>();
        for (String n : names) if (!STABLE.contains(n) && !n.matches("(v|r|vd)[0-9]+_[0-9]+")) strange.add(Names.show(n));
        if (!dups.isEmpty() || !missing.isEmpty() || !strange.isEmpty()) {
            w.violation("list " + BIG + " (" + names.size() + " names, getdents buffer " + size + "): "
                    + (dups.isEmpty() ? "" : "listed twice: " + dups + "; ") + (missing.isEmpty() ? "" : "names there throughout not listed: " + missing + "; ")
                    + (strange.isEmpty() ? "" : "unknown names: " + strange));
        }
    }

    /** Works through a descriptor held on the directory the dir thread keeps renaming; stats the linked file. */
    static final class ReaderWorker extends Worker {
        final DirWorker dw;
        int dirfd = -1;
        final TreeMap<String, byte[]> files = new TreeMap<>();
        final TreeSet<String> dirs = new TreeSet<>();
        final Set<String> everUsed = new LinkedHashSet<>();
        long lastOrigSize;
        int n;

        ReaderWorker(Ctx c, int id, DirWorker dw) {
            super(c, id, "reader");
            this.dw = dw;
        }

        @Override void setUp() {
            dirfd = open(c.abs(RD + "/A"), Posix.O_RDONLY | Posix.O_DIRECTORY, 0);
            if (dirfd < 0) throw new IllegalStateException("open " + RD + "/A: " + Errno.name(dirfd));
        }

        @Override void closeFds() {
            if (dirfd >= 0) { Posix.close(dirfd); dirfd = -1; }
        }

        @Override void op() {
            int w = rnd.nextInt(100);
            if (w < 22) {
                listBig(this);
            } else if (w < 36) {
                begin("lstat " + ORIG);
                if (expect("lstat " + ORIG, Posix.fstatat(Posix.AT_FDCWD, c.abs(ORIG), st, Posix.AT_SYMLINK_NOFOLLOW), 0) < 0) return;
                if (st.nlink() < 1 || st.nlink() > MAX_LINKS + 1 || st.size() < lastOrigSize) {
                    violation("lstat " + ORIG + " shows nlink=" + st.nlink() + " size=" + st.size() + " (it showed size " + lastOrigSize + " before)");
                }
                lastOrigSize = st.size();
            } else if (w < 42) {
                List<String> ln;
                synchronized (dw.linkNames) { ln = new ArrayList<>(dw.linkNames); }
                if (ln.isEmpty()) return;
                String p = pick(ln);
                begin("lstat " + p);
                if (expect("lstat " + p, Posix.fstatat(Posix.AT_FDCWD, c.abs(p), st, Posix.AT_SYMLINK_NOFOLLOW), 0, Errno.ENOENT) == 0
                        && (st.nlink() < 2 || st.nlink() > MAX_LINKS + 1)) {
                    // an lstat racing with the unlink of that very name may see the file after it lost the
                    // name (nlink 1: orig alone), as on any file system and the kernel overlay, where the
                    // attributes are read after the lookup; link names are never reused, so a name gone
                    // right after shows that race. Any other count, or a name still there, is a violation.
                    long seen = st.nlink();
                    boolean unlinkedMeanwhile = seen == 1 && Posix.fstatat(Posix.AT_FDCWD, c.abs(p), st, Posix.AT_SYMLINK_NOFOLLOW) == -Errno.ENOENT;
                    if (!unlinkedMeanwhile) violation("lstat " + p + " (a link of " + ORIG + ") shows nlink=" + seen);
                }
            } else if (w < 58) {
                String name = "x" + (n++);
                everUsed.add(name);
                byte[] data = Arrays.copyOf(("content of " + name).getBytes(StandardCharsets.ISO_8859_1), 20 + rnd.nextInt(5000));
                begin("create in the held dir " + name);
                int fd = expect("openat(held dir, " + name + ", O_CREAT|O_EXCL)", Posix.openat(dirfd, name, Posix.O_WRONLY | Posix.O_CREAT | Posix.O_EXCL, 0644), 0);
                if (fd < 0) return;
                try {
                    if (expect("write " + name + " in the held dir", writeAt(fd, data, 0), 0) < 0) return;
                    if (expect("fstat " + name + " in the held dir", Posix.fstat(fd, st), 0) == 0 && st.size() != data.length) {
                        violation("fstat of new " + name + " shows size " + st.size() + ", wrote " + data.length);
                    }
                } finally {
                    Posix.close(fd);
                }
                files.put(name, data);
            } else if (w < 66 && !files.isEmpty()) {
                String a = pick(new ArrayList<>(files.keySet())), b = "y" + (n++);
                everUsed.add(b);
                begin("renameat in the held dir " + a + " " + b);
                if (expect("renameat(held dir, " + a + ", held dir, " + b + ")", Posix.renameat2(dirfd, a, dirfd, b, 0), 0) == 0) files.put(b, files.remove(a));
            } else if (w < 74 && !files.isEmpty()) {
                String a = pick(new ArrayList<>(files.keySet()));
                begin("unlinkat in the held dir " + a);
                if (expect("unlinkat(held dir, " + a + ")", Posix.unlinkat(dirfd, a, 0), 0) == 0) files.remove(a);
            } else if (w < 80) {
                if (!dirs.isEmpty() && rnd.nextBoolean()) {
                    String a = pick(new ArrayList<>(dirs));
                    begin("rmdir in the held dir " + a);
                    if (expect("unlinkat(held dir, " + a + ", AT_REMOVEDIR)", Posix.unlinkat(dirfd, a, Posix.AT_REMOVEDIR), 0) == 0) dirs.remove(a);
                } else {
                    String a = "d" + (n++);
                    everUsed.add(a);
                    begin("mkdir in the held dir " + a);
                    if (expect("mkdirat(held dir, " + a + ")", Posix.mkdirat(dirfd, a, 0755), 0) == 0) dirs.add(a);
                }
            } else if (w < 88 && !files.isEmpty()) {
                String a = pick(new ArrayList<>(files.keySet()));
                begin("read in the held dir " + a);
                int fd = expect("openat(held dir, " + a + ", O_RDONLY)", Posix.openat(dirfd, a, Posix.O_RDONLY, 0), 0);
                if (fd < 0) return;
                try {
                    int[] err = new int[1];
                    byte[] data = readFd(fd, err);
                    if (expect("read " + a + " in the held dir", err[0], 0) == 0 && !Arrays.equals(data, files.get(a))) {
                        violation("read " + a + " in the held dir gave " + show(data) + ", expected " + show(files.get(a)));
                    }
                } finally {
                    Posix.close(fd);
                }
            } else if (w < 94) {
                begin("list the held dir");
                int fd = expect("openat(held dir, \".\")", Posix.openat(dirfd, ".", Posix.O_RDONLY | Posix.O_DIRECTORY, 0), 0);
                if (fd < 0) return;
                try {
                    int[] err = new int[1];
                    List<String> names = listFd(fd, 512, err);
                    if (expect("list the held dir", err[0], 0) < 0) return;
                    Set<String> want = new TreeSet<>(files.keySet());
                    want.addAll(dirs);
                    List<String> sorted = new ArrayList<>(names);
                    java.util.Collections.sort(sorted);
                    if (!sorted.equals(new ArrayList<>(want))) violation("list of the held dir shows " + sorted + ", expected " + want);
                } finally {
                    Posix.close(fd);
                }
            } else {
                begin("fstat the held dir");
                if (expect("fstat the held dir", Posix.fstat(dirfd, st), 0) == 0 && !st.isDir()) violation("fstat of the held dir: not a directory");
                if (!files.isEmpty()) {
                    String a = pick(new ArrayList<>(files.keySet()));
                    int mode = PRIVATE_MODES[rnd.nextInt(PRIVATE_MODES.length)];
                    expect("fchmodat(held dir, " + a + ")", Posix.fchmodat(dirfd, a, mode), 0);
                }
            }
        }

        @Override void finish(Snapshot s, List<String> problems) {
            String rd = dw.rd;
            Set<String> want = new TreeSet<>(), got = new TreeSet<>();
            for (String f : files.keySet()) want.add(rd + "/" + f);
            for (String d : dirs) want.add(rd + "/" + d);
            for (Snapshot.Entry e : s.entries().values()) if (e.rel.startsWith(rd + "/")) got.add(e.rel);
            if (!got.equals(want)) problems.add(getName() + ": at the end " + rd + " holds " + got + ", expected " + want);
            for (Map.Entry<String, byte[]> f : files.entrySet()) {
                Snapshot.Entry e = s.get(rd + "/" + f.getKey());
                if (e != null && !sha256(f.getValue()).equals(e.sha256)) problems.add(getName() + ": at the end " + e.rel + " has other content than written");
            }
        }

        @Override Set<String> knownNames() {
            Set<String> out = new TreeSet<>();
            for (String n : everUsed) { out.add(RD + "/A/" + n); out.add(RD + "/B/" + n); }
            return out;
        }
    }

    // ================================================================== whole-tree checks

    /** Listing problems, and st_nlink of every non-directory = its names in the tree (all names agree on size and mode). */
    static void checkTree(Snapshot s, List<String> problems) {
        Map<String, List<Snapshot.Entry>> byIno = new HashMap<>();
        for (Snapshot.Entry e : s.entries().values()) {
            if (!e.problem.isEmpty()) problems.add("tree: " + e);
            if (e.type().equals("dir")) continue;
            byIno.computeIfAbsent(e.dev + ":" + e.ino, x -> new ArrayList<>()).add(e);
        }
        for (List<Snapshot.Entry> g : byIno.values()) {
            for (Snapshot.Entry e : g) {
                if (e.nlink != g.size()) {
                    List<String> names = new ArrayList<>();
                    for (Snapshot.Entry x : g) names.add(Names.show(x.rel));
                    problems.add("tree: " + Names.show(e.rel) + " has nlink " + e.nlink + " but " + g.size() + " names share its inode: " + names);
                }
                Snapshot.Entry f = g.get(0);
                if (e.size != f.size || e.perm != f.perm) {
                    problems.add("tree: " + Names.show(e.rel) + " (size " + e.size + ", mode " + Integer.toOctalString(e.perm) + ") and "
                            + Names.show(f.rel) + " (size " + f.size + ", mode " + Integer.toOctalString(f.perm) + ") share an inode but differ");
                }
            }
        }
    }

    /** Every name a thread knows that lstat finds is listed by the walk (the walk itself lstats every listed name). */
    static void checkListedAndLstat(Ctx c, Snapshot s, List<Worker> workers, List<String> problems) {
        Stat st = new Stat();
        for (Worker w : workers) {
            for (String p : w.knownNames()) {
                int r = Posix.fstatat(Posix.AT_FDCWD, c.abs(p), st, Posix.AT_SYMLINK_NOFOLLOW);
                boolean listed = s.get(p) != null;
                if ((r == 0) != listed) problems.add("tree: lstat " + p + " gives " + Errno.name(r) + " but the listing " + (listed ? "shows" : "does not show") + " it");
            }
        }
        List<SharedWorker> sw = new ArrayList<>();
        for (Worker w : workers) if (w instanceof SharedWorker) sw.add((SharedWorker) w);
        finishShared(c, sw, problems);
    }
}
