/* test_ca.c: the internal CA in temporary state directories: root generation and reloading for
 * both key types, leaf extensions parsed back with OpenSSL and verified as a chain, refusal of
 * broken CAs without touching their files, archive, renewal, modes, JSON, threads, (when the
 * tool is installed) `openssl verify` on the issued files; and the CA service over a real
 * registry: issuance, archive, rotation and the renewal thread. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "audit/audit.h"
#include "core/ca.h"
#include "core/casvc.h"
#include "core/pipeline.h"
#include "core/registry.h"
#include "core/statefile.h"
#include "testlib.h"

static char g_root[PATH_MAX];

/* state/tls/rel into buf. */
static void tls_path(char *buf, size_t len, const char *state, const char *rel)
{
    tl_pathf(buf, len, "%s/tls/%s", state, rel);
}

/* Append s to the path in buf. */
static void append(char *buf, size_t len, const char *s)
{
    size_t used = strlen(buf);

    tl_pathf(buf + used, len - used, "%s", s);
}

/* Permission bits of path, or -1 when missing. */
static int mode_of(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
}

/* Whole file or NULL. */
static char *slurp(const char *path)
{
    char *data = NULL;
    size_t len;

    return state_read_file(path, &data, &len) == 0 ? data : NULL;
}

/* True when path holds exactly want (NULL: path is missing). */
static bool same_file(const char *path, const char *want)
{
    char *got = slurp(path);
    bool same = want ? got && strcmp(got, want) == 0 : got == NULL && mode_of(path) == -1;

    free(got);
    return same;
}

/* Certificate from a PEM file, or NULL. */
static X509 *load_x509(const char *path)
{
    BIO *b = BIO_new_file(path, "r");
    X509 *crt = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

    BIO_free(b);
    return crt;
}

/* Private key from a PEM file, or NULL. */
static EVP_PKEY *load_pkey(const char *path)
{
    BIO *b = BIO_new_file(path, "r");
    EVP_PKEY *key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;

    BIO_free(b);
    return key;
}

/* Write a fresh key (P-256 with ec, else Ed25519) to path, mode 0600. */
static void write_foreign_key(const char *path, bool ec)
{
    EVP_PKEY *key = ec ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")
                       : EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    FILE *f;

    unlink(path);
    f = fopen(path, "w");
    CHECK(key && f && PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1);
    if (f)
        fclose(f);
    chmod(path, 0600);
    EVP_PKEY_free(key);
}

/* True when the openssl command is on PATH. */
static bool have_openssl(void)
{
    return system("command -v openssl >/dev/null 2>&1") == 0;
}

/* Days from a to b (b later). */
static int days_between(const ASN1_TIME *a, const ASN1_TIME *b)
{
    int day = 0, sec = 0;

    CHECK(ASN1_TIME_diff(&day, &sec, a, b) == 1);
    return day;
}

/* The fingerprint of crt as ca.c documents it: lowercase hex SHA-256 of the DER, no colons. */
static void expect_fp(const X509 *crt, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    CHECK(X509_digest(crt, EVP_sha256(), md, &n) == 1 && n == 32);
    for (unsigned int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* YYYY-MM-DDTHH:MM:SSZ */
static bool iso_time(const char *s)
{
    return s && strlen(s) == 20 && s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' &&
           s[16] == ':' && s[19] == 'Z';
}

/* String member of obj, "(missing)" when absent or not a string. */
static const char *jstr(json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj, key));

    return v ? v : "(missing)";
}

/* True when crt has the extension nid, marked critical. */
static bool is_critical(const X509 *crt, int nid)
{
    int i = X509_get_ext_by_NID(crt, nid, -1);

    return i >= 0 && X509_EXTENSION_get_critical(X509_get_ext(crt, i)) == 1;
}

/* Check the serial: positive, non-zero, at least 16 bytes. */
static void check_serial(const X509 *crt)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(crt), NULL);

    CHECK(bn != NULL);
    if (!bn)
        return;
    CHECK(BN_num_bytes(bn) >= 16);
    CHECK(!BN_is_negative(bn));
    CHECK(!BN_is_zero(bn));
    BN_free(bn);
}

/* True when the serial of crt, in lowercase hex, is serial (as ca_issue writes it). */
static bool serial_is(const X509 *crt, const char *serial)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(crt), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    bool ok = hex && strlen(hex) == strlen(serial);

    for (size_t i = 0; ok && hex[i]; i++)
        ok = (hex[i] >= 'A' && hex[i] <= 'F' ? hex[i] - 'A' + 'a' : hex[i]) == serial[i];
    OPENSSL_free(hex);
    BN_free(bn);
    return ok;
}

/* The key type of a certificate's public key, as ca.c names it. */
static const char *pub_type(const X509 *crt)
{
    EVP_PKEY *pub = X509_get0_pubkey(crt);
    char group[64];

    if (pub && EVP_PKEY_is_a(pub, "ED25519"))
        return "ed25519";
    if (pub && EVP_PKEY_is_a(pub, "EC") &&
        EVP_PKEY_get_utf8_string_param(pub, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       NULL) == 1 && !strcmp(group, "prime256v1"))
        return "ecdsa-p256";
    return "other";
}

