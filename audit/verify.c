/* verify.c: checking audit.log against the capsule chain (line N is capsule N's outcome.result),
 * its JSON report, and `conduitfs verify`, which runs it read-only on a state directory. */
#include "audit/audit.h"
#include "audit/trail.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/canon.h"
#include "util/util.h"

#define CHUNK 65536
#define LINE_LIMIT (64L << 20)
#define EXIT_INTACT 0
#define EXIT_BROKEN 1
#define EXIT_USAGE 2

void audit_lines_init(struct audit_lines *r, int fd, off_t end)
{
    memset(r, 0, sizeof(*r));
    r->fd = fd;
    r->end = fd < 0 ? 0 : end;
}

/* Read more of the file into the buffer, growing it when a line fills it. 1, 0 at end, -errno. */
static int lines_fill(struct audit_lines *r)
{
    size_t want;
    ssize_t got;
    char *nb;

    if (r->pos >= r->end)
        return 0;
    if (r->start > 0 && r->start == r->len)
        r->start = r->len = 0;
    if (r->start > 0 && r->len + CHUNK > r->cap) {
        memmove(r->buf, r->buf + r->start, r->len - r->start);
        r->len -= r->start;
        r->start = 0;
    }
    if (r->len + CHUNK > r->cap) {
        if (r->cap >= (size_t)LINE_LIMIT)
            return -EFBIG;
        nb = realloc(r->buf, r->cap + CHUNK);
        if (!nb)
            return -ENOMEM;
        r->buf = nb;
        r->cap += CHUNK;
    }
    want = r->cap - r->len;
    if ((off_t)want > r->end - r->pos)
        want = (size_t)(r->end - r->pos);
    do {
        got = pread(r->fd, r->buf + r->len, want, r->pos);
    } while (got < 0 && errno == EINTR);
    if (got < 0)
        return -errno;
    if (got == 0) {
        r->end = r->pos;   /* the file shrank under us: stop here */
        return 0;
    }
    r->len += (size_t)got;
    r->pos += got;
    return 1;
}

int audit_lines_next(struct audit_lines *r, const char **line, size_t *len)
{
    char *nl;
    size_t scanned = 0;
    int rc;

    for (;;) {
        nl = r->len > r->start + scanned ?
             memchr(r->buf + r->start + scanned, '\n', r->len - r->start - scanned) : NULL;
        if (nl)
            break;
        scanned = r->len - r->start;
        rc = lines_fill(r);
        if (rc <= 0)
            return rc;
    }
    *line = r->buf + r->start;
    *len = (size_t)(nl - (r->buf + r->start));
    r->good += (off_t)*len + 1;
    r->start += *len + 1;
    r->n++;
    return 1;
}

/* Whether bytes without a final newline remain after the last complete line (call after
 * audit_lines_next returned 0). */
static int audit_lines_partial(const struct audit_lines *r)
{
    return r->len > r->start;
}

void audit_lines_free(struct audit_lines *r)
{
    free(r->buf);
    r->buf = NULL;
    r->cap = r->start = r->len = 0;
}

/* The state of one check run, shared by the store's hooks. */
struct check_ctx {
    struct audit_lines rd;
    int fd;
    unsigned flags;
    long long from;     /* the first capsule checked: line from + 1 ... */
    off_t start;        /* ... which starts at this offset of the log */
    int err;            /* fstat of the log failed */
    int short_log;
    int length;         /* the log ended before the chain did */
    int portable;       /* warn on stderr about capsules outside the portable subset */
    long long outside;  /* capsules found outside it */
};

/* Capsules outside the portable subset that `conduitfs verify` names one by one; the rest are
 * only counted. */
#define PORTABLE_WARN_MAX 100

/* `conduitfs verify`: a capsule sealed outside the portable subset (before conduitfs refused
 * such values) verifies under the Python reference but not under the TypeScript one: a warning,
 * not a failure. */
static void warn_portable(struct check_ctx *x, long long seq, const json_t *capsule)
{
    char why[400];

    if (audit_canon_portable(capsule, AUDIT_CANON_CAPSULE, "capsule", why, sizeof(why)) !=
        -EINVAL)
        return;
    if (++x->outside <= PORTABLE_WARN_MAX)
        fprintf(stderr, "conduitfs verify: warning: sequence %lld is outside the portable "
                "subset: %s\n", seq, why);
}

