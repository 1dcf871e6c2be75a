/* keyint.h: what key.c shares with capsule.c inside the audit library: the key object itself
 * (capsule.c seals and verifies with its EVP_PKEY and names its id) and the one mapping of an
 * OpenSSL failure to an errno. Not for use outside audit/. */
#ifndef CONDUIT_AUDIT_KEYINT_H
#define CONDUIT_AUDIT_KEYINT_H

#include <openssl/evp.h>

#include "audit/capsule.h"

struct audit_key {
    EVP_PKEY *pkey;
    int can_sign;
    audit_sign_fn sign;         /* set: the private half lives behind this function */
    void *sign_arg;
    char pubhex[AUDIT_PUB_HEX];
    char id[AUDIT_KEYID_HEX];
};

/* The one place an OpenSSL failure becomes an errno: drain this thread's OpenSSL error queue
 * (so that no stale entry is blamed on a later call) and return -ENOMEM when OpenSSL ran out of
 * memory, else fallback. Call it right after each failed OpenSSL call. */
int audit_ossl_errno(int fallback);

#endif
