/* staging.c: the scratch files of services/NAME/ (see staging.h). A short list in memory under
 * one lock; the sizes are capped per file, the count per service, and the bytes overall. */
#include "core/staging.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct stg_file {
    struct stg_file *next;
    char svc[64];
    char name[STG_NAME_MAX + 1];
    char *data;
    size_t len;
};

static struct stg_file *files;          /* in creation order */
static size_t total;                    /* bytes of every file's data */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* The link that points at svc/name, or at the list's end (*link NULL) when there is none. */
static struct stg_file **find(const char *svc, const char *name)
{
    struct stg_file **p;

    for (p = &files; *p; p = &(*p)->next)
        if (strcmp((*p)->svc, svc) == 0 && strcmp((*p)->name, name) == 0)
            break;
    return p;
}

static int check_name(const char *svc, const char *name)
{
    if (!*name || strchr(name, '/'))
        return -EINVAL;
    if (strlen(name) > STG_NAME_MAX || strlen(svc) >= sizeof(files->svc))
        return -ENAMETOOLONG;
    return 0;
}

static void free_file(struct stg_file *f)
{
    total -= f->len;
    free(f->data);
    free(f);
}

/* Resize f to len bytes, zero-filling any growth. Lock held. 0, -EFBIG, -ENOSPC, -ENOMEM. */
static int resize(struct stg_file *f, size_t len)
{
    char *d;

    if (len > STG_FILE_MAX)
        return -EFBIG;
    if (len > f->len && total + (len - f->len) > STG_TOTAL_MAX)
        return -ENOSPC;
    if (len == f->len)
        return 0;
    d = realloc(f->data, len ? len : 1);
    if (!d)
        return -ENOMEM;
    if (len > f->len)
        memset(d + f->len, 0, len - f->len);
    total = total - f->len + len;
    f->data = d;
    f->len = len;
    return 0;
}

int stg_create(const char *svc, const char *name)
{
    struct stg_file *f, **p;
    size_t count = 0;
    int rc = check_name(svc, name);

    if (rc)
        return rc;
    pthread_mutex_lock(&lock);
    if (*find(svc, name))
        goto out;
    for (p = &files; *p; p = &(*p)->next)
        count += strcmp((*p)->svc, svc) == 0;
    rc = -ENOSPC;
    if (count >= STG_PER_SERVICE)
        goto out;
    rc = -ENOMEM;
    f = calloc(1, sizeof(*f));
    if (!f)
        goto out;
    memcpy(f->svc, svc, strlen(svc) + 1);
    memcpy(f->name, name, strlen(name) + 1);
    *p = f;
    rc = 0;
out:
    pthread_mutex_unlock(&lock);
    return rc;
}

int stg_size(const char *svc, const char *name, size_t *size)
{
    struct stg_file *f;

    pthread_mutex_lock(&lock);
    f = *find(svc, name);
    if (f)
        *size = f->len;
    pthread_mutex_unlock(&lock);
    return f ? 0 : -ENOENT;
}

int stg_read(const char *svc, const char *name, char *buf, size_t size, off_t off)
{
    struct stg_file *f;
    int rc = -ENOENT;

    if (off < 0)
        return -EINVAL;
    pthread_mutex_lock(&lock);
    f = *find(svc, name);
    if (f) {
        if ((size_t)off >= f->len)
            size = 0;
        else if (size > f->len - (size_t)off)
            size = f->len - (size_t)off;
        if (size)
            memcpy(buf, f->data + off, size);
        rc = (int)size;
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

int stg_write(const char *svc, const char *name, const char *buf, size_t size, off_t off)
{
    struct stg_file *f;
    int rc = -ENOENT;

    if (off < 0)
        return -EINVAL;
    if ((size_t)off > STG_FILE_MAX || size > STG_FILE_MAX - (size_t)off)
        return -EFBIG;
    pthread_mutex_lock(&lock);
    f = *find(svc, name);
    if (!f)
        goto out;
    if ((size_t)off + size > f->len) {
        rc = resize(f, (size_t)off + size);
        if (rc)
            goto out;
    }
    if (size)
        memcpy(f->data + off, buf, size);
    rc = (int)size;
out:
    pthread_mutex_unlock(&lock);
    return rc;
}

int stg_truncate(const char *svc, const char *name, off_t size)
{
    struct stg_file *f;
    int rc = -ENOENT;

    if (size < 0)
        return -EINVAL;
    if ((unsigned long long)size > STG_FILE_MAX)
        return -EFBIG;
    pthread_mutex_lock(&lock);
    f = *find(svc, name);
    if (f)
        rc = resize(f, (size_t)size);
    pthread_mutex_unlock(&lock);
    return rc;
}

int stg_remove(const char *svc, const char *name)
{
    struct stg_file **p, *f;

    pthread_mutex_lock(&lock);
    p = find(svc, name);
    f = *p;
    if (f) {
        *p = f->next;
        free_file(f);
    }
    pthread_mutex_unlock(&lock);
    return f ? 0 : -ENOENT;
}

int stg_rename(const char *svc, const char *from, const char *to, bool noreplace)
{
    struct stg_file **p, *f, *old;
    int rc = check_name(svc, to);

    if (rc)
        return rc;
    pthread_mutex_lock(&lock);
    rc = -ENOENT;
    f = *find(svc, from);
    if (!f)
        goto out;
    rc = 0;
    if (strcmp(from, to) == 0)
        goto out;
    p = find(svc, to);
    old = *p;
    if (old && noreplace) {
        rc = -EEXIST;
        goto out;
    }
    if (old) {
        *p = old->next;
        free_file(old);
    }
    memcpy(f->name, to, strlen(to) + 1);
out:
    pthread_mutex_unlock(&lock);
    return rc;
}

void stg_list(const char *svc, void (*fn)(const char *name, void *arg), void *arg)
{
    struct stg_file *f;

    pthread_mutex_lock(&lock);
    for (f = files; f; f = f->next)
        if (strcmp(f->svc, svc) == 0)
            fn(f->name, arg);
    pthread_mutex_unlock(&lock);
}

int stg_commit(const char *svc, const char *name, enum reg_attr attr, const char *who)
{
    struct stg_file *f;
    char *copy = NULL;
    size_t len = 0;
    int rc = -ENOENT;

    /* The content is copied out so that the registry (which takes its own lock and may write
     * to disk) never runs under this one. */
    pthread_mutex_lock(&lock);
    f = *find(svc, name);
    if (f) {
        len = f->len;
        rc = len > VAL_VALUE_MAX + 1 ? -EFBIG : 0;
        if (rc == 0) {
            copy = malloc(len ? len : 1);
            rc = copy ? 0 : -ENOMEM;
            if (copy && len)
                memcpy(copy, f->data, len);
        }
    }
    pthread_mutex_unlock(&lock);
    if (rc)
        goto out;
    rc = reg_set(svc, attr, copy, len, who);
    if (rc == 0)
        stg_remove(svc, name);
out:
    free(copy);
    return rc;
}

void stg_drop(const char *svc)
{
    struct stg_file **p = &files, *f;

    pthread_mutex_lock(&lock);
    while ((f = *p)) {
        if (strcmp(f->svc, svc) == 0) {
            *p = f->next;
            free_file(f);
        } else {
            p = &f->next;
        }
    }
    pthread_mutex_unlock(&lock);
}

void stg_clear(void)
{
    struct stg_file *f;

    pthread_mutex_lock(&lock);
    while ((f = files)) {
        files = f->next;
        free_file(f);
    }
    pthread_mutex_unlock(&lock);
}
