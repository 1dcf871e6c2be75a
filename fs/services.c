/* services.c: the services/ tree. services/NAME/ATTR files map onto registry attributes with
 * sysfs write semantics; mkdir and rmdir register and deregister. Any other name in
 * services/NAME/ is a staging file (core/staging.h): the temporary file a tool writes before it
 * renames it over an attribute, which sets that attribute as one validated write. An attribute
 * cannot be removed or renamed away: rm of one changes nothing (see unlink below).
 * services/.apply (not listed) takes a whole service as one JSON document in one write:
 * reg_apply_json makes or replaces it as one validated change. How cp -r, mv from another
 * filesystem and install see an attribute they create, and a cp -r restore committed as one
 * change: core/restore.h. */
#include "fs/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/restore.h"
#include "core/staging.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1u << 0)   /* rename(2)'s flag; <stdio.h> names it under _GNU_SOURCE */
#endif

/* A path below services/: "" (the tree), "NAME", or "NAME/LEAF": an attribute (attr >= 0) or
 * a staging file (attr -1). */
struct svc_path {
    int depth;          /* 0, 1, 2; -1 for anything deeper or malformed */
    char name[256];
    char leaf[STG_NAME_MAX + 1];
    int attr;
};

static void parse(const char *rel, struct svc_path *p)
{
    memset(p, 0, sizeof(*p));
    p->depth = fs_split2(rel, p->name, sizeof(p->name), p->leaf, sizeof(p->leaf));
    p->attr = p->depth == 2 ? reg_attr_from_name(p->leaf) : -1;
}

/* The control file services/.apply. */
#define APPLY_NAME ".apply"

static bool is_apply(const struct svc_path *p)
{
    return p->depth == 1 && strcmp(p->name, APPLY_NAME) == 0;
}

/* Whether service name is active or pending now. */
static bool svc_live(const char *name)
{
    struct reg_snapshot *snap = reg_snapshot_get();
    bool live = reg_snapshot_find(snap, name) != NULL;

    reg_snapshot_put(snap);
    return live;
}

/* The size an attribute file shows now: its value and the newline. -ENOENT when the service is
 * gone. */
static long attr_size(const struct svc_path *p)
{
    struct reg_snapshot *snap = reg_snapshot_get();
    const struct reg_service *svc = reg_snapshot_find(snap, p->name);
    long size = svc ? (long)strlen(reg_attr_value(svc, p->attr)) + 1 : -ENOENT;

    reg_snapshot_put(snap);
    return size;
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
    if (p.depth < 0)
        return -ENOENT;
    if (is_apply(&p)) {
        fs_stat_file(st, 0644, 0);
        return 0;
    }
    if (p.depth == 2 && p.attr < 0) {
        size_t size;

        if (!svc_live(p.name) || stg_size(p.name, p.leaf, &size) < 0)
            return -ENOENT;
        fs_stat_file(st, 0644, size);
        return 0;
    }
    snap = reg_snapshot_get();
    svc = reg_snapshot_find(snap, p.name);
    if (!svc)
        rc = -ENOENT;
    else if (p.depth == 1)
        fs_stat_dir(st);
    else if (rst_hidden(p.name, p.attr, fs_caller_pid()))
        rc = -ENOENT;
    else
        fs_stat_file(st, 0644, strlen(reg_attr_value(svc, p.attr)) + 1);
    reg_snapshot_put(snap);
    return rc;
}

