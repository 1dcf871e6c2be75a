/* test_signer.c: the signer process: the wire protocol on a raw socketpair (unknown requests,
 * requests out of order, an oversized one, end of file), audit keys and signatures identical to
 * in-process ones, the CA signing policy (a CA:TRUE leaf, a wrong issuer, garbage, and the other
 * refusals), issuance through the signer for both key types, refused CA and key files, a
 * signer killed once (a new one takes over the same keys) and twice (EIO, never a hang), and a
 * new signer that would come up with other keys. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "audit/capsule.h"
#include "audit/store.h"
#include "core/ca.h"
#include "core/signer.h"
#include "testlib.h"

#define HASH_A "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static char g_root[PATH_MAX];

/* ---- the raw protocol ---- */

/* A signer for dir serving one end of a fresh socketpair in a child; the other end in *fd. */
static pid_t raw_signer(const char *dir, int *fd)
{
    int sv[2];
    pid_t pid;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        perror("socketpair");
        exit(2);
    }
    pid = fork();
    if (pid == 0) {
        close(sv[0]);
        _exit(signer_serve(sv[1], dir));
    }
    close(sv[1]);
    *fd = sv[0];
    return pid;
}

/* Write all of buf. 0 or -1. */
static int put_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read exactly len bytes. 0 or -1. */
static int get_all(int fd, void *buf, size_t len)
{
    char *p = buf;

    while (len > 0) {
        ssize_t n = read(fd, p, len);

        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* One raw request: header (type, hdr_len) and len bytes. The status, or 1 when the link broke;
 * the answer into out (up to cap bytes, NUL-terminated when it fits), its length in *outlen. */
static int raw_call(int fd, uint32_t type, uint32_t hdr_len, const void *data, size_t len,
                    unsigned char *out, size_t cap, size_t *outlen)
{
    uint32_t h[2] = { type, hdr_len };
    struct { int32_t status; uint32_t len; } r;
    unsigned char *buf;

    *outlen = 0;
    if (put_all(fd, h, sizeof(h)) < 0 || (len && put_all(fd, data, len) < 0) ||
        get_all(fd, &r, sizeof(r)) < 0)
        return 1;
    buf = malloc(r.len + 1);
    if (!buf || get_all(fd, buf, r.len) < 0) {
        free(buf);
        return 1;
    }
    *outlen = r.len;
    if (out && cap) {
        size_t n = r.len < cap - 1 ? r.len : cap - 1;

        memcpy(out, buf, n);
        out[n] = '\0';
    }
    free(buf);
    return r.status;
}

/* Exit status of pid, or -1 when it did not end normally. */
static int exit_status(pid_t pid)
{
    int st;

    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

static void test_raw_protocol(void)
{
    char dir[PATH_MAX], path[PATH_MAX], err[256];
    unsigned char out[1024], sig[AUDIT_SIG_LEN];
    struct audit_key *local = NULL;
    struct stat st;
    size_t n;
    int fd;
    pid_t pid;

    tl_new_state(dir, sizeof(dir), g_root);
    pid = raw_signer(dir, &fd);
    CHECK_INT(raw_call(fd, 99, 0, NULL, 0, out, sizeof(out), &n), -EOPNOTSUPP);
    CHECK(n > 0);                           /* with a reason */
    CHECK_INT(raw_call(fd, SIGNER_AUDIT_SIGN, 64, HASH_A, 64, out, sizeof(out), &n), -ENOKEY);
    CHECK_INT(raw_call(fd, SIGNER_CA_SIGN, 3, "abc", 3, out, sizeof(out), &n), -ENOKEY);
    CHECK_INT(raw_call(fd, SIGNER_AUDIT_KEY, 1, "x", 1, out, sizeof(out), &n), -EINVAL);
    /* The audit key: created 0600 on first request, the same public key as in-process. */
    CHECK_INT(raw_call(fd, SIGNER_AUDIT_KEY, 0, NULL, 0, out, sizeof(out), &n), 0);
    CHECK_INT(n, 64);
    tl_pathf(path, sizeof(path), "%s/%s", dir, "key");
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600 && st.st_size == 32);
    CHECK_INT(audit_key_load(path, &local, err, sizeof(err)), 0);
    if (local)
        CHECK_STR((char *)out, audit_key_public_hex(local));
    /* It signs 64 lowercase hex chars, exactly as an in-process key does; nothing else. */
    CHECK_INT(raw_call(fd, SIGNER_AUDIT_SIGN, 64, HASH_A, 64, out, sizeof(out), &n), 0);
    CHECK_INT(n, AUDIT_SIG_LEN);
    if (local) {
        CHECK_INT(audit_key_sign(local, (const unsigned char *)HASH_A, 64, sig), 0);
        CHECK(memcmp(sig, out, AUDIT_SIG_LEN) == 0);
    }
    CHECK_INT(raw_call(fd, SIGNER_AUDIT_SIGN, 5, "hello", 5, out, sizeof(out), &n), -EPERM);
    CHECK_INT(raw_call(fd, SIGNER_AUDIT_SIGN, 63, HASH_A, 63, out, sizeof(out), &n), -EPERM);
    CHECK_INT(raw_call(fd, SIGNER_AUDIT_SIGN, 64,
                       "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF", 64,
                       out, sizeof(out), &n), -EPERM);
    /* CA requests: a bad key type, then garbage before any real CA_SIGN. */
    CHECK_INT(raw_call(fd, SIGNER_CA_OPEN, 1, "\x07", 1, out, sizeof(out), &n), -EINVAL);
    CHECK_INT(raw_call(fd, SIGNER_CA_OPEN, 0, NULL, 0, out, sizeof(out), &n), -EINVAL);
    CHECK_INT(raw_call(fd, SIGNER_CA_OPEN, 5, "\x00host", 5, out, sizeof(out), &n), 0);
    CHECK(n > 3 && out[0] == 1);            /* created */
    CHECK_INT(raw_call(fd, SIGNER_CA_SIGN, 7, "garbage", 7, out, sizeof(out), &n), -EINVAL);
    CHECK_INT(raw_call(fd, SIGNER_CA_SIGN, 0, NULL, 0, out, sizeof(out), &n), -EINVAL);
    /* A second open answers the same root, not created. */
    CHECK_INT(raw_call(fd, SIGNER_CA_OPEN, 1, "\x01", 1, out, sizeof(out), &n), 0);
    CHECK(n > 3 && out[0] == 0);
    /* An oversized request cannot be skipped: answered, then the signer ends (status 1). */
    CHECK_INT(raw_call(fd, SIGNER_AUDIT_SIGN, SIGNER_MSG_MAX + 1, NULL, 0, out, sizeof(out), &n),
              -EMSGSIZE);
    CHECK_INT(exit_status(pid), 1);
    close(fd);
    audit_key_free(local);

    /* End of file ends it cleanly, and a torn header too (status 1). */
    pid = raw_signer(dir, &fd);
    close(fd);
    CHECK_INT(exit_status(pid), 0);
    pid = raw_signer(dir, &fd);
    CHECK_INT(put_all(fd, "\x01\x00", 2), 0);
    close(fd);
    CHECK_INT(exit_status(pid), 1);
}

/* ---- leaf requests, good and bad ---- */

struct req_opts {
    bool ca_true, no_bc, cert_sign, no_san, ip_san, extra_ext, other_signer, ca_subject;
    bool wrong_issuer, ecdsa_key, ca_key, self_aki;
    int sans;                       /* DNS names n1.internal..: 0 is one, a.internal */
    bool dup_san, bad_san;          /* with sans: the last name repeats the first, or is bad */
    int days;                       /* 0: 90 */
    long back;                      /* notBefore this many seconds ago (0: 300) */
};

/* Add one extension in OpenSSL config syntax. 1 or 0. */
static int add_ext(X509 *crt, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
    int ok = ext && X509_add_ext(crt, ext, -1);

    X509_EXTENSION_free(ext);
    return ok;
}

/* The SAN value of a request: o->sans names (the last one bent as o says), into a malloc'd
 * string, or NULL. */
static char *san_of(const struct req_opts *o)
{
    size_t cap = (size_t)(o->sans + 1) * 24, used = 0;
    char *v = malloc(cap);

    if (!v)
        return NULL;
    if (o->ip_san || !o->sans) {
        snprintf(v, cap, "%s", o->ip_san ? "IP:127.0.0.1" : "DNS:a.internal");
        return v;
    }
    for (int i = 1; i <= o->sans; i++) {
        const char *fmt = i < o->sans ? "DNS:n%d.internal," : o->dup_san ? "DNS:n1.internal" :
                          o->bad_san ? "DNS:N%d_.internal" : "DNS:n%d.internal";

        used += (size_t)snprintf(v + used, cap - used, fmt, i);
    }
    return v;
}

/* A leaf request under root as ca_issue builds one, bent as o says, as DER in *der. The CA's
 * key is passed only for o->ca_key (a request for the CA's own key). 0 or -1. */
static int make_req(X509 *root, EVP_PKEY *ca_key, enum ca_key_type type,
                    const struct req_opts *o, unsigned char **der, size_t *len)
{
    bool ed = o->ecdsa_key ? false : type == CA_KEY_ED25519;
    EVP_PKEY *key = NULL, *signer = NULL;
    X509_NAME *subj = NULL, *other = NULL;
    X509 *crt = X509_new();
    X509V3_CTX ctx;
    char *san = san_of(o);
    int n, rc = -1;

    *der = NULL;
    if (!san)
        goto out;
    if (o->ca_key)
        EVP_PKEY_up_ref(key = ca_key);
    else
        key = ed ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
                 : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    signer = o->other_signer ? (ed ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
                                   : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) : NULL;
    subj = o->ca_subject ? X509_NAME_dup(X509_get_subject_name(root)) : X509_NAME_new();
    other = X509_NAME_new();
    if (!crt || !key || (o->other_signer && !signer) || !subj || !other ||
        (!o->ca_subject && !X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_ASC,
                                                       (const unsigned char *)"a.internal",
                                                       -1, -1, 0)) ||
        !X509_NAME_add_entry_by_txt(other, "CN", MBSTRING_ASC,
                                    (const unsigned char *)"Someone Else", -1, -1, 0))
        goto out;
    if (!X509_set_version(crt, X509_VERSION_3) ||
        !ASN1_INTEGER_set(X509_get_serialNumber(crt), 123456789) ||
        !X509_gmtime_adj(X509_getm_notBefore(crt), -(o->back ? o->back : 300)) ||
        !X509_gmtime_adj(X509_getm_notAfter(crt), (long)(o->days ? o->days : 90) * 86400) ||
        !X509_set_subject_name(crt, subj) ||
        !X509_set_issuer_name(crt, o->wrong_issuer ? other : X509_get_subject_name(root)) ||
        !X509_set_pubkey(crt, key))
        goto out;
    memset(&ctx, 0, sizeof(ctx));
    X509V3_set_ctx(&ctx, root, crt, NULL, NULL, 0);
    if (!X509V3_set_issuer_pkey(&ctx, X509_get0_pubkey(root)))
        goto out;
    if ((!o->no_bc && !add_ext(crt, &ctx, NID_basic_constraints,
                               o->ca_true ? "critical,CA:TRUE" : "critical,CA:FALSE")) ||
        !add_ext(crt, &ctx, NID_key_usage, o->cert_sign ? "critical,digitalSignature,keyCertSign"
                                                        : "critical,digitalSignature") ||
        !add_ext(crt, &ctx, NID_ext_key_usage, "serverAuth") ||
        !add_ext(crt, &ctx, NID_subject_key_identifier, "hash"))
        goto out;
    if (o->self_aki) {              /* the leaf's own key id as the authority's */
        X509V3_set_ctx(&ctx, crt, crt, NULL, NULL, 0);
        if (!X509V3_set_issuer_pkey(&ctx, key))
            goto out;
    }
    if (!add_ext(crt, &ctx, NID_authority_key_identifier, "keyid:always") ||
        (!o->no_san && !add_ext(crt, &ctx, NID_subject_alt_name, san)) ||
        (o->extra_ext && !add_ext(crt, &ctx, NID_netscape_comment, "hello")))
        goto out;
    if (X509_sign(crt, signer ? signer : key, ed ? NULL : EVP_sha256()) <= 0)
        goto out;
    n = i2d_X509(crt, NULL);
    *der = n > 0 ? malloc((size_t)n + 1) : NULL;   /* one spare byte for the trailing test */
    if (*der) {
        unsigned char *p = *der;

        *len = (size_t)i2d_X509(crt, &p);
        rc = 0;
    }
out:
    free(san);
    EVP_PKEY_free(key);
    EVP_PKEY_free(signer);
    X509_NAME_free(subj);
    X509_NAME_free(other);
    X509_free(crt);
    return rc;
}

/* Send a request built with o to the running signer. The signer's status. */
static int try_req(X509 *root, EVP_PKEY *ca_key, enum ca_key_type type, const struct req_opts *o,
                   char *err, size_t errlen)
{
    unsigned char *der = NULL, *resp = NULL;
    size_t len = 0, rlen = 0;
    int rc;

    if (make_req(root, ca_key, type, o, &der, &len) < 0) {
        fprintf(stderr, "cannot build a test request\n");
        return 1;
    }
    rc = signer_call(SIGNER_CA_SIGN, der, len, &resp, &rlen, err, errlen);
    if (getenv("SIGNER_TEST_VERBOSE"))
        printf("request: %d %s\n", rc, err);
    if (rc == 0) {
        const unsigned char *p = resp;
        X509 *crt = d2i_X509(NULL, &p, (long)rlen);

        CHECK(crt && X509_verify(crt, X509_get0_pubkey(root)) == 1);
        X509_free(crt);
    }
    free(der);
    free(resp);
    return rc;
}

/* The root certificate of an open CA, parsed back. */
static X509 *root_of(struct ca *ca)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    size_t len = 0;
    X509 *crt = NULL;

    if (ca_root_der(ca, &der, &len) == 0) {
        p = der;
        crt = d2i_X509(NULL, &p, (long)len);
    }
    free(der);
    return crt;
}

