/* capolicy.h: the signing policy of the internal CA: what a leaf may be (its names, lifetime,
 * key, usages and extensions). The signer process applies it to every request before the CA key
 * signs (ca_sign_cert); ca.c applies the same rules to what it is asked to issue. Limits are in
 * core/catypes.h (CA_LEAF_NAMES_MAX, CA_LEAF_DAYS_DEFAULT, CA_LEAF_DAYS_MAX). */
#ifndef CONDUIT_CAPOLICY_H
#define CONDUIT_CAPOLICY_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/types.h>

#include "core/catypes.h"

/* The supported type of key (ed25519 or ecdsa-p256) into *type. 0 or -EINVAL (NULL key or any
 * other type). */
int ca_policy_key_type(EVP_PKEY *key, enum ca_key_type *type);

/* A lowercase LDH DNS name of at most 253 chars (val_is_dns_name) that is safe as a file name
 * under state/tls: none of the names the CA keeps there itself. */
bool ca_policy_domain_ok(const char *d);

/* 0 when names[0..n) are 1..CA_LEAF_NAMES_MAX valid distinct domains, else -EINVAL. */
int ca_policy_names_ok(const char *const *names, size_t n);

/* leaf_days as given to the issuing functions: 0 is the default (CA_LEAF_DAYS_DEFAULT, written
 * back), else 1..CA_LEAF_DAYS_MAX. 0 or -EINVAL with a reason. */
int ca_policy_leaf_days(int *leaf_days, char *err, size_t errlen);

/* The policy: 0 when crt is a leaf the CA of ca_cert (its key of ca_type) may sign, else -EPERM
 * (or -EKEYEXPIRED) with a reason. A leaf is a v3 certificate issued in the CA's name (subject
 * not the CA's), with a positive serial of at most 20 bytes, an end-entity basicConstraints
 * (CA:FALSE), no certificate or CRL signing in keyUsage, serverAuth/clientAuth only in
 * extendedKeyUsage, 1 to CA_LEAF_NAMES_MAX distinct DNS names (each ca_policy_domain_ok) and
 * nothing else in subjectAltName, only those extensions and the key identifiers (the authority
 * one, if any, the CA's), a key of the CA's type that is not the CA's key, a signature by that
 * key (proof that the requester holds it), and a validity from about now (a day back, an hour
 * ahead) to a future time at most CA_LEAF_DAYS_MAX days (and a day's slack) ahead and never past
 * the CA's own expiry. -EKEYEXPIRED when the CA expired. Clears the OpenSSL error queue. */
int ca_policy_check_leaf(X509 *ca_cert, enum ca_key_type ca_type, X509 *crt, char *err,
                         size_t errlen);

#endif
