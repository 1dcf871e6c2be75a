/* validate.c: pure syntax checks for every value that may reach a generated config. */
#include "core/validate.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define NAME_LABEL_MAX 63
#define HOSTNAME_MAX 253
#define HEALTH_MAX 256
#define CONTAINER_MAX 128
#define PORT_MAX 65535u

/* Why the last check of this thread failed (see val_reason); a constant string. */
static _Thread_local const char *g_why = "";

/* Note why a check fails and return -EINVAL. */
static int why(const char *reason)
{
    g_why = reason;
    return -EINVAL;
}

const char *val_reason(void)
{
    return g_why;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_lower(char c)
{
    return c >= 'a' && c <= 'z';
}

static bool is_alpha(char c)
{
    return is_lower(c) || (c >= 'A' && c <= 'Z');
}

static bool is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* One DNS label of len bytes at s: 1..63 of [a-z0-9-] (plus A-Z when upper), no edge hyphen. */
static bool label_ok(const char *s, size_t len, bool upper)
{
    if (len == 0 || len > NAME_LABEL_MAX || s[0] == '-' || s[len - 1] == '-')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!(is_lower(c) || is_digit(c) || c == '-' || (upper && is_alpha(c))))
            return false;
    }
    return true;
}

/* Dot-separated labels, total 1..253 bytes, no empty label, no trailing dot. */
static bool labels_ok(const char *s, bool upper)
{
    size_t len = strnlen(s, HOSTNAME_MAX + 1);

    if (len == 0 || len > HOSTNAME_MAX)
        return false;
    const char *p = s;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (!label_ok(p, n, upper))
            return false;
        if (!dot)
            return true;
        p = dot + 1;
    }
}

/* Bare IPv6 text accepted by inet_pton, without a zone id; s is len bytes, not terminated. */
static bool ipv6_ok(const char *s, size_t len)
{
    char buf[INET6_ADDRSTRLEN];
    struct in6_addr a;

    if (len == 0 || len >= sizeof(buf))
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!(is_hex(s[i]) || s[i] == ':' || s[i] == '.'))
            return false; /* also rules out '%' zone ids */
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    return inet_pton(AF_INET6, buf, &a) == 1;
}

bool val_is_ipv6(const char *s)
{
    return ipv6_ok(s, strlen(s));
}

/* Decimal port 1..65535 filling all of s (len bytes): no sign, no leading zero. */
static bool port_parse(const char *s, size_t len, unsigned *port)
{
    unsigned v = 0;

    if (len == 0 || len > 5 || s[0] == '0')
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(s[i]))
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > PORT_MAX)
        return false;
    *port = v;
    return true;
}

/* s[0..len) matches [first][rest]{0,max-1} where the classes come from the two predicates. */
static bool token_ok(const char *s, size_t max, bool (*first)(char), bool (*rest)(char))
{
    size_t len = strnlen(s, max + 1);

    if (len == 0 || len > max || !first(s[0]))
        return false;
    for (size_t i = 1; i < len; i++) {
        if (!rest(s[i]))
            return false;
    }
    return true;
}

static bool container_first(char c)
{
    return is_alpha(c) || is_digit(c);
}

static bool container_rest(char c)
{
    return container_first(c) || c == '_' || c == '.' || c == '-';
}

static bool user_first(char c)
{
    return is_lower(c) || c == '_';
}

static bool user_rest(char c)
{
    return user_first(c) || is_digit(c) || c == '-';
}

bool val_is_ssh_user(const char *s)
{
    return token_ok(s, VAL_SSH_USER_MAX, user_first, user_rest);
}

/* RFC 3986 path/query character other than '%': unreserved, sub-delims, ':' '@' '/' '?'. */
static bool path_char(char c)
{
    if (is_alpha(c) || is_digit(c))
        return true;
    return c != '\0' && strchr("-._~!$&'()*+,;=:@/?", c) != NULL;
}

/* Contract: s is a DNS label ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$. Returns 0 or -EINVAL. */
int val_name(const char *s)
{
    if (!s)
        return why("no name");
    size_t len = strnlen(s, NAME_LABEL_MAX + 1);
    if (label_ok(s, len, false) && s[len] == '\0')
        return 0;
    return why("a name is 1-63 of a-z, 0-9 and '-', not starting or ending with '-'");
}

/* Contract: s is a lowercase DNS name: labels_ok without upper case (labels 1-63 of
 * [a-z0-9-], no edge hyphen, total 1-253, no empty label, no trailing dot). NULL is not. */
