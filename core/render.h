/* render.h: registry -> dnsmasq.conf, hosts.d files and the proxy's Caddy JSON, as strings
 * (pure). */
#ifndef CONDUIT_RENDER_H
#define CONDUIT_RENDER_H

#include <stdbool.h>
#include <stddef.h>

#include "core/registry.h"

/* One file of state/dns/hosts.d/. */
struct render_file {
    char name[72];             /* file name inside hosts.d: the service name */
    char *data;                /* NUL-terminated */
};

/* Everything generated from one registry. */
struct render_out {
    char *dnsmasq_conf;        /* state/dns/dnsmasq.conf */
    char *proxy;               /* the proxy's config: state/routing/caddy.json */
    struct render_file *hosts; /* sorted by name, one per active service (none when pending) */
    size_t nhosts;
};

/* Whether upstream (one line of service's upstream list, as written) is in the rotation. */
typedef bool (*render_rotation_fn)(const char *service, const char *upstream, void *arg);

/* Render all configs from the records *svcs[0..n) (inactive ones are skipped; a NULL pointer
 * is -EINVAL). Deterministic: the same input gives byte-identical output. Every value is
 * re-validated; a value that fails gives -EINVAL and no output. 0, -EINVAL or -ENOMEM. On
 * success free *out with render_free.
 * Besides the validators, -EINVAL for: any rendered value (cfg included) with a byte < 0x21 or
 * >= 0x7f or one of {}#"\` ; two live records with one name or domain; an active record without
 * an upstream; a dns-mode active record with an upstream host that is not an IP address. On any
 * error *out is left zeroed. cfg->hostname is never refused: dnsmasq.conf pins the gateway
 * address's reverse lookup to it when it is a valid host name, and to no name (".") otherwise.
 * rot (NULL: every upstream) says which upstreams are in the rotation; it is called with
 * rot_arg, once per upstream line of each active record.
 * What is rendered: a pending record, nothing. An active proxy-mode record: a hosts.d line to
 * the gateway address and one entry in the proxy's host map, whose pool (K in-rotation
 * upstreams, lb_policy, scheme) routes it; "down" (503) when no upstream is in the rotation.
 * An active dns-mode record: a hosts.d line per in-rotation upstream address, or per upstream
 * address when none is. The proxy config's routes and handlers depend on the pool keys in use
 * only, never on the number of records (docs/architecture.md, "The proxy's shape"). */
int render_all(const struct cfs_config *cfg, const struct reg_service *const *svcs, size_t n,
               render_rotation_fn rot, void *rot_arg, struct render_out *out);

/* Free what render_all allocated; safe on a zeroed struct. */
void render_free(struct render_out *out);

/* The folder the proxy loads its serving certificates from, state/tls/serving: every *.pem file
 * there is one leaf chain with its key (the CA service keeps it). 0 or -ENAMETOOLONG (buf then
 * empty). */
int render_serving_dir(const struct cfs_config *cfg, char *buf, size_t len);

#endif