static void on_snapshot(void *arg, const struct audit_verify_report *r)
{
    struct check_ctx *x = arg;
    struct stat sb;

    (void)r;
    if (x->fd >= 0 && fstat(x->fd, &sb) < 0) {
        x->err = -errno;
        return;
    }
    audit_lines_init(&x->rd, x->fd, x->fd >= 0 ? sb.st_size : 0);
    if (x->start > 0 && (x->fd < 0 || x->start > sb.st_size)) {
        x->err = -ESTALE;
        return;
    }
    x->rd.pos = x->rd.good = x->start;
    x->rd.n = x->from;
}

/* Compare one line with a capsule's outcome.result, both canonical. 0 or -EBADMSG/-errno. */
static int compare_line(const char *line, size_t len, long long lineno, const json_t *capsule,
                        char *why, size_t whylen)
{
    const json_t *result = json_object_get(json_object_get(capsule, "outcome"), "result");
    char *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    json_error_t jerr;
    json_t *v;
    int rc;

    v = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!v)
        return cu_errf(-EBADMSG, why, whylen, "audit.log line %lld is not JSON: %s", lineno,
                       jerr.text);
    rc = audit_canon(v, 0, &a, &alen);
    if (rc == 0)
        rc = result ? audit_canon(result, 0, &b, &blen) : -EINVAL;
    if (rc == -ENOMEM)
        cu_err(why, whylen, "out of memory");
    else if (rc < 0 || alen != blen || memcmp(a, b, alen) != 0)
        rc = cu_errf(-EBADMSG, why, whylen,
                     "audit.log line %lld differs from the capsule's outcome.result", lineno);
    free(a);
    free(b);
    json_decref(v);
    return rc;
}

static int on_row(void *arg, long long seq, const json_t *capsule, char *why, size_t whylen)
{
    struct check_ctx *x = arg;
    const char *line;
    size_t len;
    int rc;

    if (x->err == -ESTALE)
        return cu_errf(x->err, why, whylen, "audit.log is shorter than its checkpoint");
    if (x->err)
        return cu_errf(x->err, why, whylen, "cannot stat audit.log: %s", strerror(-x->err));
    if (x->portable)
        warn_portable(x, seq, capsule);
    if (x->short_log)
        return 0;
    rc = audit_lines_next(&x->rd, &line, &len);
    if (rc < 0)
        return cu_errf(rc, why, whylen, "cannot read audit.log line %lld: %s", seq + 1,
                       strerror(-rc));
    if (rc == 0) {
        if (x->flags & AUDIT_CHECK_REPAIR) {
            x->short_log = 1;
            return 0;
        }
        x->length = 1;
        if (audit_lines_partial(&x->rd))
            return cu_errf(-EBADMSG, why, whylen,
                           "audit.log line %lld is incomplete (no newline)", seq + 1);
        return cu_errf(-EBADMSG, why, whylen, "audit.log ends after %lld lines; this capsule has "
                       "no line", seq);
    }
    return compare_line(line, len, seq + 1, capsule, why, whylen);
}

/* After a walk that found every capsule intact: the log must hold nothing more. */
static int check_tail(struct check_ctx *x, struct audit_check *c)
{
    const char *line;
    size_t len;
    int rc;

    if (x->short_log) {
        c->log_short = 1;
        return 0;
    }
    rc = audit_lines_next(&x->rd, &line, &len);
    if (rc < 0)
        return cu_errf(rc, c->r.reason, sizeof(c->r.reason), "cannot read audit.log: %s",
                       strerror(-rc));
    c->r.failed_seq = c->r.entries;
    c->log_length = 1;
    if (rc > 0)
        return cu_errf(-EBADMSG, c->r.reason, sizeof(c->r.reason),
                       "audit.log line %lld has no capsule (the chain holds %lld)",
                       c->r.entries + 1, c->r.entries);
    if (audit_lines_partial(&x->rd))
        return cu_errf(-EBADMSG, c->r.reason, sizeof(c->r.reason),
                       "audit.log ends in an incomplete line %lld that has no capsule",
                       c->r.entries + 1);
    c->r.failed_seq = -1;
    c->log_length = 0;
    return 0;
}

/* audit_check_run_from; with portable, warn about capsules outside the portable subset and
 * count them into *outside. */