bool val_is_dns_name(const char *s)
{
    return s && labels_ok(s, false);
}

/* Contract: s is a canonical dotted quad: four 0-255 octets, no leading zeros, nothing else. */
bool val_is_ipv4(const char *s)
{
    if (!s)
        return false;
    for (int octet = 0; octet < 4; octet++) {
        if (octet > 0 && *s++ != '.')
            return false;
        if (!is_digit(*s))
            return false;
        unsigned v = 0;
        int n = 0;
        while (is_digit(*s) && n < 4) {
            v = v * 10 + (unsigned)(*s++ - '0');
            n++;
        }
        if (n > 3 || v > 255 || (n > 1 && s[-n] == '0'))
            return false;
    }
    return *s == '\0';
}

/* Contract: s is an RFC 1123 hostname (labels 1-63 of [A-Za-z0-9-], no edge hyphen, total
 * <= 253, no trailing dot) that cannot be read as a number: the last label is not all digits
 * and inet_aton does not accept it (so "10.0.0.1", "1.2.3" and "0x7f.1" are not hostnames). */
bool val_is_hostname(const char *s)
{
    struct in_addr a;

    if (!s || !labels_ok(s, true))
        return false;
    const char *last = strrchr(s, '.');
    last = last ? last + 1 : s;
    bool numeric = true;
    for (const char *p = last; *p; p++) {
        if (!is_digit(*p))
            numeric = false;
    }
    if (numeric)
        return false;
    return inet_aton(s, &a) == 0;
}

/* Contract: s is "[http://|https://]HOST:PORT" with HOST an IPv4 quad, "[IPv6]" without zone id,
 * or a hostname; PORT 1..65535 and nothing after it. Fills *out (if non-NULL) only on success.
 * Returns 0 or -EINVAL. */
int val_upstream(const char *s, struct val_upstream *out)
{
    struct val_upstream u;
    const char *port;

    if (!s)
        return why("no upstream");
    memset(&u, 0, sizeof(u));
    if (strncmp(s, "https://", 8) == 0) {
        u.tls = true;
        s += 8;
    } else if (strncmp(s, "http://", 7) == 0) {
        s += 7;
    }

    if (s[0] == '[') {
        const char *end = strchr(s + 1, ']');
        if (!end || end[1] != ':')
            return why("an IPv6 upstream is [ADDRESS]:PORT");
        size_t hlen = (size_t)(end - (s + 1));
        if (!ipv6_ok(s + 1, hlen))
            return why("not a valid IPv6 address, or one with a zone id");
        memcpy(u.host, s + 1, hlen);
        u.host[hlen] = '\0';
        u.kind = VAL_HOST_IPV6;
        port = end + 2;
    } else {
        const char *colon = strchr(s, ':');
        if (!colon)
            return why("no :PORT: the form is [http://|https://]HOST:PORT");
        size_t hlen = (size_t)(colon - s);
        if (hlen == 0)
            return why("no host before :PORT");
        if (hlen >= sizeof(u.host))
            return why("the host is longer than 253 characters");
        memcpy(u.host, s, hlen);
        u.host[hlen] = '\0';
        if (val_is_ipv4(u.host))
            u.kind = VAL_HOST_IPV4;
        else if (val_is_hostname(u.host))
            u.kind = VAL_HOST_NAME;
        else
            return why("the host is not an IPv4 address, [IPv6] address or hostname");
        port = colon + 1;
    }

    if (!port_parse(port, strnlen(port, 6), &u.port))
        return why("the port is not 1-65535, in digits without a leading zero and with nothing "
                   "after it");
    if (out)
        *out = u;
    return 0;
}

/* Contract: see validate.h. Lines are split on '\n'; each is checked by val_upstream. The reason
 * of a refused line names the line's number when there are several. Returns 0 or -EINVAL. */
