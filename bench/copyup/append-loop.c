/*
 * append-loop: open(O_WRONLY|O_APPEND), write 4 bytes, close, for every regular file of a directory
 * (sorted by name), without a shell per file (issue 14: small copy-ups through a mount).
 *
 *   append-loop DIR
 *
 * Prints one line: files, whole time, median and 90th percentile of the open (the copy-up), of the
 * write and of the close, in microseconds.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

static int cmps(const void *a, const void *b) {
    return strcmp(*(char *const *) a, *(char *const *) b);
}

static double pct(double *v, int n, double q) {
    qsort(v, n, sizeof *v, cmpd);
    return n ? v[(int) (q * (n - 1))] : 0;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: append-loop DIR\n");
        return 2;
    }
    DIR *d = opendir(argv[1]);
    if (!d) { perror(argv[1]); return 1; }
    int cap = 1024, n = 0;
    char **names = malloc(cap * sizeof *names);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_type != DT_REG) continue;
        if (n == cap) names = realloc(names, (cap *= 2) * sizeof *names);
        names[n++] = strdup(e->d_name);
    }
    qsort(names, n, sizeof *names, cmps);
    int dfd = dirfd(d);
    double *to = malloc(n * sizeof *to), *tw = malloc(n * sizeof *tw), *tc = malloc(n * sizeof *tc);
    double t0 = now();
    for (int i = 0; i < n; i++) {
        double a = now();
        int fd = openat(dfd, names[i], O_WRONLY | O_APPEND);
        double b = now();
        if (fd < 0) { perror(names[i]); return 1; }
        if (write(fd, "#x\n", 3) != 3) { perror("write"); return 1; }
        double c = now();
        if (close(fd) < 0) { perror("close"); return 1; }
        double f = now();
        to[i] = b - a; tw[i] = c - b; tc[i] = f - c;
    }
    double all = now() - t0;
    printf("files %d total_s %.4f open_p50 %.1f open_p90 %.1f write_p50 %.1f close_p50 %.1f\n", n, all / 1e6,
           pct(to, n, .5), pct(to, n, .9), pct(tw, n, .5), pct(tc, n, .5));
    return 0;
}
