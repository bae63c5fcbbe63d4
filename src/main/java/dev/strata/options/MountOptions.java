package dev.strata.options;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * A parsed, validated-for-syntax mount configuration (the fuse-overlayfs {@code -o} syntax). Built once
 * by {@link OptionParser}; immutable. Directory checks (existence, same filesystem...) happen in
 * {@link Validator} because they need the file system.
 */
public final class MountOptions {
    public final List<Path> lowerDirs;     // top first
    /**
     * Data-only lower layers, below lowerDirs (lowerdir=A::D, datadir+=D; overlayfs.rst "Data-only
     * lower layers"): never merged nor listed, only read through the absolute overlay.redirect of a
     * metadata-only copy (overlay.metacopy) in a lower layer.
     */
    public final List<Path> dataDirs;
    /**
     * verity: "off" (the default), "on" (a metadata-only copy's fs-verity digest in overlay.metacopy is
     * checked against its data file on open; metadata-only copy-ups record the lower data file's
     * digest), "require" (also a metadata-only copy without a digest is EIO, and copy-up needs one).
     */
    public final String verity;
    public final Path upperDir;            // null: read-only
    public final Path workDir;             // null iff upperDir is null
    public final boolean fsync;            // false with fsync=0 or volatile
    /** fsync=strict (the kernel's, 6.12+): copy-ups of regular files and directories also synced once complete. */
    public final boolean fsyncStrict;
    public final boolean volatileMode;
    public final double timeoutSeconds;    // entry (name) cache timeout handed to the kernel
    public final double attrTimeoutSeconds; // attribute cache timeout (see README: hard links, copy-up)
    public final boolean staticNlink;
    /**
     * redirect_dir: "on" (renaming a lower or merged directory stores overlay.redirect), "follow"
     * (the default: redirects are followed, never written), "nofollow" (a lookup that would follow one
     * fails with EPERM, as on the kernel). "off" is taken as "follow", as the kernel does with
     * CONFIG_OVERLAY_FS_REDIRECT_ALWAYS_FOLLOW=y (its default).
     */
    public final String redirectDir;
    /**
     * userxattr: the overlay's own xattrs are written in user.overlay.* (as the kernel's userxattr, and
     * as strata does anyway where trusted.* cannot be set); it also means redirect_dir=nofollow.
     */
    public final boolean userXattr;
    /**
     * xino: "on" or "auto" give the kernel overlay's inode numbers for layers on several file systems
     * (the file system's index in the high bits, Attrs#mapIno); "off" (the default, as the kernel's here)
     * keeps strata's own scheme, since FUSE cannot show the per-file st_dev the kernel then shows.
     */
    public final String xino;
    /**
     * uuid=on|off|null|auto as given (default auto). "off" is the one that changes what strata writes:
     * overlay.origin handles carry the null uuid and only such handles are decoded, as on the kernel
     * (ovl_origin_uuid).
     */
    public final String uuid;
    /**
     * metacopy=on: chmod, chown, utimens, setxattr, link and rename of a lower regular file copy its
     * metadata up only (overlay.metacopy on a sparse upper file of the same size, data read from below),
     * as the kernel overlay's "Metadata only copy up". Off (the kernel's default): every copy-up copies data.
     */
    public final boolean metacopy;
    public final boolean noAcl;
    /**
     * index=on: lower hard links stay one inode across copy-up, in the kernel's format (workdir/index,
     * overlay.origin file handles, overlay.nlink); see union/Index. Off by default, as the kernel
     * built with CONFIG_OVERLAY_FS_INDEX=n (Debian's).
     */
    public final boolean index;
    public final int xattrPermissions;     // 0 none, 1 secure (root-owned xattr), 2 user
    public final IdMapping uidMapping;
    public final IdMapping gidMapping;
    public final Integer squashUid;        // squash_to_uid / squash_to_root
    public final Integer squashGid;
    public final String context;           // SELinux context= (accepted, passed to the kernel as fscontext)
    public final String traceFile;         // -o trace=FILE (or "-" for stderr)
    public final List<String> fuseOptions; // options handed to libfuse as they are (allow_other, ro, ...)
    public final List<String> warnings;    // one line each: unknown options (ignored like fuse-overlayfs does)
    public final boolean debug;
    /** How the mount talks to the kernel: "auto" (the FUSE device directly, else libfuse), "kernel", "libfuse". */
    public final String transport;
    /** Kernel transport, as root: let the kernel read and write open layer files itself where it can (FUSE passthrough). */
    public final boolean passthrough;
    /**
     * Kernel transport: the FUSE writeback cache ("on", "off", "auto"). With it the kernel gathers a
     * file's writes in its page cache and owns the size, mtime and ctime of regular files; it cannot be
     * combined with passthrough on one connection. "auto" takes it where passthrough is not had
     * (rootless, passthrough=0) and strata keeps what the kernel then holds ({@link #writebackExact});
     * "on" takes it always, giving up passthrough for it. "off" by default: under it the kernel keeps
     * the ctime of a file strata copies up at a write open, or whose flags it changes, as it was
     * (README, "Transports").
     */
    public final String writeback;