/* Check the root certificate of state: extensions, name, validity, self-signature, modes. */
static void check_root(const char *state, const char *cn, const char *type)
{
    char path[PATH_MAX], got_cn[128];
    const ASN1_OCTET_STRING *ski, *aki;
    X509 *crt;

    tls_path(path, sizeof(path), state, "");
    CHECK_INT(mode_of(path), 0700);
    tls_path(path, sizeof(path), state, "ca.key");
    CHECK_INT(mode_of(path), 0600);
    tls_path(path, sizeof(path), state, "ca.crt");
    CHECK_INT(mode_of(path), 0600);
    crt = load_x509(path);
    CHECK(crt != NULL);
    if (!crt)
        return;
    CHECK_INT(X509_get_version(crt), X509_VERSION_3);
    CHECK(X509_check_ca(crt) == 1);
    CHECK(is_critical(crt, NID_basic_constraints));
    CHECK(X509_get_extension_flags(crt) & EXFLAG_CA);
    CHECK_INT(X509_get_key_usage(crt), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    CHECK(is_critical(crt, NID_key_usage));
    ski = X509_get0_subject_key_id(crt);
    aki = X509_get0_authority_key_id(crt);
    CHECK(ski && aki && ASN1_OCTET_STRING_cmp(ski, aki) == 0);
    CHECK(X509_NAME_get_text_by_NID(X509_get_subject_name(crt), NID_commonName, got_cn,
                                    sizeof(got_cn)) > 0);
    CHECK_STR(got_cn, cn);
    CHECK(X509_NAME_cmp(X509_get_subject_name(crt), X509_get_issuer_name(crt)) == 0);
    CHECK(X509_verify(crt, X509_get0_pubkey(crt)) == 1);
    CHECK(X509_cmp_current_time(X509_get0_notBefore(crt)) < 0);
    {
        int days = days_between(X509_get0_notBefore(crt), X509_get0_notAfter(crt));
        CHECKF(days >= 3652 && days <= 3654, "root lifetime %d days", days);
    }
    CHECK_STR(pub_type(crt), type);
    CHECK_INT(X509_get_signature_nid(crt),
              strcmp(type, "ed25519") ? NID_ecdsa_with_SHA256 : NID_ED25519);
    check_serial(crt);
    X509_free(crt);
}

/* ca_info_json of ca against the file state/tls/ca.crt. Returns the fingerprint in fp. */
static void check_info(struct ca *ca, const char *state, const char *type, char fp[65])
{
    char path[PATH_MAX], want_fp[65] = "";
    json_t *info = NULL;
    X509 *crt;

    tls_path(path, sizeof(path), state, "ca.crt");
    crt = load_x509(path);
    CHECK(crt != NULL);
    if (crt)
        expect_fp(crt, want_fp);
    CHECK_INT(ca_info_json(ca, &info), 0);
    CHECK(info != NULL);
    if (info) {
        CHECK_STR(jstr(info, "key_type"), type);
        CHECK(strncmp(jstr(info, "subject"), "CN=QP Conduit Internal CA (", 27) == 0);
        CHECK(iso_time(jstr(info, "not_before")));
        CHECK(iso_time(jstr(info, "not_after")));
        CHECK(strlen(jstr(info, "serial")) == 32 &&
              strspn(jstr(info, "serial"), "0123456789abcdef") == 32);
        CHECK_STR(jstr(info, "sha256_fingerprint"), want_fp);
        CHECK_INT(json_object_size(info), 6);
    }
    snprintf(fp, 65, "%s", want_fp);
    json_decref(info);
    X509_free(crt);
}

/* Verify leaf against ca with a full X509_STORE chain check for an SSL server named domain. */
static int chain_ok(X509 *ca_crt, X509 *leaf, const char *domain)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509_VERIFY_PARAM *param;
    int ok = 0;

    if (!store || !ctx || X509_STORE_add_cert(store, ca_crt) != 1 ||
        X509_STORE_CTX_init(ctx, store, leaf, NULL) != 1)
        goto out;
    param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set1_host(param, domain, 0);
    X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER);
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT);
    ok = X509_verify_cert(ctx);
    if (ok != 1)
        fprintf(stderr, "chain: %s\n",
                X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
out:
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return ok;
}

/* Check the leaf of domain issued under state: extensions, key, serial, validity, chain,
 * files. */
static void check_leaf(const char *state, const char *domain, const char *type,
                       const char *serial, int days)
{
    char path[PATH_MAX], ca_path[PATH_MAX], key_path[PATH_MAX], cmd[3 * PATH_MAX];
    X509 *crt = NULL, *ca_crt = NULL;
    EVP_PKEY *key = NULL;
    GENERAL_NAMES *san = NULL;
    BASIC_CONSTRAINTS *bc = NULL;
    int left;

    tls_path(path, sizeof(path), state, domain);
    CHECK_INT(mode_of(path), 0700);
    tls_path(key_path, sizeof(key_path), state, domain);
    append(key_path, sizeof(key_path), "/key.pem");
    CHECK_INT(mode_of(key_path), 0600);
    append(path, sizeof(path), "/cert.pem");
    CHECK_INT(mode_of(path), 0600);
    tls_path(ca_path, sizeof(ca_path), state, "ca.crt");
    crt = load_x509(path);
    ca_crt = load_x509(ca_path);
    key = load_pkey(key_path);
    CHECK(crt && ca_crt && key);
    if (!crt || !ca_crt || !key)
        goto out;

    san = X509_get_ext_d2i(crt, NID_subject_alt_name, NULL, NULL);
    CHECK(san && sk_GENERAL_NAME_num(san) == 1);
    if (san && sk_GENERAL_NAME_num(san) == 1) {
        GENERAL_NAME *gn = sk_GENERAL_NAME_value(san, 0);
        CHECK_INT(gn->type, GEN_DNS);
        if (gn->type == GEN_DNS)
            CHECK_STR((const char *)ASN1_STRING_get0_data(gn->d.dNSName), domain);
    }
    CHECK_INT(X509_get_extended_key_usage(crt), XKU_SSL_SERVER);
    bc = X509_get_ext_d2i(crt, NID_basic_constraints, NULL, NULL);
    CHECK(bc && !bc->ca);
    CHECK(!(X509_get_extension_flags(crt) & EXFLAG_CA));
    CHECK_INT(X509_check_ca(crt), 0);
    CHECK_INT(X509_get_key_usage(crt), KU_DIGITAL_SIGNATURE);
    CHECK(is_critical(crt, NID_key_usage));
    check_serial(crt);
    CHECK(serial_is(crt, serial));
    CHECK(X509_NAME_cmp(X509_get_issuer_name(crt), X509_get_subject_name(ca_crt)) == 0);
    CHECK(X509_get0_subject_key_id(crt) != NULL);
    CHECK(X509_get0_authority_key_id(crt) && X509_get0_subject_key_id(ca_crt) &&
          ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(crt),
                                X509_get0_subject_key_id(ca_crt)) == 0);
    CHECK_STR(pub_type(crt), type);
    CHECK(EVP_PKEY_eq(X509_get0_pubkey(crt), key) == 1);
    CHECK(EVP_PKEY_eq(X509_get0_pubkey(crt), X509_get0_pubkey(ca_crt)) != 1);
    CHECK(X509_cmp_current_time(X509_get0_notBefore(crt)) < 0);
    left = days_between(NULL, X509_get0_notAfter(crt));
    CHECKF(left == days - 1 || left == days, "%d days left, issued for %d", left, days);
    CHECK(X509_verify(crt, X509_get0_pubkey(ca_crt)) == 1);
    CHECK_INT(chain_ok(ca_crt, crt, domain), 1);
    CHECK(X509_check_host(crt, domain, 0, 0, NULL) == 1);

    if (have_openssl()) {
        snprintf(cmd, sizeof(cmd), "openssl verify -x509_strict -purpose sslserver "
                 "-verify_hostname '%s' -CAfile '%s' '%s' >/dev/null", domain, ca_path, path);
        CHECKF(system(cmd) == 0, "%s", cmd);
    }