/* The CA key of dir, read the way only the signer and this test may. */
static EVP_PKEY *ca_key_of(const char *dir)
{
    char path[PATH_MAX];
    EVP_PKEY *key = NULL;
    FILE *f;

    tl_pathf(path, sizeof(path), "%s/%s", dir, "tls/ca.key");
    f = fopen(path, "r");
    if (f) {
        key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
    }
    return key;
}

/* The CA policy: what the signer refuses, and that a good request passes. */
static void test_policy(const char *dir, struct ca *ca, enum ca_key_type type)
{
    X509 *root = root_of(ca);
    EVP_PKEY *ca_key = ca_key_of(dir);
    unsigned char *der = NULL, *resp = NULL;
    size_t len = 0, rlen = 0;
    char err[256];

    CHECK(root != NULL && ca_key != NULL);
    if (!root || !ca_key)
        goto out;
    /* One request with the faults of the initializer list: try_req's result. */
#define TRY(...) try_req(root, ca_key, type, &(struct req_opts){ __VA_ARGS__ }, err, sizeof(err))
    CHECK_INT(TRY(0), 0);
    CHECK_INT(TRY(.ca_true = true), -EPERM);
    CHECKF(strstr(err, "CA:FALSE") != NULL, "%s", err);
    CHECK_INT(TRY(.wrong_issuer = true), -EPERM);
    CHECKF(strstr(err, "issuer") != NULL, "%s", err);
    CHECK_INT(TRY(.no_bc = true), -EPERM);
    CHECK_INT(TRY(.cert_sign = true), -EPERM);
    CHECK_INT(TRY(.no_san = true), -EPERM);
    CHECK_INT(TRY(.ip_san = true), -EPERM);
    CHECK_INT(TRY(.extra_ext = true), -EPERM);
    CHECK_INT(TRY(.other_signer = true), -EPERM);
    CHECK_INT(TRY(.ca_subject = true), -EPERM);
    CHECK_INT(TRY(.ca_key = true), -EPERM);
    CHECK_INT(TRY(.days = CA_LEAF_DAYS_MAX + 5), -EPERM);
    CHECK_INT(TRY(.back = 3 * 86400), -EPERM);
    CHECK_INT(TRY(.self_aki = true), -EPERM);
    CHECKF(strstr(err, "authority key identifier") != NULL, "%s", err);
    CHECK_INT(TRY(.ecdsa_key = type == CA_KEY_ED25519), type == CA_KEY_ED25519 ? -EPERM : 0);
    /* A bundled leaf: up to CA_LEAF_NAMES_MAX distinct names, each a valid domain. */
    CHECK_INT(TRY(.sans = CA_LEAF_NAMES_MAX), 0);
    CHECK_INT(TRY(.sans = CA_LEAF_NAMES_MAX + 1), -EPERM);
    CHECKF(strstr(err, "1 to 100") != NULL, "%s", err);
    CHECK_INT(TRY(.sans = 50, .dup_san = true), -EPERM);
    CHECKF(strstr(err, "twice") != NULL, "%s", err);
    CHECK_INT(TRY(.sans = 50, .bad_san = true), -EPERM);
    CHECKF(strstr(err, "invalid domain") != NULL, "%s", err);
#undef TRY
    /* Garbage, and a good request with a byte after it. */
    CHECK_INT(signer_call(SIGNER_CA_SIGN, "\x30\x03\x02\x01\x01", 5, &resp, &rlen, err,
                          sizeof(err)), -EINVAL);
    CHECK_INT(make_req(root, ca_key, type, &(struct req_opts){ 0 }, &der, &len), 0);
    if (der) {
        der[len] = 0;
        CHECK_INT(signer_call(SIGNER_CA_SIGN, der, len + 1, &resp, &rlen, err, sizeof(err)),
                  -EINVAL);
    }
out:
    free(der);
    free(resp);
    X509_free(root);
    EVP_PKEY_free(ca_key);
}

