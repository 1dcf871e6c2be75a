/* capsule.h: Conduit audit entries as CPS 1.0 capsules: mapping, Ed25519 keys, seal, verify,
 * and the hex text their keys, hashes and signatures are written in.
 * A failed OpenSSL call is -ENOMEM when OpenSSL ran out of memory, else the errno each function
 * names; either way the calling thread's OpenSSL error queue is drained (left empty). */
#ifndef CONDUIT_AUDIT_CAPSULE_H
#define CONDUIT_AUDIT_CAPSULE_H

#include <stddef.h>
#include <time.h>

#include <jansson.h>

#define AUDIT_HASH_HEX 65   /* 64 lowercase hex chars of a SHA3-256 digest, and the NUL */
#define AUDIT_SIG_HEX 129   /* 128 hex chars of an Ed25519 signature, and the NUL */
#define AUDIT_PUB_HEX 65    /* 64 hex chars of a raw Ed25519 public key, and the NUL */
#define AUDIT_KEYID_HEX 17  /* signed_by: the first 16 hex chars of the public key, and the NUL */
#define AUDIT_TIME_MAX 40   /* YYYY-MM-DDTHH:MM:SS.ffffff+00:00 and the NUL, with room */
#define AUDIT_SIG_LEN 64    /* a raw Ed25519 signature */

/* n bytes of in as 2n lowercase hex chars and a NUL, into out (2n + 1 bytes). */
void audit_hex(const unsigned char *in, size_t n, char *out);

/* The value of one hex digit (either case), or -1. */
int audit_hex_digit(char c);

/* Decode s, which must be exactly 2n hex chars (either case), into n bytes of out.
 * 0 or -EINVAL (out may be partly written). */
int audit_unhex(const char *s, unsigned char *out, size_t n);

/* An Ed25519 key: a signing key from a seed file, or a verify-only public key. Opaque. */
struct audit_key;

/* What sealing a capsule produced. */
struct audit_seal {
    char hash[AUDIT_HASH_HEX];       /* SHA3-256 of the canonical capsule dict */
    char signature[AUDIT_SIG_HEX];   /* Ed25519 over the 64 ASCII bytes of hash */
    char signed_by[AUDIT_KEYID_HEX]; /* key id of the signer */
    char signed_at[AUDIT_TIME_MAX];  /* when, as YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00 */
};

/* Load the signing key at path: a raw 32-byte Ed25519 seed in a regular file of mode 0600 owned
 * by the caller's uid. A missing file is created with a fresh random seed (0600, fsync'd, and
 * linked in atomically, so two racing creators end up with the same key). The seed buffer is
 * wiped after use; the key never leaves the returned object. On failure err says why (never with
 * key bytes). 0 or -errno (-EACCES for a loose mode or another owner, -EINVAL for a bad size). */
int audit_key_load(const char *path, struct audit_key **out, char *err, size_t errlen);

/* A verify-only key from an existing seed file at path, as audit_key_load reads it, but never
 * created and without the owner and mode checks (a copy of a state directory may belong to
 * anyone). Only the public half is kept. 0 or -errno with err filled (-ENOENT when missing). */
int audit_key_load_public(const char *path, struct audit_key **out, char *err, size_t errlen);

/* A verify-only key from the 64 hex chars of a raw Ed25519 public key. 0, -EINVAL or -ENOMEM. */
int audit_key_from_public(const char *pubhex, struct audit_key **out);

/* The public key as 64 lowercase hex chars, and the key id (its first 16 chars). */
const char *audit_key_public_hex(const struct audit_key *k);
const char *audit_key_id(const struct audit_key *k);

/* Signs the len bytes of msg with Ed25519 into sig, for a key whose private half lives in
 * another process (the signer). 0 or -errno. */
typedef int (*audit_sign_fn)(void *arg, const unsigned char *msg, size_t len,
                             unsigned char sig[AUDIT_SIG_LEN]);

/* A signing key that holds only the public half (64 hex chars) and signs through fn (arg is
 * handed to it). Every signature fn returns is verified against the public key before it is
 * used (one that does not verify is -EIO). 0, -EINVAL or -ENOMEM. */
