/* canon.c: CPS 1.0 canonical JSON: sorted keys, no whitespace, literal UTF-8, Python-repr reals;
 * and the portable subset that the TypeScript reference (JSON.stringify) writes alike.
 * It is one concern, the canonical form, and long because of it: the writer and the check (and
 * fix) of the portable subset walk the same values with the same key order, field roles and
 * number rules (Python's repr against JavaScript's shortest round trip), so they share those
 * internals here rather than through a header. */
#include "audit/canon.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

#define CANON_MAX_DEPTH 2048
#define REPR_MAX_DIGITS 17

/* Where a node sits in a capsule dict, for the float-typed fields. */
enum role {
    ROLE_PLAIN,     /* no special meaning */
    ROLE_ROOT,      /* the capsule dict itself */
    ROLE_REASONING, /* capsule["reasoning"] */
    ROLE_OPTIONS,   /* capsule["reasoning"]["options"] */
    ROLE_OPTION,    /* one element of options */
    ROLE_FLOAT,     /* confidence or feasibility: an integer is written as a real */
};

/* A growing output buffer with a sticky error, and the caller's AUDIT_CANON_* flags. */
struct obuf {
    char *p;
    size_t len, cap;
    int err;
    unsigned flags;
};

/* One object member, for sorting. */
struct member {
    const char *key;
    size_t keylen;
    json_t *value;
};

static void put(struct obuf *b, const char *s, size_t n)
{
    if (b->err)
        return;
    if (n + 1 > SIZE_MAX - b->len || cu_grow(&b->p, &b->cap, b->len + n + 1) < 0) {
        b->err = -ENOMEM;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(struct obuf *b, const char *s)
{
    put(b, s, strlen(s));
}

/* Write d rounded to prec significant digits as a digit string and a decimal exponent
 * (d = D.DDD x 10^exp). d is finite and positive. */
static void round_digits(double d, int prec, char *dig, int *exp)
{
    char tmp[64];
    const char *s = tmp;
    size_t n = 0;

    snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, d);
    while (*s && *s != 'e') {
        if (*s >= '0' && *s <= '9')
            dig[n++] = *s;
        s++;
    }
    dig[n] = '\0';
    *exp = (*s == 'e') ? atoi(s + 1) : 0;
}

/* Step a digit string by one unit in its last place (dir +1 or -1), renormalizing the
 * exponent when the leading digit carries or borrows across a decade. */
static void step_digits(char *dig, int *exp, int dir)
{
    size_t n = strlen(dig), i = n;

    while (i > 0) {
        i--;
        if (dir > 0) {
            if (dig[i] != '9') {
                dig[i]++;
                return;
            }
            dig[i] = '0';
        } else {
            if (dig[i] != '0') {
                dig[i]--;
                break;
            }
            dig[i] = '9';
        }
    }
    if (dir > 0) {
        /* 9.99 + 0.01 = 10.0: one digit more, keep the width. */
        dig[0] = '1';
        for (i = 1; i < n; i++)
            dig[i] = '0';
        (*exp)++;
    } else if (dig[0] == '0') {
        /* 1.00 - 0.01 = 0.99: the next lower value of this width is 9.99 x 10^(exp-1). */
        for (i = 0; i < n; i++)
            dig[i] = '9';
        (*exp)--;
    }
}

/* True when the decimal dig x 10^exp reads back as exactly d. */
static int round_trips(const char *dig, int exp, double d)
{
    char tmp[64];

    snprintf(tmp, sizeof(tmp), "%c.%se%d", dig[0], dig + 1, exp);
    return strtod(tmp, NULL) == d;
}

/* Shortest digits that read back as d (David Gay's mode 0, as Python repr uses), trailing zeros
 * removed. Candidates at each width are the correctly rounded value and its two neighbours: a
 * neighbour wins only at a power of two, where the rounding interval is lopsided. */
static void shortest_digits(double d, char *dig, int *exp)
{
    int prec;

    for (prec = 1; prec <= REPR_MAX_DIGITS; prec++) {
        char cand[3][REPR_MAX_DIGITS + 2];
        int cexp[3], i;

        round_digits(d, prec, cand[0], &cexp[0]);
        for (i = 1; i < 3; i++) {
            memcpy(cand[i], cand[0], sizeof(cand[0]));
            cexp[i] = cexp[0];
            step_digits(cand[i], &cexp[i], i == 1 ? 1 : -1);
        }
        for (i = 0; i < 3; i++) {
            if (round_trips(cand[i], cexp[i], d)) {
                size_t n = strlen(cand[i]);

                while (n > 1 && cand[i][n - 1] == '0')
                    n--;
                memcpy(dig, cand[i], n);
                dig[n] = '\0';
                *exp = cexp[i];
                return;
            }
        }
    }
    /* Unreachable: 17 significant digits always round-trip a double. */
    round_digits(d, REPR_MAX_DIGITS, dig, exp);
}

int audit_canon_real(double d, char *buf, size_t buflen)
{
    char dig[REPR_MAX_DIGITS + 2], out[AUDIT_CANON_REAL_MAX];
    size_t n = 0, nd, i;
    int exp;

    if (!isfinite(d))
        return -EINVAL;
    if (signbit(d))
        out[n++] = '-';
    d = fabs(d);
    if (d == 0.0) {
        memcpy(out + n, "0.0", 4);
        n += 3;
        goto done;
    }
    shortest_digits(d, dig, &exp);
    nd = strlen(dig);
    if (exp >= -4 && exp < 16) {
        if (exp >= 0) {
            for (i = 0; i <= (size_t)exp; i++)
                out[n++] = i < nd ? dig[i] : '0';
            out[n++] = '.';
            if (nd > (size_t)exp + 1) {
                memcpy(out + n, dig + exp + 1, nd - (size_t)exp - 1);
                n += nd - (size_t)exp - 1;
            } else {
                out[n++] = '0';
            }
        } else {
            out[n++] = '0';
            out[n++] = '.';
            for (i = 0; i < (size_t)(-exp - 1); i++)
                out[n++] = '0';
            memcpy(out + n, dig, nd);
            n += nd;
        }
        out[n] = '\0';
    } else {
        int w;

        out[n++] = dig[0];
        if (nd > 1) {
            out[n++] = '.';
            memcpy(out + n, dig + 1, nd - 1);
            n += nd - 1;
        }
        w = snprintf(out + n, sizeof(out) - n, "e%c%02d", exp < 0 ? '-' : '+',
                     exp < 0 ? -exp : exp);
        if (w < 0 || (size_t)w >= sizeof(out) - n)
            return -EINVAL;
        n += (size_t)w;
    }
done:
    if (n + 1 > buflen)
        return -ENOSPC;
    memcpy(buf, out, n + 1);
    return (int)n;
}

/* Decode one UTF-8 sequence at s[0..n) into *cp. Its length, or 0 when it is not valid UTF-8
 * (jansson strings always are; this guards against a tree built with json_stringn_nocheck). */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    size_t len, i;
    uint32_t c;

    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
        c = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        c = s[0] & 0x0f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        c = s[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) ||
        (len == 4 && (c < 0x10000 || c > 0x10ffff)))
        return 0;
    *cp = c;
    return len;
}

