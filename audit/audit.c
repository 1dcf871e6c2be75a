/* audit.c: the audit module's face (audit.h), the audit trail of a running daemon: every entry
 * is sealed into the capsule chain first and then appended to state/audit.log by the batch
 * leader, in sequence order; repair and checks at mount; what the audit/ tree reads.
 * It is one concern, the open trail, and long because of it: opening it (repair, adopting an
 * older log, the checkpoint), appending to it and serving audit/ (read, head, the shared verify
 * run) all work on the same private state under one lock (the store, audit.log's descriptor and
 * line count, the pending checkpoint), which stays in this file rather than in a header. */
#include "audit/audit.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "audit/canon.h"
#include "audit/checkpoint.h"
#include "audit/entry.h"
#include "audit/store.h"
#include "audit/trail.h"
#include "util/util.h"

#define LOG_NAME "audit.log"

/* What one append hands the batch leader: its lines, ready to write. */
struct pending {
    const char *text;
    size_t len;
    long long lines;
};

/* life guards store, store_pid, log_fd and state_dir. log_lines, log_size and log_dirty belong
 * to the commit hook, which only the batch leader runs (and audit_open before anyone else). */
static pthread_mutex_t life = PTHREAD_MUTEX_INITIALIZER;
static struct audit_store *store;
static pid_t store_pid;
static int log_fd = -1;
static char state_dir[PATH_MAX];
static const struct audit_signer *signer; /* NULL: the key is loaded into this process */
static long long log_lines;     /* complete lines in audit.log: the next line's sequence */
static off_t log_size;          /* their bytes */
static int log_dirty;           /* a failed append may have left bytes after log_size */

/* Write all of buf at the end of the log. 0 or -errno. */
static int write_all(const char *buf, size_t len)
{
    return cu_write_fd(log_fd, buf, len);
}

/* Append whole lines and account for them; on failure cut the log back to its last good line.
 * 0 or -errno. */
static int append_text(const char *text, size_t len, long long lines)
{
    int rc = write_all(text, len);

    if (rc < 0) {
        log_dirty = 1;
        if (ftruncate(log_fd, log_size) == 0)
            log_dirty = 0;
        return rc;
    }
    log_size += (off_t)len;
    log_lines += lines;
    return 0;
}

/* A line rebuilt from a capsule's outcome.result. */
static int rebuild_one(long long seq, const json_t *result, void *arg)
{
    long long until = *(long long *)arg;
    size_t len;
    char *line;
    int rc;

    if (seq >= until)
        return 1;
    if (seq != log_lines) {
        syslog(LOG_ERR, "audit: rebuilding audit.log line %lld, got capsule %lld",
               log_lines + 1, seq);
        return -EIO;
    }
    line = result ? audit_entry_line(result, &len) : NULL;
    if (!line) {
        syslog(LOG_ERR, "audit: capsule %lld holds no audit entry to rebuild its line", seq);
        return -EIO;
    }
    rc = append_text(line, len, 1);
    free(line);
    return rc;
}

/* Append the lines of the capsules from log_lines up to (not including) until, rebuilt from
 * their outcome.result, and make them durable. 0 or -errno. */
static int rebuild_lines(struct audit_store *st, long long until)
{
    long long from = log_lines;
    int rc;

    rc = audit_store_foreach_result_from(st, from, rebuild_one, &until);
    if (rc > 0)
        rc = 0;
    if (rc == 0 && log_lines > from && fdatasync(log_fd) < 0)
        rc = -errno;
    if (log_lines > from)
        syslog(LOG_WARNING, "audit: rebuilt audit.log lines %lld to %lld from their capsules",
               from + 1, log_lines);
    return rc;
}

/* The commit hook: the batch's capsules are committed; append their lines in sequence order
 * (after any a failed append left out) before the writers return. No fdatasync: the capsules
 * are the durable record, and lines a crash takes from the end of the log are rebuilt from
 * them at the next mount (a file system keeps a prefix of what was appended); this halves the
 * fsyncs per append. The log is synced after a rebuild and at close. */
