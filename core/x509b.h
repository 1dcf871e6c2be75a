/* x509b.h: the CA's X.509 builders and readers (prefix x509b_): fresh keys, certificates built
 * and signed from a list of extensions, the root's subject, subjectAltName in and out, DER in
 * and out, serials, times and fingerprints as text, and the one mapping of OpenSSL errors to
 * -errno. No file I/O and no locking: internal to the CA files (core/ca*.c, core/capolicy.c). */
#ifndef CONDUIT_X509B_H
#define CONDUIT_X509B_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/types.h>

#include "core/catypes.h"

#define X509B_DAY_SECS 86400
#define X509B_CN_MAX 64             /* ub-common-name */

/* One extension to add: a NID and its value in OpenSSL v3 extension config syntax. */
struct x509b_ext {
    int nid;
    const char *value;
};

/* Map the first queued OpenSSL error to -errno (a system error's errno, -ENOMEM, -EINVAL for
 * unparseable or unsupported input, else -EIO), write "<what>: <reason>" to err (may be NULL),
 * and clear the error queue. Returns that -errno. */
int x509b_ossl_errno(char *err, size_t errlen, const char *what);

/* A fresh key of type, or NULL with the OpenSSL error queued. */
EVP_PKEY *x509b_gen_key(enum ca_key_type type);

/* Serial of crt as lowercase hex into buf. 0, -EINVAL (too long for len) or -ENOMEM. */
int x509b_serial_hex(const X509 *crt, char *buf, size_t len);

/* t as YYYY-MM-DDTHH:MM:SSZ into buf. 0 or -EINVAL. */
int x509b_format_time(const ASN1_TIME *t, char *buf, size_t len);

/* Seconds from now until t into *secs, negative when t is past. 0 or -EINVAL. */
int x509b_secs_until(const ASN1_TIME *t, int64_t *secs);

/* Lowercase hex SHA-256 of the DER of crt, 64 digits, no colons. 0 or -ENOMEM. */
int x509b_fingerprint(const X509 *crt, char out[65]);

/* Build and sign a v3 certificate for pub: random positive 16-byte serial, valid from now - 5
 * minutes to not_after, issued by issuer (NULL: self-issued), whose key is issuer_key (only its
 * public half is used, for the key identifiers), with the extensions exts[0..nexts), signed by
 * sign_key (sha256, none for ed25519 of type). NULL with the OpenSSL error queued. */
X509 *x509b_build_cert(EVP_PKEY *pub, const X509_NAME *subject, X509 *issuer,
                       EVP_PKEY *issuer_key, EVP_PKEY *sign_key, enum ca_key_type type,
                       time_t not_after, const struct x509b_ext *exts, size_t nexts);

/* The root's subject: CN "QP Conduit Internal CA (<host>)" (hostname NULL or "": gethostname),
 * host sanitized to printable ASCII and cut to fit the 64-char CN limit. NULL on failure. */
X509_NAME *x509b_root_name(const char *hostname);

/* A malloc'd subjectAltName value for names[0..n) ("critical," first when critical), or NULL
 * (out of memory). */
char *x509b_san_value(const char *const *names, size_t n, bool critical);

/* The DNS names in the SAN of crt as a malloc'd array (free with ca_names_free). 0, -EINVAL (no
 * SAN, more than CA_LEAF_NAMES_MAX entries, or an empty or over-long one) or -ENOMEM. The
 * signing policy's check of each name is the caller's (cai_san_names). */
int x509b_san_names(X509 *crt, char ***out, size_t *nout);

/* crt as DER in a malloc'd buffer. 0 or -errno (-ENOMEM, -EIO...). */
int x509b_cert_der(X509 *crt, unsigned char **out, size_t *outlen);

/* Parse exactly one DER certificate of len bytes (1..64 KiB, nothing after it). NULL when it is
 * not one. */
X509 *x509b_parse_der(const unsigned char *der, size_t len);

#endif
