package dev.strata.union;

/**
 * What the engine does to the layers, as it happens: the "-o trace" narration and tests listen here.
 * Calls come from FUSE worker threads; implementations must be thread-safe and quick.
 */
public interface UnionEvents {
    UnionEvents NONE = new UnionEvents() {};

    /** A lower object was copied up into the upper layer. */
    default void copiedUp(String path, String fromLayer, String type, long bytes, long nanos, String method) {}
    /**
     * The inode number the mount shows for an entry of directory {@code dir} changed without a change
     * of name (a copy-up of a file with several lower names, which cannot keep its number): listings
     * of dir kept elsewhere show the old number.
     */
    default void numberChanged(String dir) {}
    /**
     * The attributes of the object at {@code path} changed without a request that names it: a listing
     * took an impure marker the directory no longer needs off it, as the kernel overlay's readdir does
     * (its ctime changed).
     */
    default void attributesChanged(String path) {}
    /** A whiteout was written in the upper layer. */
    default void whiteout(String path, String form) {}
    /** A directory was made opaque in the upper layer. */
    default void opaque(String path, String form) {}
    /**
     * A lower or merged directory was renamed (redirect_dir=on): its upper directory at {@code to}
     * carries overlay.redirect {@code redirect} (its path in the lower layers).
     */
    default void redirected(String from, String to, String redirect, String xattr) {}
    /** A directory rename was refused with EXDEV. */
    default void renameRefused(String from, String to, String why) {}
    /**
     * The data of a metadata-only copy was refused (EIO, ENOENT...), where the kernel overlay warns in
     * its log: no data in the data-only layers, a missing or wrong fs-verity digest (verity=).
     */
    default void dataRefused(String path, String why) {}
    /**
     * The data of the metadata-only copy at path was found in a data-only layer (looked up on its first
     * open or copy-up): its st_blocks are the data file's from now on, no longer estimated from its size.
     */
    default void dataFound(String path) {}
}
