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
    int close(int fd);
    int fstatat(int dirfd, String path, Pointer statbuf, int flags);
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
    int fdatasync(int fd);
    int fallocate(int fd, int mode, long offset, long len);
    int sync_file_range(int fd, long offset, long nbytes, int flags);
    /** Returns 0 or the error number itself (not -1 and errno). */
    int posix_fadvise(int fd, long offset, long len, int advice);
    long lseek(int fd, long offset, int whence);
    @ssize_t long copy_file_range(int fdIn, Pointer offIn, int fdOut, Pointer offOut, @size_t long len, int flags);
    int ioctl(int fd, long request, long arg);
    @ssize_t long lgetxattr(String path, String name, Pointer value, @size_t long size);
    int lsetxattr(String path, String name, Pointer value, @size_t long size, int flags);
    @ssize_t long llistxattr(String path, Pointer list, @size_t long size);
    int lremovexattr(String path, String name);
    @ssize_t long fgetxattr(int fd, String name, Pointer value, @size_t long size);
    int fsetxattr(int fd, String name, Pointer value, @size_t long size, int flags);
    @ssize_t long flistxattr(int fd, Pointer list, @size_t long size);
    int fremovexattr(int fd, String name);
    int fstatvfs(int fd, Pointer buf);
    int fstatfs(int fd, Pointer buf);
    @ssize_t long syscall(long number, int fd, Pointer dirp, @size_t long count);
    /** getxattrat(2) (Linux 6.13+): syscall(464, dfd, path, at_flags, name, struct xattr_args*, size). */
    @ssize_t long syscall(long number, int dfd, String path, int atFlags, String name, Pointer args, @size_t long usize);
    int getuid();
    int geteuid();
    int getgid();
    int getpid();
    int umask(int mask);
    int dup(int fd);
    int dup2(int oldfd, int newfd);
    int umount2(String target, int flags);
    int mount(String source, String target, String fstype, long flags, String data);
    int setsid();
    int access(String path, int mode);
    int flock(int fd, int operation);
    String strerror(int errnum);
}
