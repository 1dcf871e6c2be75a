/* main.c: command line, start-up order (state dir -> signer -> audit -> CA -> registry ->
 * mount), FUSE loop, and one shut-down path for every outcome. */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "audit/audit.h"
#include <curl/curl.h>

#include "core/casvc.h"
#include "core/catypes.h"
#include "core/gateway.h"
#include "core/health.h"
#include "core/mountopts.h"
#include "core/pipeline.h"
#include "core/replay.h"
#include "core/signer.h"
#include "core/supervisor.h"
#include "core/statefile.h"
#include "core/validate.h"
#include "fs/fs.h"
#include "monitor/monitor.h"

#define EXIT_USAGE 2
#define DEFAULT_DOMAINS "internal,local,test"   /* the design's suffixes; the first is default */

/* FUSE worker threads. A request holds its thread until it is answered, and a slow live read
 * (metrics.prom behind an unreachable target, audit/verify of a long chain) holds one for
 * seconds while it waits for a run that concurrent readers share. libfuse's default of 10 let
 * a dozen such readers, which any local user may start, stall every other request. 256 leaves
 * room for 50 hostile readers several times over; a waiting thread costs a few resident pages
 * and no CPU. After a burst, threads beyond 16 idle ones end. */
#define FUSE_MAX_THREADS 256
#define FUSE_IDLE_THREADS 16

#if FUSE_USE_VERSION < FUSE_MAKE_VERSION(3, 12)
/* The loop that honours max_threads (libfuse >= 3.12), under its exported name: API level 35,
 * which this project compiles at, declares only the older loop, whose config cannot set it.
 * Here struct fuse_loop_config only names the opaque config of fuse_loop_cfg_create. */
int fuse_loop_mt_312(struct fuse *f, struct fuse_loop_config *config);
#define loop_mt fuse_loop_mt_312
#else
#define loop_mt fuse_loop_mt
#endif

struct opts {
    const char *state;
    const char *source;
    const char *mountpoint;
    const char *admin_group;
    const char *domains;
    const char *gateway_ip;
    const char *dns_listen;
    const char *https_listen;
    const char *key_type;
    const char *leaf_days;
    const char *renew_before_days;
    const char *health_interval;
    const char *health_timeout;
    const char *health_threshold;
    const char *alert_gpu_temp, *alert_gpu_vram, *alert_mem, *alert_disk;   /* monitor/ */
    const char *docker_socket, *probe_ttl;
    int no_manage;
    int empty_registry;
    int foreground, single, debug;
    struct fuse_args fargs;
};

/* A copy of one -o list: the values taken from it point into text. */
struct opt_copy {
    struct opt_copy *next;
    char text[];
};

/* The FUSE arguments of main and the -o copies, freed by free_args (leave() on the paths that
 * exit early, main's end otherwise). */
static struct fuse_args *g_fargs;
static struct opt_copy *g_copies;
static char mountpoint_abs[PATH_MAX];   /* the mount point, resolved before anything starts */

static void free_args(void)
{
    struct opt_copy *c, *next;

    if (g_fargs)
        fuse_opt_free_args(g_fargs);
    for (c = g_copies; c; c = next) {
        next = c->next;
        free(c);
    }
    g_copies = NULL;
}

