/* test_canon.c: CPS canonical JSON against the 16 golden vectors, Python's escapes and reprs,
 * and the audit.log form (own key order, jansson's ASCII escapes, the same reprs); the portable
 * subset both CPS references canonicalize alike (JSON.stringify numbers, UTF-16 key order). */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "audit/canon.h"
#include "audit/capsule.h"
#include "testlib.h"

#define VECTORS TEST_SHARED_DIR "/fixtures/cps-golden-vectors.json"

/* Canonical form of v (with flags) compared to want. */
static void check_canon(const json_t *v, unsigned flags, const char *want, const char *what)
{
    char *out = NULL;
    size_t len = 0;
    int rc = audit_canon(v, flags, &out, &len);

    CHECKF(rc == 0, "%s: rc %d", what, rc);
    if (rc == 0) {
        CHECKF(strcmp(out, want) == 0, "%s:\n got  %s\n want %s", what, out, want);
        CHECKF(len == strlen(want), "%s: len %zu", what, len);
    }
    free(out);
}

/* Parse text (NUL allowed) and check its canonical form. */
static void check_text(const char *text, unsigned flags, const char *want)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_ALLOW_NUL, &jerr);

    CHECKF(v != NULL, "parse %s: %s", text, jerr.text);
    if (v)
        check_canon(v, flags, want, text);
    json_decref(v);
}

static void sha3_hex(const char *s, size_t len, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[32];
    unsigned int mdlen = 0;
    int i;

    EVP_Digest(s, len, md, &mdlen, EVP_sha3_256(), NULL);
    for (i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 0xf];
    }
    out[64] = '\0';
}

/* Every golden vector: canonical bytes and SHA3-256, byte for byte. */
static void test_golden_vectors(void)
{
    json_error_t jerr;
    json_t *root = json_load_file(VECTORS, 0, &jerr), *fixtures, *f;
    size_t i;

    CHECKF(root != NULL, "cannot load %s: %s", VECTORS, jerr.text);
    if (!root)
        return;
    fixtures = json_object_get(root, "fixtures");
    CHECK_INT(json_array_size(fixtures), 16);
    json_array_foreach(fixtures, i, f) {
        const char *name = json_string_value(json_object_get(f, "name"));
        const char *want = json_string_value(json_object_get(f, "canonical_json"));
        const char *want_hash = json_string_value(json_object_get(f, "sha3_256_hash"));
        const json_t *dict = json_object_get(f, "capsule_dict");
        char hash[65], hash2[AUDIT_HASH_HEX];
        char *out = NULL;
        size_t len = 0;

        CHECKF(name && want && want_hash && dict, "fixture %zu is incomplete", i);
        if (!name || !want || !want_hash || !dict)
            continue;
        CHECK_INT(audit_canon(dict, AUDIT_CANON_CAPSULE, &out, &len), 0);
        if (!out)
            continue;
        CHECKF(len == strlen(want) && memcmp(out, want, len) == 0,
               "vector %s:\n got  %s\n want %s", name, out, want);
        sha3_hex(out, len, hash);
        CHECKF(strcmp(hash, want_hash) == 0, "vector %s: hash %s want %s", name, hash,
               want_hash);
        CHECK_INT(audit_capsule_hash(dict, hash2), 0);
        CHECKF(strcmp(hash2, want_hash) == 0, "vector %s: capsule hash %s", name, hash2);
        free(out);
    }
    json_decref(root);
}

/* Python's json.dumps(ensure_ascii=False) escapes: only '"', '\\' and C0 controls. */
static void test_strings(void)
{
    json_t *o;

    check_text("{\"s\":\"q\\\"b\\\\s\\/n\\nr\\rt\\tb\\bf\\f\\u0001\\u001f\\u007f "
               "\\u00e9\\u20ac\\ud83d\\ude00\\u2028\"}", 0,
               "{\"s\":\"q\\\"b\\\\s/n\\nr\\rt\\tb\\bf\\f\\u0001\\u001f\x7f "
               "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xe2\x80\xa8\"}");
    check_text("[\"a\\u0000b\"]", 0, "[\"a\\u0000b\"]");
    /* Keys sort bytewise on UTF-8, which is code point order; a prefix sorts first. */
    o = json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "b", 1, "a", 2, "ab", 3,
                  "\xc3\xa9", 4, "z", 5, "A", 6, "", 7);
    json_object_setn_new(o, "a\0b", 3, json_integer(8));
    check_canon(o, 0, "{\"\":7,\"A\":6,\"a\":2,\"a\\u0000b\":8,\"ab\":3,\"b\":1,\"z\":5,"
                "\"\xc3\xa9\":4}", "key order");
    json_decref(o);
    /* Keys above U+FFFF sort after U+FFFF by code point (UTF-16 order would differ). */
    check_text("{\"\\ud83d\\ude00\":1,\"\\uffff\":2}", 0,
               "{\"\xef\xbf\xbf\":2,\"\xf0\x9f\x98\x80\":1}");
}

