package dev.strata.inspect;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.strata.posix.Names;
import dev.strata.posix.Posix;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

import static dev.strata.posix.Posix.LOCK_SH;
import static dev.strata.posix.Posix.LOCK_EX;
import static dev.strata.posix.Posix.LOCK_NB;

/**
 * Where running strata mounts say which layers they show, so {@code strata explain PATH} and
 * {@code strata diff MOUNTPOINT} work on a mount without repeating its options.
 *
 * <p>Contract: one JSON file per mount in {@code <runtime>/strata/mounts/}, where runtime is
 * {@code $XDG_RUNTIME_DIR} if set, else {@code /run} for root, else {@code /tmp/strata-<uid>} (created
 * 0700 and used only if owned by that uid). A file holds
 * <pre>{"mountpoint": "/abs", "lowerdirs": ["/top", ...], "upperdir": "/abs" or null,
 *  "workdir": "/abs" or null, "pid": 123, "start_time": 456}</pre>
 * {@code pid} and {@code start_time} (field 22 of /proc/PID/stat) are informational only: a pid says
 * nothing about a daemon in another PID namespace. A record is live while its daemon holds an exclusive
 * flock(2) on it (taken before the record is renamed into place, released by the kernel when the daemon
 * dies, whatever namespace it runs in); a record whose lock is free is stale: readers skip it and
 * {@link #cleanup} deletes it. Paths are written as their UTF-8 text; a record with a path that is
 * not valid UTF-8 carries {@code "names": "latin1"} and every path in it is written one char per byte.
 * Records carry {@code "lock": "flock"}; one without it (from an older strata) is judged by its pid as
 * before. Modes, whatever the umask: {@code /run/strata} and {@code /run/strata/mounts} 0755 (root's), any other
 * registry's {@code strata} and {@code mounts} 0700, records 0644; a registry found with looser modes is
 * tightened when its owner next registers a mount. Readers take only records owned by themselves or root.
 * Readers look in their own directory and then in {@code /run/strata/mounts}, so a user can explain
 * a mount that root made.
 */
public final class MountRegistry {
    private MountRegistry() {}

    /**
     * Jackson, for the commands that read records (explain, diff, image): loaded only there. The mount
     * daemon writes and checks records with {@link RecordJson}, so that serving mounts does not load it.
     */
    private static final class Reader {
        static final ObjectMapper MAPPER = new ObjectMapper();
    }

    /** The registry directory of this process. */
    public static Path directory() {
        return directory(System.getenv(), Posix.geteuid());
    }

    static Path directory(Map<String, String> env, int euid) {
        String xdg = env.get("XDG_RUNTIME_DIR");
        Path runtime;
        if (xdg != null && !xdg.isEmpty()) runtime = Path.of(xdg);
        else if (euid == 0) runtime = Path.of("/run");
        else runtime = Path.of("/tmp/strata-" + euid);
        return runtime.resolve("strata").resolve("mounts");
    }

    static final Path SYSTEM_DIRECTORY = Path.of("/run/strata/mounts");

    /** The directories readers search, own first. */
    static List<Path> searchPath() {
        Path own = directory();
        return own.equals(SYSTEM_DIRECTORY) ? List.of(own) : List.of(own, SYSTEM_DIRECTORY);
    }

    // ------------------------------------------------------------------ readers

    /**
     * The live mount that contains {@code anyPathInsideMount}, if any (the innermost one). The path is a
     * byte string (see {@link Names}); a relative one is taken from the working directory.
     */
    public static Optional<MountInfo> find(Path anyPathInsideMount) {
        return locate(anyPathInsideMount).map(Located::mount);
    }

    /** A mount and the path inside it ("" for its root, else "a/b"). */
    public record Located(MountInfo mount, String rel) {}

    /** Like {@link #find}, and also gives the path relative to the mount's root. */
    public static Optional<Located> locate(Path anyPathInsideMount) {
        List<MountInfo> live = new ArrayList<>();
        for (Path dir : searchPath()) live.addAll(list(dir));
        return locate(live, anyPathInsideMount);
    }

