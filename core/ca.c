/* ca.c: the internal CA: root generation and loading (ca_open, ca_open_remote), the per-domain
 * pairs of state/tls/<domain>/ (issue, archive, renewal), and signing (only what the policy of
 * core/capolicy.c allows: every certificate the CA key signs must meet it). The CA key is either
 * held here (ca_open: the signer process, unit tests, tools) or kept in another process
 * (ca_open_remote: the daemon, which then holds only the certificate and asks that process for
 * signatures). The serving leaves are in core/cabundle.c, the JSON and PEM views in
 * core/caview.c, the PEM files in core/pemstore.c and the X.509 building in core/x509b.c. */
#include "core/ca.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/ca_int.h"
#include "core/capolicy.h"
#include "core/pemstore.h"
#include "core/statefile.h"
#include "core/x509b.h"
#include "util/util.h"

#define CA_ROOT_YEARS 10

/* Generate, write (key first) and install a new root of type. 0 or -errno with a reason. */
static int generate_root(struct ca *ca, enum ca_key_type type, const char *hostname,
                         const char *key_path, const char *crt_path, char *err, size_t errlen)
{
    static const struct x509b_ext exts[] = {
        { NID_basic_constraints, "critical,CA:TRUE" },
        { NID_key_usage, "critical,keyCertSign,cRLSign" },
        { NID_subject_key_identifier, "hash" },
        { NID_authority_key_identifier, "keyid:always" },
    };
    X509_NAME *name = NULL;
    EVP_PKEY *key = NULL;
    X509 *crt = NULL;
    time_t now = time(NULL), not_after;
    struct tm tm;
    int rc = 0;

    gmtime_r(&now, &tm);
    tm.tm_year += CA_ROOT_YEARS;
    not_after = timegm(&tm);
    name = x509b_root_name(hostname);
    key = name ? x509b_gen_key(type) : NULL;
    crt = key ? x509b_build_cert(key, name, NULL, key, key, type, not_after, exts,
                                 sizeof(exts) / sizeof(exts[0])) : NULL;
    if (!crt) {
        rc = x509b_ossl_errno(err, errlen, "generating the CA");
        goto out;
    }
    rc = pem_write_key(key_path, key, err, errlen);
    if (rc < 0)
        goto out;
    rc = pem_write_cert(crt_path, crt, err, errlen);
    if (rc < 0) {
        /* The key was created just now and certifies nothing: keep "both or neither". */
        state_unlink(key_path);
        goto out;
    }
    ca->type = type;
    ca->key = key;
    ca->cert = crt;
    key = NULL;
    crt = NULL;
out:
    X509_NAME_free(name);
    EVP_PKEY_free(key);
    X509_free(crt);
    return rc;
}

/* Load an existing root and check it: key and certificate match, supported key type, a CA
 * certificate self-signed by that key. 0 or -errno with a reason. */
static int load_root(struct ca *ca, const char *key_path, const char *crt_path, char *err,
                     size_t errlen)
{
    EVP_PKEY *key = NULL;
    X509 *crt = NULL;
    EVP_PKEY *pub;
    int rc;

    rc = pem_load_key(key_path, true, &key, err, errlen);
    if (rc < 0)
        goto out;
    rc = pem_load_cert(crt_path, &crt, err, errlen);
    if (rc < 0)
        goto out;
    pub = X509_get0_pubkey(crt);
    if (!pub || EVP_PKEY_eq(pub, key) != 1) {
        rc = -EINVAL;
        state_err(err, errlen, "CA key %s does not match certificate %s; refusing to use or "
                "replace them (restore the matching pair)", key_path, crt_path);
        goto out;
    }
    if (ca_policy_key_type(key, &ca->type) < 0) {
        rc = -EINVAL;
        state_err(err, errlen, "CA key %s is neither ed25519 nor ecdsa-p256", key_path);
        goto out;
    }
    if (X509_check_ca(crt) != 1 || X509_verify(crt, pub) != 1) {
        rc = -EINVAL;
        state_err(err, errlen, "%s is not a self-signed CA certificate", crt_path);
        goto out;
    }
    ca->key = key;
    ca->cert = crt;
    key = NULL;
    crt = NULL;
out:
    ERR_clear_error();
    EVP_PKEY_free(key);
    X509_free(crt);
    return rc;
}

