/*
 * copyup-seq: the system calls of one small-file copy-up, in several orders, timed one by one on the
 * same disk without FUSE (issue 14: why the kernel overlay's fsync'ed copy-up was cheaper than strata's).
 *
 *   copyup-seq DIR [N] [ROUNDS] [SIZE]
 *
 * DIR is a scratch directory on the file system to measure (it gets lower/, work/ and upper-*);
 * N files of SIZE bytes (default 200 x 3000) are copied up per variant and round, the variants
 * interleaved (their order rotates each round), syncfs before each batch. Prints, per variant, the
 * median and mean of each step and of the whole copy-up in microseconds.
 *
 * Variants (the step lists below):
 *   strata-old  the order strata used: data, fsync, then owner, xattrs, mode, times, linkat
 *   kernel      the kernel's since 6.12 (ovl_copy_up_metadata + metadata_fsync): data, xattrs, flags,
 *               mode, owner, times, then one fsync of the complete inode, linkat
 *   kernel-fds  as kernel with fdatasync
 *   old-fds     as strata-old with fdatasync
 *   named       a named temporary in the workdir (fsync after the metadata) renamed into place
 *   nosync      as kernel without any sync: what the rest costs
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

enum { MAXSTEP = 24, NVAR = 6 };
static const char *VARS[NVAR] = {"strata-old", "kernel", "kernel-fds", "old-fds", "named", "nosync"};

static const char *stepName[NVAR][MAXSTEP];
static double *samples[NVAR][MAXSTEP + 1]; /* [MAXSTEP] = total */
static int nsamples[NVAR];
static int cmpd(const void *a, const void *b);
static long ioWrites[NVAR], ioFlushes[NVAR];

/* writes and flushes completed by the block device holding DIR so far (/proc/diskstats) */
static void diskstats(const char *dev, long *w, long *f) {
    FILE *p = fopen("/proc/diskstats", "r");
    char l[512], n[64];
    long v[17];
    *w = *f = 0;
    while (p && fgets(l, sizeof l, p)) {
        memset(v, 0, sizeof v);
        sscanf(l, "%*d %*d %63s %ld %ld %ld %ld %ld %ld %ld %ld %ld %ld %ld %ld %ld %ld %ld %ld %ld", n,
               &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10], &v[11], &v[12],
               &v[13], &v[14], &v[15], &v[16]);
        if (!strcmp(n, dev)) { *w = v[4]; *f = v[15]; }
    }
    if (p) fclose(p);
}

static double pct(double *v, int n, double q) {
    double *c = malloc(n * sizeof *c);
    memcpy(c, v, n * sizeof *c);
    qsort(c, n, sizeof *c, cmpd);
    double m = c[(int) (q * (n - 1))];
    free(c);
    return m;
}
static int nsteps[NVAR];

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    double *c = malloc(n * sizeof *c);
    memcpy(c, v, n * sizeof *c);
    qsort(c, n, sizeof *c, cmpd);
    double m = n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
    free(c);
    return m;
}

/* one timed step: runs expr, records its time under name, fails the program if it returned < 0 */
#define STEP(name, expr) do { \
        double t0_ = now(); \
        long r_ = (long) (expr); \
        double dt_ = now() - t0_; \
        if (r_ < 0) die(name); \
        stepName[v][k] = name; \
        samples[v][k][nsamples[v]] = dt_; \
        total += dt_; \
        k++; \
    } while (0)