static void test_scalars(void)
{
    check_text("{\"e\":{},\"a\":[],\"n\":[null,true,false,0,-1,9223372036854775807,"
               "-9223372036854775808]}", 0,
               "{\"a\":[],\"e\":{},\"n\":[null,true,false,0,-1,9223372036854775807,"
               "-9223372036854775808]}");
    check_text(" [ 1 , { \"b\" : [ ] , \"a\" : { } } ] ", 0, "[1,{\"a\":{},\"b\":[]}]");
    check_text("{\"deep\":{\"z\":{\"y\":1,\"x\":2},\"a\":[{\"d\":1,\"c\":2}]}}", 0,
               "{\"deep\":{\"a\":[{\"c\":2,\"d\":1}],\"z\":{\"x\":2,\"y\":1}}}");
}

/* Reals in Python repr form; the expected strings come from CPython's repr(). */
static void test_reals(void)
{
    static const struct { double d; const char *want; } cases[] = {
        { 1.0, "1.0" }, { 100.0, "100.0" }, { 0.1, "0.1" }, { 1e-05, "1e-05" },
        { 0.0001, "0.0001" }, { 1e16, "1e+16" }, { 1.5e16, "1.5e+16" },
        { 1e15, "1000000000000000.0" }, { 123456789012345678.0, "1.2345678901234568e+17" },
        { -0.0, "-0.0" }, { 0.0, "0.0" }, { 0.0042, "0.0042" }, { 2.5, "2.5" },
        { 5e-324, "5e-324" }, { 1.7976931348623157e308, "1.7976931348623157e+308" },
        { 1e22, "1e+22" }, { 1.0 / 3.0, "0.3333333333333333" }, { 0.95, "0.95" },
        { -1.5e-7, "-1.5e-07" }, { 9999999999999998.0, "9999999999999998.0" },
        /* Powers of two, where the shortest digits are not the correctly rounded ones. */
        { 0x1p-1017, "7.120236347223045e-307" }, { 0x1p-1007, "7.291122019556398e-304" },
        { 0x1p-957, "8.209073602596753e-289" },
    };
    char buf[AUDIT_CANON_REAL_MAX];
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int n = audit_canon_real(cases[i].d, buf, sizeof(buf));

        CHECKF(n > 0 && strcmp(buf, cases[i].want) == 0, "repr of %.17g: got %s want %s",
               cases[i].d, n > 0 ? buf : "(error)", cases[i].want);
    }
    CHECK_INT(audit_canon_real(NAN, buf, sizeof(buf)), -EINVAL);
    CHECK_INT(audit_canon_real(INFINITY, buf, sizeof(buf)), -EINVAL);
    CHECK_INT(audit_canon_real(-INFINITY, buf, sizeof(buf)), -EINVAL);
    CHECK_INT(audit_canon_real(0.1, buf, 3), -ENOSPC);
    check_text("[1.0,1e5,2.50,-0.0,1E-7]", 0, "[1.0,100000.0,2.5,-0.0,1e-07]");
}

/* confidence and feasibility are float-typed in a capsule: an integer gets ".0". */
static void test_float_typed(void)
{
    const char *in = "{\"reasoning\":{\"confidence\":1,\"options\":[{\"feasibility\":0,"
                     "\"n\":1},{\"feasibility\":0.5}],\"x\":1},\"confidence\":1,"
                     "\"other\":{\"reasoning\":{\"confidence\":1}}}";

    check_text(in, AUDIT_CANON_CAPSULE,
               "{\"confidence\":1,\"other\":{\"reasoning\":{\"confidence\":1}},"
               "\"reasoning\":{\"confidence\":1.0,\"options\":[{\"feasibility\":0.0,\"n\":1},"
               "{\"feasibility\":0.5}],\"x\":1}}");
    check_text(in, 0,
               "{\"confidence\":1,\"other\":{\"reasoning\":{\"confidence\":1}},"
               "\"reasoning\":{\"confidence\":1,\"options\":[{\"feasibility\":0,\"n\":1},"
               "{\"feasibility\":0.5}],\"x\":1}}");
}