/* A new zeroed CA for state_dir with its tls and archive directory paths set (no lock, key or
 * certificate yet). NULL with *rc -ENOMEM or -ENAMETOOLONG and a reason in err. */
static struct ca *new_ca(const char *state_dir, int *rc, char *err, size_t errlen)
{
    struct ca *ca = calloc(1, sizeof(*ca));

    *rc = 0;
    if (!ca) {
        *rc = -ENOMEM;
        state_err(err, errlen, "out of memory");
        return NULL;
    }
    if (state_path(ca->tls_dir, sizeof(ca->tls_dir), state_dir, "tls") < 0 ||
        state_path(ca->archive_dir, sizeof(ca->archive_dir), ca->tls_dir, "archive") < 0) {
        free(ca);
        *rc = -ENAMETOOLONG;
        state_err(err, errlen, "state directory path too long");
        return NULL;
    }
    return ca;
}

int ca_open(const char *state_dir, enum ca_key_type want, const char *hostname, struct ca **out,
            bool *created, char *err, size_t errlen)
{
    char key_path[PATH_MAX], crt_path[PATH_MAX];
    struct ca *ca = NULL;
    bool made = false;
    int rc, have_key, have_crt;

    state_err(err, errlen, "%s", "");
    if (created)
        *created = false;
    if (!state_dir || !out || (want != CA_KEY_ED25519 && want != CA_KEY_ECDSA_P256)) {
        state_err(err, errlen, "ca_open: invalid argument");
        return -EINVAL;
    }
    *out = NULL;
    ca = new_ca(state_dir, &rc, err, errlen);
    if (!ca)
        goto out;
    if (state_path(key_path, sizeof(key_path), ca->tls_dir, "ca.key") < 0 ||
        state_path(crt_path, sizeof(crt_path), ca->tls_dir, "ca.crt") < 0) {
        rc = -ENAMETOOLONG;
        state_err(err, errlen, "state directory path too long");
        goto out;
    }
    rc = pem_ensure_dir(ca->tls_dir);
    if (rc < 0) {
        state_err(err, errlen, "creating %s: %s", ca->tls_dir, strerror(-rc));
        goto out;
    }
    rc = pem_clean_leaf_temps(ca->tls_dir, 0);
    if (rc < 0) {
        state_err(err, errlen, "removing temp files under %s: %s", ca->tls_dir, strerror(-rc));
        goto out;
    }
    have_key = pem_exists(key_path);
    have_crt = pem_exists(crt_path);
    if (have_key < 0 || have_crt < 0) {
        rc = have_key < 0 ? have_key : have_crt;
        state_err(err, errlen, "checking %s: %s", have_key < 0 ? key_path : crt_path,
                strerror(-rc));
        goto out;
    }
    if (!have_key && !have_crt) {
        rc = generate_root(ca, want, hostname, key_path, crt_path, err, errlen);
        made = rc == 0;
    } else if (!have_crt || !have_key) {
        rc = -EINVAL;
        state_err(err, errlen, "%s exists without %s; refusing to regenerate the CA over it "
                "(restore the missing file or remove both)", have_key ? key_path : crt_path,
                have_key ? crt_path : key_path);
    } else {
        rc = load_root(ca, key_path, crt_path, err, errlen);
    }
    if (rc < 0)
        goto out;
    rc = -pthread_mutex_init(&ca->lock, NULL);
    if (rc < 0) {
        state_err(err, errlen, "pthread_mutex_init: %s", strerror(-rc));
        goto out;
    }
    if (ca->type != want)
        state_err(err, errlen, "keeping the existing %s CA (requested %s); its leaves are %s",
                ca_key_type_name(ca->type), ca_key_type_name(want), ca_key_type_name(ca->type));
    if (created)
        *created = made;
    *out = ca;
    ca = NULL;
out:
    if (ca) {
        EVP_PKEY_free(ca->key);
        X509_free(ca->cert);
        free(ca);
    }
    return rc;
}

