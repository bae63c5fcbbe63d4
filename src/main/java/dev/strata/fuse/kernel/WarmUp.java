package dev.strata.fuse.kernel;

import dev.strata.fuse.Log;
import dev.strata.options.MountOptions;
import dev.strata.options.OptionParser;
import dev.strata.options.Validator;
import dev.strata.posix.Posix;
import dev.strata.union.Union;
import dev.strata.union.UnionEvents;
import jnr.ffi.LibraryLoader;
import jnr.ffi.Pointer;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static dev.strata.fuse.kernel.Proto.*;
import static dev.strata.posix.Posix.LOCK_EX;
import static dev.strata.posix.Posix.LOCK_NB;

/**
 * The shared daemon's warm-up (issue 14): once per daemon, at its first rest after its first mount,
 * the request paths a container start takes are served a few dozen times over a scratch union, so that
 * the JIT has compiled them before the next containers come. A daemon is started by the first
 * container's mount, and the containers right after it (a `podman run` in a script, the next one a
 * user starts) otherwise ran their requests interpreted: a young daemon's mount and first requests
 * (stat, readlink, open and read, a copy-up, create, mkdir, symlink, rename, unlink) took 1.5-2 times
 * as long as a daemon's after 40 mounts (/var/tmp/ml/young.py, 2026-12-06). A round also does what an
 * untar does to each new file and directory (owner, mode, times).
 *
 * <p>How: the scratch union lives in a private temporary directory (0700, removed after), mounted
 * nowhere. Its {@link KernelFS} and {@link Workers} are those of a real mount, reading requests from
 * one end of a socketpair instead of /dev/fuse; this class writes FUSE requests (the kernel's structs)
 * to the other end and reads the replies. Nothing of it is visible outside the process. Its messages
 * go nowhere; any failure ends it quietly (the daemon serves as before, only colder). Off with
 * {@code STRATA_WARMUP=0} or {@code -Dstrata.warmupRounds=0}.
 */
public final class WarmUp {
    private WarmUp() {}

    /** Rounds of the request sequence: C1 compiles strata's methods after ~20 calls (libexec/strata-jvm). */
    static final int ROUNDS = Integer.getInteger("strata.warmupRounds", 40);

    private static volatile boolean pending;
    /** The process is ending: the warm-up stops after its current round. */
    private static volatile boolean stopping;
    private static volatile boolean done;
    private static volatile String xattrOption = "";

    /** The daemon's first mount is ready: warm up at the next rest (once per process). */
    public static void afterFirstMount(MountOptions first) {
        if (done || pending || ROUNDS <= 0 || "0".equals(System.getenv("STRATA_WARMUP"))) return;
        xattrOption = first.userXattr ? ",userxattr" : "";
        pending = true;
        Rest.watch();
        Rest.request();
    }

    /** Called by the rest's watcher once requests stopped: starts the pending warm-up on a thread of its own. */
    static void startIfPending() {
        if (!pending) return;
        pending = false;
        done = true;
        Thread t = new Thread(null, () -> {
            dev.strata.daemon.Server.logTo(new PrintStream(OutputStream.nullOutputStream()));
            long t0 = System.nanoTime();
            String outcome;
            try {
                outcome = "served " + run(Path.of(System.getProperty("java.io.tmpdir", "/tmp")), ROUNDS) + " of " + ROUNDS + " rounds";
            } catch (Throwable e) {
                outcome = "stopped: " + e; // best effort: the daemon serves as before
            } finally {
                Rest.mountEnded(); // the scratch engine's nodes are garbage: collected at the next rest
            }
            String report = System.getProperty("strata.warmupReport");
            if (report != null) {
                try {
                    Files.writeString(Path.of(report), outcome + " in " + (System.nanoTime() - t0) / 1_000_000 + " ms\n");
                } catch (IOException | RuntimeException ignored) {
                    // a test's aid only
                }
            }
        }, "strata-warmup", 512 * 1024);
        t.setDaemon(true);
        t.start();
    }

    /** socketpair(2), bound at the first use. */
    public interface Calls {
        int socketpair(int domain, int type, int protocol, int[] sv);
    }

