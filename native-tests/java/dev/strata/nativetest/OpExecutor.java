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

    static final String SEEK_SIZE = "size=", SEEK_DATA = " data=";
    /**
     * The data map of a directory is not compared, a known difference no FUSE file system can close:
     * the kernel overlay answers SEEK_DATA/SEEK_HOLE on a merged directory with EINVAL (ovl_dir_llseek
     * takes only SEEK_SET/SEEK_CUR) and passes a non-merged one to its layer (ext4: data 0 to LLONG_MAX),
     * while lseek on a FUSE directory never reaches the daemon (fuse_dir_operations.llseek is
     * generic_file_llseek: data from 0 to st_size). Its size is still compared.
     */
    static final String DIR_MAP = "(directory: not compared)";

    /**
     * Whether a SEEK_MAP outcome of the reference and one of the target agree: same errno and size, and
     * every hole of the reference a hole of the target (Snapshot#holesKept: the kernel's copy-up fills
     * holes in 1 MiB chunks, a finer copy keeps more). Null if they agree, else why not.
     */
    static String seekMapDisagreement(Outcome ref, Outcome tgt) {
        if (ref.errno != tgt.errno) return "errno";
        if (ref.errno != 0) return ref.detail.equals(tgt.detail) ? null : "detail";
        String[] r = ref.detail.substring(SEEK_SIZE.length()).split(" data=", -1), t = tgt.detail.substring(SEEK_SIZE.length()).split(" data=", -1);
        if (!r[0].equals(t[0])) return "size";
        if (r[1].equals(DIR_MAP) || t[1].equals(DIR_MAP)) return r[1].equals(t[1]) ? null : "type";
        return Snapshot.holesKept(r[1], t[1], Long.parseLong(r[0]));
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
        return Mounts.guarded(op + " on " + root, () -> op.user < 0 ? runUnguarded(op) : asUser(op.user, () -> runUnguarded(op)));
    }

    /** The supplementary groups of this process (restored after an op run as another user). */
    private static final int[] GROUPS = groups();

    private static int[] groups() {
        try {
            for (String l : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/self/status"))) {
                if (!l.startsWith("Groups:")) continue;
                String g = l.substring(7).strip();
                return g.isEmpty() ? new int[0] : java.util.Arrays.stream(g.split("\\s+")).mapToInt(Integer::parseInt).toArray();
            }
        } catch (java.io.IOException e) {
            throw new IllegalStateException(e);
        }
        return new int[0];
    }

    private static void sys(long nr, long a1, long a2, long a3, String what) {
        if (NtLibC.C.syscall(nr, a1, a2, a3) != 0) throw new IllegalStateException(what + ": " + Errno.name(Posix.errno()));
    }

    /**
     * Runs call with effective uid and gid {@code uid} and no supplementary groups, in this thread only
     * (raw setresuid/setresgid/setgroups: glibc's wrappers would change every thread of the JVM). The real
     * and saved ids stay 0, so root's identity (and its capabilities, which the kernel takes from the
     * effective set when euid leaves 0 and gives back when it returns) is restored afterwards.
     */
    static <T> T asUser(int uid, java.util.function.Supplier<T> call) {
        if (Posix.geteuid() != 0) throw new IllegalStateException("ops as another user need root");
        sys(NtLibC.SYS_SETGROUPS, 0, 0, 0, "setgroups");
        try {
            sys(NtLibC.SYS_SETRESGID, -1, uid, -1, "setresgid");
            try {
                sys(NtLibC.SYS_SETRESUID, -1, uid, -1, "setresuid");
                try {
                    return call.get();
                } finally {
                    sys(NtLibC.SYS_SETRESUID, -1, 0, -1, "setresuid back to 0");
                }
            } finally {
                sys(NtLibC.SYS_SETRESGID, -1, 0, -1, "setresgid back to 0");
            }
        } finally {
            Pointer g = Memory.allocateDirect(Posix.RT, 4 * Math.max(1, GROUPS.length));
            for (int i = 0; i < GROUPS.length; i++) g.putInt(4L * i, GROUPS[i]);
            sys(NtLibC.SYS_SETGROUPS, GROUPS.length, g.address(), 0, "setgroups back");
        }
    }

    private int heldFd(long slot) { return held[(int) slot]; }
    private static final Outcome SLOT_EMPTY = new Outcome(Errno.EBADF, "slot empty");

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
                // security.* (capabilities) and the POSIX ACLs are compared; other system.* names are views of other metadata
                names.removeIf(x -> x.startsWith("system.") && !x.equals("system.posix_acl_access") && !x.equals("system.posix_acl_default"));
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
            case OPEN_TRUNC: return openClose(p, (int) op.a | Posix.O_TRUNC | Posix.O_NONBLOCK, (int) op.b);
            case FALLOCATE: {
                int fd = Posix.openat(Posix.AT_FDCWD, p, Posix.O_WRONLY | Posix.O_NONBLOCK, 0);
                if (fd < 0) return of(fd);
                try { return of(Posix.fallocate(fd, (int) op.a, op.b, op.c)); } finally { Posix.close(fd); }
            }
            case COPY_RANGE: {
                int in = Posix.openat(Posix.AT_FDCWD, p, Posix.O_RDONLY | Posix.O_NONBLOCK, 0);
                if (in < 0) return new Outcome(-in, "opening the source");
                try {
                    int out = Posix.openat(Posix.AT_FDCWD, abs(op.path2), Posix.O_WRONLY | Posix.O_NONBLOCK, 0);
                    if (out < 0) return new Outcome(-out, "opening the target");
                    try {
                        if (Posix.lseek(in, op.a, Posix.SEEK_SET) < 0 || Posix.lseek(out, op.b, Posix.SEEK_SET) < 0) return new Outcome(Posix.errno(), "lseek");
                        long n = Posix.copyFileRange(in, out, op.c);
                        return n < 0 ? of(n) : new Outcome(0, "copied " + n);
                    } finally { Posix.close(out); }
                } finally { Posix.close(in); }
            }
            case CHATTR: {
                int fd = Posix.openat(Posix.AT_FDCWD, p, Posix.O_RDONLY | Posix.O_NONBLOCK | Posix.O_NOFOLLOW, 0);
                if (fd < 0) return new Outcome(-fd, "open");
                try {
                    Pointer buf = Memory.allocateDirect(Posix.RT, 8);
                    int r = Posix.ioctl(fd, Posix.FS_IOC_GETFLAGS, buf.address());
                    if (r < 0) return new Outcome(-r, "FS_IOC_GETFLAGS");
                    int mask = Posix.FS_APPEND_FL | Posix.FS_IMMUTABLE_FL;
                    buf.putInt(0, (buf.getInt(0) & ~mask) | ((int) op.a & mask));
                    r = Posix.ioctl(fd, Posix.FS_IOC_SETFLAGS, buf.address());
                    if (r < 0) return new Outcome(-r, "FS_IOC_SETFLAGS");
                    r = Posix.ioctl(fd, Posix.FS_IOC_GETFLAGS, buf.address());
                    return r < 0 ? new Outcome(-r, "FS_IOC_GETFLAGS") : new Outcome(0, "flags a/i: " + (buf.getInt(0) & mask));
                } finally { Posix.close(fd); }
            }
            case SEEK_MAP: {
                int fd = Posix.openat(Posix.AT_FDCWD, p, Posix.O_RDONLY | Posix.O_NONBLOCK, 0);
                if (fd < 0) return of(fd);
                try {
                    Stat st = new Stat();
                    int r = Posix.fstat(fd, st);
                    if (r < 0) return of(r);
                    return new Outcome(0, SEEK_SIZE + st.size() + SEEK_DATA + (st.isDir() ? DIR_MAP : Snapshot.extents(fd, st.size())));
                } finally { Posix.close(fd); }
            }
            case TMPFILE: {
                int fd = Posix.openat(Posix.AT_FDCWD, p, Posix.O_TMPFILE | Posix.O_RDWR, (int) op.a);
                if (fd < 0) return new Outcome(-fd, "open O_TMPFILE");
                try {
                    byte[] data = LayerBuilder.bytes(op.c, (int) op.b);
                    if (data.length > 0) {
                        Pointer buf = Memory.allocateDirect(Posix.RT, data.length);
                        buf.put(0, data, 0, data.length);
                        long n = Posix.pwrite(fd, buf, data.length, 0);
                        if (n < 0) return new Outcome((int) -n, "write");
                    }
                    if (op.path2 == null) return new Outcome(0, "not linked");
                    int r = Posix.linkat(Posix.AT_FDCWD, "/proc/self/fd/" + fd, Posix.AT_FDCWD, abs(op.path2), Posix.AT_SYMLINK_FOLLOW);
                    return r < 0 ? new Outcome(-r, "linkat") : new Outcome(0, "linked");
                } finally { Posix.close(fd); }
            }
            case FCHMOD_HELD: {
                int fd = heldFd(op.a);
                return fd < 0 ? SLOT_EMPTY : of(Posix.fchmod(fd, (int) op.b));
            }
            case FCHOWN_HELD: {
                int fd = heldFd(op.a);
                return fd < 0 ? SLOT_EMPTY : of(Posix.fchown(fd, (int) op.b, (int) op.c));
            }
            case FUTIMENS_HELD: {
                int fd = heldFd(op.a);
                if (fd < 0) return SLOT_EMPTY;
                long ms = op.b, mn = op.c;
                if (op.b == -2) { ms = 0; mn = Posix.UTIME_NOW; }
                return of(Posix.futimens(fd, 0, Posix.UTIME_OMIT, ms, mn));
            }
            case FSETXATTR_HELD: {
                int fd = heldFd(op.a);
                return fd < 0 ? SLOT_EMPTY : of(Posix.fsetxattr(fd, op.path2, op.text.getBytes(StandardCharsets.ISO_8859_1), 0));
            }
            case FTRUNCATE_HELD: {
                int fd = heldFd(op.a);
                return fd < 0 ? SLOT_EMPTY : of(Posix.ftruncate(fd, op.b));
            }
            case LINK_HELD: {
                int fd = heldFd(op.a);
                return fd < 0 ? SLOT_EMPTY : of(Posix.linkat(Posix.AT_FDCWD, "/proc/self/fd/" + fd, Posix.AT_FDCWD, abs(op.path2), Posix.AT_SYMLINK_FOLLOW));
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
