/* ops.c: the FUSE operations. Each one routes its path, calls a module, and returns -errno.
 * Attribute files are snapshotted into the file handle at open and served with direct_io. */
#include "fs/fs.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct reg_config fs_cfg;
static time_t mount_time;

/* An open attribute file: the value at open time, with its newline. */
struct attr_fh {
    size_t len;
    char data[];
};

/* ---- the cp -r restore idiom ----
 * `cp -r backup/core services/` makes the directory, then creates each file with
 * O_CREAT|O_EXCL, which fails with EEXIST on a file that already exists. So, for the process that
 * just made a service directory and for a few seconds, lookups of that directory's attribute
 * files say ENOENT; its exclusive creates then reach fs_create, which opens the attribute. */
#define FRESH_SLOTS 16
#define FRESH_SECONDS 2

static struct {
    char name[64];
    pid_t pid;
    time_t until;
    unsigned created;   /* bit per attribute this process has created: visible to it again */
} fresh[FRESH_SLOTS];
static pthread_mutex_t fresh_lock = PTHREAD_MUTEX_INITIALIZER;

static void fresh_note(const char *name, pid_t pid)
{
    time_t now = time(NULL);
    int slot = 0;

    pthread_mutex_lock(&fresh_lock);
    for (int i = 0; i < FRESH_SLOTS; i++) {
        if (fresh[i].until < fresh[slot].until)
            slot = i;
        if (fresh[i].until < now) {
            slot = i;
            break;
        }
    }
    snprintf(fresh[slot].name, sizeof(fresh[slot].name), "%s", name);
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

static pid_t caller_pid(void)
{
    struct fuse_context *ctx = fuse_get_context();

    return ctx ? ctx->pid : 0;
}

/* ---- operations ---- */

static void *fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    (void)conn;
    cfg->use_ino = 0;
    cfg->nullpath_ok = 0;
    /* Everything is derived from the registry, which may change under any path: no caching. */
    cfg->entry_timeout = 0;
    cfg->attr_timeout = 0;
    cfg->negative_timeout = 0;
    cfg->direct_io = 0;
    return NULL;
}

static void fill_dir(struct stat *st)
{
    st->st_mode = S_IFDIR | 0755;
    st->st_nlink = 2;
}

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    struct fs_node n;
    struct reg_snapshot *snap;
    const struct reg_service *svc;
    int rc = 0;

    memset(st, 0, sizeof(*st));
    st->st_uid = getuid();
    st->st_gid = getgid();
    st->st_atime = st->st_mtime = st->st_ctime = mount_time;
    fs_route(path, &n);
    switch (n.kind) {
    case FS_ROOT:
    case FS_TOP:
        fill_dir(st);
        return 0;
    case FS_SVC_DIR:
    case FS_SVC_ATTR:
        break;
    default:
        return -ENOENT;
    }
    snap = reg_snapshot_get();
    svc = reg_snapshot_find(snap, n.name);
    if (!svc) {
        rc = -ENOENT;
    } else if (n.kind == FS_SVC_DIR) {
        fill_dir(st);
    } else if (!fi && fresh_hidden(n.name, n.attr, caller_pid(), false)) {
        rc = -ENOENT;
    } else {
        st->st_mode = S_IFREG | 0644;
        st->st_nlink = 1;
        st->st_size = (off_t)strlen(reg_attr_value(svc, n.attr)) + 1;
    }
    reg_snapshot_put(snap);
    return rc;
}

static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
                      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
    static const char *const tops[] = { "services", "ca", "monitor", "audit" };
    struct fs_node n;
    struct reg_snapshot *snap;
    int rc = 0;

    (void)off;
    (void)fi;
    (void)flags;
    fs_route(path, &n);
    if (n.kind != FS_ROOT && n.kind != FS_TOP && n.kind != FS_SVC_DIR)
        return -ENOENT;
    fill(buf, ".", NULL, 0, 0);
    fill(buf, "..", NULL, 0, 0);
    if (n.kind == FS_ROOT) {
        for (size_t i = 0; i < sizeof(tops) / sizeof(tops[0]); i++)
            fill(buf, tops[i], NULL, 0, 0);
        return 0;
    }
    if (n.kind == FS_TOP && strcmp(n.top, "services") != 0)
        return 0;
    snap = reg_snapshot_get();
    if (n.kind == FS_TOP) {
        for (size_t i = 0; i < snap->n; i++)
            if (snap->svcs[i].status != REG_INACTIVE)
                fill(buf, snap->svcs[i].name, NULL, 0, 0);
    } else if (reg_snapshot_find(snap, n.name)) {
        for (int a = 0; a < REG_NATTR; a++)
            fill(buf, reg_attr_name(a), NULL, 0, 0);
    } else {
        rc = -ENOENT;
    }
    reg_snapshot_put(snap);
    return rc;
}

static int fs_mkdir(const char *path, mode_t mode)
{
    struct fs_node n;
    char who[64];
    int rc;

    (void)mode;
    fs_route(path, &n);
    if (n.kind != FS_SVC_DIR)
        return n.kind == FS_ROOT || n.kind == FS_TOP ? -EEXIST : -EPERM;
    fs_caller(who, sizeof(who));
    rc = reg_register(n.name, who);
    if (rc == 0)
        fresh_note(n.name, caller_pid());
    return rc;
}