/* Exit with status before anything is mounted or started, freeing the arguments. */
static void leave(int status)
{
    free_args();
    exit(status);
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: conduitfs [options] [SOURCE] MOUNTPOINT\n"
        "       conduitfs verify [--state DIR] [--pubkey HEX]\n"
        "       conduitfs recover --state DIR\n"
        "\n"
        "Mounts the conduit gateway: services/, ca/, monitor/, audit/.\n"
        "\n"
        "options:\n"
        "  --state DIR          state directory (default ~/.config/$CONDUIT_APP_NAME,\n"
        "                       CONDUIT_APP_NAME defaults to qp-conduit)\n"
        "  --no-manage          write the configs only; start and reload no daemons\n"
        "                       (default: start and supervise dnsmasq and Caddy)\n"
        "  --empty-registry     start with no services when services.json is missing even\n"
        "                       though the audit trail shows registered services (otherwise\n"
        "                       the mount is refused; `conduitfs recover` rebuilds the file)\n"
        "  --domains LIST       allowed domain suffixes, comma-separated; a new service is\n"
        "                       NAME.<the first> (default internal,local,test)\n"
        "  --gateway-ip IP      DNS answer for proxy-mode services (default: the HTTPS\n"
        "                       listen address, or 127.0.0.1 when that is a wildcard)\n"
        "  --dns-listen A:P     dnsmasq listen address (default 127.0.0.1:5353)\n"
        "  --https-listen A:P   Caddy listen address (default 127.0.0.1:8443)\n"
        "  --key-type T         ecdsa-p256 (default) or ed25519, for a new CA and its leaves\n"
        "  --leaf-days N        leaf certificate lifetime (default 365)\n"
        "  --renew-before-days N  reissue leaves with fewer days left (default 120)\n"
        "  --health-interval S  seconds between health probes (default 30)\n"
        "  --health-timeout S   seconds before a probe fails (default 5)\n"
        "  --health-threshold N failures in a row before unhealthy (default 2)\n"
        "  --alert-gpu-temp C   monitor alert at a GPU temperature of C degrees (default 85)\n"
        "  --alert-gpu-vram P   monitor alert at P %% of a GPU's memory used (default 90)\n"
        "  --alert-mem P        monitor alert at P %% of host memory used (default 90)\n"
        "  --alert-disk P       monitor alert at P %% of / used (default 90)\n"
        "  --docker-socket PATH this host's Docker Engine API socket (default\n"
        "                       $CONDUIT_DOCKER_SOCKET, else /var/run/docker.sock)\n"
        "  --probe-ttl S        seconds a probe's result is shared (default 2)\n"
        "  -f                   stay in the foreground\n"
        "  -d                   debug: foreground, and log every FUSE request\n"
        "  -s                   single-threaded FUSE loop\n"
        "  --admin-group GROUP  members of GROUP may write (with -o allow_other,\n"
        "                       default_permissions); others may only read\n"
        "  -o OPT[,OPT...]      FUSE mount options (allow_other, default_permissions, ...);\n"
        "                       also state=, domains=, gateway_ip=, dns_listen=, https_listen=,\n"
        "                       key_type=, admin_group=, leaf_days=, renew_before_days=,\n"
        "                       health_interval=, health_timeout=, health_threshold=,\n"
        "                       manage, no_manage, empty_registry, alert_gpu_temp=,\n"
        "                       alert_gpu_vram=, alert_mem=, alert_disk=, docker_socket=,\n"
        "                       probe_ttl=, as in fstab:\n"
        "                       conduitfs /run/conduit fuse.conduitfs state=/var/lib/qp-conduit,\n"
        "                       allow_other,default_permissions,admin_group=conduit 0 0\n"
        "  -h, --help           this text\n"
        "  -V, --version        print the version\n"
        "\n"
        "A mount records the options it was given in STATE/mount.json; a later mount of the\n"
        "same state directory uses them for every option it is not given. An option given\n"
        "empty (--admin-group '', -o admin_group=) clears its recorded value.\n");
}

/* One-line error on stderr and exit code 2, before anything is mounted. */
static void die_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "conduitfs: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see --help)\n");
    leave(EXIT_USAGE);
}

/* Parse "ADDR:PORT" (IPv6 as [ADDR]:PORT) into addr and port. 0 or -1. */
static int parse_listen(const char *s, char *addr, size_t addrlen, unsigned *port)
{
    struct val_upstream up;

    if (val_upstream(s, &up) < 0 || up.tls || strncmp(s, "http", 4) == 0 ||
        up.kind == VAL_HOST_NAME || strlen(up.host) >= addrlen)
        return -1;
    snprintf(addr, addrlen, "%s", up.host);
    *port = up.port;
    return 0;
}

/* Value of an option given as "--opt VALUE" or "--opt=VALUE"; advances *i. */
static const char *opt_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);

    if (strncmp(argv[*i], name, n) == 0 && argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (strcmp(argv[*i], name) != 0)
        return NULL;
    if (*i + 1 >= argc)
        die_usage("option %s needs a value", name);
    return argv[++*i];
}

/* The options that take a value, by their -o (fstab) spelling. The same names are recorded in
 * the state directory's mount.json (all but state), so a remount without options uses them. */
