/* text.c: the small text helpers the probe parsers share: line splitting, trimming and strict
 * number parsing of untrusted command output, and strict JSON strings. Pure: no I/O, no state. */
#include "monitor/probe.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The next line of [*p, end) into buf (cut to fit), *p advanced; false at the end. */
bool mon_next_line(const char **p, const char *end, char *buf, size_t buflen)
{
    const char *s = *p, *nl;
    size_t n;

    if (!s || s >= end || buflen == 0)
        return false;
    nl = memchr(s, '\n', (size_t)(end - s));
    n = nl ? (size_t)(nl - s) : (size_t)(end - s);
    *p = nl ? nl + 1 : end;
    if (n > 0 && s[n - 1] == '\r')
        n--;
    if (n >= buflen)
        n = buflen - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return true;
}

/* s without leading and trailing blanks, trimmed in place. */
char *mon_trim(char *s)
{
    size_t n;

    while (*s == ' ' || *s == '\t')
        s++;
    n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* The whole of s as a finite decimal number (no hex, nan, inf or blanks). */
bool mon_parse_double(const char *s, double *out)
{
    char *end;
    double v;

    if (!*s || !(isdigit((unsigned char)*s) || *s == '-' || *s == '+' || *s == '.'))
        return false;
    for (const char *c = s; *c; c++)
        if (*c == 'x' || *c == 'X')
            return false;
    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v))
        return false;
    *out = v;
    return true;
}

/* The whole of s as an unsigned decimal (digits only, no overflow). */
bool mon_parse_ull(const char *s, unsigned long long *out)
{
    char *end;
    unsigned long long v;

    if (!isdigit((unsigned char)*s))
        return false;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

/* v as a JSON integer when integral, else a real; NULL without memory. */
json_t *mon_json_num(double v)
{
    /* no libm: the range check comes first, so the conversion is defined */
    if (v > -9.0e15 && v < 9.0e15 && (double)(long long)v == v)
        return json_integer((json_int_t)v);
    return json_real(v);
}

/* x rounded to two decimals. */
double mon_round2(double x)
{
    if (x > 9.0e13 || x < -9.0e13)
        return x;
    return (double)(long long)(x * 100.0 + (x >= 0 ? 0.5 : -0.5)) / 100.0;
}

/* Make room for n more bytes and the NUL. */
static bool buf_reserve(struct mon_buf *b, size_t n)
{
    size_t cap;
    char *p;

    if (b->failed)
        return false;
    if (b->len + n + 1 <= b->cap)
        return true;
    cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
        cap *= 2;
    p = realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

/* Append n bytes of s and keep the buffer NUL-terminated; sets failed without memory. */
void mon_buf_add(struct mon_buf *b, const char *s, size_t n)
{
    if (!buf_reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

/* Append printf-formatted text; sets failed without memory. */
void mon_buf_printf(struct mon_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !buf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* The string value of j when it is a string without NUL bytes, else NULL. */
const char *mon_json_plain(const json_t *j)
{
    const char *s = json_string_value(j);

    return s && strlen(s) == json_string_length(j) ? s : NULL;
}
