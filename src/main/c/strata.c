/*
 * bin/strata, the launcher (built with -DSTRATA_LAUNCHER by scripts/setup.sh), and target/strata-client,
 * the hand-off alone (libexec/strata-jvm runs it for the mounts the launcher leaves to it).
 *
 * The launcher: podman runs its mount_program for every container it starts, so a mount given with -o
 * (podman's and mount(8)'s form) goes to this user's running daemon from here, in this one process: no
 * shell, no fork, no JVM (a POSIX sh in front of it cost ~3.5 ms a mount on a machine whose exec is
 * slow). Everything else (other commands, foreground mounts, JVM settings, no daemon to take it) execs
 * HOME/libexec/strata-jvm (bash), which starts the JVM. HOME is the directory above the one that holds
 * this program, found through /proc/self/exe (so a symlink such as /usr/local/bin/strata works), and
 * handed to strata-jvm in $STRATA_LAUNCHER_HOME.
 *
 * The hand-off sends a mount request to this user's shared strata daemon.
 *
 * The daemon's socket is DIR/mnt-M-user-U-H.sock, M and U the inode numbers of the caller's mount and
 * user namespaces, H a hash of the identity of HOME/target/strata.jar (device, inode, size,
 * modification time) and of $STRATA_DAEMON_KEY, so that a launcher never hands a mount to a daemon
 * running another build (one started before an upgrade, or another copy of strata), DIR the first of $STRATA_DAEMON_DIR, $XDG_RUNTIME_DIR/strata/daemon,
 * /run/strata/daemon (euid 0), /tmp/strata-daemon-EUID; DIR must be a directory of the caller's
 * euid that nobody else may enter (0700), or no daemon is used. A daemon started with JVM settings
 * (STRATA_JAVA_OPTS, STRATA_HEAP: libexec/strata-jvm sets $STRATA_DAEMON_KEY, a checksum of them) has a socket
 * of its own (its H differs), so a mount is never served by a JVM that ignores the settings its caller gave.
 *
 * Request: int32 count, then count strings (int32 length, bytes): the caller's cwd and its arguments.
 * Reply: frames of one type byte, int32 length, payload: 'e' a line for stderr, 'x' the exit code
 * (decimal) once the mount is ready or failed, 'r' the daemon refuses (another user or namespace,
 * a mount it does not serve).
 *
 * Exit: the mount's exit code; 111 when no daemon answers (the socket's path is printed on stdout,
 * for the daemon libexec/strata-jvm starts); 112 when the request must go to a process of its own (refused,
 * unsafe directory, anything unexpected). Integers are big-endian.
 *
 * With $STRATA_LAUNCHER set (always in the launcher), the cases 111 and 112 exec that launcher
 * (libexec/strata-jvm) with the same arguments instead, telling it in $STRATA_CLIENT what was found:
 * "111 SOCKET" or "112".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define NO_DAEMON 111
#define OWN_PROCESS 112

static int write_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) { if (errno == EINTR) continue; return -1; }
        p += w; n -= (size_t) w;
    }
    return 0;
}

static int read_all(int fd, void *buf, size_t n) {
    char *p = buf;
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0) { if (errno == EINTR) continue; return -1; }
        if (r == 0) return -1;
        p += r; n -= (size_t) r;
    }
    return 0;
}

static int put_u32(char **b, size_t *len, size_t *cap, uint32_t v) {
    if (*len + 4 > *cap) return -1;
    unsigned char *q = (unsigned char *) *b + *len;
    q[0] = v >> 24; q[1] = v >> 16; q[2] = v >> 8; q[3] = v;
    *len += 4;
    return 0;
}

static int put_str(char **b, size_t *len, size_t *cap, const char *s) {
    size_t n = strlen(s);
    if (put_u32(b, len, cap, (uint32_t) n) < 0 || *len + n > *cap) return -1;
    memcpy(*b + *len, s, n);
    *len += n;
    return 0;
}

/* The digits of a namespace link ("mnt:[4026531841]"), or -1. */
static int ns_inode(const char *name, char *out, size_t outlen) {
    char path[64], link[128];
    snprintf(path, sizeof path, "/proc/self/ns/%s", name);
    ssize_t n = readlink(path, link, sizeof link - 1);
    if (n < 0) return -1;
    link[n] = 0;
    char *a = strchr(link, '['), *z = strchr(link, ']');
    if (!a || !z || z <= a + 1 || (size_t) (z - a) > outlen) return -1;
    memcpy(out, a + 1, z - a - 1);
    out[z - a - 1] = 0;
    return 0;
}

