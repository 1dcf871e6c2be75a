/* node.c: what every tree shares: the configuration (fs_cfg), stat filling, path splitting,
 * the caller's identity, and the snapshot file handle. */
#include "fs/fs.h"

#include <errno.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct cfs_config fs_cfg;

void fs_stat_dir(struct stat *st)
{
    st->st_mode = S_IFDIR | 0755;
    st->st_nlink = 2;
}

void fs_stat_file(struct stat *st, mode_t perm, size_t size)
{
    st->st_mode = S_IFREG | perm;
    st->st_nlink = 1;
    st->st_size = (off_t)size;
}

void fs_fill_name(const char *name, void *ctx)
{
    struct fs_filler *c = ctx;

    c->fill(c->buf, name, NULL, 0, 0);
}

const char *fs_split(const char *rel, char *buf, size_t len)
{
    const char *slash = strchr(rel, '/');
    size_t n = slash ? (size_t)(slash - rel) : strlen(rel);

    if (n == 0 || n >= len)
        return NULL;
    memcpy(buf, rel, n);
    buf[n] = '\0';
    return slash ? slash + 1 : rel + n;
}

int fs_split2(const char *rel, char *name, size_t nlen, char *leaf, size_t llen)
{
    const char *rest;

    if (*rel == '\0')
        return 0;
    rest = fs_split(rel, name, nlen);
    if (!rest)
        return -1;
    if (*rest == '\0')
        return 1;
    rest = fs_split(rest, leaf, llen);
    return rest && *rest == '\0' ? 2 : -1;
}

void fs_caller(char *buf, size_t len)
{
    struct fuse_context *ctx = fuse_get_context();
    uid_t uid = ctx ? ctx->uid : getuid();
    struct passwd pw, *res = NULL;
    char tmp[1024];

    if (getpwuid_r(uid, &pw, tmp, sizeof(tmp), &res) == 0 && res)
        snprintf(buf, len, "%s", res->pw_name);
    else
        snprintf(buf, len, "%u", (unsigned)uid);
}

pid_t fs_caller_pid(void)
{
    struct fuse_context *ctx = fuse_get_context();

    return ctx ? ctx->pid : 0;
}

/* The snapshot behind a live file's handle. */
struct fs_fh {
    size_t len;
    char data[];
};

int fs_fh_set(struct fuse_file_info *fi, const char *data, size_t len)
{
    struct fs_fh *fh = malloc(sizeof(*fh) + len);

    if (!fh)
        return -ENOMEM;
    fh->len = len;
    if (len)
        memcpy(fh->data, data, len);
    free((void *)(uintptr_t)fi->fh);
    fi->fh = (uint64_t)(uintptr_t)fh;
    fi->direct_io = 1;
    return 0;
}

int fs_fh_read(struct fuse_file_info *fi, char *buf, size_t size, off_t off)
{
    struct fs_fh *fh = (struct fs_fh *)(uintptr_t)fi->fh;

    if (!fh)
        return -EBADF;
    if (off < 0 || (size_t)off >= fh->len)
        return 0;
    if (size > fh->len - (size_t)off)
        size = fh->len - (size_t)off;
    memcpy(buf, fh->data + off, size);
    return (int)size;
}

void fs_fh_free(struct fuse_file_info *fi)
{
    free((void *)(uintptr_t)fi->fh);
    fi->fh = 0;
}
