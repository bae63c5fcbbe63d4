package dev.strata.posix;

import jnr.ffi.Pointer;
import jnr.ffi.annotations.In;
import jnr.ffi.annotations.Out;
import jnr.ffi.types.intptr_t;
import jnr.ffi.types.off_t;
import jnr.ffi.types.size_t;
import jnr.ffi.types.ssize_t;

/**
 * The rest of the libc functions strata binds (see {@link LibC}): a second interface so that jnr-ffi
 * generates the two call stubs on two threads at start-up (the generation is most of the mount's
 * time to ready; see {@link Posix}).
 */
public interface LibCMore {
    int fallocate(int fd, int mode, long offset, long len);
    /** glibc: gives the free memory of every malloc arena back to the system; 1 if some was. */
    int malloc_trim(@size_t long pad);
    /** Anonymous memory for buffers that go back to the system at once when released (not malloc's). */
    Pointer mmap(Pointer addr, @size_t long len, int prot, int flags, int fd, @off_t long off);
    int munmap(Pointer addr, @size_t long len);
    int madvise(Pointer addr, @size_t long len, int advice);
    /** madvise(2) at an address of this process that no Pointer wraps (no allocation per call). */
    int madvise(@intptr_t long addr, @size_t long len, int advice);
    int poll(Pointer fds, long nfds, int timeout);
    int sync_file_range(int fd, long offset, long nbytes, int flags);
    int syncfs(int fd);
    /** Returns 0 or the error number itself (not -1 and errno). */
    int posix_fadvise(int fd, long offset, long len, int advice);
    long lseek(int fd, long offset, int whence);
    @ssize_t long copy_file_range(int fdIn, Pointer offIn, int fdOut, Pointer offOut, @size_t long len, int flags);
    int ioctl(int fd, long request, long arg);
    /** statx(2) (glibc 2.28+) into a struct statx of 256 bytes. */
    int statx(int dirfd, String path, int flags, int mask, Pointer statxbuf);
    /** name_to_handle_at(2): the file handle of (dirfd, path) into a struct file_handle. */
    int name_to_handle_at(int dirfd, String path, Pointer handle, Pointer mountId, int flags);
    /** open_by_handle_at(2): needs CAP_DAC_READ_SEARCH. */
    int open_by_handle_at(int mountFd, Pointer handle, int flags);
    @ssize_t long lgetxattr(String path, String name, Pointer value, @size_t long size);
    int lsetxattr(String path, String name, Pointer value, @size_t long size, int flags);
    @ssize_t long llistxattr(String path, Pointer list, @size_t long size);
    int lremovexattr(String path, String name);
    @ssize_t long getxattr(String path, String name, Pointer value, @size_t long size);
    int setxattr(String path, String name, Pointer value, @size_t long size, int flags);
    @ssize_t long listxattr(String path, Pointer list, @size_t long size);
    int removexattr(String path, String name);
    @ssize_t long fgetxattr(int fd, String name, Pointer value, @size_t long size);
    int fsetxattr(int fd, String name, Pointer value, @size_t long size, int flags);
    @ssize_t long flistxattr(int fd, Pointer list, @size_t long size);
    int fremovexattr(int fd, String name);
    int fstatvfs(int fd, Pointer buf);
    int fstatfs(int fd, Pointer buf);
    @ssize_t long syscall(long number, int fd, Pointer dirp, @size_t long count);
    /** getxattrat(2) (Linux 6.13+): syscall(464, dfd, path, at_flags, name, struct xattr_args*, size). */
    @ssize_t long syscall(long number, int dfd, String path, int atFlags, String name, Pointer args, @size_t long usize);
    @ssize_t long syscall(long number, int dfd, Pointer path, int atFlags, Pointer name, Pointer args, @size_t long usize);
    /** openat2(2) (Linux 5.6+): syscall(437, dfd, path, struct open_how*, size). */
    @ssize_t long syscall(long number, int dfd, String path, Pointer how, @size_t long size);
    @ssize_t long syscall(long number, int dfd, Pointer path, Pointer how, @size_t long size);
    /** open_tree(2) (Linux 5.2+): syscall(428, dfd, path, flags). */
    @ssize_t long syscall(long number, int dfd, String path, int flags);
    /** mount_setattr(2) (Linux 5.12+): syscall(442, dfd, path, flags, struct mount_attr*, size). */
    @ssize_t long syscall(long number, int dfd, String path, int flags, Pointer attr, @size_t long size);
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