/*
 * The directory that holds this program, without a trailing slash, in dir (PATH_MAX bytes): from
 * /proc/self/exe, else from argv0 when it names a path; -1 if neither tells.
 */
static int exe_dir(const char *argv0, char *dir) {
    ssize_t n = readlink("/proc/self/exe", dir, PATH_MAX - 1);
    if (n > 0) {
        dir[n] = 0;
    } else if (!argv0 || !strchr(argv0, '/') || !realpath(argv0, dir)) {
        return -1;
    }
    char *slash = strrchr(dir, '/');
    if (!slash) return -1;
    *slash = 0;
    return 0;
}

/*
 * The hash (FNV-1a, 32 bits) of the identity of the file jar and of key (may be NULL), as 8 hex digits;
 * -1 if the jar cannot be found.
 */
static int build_id(const char *jar, const char *key, char *out, size_t outlen) {
    struct stat st;
    if (stat(jar, &st) < 0) return -1;
    uint64_t v[] = {st.st_dev, st.st_ino, (uint64_t) st.st_size, (uint64_t) st.st_mtim.tv_sec, (uint64_t) st.st_mtim.tv_nsec};
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        for (int b = 0; b < 8; b++) { h ^= (unsigned char) (v[i] >> (8 * b)); h *= 16777619u; }
    for (const char *k = key ? key : ""; *k; k++) { h ^= (unsigned char) *k; h *= 16777619u; }
    snprintf(out, outlen, "%08x", h);
    return 0;
}

/* Makes DIR (mode 0700) if missing and checks it is the caller's own and closed to others. */
static int own_dir(const char *dir, mode_t mode) {
    struct stat st;
    if (mkdir(dir, mode) == 0) chmod(dir, mode);
    if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) return -1;
    if (st.st_uid != geteuid()) return -1;
    if (mode == 0700 && (st.st_mode & 077) != 0) return -1;
    return 0;
}

