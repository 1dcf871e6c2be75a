/* regrec.c: the pure functions over services.json records that regrec.h declares: names,
 * values and defaults of attributes and statuses, and lookups over arrays of records. */
#include "core/regrec.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const attr_names[REG_NATTR] = {
    "upstream", "domain", "health_check", "mode", "monitoring", "lb_policy",
};

const char *reg_attr_name(enum reg_attr attr)
{
    return (unsigned)attr < REG_NATTR ? attr_names[attr] : NULL;
}

int reg_attr_from_name(const char *name)
{
    for (int i = 0; i < REG_NATTR; i++)
        if (strcmp(name, attr_names[i]) == 0)
            return i;
    return -1;
}

static const char *const status_names[] = {
    [REG_ACTIVE] = "active", [REG_PENDING] = "pending", [REG_INACTIVE] = "inactive",
};

const char *reg_status_name(enum reg_status st)
{
    return st == REG_ACTIVE || st == REG_PENDING ? status_names[st] : "inactive";
}

int reg_status_from_name(const char *name)
{
    for (int i = 0; i < (int)(sizeof(status_names) / sizeof(status_names[0])); i++)
        if (strcmp(name, status_names[i]) == 0)
            return i;
    return -1;
}

/* Where each attribute's value lives in a record. */
#define FIELD(m) { offsetof(struct reg_service, m), sizeof(((struct reg_service *)0)->m) }
static const struct { size_t off, size; } attr_fields[REG_NATTR] = {
    [REG_UPSTREAM] = FIELD(upstream),         [REG_DOMAIN] = FIELD(domain),
    [REG_HEALTH_CHECK] = FIELD(health_check), [REG_MODE] = FIELD(mode),
    [REG_MONITORING] = FIELD(monitoring),     [REG_LB_POLICY] = FIELD(lb_policy),
};
#undef FIELD

char *regrec_attr_field(struct reg_service *svc, int attr, size_t *size)
{
    if (attr < 0 || attr >= REG_NATTR)
        return NULL;
    *size = attr_fields[attr].size;
    return (char *)svc + attr_fields[attr].off;
}

const char *reg_attr_value(const struct reg_service *svc, enum reg_attr attr)
{
    if ((int)attr < 0 || attr >= REG_NATTR)
        return "";
    return (const char *)svc + attr_fields[attr].off;
}

int reg_attr_default(const struct cfs_config *cfg, const char *name, enum reg_attr attr,
                     char *buf, size_t buflen)
{
    int n;

    switch (attr) {
    case REG_DOMAIN:
        n = snprintf(buf, buflen, "%s.%s", name,
                     cfg && cfg->nsuffixes ? cfg->suffixes[0] : "internal");
        break;
    case REG_HEALTH_CHECK: n = snprintf(buf, buflen, "/health"); break;
    case REG_MODE: n = snprintf(buf, buflen, "proxy"); break;
    case REG_MONITORING: n = snprintf(buf, buflen, "{}"); break;
    case REG_LB_POLICY: n = snprintf(buf, buflen, "round_robin"); break;
    default: n = snprintf(buf, buflen, "%s", ""); break;
    }
    return (n < 0 || (size_t)n >= buflen) ? -ENAMETOOLONG : 0;
}

ssize_t regrec_find_live(const struct reg_service *const *svcs, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (svcs[i]->status != REG_INACTIVE && strcmp(svcs[i]->name, name) == 0)
            return (ssize_t)i;
    return -1;
}

ssize_t regrec_domain_user(const struct reg_service *const *svcs, size_t n,
                           const char *domain, ssize_t skip)
{
    if (domain[0] == '\0')
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((ssize_t)i != skip && svcs[i]->status != REG_INACTIVE &&
            strcmp(svcs[i]->domain, domain) == 0)
            return (ssize_t)i;
    return -1;
}

bool regrec_any_hostname(const struct val_upstream *ups, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ups[i].kind == VAL_HOST_NAME)
            return true;
    return false;
}