/* Write a JSON string. Without ascii: only '"', '\\' and C0 controls are escaped, the way
 * Python does with ensure_ascii=False (short forms for \b \f \n \r \t, else \u00xx in
 * lowercase hex). With ascii: as jansson's JSON_ENSURE_ASCII, which also writes every non-ASCII
 * code point as \uXXXX (uppercase hex, a surrogate pair above U+FFFF), controls included. */
static void put_string(struct obuf *b, const char *s, size_t n, bool ascii)
{
    static const char lhex[] = "0123456789abcdef", uhex[] = "0123456789ABCDEF";
    const char *hex = ascii ? uhex : lhex;
    size_t i = 0, run = 0;

    put(b, "\"", 1);
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        char esc[13];
        size_t elen = 2, clen = 1;
        uint32_t cp = c;

        if (c >= 0x20 && c != '"' && c != '\\' && (c < 0x80 || !ascii)) {
            i++;
            continue;
        }
        if (c >= 0x80) {
            clen = utf8_decode((const unsigned char *)s + i, n - i, &cp);
            if (clen == 0) {
                if (!b->err)
                    b->err = -EINVAL;
                return;
            }
        }
        put(b, s + run, i - run);
        i += clen;
        run = i;
        esc[0] = '\\';
        switch (cp) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            if (cp >= 0x10000) {
                uint32_t v = cp - 0x10000, hi = 0xd800 | (v >> 10), lo = 0xdc00 | (v & 0x3ff);

                for (int k = 0; k < 2; k++) {
                    uint32_t u = k ? lo : hi;

                    esc[6 * k] = '\\';
                    esc[6 * k + 1] = 'u';
                    for (int d = 0; d < 4; d++)
                        esc[6 * k + 2 + d] = hex[(u >> (12 - 4 * d)) & 0xf];
                }
                elen = 12;
            } else {
                esc[1] = 'u';
                for (int d = 0; d < 4; d++)
                    esc[2 + d] = hex[(cp >> (12 - 4 * d)) & 0xf];
                elen = 6;
            }
            break;
        }
        put(b, esc, elen);
    }
    put(b, s + run, n - run);
    put(b, "\"", 1);
}

