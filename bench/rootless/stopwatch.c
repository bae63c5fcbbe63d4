/* stopwatch CMD [ARG...]: runs CMD, then prints "@@stopwatch SECONDS" (CLOCK_MONOTONIC, from just
 * before the fork to the child's exit) on stderr and exits with CMD's status. Built static into the
 * rootless benchmark's image (busybox's date has no sub-second format). */
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

int main(int argc, char **argv) {
    struct timespec a, b;
    int st;
    if (argc < 2) {
        fputs("usage: stopwatch CMD [ARG...]\n", stderr);
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &a);
    pid_t p = fork();
    if (p < 0) {
        perror("stopwatch: fork");
        return 1;
    }
    if (p == 0) {
        execvp(argv[1], argv + 1);
        perror(argv[1]);
        _exit(127);
    }
    if (waitpid(p, &st, 0) < 0) {
        perror("stopwatch: waitpid");
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    fprintf(stderr, "@@stopwatch %.6f\n", (double) (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
