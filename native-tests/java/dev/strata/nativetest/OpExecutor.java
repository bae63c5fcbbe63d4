package dev.strata.nativetest;

import dev.strata.posix.Errno;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Performs {@link Op}s through a mounted tree with raw syscalls on absolute paths (AT_FDCWD), so the
 * result is the exact errno the kernel hands a program. Holds descriptors for HOLD_OPEN slots; close
 * it when done.
 */
public final class OpExecutor implements AutoCloseable {
    /** The result of one operation: 0 or a positive errno, plus what was observed (reads, stats). */
    public static final class Outcome {
        public final int errno;
        public final String detail;
        Outcome(int errno, String detail) { this.errno = errno; this.detail = detail == null ? "" : detail; }
        public boolean ok() { return errno == 0; }
        @Override public boolean equals(Object o) {
            return o instanceof Outcome && ((Outcome) o).errno == errno && ((Outcome) o).detail.equals(detail);
        }
        @Override public int hashCode() { return Objects.hash(errno, detail); }
        /** The outcome without the parts a comparison leaves out (old times, link counts). */
        public Outcome normalized(Snapshot.Options o) {
            String d = detail;
            if (!o.compareOldTimes) d = d.replaceAll(" mtime=[0-9.]+", "");
            if (!o.compareNlink) d = d.replaceAll(" nlink=[0-9]+", "");
            return d.equals(detail) ? this : new Outcome(errno, d);
        }
        @Override public String toString() { return Errno.name(errno) + (detail.isEmpty() ? "" : " [" + detail + "]"); }

        /**
         * Whether this outcome of the reference (the kernel) excuses a different one of the target: only
         * for a mapping through a descriptor opened read-only on a lower file before a copy-up, which the
         * kernel maps to the lower file while read() on the same descriptor reads the copy
         * (Documentation/filesystems/overlayfs.rst, "Non-standard behavior" b). A target whose mapping
         * shows what read() shows is excused; one whose mapping differs from its own read() never is.
         */
        /** mmap(2) itself gave ENODEV (also as what a held descriptor's mapping showed). */
        public boolean mmapRefused() {
            String refused = new Outcome(Errno.ENODEV, "mmap").toString();
            return (errno == Errno.ENODEV && detail.equals("mmap")) || detail.endsWith(MAPPING_DIFFERS + refused);
        }

        public boolean excuses(Outcome target) {
            int i = detail.indexOf(MAPPING_DIFFERS);
            return i >= 0 && !target.detail.contains(MAPPING_DIFFERS) && target.errno == errno && target.detail.equals(detail.substring(0, i));
        }
    }

    /** Marks an mmap-read-held outcome whose mapping showed something else than read() (see Outcome#excuses). */
    static final String MAPPING_DIFFERS = " | but the mapping shows: ";

    public static final int SLOTS = 3;
    private final String root;
    private final int[] held = {-1, -1, -1};

    /** root: the mount point (absolute). */
    public OpExecutor(String root) { this.root = root; }

    public String abs(String rel) { return rel == null || rel.isEmpty() ? root : root + "/" + rel; }

    static Outcome of(long r) { return new Outcome(r < 0 ? (int) -r : 0, null); }
    static Outcome of(long r, String detail) { return r < 0 ? new Outcome((int) -r, null) : new Outcome(0, detail); }

    public Outcome run(Op op) {
        return Mounts.guarded(op + " on " + root, () -> runUnguarded(op));
    }

