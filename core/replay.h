/* replay.h: the registry as the audit chain tells it: rebuilding services.json by replaying the
 * chain's service_register, service_deregister and service_update entries (`conduitfs
 * recover`), and checking services.json against the chain's newest registry mark (`conduitfs
 * verify`). Offline: both run on a state directory that is not mounted. */
#ifndef CONDUIT_REPLAY_H
#define CONDUIT_REPLAY_H

#include <stddef.h>

/* Replay the capsule chain of state_dir (opened read-only; the chain is verified first) into a
 * services.json document: *doc is malloc'd, *nrec and *nlive (either may be NULL) get how many
 * records and live services it holds. 0 when the result is what the chain's newest registry
 * mark says services.json was (or the chain holds no mark: then *unverified is set), -EBADMSG
 * with why filled when the chain does not explain a registry it recorded (an adopted file, a
 * gap), or -errno with why filled. */
int replay_chain(const char *state_dir, char **doc, size_t *nrec, size_t *nlive,
                 int *unverified, char *why, size_t whylen);

/* Whether services.json of state_dir is the registry the chain's newest registry mark left (or
 * the one before it, when the daemon stopped between sealing a change and committing it).
 * 0 when explained (or no mark exists), -EBADMSG with why filled when not, -errno otherwise. */
int replay_check_registry(const char *state_dir, char *why, size_t whylen);

/* `conduitfs recover --state DIR`: argv[0] is "recover". Writes DIR/services.json (which must
 * be missing) from the chain. Returns the exit status: 0 written, 1 refused or failed (one line
 * on stderr), 2 usage. */
int replay_recover_main(int argc, char **argv);

/* `conduitfs verify [--state DIR] [--pubkey HEX]`: argv[0] is "verify". The registry check
 * above, then audit_verify_main. Returns the exit status: 0 intact, 1 not (one line on stderr),
 * 2 usage. */
int replay_verify_main(int argc, char **argv);

#endif