static const struct { const char *key; size_t off; } opt_keys[] = {
    { "state", offsetof(struct opts, state) },
    { "domains", offsetof(struct opts, domains) },
    { "gateway_ip", offsetof(struct opts, gateway_ip) },
    { "dns_listen", offsetof(struct opts, dns_listen) },
    { "https_listen", offsetof(struct opts, https_listen) },
    { "key_type", offsetof(struct opts, key_type) },
    { "admin_group", offsetof(struct opts, admin_group) },
    { "leaf_days", offsetof(struct opts, leaf_days) },
    { "renew_before_days", offsetof(struct opts, renew_before_days) },
    { "health_interval", offsetof(struct opts, health_interval) },
    { "health_timeout", offsetof(struct opts, health_timeout) },
    { "health_threshold", offsetof(struct opts, health_threshold) },
    { "alert_gpu_temp", offsetof(struct opts, alert_gpu_temp) },
    { "alert_gpu_vram", offsetof(struct opts, alert_gpu_vram) },
    { "alert_mem", offsetof(struct opts, alert_mem) },
    { "alert_disk", offsetof(struct opts, alert_disk) },
    { "docker_socket", offsetof(struct opts, docker_socket) },
    { "probe_ttl", offsetof(struct opts, probe_ttl) },
};
#define NOPT_KEYS (sizeof(opt_keys) / sizeof(opt_keys[0]))

/* The value of option key k in o (NULL when not given). */
static const char **opt_field(struct opts *o, size_t k)
{
    return (const char **)((char *)o + opt_keys[k].off);
}

/* Split a -o list: our own keys (the fstab spelling of the long options) are taken out, the
 * rest go to FUSE. The values point into a copy that lives until free_args. */
static void parse_mount_opts(struct opts *o, const char *list)
{
    size_t len = strlen(list);
    struct opt_copy *c = malloc(sizeof(*c) + len + 1);
    char *save = NULL, *tok;

    if (!c)
        die_usage("%s", "out of memory");
    memcpy(c->text, list, len + 1);
    c->next = g_copies;
    g_copies = c;
    for (tok = strtok_r(c->text, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        size_t klen = eq ? (size_t)(eq - tok) : strlen(tok);
        bool ours = false;

        for (size_t k = 0; k < NOPT_KEYS && eq; k++) {
            if (strlen(opt_keys[k].key) == klen && strncmp(tok, opt_keys[k].key, klen) == 0) {
                *opt_field(o, k) = eq + 1;
                ours = true;
            }
        }
        if (strcmp(tok, "no_manage") == 0 || strcmp(tok, "manage") == 0) {
            o->no_manage = tok[0] == 'n';
            ours = true;
        }
        if (strcmp(tok, "empty_registry") == 0) {
            o->empty_registry = 1;
            ours = true;
        }
        if (!ours) {
            fuse_opt_add_arg(&o->fargs, "-o");
            fuse_opt_add_arg(&o->fargs, tok);
        }
    }
}

static void parse_args(int argc, char **argv, struct opts *o)
{
    const char *v;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            leave(0);
        } else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
            printf("conduitfs %s (libfuse %d)\n", CONDUIT_VERSION, fuse_version());
            leave(0);
        } else if ((v = opt_value(argc, argv, &i, "--state"))) {
            o->state = v;
        } else if ((v = opt_value(argc, argv, &i, "--domains"))) {
            o->domains = v;
        } else if ((v = opt_value(argc, argv, &i, "--gateway-ip"))) {
            o->gateway_ip = v;
        } else if ((v = opt_value(argc, argv, &i, "--dns-listen"))) {
            o->dns_listen = v;
        } else if ((v = opt_value(argc, argv, &i, "--https-listen"))) {
            o->https_listen = v;
        } else if ((v = opt_value(argc, argv, &i, "--admin-group"))) {
            o->admin_group = v;
        } else if ((v = opt_value(argc, argv, &i, "--key-type"))) {
            o->key_type = v;
        } else if ((v = opt_value(argc, argv, &i, "--leaf-days"))) {
            o->leaf_days = v;
        } else if ((v = opt_value(argc, argv, &i, "--renew-before-days"))) {
            o->renew_before_days = v;
        } else if ((v = opt_value(argc, argv, &i, "--health-interval"))) {
            o->health_interval = v;
        } else if ((v = opt_value(argc, argv, &i, "--health-timeout"))) {
            o->health_timeout = v;
        } else if ((v = opt_value(argc, argv, &i, "--health-threshold"))) {
            o->health_threshold = v;
        } else if ((v = opt_value(argc, argv, &i, "--alert-gpu-temp"))) {
            o->alert_gpu_temp = v;
        } else if ((v = opt_value(argc, argv, &i, "--alert-gpu-vram"))) {
            o->alert_gpu_vram = v;
        } else if ((v = opt_value(argc, argv, &i, "--alert-mem"))) {
            o->alert_mem = v;
        } else if ((v = opt_value(argc, argv, &i, "--alert-disk"))) {
            o->alert_disk = v;
        } else if ((v = opt_value(argc, argv, &i, "--docker-socket"))) {
            o->docker_socket = v;
        } else if ((v = opt_value(argc, argv, &i, "--probe-ttl"))) {
            o->probe_ttl = v;
        } else if (strcmp(a, "--no-manage") == 0) {
            o->no_manage = 1;
        } else if (strcmp(a, "--manage") == 0) {
            o->no_manage = 0;
        } else if (strcmp(a, "--empty-registry") == 0) {
            o->empty_registry = 1;
        } else if (strcmp(a, "-f") == 0) {
            o->foreground = 1;
        } else if (strcmp(a, "-s") == 0) {
            o->single = 1;
        } else if (strcmp(a, "-d") == 0 || strcmp(a, "--debug") == 0) {
            o->debug = o->foreground = 1;
            fuse_opt_add_arg(&o->fargs, "-d");
        } else if (strcmp(a, "-o") == 0) {
            if (i + 1 >= argc)
                die_usage("option %s needs a value", a);
            parse_mount_opts(o, argv[++i]);
        } else if (strncmp(a, "-o", 2) == 0) {
            parse_mount_opts(o, a + 2);
        } else if (a[0] == '-') {
            die_usage("unknown option %s", a);
        } else if (!o->source) {
            o->source = a;
        } else if (!o->mountpoint) {
            o->mountpoint = a;
        } else {
            die_usage("unexpected argument %s", a);
        }
    }
    /* `conduitfs MOUNTPOINT`, or `conduitfs SOURCE MOUNTPOINT` as mount.fuse3 calls it */
    if (!o->mountpoint) {
        o->mountpoint = o->source;
        o->source = NULL;
    }
    if (!o->mountpoint)
        die_usage("%s", "missing MOUNTPOINT");
    /* Absolute from here on: the daemon's working directory becomes / (fuse_daemonize, also in
     * the foreground), and the unmount at exit must name this directory, not one under /. */
    if (!realpath(o->mountpoint, mountpoint_abs)) {
        fprintf(stderr, "conduitfs: mount point %s: %s%s\n", o->mountpoint, strerror(errno),
                errno == ENOTCONN ? " (a dead mount: fusermount3 -u it first)" : "");
        leave(EXIT_USAGE);
    }
    o->mountpoint = mountpoint_abs;
}

