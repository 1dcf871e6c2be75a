/* time.c: ISO-8601 UTC timestamps and the monotonic clock in ms (util layer, see util.h). */
#include "util/util.h"

void cu_iso_time(time_t t, char *buf, size_t len)
{
    struct tm tm;

    if (len == 0)
        return;
    buf[0] = '\0';
    if (gmtime_r(&t, &tm))
        strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void cu_iso_now(char *buf, size_t len)
{
    cu_iso_time(time(NULL), buf, len);
}

int64_t cu_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
