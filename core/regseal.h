/* regseal.h: the registry's own marks in the audit chain and the space that pays for them.
 * A registry_abort mark says a sealed change was not committed; a registry_adopt mark says
 * services.json was taken as found at mount. space.reserve (in the state directory) keeps room
 * to seal such a mark when the disk is full. At mount, the services.json just loaded is settled
 * against the chain's newest registry mark (regmark.h). No state is kept here: the registry
 * (registry.c) calls these under its mutation lock or at mount. */
#ifndef CONDUIT_REGSEAL_H
#define CONDUIT_REGSEAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"
#include "core/regmark.h"

/* Make space.reserve in state_dir (its whole size preallocated) when it is missing or short.
 * 0 when it is in place, -ENOSPC (no room for it) or another -errno (nothing left behind). */
int regseal_reserve_ensure(const char *state_dir);

/* Free space.reserve in state_dir so that a mark (or the mount's rendering) can be written on a
 * full disk, saying so (why: what it is freed for) in a syslog warning. True when there was a
 * reserve to free; false when there was none or it could not be removed (nothing logged). */
bool regseal_reserve_release(const char *state_dir, const char *why);

/* Add the details of a registry mark, {"registry":{"sha256":sha,"previous":prev}}, to the
 * object d. 0, or -1 when it could not be added (out of memory). */
int regseal_add_mark(json_t *d, const char *sha, const char *prev);

/* Seal a registry_abort mark: the batch that left sealed (already sealed) was not committed, and
 * services.json is still kept; why says why. user NULL: the daemon's own event. When the disk
 * is full the reserve in state_dir pays for it. 0 or -errno (-ENOSPC, -ENOMEM, or the audit
 * trail's). */
int regseal_abort(const char *state_dir, const char *sealed, const char *kept, const char *why,
                  const char *user);

/* Whether cfg's state/tls holds a leaf of a live domain: a directory other than archive/ (a
 * per-domain pair of an older version), or a serving leaf. Unreadable counts as none. */
bool regseal_tls_has_leaves(const struct cfs_config *cfg);

/* Make the chain explain the services.json at path just loaded (hash sha, n records), as the
 * newest mark m left it: reset (--empty-registry replaced a missing one) seals a registry_adopt
 * mark; a batch sealed but never committed (the daemon stopped between the two) gets its
 * registry_abort mark; a file the chain does not explain is logged and adopted with a
 * registry_adopt mark; a file the mark names needs nothing. The reserve in state_dir pays for
 * a mark on a full disk. 0 or -errno (the audit trail's, or -ENOMEM) with a one-line reason in
 * err. */
int regseal_settle(const char *state_dir, const struct rmark *m, const char *sha,
                   const char *path, size_t n, bool reset, char *err, size_t errlen);

#endif