/* Canonical output parses back to a tree with the same canonical output. */
static void test_idempotent(void)
{
    json_error_t jerr;
    json_t *root = json_load_file(VECTORS, 0, &jerr), *f;
    size_t i;

    if (!root)
        return;
    json_array_foreach(json_object_get(root, "fixtures"), i, f) {
        const char *want = json_string_value(json_object_get(f, "canonical_json"));
        json_t *again = want ? json_loads(want, 0, &jerr) : NULL;

        CHECK(again != NULL);
        if (again)
            check_canon(again, AUDIT_CANON_CAPSULE, want, "reparsed vector");
        json_decref(again);
    }
    json_decref(root);
}

/* More reals whose %.17g form differs from repr (4.35 was logged as 4.3499999999999996); the
 * expected strings are CPython 3.11's repr(). */
static void test_reals_shortest(void)
{
    static const struct { double d; const char *want; } cases[] = {
        { 4.35, "4.35" }, { -4.35, "-4.35" }, { 0.3, "0.3" }, { 2.675, "2.675" },
        { 1.1, "1.1" }, { 0.1 + 0.2, "0.30000000000000004" }, { 100.25, "100.25" },
        { 123.456, "123.456" }, { 1e-07, "1e-07" }, { 3.14159, "3.14159" }, { 2.0, "2.0" },
        { 1e23, "1e+23" }, { 1.2e-310, "1.2e-310" }, { 0.000123, "0.000123" },
        { 12345678.9, "12345678.9" }, { 6.02214076e23, "6.02214076e+23" },
        { 9007199254740993.0, "9007199254740992.0" }, { 0.01, "0.01" }, { 99.99, "99.99" },
        { 5e-05, "5e-05" }, { 1234567890123456.7, "1234567890123456.8" },
        { 1.5e-323, "1.5e-323" }, { 1.0 / 7.0, "0.14285714285714285" },
        { 2.0 / 3.0, "0.6666666666666666" }, { 1.7e300, "1.7e+300" },
        { 4.35e100, "4.35e+100" }, { 0.07, "0.07" }, { 1.005, "1.005" },
    };
    char buf[AUDIT_CANON_REAL_MAX];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int n = audit_canon_real(cases[i].d, buf, sizeof(buf));

        CHECKF(n > 0 && strcmp(buf, cases[i].want) == 0, "repr of %.17g: got %s want %s",
               cases[i].d, n > 0 ? buf : "(error)", cases[i].want);
    }
}

/* Deterministic random doubles (all exponents) through audit_canon_real and through python3's
 * repr(float.fromhex(...)), when python3 is there; always: the text reads back as the same double.
 */
static void test_reals_random(void)
{
    char path[] = "/tmp/test_canon.XXXXXX", cmd[256], want[64], buf[AUDIT_CANON_REAL_MAX];
    enum { N = 3000 };
    static double vals[N];
    uint64_t x = 0x9e3779b97f4a7c15ull;
    int fd = mkstemp(path), compared = 0;
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL, *py;

    CHECK(f != NULL);
    for (int i = 0; i < N; i++) {
        uint64_t bits;
        double d;

        do {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            bits = x;
            if (i % 3 == 1) {       /* short decimals too: k / 10^j */
                double p10 = 1.0;

                for (uint64_t j = x >> 60; j > 0; j--)
                    p10 *= 10.0;
                d = (double)(x % 100000) / p10;
            } else {
                memcpy(&d, &bits, sizeof(d));
            }
        } while (!isfinite(d));
        vals[i] = d;
        if (f)
            fprintf(f, "%a\n", d);
        int n = audit_canon_real(d, buf, sizeof(buf));

        CHECKF(n > 0 && strtod(buf, NULL) == d && signbit(strtod(buf, NULL)) == signbit(d),
               "%a gave %s", d, n > 0 ? buf : "(error)");
    }
    if (f)
        fclose(f);
    snprintf(cmd, sizeof(cmd), "python3 -c 'import sys\nfor l in sys.stdin: "
             "print(repr(float.fromhex(l)))' < %s 2>/dev/null", path);
    py = popen(cmd, "r");
    for (int i = 0; py && i < N && fgets(want, sizeof(want), py); i++) {
        want[strcspn(want, "\n")] = '\0';
        audit_canon_real(vals[i], buf, sizeof(buf));
        CHECKF(strcmp(buf, want) == 0, "repr of %a: got %s, python says %s", vals[i], buf, want);
        compared++;
    }
    if (py && pclose(py) == 0)
        CHECKF(compared == N, "python3 gave %d of %d reprs", compared, N);
    else
        printf("python3 not available: random reals checked for round trip only\n");
    unlink(path);
}