    private Outcome runUnguarded(Op op) {
        String p = abs(op.path);
        switch (op.kind) {
            case CREATE: return openClose(p, Posix.O_WRONLY | Posix.O_CREAT | Posix.O_NONBLOCK, (int) op.a);
            case CREATE_EXCL: return openClose(p, Posix.O_WRONLY | Posix.O_CREAT | Posix.O_EXCL | Posix.O_NONBLOCK, (int) op.a);
            case WRITE: return write(p, Posix.O_WRONLY | Posix.O_NONBLOCK, op.a, (int) op.b, op.c, false);
            case APPEND: return write(p, Posix.O_WRONLY | Posix.O_APPEND | Posix.O_NONBLOCK, 0, (int) op.b, op.c, true);
            case TRUNCATE: return of(NtLibC.C.truncate(p, op.a) < 0 ? -Posix.errno() : 0);
            case FTRUNCATE: {
                int fd = Posix.openat(Posix.AT_FDCWD, p, Posix.O_WRONLY | Posix.O_NONBLOCK, 0);
                if (fd < 0) return of(fd);
                try { return of(Posix.ftruncate(fd, op.a)); } finally { Posix.close(fd); }
            }
            case CHMOD: return of(Posix.fchmodat(Posix.AT_FDCWD, p, (int) op.a));
            case CHOWN: return of(Posix.fchownat(Posix.AT_FDCWD, p, (int) op.a, (int) op.b, 0));
            case LCHOWN: return of(Posix.fchownat(Posix.AT_FDCWD, p, (int) op.a, (int) op.b, Posix.AT_SYMLINK_NOFOLLOW));
            case UTIMENS: case LUTIMENS: {
                long as = op.a, an = op.c, ms = op.b, mn = op.c;
                if (op.a == -1) { as = 0; an = Posix.UTIME_OMIT; } else if (op.a == -2) { as = 0; an = Posix.UTIME_NOW; }
                if (op.b == -1) { ms = 0; mn = Posix.UTIME_OMIT; } else if (op.b == -2) { ms = 0; mn = Posix.UTIME_NOW; }
                return of(Posix.utimensat(Posix.AT_FDCWD, p, as, an, ms, mn, op.kind == Op.Kind.LUTIMENS ? Posix.AT_SYMLINK_NOFOLLOW : 0));
            }
            case SETXATTR: return of(Posix.lsetxattr(p, op.path2, op.text.getBytes(StandardCharsets.ISO_8859_1), (int) op.a));
            case REMOVEXATTR: return of(Posix.lremovexattr(p, op.path2));
            case GETXATTR: {
                Pointer buf = Memory.allocateDirect(Posix.RT, 65536);
                long n = Posix.lgetxattr(p, op.path2, buf, 65536);
                if (n < 0) return of(n);
                byte[] v = new byte[(int) n];
                buf.get(0, v, 0, v.length);
                return new Outcome(0, Names.showBytes(v));
            }
            case LISTXATTR: {
                Pointer buf = Memory.allocateDirect(Posix.RT, 65536);
                long n = Posix.llistxattr(p, buf, 65536);
                if (n < 0) return of(n);
                List<String> names = new ArrayList<>(Posix.llistxattr(p));
                names.removeIf(x -> x.startsWith("security.") || x.startsWith("system."));
                java.util.Collections.sort(names);
                return new Outcome(0, String.join(",", names));
            }
            case LINK: return of(Posix.linkat(Posix.AT_FDCWD, p, Posix.AT_FDCWD, abs(op.path2), 0));
            case SYMLINK: return of(Posix.symlinkat(op.text, Posix.AT_FDCWD, p));
            case MKDIR: return of(Posix.mkdirat(Posix.AT_FDCWD, p, (int) op.a));
            case RMDIR: return of(Posix.unlinkat(Posix.AT_FDCWD, p, Posix.AT_REMOVEDIR));
            case UNLINK: return of(Posix.unlinkat(Posix.AT_FDCWD, p, 0));
            case RENAME: return of(Posix.renameat2(Posix.AT_FDCWD, p, Posix.AT_FDCWD, abs(op.path2), (int) op.a));
            case MKFIFO: return of(Posix.mknodat(Posix.AT_FDCWD, p, Posix.S_IFIFO | (int) op.a, 0));
            case MKNOD: return of(Posix.mknodat(Posix.AT_FDCWD, p, (int) op.a, op.b));
            case READ: {
                int fd = Posix.openat(Posix.AT_FDCWD, p, Posix.O_RDONLY | Posix.O_NONBLOCK, 0);
                if (fd < 0) return of(fd);
                try { return readAll(fd); } finally { Posix.close(fd); }
            }
            case STAT: {
                Stat st = new Stat();
                int r = Posix.fstatat(Posix.AT_FDCWD, p, st, Posix.AT_SYMLINK_NOFOLLOW);
                return of(r, r < 0 ? null : describe(st));
            }
            case READLINK: {
                int[] err = new int[1];
                String t = Posix.readlinkat(Posix.AT_FDCWD, p, err);
                return t == null ? of(err[0]) : new Outcome(0, Names.show(t));
            }
            case LISTDIR: {
                int fd = Posix.openat(Posix.AT_FDCWD, p, Posix.O_RDONLY | Posix.O_DIRECTORY, 0);
                if (fd < 0) return of(fd);
                try {
                    StringBuilder s = new StringBuilder();
                    for (String[] e : Snapshot.listDir(fd)) s.append(Names.show(e[0])).append(' ');
                    return new Outcome(0, s.toString().strip());
                } finally { Posix.close(fd); }
            }
            case HOLD_OPEN: {
                int slot = (int) op.a;
                if (held[slot] >= 0) { Posix.close(held[slot]); held[slot] = -1; }
                int fd = Posix.openat(Posix.AT_FDCWD, p, (int) op.b | Posix.O_NONBLOCK, 0);
                if (fd < 0) return of(fd);
                held[slot] = fd;
                return new Outcome(0, null);
            }
            case READ_HELD: {
                int fd = held[(int) op.a];
                if (fd < 0) return new Outcome(Errno.EBADF, "slot empty");
                return readAll(fd);
            }
            case FSTAT_HELD: {
                int fd = held[(int) op.a];
                if (fd < 0) return new Outcome(Errno.EBADF, "slot empty");
                Stat st = new Stat();
                int r = Posix.fstat(fd, st);
                return of(r, r < 0 ? null : describe(st));
            }
            case CLOSE_HELD: {
                int slot = (int) op.a;
                if (held[slot] < 0) return new Outcome(Errno.EBADF, "slot empty");
                int r = Posix.close(held[slot]);
                held[slot] = -1;
                return of(r);
            }
            case MMAP_READ: {
                int fd = Posix.openat(Posix.AT_FDCWD, p, Posix.O_RDONLY | Posix.O_NONBLOCK, 0);
                if (fd < 0) return of(fd);
                try { return mmapRead(fd); } finally { Posix.close(fd); }
            }
            case MMAP_WRITE: {
                int fd = Posix.openat(Posix.AT_FDCWD, p, Posix.O_RDWR | Posix.O_NONBLOCK, 0);
                if (fd < 0) return of(fd);
                try { return mmapWrite(fd, op.a, op.b, op.c); } finally { Posix.close(fd); }
            }
            case MMAP_READ_HELD: {
                int fd = held[(int) op.a];
                if (fd < 0) return new Outcome(Errno.EBADF, "slot empty");
                Outcome mapped = mmapRead(fd), read = readAll(fd);
                if (mapped.equals(read) || (mapped.errno != 0 && read.errno != 0)) return mapped;
                // what read() gives, and apart from it what the mapping showed (see Outcome#excuses)
                return new Outcome(read.errno, read.detail + MAPPING_DIFFERS + mapped);
            }
            case MMAP_WRITE_HELD: {
                int fd = held[(int) op.a];
                if (fd < 0) return new Outcome(Errno.EBADF, "slot empty");
                return mmapWrite(fd, op.b, op.c, op.d);
            }
            default: throw new IllegalArgumentException("unknown op " + op);
        }
    }

