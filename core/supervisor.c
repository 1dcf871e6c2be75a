/* supervisor.c: starts dnsmasq and Caddy, watches them, restarts them with backoff, and stops
 * them at unmount. One thread owns the children: it forks them (so PR_SET_PDEATHSIG, which fires
 * when the forking thread dies, is tied to a thread that lives as long as the daemon), reaps them,
 * and restarts them. Other threads only read the published pids and the readiness flag. */
#include "core/supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
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

struct child {
    const char *name;
    pid_t pid;              /* guarded by lock */
    time_t started;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static struct child children[NCHILD] = { { "dnsmasq", 0, 0 }, { "caddy", 0, 0 } };
static const struct reg_config *g_cfg;
static pthread_t thread;
static bool running, stopping, caddy_ready;

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

int sup_check(const struct reg_config *cfg, char *err, size_t errlen)
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
    if (state_path(buf, len, g_cfg->state_dir, "caddy/admin.sock") < 0)
        buf[0] = '\0';
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
        char *const argv[] = { "caddy", "run", "--config", (char *)conf, "--adapter",
                               "caddyfile", NULL };

        execve(exe, argv, envp);
    } else {
        char *const argv[] = { "dnsmasq", "--keep-in-foreground", (char *)conf_arg,
                               (char *)user, "--pid-file", NULL };

        execve(exe, argv, envp);
    }
}

/* The children's environment: the daemon's, with XDG_DATA_HOME and XDG_CONFIG_HOME replaced
 * by xdg_data and xdg_conf when those are given. Built before fork (no malloc after it); free
 * the array only (its strings are environ's and the callers'). NULL when out of memory. */
static char **child_env(char *xdg_data, char *xdg_conf)
{
    size_t n = 0, k = 0;
    char **envp;

    while (environ[n])
        n++;
    envp = calloc(n + 3, sizeof(*envp));
    if (!envp)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (xdg_data && (strncmp(environ[i], "XDG_DATA_HOME=", 14) == 0 ||
                         strncmp(environ[i], "XDG_CONFIG_HOME=", 16) == 0))
            continue;
        envp[k++] = environ[i];
    }
    if (xdg_data) {
        envp[k++] = xdg_data;
        envp[k++] = xdg_conf;
    }
    envp[k] = NULL;
    return envp;
}

/* Fork the watchdog of child c, which forks and execs the daemon. Runs in the supervisor
 * thread only. */
static pid_t spawn(int c)
{
    char exe[PATH_MAX], conf[PATH_MAX], logpath[PATH_MAX], caddydir[PATH_MAX];
    char user[32], xdg_data[PATH_MAX + 16], xdg_conf[PATH_MAX + 16], conf_arg[PATH_MAX + 16];
    pid_t parent = getpid(), pid;
    char **envp;
    int logfd;

    char rel[32];
    bool caddy = c == CH_CADDY;

    if (find_exe(children[c].name, exe, sizeof(exe)) < 0)
        return -1;
    snprintf(rel, sizeof(rel), "log/%s.log", children[c].name);
    if (state_path(logpath, sizeof(logpath), g_cfg->state_dir, rel) < 0 ||
        state_path(caddydir, sizeof(caddydir), g_cfg->state_dir, "caddy") < 0 ||
        state_path(conf, sizeof(conf), g_cfg->state_dir,
                   caddy ? "routing/Caddyfile" : "dns/dnsmasq.conf") < 0)
        return -1;
    if (caddy) {
        char sock[PATH_MAX];

        admin_socket_path(sock, sizeof(sock));
        unlink(sock);   /* a stale socket from a killed Caddy blocks its restart */
    }
    if (snprintf(xdg_data, sizeof(xdg_data), "XDG_DATA_HOME=%s", caddydir) >=
            (int)sizeof(xdg_data) ||
        snprintf(xdg_conf, sizeof(xdg_conf), "XDG_CONFIG_HOME=%s", caddydir) >=
            (int)sizeof(xdg_conf))
        return -1;
    snprintf(user, sizeof(user), "--user=root");
    /* dnsmasq's optional-argument options need the "=" form */
    if (snprintf(conf_arg, sizeof(conf_arg), "--conf-file=%s", conf) >= (int)sizeof(conf_arg))
        return -1;
    envp = child_env(caddy ? xdg_data : NULL, xdg_conf);
    if (!envp)
        return -1;
    logfd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    pid = fork();
    if (pid != 0) {
        if (logfd >= 0)
            close(logfd);
        free(envp);
        return pid;
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
        syslog(LOG_ERR, "supervisor: cannot start %s", children[c].name);
}

static void *sup_main(void *arg)
{
    (void)arg;
    for (int c = 0; c < NCHILD; c++)
        start_child(c);
    for (;;) {
        int status;
        pid_t pid;
        bool stop;

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
        for (int c = 0; pid > 0 && c < NCHILD; c++) {
            char why[64], msg[160];
            json_t *d;
            time_t since;

            if (children[c].pid != pid)
                continue;
            describe_status(status, why, sizeof(why));
            syslog(LOG_WARNING, "supervisor: %s (pid %d) %s; restarting", children[c].name,
                   (int)pid, why);
            pthread_mutex_lock(&lock);
            children[c].pid = 0;
            since = time(NULL) - children[c].started;
            pthread_mutex_unlock(&lock);
            if (since < 1)
                sleep(1);   /* backoff: at most one restart a second */
            start_child(c);
            snprintf(msg, sizeof(msg), "Restarted %s after it %s", children[c].name, why);
            d = json_pack("{s:s,s:i,s:s,s:i}", "process", children[c].name, "pid", (int)pid,
                          "exit", why, "new_pid", children[c].pid);
            audit_log_event("supervisor_restart", "success", msg, d);
            json_decref(d);
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
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += need_probe ? 10 * 1000000L : 50 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
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
        if (children[c].pid > 0) {
            kill(children[c].pid, SIGKILL);
            waitpid(children[c].pid, NULL, 0);
            children[c].pid = 0;
        }
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

int sup_start(const struct reg_config *cfg)
{
    char dir[PATH_MAX];
    int rc;

    g_cfg = cfg;
    enable_tcp_migrate();
    rc = state_path(dir, sizeof(dir), cfg->state_dir, "log");
    if (rc == 0)
        rc = state_mkdir(dir, 0700);
    if (rc == 0)
        rc = state_path(dir, sizeof(dir), cfg->state_dir, "caddy");
    if (rc == 0)
        rc = state_mkdir(dir, 0700);
    if (rc < 0)
        return rc;
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

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
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

int sup_child_pid(const char *name)
{
    int pid = 0;

    pthread_mutex_lock(&lock);
    for (int c = 0; c < NCHILD; c++)
        if (strcmp(children[c].name, name) == 0)
            pid = children[c].pid;
    pthread_mutex_unlock(&lock);
    return pid;
}