out:
    GENERAL_NAMES_free(san);
    BASIC_CONSTRAINTS_free(bc);
    EVP_PKEY_free(key);
    X509_free(crt);
    X509_free(ca_crt);
}

/* Generate a root of type, reopen it unchanged, check a leaf and the PEM accessors. */
static void test_root(enum ca_key_type type)
{
    const char *name = ca_key_type_name(type);
    char state[PATH_MAX], path[PATH_MAX], fp1[65], fp2[65], err[256], serial[CA_SERIAL_HEX_MAX];
    char *key_before = NULL, *crt_before = NULL, *pem = NULL;
    enum ca_key_type other = type == CA_KEY_ED25519 ? CA_KEY_ECDSA_P256 : CA_KEY_ED25519;
    struct ca *ca = NULL;
    bool created = false;

    tl_new_state(state, sizeof(state), g_root);
    CHECK_INT(ca_open(state, type, "testhost", &ca, &created, err, sizeof(err)), 0);
    CHECK(created);
    CHECK_STR(err, "");
    if (!ca)
        return;
    CHECK_INT(ca_key_type_get(ca), type);
    check_root(state, "QP Conduit Internal CA (testhost)", name);
    check_info(ca, state, name, fp1);
    CHECK_INT(ca_cert_pem(ca, &pem), 0);
    tls_path(path, sizeof(path), state, "ca.crt");
    crt_before = slurp(path);
    CHECK(pem && crt_before && strcmp(pem, crt_before) == 0 && !strstr(pem, "PRIVATE KEY"));
    free(pem);

    CHECK_INT(ca_issue(ca, "app.qp.test", 0, serial, err, sizeof(err)), 0);
    CHECK_STR(err, "");
    CHECK_INT(strlen(serial), 32);
    check_leaf(state, "app.qp.test", name, serial, CA_LEAF_DAYS_DEFAULT);
    ca_close(ca);
    ca = NULL;

    /* Reopen: nothing regenerated, same fingerprint. */
    tls_path(path, sizeof(path), state, "ca.key");
    key_before = slurp(path);
    CHECK_INT(ca_open(state, type, NULL, &ca, &created, err, sizeof(err)), 0);
    CHECK(!created);
    if (ca) {
        check_info(ca, state, name, fp2);
        CHECK_STR(fp2, fp1);
        CHECK_INT(ca_needs_renewal(ca, "app.qp.test", 30), 0);
        ca_close(ca);
        ca = NULL;
    }
    /* Asking for the other type keeps the existing CA and says so. */
    CHECK_INT(ca_open(state, other, NULL, &ca, &created, err, sizeof(err)), 0);
    CHECK(!created);
    CHECKF(strstr(err, "keeping the existing") && strstr(err, name), "notice \"%s\"", err);
    if (ca) {
        CHECK_INT(ca_key_type_get(ca), type);
        check_info(ca, state, name, fp2);
        CHECK_STR(fp2, fp1);
        CHECK_INT(ca_issue(ca, "other.qp.test", 10, serial, err, sizeof(err)), 0);
        check_leaf(state, "other.qp.test", name, serial, 10);
        ca_close(ca);
    }
    CHECK(same_file(path, key_before));
    tls_path(path, sizeof(path), state, "ca.crt");
    CHECK(same_file(path, crt_before));
    free(key_before);
    free(crt_before);
}