static int on_commit(void *arg, long long first_seq, void *const *tags, size_t ntags)
{
    struct audit_store *st = arg;
    size_t i;
    int rc = 0;

    if (log_dirty) {
        if (ftruncate(log_fd, log_size) < 0)
            return -errno;
        log_dirty = 0;
    }
    if (log_lines < first_seq)
        rc = rebuild_lines(st, first_seq);
    if (rc == 0 && log_lines != first_seq) {
        syslog(LOG_ERR, "audit: audit.log holds %lld lines, the batch starts at sequence %lld",
               log_lines, first_seq);
        rc = -EIO;
    }
    for (i = 0; rc == 0 && i < ntags; i++) {
        const struct pending *p = tags[i];

        rc = append_text(p->text, p->len, p->lines);
    }
    if (rc < 0)
        syslog(LOG_ERR, "audit: appending to audit.log failed: %s; the sealed entries will be "
               "appended later", strerror(-rc));
    return rc;
}

/* ---- adopting a log written before the chain existed ---- */

struct adopt {
    struct audit_lines rd;
    long long lineno;
    char why[256];
};

static int adopt_next(void *arg, json_t **entry, int *system_event)
{
    struct adopt *a = arg;
    const char *line, *user;
    json_error_t jerr;
    size_t len;
    int rc;

    rc = audit_lines_next(&a->rd, &line, &len);
    if (rc <= 0)
        return rc;
    a->lineno++;
    *entry = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(*entry)) {
        json_decref(*entry);
        *entry = NULL;
        snprintf(a->why, sizeof(a->why), "audit.log line %lld is not a JSON object",
                 a->lineno);
        return -EINVAL;
    }
    user = json_string_value(json_object_get(*entry, "user"));
    *system_event = user && strcmp(user, "system") == 0;
    return 1;
}

/* Seal the lines of an audit.log that predates the chain, in one transaction; a torn last line
 * (no newline) was never acknowledged and is cut. 0 or -errno with err filled. */
static int adopt_log(struct audit_store *st, off_t size, char *err, size_t errlen)
{
    struct adopt a = { .lineno = 0 };
    long long n = 0;
    int rc;

    audit_lines_init(&a.rd, log_fd, size);
    rc = audit_store_import(st, adopt_next, &a, &n);
    if (rc < 0) {
        if (!a.why[0])
            snprintf(a.why, sizeof(a.why), "audit.log line %lld cannot be sealed: %s",
                     a.lineno, strerror(-rc));
        snprintf(err, errlen, "cannot seal the existing %s/%s: %s", state_dir, LOG_NAME, a.why);
        goto out;
    }
    log_lines = n;
    log_size = a.rd.good;
    if (a.rd.good < size) {
        syslog(LOG_WARNING, "audit: cut a torn last line from audit.log (%lld bytes)",
               (long long)(size - a.rd.good));
        if (ftruncate(log_fd, a.rd.good) < 0 || fdatasync(log_fd) < 0) {
            rc = -errno;
            snprintf(err, errlen, "cannot cut the torn last line of %s/%s: %s", state_dir,
                     LOG_NAME, strerror(errno));
            goto out;
        }
    }
    syslog(LOG_NOTICE, "audit: sealed the %lld lines of an existing audit.log", n);
out:
    audit_lines_free(&a.rd);
    return rc;
}

/* ---- the verified checkpoint ---- */

static pthread_mutex_t cp_lock = PTHREAD_MUTEX_INITIALIZER;

/* Record that capsules 0..seq (the last with hash) and the first log_off bytes of audit.log,
 * which hold their lines, were found intact; the log is synced first, so that the checkpoint
 * never covers bytes a crash could take. Best effort: a failure is logged. */
static void save_checkpoint(struct audit_store *st, long long seq, const char *hash,
                            off_t log_off)
{
    struct audit_checkpoint cp = { .seq = seq, .log_off = log_off };
    int rc;

    if (seq < 0 || log_off <= 0)
        return;
    snprintf(cp.hash, sizeof(cp.hash), "%s", hash);
    pthread_mutex_lock(&cp_lock);
    rc = fdatasync(log_fd) < 0 ? -errno : 0;
    if (rc == 0)
        rc = audit_checkpoint_digest(log_fd, log_off, cp.log_sha256);
    if (rc == 0)
        rc = audit_checkpoint_save(state_dir, st, &cp);
    pthread_mutex_unlock(&cp_lock);
    if (rc < 0)
        syslog(LOG_WARNING, "audit: cannot write the verified checkpoint: %s", strerror(-rc));
}

