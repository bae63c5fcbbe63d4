package dev.strata.fuse.kernel;

import static dev.strata.fuse.kernel.Proto.*;
import static dev.strata.posix.Errno.*;

/**
 * INIT: the protocol version and the features strata asks of the kernel (passthrough, the writeback
 * cache, POSIX ACLs, HANDLE_KILLPRIV_V2, ...), as the mount's options and the kernel allow them.
 */
final class InitOps extends Family {
    InitOps(KernelFS fs, Worker w) { super(fs, w); }

    void init(long unique) {
        int major = w.in.getInt(IN_HEADER), minor = w.in.getInt(IN_HEADER + 4);
        int maxReadahead = w.in.getInt(IN_HEADER + 8), flags = w.in.getInt(IN_HEADER + 12);
        if (major < KERNEL_MAJOR) { w.error(unique, EPROTO); return; }
        for (int i = 0; i < INIT_OUT; i += 8) w.outData.putLong(i, 0);
        w.outData.putInt(0, KERNEL_MAJOR);
        if (major > KERNEL_MAJOR) { w.reply(unique, 8); return; } // the kernel retries with our major
        boolean ext = minor >= 36 && (flags & INIT_EXT) != 0;
        int flags2 = ext ? w.in.getInt(IN_HEADER + 16) : 0;
        // the kernel refuses passthrough together with the writeback cache (process_init_reply): with
        // writeback=on the cache is chosen, with auto passthrough where it is had (root), else the cache
        boolean pt = fs.passthroughWanted && !"on".equals(fs.opts.writeback)
                && minor >= PASSTHROUGH_MINOR && (flags2 & FLAGS2_PASSTHROUGH) != 0;
        boolean wb = !pt && (flags & WRITEBACK_CACHE) != 0
                && ("on".equals(fs.opts.writeback) || "auto".equals(fs.opts.writeback) && fs.opts.writebackExact());
        // 7.40 where the kernel has it (every struct strata uses keeps its size; the newer requests
        // it does not serve get ENOSYS, which the kernel remembers)
        w.outData.putInt(4, Math.min(minor, minor >= PASSTHROUGH_MINOR ? PASSTHROUGH_MINOR : KERNEL_MINOR));
        w.outData.putInt(8, maxReadahead);
        // no AUTO_INVAL_DATA: with it the kernel drops a file's cached pages whenever a GETATTR shows
        // another mtime, which without the writeback cache is after every write through the mount (the
        // kernel does not keep mtime itself then), so the first read after a write came from strata
        // (fs/fuse/inode.c fuse_change_attributes). The page cache of a node is kept up to date by
        // write-through; where strata changes data behind a node (a write through another name of the
        // file) it drops that node's pages itself (invalidateSiblingData)
        int want = ASYNC_READ | BIG_WRITES | DO_READDIRPLUS | READDIRPLUS_AUTO | ASYNC_DIO
                | PARALLEL_DIROPS | ABORT_ERROR | Proto.MAX_PAGES | CACHE_SYMLINKS | NO_OPENDIR_SUPPORT;
        if (ext) want |= INIT_EXT;
        // POSIX ACLs: the kernel checks and caches them (as it does on the kernel overlay); it then
        // leaves the umask to strata, which applies it where the parent has no default ACL
        if (!fs.opts.noAcl) want |= POSIX_ACL | DONT_MASK;
        fs.posixAcl = (flags & (POSIX_ACL | DONT_MASK)) == (POSIX_ACL | DONT_MASK) && !fs.opts.noAcl;
        if (!fs.posixAcl) want &= ~(POSIX_ACL | DONT_MASK);
        // strata clears S_ISUID/S_ISGID itself where WRITE, SETATTR, OPEN and CREATE ask for it: the
        // kernel then sets SB_NOSEC and stops asking for security.capability before each write
        // (fs/fuse/inode.c process_init_reply). The flags' fields are in the kernel's structs from
        // 7.33 on, whatever minor strata answers
        if (minor >= KILLPRIV_V2_MINOR) want |= HANDLE_KILLPRIV_V2;
        fs.killPriv = (flags & want & HANDLE_KILLPRIV_V2) != 0;
        // the writeback cache: a file's writes gathered in the kernel's page cache and written back in
        // requests of up to max_write (at close, fsync, or by the flusher), instead of one WRITE per
        // write(2). Set-id bits stay strata's to clear: with HANDLE_KILLPRIV_V2 the kernel writes
        // through, flagged, where a write must clear them (fuse_cache_write_iter)
        if (wb) {
            want |= WRITEBACK_CACHE;
            fs.union.writebackCache(); // strata's descriptors of write opens: readable, no O_APPEND
            fs.writeback = true;
        }
        w.outData.putInt(12, flags & want);
        // shared mmap of a file served with direct I/O (one with several names): as on the kernel overlay
        // no file handles that outlive the kernel's cache (node ids are not kept after FORGET, nor can
        // "." and ".." be looked up): as the kernel overlay without nfs_export, name_to_handle_at gets
        // EOPNOTSUPP and AT_HANDLE_FID still works, rather than handles that later fail with ESTALE
        int want2 = FLAGS2_DIRECT_IO_ALLOW_MMAP | FLAGS2_NO_EXPORT_SUPPORT;
        if (pt) {
            want2 |= FLAGS2_PASSTHROUGH;
            w.outData.putInt(36, 1);                 // max_stack_depth: layers on ordinary file systems
            fs.passthrough = true;
        }
        w.outData.putInt(32, flags2 & want2);
        w.outData.putShort(16, (short) 16);          // max_background
        w.outData.putShort(18, (short) 12);          // congestion_threshold
        w.outData.putInt(20, KernelFS.MAX_WRITE);
        w.outData.putInt(24, 1);                     // time_gran: nanoseconds
        w.outData.putShort(28, (short) KernelFS.MAX_PAGES); // honoured only with the MAX_PAGES flag (else 32 pages: 128 KiB)
        w.reply(unique, INIT_OUT);
        fs.initialized = true; // the command was told "ready" right after mount(2) (KernelMount#serve)
    }
}