/* A positive count option: 1..max, or exit 2. */
static int parse_count(const char *s, const char *name, int dflt, long max)
{
    char *end;
    long v;

    if (!s)
        return dflt;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > max)
        die_usage("%s: expected a positive number", name);
    return (int)v;
}

/* The state directory the options name (--state, or ~/.config/$CONDUIT_APP_NAME), into state;
 * exits 2 when it cannot be named. */
static void state_dir_of(const struct opts *o, char *state, size_t len)
{
    const char *app = getenv("CONDUIT_APP_NAME");
    const char *home = getenv("HOME");

    if (o->state) {
        if (snprintf(state, len, "%s", o->state) >= (int)len)
            die_usage("%s", "state directory path too long");
        return;
    }
    if (!app || !*app)
        app = "qp-conduit";
    if (val_name(app) < 0 && strcmp(app, "qp-conduit") != 0)
        die_usage("CONDUIT_APP_NAME \"%s\" is not a plain name", app);
    if (!home || !*home)
        die_usage("%s", "HOME is not set; give --state DIR");
    if (snprintf(state, len, "%s/.config/%s", home, app) >= (int)len)
        die_usage("%s", "state directory path too long");
}

/* A copy of text that lives until free_args; exits 2 without memory. */
static const char *keep_copy(const char *text)
{
    size_t len = strlen(text);
    struct opt_copy *c = malloc(sizeof(*c) + len + 1);

    if (!c)
        die_usage("%s", "out of memory");
    memcpy(c->text, text, len + 1);
    c->next = g_copies;
    g_copies = c;
    return c->text;
}

/* The options the state directory was last mounted with (mount.json) fill in those not given
 * now: a remount without options is the same gateway. Exits 2 on an unreadable record. */