/* The audit.log form: AUDIT_CANON_ORDER | AUDIT_CANON_ASCII gives jansson's bytes
 * (json_dumps with JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII) wherever jansson
 * and repr agree, and repr's reals where they do not. */
static void test_log_form(void)
{
    const unsigned fl = AUDIT_CANON_ORDER | AUDIT_CANON_ASCII;
    json_t *v = json_pack("{s:s,s:s,s:i,s:[b,n,s],s:{s:s,s:i}}", "zeta", "\x01\t\"\\/\x7f",
                          "alpha", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "mid", -7,
                          "arr", 1, "x\n", "obj", "b", "\xc3\xa9", "a", 1);
    json_t *r = json_loads("{\"timestamp\":\"t\",\"action\":\"x\",\"details\":{\"v\":4.35,"
                           "\"w\":[1e16,1e-05,0.1,2.0,-0.0,123456789012345678]}}", 0, NULL);
    char *jt;

    CHECK(v != NULL && r != NULL);
    jt = v ? json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII) : NULL;
    if (jt)
        check_canon(v, fl, jt, "log form = jansson without reals");
    free(jt);
    if (v)
        check_canon(v, AUDIT_CANON_ORDER,
                    "{\"zeta\":\"\\u0001\\t\\\"\\\\/\x7f\",\"alpha\":\"caf\xc3\xa9 \xe2\x82\xac "
                    "\xf0\x9f\x98\x80\",\"mid\":-7,\"arr\":[true,null,\"x\\n\"],"
                    "\"obj\":{\"b\":\"\xc3\xa9\",\"a\":1}}", "own order, literal UTF-8");
    if (r)
        check_canon(r, fl, "{\"timestamp\":\"t\",\"action\":\"x\",\"details\":{\"v\":4.35,"
                    "\"w\":[1e+16,1e-05,0.1,2.0,-0.0,123456789012345678]}}", "log form reals");
    json_decref(v);
    json_decref(r);
    /* A string that is not UTF-8 (only json_stringn_nocheck makes one) is refused. */
    v = json_pack("{s:o}", "k", json_stringn_nocheck("\xff", 1));
    char *out = (char *)1;

    CHECK_INT(audit_canon(v, fl, &out, NULL), -EINVAL);
    CHECK(out == NULL);
    json_decref(v);
}

static void test_errors(void)
{
    json_t *deep = json_array(), *cur = deep;
    char *out = (char *)1;
    size_t len;
    int i;

    for (i = 0; i < 3000; i++) {
        json_t *next = json_array();

        json_array_append_new(cur, next);
        cur = next;
    }
    CHECK_INT(audit_canon(deep, 0, &out, &len), -EINVAL);
    CHECK(out == NULL);
    json_decref(deep);
    CHECK_INT(audit_canon(NULL, 0, &out, &len), -EINVAL);
}

/* ---- the portable subset ---- */

/* d in the TypeScript reference's form (JSON.stringify; float_field: confidence, feasibility). */
static void check_js(double d, int float_field, const char *want)
{
    char buf[AUDIT_CANON_REAL_MAX];
    int n = audit_canon_real_js(d, float_field, buf, sizeof(buf));

    CHECKF(n >= 0 && strcmp(buf, want) == 0 && (size_t)n == strlen(want),
           "js %.17g (%d): got \"%s\" want \"%s\"", d, float_field, n >= 0 ? buf : "?", want);
}

/* Number::toString: positional from 1e-6 to below 1e21, "e-7" without zero padding, "e+21",
 * no ".0", -0 as 0; float-typed fields add ".0" to an integral value. */
