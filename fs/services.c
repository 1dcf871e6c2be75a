/* services.c: the services/ tree. services/NAME/ATTR files map onto registry attributes with
 * sysfs write semantics; mkdir and rmdir register and deregister. */
#include "fs/fs.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- the cp -r restore idiom ----
 * `cp -r backup/core services/` makes the directory, then creates each file with
 * O_CREAT|O_EXCL, which fails with EEXIST on a file that already exists. So, for the process
 * that just made a service directory and for a few seconds, an attribute file it has not created
 * yet looks absent to it; its exclusive create then reaches svc_create, which opens the
 * attribute, and from then on that file is visible to it again. Other processes always see
 * every file. */
#define FRESH_SLOTS 16
#define FRESH_SECONDS 2

static struct {
    char name[64];
    pid_t pid;
    time_t until;
    unsigned created;   /* bit per attribute this process has created */
} fresh[FRESH_SLOTS];
static pthread_mutex_t fresh_lock = PTHREAD_MUTEX_INITIALIZER;

static void fresh_note(const char *name, pid_t pid)
{
    time_t now = time(NULL);
    size_t len = strlen(name);
    int slot = 0;

    if (len >= sizeof(fresh[0].name))
        return;
    pthread_mutex_lock(&fresh_lock);
    for (int i = 0; i < FRESH_SLOTS; i++) {
        if (fresh[i].until < fresh[slot].until)
            slot = i;
        if (fresh[i].until < now) {
            slot = i;
            break;
        }
    }
    memcpy(fresh[slot].name, name, len + 1);
    fresh[slot].pid = pid;
    fresh[slot].until = now + FRESH_SECONDS;
    fresh[slot].created = 0;
    pthread_mutex_unlock(&fresh_lock);
}

/* Whether attr of service name is hidden from pid; with create set, unhide it for good. */
static bool fresh_hidden(const char *name, int attr, pid_t pid, bool create)
{
    time_t now = time(NULL);
    bool hit = false;

    pthread_mutex_lock(&fresh_lock);
    for (int i = 0; i < FRESH_SLOTS && !hit; i++) {
        if (fresh[i].until < now || fresh[i].pid != pid || strcmp(fresh[i].name, name) != 0)
            continue;
        hit = !(fresh[i].created & (1u << attr));
        if (create)
            fresh[i].created |= 1u << attr;
    }
    pthread_mutex_unlock(&fresh_lock);
    return hit;
}

static void fresh_forget(const char *name)
{
    pthread_mutex_lock(&fresh_lock);
    for (int i = 0; i < FRESH_SLOTS; i++)
        if (strcmp(fresh[i].name, name) == 0)
            fresh[i].until = 0;
    pthread_mutex_unlock(&fresh_lock);
}

/* A path below services/: "" (the tree), "NAME", or "NAME/ATTR" (attr -1 when unknown). */
struct svc_path {
    int depth;          /* 0, 1, 2; -1 for anything deeper or malformed */
    char name[256];
    int attr;
};

static void parse(const char *rel, struct svc_path *p)
{
    char comp[64];

    memset(p, 0, sizeof(*p));
    p->depth = fs_split2(rel, p->name, sizeof(p->name), comp, sizeof(comp));
    p->attr = p->depth == 2 ? reg_attr_from_name(comp) : -1;
}

static int svc_getattr(const char *rel, struct stat *st)
{
    struct svc_path p;
    struct reg_snapshot *snap;
    const struct reg_service *svc;
    int rc = 0;

    parse(rel, &p);
    if (p.depth == 0) {
        fs_stat_dir(st);
        return 0;
    }
    if (p.depth < 0 || (p.depth == 2 && p.attr < 0))
        return -ENOENT;
    snap = reg_snapshot_get();
    svc = reg_snapshot_find(snap, p.name);
    if (!svc)
        rc = -ENOENT;
    else if (p.depth == 1)
        fs_stat_dir(st);
    else if (fresh_hidden(p.name, p.attr, fs_caller_pid(), false))
        rc = -ENOENT;
    else
        fs_stat_file(st, 0644, strlen(reg_attr_value(svc, p.attr)) + 1);
    reg_snapshot_put(snap);
    return rc;
}

