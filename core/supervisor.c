/* supervisor.c: starts dnsmasq and Caddy, watches them, restarts them with backoff, and stops
 * them at unmount. One thread owns the children: it forks them (so PR_SET_PDEATHSIG, which fires
 * when the forking thread dies, is tied to a thread that lives as long as the daemon), reaps them,
 * and restarts them. Other threads only read the published pids and the readiness flag.
 * Each daemon's pid is kept in state/run/NAME.pid, so that a mount can stop the orphans of a
 * previous one whose watchdogs died with it (kill -9 of every conduitfs process).
 *
 * Over 800 lines, and one concern: the lifecycle of the two child daemons (spawn, readiness,
 * watch, backoff, reload, orphan cleanup, stop), owned by one thread. Every part reads or
 * changes the same per-child state, so splitting it would only export that state. */
#include "core/supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "audit/audit.h"
#include "core/statefile.h"

enum { CH_DNSMASQ, CH_CADDY, NCHILD };

/* A child that runs this long after a start has started well: its failure streak ends. */
#define SUP_STABLE_S 10
/* Longest wait before restarting a child that keeps failing (the backoff doubles up to it). */
#define SUP_BACKOFF_MAX_S 60
/* The environment variable the proxy config's admin listen address reads (see render.c). */
#define SUP_ADMIN_ENV "CONDUITFS_CADDY_ADMIN"

