/* ca.h: the internal certificate authority: the root under state/tls and the serving leaves
 * (one PEM file each, carrying up to CA_LEAF_NAMES_MAX names). The per-domain pairs of
 * state/tls/<domain>/ that older versions served can still be issued, checked and archived
 * (ca_issue, ca_needs_renewal, ca_archive): a mount archives any it finds. */
#ifndef CONDUIT_CA_H
#define CONDUIT_CA_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* The limits, key types and name lists: ca_key_type_name, ca_key_type_parse, ca_names_free. */
#include "core/catypes.h"

/* An open CA: its key and certificate held in memory. Every function below is thread-safe. */
struct ca;

/* Open the CA of state_dir (which must exist): state/tls/ca.key and ca.crt, both 0600 in a 0700
 * directory (the mount shows the certificate to everyone). When neither exists, generate a new
 * root of type want, CN "QP Conduit Internal CA (<hostname>)" (hostname NULL or "":
 * gethostname), and set *created (created may be NULL). An existing CA is never
 * regenerated: a key without certificate, a certificate without key, a key that does not match
 * its certificate, a key readable by group or others, or a certificate that is not a CA fail with
 * -EINVAL/-EPERM and leave the files untouched. An existing CA of another type than want is kept
 * (see ca_key_type_get). On failure returns -errno and a one-line reason in err; on success err
 * (when given) is "" or a one-line notice for the log, e.g. that the existing key type wins. */
int ca_open(const char *state_dir, enum ca_key_type want, const char *hostname, struct ca **out,
            bool *created, char *err, size_t errlen);

/* Signs a leaf for a CA whose key lives in another process (the signer): req is the DER of
 * the certificate to sign, as ca_issue builds it (issued in the CA's name, self-signed by the
 * leaf's own key); on success *out is the DER of the certificate signed by the CA key (malloc'd),
 * as ca_sign_cert returns it. 0 or -errno with a one-line reason in err. */
typedef int (*ca_sign_fn)(void *arg, const unsigned char *req, size_t len, unsigned char **out,
                          size_t *outlen, char *err, size_t errlen);

/* Open the CA of state_dir whose key another process holds: root_der is its certificate (as
 * ca_root_der gives it there), fn (with arg) signs. No key file is read; every call below works
 * as for ca_open, ca_issue signing through fn. 0, -EINVAL (not a self-signed CA certificate of a
 * supported type) or -errno with a reason in err. */
int ca_open_remote(const char *state_dir, const unsigned char *root_der, size_t len,
                   ca_sign_fn fn, void *arg, struct ca **out, char *err, size_t errlen);

/* Sign a leaf request (see ca_sign_fn) with the key of a CA from ca_open, if it meets the
 * policy (ca_policy_check_leaf, core/capolicy.h): a v3 certificate issued in this CA's name,
 * CA:FALSE, no certificate or CRL signing, 1 to CA_LEAF_NAMES_MAX distinct DNS names, each a
 * valid lowercase domain, and nothing else in subjectAltName, only the extensions ca_issue sets,
 * a key of the CA's type signing the request itself, a positive serial, valid from about now for
 * at most CA_LEAF_DAYS_MAX days and never past the CA. *out (malloc'd) gets the signed DER.
 * 0, -EINVAL (not one DER certificate), -EPERM (refused by the policy), -EKEYEXPIRED (the CA
 * expired), -ENOKEY (a CA from ca_open_remote) or -errno, with a one-line reason in err. */
int ca_sign_cert(struct ca *ca, const unsigned char *der, size_t len, unsigned char **out,
                 size_t *outlen, char *err, size_t errlen);

/* The CA certificate as DER in *der (malloc'd). 0 or -errno. */
int ca_root_der(struct ca *ca, unsigned char **der, size_t *len);

/* Release the CA (the key is freed by OpenSSL, which clears it). NULL is ignored. */
void ca_close(struct ca *ca);

/* The key type of the open CA, which is also the type of every leaf it issues. */
enum ca_key_type ca_key_type_get(const struct ca *ca);

/* Issue a fresh key and certificate for domain (lowercase DNS name) valid leaf_days days from now
 * (0: CA_LEAF_DAYS_DEFAULT; never past the CA's own expiry), into state/tls/<domain>/key.pem
 * (written first) and cert.pem, both 0600, in a 0700 directory. Any existing pair is archived first
 * (ca_archive), only once the new pair has been built. Writes the new serial into serial_hex
 * (may be NULL). 0, -EINVAL (bad domain or days), -EKEYEXPIRED (CA expired) or -errno, with a
 * reason in err. */