/* The check at mount from a verified checkpoint: the capsules and log lines after it are
 * verified, those before it only tied to it (the hash of its capsule, the SHA-256 of the log
 * prefix, the row count). 1 when the checkpoint applied and the check passed (c holds it), 0
 * when the full check must run: no usable checkpoint (why says what was wrong with it, "" when
 * there is none), or a failure, which the full check then names exactly. Logs nothing: a
 * refused mount says one line. */
static int check_from_checkpoint(struct audit_store *st, off_t size, struct audit_check *c,
                                 struct audit_checkpoint *used, char *why, size_t whylen)
{
    struct audit_checkpoint cp;
    char hash[AUDIT_HASH_HEX], dig[AUDIT_SHA256_HEX];
    int rc;

    rc = audit_checkpoint_load(state_dir, audit_store_pubkey_hex(st), &cp, why, whylen);
    if (rc == -ENOENT)
        why[0] = '\0';
    if (rc < 0)
        return 0;
    rc = audit_store_hash_at(st, cp.seq, hash);
    if (rc < 0 || strcmp(hash, cp.hash) != 0) {
        snprintf(why, whylen, "capsule %lld %s", cp.seq,
                 rc < 0 ? "is missing" : "has another hash");
        return 0;
    }
    if (cp.log_off > size || audit_checkpoint_digest(log_fd, cp.log_off, dig) < 0 ||
        strcmp(dig, cp.log_sha256) != 0) {
        snprintf(why, whylen, "the first %jd bytes of audit.log changed", (intmax_t)cp.log_off);
        return 0;
    }
    rc = audit_check_run_from(st, log_fd, AUDIT_CHECK_REPAIR, cp.seq + 1, cp.hash, cp.log_off,
                              c);
    if (rc == 0 && c->r.entries != c->r.head_seq + 1) {
        snprintf(why, whylen, "the chain holds %lld rows for sequences 0 to %lld",
                 c->r.entries, c->r.head_seq);
        return 0;
    }
    if (rc < 0) {
        snprintf(why, whylen, "the capsules after it do not verify");
        return 0;
    }
    *used = cp;
    return 1;
}

/* The checkpoint the check at mount earned, recorded by audit_checkpoint_commit once the
 * mount is up (a refused mount leaves the state directory as it found it). Set by audit_open. */
static struct {
    bool set;
    long long seq;
    char hash[AUDIT_HASH_HEX];
    off_t log_off;
} pending_cp;

static void keep_checkpoint(long long seq, const char *hash, off_t log_off)
{
    pending_cp.set = true;
    pending_cp.seq = seq;
    snprintf(pending_cp.hash, sizeof(pending_cp.hash), "%s", hash);
    pending_cp.log_off = log_off;
}

/* Check audit.log against the chain at mount; rebuild trailing lines whose capsules exist.
 * Verifies from the last verified checkpoint when there is a usable one, else the whole chain;
 * then keeps a new checkpoint at the head for audit_checkpoint_commit. 0 or -errno with err
 * filled. */