struct child {
    const char *name;
    const char *conf;       /* config file under the state directory */
    const char *old_conf;   /* the one an earlier version ran it on, or NULL (orphan search) */
    pid_t pid;              /* the watchdog; guarded by lock */
    time_t started;
    /* the rest belongs to the supervisor thread */
    int failures;           /* exits in a row, each within SUP_STABLE_S of its start */
    bool announced;         /* this streak's failure line is written */
    time_t restart_at;      /* pid 0 and not stopping: start again at this time */
    pid_t last_pid;         /* the watchdog that exited, and why, for the restart line */
    char last_why[64];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static struct child children[NCHILD] = {
    { .name = "dnsmasq", .conf = "dns/dnsmasq.conf" },
    { .name = "caddy", .conf = "routing/caddy.json", .old_conf = "routing/Caddyfile" },
};
static const struct cfs_config *g_cfg;
static pthread_t thread;
static bool running, stopping, caddy_ready;
/* This mount's admin socket, unique to it: state/caddy/admin-PID-RANDOM.sock. An orphaned Caddy
 * of an earlier mount removes only its own socket when it exits, never this one. */
static char admin_sock[PATH_MAX];

/* The CLOCK_REALTIME time ms milliseconds from now (pthread_cond_timedwait's clock), into ts. */
static void deadline_in(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Find prog on PATH into buf. 0 or -ENOENT. */
static int find_exe(const char *prog, char *buf, size_t len)
{
    const char *path = getenv("PATH");
    char copy[4096], *save = NULL, *dir;

    if (!path || !*path)
        path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    snprintf(copy, sizeof(copy), "%s", path);
    for (dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        int n = snprintf(buf, len, "%s/%s", dir, prog);

        if (n > 0 && (size_t)n < len && access(buf, X_OK) == 0)
            return 0;
    }
    return -ENOENT;
}

int sup_check(const struct cfs_config *cfg, char *err, size_t errlen)
{
    char exe[PATH_MAX];

    (void)cfg;
    if (find_exe("caddy", exe, sizeof(exe)) < 0) {
        snprintf(err, errlen, "managed mode needs caddy on PATH (apt-get install caddy), "
                 "or run with --no-manage");
        return -ENOENT;
    }
    if (find_exe("dnsmasq", exe, sizeof(exe)) < 0) {
        snprintf(err, errlen, "managed mode needs dnsmasq on PATH (apt-get install "
                 "dnsmasq-base), or run with --no-manage");
        return -ENOENT;
    }
    return 0;
}

static void admin_socket_path(char *buf, size_t len)
{
    snprintf(buf, len, "%s", admin_sock);
}

int sup_admin_socket(char *buf, size_t len)
{
    if (admin_sock[0] == '\0' || (size_t)snprintf(buf, len, "%s", admin_sock) >= len) {
        if (len > 0)
            buf[0] = '\0';
        return admin_sock[0] ? -ENAMETOOLONG : -ENOENT;
    }
    return 0;
}

/* Write pid as decimal text to path through tmp and a rename. Async-signal-safe (the watchdog
 * calls it after fork); errors are ignored: the pid file only helps clean up orphans. */
static void write_pid_file(const char *tmp, const char *path, pid_t pid)
{
    char buf[24], *p = buf + sizeof(buf);
    unsigned long v = (unsigned long)pid;
    int fd;

    *--p = '\n';
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return;
    if (write(fd, p, (size_t)(buf + sizeof(buf) - p)) == buf + sizeof(buf) - p && close(fd) == 0)
        rename(tmp, path);
    else
        unlink(tmp);
}

/* In the daemon's own process: signals, stdio, exec with envp. Returns only if exec failed.
 * Async-signal-safe calls only: the supervisor forked a multithreaded process. */
static void run_daemon(int c, const char *exe, const char *conf, const char *conf_arg,
                       const char *user, char *const envp[], int logfd)
{
    static const int sigs[] = { SIGTERM, SIGINT, SIGHUP };
    struct sigaction dfl;
    sigset_t none;
    int nullfd;

    /* FUSE's handlers would keep a SIGTERM from the watchdog from stopping us before exec */
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaction(sigs[i], &dfl, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    nullfd = open("/dev/null", O_RDONLY);
    if (nullfd >= 0)
        dup2(nullfd, STDIN_FILENO);
    if (logfd >= 0) {
        dup2(logfd, STDOUT_FILENO);
        dup2(logfd, STDERR_FILENO);
    }
    if (c == CH_CADDY) {
        char *const argv[] = { "caddy", "run", "--config", (char *)conf, NULL };

        execve(exe, argv, envp);
    } else {
        char *const argv[] = { "dnsmasq", "--keep-in-foreground", (char *)conf_arg,
                               (char *)user, "--pid-file", NULL };

        execve(exe, argv, envp);
    }
}

/* The children's environment: the daemon's, with XDG_DATA_HOME, XDG_CONFIG_HOME and
 * CONDUITFS_CADDY_ADMIN replaced by xdg_data, xdg_conf and admin when xdg_data is given (Caddy).
 * Built before fork (no malloc after it); free the array only (its strings are environ's and the
 * callers'). NULL when out of memory. */
static char **child_env(char *xdg_data, char *xdg_conf, char *admin)
{
    size_t n = 0, k = 0;
    char **envp;

    while (environ[n])
        n++;
    envp = calloc(n + 4, sizeof(*envp));
    if (!envp)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (xdg_data && (strncmp(environ[i], "XDG_DATA_HOME=", 14) == 0 ||
                         strncmp(environ[i], "XDG_CONFIG_HOME=", 16) == 0 ||
                         strncmp(environ[i], SUP_ADMIN_ENV "=", sizeof(SUP_ADMIN_ENV)) == 0))
            continue;
        envp[k++] = environ[i];
    }
    if (xdg_data) {
        envp[k++] = xdg_data;
        envp[k++] = xdg_conf;
        envp[k++] = admin;
    }
    envp[k] = NULL;
    return envp;
}

/* Fork the watchdog of child c, which forks and execs the daemon. Runs in the supervisor
 * thread only. The watchdog's pid, or -ENOENT (the program is not on PATH), -ENAMETOOLONG (a
 * path of the state directory), -ENOMEM, or fork's -errno. */
static pid_t spawn(int c)
{
    char exe[PATH_MAX], conf[PATH_MAX], logpath[PATH_MAX], caddydir[PATH_MAX];
    char user[32], xdg_data[PATH_MAX + 16], xdg_conf[PATH_MAX + 16], conf_arg[PATH_MAX + 16];
    char admin[PATH_MAX + 32], pidpath[PATH_MAX], pidtmp[PATH_MAX];
    pid_t parent = getpid(), pid;
    char **envp;
    int logfd;

    char rel[32], relpid[32], reltmp[40];
    bool caddy = c == CH_CADDY;

    if (find_exe(children[c].name, exe, sizeof(exe)) < 0)
        return -ENOENT;
    snprintf(rel, sizeof(rel), "log/%s.log", children[c].name);
    snprintf(relpid, sizeof(relpid), "run/%s.pid", children[c].name);
    snprintf(reltmp, sizeof(reltmp), "run/.%s.pid.tmp", children[c].name);
    if (state_path(logpath, sizeof(logpath), g_cfg->state_dir, rel) < 0 ||
        state_path(caddydir, sizeof(caddydir), g_cfg->state_dir, "caddy") < 0 ||
        state_path(pidpath, sizeof(pidpath), g_cfg->state_dir, relpid) < 0 ||
        state_path(pidtmp, sizeof(pidtmp), g_cfg->state_dir, reltmp) < 0 ||
        state_path(conf, sizeof(conf), g_cfg->state_dir, children[c].conf) < 0)
        return -ENAMETOOLONG;
    if (caddy) {
        char sock[PATH_MAX];

        admin_socket_path(sock, sizeof(sock));
        unlink(sock);   /* a stale socket from a killed Caddy blocks its restart */
    }
    if (snprintf(xdg_data, sizeof(xdg_data), "XDG_DATA_HOME=%s", caddydir) >=
            (int)sizeof(xdg_data) ||
        snprintf(xdg_conf, sizeof(xdg_conf), "XDG_CONFIG_HOME=%s", caddydir) >=
            (int)sizeof(xdg_conf) ||
        snprintf(admin, sizeof(admin), SUP_ADMIN_ENV "=%s", admin_sock) >= (int)sizeof(admin))
        return -ENAMETOOLONG;
    snprintf(user, sizeof(user), "--user=root");
    /* dnsmasq's optional-argument options need the "=" form */
    if (snprintf(conf_arg, sizeof(conf_arg), "--conf-file=%s", conf) >= (int)sizeof(conf_arg))
        return -ENAMETOOLONG;
    envp = child_env(caddy ? xdg_data : NULL, xdg_conf, admin);
    if (!envp)
        return -ENOMEM;
    logfd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    pid = fork();
    if (pid != 0) {
        int e = errno;

        if (logfd >= 0)
            close(logfd);
        free(envp);
        return pid > 0 ? pid : -e;
    }
    /* Child: a small watchdog that dies with the daemon (PR_SET_PDEATHSIG) and takes the daemon
     * it runs along. The daemon cannot carry the death signal itself: the kernel clears it when
     * a process changes credentials, which dnsmasq does as it drops capabilities. Only
     * async-signal-safe calls from here on. */
    {
        sigset_t set;
        pid_t gc;
        int sig, st;

        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        /* keep no descriptor of the daemon's (/dev/fuse, sockets, the signer's socket, whose
         * end of file must come when the daemon dies), only the log */
        if (logfd > 3)
            close_range(3, (unsigned)logfd - 1, 0);
        close_range(logfd >= 3 ? (unsigned)logfd + 1 : 3, ~0U, 0);
        setpgid(0, 0);
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGCHLD);
        sigprocmask(SIG_SETMASK, &set, NULL);
        gc = fork();
        if (gc == 0) {
            run_daemon(c, exe, conf, conf_arg, user, envp, logfd);
            _exit(127);
        }
        if (gc < 0)
            _exit(127);
        write_pid_file(pidtmp, pidpath, gc);
        for (;;) {
            if (sigwait(&set, &sig) != 0)
                continue;
            if (sig == SIGTERM) {
                kill(gc, SIGTERM);
                waitpid(gc, &st, 0);
                _exit(0);
            }
            if (waitpid(gc, &st, WNOHANG) == gc)
                break;
        }
        /* mirror the daemon's end, so the supervisor logs the real cause */
        if (WIFSIGNALED(st)) {
            sigemptyset(&set);
            sigprocmask(SIG_SETMASK, &set, NULL);
            signal(WTERMSIG(st), SIG_DFL);
            kill(getpid(), WTERMSIG(st));
        }
        _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 127);
    }
    _exit(127);
}