static void test_real_js(void)
{
    char buf[AUDIT_CANON_REAL_MAX];

    check_js(0.1, 0, "0.1");
    check_js(4.35, 0, "4.35");
    check_js(-4.35, 0, "-4.35");
    check_js(2.0, 0, "2");
    check_js(-0.0, 0, "0");
    check_js(0.0, 0, "0");
    check_js(1e-5, 0, "0.00001");
    check_js(1e-6, 0, "0.000001");
    check_js(1.5e-7, 0, "1.5e-7");
    check_js(1e-7, 0, "1e-7");
    check_js(1e16, 0, "10000000000000000");
    check_js(1e20, 0, "100000000000000000000");
    check_js(1e21, 0, "1e+21");
    check_js(1e22, 0, "1e+22");
    check_js(1.2345678901234568e+20, 0, "123456789012345680000");
    check_js(123456.789, 0, "123456.789");
    check_js(0.30000000000000004, 0, "0.30000000000000004");
    check_js(5e-324, 0, "5e-324");
    check_js(1.7976931348623157e308, 0, "1.7976931348623157e+308");
    check_js(-2.5e-10, 0, "-2.5e-10");
    check_js(1.0, 1, "1.0");
    check_js(0.0, 1, "0.0");
    check_js(-0.0, 1, "0.0");
    check_js(0.95, 1, "0.95");
    check_js(5e-5, 1, "0.00005");
    CHECK_INT(audit_canon_real_js(NAN, 0, buf, sizeof(buf)), -EINVAL);
    CHECK_INT(audit_canon_real_js(1e-7, 0, buf, 3), -ENOSPC);
}

/* audit_canon_portable of text (flags) must be rc, and its reason must hold want. */
static void check_portable(const char *text, unsigned flags, int rc, const char *want)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_ALLOW_NUL, &jerr);
    char why[400] = "";
    int got;

    CHECKF(v != NULL, "parse %s: %s", text, jerr.text);
    if (!v)
        return;
    got = audit_canon_portable(v, flags, "details", why, sizeof(why));
    CHECKF(got == rc, "portable %s: rc %d want %d (%s)", text, got, rc, why);
    if (want)
        CHECKF(strstr(why, want) != NULL, "portable %s: reason \"%s\" lacks \"%s\"", text, why,
               want);
    json_decref(v);
}

/* The table of the issue: every kind the references write differently is refused with its
 * reason, at any depth; every value they agree on is accepted. */
