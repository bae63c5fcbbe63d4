package dev.strata.fuse.kernel;

/**
 * What few of the kernel's nodes need besides {@link NodeTable}'s columns: those of directories the kernel holds
 * names in or lists, and of opened files (made on first use, dropped again when a file's last open closes).
 */
final class NodeExtra {
    /** The names of a directory the kernel holds (null until the first; under the Inodes lock). */
    NodeTable.Children children;
    /** A directory listing being read by offset (dropped once read to its end). */
    volatile Listing listing;
    /** Open files on this kernel inode through the page cache or direct I/O / through passthrough (see FileOps#openReply). */
    int cachedOpens;
    volatile int passthroughOpens;
    /**
     * Passthrough opens for writing: the kernel writes the layer file itself (write(2), and a shared
     * mapping's pages without any request), so while there are any, the attributes strata gives for
     * this node are valid for no time and stat asks again (see Worker#attrsMustBeFresh).
     */
    volatile int writablePassthrough;
    /**
     * For a removed fifo, socket, device or symlink (opened without strata, so no descriptor to
     * ask): its struct stat as it was left by the removal.
     */
    volatile byte[] removedStat;
    /**
     * For a removed upper object of that kind but a regular file (see EntryOps#keepRemoved): an O_PATH descriptor
     * the engine keeps on it (Union#holdRemoved), which fstat, fchmod, fchown, futimens and the xattr
     * calls through the kernel's descriptor act on, as on the kernel overlay; released when the kernel
     * forgets the node. -1 if none.
     */
    volatile int removedFd = -1;
    /** The backing id all passthrough opens of this inode share (the kernel allows one backing file per inode). */
    int backingId;
    /** Taken out of the table ({@link Inodes#dropIfIdle}): an open that finds it so takes the node's new one. Under this object's lock. */
    boolean dropped;

    /** Nothing in it (under this object's lock): a file's once its last open closed. */
    boolean idle() {
        return children == null && listing == null && cachedOpens == 0 && passthroughOpens == 0
                && writablePassthrough == 0 && removedStat == null && removedFd < 0 && backingId == 0;
    }
}