    /**
     * Whether the writeback cache leaves the mount as the kernel overlay shows it but for the ctime
     * above (where "auto" takes it): not with index=on
     * (the kernel overlay gives the names of a lower hard link one inode before any copy-up; strata one
     * kernel inode each, whose size and times the cache would keep apart) nor metacopy=on (the data
     * copy-up at a write open changes mtime and ctime, which the kernel keeps as it had them).
     */
    public boolean writebackExact() { return !index && !metacopy; }
    /**
     * Mount flags: {@code nosuid}, {@code nodev}, {@code noexec}. A plain mount has the kernel
     * overlay's defaults (none of them); a mount of image store layers gets nosuid and nodev unless
     * {@code suid}/{@code dev} is given. Null: not given either way.
     */
    public final Boolean suid, dev, exec;
    /**
     * When reading a file updates its access time, as the mount flags of the kernel overlay say:
     * {@code relatime} (the default: only when atime is not after mtime and ctime, or is a day old),
     * {@code noatime} (never), {@code strictatime} (always). See README, "Access times".
     */
    public enum Atime { RELATIME, NOATIME, STRICTATIME }
    public final Atime atime;
    /** {@code nodiratime}: reading a directory never updates its access time. */
    public final boolean nodiratime;
    /** What /proc/mounts shows as the source (fsname=, or mount.fuse3's SOURCE); null: "strata". */
    public final String fsname;
    /** The type's subtype (fuse.SUBTYPE); null: "strata". */
    public final String subtype;

    MountOptions(Builder b) {
        this.lowerDirs = Collections.unmodifiableList(new ArrayList<>(b.lowerDirs));
        this.dataDirs = Collections.unmodifiableList(new ArrayList<>(b.dataDirs));
        this.verity = b.verity;
        this.upperDir = b.upperDir;
        this.workDir = b.workDir;
        this.fsync = b.fsync && !b.volatileMode;
        this.fsyncStrict = this.fsync && b.fsyncStrict;
        this.volatileMode = b.volatileMode;
        this.timeoutSeconds = b.timeoutSeconds;
        this.attrTimeoutSeconds = b.attrTimeoutSeconds;
        this.staticNlink = b.staticNlink;
        this.redirectDir = b.redirectDir;
        this.userXattr = b.userXattr;
        this.xino = b.xino;
        this.uuid = b.uuid;
        this.metacopy = b.metacopy;
        this.noAcl = b.noAcl;
        this.index = b.index;
        this.xattrPermissions = b.xattrPermissions;
        this.uidMapping = b.uidMapping;
        this.gidMapping = b.gidMapping;
        this.squashUid = b.squashUid;
        this.squashGid = b.squashGid;
        this.context = b.context;
        this.traceFile = b.traceFile;
        this.fuseOptions = Collections.unmodifiableList(new ArrayList<>(b.fuseOptions));
        this.warnings = Collections.unmodifiableList(new ArrayList<>(b.warnings));
        this.debug = b.debug;
        this.transport = b.transport;
        this.passthrough = b.passthrough;
        this.writeback = b.writeback;
        this.suid = b.suid;
        this.dev = b.dev;
        this.exec = b.exec;
        this.fsname = b.fsname;
        this.atime = b.atime;
        this.nodiratime = b.nodiratime;
        this.subtype = b.subtype;
    }