static void test_portable_table(void)
{
    static const struct {
        const char *text, *why;
    } refused[] = {
        { "{\"v\":2.0}", "details.v: an integral real (Python writes 2.0, JavaScript 2)" },
        { "{\"v\":1e-05}", "details.v: a real in exponent form for one reference only "
                           "(Python writes 1e-05, JavaScript 0.00001" },
        { "{\"v\":0.00001}", "Python writes 1e-05, JavaScript 0.00001" },
        { "{\"v\":0.000001}", "Python writes 1e-06, JavaScript 0.000001" },
        { "{\"v\":1.5e-7}", "Python writes 1.5e-07, JavaScript 1.5e-7" },
        { "{\"v\":1e16}", "Python writes 1e+16, JavaScript 10000000000000000" },
        { "{\"v\":1e+20}", "Python writes 1e+20, JavaScript 100000000000000000000" },
        { "{\"v\":-0.0}", "details.v: -0.0 (Python writes -0.0, JavaScript 0)" },
        { "{\"v\":9007199254740993}", "details.v: an integer beyond +-(2^53-1) (Python writes "
                                      "9007199254740993, JavaScript 9007199254740992)" },
        { "{\"v\":-9007199254740992}", "an integer beyond" },
        { "{\"v\":{\"\\ud800\\udc00\":1,\"\\ue000\":2}}",
          "details.v: keys that mix code points from U+10000 up with U+E000..U+FFFF" },
        { "{\"v\":{\"a\\uffff\":1,\"a\\ud83d\\ude00\":2}}", "details.v: keys that mix" },
        { "{\"a\":[1,{\"b\":[0.5,2.0]}]}", "details.a[1].b[1]: an integral real" },
        { "{\"a\":[[[-0.0]]]}", "details.a[0][0][0]: -0.0" },
        { "{\"a\":{\"b\":{\"\\ud83d\\ude00\":1,\"\\uf8ff\":1}}}", "details.a.b: keys that mix" },
        { "{\"\\u00e9\\u0001\":{\"x\":2.5e-5}}", "details.???.x: a real in exponent form" },
    };
    static const char *const accepted[] = {
        "{\"v\":0.1}", "{\"v\":4.35}", "{\"v\":1e+22}", "{\"v\":1e21}", "{\"v\":-0.5}",
        "{\"v\":0.0001}", "{\"v\":123456.789}", "{\"v\":1e300}", "{\"v\":-1e-300}",
        "{\"v\":0.30000000000000004}",
        "{\"v\":0}", "{\"v\":-0}", "{\"v\":42}", "{\"v\":-17}",
        "{\"v\":9007199254740991}", "{\"v\":-9007199254740991}",
        "{\"v\":\"tab\\t quote\\\" backslash\\\\ nul\\u0000 ctl\\u001f\"}",
        "{\"v\":\"caf\\u00e9 \\u65e5\\u672c \\ud83d\\ude00\"}", "{\"v\":\"\\u2028\\u2029\"}",
        "{\"v\":true,\"w\":false,\"x\":null}",
        "{\"\\ue000\":1,\"a\":2,\"\\uffff\":3,\"\\u00e9\":4}",
        "{\"\\ud83d\\ude00\":1,\"\\ud800\\udc00\":2,\"\\udbff\\udfff\":3}",
        "{\"\\ud83d\\ude00\":1,\"a\":2,\"\\u00e9\":3,\"\\ud7ff\":4}",
        "{\"a\":[1,{\"b\":[0.5,{\"c\":4.35}]}],\"d\":{}}", "{}", "[]",
    };
    size_t i;

    for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        check_portable(refused[i].text, 0, -EINVAL, refused[i].why);
    for (i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++)
        check_portable(accepted[i], 0, 0, NULL);
    /* capsule dicts: confidence and feasibility are floats on both sides */
    check_portable("{\"reasoning\":{\"confidence\":1.0,\"options\":[{\"feasibility\":0}]}}",
                   AUDIT_CANON_CAPSULE, 0, NULL);
    check_portable("{\"reasoning\":{\"confidence\":0.00005}}", AUDIT_CANON_CAPSULE, -EINVAL,
                   "details.reasoning.confidence: a real in exponent form");
    check_portable("{\"reasoning\":{\"confidence\":-0.0}}", AUDIT_CANON_CAPSULE, -EINVAL,
                   "details.reasoning.confidence: -0.0");
    check_portable("{\"reasoning\":{\"confidence\":1}}", 0, 0, NULL);
    check_portable("{\"reasoning\":{\"confidence\":1.0}}", 0, -EINVAL, "an integral real");
}

/* Every golden vector lies in the portable subset (the TypeScript reference passes them). */
static void test_portable_golden(void)
{
    json_t *root = json_load_file(VECTORS, 0, NULL), *f;
    char why[400];
    size_t i;

    CHECK(root != NULL);
    json_array_foreach(json_object_get(root, "fixtures"), i, f)
        CHECKF(audit_canon_portable(json_object_get(f, "capsule_dict"), AUDIT_CANON_CAPSULE,
                                    NULL, why, sizeof(why)) == 0, "vector %zu: %s", i, why);
    json_decref(root);
}

/* The daemon's safety net: numbers made portable in place, keys left alone. */
static void test_portable_fix(void)
{
    json_t *v = json_loads("{\"a\":2.0,\"b\":-0.0,\"c\":1e-05,\"d\":[1e16,0.1,9007199254740993],"
                           "\"e\":{\"f\":3.0,\"g\":\"2.0\"},\"h\":1e22,\"i\":5}", 0, NULL);
    char *out = NULL;
    size_t len;

    CHECK(v != NULL);
    CHECK_INT(audit_canon_portable_fix(v), 6);
    CHECK_INT(audit_canon_portable(v, 0, NULL, NULL, 0), 0);
    CHECK_INT(audit_canon(v, 0, &out, &len), 0);
    if (out)
        CHECK_STR(out, "{\"a\":2,\"b\":0,\"c\":\"1e-05\",\"d\":[\"1e+16\",0.1,"
                       "\"9007199254740993\"],\"e\":{\"f\":3,\"g\":\"2.0\"},\"h\":1e+22,\"i\":5}");
    free(out);
    CHECK_INT(audit_canon_portable_fix(v), 0);
    json_decref(v);
}

int main(void)
{
    test_golden_vectors();
    test_strings();
    test_scalars();
    test_reals();
    test_reals_shortest();
    test_reals_random();
    test_log_form();
    test_float_typed();
    test_idempotent();
    test_errors();
    test_real_js();
    test_portable_table();
    test_portable_golden();
    test_portable_fix();
    return tl_finish();
}