void ca_close(struct ca *ca)
{
    if (!ca)
        return;
    pthread_mutex_destroy(&ca->lock);
    EVP_PKEY_free(ca->key);
    X509_free(ca->cert);
    free(ca);
}

enum ca_key_type ca_key_type_get(const struct ca *ca)
{
    return ca->type;
}

/* state/tls/<domain> and its two files (each buffer PATH_MAX). 0 or -EINVAL/-ENAMETOOLONG. */
static int leaf_paths(const struct ca *ca, const char *domain, char *dir, char *key_path,
                      char *crt_path)
{
    if (!ca_policy_domain_ok(domain))
        return -EINVAL;
    if (state_path(dir, PATH_MAX, ca->tls_dir, domain) < 0 ||
        state_path(key_path, PATH_MAX, dir, "key.pem") < 0 ||
        state_path(crt_path, PATH_MAX, dir, "cert.pem") < 0)
        return -ENAMETOOLONG;
    return 0;
}

/* Read the serial for an archive name and make the archive directory (see core/ca_int.h). */
int cai_archive_prep(struct ca *ca, const char *crt_path, char serial[CA_SERIAL_HEX_MAX])
{
    X509 *crt = NULL;

    if (pem_load_cert(crt_path, &crt, NULL, 0) < 0 ||
        x509b_serial_hex(crt, serial, CA_SERIAL_HEX_MAX) < 0)
        snprintf(serial, CA_SERIAL_HEX_MAX, "%s", "unknown");
    X509_free(crt);
    return pem_ensure_dir(ca->archive_dir);
}

/* One archive name to try (see core/ca_int.h). */
int cai_archive_dest(const struct ca *ca, const char *stem, int stemlen, const char *serial,
                     const char *suffix, int try, char *dest)
{
    char name[NAME_MAX + 1];
    int n;

    if (try == 1)
        n = snprintf(name, sizeof(name), "%.*s.%s%s", stemlen, stem, serial, suffix);
    else
        n = snprintf(name, sizeof(name), "%.*s.%s-%d%s", stemlen, stem, serial, try, suffix);
    if (n < 0 || (size_t)n >= sizeof(name) || state_path(dest, PATH_MAX, ca->archive_dir, name) < 0)
        return -ENAMETOOLONG;
    return 0;
}

/* ca_archive with the lock held. */
static int archive_locked(struct ca *ca, const char *domain)
{
    char dir[PATH_MAX], key_path[PATH_MAX], crt_path[PATH_MAX], dest[PATH_MAX];
    char serial[CA_SERIAL_HEX_MAX];
    struct stat st;
    int rc, room;

    rc = leaf_paths(ca, domain, dir, key_path, crt_path);
    if (rc == 0)
        rc = pem_lstat_dir(dir, &st);
    if (rc < 0)
        return rc;
    rc = cai_archive_prep(ca, crt_path, serial);
    if (rc < 0)
        return rc;
    /* Room for the domain in a file name; only a domain near 253 chars is ever cut. */
    room = NAME_MAX - (int)strlen(serial) - (int)strlen(".-999");
    for (int i = 1; i < 1000; i++) {
        if (cai_archive_dest(ca, domain, room, serial, "", i, dest) < 0)
            return -ENAMETOOLONG;
        rc = pem_exists(dest);
        if (rc <= 0)
            break;
    }
    if (rc != 0)
        return rc < 0 ? rc : -EEXIST;
    if (rename(dir, dest) < 0)
        return -errno;
    rc = cu_fsync_dir(ca->tls_dir);
    if (rc == 0)
        rc = cu_fsync_dir(ca->archive_dir);
    return rc;
}

int ca_archive(struct ca *ca, const char *domain)
{
    int rc;

    if (!ca)
        return -EINVAL;
    pthread_mutex_lock(&ca->lock);
    rc = archive_locked(ca, domain);
    pthread_mutex_unlock(&ca->lock);
    return rc;
}

