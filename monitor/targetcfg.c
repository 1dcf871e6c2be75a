/* targetcfg.c: a monitoring target's settings: the strict validator of a target.json write,
 * the settings as JSON, and their comparison. Pure: no state, no I/O (the key rules that need
 * the file system are keys.c's). */
#include "monitor/probe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/validate.h"

static const char *const type_names[] = { "server", "gpu", "containers" };
static const enum mon_file type_files[] = { MON_FILE_SERVER, MON_FILE_GPU, MON_FILE_CONTAINERS };
#define NTYPES 3

static bool host_ok(const char *s)
{
    return strlen(s) < MON_HOST_MAX && (val_is_ipv4(s) || val_is_hostname(s) || val_is_ipv6(s));
}

/* An absolute path shorter than max, of [A-Za-z0-9._-] and the extra characters, without
 * empty, "." or ".." components. */
static bool path_ok(const char *s, size_t max, const char *extra)
{
    size_t n = strlen(s);
    const char *comp;

    if (n < 2 || n >= max || s[0] != '/' || s[n - 1] == '/')
        return false;
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '.' || *c == '_' || *c == '-' || *c == '/' || (*c && strchr(extra, *c))))
            return false;
    for (comp = s + 1; comp; ) {
        const char *slash = strchr(comp, '/');
        size_t len = slash ? (size_t)(slash - comp) : strlen(comp);

        if (len == 0 || (len == 1 && comp[0] == '.') ||
            (len == 2 && comp[0] == '.' && comp[1] == '.'))
            return false;
        comp = slash ? slash + 1 : NULL;
    }
    return true;
}

static int types_of(const json_t *j, unsigned *types)
{
    size_t i;
    json_t *t;

    *types = 0;
    if (!json_is_array(j) || json_array_size(j) == 0)
        return -EINVAL;
    json_array_foreach(j, i, t) {
        const char *s = mon_json_plain(t);
        size_t k;

        for (k = 0; s && k < NTYPES; k++)
            if (strcmp(s, type_names[k]) == 0)
                break;
        if (!s || k == NTYPES || (*types & MON_BIT(type_files[k])))
            return -EINVAL;
        *types |= MON_BIT(type_files[k]);
    }
    return 0;
}

