/* options.c: the monitor's settings (struct mon_options): their defaults, and the validation of
 * each one from the text of a daemon option (--alert-gpu-temp, ... or its -o spelling). Pure. */
#include "monitor/options.h"
#include "monitor/probe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The range of a temperature threshold (degrees C) and of a percentage threshold. */
#define TEMP_MIN 1.0
#define TEMP_MAX 200.0
#define PCT_MIN 1.0
#define PCT_MAX 100.0

/* The defaults: the design's thresholds, the default socket, a 2 s TTL. */
void mon_options_default(struct mon_options *o)
{
    memset(o, 0, sizeof(*o));
    o->alert_gpu_temp_c = MON_GPU_TEMP_C;
    o->alert_gpu_vram_pct = MON_GPU_VRAM_PCT;
    o->alert_mem_pct = MON_MEM_PCT;
    o->alert_disk_pct = MON_DISK_PCT;
    o->probe_ttl_ms = MON_TTL_MS;
}

/* The whole of s as a decimal number in [lo, hi] (no sign, no exponent, no blanks). */
static bool number_in(const char *s, double lo, double hi, double *out)
{
    size_t n = strspn(s, "0123456789.");

    if (!*s || s[n] != '\0' || strchr(s, '.') != strrchr(s, '.') || s[0] == '.' ||
        s[n - 1] == '.' || !mon_parse_double(s, out))
        return false;
    return *out >= lo && *out <= hi;
}

/* value, cut to 64 bytes, with every control character as '?', for a one-line message. */
static const char *shown(const char *value, char *buf, size_t len)
{
    snprintf(buf, len < 65 ? len : 65, "%s", value);
    for (char *c = buf; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    return buf;
}

/* Set one option from its text. 0, -EINVAL (bad value, reason in err) or -ENOENT. */
int mon_options_set(struct mon_options *o, const char *key, const char *value, char *err,
                    size_t errlen)
{
    static const struct {
        const char *key;
        size_t off;
        bool temp;
    } thresholds[] = {
        { "alert_gpu_temp", offsetof(struct mon_options, alert_gpu_temp_c), true },
        { "alert_gpu_vram", offsetof(struct mon_options, alert_gpu_vram_pct), false },
        { "alert_mem", offsetof(struct mon_options, alert_mem_pct), false },
        { "alert_disk", offsetof(struct mon_options, alert_disk_pct), false },
    };
    char show[80];
    double v;

    for (size_t i = 0; i < sizeof(thresholds) / sizeof(thresholds[0]); i++) {
        bool temp = thresholds[i].temp;

        if (strcmp(key, thresholds[i].key) != 0)
            continue;
        if (!number_in(value, temp ? TEMP_MIN : PCT_MIN, temp ? TEMP_MAX : PCT_MAX, &v)) {
            snprintf(err, errlen, "\"%s\" is not %s", shown(value, show, sizeof(show)),
                     temp ? "a temperature of 1 to 200 (degrees C)" :
                            "a percentage of 1 to 100");
            return -EINVAL;
        }
        *(double *)((char *)o + thresholds[i].off) = v;
        return 0;
    }
    if (strcmp(key, "docker_socket") == 0) {
        bool ctl = false;

        for (const char *c = value; *c; c++)
            ctl |= (unsigned char)*c < 0x20 || *c == 0x7f;
        if (value[0] != '/' || strlen(value) >= sizeof(o->docker_socket) || ctl) {
            snprintf(err, errlen, "\"%s\" is not an absolute path (under %zu bytes)",
                     shown(value, show, sizeof(show)),
                     sizeof(o->docker_socket));
            return -EINVAL;
        }
        snprintf(o->docker_socket, sizeof(o->docker_socket), "%s", value);
        return 0;
    }
    if (strcmp(key, "probe_ttl") == 0) {
        if (!number_in(value, 0, MON_TTL_MAX_MS / 1000, &v)) {
            snprintf(err, errlen, "\"%s\" is not a number of seconds from 0 to %d",
                     shown(value, show, sizeof(show)),
                     MON_TTL_MAX_MS / 1000);
            return -EINVAL;
        }
        o->probe_ttl_ms = (int)(v * 1000 + 0.5);
        return 0;
    }
    snprintf(err, errlen, "no monitor option \"%s\"", shown(key, show, sizeof(show)));
    return -ENOENT;
}
