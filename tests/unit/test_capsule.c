/* test_capsule.c: entry -> capsule mapping, key files, times, seal/verify round trip, tamper. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "audit/canon.h"
#include "audit/capsule.h"
#include "testlib.h"

/* RFC 8032 section 7.1, test 1. */
#define RFC_SEED "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
#define RFC_PUB "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"

/* Expected seals of the two entries below with the RFC seed and FIXED_ID, computed
 * independently with Python (json.dumps sort_keys, hashlib.sha3_256, cryptography Ed25519). */
#define FIXED_ID "0f0e0d0c-0b0a-4908-8706-050403020100"
#define HASH0 "06a07b6fc89f100b9263aa725b797b6bc04ee2ce7dc43555932863a5bafbce94"
#define SIG0 "a1da0116a7356e06ab6e3a02a23dd4d06075fc8aa3854ab02081d1be360b0730" \
             "1bc4a761673af3bb441f77d0ec0024b1850193075e0332fdf88077220f012705"
#define HASH1 "0742d5976b9e3fd5f950f2c3bdce130d3ab843bd58d0a841f70fea068b7fe080"
#define SIG1 "fa82772c7c6fc633d4980a2e673a9f980be22ba724060810b14c378e9d08fc1b" \
             "8691ca8fc3f2a2b350bdc34071370635c2e04098aeace017c5233b5bf3a1ac07"

#define ENTRY0 "{\"timestamp\":\"2026-04-04T10:15:00Z\",\"action\":\"service_register\"," \
    "\"status\":\"success\",\"message\":\"Registered grafana.internal \xe2\x86\x92 " \
    "10.0.1.50:3000\",\"user\":\"operator\",\"details\":{\"name\":\"grafana\"," \
    "\"host\":\"10.0.1.50:3000\",\"tls\":true,\"dns\":true}}"
#define ENTRY1 "{\"timestamp\":\"2026-04-04T12:15:00.5+02:00\",\"action\":\"service_register\"," \
    "\"status\":\"failure\",\"message\":\"upstream \\\"x\\\" unreachable\"," \
    "\"user\":\"conduitfs\",\"details\":{}}"

static char tmpdir[] = "/tmp/test_capsule.XXXXXX";

static void path_in(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", tmpdir, name);
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

    CHECK(fd >= 0);
    if (fd < 0)
        return;
    CHECK(write(fd, data, len) == (ssize_t)len);
    fchmod(fd, mode);
    close(fd);
}

static void write_rfc_seed(const char *path)
{
    static const char hex[] = RFC_SEED;
    unsigned char seed[32];
    unsigned int b;
    int i;

    for (i = 0; i < 32; i++) {
        sscanf(&hex[2 * i], "%2x", &b);
        seed[i] = (unsigned char)b;
    }
    write_file(path, seed, sizeof(seed), 0600);
}

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, 0, &jerr);

    CHECKF(v != NULL, "parse: %s", jerr.text);
    return v;
}

static void test_keys(void)
{
    struct audit_key *k = NULL, *k2 = NULL, *pub = NULL;
    char path[256], err[256] = "", pubhex[AUDIT_PUB_HEX];
    struct stat sb;

    path_in(path, sizeof(path), "key");
    CHECK_INT(audit_key_load(path, &k, err, sizeof(err)), 0);
    CHECK(k != NULL);
    if (!k)
        return;
    CHECK(stat(path, &sb) == 0);
    CHECK_INT(sb.st_mode & 07777, 0600);
    CHECK_INT(sb.st_size, 32);
    CHECK_INT(strlen(audit_key_public_hex(k)), 64);
    CHECK(strncmp(audit_key_id(k), audit_key_public_hex(k), 16) == 0);
    CHECK_INT(strlen(audit_key_id(k)), 16);
    snprintf(pubhex, sizeof(pubhex), "%s", audit_key_public_hex(k));
    audit_key_free(k);

    /* Loading again gives the same key. */
    CHECK_INT(audit_key_load(path, &k2, err, sizeof(err)), 0);
    if (k2)
        CHECK_STR(audit_key_public_hex(k2), pubhex);
    audit_key_free(k2);

    /* A loose mode is refused, with the reason. */
    chmod(path, 0644);
    CHECK_INT(audit_key_load(path, &k, err, sizeof(err)), -EACCES);
    CHECK(k == NULL);
    CHECKF(strstr(err, "0644") != NULL, "err: %s", err);
    chmod(path, 0600);

    /* A wrong size is refused. */
    path_in(path, sizeof(path), "shortkey");
    write_file(path, "abc", 3, 0600);
    CHECK_INT(audit_key_load(path, &k, err, sizeof(err)), -EINVAL);
    CHECKF(strstr(err, "3 bytes") != NULL, "err: %s", err);
    path_in(path, sizeof(path), "longkey");
    write_file(path, "0123456789012345678901234567890123456789", 40, 0600);
    CHECK_INT(audit_key_load(path, &k, err, sizeof(err)), -EINVAL);

    /* A known seed gives the RFC 8032 public key. */
    path_in(path, sizeof(path), "rfckey");
    write_rfc_seed(path);
    CHECK_INT(audit_key_load(path, &k, err, sizeof(err)), 0);
    if (k) {
        CHECK_STR(audit_key_public_hex(k), RFC_PUB);
        CHECK_STR(audit_key_id(k), "d75a980182b10ab7");
    }
    audit_key_free(k);

    CHECK_INT(audit_key_from_public(RFC_PUB, &pub), 0);
    if (pub)
        CHECK_STR(audit_key_id(pub), "d75a980182b10ab7");
    audit_key_free(pub);
    CHECK_INT(audit_key_from_public("d75a98", &pub), -EINVAL);
    CHECK_INT(audit_key_from_public(RFC_PUB "00", &pub), -EINVAL);
}

