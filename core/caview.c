/* caview.c: the JSON and PEM views of the internal CA: the CA's own certificate (ca_info_json,
 * ca_cert_pem) and the serving leaves (ca_bundle_json, ca_bundle_pem). The public functions are
 * declared in core/ca.h; they only read. */
#include "core/ca.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "core/ca_int.h"
#include "core/capolicy.h"
#include "core/pemstore.h"
#include "core/x509b.h"

/* Set key to a new value in obj; v NULL or a failed set is -ENOMEM (v is always consumed). */
static int jset(json_t *obj, const char *key, json_t *v)
{
    return (v && json_object_set_new(obj, key, v) == 0) ? 0 : -ENOMEM;
}

/* The fields common to the CA and leaf objects: serial, validity, fingerprint. 0 or -errno. */
static int cert_fields(const X509 *crt, json_t *obj)
{
    char serial[CA_SERIAL_HEX_MAX], from[32], until[32], fp[65];
    int rc;

    if ((rc = x509b_serial_hex(crt, serial, sizeof(serial))) < 0 ||
        (rc = x509b_format_time(X509_get0_notBefore(crt), from, sizeof(from))) < 0 ||
        (rc = x509b_format_time(X509_get0_notAfter(crt), until, sizeof(until))) < 0 ||
        (rc = x509b_fingerprint(crt, fp)) < 0)
        return rc;
    if (jset(obj, "serial", json_string(serial)) < 0 ||
        jset(obj, "not_before", json_string(from)) < 0 ||
        jset(obj, "not_after", json_string(until)) < 0 ||
        jset(obj, "sha256_fingerprint", json_string(fp)) < 0)
        return -ENOMEM;
    return 0;
}

int ca_info_json(struct ca *ca, json_t **out)
{
    json_t *obj = json_object();
    BIO *bio = BIO_new(BIO_s_mem());
    char *subject = NULL;
    int rc = -ENOMEM;

    *out = NULL;
    pthread_mutex_lock(&ca->lock);
    if (!obj || !bio)
        goto out;
    /* RFC 2253 with non-ASCII escaped: always valid UTF-8 for jansson. */
    if (X509_NAME_print_ex(bio, X509_get_subject_name(ca->cert), 0, XN_FLAG_RFC2253) < 0 ||
        pem_bio_string(bio, &subject) < 0)
        goto out;
    if (jset(obj, "subject", json_string(subject)) < 0 ||
        jset(obj, "key_type", json_string(ca_key_type_name(ca->type))) < 0)
        goto out;
    rc = cert_fields(ca->cert, obj);
    if (rc < 0)
        goto out;
    *out = obj;
    obj = NULL;
out:
    pthread_mutex_unlock(&ca->lock);
    ERR_clear_error();
    json_decref(obj);
    BIO_free(bio);
    free(subject);
    return rc;
}

/* The leaf JSON of the certificate at crt_path for domain, with "names": its SAN. With the
 * lock held. 0 or -errno. */
static int leaf_json_at(const char *crt_path, const char *domain, json_t **out)
{
    enum ca_key_type type;
    json_t *obj = NULL, *arr;
    X509 *crt = NULL;
    char **san = NULL;
    size_t nsan = 0;
    int64_t left;
    int rc;

    *out = NULL;
    rc = pem_load_cert(crt_path, &crt, NULL, 0);
    if (rc < 0)
        goto out;
    rc = x509b_secs_until(X509_get0_notAfter(crt), &left);
    if (rc < 0)
        goto out;
    rc = -ENOMEM;
    obj = json_object();
    if (!obj || jset(obj, "domain", json_string(domain)) < 0)
        goto out;
    rc = cert_fields(crt, obj);
    if (rc < 0)
        goto out;
    /* Whole days, rounded down (so -1 as soon as it expired). */
    left = left >= 0 ? left / X509B_DAY_SECS : -((-left + X509B_DAY_SECS - 1) / X509B_DAY_SECS);
    rc = -ENOMEM;
    if (jset(obj, "days_left", json_integer(left)) < 0 ||
        jset(obj, "key_type", json_string(ca_policy_key_type(X509_get0_pubkey(crt), &type) == 0 ?
                                          ca_key_type_name(type) : "unknown")) < 0)
        goto out;
    rc = cai_san_names(crt, &san, &nsan);
    if (rc < 0)
        goto out;
    rc = -ENOMEM;
    arr = json_array();
    for (size_t i = 0; arr && i < nsan; i++)
        if (json_array_append_new(arr, json_string(san[i])) < 0) {
            json_decref(arr);
            arr = NULL;
        }
    if (jset(obj, "names", arr) < 0)
        goto out;
    rc = 0;
    *out = obj;
    obj = NULL;
out:
    ERR_clear_error();
    ca_names_free(san, nsan);
    json_decref(obj);
    X509_free(crt);
    return rc;
}

/* The certificate at crt_path (only the first one there) as PEM. With the lock held. */
static int leaf_pem_at(const char *crt_path, char **pem)
{
    X509 *crt = NULL;
    int rc = pem_load_cert(crt_path, &crt, NULL, 0);

    if (rc == 0)
        rc = pem_encode_cert(crt, pem);
    X509_free(crt);
    return rc;
}

int ca_bundle_json(struct ca *ca, const char *path, const char *domain, json_t **out)
{
    char dir[PATH_MAX];
    int rc;

    *out = NULL;
    if (!ca || cai_bundle_path_ok(path, dir) < 0 || !ca_policy_domain_ok(domain))
        return -EINVAL;
    pthread_mutex_lock(&ca->lock);
    rc = leaf_json_at(path, domain, out);
    pthread_mutex_unlock(&ca->lock);
    return rc;
}

int ca_cert_pem(struct ca *ca, char **pem)
{
    int rc;

    pthread_mutex_lock(&ca->lock);
    rc = pem_encode_cert(ca->cert, pem);
    pthread_mutex_unlock(&ca->lock);
    return rc;
}

int ca_bundle_pem(struct ca *ca, const char *path, char **pem)
{
    int rc;

    *pem = NULL;
    rc = cai_lock_bundle(ca, path);
    if (rc < 0)
        return rc;
    rc = leaf_pem_at(path, pem);
    pthread_mutex_unlock(&ca->lock);
    return rc;
}