static void apply_mount_record(struct opts *o)
{
    char state[PATH_MAX], err[512];
    json_t *rec = NULL;

    state_dir_of(o, state, sizeof(state));
    if (access(state, F_OK) != 0)
        return;                 /* a new state directory: nothing recorded yet */
    if (mopt_load(state, &rec, err, sizeof(err)) < 0) {
        fprintf(stderr, "conduitfs: %s\n", err);
        leave(EXIT_USAGE);
    }
    for (size_t k = 0; k < NOPT_KEYS; k++) {
        const char *v = json_string_value(json_object_get(rec, opt_keys[k].key));

        if (strcmp(opt_keys[k].key, "state") != 0 && v && !*opt_field(o, k))
            *opt_field(o, k) = keep_copy(v);
    }
    json_decref(rec);
}

/* An option given empty (--admin-group '', -o admin_group=) clears its recorded value: the
 * default applies, and mount.json forgets it. */
static void clear_empty_options(struct opts *o)
{
    for (size_t k = 0; k < NOPT_KEYS; k++)
        if (strcmp(opt_keys[k].key, "state") != 0 && *opt_field(o, k) && !**opt_field(o, k))
            *opt_field(o, k) = NULL;
}

/* The options this mount was given or inherited, by their -o names (state excluded): what
 * mount.json records and the conduit_mount audit entry shows. NULL without memory. */
static json_t *mount_record(struct opts *o)
{
    json_t *rec = json_object();

    for (size_t k = 0; rec && k < NOPT_KEYS; k++)
        if (strcmp(opt_keys[k].key, "state") != 0 && *opt_field(o, k) &&
            json_object_set_new(rec, opt_keys[k].key, json_string(*opt_field(o, k))) < 0) {
            json_decref(rec);
            return NULL;
        }
    return rec;
}

/* Fill fs_cfg from the options; exits 2 on a bad value. */
static void build_config(const struct opts *o, struct cfs_config *cfg)
{
    char state[PATH_MAX], list[1024];
    char *save = NULL, *tok;
    enum ca_key_type key_type;
    bool created;
    int rc;

    memset(cfg, 0, sizeof(*cfg));
    state_dir_of(o, state, sizeof(state));
    rc = state_dir_init(state, &created);
    if (rc < 0) {
        fprintf(stderr, "conduitfs: unusable state directory %s: %s\n", state, strerror(-rc));
        leave(EXIT_USAGE);
    }
    if (!realpath(state, cfg->state_dir)) {
        fprintf(stderr, "conduitfs: unusable state directory %s: %s\n", state, strerror(errno));
        leave(EXIT_USAGE);
    }
    cfg->manage = !o->no_manage;
    cfg->empty_registry = o->empty_registry != 0;

    if (snprintf(list, sizeof(list), "%s", o->domains ? o->domains : DEFAULT_DOMAINS) >=
        (int)sizeof(list))
        die_usage("%s", "--domains list too long");
    for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        const char *one[1];
        char probe[300];

        if (cfg->nsuffixes == CFG_MAX_SUFFIXES)
            die_usage("%s", "--domains: too many suffixes");
        /* a suffix is valid when "x.<suffix>" is a valid domain under it */
        one[0] = tok;
        snprintf(probe, sizeof(probe), "x.%s", tok);
        if (strlen(tok) > 200 || val_domain(probe, one, 1) < 0)
            die_usage("--domains: invalid suffix \"%s\"", tok);
        snprintf(cfg->suffixes[cfg->nsuffixes], sizeof(cfg->suffixes[0]), "%s", tok);
        cfg->suffixes_ptr[cfg->nsuffixes] = cfg->suffixes[cfg->nsuffixes];
        cfg->nsuffixes++;
    }
    if (cfg->nsuffixes == 0)
        die_usage("%s", "--domains: no suffix given");

    if (parse_listen(o->dns_listen ? o->dns_listen : "127.0.0.1:5353", cfg->dns_addr,
                     sizeof(cfg->dns_addr), &cfg->dns_port) < 0)
        die_usage("--dns-listen: \"%s\" is not ADDR:PORT", o->dns_listen);
    if (parse_listen(o->https_listen ? o->https_listen : "127.0.0.1:8443", cfg->https_addr,
                     sizeof(cfg->https_addr), &cfg->https_port) < 0)
        die_usage("--https-listen: \"%s\" is not ADDR:PORT", o->https_listen);
    /* The gateway address defaults to the HTTPS listen address; a wildcard listen address is
     * no answer a client can use, so it falls back to loopback. */
    if (o->gateway_ip)
        snprintf(cfg->gateway_ip, sizeof(cfg->gateway_ip), "%s", o->gateway_ip);
    else if (strcmp(cfg->https_addr, "0.0.0.0") == 0 || strcmp(cfg->https_addr, "::") == 0)
        snprintf(cfg->gateway_ip, sizeof(cfg->gateway_ip), "127.0.0.1");
    else
        snprintf(cfg->gateway_ip, sizeof(cfg->gateway_ip), "%s", cfg->https_addr);
    if (!val_is_ipv4(cfg->gateway_ip) && !strchr(cfg->gateway_ip, ':'))
        die_usage("--gateway-ip: \"%s\" is not an IP address", cfg->gateway_ip);
    if (strchr(cfg->gateway_ip, ':') && !val_is_ipv6(cfg->gateway_ip))
        die_usage("--gateway-ip: \"%s\" is not an IP address", cfg->gateway_ip);
    snprintf(cfg->key_type, sizeof(cfg->key_type), "%s",
             o->key_type ? o->key_type : ca_key_type_name(CA_KEY_ECDSA_P256));
    if (ca_key_type_parse(cfg->key_type, &key_type) < 0)
        die_usage("--key-type: \"%s\" is not ed25519 or ecdsa-p256", cfg->key_type);
    cfg->leaf_days = parse_count(o->leaf_days, "--leaf-days", 365, 36500);
    cfg->renew_before_days = parse_count(o->renew_before_days, "--renew-before-days", 120, 36500);
    cfg->health_interval_s = parse_count(o->health_interval, "--health-interval", 30, 86400);
    cfg->health_timeout_s = parse_count(o->health_timeout, "--health-timeout", 5, 3600);
    cfg->health_threshold = parse_count(o->health_threshold, "--health-threshold", 2, 1000);
    if (gethostname(cfg->hostname, sizeof(cfg->hostname) - 1) < 0)
        snprintf(cfg->hostname, sizeof(cfg->hostname), "localhost");
    if (o->admin_group) {
        struct group gr, *res = NULL;
        char buf[4096];

        if (getgrnam_r(o->admin_group, &gr, buf, sizeof(buf), &res) != 0 || !res)
            die_usage("--admin-group: no group \"%s\"", o->admin_group);
        cfg->admin_gid = res->gr_gid;
        cfg->has_admin_group = true;
    }
    if (created)
        setenv("CONDUIT_FIRST_INIT", "1", 1);
}