static void test_times(void)
{
    static const struct { const char *in, *want; } ok[] = {
        { "2026-04-04T10:15:00Z", "2026-04-04T10:15:00+00:00" },
        { "2026-04-04T10:15:00+00:00", "2026-04-04T10:15:00+00:00" },
        { "2026-06-15T08:30:45.123456Z", "2026-06-15T08:30:45.123456+00:00" },
        { "2026-06-15T08:30:45.000000Z", "2026-06-15T08:30:45+00:00" },
        { "2026-06-15T08:30:45.5Z", "2026-06-15T08:30:45.500000+00:00" },
        { "2026-06-15T08:30:45.1234567Z", "2026-06-15T08:30:45.123456+00:00" },
        { "2026-01-01T01:30:00+02:00", "2025-12-31T23:30:00+00:00" },
        { "2024-02-29T23:00:00-01:30", "2024-03-01T00:30:00+00:00" },
    };
    static const char *const bad[] = {
        "", "2026-04-04", "2026-04-04T10:15:00", "2026-04-04 10:15:00Z",
        "2026-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-04-04T24:00:00Z",
        "2026-04-04T10:60:00Z", "2026-13-01T00:00:00Z", "2026-04-04T10:15:00.Z",
        "2026-04-04T10:15:00Zjunk", "2026-04-04T10:15:00+0200", "0000-01-01T00:00:00Z",
    };
    char buf[AUDIT_TIME_MAX];
    struct timespec ts = { 1700000000, 0 };
    size_t i;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int rc = audit_time_normalize(ok[i].in, buf, sizeof(buf));

        CHECKF(rc == 0 && strcmp(buf, ok[i].want) == 0, "%s -> %s (rc %d), want %s", ok[i].in,
               rc == 0 ? buf : "", rc, ok[i].want);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECKF(audit_time_normalize(bad[i], buf, sizeof(buf)) == -EINVAL, "accepted %s",
               bad[i]);
    CHECK_INT(audit_time_iso(&ts, buf, sizeof(buf)), 0);
    CHECK_STR(buf, "2023-11-14T22:13:20+00:00");
    ts.tv_nsec = 1500;
    CHECK_INT(audit_time_iso(&ts, buf, sizeof(buf)), 0);
    CHECK_STR(buf, "2023-11-14T22:13:20.000001+00:00");
    CHECK_INT(audit_time_iso(&ts, buf, 10), -ENOSPC);
    CHECK_INT(audit_time_iso(NULL, buf, sizeof(buf)), 0);
    CHECK(strstr(buf, "+00:00") != NULL);
}

static const char *str_at(const json_t *root, const char *sec, const char *key)
{
    return json_string_value(json_object_get(json_object_get(root, sec), key));
}