/* ca_sign_cert with the lock held and the key here. */
static int sign_locked(struct ca *ca, const unsigned char *der, size_t len, unsigned char **out,
                       size_t *outlen, char *err, size_t errlen)
{
    X509 *crt = NULL;
    int rc;

    *out = NULL;
    *outlen = 0;
    if (!ca->key) {
        state_err(err, errlen, "the CA key is not in this process");
        return -ENOKEY;
    }
    crt = x509b_parse_der(der, len);
    if (!crt) {
        rc = -EINVAL;
        state_err(err, errlen, "refused: not one DER certificate");
        goto out;
    }
    rc = ca_policy_check_leaf(ca->cert, ca->type, crt, err, errlen);
    if (rc < 0)
        goto out;
    if (X509_sign(crt, ca->key, ca->type == CA_KEY_ED25519 ? NULL : EVP_sha256()) <= 0) {
        rc = x509b_ossl_errno(err, errlen, "signing the certificate");
        goto out;
    }
    rc = x509b_cert_der(crt, out, outlen);
out:
    X509_free(crt);
    return rc;
}

int ca_sign_cert(struct ca *ca, const unsigned char *der, size_t len, unsigned char **out,
                 size_t *outlen, char *err, size_t errlen)
{
    int rc;

    state_err(err, errlen, "%s", "");
    if (!ca || !out || !outlen)
        return -EINVAL;
    pthread_mutex_lock(&ca->lock);
    rc = sign_locked(ca, der, len, out, outlen, err, errlen);
    pthread_mutex_unlock(&ca->lock);
    return rc;
}

/* Have the CA key sign the leaf request *crt (self-signed by key, its subject key; see
 * x509b_build_cert): here, or in the process that holds the CA key. What comes back must verify
 * with the CA's public key and carry the request's serial and key; it replaces *crt. With the
 * lock held. 0 or -errno with a reason. */
static int certify(struct ca *ca, X509 **crt, EVP_PKEY *key, char *err, size_t errlen)
{
    unsigned char *req = NULL, *resp = NULL;
    size_t reqlen = 0, resplen = 0;
    X509 *got = NULL;
    int rc;

    rc = x509b_cert_der(*crt, &req, &reqlen);
    if (rc < 0) {
        state_err(err, errlen, "encoding the certificate request: %s", strerror(-rc));
        goto out;
    }
    if (ca->sign)
        rc = ca->sign(ca->sign_arg, req, reqlen, &resp, &resplen, err, errlen);
    else
        rc = sign_locked(ca, req, reqlen, &resp, &resplen, err, errlen);
    if (rc < 0)
        goto out;
    got = x509b_parse_der(resp, resplen);
    if (!got || X509_verify(got, X509_get0_pubkey(ca->cert)) != 1 ||
        EVP_PKEY_eq(X509_get0_pubkey(got), key) != 1 ||
        ASN1_INTEGER_cmp(X509_get0_serialNumber(got), X509_get0_serialNumber(*crt)) != 0) {
        rc = -EIO;
        state_err(err, errlen, "the signer returned a certificate other than the one requested");
        goto out;
    }
    X509_free(*crt);
    *crt = got;
    got = NULL;
out:
    ERR_clear_error();
    X509_free(got);
    free(req);
    free(resp);
    return rc;
}

int ca_open_remote(const char *state_dir, const unsigned char *root_der, size_t len,
                   ca_sign_fn fn, void *arg, struct ca **out, char *err, size_t errlen)
{
    struct ca *ca = NULL;
    EVP_PKEY *pub;
    int rc = -EINVAL;

    state_err(err, errlen, "%s", "");
    if (!state_dir || !fn || !out) {
        state_err(err, errlen, "ca_open_remote: invalid argument");
        return -EINVAL;
    }
    *out = NULL;
    ca = new_ca(state_dir, &rc, err, errlen);
    if (!ca)
        goto out;
    rc = -EINVAL;
    ca->cert = x509b_parse_der(root_der, len);
    pub = ca->cert ? X509_get0_pubkey(ca->cert) : NULL;
    if (!pub || ca_policy_key_type(pub, &ca->type) < 0 || X509_check_ca(ca->cert) != 1 ||
        X509_verify(ca->cert, pub) != 1) {
        state_err(err, errlen, "the signer's CA certificate is not a self-signed ed25519 or "
                "ecdsa-p256 CA");
        goto out;
    }
    rc = -pthread_mutex_init(&ca->lock, NULL);
    if (rc < 0) {
        state_err(err, errlen, "pthread_mutex_init: %s", strerror(-rc));
        goto out;
    }
    ca->sign = fn;
    ca->sign_arg = arg;
    *out = ca;
    ca = NULL;
out:
    ERR_clear_error();
    if (ca) {
        X509_free(ca->cert);
        free(ca);
    }
    return rc;
}

