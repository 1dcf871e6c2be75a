/* checkpoint.h: inside the audit module: the verified checkpoint in state/audit.checkpoint. After
 * a full verification the daemon records how far the chain and audit.log were found intact,
 * signed with the audit key, so that the next mount verifies only what came after it. */
#ifndef CONDUIT_AUDIT_CHECKPOINT_H
#define CONDUIT_AUDIT_CHECKPOINT_H

#include <stddef.h>
#include <sys/types.h>

#include "audit/store.h"

#define AUDIT_SHA256_HEX 65 /* 64 lowercase hex chars of a SHA-256 digest, and the NUL */

/* Capsules 0..seq verified, the last with hash; audit.log bytes [0, log_off) held their
 * seq + 1 lines, whose SHA-256 is log_sha256. */
struct audit_checkpoint {
    long long seq;
    char hash[AUDIT_HASH_HEX];
    off_t log_off;
    char log_sha256[AUDIT_SHA256_HEX];
};

/* Read state_dir/audit.checkpoint and check its Ed25519 signature against pubhex (the store's
 * public key, 64 hex chars). 0, -ENOENT when there is none, or -EBADMSG (malformed, another
 * key, or a signature that does not verify) / -errno with why filled. */
int audit_checkpoint_load(const char *state_dir, const char *pubhex, struct audit_checkpoint *cp,
                          char *why, size_t whylen);

/* Sign cp with the key of st and write it to state_dir/audit.checkpoint atomically (0600,
 * fsync'd, renamed in place, directory synced). 0 or -errno. */
int audit_checkpoint_save(const char *state_dir, struct audit_store *st,
                          const struct audit_checkpoint *cp);

/* The SHA-256 of the first len bytes of the file open at fd, as hex. 0, -ESTALE when the file
 * holds fewer bytes, or -errno. */
int audit_checkpoint_digest(int fd, off_t len, char out[AUDIT_SHA256_HEX]);

#endif
