/* statefile.c: the state directory's policy (mode 0700, leftover temp files) over the util
 * layer's file utilities, which do the crash-safe writes (util/util.h). */
#include "core/statefile.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

int state_mkdir(const char *path, mode_t mode)
{
    return cu_mkdir(path, mode);
}

/* mkdir -p with mode for every created component. */
static int mkdir_parents(const char *dir, mode_t mode)
{
    char buf[PATH_MAX];
    size_t len = strlen(dir);
    int rc;

    if (len == 0 || len >= sizeof(buf))
        return -ENAMETOOLONG;
    memcpy(buf, dir, len + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        rc = state_mkdir(buf, mode);
        *p = '/';
        if (rc < 0)
            return rc;
    }
    return state_mkdir(buf, mode);
}

int state_dir_init(const char *dir, bool *created)
{
    struct stat st;
    DIR *d;
    struct dirent *de;
    bool empty = true;
    int rc;

    *created = false;
    if (stat(dir, &st) < 0) {
        if (errno != ENOENT)
            return -errno;
        rc = mkdir_parents(dir, 0700);
        if (rc < 0)
            return rc;
        *created = true;
        return 0;
    }
    if (!S_ISDIR(st.st_mode))
        return -ENOTDIR;
    if (access(dir, R_OK | W_OK | X_OK) < 0)
        return -errno;
    if ((st.st_mode & 0777) != 0700 && chmod(dir, 0700) < 0)
        return -errno;
    d = opendir(dir);
    if (!d)
        return -errno;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
            empty = false;
            break;
        }
    }
    closedir(d);
    *created = empty;
    return 0;
}

int state_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    return cu_write_atomic(path, data, len, mode);
}

int state_unlink(const char *path)
{
    if (unlink(path) < 0)
        return errno == ENOENT ? 0 : -errno;
    return cu_fsync_parent(path);
}

int state_read_file(const char *path, char **data, size_t *len)
{
    return cu_read_all(path, 0, data, len);
}

int state_path(char *buf, size_t len, const char *dir, const char *name)
{
    return cu_path(buf, len, dir, name);
}

void state_now_iso(char *buf, size_t len)
{
    cu_iso_now(buf, len);
}

int state_clean_temps(const char *dir)
{
    char path[PATH_MAX];
    DIR *d = opendir(dir);
    struct dirent *de;
    int rc = 0;

    if (!d)
        return errno == ENOENT ? 0 : -errno;
    while ((de = readdir(d)) != NULL) {
        if (!cu_is_temp_name(de->d_name))
            continue;
        if (state_path(path, sizeof(path), dir, de->d_name) == 0 && unlink(path) < 0 &&
            errno != ENOENT)
            rc = -errno;
    }
    closedir(d);
    return rc;
}

int state_keep_corrupt(const char *path, const char *doc, size_t len, char *aside,
                       size_t asidelen)
{
    char ts[32];
    int n, rc;

    if (asidelen == 0)
        return -ENAMETOOLONG;
    cu_iso_now(ts, sizeof(ts));
    n = snprintf(aside, asidelen, "%s.corrupt-%s", path, ts);
    rc = n < 0 || (size_t)n >= asidelen ? -ENAMETOOLONG :
         cu_write_atomic(aside, doc, len, 0600);
    if (rc < 0)
        aside[0] = '\0';
    return rc;
}

void state_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cu_verr(err, errlen, fmt, ap);
    va_end(ap);
}