    private static final class Holder {
        static final Calls C = LibraryLoader.create(Calls.class).load("c");
    }

    private static final int AF_UNIX = 1, SOCK_SEQPACKET = 5, SOCK_CLOEXEC = 0x80000;

    /**
     * Serves {@code rounds} rounds of the sequence over a scratch union in a new directory under
     * {@code parent}; returns how many were served (-Dstrata.warmupReport=FILE writes it there).
     */
    static int run(Path parent, int rounds) throws IOException {
        removeStale(parent);
        Path dir = scratchDir(parent);
        // held while the directory is in use: a daemon killed (SIGKILL) leaves it free, and the next
        // warm-up of this user removes it
        int lock = Posix.openat(Posix.AT_FDCWD, dir.toString(), Posix.O_RDONLY | Posix.O_DIRECTORY | Posix.O_CLOEXEC, 0);
        if (lock >= 0 && Posix.flock(lock, LOCK_EX | LOCK_NB) < 0) {
            Posix.close(lock);
            lock = -1;
        }
        // a daemon ended (SIGTERM) during the warm-up stops it after the round it is in and removes the directory
        Thread warming = Thread.currentThread();
        Thread removal = new Thread(() -> {
            stopping = true;
            try {
                warming.join(2000);
            } catch (InterruptedException ignored) {
                // the process is ending
            }
            deleteTree(dir);
        }, "strata-warmup-removal");
        Runtime.getRuntime().addShutdownHook(removal);
        int[] sv = {-1, -1};
        try {
            Path lower = dir.resolve("lower"), upper = dir.resolve("upper"), work = dir.resolve("work");
            populate(lower, rounds);
            Files.createDirectory(upper);
            Files.createDirectory(work);
            List<String> given = List.of("lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
                    + ",passthrough=0,volatile" + xattrOption);
            Path mountpoint = Files.createDirectory(dir.resolve("m"));
            MountOptions opts = null;
            // what each mount does before it mounts: its options parsed and checked, its union opened
            for (int i = 0; i < rounds / 2; i++) {
                opts = OptionParser.parse(given, dir);
                if (!Validator.check(opts, mountpoint).isEmpty()) return 0;
                clearVolatileMark(work);
                Union.open(opts, KernelMount.events(UnionEvents.NONE)).close();
            }
            if (opts == null) opts = OptionParser.parse(given, dir);
            clearVolatileMark(work);
            if (Holder.C.socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return 0;
            int served = 0;
            try (Union union = Union.open(opts, KernelMount.events(UnionEvents.NONE))) {
                KernelFS fs = new KernelFS(union, sv[0], new Log(false), false, -1);
                Workers workers = new Workers(fs);
                workers.start();
                Driver d = null;
                try {
                    d = new Driver(sv[1]);
                    if (d.init()) {
                        for (; served < rounds && !stopping; served++) d.round(served);
                    }
                } finally {
                    if (d != null) d.close();
                    Posix.close(sv[1]); // the workers read the end of the stream and end
                    sv[1] = -1;
                    try {
                        workers.awaitEnd();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
            }
            return served;
        } finally {
            if (sv[1] >= 0) Posix.close(sv[1]);
            if (sv[0] >= 0) Posix.close(sv[0]);
            deleteTree(dir);
            if (lock >= 0) Posix.close(lock);
            try {
                Runtime.getRuntime().removeShutdownHook(removal);
            } catch (IllegalStateException e) {
                // the process is ending: the hook runs (and finds nothing)
            }
        }
    }

    private static final String PREFIX = "strata-warmup-";

    /**
     * A new directory PREFIX-PID-N under parent, 0700. Not Files.createTempDirectory: its random names
     * come from SecureRandom, which opens /dev/random and /dev/urandom and keeps them for the life of the
     * daemon (SpliceReadTest saw them appear among a daemon's descriptors between two mounts).
     */
    static Path scratchDir(Path parent) throws IOException {
        long pid = ProcessHandle.current().pid();
        for (int n = 0; ; n++) {
            Path d = parent.resolve(PREFIX + pid + "-" + (System.nanoTime() & 0xffffff) + n);
            int r = Posix.mkdirat(Posix.AT_FDCWD, d.toString(), 0700);
            if (r == 0) return d;
            if (r != -dev.strata.posix.Errno.EEXIST || n >= 100) {
                throw new IOException("cannot make a directory in " + parent + ": " + Posix.strerror(r));
            }
        }
    }

    /** Removes the scratch directories of this user's warm-ups whose daemon died (their lock is free). */
    private static void removeStale(Path parent) {
        try (java.nio.file.DirectoryStream<Path> ds = Files.newDirectoryStream(parent, PREFIX + "*")) {
            for (Path d : ds) {
                if (!Files.isDirectory(d, java.nio.file.LinkOption.NOFOLLOW_LINKS)) continue;
                Object uid = Files.getAttribute(d, "unix:uid", java.nio.file.LinkOption.NOFOLLOW_LINKS);
                if (!(uid instanceof Integer) || (Integer) uid != Posix.geteuid()) continue;
                int fd = Posix.openat(Posix.AT_FDCWD, d.toString(), Posix.O_RDONLY | Posix.O_DIRECTORY | Posix.O_NOFOLLOW | Posix.O_CLOEXEC, 0);
                if (fd < 0) continue;
                try {
                    if (Posix.flock(fd, LOCK_EX | LOCK_NB) == 0) deleteTree(d);
                } finally {
                    Posix.close(fd);
                }
            }
        } catch (IOException | RuntimeException e) {
            // left for the system's cleaning
        }
    }

    /** The lower layer: what a container's first requests touch, and files for each round's copy-ups and whiteouts. */
    private static void populate(Path lower, int rounds) throws IOException {
        Path etc = Files.createDirectories(lower.resolve("etc"));
        Path bin = Files.createDirectories(lower.resolve("usr/bin"));
        Files.createDirectories(lower.resolve("tmp"));
        Files.write(etc.resolve("passwd"), "root:x:0:0:root:/root:/bin/sh\n".repeat(64).getBytes(StandardCharsets.US_ASCII));
        Files.write(bin.resolve("env"), new byte[6000]);
        Files.createSymbolicLink(lower.resolve("bin"), Path.of("usr/bin"));
        for (int r = 0; r < rounds; r++) {
            Files.write(etc.resolve("d" + r), "data\n".getBytes(StandardCharsets.US_ASCII));
            Files.write(etc.resolve("m" + r), "mode\n".getBytes(StandardCharsets.US_ASCII));
            Files.write(etc.resolve("o" + r), "gone\n".getBytes(StandardCharsets.US_ASCII));
        }
    }

    /**
     * Removes the mark the last volatile open left (workdir/work/incompat/volatile), as podman does
     * before each mount of a container's layer: a volatile mount refuses a workdir that has it.
     */
    private static void clearVolatileMark(Path work) {
        Path mark = work.resolve("work").resolve("incompat").resolve("volatile");
        if (Files.exists(mark, java.nio.file.LinkOption.NOFOLLOW_LINKS)) deleteTree(mark);
    }

    /** Removes the scratch tree; its directories are opened up first (the workdir's work/work is mode 0). */
    private static void deleteTree(Path dir) {
        try {
            Files.walkFileTree(dir, new java.nio.file.SimpleFileVisitor<>() {
                @Override public java.nio.file.FileVisitResult preVisitDirectory(Path d, java.nio.file.attribute.BasicFileAttributes a)
                        throws IOException {
                    Files.setPosixFilePermissions(d, java.nio.file.attribute.PosixFilePermissions.fromString("rwx------"));
                    return java.nio.file.FileVisitResult.CONTINUE;
                }
                @Override public java.nio.file.FileVisitResult visitFile(Path f, java.nio.file.attribute.BasicFileAttributes a)
                        throws IOException {
                    Files.deleteIfExists(f);
                    return java.nio.file.FileVisitResult.CONTINUE;
                }
                @Override public java.nio.file.FileVisitResult postVisitDirectory(Path d, IOException e) throws IOException {
                    Files.deleteIfExists(d);
                    return java.nio.file.FileVisitResult.CONTINUE;
                }
            });
        } catch (IOException | RuntimeException e) {
            // a temporary directory: left for the system's cleaning
        }
    }

    /** Writes FUSE requests as the kernel does and waits for each reply (notifications are skipped). */
    static final class Driver {
        private static final int O_RDONLY = 0, O_WRONLY = 1, O_CREAT = 0100, O_EXCL = 0200, O_APPEND = 02000;
        private final int fd;
        private static final int REQ = 64 * 1024;
        private final Pointer req = Posix.map(REQ), rep = Posix.map(KernelFS.OUT_BUF);
        private final int uid = Posix.getuid(), gid = Posix.getgid(), pid = (int) ProcessHandle.current().pid();
        private long unique;
        /** Lookups this round gave, by node: forgotten at the end of the round, as the kernel would. */
        private final Map<Long, Long> looked = new HashMap<>();

        Driver(int fd) {
            this.fd = fd;
            if (req == null || rep == null) {
                close();
                throw new OutOfMemoryError("warm-up buffers");
            }
        }

        /** Unmaps the buffers. */
        void close() {
            if (req != null) Posix.unmap(req, REQ);
            if (rep != null) Posix.unmap(rep, KernelFS.OUT_BUF);
        }

        private int head(int opcode, long node) {
            unique += 2;
            req.putInt(IH_OPCODE, opcode);
            req.putLong(IH_UNIQUE, unique);
            req.putLong(IH_NODEID, node);
            req.putInt(IH_UID, uid);
            req.putInt(IH_GID, gid);
            req.putInt(IH_PID, pid);
            req.putInt(IH_PID + 4, 0);
            return IN_HEADER;
        }

        private int name(int at, String s) {
            byte[] b = s.getBytes(StandardCharsets.ISO_8859_1);
            req.put(at, b, 0, b.length);
            req.putByte(at + b.length, (byte) 0);
            return at + b.length + 1;
        }

        private void zero(int at, int len) {
            req.setMemory(at, len, (byte) 0);
        }

        /** Sends the request of {@code len} bytes; returns the reply's error (0 or -errno); throws if the stream broke. */
        private int call(int len) throws IOException {
            req.putInt(IH_LEN, len);
            if (Posix.write(fd, req, len) != len) throw new IOException("warm-up: request not sent");
            while (true) {
                long n = Posix.read(fd, rep, KernelFS.OUT_BUF);
                if (n < OUT_HEADER) throw new IOException("warm-up: no reply");
                if (rep.getLong(8) == unique) return rep.getInt(4);
            }
        }

        private long entry(int err) {
            if (err != 0) return err;
            long node = rep.getLong(OUT_HEADER);
            looked.merge(node, 1L, Long::sum);
            return node;
        }

        boolean init() throws IOException {
            int at = head(INIT, 0);
            zero(at, 64);
            req.putInt(at, KERNEL_MAJOR);
            req.putInt(at + 4, 45);
            req.putInt(at + 8, 128 * 1024);
            req.putInt(at + 12, ASYNC_READ | ATOMIC_O_TRUNC | BIG_WRITES | DONT_MASK | AUTO_INVAL_DATA | DO_READDIRPLUS
                    | READDIRPLUS_AUTO | ASYNC_DIO | PARALLEL_DIROPS | POSIX_ACL | ABORT_ERROR | MAX_PAGES | CACHE_SYMLINKS
                    | NO_OPENDIR_SUPPORT | HANDLE_KILLPRIV_V2 | INIT_EXT);
            return call(at + 64) == 0;
        }

        long lookup(long parent, String n) throws IOException { return entry(call(name(head(LOOKUP, parent), n))); }

        int getattr(long node) throws IOException {
            int at = head(GETATTR, node);
            zero(at, 16);
            return call(at + 16);
        }

        /** OPEN or OPENDIR: the file handle, or -errno. */
        long open(int op, long node, int flags) throws IOException {
            int at = head(op, node);
            req.putInt(at, flags);
            req.putInt(at + 4, 0);
            int e = call(at + 8);
            return e != 0 ? e : rep.getLong(OUT_HEADER);
        }

        /** READ or READDIRPLUS. */
        int read(int op, long node, long fh, long off, int size, int flags) throws IOException {
            int at = head(op, node);
            zero(at, 40);
            req.putLong(at, fh);
            req.putLong(at + 8, off);
            req.putInt(at + 16, size);
            req.putInt(at + 32, flags);
            return call(at + 40);
        }

        int write(long node, long fh, long off, byte[] data, int flags) throws IOException {
            int at = head(WRITE, node);
            zero(at, WRITE_IN);
            req.putLong(at, fh);
            req.putLong(at + 8, off);
            req.putInt(at + 16, data.length);
            req.putInt(at + 32, flags);
            req.put(at + WRITE_IN, data, 0, data.length);
            return call(at + WRITE_IN + data.length);
        }

        int flush(long node, long fh) throws IOException {
            int at = head(FLUSH, node);
            zero(at, 24);
            req.putLong(at, fh);
            return call(at + 24);
        }

        /** RELEASE or RELEASEDIR. */
        int release(int op, long node, long fh, int flags) throws IOException {
            int at = head(op, node);
            zero(at, 24);
            req.putLong(at, fh);
            req.putInt(at + 8, flags);
            return call(at + 24);
        }

        int readlink(long node) throws IOException { return call(head(READLINK, node)); }

        int getxattr(long node, String n, int size) throws IOException {
            int at = head(GETXATTR, node);
            req.putInt(at, size);
            req.putInt(at + 4, 0);
            return call(name(at + 8, n));
        }

        /** SETATTR (struct fuse_setattr_in): mode, atime and mtime, owner, as valid says. */
        int setattr(long node, int valid, int mode, long time) throws IOException {
            int at = head(SETATTR, node);
            zero(at, 88);
            req.putInt(at, valid);
            req.putLong(at + 32, time); // atime
            req.putLong(at + 40, time); // mtime
            req.putInt(at + 68, mode);
            req.putInt(at + 76, uid);
            req.putInt(at + 80, gid);
            return call(at + 88);
        }

        /** CREATE: the node (its file handle in {@link #createdFh}), or -errno. */
        long create(long parent, String n, int flags, int mode) throws IOException {
            int at = head(CREATE, parent);
            req.putInt(at, flags);
            req.putInt(at + 4, mode);
            req.putInt(at + 8, 022);
            req.putInt(at + 12, 0);
            long node = entry(call(name(at + 16, n)));
            createdFh = node > 0 ? rep.getLong(OUT_HEADER + ENTRY_OUT) : -1;
            return node;
        }

        long createdFh;

        long mkdir(long parent, String n, int mode) throws IOException {
            int at = head(MKDIR, parent);
            req.putInt(at, mode);
            req.putInt(at + 4, 022);
            return entry(call(name(at + 8, n)));
        }

        long symlink(long parent, String n, String target) throws IOException {
            return entry(call(name(name(head(SYMLINK, parent), n), target)));
        }

        /** UNLINK or RMDIR. */
        int remove(int op, long parent, String n) throws IOException { return call(name(head(op, parent), n)); }

        int rename(long parent, String n, long newParent, String newName) throws IOException {
            int at = head(RENAME2, parent);
            req.putLong(at, newParent);
            req.putInt(at + 8, 0);
            req.putInt(at + 12, 0);
            return call(name(name(at + 16, n), newName));
        }

        int statfs() throws IOException { return call(head(STATFS, ROOT_ID)); }

        /** FORGET (no reply) of every node this round looked up, as many times as it did. */
        void forgetAll() throws IOException {
            for (Map.Entry<Long, Long> e : looked.entrySet()) {
                int at = head(FORGET, e.getKey());
                req.putLong(at, e.getValue());
                req.putInt(IH_LEN, at + 8);
                if (Posix.write(fd, req, at + 8) != at + 8) throw new IOException("warm-up: request not sent");
            }
            looked.clear();
        }

        /** A step that must succeed (the scratch union is the daemon's own): else the warm-up stops. */
        private static long must(long r, String what) throws IOException {
            if (r < 0) throw new IOException("warm-up: " + what + ": " + Posix.strerror((int) r));
            return r;
        }

        /**
         * What a container's start asks, and a copy-up, a create, a directory made and removed, a rename,
         * a whiteout; throws if a step that must succeed fails.
         */
        void round(int r) throws IOException {
            long etc = lookup(ROOT_ID, "etc");
            long passwd = lookup(etc, "passwd");
            if (etc < 0 || passwd < 0) throw new IOException("warm-up: lower layer not found");
            must(getattr(passwd), "getattr");
            long fh = must(open(OPEN, passwd, O_RDONLY), "open");
            must(read(READ, passwd, fh, 0, 4096, O_RDONLY), "read");
            flush(passwd, fh);
            release(RELEASE, passwd, fh, O_RDONLY);
            long usr = lookup(ROOT_ID, "usr"), bin = lookup(usr, "bin"), env = lookup(bin, "env");
            getattr(env);
            getxattr(env, "security.capability", 0);
            fh = open(OPEN, env, O_RDONLY);
            if (fh >= 0) {
                read(READ, env, fh, 0, 4096, O_RDONLY);
                read(READ, env, fh, 4096, 4096, O_RDONLY);
                release(RELEASE, env, fh, O_RDONLY);
            }
            lookup(ROOT_ID, "nothing" + r);
            readlink(lookup(ROOT_ID, "bin"));
            for (long dirNode : new long[] {ROOT_ID, etc}) {
                long dh = open(OPENDIR, dirNode, O_RDONLY);
                if (dh >= 0) {
                    read(READDIRPLUS, dirNode, dh, 0, 4096, 0);
                    release(RELEASEDIR, dirNode, dh, 0);
                }
            }
            statfs();
            // a new file in a lower directory (copied up first), written, given its owner, mode and times
            long f = must(create(etc, "new" + r, O_WRONLY | O_CREAT | O_EXCL, 0100644), "create");
            long cfh = createdFh;
            getxattr(f, "security.capability", 0);
            must(write(f, cfh, 0, "hello\n".getBytes(StandardCharsets.US_ASCII), O_WRONLY), "write");
            // what tar and cp -a do next: owner (its own), mode, times of the new file
            must(setattr(f, FATTR_UID | FATTR_GID, 0, 0), "chown");
            must(setattr(f, FATTR_MODE, 0100640, 0), "chmod");
            must(setattr(f, FATTR_ATIME | FATTR_MTIME, 0, 1_700_000_000L), "setattr");
            flush(f, cfh);
            release(RELEASE, f, cfh, O_WRONLY);
            // a lower file copied up by a write, another by chmod
            long d = lookup(etc, "d" + r);
            fh = must(open(OPEN, d, O_WRONLY | O_APPEND), "open for a copy-up");
            getattr(d);
            must(write(d, fh, 5, "more\n".getBytes(StandardCharsets.US_ASCII), O_WRONLY | O_APPEND), "write after a copy-up");
            flush(d, fh);
            release(RELEASE, d, fh, O_WRONLY | O_APPEND);
            must(setattr(lookup(etc, "m" + r), FATTR_MODE, 0100600, 0), "chmod");
            // a directory with a symlink, made and removed; a rename across directories; a whiteout
            long tmp = lookup(ROOT_ID, "tmp");
            long dd = must(mkdir(tmp, "d" + r, 040755), "mkdir");
            must(setattr(dd, FATTR_MODE, 040750, 0), "chmod of a directory");
            must(setattr(dd, FATTR_ATIME | FATTR_MTIME, 0, 1_700_000_000L), "times of a directory");
            must(readlink(must(symlink(dd, "l", "target"), "symlink")), "readlink");
            must(remove(UNLINK, dd, "l"), "unlink");
            must(rename(etc, "new" + r, tmp, "moved" + r), "rename");
            must(remove(UNLINK, tmp, "moved" + r), "unlink");
            must(remove(RMDIR, tmp, "d" + r), "rmdir");
            must(lookup(etc, "o" + r), "lookup");
            must(remove(UNLINK, etc, "o" + r), "unlink of a lower file");
            forgetAll();
        }
    }
}