static int svc_readdir(const char *rel, void *buf, fuse_fill_dir_t fill)
{
    struct svc_path p;
    struct reg_snapshot *snap;
    int rc = 0;

    parse(rel, &p);
    if (p.depth != 0 && p.depth != 1)
        return -ENOTDIR;
    snap = reg_snapshot_get();
    if (p.depth == 0) {
        for (size_t i = 0; i < snap->n; i++)
            if (snap->svcs[i].status != REG_INACTIVE)
                fill(buf, snap->svcs[i].name, NULL, 0, 0);
    } else if (reg_snapshot_find(snap, p.name)) {
        for (int a = 0; a < REG_NATTR; a++)
            fill(buf, reg_attr_name(a), NULL, 0, 0);
    } else {
        rc = -ENOENT;
    }
    reg_snapshot_put(snap);
    return rc;
}

static int svc_mkdir(const char *rel)
{
    struct svc_path p;
    char who[64];
    int rc;

    parse(rel, &p);
    if (p.depth != 1)
        return -EPERM;
    fs_caller(who, sizeof(who));
    rc = reg_register(p.name, who);
    if (rc == 0)
        fresh_note(p.name, fs_caller_pid());
    return rc;
}

static int svc_rmdir(const char *rel)
{
    struct svc_path p;
    char who[64];

    parse(rel, &p);
    if (p.depth != 1)
        return p.depth == 2 ? -ENOTDIR : -ENOENT;
    fs_caller(who, sizeof(who));
    fresh_forget(p.name);
    return reg_deregister(p.name, who);
}

static int svc_unlink(const char *rel)
{
    struct svc_path p;
    char who[64];

    parse(rel, &p);
    if (p.depth == 1)
        return -EISDIR;
    if (p.depth != 2)
        return -ENOENT;
    if (p.attr < 0)
        return -ENOENT;
    fs_caller(who, sizeof(who));
    return reg_reset(p.name, p.attr, who);
}

/* Snapshot the attribute's value, with its newline, into the handle. */
static int open_attr(const struct svc_path *p, struct fuse_file_info *fi)
{
    struct reg_snapshot *snap = reg_snapshot_get();
    const struct reg_service *svc = reg_snapshot_find(snap, p->name);
    char val[VAL_VALUE_MAX + 2];
    int rc = -ENOENT, n;

    if (svc) {
        n = snprintf(val, sizeof(val), "%s\n", reg_attr_value(svc, p->attr));
        rc = fs_fh_set(fi, val, (size_t)n);
    }
    reg_snapshot_put(snap);
    return rc;
}

static int svc_open(const char *rel, struct fuse_file_info *fi)
{
    struct svc_path p;

    parse(rel, &p);
    if (p.depth == 2 && p.attr >= 0)
        return open_attr(&p, fi);
    return p.depth == 0 || p.depth == 1 ? -EISDIR : -ENOENT;
}

static int svc_create(const char *rel, struct fuse_file_info *fi)
{
    struct svc_path p;
    int rc;

    parse(rel, &p);
    if (p.depth != 2 || p.attr < 0)
        return -EPERM;
    rc = open_attr(&p, fi);
    if (rc == 0)
        fresh_hidden(p.name, p.attr, fs_caller_pid(), true);
    return rc;
}

static int svc_write(const char *rel, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    struct svc_path p;
    char who[64];
    int rc;

    (void)fi;
    parse(rel, &p);
    if (p.depth != 2 || p.attr < 0)
        return -EPERM;
    if (size > VAL_VALUE_MAX + 1)
        return -EFBIG;
    if (off != 0)
        return -EINVAL;   /* sysfs semantics: the whole value in one write at offset 0 */
    fs_caller(who, sizeof(who));
    rc = reg_set(p.name, p.attr, buf, size, who);
    return rc < 0 ? rc : (int)size;
}

static int svc_truncate(const char *rel, off_t size)
{
    struct svc_path p;

    parse(rel, &p);
    if (p.depth != 2 || p.attr < 0)
        return p.depth == 2 ? -ENOENT : -EPERM;
    /* O_TRUNC and truncate to 0 leave the value alone until the write. */
    return size == 0 ? 0 : -EINVAL;
}

const struct fs_tree fs_services_tree = {
    .name = "services",
    .getattr = svc_getattr,
    .readdir = svc_readdir,
    .open = svc_open,
    .create = svc_create,
    .write = svc_write,
    .truncate = svc_truncate,
    .unlink = svc_unlink,
    .mkdir = svc_mkdir,
    .rmdir = svc_rmdir,
};
