/* x509b.c: the CA's X.509 builders and readers: keys, certificates built from a list of
 * extensions and signed, the root's subject, subjectAltName values and names, DER encoding and
 * parsing, serials, times and fingerprints as text, and the mapping of OpenSSL errors to
 * -errno. Pure OpenSSL work, no files and no locks. See core/x509b.h. */
#include "core/x509b.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/statefile.h"

#define CA_SERIAL_BYTES 16          /* random serial length; the top byte is 0x40..0x7f */
#define CA_BACKDATE_SECS 300        /* notBefore = now - 5 min, for peers with a slow clock */
#define CA_CN_PREFIX "QP Conduit Internal CA ("
#define CA_DER_MAX (64 * 1024)      /* largest certificate the policy looks at */

/* The one mapping of OpenSSL errors to -errno: takes the first queued error as the reason
 * (written to err after what), then clears the queue. */
int x509b_ossl_errno(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    char text[256] = "unknown OpenSSL error";
    int rc = -EIO;

    if (e != 0) {
        ERR_error_string_n(e, text, sizeof(text));
        if (ERR_SYSTEM_ERROR(e) && ERR_GET_REASON(e) > 0)
            rc = -(int)ERR_GET_REASON(e);
        else if (ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE)
            rc = -ENOMEM;
        else if (ERR_GET_LIB(e) == ERR_LIB_PEM || ERR_GET_LIB(e) == ERR_LIB_ASN1 ||
                 ERR_GET_LIB(e) == ERR_LIB_OSSL_DECODER)
            rc = -EINVAL;               /* unparseable or unsupported input */
    }
    ERR_clear_error();
    state_err(err, errlen, "%s: %s", what, text);
    return rc;
}

/* A fresh key of type, or NULL with the OpenSSL error queued. */
EVP_PKEY *x509b_gen_key(enum ca_key_type type)
{
    if (type == CA_KEY_ED25519)
        return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

/* A random positive serial of exactly CA_SERIAL_BYTES bytes. 1 or 0 (error queued). */
static int set_random_serial(X509 *crt)
{
    unsigned char b[CA_SERIAL_BYTES];
    BIGNUM *bn = NULL;
    int ok = 0;

    if (RAND_bytes(b, sizeof(b)) != 1)
        goto out;
    b[0] = (unsigned char)((b[0] & 0x7f) | 0x40);
    bn = BN_bin2bn(b, sizeof(b), NULL);
    if (bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(crt)))
        ok = 1;
out:
    BN_free(bn);
    return ok;
}

/* Serial of crt as lowercase hex. 0, -EINVAL (too long for len) or -ENOMEM. */
int x509b_serial_hex(const X509 *crt, char *buf, size_t len)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(crt), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    int rc = 0;

    if (!hex) {
        rc = -ENOMEM;
        goto out;
    }
    if (strlen(hex) >= len) {
        rc = -EINVAL;
        goto out;
    }
    for (size_t i = 0; hex[i]; i++)
        buf[i] = (hex[i] >= 'A' && hex[i] <= 'F') ? (char)(hex[i] - 'A' + 'a') : hex[i];
    buf[strlen(hex)] = '\0';
out:
    OPENSSL_free(hex);
    BN_free(bn);
    ERR_clear_error();
    return rc;
}

/* t as YYYY-MM-DDTHH:MM:SSZ. 0 or -EINVAL. */
int x509b_format_time(const ASN1_TIME *t, char *buf, size_t len)
{
    struct tm tm;

    if (ASN1_TIME_to_tm(t, &tm) != 1 || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        ERR_clear_error();
        return -EINVAL;
    }
    return 0;
}

/* Seconds from now until t, negative when t is past. 0 or -EINVAL. */
int x509b_secs_until(const ASN1_TIME *t, int64_t *secs)
{
    int day, sec;

    if (ASN1_TIME_diff(&day, &sec, NULL, t) != 1) {
        ERR_clear_error();
        return -EINVAL;
    }
    *secs = (int64_t)day * X509B_DAY_SECS + sec;
    return 0;
}

/* Lowercase hex SHA-256 of the DER of crt, 64 digits, no colons. 0 or -ENOMEM. */
int x509b_fingerprint(const X509 *crt, char out[65])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    if (X509_digest(crt, EVP_sha256(), md, &n) != 1 || n != 32) {
        ERR_clear_error();
        return -ENOMEM;
    }
    for (unsigned int i = 0; i < n; i++) {
        out[2 * i] = digits[md[i] >> 4];
        out[2 * i + 1] = digits[md[i] & 0xf];
    }
    out[2 * n] = '\0';
    return 0;
}

/* Build and sign a v3 certificate for pub: random serial, valid from now - CA_BACKDATE_SECS to
 * not_after, issued by issuer (NULL: self-issued), whose key is issuer_key (only its public half
 * is used, for the key identifiers), with the extensions exts, signed by sign_key: the issuer's
 * key for the root, the subject's own key for a leaf request (see certify, core/ca.c). NULL with
 * the OpenSSL error queued. */
