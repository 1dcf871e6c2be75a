/* log.c: the plain JSONL audit writer (state/audit.log), one fsync'd line per entry. */
#include "audit/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = -1;

int audit_open(const char *state_dir, char *err, size_t errlen)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/audit.log", state_dir);

    if (n < 0 || (size_t)n >= sizeof(path)) {
        snprintf(err, errlen, "state directory path too long");
        return -ENAMETOOLONG;
    }
    log_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (log_fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -errno;
    }
    return 0;
}

int audit_log_event(const char *action, const char *status, const char *message, json_t *details)
{
    return audit_log(action, status, message, "system", details);
}

int audit_verify_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "conduitfs verify: not available yet\n");
    return 2;
}

/* Build the six-field entry in the seed's key order. NULL on allocation failure. */
static json_t *build_entry(const char *action, const char *status, const char *message,
                           const char *user, json_t *details)
{
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    json_t *e = json_object();

    gmtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!e)
        return NULL;
    if (json_object_set_new(e, "timestamp", json_string(ts)) ||
        json_object_set_new(e, "action", json_string(action)) ||
        json_object_set_new(e, "status", json_string(status)) ||
        json_object_set_new(e, "message", json_string(message ? message : "")) ||
        json_object_set_new(e, "user", json_string(user ? user : "system")) ||
        json_object_set(e, "details", details ? details : json_object())) {
        json_decref(e);
        return NULL;
    }
    if (!details)
        json_decref(json_object_get(e, "details"));
    return e;
}

int audit_log(const char *action, const char *status, const char *message, const char *user,
              json_t *details)
{
    json_t *entry = build_entry(action, status, message, user, details);
    char *line = NULL;
    size_t len, off = 0;
    int rc = 0;

    if (!entry)
        return -ENOMEM;
    line = json_dumps(entry, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    if (!line) {
        rc = -ENOMEM;
        goto out;
    }
    len = strlen(line);
    line[len] = '\n';   /* json_dumps leaves room for NUL; we replace it and write len+1 */
    pthread_mutex_lock(&log_lock);
    if (log_fd < 0) {
        rc = -EBADF;
    } else {
        while (off < len + 1) {
            ssize_t w = write(log_fd, line + off, len + 1 - off);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                rc = -errno;
                break;
            }
            off += (size_t)w;
        }
        if (rc == 0 && fdatasync(log_fd) < 0)
            rc = -errno;
    }
    pthread_mutex_unlock(&log_lock);
out:
    free(line);
    json_decref(entry);
    return rc;
}

void audit_close(void)
{
    pthread_mutex_lock(&log_lock);
    if (log_fd >= 0)
        close(log_fd);
    log_fd = -1;
    pthread_mutex_unlock(&log_lock);
}