int ca_root_der(struct ca *ca, unsigned char **der, size_t *len)
{
    int rc;

    pthread_mutex_lock(&ca->lock);
    rc = x509b_cert_der(ca->cert, der, len);
    pthread_mutex_unlock(&ca->lock);
    return rc;
}

/* Build a fresh key and a leaf for names[0..n), signed by the CA (here or through the signer).
 * The first name is the CN when it fits; otherwise the subject is empty and the SAN critical.
 * With the lock held. 0 or -errno with a reason; on success *key and *crt are the caller's. */
int cai_make_leaf(struct ca *ca, const char *const *names, size_t n, int leaf_days,
                  EVP_PKEY **key, X509 **crt, char *err, size_t errlen)
{
    char *san = NULL, until[32];
    struct x509b_ext exts[] = {
        { NID_basic_constraints, "critical,CA:FALSE" },
        { NID_key_usage, "critical,digitalSignature" },
        { NID_ext_key_usage, "serverAuth" },
        { NID_subject_key_identifier, "hash" },
        { NID_authority_key_identifier, "keyid:always" },
        { NID_subject_alt_name, NULL },
    };
    X509_NAME *name = NULL;
    int64_t ca_left;
    time_t now, not_after;
    bool cn = strlen(names[0]) <= X509B_CN_MAX;
    int rc = 0;

    *key = NULL;
    *crt = NULL;
    if (x509b_secs_until(X509_get0_notAfter(ca->cert), &ca_left) < 0 || ca_left <= 0) {
        if (x509b_format_time(X509_get0_notAfter(ca->cert), until, sizeof(until)) < 0)
            snprintf(until, sizeof(until), "%s", "?");
        state_err(err, errlen, "the CA certificate expired (%s); no leaf can be issued", until);
        return -EKEYEXPIRED;
    }
    san = x509b_san_value(names, n, !cn);
    if (!san)
        return -ENOMEM;
    exts[5].value = san;
    now = time(NULL);
    not_after = now + (time_t)leaf_days * X509B_DAY_SECS;
    if ((int64_t)leaf_days * X509B_DAY_SECS > ca_left)
        not_after = now + (time_t)ca_left;
    name = X509_NAME_new();
    if (name && cn && !X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                                  (const unsigned char *)names[0], -1, -1, 0)) {
        X509_NAME_free(name);
        name = NULL;
    }
    *key = name ? x509b_gen_key(ca->type) : NULL;
    *crt = *key ? x509b_build_cert(*key, name, ca->cert, X509_get0_pubkey(ca->cert), *key,
                                   ca->type, not_after, exts, sizeof(exts) / sizeof(exts[0]))
                : NULL;
    if (!*crt) {
        rc = x509b_ossl_errno(err, errlen, "issuing the certificate");
        goto out;
    }
    rc = certify(ca, crt, *key, err, errlen);
out:
    if (rc < 0) {
        EVP_PKEY_free(*key);
        X509_free(*crt);
        *key = NULL;
        *crt = NULL;
    }
    X509_NAME_free(name);
    free(san);
    return rc;
}

void cai_issue_begin(char serial_hex[CA_SERIAL_HEX_MAX], char *err, size_t errlen)
{
    state_err(err, errlen, "%s", "");
    if (serial_hex)
        serial_hex[0] = '\0';
}