static void copyUp(int v, int lowerFd, int workFd, int upperFd, const char *name, size_t size, char *buf, int seq) {
    int k = 0;
    double total = 0;
    int in, out;
    struct stat st, ps;
    char origin[32], proc[64], tmp[64];
    int flags;
    snprintf(origin, sizeof origin, "%d", seq);
    STEP("fstatat lower", fstatat(lowerFd, name, &st, AT_SYMLINK_NOFOLLOW));
    STEP("openat lower", in = openat(lowerFd, name, O_RDONLY | O_NOFOLLOW | O_NOATIME));
    if (v == 4) {
        snprintf(tmp, sizeof tmp, "#tmp%d", seq);
        STEP("openat named tmp", out = openat(workFd, tmp, O_WRONLY | O_CREAT | O_EXCL, 0600));
    } else {
        STEP("openat O_TMPFILE", out = openat(workFd, ".", O_TMPFILE | O_WRONLY, 0600));
    }
    STEP("lseek SEEK_HOLE", lseek(in, 0, SEEK_HOLE));
    STEP("pread", pread(in, buf, size, 0));
    STEP("pwrite", pwrite(out, buf, size, 0));
    if (v == 0) STEP("fsync", fsync(out));
    if (v == 3) STEP("fdatasync", fdatasync(out));
    if (v == 0 || v == 3) STEP("fchown", fchown(out, st.st_uid, st.st_gid));
    STEP("flistxattr", flistxattr(in, buf, 4096));
    STEP("fsetxattr origin", fsetxattr(out, "trusted.overlay.origin", origin, strlen(origin), 0));
    STEP("ioctl GETFLAGS", ioctl(in, FS_IOC_GETFLAGS, &flags));
    STEP("fchmod", fchmod(out, st.st_mode & 07777));
    if (v != 0 && v != 3) STEP("fchown", fchown(out, st.st_uid, st.st_gid));
    STEP("futimens", futimens(out, (struct timespec[]) {st.st_atim, st.st_mtim}));
    if (v == 1 || v == 4) STEP("fsync", fsync(out));
    if (v == 2) STEP("fdatasync", fdatasync(out));
    STEP("fstatat parent", fstatat(upperFd, ".", &ps, 0));
    if (v == 4) {
        STEP("renameat", renameat(workFd, tmp, upperFd, name));
    } else {
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", out);
        STEP("linkat", linkat(AT_FDCWD, proc, upperFd, name, AT_SYMLINK_FOLLOW));
    }
    STEP("utimensat parent", utimensat(upperFd, ".", (struct timespec[]) {ps.st_atim, ps.st_mtim}, 0));
    STEP("close", close(in) | close(out));
    nsteps[v] = k;
    samples[v][MAXSTEP][nsamples[v]] = total;
    nsamples[v]++;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: copyup-seq DIR [N] [ROUNDS] [SIZE] [BLOCKDEV]\n");
        return 2;
    }
    const char *dir = argv[1];
    int n = argc > 2 ? atoi(argv[2]) : 200, rounds = argc > 3 ? atoi(argv[3]) : 5;
    size_t size = argc > 4 ? (size_t) atol(argv[4]) : 3000;
    const char *dev = argc > 5 ? argv[5] : "vda";
    char path[4096], name[64];
    char *buf = malloc(size > 65536 ? size : 65536);
    for (size_t i = 0; i < size; i++) buf[i] = 'a' + i % 26;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd < 0) die(dir);
    mkdirat(dfd, "lower", 0755);
    mkdirat(dfd, "work", 0700);
    int lowerFd = openat(dfd, "lower", O_RDONLY | O_DIRECTORY);
    int workFd = openat(dfd, "work", O_RDONLY | O_DIRECTORY);
    if (lowerFd < 0 || workFd < 0) die("lower/work");
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "f%05d.py", i);
        int fd = openat(lowerFd, name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || pwrite(fd, buf, size, 0) != (ssize_t) size) die("lower file");
        close(fd);
    }
    syncfs(dfd);
    for (int v = 0; v < NVAR; v++)
        for (int s = 0; s <= MAXSTEP; s++) samples[v][s] = calloc((size_t) n * rounds, sizeof(double));
    for (int r = 0; r < rounds; r++) {
        for (int j = 0; j < NVAR; j++) {
            int v = (j + r) % NVAR;
            snprintf(path, sizeof path, "rm -rf '%s/upper' && mkdir '%s/upper'", dir, dir);
            if (system(path) != 0) die("upper");
            int upperFd = openat(dfd, "upper", O_RDONLY | O_DIRECTORY);
            if (upperFd < 0) die("upper");
            syncfs(dfd);
            long w0, f0, w1, f1;
            diskstats(dev, &w0, &f0);
            for (int i = 0; i < n; i++) {
                snprintf(name, sizeof name, "f%05d.py", i);
                copyUp(v, lowerFd, workFd, upperFd, name, size, buf, r * n + i);
            }
            diskstats(dev, &w1, &f1);
            ioWrites[v] += w1 - w0;
            ioFlushes[v] += f1 - f0;
            close(upperFd);
        }
    }
    printf("copyup-seq: %d copy-ups of %zu bytes per variant, %d rounds; microseconds, median (mean) [p10 p90]\n", n * rounds, size, rounds);
    for (int v = 0; v < NVAR; v++) {
        int m = nsamples[v];
        double s = 0;
        for (int i = 0; i < m; i++) s += samples[v][MAXSTEP][i];
        printf("\n%-12s total %8.1f (%8.1f) [%.1f %.1f]  %s: %.2f writes, %.2f flushes per copy-up\n", VARS[v],
               median(samples[v][MAXSTEP], m), s / m, pct(samples[v][MAXSTEP], m, .1), pct(samples[v][MAXSTEP], m, .9),
               dev, (double) ioWrites[v] / m, (double) ioFlushes[v] / m);
        for (int k = 0; k < nsteps[v]; k++) {
            s = 0;
            for (int i = 0; i < m; i++) s += samples[v][k][i];
            printf("  %-20s %8.1f (%8.1f) [%.1f %.1f]\n", stepName[v][k], median(samples[v][k], m), s / m,
                   pct(samples[v][k], m, .1), pct(samples[v][k], m, .9));
        }
    }
    snprintf(path, sizeof path, "rm -rf '%s/upper' '%s/work' '%s/lower'", dir, dir, dir);
    return system(path) != 0;
}