/* Broken CAs are refused with a clear reason and their files are left as they are. */
static void test_refusals(void)
{
    char state[PATH_MAX], key_path[PATH_MAX], crt_path[PATH_MAX], err[512];
    char *key = NULL, *crt = NULL, *foreign = NULL;
    struct ca *ca = NULL;
    bool created = true;

    tl_new_state(state, sizeof(state), g_root);
    CHECK_INT(ca_open(state, CA_KEY_ED25519, "h", &ca, NULL, err, sizeof(err)), 0);
    ca_close(ca);
    ca = NULL;
    tls_path(key_path, sizeof(key_path), state, "ca.key");
    tls_path(crt_path, sizeof(crt_path), state, "ca.crt");
    key = slurp(key_path);
    crt = slurp(crt_path);
    CHECK(key && crt);

    /* Another key (same type, then the other type) in place of ca.key. */
    for (int ec = 0; ec < 2; ec++) {
        write_foreign_key(key_path, ec);
        foreign = slurp(key_path);
        CHECK_INT(ca_open(state, CA_KEY_ED25519, "h", &ca, &created, err, sizeof(err)),
                  -EINVAL);
        CHECK(ca == NULL && !created);
        CHECKF(strstr(err, "does not match"), "err \"%s\"", err);
        CHECK(same_file(key_path, foreign));
        CHECK(same_file(crt_path, crt));
        free(foreign);
        foreign = NULL;
    }
    CHECK_INT(state_write_atomic(key_path, key, strlen(key), 0600), 0);
    CHECK_INT(ca_open(state, CA_KEY_ED25519, "h", &ca, NULL, err, sizeof(err)), 0);
    ca_close(ca);
    ca = NULL;

    /* A group-readable key is refused. */
    chmod(key_path, 0640);
    CHECK_INT(ca_open(state, CA_KEY_ED25519, "h", &ca, NULL, err, sizeof(err)), -EPERM);
    CHECKF(strstr(err, "group or others"), "err \"%s\"", err);
    CHECK_INT(mode_of(key_path), 0640);
    chmod(key_path, 0600);

    /* Key without certificate, then certificate without key: never regenerated over. */
    CHECK_INT(unlink(crt_path), 0);
    CHECK_INT(ca_open(state, CA_KEY_ED25519, "h", &ca, &created, err, sizeof(err)), -EINVAL);
    CHECKF(strstr(err, "exists without"), "err \"%s\"", err);
    CHECK(ca == NULL && !created);
    CHECK(same_file(key_path, key));
    CHECK(same_file(crt_path, NULL));
    CHECK_INT(unlink(key_path), 0);
    CHECK_INT(state_write_atomic(crt_path, crt, strlen(crt), 0644), 0);
    CHECK_INT(ca_open(state, CA_KEY_ED25519, "h", &ca, &created, err, sizeof(err)), -EINVAL);
    CHECKF(strstr(err, "exists without"), "err \"%s\"", err);
    CHECK(same_file(key_path, NULL));
    CHECK(same_file(crt_path, crt));

    /* A garbage certificate next to the key. */
    CHECK_INT(state_write_atomic(key_path, key, strlen(key), 0600), 0);
    CHECK_INT(state_write_atomic(crt_path, "junk\n", 5, 0644), 0);
    CHECK_INT(ca_open(state, CA_KEY_ED25519, "h", &ca, &created, err, sizeof(err)), -EINVAL);
    CHECK(same_file(crt_path, "junk\n"));
    CHECK(same_file(key_path, key));

    /* Bad arguments and a missing state directory. */
    CHECK_INT(ca_open(NULL, CA_KEY_ED25519, "h", &ca, NULL, err, sizeof(err)), -EINVAL);
    CHECK_INT(ca_open(state, (enum ca_key_type)7, "h", &ca, NULL, err, sizeof(err)), -EINVAL);
    CHECK(snprintf(state, sizeof(state), "%s/missing/state", g_root) < (int)sizeof(state));
    CHECK_INT(ca_open(state, CA_KEY_ED25519, "h", &ca, NULL, NULL, 0), -ENOENT);
    free(key);
    free(crt);
}

/* Renewal decisions, including renew_before_days beyond the leaf lifetime. */
static void test_renewal(void)
{
    char state[PATH_MAX], state2[PATH_MAX], path[PATH_MAX], other[PATH_MAX], err[256];
    const char *d = "svc.qp.test";
    char *data;
    struct ca *ca = NULL, *ca2 = NULL;

    tl_new_state(state, sizeof(state), g_root);
    CHECK_INT(ca_open(state, CA_KEY_ED25519, "h", &ca, NULL, err, sizeof(err)), 0);
    if (!ca)
        return;
    CHECK_INT(ca_needs_renewal(ca, d, 30), 1);            /* missing */
    CHECK_INT(ca_issue(ca, d, 30, NULL, err, sizeof(err)), 0);
    CHECK_INT(ca_needs_renewal(ca, d, 120), 1);           /* renew window > lifetime */
    CHECK_INT(ca_needs_renewal(ca, d, INT_MAX), 1);
    CHECK_INT(ca_needs_renewal(ca, d, 31), 1);
    CHECK_INT(ca_needs_renewal(ca, d, 29), 0);
    CHECK_INT(ca_needs_renewal(ca, d, 7), 0);
    CHECK_INT(ca_needs_renewal(ca, d, 0), 0);
    CHECK_INT(ca_needs_renewal(ca, d, -1), -EINVAL);
    CHECK_INT(ca_needs_renewal(ca, "../etc", 7), -EINVAL);

    /* Reissuing resolves the "always" case only until the next check. */
    CHECK_INT(ca_issue(ca, d, 30, NULL, err, sizeof(err)), 0);
    CHECK_INT(ca_needs_renewal(ca, d, 120), 1);
    CHECK_INT(ca_issue(ca, d, 365, NULL, err, sizeof(err)), 0);
    CHECK_INT(ca_needs_renewal(ca, d, 120), 0);

    /* Key that does not match the certificate. */
    tls_path(path, sizeof(path), state, d);
    append(path, sizeof(path), "/key.pem");
    data = slurp(path);
    write_foreign_key(path, false);
    CHECK_INT(ca_needs_renewal(ca, d, 7), 1);
    unlink(path);
    CHECK_INT(ca_needs_renewal(ca, d, 7), 1);
    CHECK_INT(state_write_atomic(path, data, strlen(data), 0600), 0);
    CHECK_INT(ca_needs_renewal(ca, d, 7), 0);
    free(data);

    /* Certificate of another CA (with its matching key), then a garbage certificate. */
    tl_new_state(state2, sizeof(state2), g_root);
    CHECK_INT(ca_open(state2, CA_KEY_ED25519, "h", &ca2, NULL, err, sizeof(err)), 0);
    CHECK_INT(ca_issue(ca2, d, 365, NULL, err, sizeof(err)), 0);
    tls_path(path, sizeof(path), state, d);
    tls_path(other, sizeof(other), state2, d);
    CHECK_INT(ca_archive(ca, d), 0);
    CHECK_INT(rename(other, path), 0);
    CHECK_INT(ca_needs_renewal(ca, d, 7), 1);
    CHECK_INT(ca_needs_renewal(ca2, d, 7), 1);            /* moved away from ca2 */
    ca_close(ca2);
    append(path, sizeof(path), "/cert.pem");
    CHECK_INT(state_write_atomic(path, "junk", 4, 0644), 0);
    CHECK_INT(ca_needs_renewal(ca, d, 7), 1);

    /* A leaf for another name in the directory of d. */
    CHECK_INT(ca_issue(ca, "x.qp.test", 365, NULL, err, sizeof(err)), 0);
    tls_path(other, sizeof(other), state, "x.qp.test");
    tls_path(path, sizeof(path), state, d);
    CHECK_INT(ca_archive(ca, d), 0);
    CHECK_INT(rename(other, path), 0);
    CHECK_INT(ca_needs_renewal(ca, d, 7), 1);
    ca_close(ca);
}