    /** type, mode, owner, size (not for dirs), nlink and a time set before 2020. */
    public static String describe(Stat st) {
        String type = Snapshot.typeName(st.type());
        return type + " " + String.format("%04o", st.perm()) + " " + st.uid() + ":" + st.gid()
                + (st.isDir() ? "" : " size=" + st.size()) + " nlink=" + st.nlink()
                + (type.equals("chr") || type.equals("blk") ? " rdev=" + st.rdev() : "")
                + (st.mtime() < Snapshot.OLD_TIME_LIMIT ? " mtime=" + st.mtime() + "." + st.mtimeNs() : "");
    }

    private static Outcome openClose(String p, int flags, int mode) {
        int fd = Posix.openat(Posix.AT_FDCWD, p, flags, mode);
        if (fd < 0) return of(fd);
        return of(Posix.close(fd));
    }

    private static Outcome write(String p, int flags, long off, int len, long seed, boolean append) {
        int fd = Posix.openat(Posix.AT_FDCWD, p, flags, 0);
        if (fd < 0) return of(fd);
        try {
            byte[] data = LayerBuilder.bytes(seed, len);
            Pointer buf = Memory.allocateDirect(Posix.RT, Math.max(1, len));
            buf.put(0, data, 0, len);
            long done = 0;
            while (done < len) {
                long n = append ? NtLibC.C.write(fd, buf.slice(done), len - done) : Posix.pwrite(fd, buf.slice(done), len - done, off + done);
                if (append && n < 0) n = -Posix.errno();
                if (n < 0) return new Outcome((int) -n, "after " + done + " bytes");
                if (n == 0) break;
                done += n;
            }
            return new Outcome(0, "wrote " + done);
        } finally {
            Posix.close(fd);
        }
    }