int ca_issue(struct ca *ca, const char *domain, int leaf_days, char serial_hex[CA_SERIAL_HEX_MAX],
             char *err, size_t errlen)
{
    char dir[PATH_MAX], key_path[PATH_MAX], crt_path[PATH_MAX], serial[CA_SERIAL_HEX_MAX];
    EVP_PKEY *key = NULL;
    X509 *crt = NULL;
    int rc;

    cai_issue_begin(serial_hex, err, errlen);
    if (!ca)
        return -EINVAL;
    rc = ca_policy_leaf_days(&leaf_days, err, errlen);
    if (rc < 0)
        return rc;
    rc = leaf_paths(ca, domain, dir, key_path, crt_path);
    if (rc < 0) {
        state_err(err, errlen, "invalid domain for a certificate");
        return rc;
    }
    pthread_mutex_lock(&ca->lock);
    rc = cai_make_leaf(ca, &domain, 1, leaf_days, &key, &crt, err, errlen);
    if (rc < 0)
        goto out;
    rc = x509b_serial_hex(crt, serial, sizeof(serial));
    if (rc < 0)
        goto out;
    rc = archive_locked(ca, domain);
    if (rc < 0 && rc != -ENOENT) {
        state_err(err, errlen, "archiving the previous pair of %s: %s", domain, strerror(-rc));
        goto out;
    }
    rc = pem_ensure_dir(dir);
    if (rc < 0) {
        state_err(err, errlen, "creating %s: %s", dir, strerror(-rc));
        goto out;
    }
    rc = pem_write_key(key_path, key, err, errlen);
    if (rc < 0)
        goto out;
    rc = pem_write_cert(crt_path, crt, err, errlen);
    if (rc < 0)
        goto out;
    if (serial_hex)
        snprintf(serial_hex, CA_SERIAL_HEX_MAX, "%s", serial);
out:
    pthread_mutex_unlock(&ca->lock);
    EVP_PKEY_free(key);
    X509_free(crt);
    return rc;
}

int cai_san_names(X509 *crt, char ***out, size_t *nout)
{
    int rc = x509b_san_names(crt, out, nout);

    for (size_t i = 0; rc == 0 && i < *nout; i++)
        if (!ca_policy_domain_ok((*out)[i]))
            rc = -EINVAL;
    if (rc == -EINVAL && *out) {
        ca_names_free(*out, *nout);
        *out = NULL;
        *nout = 0;
    }
    return rc;
}

/* The renewal checks common to both kinds of leaf (see core/ca_int.h). */
int cai_leaf_due(struct ca *ca, X509 *crt, const char *key_path, bool secret,
                 int renew_before_days)
{
    EVP_PKEY *key = NULL;
    int64_t left;
    int rc = 1;

    if (X509_check_issued(ca->cert, crt) != X509_V_OK ||
        X509_verify(crt, X509_get0_pubkey(ca->cert)) != 1)
        goto out;
    if (pem_load_key(key_path, secret, &key, NULL, 0) < 0 ||
        EVP_PKEY_eq(X509_get0_pubkey(crt), key) != 1)
        goto out;
    if (x509b_secs_until(X509_get0_notAfter(crt), &left) < 0)
        goto out;
    rc = left < (int64_t)renew_before_days * X509B_DAY_SECS ? 1 : 0;
out:
    ERR_clear_error();
    EVP_PKEY_free(key);
    return rc;
}

int ca_needs_renewal(struct ca *ca, const char *domain, int renew_before_days)
{
    char dir[PATH_MAX], key_path[PATH_MAX], crt_path[PATH_MAX];
    X509 *crt = NULL;
    int rc;

    if (!ca || renew_before_days < 0)
        return -EINVAL;
    rc = leaf_paths(ca, domain, dir, key_path, crt_path);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&ca->lock);
    rc = pem_load_cert(crt_path, &crt, NULL, 0);
    if (rc < 0)
        rc = rc == -ENOMEM ? -ENOMEM : 1;
    else if (X509_check_host(crt, domain, 0, 0, NULL) != 1)
        rc = 1;
    else
        rc = cai_leaf_due(ca, crt, key_path, false, renew_before_days);
    ERR_clear_error();
    pthread_mutex_unlock(&ca->lock);
    X509_free(crt);
    return rc;
}
