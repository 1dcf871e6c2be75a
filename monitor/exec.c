/* exec.c: local commands for the probes: fork/exec without a shell, in their own process
 * group, killed at a deadline, with a bound on the output they may return. */
#include "monitor/probe.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "util/util.h"

static bool executable(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* name as a path to an executable: itself when it holds a '/', else the first match on PATH
 * (empty PATH entries, meaning the current directory, are skipped). 0 or -ENOENT. */
static int find_program(const char *name, char *path, size_t len)
{
    const char *env = getenv("PATH");
    const char *p = env && *env ? env : "/usr/local/bin:/usr/bin:/bin";

    if (strchr(name, '/')) {
        if (snprintf(path, len, "%s", name) >= (int)len)
            return -ENAMETOOLONG;
        return executable(path) ? 0 : -ENOENT;
    }
    while (*p) {
        const char *colon = strchr(p, ':');
        size_t n = colon ? (size_t)(colon - p) : strlen(p);
        int w;

        if (n > 0 && p[0] == '/') {
            w = snprintf(path, len, "%.*s/%s", (int)n, p, name);
            if (w > 0 && (size_t)w < len && executable(path))
                return 0;
        }
        p += n;
        if (*p == ':')
            p++;
    }
    return -ENOENT;
}

/* In the child: only async-signal-safe calls from here to exec. */
static void child(const char *path, const char *const argv[], int devnull, int outfd)
{
    sigset_t none;

    setpgid(0, 0);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    if (dup2(devnull, 0) < 0 || dup2(outfd, 1) < 0 || dup2(devnull, 2) < 0)
        _exit(127);
    close_range(3, ~0U, 0);
    execv(path, (char *const *)argv);
    _exit(127);
}

/* Read the child's stdout into b until EOF, the deadline or max bytes. 0, -ETIMEDOUT,
 * -EFBIG or -errno. */
static int collect(int fd, int64_t deadline, size_t max, struct mon_buf *b)
{
    char chunk[16384];

    for (;;) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int64_t left = deadline - cu_mono_ms();
        ssize_t n;
        int rc;

        if (left <= 0)
            return -ETIMEDOUT;
        rc = poll(&pfd, 1, (int)left);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            return -errno;
        if (rc == 0)
            return -ETIMEDOUT;
        n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return 0;
        if (b->len + (size_t)n > max)
            return -EFBIG;
        mon_buf_add(b, chunk, (size_t)n);
        if (b->failed)
            return -ENOMEM;
    }
}

/* Wait for pid until the deadline without reaping it; then kill what is left of its group
 * (the zombie keeps the group id from being reused) and reap it. *status: the exit status,
 * 128 + signal, or -1 when another thread reaped it first (a waitpid(-1) elsewhere in the
 * daemon). 0, or -ETIMEDOUT when it had to be killed. */
static int finish(pid_t pid, int64_t deadline, bool kill_now, int *status)
{
    siginfo_t info;
    int st = 0;

    *status = -1;
    while (!kill_now) {
        memset(&info, 0, sizeof(info));
        if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) < 0) {
            if (errno == EINTR)
                continue;
            return 0;           /* ECHILD: gone, reaped by someone else */
        }
        if (info.si_pid == pid)
            break;
        if (cu_mono_ms() >= deadline) {
            kill_now = true;
            break;
        }
        usleep(5000);
    }
    kill(-pid, SIGKILL);
    if (kill_now)
        kill(pid, SIGKILL);
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return kill_now ? -ETIMEDOUT : 0;
    if (kill_now)
        return -ETIMEDOUT;
    if (WIFEXITED(st))
        *status = WEXITSTATUS(st);
    else
        *status = WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 255;
    return 0;
}

/* Run argv without a shell within timeout_ms, stdout (at most max) into *out. 0, -ENOENT,
 * -ETIMEDOUT, -EFBIG or -errno; *status is the exit status (-1: unknown). */
int mon_exec(const char *const argv[], int timeout_ms, size_t max, char **out, size_t *len,
             int *status)
{
    char path[4096];
    struct mon_buf b = {0};
    int64_t deadline = cu_mono_ms() + timeout_ms;
    int fds[2] = { -1, -1 }, devnull = -1, rc, st = -1, killed;
    pid_t pid;

    *out = NULL;
    *len = 0;
    *status = -1;
    rc = find_program(argv[0], path, sizeof(path));
    if (rc < 0)
        return rc;
    mon_buf_add(&b, "", 0);
    devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0 || pipe2(fds, O_CLOEXEC) < 0) {
        rc = -errno;
        goto out;
    }
    pid = fork();
    if (pid < 0) {
        rc = -errno;
        goto out;
    }
    if (pid == 0)
        child(path, argv, devnull, fds[1]);
    setpgid(pid, pid);
    close(fds[1]);
    fds[1] = -1;
    rc = collect(fds[0], deadline, max, &b);
    killed = finish(pid, deadline, rc < 0, &st);
    if (rc == 0)
        rc = killed;
    if (rc == 0 && b.failed)
        rc = -ENOMEM;
    if (rc == 0) {
        *status = st;
        *out = b.data;
        *len = b.len;
        b.data = NULL;
    }
out:
    free(b.data);
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    if (devnull >= 0)
        close(devnull);
    return rc;
}