int val_upstreams(const char *s, struct val_upstream *out, size_t *n)
{
    static _Thread_local char reason[160];
    struct val_upstream ups[VAL_UPSTREAMS_MAX];
    char line[VAL_VALUE_MAX + 1];
    size_t count = 0;

    bool several;

    if (!s)
        return why("no upstream");
    several = strchr(s, '\n') != NULL;
    while (*s) {
        const char *nl = strchr(s, '\n');
        size_t len = nl ? (size_t)(nl - s) : strlen(s);

        if (count == VAL_UPSTREAMS_MAX)
            return why("more than 64 upstreams");
        if (len == 0)
            return why("an empty line: one upstream per line, no blank lines");
        if (len >= sizeof(line))
            return why("an upstream line is too long");
        memcpy(line, s, len);
        line[len] = '\0';
        if (val_upstream(line, &ups[count]) != 0) {
            if (!several)
                return -EINVAL;     /* one line: val_upstream's own reason */
            snprintf(reason, sizeof(reason), "upstream line %zu: %s", count + 1, val_reason());
            return why(reason);
        }
        for (size_t i = 0; i < count; i++) {
            if (ups[i].tls != ups[count].tls)
                return why("the upstreams mix http and https: all of a service's upstreams "
                           "use one scheme");
            if (ups[i].port == ups[count].port && strcasecmp(ups[i].host, ups[count].host) == 0) {
                snprintf(reason, sizeof(reason), "upstream line %zu repeats line %zu",
                         count + 1, i + 1);
                return why(reason);
            }
        }
        count++;
        if (!nl)
            break;
        s = nl + 1;
        if (*s == '\0')
            return why("an empty line: one upstream per line, no blank lines");
    }
    if (out)
        memcpy(out, ups, count * sizeof(*ups));
    if (n)
        *n = count;
    return 0;
}

/* Contract: one of the five policy names, exactly. Returns 0 or -EINVAL. */
int val_lb_policy(const char *s)
{
    static const char *const names[] = { "round_robin", "least_conn", "random", "ip_hash",
                                         "first" };

    for (size_t i = 0; s && i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(s, names[i]) == 0)
            return 0;
    return why("the lb_policy is round_robin, least_conn, random, ip_hash or first");
}

/* Contract: s is a lowercase FQDN (<= 253 chars, val_name labels, no trailing dot) that ends,
 * on a label boundary, with one of the nsuffixes suffixes and has at least one label before it.
 * NULL entries in suffixes are skipped. Returns 0 or -EINVAL. */
int val_domain(const char *s, const char *const *suffixes, size_t nsuffixes)
{
    if (!s || !suffixes || !labels_ok(s, false))
        return why("not a lowercase domain name: labels of a-z, 0-9 and '-', at most 253 "
                   "characters, no trailing dot");
    size_t len = strlen(s);
    for (size_t i = 0; i < nsuffixes; i++) {
        const char *suf = suffixes[i];
        if (!suf)
            continue;
        size_t slen = strlen(suf);
        if (slen == 0 || slen + 2 > len)
            continue;
        if (s[len - slen - 1] == '.' && memcmp(s + len - slen, suf, slen) == 0)
            return 0;
    }
    return why("the domain does not end, after a label, in a suffix that --domains allows");
}

/* Contract: s starts with '/' but not "//", is at most 256 chars, and holds only RFC 3986
 * path/query characters, with '%' only as a full "%XX" hex escape. Returns 0 or -EINVAL. */
int val_health_check(const char *s)
{
    if (!s || s[0] != '/' || s[1] == '/')
        return why("a health check path starts with one '/'");
    size_t len = strnlen(s, HEALTH_MAX + 1);
    if (len > HEALTH_MAX)
        return why("the path is longer than 256 characters");
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%') {
            if (!is_hex(s[i + 1]) || !is_hex(s[i + 2]))
                return why("'%' must start a %XX escape");
            i += 2;
        } else if (!path_char(s[i])) {
            return why("only RFC 3986 path and query characters are allowed");
        }
    }
    return 0;
}

/* Contract: s is exactly "proxy" or "dns". Returns 0 or -EINVAL. */
int val_mode(const char *s)
{
    if (s && (strcmp(s, "proxy") == 0 || strcmp(s, "dns") == 0))
        return 0;
    return why("the mode is proxy or dns");
}

/* Append text at *pos in canon (nothing when canon is NULL); false once it no longer fits. */
static bool canon_put(char *canon, size_t canon_len, size_t *pos, const char *text)
{
    if (!canon)
        return true;
    if (*pos >= canon_len)
        return false;
    int n = snprintf(canon + *pos, canon_len - *pos, "%s", text);
    if (n < 0 || (size_t)n >= canon_len - *pos)
        return false;
    *pos += (size_t)n;
    return true;
}

/* Every key of obj is one of the NULL-terminated names. */
static bool keys_only(json_t *obj, const char *const *names)
{
    const char *key;
    json_t *val;

    json_object_foreach(obj, key, val) {
        bool found = false;
        for (size_t i = 0; names[i]; i++) {
            if (strcmp(key, names[i]) == 0)
                found = true;
        }
        if (!found)
            return false;
    }
    return true;
}