static void test_mapping(void)
{
    json_t *entry = parse(ENTRY0), *cap = NULL, *tc;
    char err[256] = "";
    const char *id;

    CHECK_INT(audit_capsule_from_entry(entry, 0, "gw-01", 12, &cap, err, sizeof(err)), 0);
    if (!cap)
        goto out;
    CHECK_INT(json_object_size(cap), 13);
    id = json_string_value(json_object_get(cap, "id"));
    CHECK(id && strlen(id) == 36 && id[14] == '4' && strchr("89ab", id[19]) != NULL);
    CHECK_STR(json_string_value(json_object_get(cap, "type")), "system");
    CHECK_STR(json_string_value(json_object_get(cap, "domain")), "conduit");
    CHECK_STR(json_string_value(json_object_get(cap, "spec_version")), "1.0");
    CHECK_INT(json_integer_value(json_object_get(cap, "sequence")), 0);
    CHECK(json_is_null(json_object_get(cap, "previous_hash")));
    CHECK_STR(str_at(cap, "trigger", "type"), "user_request");
    CHECK_STR(str_at(cap, "trigger", "source"), "operator");
    CHECK_STR(str_at(cap, "trigger", "user_id"), "operator");
    CHECK_STR(str_at(cap, "trigger", "timestamp"), "2026-04-04T10:15:00+00:00");
    CHECK_STR(str_at(cap, "context", "agent_id"), "qp-conduit");
    CHECK_STR(str_at(json_object_get(cap, "context"), "environment", "hostname"), "gw-01");
    CHECK_STR(str_at(cap, "outcome", "status"), "success");
    CHECK(json_equal(json_object_get(json_object_get(cap, "outcome"), "result"), entry));
    tc = json_array_get(json_object_get(json_object_get(cap, "execution"), "tool_calls"), 0);
    CHECK_STR(json_string_value(json_object_get(tc, "tool")), "service_register");
    CHECK(json_is_true(json_object_get(tc, "success")));
    CHECK_INT(json_integer_value(json_object_get(tc, "duration_ms")), 12);
    CHECK(json_equal(json_object_get(tc, "arguments"), json_object_get(entry, "details")));
    CHECK_INT(audit_capsule_check(cap, err, sizeof(err)), 0);
    /* The capsule owns copies: changing the entry leaves it alone. */
    json_object_set_new(json_object_get(entry, "details"), "name", json_string("other"));
    CHECK_STR(str_at(tc, "arguments", "name"), "grafana");
    json_decref(cap);
    cap = NULL;

    /* System events: trigger.type system, no user_id. */
    CHECK_INT(audit_capsule_from_entry(entry, 1, "gw-01", 0, &cap, err, sizeof(err)), 0);
    if (cap) {
        CHECK_STR(str_at(cap, "trigger", "type"), "system");
        CHECK(json_is_null(json_object_get(json_object_get(cap, "trigger"), "user_id")));
    }
out:
    json_decref(cap);
    json_decref(entry);
}

static void test_bad_entries(void)
{
    static const char *const bad[] = {
        "[]",
        "{\"timestamp\":\"2026-04-04T10:15:00Z\",\"action\":\"a\",\"status\":\"success\","
        "\"message\":\"m\",\"user\":\"u\"}",
        "{\"timestamp\":\"2026-04-04T10:15:00Z\",\"action\":\"a\",\"status\":\"success\","
        "\"message\":\"m\",\"user\":\"u\",\"details\":{},\"extra\":1}",
        "{\"timestamp\":\"2026-04-04T10:15:00Z\",\"action\":\"a\",\"status\":\"ok\","
        "\"message\":\"m\",\"user\":\"u\",\"details\":{}}",
        "{\"timestamp\":\"2026-04-04T10:15:00Z\",\"action\":\"a\",\"status\":\"success\","
        "\"message\":\"m\",\"user\":\"u\",\"details\":[]}",
        "{\"timestamp\":\"yesterday\",\"action\":\"a\",\"status\":\"success\","
        "\"message\":\"m\",\"user\":\"u\",\"details\":{}}",
        "{\"timestamp\":\"2026-04-04T10:15:00Z\",\"action\":\"\",\"status\":\"success\","
        "\"message\":\"m\",\"user\":\"u\",\"details\":{}}",
        "{\"timestamp\":\"2026-04-04T10:15:00Z\",\"action\":\"a\",\"status\":\"success\","
        "\"message\":7,\"user\":\"u\",\"details\":{}}",
    };
    char err[256];
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *e = parse(bad[i]), *cap = NULL;

        err[0] = '\0';
        CHECKF(audit_capsule_from_entry(e, 0, "h", 0, &cap, err, sizeof(err)) == -EINVAL,
               "accepted %s", bad[i]);
        CHECK(cap == NULL);
        CHECKF(err[0] != '\0', "no reason for %s", bad[i]);
        json_decref(e);
    }
}

