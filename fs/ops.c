/* ops.c: the FUSE operations table. Routes each path to its tree (services/, ca/, monitor/,
 * audit/) and answers for the root itself. Live files are snapshotted at open and served with
 * direct_io. rename, chmod and chown go to a tree that takes them (services/: staging files and
 * attribute replacement, see services.c); everywhere else they are EPERM.
 *
 * Stale handles: when a file, or the directory above it, is removed while the file is open
 * (rm of an attribute or a leaf certificate, rmdir of a service or target), libfuse passes the
 * operations on that handle a NULL path. Such a handle still reads the snapshot taken at open
 * and closes; every other operation on it returns ESTALE (fstat too: libfuse answers it). With
 * hard_remove (fs_init), an open file is removed like any other instead of being renamed. */
#include "fs/fs.h"

#include "core/restore.h"
#include "core/staging.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static time_t mount_time;

static const struct fs_tree *const trees[] = {
    &fs_services_tree, &fs_ca_tree, &fs_monitor_tree, &fs_audit_tree,
};
#define NTREES (sizeof(trees) / sizeof(trees[0]))

/* Route path (never NULL: the callers answer a stale handle first): NULL for the root itself
 * (*rel NULL), or the tree with *rel set to the rest. An unknown top-level name gives NULL with
 * *rel non-NULL. */
static const struct fs_tree *route(const char *path, const char **rel)
{
    char top[32];
    const char *rest;

    *rel = NULL;
    if (strcmp(path, "/") == 0)
        return NULL;
    rest = fs_split(path + 1, top, sizeof(top));
    *rel = "";
    if (!rest)
        return NULL;
    for (size_t i = 0; i < NTREES; i++)
        if (strcmp(trees[i]->name, top) == 0) {
            *rel = rest;
            return trees[i];
        }
    return NULL;
}

/* Route path like route(). NULL is the path libfuse passes for a handle whose node was removed
 * (see the top of this file): -ESTALE. libfuse resolves the paths of mkdir, unlink, open and the
 * like itself, so they are never NULL there, but nothing here trusts that. 0 or -ESTALE. */
static int resolve(const char *path, const struct fs_tree **t, const char **rel)
{
    if (!path)
        return -ESTALE;
    *t = route(path, rel);
    return 0;
}

/* Whether thread tid has gid among its supplementary groups ("Groups:" in its
 * /proc/TID/task/TID/status). Not fuse_getgroups: libfuse 3.14 searches that file's text
 * without terminating it, reading past its buffer. Unreadable counts as not a member. */
static bool caller_in_group(pid_t tid, gid_t gid)
{
    char path[64];
    char *line = NULL;
    size_t cap = 0;
    bool found = false;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/task/%ld/status", (long)tid, (long)tid);
    f = fopen(path, "re");
    if (!f)
        return false;
    while (getline(&line, &cap, f) > 0) {
        char *s, *end;

        if (strncmp(line, "Groups:", 7) != 0)
            continue;
        for (s = line + 7;; s = end) {
            unsigned long v;

            errno = 0;
            v = strtoul(s, &end, 10);
            if (end == s || errno)
                break;
            if (v == (unsigned long)gid) {
                found = true;
                break;
            }
        }
        break;
    }
    free(line);
    fclose(f);
    return found;
}

/* Whether the caller may change anything: root, the daemon's own user, or (with
 * --admin-group) a member of that group. Everyone else may only read. With
 * -o default_permissions the kernel enforces the same through the modes getattr reports. */
static bool may_write(void)
{
    struct fuse_context *ctx = fuse_get_context();

    if (!ctx || ctx->uid == 0 || ctx->uid == getuid())
        return true;
    if (!fs_cfg.has_admin_group)
        return false;
    if (ctx->gid == (gid_t)fs_cfg.admin_gid)
        return true;
    return ctx->pid > 0 && caller_in_group(ctx->pid, (gid_t)fs_cfg.admin_gid);
}

/* resolve(), then refuse a caller who may not change anything: 0, -ESTALE or -EACCES. */
static int resolve_write(const char *path, const struct fs_tree **t, const char **rel)
{
    int rc = resolve(path, t, rel);

    if (rc < 0)
        return rc;
    return may_write() ? 0 : -EACCES;
}

/* resolve_write for an operation on a node of a tree: 0 with *t set, or the error: resolve_write's,
 * none for a path in no tree, root for the root itself. */
