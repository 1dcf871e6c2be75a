/* config.h: the daemon-wide settings (struct cfs_config), filled by fs/main.c from the command
 * line and mount.json, read-only afterwards. A header of its own, so that a module that needs a
 * setting does not pull in the registry's model. */
#ifndef CONDUIT_CONFIG_H
#define CONDUIT_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#define CFG_MAX_SUFFIXES 16

/* Daemon-wide settings, filled by fs/main.c from the command line, read-only afterwards. */
struct cfs_config {
    char state_dir[PATH_MAX];          /* absolute */
    char suffixes[CFG_MAX_SUFFIXES][254];
    size_t nsuffixes;
    const char *suffixes_ptr[CFG_MAX_SUFFIXES];  /* suffixes[i], in the form val_domain takes */
    char gateway_ip[64];               /* DNS answer for proxy-mode domains */
    char dns_addr[64];                 /* dnsmasq listen address */
    unsigned dns_port;
    char https_addr[64];               /* Caddy listen address */
    unsigned https_port;
    bool manage;                       /* start and reload daemons */
    char hostname[256];                /* this gateway host's name */
    char key_type[16];                 /* --key-type: "ed25519" or "ecdsa-p256" */
    int leaf_days;                     /* --leaf-days */
    int renew_before_days;             /* --renew-before-days */
    int health_interval_s;             /* --health-interval */
    int health_timeout_s;              /* --health-timeout */
    int health_threshold;              /* --health-threshold: failures before unhealthy */
    bool has_admin_group;              /* --admin-group given */
    unsigned admin_gid;                /* its gid: members may write */
    bool empty_registry;               /* --empty-registry: a missing services.json starts an
                                        * empty registry even when the audit trail shows
                                        * registered services */
};

#endif