/* Reissue and deregistration move the old pair to archive/<domain>.<serial>/. */
static void test_archive(void)
{
    char state[PATH_MAX], path[PATH_MAX], err[256], s1[CA_SERIAL_HEX_MAX], s2[CA_SERIAL_HEX_MAX];
    char s3[CA_SERIAL_HEX_MAX], rel[PATH_MAX], serial_in[CA_SERIAL_HEX_MAX + 8], longd[256];
    const char *d = "web.qp.test";
    struct ca *ca = NULL;
    X509 *crt;

    tl_new_state(state, sizeof(state), g_root);
    CHECK_INT(ca_open(state, CA_KEY_ECDSA_P256, "h", &ca, NULL, err, sizeof(err)), 0);
    if (!ca)
        return;
    CHECK_INT(ca_archive(ca, d), -ENOENT);
    CHECK_INT(ca_issue(ca, d, 0, s1, err, sizeof(err)), 0);
    CHECK_INT(ca_issue(ca, d, 0, s2, err, sizeof(err)), 0);
    CHECK(strcmp(s1, s2) != 0);
    tls_path(path, sizeof(path), state, "archive");
    CHECK_INT(mode_of(path), 0700);
    snprintf(rel, sizeof(rel), "archive/%s.%s/cert.pem", d, s1);
    tls_path(path, sizeof(path), state, rel);
    crt = load_x509(path);
    CHECK(crt != NULL);
    if (crt) {
        BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(crt), NULL);
        char *hex = bn ? BN_bn2hex(bn) : NULL;

        for (size_t i = 0; hex && hex[i]; i++)
            serial_in[i] = (char)(hex[i] >= 'A' && hex[i] <= 'F' ? hex[i] - 'A' + 'a' : hex[i]);
        if (hex)
            serial_in[strlen(hex)] = '\0';
        CHECK(hex && strcmp(serial_in, s1) == 0);
        OPENSSL_free(hex);
        BN_free(bn);
        X509_free(crt);
    }
    snprintf(rel, sizeof(rel), "archive/%s.%s/key.pem", d, s1);
    tls_path(path, sizeof(path), state, rel);
    CHECK_INT(mode_of(path), 0600);
    snprintf(rel, sizeof(rel), "archive/%s.%s", d, s1);
    tls_path(path, sizeof(path), state, rel);
    CHECK_INT(mode_of(path), 0700);
    check_leaf(state, d, "ecdsa-p256", s2, CA_LEAF_DAYS_DEFAULT);

    /* Deregistration. */
    CHECK_INT(ca_archive(ca, d), 0);
    snprintf(rel, sizeof(rel), "archive/%s.%s/cert.pem", d, s2);
    tls_path(path, sizeof(path), state, rel);
    CHECK(mode_of(path) == 0600);
    tls_path(path, sizeof(path), state, d);
    CHECK_INT(mode_of(path), -1);
    CHECK_INT(ca_archive(ca, d), -ENOENT);
    CHECK_INT(ca_needs_renewal(ca, d, 7), 1);

    /* A name clash in the archive gets a suffix; an unreadable certificate gives "unknown". */
    CHECK_INT(ca_issue(ca, d, 0, s3, err, sizeof(err)), 0);
    snprintf(rel, sizeof(rel), "archive/%s.%s", d, s3);
    tls_path(path, sizeof(path), state, rel);
    CHECK_INT(mkdir(path, 0700), 0);
    CHECK_INT(ca_archive(ca, d), 0);
    append(path, sizeof(path), "-2/cert.pem");
    CHECK_INT(mode_of(path), 0600);
    CHECK_INT(ca_issue(ca, d, 0, s3, err, sizeof(err)), 0);
    tls_path(path, sizeof(path), state, d);
    append(path, sizeof(path), "/cert.pem");
    CHECK_INT(unlink(path), 0);
    CHECK_INT(ca_archive(ca, d), 0);
    snprintf(rel, sizeof(rel), "archive/%s.unknown/key.pem", d);
    tls_path(path, sizeof(path), state, rel);
    CHECK_INT(mode_of(path), 0600);

    /* A 248-char domain: no CN, critical SAN, still verifies; its archive name is cut to fit. */
    snprintf(longd, sizeof(longd), "%.60s.%.60s.%.60s.%.60s.test",
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
             "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
             "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
             "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd");
    CHECK_INT(ca_issue(ca, longd, 0, s1, err, sizeof(err)), 0);
    CHECKF(err[0] == '\0', "%s", err);
    check_leaf(state, longd, "ecdsa-p256", s1, CA_LEAF_DAYS_DEFAULT);
    tls_path(path, sizeof(path), state, longd);
    append(path, sizeof(path), "/cert.pem");
    crt = load_x509(path);
    CHECK(crt && X509_NAME_entry_count(X509_get_subject_name(crt)) == 0);
    CHECK(crt && is_critical(crt, NID_subject_alt_name));
    X509_free(crt);
    CHECK_INT(ca_archive(ca, longd), 0);
    CHECK_INT(ca_issue(ca, longd, 0, s1, err, sizeof(err)), 0);
    CHECK_INT(ca_issue(ca, longd, 0, s2, err, sizeof(err)), 0);
    ca_close(ca);
}