static int write_target(const char *path, const struct fs_tree **t, const char **rel, int none,
                        int root)
{
    int rc = resolve_write(path, t, rel);

    if (rc < 0)
        return rc;
    if (!*t)
        return *rel ? none : root;
    return 0;
}

static void *fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    (void)conn;
    /* Everything is derived from module state that may change under any path: no caching. */
    cfg->entry_timeout = 0;
    cfg->attr_timeout = 0;
    cfg->negative_timeout = 0;
    /* rm of an open file (a leaf being rotated, an attribute being reset) removes it at once:
     * the default would rename it to .fuse_hidden*, and renames are refused. */
    cfg->hard_remove = 1;
    return NULL;
}

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    const char *rel;
    const struct fs_tree *t;
    int rc;

    (void)fi;
    if ((rc = resolve(path, &t, &rel)) < 0)
        return rc;
    memset(st, 0, sizeof(*st));
    st->st_uid = getuid();
    st->st_gid = getgid();
    st->st_atime = st->st_mtime = st->st_ctime = mount_time;
    if (!t && !rel) {
        fs_stat_dir(st);
        st->st_nlink = 2 + NTREES;
        if (fs_cfg.has_admin_group)
            st->st_gid = (gid_t)fs_cfg.admin_gid;
        return 0;
    }
    if (!t)
        return -ENOENT;
    if (*rel == '\0' && !t->getattr) {
        fs_stat_dir(st);
        rc = 0;
    } else {
        rc = t->getattr ? t->getattr(rel, st) : -ENOENT;
    }
    /* With --admin-group, what the owner may write the group may write too. */
    if (rc == 0 && fs_cfg.has_admin_group) {
        st->st_gid = (gid_t)fs_cfg.admin_gid;
        if (st->st_mode & S_IWUSR)
            st->st_mode |= S_IWGRP;
    }
    return rc;
}

static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
                      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
    const char *rel;
    const struct fs_tree *t;
    int rc;

    if ((rc = resolve(path, &t, &rel)) < 0)
        return rc;
    (void)off;
    (void)fi;
    (void)flags;
    if (!t && rel)
        return -ENOENT;
    fill(buf, ".", NULL, 0, 0);
    fill(buf, "..", NULL, 0, 0);
    if (!t) {
        for (size_t i = 0; i < NTREES; i++)
            fill(buf, trees[i]->name, NULL, 0, 0);
        return 0;
    }
    if (t->readdir)
        return t->readdir(rel, buf, fill);
    return *rel ? -ENOENT : 0;
}

static int fs_mkdir(const char *path, mode_t mode)
{
    const char *rel;
    const struct fs_tree *t;
    int rc = write_target(path, &t, &rel, -EPERM, -EEXIST);

    (void)mode;
    if (rc < 0)
        return rc;
    if (*rel == '\0')
        return -EEXIST;
    return t->mkdir ? t->mkdir(rel) : -EPERM;
}

static int fs_rmdir(const char *path)
{
    const char *rel;
    const struct fs_tree *t;
    int rc = write_target(path, &t, &rel, -ENOENT, -EPERM);

    if (rc < 0)
        return rc;
    if (*rel == '\0' || !t->rmdir)
        return -EPERM;
    return t->rmdir(rel);
}

static int fs_unlink(const char *path)
{
    const char *rel;
    const struct fs_tree *t;
    int rc = write_target(path, &t, &rel, -ENOENT, -EPERM);

    return rc < 0 ? rc : t->unlink ? t->unlink(rel) : -EPERM;
}

static int fs_open(const char *path, struct fuse_file_info *fi)
{
    const char *rel;
    const struct fs_tree *t;
    int rc;

    if ((rc = resolve(path, &t, &rel)) < 0)
        return rc;
    if ((fi->flags & O_ACCMODE) != O_RDONLY && !may_write())
        return -EACCES;

    fi->fh = 0;
    if (!t)
        return rel ? -ENOENT : -EISDIR;
    return t->open ? t->open(rel, fi) : -ENOENT;
}

static int fs_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    const char *rel;
    const struct fs_tree *t;
    int rc;

    (void)mode;
    fi->fh = 0;
    rc = write_target(path, &t, &rel, -EPERM, -EPERM);
    return rc < 0 ? rc : t->create ? t->create(rel, fi) : -EPERM;
}