static int fs_rmdir(const char *path)
{
    struct fs_node n;
    char who[64];

    fs_route(path, &n);
    if (n.kind != FS_SVC_DIR)
        return n.kind == FS_NONE ? -ENOENT : -EPERM;
    fs_caller(who, sizeof(who));
    fresh_forget(n.name);
    return reg_deregister(n.name, who);
}

static int fs_unlink(const char *path)
{
    struct fs_node n;
    char who[64];

    fs_route(path, &n);
    if (n.kind == FS_NONE)
        return -ENOENT;
    if (n.kind != FS_SVC_ATTR)
        return -EPERM;
    fs_caller(who, sizeof(who));
    return reg_reset(n.name, n.attr, who);
}

/* Snapshot the attribute's value into a new handle. */
static int open_attr(const struct fs_node *n, struct fuse_file_info *fi)
{
    struct reg_snapshot *snap = reg_snapshot_get();
    const struct reg_service *svc = reg_snapshot_find(snap, n->name);
    struct attr_fh *fh = NULL;
    const char *val;
    size_t len;
    int rc = 0;

    if (!svc) {
        rc = -ENOENT;
        goto out;
    }
    val = reg_attr_value(svc, n->attr);
    len = strlen(val);
    fh = malloc(sizeof(*fh) + len + 1);
    if (!fh) {
        rc = -ENOMEM;
        goto out;
    }
    memcpy(fh->data, val, len);
    fh->data[len] = '\n';
    fh->len = len + 1;
    fi->fh = (uint64_t)(uintptr_t)fh;
    fi->direct_io = 1;
    fi->nonseekable = 0;
out:
    reg_snapshot_put(snap);
    return rc;
}

static int fs_open(const char *path, struct fuse_file_info *fi)
{
    struct fs_node n;

    fs_route(path, &n);
    if (n.kind == FS_SVC_ATTR)
        return open_attr(&n, fi);
    return n.kind == FS_NONE || n.kind == FS_SVC_OTHER ? -ENOENT : -EISDIR;
}

static int fs_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    struct fs_node n;
    int rc;

    (void)mode;
    fs_route(path, &n);
    if (n.kind != FS_SVC_ATTR)
        return -EPERM;
    rc = open_attr(&n, fi);
    if (rc == 0)
        fresh_hidden(n.name, n.attr, caller_pid(), true);
    return rc;
}

static int fs_read(const char *path, char *buf, size_t size, off_t off,
                   struct fuse_file_info *fi)
{
    struct attr_fh *fh = (struct attr_fh *)(uintptr_t)fi->fh;

    (void)path;
    if (!fh)
        return -EBADF;
    if (off < 0 || (size_t)off >= fh->len)
        return 0;
    if (size > fh->len - (size_t)off)
        size = fh->len - (size_t)off;
    memcpy(buf, fh->data + off, size);
    return (int)size;
}

static int fs_write(const char *path, const char *buf, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    struct fs_node n;
    char who[64];
    int rc;

    (void)fi;
    fs_route(path, &n);
    if (n.kind != FS_SVC_ATTR)
        return -EPERM;
    if (size > VAL_VALUE_MAX + 1)
        return -EFBIG;
    if (off != 0)
        return -EINVAL;   /* sysfs semantics: the whole value in one write at offset 0 */
    fs_caller(who, sizeof(who));
    rc = reg_set(n.name, n.attr, buf, size, who);
    return rc < 0 ? rc : (int)size;
}

static int fs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
    struct fs_node n;

    (void)fi;
    fs_route(path, &n);
    if (n.kind == FS_NONE)
        return -ENOENT;
    if (n.kind != FS_SVC_ATTR)
        return -EPERM;
    /* O_TRUNC and truncate to 0 leave the value alone until the write. */
    return size == 0 ? 0 : -EINVAL;
}

static int fs_release(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    free((void *)(uintptr_t)fi->fh);
    fi->fh = 0;
    return 0;
}

static int fs_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
    struct stat st;

    (void)tv;
    /* Times are derived; touching an existing node is accepted and changes nothing. */
    return fs_getattr(path, &st, fi);
}

static int deny_rename(const char *from, const char *to, unsigned int flags)
{
    (void)from;
    (void)to;
    (void)flags;
    return -EPERM;
}

static int deny_link(const char *from, const char *to)
{
    (void)from;
    (void)to;
    return -EPERM;
}

static int deny_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    (void)path;
    (void)mode;
    (void)fi;
    return -EPERM;
}

static int deny_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
    (void)path;
    (void)uid;
    (void)gid;
    (void)fi;
    return -EPERM;
}

static int deny_mknod(const char *path, mode_t mode, dev_t dev)
{
    (void)path;
    (void)mode;
    (void)dev;
    return -EPERM;
}

const struct fuse_operations fs_ops = {
    .init = fs_init,
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
    .release = fs_release,
    .utimens = fs_utimens,
    .rename = deny_rename,
    .link = deny_link,
    .symlink = deny_link,
    .chmod = deny_chmod,
    .chown = deny_chown,
    .mknod = deny_mknod,
};

void fs_ops_start(void)
{
    mount_time = time(NULL);
}
