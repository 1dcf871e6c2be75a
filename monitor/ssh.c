/* ssh.c: the SSH transport of remote probes (libssh2, non-blocking): one pooled session per
 * directory, reused and locked while in use; connect and command deadlines; host keys pinned on
 * first use in state/monitoring/known_hosts, a changed key refused. libssh2's error codes become
 * errno in ssh_error() and nowhere else. */
#include "monitor/probe.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <libssh2.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "audit/audit.h"
#include "core/statefile.h"
#include "util/util.h"

/* A pooled session is closed after this long unused. */
#define IDLE_MS (5 * 60 * 1000)
/* After a failed login, the other probes of the directory that queued behind it get the same
 * failure for this long instead of dialling again (an unreachable host costs one
 * MON_CONNECT_MS per metrics.prom run, not one per probe). */
#define FAIL_MS MON_TTL_MS

struct conn {
    struct conn *next;
    char name[MON_NAME_MAX];
    int refs;                   /* pool_lock */
    int64_t last_used;          /* pool_lock */
    pthread_mutex_t lock;       /* held while the session is in use */
    char ep[MON_HOST_MAX + MON_USER_MAX + MON_KEY_MAX + 48];   /* what s is connected to */
    LIBSSH2_SESSION *s;
    int sock;
    bool mismatch_logged;
    char fail_ep[MON_HOST_MAX + MON_USER_MAX + MON_KEY_MAX + 48];  /* the last failed login */
    int64_t fail_ms;
    int fail_rc;
    char fail_err[256];
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct conn *pool;
static pthread_mutex_t kh_lock = PTHREAD_MUTEX_INITIALIZER;
static char kh_path[PATH_MAX];
static bool ready;

/* The one place libssh2 codes become errno: the return value, and "ssh WHAT: reason" in err. */
static int ssh_error(LIBSSH2_SESSION *s, int code, const char *what, char *err, size_t errlen)
{
    char *msg = NULL;
    int e;

    switch (code) {
    case LIBSSH2_ERROR_EAGAIN:
    case LIBSSH2_ERROR_TIMEOUT:
    case LIBSSH2_ERROR_SOCKET_TIMEOUT:
        snprintf(err, errlen, "ssh %s: timed out", what);
        return -ETIMEDOUT;
    case LIBSSH2_ERROR_SOCKET_NONE:
    case LIBSSH2_ERROR_SOCKET_SEND:
    case LIBSSH2_ERROR_SOCKET_RECV:
    case LIBSSH2_ERROR_SOCKET_DISCONNECT:
    case LIBSSH2_ERROR_BANNER_RECV:
    case LIBSSH2_ERROR_BANNER_SEND:
    case LIBSSH2_ERROR_BAD_SOCKET:
        e = ECONNRESET;
        break;
    case LIBSSH2_ERROR_AUTHENTICATION_FAILED:
    case LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED:
    case LIBSSH2_ERROR_KEYFILE_AUTH_FAILED:
    case LIBSSH2_ERROR_PASSWORD_EXPIRED:
        e = EACCES;
        break;
    case LIBSSH2_ERROR_FILE:
        e = ENOENT;
        break;
    case LIBSSH2_ERROR_ALLOC:
        e = ENOMEM;
        break;
    case LIBSSH2_ERROR_KEX_FAILURE:
    case LIBSSH2_ERROR_KEY_EXCHANGE_FAILURE:
    case LIBSSH2_ERROR_HOSTKEY_INIT:
    case LIBSSH2_ERROR_HOSTKEY_SIGN:
    case LIBSSH2_ERROR_INVALID_MAC:
    case LIBSSH2_ERROR_DECRYPT:
    case LIBSSH2_ERROR_ENCRYPT:
    case LIBSSH2_ERROR_PROTO:
    case LIBSSH2_ERROR_METHOD_NONE:
    case LIBSSH2_ERROR_METHOD_NOT_SUPPORTED:
        e = EPROTO;
        break;
    default:
        e = EIO;
        break;
    }
    if (s)
        libssh2_session_last_error(s, &msg, NULL, 0);
    snprintf(err, errlen, "ssh %s: %s", what, msg && *msg ? msg : strerror(e));
    return -e;
}

/* Wait until the session's socket is ready the way libssh2 needs; LIBSSH2_ERROR_TIMEOUT at
 * the deadline, 0 otherwise. */
static int wait_socket(struct conn *c, int64_t deadline)
{
    int dir = libssh2_session_block_directions(c->s);
    struct pollfd pfd = { .fd = c->sock, .events = 0 };
    int64_t left = deadline - cu_mono_ms();

    if (left <= 0)
        return LIBSSH2_ERROR_TIMEOUT;
    if (dir & LIBSSH2_SESSION_BLOCK_INBOUND)
        pfd.events |= POLLIN;
    if (dir & LIBSSH2_SESSION_BLOCK_OUTBOUND)
        pfd.events |= POLLOUT;
    if (!pfd.events)
        pfd.events = POLLIN;
    if (poll(&pfd, 1, (int)(left > 1000 ? 1000 : left)) < 0 && errno != EINTR)
        return LIBSSH2_ERROR_SOCKET_RECV;
    return 0;
}

/* Retry a libssh2 call that returns an int code while it says EAGAIN. */
#define RETRY(c, deadline, rc, call) \
    while (((rc) = (call)) == LIBSSH2_ERROR_EAGAIN) \
        if (((rc) = wait_socket((c), (deadline))) != 0) \
            break

/* ---- name resolution with a deadline ---- */

/* An asynchronous lookup: freed by whoever drops the last of its two references (the caller,
 * and the completion notice, which comes unless the lookup was cancelled before it ran). */
struct lookup {
    struct gaicb cb;
    struct addrinfo hints;
    char host[MON_HOST_MAX];
    char port[8];
    atomic_int refs;
};

static void lookup_put(struct lookup *l)
{
    if (atomic_fetch_sub(&l->refs, 1) == 1) {
        if (l->cb.ar_result)
            freeaddrinfo(l->cb.ar_result);
        free(l);
    }
}

static void lookup_done(union sigval v)
{
    lookup_put(v.sival_ptr);
}

/* Addresses of host:port, within the deadline. 0, or -errno with the reason in err. */
static int resolve(const char *host, unsigned port, int64_t deadline, struct addrinfo **res,
                   char *err, size_t errlen)
{
    struct lookup *l = calloc(1, sizeof(*l));
    struct gaicb *list[1];
    struct sigevent sev;
    int rc;

    *res = NULL;
    if (!l)
        return -ENOMEM;
    snprintf(l->host, sizeof(l->host), "%s", host);
    snprintf(l->port, sizeof(l->port), "%u", port);
    l->hints.ai_socktype = SOCK_STREAM;
    l->hints.ai_flags = AI_NUMERICSERV;
    l->cb.ar_name = l->host;
    l->cb.ar_service = l->port;
    l->cb.ar_request = &l->hints;
    atomic_init(&l->refs, 2);
    list[0] = &l->cb;
    memset(&sev, 0, sizeof(sev));
    sev.sigev_notify = SIGEV_THREAD;
    sev.sigev_notify_function = lookup_done;
    sev.sigev_value.sival_ptr = l;
    if (getaddrinfo_a(GAI_NOWAIT, list, 1, &sev) != 0) {
        free(l);
        snprintf(err, errlen, "cannot resolve %s", host);
        return -EAGAIN;
    }
    for (;;) {
        int64_t left = deadline - cu_mono_ms();
        struct timespec ts = { .tv_sec = left > 0 ? left / 1000 : 0,
                               .tv_nsec = left > 0 ? (left % 1000) * 1000000 : 0 };

        rc = gai_error(&l->cb);
        if (rc != EAI_INPROGRESS || left <= 0)
            break;
        gai_suspend((const struct gaicb *const *)list, 1, &ts);
    }
    if (rc == EAI_INPROGRESS) {
        if (gai_cancel(&l->cb) == EAI_CANCELED)
            lookup_put(l);          /* no notice will come */
        lookup_put(l);
        snprintf(err, errlen, "resolving %s timed out", host);
        return -ETIMEDOUT;
    }
    if (rc == 0) {
        *res = l->cb.ar_result;
        l->cb.ar_result = NULL;
    } else {
        snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(rc));
    }
    lookup_put(l);
    return rc == 0 ? 0 : -EHOSTUNREACH;
}

