package dev.strata.fuse.kernel;

import dev.strata.posix.NativeMemory;
import dev.strata.posix.Pipes;
import dev.strata.posix.Posix;
import jnr.ffi.Pointer;

import static dev.strata.fuse.kernel.Proto.*;
import static dev.strata.posix.Errno.*;

/**
 * One worker's READ replies by splice(2), as libfuse's (fuse_send_data_iov): the reply's header is
 * written into a pipe of the worker's, the file's pages spliced in after it, and the pipe spliced to
 * /dev/fuse, where the kernel copies them once, into the reader's pages. A reply by pread and write
 * copies the data twice (page cache to the worker's buffer, buffer to the reader's pages) and touches
 * the buffer's pages. Only without passthrough: with it the kernel reads the layer file itself.
 *
 * <p>The header says how many bytes follow, so they are counted before the splice ({@code fstat} of
 * the file the reads go to); should the splice bring fewer (the file shrank meanwhile, an I/O error
 * part way), nothing has reached the kernel yet: the pipe is dropped and the read answered by pread and
 * write. Reads below {@link #MIN} bytes, at or past the end of the file, or larger than the pipe holds
 * go that way too. The pipe is made at the worker's first large read and closed when the worker ends
 * ({@link #close}). Where the kernel or the layer's file system refuses splice (EINVAL), the mount
 * stops trying ({@link KernelFS#spliceOff}).
 */
final class SpliceReads {
    /**
     * Smaller reads are answered by pread and write: below this the system calls splice adds cost more
     * than the copy it saves (see bench/README.md, "datapath": the crossover was measured).
     */
    static final int MIN = Integer.getInteger("strata.spliceMin", 24 * 1024);
    /** The pipe's capacity asked for: the largest READ (max_pages) and two pages (the header; an unaligned start). */
    static final int PIPE = Integer.getInteger("strata.splicePipe", KernelFS.MAX_WRITE + 2 * Posix.PAGE);
    private static final int PAGE = Posix.PAGE;

    private final KernelFS fs;
    private final Worker w;
    /** The pipe's ends, -1 when it is not made (yet, or dropped after a failure). */
    private int rd = -1, wr = -1;
    /** The largest read a reply by splice carries: the pipe's capacity less a page for the header and one for an unaligned start. */
    private int max;
    /**
     * Scratch, allocated with the first pipe (a worker that never splices has none): the reply header
     * (16 bytes), the file offset (8), the pipe's descriptors (8), a struct stat.
     */
    private Pointer header, offset, fds, stat;

    SpliceReads(KernelFS fs, Worker w) {
        this.fs = fs;
        this.w = w;
    }

    /**
     * Answers READ of {@code size} bytes at {@code off} of open file {@code fd} by splice; false if it did
     * not answer (the caller then answers by pread and write).
     */
    boolean read(long unique, int fd, long off, int size) {
        if (size < MIN || fs.spliceOff) return false;
        if (rd < 0 && !open()) return false;
        if (size > max) return false;
        long n = fs.union.readable(fd, off, size, stat);
        if (n <= 0) return false; // an error or the end of the file: pread's reply says which
        w.notes.sendNotes();
        int len = OUT_HEADER + (int) n;
        header.putInt(0, len);
        header.putInt(4, 0);
        header.putLong(8, unique);
        if (Posix.write(wr, header, OUT_HEADER) != OUT_HEADER) {
            drop();
            return false;
        }
        long got = fs.union.splice(fd, off, n, wr, offset);
        if (got != n) {
            if (got == -EINVAL) refused("the layer's file system", (int) -got);
            drop(); // the header, and whatever came: nothing reached the kernel
            return false;
        }
        w.finishing();
        long sent = Pipes.splice(rd, null, w.replyFd, null, len, 0);
        if (sent == len) return true;
        drop();
        // ENOENT: the request was interrupted and is gone; ENODEV: unmounted (as Worker#send)
        if (sent == -ENOENT || sent == -ENODEV) return true;
        if (sent == -EINVAL || sent == -EPERM || sent == -ENOSYS) refused("/dev/fuse", (int) -sent);
        else fs.log.debug("READ reply by splice: " + Posix.strerror((int) -sent) + "; answered by write");
        return false; // answered by write (ENOENT there if the kernel took this reply after all)
    }

    /** Makes the pipe; false if it cannot be had now (this read goes by write). */
    private boolean open() {
        if (!Pipes.bind()) {
            refused("libc", ENOSYS);
            return false;
        }
        if (header == null) {
            Pointer scratch = NativeMemory.allocate(16 + 8 + 8 + dev.strata.posix.Stat.SIZE);
            header = scratch.slice(0, 16);
            offset = scratch.slice(16, 8);
            fds = scratch.slice(24, 8);
            stat = scratch.slice(32);
        }
        int r = Pipes.pipe2(fds, Posix.O_CLOEXEC | Posix.O_NONBLOCK);
        if (r < 0) {
            fs.log.debug("no pipe for READ replies by splice: " + Posix.strerror(-r)); // EMFILE, ENFILE: this read only
            return false;
        }
        rd = fds.getInt(0);
        wr = fds.getInt(4);
        // as large as the largest READ; an unprivileged daemon (rootless: a user namespace's root too)
        // may not go past /proc/sys/fs/pipe-max-size (1 MiB by default): then as large as that allows
        int cap = -1;
        for (int want = PIPE; want >= PAGE && cap < 0; want /= 2) cap = Pipes.setSize(wr, want);
        if (cap < 0) cap = Pipes.size(wr);
        max = cap - 2 * PAGE;
        if (max < MIN) {
            refused("the pipe's size (" + cap + " bytes)", EPERM);
            drop();
            return false;
        }
        return true;
    }

    /** The mount answers READ by write from now on. */
    private void refused(String by, int errno) {
        if (fs.spliceOff) return;
        fs.spliceOff = true;
        fs.log.debug("READ replies by splice off for this mount, refused by " + by + ": " + Posix.strerror(errno));
    }

    /** Closes the pipe and what it holds; the next large read makes another. */
    private void drop() {
        if (rd >= 0) Posix.close(rd);
        if (wr >= 0) Posix.close(wr);
        rd = wr = -1;
    }

    /** The worker ends: its pipe is closed. */
    void close() {
        drop();
    }
}
