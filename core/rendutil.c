/* rendutil.c: what render.c and rendproxy.c share: a growable string whose first failure
 * sticks, and the byte filter every rendered value passes (pure). */
#include "core/rendutil.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

void rnd_addf(struct rnd_buf *b, const char *fmt, ...)
{
    va_list ap;
    int need;

    if (b->err)
        return;
    for (;;) {
        size_t room = b->cap - b->len;

        va_start(ap, fmt);
        need = vsnprintf(b->s ? b->s + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (need < 0) {
            b->err = -EINVAL;
            return;
        }
        if ((size_t)need < room) {
            b->len += (size_t)need;
            return;
        }
        if (cu_grow(&b->s, &b->cap, b->len + (size_t)need + 1) < 0) {
            b->err = -ENOMEM;
            return;
        }
    }
}

/* Append the strings of a NULL-terminated list to b: rnd_addf without the formatting, for the
 * lists that grow with the services. */
void rnd_cat(struct rnd_buf *b, ...)
{
    va_list ap;
    const char *p;

    va_start(ap, b);
    while (!b->err && (p = va_arg(ap, const char *)) != NULL) {
        size_t n = strlen(p);

        if (cu_grow(&b->s, &b->cap, b->len + n + 1) < 0) {
            b->err = -ENOMEM;
            break;
        }
        memcpy(b->s + b->len, p, n + 1);
        b->len += n;
    }
    va_end(ap);
}

/* Hand the buffer's string over to the caller (never NULL on success) or free it on error. */
int rnd_take(struct rnd_buf *b, char **dst)
{
    if (!b->err && !b->s)
        rnd_addf(b, "%s", "");
    if (b->err) {
        free(b->s);
        b->s = NULL;
        return b->err;
    }
    *dst = b->s;
    b->s = NULL;
    return 0;
}

/* True when s is a NUL-terminated string within a field of size cap. */
bool rnd_fits(const char *s, size_t cap)
{
    return strnlen(s, cap) < cap;
}

/* Bytes refused in any rendered value, whatever the validators say: control characters, space,
 * DEL, non-ASCII, and the characters that open placeholders ({}), quotes or escapes in the proxy's
 * JSON, or comments in dnsmasq.conf or a hosts file. Caddy expands placeholders in map outputs and
 * dial addresses, so a brace in a value could read another request's data. */
bool rnd_safe_value(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x21 || *p >= 0x7f || strchr("{}#\"\\`", *p))
            return false;
    }
    return true;
}

/* Length of the state directory without trailing slashes, so that joins give single slashes. */
int rnd_state_len(const struct cfs_config *cfg)
{
    size_t len = strnlen(cfg->state_dir, sizeof(cfg->state_dir));

    while (len > 0 && cfg->state_dir[len - 1] == '/')
        len--;
    return (int)len;
}

int rnd_serving_dir(const struct cfs_config *cfg, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%.*s/tls/serving", rnd_state_len(cfg), cfg->state_dir);

    if (n < 0 || (size_t)n >= len) {
        if (len > 0)
            buf[0] = '\0';
        return -ENAMETOOLONG;
    }
    return 0;
}