/* Seal the fixed capsules with the RFC seed and compare with the independent values. */
static void test_known_seals(void)
{
    struct audit_key *k = NULL;
    struct audit_seal s0, s1;
    json_t *e0 = parse(ENTRY0), *e1 = parse(ENTRY1), *c0 = NULL, *c1 = NULL;
    char path[256], err[256] = "";
    char *canon = NULL;

    path_in(path, sizeof(path), "rfckey");
    CHECK_INT(audit_key_load(path, &k, err, sizeof(err)), 0);
    if (!k)
        goto out;
    CHECK_INT(audit_capsule_from_entry(e0, 0, "gw-01", 12, &c0, err, sizeof(err)), 0);
    CHECK_INT(audit_capsule_from_entry(e1, 1, "gw-01", 0, &c1, err, sizeof(err)), 0);
    if (!c0 || !c1)
        goto out;
    json_object_set_new(c0, "id", json_string(FIXED_ID));
    json_object_set_new(c1, "id", json_string(FIXED_ID));
    CHECK_INT(audit_capsule_link(c0, 0, NULL), 0);
    CHECK_INT(audit_capsule_seal(k, c0, &s0), 0);
    audit_canon(c0, AUDIT_CANON_CAPSULE, &canon, NULL);
    CHECKF(strcmp(s0.hash, HASH0) == 0, "hash %s of %s", s0.hash, canon);
    free(canon);
    CHECK_STR(s0.signature, SIG0);
    CHECK_STR(s0.signed_by, "d75a980182b10ab7");
    CHECK(strlen(s0.signed_at) >= 25 && strstr(s0.signed_at, "+00:00") != NULL);

    CHECK_INT(audit_capsule_link(c1, 1, s0.hash), 0);
    CHECK_INT(audit_capsule_seal(k, c1, &s1), 0);
    canon = NULL;
    audit_canon(c1, AUDIT_CANON_CAPSULE, &canon, NULL);
    CHECKF(strcmp(s1.hash, HASH1) == 0, "hash %s of %s", s1.hash, canon);
    free(canon);
    CHECK_STR(s1.signature, SIG1);
    CHECK_INT(audit_capsule_verify(k, c1, HASH1, SIG1, err, sizeof(err)), 0);

    /* Linking rules. */
    CHECK_INT(audit_capsule_link(c1, 0, HASH0), -EINVAL);
    CHECK_INT(audit_capsule_link(c1, 2, NULL), -EINVAL);
    CHECK_INT(audit_capsule_link(c1, 2, "ABC"), -EINVAL);
    CHECK_INT(audit_capsule_link(c1, -1, NULL), -EINVAL);
out:
    json_decref(c0);
    json_decref(c1);
    json_decref(e0);
    json_decref(e1);
    audit_key_free(k);
}

/* Round trip with a fresh key, then every kind of tamper fails with the right reason. */
static void test_round_trip_and_tamper(void)
{
    struct audit_key *k = NULL, *other = NULL, *pub = NULL;
    struct audit_seal s;
    json_t *e = parse(ENTRY0), *cap = NULL, *t;
    char path[256], err[256] = "", bad[AUDIT_SIG_HEX];

    path_in(path, sizeof(path), "key");
    CHECK_INT(audit_key_load(path, &k, err, sizeof(err)), 0);
    path_in(path, sizeof(path), "otherkey");
    CHECK_INT(audit_key_load(path, &other, err, sizeof(err)), 0);
    CHECK_INT(audit_capsule_from_entry(e, 0, "gw-01", 3, &cap, err, sizeof(err)), 0);
    if (!k || !other || !cap)
        goto out;
    CHECK_INT(audit_capsule_link(cap, 7, HASH0), 0);
    CHECK_INT(audit_capsule_seal(k, cap, &s), 0);
    CHECK_INT(strlen(s.hash), 64);
    CHECK_INT(strlen(s.signature), 128);
    CHECK_INT(audit_capsule_verify(k, cap, s.hash, s.signature, err, sizeof(err)), 0);

    /* Verify-only key from the public hex works too, but cannot seal. */
    CHECK_INT(audit_key_from_public(audit_key_public_hex(k), &pub), 0);
    if (pub) {
        CHECK_INT(audit_capsule_verify(pub, cap, s.hash, s.signature, err, sizeof(err)), 0);
        CHECK_INT(audit_capsule_seal(pub, cap, &s), -EINVAL);
    }

    /* Another key: the signature does not verify. */
    CHECK_INT(audit_capsule_verify(other, cap, s.hash, s.signature, err, sizeof(err)), -EBADMSG);
    CHECKF(strstr(err, "signature") != NULL, "err: %s", err);

    /* A flipped signature bit. */
    memcpy(bad, s.signature, sizeof(bad));
    bad[0] = bad[0] == '0' ? '1' : '0';
    CHECK_INT(audit_capsule_verify(k, cap, s.hash, bad, err, sizeof(err)), -EBADMSG);
    CHECK_INT(audit_capsule_verify(k, cap, s.hash, "zz", err, sizeof(err)), -EBADMSG);

    /* Content changed after sealing: hash mismatch. */
    t = json_object_get(cap, "trigger");
    json_object_set_new(t, "request", json_string("something else"));
    CHECK_INT(audit_capsule_verify(k, cap, s.hash, s.signature, err, sizeof(err)), -EBADMSG);
    CHECKF(strstr(err, "hash mismatch") != NULL, "err: %s", err);

    /* Content and hash changed together: the signature catches it. */
    {
        char h2[AUDIT_HASH_HEX];

        CHECK_INT(audit_capsule_hash(cap, h2), 0);
        CHECK_INT(audit_capsule_verify(k, cap, h2, s.signature, err, sizeof(err)), -EBADMSG);
        CHECKF(strstr(err, "signature") != NULL, "err: %s", err);
    }
out:
    json_decref(cap);
    json_decref(e);
    audit_key_free(k);
    audit_key_free(other);
    audit_key_free(pub);
}

