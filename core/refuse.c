/* refuse.c: how a refused change says why (reg_refuse_path, declared in registry.h): one
 * syslog line, rate-limited for every caller together, and one sealed change_refused failure
 * entry in the audit chain. It keeps nothing else and calls nothing of registry.c; the
 * registry's refusals of service changes (registry.c's refuse, reg_refuse) come through here. */
#include "core/registry.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "audit/audit.h"
#include "util/util.h"

/* ---- refusals ----
 * A change the registry refuses (a bad value, a taken name or domain) says why: one syslog line
 * (at most REFUSE_LOG_BURST a second; the rest are counted and summed up in one line) and one
 * sealed failure entry in the audit chain naming the path, the caller and the reason. Nothing
 * else is kept, so a loop of bad writes grows only the audit log. */
#define REFUSE_LOG_BURST 10

static struct cu_burst refuse_burst = CU_BURST_INIT(REFUSE_LOG_BURST);

static void refuse_syslog(const char *path, const char *who, const char *reason)
{
    unsigned quiet;
    bool log = cu_burst_take(&refuse_burst, &quiet);

    if (quiet)
        syslog(LOG_NOTICE, "registry: %u more refused changes not logged here (each has its "
               "audit entry)", quiet);
    if (log)
        syslog(LOG_NOTICE, "%s: refused a change of %s by %s: %s",
               strncmp(path, "monitor/", 8) == 0 ? "monitor" : "registry", path, who, reason);
}

void reg_refuse_path(const char *action, const char *who, int rc, const char *reason,
                     const char *fmt, ...)
{
    char path[400], msg[700];
    va_list ap;
    json_t *d;

    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    /* a name may be any bytes a mkdir was given: keep the printable ASCII ones */
    for (char *c = path; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
            *c = '?';
    if (!reason || !reason[0])
        reason = strerror(-rc);
    refuse_syslog(path, who, reason);
    snprintf(msg, sizeof(msg), "Refused %s: %s", path, reason);
    /* no "name" or "attribute": readers that select a service's changes by those keep doing
     * so; the path says both */
    d = json_pack("{s:s,s:s,s:s,s:s}", "path", path, "operation", action, "reason", reason,
                  "error", strerror(-rc));
    if (!d || audit_log("change_refused", "failure", msg, who, d) < 0)
        syslog(LOG_ERR, "registry: the audit entry of a refused change of %s could not be "
               "sealed", path);
    json_decref(d);
}