static int svc_readdir(const char *rel, void *buf, fuse_fill_dir_t fill)
{
    struct fs_filler ctx = { buf, fill };
    struct svc_path p;
    struct reg_snapshot *snap;
    int rc = 0;

    parse(rel, &p);
    if (p.depth != 0 && p.depth != 1)
        return -ENOTDIR;
    snap = reg_snapshot_get();
    if (p.depth == 0) {
        for (size_t i = 0; i < snap->n; i++)
            if (snap->svcs[i]->status != REG_INACTIVE)
                fill(buf, snap->svcs[i]->name, NULL, 0, 0);
    } else if (reg_snapshot_find(snap, p.name)) {
        for (int a = 0; a < REG_NATTR; a++)
            fill(buf, reg_attr_name(a), NULL, 0, 0);
        stg_list(p.name, fs_fill_name, &ctx);
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
        rst_begin(p.name, fs_caller_pid(), who);
    return rc;
}

static int svc_rmdir(const char *rel)
{
    struct svc_path p;
    char who[64];
    int rc;

    parse(rel, &p);
    if (p.depth != 1)
        return p.depth == 2 ? -ENOTDIR : -ENOENT;
    fs_caller(who, sizeof(who));
    rst_forget(p.name);
    rc = reg_deregister(p.name, who);
    if (rc == 0)
        stg_drop(p.name);
    return rc;
}

/* rm of a staging file removes it. rm of an attribute changes nothing (see rst_hide): 0, and
 * the file looks absent to the caller until it creates it or for two seconds. */
static int svc_unlink(const char *rel)
{
    struct svc_path p;
    pid_t pid = fs_caller_pid();

    parse(rel, &p);
    if (is_apply(&p))
        return -EPERM;
    if (p.depth == 1)
        return -EISDIR;
    if (p.depth != 2 || !svc_live(p.name))
        return -ENOENT;
    if (p.attr < 0)
        return stg_remove(p.name, p.leaf);
    if (rst_hidden(p.name, p.attr, pid))
        return -ENOENT;
    rst_hide(p.name, p.attr, pid);
    return 0;
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

/* A staging file is served live (reads and writes at any offset), with direct_io. */
static int open_staging(const struct svc_path *p, struct fuse_file_info *fi)
{
    size_t size;
    int rc;

    if (!svc_live(p->name) || stg_size(p->name, p->leaf, &size) < 0)
        return -ENOENT;
    if (fi->flags & O_TRUNC) {
        rc = stg_truncate(p->name, p->leaf, 0);
        if (rc < 0)
            return rc;
    }
    return fs_fh_set(fi, "", 0);
}

static int svc_open(const char *rel, struct fuse_file_info *fi)
{
    struct svc_path p;

    parse(rel, &p);
    if (p.depth == 2)
        return p.attr >= 0 ? open_attr(&p, fi) : open_staging(&p, fi);
    if (is_apply(&p))
        return fs_fh_set(fi, "", 0);
    return p.depth == 0 || p.depth == 1 ? -EISDIR : -ENOENT;
}

static int svc_create(const char *rel, struct fuse_file_info *fi)
{
    struct svc_path p;
    int rc;

    parse(rel, &p);
    if (is_apply(&p))
        return fs_fh_set(fi, "", 0);
    if (p.depth != 2)
        return -EPERM;
    if (p.attr < 0) {
        if (!svc_live(p.name))
            return -ENOENT;
        rc = stg_create(p.name, p.leaf);
        if (rc < 0)
            return rc;
        /* an rmdir that raced the check above has dropped the service's files before or
         * drops them after this one exists: either way none outlives the service */
        if (!svc_live(p.name)) {
            stg_remove(p.name, p.leaf);
            return -ENOENT;
        }
        return open_staging(&p, fi);
    }
    rc = open_attr(&p, fi);
    if (rc == 0)
        rst_created(p.name, p.attr, fs_caller_pid(), (fi->flags & O_EXCL) != 0);
    return rc;
}

static int svc_read(const char *rel, char *buf, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    struct svc_path p;

    parse(rel, &p);
    if (p.depth == 2 && p.attr < 0 && fi->fh) {
        int rc = stg_read(p.name, p.leaf, buf, size, off);

        /* renamed over an attribute or removed meanwhile: what the handle holds (nothing) */
        return rc == -ENOENT ? 0 : rc;
    }
    return fs_fh_read(fi, buf, size, off);
}

static int svc_write(const char *rel, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    struct svc_path p;
    char who[64];
    int rc;

    (void)fi;
    parse(rel, &p);
    fs_caller(who, sizeof(who));
    if (is_apply(&p) || (p.depth == 2 && p.attr >= 0 && off != 0)) {
        /* sysfs semantics: the whole value (document) in one write at offset 0 */
        if (off != 0) {
            reg_refuse(is_apply(&p) ? APPLY_NAME : p.name, is_apply(&p) ? -1 : p.attr, who,
                       -EINVAL, "a value is written whole, in one write at offset 0");
            return -EINVAL;
        }
        rc = reg_apply_json(buf, size, who);
        return rc < 0 ? rc : (int)size;
    }
    if (p.depth != 2)
        return -EPERM;
    if (p.attr < 0)
        return svc_live(p.name) ? stg_write(p.name, p.leaf, buf, size, off) : -ENOENT;
    rc = rst_write(p.name, p.attr, fs_caller_pid(), buf, size, off);
    if (rc != 0)
        return rc < 0 ? rc : (int)size;
    /* reg_set refuses a value over VAL_VALUE_MAX with EFBIG, audited like every refusal */
    rc = reg_set(p.name, p.attr, buf, size, who);
    return rc < 0 ? rc : (int)size;
}

static int svc_truncate(const char *rel, off_t size)
{
    struct svc_path p;
    long cur;

    parse(rel, &p);
    if (is_apply(&p))
        return size == 0 ? 0 : -EINVAL;
    if (p.depth != 2)
        return -EPERM;
    if (p.attr < 0)
        return svc_live(p.name) ? stg_truncate(p.name, p.leaf, size) : -ENOENT;
    /* O_TRUNC and truncate to 0 leave the value alone until the write; so does a truncate to
     * the size the file has (rsync --inplace cuts the file to what it wrote). */
    cur = attr_size(&p);
    if (cur < 0)
        return (int)cur;
    return size == 0 || size == cur ? 0 : -EINVAL;
}

/* rename within services/NAME/: a staging file over an attribute is one validated set of it
 * (on error nothing changes and the staging file stays); over another staging name it moves.
 * An attribute cannot be renamed (EPERM), nor can a service directory; between two services'
 * directories a rename is EXDEV (mv then copies, which works). */
static int svc_rename(const char *from, const char *to, unsigned int flags)
{
    struct svc_path f, t;
    char who[64];
    pid_t pid = fs_caller_pid();
    int rc;

    parse(from, &f);
    parse(to, &t);
    if (f.depth != 2 || t.depth != 2 || f.attr >= 0)
        return -EPERM;
    if (strcmp(f.name, t.name) != 0)
        return -EXDEV;
    if (flags & ~(unsigned int)RENAME_NOREPLACE)
        return -EINVAL;
    if (!svc_live(f.name))
        return -ENOENT;
    if (t.attr < 0)
        return stg_rename(f.name, f.leaf, t.leaf, flags & RENAME_NOREPLACE);
    if ((flags & RENAME_NOREPLACE) && !rst_hidden(t.name, t.attr, pid))
        return -EEXIST;
    fs_caller(who, sizeof(who));
    rc = stg_commit(f.name, f.leaf, t.attr, who);
    if (rc == 0)
        rst_created(t.name, t.attr, pid, false);
    return rc;
}

/* The close of an attribute file: where a cp -r restore's collected values are committed, so
 * that close(2) reports a refusal (core/restore.h). */
static int svc_flush(const char *rel)
{
    struct svc_path p;

    parse(rel, &p);
    if (p.depth != 2 || p.attr < 0)
        return 0;
    return rst_flush(p.name, fs_caller_pid());
}

/* Modes and owners are derived, as times are: chmod of a file here changes nothing and
 * succeeds (install, editors and rsync set the mode they want); chown succeeds when it names
 * the owner the file already has. */
static int svc_chmod(const char *rel, mode_t mode)
{
    struct svc_path p;
    struct stat st;

    (void)mode;
    parse(rel, &p);
    if (p.depth != 2)
        return -EPERM;
    return svc_getattr(rel, &st);
}

static int svc_chown(const char *rel, uid_t uid, gid_t gid)
{
    struct svc_path p;
    struct stat st;
    int rc;

    parse(rel, &p);
    if (p.depth != 2)
        return -EPERM;
    rc = svc_getattr(rel, &st);
    if (rc < 0)
        return rc;
    if (uid != (uid_t)-1 && uid != getuid())
        return -EPERM;
    if (gid != (gid_t)-1 && gid != getgid() &&
        !(fs_cfg.has_admin_group && gid == (gid_t)fs_cfg.admin_gid))
        return -EPERM;
    return 0;
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
    .read = svc_read,
    .rename = svc_rename,
    .chmod = svc_chmod,
    .chown = svc_chown,
    .flush = svc_flush,
};
