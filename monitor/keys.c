/* keys.c: where a monitoring target's SSH key may come from. The daemon runs as root and opens
 * the key a target.json writer names, so the file must be one the writer could hand over:
 * a file directly in <state>/monitoring/keys/ (a directory root owns and no one else may
 * write), or a regular file the writer owns. Never any other file inside the state directory,
 * nor one of the state's own key files (state/key, state/tls/ *.key) under any name. The file is
 * opened once (O_PATH), judged by what that descriptor is, and read through the same
 * descriptor, so a name swapped for a symlink after the check is never followed. */
#include "monitor/probe.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "core/statefile.h"
#include "util/util.h"

/* A private key file is a few KiB; anything much larger is not one. */
#define KEY_FILE_MAX (64u * 1024)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char state_real[PATH_MAX];       /* the state directory, symlinks resolved */
static char keys_real[PATH_MAX];        /* <state_real>/monitoring/keys */
static _Thread_local const char *reason = "";   /* why this thread's last load failed */

/* Create <state>/monitoring/keys (0700) and remember where the state directory really is.
 * 0 or -errno. */
int mon_keys_init(const char *state_dir)
{
    char real[PATH_MAX], keys[PATH_MAX], mon[PATH_MAX];
    int rc;

    if (!realpath(state_dir, real))
        return -errno;
    rc = state_path(mon, sizeof(mon), real, "monitoring");
    if (rc == 0)
        rc = state_path(keys, sizeof(keys), mon, "keys");
    if (rc == 0)
        rc = state_mkdir(keys, 0700);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&lock);
    snprintf(state_real, sizeof(state_real), "%s", real);
    snprintf(keys_real, sizeof(keys_real), "%s", keys);
    pthread_mutex_unlock(&lock);
    return 0;
}

/* The uid of a writer as fs/ names it: a user name, or a uid in decimal when the uid has no
 * name. -1 when neither. */
long mon_keys_owner(const char *who)
{
    struct passwd pw, *res = NULL;
    char buf[1024];
    char *end = NULL;
    unsigned long v;

    if (!who || !*who)
        return -1;
    if (getpwnam_r(who, &pw, buf, sizeof(buf), &res) == 0 && res)
        return (long)res->pw_uid;
    if (who[0] < '0' || who[0] > '9')
        return -1;
    errno = 0;
    v = strtoul(who, &end, 10);
    return errno == 0 && *end == '\0' && v < 0x7fffffffUL ? (long)v : -1;
}

/* Whether st is the same file as dir/name. */
static bool same_file(const struct stat *st, const char *dir, const char *name)
{
    char p[PATH_MAX];
    struct stat o;

    return state_path(p, sizeof(p), dir, name) == 0 && stat(p, &o) == 0 &&
           o.st_dev == st->st_dev && o.st_ino == st->st_ino;
}

/* Whether st is one of the state directory's own keys: state/key or state/tls/ *.key. */
static bool state_key(const struct stat *st, const char *state)
{
    char tls[PATH_MAX];
    struct dirent *de;
    bool hit = same_file(st, state, "key");
    DIR *d;

    if (hit || state_path(tls, sizeof(tls), state, "tls") < 0 || !(d = opendir(tls)))
        return hit;
    while (!hit && (de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);

        hit = n > 4 && strcmp(de->d_name + n - 4, ".key") == 0 && same_file(st, tls, de->d_name);
    }
    closedir(d);
    return hit;
}

/* Whether path (resolved) is directly in the keys directory, and that directory and the file
 * are root's (this daemon's user's) and writable by no one else. */
static bool in_keys_dir(const char *path, const struct stat *st, const char *keys)
{
    size_t n = strlen(keys);
    struct stat d;

    if (!*keys || strncmp(path, keys, n) != 0 || path[n] != '/' || strchr(path + n + 1, '/'))
        return false;
    return lstat(keys, &d) == 0 && S_ISDIR(d.st_mode) && d.st_uid == geteuid() &&
           !(d.st_mode & 022) && st->st_uid == geteuid() && !(st->st_mode & 022);
}

