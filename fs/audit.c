/* audit.c: the audit/ tree. audit.log is read live and takes appends only; verify, head and
 * pubkey are read-only snapshots taken at open. Everything is answered by the audit module. */
#include "fs/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"

enum { F_LOG, F_VERIFY, F_HEAD, F_PUBKEY, NFILES };

static const char *const names[NFILES] = { "audit.log", "verify", "head", "pubkey" };

/* The file rel names, -1 for none. */
static int file_of(const char *rel)
{
    for (int i = 0; i < NFILES; i++)
        if (strcmp(rel, names[i]) == 0)
            return i;
    return -1;
}

/* The content of a read-only file, malloc'd into *out. 0 or -errno. */
static int content(int f, char **out, size_t *len)
{
    char key[80];
    int n;

    *out = NULL;
    if (f == F_VERIFY)
        return audit_verify_json(out, len);
    if (f == F_HEAD)
        return audit_head_json(out, len);
    n = audit_pubkey_text(key, sizeof(key));
    if (n < 0)
        return n;
    *out = strdup(key);
    *len = (size_t)n;
    return *out ? 0 : -ENOMEM;
}

static int aud_getattr(const char *rel, struct stat *st)
{
    int f = file_of(rel), rc = 0;
    char *text = NULL;
    size_t len = 0;
    off_t size = 0;

    if (*rel == '\0') {
        fs_stat_dir(st);
        return 0;
    }
    switch (f) {
    case F_LOG:
        rc = audit_log_size(&size);
        if (rc == 0)
            fs_stat_file(st, 0644, (size_t)size);
        return rc;
    case F_VERIFY:
        /* The report is made when the file is opened; like /proc, it has no size before. */
        fs_stat_file(st, 0444, 0);
        return 0;
    case F_HEAD:
    case F_PUBKEY:
        rc = content(f, &text, &len);
        if (rc == 0)
            fs_stat_file(st, 0444, len);
        free(text);
        return rc;
    default:
        return -ENOENT;
    }
}

static int aud_readdir(const char *rel, void *buf, fuse_fill_dir_t fill)
{
    if (*rel != '\0')
        return file_of(rel) >= 0 ? -ENOTDIR : -ENOENT;
    for (int i = 0; i < NFILES; i++)
        fill(buf, names[i], NULL, 0, 0);
    return 0;
}

static int aud_open(const char *rel, struct fuse_file_info *fi)
{
    int f = file_of(rel), rc;
    char *text = NULL;
    size_t len = 0;

    if (*rel == '\0')
        return -EISDIR;
    if (f < 0)
        return -ENOENT;
    if (fi->flags & O_TRUNC)
        return -EPERM;
    if (f == F_LOG) {
        /* Served live from state/audit.log, so a reader that keeps it open sees it grow. */
        fi->direct_io = 1;
        return 0;
    }
    if ((fi->flags & O_ACCMODE) != O_RDONLY)
        return -EPERM;
    rc = content(f, &text, &len);
    if (rc == 0)
        rc = fs_fh_set(fi, text, len);
    free(text);
    return rc;
}

static int aud_read(const char *rel, char *buf, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    if (file_of(rel) == F_LOG)
        return audit_log_read(buf, size, off);
    return fs_fh_read(fi, buf, size, off);
}

static int aud_write(const char *rel, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    char who[64];
    int rc;

    (void)off;   /* every write to audit.log is an append, whatever the offset */
    (void)fi;
    if (file_of(rel) != F_LOG)
        return -EPERM;
    fs_caller(who, sizeof(who));
    rc = audit_append_lines(buf, size, who);
    return rc < 0 ? rc : (int)size;
}

static int aud_truncate(const char *rel, off_t size)
{
    (void)size;
    return file_of(rel) >= 0 || *rel == '\0' ? -EPERM : -ENOENT;
}

const struct fs_tree fs_audit_tree = {
    .name = "audit",
    .getattr = aud_getattr,
    .readdir = aud_readdir,
    .open = aud_open,
    .read = aud_read,
    .write = aud_write,
    .truncate = aud_truncate,
};
