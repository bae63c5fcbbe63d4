package dev.strata.posix;

import jnr.ffi.Pointer;
import jnr.ffi.annotations.In;
import jnr.ffi.annotations.Out;
import jnr.ffi.types.size_t;
import jnr.ffi.types.ssize_t;

/**
 * The libc functions strata calls, bound with jnr-ffi. Strings are encoded with the default charset;
 * the launcher runs the JVM with ISO-8859-1 so every name passes through byte for byte.
 * Every function returns -1 (or a negative value) and leaves errno on failure; {@link Posix} wraps them.
 */
public interface LibC {
    int openat(int dirfd, String path, int flags, int mode);
    int openat(int dirfd, Pointer path, int flags, int mode);
    int close(int fd);
    int fstatat(int dirfd, String path, Pointer statbuf, int flags);
    int fstatat(int dirfd, Pointer path, Pointer statbuf, int flags);
    int fstat(int fd, Pointer statbuf);
    int mkdirat(int dirfd, String path, int mode);
    int mknodat(int dirfd, String path, int mode, long dev);
    int symlinkat(String target, int dirfd, String linkpath);
    @ssize_t long readlinkat(int dirfd, String path, Pointer buf, @size_t long size);
    int linkat(int olddirfd, String oldpath, int newdirfd, String newpath, int flags);
    int unlinkat(int dirfd, String path, int flags);
    int renameat2(int olddirfd, String oldpath, int newdirfd, String newpath, int flags);
    int fchmodat(int dirfd, String path, int mode, int flags);
    int fchmod(int fd, int mode);
    int fchownat(int dirfd, String path, int uid, int gid, int flags);
    int fchown(int fd, int uid, int gid);
    int utimensat(int dirfd, String path, Pointer times, int flags);
    int futimens(int fd, Pointer times);
    @ssize_t long pread(int fd, Pointer buf, @size_t long count, long offset);
    @ssize_t long pwrite(int fd, Pointer buf, @size_t long count, long offset);
    @ssize_t long read(int fd, Pointer buf, @size_t long count);
    @ssize_t long write(int fd, Pointer buf, @size_t long count);
    int ftruncate(int fd, long length);
    int fsync(int fd);
    int fcntl(int fd, int cmd, int arg);
    int fdatasync(int fd);
}