    static Optional<Located> locate(List<MountInfo> live, Path p) {
        Path abs = MountInfo.abs(p);
        Optional<Located> hit = innermost(live, abs);
        if (hit.isPresent()) return hit;
        // The path may reach the mount through a symlink (e.g. /var/run -> /run): resolve its parent only,
        // so a symlink at the end (inside the mount) is not followed.
        Path parent = abs.getParent();
        if (parent == null) return Optional.empty();
        try {
            Path real = Path.of(Names.toNative(Path.of(Names.toText(parent.toString())).toRealPath().toString()))
                    .resolve(abs.getFileName());
            return innermost(live, real);
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    private static Optional<Located> innermost(List<MountInfo> live, Path abs) {
        MountInfo best = null;
        for (MountInfo m : live) {
            if (abs.startsWith(m.mountpoint())
                    && (best == null || m.mountpoint().getNameCount() > best.mountpoint().getNameCount())) {
                best = m;
            }
        }
        if (best == null) return Optional.empty();
        return Optional.of(new Located(best, best.mountpoint().relativize(abs).toString()));
    }

    /** Every live strata mount this process can see (its own registry, then the system one). */
    public static List<MountInfo> live() {
        List<MountInfo> out = new ArrayList<>();
        for (Path dir : searchPath()) out.addAll(list(dir));
        return out;
    }

    /** The live records of one registry directory (unreadable or stale files are skipped). */
    public static List<MountInfo> list(Path dir) {
        List<MountInfo> out = new ArrayList<>();
        if (!trusted(dir)) return out;
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, "*.json")) {
            for (Path f : ds) {
                if (!trustedRecord(f)) continue;
                MountInfo m = read(f);
                if (m != null && alive(f)) out.add(m);
            }
        } catch (IOException e) {
            return out;
        }
        return out;
    }

