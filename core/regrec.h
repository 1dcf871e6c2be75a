/* regrec.h: one record of services.json (struct reg_service) and the pure functions over
 * records: attribute and status names, values and defaults, and the lookups both the registry
 * (registry.c) and the services.json form (regjson.c) run over arrays of records. It holds no
 * state and calls nothing above validate.h. registry.h includes it, so the registry's callers
 * see all of it. */
#ifndef CONDUIT_REGREC_H
#define CONDUIT_REGREC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/config.h"
#include "core/validate.h"

enum reg_attr { REG_UPSTREAM, REG_DOMAIN, REG_HEALTH_CHECK, REG_MODE, REG_MONITORING,
                REG_LB_POLICY, REG_NATTR };

/* Room for the upstream list (val_upstreams: up to 64 lines), with its NUL. */
#define REG_UPSTREAM_MAX 2048
/* Room for any attribute's value as the registry holds it, with its NUL. */
#define REG_VALUE_MAX REG_UPSTREAM_MAX
enum reg_status { REG_ACTIVE, REG_PENDING, REG_INACTIVE };

/* One record of services.json. Strings are NUL-terminated and always validated. */
struct reg_service {
    char name[64];
    char upstream[REG_UPSTREAM_MAX];   /* val_upstreams lines, "\n" between; "" while pending */
    char domain[254];
    char health_check[257];
    char mode[8];
    char monitoring[VAL_MONITORING_MAX];
    char lb_policy[16];                /* val_lb_policy */
    enum reg_status status;
    char registered_at[32];            /* YYYY-MM-DDTHH:MM:SSZ */
    char deregistered_at[32];          /* "" unless inactive */
};

/* Attribute file name ("upstream", ...) and back; reg_attr_from_name returns -1 when unknown. */
const char *reg_attr_name(enum reg_attr attr);
int reg_attr_from_name(const char *name);

/* The current value of attr in svc, as shown in the attribute file (without newline). */
const char *reg_attr_value(const struct reg_service *svc, enum reg_attr attr);

/* The default value of attr for a service called name into buf. cfg is read for REG_DOMAIN only
 * (NULL elsewhere is fine). 0 or -ENAMETOOLONG. */
int reg_attr_default(const struct cfs_config *cfg, const char *name, enum reg_attr attr,
                     char *buf, size_t buflen);

/* "active", "pending" or "inactive". */
const char *reg_status_name(enum reg_status st);

/* The status called name ("active", "pending", "inactive"), or -1. */
int reg_status_from_name(const char *name);

/* The index in svcs[0..n) of the active or pending record called name, or -1. */
ssize_t regrec_find_live(const struct reg_service *const *svcs, size_t n, const char *name);

/* The index of the live record of svcs[0..n) other than skip that already uses domain, or -1.
 * A live record may have no domain yet: "" is never taken. */
ssize_t regrec_domain_user(const struct reg_service *const *svcs, size_t n,
                           const char *domain, ssize_t skip);

/* The field of svc that holds attribute attr (an enum reg_attr), and its size in *size; NULL
 * when attr is none. */
char *regrec_attr_field(struct reg_service *svc, int attr, size_t *size);

/* Whether any of ups[0..n) names its host rather than an address (dns mode cannot answer
 * it). */
bool regrec_any_hostname(const struct val_upstream *ups, size_t n);

#endif