/* Whether Caddy's admin socket accepts a connection. */
static bool caddy_answers(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char sock[PATH_MAX];
    int fd, rc;

    admin_socket_path(sock, sizeof(sock));
    if (strlen(sock) >= sizeof(sa.sun_path))
        return false;
    memcpy(sa.sun_path, sock, strlen(sock) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    close(fd);
    if (rc == 0)
        chmod(sock, 0600);
    return rc == 0;
}

static void describe_status(int status, char *buf, size_t len)
{
    if (WIFEXITED(status))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "killed by signal %d", WTERMSIG(status));
    else
        snprintf(buf, len, "stopped (status %d)", status);
}

static void start_child(int c)
{
    pid_t pid = spawn(c);

    pthread_mutex_lock(&lock);
    children[c].pid = pid > 0 ? pid : 0;
    children[c].started = time(NULL);
    if (c == CH_CADDY)
        caddy_ready = false;
    pthread_mutex_unlock(&lock);
    if (pid <= 0)
        syslog(LOG_ERR, "supervisor: cannot start %s: %s", children[c].name,
               strerror(pid < 0 ? (int)-pid : EIO));
}

/* Seconds to wait before the next start of a child that has failed failures times in a row, the
 * last after running ran seconds: at once (at most once a second) after one failure, then
 * 2, 4, 8 ... up to SUP_BACKOFF_MAX_S. */
