/* fuzz_validate.c: libFuzzer target for core/validate.c and core/render.c. Every val_* validator
 * runs on the whole input and on each of its lines; the lines also fill up to three registry
 * records that go through render_all. Beyond "no crash", it checks the properties the configs
 * rely on: an accepted value holds no byte that could break out of a config line, a normalized
 * monitoring value validates again to itself, and a successful rendering is well formed (hosts
 * lines of one address and one domain, a proxy config that parses as JSON with one host map
 * entry per routed record). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/registry.h"
#include "core/render.h"
#include "core/validate.h"

#include "fuzzlib.h"

#define MAX_LINES 18
#define FIELDS 6        /* name, upstream, domain, health_check, mode, monitoring */
#define MAX_RECORDS (MAX_LINES / FIELDS)

static const char *const suffixes[] = { "internal", "qp.test" };

/* No control byte, space, DEL, non-ASCII, or one of the characters that open a block, comment,
 * quote, escape or placeholder in the proxy config, dnsmasq.conf or a hosts file. */
static bool config_safe(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x21 || *p >= 0x7f || strchr("{}#\"\\`", *p))
            return false;
    return true;
}

/* Every validator on one NUL-terminated string, with the properties of an accepted value. */
static void check_value(const char *s)
{
    struct val_upstream up;
    char canon[VAL_MONITORING_MAX], again[VAL_MONITORING_MAX], target[400];

    if (val_name(s) == 0) {
        size_t n = strlen(s);
        if (n == 0 || n > 63 || strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") != n)
            abort();
    }
    memset(&up, 0xa5, sizeof(up));
    if (val_upstream(s, &up) == 0) {
        if (!config_safe(s) || up.port < 1 || up.port > 65535 || !config_safe(up.host) ||
            strnlen(up.host, sizeof(up.host)) >= sizeof(up.host))
            abort();
        /* the parsed form prints back to an upstream that parses to the same thing */
        snprintf(target, sizeof(target), up.kind == VAL_HOST_IPV6 ? "%s[%s]:%u" : "%s%s:%u",
                 up.tls ? "https://" : "", up.host, up.port);
        struct val_upstream up2;
        if (val_upstream(target, &up2) != 0 || up2.port != up.port || up2.tls != up.tls ||
            up2.kind != up.kind || strcmp(up2.host, up.host) != 0)
            abort();
        if (up.kind == VAL_HOST_NAME && !val_is_hostname(up.host))
            abort();
        if (up.kind == VAL_HOST_IPV4 && !val_is_ipv4(up.host))
            abort();
    } else if (val_upstream(s, NULL) == 0) {
        abort();            /* the answer must not depend on out */
    }
    if (val_domain(s, suffixes, 2) == 0 && (!config_safe(s) || strlen(s) > 253))
        abort();
    if (val_health_check(s) == 0 && (!config_safe(s) || s[0] != '/' || s[1] == '/' ||
                                     strlen(s) > 256))
        abort();
    if (val_mode(s) == 0 && strcmp(s, "proxy") != 0 && strcmp(s, "dns") != 0)
        abort();
    if (val_is_ipv4(s) && val_is_hostname(s))
        abort();            /* a dotted quad is never a hostname */
    if (val_is_hostname(s) && !config_safe(s))
        abort();
    memset(canon, 'x', sizeof(canon));
    if (val_monitoring(s, canon, sizeof(canon)) == 0) {
        /* compact, printable, one line, and a fixed point of normalization */
        if (strnlen(canon, sizeof(canon)) >= sizeof(canon) || canon[0] != '{')
            abort();
        for (const unsigned char *p = (const unsigned char *)canon; *p; p++)
            if (*p < 0x20 || *p >= 0x7f)
                abort();
        if (val_monitoring(canon, again, sizeof(again)) != 0 || strcmp(canon, again) != 0)
            abort();
        if (val_monitoring(s, NULL, 0) != 0)
            abort();
    } else {
        if (canon[0] != '\0')
            abort();        /* on failure canon is "" */
    }
}

static size_t count_char(const char *s, char c)
{
    size_t n = 0;

    for (; *s; s++)
        n += *s == c;
    return n;
}

/* config_safe on each '\n'-separated line of s (an upstream list). */
static bool lines_safe(const char *s)
{
    char buf[REG_UPSTREAM_MAX];
    size_t len = strlen(s);

    if (len >= sizeof(buf))
        return false;
    memcpy(buf, s, len + 1);
    for (char *p = buf, *nl; p; p = nl ? nl + 1 : NULL) {
        nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        if (!config_safe(p))
            return false;
    }
    return true;
}

/* Render the records and check the shape of what came out. */
static void check_render(const struct reg_service *svcs, size_t n, bool manage)
{
    struct cfs_config cfg;
    struct render_out out;
    size_t active = 0, routed = 0, listed;
    json_t *doc, *routes, *map;

    fz_base_cfg(&cfg);
    cfg.manage = manage;
    if (fz_render(&cfg, svcs, n, &out) != 0) {
        /* a refusal leaves *out zeroed */
        if (out.proxy || out.dnsmasq_conf || out.hosts || out.nhosts)
            abort();
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const struct reg_service *s = &svcs[i];

        if (s->status == REG_INACTIVE)
            continue;
        /* every rendered field of a live record passed the byte filter */
        if (!config_safe(s->name) || !config_safe(s->domain) || !config_safe(s->health_check) ||
            !config_safe(s->mode) || (s->upstream[0] && !lines_safe(s->upstream)))
            abort();
        if (s->status == REG_PENDING)
            continue;           /* nothing rendered: no DNS record, no route */
        active++;
        if (strcmp(s->mode, "proxy") == 0)
            routed++;
        else if (strcmp(s->mode, "dns") != 0)
            abort();
    }
    if (out.nhosts != active)
        abort();
    for (size_t i = 0; i < out.nhosts; i++) {
        const char *d = out.hosts[i].data;
        size_t len = strlen(d);

        /* lines of exactly "<ip> <domain>\n" */
        if (len < 4 || d[len - 1] != '\n' || count_char(d, ' ') != count_char(d, '\n'))
            abort();
        if (i > 0 && strcmp(out.hosts[i - 1].name, out.hosts[i].name) >= 0)
            abort();    /* sorted, unique */
    }
    /* the proxy config: JSON whose pool routes' host lists hold one name per routed record, and
     * at most one route per pool besides the keeper and the 404 */
    doc = json_loads(out.proxy, 0, NULL);
    routes = json_object_get(json_object_get(json_object_get(json_object_get(json_object_get(
        doc, "apps"), "http"), "servers"), "conduitfs"), "routes");
    listed = 0;
    for (size_t i = 0; i < json_array_size(routes); i++) {
        map = json_array_get(json_object_get(json_array_get(routes, i), "match"), 0);
        listed += json_array_size(json_object_get(map, "host"));
    }
    if (!doc || listed != routed || json_array_size(routes) > 2 + routed)
        abort();
    json_decref(doc);
    /* dnsmasq.conf depends on the settings only */
    if (count_char(out.dnsmasq_conf, '\n') != 11 + cfg.nsuffixes)
        abort();
    render_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    char *lines[MAX_LINES];
    size_t nlines = 0;
    struct reg_service svcs[MAX_RECORDS];
    size_t nsvcs = 0;

    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    check_value(buf);

    /* split into lines (a NUL ends the last one) */
    for (char *p = buf, *nl; p && nlines < MAX_LINES; p = nl ? nl + 1 : NULL) {
        nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        lines[nlines++] = p;
    }
    for (size_t i = 0; i < nlines; i++)
        check_value(lines[i]);

    /* records from groups of six lines; a leading '!', '+' or '?' on a name forces the status */
    memset(svcs, 0, sizeof(svcs));
    for (size_t r = 0; r + 1 <= nlines / FIELDS && r < MAX_RECORDS; r++) {
        struct reg_service *s = &svcs[nsvcs];
        char *const *f = &lines[r * FIELDS];
        const char *name = f[0];

        if (name[0] == '!' || name[0] == '+' || name[0] == '?') {
            /* inactive, or a status that may contradict the upstream */
            s->status = name[0] == '!' ? REG_INACTIVE : name[0] == '+' ? REG_ACTIVE : REG_PENDING;
            name++;
        } else {
            s->status = f[1][0] ? REG_ACTIVE : REG_PENDING;
        }
        snprintf(s->name, sizeof(s->name), "%s", name);
        snprintf(s->upstream, sizeof(s->upstream), "%s", f[1]);
        snprintf(s->domain, sizeof(s->domain), "%s", f[2]);
        snprintf(s->health_check, sizeof(s->health_check), "%s", f[3]);
        snprintf(s->mode, sizeof(s->mode), "%s", f[4]);
        if (val_monitoring(f[5], s->monitoring, sizeof(s->monitoring)) != 0)
            snprintf(s->monitoring, sizeof(s->monitoring), "{}");
        snprintf(s->registered_at, sizeof(s->registered_at), "2024-05-01T12:00:00Z");
        nsvcs++;
    }
    if (nsvcs > 0) {
        check_render(svcs, nsvcs, false);
        check_render(svcs, nsvcs, true);
    }
    free(buf);
    return 0;
}
