/* audit.h: the audit trail. Every mutation of the daemon ends here as one JSONL line. */
#ifndef CONDUIT_AUDIT_H
#define CONDUIT_AUDIT_H

#include <jansson.h>

/* Open the audit trail of state_dir: audit.log (created if missing). 0 or -errno with a
 * one-line reason in err. */
int audit_open(const char *state_dir, char *err, size_t errlen);

/* Append one six-field entry {"timestamp","action","status","message","user","details"} and make
 * it durable before returning. status is "success" or "failure"; details is borrowed and may be
 * NULL ({}). Thread-safe. 0 or -errno. */
int audit_log(const char *action, const char *status, const char *message, const char *user,
              json_t *details);

/* Append one entry for the daemon's own event (health, renewal, supervisor, ...): like
 * audit_log with the user "system". */
int audit_log_event(const char *action, const char *status, const char *message, json_t *details);

/* `conduitfs verify [--state DIR]`: argv[0] is "verify". Returns the process exit status. */
int audit_verify_main(int argc, char **argv);

/* Close the log. */
void audit_close(void);

#endif