/* Fill the monitor's settings from the options (monitor/ validates them); exits 2 on a bad
 * value. */
static void build_mon_options(const struct opts *o, struct mon_options *m)
{
    const struct { const char *key, *opt, *value; } v[] = {
        { "alert_gpu_temp", "--alert-gpu-temp", o->alert_gpu_temp },
        { "alert_gpu_vram", "--alert-gpu-vram", o->alert_gpu_vram },
        { "alert_mem", "--alert-mem", o->alert_mem },
        { "alert_disk", "--alert-disk", o->alert_disk },
        { "docker_socket", "--docker-socket", o->docker_socket },
        { "probe_ttl", "--probe-ttl", o->probe_ttl },
    };
    char err[256], line[320];

    mon_options_default(m);
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        if (!v[i].value || mon_options_set(m, v[i].key, v[i].value, err, sizeof(err)) == 0)
            continue;
        snprintf(line, sizeof(line), "%s: %s", v[i].opt, err);
        die_usage("%s", line);
    }
}

/* A successful mount: record its options in mount.json (a remount without options uses them)
 * and seal a conduit_mount entry that shows them, with the mounting user (into who). */
static void audit_mount(struct opts *o, char *who, size_t wholen)
{
    json_t *rec = mount_record(o), *d;
    char msg[PATH_MAX + 16];
    int rc;

    rc = rec ? mopt_save(fs_cfg.state_dir, rec) : -ENOMEM;
    if (rc < 0)
        syslog(LOG_WARNING, "cannot record the mount options in %s/mount.json: %s",
               fs_cfg.state_dir, strerror(-rc));
    snprintf(who, wholen, "%s", getenv("USER") ? getenv("USER") : "root");
    snprintf(msg, sizeof(msg), "Mounted %s", o->mountpoint);
    d = json_pack("{s:s,s:s,s:b,s:O?}", "mountpoint", o->mountpoint, "state_dir",
                  fs_cfg.state_dir, "manage", fs_cfg.manage, "options", rec);
    audit_log("conduit_mount", "success", msg, who, d);
    json_decref(d);
    json_decref(rec);
}