static int member_cmp(const void *a, const void *b)
{
    const struct member *x = a, *y = b;
    size_t n = x->keylen < y->keylen ? x->keylen : y->keylen;
    int c = memcmp(x->key, y->key, n);

    if (c)
        return c;
    return (x->keylen > y->keylen) - (x->keylen < y->keylen);
}

/* The role of an object member's value, given the object's role. */
static enum role child_role(enum role parent, const char *key, size_t keylen)
{
    if (parent == ROLE_ROOT && keylen == 9 && memcmp(key, "reasoning", 9) == 0)
        return ROLE_REASONING;
    if (parent == ROLE_REASONING && keylen == 10 && memcmp(key, "confidence", 10) == 0)
        return ROLE_FLOAT;
    if (parent == ROLE_REASONING && keylen == 7 && memcmp(key, "options", 7) == 0)
        return ROLE_OPTIONS;
    if (parent == ROLE_OPTION && keylen == 11 && memcmp(key, "feasibility", 11) == 0)
        return ROLE_FLOAT;
    return ROLE_PLAIN;
}

/* The members of object v, in its own order, in stack (cap entries) or, when there are more,
 * in a calloc'd array the caller frees when it is not stack; *n set to the count. NULL on
 * ENOMEM. */
static struct member *members_of(const json_t *v, struct member *stack, size_t cap, size_t *n)
{
    struct member *m = stack;
    size_t want = json_object_size(v), i = 0;
    void *it;

    if (want > cap) {
        m = calloc(want, sizeof(*m));
        if (!m)
            return NULL;
    }
    for (it = json_object_iter((json_t *)v); it && i < want;
         it = json_object_iter_next((json_t *)v, it)) {
        m[i].key = json_object_iter_key(it);
        m[i].keylen = json_object_iter_key_len(it);
        m[i].value = json_object_iter_value(it);
        i++;
    }
    *n = i;
    return m;
}

static void emit(struct obuf *b, const json_t *v, enum role role, int depth);

static void emit_object(struct obuf *b, const json_t *v, enum role role, int depth)
{
    struct member stackm[16], *m;
    size_t n, i;

    m = members_of(v, stackm, sizeof(stackm) / sizeof(stackm[0]), &n);
    if (!m) {
        b->err = -ENOMEM;
        return;
    }
    if (!(b->flags & AUDIT_CANON_ORDER))
        qsort(m, n, sizeof(*m), member_cmp);
    put(b, "{", 1);
    for (i = 0; i < n && !b->err; i++) {
        if (i)
            put(b, ",", 1);
        put_string(b, m[i].key, m[i].keylen, b->flags & AUDIT_CANON_ASCII);
        put(b, ":", 1);
        emit(b, m[i].value, child_role(role, m[i].key, m[i].keylen), depth + 1);
    }
    put(b, "}", 1);
    if (m != stackm)
        free(m);
}

static void emit_real(struct obuf *b, double d)
{
    char tmp[AUDIT_CANON_REAL_MAX];
    int n = audit_canon_real(d, tmp, sizeof(tmp));

    if (n < 0) {
        if (!b->err)
            b->err = n;
        return;
    }
    put(b, tmp, (size_t)n);
}