int ca_issue(struct ca *ca, const char *domain, int leaf_days, char serial_hex[CA_SERIAL_HEX_MAX],
             char *err, size_t errlen);

/* Move state/tls/<domain>/ to state/tls/archive/<domain>.<serial-hex>/ (".unknown" when the
 * certificate cannot be read; "-2", "-3"... appended on a name clash) and fsync both parents.
 * 0, -ENOENT when there is no pair, -EINVAL or -errno. */
int ca_archive(struct ca *ca, const char *domain);

/* 1 when the leaf of domain needs (re)issuing: less than renew_before_days left, or missing,
 * unreadable, not issued by this CA, not for domain, or its key missing or not matching. A
 * renew_before_days at least the leaf lifetime therefore always gives 1: the caller must pace its
 * renewals. 0 when it is fine; -EINVAL (bad domain, negative days) or -ENOMEM. */
int ca_needs_renewal(struct ca *ca, const char *domain, int renew_before_days);

/* New JSON object describing the CA: {"subject","key_type","not_before","not_after","serial",
 * "sha256_fingerprint"}. Times are YYYY-MM-DDTHH:MM:SSZ (UTC), the serial lowercase hex, the
 * fingerprint 64 lowercase hex digits without colons (SHA-256 of the DER). 0 or -ENOMEM. */
int ca_info_json(struct ca *ca, json_t **out);

/* The CA certificate as a malloc'd NUL-terminated PEM string. 0 or -ENOMEM. */
int ca_cert_pem(struct ca *ca, char **pem);

/* ---- serving leaves: each one PEM file (the leaf, the CA certificate, the leaf's key), mode
 * 0600, whose name ends in ".pem"; path is absolute. ---- */

/* Issue a fresh key and a certificate for names[0..n) (1..CA_LEAF_NAMES_MAX distinct lowercase
 * DNS names; the first is the CN when it fits) valid leaf_days days (as ca_issue), and write the
 * file at path atomically (its directory is created 0700 when missing). An existing file there
 * is first hard-linked into state/tls/archive/ as <name without .pem>.<serial>.pem ("-2", ...
 * on a clash), only once the new leaf is signed. serial_hex as ca_issue. 0, -EINVAL (bad path,
 * names or days), -EKEYEXPIRED or -errno, with a reason in err. */
int ca_issue_bundle(struct ca *ca, const char *path, const char *const *names, size_t n,
                    int leaf_days, char serial_hex[CA_SERIAL_HEX_MAX], char *err, size_t errlen);

/* Archive the serving leaf at path as ca_issue_bundle does, then remove it. 0, -ENOENT (no
 * file), -EINVAL or -errno. */
int ca_bundle_archive(struct ca *ca, const char *path);

/* The DNS names of the (first) certificate in the file at path, as a malloc'd array of malloc'd
 * strings (free with ca_names_free). 0, -ENOENT, -EINVAL (no certificate, or a SAN that is not
 * 1..CA_LEAF_NAMES_MAX valid domains) or -ENOMEM. */
int ca_bundle_names(struct ca *ca, const char *path, char ***names, size_t *n);

/* 1 when the serving leaf at path must be reissued for names[0..n): less than
 * renew_before_days left, or missing, unreadable, not issued by this CA, its SAN not exactly
 * names (in any order), or its key missing, readable by others or not matching. 0 when fine;
 * -EINVAL or -ENOMEM. */
int ca_bundle_needs_renewal(struct ca *ca, const char *path, const char *const *names, size_t n,
                            int renew_before_days);

/* New JSON object for the serving leaf at path, shown for domain: {"domain","serial",
 * "not_before","not_after","days_left","sha256_fingerprint","key_type","names"} in the formats
 * of ca_info_json; days_left is rounded down and negative once expired, "names" is every DNS
 * name the leaf carries. 0, -ENOENT (no readable certificate), -EINVAL (bad path or domain) or
 * -ENOMEM. */
int ca_bundle_json(struct ca *ca, const char *path, const char *domain, json_t **out);

/* The certificate of the serving leaf at path (only the first one there, never its key),
 * re-encoded from its parsed form (so never anything else from the file), as a malloc'd
 * NUL-terminated PEM string. 0, -ENOENT, -EINVAL or -ENOMEM. */
int ca_bundle_pem(struct ca *ca, const char *path, char **pem);

#endif