static int backoff_s(int failures, time_t ran)
{
    if (failures <= 1)
        return ran < 1 ? 1 : 0;
    if (failures - 1 >= 6 || (1 << (failures - 1)) > SUP_BACKOFF_MAX_S)
        return SUP_BACKOFF_MAX_S;
    return 1 << (failures - 1);
}

/* Seal the supervisor's own event action with outcome, the message printed from fmt, and
 * details d, which it takes (NULL, when json_pack failed, seals {}); the message goes to
 * syslog as well at prio, unless prio is -1. */
static void sup_event(const char *action, const char *outcome, int prio, json_t *d,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void sup_event(const char *action, const char *outcome, int prio, json_t *d,
                      const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (prio >= 0)
        syslog(prio, "supervisor: %s", msg);
    audit_log_event(action, outcome, msg, d);
    json_decref(d);
}

/* Child c's watchdog exited with status. Decide when to start it again and what to record:
 * the first exit of a streak gets its audit line when the child is restarted (restart_due), the
 * second exit in a row (within SUP_STABLE_S of its start) one failure line, and later exits of
 * the same streak go to syslog only, each restart waiting twice as long as the one before, up to
 * SUP_BACKOFF_MAX_S. Supervisor thread only. */
static void child_exited(int c, pid_t pid, int status)
{
    struct child *ch = &children[c];
    time_t now = time(NULL), ran;
    int delay;

    pthread_mutex_lock(&lock);
    ch->pid = 0;
    ran = now - ch->started;
    pthread_mutex_unlock(&lock);
    describe_status(status, ch->last_why, sizeof(ch->last_why));
    ch->last_pid = pid;
    if (ran >= SUP_STABLE_S) {
        ch->failures = 0;
        ch->announced = false;
    }
    ch->failures++;
    delay = backoff_s(ch->failures, ran);
    ch->restart_at = now + delay;
    syslog(LOG_WARNING, "supervisor: %s (pid %d) %s; restarting in %d s (exit %d in a row)",
           ch->name, (int)pid, ch->last_why, delay, ch->failures);
    if (ch->failures == 2 && !ch->announced) {
        ch->announced = true;
        sup_event("supervisor_restart", "failure", -1,
                  json_pack("{s:s,s:i,s:s,s:i,s:i}", "process", ch->name, "pid", (int)pid,
                            "exit", ch->last_why, "failures", ch->failures,
                            "max_backoff_s", SUP_BACKOFF_MAX_S),
                  "%s %s again %ld s after its restart; retrying with a backoff of up to %d s "
                  "(retries are logged to syslog only)", ch->name, ch->last_why, (long)ran,
                  SUP_BACKOFF_MAX_S);
    }
}

/* Start child c again when its backoff is over; the first restart of a streak is audited. */
static void restart_due(int c, time_t now)
{
    struct child *ch = &children[c];

    if (now < ch->restart_at)
        return;
    start_child(c);
    if (ch->pid == 0) {
        /* not even forked (start_child logged it): retry later, like a child that failed */
        ch->failures++;
        ch->restart_at = now + backoff_s(ch->failures, 0);
        return;
    }
    if (ch->failures != 1)
        return;
    sup_event("supervisor_restart", "success", -1,
              json_pack("{s:s,s:i,s:s,s:i}", "process", ch->name, "pid", (int)ch->last_pid,
                        "exit", ch->last_why, "new_pid", ch->pid),
              "Restarted %s after it %s", ch->name, ch->last_why);
}

/* Child c has run SUP_STABLE_S since its last start: end its failure streak, with a recovery
 * line when the streak had its failure line. */
static void check_recovered(int c, time_t now)
{
    struct child *ch = &children[c];

    if (ch->failures == 0 || ch->pid <= 0 || now - ch->started < SUP_STABLE_S)
        return;
    if (ch->announced)
        sup_event("supervisor_recovered", "success", LOG_NOTICE,
                  json_pack("{s:s,s:i,s:i}", "process", ch->name, "pid", ch->pid,
                            "failures", ch->failures),
                  "%s is running again after %d failed starts", ch->name, ch->failures);
    ch->failures = 0;
    ch->announced = false;
}

static void *sup_main(void *arg)
{
    (void)arg;
    for (int c = 0; c < NCHILD; c++) {
        start_child(c);
        if (children[c].pid == 0) {
            snprintf(children[c].last_why, sizeof(children[c].last_why), "could not be started");
            children[c].failures = 1;
            children[c].restart_at = time(NULL) + 1;
        }
    }
    for (;;) {
        int status;
        pid_t pid;
        bool stop;
        time_t now;

        pthread_mutex_lock(&lock);
        stop = stopping;
        pthread_mutex_unlock(&lock);
        if (stop)
            break;
        /* only our own children: other modules (monitor probes) reap theirs */
        pid = 0;
        for (int c = 0; c < NCHILD && pid <= 0; c++) {
            pid_t mine;

            pthread_mutex_lock(&lock);
            mine = children[c].pid;
            pthread_mutex_unlock(&lock);
            if (mine > 0)
                pid = waitpid(mine, &status, WNOHANG);
        }
        for (int c = 0; pid > 0 && c < NCHILD; c++)
            if (children[c].pid == pid)
                child_exited(c, pid, status);
        now = time(NULL);
        for (int c = 0; c < NCHILD; c++) {
            if (children[c].pid == 0)
                restart_due(c, now);
            else
                check_recovered(c, now);
        }
        if (pid <= 0) {
            struct timespec ts;
            bool need_probe;

            pthread_mutex_lock(&lock);
            need_probe = !caddy_ready && children[CH_CADDY].pid > 0;
            pthread_mutex_unlock(&lock);
            if (need_probe && caddy_answers()) {
                pthread_mutex_lock(&lock);
                caddy_ready = true;
                pthread_cond_broadcast(&cond);
                pthread_mutex_unlock(&lock);
            }
            deadline_in(&ts, need_probe ? 10 : 50);
            pthread_mutex_lock(&lock);
            if (!stopping)
                pthread_cond_timedwait(&cond, &lock, &ts);
            pthread_mutex_unlock(&lock);
        }
    }
    /* stop: SIGTERM, wait up to 3 s, then SIGKILL */
    for (int c = 0; c < NCHILD; c++)
        if (children[c].pid > 0)
            kill(children[c].pid, SIGTERM);
    for (int i = 0; i < 60; i++) {
        bool any = false;

        for (int c = 0; c < NCHILD; c++) {
            if (children[c].pid > 0 && waitpid(children[c].pid, NULL, WNOHANG) == children[c].pid)
                children[c].pid = 0;
            any = any || children[c].pid > 0;
        }
        if (!any)
            break;
        usleep(50000);
    }
    for (int c = 0; c < NCHILD; c++) {
        char rel[32], path[PATH_MAX];

        if (children[c].pid > 0) {
            /* a watchdog killed before it stopped its daemon: keep the pid file, so that the
             * next mount stops that daemon */
            kill(children[c].pid, SIGKILL);
            waitpid(children[c].pid, NULL, 0);
            children[c].pid = 0;
            continue;
        }
        snprintf(rel, sizeof(rel), "run/%s.pid", children[c].name);
        if (state_path(path, sizeof(path), g_cfg->state_dir, rel) == 0)
            unlink(path);
    }
    return NULL;
}

/* Caddy 2.6 rebinds its listeners with SO_REUSEPORT at every config load and closes the old
 * socket; without net.ipv4.tcp_migrate_req the kernel resets the connections still queued on
 * the old one, so a reload drops a few new connections. The setting is per network namespace
 * and only moves such connections to the surviving listener, so turn it on where it is off. */
static void enable_tcp_migrate(void)
{
    static const char path[] = "/proc/sys/net/ipv4/tcp_migrate_req";
    char cur[8] = "";
    FILE *f = fopen(path, "r");

    if (f) {
        if (!fgets(cur, sizeof(cur), f))
            cur[0] = '\0';
        fclose(f);
    }
    if (cur[0] == '1')
        return;
    f = fopen(path, "w");
    if (f) {
        bool ok = fputs("1\n", f) >= 0;

        if (fclose(f) == 0 && ok) {
            syslog(LOG_NOTICE, "set net.ipv4.tcp_migrate_req=1 so that Caddy reloads do not "
                   "reset queued connections");
            return;
        }
    }
    syslog(LOG_WARNING, "cannot set net.ipv4.tcp_migrate_req=1 (%s): a Caddy reload may reset "
           "a few new connections", strerror(errno));
}

/* Whether process pid is child c's daemon for this state directory: its program is the
 * daemon's (/proc/PID/exe, or argv[0] where exe cannot be read), its first argument is the one
 * the supervisor passes ("run", "--keep-in-foreground"), and a later one names this state
 * directory's config as the supervisor passes it (or as an earlier version passed it: Caddy
 * ran on routing/Caddyfile). A zombie has no arguments: false. */
static bool is_our_daemon(pid_t pid, int c)
{
    char path[64], exe[PATH_MAX], conf[PATH_MAX], want[PATH_MAX + 16], args[8192];
    char old[PATH_MAX];
    const char *base;
    size_t n = 0, first;
    ssize_t r;
    int fd;

    if (pid <= 1 || state_path(conf, sizeof(conf), g_cfg->state_dir, children[c].conf) < 0 ||
        snprintf(want, sizeof(want), "%s%s", c == CH_DNSMASQ ? "--conf-file=" : "", conf) >=
            (int)sizeof(want))
        return false;
    if (!children[c].old_conf ||
        state_path(old, sizeof(old), g_cfg->state_dir, children[c].old_conf) < 0)
        old[0] = '\0';
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    while (n < sizeof(args) - 1 && (r = read(fd, args + n, sizeof(args) - 1 - n)) > 0)
        n += (size_t)r;
    close(fd);
    args[n] = '\0';
    if (n == 0)
        return false;
    snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
    r = readlink(path, exe, sizeof(exe) - 1);
    if (r > 0) {
        exe[r] = '\0';
        base = strrchr(exe, '/') ? strrchr(exe, '/') + 1 : exe;
        if (strcmp(base, children[c].name) != 0 &&
            !(strncmp(base, children[c].name, strlen(children[c].name)) == 0 &&
              strcmp(base + strlen(children[c].name), " (deleted)") == 0))
            return false;
    } else {
        base = strrchr(args, '/') ? strrchr(args, '/') + 1 : args;
        if (strcmp(base, children[c].name) != 0)
            return false;
    }
    first = strlen(args) + 1;
    if (first >= n || strcmp(args + first, c == CH_CADDY ? "run" : "--keep-in-foreground") != 0)
        return false;
    for (size_t i = first; i < n; i += strlen(args + i) + 1)
        if (strcmp(args + i, want) == 0 || (old[0] && strcmp(args + i, old) == 0))
            return true;
    return false;
}

/* Stop process pid, child c's daemon left running by an earlier mount: SIGTERM, then SIGKILL
 * after 3 s; wait until it is gone (at most 2 s more). Audited as supervisor_orphan. */
static void stop_orphan(int c, pid_t pid, const char *found_by)
{
    int i;

    kill(pid, SIGTERM);
    for (i = 0; i < 60 && is_our_daemon(pid, c); i++)
        usleep(50000);
    if (is_our_daemon(pid, c)) {
        kill(pid, SIGKILL);
        for (i = 0; i < 40 && is_our_daemon(pid, c); i++)
            usleep(50000);
    }
    sup_event("supervisor_orphan", "success", LOG_WARNING,
              json_pack("{s:s,s:i,s:s,s:b}", "process", children[c].name, "pid", (int)pid,
                        "found_by", found_by, "stopped", !is_our_daemon(pid, c)),
              "Stopped %s (pid %d), left running by an earlier mount of this state directory "
              "(found by its %s)", children[c].name, (int)pid, found_by);
}

/* Stop the daemons an earlier mount of this state directory left behind, when its watchdogs
 * died with it (kill -9 of every conduitfs process): first the ones its pid files name, then
 * any other whose command line names this state directory's configs (no pid file: killed
 * before it was written, or left by a version that wrote none). They hold the ports, and an
 * orphaned Caddy's exit would remove its admin socket. */
static void stop_orphans(void)
{
    DIR *dir;
    struct dirent *de;

    for (int c = 0; c < NCHILD; c++) {
        char rel[32], path[PATH_MAX], *text = NULL;
        size_t len;
        long pid;

        snprintf(rel, sizeof(rel), "run/%s.pid", children[c].name);
        if (state_path(path, sizeof(path), g_cfg->state_dir, rel) < 0 ||
            state_read_file(path, &text, &len) < 0)
            continue;
        pid = strtol(text, NULL, 10);
        free(text);
        if (pid > 1 && pid <= INT_MAX && is_our_daemon((pid_t)pid, c))
            stop_orphan(c, (pid_t)pid, "pid file");
        unlink(path);
        snprintf(rel, sizeof(rel), "run/.%s.pid.tmp", children[c].name);
        if (state_path(path, sizeof(path), g_cfg->state_dir, rel) == 0)
            unlink(path);
    }
    dir = opendir("/proc");
    if (!dir)
        return;
    while ((de = readdir(dir)) != NULL) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);

        if (*end != '\0' || pid <= 1 || pid > INT_MAX || pid == (long)getpid())
            continue;
        for (int c = 0; c < NCHILD; c++)
            if (is_our_daemon((pid_t)pid, c))
                stop_orphan(c, (pid_t)pid, "command line");
    }
    closedir(dir);
}