/* Contract: s is a JSON object of one of the shapes in validate.h, at most VAL_VALUE_MAX bytes
 * of printable ASCII and JSON whitespace (space, tab, CR, LF; raw control bytes inside strings
 * are refused by the parser). On success writes the compact normalized form into canon
 * (skipped when canon is NULL). Returns 0 or
 * -EINVAL (canon is then left empty when canon_len > 0). */
int val_monitoring(const char *s, char *canon, size_t canon_len)
{
    static const char *const container_keys[] = { "type", "container_name", NULL };
    static const char *const ssh_keys[] = { "type", "ssh_host", "ssh_user", "ssh_port", NULL };
    json_t *root = NULL;
    json_error_t jerr;
    size_t pos = 0;
    int rc = -EINVAL;

    if (canon && canon_len > 0)
        canon[0] = '\0';
    g_why = "the normalized document is too long";
    if (!s || (canon && canon_len == 0))
        goto out;
    size_t len = strnlen(s, VAL_VALUE_MAX + 1);
    if (len > VAL_VALUE_MAX)
        goto out;
    g_why = "only printable ASCII and JSON whitespace are allowed";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c >= 0x7f)
            goto out;
    }

    root = json_loads(s, JSON_REJECT_DUPLICATES, &jerr);
    g_why = "not a JSON object, or one with a key twice";
    if (!json_is_object(root))
        goto out;
    if (json_object_size(root) == 0) {
        if (canon_put(canon, canon_len, &pos, "{}"))
            rc = 0;
        goto out;
    }

    const char *type = json_string_value(json_object_get(root, "type"));
    g_why = "\"type\" must be \"container\", \"gpu\" or \"server\"";
    if (!type)
        goto out;
    if (strcmp(type, "container") == 0) {
        const char *name = json_string_value(json_object_get(root, "container_name"));
        g_why = "a container target has only \"type\" and a valid \"container_name\"";
        if (!keys_only(root, container_keys) || !name
            || !token_ok(name, CONTAINER_MAX, container_first, container_rest))
            goto out;
        if (canon_put(canon, canon_len, &pos, "{\"type\":\"container\",\"container_name\":\"")
            && canon_put(canon, canon_len, &pos, name)
            && canon_put(canon, canon_len, &pos, "\"}"))
            rc = 0;
        goto out;
    }
    if (strcmp(type, "gpu") != 0 && strcmp(type, "server") != 0)
        goto out;
    g_why = "a gpu or server target has only \"type\", \"ssh_host\", \"ssh_user\" and "
            "\"ssh_port\"";
    if (!keys_only(root, ssh_keys))
        goto out;

    const char *host = json_string_value(json_object_get(root, "ssh_host"));
    g_why = "\"ssh_host\" must be an IPv4 or IPv6 address or a hostname";
    if (!host || !(val_is_ipv4(host) || val_is_hostname(host) || val_is_ipv6(host)))
        goto out;
    json_t *juser = json_object_get(root, "ssh_user");
    const char *user = json_string_value(juser);
    g_why = "\"ssh_user\" must be a user name of a-z, 0-9, '_' and '-', at most 32 long";
    if (juser && (!user || !val_is_ssh_user(user)))
        goto out;
    json_t *jport = json_object_get(root, "ssh_port");
    json_int_t port = json_integer_value(jport);
    g_why = "\"ssh_port\" must be an integer 1-65535";
    if (jport && (!json_is_integer(jport) || port < 1 || port > (json_int_t)PORT_MAX))
        goto out;
    char portbuf[16];
    snprintf(portbuf, sizeof(portbuf), "%u", (unsigned)port);
    g_why = "the normalized document is too long";

    if (!canon_put(canon, canon_len, &pos, "{\"type\":\"")
        || !canon_put(canon, canon_len, &pos, type)
        || !canon_put(canon, canon_len, &pos, "\",\"ssh_host\":\"")
        || !canon_put(canon, canon_len, &pos, host)
        || !canon_put(canon, canon_len, &pos, "\""))
        goto out;
    if (user && (!canon_put(canon, canon_len, &pos, ",\"ssh_user\":\"")
                 || !canon_put(canon, canon_len, &pos, user)
                 || !canon_put(canon, canon_len, &pos, "\"")))
        goto out;
    if (jport && (!canon_put(canon, canon_len, &pos, ",\"ssh_port\":")
                  || !canon_put(canon, canon_len, &pos, portbuf)))
        goto out;
    if (canon_put(canon, canon_len, &pos, "}"))
        rc = 0;
out:
    if (rc != 0 && canon && canon_len > 0)
        canon[0] = '\0';
    json_decref(root);
    return rc;
}