    private static Outcome readAll(int fd) {
        MessageDigest md;
        try { md = MessageDigest.getInstance("SHA-256"); } catch (Exception e) { throw new IllegalStateException(e); }
        int chunk = 1 << 20;
        Pointer buf = Memory.allocateDirect(Posix.RT, chunk);
        byte[] b = new byte[chunk];
        long off = 0;
        while (true) {
            long n = Posix.pread(fd, buf, chunk, off);
            if (n < 0) return new Outcome((int) -n, off == 0 ? null : "after " + off + " bytes");
            if (n == 0) break;
            buf.get(0, b, 0, (int) n);
            md.update(b, 0, (int) n);
            off += n;
        }
        StringBuilder s = new StringBuilder();
        byte[] dig = md.digest();
        for (int i = 0; i < 8; i++) s.append(String.format("%02x", dig[i] & 0xff));
        return new Outcome(0, off + " bytes sha256=" + s);
    }

    // ------------------------------------------------------------------ mmap

    /**
     * A memfd through which mapped memory is copied by the kernel: pwrite(memfd, mapping) reads the
     * mapping, pread(memfd, mapping) writes it. A page that cannot be faulted in (beyond the end of the
     * file that backs the mapping) then gives EFAULT instead of a SIGBUS in the JVM.
     */
    private int memfd = -1;

    private int memfd() {
        if (memfd < 0) {
            memfd = NtLibC.C.memfd_create("nativetest-mmap", 1 /* MFD_CLOEXEC */);
            if (memfd < 0) throw new IllegalStateException("memfd_create: " + Errno.name(Posix.errno()));
        }
        Posix.ftruncate(memfd, 0);
        return memfd;
    }

    private static boolean failed(Pointer map) { return map == null || map.address() == -1L; }

    /** Maps the whole file (size from fstat) shared and read-only and reads it: "N bytes sha256=..." like READ. */
    private Outcome mmapRead(int fd) {
        Stat st = new Stat();
        int r = Posix.fstat(fd, st);
        if (r < 0) return of(r);
        long size = st.size();
        if (size == 0) return new Outcome(0, "0 bytes (nothing to map)");
        Pointer map = NtLibC.C.mmap(null, size, NtLibC.PROT_READ, NtLibC.MAP_SHARED, fd, 0);
        if (failed(map)) return new Outcome(Posix.errno(), "mmap");
        try {
            int m = memfd();
            long done = 0;
            while (done < size) {
                long n = Posix.pwrite(m, map.slice(done), Math.min(1 << 20, size - done), done);
                if (n < 0) return new Outcome((int) -n, "reading the mapping of " + size + " bytes, after " + done);
                if (n == 0) break;
                done += n;
            }
            return readAll(m);
        } finally {
            NtLibC.C.munmap(map, size);
        }
    }

    /**
     * Maps [off, off+len) shared and read-write (from the page boundary below off), where off is taken
     * modulo the file's current size and the range is clipped to it, writes the bytes,
     * msync(MS_SYNC), unmaps. Reports what was mapped.
     */
    private Outcome mmapWrite(int fd, long offset, long len, long seed) {
        Stat st = new Stat();
        int r = Posix.fstat(fd, st);
        if (r < 0) return of(r);
        long size = st.size();
        if (size == 0) return new Outcome(0, "nothing mapped: size 0");
        long off = offset % size;
        int n = (int) Math.min(len, size - off);
        long start = off & ~4095L, mapLen = off - start + n;
        Pointer map = NtLibC.C.mmap(null, mapLen, NtLibC.PROT_READ | NtLibC.PROT_WRITE, NtLibC.MAP_SHARED, fd, start);
        if (failed(map)) return new Outcome(Posix.errno(), "mmap");
        try {
            int m = memfd();
            byte[] data = LayerBuilder.bytes(seed, n);
            Pointer buf = Memory.allocateDirect(Posix.RT, n);
            buf.put(0, data, 0, n);
            long w = Posix.pwrite(m, buf, n, 0);
            if (w != n) throw new IllegalStateException("memfd write: " + w);
            long done = 0;
            while (done < n) {
                long k = Posix.pread(m, map.slice(off - start + done), n - done, done);
                if (k < 0) return new Outcome((int) -k, "writing the mapping, after " + done + " of " + n + " bytes");
                if (k == 0) break;
                done += k;
            }
            if (NtLibC.C.msync(map, mapLen, NtLibC.MS_SYNC) < 0) return new Outcome(Posix.errno(), "msync");
            return new Outcome(0, "wrote " + done + " bytes through a mapping at " + off + " (size " + size + ")");
        } finally {
            NtLibC.C.munmap(map, mapLen);
        }
    }

    @Override public void close() {
        for (int i = 0; i < held.length; i++) if (held[i] >= 0) { Posix.close(held[i]); held[i] = -1; }
        if (memfd >= 0) { Posix.close(memfd); memfd = -1; }
    }
}
