/* audit.h: the audit trail. Every mutation of the daemon ends here as one JSONL line. */
#ifndef CONDUIT_AUDIT_H
#define CONDUIT_AUDIT_H

#include <jansson.h>

/* Open state_dir/audit.log for appending (created 0600 if missing). 0 or -errno. */
int audit_open(const char *state_dir);

/* Append one six-field entry {"timestamp","action","status","message","user","details"} and make
 * it durable before returning. status is "success" or "failure"; details is borrowed and may be
 * NULL ({}). Thread-safe. 0 or -errno. */
int audit_log(const char *action, const char *status, const char *message, const char *user,
              json_t *details);

/* Close the log. */
void audit_close(void);

#endif
