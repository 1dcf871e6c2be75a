/* monitor.c: the monitor/ tree. health.json and metrics.prom at the top; one directory per
 * probed place (local, targets, services) with live probe files, generated at open and served
 * from the handle's snapshot; a target's target.json is read-write with sysfs semantics, and
 * mkdir and rmdir (or rm -r) add and remove targets. Probe files report size 0: they are
 * direct_io, read until EOF. */
#include "fs/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "core/health.h"
#include "monitor/monitor.h"

enum top { TOP_NONE, TOP_HEALTH, TOP_METRICS };

/* A path below monitor/: "" (depth 0), "NAME" (1), "DIR/FILE" (2); -1 otherwise. */
struct mpath {
    int depth;
    char name[256];
    int file;           /* enum mon_file at depth 2, -1 when unknown */
    enum top top;       /* depth 1: health.json or metrics.prom */
};

static void parse(const char *rel, struct mpath *p)
{
    char comp[64];

    memset(p, 0, sizeof(*p));
    p->file = -1;
    p->depth = fs_split2(rel, p->name, sizeof(p->name), comp, sizeof(comp));
    if (p->depth == 1 && strcmp(p->name, "health.json") == 0)
        p->top = TOP_HEALTH;
    else if (p->depth == 1 && strcmp(p->name, "metrics.prom") == 0)
        p->top = TOP_METRICS;
    else if (p->depth == 2)
        p->file = mon_file_from_name(comp);
}

/* Whether DIR/FILE exists. */
static bool has_file(const struct mpath *p)
{
    unsigned mask;

    return p->file >= 0 && mon_dir_files(p->name, &mask) == 0 && (mask & (1u << p->file));
}

static int tree_getattr(const char *rel, struct stat *st)
{
    struct mpath p;
    unsigned mask;
    char *text = NULL;
    size_t len = 0;
    int rc = 0;

    parse(rel, &p);
    if (p.depth == 0) {
        fs_stat_dir(st);
    } else if (p.depth == 1 && p.top != TOP_NONE) {
        fs_stat_file(st, 0444, 0);
    } else if (p.depth == 1) {
        rc = mon_dir_files(p.name, &mask);
        if (rc == 0)
            fs_stat_dir(st);
    } else if (p.depth == 2 && has_file(&p)) {
        if (p.file == MON_FILE_TARGET) {
            rc = mon_read(p.name, MON_FILE_TARGET, &text, &len);
            if (rc == 0)
                fs_stat_file(st, 0644, len);
            free(text);
        } else {
            fs_stat_file(st, 0444, 0);
        }
    } else {
        rc = -ENOENT;
    }
    return rc;
}

static int tree_readdir(const char *rel, void *buf, fuse_fill_dir_t fill)
{
    struct mpath p;
    struct fs_filler ctx = { buf, fill };
    unsigned mask;

    parse(rel, &p);
    if (p.depth == 0) {
        fill(buf, "health.json", NULL, 0, 0);
        fill(buf, "metrics.prom", NULL, 0, 0);
        mon_dirs(fs_fill_name, &ctx);
        return 0;
    }
    if (p.depth != 1 || p.top != TOP_NONE)
        return p.depth == 1 || p.depth == 2 ? -ENOTDIR : -ENOENT;
    if (mon_dir_files(p.name, &mask) < 0)
        return -ENOENT;
    for (int f = 0; f < MON_NFILES; f++)
        if (mask & (1u << f))
            fill(buf, mon_file_name((enum mon_file)f), NULL, 0, 0);
    return 0;
}

/* metrics.prom: the probes' metrics, then the health gauges of health.json. 0 or -errno. */
static int metrics_text(char **text, size_t *len)
{
    char *health = NULL;
    int rc = mon_metrics(text, len);

    if (rc == 0)
        rc = health_json(&health);
    if (rc == 0)
        rc = mon_metrics_health(text, len, health);
    free(health);
    if (rc < 0) {
        free(*text);
        *text = NULL;
    }
    return rc;
}