static void emit(struct obuf *b, const json_t *v, enum role role, int depth)
{
    char tmp[32];
    size_t i;

    if (b->err)
        return;
    if (!v || depth > CANON_MAX_DEPTH) {
        b->err = -EINVAL;
        return;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        emit_object(b, v, role, depth);
        break;
    case JSON_ARRAY:
        put(b, "[", 1);
        for (i = 0; i < json_array_size(v) && !b->err; i++) {
            if (i)
                put(b, ",", 1);
            emit(b, json_array_get(v, i), role == ROLE_OPTIONS ? ROLE_OPTION : ROLE_PLAIN,
                 depth + 1);
        }
        put(b, "]", 1);
        break;
    case JSON_STRING:
        put_string(b, json_string_value(v), json_string_length(v), b->flags & AUDIT_CANON_ASCII);
        break;
    case JSON_INTEGER:
        if (role == ROLE_FLOAT) {
            emit_real(b, (double)json_integer_value(v));
        } else {
            snprintf(tmp, sizeof(tmp), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
            puts_(b, tmp);
        }
        break;
    case JSON_REAL:
        emit_real(b, json_real_value(v));
        break;
    case JSON_TRUE:
        put(b, "true", 4);
        break;
    case JSON_FALSE:
        put(b, "false", 5);
        break;
    case JSON_NULL:
        put(b, "null", 4);
        break;
    default:
        b->err = -EINVAL;
        break;
    }
}

int audit_canon(const json_t *v, unsigned flags, char **out, size_t *len)
{
    struct obuf b = { .flags = flags };

    *out = NULL;
    if (len)
        *len = 0;
    emit(&b, v, (flags & AUDIT_CANON_CAPSULE) ? ROLE_ROOT : ROLE_PLAIN, 0);
    if (!b.err && !b.p)
        put(&b, "", 0);
    if (b.err) {
        free(b.p);
        return b.err;
    }
    *out = b.p;
    if (len)
        *len = b.len;
    return 0;
}

/* ---- the portable subset: what both CPS references canonicalize alike ---- */

int audit_canon_real_js(double d, int float_field, char *buf, size_t buflen)
{
    char dig[REPR_MAX_DIGITS + 2], out[AUDIT_CANON_REAL_MAX];
    size_t n = 0, nd, i;
    int exp, pt, w;

    if (!isfinite(d))
        return -EINVAL;
    if (d == 0.0) {
        /* JavaScript writes -0 as 0 */
        w = snprintf(out, sizeof(out), "%s", float_field ? "0.0" : "0");
        n = (size_t)w;
        goto done;
    }
    if (d < 0)
        out[n++] = '-';
    shortest_digits(fabs(d), dig, &exp);
    nd = strlen(dig);
    pt = exp + 1;   /* Number::toString's n: the value is 0.DIGITS x 10^pt */
    if ((int)nd <= pt && pt <= 21) {
        memcpy(out + n, dig, nd);
        n += nd;
        for (i = nd; i < (size_t)pt; i++)
            out[n++] = '0';
        if (float_field) {
            out[n++] = '.';
            out[n++] = '0';
        }
    } else if (pt > 0 && pt <= 21) {
        memcpy(out + n, dig, (size_t)pt);
        n += (size_t)pt;
        out[n++] = '.';
        memcpy(out + n, dig + pt, nd - (size_t)pt);
        n += nd - (size_t)pt;
    } else if (pt > -6 && pt <= 0) {
        out[n++] = '0';
        out[n++] = '.';
        for (i = 0; i < (size_t)-pt; i++)
            out[n++] = '0';
        memcpy(out + n, dig, nd);
        n += nd;
    } else {
        out[n++] = dig[0];
        if (nd > 1) {
            out[n++] = '.';
            memcpy(out + n, dig + 1, nd - 1);
            n += nd - 1;
        }
        w = snprintf(out + n, sizeof(out) - n, "e%c%d", pt - 1 < 0 ? '-' : '+',
                     pt - 1 < 0 ? 1 - pt : pt - 1);
        if (w < 0 || (size_t)w >= sizeof(out) - n)
            return -EINVAL;
        n += (size_t)w;
    }
    out[n] = '\0';
done:
    if (n + 1 > buflen)
        return -ENOSPC;
    memcpy(buf, out, n + 1);
    return (int)n;
}

#define PATH_MAX_SHOWN 160
#define KEY_MAX_SHOWN 40

/* A walk of audit_canon_portable: where it is, and the first reason found. */
struct pwalk {
    char path[PATH_MAX_SHOWN + 48];
    size_t plen;
    unsigned flags;
    char *why;
    size_t whylen;
    int err;
};

/* Append a path step ("[3]", or "." and the key in printable ASCII); returns the old length,
 * for path_pop. A path that would grow past PATH_MAX_SHOWN ends in "..." instead. */
static size_t path_push(struct pwalk *w, const char *key, size_t keylen, size_t index)
{
    size_t old = w->plen, i;
    char *p = w->path;

    if (w->plen >= PATH_MAX_SHOWN) {
        return old;
    }
    if (!key) {
        int k = snprintf(p + w->plen, sizeof(w->path) - w->plen, "[%zu]", index);

        if (k > 0)
            w->plen += (size_t)k;
    } else {
        p[w->plen++] = '.';
        for (i = 0; i < keylen && i < KEY_MAX_SHOWN; i++) {
            unsigned char c = (unsigned char)key[i];

            p[w->plen++] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
        }
        if (keylen > KEY_MAX_SHOWN) {
            memcpy(p + w->plen, "...", 3);
            w->plen += 3;
        }
    }
    if (w->plen >= PATH_MAX_SHOWN) {
        w->plen = PATH_MAX_SHOWN;
        memcpy(p + w->plen, "...", 3);
        w->plen += 3;
    }
    p[w->plen] = '\0';
    return old;
}

static void path_pop(struct pwalk *w, size_t old)
{
    w->plen = old;
    w->path[old] = '\0';
}

__attribute__((format(printf, 2, 3)))
static void refuse_at(struct pwalk *w, const char *fmt, ...)
{
    char reason[200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    if (w->why && w->whylen)
        snprintf(w->why, w->whylen, "%s: %s", w->path, reason);
    w->err = -EINVAL;
}

/* The first code unit of cp in UTF-16. */
static uint32_t utf16_first(uint32_t cp)
{
    return cp < 0x10000 ? cp : 0xd800 + ((cp - 0x10000) >> 10);
}

/* Whether a (which sorts before b by code point) sorts after b by UTF-16 code unit: at their
 * first different code point one is at or above U+10000 and the other in U+E000..U+FFFF. */
static bool utf16_disagrees(const struct member *a, const struct member *b)
{
    size_t i = 0, j = 0;

    while (i < a->keylen && j < b->keylen) {
        uint32_t x = 0, y = 0;
        size_t lx = utf8_decode((const unsigned char *)a->key + i, a->keylen - i, &x);
        size_t ly = utf8_decode((const unsigned char *)b->key + j, b->keylen - j, &y);

        if (lx == 0 || ly == 0)
            return false;   /* not UTF-8: audit_canon refuses it anyway */
        if (x != y)
            return (x < y) != (utf16_first(x) < utf16_first(y));
        i += lx;
        j += ly;
    }
    return false;
}

static void check_real(struct pwalk *w, double d, bool float_field)
{
    char py[AUDIT_CANON_REAL_MAX], js[AUDIT_CANON_REAL_MAX];

    if (audit_canon_real(d, py, sizeof(py)) < 0 ||
        audit_canon_real_js(d, float_field, js, sizeof(js)) < 0) {
        refuse_at(w, "not a finite number");
        return;
    }
    if (strcmp(py, js) == 0)
        return;
    if (d == 0.0)
        refuse_at(w, "-0.0 (Python writes %s, JavaScript %s)", py, js);
    else if (!strchr(py, 'e') && !strchr(js, '.') && !strchr(js, 'e'))
        refuse_at(w, "an integral real (Python writes %s, JavaScript %s)", py, js);
    else
        refuse_at(w, "a real in exponent form for one reference only (Python writes %s, "
                  "JavaScript %s)", py, js);
}

static void check_object(struct pwalk *w, const json_t *v, enum role role, int depth);

static void check_value(struct pwalk *w, const json_t *v, enum role role, int depth)
{
    size_t i, old;

    if (w->err)
        return;
    if (!v || depth > CANON_MAX_DEPTH) {
        refuse_at(w, "nested too deep");
        return;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        check_object(w, v, role, depth);
        break;
    case JSON_ARRAY:
        for (i = 0; i < json_array_size(v) && !w->err; i++) {
            old = path_push(w, NULL, 0, i);
            check_value(w, json_array_get(v, i), role == ROLE_OPTIONS ? ROLE_OPTION : ROLE_PLAIN,
                        depth + 1);
            if (!w->err)
                path_pop(w, old);
        }
        break;
    case JSON_INTEGER:
        if (role == ROLE_FLOAT) {
            check_real(w, (double)json_integer_value(v), true);
        } else if (json_integer_value(v) > AUDIT_CANON_SAFE_INT ||
                   json_integer_value(v) < -AUDIT_CANON_SAFE_INT) {
            refuse_at(w, "an integer beyond +-(2^53-1) (Python writes %" JSON_INTEGER_FORMAT
                      ", JavaScript %.0f)", json_integer_value(v),
                      (double)json_integer_value(v));
        }
        break;
    case JSON_REAL:
        check_real(w, json_real_value(v), role == ROLE_FLOAT);
        break;
    default:
        break;   /* strings, true, false, null: written alike */
    }
}

static void check_object(struct pwalk *w, const json_t *v, enum role role, int depth)
{
    struct member stackm[16], *m;
    size_t n, i, old;

    m = members_of(v, stackm, sizeof(stackm) / sizeof(stackm[0]), &n);
    if (!m) {
        w->err = -ENOMEM;
        return;
    }
    qsort(m, n, sizeof(*m), member_cmp);
    for (i = 1; i < n; i++) {
        if (utf16_disagrees(&m[i - 1], &m[i])) {
            refuse_at(w, "keys that mix code points from U+10000 up with U+E000..U+FFFF "
                      "(JavaScript sorts them by UTF-16 code unit, Python by code point)");
            goto out;
        }
    }
    for (i = 0; i < n && !w->err; i++) {
        old = path_push(w, m[i].key, m[i].keylen, 0);
        check_value(w, m[i].value, (w->flags & AUDIT_CANON_CAPSULE)
                                       ? child_role(role, m[i].key, m[i].keylen) : ROLE_PLAIN,
                    depth + 1);
        if (!w->err)
            path_pop(w, old);
    }
out:
    if (m != stackm)
        free(m);
}

int audit_canon_portable(const json_t *v, unsigned flags, const char *root, char *why,
                         size_t whylen)
{
    struct pwalk w = { .flags = flags, .why = why, .whylen = whylen };
    int n = snprintf(w.path, PATH_MAX_SHOWN, "%s", root ? root : "$");

    w.plen = n < 0 ? 0 : (size_t)n >= PATH_MAX_SHOWN ? PATH_MAX_SHOWN - 1 : (size_t)n;
    if (why && whylen)
        why[0] = '\0';
    check_value(&w, v, (flags & AUDIT_CANON_CAPSULE) ? ROLE_ROOT : ROLE_PLAIN, 0);
    if (w.err == -ENOMEM && why && whylen)
        snprintf(why, whylen, "out of memory");
    return w.err;
}

/* The portable replacement of one number, or NULL when it is portable as it is (or on
 * ENOMEM, with *err set). */
static json_t *fix_number(const json_t *v, int *err)
{
    char py[AUDIT_CANON_REAL_MAX], js[AUDIT_CANON_REAL_MAX];
    json_t *r = NULL;

    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);

        if (i <= AUDIT_CANON_SAFE_INT && i >= -AUDIT_CANON_SAFE_INT)
            return NULL;
        snprintf(py, sizeof(py), "%" JSON_INTEGER_FORMAT, i);
        r = json_string(py);
    } else {
        double d = json_real_value(v);

        if (audit_canon_real(d, py, sizeof(py)) < 0 ||
            audit_canon_real_js(d, 0, js, sizeof(js)) < 0 || strcmp(py, js) == 0)
            return NULL;
        if (d == floor(d) && fabs(d) <= (double)AUDIT_CANON_SAFE_INT)
            r = json_integer((json_int_t)d);
        else
            r = json_string(py);
    }
    if (!r)
        *err = -ENOMEM;
    return r;
}