static int recover(struct audit_store *st, char *err, size_t errlen)
{
    struct audit_checkpoint cp = { .seq = -1 };
    struct audit_check c;
    char why[600], cpwhy[300];
    long long head = -1;
    struct stat sb;
    int rc;

    if (fstat(log_fd, &sb) < 0)
        return -errno;
    rc = audit_store_head(st, &head, NULL, NULL, NULL);
    if (rc < 0) {
        snprintf(err, errlen, "cannot read the chain head of %s/capsules.db: %s", state_dir,
                 strerror(-rc));
        return rc;
    }
    if (head < 0 && sb.st_size > 0 && audit_store_fresh_key(st))
        return adopt_log(st, sb.st_size, err, errlen);
    rc = 0;
    if (!check_from_checkpoint(st, sb.st_size, &c, &cp, cpwhy, sizeof(cpwhy))) {
        rc = audit_check_run(st, log_fd, AUDIT_CHECK_REPAIR, &c);
        if (rc == 0 && cpwhy[0])
            syslog(LOG_NOTICE, "audit: verified the whole chain; the checkpoint did not apply: "
                   "%s", cpwhy);
    }
    if (rc < 0) {
        audit_check_reason(&c, why, sizeof(why));
        snprintf(err, errlen, "audit trail in %s does not verify: %s", state_dir, why);
        return rc;
    }
    log_lines = c.log_lines;
    log_size = c.log_good;
    if (!c.log_short) {
        if (cp.seq != c.r.head_seq || cp.log_off != log_size)   /* else it is at the head */
            keep_checkpoint(c.r.head_seq, c.r.head_hash, log_size);
        return 0;
    }
    if (c.log_good < sb.st_size && ftruncate(log_fd, c.log_good) < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot cut the torn last line of %s/%s: %s", state_dir, LOG_NAME,
                 strerror(errno));
        return rc;
    }
    rc = rebuild_lines(st, LLONG_MAX);
    if (rc == 0 && log_lines != c.r.entries)
        rc = -EIO;
    if (rc < 0)
        snprintf(err, errlen, "cannot rebuild the last lines of %s/%s: %s", state_dir, LOG_NAME,
                 strerror(-rc));
    else
        keep_checkpoint(c.r.head_seq, c.r.head_hash, log_size);
    return rc;
}

void audit_set_signer(const struct audit_signer *s)
{
    pthread_mutex_lock(&life);
    signer = s;
    pthread_mutex_unlock(&life);
}

int audit_open(const char *dir, char *err, size_t errlen)
{
    const struct audit_store_opts o = { .flags = AUDIT_STORE_KEEP_KEY, .signer = signer };
    struct audit_store *st = NULL;
    char path[PATH_MAX];
    int n, rc;

    pthread_mutex_lock(&life);
    if (store || log_fd >= 0) {
        snprintf(err, errlen, "the audit trail is already open");
        pthread_mutex_unlock(&life);
        return -EBUSY;
    }
    pending_cp.set = false;
    n = snprintf(path, sizeof(path), "%s/%s", dir, LOG_NAME);
    if (n < 0 || (size_t)n >= sizeof(path) ||
        snprintf(state_dir, sizeof(state_dir), "%s", dir) >= (int)sizeof(state_dir)) {
        snprintf(err, errlen, "state directory path too long");
        rc = -ENAMETOOLONG;
        goto out;
    }
    rc = audit_store_open(dir, &o, &st, err, errlen);
    if (rc < 0)
        goto out;
    log_fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (log_fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        goto out;
    }
    log_lines = 0;
    log_size = 0;
    log_dirty = 0;
    rc = recover(st, err, errlen);
    if (rc < 0)
        goto out;
    audit_store_set_hook(st, on_commit, st);
    store = st;
    store_pid = getpid();
    st = NULL;
out:
    if (rc < 0 && log_fd >= 0) {
        close(log_fd);
        log_fd = -1;
    }
    audit_store_close(st);
    pthread_mutex_unlock(&life);
    return rc;
}

/* The store of this process. A child forked after audit_open (the daemon after
 * fuse_daemonize) must not use the parent's SQLite connections: it closes them and opens its
 * own. NULL when the trail is closed or cannot be reopened. */
static struct audit_store *trail(void)
{
    const struct audit_store_opts o = { .flags = AUDIT_STORE_KEEP_KEY, .signer = signer };
    struct audit_store *st;
    char err[512];

    pthread_mutex_lock(&life);
    if (store && store_pid != getpid()) {
        audit_store_close(store);
        store = NULL;
        if (audit_store_open(state_dir, &o, &store, err, sizeof(err)) < 0)
            syslog(LOG_ERR, "audit: cannot reopen the capsule store: %s", err);
        else
            audit_store_set_hook(store, on_commit, store);
        store_pid = getpid();
    }
    st = store;
    pthread_mutex_unlock(&life);
    return st;
}

