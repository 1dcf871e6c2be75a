/* restore.c: the per-process window of services/ and the cp -r restore committed as one change
 * (see restore.h). One table of RST_SLOTS slots under one lock; one thread, started with the
 * first collecting window, commits the collections whose window ended without completing. */
#include "core/restore.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/validate.h"
#include "util/util.h"

/* The attributes whose arrival completes a collection: those that decide where and how the
 * service is served. */
#define RST_ROUTING ((1u << REG_UPSTREAM) | (1u << REG_DOMAIN) | (1u << REG_MODE))

struct slot {
    char name[64];
    pid_t pid;
    time_t until;               /* 0: free */
    unsigned created;           /* attributes pid has created: visible to it again */
    bool collecting;            /* begun by mkdir, not committed yet */
    unsigned collect;           /* attributes pid created with O_EXCL: their writes collect */
    unsigned collected;         /* attributes whose value waits in val[] */
    char *val[REG_NATTR];
    char who[64];
};

static struct slot slots[RST_SLOTS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_t sweeper;
static bool sweeper_running, stopping;     /* lock */
/* The sweeper sleeps on tick (set up with the thread), which rst_finish stops. The sleep is a
 * plain period that nothing but the stop cuts short, so the sweeper sleeps without lock. */
static struct cu_ticker tick;

static void slot_clear_values(struct slot *s)
{
    for (int a = 0; a < REG_NATTR; a++) {
        free(s->val[a]);
        s->val[a] = NULL;
    }
    s->collected = 0;
    s->collect = 0;
    s->collecting = false;
}

/* The live slot of name and pid, or NULL. Called with lock held. */
static struct slot *find(const char *name, pid_t pid, time_t now)
{
    for (int i = 0; i < RST_SLOTS; i++)
        if (slots[i].until >= now && slots[i].pid == pid && strcmp(slots[i].name, name) == 0)
            return &slots[i];
    return NULL;
}

/* Take a slot for name and pid: a free or expired one without a collection, else the one that
 * expires first (its collection, if any, is dropped: only RST_SLOTS restores run at once).
 * Called with lock held; NULL when the name does not fit. */
static struct slot *claim(const char *name, pid_t pid, time_t now)
{
    size_t len = strlen(name);
    struct slot *s = NULL;

    if (len >= sizeof(slots[0].name))
        return NULL;
    for (int i = 0; i < RST_SLOTS; i++) {
        if (slots[i].until < now && !slots[i].collected) {
            s = &slots[i];
            break;
        }
        if (!s || slots[i].until < s->until)
            s = &slots[i];
    }
    slot_clear_values(s);
    memcpy(s->name, name, len + 1);
    s->pid = pid;
    s->created = 0;
    s->who[0] = '\0';
    return s;
}

/* Move a due collection of s out into vals (caller frees) and end it. Called with lock held.
 * Returns whether there was one. */
static bool take(struct slot *s, char *vals[REG_NATTR], char name[64], char who[64])
{
    if (!s->collecting || !s->collected)
        return false;
    for (int a = 0; a < REG_NATTR; a++) {
        vals[a] = s->val[a];
        s->val[a] = NULL;
    }
    memcpy(name, s->name, sizeof(s->name));
    memcpy(who, s->who, sizeof(s->who));
    slot_clear_values(s);
    return true;
}

/* Commit collected values (freed here) as one change of service name: what was not collected
 * keeps its current value. 0 or what reg_apply returns; -ENOENT when the service is gone. */
static int commit(const char *name, char *vals[REG_NATTR], const char *who)
{
    const char *values[REG_NATTR] = {0};
    char *cur[REG_NATTR] = {0};
    struct reg_snapshot *snap = reg_snapshot_get();
    const struct reg_service *svc = reg_snapshot_find(snap, name);
    int rc = -ENOENT;

    if (svc) {
        rc = 0;
        for (int a = 0; a < REG_NATTR; a++) {
            const char *now = reg_attr_value(svc, (enum reg_attr)a);

            if (vals[a])
                values[a] = vals[a];
            else if (a != REG_DOMAIN || now[0])     /* no domain yet: its default */
                values[a] = cur[a] = strdup(now);
            if (!vals[a] && (a != REG_DOMAIN || now[0]) && !cur[a])
                rc = -ENOMEM;
        }
    }
    reg_snapshot_put(snap);
    if (rc == 0)
        rc = reg_apply(name, values, who);
    for (int a = 0; a < REG_NATTR; a++) {
        free(vals[a]);
        free(cur[a]);
    }
    return rc;
}

/* The thread: every quarter second, commit the collections whose window ended. */
static void *sweep_main(void *arg)
{
    (void)arg;
    for (;;) {
        time_t now;
        bool found = false, stop;
        char *vals[REG_NATTR], name[64], who[64];

        pthread_mutex_lock(&lock);
        now = time(NULL);
        stop = stopping;
        for (int i = 0; i < RST_SLOTS && !stop && !found; i++)
            if (slots[i].collecting && slots[i].collected && slots[i].until < now)
                found = take(&slots[i], vals, name, who);
        pthread_mutex_unlock(&lock);
        if (stop)
            break;
        if (found)
            commit(name, vals, who);    /* a refusal is logged and audited by the registry */
        else if (!cu_ticker_wait(&tick, 250))
            break;
    }
    return NULL;
}

void rst_begin(const char *svc, pid_t pid, const char *who)
{
    time_t now = time(NULL);
    struct slot *s;

    pthread_mutex_lock(&lock);
    s = claim(svc, pid, now);
    if (s) {
        s->until = now + RST_SECONDS;
        s->collecting = true;
        snprintf(s->who, sizeof(s->who), "%s", who ? who : "");
        if (!sweeper_running && !stopping && cu_ticker_init(&tick) == 0) {
            if (pthread_create(&sweeper, NULL, sweep_main, NULL) == 0)
                sweeper_running = true;
            else
                cu_ticker_destroy(&tick);
        }
    }
    pthread_mutex_unlock(&lock);
}

/* The opening of the per-attribute calls: false for an attribute out of range (nothing
 * locked); else take the lock and set *s to the live slot of svc and pid (NULL: none). */
static bool lock_slot(const char *svc, int attr, pid_t pid, time_t now, struct slot **s)
{
    if ((unsigned)attr >= REG_NATTR)
        return false;
    pthread_mutex_lock(&lock);
    *s = find(svc, pid, now);
    return true;
}

void rst_hide(const char *svc, int attr, pid_t pid)
{
    time_t now = time(NULL);
    struct slot *s;

    if (!lock_slot(svc, attr, pid, now, &s))
        return;
    if (!s && (s = claim(svc, pid, now)))
        s->created = ~0u;
    if (s) {
        s->until = now + RST_SECONDS;
        s->created &= ~(1u << attr);
    }
    pthread_mutex_unlock(&lock);
}

bool rst_hidden(const char *svc, int attr, pid_t pid)
{
    bool hit = false;
    struct slot *s;

    if (!lock_slot(svc, attr, pid, time(NULL), &s))
        return false;
    if (s)
        hit = !(s->created & (1u << attr));
    pthread_mutex_unlock(&lock);
    return hit;
}

void rst_created(const char *svc, int attr, pid_t pid, bool excl)
{
    time_t now = time(NULL);
    struct slot *s;

    if (!lock_slot(svc, attr, pid, now, &s))
        return;
    if (s && !(s->created & (1u << attr))) {
        s->created |= 1u << attr;
        if (excl && s->collecting) {
            s->collect |= 1u << attr;
            s->until = now + RST_SECONDS;
        }
    }
    pthread_mutex_unlock(&lock);
}

int rst_write(const char *svc, int attr, pid_t pid, const char *buf, size_t len, off_t off)
{
    time_t now = time(NULL);
    struct slot *s;
    char *v;
    int rc = 0;

    if (!lock_slot(svc, attr, pid, now, &s))
        return 0;
    if (!s || !s->collecting || !(s->collect & (1u << attr)))
        goto out;
    if (off != 0) {
        rc = -EINVAL;
        goto out;
    }
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    if (len > VAL_VALUE_MAX) {
        rc = -EFBIG;
        goto out;
    }
    if (memchr(buf, '\0', len)) {
        rc = -EINVAL;
        goto out;
    }
    v = malloc(len + 1);
    if (!v) {
        rc = -ENOMEM;
        goto out;
    }
    memcpy(v, buf, len);
    v[len] = '\0';
    free(s->val[attr]);
    s->val[attr] = v;
    s->collected |= 1u << attr;
    s->until = now + RST_SECONDS;
    rc = 1;
out:
    pthread_mutex_unlock(&lock);
    return rc;
}

int rst_flush(const char *svc, pid_t pid)
{
    char *vals[REG_NATTR], name[64], who[64];
    bool due = false;
    struct slot *s;

    pthread_mutex_lock(&lock);
    s = find(svc, pid, time(NULL));
    if (s && s->collecting && (s->collected & RST_ROUTING) == RST_ROUTING)
        due = take(s, vals, name, who);
    pthread_mutex_unlock(&lock);
    return due ? commit(name, vals, who) : 0;
}

void rst_forget(const char *svc)
{
    pthread_mutex_lock(&lock);
    for (int i = 0; i < RST_SLOTS; i++)
        if (strcmp(slots[i].name, svc) == 0) {
            slot_clear_values(&slots[i]);
            slots[i].until = 0;
        }
    pthread_mutex_unlock(&lock);
}

void rst_finish(void)
{
    bool joining;

    pthread_mutex_lock(&lock);
    stopping = true;
    joining = sweeper_running;
    pthread_mutex_unlock(&lock);
    if (joining) {
        cu_ticker_stop(&tick);
        pthread_join(sweeper, NULL);
        cu_ticker_destroy(&tick);
    }
    sweeper_running = false;
    for (int i = 0; i < RST_SLOTS; i++) {
        char *vals[REG_NATTR], name[64], who[64];
        bool due;

        pthread_mutex_lock(&lock);
        due = take(&slots[i], vals, name, who);
        slots[i].until = 0;
        pthread_mutex_unlock(&lock);
        if (due)
            commit(name, vals, who);
    }
}