static int socket_dir(char *dir, size_t len) {
    const char *d = getenv("STRATA_DAEMON_DIR");
    const char *x = getenv("XDG_RUNTIME_DIR");
    if (d && *d) {
        snprintf(dir, len, "%s", d);
    } else if (x && *x == '/') {
        char s[PATH_MAX];
        snprintf(s, sizeof s, "%s/strata", x);
        if (own_dir(s, 0700) < 0) return -1;
        snprintf(dir, len, "%s/strata/daemon", x);
    } else if (geteuid() == 0) {
        struct stat st;
        if (mkdir("/run/strata", 0755) == 0) chmod("/run/strata", 0755);
        if (lstat("/run/strata", &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0) return -1;
        snprintf(dir, len, "/run/strata/daemon");
    } else {
        snprintf(dir, len, "/tmp/strata-daemon-%u", (unsigned) geteuid());
    }
    return own_dir(dir, 0700);
}

static char **args;

/*
 * Execs the bash script at path with the arguments of argv (argv[0] is replaced): bash from PATH, as the
 * script's "#!/usr/bin/env bash" would find it, one exec sooner (an exec costs milliseconds on some
 * machines). Returns only if both that and the script itself failed to start.
 */
static void exec_script(char *path, char **argv) {
    argv[0] = path;
    int n = 0;
    while (argv[n]) n++;
    char **a = malloc((size_t) (n + 2) * sizeof *a);
    if (a) {
        a[0] = "bash";
        for (int i = 0; i <= n; i++) a[i + 1] = argv[i];
        execvp("bash", a);
        free(a);
    }
    execv(path, argv);
}

/* 111 (no daemon on sock) or 112: exit with it, or exec $STRATA_LAUNCHER, which starts the JVM. */
static int hand_on(int code, const char *sock) {
    const char *launcher = getenv("STRATA_LAUNCHER");
    if (!launcher || !*launcher) {
        if (code == NO_DAEMON) printf("%s\n", sock);
        return code;
    }
    char v[sizeof ((struct sockaddr_un *) 0)->sun_path + 8];
    if (code == NO_DAEMON) snprintf(v, sizeof v, "111 %s", sock);
    else snprintf(v, sizeof v, "112");
    char *l = strdup(launcher);
    if (!l || setenv("STRATA_CLIENT", v, 1) < 0 || unsetenv("STRATA_LAUNCHER") < 0) return OWN_PROCESS;
    exec_script(l, args);
    fprintf(stderr, "strata: cannot run %s: %s\n", l, strerror(errno));
    return 1;
}

/* Hands the mount in argv to the daemon (see the top of this file); jar: HOME/target/strata.jar. */
static int hand_off(int argc, char **argv, const char *jar) {
    char dir[PATH_MAX], mnt[32], user[32], build[16];
    args = argv;
    if (socket_dir(dir, sizeof dir) < 0) return hand_on(OWN_PROCESS, NULL);
    if (ns_inode("mnt", mnt, sizeof mnt) < 0 || ns_inode("user", user, sizeof user) < 0) return hand_on(OWN_PROCESS, NULL);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    const char *key = getenv("STRATA_DAEMON_KEY");
    if (key && (!*key || strspn(key, "0123456789") != strlen(key) || strlen(key) > 10)) return hand_on(OWN_PROCESS, NULL);
    if (build_id(jar, key, build, sizeof build) < 0) return hand_on(OWN_PROCESS, NULL);
    int n = snprintf(addr.sun_path, sizeof addr.sun_path, "%s/mnt-%s-user-%s-%s.sock", dir, mnt, user, build);
    if (n < 0 || (size_t) n >= sizeof addr.sun_path) return hand_on(OWN_PROCESS, NULL);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return hand_on(OWN_PROCESS, NULL);
    if (connect(fd, (struct sockaddr *) &addr, sizeof addr) < 0) {
        if (errno == ENOENT || errno == ECONNREFUSED) return hand_on(NO_DAEMON, addr.sun_path);
        return hand_on(OWN_PROCESS, NULL);
    }
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return hand_on(OWN_PROCESS, NULL);
    size_t cap = 8 + strlen(cwd) + 4, len = 0;
    for (int i = 1; i < argc; i++) cap += strlen(argv[i]) + 4;
    char *req = malloc(cap);
    if (!req) return hand_on(OWN_PROCESS, NULL);
    if (put_u32(&req, &len, &cap, (uint32_t) argc) < 0 || put_str(&req, &len, &cap, cwd) < 0) return hand_on(OWN_PROCESS, NULL);
    for (int i = 1; i < argc; i++) if (put_str(&req, &len, &cap, argv[i]) < 0) return hand_on(OWN_PROCESS, NULL);
    if (write_all(fd, req, len) < 0) return hand_on(NO_DAEMON, addr.sun_path);
    for (;;) {
        unsigned char h[5];
        /* the daemon went away before answering: bin/strata starts one of its own */
        if (read_all(fd, h, 5) < 0) return hand_on(NO_DAEMON, addr.sun_path);
        uint32_t plen = (uint32_t) h[1] << 24 | (uint32_t) h[2] << 16 | (uint32_t) h[3] << 8 | h[4];
        if (plen > (1u << 20)) return hand_on(OWN_PROCESS, NULL);
        char *p = malloc(plen + 1);
        if (!p || (plen > 0 && read_all(fd, p, plen) < 0)) return hand_on(NO_DAEMON, addr.sun_path);
        p[plen] = 0;
        switch (h[0]) {
            case 'e': fprintf(stderr, "%s\n", p); break;
            case 'x': return atoi(p);
            case 'r': return hand_on(OWN_PROCESS, NULL);
            default: return hand_on(OWN_PROCESS, NULL);
        }
        free(p);
    }
}

#ifdef STRATA_LAUNCHER
/*
 * Whether this command line is a mount the daemon may take: one with -o, no daemon turned off
 * (STRATA_DAEMON=0), no JVM settings of its own, not a command that runs in the foreground, and no
 * option that needs a process of its own (libexec/strata-jvm decides the rest the same way).
 */
static int for_daemon(int argc, char **argv) {
    const char *d = getenv("STRATA_DAEMON");
    if (d && strcmp(d, "0") == 0) return 0;
    static const char *settings[] = {"STRATA_JAVA_OPTS", "STRATA_HEAP", "STRATA_CLIENT"};
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
        const char *v = getenv(settings[i]);
        if (v && *v) return 0;
    }
    if (argc < 2) return 0;
    static const char *foreground[] = {"umount", "unmount", "image", "explain", "diff", "layers", "help", "-h",
                                       "--help", "-V", "--version", ""};
    for (size_t i = 0; i < sizeof foreground / sizeof foreground[0]; i++)
        if (strcmp(argv[1], foreground[i]) == 0) return 0;
    static const char *own[] = {"-f", "--foreground", "-d", "--debug", "-h", "--help", "-V", "--version"};
    static const char *own_valued[] = {"--image", "--store", "--upper", "--work", "--archive"};
    int opt = 0;
    for (int a = 1; a < argc; a++) {
        const char *s = argv[a];
        if (strncmp(s, "-o", 2) == 0) opt = 1;
        for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
            if (strcmp(s, own[i]) == 0) return 0;
        for (size_t i = 0; i < sizeof own_valued / sizeof own_valued[0]; i++) {
            size_t n = strlen(own_valued[i]);
            if (strncmp(s, own_valued[i], n) == 0 && (s[n] == 0 || s[n] == '=')) return 0;
        }
    }
    return opt;
}