void audit_checkpoint_commit(void)
{
    struct audit_store *st = trail();

    if (st && pending_cp.set)
        save_checkpoint(st, pending_cp.seq, pending_cp.hash, pending_cp.log_off);
    pending_cp.set = false;
}

/* Seal entries and append their lines (text, lines of them) as one append. 0 or -errno. */
static int seal(json_t *const *entries, size_t n, const char *text, size_t len,
                int system_event)
{
    struct audit_store *st = trail();
    struct pending p = { .text = text, .len = len, .lines = (long long)n };

    if (!st)
        return -EBADF;
    return audit_store_append_many(st, (const json_t *const *)entries, n, system_event, 0, &p,
                                   NULL);
}

/* ---- the portable subset (audit_canon_portable) ----
 * What a user appends must lie inside it: a line whose details hold a number or keys that the
 * two CPS references canonicalize differently is refused. The daemon's own details are brought
 * into it (audit_canon_portable_fix); keys that are not (the daemon builds none such) refuse the
 * entry. Each is said in one syslog line, at most PORTABLE_LOG_BURST a second; the rest are
 * counted and summed up in one line, so a loop of bad writes grows only the audit log. */
#define PORTABLE_LOG_BURST 10

static struct cu_burst plog_burst = CU_BURST_INIT(PORTABLE_LOG_BURST);

__attribute__((format(printf, 2, 3)))
static void portable_syslog(int prio, const char *fmt, ...)
{
    unsigned quiet;
    char text[700];
    va_list ap;
    bool log = cu_burst_take(&plog_burst, &quiet);

    if (quiet)
        syslog(LOG_NOTICE, "audit: %u more entries outside the portable subset not logged here "
               "(each refused append has its audit entry)", quiet);
    if (!log)
        return;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    syslog(prio, "%s", text);
}

/* The details the daemon's own entry is sealed with, inside the portable subset: details
 * itself (a new reference; NULL stays NULL), or a copy with its numbers made portable. 0,
 * -EINVAL (keys that are not portable: logged) or -ENOMEM. */
static int own_details(const char *action, json_t *details, json_t **out)
{
    char why[300], why2[300];
    json_t *copy;
    int rc;

    *out = NULL;
    if (!details)
        return 0;
    rc = audit_canon_portable(details, 0, "details", why, sizeof(why));
    if (rc == 0) {
        *out = json_incref(details);
        return 0;
    }
    if (rc != -EINVAL)
        return rc;
    copy = json_deep_copy(details);
    if (!copy)
        return -ENOMEM;
    rc = audit_canon_portable_fix(copy);
    if (rc >= 0)
        rc = audit_canon_portable(copy, 0, "details", why2, sizeof(why2));
    if (rc < 0) {
        json_decref(copy);
        if (rc == -EINVAL)
            portable_syslog(LOG_ERR, "audit: %s not recorded: %s (outside the portable "
                            "subset)", action, why2);
        return rc;
    }
    portable_syslog(LOG_WARNING, "audit: %s: %s; sealed as a portable value", action, why);
    *out = copy;
    return 0;
}

/* Build, seal and append one entry. */
static int log_one(const char *action, const char *status, const char *message,
                   const char *user, json_t *details, int system_event)
{
    json_t *entry = NULL, *own = NULL;
    char *line = NULL;
    size_t len = 0;
    int rc;

    rc = own_details(action, details, &own);
    if (rc == 0) {
        rc = -ENOMEM;
        entry = audit_entry_new(action, status, message, user, own);
    }
    if (entry)
        line = audit_entry_line(entry, &len);
    if (line)
        rc = seal(&entry, 1, line, len, system_event);
    if (rc < 0)
        syslog(LOG_ERR, "audit: %s by %s not recorded: %s", action, user ? user : "system",
               strerror(-rc));
    free(line);
    json_decref(entry);
    json_decref(own);
    return rc;
}

int audit_log(const char *action, const char *status, const char *message, const char *user,
              json_t *details)
{
    return log_one(action, status, message, user, details, 0);
}

int audit_log_event(const char *action, const char *status, const char *message, json_t *details)
{
    return log_one(action, status, message, "system", details, 1);
}

