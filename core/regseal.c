/* regseal.c: the registry's abort and adopt marks, the space reserve that pays for them on a
 * full disk, and the mount-time settlement of services.json against the audit chain (see
 * regseal.h). It keeps no state and calls nothing of registry.c, which calls it. */
#include "core/regseal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "audit/audit.h"
#include "core/statefile.h"

/* ---- the space reserve ----
 * A change is acknowledged only once its audit capsule is sealed, and the capsule is sealed
 * before the commit: a full disk fails the seal, and the change, with ENOSPC. A commit that
 * fails after its seal must still seal its registry_abort mark, so the state directory keeps
 * RESERVE_BYTES preallocated in space.reserve: made at mount, made again (or ENOSPC, nothing
 * changed) before every mutation, and freed when that mark, or the mount's rendering, finds the
 * disk full. The registry touches it under its mutation lock, or at mount before any operation. */
#define RESERVE_BYTES (256 * 1024)

static int reserve_path(const char *state_dir, char *buf, size_t len)
{
    return state_path(buf, len, state_dir, "space.reserve");
}

int regseal_reserve_ensure(const char *state_dir)
{
    char path[PATH_MAX];
    struct stat st;
    int fd, rc;

    rc = reserve_path(state_dir, path, sizeof(path));
    if (rc < 0)
        return rc;
    if (stat(path, &st) == 0 && st.st_size >= RESERVE_BYTES)
        return 0;
    fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -errno;
    rc = -posix_fallocate(fd, 0, RESERVE_BYTES);
    close(fd);
    if (rc < 0)
        unlink(path);
    return rc;
}

bool regseal_reserve_release(const char *state_dir, const char *why)
{
    char path[PATH_MAX];

    if (reserve_path(state_dir, path, sizeof(path)) < 0 || unlink(path) < 0)
        return false;
    syslog(LOG_WARNING, "state directory is full: released the space reserve to %s; changes "
           "fail with ENOSPC until space is freed", why);
    return true;
}

/* ---- the registry's marks ---- */

int regseal_add_mark(json_t *d, const char *sha, const char *prev)
{
    return json_object_set_new(d, "registry", json_pack("{s:s,s:s}", "sha256", sha,
                                                        "previous", prev));
}

int regseal_abort(const char *state_dir, const char *sealed, const char *kept, const char *why,
                  const char *user)
{
    json_t *d = json_object();
    char msg[256];
    int rc = -ENOMEM;

    snprintf(msg, sizeof(msg), "not committed: %s", why);
    if (d && regseal_add_mark(d, kept, sealed) == 0) {
        rc = user ? audit_log("registry_abort", "failure", msg, user, d)
                  : audit_log_event("registry_abort", "failure", msg, d);
        if (rc == -ENOSPC && regseal_reserve_release(state_dir, "seal a registry_abort mark"))
            rc = user ? audit_log("registry_abort", "failure", msg, user, d)
                      : audit_log_event("registry_abort", "failure", msg, d);
    }
    json_decref(d);
    return rc;
}

/* ---- settling the registry at mount ---- */

/* Whether the directory at path holds a *.pem file. */
static bool dir_has_pem(const char *path)
{
    struct dirent *de;
    bool found = false;
    DIR *d = opendir(path);

    if (!d)
        return false;
    while (!found && (de = readdir(d))) {
        size_t len = strlen(de->d_name);

        found = de->d_name[0] != '.' && len > 4 && !strcmp(de->d_name + len - 4, ".pem");
    }
    closedir(d);
    return found;
}

bool regseal_tls_has_leaves(const struct cfs_config *cfg)
{
    char path[PATH_MAX], sub[PATH_MAX];
    struct dirent *de;
    bool found = false;
    DIR *d;

    if (state_path(path, sizeof(path), cfg->state_dir, "tls") < 0 || !(d = opendir(path)))
        return false;
    while (!found && (de = readdir(d))) {
        if (de->d_type != DT_DIR || de->d_name[0] == '.' || !strcmp(de->d_name, "archive"))
            continue;
        /* serving/ exists from the first mount; it counts only once it holds a leaf */
        if (strcmp(de->d_name, "serving") != 0) {
            found = true;
        } else if (snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name) < (int)sizeof(sub)) {
            found = dir_has_pem(sub);
        }
    }
    closedir(d);
    return found;
}

/* Seal a registry_adopt mark for the services.json of hash sha, which the chain's newest mark m
 * does not explain. 0 or -errno. */
static int seal_adopt(const char *state_dir, const struct rmark *m, const char *sha,
                      const char *status, const char *msg, size_t nrecords)
{
    json_t *d = json_pack("{s:I}", "services", (json_int_t)nrecords);
    int rc = -ENOMEM;

    if (d && regseal_add_mark(d, sha, m->found ? m->sha256 : "") == 0) {
        rc = audit_log_event("registry_adopt", status, msg, d);
        if (rc == -ENOSPC && regseal_reserve_release(state_dir, "seal a registry_adopt mark"))
            rc = audit_log_event("registry_adopt", status, msg, d);
    }
    json_decref(d);
    return rc;
}

int regseal_settle(const char *state_dir, const struct rmark *m, const char *sha,
                   const char *path, size_t n, bool reset, char *err, size_t errlen)
{
    char msg[256];
    int rc = 0;

    if (reset) {
        snprintf(msg, sizeof(msg), "Started with an empty registry (--empty-registry): "
                 "services.json was missing");
        syslog(LOG_WARNING, "registry: %s", msg);
        rc = seal_adopt(state_dir, m, sha, "success", msg, 0);
    } else if (m->found && strcmp(sha, m->sha256) == 0) {
        return 0;
    } else if (m->found && strcmp(sha, m->previous) == 0 &&
               strncmp(m->action, "service_", 8) == 0) {
        syslog(LOG_WARNING, "registry: the last change sealed in the audit chain (%s at %s) "
               "was never committed; marking it failed", m->action, m->timestamp);
        rc = regseal_abort(state_dir, m->sha256, sha,
                           "the daemon stopped between seal and commit", NULL);
    } else if (m->found) {
        syslog(LOG_ERR, "registry: %s (sha256 %s) is not the registry the audit chain's last "
               "change (%s at %s) left (sha256 %s): it was changed outside conduitfs; adopted "
               "as found, with a registry_adopt entry", path, sha, m->action, m->timestamp,
               m->sha256);
        snprintf(msg, sizeof(msg), "services.json was changed outside conduitfs: the audit "
                 "chain does not explain it; adopted as found at mount");
        rc = seal_adopt(state_dir, m, sha, "failure", msg, n);
    } else if (n > 0) {
        snprintf(msg, sizeof(msg), "Adopted services.json as found at mount (%zu records; no "
                 "registry change in the audit chain yet)", n);
        rc = seal_adopt(state_dir, m, sha, "success", msg, n);
    }
    if (rc < 0)
        snprintf(err, errlen, "cannot seal the registry's audit entry for %s: %s", path,
                 strerror(-rc));
    return rc;
}
