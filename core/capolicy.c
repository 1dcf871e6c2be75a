/* capolicy.c: the signer's policy: the rules the privileged signer process (core/signer.c, via
 * ca_sign_cert) applies to a leaf request before the CA key signs it, and that ca.c applies to
 * what it is asked to issue. It allows only an end-entity leaf: an X.509 v3 certificate issued
 * in the CA's name, with 1 to CA_LEAF_NAMES_MAX (100) distinct lowercase DNS names and nothing
 * else in subjectAltName, no certificate or CRL signing, serverAuth/clientAuth only, no other
 * extensions than basicConstraints (CA:FALSE), keyUsage, extendedKeyUsage, subjectAltName and
 * the key identifiers, a key of the CA's type (ed25519 or ecdsa-p256) held by the requester and
 * not the CA's, a positive serial of at most 20 bytes, and a lifetime from about now of at most
 * CA_LEAF_DAYS_MAX (3650) days, never past the CA's own expiry. The extensions a leaf is built
 * with (ca.c, cai_make_leaf) are X.509 building and stay there; this file only decides. */
#include "core/capolicy.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/statefile.h"
#include "core/validate.h"
#include "core/x509b.h"

#define CA_SERIAL_MAX_BYTES 20      /* RFC 5280 4.1.2.2 */
#define CA_SKEW_BEFORE_SECS 86400   /* a request's notBefore may be this far back ... */
#define CA_SKEW_AFTER_SECS 3600     /* ... or this far ahead of the signer's clock */

int ca_policy_key_type(EVP_PKEY *key, enum ca_key_type *type)
{
    char group[64];
    int rc = -EINVAL;

    if (!key)
        return -EINVAL;
    if (EVP_PKEY_is_a(key, "ED25519")) {
        *type = CA_KEY_ED25519;
        rc = 0;
    } else if (EVP_PKEY_is_a(key, "EC") &&
               EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                              sizeof(group), NULL) == 1 &&
               (!strcmp(group, "prime256v1") || !strcmp(group, "P-256"))) {
        *type = CA_KEY_ECDSA_P256;
        rc = 0;
    }
    ERR_clear_error();
    return rc;
}

bool ca_policy_domain_ok(const char *d)
{
    return val_is_dns_name(d) && strcmp(d, "archive") != 0 && strcmp(d, "ca.key") != 0 &&
           strcmp(d, "ca.crt") != 0;
}

/* Extensions a leaf request may carry; anything else is refused. */
static const int allowed_exts[] = {
    NID_basic_constraints, NID_key_usage, NID_ext_key_usage, NID_subject_key_identifier,
    NID_authority_key_identifier, NID_subject_alt_name,
};

/* 0 when crt carries only allowed extensions, each at most once (duplicates make OpenSSL set
 * EXFLAG_INVALID, checked by the caller). -EPERM with a reason. */
static int check_exts(const X509 *crt, char *err, size_t errlen)
{
    int n = X509_get_ext_count(crt);

    for (int i = 0; i < n; i++) {
        const X509_EXTENSION *ext = X509_get_ext(crt, i);
        int nid = OBJ_obj2nid(X509_EXTENSION_get_object((X509_EXTENSION *)ext));
        size_t k;

        for (k = 0; k < sizeof(allowed_exts) / sizeof(allowed_exts[0]); k++)
            if (allowed_exts[k] == nid)
                break;
        if (k == sizeof(allowed_exts) / sizeof(allowed_exts[0])) {
            state_err(err, errlen, "refused: extension %s is not allowed in a leaf",
                    nid == NID_undef ? "(unknown)" : OBJ_nid2sn(nid));
            return -EPERM;
        }
    }
    return 0;
}

/* 0 when crt names one or more DNS names in its SAN and nothing else, each a valid domain.
 * -EPERM with a reason. */
static int check_san(X509 *crt, char *err, size_t errlen)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(crt, NID_subject_alt_name, NULL, NULL);
    int n = names ? sk_GENERAL_NAME_num(names) : 0, rc = 0;

    if (n <= 0 || n > CA_LEAF_NAMES_MAX) {
        rc = -EPERM;
        state_err(err, errlen, "refused: a leaf must name 1 to %d domains in subjectAltName",
                CA_LEAF_NAMES_MAX);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
        const ASN1_IA5STRING *dns = gn->type == GEN_DNS ? gn->d.dNSName : NULL;
        char name[254];
        int len = dns ? ASN1_STRING_length(dns) : -1;

        if (len <= 0 || len >= (int)sizeof(name)) {
            rc = -EPERM;
            state_err(err, errlen, "refused: subjectAltName holds a name that is not a domain");
            goto out;
        }
        memcpy(name, ASN1_STRING_get0_data(dns), (size_t)len);
        name[len] = '\0';
        if (strlen(name) != (size_t)len || !ca_policy_domain_ok(name)) {
            rc = -EPERM;
            state_err(err, errlen, "refused: subjectAltName holds an invalid domain");
            goto out;
        }
        for (int k = 0; k < i; k++) {
            const ASN1_IA5STRING *o = sk_GENERAL_NAME_value(names, k)->d.dNSName;

            if (ASN1_STRING_length(o) == len && !memcmp(ASN1_STRING_get0_data(o), name,
                                                         (size_t)len)) {
                rc = -EPERM;
                state_err(err, errlen, "refused: subjectAltName names %s twice", name);
                goto out;
            }
        }
    }
out:
    GENERAL_NAMES_free(names);
    ERR_clear_error();
    return rc;
}

/* 0 when the validity of crt is what this CA issues: from about now (CA_SKEW_* either way), to a
 * time in the future, at most CA_LEAF_DAYS_MAX days (and a day's slack) ahead and never past the
 * CA's own expiry. -EKEYEXPIRED when the CA expired, -EPERM with a reason otherwise. */