static int check_run(struct audit_store *st, int log_fd, unsigned flags, long long from,
                     const char *prev_hash, off_t log_off, struct audit_check *c, int portable,
                     long long *outside)
{
    struct check_ctx x = { .fd = log_fd, .flags = flags, .from = from, .start = log_off,
                           .portable = portable };
    struct audit_verify_hooks h = { .snapshot = on_snapshot, .row = on_row, .arg = &x };
    int rc;

    memset(c, 0, sizeof(*c));
    audit_lines_init(&x.rd, -1, 0);
    if (from < 0 || log_off < 0 || (from == 0) != (log_off == 0)) {
        c->r.failed_seq = -1;
        c->r.head_seq = -1;
        return cu_errf(-EINVAL, c->r.reason, sizeof(c->r.reason),
                       "bad starting point for verify");
    }
    rc = audit_store_verify_from(st, from, prev_hash, &h, &c->r);
    if (rc == 0 && x.err)
        rc = cu_errf(x.err, c->r.reason, sizeof(c->r.reason), "cannot stat audit.log: %s",
                     strerror(-x.err));
    if (rc == 0)
        rc = check_tail(&x, c);
    c->log_lines = x.rd.n;
    c->log_good = x.rd.good;
    c->log_length |= x.length;
    audit_lines_free(&x.rd);
    if (outside)
        *outside = x.outside;
    return rc;
}

int audit_check_run_from(struct audit_store *st, int log_fd, unsigned flags, long long from,
                         const char *prev_hash, off_t log_off, struct audit_check *c)
{
    return check_run(st, log_fd, flags, from, prev_hash, log_off, c, 0, NULL);
}

int audit_check_run(struct audit_store *st, int log_fd, unsigned flags, struct audit_check *c)
{
    return audit_check_run_from(st, log_fd, flags, 0, NULL, 0, c);
}

void audit_check_reason(const struct audit_check *c, char *buf, size_t len)
{
    if (c->r.failed_seq >= 0)
        snprintf(buf, len, "sequence %lld: %s", c->r.failed_seq, c->r.reason);
    else
        snprintf(buf, len, "%s", c->r.reason);
}

char *audit_check_json(const struct audit_check *c, int rc, size_t *len)
{
    json_t *err = json_null(), *o;
    char *out;

    if (rc < 0) {
        err = json_pack("{s:o, s:s}", "sequence",
                        c->r.failed_seq >= 0 ? json_integer(c->r.failed_seq) : json_null(),
                        "reason", c->r.reason);
        if (!err)
            return NULL;
    }
    o = json_pack("{s:b, s:I, s:o, s:o, s:s, s:o}", "ok", rc == 0,
                  "entries", (json_int_t)c->r.entries,
                  "head_sequence", c->r.head_seq >= 0 ? json_integer(c->r.head_seq) : json_null(),
                  "head_hash", c->r.head_hash[0] ? json_string(c->r.head_hash) : json_null(),
                  "checked", "cryptographic", "first_error", err);
    out = cu_json_line(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII, len);
    json_decref(o);
    return out;
}

/* ---- conduitfs verify ---- */

static void verify_usage(FILE *f)
{
    fprintf(f, "usage: conduitfs verify [--state DIR] [--pubkey HEX]\n"
               "\n"
               "Verifies the audit trail of a state directory (default ~/.config/"
               "$CONDUIT_APP_NAME,\n"
               "CONDUIT_APP_NAME defaults to qp-conduit) without mounting and without changing "
               "it:\n"
               "every capsule's structure, sequence, linkage, hash and Ed25519 signature, and "
               "that\n"
               "audit.log line N is capsule N's outcome.result. --pubkey pins the signing key\n"
               "(as audit/pubkey shows it); the key file is then not read, so a copy of\n"
               "capsules.db and audit.log is enough. Also checks that services.json is what\n"
               "the chain's newest registry mark says the last change left. A capsule that\n"
               "holds a number or keys outside the portable subset (sealed before conduitfs\n"
               "refused them; the TypeScript reference canonicalizes it differently) is named\n"
               "in a warning on stderr. Exits 0 when intact, 1 when not, 2 on usage errors.\n");
}

static int usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "conduitfs verify: %s%s (see conduitfs verify --help)\n", what, arg);
    return EXIT_USAGE;
}