static int fs_read(const char *path, char *buf, size_t size, off_t off,
                   struct fuse_file_info *fi)
{
    const char *rel;
    const struct fs_tree *t;

    if (!path)   /* removed while open: what was read at open, if anything */
        return fi->fh ? fs_fh_read(fi, buf, size, off) : -ESTALE;
    t = route(path, &rel);
    if (t && t->read)
        return t->read(rel, buf, size, off, fi);
    return fs_fh_read(fi, buf, size, off);
}

static int fs_write(const char *path, const char *buf, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    const char *rel;
    const struct fs_tree *t;
    int rc = write_target(path, &t, &rel, -EPERM, -EPERM);

    return rc < 0 ? rc : t->write ? t->write(rel, buf, size, off, fi) : -EPERM;
}

static int fs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
    const char *rel;
    const struct fs_tree *t;
    int rc = write_target(path, &t, &rel, -ENOENT, -EPERM);

    (void)fi;
    return rc < 0 ? rc : t->truncate ? t->truncate(rel, size) : -EPERM;
}

/* close(2): the tree's flush. A removed node (NULL path) has nothing left to commit. */
static int fs_flush(const char *path, struct fuse_file_info *fi)
{
    const char *rel;
    const struct fs_tree *t;

    (void)fi;
    if (!path)
        return 0;
    t = route(path, &rel);
    return t && t->flush && rel ? t->flush(rel) : 0;
}

static int fs_release(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    fs_fh_free(fi);
    return 0;
}

static int fs_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
    struct stat st;

    (void)tv;
    /* Times are derived (a removed node: ESTALE from getattr); touching an existing node is
     * accepted and changes nothing. */
    return fs_getattr(path, &st, fi);
}

/* A rename within one tree goes to that tree (services/ stages replacements there); between
 * trees, and at the root, it is refused. */
static int fs_rename(const char *from, const char *to, unsigned int flags)
{
    const char *rf, *rt;
    const struct fs_tree *tf, *tt;

    if (!from || !to)
        return -ESTALE;   /* libfuse resolves these itself; never NULL, but never trusted */
    tf = route(from, &rf);
    tt = route(to, &rt);
    if (!may_write())
        return -EACCES;
    if (!tf || tf != tt || *rf == '\0' || *rt == '\0' || !tf->rename)
        return -EPERM;
    return tf->rename(rf, rt, flags);
}

static int deny_link(const char *from, const char *to)
{
    (void)from;
    (void)to;
    return -EPERM;
}

/* Modes and owners are derived: a tree may accept chmod and chown as changing nothing. */
static int fs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    const char *rel;
    const struct fs_tree *t;
    int rc = write_target(path, &t, &rel, -EPERM, -EPERM);

    (void)fi;
    return rc < 0 ? rc : *rel != '\0' && t->chmod ? t->chmod(rel, mode) : -EPERM;
}

static int fs_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
    const char *rel;
    const struct fs_tree *t;
    int rc = write_target(path, &t, &rel, -EPERM, -EPERM);

    (void)fi;
    return rc < 0 ? rc : *rel != '\0' && t->chown ? t->chown(rel, uid, gid) : -EPERM;
}

static int deny_mknod(const char *path, mode_t mode, dev_t dev)
{
    (void)path;
    (void)mode;
    (void)dev;
    return -EPERM;
}

/* Unmount: what only lived in memory goes. */
static void fs_destroy(void *private_data)
{
    (void)private_data;
    rst_finish();
    stg_clear();
}

const struct fuse_operations fs_ops = {
    .init = fs_init,
    .destroy = fs_destroy,
    .getattr = fs_getattr,
    .readdir = fs_readdir,
    .mkdir = fs_mkdir,
    .rmdir = fs_rmdir,
    .unlink = fs_unlink,
    .open = fs_open,
    .create = fs_create,
    .read = fs_read,
    .write = fs_write,
    .truncate = fs_truncate,
    .flush = fs_flush,
    .release = fs_release,
    .utimens = fs_utimens,
    .rename = fs_rename,
    .link = deny_link,
    .symlink = deny_link,
    .chmod = fs_chmod,
    .chown = fs_chown,
    .mknod = deny_mknod,
};

void fs_ops_start(void)
{
    mount_time = time(NULL);
}
