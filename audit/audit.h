/* audit.h: the audit trail. Every mutation of the daemon ends here as one entry, sealed as the
 * next capsule of a signed hash chain (state/capsules.db) and then appended, as one JSONL line, to
 * state/audit.log: line N is capsule N. */
#ifndef CONDUIT_AUDIT_H
#define CONDUIT_AUDIT_H

#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

struct audit_signer;

/* Seal with a key kept in another process (see audit/store.h): audit_open and every reopen go
 * through s, which must outlive the trail, and never read the key file here. NULL (the default)
 * loads the key into this process. Call before audit_open. */
void audit_set_signer(const struct audit_signer *s);

/* Open the audit trail of state_dir: the capsule chain (capsules.db and the signing key, both
 * created when missing; a missing key is never replaced while the chain holds capsules) and
 * audit.log (created if missing). The chain is verified against the log: in full, or, with a
 * verified checkpoint (state/audit.checkpoint, signed with the audit key) that still fits the
 * chain and the log, only after it. Trailing lines whose capsules exist (a crash between seal
 * and append) are rebuilt from the capsules; a log written before the chain existed (no key, no
 * capsules) is sealed as it stands; anything else that disagrees is refused. Then a new
 * checkpoint is recorded at the head (best effort). 0 or -errno with a one-line reason in
 * err. */
int audit_open(const char *state_dir, char *err, size_t errlen);

/* Seal one six-field entry {"timestamp","action","status","message","user","details"} and
 * append its line; on return the capsule is durable and the line is in audit.log (a crash can
 * only cost lines at its end, which the next audit_open rebuilds). status is "success" or
 * "failure"; details is borrowed and may be NULL ({}). A number in details outside the
 * portable subset (audit_canon_portable) is sealed in portable form, with a syslog warning;
 * keys outside it give -EINVAL. Thread-safe. 0 or -errno. */
int audit_log(const char *action, const char *status, const char *message, const char *user,
              json_t *details);

/* Append one entry for the daemon's own event (health, renewal, supervisor, ...): like
 * audit_log with the user "system", sealed with trigger type "system". */
int audit_log_event(const char *action, const char *status, const char *message, json_t *details);

/* The most bytes one append (one write(2) to audit/audit.log) may hold: 255 pages, 1 MiB - 4 KiB.
 * The kernel hands the daemon a write(2) in FUSE writes of at most 256 pages, so the first piece
 * of a write from a buffer that starts at any offset in its page holds at least 1 MiB - 4095
 * bytes: a write(2) of up to this many bytes always arrives whole, and the first piece of a
 * larger one is over the limit and refused before anything is sealed. */
#define AUDIT_APPEND_MAX (1048576 - 4096)

/* One entry of audit_log_batch: as the arguments of audit_log (details borrowed, NULL: {}). */
struct audit_item {
    const char *action, *status, *message, *user;
    json_t *details;
};

/* Seal n >= 1 entries (users' requests) in one transaction, with consecutive sequences, all or
 * none, and append their lines; every entry gets timestamp (YYYY-MM-DDTHH:MM:SSZ; NULL: now).
 * On return the capsules are durable. Thread-safe. 0, -EINVAL (n == 0 or a bad item), -ENOMEM,
 * or the store's -errno (-ENOSPC, -EBUSY, -EIO, ...): then nothing was sealed. */
int audit_log_batch(const struct audit_item *items, size_t n, const char *timestamp);

/* Append what a user wrote to audit/audit.log: len bytes of one or more complete lines, each a
 * JSON object {"action","status"[,"message","details","timestamp","user"]} (see
 * audit/entry.h); timestamp and user are replaced by the current time and user (the caller).
 * All lines are sealed in one transaction with consecutive sequences, or none. 0, -EFBIG when
 * len is over AUDIT_APPEND_MAX, -EINVAL for any bad line (nothing sealed either way; a line
 * whose details are outside the portable subset, audit_canon_portable, also seals a
 * change_refused failure entry saying why), or -errno. */
int audit_append_lines(const char *buf, size_t len, const char *user);

/* Whether action is one of the registry's own (service_register, service_deregister,
 * service_update, registry_abort, registry_adopt): the entries that carry registry marks and
 * that `conduitfs recover` replays, which an appended line may not use. */
int audit_action_reserved(const char *action);

/* Read up to size bytes of audit.log at off, as it is now. Bytes read or -errno. */
int audit_log_read(char *buf, size_t size, off_t off);

/* The current size of audit.log. 0 or -errno. */
int audit_log_size(off_t *size);

/* Verify the whole chain and audit.log, cryptographically, and report as JSON with a newline:
 * {"ok","entries","head_sequence","head_hash","checked":"cryptographic",
 * "first_error":{"sequence","reason"}|null}. One verification runs at a time: a caller that
 * comes while one runs waits for it and gets its report, and the report is kept for later
 * callers while capsules.db, its WAL and audit.log are unchanged (inode, size, mtime, and ctime
 * but for the WAL), for at most 60 s. A passing run records a verified checkpoint. *out is
 * malloc'd. Thread-safe. 0 or -errno. */
int audit_verify_json(char **out, size_t *len);

/* The chain head as JSON with a newline: {"sequence","hash","signed_by","signed_at"} (nulls for
 * an empty chain). *out is malloc'd. 0 or -errno. */
int audit_head_json(char **out, size_t *len);

/* The signing key's Ed25519 public key as 64 hex chars and a newline, into buf. The length or
 * -errno. */
int audit_pubkey_text(char *buf, size_t len);

/* `conduitfs verify [--state DIR] [--pubkey HEX]`: argv[0] is "verify". Verifies a state
 * directory read-only, without mounting. Returns the process exit status: 0 intact, 1 not (a
 * one-line reason on stderr), 2 usage. */
int audit_verify_main(int argc, char **argv);

/* Record the verified checkpoint that audit_open's check at mount earned (state/
 * audit.checkpoint), so that the next mount verifies only what is sealed after it. Call once the
 * mount is up: a mount refused later leaves the state directory as it found it. Best effort (a
 * failure is logged). */
void audit_checkpoint_commit(void);

/* Close the trail; no call may start after it. */
void audit_close(void);

#endif
