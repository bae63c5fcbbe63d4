package dev.strata.nativetest;

import jnr.ffi.LibraryLoader;
import jnr.ffi.Pointer;
import jnr.ffi.types.size_t;
import jnr.ffi.types.ssize_t;

/**
 * A few libc calls the harness needs that {@code dev.strata.posix.LibC} does not bind (path truncate,
 * plain write for O_APPEND, fsetxattr, mmap). Kept here so the harness adds nothing to the product's bindings.
 * Strings are encoded with the default charset: the tests run with ISO-8859-1, one char per byte.
 */
public interface NtLibC {
    NtLibC C = LibraryLoader.create(NtLibC.class).load("c");

    int truncate(String path, long length);
    @ssize_t long write(int fd, Pointer buf, @size_t long count);
    @ssize_t long read(int fd, Pointer buf, @size_t long count);
    int lchown(String path, int uid, int gid);
    int fsetxattr(int fd, String name, byte[] value, @size_t long size, int flags);
    /** MAP_FAILED is address -1. Addresses as Pointer: with a long address glibc saw garbage (EINVAL, no syscall). */
    Pointer mmap(Pointer addr, long length, int prot, int flags, int fd, long offset);
    int munmap(Pointer addr, long length);
    int msync(Pointer addr, long length, int flags);
    int memfd_create(String name, int flags);
    /** The raw system call (x86_64 numbers): credentials changed this way change the calling thread only. */
    long syscall(long number, long a1, long a2, long a3);

    long SYS_SETGROUPS = 116, SYS_SETRESUID = 117, SYS_SETRESGID = 119;

    int PROT_READ = 1, PROT_WRITE = 2, MAP_SHARED = 1, MS_SYNC = 4;
}