    public boolean nosuid() { return Boolean.FALSE.equals(suid); }
    public boolean nodev() { return Boolean.FALSE.equals(dev); }
    public boolean noexec() { return Boolean.FALSE.equals(exec); }
    public String fsnameOrDefault() { return fsname == null ? "strata" : fsname; }
    public String subtypeOrDefault() { return subtype == null ? "strata" : subtype; }

    public boolean readOnly() { return upperDir == null; }

    /** Every lower directory, the data-only ones last: what the mount opens, checks and locks. */
    public List<Path> allLowerDirs() {
        if (dataDirs.isEmpty()) return lowerDirs;
        List<Path> all = new ArrayList<>(lowerDirs);
        all.addAll(dataDirs);
        return Collections.unmodifiableList(all);
    }

    /** verity=on or require: fs-verity digests of metadata-only copies are checked (and recorded). */
    public boolean verityOn() { return !"off".equals(verity); }
    /** verity=require: a metadata-only copy without a digest is refused. */
    public boolean verityRequire() { return "require".equals(verity); }

    /** Renaming a lower or merged directory writes a redirect (redirect_dir=on). */
    public boolean redirectWrite() { return "on".equals(redirectDir); }
    /** Redirects in the layers are followed (every mode but nofollow). */
    public boolean redirectFollow() { return !"nofollow".equals(redirectDir); }
    /**
     * The kernel's ovl_allow_offline_changes: none of the features after which the lower layers may not
     * change offline is on (index, metacopy, redirect_dir=on, xino=on).
     */
    public boolean allowOfflineChanges() { return !index && !metacopy && !redirectWrite() && !"on".equals(xino); }

    /** Mutable builder used by the parser and by callers that build options in code (tests, --image). */
    public static final class Builder {
        public List<Path> lowerDirs = new ArrayList<>();
        public List<Path> dataDirs = new ArrayList<>();
        /** lowerdir= was given (lowerdir+= and datadir+= may not follow it, as on the kernel). */
        public boolean lowerdirGiven;
        public String verity = "off";
        public Path upperDir, workDir;
        public boolean nfsExport, indexGiven;
        public boolean fsync = true, fsyncStrict, volatileMode, staticNlink, noAcl, debug, index;
        public double timeoutSeconds = 1_000_000;
        public double attrTimeoutSeconds = 1_000_000;
        public int xattrPermissions;
        public IdMapping uidMapping = IdMapping.IDENTITY, gidMapping = IdMapping.IDENTITY;
        public Integer squashUid, squashGid;
        public String context, traceFile;
        public String transport = "auto";
        public String redirectDir = "follow";
        /** redirect_dir given explicitly, userxattr given: userxattr forces nofollow (OptionParser). */
        public boolean redirectDirGiven, userXattr;
        public String xino = "off";
        public String uuid = "auto";
        public boolean metacopy;
        public boolean passthrough = true;
        public String writeback = "off";
        public Boolean suid, dev, exec;
        public String fsname, subtype;
        public Atime atime = Atime.RELATIME;
        public boolean nodiratime;
        public List<String> fuseOptions = new ArrayList<>();
        public List<String> warnings = new ArrayList<>();

        public MountOptions build() { return new MountOptions(this); }
    }
}