/* SIGHUP: re-render every config from the registry and reload the proxy. The signal is blocked
 * in every thread (the mask is set before any thread starts) and taken here with sigwait. */
static void *sighup_main(void *arg)
{
    sigset_t set;
    int sig;

    (void)arg;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    for (;;) {
        int rc;

        if (sigwait(&set, &sig) != 0)
            continue;
        rc = pipe_rerender();
        if (rc == 0)
            rc = gw_reload(false);
        syslog(rc ? LOG_ERR : LOG_INFO, "SIGHUP: configs re-rendered from the registry%s%s",
               rc ? ": " : "", rc ? strerror(-rc) : "");
        audit_log_event("config_reload", rc ? "failure" : "success",
                        "Re-rendered every config from the registry (SIGHUP)", NULL);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    struct opts o = { .fargs = FUSE_ARGS_INIT(0, NULL) };
    struct fuse *fuse = NULL;
    struct mon_options mopts;
    struct fuse_loop_config *lcfg = NULL;
    char err[512], who[64];
    int rc, status = 1;
    bool first, mounted = false;
    struct stat under, now;

    umask(077);
    /* Memory a commit frees goes back to the kernel: a snapshot of the registry (a few KiB per
     * service) is copied at every commit, and glibc's default raises its mmap threshold to the
     * largest block freed, after which such copies stay resident in the heap, one arena per
     * thread that ever committed. At 1000 services this keeps VmRSS near 31 MiB instead of 52
     * (docs/benchmarks.md). */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    mallopt(M_ARENA_MAX, 2);
    if (argc == 3 && strcmp(argv[1], SIGNER_ARG) == 0)
        return signer_exec_main(argv[2]);
    if (argc > 1 && strcmp(argv[1], "verify") == 0)
        return replay_verify_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "recover") == 0)
        return replay_recover_main(argc - 1, argv + 1);
    g_fargs = &o.fargs;
    fuse_opt_add_arg(&o.fargs, argv[0]);
    parse_args(argc, argv, &o);
    apply_mount_record(&o);
    clear_empty_options(&o);
    build_mon_options(&o, &mopts);
    build_config(&o, &fs_cfg);
    /* An option that would invalidate registered services is refused here, before anything
     * starts: the registry is fine, the options are not (no quarantine copy). */
    if (mopt_check_domains(&fs_cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "conduitfs: %s\n", err);
        leave(EXIT_USAGE);
    }
    first = getenv("CONDUIT_FIRST_INIT") != NULL;
    unsetenv("CONDUIT_FIRST_INIT");
    /* Foreground: stderr too, unless stderr already goes to the journal (systemd). */
    openlog("conduitfs", LOG_PID | (o.foreground && !getenv("JOURNAL_STREAM") ? LOG_PERROR : 0),
            LOG_DAEMON);

    /* Start-up order: state dir (above) -> signer -> daemons present -> audit -> CA ->
     * registry -> monitor -> mount -> daemonize -> threads. The signer is forked (and
     * re-executed) first, while this process has one thread and has read no key: only the
     * signer reads state/key and state/tls/ca.key, and this process holds their public halves.
     * Any failure before the mount takes the one shut-down path at out (status 2). */
    rc = signer_start(fs_cfg.state_dir, "/proc/self/exe", err, sizeof(err));
    if (rc == 0) {
        audit_set_signer(signer_audit());
        /* once for the process (gateway, health prober, monitor), while it has one thread */
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            snprintf(err, sizeof(err), "cannot initialize libcurl");
            rc = -EIO;
        }
    }
    if (rc == 0) {
        rc = fs_cfg.manage ? sup_check(&fs_cfg, err, sizeof(err)) : 0;
    }
    if (rc == 0)
        rc = audit_open(fs_cfg.state_dir, err, sizeof(err));
    if (rc == 0)
        rc = ca_service_open(&fs_cfg, err, sizeof(err));
    if (rc == 0)
        rc = pipe_open(&fs_cfg, err, sizeof(err));
    if (rc == 0)
        rc = mon_open(fs_cfg.state_dir, &mopts, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "conduitfs: %s\n", err);
        status = EXIT_USAGE;
        goto out;
    }
    if (first) {
        json_t *d = json_pack("{s:s}", "state_dir", fs_cfg.state_dir);

        snprintf(who, sizeof(who), "%s", getenv("USER") ? getenv("USER") : "root");
        audit_log("conduit_setup", "success", "Initialized state directory", who, d);
        json_decref(d);
    }
    fs_ops_start();

    fuse = fuse_new(&o.fargs, &fs_ops, sizeof(fs_ops), NULL);
    if (!fuse) {
        fprintf(stderr, "conduitfs: bad FUSE options\n");
        status = EXIT_USAGE;
        goto out;
    }
    /* The directory under the mount, to tell at exit whether the unmount really happened. */
    if (stat(o.mountpoint, &under) != 0)
        memset(&under, 0, sizeof(under));
    if (fuse_mount(fuse, o.mountpoint) != 0) {
        fprintf(stderr, "conduitfs: cannot mount on %s\n", o.mountpoint);
        goto out_destroy;
    }
    mounted = true;
    /* The signer's socket is inherited by the daemonized child; the parent's copy closes when
     * it exits, so the signer lives exactly as long as the daemon. */
    if (fuse_daemonize(o.foreground) != 0)
        goto out_unmount;
    if (fuse_set_signal_handlers(fuse_get_session(fuse)) != 0)
        goto out_unmount;
    /* Threads start only now: fuse_daemonize forks, and threads do not survive a fork.
     * SIGHUP is blocked first, so that every thread inherits the mask and only sighup_main
     * takes it (fuse_set_signal_handlers would otherwise treat it as an exit). */
    {
        sigset_t hup;
        pthread_t tid;

        sigemptyset(&hup);
        sigaddset(&hup, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &hup, NULL);
        if (pthread_create(&tid, NULL, sighup_main, NULL) != 0)
            goto out_unmount;
        pthread_detach(tid);
    }
    if (fs_cfg.manage) {
        if (sup_start(&fs_cfg) < 0)
            goto out_unmount;
        gw_set_live(&fs_cfg);
        if (health_start(&fs_cfg) < 0)
            goto out_unmount;
    }
    if (ca_service_start() < 0)
        goto out_unmount;
    syslog(LOG_INFO, "mounted %s (state %s, signer pid %ld)", o.mountpoint, fs_cfg.state_dir,
           (long)signer_pid());
    audit_checkpoint_commit();
    audit_mount(&o, who, sizeof(who));
    lcfg = o.single ? NULL : fuse_loop_cfg_create();
    if (lcfg) {
        fuse_loop_cfg_set_max_threads(lcfg, FUSE_MAX_THREADS);
        fuse_loop_cfg_set_idle_threads(lcfg, FUSE_IDLE_THREADS);
    }
    rc = o.single ? fuse_loop(fuse) : loop_mt(fuse, lcfg);
    fuse_loop_cfg_destroy(lcfg);
    /* The loop returns the number of the signal that ended it: SIGINT, SIGTERM (a stop,
     * exit 0) or 0 (fusermount3 -u); anything else is an error. */
    status = rc == 0 || rc == SIGINT || rc == SIGTERM ? 0 : 1;
    fuse_remove_signal_handlers(fuse_get_session(fuse));
