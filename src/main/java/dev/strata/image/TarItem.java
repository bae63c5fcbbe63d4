package dev.strata.image;

import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveStructSparse;

import java.io.IOException;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.List;
import java.util.Map;

/** One tar member as strata sees it: commons-compress's entry plus the raw name, link target and xattrs. */
final class TarItem {
    final TarArchiveEntry entry;
    final String name;
    final String linkName;
    final Map<String, byte[]> xattrs;

    TarItem(TarArchiveEntry entry, String name, String linkName, Map<String, byte[]> xattrs) {
        this.entry = entry;
        this.name = name;
        this.linkName = linkName == null ? "" : linkName;
        this.xattrs = xattrs;
    }

    byte type() { return entry.getLinkFlag(); }
    int mode() { return entry.getMode() & 07777; }
    long uid() { return entry.getLongUserId(); }
    long gid() { return entry.getLongGroupId(); }
    int devMajor() { return entry.getDevMajor(); }
    int devMinor() { return entry.getDevMinor(); }
    boolean sparse() { return entry.isSparse(); }
    /** Bytes of data stored in the archive for this member. */
    long size() { return entry.getSize(); }
    /** The file's length once extracted (differs from size() for sparse files). */
    long realSize() { return entry.isSparse() ? entry.getRealSize() : entry.getSize(); }
    List<TarArchiveStructSparse> sparseMap() throws IOException { return entry.getOrderedSparseHeaders(); }

    Instant mtime() {
        FileTime t = entry.getLastModifiedTime();
        return t == null ? Instant.EPOCH : t.toInstant();
    }

    /** The access time from PAX (atime) if the archive has one, else the modification time. */
    Instant atime() {
        FileTime t = entry.getLastAccessTime();
        return t == null ? mtime() : t.toInstant();
    }
}
