/* signer.c: the signer process (OpenSMTPD's privilege-separated key holder, in small): forked
 * and re-executed at start-up before any thread, it alone loads the CA key and the audit signing
 * key and answers signing requests over a socketpair; the daemon side is a client serialized by
 * one mutex. */
#include "core/signer.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "audit/capsule.h"
#include "core/statefile.h"

#define SIGNER_TIMEOUT_MS 30000     /* the longest a request may take (a new root included) */
#define SIGNER_REAP_MS 2000         /* how long signer_stop waits before SIGKILL */
#define SIGNER_SECURE_HEAP 32768    /* OpenSSL secure heap for the keys (mlock'd if allowed) */
#define SIGNER_HOST_MAX 255
#define SIGNER_NOTICE_MAX 1024
#define SIGNER_NAME "conduit-signer"
#define SIGNER_RESTARTS 1           /* a signer that dies is replaced this often per mount */
#define SIGNER_CA_EXISTING 0x80     /* SIGNER_CA_OPEN flag: open only, never make a new root */

struct req_hdr {
    uint32_t type;
    uint32_t len;
};

struct resp_hdr {
    int32_t status;
    uint32_t len;
};

/* The daemon side. lock serializes requests and guards every field. */
static struct {
    pthread_mutex_t lock;
    int fd;                         /* our end of the socketpair; -1 when there is no signer */
    pid_t pid;                      /* the signer */
    pid_t parent;                   /* the process that forked it (and may reap it) */
    bool dead;                      /* the link broke for good: every call is -EIO */
    int restarts;
    char exe[PATH_MAX];             /* what the child executes; "": serve in the child */
    char state_dir[PATH_MAX];
    char key_path[PATH_MAX];        /* state_dir/key, the audit key the signer serves */
    char audit_pub[AUDIT_PUB_HEX];  /* what a new signer must load again ... */
    unsigned char ca_req[1 + SIGNER_HOST_MAX];
    size_t ca_req_len;
    unsigned char *root;            /* ... and open again: this root, as DER */
    size_t root_len;
} g = { .lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1 };

/* ---- the wire ---- */

/* Wait until fd is ready for events, at most timeout_ms (-1: forever). 0, -ETIMEDOUT or
 * -errno. */
