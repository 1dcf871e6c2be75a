/* ca_int.h: what the CA's own files (core/ca.c, core/cabundle.c, core/caview.c) share: the
 * definition of struct ca and the internal helpers (prefix cai_). Nothing else includes it. */
#ifndef CONDUIT_CA_INT_H
#define CONDUIT_CA_INT_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include <openssl/types.h>

#include "core/ca.h"

struct ca {
    pthread_mutex_t lock;           /* guards the leaf files and the OpenSSL objects */
    enum ca_key_type type;          /* immutable after ca_open */
    EVP_PKEY *key;                  /* NULL when another process holds it (sign is set) */
    ca_sign_fn sign;
    void *sign_arg;
    X509 *cert;
    char tls_dir[PATH_MAX];
    char archive_dir[PATH_MAX];
};

/* Build a fresh key and a leaf for names[0..n) (already checked), valid leaf_days days (never
 * past the CA), signed by the CA (here or through the signer). The first name is the CN when it
 * fits; otherwise the subject is empty and the SAN critical. With the lock held. 0,
 * -EKEYEXPIRED (the CA expired), -ENOMEM or -errno with a reason in err; on success *key and
 * *crt are the caller's. */
int cai_make_leaf(struct ca *ca, const char *const *names, size_t n, int leaf_days,
                  EVP_PKEY **key, X509 **crt, char *err, size_t errlen);

/* The opening of an issuing call: its outputs err and serial_hex (NULL: none) made empty. */
void cai_issue_begin(char serial_hex[CA_SERIAL_HEX_MAX], char *err, size_t errlen);

/* Before archiving the certificate at crt_path: its serial as lowercase hex into serial
 * ("unknown" when it cannot be read), and the archive directory made (0700) when missing. With
 * the lock held. 0 or -errno (-ENOTDIR...) from making the directory. */
int cai_archive_prep(struct ca *ca, const char *crt_path, char serial[CA_SERIAL_HEX_MAX]);

/* The archive path to try for the try-th time (1, 2, ...) into dest (PATH_MAX):
 * state/tls/archive/<the first stemlen chars of stem>.<serial><suffix>, with "-<try>" before
 * suffix from the second try on. 0 or -ENAMETOOLONG. */
int cai_archive_dest(const struct ca *ca, const char *stem, int stemlen, const char *serial,
                     const char *suffix, int try, char *dest);

/* x509b_san_names(crt, out, nout), every name also checked by the signing policy
 * (ca_policy_domain_ok). 0, -EINVAL or -ENOMEM. */
int cai_san_names(X509 *crt, char ***out, size_t *nout);

/* Whether the leaf crt, read from a file of this CA, must be reissued, its names aside: 1 when it
 * is not issued and signed by this CA, its key at key_path is unreadable (with secret: also when
 * group or others may access it) or not crt's, or less than renew_before_days days are left;
 * else 0. With the lock held; clears the OpenSSL error queue. */
int cai_leaf_due(struct ca *ca, X509 *crt, const char *key_path, bool secret,
                 int renew_before_days);

/* Check a serving leaf's path: an absolute path shorter than PATH_MAX of a file whose name ends
 * in ".pem" and does not start with '.', and write its directory into dir (PATH_MAX). 0 or
 * -EINVAL. */
int cai_bundle_path_ok(const char *path, char *dir);

/* Take ca's lock for work on the serving leaf at path: 0 with the lock held, or -EINVAL (nothing
 * locked) for a NULL ca or a path cai_bundle_path_ok refuses. */
int cai_lock_bundle(struct ca *ca, const char *path);

#endif
