/* regmark.c: the registry's marks in the audit chain: SHA-256 of a services.json document, and
 * the newest mark in audit.log, found by reading the log backwards from its end. */
#include "core/regmark.h"

#include "audit/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/statefile.h"

#define CHUNK 65536

void rmark_sha256(const void *data, size_t len, char out[RMARK_SHA_HEX])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    out[0] = '\0';
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return;
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* A 64-hex-character string member of o into dst; false when absent or malformed. */
static bool get_hash(const json_t *o, const char *key, char dst[RMARK_SHA_HEX])
{
    const char *v = json_string_value(json_object_get(o, key));

    if (!v || strlen(v) != RMARK_SHA_HEX - 1 ||
        strspn(v, "0123456789abcdef") != RMARK_SHA_HEX - 1)
        return false;
    memcpy(dst, v, RMARK_SHA_HEX);
    return true;
}

bool rmark_of_details(const json_t *details, char sha256[RMARK_SHA_HEX],
                      char previous[RMARK_SHA_HEX])
{
    json_t *reg = json_object_get(details, "registry");

    if (!json_is_object(reg) || !get_hash(reg, "sha256", sha256))
        return false;
    if (!get_hash(reg, "previous", previous))
        previous[0] = '\0';
    return true;
}

/* Look at one complete line of the log. 1 when it is the newest mark (m filled), else 0. */
static int look(const char *line, size_t len, struct rmark *m)
{
    json_t *e, *d;
    const char *action, *status, *ts;
    int found = 0;

    /* cheap filters first: most lines are neither marks nor registrations */
    if (!memmem(line, len, "\"registry\"", 10) &&
        (m->legacy_services || !memmem(line, len, "\"service_register\"", 18)))
        return 0;
    e = json_loadb(line, len, 0, NULL);
    action = json_string_value(json_object_get(e, "action"));
    status = json_string_value(json_object_get(e, "status"));
    ts = json_string_value(json_object_get(e, "timestamp"));
    d = json_object_get(e, "details");
    if (action && audit_action_reserved(action) && rmark_of_details(d, m->sha256, m->previous)) {
        m->found = true;
        snprintf(m->action, sizeof(m->action), "%s", action);
        snprintf(m->timestamp, sizeof(m->timestamp), "%s", ts ? ts : "");
        found = 1;
    } else if (action && status && strcmp(action, "service_register") == 0 &&
               strcmp(status, "success") == 0) {
        m->legacy_services = true;
    }
    json_decref(e);
    return found;
}

int rmark_last(const char *state_dir, struct rmark *m)
{
    char path[PATH_MAX];
    char *buf = NULL;
    size_t cap = 0, have = 0;   /* buf[0..have): bytes at file offset pos, up to a line start */
    struct stat sb;
    off_t pos;
    bool torn = true;           /* bytes after the last newline are still being skipped */
    int fd = -1, rc;

    memset(m, 0, sizeof(*m));
    rc = state_path(path, sizeof(path), state_dir, "audit.log");
    if (rc < 0)
        return rc;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    if (fstat(fd, &sb) < 0) {
        rc = -errno;
        goto out;
    }
    pos = sb.st_size;
    while (pos > 0) {
        size_t want = pos > CHUNK ? CHUNK : (size_t)pos;
        size_t end;
        ssize_t got;

        if (have + want > cap) {
            char *nb = realloc(buf, have + want);

            if (!nb) {
                rc = -ENOMEM;
                goto out;
            }
            buf = nb;
            cap = have + want;
        }
        memmove(buf + want, buf, have);
        pos -= (off_t)want;
        do {
            got = pread(fd, buf, want, pos);
        } while (got < 0 && errno == EINTR);
        if (got < 0 || (size_t)got != want) {
            rc = got < 0 ? -errno : -EIO;
            goto out;
        }
        have += want;
        /* Lines are complete from the first newline on (or from 0 at the file's start); a
         * torn last line without a newline is never a mark. Walk them newest first. */
        end = have;
        if (torn) {
            while (end > 0 && buf[end - 1] != '\n')
                end--;
            if (end == 0) {
                have = 0;        /* all of it is the torn tail so far */
                continue;
            }
            torn = false;
        }
        for (;;) {
            size_t start;

            if (end == 0)
                break;
            start = end - 1;     /* buf[end - 1] is the newline of the line before end */
            while (start > 0 && buf[start - 1] != '\n')
                start--;
            if (start == 0 && pos > 0)
                break;           /* its beginning is in the part not read yet */
            if (look(buf + start, end - 1 - start, m) == 1)
                goto out;
            end = start;
        }
        have = end;
    }
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}
