/* regmark.h: the registry's marks in the audit chain. Every committed registry change carries,
 * in the details of the last entry of its batch, {"registry":{"sha256":NEXT,"previous":PREV}}:
 * the SHA-256 of the services.json it commits and of the one it replaces. A mount that finds the
 * daemon stopped between sealing and committing seals registry_abort; a services.json the chain
 * does not explain is recorded with registry_adopt. This file finds the newest mark in audit.log
 * and hashes documents; it knows nothing of the registry's records. */
#ifndef CONDUIT_REGMARK_H
#define CONDUIT_REGMARK_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define RMARK_SHA_HEX 65    /* 64 lowercase hex characters and the NUL */

/* The newest registry mark of an audit.log. */
struct rmark {
    bool found;                   /* an entry with details.registry.sha256 exists */
    char action[64];              /* its action: service_*, registry_abort or registry_adopt */
    char timestamp[32];           /* its timestamp */
    char sha256[RMARK_SHA_HEX];   /* the services.json it left */
    char previous[RMARK_SHA_HEX]; /* the one before it ("" when none) */
    bool legacy_services;         /* no mark, but a successful service_register line exists */
};

/* SHA-256 of len bytes of data as 64 lowercase hex characters into out. */
void rmark_sha256(const void *data, size_t len, char out[RMARK_SHA_HEX]);

/* Read state_dir/audit.log backwards up to its newest registry mark (on an entry of one of the
 * five actions above) and fill m (m->found false
 * when there is none; then m->legacy_services says whether the log holds a registration made
 * before marks existed). A missing audit.log has no mark. 0 or -errno. */
int rmark_last(const char *state_dir, struct rmark *m);

/* Whether details (an entry's "details" object) carries a registry mark; fills sha256 and
 * previous when it does (previous "" when absent). */
bool rmark_of_details(const json_t *details, char sha256[RMARK_SHA_HEX],
                      char previous[RMARK_SHA_HEX]);

#endif