/* Whether path (resolved) is the state directory or inside it. */
static bool in_state(const char *path, const char *state)
{
    size_t n = strlen(state);

    return *state && strncmp(path, state, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* Read the whole regular file behind the O_PATH descriptor fd (which is st). */
static int read_key(int fd, const struct stat *st, char **out, size_t *len)
{
    char proc[64];
    struct stat now;
    char *buf = NULL;
    size_t got = 0;
    ssize_t n;
    int rfd, rc = 0;

    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    rfd = open(proc, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (rfd < 0)
        return -EACCES;
    if (fstat(rfd, &now) < 0 || now.st_dev != st->st_dev || now.st_ino != st->st_ino) {
        rc = -EACCES;
        goto out;
    }
    buf = malloc(KEY_FILE_MAX + 1);
    if (!buf) {
        rc = -ENOMEM;
        goto out;
    }
    n = cu_read_fd(rfd, buf, KEY_FILE_MAX + 1);
    if (n < 0) {
        rc = -EACCES;
        goto out;
    }
    got = (size_t)n;
    if (got > KEY_FILE_MAX) {
        rc = -EFBIG;
        goto out;
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    buf = NULL;
out:
    if (buf) {
        OPENSSL_cleanse(buf, KEY_FILE_MAX + 1);
        free(buf);
    }
    close(rfd);
    return rc;
}

/* Why the calling thread's last failed mon_keys_load refused its key: a constant one-line
 * text without the path itself. */
const char *mon_keys_reason(void)
{
    return reason;
}

/* Apply the key rules to key for a target written by uid owner (-1: unknown writer, so only
 * the keys directory counts). With out, also read the file into *out (malloc'd, NUL-terminated,
 * *len bytes; the caller wipes and frees it). 0; -EACCES when the file is missing, unreadable,
 * or in no allowed place; -EINVAL when an allowed name is not a regular file; -EFBIG (over
 * 64 KiB) or -ENOMEM. */
int mon_keys_load(const char *key, long owner, char **out, size_t *len)
{
    char proc[64], real[PATH_MAX], state[PATH_MAX], keys[PATH_MAX];
    struct stat st;
    ssize_t n;
    int fd, rc = -EACCES;

    if (out) {
        *out = NULL;
        *len = 0;
    }
    pthread_mutex_lock(&lock);
    snprintf(state, sizeof(state), "%s", state_real);
    snprintf(keys, sizeof(keys), "%s", keys_real);
    pthread_mutex_unlock(&lock);
    reason = "ssh_key is not an absolute path";
    if (!key || key[0] != '/' || !*state)
        return -EACCES;
    /* O_PATH opens no device and reads nothing: the judgement is about this very inode */
    reason = "ssh_key names no file the daemon can open";
    fd = open(key, O_PATH | O_CLOEXEC);
    if (fd < 0)
        return -EACCES;
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    n = readlink(proc, real, sizeof(real) - 1);
    if (n <= 0 || fstat(fd, &st) < 0)
        goto out;
    real[n] = '\0';
    reason = "ssh_key is in no allowed place: a file directly in <state>/monitoring/keys/ "
             "(root's, writable by no one else), or a file the writer owns outside the state "
             "directory";
    if (in_keys_dir(real, &st, keys))
        rc = 0;
    else if (!in_state(real, state) && owner >= 0 && st.st_uid == (uid_t)owner)
        rc = 0;
    if (rc == 0 && state_key(&st, state)) {
        reason = "ssh_key is one of the state directory's own keys (state/key, state/tls/*.key)";
        rc = -EACCES;
    }
    if (rc == 0 && !S_ISREG(st.st_mode)) {
        reason = "ssh_key is not a regular file";
        rc = -EINVAL;
    }
    if (rc == 0 && out) {
        rc = read_key(fd, &st, out, len);
        reason = rc == -EFBIG ? "ssh_key is over 64 KiB: not a private key"
                              : "ssh_key could not be read";
    }
out:
    close(fd);
    return rc;
}