static int fix_walk(json_t *v, int depth);

/* Member or element c of a container at depth: a number's portable replacement into *r (NULL
 * when it is portable as it is), or the numbers fixed inside a container. The count of those,
 * 0 for a number, or -errno. */
static int fix_child(json_t *c, int depth, json_t **r)
{
    int err = 0;

    *r = NULL;
    if (!json_is_number(c))
        return fix_walk(c, depth + 1);
    *r = fix_number(c, &err);
    return err;
}

static int fix_walk(json_t *v, int depth)
{
    int changed = 0, rc;
    json_t *r;
    size_t i;
    void *it;

    if (depth > CANON_MAX_DEPTH)
        return 0;
    if (json_is_object(v)) {
        for (it = json_object_iter(v); it; it = json_object_iter_next(v, it)) {
            rc = fix_child(json_object_iter_value(it), depth, &r);
            if (rc < 0)
                return rc;
            changed += rc + (r && json_object_iter_set_new(v, it, r) == 0);
        }
    } else if (json_is_array(v)) {
        for (i = 0; i < json_array_size(v); i++) {
            rc = fix_child(json_array_get(v, i), depth, &r);
            if (rc < 0)
                return rc;
            changed += rc + (r && json_array_set_new(v, i, r) == 0);
        }
    }
    return changed;
}

int audit_canon_portable_fix(json_t *v)
{
    return fix_walk(v, 0);
}