/* The default state directory. 0 or an exit status after printing why. */
static int default_state(char *buf, size_t len)
{
    const char *app = getenv("CONDUIT_APP_NAME"), *home = getenv("HOME");
    int n;

    if (!app || !*app)
        app = "qp-conduit";
    if (strchr(app, '/') || strcmp(app, ".") == 0 || strcmp(app, "..") == 0)
        return usage_error("CONDUIT_APP_NAME is not a plain name: ", app);
    if (!home || !*home)
        return usage_error("HOME is not set; give --state DIR", "");
    n = snprintf(buf, len, "%s/.config/%s", home, app);
    if (n < 0 || (size_t)n >= len)
        return usage_error("state directory path too long", "");
    return 0;
}

/* Verify the state directory dir; print the outcome. Returns the exit status. */
static int verify_dir(const char *dir, const char *pin)
{
    struct audit_store *st = NULL;
    struct audit_check c;
    char path[PATH_MAX], err[512], why[600];
    int fd = -1, rc, tries, status = EXIT_BROKEN;
    long long outside = 0, first_outside = 0;

    /* with a pinned key the key file is not read at all: every seal is checked against the pin */
    rc = audit_store_open(dir, &(const struct audit_store_opts){
                              .hostname = "verify", .flags = AUDIT_STORE_READONLY, .pubhex = pin },
                          &st, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "conduitfs verify: cannot verify: %s\n", err);
        goto out;
    }
    if (snprintf(path, sizeof(path), "%s/audit.log", dir) >= (int)sizeof(path)) {
        fprintf(stderr, "conduitfs verify: cannot verify: path too long\n");
        goto out;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno != ENOENT) {
        fprintf(stderr, "conduitfs verify: cannot verify: %s: %s\n", path, strerror(errno));
        goto out;
    }
    /* A daemon running on dir may be between sealing a batch and appending its lines: a log
     * that is only too short or too long gets two more looks. */
    for (tries = 0;; tries++) {
        rc = check_run(st, fd, 0, 0, NULL, 0, &c, tries == 0, &outside);
        if (tries == 0)
            first_outside = outside;
        if (rc != -EBADMSG || !c.log_length || tries == 2)
            break;
        usleep(100 * 1000);
    }
    if (rc < 0) {
        audit_check_reason(&c, why, sizeof(why));
        fprintf(stderr, "conduitfs verify: %s%s\n", rc == -EBADMSG ? "" : "cannot verify: ",
                why);
        goto out;
    }
    if (first_outside > PORTABLE_WARN_MAX)
        fprintf(stderr, "conduitfs verify: warning: %lld more capsules outside the portable "
                "subset not named here\n", first_outside - PORTABLE_WARN_MAX);
    if (first_outside)
        fprintf(stderr, "conduitfs verify: warning: %lld of %lld capsules hold values outside "
                "the portable subset (see \"Portable numbers and keys in audit details\" in "
                "docs/filesystem.md)\n", first_outside, c.r.entries);
    if (c.r.entries)
        printf("ok: %lld entries, head sequence %lld, hash %s, key %s\n", c.r.entries,
               c.r.head_seq, c.r.head_hash, audit_store_pubkey_hex(st));
    else
        printf("ok: 0 entries, key %s\n", audit_store_pubkey_hex(st));
    status = EXIT_INTACT;
out:
    if (fd >= 0)
        close(fd);
    audit_store_close(st);
    return status;
}

int audit_verify_main(int argc, char **argv)
{
    const char *state = NULL, *pin = NULL;
    char dflt[PATH_MAX];
    int i, rc;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            verify_usage(stdout);
            return EXIT_INTACT;
        } else if (strcmp(a, "--state") == 0 || strcmp(a, "--pubkey") == 0) {
            if (i + 1 >= argc)
                return usage_error("option needs a value: ", a);
            if (a[2] == 's')
                state = argv[++i];
            else
                pin = argv[++i];
        } else if (strncmp(a, "--state=", 8) == 0) {
            state = a + 8;
        } else if (strncmp(a, "--pubkey=", 9) == 0) {
            pin = a + 9;
        } else if (a[0] == '-') {
            return usage_error("unknown option ", a);
        } else {
            return usage_error("unexpected argument ", a);
        }
    }
    if (state && !*state)
        return usage_error("--state needs a directory", "");
    if (pin && (strlen(pin) != AUDIT_PUB_HEX - 1 || strspn(pin, "0123456789abcdef") !=
                AUDIT_PUB_HEX - 1))
        return usage_error("--pubkey needs 64 lowercase hex characters, not ", pin);
    if (!state) {
        rc = default_state(dflt, sizeof(dflt));
        if (rc)
            return rc;
        state = dflt;
    }
    return verify_dir(state, pin);
}