out_unmount:
    fuse_unmount(fuse);
out_destroy:
    fuse_destroy(fuse);
out:
    ca_service_close();     /* first: the renewal thread may still ask for a proxy reload */
    health_stop();
    gw_set_live(NULL);
    sup_stop();
    mon_close();
    pipe_close();
    if (mounted) {
        json_t *d = json_pack("{s:s,s:i}", "mountpoint", o.mountpoint, "status", status);

        audit_log_event("conduit_unmount", status == 0 ? "success" : "failure",
                        status == 0 ? "Unmounted" : "Unmounted after an error", d);
        json_decref(d);
    }
    audit_close();          /* removes SQLite's -wal and -shm files */
    signer_stop();          /* last: closing the CA and the trail may still seal lines */
    free_args();
    /* Say what happened: the FUSE session is closed by now, so a mount still there answers
     * ENOTCONN at once instead of hanging this stat. */
    if (mounted && stat(o.mountpoint, &now) == 0 && now.st_dev == under.st_dev &&
        now.st_ino == under.st_ino)
        syslog(LOG_INFO, "unmounted %s", o.mountpoint);
    else if (mounted)
        syslog(LOG_ERR, "could not unmount %s (fusermount3 -u %s)", o.mountpoint, o.mountpoint);
    return status;
}
