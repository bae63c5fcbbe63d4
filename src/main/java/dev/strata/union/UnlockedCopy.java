package dev.strata.union;

import dev.strata.layer.Layer;
import dev.strata.posix.Posix;
import dev.strata.posix.Stat;

import java.util.concurrent.ConcurrentHashMap;

import static dev.strata.posix.Errno.*;
import static dev.strata.posix.Posix.*;

/**
 * The data of a large lower file copied up outside the engine's exclusive lock ({@link #copyDataUnlocked});
 * the copy itself is {@link CopyUp}'s.
 */
final class UnlockedCopy {
    private final Overlay ovl;

    UnlockedCopy(Overlay ovl) {
        this.ovl = ovl;
    }

    /** Files at least this large have their data copied outside the exclusive lock ({@link #copyDataUnlocked}). */
    static final long UNLOCKED_COPY_MIN = 1L << 20;

    /** One lock per path being copied up outside the exclusive lock: one copy of a file at a time. */
    final ConcurrentHashMap<String, java.util.concurrent.locks.ReentrantLock> copyLocks = new ConcurrentHashMap<>();

    /**
     * Copies a large lower regular file up without holding the union lock while its data moves, so
     * lookups, reads and other copy-ups go on meanwhile (the kernel overlay, too, locks only the file
     * being copied): the unnamed copy is built in the workdir under a lock of its own path only, and
     * named in the upper under the exclusive lock after checking that the name still means the same
     * lower file. Copy-ups of the same file wait for each other, and the second finds the first's copy.
     * Anything unusual (not a large lower file, the name changed meanwhile, no O_TMPFILE) is left to the
     * caller's ordinary copy-up under the exclusive lock, which gets the lower file's attributes read
     * here through {@code seen} (may be null). Returns 0, the errno of {@code check} (the caller's
     * append-only / immutable check, {@link Protect}) or -errno of the copy.
     */
    int copyDataUnlocked(String path, Protect.Check check, CopyUp.Seen seen) {
        if (!ovl.hasUpper || !ovl.copy.tmpfileWorks) return 0;
        Node n;
        ovl.lock.readLock().lock();
        try {
            n = ovl.namei.resolve(path);
            if (Namei.err(n) != 0 || n.negative() || n.top() == 0 || n.type != S_IFREG) return 0;
            // a change the flags refuse copies nothing (the caller checks again under the exclusive lock)
            int c = check.check(n);
            if (c != 0) return c;
            // a metadata-only copy still to be looked up or checked (Lowerdata): the ordinary copy-up does that first
            if (n.metacopy() && (n.lowerdataRedirect != null || ovl.opts.verityOn())) return 0;
        } finally {
            ovl.lock.readLock().unlock();
        }
        String rel = n.rel;
        java.util.concurrent.locks.ReentrantLock fileLock = copyLocks.computeIfAbsent(rel, k -> new java.util.concurrent.locks.ReentrantLock());
        fileLock.lock();
        try {
            if (n.top() == 0 || n.stale()) return 0; // copied up (or moved) while this thread waited
            int top = n.top();
            Layer src = ovl.stack[top];
            Stat st = seen != null ? seen.st : new Stat();
            int r = src.lstat(n.relIn(top), st);
            if (r == 0 && seen != null) {
                seen.node = n;
                seen.layer = top;
            }
            if (r < 0 || st.type() != S_IFREG || st.size() < UNLOCKED_COPY_MIN) return 0;
            if (ovl.index != null && (top == ovl.index.layer || st.nlink() > 1)) return 0; // through the index, under the lock
            long t0 = System.nanoTime();
            long ino = ovl.attrs.presentedIno(n, st.ino());
            boolean keepIno = st.nlink() <= 1;
            long[] bytes = {0};
            String[] method = {"metadata"};
            int out = ovl.copy.prepareFileCopy(n, src, st, true, false, keepIno ? ino : 0, bytes, method);
            if (out == CopyUp.NO_TMPFILE) return 0;
            if (out < 0) return out;
            try {
                ovl.lock.writeLock().lock();
                try {
                    if (ovl.namei.resolve(path) != n || n.top() != top) return 0; // changed meanwhile: the caller copies as usual
                    if (n.parent != null) {
                        r = ovl.copy.copyUpAncestors(n);
                        if (r < 0) return r;
                        ovl.attrs.markImpure(n.parent);
                    }
                    r = ovl.copy.linkIntoUpper(out, rel);
                    if (r == -EPERM || r == -EACCES) return 0; // the caller's copy-up goes through the workdir
                    if (r < 0) return r;
                    ovl.copy.copiedUp(n, src, st, ino, keepIno, bytes[0], t0, method[0]);
                    return 0;
                } finally {
                    ovl.lock.writeLock().unlock();
                }
            } finally {
                Posix.close(out);
            }
        } finally {
            if (!fileLock.hasQueuedThreads()) copyLocks.remove(rel, fileLock);
            fileLock.unlock();
        }
    }
}