/* Pick this mount's admin socket name and remove the sockets earlier mounts left in caddy/
 * (their Caddy is gone: stop_orphans ran). 0 or -ENAMETOOLONG (too long for a unix socket). */
static int init_admin_socket(void)
{
    struct sockaddr_un sa;
    char dir[PATH_MAX], name[64], path[PATH_MAX];
    unsigned int rnd = 0;
    DIR *d;
    struct dirent *de;

    if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        rnd = (unsigned int)time(NULL) ^ ((unsigned int)getpid() << 16);
    snprintf(name, sizeof(name), "admin-%d-%08x.sock", (int)getpid(), rnd);
    if (state_path(dir, sizeof(dir), g_cfg->state_dir, "caddy") < 0 ||
        state_path(admin_sock, sizeof(admin_sock), dir, name) < 0 ||
        strlen(admin_sock) >= sizeof(sa.sun_path)) {
        syslog(LOG_ERR, "supervisor: the admin socket path %s/%s is too long for a unix socket",
               dir, name);
        admin_sock[0] = '\0';
        return -ENAMETOOLONG;
    }
    d = opendir(dir);
    if (!d)
        return 0;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        size_t n = strlen(de->d_name);

        if (strncmp(de->d_name, "admin", 5) != 0 || n < 10 ||
            strcmp(de->d_name + n - 5, ".sock") != 0 ||
            state_path(path, sizeof(path), dir, de->d_name) < 0 ||
            lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode))
            continue;
        unlink(path);
    }
    closedir(d);
    return 0;
}