/* A connected non-blocking TCP socket to the first address that answers. fd or -errno. */
static int dial(const struct mon_src *src, int64_t deadline, char *err, size_t errlen)
{
    struct addrinfo *res = NULL, *ai;
    int rc, fd = -1, one = 1;

    rc = resolve(src->host, src->port, deadline, &res, err, errlen);
    if (rc < 0)
        return rc;
    rc = -EHOSTUNREACH;
    for (ai = res; ai; ai = ai->ai_next) {
        struct pollfd pfd;
        int64_t left;
        int soerr = 0;
        socklen_t sl = sizeof(soerr);

        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        rc = -errno;
        if (errno == EINPROGRESS) {
            pfd.fd = fd;
            pfd.events = POLLOUT;
            left = deadline - cu_mono_ms();
            if (left > 0 && poll(&pfd, 1, (int)left) == 1 &&
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0) {
                if (soerr == 0)
                    break;
                rc = -soerr;
            } else {
                rc = -ETIMEDOUT;
            }
        }
        close(fd);
        fd = -1;
        if (rc == -ETIMEDOUT)
            break;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, errlen, "ssh connect to %s port %u: %s", src->host, src->port,
                 rc == -ETIMEDOUT ? "timed out" : strerror(-rc));
        return rc;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* ---- host keys ---- */

/* "SHA256:<base64>" of the session's host key, as ssh-keygen -l prints it. */
static void fingerprint(LIBSSH2_SESSION *s, char *buf, size_t len)
{
    const unsigned char *h = (const unsigned char *)libssh2_hostkey_hash(s,
                                 LIBSSH2_HOSTKEY_HASH_SHA256);
    unsigned char b64[64];
    int n;

    if (!h) {
        snprintf(buf, len, "unknown");
        return;
    }
    n = EVP_EncodeBlock(b64, h, 32);
    while (n > 0 && b64[n - 1] == '=')
        n--;
    snprintf(buf, len, "SHA256:%.*s", n, (const char *)b64);
}

static int key_bits(int hostkey_type)
{
    switch (hostkey_type) {
    case LIBSSH2_HOSTKEY_TYPE_RSA:
        return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
    case LIBSSH2_HOSTKEY_TYPE_DSS:
        return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_256:
        return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_384:
        return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_521:
        return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
    case LIBSSH2_HOSTKEY_TYPE_ED25519:
        return LIBSSH2_KNOWNHOST_KEY_ED25519;
    default:
        return -1;
    }
}

/* Append the line for the new key to known_hosts (the other lines are kept as they are). */
static int pin_key(LIBSSH2_KNOWNHOSTS *kh, struct libssh2_knownhost *node)
{
    char line[4096];
    size_t n = 0;
    char *old = NULL;
    size_t oldlen = 0;
    struct mon_buf b = {0};
    int rc;

    if (libssh2_knownhost_writeline(kh, node, line, sizeof(line), &n,
                                    LIBSSH2_KNOWNHOST_FILE_OPENSSH) != 0)
        return -EIO;
    rc = state_read_file(kh_path, &old, &oldlen);
    if (rc < 0 && rc != -ENOENT)
        return rc;
    mon_buf_add(&b, old ? old : "", oldlen);
    if (oldlen && old[oldlen - 1] != '\n')
        mon_buf_add(&b, "\n", 1);
    mon_buf_add(&b, line, n);
    rc = b.failed ? -ENOMEM : state_write_atomic(kh_path, b.data, b.len, 0600);
    free(old);
    free(b.data);
    return rc;
}

/* Trust on first use: a known key must match; an unknown host's key is pinned. 0, -EPERM
 * (changed key, refused) or -errno, with the reason in err. */
static int check_host_key(struct conn *c, const struct mon_src *src, char *err, size_t errlen)
{
    size_t klen = 0;
    int ktype = 0, bits, rc, typemask = LIBSSH2_KNOWNHOST_TYPE_PLAIN |
                                         LIBSSH2_KNOWNHOST_KEYENC_RAW;
    const char *key = libssh2_session_hostkey(c->s, &klen, &ktype);
    struct libssh2_knownhost *node = NULL;
    LIBSSH2_KNOWNHOSTS *kh = NULL;
    char hostport[MON_HOST_MAX + 16], fp[80];
    json_t *d;

    bits = key_bits(ktype);
    if (!key || bits < 0) {
        snprintf(err, errlen, "ssh: unsupported host key type from %s", src->host);
        return -EPROTO;
    }
    fingerprint(c->s, fp, sizeof(fp));
    if (src->port == 22)
        snprintf(hostport, sizeof(hostport), "%s", src->host);
    else
        snprintf(hostport, sizeof(hostport), "[%s]:%u", src->host, src->port);
    pthread_mutex_lock(&kh_lock);
    kh = libssh2_knownhost_init(c->s);
    if (!kh) {
        rc = -ENOMEM;
        goto out;
    }
    if (access(kh_path, F_OK) == 0)
        libssh2_knownhost_readfile(kh, kh_path, LIBSSH2_KNOWNHOST_FILE_OPENSSH);
    /* no key type in the mask: any known key of the host counts, so another type is a change */
    rc = libssh2_knownhost_checkp(kh, src->host, (int)src->port, key, klen, typemask, NULL);
    if (rc == LIBSSH2_KNOWNHOST_CHECK_MATCH) {
        rc = 0;
    } else if (rc == LIBSSH2_KNOWNHOST_CHECK_MISMATCH) {
        snprintf(err, errlen, "ssh: host key of %s changed (now %s); refused. If the change is "
                 "expected, remove its line from %s", hostport, fp, kh_path);
        if (!c->mismatch_logged) {
            d = json_pack("{s:s,s:s,s:s}", "target", src->name, "host", hostport,
                          "fingerprint", fp);
            audit_log_event("monitor_host_key_mismatch", "failure",
                            "Refused a changed SSH host key", d);
            json_decref(d);
            c->mismatch_logged = true;
        }
        rc = -EPERM;
    } else if (rc == LIBSSH2_KNOWNHOST_CHECK_NOTFOUND) {
        rc = libssh2_knownhost_addc(kh, hostport, NULL, key, klen, "conduitfs", 9,
                                    typemask | bits, &node);
        rc = rc == 0 ? pin_key(kh, node) : -EIO;
        if (rc == 0) {
            d = json_pack("{s:s,s:s,s:s}", "target", src->name, "host", hostport,
                          "fingerprint", fp);
            audit_log_event("monitor_host_key_added", "success",
                            "Pinned the SSH host key of a new host (trust on first use)", d);
            json_decref(d);
        } else {
            snprintf(err, errlen, "ssh: cannot record the host key of %s in %s: %s",
                     hostport, kh_path, strerror(-rc));
        }
    } else {
        snprintf(err, errlen, "ssh: cannot check the host key of %s", hostport);
        rc = -EIO;
    }
out:
    if (kh)
        libssh2_knownhost_free(kh);
    pthread_mutex_unlock(&kh_lock);
    return rc;
}

/* ---- sessions ---- */

static void conn_close(struct conn *c)
{
    if (c->s) {
        libssh2_session_disconnect(c->s, "bye");
        shutdown(c->sock, SHUT_RDWR);
        libssh2_session_set_blocking(c->s, 1);
        libssh2_session_free(c->s);
        c->s = NULL;
    }
    if (c->sock >= 0)
        close(c->sock);
    c->sock = -1;
    c->ep[0] = '\0';
}

/* The key a target's writer named, read through the key rules (keys.c) into *pem; the daemon's
 * own key is left to libssh2 to read by name (*pem NULL). 0 or -errno, reason in err. */
static int load_key(const struct mon_src *src, char **pem, size_t *len, char *err,
                    size_t errlen)
{
    int rc;

    *pem = NULL;
    *len = 0;
    if (src->key_owner == MON_KEY_DAEMON) {
        if (access(src->key, R_OK) == 0)
            return 0;
        rc = -errno;
        snprintf(err, errlen, "ssh key %s is not readable: %s", src->key, strerror(-rc));
        return rc;
    }
    rc = mon_keys_load(src->key, src->key_owner, pem, len);
    if (rc < 0)
        snprintf(err, errlen, "ssh key %s refused: %s", src->key,
                 rc == -EACCES ? "not in an allowed place (see docs/security.md)" :
                 strerror(-rc));
    return rc;
}

static void wipe_key(char *pem, size_t len)
{
    if (pem) {
        OPENSSL_cleanse(pem, len);
        free(pem);
    }
}

/* Connect, check the host key and log in with the key file. 0 or -errno, reason in err. */
static int conn_open(struct conn *c, const struct mon_src *src, const char *ep, char *err,
                     size_t errlen)
{
    int64_t deadline = cu_mono_ms() + MON_CONNECT_MS;
    char *pem = NULL;
    size_t pemlen = 0;
    int rc;

    rc = load_key(src, &pem, &pemlen, err, errlen);
    if (rc < 0)
        return rc;
    c->sock = dial(src, deadline, err, errlen);
    if (c->sock < 0) {
        rc = c->sock;
        c->sock = -1;
        wipe_key(pem, pemlen);
        return rc;
    }
    c->s = libssh2_session_init();
    if (!c->s) {
        conn_close(c);
        wipe_key(pem, pemlen);
        return -ENOMEM;
    }
    libssh2_session_set_blocking(c->s, 0);
    RETRY(c, deadline, rc, libssh2_session_handshake(c->s, c->sock));
    if (rc != 0) {
        rc = ssh_error(c->s, rc, "handshake", err, errlen);
        goto fail;
    }
    rc = check_host_key(c, src, err, errlen);
    if (rc < 0)
        goto fail;
    if (pem) {
        RETRY(c, deadline, rc, libssh2_userauth_publickey_frommemory(c->s, src->user,
              strlen(src->user), NULL, 0, pem, pemlen, NULL));
    } else {
        RETRY(c, deadline, rc, libssh2_userauth_publickey_fromfile_ex(c->s, src->user,
              (unsigned)strlen(src->user), NULL, src->key, NULL));
    }
    if (rc != 0) {
        rc = ssh_error(c->s, rc, "login", err, errlen);
        goto fail;
    }
    snprintf(c->ep, sizeof(c->ep), "%s", ep);
    wipe_key(pem, pemlen);
    return 0;
fail:
    conn_close(c);
    wipe_key(pem, pemlen);
    return rc;
}

/* Run cmd on an open session: stdout into *out (at most max), stderr dropped, exit status. */
static int run_cmd(struct conn *c, const char *cmd, int64_t deadline, size_t max,
                   struct mon_buf *b, int *status, char *err, size_t errlen)
{
    LIBSSH2_CHANNEL *ch = NULL;
    char buf[16384];
    int rc;

    for (;;) {
        ch = libssh2_channel_open_session(c->s);
        if (ch)
            break;
        rc = libssh2_session_last_errno(c->s);
        if (rc != LIBSSH2_ERROR_EAGAIN || (rc = wait_socket(c, deadline)) != 0)
            return ssh_error(c->s, rc, "open channel", err, errlen);
    }
    RETRY(c, deadline, rc, libssh2_channel_process_startup(ch, "exec", 4, cmd,
                                                           (unsigned)strlen(cmd)));
    if (rc != 0) {
        rc = ssh_error(c->s, rc, "exec", err, errlen);
        goto out;
    }
    for (;;) {
        ssize_t n = libssh2_channel_read(ch, buf, sizeof(buf));
        ssize_t e = libssh2_channel_read_stderr(ch, buf, sizeof(buf));

        if (n > 0) {
            if (b->len + (size_t)n > max) {
                snprintf(err, errlen, "ssh: command output over %zu bytes", max);
                rc = -EFBIG;
                goto out;
            }
            mon_buf_add(b, buf, (size_t)n);
        }
        if ((n < 0 && n != LIBSSH2_ERROR_EAGAIN) || (e < 0 && e != LIBSSH2_ERROR_EAGAIN)) {
            rc = ssh_error(c->s, (int)(n < 0 && n != LIBSSH2_ERROR_EAGAIN ? n : e), "read",
                           err, errlen);
            goto out;
        }
        if (n > 0 || e > 0)
            continue;
        if (libssh2_channel_eof(ch))
            break;
        if ((rc = wait_socket(c, deadline)) != 0) {
            rc = ssh_error(c->s, rc, "command", err, errlen);
            goto out;
        }
    }
    RETRY(c, deadline, rc, libssh2_channel_close(ch));
    if (rc == 0)
        RETRY(c, deadline, rc, libssh2_channel_wait_closed(ch));
    if (rc != 0) {
        rc = ssh_error(c->s, rc, "close channel", err, errlen);
        goto out;
    }
    *status = libssh2_channel_get_exit_status(ch);
    rc = b->failed ? -ENOMEM : 0;
out:
    /* after a failure the session is closed by the caller, and the channel with it */
    if (rc == 0)
        RETRY(c, deadline, rc, libssh2_channel_free(ch));
    return rc < 0 ? rc : 0;
}

/* Free pooled sessions nobody holds that have been idle too long, or every unheld one. */
static void reap(bool all)
{
    struct conn **pp = &pool, *c;
    int64_t now = cu_mono_ms();

    while ((c = *pp) != NULL) {
        if (c->refs == 0 && (all || now - c->last_used > IDLE_MS)) {
            *pp = c->next;
            conn_close(c);
            pthread_mutex_destroy(&c->lock);
            free(c);
        } else {
            pp = &c->next;
        }
    }
}

/* The pool entry of name, created if missing, with a reference taken. NULL without memory. */
static struct conn *conn_get(const char *name)
{
    struct conn *c;

    pthread_mutex_lock(&pool_lock);
    reap(false);
    for (c = pool; c; c = c->next)
        if (strcmp(c->name, name) == 0)
            break;
    if (!c && (c = calloc(1, sizeof(*c))) != NULL) {
        snprintf(c->name, sizeof(c->name), "%s", name);
        pthread_mutex_init(&c->lock, NULL);
        c->sock = -1;
        c->next = pool;
        pool = c;
    }
    if (c) {
        c->refs++;
        c->last_used = cu_mono_ms();
    }
    pthread_mutex_unlock(&pool_lock);
    return c;
}

static void conn_put(struct conn *c)
{
    pthread_mutex_lock(&pool_lock);
    c->refs--;
    c->last_used = cu_mono_ms();
    pthread_mutex_unlock(&pool_lock);
}

/* Run cmd on src's pooled session (opened on demand). 0 or -errno with the reason in err; a
 * reused session that fails is replaced once by a new one. */
int mon_ssh_run(const struct mon_src *src, const char *cmd, int timeout_ms, size_t max,
                char **out, size_t *len, int *status, char *err, size_t errlen)
{
    char ep[sizeof(((struct conn *)0)->ep)];
    struct mon_buf b = {0};
    struct conn *c;
    int rc = -EIO;

    *out = NULL;
    *len = 0;
    *status = -1;
    if (!ready)
        return -ENODEV;
    snprintf(ep, sizeof(ep), "%s|%u|%s|%s|%ld", src->host, src->port, src->user, src->key,
             src->key_owner);
    c = conn_get(src->name);
    if (!c)
        return -ENOMEM;
    pthread_mutex_lock(&c->lock);
    if (c->s && strcmp(c->ep, ep) != 0)
        conn_close(c);
    if (!c->s && c->fail_ms && cu_mono_ms() - c->fail_ms < FAIL_MS && strcmp(c->fail_ep, ep) == 0) {
        /* the login that just failed: the same answer, without waiting for it again */
        rc = c->fail_rc;
        snprintf(err, errlen, "%s", c->fail_err);
        goto out;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        bool fresh = !c->s;

        if (fresh && (rc = conn_open(c, src, ep, err, errlen)) < 0) {
            snprintf(c->fail_ep, sizeof(c->fail_ep), "%s", ep);
            snprintf(c->fail_err, sizeof(c->fail_err), "%s", err);
            c->fail_rc = rc;
            c->fail_ms = cu_mono_ms();
            break;
        }
        c->fail_ms = 0;
        b.len = 0;
        b.failed = false;
        mon_buf_add(&b, "", 0);
        rc = run_cmd(c, cmd, cu_mono_ms() + timeout_ms, max, &b, status, err, errlen);
        if (rc == 0)
            break;
        conn_close(c);
        if (fresh || rc == -ETIMEDOUT || rc == -EFBIG)
            break;
    }
out:
    pthread_mutex_unlock(&c->lock);
    conn_put(c);
    if (rc == 0) {
        *out = b.data;
        *len = b.len;
        return 0;
    }
    free(b.data);
    return rc;
}

/* Close name's pooled session now if nobody holds it (else it is replaced on next use). */
void mon_ssh_forget(const char *name)
{
    struct conn *c;

    pthread_mutex_lock(&pool_lock);
    for (c = pool; c; c = c->next) {
        if (strcmp(c->name, name) != 0)
            continue;
        /* a holder finishes its command; the session is closed now if unheld, else it is
         * replaced on its next use because its endpoint no longer matches */
        if (c->refs == 0)
            conn_close(c);
    }
    pthread_mutex_unlock(&pool_lock);
}

/* Remember where host keys are pinned and initialize libssh2. 0 or -errno. */
int mon_ssh_init(const char *known_hosts)
{
    if (snprintf(kh_path, sizeof(kh_path), "%s", known_hosts) >= (int)sizeof(kh_path))
        return -ENAMETOOLONG;
    if (libssh2_init(0) != 0)
        return -EIO;
    ready = true;
    return 0;
}

/* Close every pooled session and release libssh2. */
void mon_ssh_fini(void)
{
    if (!ready)
        return;
    pthread_mutex_lock(&pool_lock);
    reap(true);
    pthread_mutex_unlock(&pool_lock);
    libssh2_exit();
    ready = false;
}