/* Refuse an append whose lines' details are not all inside the portable subset: one syslog
 * line (rate-limited) and one change_refused failure entry naming the path, the caller and the
 * reason; nothing of the append is sealed. 0 when all are portable, -EINVAL, or -ENOMEM. */
static int append_portable(json_t *const *entries, size_t n, const char *user)
{
    char why[400], reason[480], msg[560];
    json_t *d;
    size_t i;
    int rc = 0;

    for (i = 0; i < n && rc == 0; i++)
        rc = audit_canon_portable(json_object_get(entries[i], "details"), 0, "details", why,
                                  sizeof(why));
    if (rc != -EINVAL)
        return rc;
    snprintf(reason, sizeof(reason), "line %zu: not portable, %s", i, why);
    portable_syslog(LOG_NOTICE, "audit: refused an append to audit/audit.log by %s: %s", user,
                    reason);
    snprintf(msg, sizeof(msg), "Refused audit/audit.log: %s", reason);
    d = json_pack("{s:s,s:s,s:s,s:s}", "path", "audit/audit.log", "operation",
                  json_string_value(json_object_get(entries[i - 1], "action")), "reason",
                  reason, "error", strerror(EINVAL));
    if (!d || audit_log("change_refused", "failure", msg, user, d) < 0)
        syslog(LOG_ERR, "audit: the audit entry of a refused append by %s could not be sealed",
               user);
    json_decref(d);
    return -EINVAL;
}

int audit_append_lines(const char *buf, size_t len, const char *user)
{
    json_t **entries = NULL;
    char why[512], *text = NULL, *line;
    size_t n = 0, i, total = 0, cap = 0, l;
    int rc;

    if (len > AUDIT_APPEND_MAX) {
        syslog(LOG_NOTICE, "audit: append by %s refused: %zu bytes in one write, over the "
               "limit of %d", user, len, AUDIT_APPEND_MAX);
        return -EFBIG;
    }
    rc = audit_entry_parse_lines(buf, len, user, &entries, &n, why, sizeof(why));
    if (rc < 0) {
        syslog(LOG_NOTICE, "audit: append by %s refused: %s", user, why);
        return rc;
    }
    rc = append_portable(entries, n, user);
    if (rc < 0)
        goto out;
    for (i = 0; i < n; i++) {
        line = audit_entry_line(entries[i], &l);
        if (!line) {
            rc = -ENOMEM;
            goto out;
        }
        if (total + l + 1 > cap) {
            char *nt = realloc(text, 2 * (total + l + 1));

            if (!nt) {
                free(line);
                rc = -ENOMEM;
                goto out;
            }
            text = nt;
            cap = 2 * (total + l + 1);
        }
        memcpy(text + total, line, l);
        total += l;
        free(line);
    }
    rc = seal(entries, n, text, total, 0);
out:
    free(text);
    audit_entry_free_all(entries, n);
    return rc;
}