static int check_validity(X509 *ca_cert, const X509 *crt, char *err, size_t errlen)
{
    int64_t ca_left, from, until;

    if (x509b_secs_until(X509_get0_notAfter(ca_cert), &ca_left) < 0 || ca_left <= 0) {
        state_err(err, errlen, "the CA certificate expired; no leaf can be signed");
        return -EKEYEXPIRED;
    }
    if (x509b_secs_until(X509_get0_notBefore(crt), &from) < 0 ||
        x509b_secs_until(X509_get0_notAfter(crt), &until) < 0) {
        state_err(err, errlen, "refused: unreadable validity");
        return -EPERM;
    }
    if (from < -CA_SKEW_BEFORE_SECS || from > CA_SKEW_AFTER_SECS) {
        state_err(err, errlen, "refused: notBefore is not about now");
        return -EPERM;
    }
    if (until <= 0 || until <= from ||
        until > (int64_t)CA_LEAF_DAYS_MAX * X509B_DAY_SECS + X509B_DAY_SECS || until > ca_left) {
        state_err(err, errlen, "refused: notAfter is past, too far ahead (%d days at most), or "
                "past the CA's own expiry", CA_LEAF_DAYS_MAX);
        return -EPERM;
    }
    return 0;
}

int ca_policy_check_leaf(X509 *ca_cert, enum ca_key_type ca_type, X509 *crt, char *err,
                         size_t errlen)
{
    EVP_PKEY *pub = X509_get0_pubkey(crt);
    const ASN1_INTEGER *serial = X509_get0_serialNumber(crt);
    BIGNUM *bn = NULL;
    enum ca_key_type type;
    uint32_t flags;
    int rc = -EPERM;

    if (X509_get_version(crt) != X509_VERSION_3) {
        state_err(err, errlen, "refused: not an X.509 v3 certificate");
        goto out;
    }
    if (X509_NAME_cmp(X509_get_issuer_name(crt), X509_get_subject_name(ca_cert)) != 0) {
        state_err(err, errlen, "refused: the issuer is not this CA");
        goto out;
    }
    if (X509_NAME_cmp(X509_get_subject_name(crt), X509_get_subject_name(ca_cert)) == 0) {
        state_err(err, errlen, "refused: the subject is the CA's own name");
        goto out;
    }
    bn = ASN1_INTEGER_to_BN(serial, NULL);
    if (!bn || BN_is_negative(bn) || BN_is_zero(bn) || BN_num_bytes(bn) > CA_SERIAL_MAX_BYTES) {
        state_err(err, errlen, "refused: the serial is not a positive number of at most %d bytes",
                CA_SERIAL_MAX_BYTES);
        goto out;
    }
    rc = check_exts(crt, err, errlen);
    if (rc < 0)
        goto out;
    rc = -EPERM;
    flags = X509_get_extension_flags(crt);
    if (flags & EXFLAG_INVALID) {
        state_err(err, errlen, "refused: invalid or repeated extensions");
        goto out;
    }
    if (!(flags & EXFLAG_BCONS) || (flags & EXFLAG_CA) || X509_check_ca(crt) != 0) {
        state_err(err, errlen, "refused: not an end-entity certificate (CA:FALSE is required)");
        goto out;
    }
    if ((flags & EXFLAG_KUSAGE) && (X509_get_key_usage(crt) & (KU_KEY_CERT_SIGN | KU_CRL_SIGN))) {
        state_err(err, errlen, "refused: keyUsage allows signing certificates or CRLs");
        goto out;
    }
    if ((flags & EXFLAG_XKUSAGE) &&
        (X509_get_extended_key_usage(crt) & ~(uint32_t)(XKU_SSL_SERVER | XKU_SSL_CLIENT))) {
        state_err(err, errlen, "refused: extendedKeyUsage beyond serverAuth and clientAuth");
        goto out;
    }
    if (!pub || ca_policy_key_type(pub, &type) < 0 || type != ca_type) {
        state_err(err, errlen, "refused: the leaf key is not of the CA's type (%s)",
                ca_key_type_name(ca_type));
        goto out;
    }
    if (X509_check_issued(ca_cert, crt) != X509_V_OK) {
        state_err(err, errlen, "refused: the authority key identifier or the signature algorithm "
                "is not the CA's");
        goto out;
    }
    rc = check_san(crt, err, errlen);
    if (rc < 0)
        goto out;
    rc = -EPERM;
    if (EVP_PKEY_eq(pub, X509_get0_pubkey(ca_cert)) == 1) {
        state_err(err, errlen, "refused: the leaf key is the CA's key");
        goto out;
    }
    if (X509_verify(crt, pub) != 1) {
        state_err(err, errlen, "refused: the request is not signed by its own key");
        goto out;
    }
    rc = check_validity(ca_cert, crt, err, errlen);
out:
    BN_free(bn);
    ERR_clear_error();
    return rc;
}

int ca_policy_leaf_days(int *leaf_days, char *err, size_t errlen)
{
    if (*leaf_days == 0)
        *leaf_days = CA_LEAF_DAYS_DEFAULT;
    if (*leaf_days < 0 || *leaf_days > CA_LEAF_DAYS_MAX) {
        state_err(err, errlen, "leaf validity must be 1..%d days", CA_LEAF_DAYS_MAX);
        return -EINVAL;
    }
    return 0;
}

int ca_policy_names_ok(const char *const *names, size_t n)
{
    if (!names || n == 0 || n > CA_LEAF_NAMES_MAX)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!ca_policy_domain_ok(names[i]))
            return -EINVAL;
        for (size_t k = 0; k < i; k++)
            if (strcmp(names[i], names[k]) == 0)
                return -EINVAL;
    }
    return 0;
}