/* Argument checks and names. */
static void test_args(void)
{
    static const char *const bad[] = {
        "", ".", "..", "../x", "a/b", "/abs", "Upper.qp.test", "-a.qp.test", "a-.qp.test",
        "a..b", ".a.b", "a.b.", "archive", "ca.key", "ca.crt", "a_b.test", "a b.test",
        "x.qp.test\n", "*.qp.test",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.test", /* 64 */
    };
    char state[PATH_MAX], err[256], serial[CA_SERIAL_HEX_MAX];
    enum ca_key_type t;
    struct ca *ca = NULL;

    tl_new_state(state, sizeof(state), g_root);
    CHECK_INT(ca_open(state, CA_KEY_ED25519, "h", &ca, NULL, err, sizeof(err)), 0);
    if (!ca)
        return;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECKF(ca_issue(ca, bad[i], 0, serial, err, sizeof(err)) == -EINVAL, "\"%s\"", bad[i]);
        CHECKF(ca_archive(ca, bad[i]) == -EINVAL, "\"%s\"", bad[i]);
        CHECKF(ca_needs_renewal(ca, bad[i], 1) == -EINVAL, "\"%s\"", bad[i]);
    }
    CHECK_INT(ca_issue(ca, NULL, 0, serial, err, sizeof(err)), -EINVAL);
    CHECK_INT(ca_issue(ca, "ok.test", -1, serial, err, sizeof(err)), -EINVAL);
    CHECK_INT(ca_issue(ca, "ok.test", CA_LEAF_DAYS_MAX + 1, serial, err, sizeof(err)), -EINVAL);
    CHECK(err[0] != '\0');
    CHECK_INT(ca_issue(ca, "ok.test", CA_LEAF_DAYS_MAX, serial, err, sizeof(err)), 0);
    CHECK_INT(ca_issue(ca, "a0-9.b.test", 1, NULL, NULL, 0), 0);
    CHECK_INT(ca_needs_renewal(ca, "a0-9.b.test", 2), 1);
    CHECK_INT(ca_needs_renewal(ca, "a0-9.b.test", 0), 0);
    ca_close(ca);
    ca_close(NULL);

    CHECK_STR(ca_key_type_name(CA_KEY_ED25519), "ed25519");
    CHECK_STR(ca_key_type_name(CA_KEY_ECDSA_P256), "ecdsa-p256");
    CHECK_INT(ca_key_type_parse("ed25519", &t), 0);
    CHECK_INT(t, CA_KEY_ED25519);
    CHECK_INT(ca_key_type_parse("ecdsa-p256", &t), 0);
    CHECK_INT(t, CA_KEY_ECDSA_P256);
    CHECK_INT(ca_key_type_parse("rsa", &t), -EINVAL);
    CHECK_INT(ca_key_type_parse("ED25519", &t), -EINVAL);
    CHECK_INT(ca_key_type_parse(NULL, &t), -EINVAL);
}

/* Hostnames: too long for the CN is cut, control characters replaced; a loose tls/ tightened. */
static void test_hostname(void)
{
    char state[PATH_MAX], path[PATH_MAX], host[200], cn[128], err[256];
    struct ca *ca = NULL;
    X509 *crt;

    memset(host, 'h', sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    host[2] = '\n';
    tl_new_state(state, sizeof(state), g_root);
    tls_path(path, sizeof(path), state, "");
    CHECK_INT(mkdir(path, 0755), 0);
    chmod(path, 0755);
    CHECK_INT(ca_open(state, CA_KEY_ED25519, host, &ca, NULL, err, sizeof(err)), 0);
    CHECK_INT(mode_of(path), 0700);
    ca_close(ca);
    tls_path(path, sizeof(path), state, "ca.crt");
    crt = load_x509(path);
    CHECK(crt && X509_NAME_get_text_by_NID(X509_get_subject_name(crt), NID_commonName, cn,
                                           sizeof(cn)) == 64);
    CHECK(strncmp(cn, "QP Conduit Internal CA (hh?hhh", 30) == 0 && cn[63] == ')');
    X509_free(crt);
}

/* One thread of test_threads. */
struct worker {
    struct ca *ca;
    int id;
    int failures;
};

/* Issue and check a few domains of one's own, and renew a shared one. */
static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char d[64], serial[CA_SERIAL_HEX_MAX];
    char *pem;

    for (int i = 0; i < 4; i++) {
        snprintf(d, sizeof(d), "w%d-%d.qp.test", w->id, i);
        w->failures += ca_issue(w->ca, d, 30, serial, NULL, 0) != 0;
        w->failures += ca_needs_renewal(w->ca, d, 7) != 0;
        w->failures += ca_issue(w->ca, "shared.qp.test", 30, serial, NULL, 0) != 0;
        pem = NULL;
        w->failures += ca_cert_pem(w->ca, &pem) != 0;
        free(pem);
        w->failures += ca_needs_renewal(w->ca, "shared.qp.test", 7) != 0;
    }
    return NULL;
}

/* Four threads share one CA: issuance, renewal checks and PEM all succeed. */
static void test_threads(void)
{
    char state[PATH_MAX], err[256];
    struct worker w[4];
    pthread_t th[4];
    struct ca *ca = NULL;

    tl_new_state(state, sizeof(state), g_root);
    CHECK_INT(ca_open(state, CA_KEY_ECDSA_P256, "h", &ca, NULL, err, sizeof(err)), 0);
    if (!ca)
        return;
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){ .ca = ca, .id = i };
        CHECK_INT(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_INT(w[i].failures, 0);
    }
    CHECK_INT(ca_needs_renewal(ca, "shared.qp.test", 7), 0);
    ca_close(ca);
}

/* Lines of state/audit.log with action (and user, unless NULL). */
static int count_action(const char *state, const char *action, const char *user)
{
    char path[PATH_MAX], want_a[64], want_u[96];
    char *log, *line, *save = NULL;
    int n = 0;

    snprintf(path, sizeof(path), "%s/audit.log", state);
    snprintf(want_a, sizeof(want_a), "\"action\":\"%s\"", action);
    snprintf(want_u, sizeof(want_u), "\"user\":\"%s\"", user ? user : "");
    log = slurp(path);
    for (line = log ? strtok_r(log, "\n", &save) : NULL; line;
         line = strtok_r(NULL, "\n", &save))
        n += strstr(line, want_a) && (!user || strstr(line, want_u));
    free(log);
    return n;
}