int mon_target_parse_why(const char *buf, size_t len, struct mon_target_cfg *out,
                         const char **why)
{
    static const char *const keys[] = { "ssh_host", "ssh_port", "ssh_user", "ssh_key",
                                        "docker_socket", "types" };
    json_t *root = NULL, *j;
    const char *key, *s;
    int rc = -EINVAL;

    memset(out, 0, sizeof(*out));
    out->key_owner = -1;
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    *why = "target.json is longer than 4096 bytes";
    if (len > VAL_VALUE_MAX)
        return -EFBIG;
    *why = "target.json holds a control byte, a NUL byte or a byte outside ASCII";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];

        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c >= 0x7f)
            return -EINVAL;
    }
    *why = "target.json is not one JSON document without repeated keys";
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
    if (!root)
        goto out;
    *why = "target.json is not a JSON object";
    if (!json_is_object(root))
        goto out;
    *why = "target.json has an unknown key (the keys are ssh_host, ssh_port, ssh_user, ssh_key, "
           "docker_socket and types)";
    json_object_foreach(root, key, j) {
        size_t k;

        for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
            if (strcmp(key, keys[k]) == 0)
                break;
        if (k == sizeof(keys) / sizeof(keys[0]))
            goto out;
    }
    s = mon_json_plain(json_object_get(root, "ssh_host"));
    *why = "ssh_host is missing or not a string";
    if (!s)
        goto out;
    *why = "ssh_host is not an IPv4 address, an IPv6 address or a host name of at most 253 "
           "bytes";
    if (!host_ok(s))
        goto out;
    snprintf(out->host, sizeof(out->host), "%s", s);
    j = json_object_get(root, "ssh_port");
    out->port = 22;
    *why = "ssh_port is not an integer 1-65535";
    if (j) {
        if (!json_is_integer(j) || json_integer_value(j) < 1 || json_integer_value(j) > 65535)
            goto out;
        out->port = (unsigned)json_integer_value(j);
    }
    s = mon_json_plain(json_object_get(root, "ssh_user"));
    *why = "ssh_user is missing or not a string";
    if (!s)
        goto out;
    *why = "ssh_user is not a user name: [a-z_] then [a-z0-9_-], at most 32 bytes";
    if (!val_is_ssh_user(s))
        goto out;
    snprintf(out->user, sizeof(out->user), "%s", s);
    s = mon_json_plain(json_object_get(root, "ssh_key"));
    *why = "ssh_key is missing or not a string";
    if (!s)
        goto out;
    *why = "ssh_key is not an absolute path of [A-Za-z0-9._+@=,:~-] components, none . or ..";
    if (!path_ok(s, MON_KEY_MAX, "+@=,:~"))
        goto out;
    snprintf(out->key, sizeof(out->key), "%s", s);
    j = json_object_get(root, "docker_socket");
    *why = "docker_socket is not null or an absolute path of [A-Za-z0-9._-] components, none . "
           "or ..";
    if (j && !json_is_null(j)) {
        s = mon_json_plain(j);
        if (!s || !path_ok(s, MON_SOCK_MAX, ""))
            goto out;
        snprintf(out->docker_socket, sizeof(out->docker_socket), "%s", s);
    }
    j = json_object_get(root, "types");
    *why = "types is not a non-empty list of distinct \"server\", \"gpu\" and \"containers\"";
    if (!j)
        out->types = MON_BIT(MON_FILE_SERVER) | MON_BIT(MON_FILE_GPU) |
                     MON_BIT(MON_FILE_CONTAINERS);
    else if (types_of(j, &out->types) < 0)
        goto out;
    *why = "";
    rc = 0;
out:
    if (rc < 0) {
        memset(out, 0, sizeof(*out));
        out->key_owner = -1;
    }
    json_decref(root);
    return rc;
}

/* Strictly validate a target.json write into *out. 0, -EINVAL or -EFBIG. Required: ssh_host,
 * ssh_user, ssh_key; ssh_port defaults to 22, docker_socket to null, types to all three. */
int mon_target_parse(const char *buf, size_t len, struct mon_target_cfg *out)
{
    const char *why;

    return mon_target_parse_why(buf, len, out, &why);
}

json_t *mon_target_cfg_json(const struct mon_target_cfg *c)
{
    json_t *o, *types;

    types = json_array();
    for (size_t k = 0; types && k < NTYPES; k++)
        if (c->types & MON_BIT(type_files[k]))
            json_array_append_new(types, json_string(type_names[k]));
    o = json_pack("{s:s,s:i,s:s,s:s,s:o,s:o}", "ssh_host", c->host, "ssh_port", (int)c->port,
                  "ssh_user", c->user, "ssh_key", c->key, "docker_socket",
                  *c->docker_socket ? json_string(c->docker_socket) : json_null(),
                  "types", types);
    return o;
}

/* The settings as compact JSON, keys in target.json's order, malloc'd (NULL without memory). */
char *mon_target_json(const struct mon_target_cfg *cfg)
{
    json_t *o = mon_target_cfg_json(cfg);
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

    json_decref(o);
    return s;
}

bool mon_target_cfg_equal(const struct mon_target_cfg *a, const struct mon_target_cfg *b)
{
    return strcmp(a->host, b->host) == 0 && a->port == b->port &&
           strcmp(a->user, b->user) == 0 && strcmp(a->key, b->key) == 0 &&
           strcmp(a->docker_socket, b->docker_socket) == 0 && a->types == b->types &&
           a->key_owner == b->key_owner;
}
