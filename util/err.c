/* err.c: one-line error text into a caller's buffer (util layer, see util.h). */
#include "util/util.h"

#include <stdio.h>

void cu_verr(char *err, size_t errlen, const char *fmt, va_list ap)
{
    if (err && errlen > 0)
        vsnprintf(err, errlen, fmt, ap);
}

void cu_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cu_verr(err, errlen, fmt, ap);
    va_end(ap);
}

int cu_errf(int rc, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cu_verr(err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}
