/* regjson.h: the services.json form of the registry's records: parsing a document into
 * records (checked as writes through the mount would be) and serializing records into one.
 * reg_parse, reg_serialize and reg_empty_sha are public (the registry, replay, tests);
 * regjson_record_text is for the registry's cache of record texts. registry.h does not include
 * this header: include it where a document is read or made. */
#ifndef CONDUIT_REGJSON_H
#define CONDUIT_REGJSON_H

#include <stddef.h>

#include "core/config.h"
#include "core/regrec.h"

/* Parse a services.json document into records, each checked as a write through the mount would
 * be (cfg gives the domain suffixes). 0, -EINVAL with a one-line reason in err, or -ENOMEM.
 * On success *out is malloc'd (free it) and *n set. Used by the registry, replay and tests. */
int reg_parse(const char *json, size_t len, const struct cfs_config *cfg,
              struct reg_service **out, size_t *n, char *err, size_t errlen);

/* Serialize records into a services.json document (malloc'd, NUL-terminated), or NULL when out
 * of memory. */
char *reg_serialize(const struct reg_service *svcs, size_t n);

/* The SHA-256 (64 hex chars and a NUL) of an empty registry's services.json, into sha: what a
 * registry mark names when no service is registered. 0 or -ENOMEM. */
int reg_empty_sha(char sha[65]);

/* The text of record s as an element of services.json's "services" array as reg_serialize
 * writes it (its lines after the first indented by four more spaces), malloc'd and
 * NUL-terminated, its length in *len; NULL when out of memory (or its monitoring value is not
 * JSON). Joining such texts the way reg_serialize does gives reg_serialize's bytes. */
char *regjson_record_text(const struct reg_service *s, size_t *len);

#endif
