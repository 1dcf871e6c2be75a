/* casvc.h: the CA as a service of the daemon: opened at mount, the serving leaves of
 * state/tls/serving kept in step with the registry (each carries up to 100 names; a change
 * reissues only the leaves whose names it changes), rotation, what the ca/ tree shows, and the
 * renewal thread. Only active services (with an upstream) have a leaf. */
#ifndef CONDUIT_CASVC_H
#define CONDUIT_CASVC_H

#include <stddef.h>

#include "core/registry.h"

/* Open (or create) the CA under cfg->state_dir with cfg->key_type, and read the serving leaves
 * back from state/tls/serving (their names are the assignment). 0 or -errno with a one-line
 * reason in err (a key that does not match its certificate, a --leaf-days beyond the longest
 * leaf lifetime, ...). Call before reg_open; cfg must outlive the service. */
int ca_service_open(const struct cfs_config *cfg, char *err, size_t errlen);

/* Start the renewal thread (after the daemon has forked): it checks every live leaf at once and
 * then hourly, and reissues those with fewer than cfg->renew_before_days left. 0 or -errno. */
int ca_service_start(void);

/* Stop the renewal thread (it wakes at once), write pending audit lines, and close the CA. */
void ca_service_close(void);

/* ---- called by the registry, with its mutation lock held (never take that lock here) ---- */

/* Before the configs of next are applied: make the serving leaves carry exactly the active
 * domains of next, reissuing only the leaves that gain or lose a name (registration, upstream
 * set or emptied, domain change, deregistration); prev is not used (the leaves hold the
 * assignment). A failed issuance never fails the caller: it is logged and audited,
 * and the next change or the renewal thread retries. who is the caller's user (NULL: the
 * daemon). Without a CA (unit tests of the registry) this and the calls below do nothing. */
void ca_service_sync(const struct reg_service *const *prev, size_t nprev,
                     const struct reg_service *const *next, size_t nnext, const char *who);

/* Before the configs are applied at mount (or re-rendered): create state/tls/serving if
 * missing, make the serving leaves carry exactly the active domains of svcs, and reissue every
 * leaf that is missing, invalid or expired. Failures as for ca_service_sync. */
void ca_service_check(const struct reg_service *const *svcs, size_t n);

/* After a failed commit (prev = the refused registry, next = the kept one): the leaves are made
 * to carry next's names again, as sync does. A leaf left with no name is archived
 * (state/tls/archive/leaf-NNNN.<serial>.pem) and removed. */
void ca_service_retire(const struct reg_service *const *prev, size_t nprev,
                       const struct reg_service *const *next, size_t nnext, const char *who);

/* Write the audit lines that sync and retire queued. Call after releasing the registry lock. */
void ca_service_flush(void);

/* ---- the ca/ tree: each returns a malloc'd NUL-terminated text in *out, its length in *len.
 * Private keys are never part of any of them. ---- */

/* ca.crt: the root certificate as PEM. 0, -ENOENT (no CA) or -ENOMEM. */
int ca_service_root_pem(char **out, size_t *len);

/* ca.json: {"subject","key_type","not_before","not_after","serial","sha256_fingerprint"}. */
int ca_service_root_json(char **out, size_t *len);

/* certs/<domain>.pem: the certificate that serves an active domain (its serving leaf's, never
 * the key). 0, -ENOENT (not active, its leaf not yet issued with it, or no readable leaf) or
 * -ENOMEM. */
int ca_service_leaf_pem(const char *domain, char **out, size_t *len);

/* certs/<domain>.json: {"domain","service","serial","not_before","not_after","days_left",
 * "sha256_fingerprint","key_type","leaf","names"}: leaf is the serving leaf's file name, names
 * every DNS name its certificate carries. Same returns as ca_service_leaf_pem. */
int ca_service_leaf_json(const char *domain, char **out, size_t *len);

/* Call fn(domain, arg) for every active domain that certs/ shows, in registry order. */
void ca_service_foreach_leaf(void (*fn)(const char *domain, void *arg), void *arg);

/* Rotate the leaf that carries an active domain: reissue it with a new key (the old file is
 * archived; the other domains of that leaf get the new certificate too, no other leaf changes),
 * reload the proxy, and write a cert_rotate audit line for who. Ordered with registry mutations.
 * 0, -ENOENT (not active), -EIO (issued, but the proxy did not reload) or -errno. */
int ca_service_rotate(const char *domain, const char *who);

/* trust/<name>: the name of the i-th instruction file, or NULL past the last. */
const char *ca_service_trust_name(size_t i);

/* trust/<name>: instructions to trust the CA, with the real path of ca.crt. 0, -ENOENT or
 * -ENOMEM. */
int ca_service_trust(const char *name, char **out, size_t *len);

#endif
