/* validate.h: pure checks of every value that may reach a generated config (no I/O, no state). */
#ifndef CONDUIT_VALIDATE_H
#define CONDUIT_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

/* Longest attribute value accepted through the mount, in bytes, without the newline. */
#define VAL_VALUE_MAX 4096
/* Longest normalized monitoring JSON kept in the registry. */
#define VAL_MONITORING_MAX 1024

enum val_host_kind { VAL_HOST_IPV4, VAL_HOST_IPV6, VAL_HOST_NAME };

/* A parsed upstream: [scheme://]HOST:PORT. */
struct val_upstream {
    bool tls;                  /* https:// prefix */
    enum val_host_kind kind;
    char host[254];            /* without brackets for IPv6 */
    unsigned port;             /* 1..65535 */
};

/* Service or target name: a DNS label ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$. 0 or -EINVAL. */
int val_name(const char *s);

/* Upstream "[http://|https://]HOST:PORT" (scheme lowercase). HOST is val_is_ipv4, "[IPv6]" without
 * a zone id, or val_is_hostname; PORT is 1..65535 without sign or leading zero; nothing may
 * follow it. Fills *out when non-NULL, only on success. 0 or -EINVAL. */
int val_upstream(const char *s, struct val_upstream *out);

/* Most upstreams one service may have. */
#define VAL_UPSTREAMS_MAX 64

/* Upstream list: one to VAL_UPSTREAMS_MAX val_upstream entries, one per line ('\n' between them,
 * none after the last: strip the written newline first), no empty line, no two naming one
 * endpoint (same scheme, port and host, hosts compared without case), all of one scheme (http or
 * https). "" is the empty list (*n = 0). Fills out[0..*n) when out is non-NULL (room for
 * VAL_UPSTREAMS_MAX), *n when n is non-NULL; only on success. 0 or -EINVAL (val_reason says
 * which line and why). */
int val_upstreams(const char *s, struct val_upstream *out, size_t *n);

/* Load-balancing policy: "round_robin", "least_conn", "random", "ip_hash" or "first".
 * 0 or -EINVAL. */
int val_lb_policy(const char *s);

/* Lowercase FQDN of at most 253 chars, valid labels, with at least one label before one of the
 * allowed suffixes (each itself a dot-separated list of labels, without leading dot), matched on
 * a label boundary; no trailing dot. NULL entries in suffixes are skipped. 0 or -EINVAL. */
int val_domain(const char *s, const char *const *suffixes, size_t nsuffixes);

/* Health path: starts with '/', not "//", at most 256 chars, RFC 3986 path/query chars only.
 * 0 or -EINVAL. */
int val_health_check(const char *s);

/* "proxy" or "dns". 0 or -EINVAL. */
int val_mode(const char *s);

/* Monitoring JSON object: {}, {"type":"container","container_name":S},
 * {"type":"gpu"|"server","ssh_host":H[,"ssh_user":U][,"ssh_port":P]}. Unknown keys or types,
 * duplicate keys, wrong types: -EINVAL. On success writes the normalized compact form (keys in the
 * order above) into canon (NUL-terminated); -EINVAL also if it does not fit canon_len. The input
 * must be at most VAL_VALUE_MAX bytes of printable ASCII and JSON whitespace (so jq's pretty
 * output is accepted; other control bytes are not). canon may be NULL to validate only; on
 * failure canon is "". */
int val_monitoring(const char *s, char *canon, size_t canon_len);

/* Why the calling thread's last failed val_name, val_upstream(s), val_domain, val_health_check,
 * val_mode, val_lb_policy or val_monitoring refused its value: a one-line English text without
 * the value itself ("the port is not 1-65535 ..."); "" before any failure. Not reset by a
 * success: read it right after a check returned -EINVAL. */
const char *val_reason(void);

/* True when s is a dotted-quad IPv4 address with octets 0-255 (no leading-zero ambiguity). */
bool val_is_ipv4(const char *s);

/* True when s is an RFC 1123 hostname (labels of 1-63 [A-Za-z0-9-] chars, no edge hyphen, total
 * <= 253, no trailing dot) that cannot be read as a number: the last label is not all digits
 * and inet_aton rejects it, so "10.0.0.1", "1.2.3" and "0x7f.1" are not hostnames. */
bool val_is_hostname(const char *s);

/* True when s is a lowercase DNS name: dot-separated labels of 1-63 [a-z0-9-] chars, no edge
 * hyphen, total 1-253, no empty label and no trailing dot. Unlike val_is_hostname, a name that
 * reads as a number ("10.0.0.1") is one; unlike val_domain, no suffix is required. */
bool val_is_dns_name(const char *s);

/* Longest SSH user name, in bytes (without the NUL). */
#define VAL_SSH_USER_MAX 32

/* True when s is an SSH user name: [a-z_] then [a-z0-9_-], 1 to VAL_SSH_USER_MAX bytes. The one
 * user rule of monitoring attributes and monitor targets. */
bool val_is_ssh_user(const char *s);

/* True when s is a bare IPv6 address inet_pton accepts, without brackets or a zone id. */
bool val_is_ipv6(const char *s);

#endif