static int wait_fd(int fd, short events, int timeout_ms)
{
    struct pollfd p = { .fd = fd, .events = events };
    int n;

    do {
        n = poll(&p, 1, timeout_ms);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    return n == 0 ? -ETIMEDOUT : 0;
}

/* Write all len bytes of buf (no SIGPIPE: a dead peer is -EPIPE). 0 or -errno. */
static int write_all(int fd, const void *buf, size_t len, int timeout_ms)
{
    const char *p = buf;
    ssize_t n;
    int rc;

    while (len > 0) {
        rc = wait_fd(fd, POLLOUT, timeout_ms);
        if (rc < 0)
            return rc;
        n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read exactly len bytes into buf. 0, -ENODATA at end of file before the first byte, -EPIPE at
 * end of file after it, or -errno. */
static int read_all(int fd, void *buf, size_t len, int timeout_ms)
{
    char *p = buf;
    size_t got = 0;
    ssize_t n;
    int rc;

    while (got < len) {
        rc = wait_fd(fd, POLLIN, timeout_ms);
        if (rc < 0)
            return rc;
        n = read(fd, p + got, len - got);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return got == 0 ? -ENODATA : -EPIPE;
        got += (size_t)n;
    }
    return 0;
}

/* ---- the signer process ---- */

/* What the signer holds. */
struct keys {
    const char *state_dir;
    char key_path[PATH_MAX];
    struct audit_key *audit;
    struct ca *ca;
};

/* Send one response. 0 or -errno. */
static int reply(int fd, int status, const void *data, size_t len)
{
    struct resp_hdr h = { .status = status, .len = (uint32_t)len };
    int rc = write_all(fd, &h, sizeof(h), -1);

    if (rc == 0 && len > 0)
        rc = write_all(fd, data, len, -1);
    return rc;
}

/* Send an error with its reason (the errno text when there is none). 0 or -errno. */
static int reply_err(int fd, int status, const char *why)
{
    if (!why || !why[0])
        why = strerror(-status);
    return reply(fd, status, why, strlen(why));
}

/* True for exactly 64 lowercase hex chars: what a capsule hash looks like. */
static bool is_hash_hex(const unsigned char *s, size_t len)
{
    if (len != AUDIT_HASH_HEX - 1)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* SIGNER_AUDIT_KEY and SIGNER_AUDIT_SIGN. 0 or -errno (the link). */
static int serve_audit(int fd, struct keys *k, uint32_t type, const unsigned char *req,
                       size_t len)
{
    unsigned char sig[AUDIT_SIG_LEN];
    char why[512] = "";
    const char *pub;
    int rc;

    if (type == SIGNER_AUDIT_KEY) {
        if (len != 0)
            return reply_err(fd, -EINVAL, "the audit key request takes no data");
        if (!k->audit) {
            rc = audit_key_load(k->key_path, &k->audit, why, sizeof(why));
            if (rc < 0)
                return reply_err(fd, rc, why);
        }
        pub = audit_key_public_hex(k->audit);
        return reply(fd, 0, pub, strlen(pub));
    }
    if (!k->audit)
        return reply_err(fd, -ENOKEY, "the audit key is not loaded");
    if (!is_hash_hex(req, len))
        return reply_err(fd, -EPERM, "refused: the audit key signs capsule hashes only "
                         "(64 lowercase hex chars)");
    rc = audit_key_sign(k->audit, req, len, sig);
    if (rc < 0)
        return reply_err(fd, rc, "Ed25519 signing failed");
    return reply(fd, 0, sig, sizeof(sig));
}

/* The SIGNER_CA_OPEN answer for the open CA. 0 or -errno (the link). */
static int reply_root(int fd, struct ca *ca, bool created, const char *notice)
{
    unsigned char *der = NULL, *msg = NULL;
    size_t dlen = 0, nlen = strnlen(notice, SIGNER_NOTICE_MAX), mlen;
    uint16_t n16 = (uint16_t)nlen;
    int rc;

    rc = ca_root_der(ca, &der, &dlen);
    if (rc < 0) {
        rc = reply_err(fd, rc, "encoding the CA certificate");
        goto out;
    }
    mlen = 1 + sizeof(n16) + nlen + dlen;
    msg = mlen <= SIGNER_MSG_MAX ? malloc(mlen) : NULL;
    if (!msg) {
        rc = reply_err(fd, -ENOMEM, NULL);
        goto out;
    }
    msg[0] = created ? 1 : 0;
    memcpy(msg + 1, &n16, sizeof(n16));
    memcpy(msg + 1 + sizeof(n16), notice, nlen);
    memcpy(msg + 1 + sizeof(n16) + nlen, der, dlen);
    rc = reply(fd, 0, msg, mlen);
out:
    free(der);
    free(msg);
    return rc;
}

/* Whether state_dir/tls/ca.key or ca.crt is there. */
static bool ca_files_exist(const char *state_dir)
{
    char tls[PATH_MAX], path[PATH_MAX];
    struct stat st;

    if (state_path(tls, sizeof(tls), state_dir, "tls") < 0)
        return false;
    return (state_path(path, sizeof(path), tls, "ca.key") == 0 && lstat(path, &st) == 0) ||
           (state_path(path, sizeof(path), tls, "ca.crt") == 0 && lstat(path, &st) == 0);
}

/* SIGNER_CA_OPEN and SIGNER_CA_SIGN. 0 or -errno (the link). */
static int serve_ca(int fd, struct keys *k, uint32_t type, const unsigned char *req, size_t len)
{
    char host[SIGNER_HOST_MAX + 1], why[512] = "";
    unsigned char *out = NULL;
    size_t outlen = 0;
    bool created = false;
    int rc;

    if (type == SIGNER_CA_OPEN) {
        unsigned want = len ? req[0] & ~SIGNER_CA_EXISTING : 0xff;

        if (len < 1 || len - 1 > SIGNER_HOST_MAX ||
            (want != CA_KEY_ED25519 && want != CA_KEY_ECDSA_P256))
            return reply_err(fd, -EINVAL, "bad CA open request");
        memcpy(host, req + 1, len - 1);
        host[len - 1] = '\0';
        if (!k->ca && (req[0] & SIGNER_CA_EXISTING) && !ca_files_exist(k->state_dir))
            return reply_err(fd, -ENOENT, "the CA files are gone; not making a new root");
        if (!k->ca) {
            rc = ca_open(k->state_dir, (enum ca_key_type)want, host, &k->ca, &created, why,
                         sizeof(why));
            if (rc < 0)
                return reply_err(fd, rc, why);
        }
        return reply_root(fd, k->ca, created, why);
    }
    if (!k->ca)
        return reply_err(fd, -ENOKEY, "the CA is not open");
    /* Signs only what the signing policy (core/capolicy.c, ca_policy_check_leaf) allows. */
    rc = ca_sign_cert(k->ca, req, len, &out, &outlen, why, sizeof(why));
    if (rc < 0)
        rc = reply_err(fd, rc, why);
    else
        rc = reply(fd, 0, out, outlen);
    free(out);
    return rc;
}

int signer_serve(int fd, const char *state_dir)
{
    struct keys k = { .state_dir = state_dir };
    unsigned char *req = NULL;
    struct req_hdr h;
    int rc, status = 1;

    if (state_path(k.key_path, sizeof(k.key_path), state_dir, "key") < 0)
        goto out;
    for (;;) {
        rc = read_all(fd, &h, sizeof(h), -1);
        if (rc == -ENODATA) {
            status = 0;             /* the daemon is gone: so are we */
            break;
        }
        if (rc < 0)
            break;
        if (h.len > SIGNER_MSG_MAX) {
            reply_err(fd, -EMSGSIZE, "request too long");
            break;
        }
        req = malloc(h.len ? h.len : 1);
        if (!req || (h.len && read_all(fd, req, h.len, -1) < 0))
            break;
        if (h.type == SIGNER_AUDIT_KEY || h.type == SIGNER_AUDIT_SIGN)
            rc = serve_audit(fd, &k, h.type, req, h.len);
        else if (h.type == SIGNER_CA_OPEN || h.type == SIGNER_CA_SIGN)
            rc = serve_ca(fd, &k, h.type, req, h.len);
        else
            rc = reply_err(fd, -EOPNOTSUPP, "unknown request");
        OPENSSL_cleanse(req, h.len);
        free(req);
        req = NULL;
        if (rc < 0)
            break;
    }
out:
    free(req);
    audit_key_free(k.audit);
    ca_close(k.ca);
    return status;
}

/* Harden this process, then serve fd until end of file. Returns the exit status. */
static int run(int fd, const char *state_dir)
{
    static const int ignored[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGUSR1,
                                   SIGUSR2, SIGTSTP, SIGTTIN, SIGTTOU };
    struct rlimit nocore = { 0, 0 };
    sigset_t none;

    prctl(PR_SET_DUMPABLE, 0);      /* no core, no ptrace or /proc/<pid>/mem by the same uid */
    prctl(PR_SET_NAME, SIGNER_NAME);
    setrlimit(RLIMIT_CORE, &nocore);
    /* It ends when the daemon does (end of file), not on the terminal's or the service
     * manager's signals, so that the daemon can still seal its last lines. */
    for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
        signal(ignored[i], SIG_IGN);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (chdir("/") < 0)
        return 1;
    openlog(SIGNER_NAME, LOG_PID, LOG_DAEMON);
    /* Key objects live in a locked heap that is never swapped or dumped; 2 means that it works
     * but could not be locked (RLIMIT_MEMLOCK). */
    if (CRYPTO_secure_malloc_init(SIGNER_SECURE_HEAP, 32) == 0)
        syslog(LOG_WARNING, "no secure heap for the keys; they stay in ordinary memory");
    return signer_serve(fd, state_dir);
}

/* The child of spawn: keep only the socket, as fd 3, with 0-2 on /dev/null; then exec exe as
 * the signer (a fresh address space: nothing of the daemon's memory, its own layout), or
 * without exe serve right here. Between fork and exec only async-signal-safe calls: the daemon
 * may have threads when it restarts the signer. Never returns. */
static void child_main(int sock, const char *exe, const char *state_dir)
{
    char *const args[] = { SIGNER_NAME, SIGNER_ARG, (char *)state_dir, NULL };
    int fd, devnull;

    fd = fcntl(sock, F_DUPFD, 10);
    devnull = open("/dev/null", O_RDWR);
    if (fd < 0 || devnull < 0)
        _exit(1);
    for (int i = 0; i < 3; i++)
        if (devnull != i && dup2(devnull, i) < 0)
            _exit(1);
    if (dup2(fd, 3) < 0)            /* and fd 3 is not close-on-exec */
        _exit(1);
    close_range(4, ~0U, 0);
    if (exe) {
        execv(exe, args);
        _exit(127);
    }
    closelog();
    _exit(run(3, state_dir));
}

int signer_exec_main(const char *state_dir)
{
    struct stat st;

    if (fstat(3, &st) < 0 || !S_ISSOCK(st.st_mode) || !state_dir || state_dir[0] != '/') {
        fprintf(stderr, "conduitfs: %s is started by the daemon only\n", SIGNER_ARG);
        return 2;
    }
    return run(3, state_dir);
}

/* Fork (and exec) a signer for g.state_dir, with the lock held: g.fd, g.pid, g.parent.
 * 0 or -errno with a reason. */
static int spawn(char *err, size_t errlen)
{
    int sv[2] = { -1, -1 }, rc = 0;
    pid_t pid;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        rc = -errno;
        state_err(err, errlen, "signer: socketpair: %s", strerror(errno));
        goto out;
    }
    pid = fork();
    if (pid < 0) {
        rc = -errno;
        state_err(err, errlen, "signer: fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0)
        child_main(sv[1], g.exe[0] ? g.exe : NULL, g.state_dir);
    g.fd = sv[0];
    g.pid = pid;
    g.parent = getpid();
    sv[0] = -1;
out:
    if (sv[0] >= 0)
        close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
    return rc;
}

int signer_start(const char *state_dir, const char *exe, char *err, size_t errlen)
{
    int rc;

    state_err(err, errlen, "%s", "");
    pthread_mutex_lock(&g.lock);
    if (g.fd >= 0) {
        rc = -EBUSY;
        state_err(err, errlen, "the signer is already running");
        goto out;
    }
    if (!state_dir || state_dir[0] != '/' ||
        snprintf(g.state_dir, sizeof(g.state_dir), "%s", state_dir) >= (int)sizeof(g.state_dir) ||
        state_path(g.key_path, sizeof(g.key_path), state_dir, "key") < 0 ||
        snprintf(g.exe, sizeof(g.exe), "%s", exe ? exe : "") >= (int)sizeof(g.exe)) {
        rc = -EINVAL;
        state_err(err, errlen, "signer: the state directory must be an absolute path");
        goto out;
    }
    g.dead = false;
    g.restarts = 0;
    g.audit_pub[0] = '\0';
    g.ca_req_len = 0;
    free(g.root);
    g.root = NULL;
    g.root_len = 0;
    rc = spawn(err, errlen);
out:
    pthread_mutex_unlock(&g.lock);
    return rc;
}

bool signer_running(void)
{
    bool on;

    pthread_mutex_lock(&g.lock);
    on = g.fd >= 0;
    pthread_mutex_unlock(&g.lock);
    return on;
}

pid_t signer_pid(void)
{
    pid_t pid;

    pthread_mutex_lock(&g.lock);
    pid = g.fd >= 0 ? g.pid : 0;
    pthread_mutex_unlock(&g.lock);
    return pid;
}

/* Close our end, with the lock held: the signer reads end of file and exits. The process that
 * forked it reaps it, waiting up to wait_ms (then SIGKILL; 0: only what has already ended). */
static void drop(int wait_ms)
{
    struct timespec nap = { 0, 10 * 1000 * 1000 };
    pid_t got = 0;

    if (g.fd < 0)
        return;
    close(g.fd);
    g.fd = -1;
    /* After fuse_daemonize the signer is the daemon's sibling, and init reaps it. */
    if (g.parent == getpid() && g.pid > 0) {
        for (int waited = 0; got == 0; waited += 10) {
            got = waitpid(g.pid, NULL, WNOHANG);
            if (got != 0 || waited >= wait_ms)
                break;
            nanosleep(&nap, NULL);
        }
        if (got == 0 && wait_ms > 0) {
            syslog(LOG_WARNING, "signer: pid %ld did not exit; killing it", (long)g.pid);
            kill(g.pid, SIGKILL);
            waitpid(g.pid, NULL, 0);
        }
    }
    g.pid = 0;
}

void signer_stop(void)
{
    pthread_mutex_lock(&g.lock);
    drop(SIGNER_REAP_MS);
    free(g.root);
    g.root = NULL;
    g.root_len = 0;
    pthread_mutex_unlock(&g.lock);
}

/* ---- the daemon side ---- */

/* Copy a reason from the signer into err as one printable line. */
static void copy_reason(const unsigned char *text, size_t len, char *err, size_t errlen)
{
    size_t n = 0;

    if (!err || errlen == 0)
        return;
    for (size_t i = 0; i < len && n + 1 < errlen; i++)
        err[n++] = (text[i] >= 0x20 && text[i] < 0x7f) ? (char)text[i] : '?';
    err[n] = '\0';
}

/* One round trip on g.fd, with the lock held. 0 with *status, *resp (malloc'd) and *resplen
 * set, or the -errno of a broken link (-EPIPE: the signer is gone; -ETIMEDOUT; -EPROTO). */
static int exchange(uint32_t type, const void *req, size_t len, int *status,
                    unsigned char **resp, size_t *resplen)
{
    struct req_hdr h = { .type = type, .len = (uint32_t)len };
    struct resp_hdr r;
    unsigned char *data = NULL;
    int rc;

    *resp = NULL;
    *resplen = 0;
    rc = write_all(g.fd, &h, sizeof(h), SIGNER_TIMEOUT_MS);
    if (rc == 0 && len > 0)
        rc = write_all(g.fd, req, len, SIGNER_TIMEOUT_MS);
    if (rc == 0)
        rc = read_all(g.fd, &r, sizeof(r), SIGNER_TIMEOUT_MS);
    if (rc == 0 && (r.len > SIGNER_MSG_MAX || r.status > 0 || r.status < -4095))
        rc = -EPROTO;
    if (rc == 0) {
        data = malloc(r.len ? r.len : 1);
        rc = data ? 0 : -ENOMEM;
    }
    if (rc == 0 && r.len > 0)
        rc = read_all(g.fd, data, r.len, SIGNER_TIMEOUT_MS);
    if (rc == -ENODATA)
        rc = -EPIPE;
    if (rc == 0) {
        *status = r.status;
        *resp = data;
        *resplen = r.len;
        data = NULL;
    }
    free(data);
    return rc;
}

/* The root certificate in a SIGNER_CA_OPEN answer: 0 with *der and *len pointing into resp, or
 * -EIO. */
static int root_in(const unsigned char *resp, size_t rlen, const unsigned char **der, size_t *len)
{
    uint16_t n16;

    if (rlen < 1 + sizeof(n16))
        return -EIO;
    memcpy(&n16, resp + 1, sizeof(n16));
    if (rlen < 1 + sizeof(n16) + n16)
        return -EIO;
    *der = resp + 1 + sizeof(n16) + n16;
    *len = rlen - 1 - sizeof(n16) - n16;
    return 0;
}

/* Remember what a new signer must be told again: the audit key and the CA it opened. With the
 * lock held; a request that succeeded. */
static void remember(uint32_t type, const void *req, size_t len, const unsigned char *resp,
                     size_t rlen)
{
    const unsigned char *der;
    size_t dlen;

    if (type == SIGNER_AUDIT_KEY && rlen == AUDIT_PUB_HEX - 1) {
        memcpy(g.audit_pub, resp, rlen);
        g.audit_pub[rlen] = '\0';
    } else if (type == SIGNER_CA_OPEN && !g.root && len <= sizeof(g.ca_req) &&
               root_in(resp, rlen, &der, &dlen) == 0 && (g.root = malloc(dlen ? dlen : 1))) {
        memcpy(g.root, der, dlen);
        g.root_len = dlen;
        memcpy(g.ca_req, req, len);
        g.ca_req[0] |= SIGNER_CA_EXISTING;  /* a new signer must find the same CA, not make one */
        g.ca_req_len = len;
    }
}

/* Start a new signer in place of one that broke (why), with the lock held, and have it load the
 * same audit key and open the same CA as its predecessor: the same public key and the same root
 * certificate, or it is not used. 0 or -errno. */
static int restart(int why, char *err, size_t errlen)
{
    unsigned char *resp = NULL;
    const unsigned char *der;
    size_t rlen = 0, dlen;
    int rc, status = 0;

    g.restarts++;
    syslog(LOG_ERR, "signer: pid %ld failed (%s); starting a new signer", (long)g.pid,
           strerror(-why));
    drop(SIGNER_REAP_MS);
    rc = spawn(err, errlen);
    if (rc == 0 && g.audit_pub[0]) {
        rc = exchange(SIGNER_AUDIT_KEY, NULL, 0, &status, &resp, &rlen);
        if (rc == 0 && (status < 0 || rlen != AUDIT_PUB_HEX - 1 ||
                        memcmp(resp, g.audit_pub, rlen) != 0))
            rc = -EKEYREJECTED;
        free(resp);
        resp = NULL;
    }
    if (rc == 0 && g.root) {
        rc = exchange(SIGNER_CA_OPEN, g.ca_req, g.ca_req_len, &status, &resp, &rlen);
        if (rc == 0 && (status < 0 || root_in(resp, rlen, &der, &dlen) < 0 ||
                        dlen != g.root_len || memcmp(der, g.root, dlen) != 0))
            rc = -EKEYREJECTED;
        free(resp);
    }
    if (rc < 0)
        state_err(err, errlen, "the new signer did not come up with the same keys: %s",
                strerror(-rc));
    else
        syslog(LOG_NOTICE, "signer: pid %ld took over the same keys", (long)g.pid);
    return rc;
}

int signer_call(uint32_t type, const void *req, size_t len, unsigned char **resp,
                size_t *resplen, char *err, size_t errlen)
{
    unsigned char *data = NULL;
    size_t dlen = 0;
    int rc, status = 0;

    state_err(err, errlen, "%s", "");
    *resp = NULL;
    *resplen = 0;
    if (len > SIGNER_MSG_MAX) {
        state_err(err, errlen, "signer request too long");
        return -EMSGSIZE;
    }
    pthread_mutex_lock(&g.lock);
    if (g.dead || g.fd < 0) {
        rc = -EIO;
        state_err(err, errlen, "%s", g.dead ? "the signer process is gone" : "no signer process");
        goto out;
    }
    rc = exchange(type, req, len, &status, &data, &dlen);
    if (rc < 0 && g.restarts < SIGNER_RESTARTS && restart(rc, err, errlen) == 0)
        rc = exchange(type, req, len, &status, &data, &dlen);
    if (rc < 0) {
        if (!g.dead)
            syslog(LOG_CRIT, "signer: pid %ld is gone (%s); every signature fails with EIO "
                   "until the next mount", (long)g.pid, strerror(-rc));
        g.dead = true;
        drop(SIGNER_REAP_MS);       /* reap it (or kill a hung one) */
        if (!err || !err[0])
            state_err(err, errlen, "the signer process is gone: %s", strerror(-rc));
        rc = -EIO;
        goto out;
    }
    rc = status;
    if (rc < 0) {
        copy_reason(data, dlen, err, errlen);
        goto out;
    }
    remember(type, req, len, data, dlen);
    *resp = data;
    *resplen = dlen;
    data = NULL;
out:
    pthread_mutex_unlock(&g.lock);
    free(data);
    return rc;
}

/* audit_signer.load: the public key of the audit key the signer serves. */
static int audit_load(void *arg, const char *keypath, char pubhex[AUDIT_PUB_HEX], char *err,
                      size_t errlen)
{
    unsigned char *resp = NULL;
    size_t len = 0;
    int rc;

    (void)arg;
    if (strcmp(keypath, g.key_path) != 0) {
        state_err(err, errlen, "the signer serves %s, not %s", g.key_path, keypath);
        return -EINVAL;
    }
    rc = signer_call(SIGNER_AUDIT_KEY, NULL, 0, &resp, &len, err, errlen);
    if (rc == 0 && len != AUDIT_PUB_HEX - 1) {
        rc = -EIO;
        state_err(err, errlen, "the signer sent a public key of %zu chars", len);
    }
    if (rc == 0) {
        memcpy(pubhex, resp, len);
        pubhex[len] = '\0';
    }
    free(resp);
    return rc;
}

/* audit_signer.sign: an Ed25519 signature from the signer. */
static int audit_sign(void *arg, const unsigned char *msg, size_t len,
                      unsigned char sig[AUDIT_SIG_LEN])
{
    unsigned char *resp = NULL;
    size_t rlen = 0;
    char why[256];
    int rc;

    (void)arg;
    rc = signer_call(SIGNER_AUDIT_SIGN, msg, len, &resp, &rlen, why, sizeof(why));
    if (rc == 0 && rlen != AUDIT_SIG_LEN) {
        rc = -EIO;
        snprintf(why, sizeof(why), "the signer sent a signature of %zu bytes", rlen);
    }
    if (rc == 0)
        memcpy(sig, resp, AUDIT_SIG_LEN);
    else if (rc != -EIO)            /* a dead signer is logged once, by signer_call */
        syslog(LOG_ERR, "signer: audit signature refused: %s", why);
    free(resp);
    return rc;
}

static const struct audit_signer audit_hooks = {
    .load = audit_load,
    .sign = audit_sign,
    .arg = NULL,
};

const struct audit_signer *signer_audit(void)
{
    return &audit_hooks;
}

/* ca_sign_fn: a leaf signed by the signer's CA key. */
static int ca_sign(void *arg, const unsigned char *req, size_t len, unsigned char **out,
                   size_t *outlen, char *err, size_t errlen)
{
    (void)arg;
    return signer_call(SIGNER_CA_SIGN, req, len, out, outlen, err, errlen);
}

int signer_ca_open(const char *state_dir, enum ca_key_type want, const char *hostname,
                   struct ca **out, bool *created, char *err, size_t errlen)
{
    unsigned char msg[1 + SIGNER_HOST_MAX], *resp = NULL;
    size_t hlen = hostname ? strlen(hostname) : 0, rlen = 0, dlen;
    const unsigned char *der;
    uint16_t nlen;
    int rc;

    state_err(err, errlen, "%s", "");
    if (created)
        *created = false;
    *out = NULL;
    if (strcmp(state_dir, g.state_dir) != 0 || hlen > SIGNER_HOST_MAX) {
        state_err(err, errlen, "the signer serves %s, not %s (or the host name is too long)",
                g.state_dir, state_dir);
        return -EINVAL;
    }
    msg[0] = (unsigned char)want;
    if (hlen)
        memcpy(msg + 1, hostname, hlen);
    rc = signer_call(SIGNER_CA_OPEN, msg, 1 + hlen, &resp, &rlen, err, errlen);
    if (rc < 0)
        goto out;
    rc = root_in(resp, rlen, &der, &dlen);
    if (rc < 0) {
        state_err(err, errlen, "the signer sent a short CA answer");
        goto out;
    }
    rc = ca_open_remote(state_dir, der, dlen, ca_sign, NULL, out, err, errlen);
    if (rc < 0)
        goto out;
    memcpy(&nlen, resp + 1, sizeof(nlen));
    copy_reason(resp + 1 + sizeof(nlen), nlen, err, errlen);
    if (created)
        *created = resp[0] != 0;
out:
    free(resp);
    return rc;
}