X509 *x509b_build_cert(EVP_PKEY *pub, const X509_NAME *subject, X509 *issuer,
                       EVP_PKEY *issuer_key, EVP_PKEY *sign_key, enum ca_key_type type,
                       time_t not_after, const struct x509b_ext *exts, size_t nexts)
{
    X509 *crt = X509_new();
    X509V3_CTX ctx;
    bool ok = false;

    if (!crt || !X509_set_version(crt, X509_VERSION_3) || !set_random_serial(crt) ||
        !X509_gmtime_adj(X509_getm_notBefore(crt), -CA_BACKDATE_SECS) ||
        !ASN1_TIME_set(X509_getm_notAfter(crt), not_after) ||
        !X509_set_subject_name(crt, subject) ||
        !X509_set_issuer_name(crt, issuer ? X509_get_subject_name(issuer) : subject) ||
        !X509_set_pubkey(crt, pub))
        goto out;
    memset(&ctx, 0, sizeof(ctx));          /* no config database: db stays NULL */
    X509V3_set_ctx(&ctx, issuer ? issuer : crt, crt, NULL, NULL, 0);
    if (!X509V3_set_issuer_pkey(&ctx, issuer_key))
        goto out;
    for (size_t i = 0; i < nexts; i++) {
        X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, &ctx, exts[i].nid, exts[i].value);
        int added = ext && X509_add_ext(crt, ext, -1);

        X509_EXTENSION_free(ext);
        if (!added)
            goto out;
    }
    if (X509_sign(crt, sign_key, type == CA_KEY_ED25519 ? NULL : EVP_sha256()) <= 0)
        goto out;
    ok = true;
out:
    if (!ok) {
        X509_free(crt);
        crt = NULL;
    }
    return crt;
}

/* The root's subject: CN "QP Conduit Internal CA (<host>)", host sanitized to printable ASCII
 * and cut to fit the 64-char CN limit. NULL with the OpenSSL error queued. */
X509_NAME *x509b_root_name(const char *hostname)
{
    char host[256], cn[X509B_CN_MAX + 1];
    int room = X509B_CN_MAX - (int)strlen(CA_CN_PREFIX ")");
    X509_NAME *name = NULL;
    int n;

    if (hostname && *hostname)
        n = snprintf(host, sizeof(host), "%s", hostname);
    else
        n = gethostname(host, sizeof(host)) == 0 ? 0 : -1;
    host[sizeof(host) - 1] = '\0';
    if (n < 0 || !host[0])
        snprintf(host, sizeof(host), "%s", "localhost");
    for (char *p = host; *p; p++) {
        if (*p < 0x20 || *p > 0x7e)
            *p = '?';
    }
    n = snprintf(cn, sizeof(cn), CA_CN_PREFIX "%.*s)", room, host);
    if (n < 0 || (size_t)n >= sizeof(cn))
        return NULL;
    name = X509_NAME_new();
    if (name && !X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                            (const unsigned char *)cn, -1, -1, 0)) {
        X509_NAME_free(name);
        name = NULL;
    }
    return name;
}

/* A malloc'd subjectAltName value for names[0..n) ("critical," first when critical), or NULL. */
char *x509b_san_value(const char *const *names, size_t n, bool critical)
{
    size_t cap = 16, used = 0;
    char *v;

    for (size_t i = 0; i < n; i++)
        cap += strlen(names[i]) + 5;
    v = malloc(cap);
    if (!v)
        return NULL;
    used = (size_t)snprintf(v, cap, "%s", critical ? "critical," : "");
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(v + used, cap - used, "%sDNS:%s", i ? "," : "", names[i]);
    return v;
}

/* The DNS names in the SAN of crt. 0, -EINVAL (no SAN, or a name that is not a domain) or
 * -ENOMEM. */
int x509b_san_names(X509 *crt, char ***out, size_t *nout)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(crt, NID_subject_alt_name, NULL, NULL);
    int n = gens ? sk_GENERAL_NAME_num(gens) : 0, rc = 0;
    char **names = NULL;
    size_t k = 0;

    *out = NULL;
    *nout = 0;
    if (n <= 0 || n > CA_LEAF_NAMES_MAX) {
        rc = -EINVAL;
        goto out;
    }
    names = calloc((size_t)n, sizeof(*names));
    if (!names) {
        rc = -ENOMEM;
        goto out;
    }
    for (int i = 0; i < n; i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);
        const ASN1_IA5STRING *dns = gn->type == GEN_DNS ? gn->d.dNSName : NULL;
        int len = dns ? ASN1_STRING_length(dns) : -1;

        if (len <= 0 || len > 253) {
            rc = -EINVAL;
            goto out;
        }
        names[k] = strndup((const char *)ASN1_STRING_get0_data(dns), (size_t)len);
        if (!names[k]) {
            rc = -ENOMEM;
            goto out;
        }
        k++;
    }
    *out = names;
    *nout = k;
    names = NULL;
out:
    ca_names_free(names, k);
    GENERAL_NAMES_free(gens);
    ERR_clear_error();
    return rc;
}

/* A certificate as DER in a malloc'd buffer. 0 or -errno. */
int x509b_cert_der(X509 *crt, unsigned char **out, size_t *outlen)
{
    unsigned char *p;
    int n = i2d_X509(crt, NULL);

    *out = NULL;
    *outlen = 0;
    if (n <= 0)
        return x509b_ossl_errno(NULL, 0, "encoding certificate");
    *out = malloc((size_t)n);
    if (!*out)
        return -ENOMEM;
    p = *out;
    if (i2d_X509(crt, &p) != n) {
        free(*out);
        *out = NULL;
        return x509b_ossl_errno(NULL, 0, "encoding certificate");
    }
    *outlen = (size_t)n;
    return 0;
}

/* Parse exactly one DER certificate of len bytes (nothing after it). NULL when it is not. */
X509 *x509b_parse_der(const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    X509 *crt;

    if (!der || len == 0 || len > CA_DER_MAX)
        return NULL;
    crt = d2i_X509(NULL, &p, (long)len);
    if (crt && p != der + len) {
        X509_free(crt);
        crt = NULL;
    }
    ERR_clear_error();
    return crt;
}