static int tree_open(const char *rel, struct fuse_file_info *fi)
{
    struct mpath p;
    unsigned mask;
    char *text = NULL;
    size_t len = 0;
    int rc;

    parse(rel, &p);
    if (p.depth == 0 || (p.depth == 1 && p.top == TOP_NONE))
        return p.depth == 0 || mon_dir_files(p.name, &mask) == 0 ? -EISDIR : -ENOENT;
    if (p.depth == 2 && !has_file(&p))
        return -ENOENT;
    if (p.depth < 0)
        return -ENOENT;
    if ((fi->flags & O_ACCMODE) != O_RDONLY && p.file != MON_FILE_TARGET)
        return -EACCES;
    if (p.top == TOP_HEALTH)
        rc = health_json(&text);
    else if (p.top == TOP_METRICS)
        rc = metrics_text(&text, &len);
    else
        rc = mon_read(p.name, (enum mon_file)p.file, &text, &len);
    if (rc == 0 && p.top == TOP_HEALTH) {
        /* health_json gives no newline: add one, as every other file has */
        char *nl = realloc(text, strlen(text) + 2);

        rc = nl ? 0 : -ENOMEM;
        if (nl) {
            text = nl;
            len = strlen(text);
            text[len++] = '\n';
            text[len] = '\0';
        }
    }
    if (rc == 0)
        rc = fs_fh_set(fi, text, len);
    free(text);
    return rc;
}

static int tree_write(const char *rel, const char *buf, size_t size, off_t off,
                      struct fuse_file_info *fi)
{
    struct mpath p;
    char who[64];
    int rc;

    (void)fi;
    parse(rel, &p);
    if (p.depth != 2 || p.file != MON_FILE_TARGET)
        return -EPERM;
    fs_caller(who, sizeof(who));
    /* refuses a write over 4 KiB (EFBIG) or at an offset (EINVAL), audited like every refusal */
    rc = mon_target_write(p.name, buf, size, (long long)off, who);
    return rc < 0 ? rc : (int)size;
}

static int tree_truncate(const char *rel, off_t size)
{
    struct mpath p;

    parse(rel, &p);
    if (p.depth != 2 || !has_file(&p))
        return -ENOENT;
    if (p.file != MON_FILE_TARGET)
        return -EACCES;
    /* O_TRUNC and truncate to 0 leave the settings alone until the write. */
    return size == 0 ? 0 : -EINVAL;
}

/* rm of target.json clears the target's settings; rm of a target's probe file does nothing
 * (it follows target.json), so that `rm -r monitor/T` works; other probe files: EPERM. */
static int tree_unlink(const char *rel)
{
    struct mpath p;
    unsigned mask = 0;
    char who[64];

    parse(rel, &p);
    if (p.depth == 1)
        return p.top != TOP_NONE ? -EPERM : -EISDIR;
    if (p.depth != 2 || !has_file(&p))
        return -ENOENT;
    if (p.file != MON_FILE_TARGET) {
        mon_dir_files(p.name, &mask);
        return mask & (1u << MON_FILE_TARGET) ? 0 : -EPERM;
    }
    fs_caller(who, sizeof(who));
    return mon_target_set(p.name, NULL, 0, who);
}

static int tree_mkdir(const char *rel)
{
    struct mpath p;
    char who[64];

    parse(rel, &p);
    if (p.depth != 1)
        return -EPERM;
    if (p.top != TOP_NONE)
        return -EEXIST;
    fs_caller(who, sizeof(who));
    return mon_target_add(p.name, who);
}

static int tree_rmdir(const char *rel)
{
    struct mpath p;
    char who[64];

    parse(rel, &p);
    if (p.depth == 2)
        return has_file(&p) ? -ENOTDIR : -ENOENT;
    if (p.depth != 1)
        return -ENOENT;
    if (p.top != TOP_NONE)
        return -ENOTDIR;
    fs_caller(who, sizeof(who));
    return mon_target_remove(p.name, who);
}

const struct fs_tree fs_monitor_tree = {
    .name = "monitor",
    .getattr = tree_getattr,
    .readdir = tree_readdir,
    .open = tree_open,
    .write = tree_write,
    .truncate = tree_truncate,
    .unlink = tree_unlink,
    .mkdir = tree_mkdir,
    .rmdir = tree_rmdir,
};