/* Structure checks on a golden-shaped capsule. */
#define WHY_LEN 256

/* Set key of c (of its member section, or of c itself when section is NULL) to v, a reference
 * taken, and return what audit_capsule_check then says of c, its reason in err (WHY_LEN). */
static int check_with(json_t *c, const char *section, const char *key, json_t *v, char *err)
{
    json_object_set_new(section ? json_object_get(c, section) : c, key, v);
    return audit_capsule_check(c, err, WHY_LEN);
}

static void test_structure(void)
{
    json_t *e = parse(ENTRY0), *cap = NULL, *c;
    char err[WHY_LEN];

    CHECK_INT(audit_capsule_from_entry(e, 0, "gw-01", 0, &cap, err, sizeof(err)), 0);
    if (!cap)
        goto out;
    CHECK_INT(audit_capsule_check(cap, err, sizeof(err)), 0);

    c = json_deep_copy(cap);
    json_object_del(c, "authority");
    CHECK_INT(audit_capsule_check(c, err, sizeof(err)), -EBADMSG);
    CHECKF(strstr(err, "authority") != NULL, "err: %s", err);
    json_decref(c);

    c = json_deep_copy(cap);
    json_object_del(json_object_get(c, "outcome"), "metrics");
    CHECK_INT(audit_capsule_check(c, err, sizeof(err)), -EBADMSG);
    CHECKF(strstr(err, "outcome.metrics") != NULL, "err: %s", err);
    json_decref(c);

    c = json_deep_copy(cap);
    CHECK_INT(check_with(c, "reasoning", "confidence", json_real(1.5), err), -EBADMSG);
    CHECK_INT(check_with(c, "reasoning", "confidence", json_integer(1), err), 0);
    CHECK_INT(check_with(c, "reasoning", "confidence", json_string("1"), err), -EBADMSG);
    json_decref(c);

    c = json_deep_copy(cap);
    CHECK_INT(check_with(c, NULL, "type", json_string("banana"), err), -EBADMSG);
    CHECKF(strstr(err, "banana") != NULL, "err: %s", err);
    CHECK_INT(check_with(c, NULL, "type", json_string("kill"), err), 0);
    CHECK_INT(check_with(c, NULL, "sequence", json_integer(-1), err), -EBADMSG);
    json_object_set_new(c, "sequence", json_integer(0));
    CHECK_INT(check_with(c, NULL, "previous_hash", json_string(HASH0), err), -EBADMSG);
    CHECK_INT(check_with(c, NULL, "sequence", json_integer(3), err), 0);
    CHECK_INT(check_with(c, NULL, "previous_hash", json_null(), err), -EBADMSG);
    CHECK_INT(check_with(c, NULL, "sequence", json_real(0.0), err), -EBADMSG);
    json_decref(c);

    c = json_deep_copy(cap);
    CHECK_INT(check_with(c, "trigger", "timestamp", json_string("noon"), err), -EBADMSG);
    json_decref(c);
    c = json_deep_copy(cap);
    CHECK_INT(check_with(c, NULL, "id", json_string("not-a-uuid"), err), -EBADMSG);
    json_decref(c);

    CHECK_INT(audit_capsule_check(json_object_get(cap, "id"), err, sizeof(err)), -EBADMSG);
out:
    json_decref(cap);
    json_decref(e);
}

int main(void)
{
    static const tl_test_fn tests[] = {
        test_keys, test_times, test_mapping, test_bad_entries, test_known_seals,
        test_round_trip_and_tamper, test_structure, NULL,
    };

    return tl_main_in_dir(tmpdir, tests);
}