int audit_key_from_signer(const char *pubhex, audit_sign_fn fn, void *arg,
                          struct audit_key **out);

/* Sign the len bytes of msg with k (a key from audit_key_load or audit_key_from_signer).
 * 0, -EINVAL (verify-only key), -EIO, -ENOMEM, or the signer's -errno. */
int audit_key_sign(const struct audit_key *k, const unsigned char *msg, size_t len,
                   unsigned char sig[AUDIT_SIG_LEN]);

/* Free a key (NULL is fine). */
void audit_key_free(struct audit_key *k);

/* Ed25519 check of sig over msg with the public half of k. 1 good, 0 bad, -ENOMEM or -EIO. */
int audit_key_verify(const struct audit_key *k, const unsigned char *msg, size_t len,
                     const unsigned char sig[AUDIT_SIG_LEN]);

/* Format ts (the current time when NULL) as YYYY-MM-DDTHH:MM:SS+00:00, with .ffffff before the
 * offset only when the microseconds are not zero (Python's isoformat). 0 or -ENOSPC. */
int audit_time_iso(const struct timespec *ts, char *buf, size_t buflen);

/* Rewrite an RFC 3339 time (YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)) as UTC in the form of
 * audit_time_iso; digits past the sixth of frac are dropped. 0, -EINVAL or -ENOSPC. */
int audit_time_normalize(const char *in, char *buf, size_t buflen);

/* Map a six-field Conduit audit entry {"timestamp","action","status","message","user",
 * "details"} (no other keys; status "success" or "failure"; details an object) to an unsealed
 * capsule dict with all 13 keys: type "system", domain "conduit", a fresh UUID v4, sequence 0,
 * previous_hash null. system_event selects trigger.type "system" and user_id null (the daemon's
 * own events) over "user_request" with user_id = user. hostname goes to
 * context.environment.hostname and duration_ms (>= 0) to the tool call and execution. The
 * capsule holds deep copies, so entry stays the caller's. On failure err says why.
 * 0, -EINVAL or -ENOMEM. */
int audit_capsule_from_entry(const json_t *entry, int system_event, const char *hostname,
                             long long duration_ms, json_t **out, char *err, size_t errlen);

/* Place an unsealed capsule in the chain: set sequence (>= 0) and previous_hash (NULL for
 * sequence 0, else 64 lowercase hex chars). 0, -EINVAL or -ENOMEM. */
int audit_capsule_link(json_t *capsule, long long sequence, const char *previous_hash);

/* The CPS hash of a capsule dict: lowercase hex SHA3-256 of its canonical JSON. 0 or -errno. */
int audit_capsule_hash(const json_t *capsule, char hash[AUDIT_HASH_HEX]);

/* Seal a capsule dict with a signing key: hash, signature, signed_by, signed_at (now).
 * 0, -EINVAL (verify-only key or not canonicalizable), -ENOMEM or -EIO (OpenSSL). */
int audit_capsule_seal(const struct audit_key *k, const json_t *capsule, struct audit_seal *out);

/* audit_capsule_seal for a capsule already in its canonical text (audit_canon with
 * AUDIT_CANON_CAPSULE), so that a caller who stores that text canonicalizes once. Same errnos,
 * less the canonicalization's. */
int audit_capsule_seal_canon(const struct audit_key *k, const char *canon, size_t len,
                             struct audit_seal *out);

/* Check the structure of a capsule dict: all 13 keys with the right types, a known type, a UUID
 * id, sequence >= 0 with previous_hash null exactly at 0, the six sections with all their keys,
 * a timestamp with a zone, confidence a number in [0, 1]. 0, or -EBADMSG with why filled. */
int audit_capsule_check(const json_t *capsule, char *why, size_t whylen);

/* Verify a sealed capsule: structure, the recomputed hash against hash, and the signature
 * (hex) over hash with key k. 0, -EBADMSG with why filled, or -ENOMEM/-EIO. */
int audit_capsule_verify(const struct audit_key *k, const json_t *capsule, const char *hash,
                         const char *signature, char *why, size_t whylen);

#endif