int audit_log_read(char *buf, size_t size, off_t off)
{
    ssize_t n;

    if (log_fd < 0)
        return -EBADF;
    if (size > INT_MAX)
        size = INT_MAX;
    do {
        n = pread(log_fd, buf, size, off);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : (int)n;
}

int audit_log_size(off_t *size)
{
    struct stat sb;

    if (log_fd < 0)
        return -EBADF;
    if (fstat(log_fd, &sb) < 0)
        return -errno;
    *size = sb.st_size;
    return 0;
}

/* ---- audit/verify: one run shared by concurrent readers, its report kept until a file of
 * the trail changes ---- */

/* What identifies the trail's files as they are: inode, size, mtime and ctime of capsules.db,
 * its WAL and audit.log (a file that is missing is all zeros). Any write, including one from
 * outside the daemon, changes its file's ctime; the WAL's ctime is left out, as SQLite running
 * as root chowns the WAL to the database's owner each time a connection opens it. */
struct trail_id {
    struct {
        dev_t dev;
        ino_t ino;
        off_t size;
        struct timespec mtim, ctim;
    } f[3];
};

static pthread_mutex_t vlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t vdone = PTHREAD_COND_INITIALIZER;
static int vrunning;               /* a verification is under way */
static unsigned long long vgen;    /* verifications finished */
static char *vtext;                /* the last report, for vid */
static size_t vlen;
static struct trail_id vid;
static int vvalid;                 /* vtext may be served to a reader whose trail_id is vid */
static unsigned long long vruns;   /* verifications run since the trail was opened */
static int64_t vstart;             /* when the run behind vtext started (cu_mono_ms) */

/* How long a report is kept at most, even when no file of the trail changed. */
#define VERIFY_KEEP_S 60

static void trail_id_now(struct trail_id *id)
{
    static const char *const names[3] = { "capsules.db", "capsules.db-wal", LOG_NAME };
    char path[PATH_MAX + 32];
    struct stat sb;
    int i;

    memset(id, 0, sizeof(*id));
    for (i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", state_dir, names[i]);
        if (stat(path, &sb) < 0)
            continue;
        id->f[i].dev = sb.st_dev;
        id->f[i].ino = sb.st_ino;
        id->f[i].size = sb.st_size;
        id->f[i].mtim = sb.st_mtim;
        id->f[i].ctim = sb.st_ctim;
    }
}

static int trail_id_eq(const struct trail_id *a, const struct trail_id *b)
{
    int i;

    for (i = 0; i < 3; i++)
        if (a->f[i].dev != b->f[i].dev || a->f[i].ino != b->f[i].ino ||
            a->f[i].size != b->f[i].size || a->f[i].mtim.tv_sec != b->f[i].mtim.tv_sec ||
            a->f[i].mtim.tv_nsec != b->f[i].mtim.tv_nsec ||
            (i != 1 && (a->f[i].ctim.tv_sec != b->f[i].ctim.tv_sec ||
                        a->f[i].ctim.tv_nsec != b->f[i].ctim.tv_nsec)))
            return 0;
    return 1;
}

/* A malloc'd copy of the cached report into *out. 0 or -ENOMEM. Called with vlock held. */
static int copy_report(char **out, size_t *len)
{
    *out = malloc(vlen + 1);
    if (!*out)
        return -ENOMEM;
    memcpy(*out, vtext, vlen + 1);
    *len = vlen;
    return 0;
}

/* Verify the whole trail now and make its report; a passing run records a new checkpoint.
 * The report is malloc'd into *text (NULL when out of memory). Returns the check's result. */
static int verify_run(struct audit_store *st, char **text, size_t *len)
{
    struct audit_check c;
    int rc;

    rc = audit_check_run(st, log_fd, 0, &c);
    if (rc < 0) {
        char why[600];

        audit_check_reason(&c, why, sizeof(why));
        syslog(LOG_ERR, "audit: verification failed: %s", why);
    } else if (c.r.entries > 0) {
        save_checkpoint(st, c.r.head_seq, c.r.head_hash, c.log_good);
    }
    *text = audit_check_json(&c, rc, len);
    return rc;
}

int audit_verify_json(char **out, size_t *len)
{
    struct audit_store *st = trail();
    struct trail_id now;
    int64_t t0;
    unsigned long long gen, run;
    char *text = NULL;
    size_t tlen = 0;
    int rc;

    *out = NULL;
    if (!st)
        return -EBADF;
    pthread_mutex_lock(&vlock);
    if (vrunning) {
        /* join the run under way: its report is the one every reader waiting for it gets */
        gen = vgen;
        while (vrunning && vgen == gen)
            pthread_cond_wait(&vdone, &vlock);
        rc = vtext ? copy_report(out, len) : -ENOMEM;
        pthread_mutex_unlock(&vlock);
        return rc;
    }
    trail_id_now(&now);
    t0 = cu_mono_ms();
    /* the report's age, counted in whole seconds of the monotonic clock */
    if (vtext && vvalid && trail_id_eq(&now, &vid) && t0 / 1000 - vstart / 1000 < VERIFY_KEEP_S) {
        rc = copy_report(out, len);
        pthread_mutex_unlock(&vlock);
        return rc;
    }
    vrunning = 1;
    run = ++vruns;
    pthread_mutex_unlock(&vlock);

    rc = verify_run(st, &text, &tlen);
    syslog(LOG_INFO, "audit: verify run %llu done", run);

    pthread_mutex_lock(&vlock);
    free(vtext);
    vtext = text;
    vlen = tlen;
    vid = now;
    vstart = t0;
    vvalid = rc == 0 || rc == -EBADMSG;   /* an error reading the trail is not kept */
    vrunning = 0;
    vgen++;
    pthread_cond_broadcast(&vdone);
    rc = vtext ? copy_report(out, len) : -ENOMEM;
    pthread_mutex_unlock(&vlock);
    return rc;
}

int audit_head_json(char **out, size_t *len)
{
    struct audit_store *st = trail();
    char hash[AUDIT_HASH_HEX], by[AUDIT_KEYID_HEX], at[AUDIT_TIME_MAX];
    long long seq = -1;
    json_t *o = NULL;
    int rc;

    *out = NULL;
    if (!st)
        return -EBADF;
    rc = audit_store_head(st, &seq, hash, by, at);
    if (rc < 0)
        return rc;
    if (seq < 0)
        o = json_pack("{s:n, s:n, s:n, s:n}", "sequence", "hash", "signed_by", "signed_at");
    else
        o = json_pack("{s:I, s:s, s:s, s:s}", "sequence", (json_int_t)seq, "hash", hash,
                      "signed_by", by, "signed_at", at);
    *out = cu_json_line(o, JSON_COMPACT | JSON_PRESERVE_ORDER, len);
    json_decref(o);
    return *out ? 0 : -ENOMEM;
}

int audit_pubkey_text(char *buf, size_t len)
{
    struct audit_store *st = trail();
    int n;

    if (!st)
        return -EBADF;
    n = snprintf(buf, len, "%s\n", audit_store_pubkey_hex(st));
    return n < 0 || (size_t)n >= len ? -ENOSPC : n;
}

void audit_close(void)
{
    long long appends = 0, batches = 0;

    pthread_mutex_lock(&life);
    if (store && store_pid == getpid()) {
        audit_store_stats(store, &appends, &batches);
        if (appends)
            syslog(LOG_INFO, "audit: sealed %lld entries in %lld transactions", appends,
                   batches);
    }
    audit_store_close(store);
    store = NULL;
    if (log_fd >= 0) {
        if (fdatasync(log_fd) < 0)
            syslog(LOG_ERR, "audit: syncing audit.log: %s", strerror(errno));
        close(log_fd);
    }
    log_fd = -1;
    pthread_mutex_unlock(&life);
    pthread_mutex_lock(&vlock);
    free(vtext);
    vtext = NULL;
    vlen = 0;
    vvalid = 0;
    vruns = 0;
    pthread_mutex_unlock(&vlock);
}

int audit_log_batch(const struct audit_item *items, size_t n, const char *timestamp)
{
    json_t **entries = calloc(n ? n : 1, sizeof(*entries));
    char *text = NULL, *line;
    size_t total = 0, l, i;
    int rc = -ENOMEM;

    if (!entries)
        return -ENOMEM;
    if (n == 0) {
        rc = -EINVAL;
        goto out;
    }
    for (i = 0; i < n; i++) {
        json_t *own = NULL;
        char *nt;

        rc = own_details(items[i].action, items[i].details, &own);
        if (rc < 0)
            goto out;
        rc = -ENOMEM;
        entries[i] = audit_entry_new(items[i].action, items[i].status, items[i].message,
                                     items[i].user, own);
        json_decref(own);
        if (!entries[i] || (timestamp && json_object_set_new(entries[i], "timestamp",
                                                             json_string(timestamp))))
            goto out;
        line = audit_entry_line(entries[i], &l);
        nt = line ? realloc(text, total + l + 1) : NULL;
        if (!nt) {
            free(line);
            goto out;
        }
        text = nt;
        memcpy(text + total, line, l);
        total += l;
        free(line);
    }
    rc = seal(entries, n, text, total, 0);
    if (rc < 0)
        syslog(LOG_ERR, "audit: a batch of %zu entries (%s, ...) not recorded: %s", n,
               items[0].action, strerror(-rc));
out:
    free(text);
    for (i = 0; i < n; i++)
        json_decref(entries[i]);
    free(entries);
    return rc;
}