int sup_start(const struct cfs_config *cfg)
{
    static const char *const dirs[] = { "log", "caddy", "run" };
    char dir[PATH_MAX];
    int rc = 0;

    g_cfg = cfg;
    enable_tcp_migrate();
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]) && rc == 0; i++) {
        rc = state_path(dir, sizeof(dir), cfg->state_dir, dirs[i]);
        if (rc == 0)
            rc = state_mkdir(dir, 0700);
    }
    if (rc < 0)
        return rc;
    stop_orphans();
    rc = init_admin_socket();
    if (rc < 0)
        return rc;
    for (int c = 0; c < NCHILD; c++) {
        children[c].failures = 0;
        children[c].announced = false;
    }
    rc = pthread_create(&thread, NULL, sup_main, NULL);
    if (rc != 0)
        return -rc;
    running = true;
    return 0;
}

bool sup_caddy_wait_ready(int timeout_ms)
{
    struct timespec ts;
    bool ready;

    deadline_in(&ts, timeout_ms);
    pthread_mutex_lock(&lock);
    while (!caddy_ready && !stopping)
        if (pthread_cond_timedwait(&cond, &lock, &ts) == ETIMEDOUT)
            break;
    ready = caddy_ready;
    pthread_mutex_unlock(&lock);
    return ready;
}

void sup_stop(void)
{
    if (!running)
        return;
    pthread_mutex_lock(&lock);
    stopping = true;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    pthread_join(thread, NULL);
    running = false;
}