/* Write text into the file name below dir (its path into path), as far as it can. */
static void put_file(char *path, size_t len, const char *dir, const char *name, const char *text)
{
    FILE *f;

    tl_pathf(path, len, "%s/%s", dir, name);
    f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* A leaf issued through the signer: files written, chain verifies, key matches. */
static void check_leaf(const char *dir, struct ca *ca, const char *domain)
{
    char serial[CA_SERIAL_HEX_MAX], err[256], path[PATH_MAX];
    X509 *root = root_of(ca), *crt;
    EVP_PKEY *key;
    BIO *b;

    CHECKF(ca_issue(ca, domain, 30, serial, err, sizeof(err)) == 0, "%s", err);
    tl_pathf(path, sizeof(path), "%s/tls/%s/cert.pem", dir, domain);
    b = BIO_new_file(path, "r");
    crt = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    tl_pathf(path, sizeof(path), "%s/tls/%s/key.pem", dir, domain);
    b = BIO_new_file(path, "r");
    key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    CHECK(crt && root && key);
    if (crt && root && key) {
        CHECK(X509_verify(crt, X509_get0_pubkey(root)) == 1);
        CHECK(X509_check_private_key(crt, key) == 1);
        CHECK(X509_check_host(crt, domain, 0, 0, NULL) == 1);
        CHECK_INT(ca_needs_renewal(ca, domain, 0), 0);
    }
    X509_free(root);
    X509_free(crt);
    EVP_PKEY_free(key);
}

/* Seal one capsule with k. 0 or -errno. */
static int seal_one(const struct audit_key *k, struct audit_seal *s)
{
    json_t *entry = json_pack("{s:s, s:s, s:s, s:s, s:s, s:{}}", "timestamp",
                              "2025-01-02T03:04:05Z", "action", "test", "status", "success",
                              "message", "m", "user", "u", "details");
    json_t *cap = NULL;
    char err[256];
    int rc = audit_capsule_from_entry(entry, 0, "host", 0, &cap, err, sizeof(err));

    if (rc == 0)
        rc = audit_capsule_link(cap, 0, NULL);
    if (rc == 0) {
        /* a fixed id, so that two seals of the same content are comparable */
        json_object_set_new(cap, "id", json_string("00000000-0000-4000-8000-000000000000"));
        rc = audit_capsule_seal(k, cap, s);
    }
    json_decref(entry);
    json_decref(cap);
    return rc;
}

/* The daemon's path: signer_start, the CA and the audit store through it, then its death. */
static void test_daemon_path(enum ca_key_type type)
{
    char dir[PATH_MAX], other[PATH_MAX], path[PATH_MAX], err[256], pub[AUDIT_PUB_HEX];
    struct audit_key *remote = NULL, *local = NULL;
    struct audit_store *st = NULL, *st2 = NULL;
    struct audit_verify_report rep;
    struct audit_seal s1, s2;
    struct ca *ca = NULL;
    unsigned char *resp = NULL;
    size_t rlen = 0;
    bool created = false;
    json_t *entry;
    pid_t pid;

    tl_new_state(dir, sizeof(dir), g_root);
    tl_new_state(other, sizeof(other), g_root);
    CHECK(!signer_running());
    CHECK_INT(signer_call(SIGNER_AUDIT_KEY, NULL, 0, &resp, &rlen, err, sizeof(err)), -EIO);
    CHECK_INT(signer_start("relative/dir", NULL, err, sizeof(err)), -EINVAL);
    CHECKF(signer_start(dir, NULL, err, sizeof(err)) == 0, "%s", err);
    CHECK_INT(signer_start(dir, NULL, err, sizeof(err)), -EBUSY);
    CHECK(signer_running() && signer_pid() > 0);

    /* The CA: created by the signer (key 0600 on disk), only the certificate here. */
    CHECK_INT(signer_ca_open(other, type, "h", &ca, &created, err, sizeof(err)), -EINVAL);
    CHECKF(signer_ca_open(dir, type, "testhost", &ca, &created, err, sizeof(err)) == 0, "%s",
           err);
    CHECK(created);
    tl_pathf(path, sizeof(path), "%s/%s", dir, "tls/ca.key");
    CHECK(access(path, F_OK) == 0);
    if (ca) {
        CHECK_INT(ca_key_type_get(ca), type);
        /* The CA here cannot sign by itself. */
        CHECK_INT(ca_sign_cert(ca, (const unsigned char *)"x", 1, &resp, &rlen, err,
                               sizeof(err)), -ENOKEY);
        check_leaf(dir, ca, "a.internal");
        check_leaf(dir, ca, "b.internal");
        test_policy(dir, ca, type);
    }

    /* The audit store through the signer: seals verify, and equal in-process seals. */
    CHECKF(audit_store_open(dir, &(const struct audit_store_opts){
                                .hostname = "host", .flags = AUDIT_STORE_KEEP_KEY,
                                .signer = signer_audit() },
                            &st, err, sizeof(err)) == 0, "%s", err);
    CHECK_INT(audit_store_open(other, &(const struct audit_store_opts){
                                   .hostname = "host", .signer = signer_audit() },
                               &st2, err, sizeof(err)),
              -EINVAL);
    CHECK(st2 == NULL);
    entry = json_pack("{s:s, s:s, s:s, s:s, s:s, s:{}}", "timestamp", "2025-01-02T03:04:05Z",
                      "action", "a", "status", "success", "message", "m", "user", "u",
                      "details");
    if (st) {
        CHECK_INT(audit_store_append(st, entry, 0, 1, NULL, NULL), 0);
        CHECK_INT(audit_store_append(st, entry, 1, 2, NULL, NULL), 0);
        CHECK_INT(audit_store_verify(st, &rep), 0);
        CHECK_INT(rep.entries, 2);
        snprintf(pub, sizeof(pub), "%s", audit_store_pubkey_hex(st));
        CHECK_INT(audit_key_from_signer(pub, signer_audit()->sign, NULL, &remote), 0);
    }
    tl_pathf(path, sizeof(path), "%s/%s", dir, "key");
    CHECK_INT(audit_key_load(path, &local, err, sizeof(err)), 0);
    if (remote && local) {
        CHECK_INT(seal_one(remote, &s1), 0);
        CHECK_INT(seal_one(local, &s2), 0);
        CHECK_STR(s1.hash, s2.hash);
        CHECK_STR(s1.signature, s2.signature);
        CHECK_STR(s1.signed_by, s2.signed_by);
    }

    /* kill -9 the signer: a new one takes over the same keys, once. */
    pid = signer_pid();
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    if (ca)
        check_leaf(dir, ca, "c.internal");
    CHECK(signer_pid() > 0 && signer_pid() != pid);
    if (remote && local) {
        CHECK_INT(seal_one(remote, &s1), 0);
        CHECK_STR(s1.signature, s2.signature);
    }
    if (st)
        CHECK_INT(audit_store_append(st, entry, 0, 1, NULL, NULL), 0);
    /* A second death is final: EIO at once and ever after, never a hang. */
    pid = signer_pid();
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    if (ca)
        CHECK_INT(ca_issue(ca, "d.internal", 30, NULL, err, sizeof(err)), -EIO);
    if (remote) {
        CHECK_INT(seal_one(remote, &s1), -EIO);
        CHECK_INT(seal_one(remote, &s1), -EIO);
    }
    if (st) {
        CHECK_INT(audit_store_append(st, entry, 0, 1, NULL, NULL), -EIO);
        CHECK_INT(audit_store_verify(st, &rep), 0);
        CHECK_INT(rep.entries, 3);
    }
    audit_store_close(st);
    audit_key_free(remote);
    audit_key_free(local);
    ca_close(ca);
    json_decref(entry);
    signer_stop();
    CHECK(!signer_running() && signer_pid() == 0);
    signer_stop();                          /* idempotent */
}

/* Files the signer refuses: its reasons come through as they are. */
static void test_refusals(void)
{
    char dir[PATH_MAX], path[PATH_MAX], err[256];
    struct audit_store *st = NULL;
    struct ca *ca = NULL;
    bool created = true;

    tl_new_state(dir, sizeof(dir), g_root);
    tl_pathf(path, sizeof(path), "%s/%s", dir, "tls");
    mkdir(path, 0700);
    put_file(path, sizeof(path), dir, "tls/ca.key", "");
    put_file(path, sizeof(path), dir, "key", "0123456789abcdef0123456789abcdef");
    chmod(path, 0644);
    CHECKF(signer_start(dir, NULL, err, sizeof(err)) == 0, "%s", err);
    CHECK_INT(signer_ca_open(dir, CA_KEY_ED25519, "h", &ca, &created, err, sizeof(err)),
              -EINVAL);
    CHECKF(strstr(err, "exists without") != NULL, "%s", err);
    CHECK(!ca && !created);
    CHECK_INT(audit_store_open(dir, &(const struct audit_store_opts){
                                   .hostname = "h", .signer = signer_audit() },
                               &st, err, sizeof(err)),
              -EACCES);
    CHECKF(strstr(err, "0644") != NULL, "%s", err);
    signer_stop();
}

/* A new signer that would come up with other keys is not used. */
static void test_restart_other_keys(void)
{
    char dir[PATH_MAX], path[PATH_MAX], err[256];
    unsigned char *resp = NULL;
    size_t rlen = 0;
    struct ca *ca = NULL;
    pid_t pid;

    /* The audit key replaced behind the signer's back. */
    tl_new_state(dir, sizeof(dir), g_root);
    CHECKF(signer_start(dir, NULL, err, sizeof(err)) == 0, "%s", err);
    CHECK_INT(signer_call(SIGNER_AUDIT_KEY, NULL, 0, &resp, &rlen, err, sizeof(err)), 0);
    free(resp);
    put_file(path, sizeof(path), dir, "key", "another 32-byte seed, not the 1st");
    CHECK(truncate(path, 32) == 0);
    pid = signer_pid();
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    CHECK_INT(signer_call(SIGNER_AUDIT_SIGN, HASH_A, 64, &resp, &rlen, err, sizeof(err)), -EIO);
    CHECKF(strstr(err, "same keys") != NULL, "%s", err);
    signer_stop();

    /* The CA files gone: the new signer does not make a new root. */
    tl_new_state(dir, sizeof(dir), g_root);
    CHECKF(signer_start(dir, NULL, err, sizeof(err)) == 0, "%s", err);
    CHECK_INT(signer_ca_open(dir, CA_KEY_ED25519, "h", &ca, NULL, err, sizeof(err)), 0);
    tl_pathf(path, sizeof(path), "%s/%s", dir, "tls/ca.key");
    unlink(path);
    tl_pathf(path, sizeof(path), "%s/%s", dir, "tls/ca.crt");
    unlink(path);
    pid = signer_pid();
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    if (ca)
        CHECK_INT(ca_issue(ca, "a.internal", 30, NULL, err, sizeof(err)), -EIO);
    CHECK(access(path, F_OK) != 0);
    ca_close(ca);
    signer_stop();
}

int main(void)
{
    if (tl_tmp_root(g_root, sizeof(g_root), "test_signer") < 0)
        return 2;
    test_raw_protocol();
    test_daemon_path(CA_KEY_ED25519);
    test_daemon_path(CA_KEY_ECDSA_P256);
    test_refusals();
    test_restart_other_keys();
    tl_rm_rf(g_root);
    return tl_finish();
}
