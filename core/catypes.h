/* catypes.h: the CA's vocabulary, below every file of the CA: its limits, its key types and
 * their names, and a certificate's list of names. ca.h includes it, so the CA's callers see it
 * there; the builders (x509b.c) and the signing policy (capolicy.c) include it alone, so that
 * they never reach back into the CA that uses them. */
#ifndef CONDUIT_CATYPES_H
#define CONDUIT_CATYPES_H

#include <stddef.h>

/* Leaf validity when ca_issue is given 0 days, and the longest accepted. */
#define CA_LEAF_DAYS_DEFAULT 365
#define CA_LEAF_DAYS_MAX 3650
/* Room for a serial as lowercase hex with its NUL (serials here are 16 bytes: 32 digits). */
#define CA_SERIAL_HEX_MAX 80
/* The most DNS names one leaf may carry (the signing policy refuses more). */
#define CA_LEAF_NAMES_MAX 100

enum ca_key_type { CA_KEY_ED25519, CA_KEY_ECDSA_P256 };

/* "ed25519" or "ecdsa-p256". */
const char *ca_key_type_name(enum ca_key_type type);

/* Parse a key type name as written by ca_key_type_name. 0 or -EINVAL. */
int ca_key_type_parse(const char *s, enum ca_key_type *out);

/* Free names[0..n) and the array (a certificate's names, as ca_bundle_names and
 * x509b_san_names return them). NULL is allowed. */
void ca_names_free(char **names, size_t n);

#endif
