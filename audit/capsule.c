/* capsule.c: map audit entries to CPS 1.0 capsules (ids, timestamps, the structure check), link
 * them into the chain, and seal and verify them with a key from key.c. */
#include "audit/keyint.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "audit/canon.h"
#include "util/util.h"

#define SIG_LEN AUDIT_SIG_LEN
#define DIGEST_LEN 32

/* The six keys of an audit entry, in log order. */
static const char *const entry_keys[] = {
    "timestamp", "action", "status", "message", "user", "details",
};

/* Capsule types CPS 1.0 knows. */
static const char *const capsule_types[] = {
    "agent", "tool", "system", "kill", "workflow", "chat", "vault", "auth",
};

static const char *const top_keys[] = {
    "id", "type", "domain", "parent_id", "sequence", "previous_hash", "spec_version",
    "trigger", "context", "reasoning", "authority", "execution", "outcome",
};
static const char *const trigger_keys[] = {
    "type", "source", "timestamp", "request", "correlation_id", "user_id",
};
static const char *const context_keys[] = { "agent_id", "session_id", "environment" };
static const char *const reasoning_keys[] = {
    "analysis", "options", "options_considered", "selected_option", "reasoning", "confidence",
    "model", "prompt_hash",
};
static const char *const authority_keys[] = {
    "type", "approver", "policy_reference", "chain", "escalation_reason",
};
static const char *const execution_keys[] = { "tool_calls", "duration_ms", "resources_used" };
static const char *const outcome_keys[] = {
    "status", "result", "summary", "error", "side_effects", "metrics",
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* True for exactly 64 lowercase hex chars. */
static int is_hash_hex(const char *s)
{
    size_t i;

    for (i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return s[64] == '\0';
}

int audit_time_iso(const struct timespec *ts, char *buf, size_t buflen)
{
    struct timespec now;
    struct tm tm;
    long usec;
    int n;

    if (!ts) {
        clock_gettime(CLOCK_REALTIME, &now);
        ts = &now;
    }
    if (!gmtime_r(&ts->tv_sec, &tm))
        return -EINVAL;
    usec = ts->tv_nsec / 1000;
    if (usec)
        n = snprintf(buf, buflen, "%04d-%02d-%02dT%02d:%02d:%02d.%06ld+00:00", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, usec);
    else
        n = snprintf(buf, buflen, "%04d-%02d-%02dT%02d:%02d:%02d+00:00", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (n < 0 || (size_t)n >= buflen)
        return -ENOSPC;
    return 0;
}

/* Read exactly n decimal digits at *s. -1 when they are not there. */
static int digits(const char **s, int n)
{
    int v = 0;

    while (n--) {
        if (**s < '0' || **s > '9')
            return -1;
        v = v * 10 + (**s - '0');
        (*s)++;
    }
    return v;
}

/* Expect the character c at *s. */
static int expect(const char **s, char c)
{
    if (**s != c)
        return -1;
    (*s)++;
    return 0;
}

int audit_time_normalize(const char *in, char *buf, size_t buflen)
{
    static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    const char *s = in;
    struct timespec ts;
    struct tm tm = { 0 };
    long usec = 0;
    int y, mo, d, h, mi, sec, dim, off = 0, fd = 0;

    y = digits(&s, 4);
    if (y < 1 || expect(&s, '-') < 0 || (mo = digits(&s, 2)) < 1 || mo > 12 ||
        expect(&s, '-') < 0 || (d = digits(&s, 2)) < 1 || expect(&s, 'T') < 0 ||
        (h = digits(&s, 2)) < 0 || h > 23 || expect(&s, ':') < 0 ||
        (mi = digits(&s, 2)) < 0 || mi > 59 || expect(&s, ':') < 0 ||
        (sec = digits(&s, 2)) < 0 || sec > 59)
        return -EINVAL;
    dim = mdays[mo - 1] + (mo == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
    if (d > dim)
        return -EINVAL;
    if (*s == '.') {
        s++;
        if (*s < '0' || *s > '9')
            return -EINVAL;
        while (*s >= '0' && *s <= '9') {
            if (fd < 6) {
                usec = usec * 10 + (*s - '0');
                fd++;
            }
            s++;
        }
        while (fd++ < 6)
            usec *= 10;
    }
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        int sign = *s == '-' ? -1 : 1, oh, om;

        s++;
        oh = digits(&s, 2);
        if (oh < 0 || oh > 23 || expect(&s, ':') < 0 || (om = digits(&s, 2)) < 0 || om > 59)
            return -EINVAL;
        off = sign * (oh * 3600 + om * 60);
    } else {
        return -EINVAL;
    }
    if (*s)
        return -EINVAL;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    ts.tv_sec = timegm(&tm) - off;
    ts.tv_nsec = usec * 1000;
    if (!gmtime_r(&ts.tv_sec, &tm) || tm.tm_year + 1900 < 1 || tm.tm_year + 1900 > 9999)
        return -EINVAL;
    return audit_time_iso(&ts, buf, buflen);
}

/* A random UUID v4 in lowercase. 0 or -EIO. */
static int uuid4(char out[37])
{
    unsigned char b[16];
    char hex[33];

    if (RAND_bytes(b, sizeof(b)) != 1)
        return audit_ossl_errno(-EIO);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    audit_hex(b, sizeof(b), hex);
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
    return 0;
}

/* The string member key of an entry, or NULL when it is missing or not a string. */
static const json_t *entry_string(const json_t *entry, const char *key)
{
    const json_t *v = json_object_get(entry, key);

    return json_is_string(v) ? v : NULL;
}

/* Check an audit entry's shape. 0 or -EINVAL with err filled. */
static int entry_check(const json_t *entry, char *err, size_t errlen)
{
    const char *key;
    const json_t *v;
    size_t i;

    if (!json_is_object(entry))
        return cu_errf(-EINVAL, err, errlen, "audit entry is not a JSON object");
    json_object_foreach((json_t *)entry, key, v) {
        for (i = 0; i < NELEM(entry_keys); i++)
            if (strcmp(key, entry_keys[i]) == 0)
                break;
        if (i == NELEM(entry_keys))
            return cu_errf(-EINVAL, err, errlen, "audit entry has an unknown key \"%s\"", key);
    }
    for (i = 0; i + 1 < NELEM(entry_keys); i++)
        if (!entry_string(entry, entry_keys[i]))
            return cu_errf(-EINVAL, err, errlen, "audit entry lacks the string \"%s\"",
                           entry_keys[i]);
    if (!json_is_object(json_object_get(entry, "details")))
        return cu_errf(-EINVAL, err, errlen, "audit entry lacks the object \"details\"");
    if (json_string_length(json_object_get(entry, "action")) == 0)
        return cu_errf(-EINVAL, err, errlen, "audit entry has an empty action");
    key = json_string_value(json_object_get(entry, "status"));
    if (strcmp(key, "success") != 0 && strcmp(key, "failure") != 0)
        return cu_errf(-EINVAL, err, errlen,
                       "audit entry status is \"%s\", not success or failure", key);
    return 0;
}

int audit_capsule_from_entry(const json_t *entry, int system_event, const char *hostname,
                             long long duration_ms, json_t **out, char *err, size_t errlen)
{
    const json_t *action, *message, *user;
    json_t *cap = NULL, *user_id = NULL, *tool_error = NULL, *out_error = NULL;
    char id[37], ts[AUDIT_TIME_MAX];
    json_error_t jerr;
    int rc, ok;

    *out = NULL;
    rc = entry_check(entry, err, errlen);
    if (rc < 0)
        goto out;
    if (!hostname || duration_ms < 0) {
        rc = cu_errf(-EINVAL, err, errlen, "no hostname or a negative duration");
        goto out;
    }
    if (audit_time_normalize(json_string_value(json_object_get(entry, "timestamp")), ts,
                             sizeof(ts)) < 0) {
        rc = cu_errf(-EINVAL, err, errlen, "audit entry timestamp \"%s\" is not an RFC 3339 time",
                     json_string_value(json_object_get(entry, "timestamp")));
        goto out;
    }
    rc = uuid4(id);
    if (rc < 0) {
        cu_errf(rc, err, errlen, "no randomness for a capsule id");
        goto out;
    }
    action = entry_string(entry, "action");
    message = entry_string(entry, "message");
    user = entry_string(entry, "user");
    ok = strcmp(json_string_value(json_object_get(entry, "status")), "success") == 0;
    user_id = system_event ? json_null()
                           : json_stringn(json_string_value(user), json_string_length(user));
    tool_error = ok ? json_null()
                    : json_stringn(json_string_value(message), json_string_length(message));
    out_error = json_copy(tool_error);
    if (!user_id || !tool_error || !out_error) {
        rc = cu_errf(-ENOMEM, err, errlen, "out of memory");
        goto out;
    }
    /* "o" steals its reference even when packing fails. */
    cap = json_pack_ex(&jerr, 0,
        "{s:s, s:s, s:s, s:n, s:I, s:n, s:s,"
        " s:{s:s, s:s%, s:s, s:s%, s:n, s:o},"
        " s:{s:s, s:n, s:{s:s}},"
        " s:{s:s, s:[], s:[], s:s, s:s, s:f, s:n, s:n},"
        " s:{s:s, s:n, s:n, s:[], s:n},"
        " s:{s:[{s:s%, s:o, s:n, s:b, s:I, s:o}], s:I, s:{}},"
        " s:{s:s, s:o, s:s%, s:o, s:[], s:{}}}",
        "id", id, "type", "system", "domain", "conduit", "parent_id", "sequence", 0LL,
        "previous_hash", "spec_version", "1.0",
        "trigger",
            "type", system_event ? "system" : "user_request",
            "source", json_string_value(user), json_string_length(user),
            "timestamp", ts,
            "request", json_string_value(message), json_string_length(message),
            "correlation_id",
            "user_id", user_id,
        "context",
            "agent_id", "qp-conduit", "session_id", "environment", "hostname", hostname,
        "reasoning",
            "analysis", "", "options", "options_considered", "selected_option", "",
            "reasoning", "", "confidence", 0.0, "model", "prompt_hash",
        "authority",
            "type", "autonomous", "approver", "policy_reference", "chain",
            "escalation_reason",
        "execution",
            "tool_calls",
                "tool", json_string_value(action), json_string_length(action),
                "arguments", json_deep_copy(json_object_get(entry, "details")),
                "result", "success", ok, "duration_ms", duration_ms, "error", tool_error,
            "duration_ms", duration_ms, "resources_used",
        "outcome",
            "status", ok ? "success" : "failure",
            "result", json_deep_copy(entry),
            "summary", json_string_value(message), json_string_length(message),
            "error", out_error,
            "side_effects", "metrics");
    user_id = tool_error = out_error = NULL;
    if (!cap) {
        rc = cu_errf(-ENOMEM, err, errlen, "cannot build the capsule: %s", jerr.text);
        goto out;
    }
    *out = cap;
out:
    json_decref(user_id);
    json_decref(tool_error);
    json_decref(out_error);
    return rc;
}

int audit_capsule_link(json_t *capsule, long long sequence, const char *previous_hash)
{
    json_t *prev;

    if (!json_is_object(capsule) || sequence < 0 || (sequence == 0) != (previous_hash == NULL))
        return -EINVAL;
    if (previous_hash && !is_hash_hex(previous_hash))
        return -EINVAL;
    prev = previous_hash ? json_string(previous_hash) : json_null();
    if (!prev)
        return -ENOMEM;
    if (json_object_set_new(capsule, "previous_hash", prev) < 0 ||
        json_object_set_new(capsule, "sequence", json_integer(sequence)) < 0)
        return -ENOMEM;
    return 0;
}

/* The hex SHA3-256 of canonical text. 0 or -EIO (OpenSSL). */
static int hash_text(const char *canon, size_t len, char hash[AUDIT_HASH_HEX])
{
    unsigned char md[DIGEST_LEN];
    unsigned int mdlen = 0;

    if (EVP_Digest(canon, len, md, &mdlen, EVP_sha3_256(), NULL) != 1)
        return audit_ossl_errno(-EIO);
    if (mdlen != DIGEST_LEN)
        return -EIO;
    audit_hex(md, DIGEST_LEN, hash);
    return 0;
}

int audit_capsule_hash(const json_t *capsule, char hash[AUDIT_HASH_HEX])
{
    char *canon = NULL;
    size_t len;
    int rc;

    rc = audit_canon(capsule, AUDIT_CANON_CAPSULE, &canon, &len);
    if (rc == 0)
        rc = hash_text(canon, len, hash);
    free(canon);
    return rc;
}

int audit_capsule_seal_canon(const struct audit_key *k, const char *canon, size_t len,
                             struct audit_seal *out)
{
    unsigned char sig[SIG_LEN];
    int rc;

    if (!k->can_sign)
        return -EINVAL;
    rc = hash_text(canon, len, out->hash);
    if (rc < 0)
        return rc;
    /* The signature covers the 64 ASCII hex chars of the hash, not the digest's bytes. */
    rc = audit_key_sign(k, (const unsigned char *)out->hash, AUDIT_HASH_HEX - 1, sig);
    if (rc < 0)
        return rc;
    audit_hex(sig, SIG_LEN, out->signature);
    memcpy(out->signed_by, k->id, sizeof(out->signed_by));
    return audit_time_iso(NULL, out->signed_at, sizeof(out->signed_at));
}

int audit_capsule_seal(const struct audit_key *k, const json_t *capsule, struct audit_seal *out)
{
    char *canon = NULL;
    size_t len;
    int rc;

    if (!k->can_sign)
        return -EINVAL;
    rc = audit_canon(capsule, AUDIT_CANON_CAPSULE, &canon, &len);
    if (rc == 0)
        rc = audit_capsule_seal_canon(k, canon, len, out);
    free(canon);
    return rc;
}

/* True when s is a UUID in 8-4-4-4-12 hex form. */
static int is_uuid(const char *s)
{
    size_t i;

    for (i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (audit_hex_digit(s[i]) < 0) {
            return 0;
        }
    }
    return s[36] == '\0';
}

/* Check that section is an object holding every key in keys. */
static int section_check(const json_t *cap, const char *name, const char *const *keys,
                         size_t nkeys, char *why, size_t whylen)
{
    const json_t *sec = json_object_get(cap, name);
    size_t i;

    if (!json_is_object(sec))
        return cu_errf(-EBADMSG, why, whylen, "%s is not an object", name);
    for (i = 0; i < nkeys; i++)
        if (!json_object_get(sec, keys[i]))
            return cu_errf(-EBADMSG, why, whylen, "%s.%s is missing", name, keys[i]);
    return 0;
}

int audit_capsule_check(const json_t *cap, char *why, size_t whylen)
{
    const json_t *v, *prev;
    char ts[AUDIT_TIME_MAX];
    json_int_t seq;
    double conf;
    size_t i;
    int rc;

    if (!json_is_object(cap))
        return cu_errf(-EBADMSG, why, whylen, "capsule is not a JSON object");
    for (i = 0; i < NELEM(top_keys); i++)
        if (!json_object_get(cap, top_keys[i]))
            return cu_errf(-EBADMSG, why, whylen, "capsule key %s is missing", top_keys[i]);
    v = json_object_get(cap, "id");
    if (!json_is_string(v) || !is_uuid(json_string_value(v)))
        return cu_errf(-EBADMSG, why, whylen, "id is not a UUID string");
    v = json_object_get(cap, "type");
    if (!json_is_string(v))
        return cu_errf(-EBADMSG, why, whylen, "type is not a string");
    for (i = 0; i < NELEM(capsule_types); i++)
        if (strcmp(json_string_value(v), capsule_types[i]) == 0)
            break;
    if (i == NELEM(capsule_types))
        return cu_errf(-EBADMSG, why, whylen, "unknown capsule type \"%s\"",
                       json_string_value(v));
    if (!json_is_string(json_object_get(cap, "domain")))
        return cu_errf(-EBADMSG, why, whylen, "domain is not a string");
    v = json_object_get(cap, "parent_id");
    if (!json_is_null(v) && !(json_is_string(v) && is_uuid(json_string_value(v))))
        return cu_errf(-EBADMSG, why, whylen, "parent_id is neither null nor a UUID string");
    v = json_object_get(cap, "sequence");
    if (!json_is_integer(v))
        return cu_errf(-EBADMSG, why, whylen, "sequence is not an integer");
    seq = json_integer_value(v);
    if (seq < 0)
        return cu_errf(-EBADMSG, why, whylen, "sequence %" JSON_INTEGER_FORMAT " is negative",
                       seq);
    prev = json_object_get(cap, "previous_hash");
    if (!json_is_null(prev) && !(json_is_string(prev) && is_hash_hex(json_string_value(prev))))
        return cu_errf(-EBADMSG, why, whylen, "previous_hash is neither null nor 64 hex chars");
    if (seq == 0 && !json_is_null(prev))
        return cu_errf(-EBADMSG, why, whylen, "genesis capsule has a previous_hash");
    if (seq != 0 && json_is_null(prev))
        return cu_errf(-EBADMSG, why, whylen, "capsule after genesis has no previous_hash");
    v = json_object_get(cap, "spec_version");
    if (!json_is_string(v) || json_string_length(v) == 0)
        return cu_errf(-EBADMSG, why, whylen, "spec_version is not a non-empty string");

    rc = section_check(cap, "trigger", trigger_keys, NELEM(trigger_keys), why, whylen);
    if (rc == 0)
        rc = section_check(cap, "context", context_keys, NELEM(context_keys), why, whylen);
    if (rc == 0)
        rc = section_check(cap, "reasoning", reasoning_keys, NELEM(reasoning_keys), why, whylen);
    if (rc == 0)
        rc = section_check(cap, "authority", authority_keys, NELEM(authority_keys), why, whylen);
    if (rc == 0)
        rc = section_check(cap, "execution", execution_keys, NELEM(execution_keys), why, whylen);
    if (rc == 0)
        rc = section_check(cap, "outcome", outcome_keys, NELEM(outcome_keys), why, whylen);
    if (rc < 0)
        return rc;

    v = json_object_get(cap, "trigger");
    if (!json_is_string(json_object_get(v, "type")))
        return cu_errf(-EBADMSG, why, whylen, "trigger.type is not a string");
    v = json_object_get(v, "timestamp");
    if (!json_is_string(v) || audit_time_normalize(json_string_value(v), ts, sizeof(ts)) < 0)
        return cu_errf(-EBADMSG, why, whylen, "trigger.timestamp is not a time with a zone");
    if (!json_is_object(json_object_get(json_object_get(cap, "context"), "environment")))
        return cu_errf(-EBADMSG, why, whylen, "context.environment is not an object");
    v = json_object_get(json_object_get(cap, "reasoning"), "confidence");
    if (!json_is_number(v))
        return cu_errf(-EBADMSG, why, whylen, "reasoning.confidence is not a number");
    conf = json_number_value(v);
    if (!(conf >= 0.0 && conf <= 1.0))
        return cu_errf(-EBADMSG, why, whylen, "reasoning.confidence %g is outside [0, 1]", conf);
    v = json_object_get(cap, "execution");
    if (!json_is_array(json_object_get(v, "tool_calls")))
        return cu_errf(-EBADMSG, why, whylen, "execution.tool_calls is not an array");
    if (!json_is_integer(json_object_get(v, "duration_ms")))
        return cu_errf(-EBADMSG, why, whylen, "execution.duration_ms is not an integer");
    if (!json_is_object(json_object_get(v, "resources_used")))
        return cu_errf(-EBADMSG, why, whylen, "execution.resources_used is not an object");
    return 0;
}

int audit_capsule_verify(const struct audit_key *k, const json_t *capsule, const char *hash,
                         const char *signature, char *why, size_t whylen)
{
    unsigned char sig[SIG_LEN];
    char computed[AUDIT_HASH_HEX];
    EVP_MD_CTX *ctx = NULL;
    int rc;

    rc = audit_capsule_check(capsule, why, whylen);
    if (rc < 0)
        return rc;
    if (!hash || !is_hash_hex(hash))
        return cu_errf(-EBADMSG, why, whylen, "stored hash is not 64 lowercase hex chars");
    if (audit_unhex(signature, sig, sizeof(sig)) < 0)
        return cu_errf(-EBADMSG, why, whylen, "stored signature is not 128 hex chars");
    rc = audit_capsule_hash(capsule, computed);
    if (rc < 0)
        return cu_errf(rc, why, whylen, "cannot hash the capsule: %s", strerror(-rc));
    if (strcmp(computed, hash) != 0)
        return cu_errf(-EBADMSG, why, whylen,
                       "content hash mismatch: stored %.16s..., computed %.16s...", hash,
                       computed);
    ctx = EVP_MD_CTX_new();
    if (!ctx)
        return cu_errf(audit_ossl_errno(-ENOMEM), why, whylen, "out of memory");
    if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k->pkey) != 1) {
        rc = cu_errf(audit_ossl_errno(-EIO), why, whylen,
                     "OpenSSL cannot set up Ed25519 verification");
        goto out;
    }
    if (EVP_DigestVerify(ctx, sig, sizeof(sig), (const unsigned char *)hash,
                         AUDIT_HASH_HEX - 1) != 1) {
        rc = audit_ossl_errno(-EBADMSG);
        if (rc == -ENOMEM)
            cu_errf(rc, why, whylen, "out of memory");
        else
            cu_errf(rc, why, whylen, "Ed25519 signature does not verify with key %s", k->id);
        goto out;
    }
out:
    EVP_MD_CTX_free(ctx);
    return rc;
}