/* The serial of the live leaf of domain as ca/certs/<domain>.json shows it ("" if none). */
static void service_serial(const char *domain, char *buf, size_t len)
{
    char *text = NULL;
    size_t n = 0;
    json_t *obj;

    buf[0] = '\0';
    if (ca_service_leaf_json(domain, &text, &n) != 0)
        return;
    obj = json_loads(text, 0, NULL);
    snprintf(buf, len, "%s", obj ? jstr(obj, "serial") : "");
    json_decref(obj);
    free(text);
}

/* Seconds on the monotonic clock. */
static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The configuration of the service tests, for state. */
static void unit_cfg(struct cfs_config *cfg, const char *state)
{
    tl_base_cfg(cfg, state, "internal", "127.0.0.1", 5353, "127.0.0.1");
    snprintf(cfg->hostname, sizeof(cfg->hostname), "unit");
    snprintf(cfg->key_type, sizeof(cfg->key_type), "ecdsa-p256");
    cfg->leaf_days = 30;
    cfg->renew_before_days = 120;
}

/* The CA service over a real registry and the commit pipeline: a leaf at registration (in the
 * caller's name), rotation, a domain change, and the renewal thread, with a renewal window
 * longer than the leaf lifetime, renews at start and then waits (no busy loop) until close
 * wakes it at once. What ca/certs shows is the serving leaf's certificate for the domain. */
static void test_service(void)
{
    static struct cfs_config cfg;   /* outlives the registry */
    char state[PATH_MAX], err[512];
    char s1[CA_SERIAL_HEX_MAX], s2[CA_SERIAL_HEX_MAX], s3[CA_SERIAL_HEX_MAX];
    char s4[CA_SERIAL_HEX_MAX];
    char *text = NULL;
    size_t len = 0;
    double t0;
    int renews;

    tl_new_state(state, sizeof(state), g_root);
    unit_cfg(&cfg, state);
    CHECK_INT(audit_open(state, err, sizeof(err)), 0);
    CHECK_INT(ca_service_open(&cfg, err, sizeof(err)), 0);
    CHECK_INT(pipe_open(&cfg, err, sizeof(err)), 0);

    CHECK_INT(reg_register("core", "alice"), 0);
    service_serial("core.internal", s1, sizeof(s1));
    CHECK_INT(count_action(state, "tls_issue", "alice"), 0);  /* pending: no leaf */
    CHECK_INT(reg_set("core", REG_UPSTREAM, "127.0.0.1:9\n", 12, "alice"), 0);
    service_serial("core.internal", s1, sizeof(s1));
    CHECK_INT(strlen(s1), 32);
    CHECK(count_action(state, "tls_issue", "alice") >= 1);
    CHECK_INT(ca_service_leaf_pem("core.internal", &text, &len), 0);
    CHECK(text && len == strlen(text) && !strstr(text, "PRIVATE"));
    free(text);

    /* Rotation: new serial, a line in the caller's name. */
    CHECK_INT(ca_service_rotate("core.internal", "bob"), 0);
    service_serial("core.internal", s2, sizeof(s2));
    CHECK(s2[0] && strcmp(s1, s2) != 0);
    CHECK(count_action(state, "cert_rotate", "bob") >= 1);
    CHECK_INT(ca_service_rotate("nothing.internal", "bob"), -ENOENT);
    CHECK_INT(ca_service_rotate("../ca.key", "bob"), -ENOENT);

    /* Domain change: the old domain shows nothing, the new one its certificate. */
    CHECK_INT(reg_set("core", REG_DOMAIN, "api.internal\n", 13, "carol"), 0);
    CHECK_INT(ca_service_leaf_pem("core.internal", &text, &len), -ENOENT);
    service_serial("api.internal", s3, sizeof(s3));
    CHECK_INT(strlen(s3), 32);
    CHECK(count_action(state, "tls_issue", "carol") >= 1);

    /* Renewal: 30-day leaves renewed 120 days before they expire: at start, then idle. */
    CHECK_INT(ca_service_start(), 0);
    for (t0 = now_s(); now_s() - t0 < 10 && count_action(state, "tls_renew", NULL) == 0;)
        usleep(20000);
    usleep(1000000);
    renews = count_action(state, "tls_renew", "system");
    CHECK(renews >= 1);
    service_serial("api.internal", s4, sizeof(s4));
    CHECK(s4[0] && strcmp(s3, s4) != 0);
    usleep(500000);
    CHECK_INT(count_action(state, "tls_renew", "system"), renews);
    t0 = now_s();
    ca_service_close();
    CHECKF(now_s() - t0 < 1.0, "close took %.2f s", now_s() - t0);

    /* Deregistration after close: the CA is gone, the registry goes on without it. */
    CHECK_INT(reg_deregister("core", "dave"), 0);
    CHECK_INT(ca_service_leaf_pem("api.internal", &text, &len), -ENOENT);
    pipe_close();
    audit_close();
}

/* n services s<first>..: active (with an upstream) or pending. */
static void fill_services(struct reg_service *svcs, size_t n, int first, bool active)
{
    for (size_t i = 0; i < n; i++) {
        struct reg_service *s = &svcs[i];

        memset(s, 0, sizeof(*s));
        snprintf(s->name, sizeof(s->name), "s%d", first + (int)i);
        snprintf(s->domain, sizeof(s->domain), "s%d.internal", first + (int)i);
        snprintf(s->upstream, sizeof(s->upstream), "%s", active ? "127.0.0.1:9" : "");
        snprintf(s->mode, sizeof(s->mode), "proxy");
        s->status = active ? REG_ACTIVE : REG_PENDING;
    }
}

/* Whole serving leaf file state/tls/serving/leaf-<id>.pem, or NULL. */
static char *leaf_text(const char *state, unsigned id)
{
    char rel[64], path[PATH_MAX];

    snprintf(rel, sizeof(rel), "serving/leaf-%04u.pem", id);
    tls_path(path, sizeof(path), state, rel);
    return slurp(path);
}