int main(int argc, char **argv) {
    char bin[PATH_MAX], jvm[PATH_MAX], jar[PATH_MAX];
    if (exe_dir(argv[0], bin) < 0) {
        fprintf(stderr, "strata: cannot find where it is installed (/proc/self/exe unreadable)\n");
        return 1;
    }
    if (snprintf(jvm, sizeof jvm, "%s/../libexec/strata-jvm", bin) >= (int) sizeof jvm
            || snprintf(jar, sizeof jar, "%s/../target/strata.jar", bin) >= (int) sizeof jar) {
        fprintf(stderr, "strata: the path of its installation is too long: %s\n", bin);
        return 1;
    }
    /* HOME for libexec/strata-jvm, which then need not find it with subshells (bin is already canonical) */
    char home[PATH_MAX];
    snprintf(home, sizeof home, "%s", bin);
    char *up = strrchr(home, '/');
    if (up && up != home) *up = 0;
    if (setenv("STRATA_LAUNCHER_HOME", home, 1) < 0) return 1;
    if (!for_daemon(argc, argv)) {
        exec_script(jvm, argv);
        fprintf(stderr, "strata: cannot run %s: %s\n", jvm, strerror(errno));
        return 1;
    }
    /* the daemon's socket for the default JVM settings; libexec/strata-jvm sets the key for others */
    if (unsetenv("STRATA_DAEMON_KEY") < 0 || setenv("STRATA_LAUNCHER", jvm, 1) < 0) return 1;
    return hand_off(argc, argv, jar);
}
#else
int main(int argc, char **argv) {
    char dir[PATH_MAX], jar[PATH_MAX];
    args = argv;
    if (exe_dir(argv[0], dir) < 0 || snprintf(jar, sizeof jar, "%s/strata.jar", dir) >= (int) sizeof jar)
        return hand_on(OWN_PROCESS, NULL);
    return hand_off(argc, argv, jar);
}
#endif