    /** Reads one record; null if it is not a valid record. */
    static MountInfo read(Path file) {
        try {
            JsonNode o = Reader.MAPPER.readTree(Files.readAllBytes(file));
            boolean latin1 = "latin1".equals(o.path("names").asText(null));
            String mp = text(o.get("mountpoint"), latin1);
            JsonNode lowers = o.get("lowerdirs");
            if (mp == null || lowers == null || !lowers.isArray() || lowers.isEmpty() || !o.path("pid").canConvertToLong()) {
                return null;
            }
            List<Path> lowerdirs = new ArrayList<>();
            for (JsonNode l : lowers) {
                String s = text(l, latin1);
                if (s == null) return null;
                lowerdirs.add(Path.of(s));
            }
            String up = text(o.get("upperdir"), latin1);
            String wk = text(o.get("workdir"), latin1);
            return new MountInfo(Path.of(mp), lowerdirs, up == null ? null : Path.of(up), wk == null ? null : Path.of(wk),
                    o.get("pid").asLong(), o.path("start_time").asLong(0));
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    private static String text(JsonNode n, boolean latin1) {
        if (n == null || !n.isTextual()) return null;
        return latin1 ? n.asText() : Names.fromUnicode(n.asText());
    }


    /**
     * Whether the record's daemon still runs: it holds an exclusive flock on the record for as long
     * as it lives. Our shared, non-blocking try fails exactly then.
     */
    static boolean alive(Path record) {
        int fd = Posix.openat(Posix.AT_FDCWD, dev.strata.posix.Names.toNative(record.toString()), Posix.O_RDONLY | Posix.O_CLOEXEC | Posix.O_NOFOLLOW, 0);
        if (fd < 0) return false;
        try {
            if (Posix.flock(fd, LOCK_SH | LOCK_NB) == -dev.strata.posix.Errno.EAGAIN) return true;
        } finally {
            Posix.close(fd);
        }
        return legacyAlive(record);
    }

    /**
     * A record written by a strata from before the lock (no {@code "lock"} field) holds no lock: it is
     * judged as it was then, by its pid and start time, so that upgrading does not drop the records of
     * mounts that older daemons serve. Records with the field are live only by their lock.
     */
    private static boolean legacyAlive(Path record) {
        try {
            Object v = RecordJson.read(Files.readAllBytes(record));
            if (!(v instanceof Map)) return false;
            Map<?, ?> o = (Map<?, ?>) v;
            if (o.containsKey("lock") || !(o.get("pid") instanceof Long)) return false;
            long pid = (Long) o.get("pid");
            long start = o.get("start_time") instanceof Long ? (Long) o.get("start_time") : 0;
            if (pid <= 0 || !Files.isDirectory(Path.of("/proc/" + pid))) return false;
            return start == 0 || startTime(pid) == start;
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }

    /** Whether a record file may be believed: owned by us or by root. */
    private static boolean trustedRecord(Path f) {
        try {
            Object uid = Files.getAttribute(f, "unix:uid", LinkOption.NOFOLLOW_LINKS);
            return uid instanceof Integer && ((Integer) uid == 0 || (Integer) uid == Posix.geteuid());
        } catch (IOException | UnsupportedOperationException e) {
            return false;
        }
    }

    /** Field 22 (starttime) of /proc/PID/stat, or 0 if unreadable. */
    static long startTime(long pid) {
        try {
            String s = new String(Files.readAllBytes(Path.of("/proc/" + pid + "/stat")), StandardCharsets.ISO_8859_1);
            String[] f = s.substring(s.lastIndexOf(')') + 2).trim().split(" ");
            return Long.parseLong(f[19]);
        } catch (IOException | RuntimeException e) {
            return 0;
        }
    }

    // ------------------------------------------------------------------ writer

    /** A registered mount: holds the record's lock; {@link #close} deletes the record and drops the lock. */
    public static final class Registration implements AutoCloseable {
        private final Path file;
        private final int lockFd;
        private Registration(Path file, int lockFd) { this.file = file; this.lockFd = lockFd; }
        public Path file() { return file; }
        @Override public void close() {
            try { Files.deleteIfExists(file); } catch (IOException ignored) { /* best effort */ }
            Posix.close(lockFd);
        }
    }

    /** Records a mount in this process's registry directory (deleting stale records first). */
    public static Registration register(MountInfo m) throws IOException {
        return register(directory(), m);
    }

    static final Set<PosixFilePermission> RECORD_MODE = PosixFilePermissions.fromString("rw-r--r--");

    static Registration register(Path dir, MountInfo m) throws IOException {
        prepare(dir);
        cleanup(dir);
        return write(dir, m);
    }

    /**
     * Records a mount in this process's registry directory, without looking at the other records: a
     * mount daemon's way to be found as soon as its mount is ready, {@link #cleanup} of the stale ones
     * coming after (it reads every record: one per running container).
     */
    public static Registration record(MountInfo m) throws IOException {
        Path dir = directory();
        if (!PREPARED.contains(dir)) {
            prepare(dir);
            PREPARED.add(dir);
        } else {
            try {
                return write(dir, m);
            } catch (java.nio.file.NoSuchFileException e) {
                prepare(dir); // removed since this process prepared it
            }
        }
        return write(dir, m);
    }

    /**
     * The registry directories this process made or checked (their modes tightened): a shared daemon
     * records a mount per container, and the directories' checks cost more than the record itself.
     */
    private static final Set<Path> PREPARED = java.util.concurrent.ConcurrentHashMap.newKeySet();

    private static Registration write(Path dir, MountInfo m) throws IOException {
        String mp = m.mountpoint().toString();
        String fileName = m.pid() + "-" + Integer.toHexString(mp.hashCode()) + ".json";
        Path file = dir.resolve(fileName);
        Path tmp = dir.resolve("." + fileName + ".tmp");
        Files.deleteIfExists(tmp);
        Files.write(tmp, RecordJson.write(toJson(m)), StandardOpenOption.CREATE_NEW,
                StandardOpenOption.WRITE);
        Files.setPosixFilePermissions(tmp, RECORD_MODE); // the daemon runs with umask 0
        // the lock is what makes the record live: take it before the record can be seen
        int fd = Posix.openat(Posix.AT_FDCWD, dev.strata.posix.Names.toNative(tmp.toString()), Posix.O_RDONLY | Posix.O_CLOEXEC | Posix.O_NOFOLLOW, 0);
        if (fd < 0) throw new IOException("cannot open " + tmp + ": " + Posix.strerror(fd));
        int r = Posix.flock(fd, LOCK_EX | LOCK_NB);
        if (r < 0) {
            Posix.close(fd);
            Files.deleteIfExists(tmp);
            throw new IOException("cannot lock " + tmp + ": " + Posix.strerror(r));
        }
        try {
            try {
                Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException | RuntimeException e) {
            Posix.close(fd);
            Files.deleteIfExists(tmp);
            throw e;
        }
        return new Registration(file, fd);
    }

    static Map<String, Object> toJson(MountInfo m) {
        List<String> all = new ArrayList<>();
        all.add(m.mountpoint().toString());
        for (Path p : m.lowerdirs()) all.add(p.toString());
        if (m.upperdir() != null) all.add(m.upperdir().toString());
        if (m.workdir() != null) all.add(m.workdir().toString());
        boolean latin1 = !all.stream().allMatch(Names::isUtf8);
        Map<String, Object> o = new LinkedHashMap<>();
        o.put("mountpoint", enc(m.mountpoint(), latin1));
        List<String> lowers = new ArrayList<>();
        for (Path p : m.lowerdirs()) lowers.add(enc(p, latin1));
        o.put("lowerdirs", lowers);
        o.put("upperdir", m.upperdir() == null ? null : enc(m.upperdir(), latin1));
        o.put("workdir", m.workdir() == null ? null : enc(m.workdir(), latin1));
        o.put("pid", m.pid());
        if (m.startTime() != 0) o.put("start_time", m.startTime());
        if (latin1) o.put("names", "latin1");
        o.put("lock", "flock"); // live while the daemon holds an exclusive flock on this file
        return o;
    }

    private static String enc(Path p, boolean latin1) {
        return latin1 ? p.toString() : Names.decode(p.toString());
    }

    /** Deletes the records of dead mounts in {@code dir} (and tightens the modes of ours); returns how many went. */
    public static int cleanup(Path dir) {
        int n = 0;
        if (!trusted(dir)) return 0;
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, "*.json")) {
            for (Path f : ds) {
                if (!alive(f)) {
                    try { if (Files.deleteIfExists(f)) n++; } catch (IOException ignored) { /* someone else's */ }
                } else if (ownedByMe(f)) {
                    tighten(f, RECORD_MODE);
                }
            }
        } catch (IOException e) {
            return n;
        }
        return n;
    }

    /** The mode of a registry directory: root's system registry is readable by all, any other is private. */
    static Set<PosixFilePermission> dirMode(Path dir) {
        return PosixFilePermissions.fromString(dir.equals(SYSTEM_DIRECTORY) || dir.equals(SYSTEM_DIRECTORY.getParent())
                ? "rwxr-xr-x" : "rwx------");
    }

    /**
     * Creates {@code RUNTIME/strata} and {@code RUNTIME/strata/mounts} with explicit modes (0755 for
     * /run/strata, else 0700), tightening them if they exist with looser ones; under /tmp, where others
     * could have made the runtime directory first, refuses one we do not own.
     */
    private static void prepare(Path dir) throws IOException {
        Path strata = dir.getParent();
        Path runtime = strata.getParent();
        boolean tmpStyle = runtime.getFileName() != null && runtime.getFileName().toString().startsWith("strata-")
                && runtime.getParent() != null && runtime.getParent().equals(Path.of("/tmp"));
        if (tmpStyle && !Files.exists(runtime, LinkOption.NOFOLLOW_LINKS)) {
            try {
                Files.createDirectory(runtime);
                Files.setPosixFilePermissions(runtime, PosixFilePermissions.fromString("rwx------"));
            } catch (java.nio.file.FileAlreadyExistsException ignored) { /* raced: checked below */ }
        }
        if (tmpStyle && !(Files.isDirectory(runtime, LinkOption.NOFOLLOW_LINKS) && ownedByMe(runtime))) {
            throw new IOException(runtime + " is not a directory owned by uid " + Posix.geteuid());
        }
        if (!Files.isDirectory(runtime)) Files.createDirectories(runtime);
        for (Path d : List.of(strata, dir)) {
            Set<PosixFilePermission> mode = dirMode(dir.equals(SYSTEM_DIRECTORY) ? SYSTEM_DIRECTORY : d);
            try {
                Files.createDirectory(d);
                Files.setPosixFilePermissions(d, mode);
            } catch (java.nio.file.FileAlreadyExistsException e) {
                if (!Files.isDirectory(d, LinkOption.NOFOLLOW_LINKS)) throw new IOException(d + " is not a directory");
                if (ownedByMe(d)) tighten(d, mode);
            }
        }
    }

    /** Sets {@code mode} if the file has other bits (a registry made by an older strata under umask 0). */
    private static void tighten(Path p, Set<PosixFilePermission> mode) {
        try {
            Set<PosixFilePermission> now = Files.getPosixFilePermissions(p, LinkOption.NOFOLLOW_LINKS);
            if (!now.equals(mode)) Files.setPosixFilePermissions(p, mode);
        } catch (IOException | UnsupportedOperationException ignored) {
            // not ours to change
        }
    }

    /** A registry directory is read only if it is not a symlink and (under /tmp) is owned by us. */
    private static boolean trusted(Path dir) {
        if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) return false;
        Path runtime = dir.getParent() == null ? null : dir.getParent().getParent();
        if (runtime != null && runtime.getParent() != null && runtime.getParent().equals(Path.of("/tmp"))
                && runtime.getFileName().toString().startsWith("strata-")) {
            return Files.isDirectory(runtime, LinkOption.NOFOLLOW_LINKS) && ownedByMe(runtime);
        }
        return true;
    }

    private static boolean ownedByMe(Path p) {
        try {
            Object uid = Files.getAttribute(p, "unix:uid", LinkOption.NOFOLLOW_LINKS);
            return uid instanceof Integer && (Integer) uid == Posix.geteuid();
        } catch (IOException | UnsupportedOperationException e) {
            return false;
        }
    }
}