/* The DNS names of serving leaf id, as a count, and whether name is one of them. */
static int leaf_has(const char *state, unsigned id, const char *name, int *count)
{
    char rel[64], path[PATH_MAX];
    GENERAL_NAMES *gens;
    X509 *crt;
    int hit = 0;

    snprintf(rel, sizeof(rel), "serving/leaf-%04u.pem", id);
    tls_path(path, sizeof(path), state, rel);
    crt = load_x509(path);
    *count = -1;
    if (!crt)
        return 0;
    gens = X509_get_ext_d2i(crt, NID_subject_alt_name, NULL, NULL);
    *count = gens ? sk_GENERAL_NAME_num(gens) : 0;
    for (int i = 0; i < *count; i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);

        hit |= gn->type == GEN_DNS && (size_t)ASN1_STRING_length(gn->d.dNSName) == strlen(name) &&
               !memcmp(ASN1_STRING_get0_data(gn->d.dNSName), name, strlen(name));
    }
    GENERAL_NAMES_free(gens);
    X509_free(crt);
    return hit;
}

/* Both serving leaves' files: same bytes as a and b (NULL: not compared). */
static bool leaves_are(const char *state, const char *a, const char *b)
{
    char *x = leaf_text(state, 1), *y = leaf_text(state, 2);
    bool same = (!a || (x && !strcmp(x, a))) && (!b || (y && !strcmp(y, b)));

    free(x);
    free(y);
    return same;
}

/* Serving leaves at the CA service's level: the 101st active name opens a second leaf; a
 * pending service costs none; removing a name reissues only its leaf (the other file keeps its
 * bytes) and a new name fills that room; a rollback (retire back to the kept registry) puts the
 * names back; a reopen reads the assignment back and reissues nothing. */
static void test_serving(void)
{
    static struct cfs_config cfg;
    struct reg_service *a = calloc(103, sizeof(*a)), *b = calloc(103, sizeof(*b));
    const struct reg_service *pa[103], *pb[103];    /* the records as a snapshot holds them */
    char state[PATH_MAX], err[512], path[PATH_MAX];
    char *l1, *l2, *l1b, *l2b;
    int n1, n2;

    for (size_t i = 0; i < 103; i++) {
        pa[i] = &a[i];
        pb[i] = &b[i];
    }

    tl_new_state(state, sizeof(state), g_root);
    unit_cfg(&cfg, state);
    CHECK_INT(audit_open(state, err, sizeof(err)), 0);
    CHECK_INT(ca_service_open(&cfg, err, sizeof(err)), 0);
    fill_services(a, 101, 1, true);
    fill_services(&a[101], 1, 102, false);          /* s102 is pending */
    ca_service_check(pa, 102);
    tls_path(path, sizeof(path), state, "serving");
    CHECK_INT(mode_of(path), 0700);
    CHECK(leaf_has(state, 1, "s1.internal", &n1) && n1 == 100);
    CHECK(leaf_has(state, 2, "s101.internal", &n2) && n2 == 1);
    CHECK(!leaf_has(state, 1, "s102.internal", &n1) && !leaf_has(state, 2, "s102.internal", &n2));
    tls_path(path, sizeof(path), state, "serving/leaf-0001.pem");
    CHECK_INT(mode_of(path), 0600);
    l1 = leaf_text(state, 1);
    l2 = leaf_text(state, 2);
    CHECK(l1 && strstr(l1, "PRIVATE KEY") && l2);

    /* s5 leaves: only leaf 1 is reissued. */
    memcpy(b, a, 102 * sizeof(*a));
    memmove(&b[4], &b[5], 97 * sizeof(*b));           /* b: s1..s4, s6..s102 (101 records) */
    ca_service_sync(pa, 102, pb, 101, "alice");
    CHECK(!leaf_has(state, 1, "s5.internal", &n1) && n1 == 99);
    CHECK(leaves_are(state, NULL, l2));
    CHECK(!leaves_are(state, l1, NULL));
    l1b = leaf_text(state, 1);

    /* s102 becomes active: it fills the room in leaf 1; leaf 2 keeps its bytes. */
    b[100].status = REG_ACTIVE;
    snprintf(b[100].upstream, sizeof(b[100].upstream), "127.0.0.1:9");
    ca_service_sync(pa, 102, pb, 101, "alice");
    CHECK(leaf_has(state, 1, "s102.internal", &n1) && n1 == 100);
    CHECK(leaves_are(state, NULL, l2));
    CHECK(!leaves_are(state, l1b, NULL));

    /* A rollback to a (s5 back, s102 pending). */
    ca_service_retire(pb, 101, pa, 102, "alice");
    CHECK(leaf_has(state, 1, "s5.internal", &n1) && n1 == 100);
    CHECK(!leaf_has(state, 1, "s102.internal", &n1));
    CHECK(leaves_are(state, NULL, l2));
    free(l1b);
    l1b = leaf_text(state, 1);
    l2b = leaf_text(state, 2);
    ca_service_close();

    /* Reopen: the files are the assignment; nothing is reissued. */
    CHECK_INT(ca_service_open(&cfg, err, sizeof(err)), 0);
    ca_service_check(pa, 102);
    CHECK(leaves_are(state, l1b, l2b));
    /* Deregistering s101 empties leaf 2: it is archived and removed. */
    ca_service_sync(pa, 102, pa, 100, "bob");
    tls_path(path, sizeof(path), state, "serving/leaf-0002.pem");
    CHECK_INT(mode_of(path), -1);
    CHECK(leaves_are(state, l1b, NULL));
    ca_service_flush();
    CHECK_INT(count_action(state, "tls_archive", "bob"), 1);
    ca_service_close();
    audit_close();
    free(l1);
    free(l2);
    free(l1b);
    free(l2b);
    free(a);
    free(b);
}

int main(void)
{
    if (tl_tmp_root(g_root, sizeof(g_root), "test_ca") < 0)
        return 2;
    test_root(CA_KEY_ED25519);
    test_root(CA_KEY_ECDSA_P256);
    test_refusals();
    test_renewal();
    test_archive();
    test_args();
    test_hostname();
    test_threads();
    test_service();
    test_serving();
    if (!have_openssl())
        printf("openssl not on PATH: `openssl verify` checks skipped\n");
    if (getenv("CA_TEST_KEEP"))
        printf("kept %s\n", g_root);
    else
        tl_rm_rf(g_root);
    return tl_finish();
}
