/* regjson.c: services.json as text. reg_parse reads a document into records, each checked the
 * way a write through the mount would have checked it; reg_serialize writes records back (byte
 * for byte stable: a record that uses no lb_policy is written as versions before it wrote it).
 * The registry's model, its locks and its snapshots live in registry.c, which calls this file;
 * this file calls nothing of registry.c. */
#include "core/regjson.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/regmark.h"
#include "core/regrec.h"
#include "core/validate.h"

static json_t *service_json(const struct reg_service *s)
{
    json_t *o = json_object();
    json_t *mon = json_loads(s->monitoring, 0, NULL);

    if (!o || !mon)
        goto fail;
    if (json_object_set_new(o, "name", json_string(s->name)) ||
        json_object_set_new(o, "upstream", json_string(s->upstream)) ||
        json_object_set_new(o, "domain", json_string(s->domain)) ||
        json_object_set_new(o, "status", json_string(reg_status_name(s->status))) ||
        json_object_set_new(o, "registered_at", json_string(s->registered_at)) ||
        json_object_set_new(o, "health_check", json_string(s->health_check)) ||
        json_object_set_new(o, "mode", json_string(s->mode)) ||
        json_object_set_new(o, "monitoring", mon))
        goto fail_nomon;
    /* only when not the default: a registry that uses no policy stays byte for byte what the
     * version before several upstreams wrote, and loads in it */
    if (strcmp(s->lb_policy, "round_robin") != 0 &&
        json_object_set_new(o, "lb_policy", json_string(s->lb_policy)))
        goto fail_nomon;
    if (s->status == REG_INACTIVE &&
        json_object_set_new(o, "deregistered_at", json_string(s->deregistered_at)))
        goto fail_nomon;
    return o;
fail:
    json_decref(mon);
fail_nomon:
    json_decref(o);
    return NULL;
}

char *reg_serialize(const struct reg_service *svcs, size_t n)
{
    json_t *root = json_object(), *arr = json_array();
    char *out = NULL;

    if (!root || !arr)
        goto out;
    for (size_t i = 0; i < n; i++) {
        json_t *o = service_json(&svcs[i]);
        if (!o || json_array_append_new(arr, o))
            goto out;
    }
    if (json_object_set_new(root, "version", json_integer(1)) ||
        json_object_set(root, "services", arr))
        goto out;
    out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
out:
    json_decref(arr);
    json_decref(root);
    return out;
}

int reg_empty_sha(char sha[65])
{
    char *empty = reg_serialize(NULL, 0);

    if (!empty)
        return -ENOMEM;
    rmark_sha256(empty, strlen(empty), sha);
    free(empty);
    return 0;
}

/* See regjson.h: service_json dumped alone, then indented to its place. */
char *regjson_record_text(const struct reg_service *s, size_t *len)
{
    json_t *o = service_json(s);
    char *flat = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII)
                   : NULL;
    size_t nl = 0, n, k = 0;
    char *out = NULL;

    json_decref(o);
    if (!flat)
        return NULL;
    for (const char *p = flat; *p; p++)
        nl += *p == '\n';
    n = strlen(flat);
    out = malloc(n + 4 * nl + 1);
    if (out) {
        for (const char *p = flat; *p; p++) {
            out[k++] = *p;
            if (*p == '\n') {
                memcpy(out + k, "    ", 4);
                k += 4;
            }
        }
        out[k] = '\0';
        *len = k;
    }
    free(flat);
    return out;
}

/* Fetch a required string member into dst. -EINVAL with a reason when absent or wrong. */
static int get_str(json_t *o, const char *key, char *dst, size_t dstlen, size_t idx,
                   char *err, size_t errlen)
{
    json_t *v = json_object_get(o, key);

    if (!json_is_string(v) || json_string_length(v) >= dstlen ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        snprintf(err, errlen, "service #%zu: \"%s\" missing or not a valid string", idx, key);
        return -EINVAL;
    }
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

/* Check one loaded record the way a write through the mount would have. */
static int check_record(const struct cfs_config *cfg, struct reg_service *s, size_t idx,
                        char *err, size_t errlen)
{
    struct val_upstream ups[VAL_UPSTREAMS_MAX];
    size_t nups = 0;
    const char *what = NULL;

    if (val_name(s->name))
        what = "name";
    else if (val_upstreams(s->upstream, ups, &nups))
        what = "upstream";
    else if (val_lb_policy(s->lb_policy))
        what = "lb_policy";
    else if (val_health_check(s->health_check))
        what = "health_check";
    else if (val_mode(s->mode))
        what = "mode";
    else if (s->status != REG_INACTIVE && !(s->status == REG_PENDING && !s->domain[0]) &&
             val_domain(s->domain, cfg->suffixes_ptr, cfg->nsuffixes))
        what = "domain (is its suffix in --domains?)";
    else if (strcmp(s->mode, "dns") == 0 && regrec_any_hostname(ups, nups))
        what = "upstream (a hostname in dns mode)";
    if (what) {
        snprintf(err, errlen, "service #%zu (%s): invalid %s", idx, s->name, what);
        return -EINVAL;
    }
    return 0;
}

/* Make a reason one printable line: it quotes bytes of the refused file (a name, a status,
 * jansson's token), and it ends up as the mount's one-line refusal. */
static void one_line(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            *s = '?';
}

int reg_parse(const char *json, size_t len, const struct cfs_config *cfg,
              struct reg_service **out, size_t *n, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *arr, *v;
    struct reg_service *svcs = NULL;
    const struct reg_service **ptrs = NULL;    /* &svcs[i], for the duplicate checks */
    size_t cnt = 0, i;
    int rc = -EINVAL;

    *out = NULL;
    *n = 0;
    if (errlen > 0)
        err[0] = '\0';
    if (!root) {
        snprintf(err, errlen, "line %d: %s", jerr.line, jerr.text);
        goto out;
    }
    v = json_object_get(root, "version");
    arr = json_object_get(root, "services");
    if (!json_is_object(root) || !json_is_integer(v) || json_integer_value(v) != 1 ||
        !json_is_array(arr)) {
        snprintf(err, errlen, "not a version 1 registry (need {\"version\":1,\"services\":[]})");
        goto out;
    }
    cnt = json_array_size(arr);
    if (cnt && (!(svcs = calloc(cnt, sizeof(*svcs))) || !(ptrs = calloc(cnt, sizeof(*ptrs))))) {
        rc = -ENOMEM;
        goto out;
    }
    json_array_foreach(arr, i, v) {
        struct reg_service *s = &svcs[i];
        char status[16], mon_raw[VAL_VALUE_MAX + 1];
        int st;
        json_t *mon = json_object_get(v, "monitoring");
        char *mon_txt;

        if (!json_is_object(v)) {
            snprintf(err, errlen, "service #%zu is not an object", i);
            goto out;
        }
        if (get_str(v, "name", s->name, sizeof(s->name), i, err, errlen) ||
            get_str(v, "upstream", s->upstream, sizeof(s->upstream), i, err, errlen) ||
            get_str(v, "domain", s->domain, sizeof(s->domain), i, err, errlen) ||
            get_str(v, "status", status, sizeof(status), i, err, errlen) ||
            get_str(v, "registered_at", s->registered_at, sizeof(s->registered_at), i,
                    err, errlen) ||
            get_str(v, "health_check", s->health_check, sizeof(s->health_check), i,
                    err, errlen) ||
            get_str(v, "mode", s->mode, sizeof(s->mode), i, err, errlen))
            goto out;
        st = reg_status_from_name(status);
        if (st < 0) {
            snprintf(err, errlen, "service #%zu: unknown status \"%s\"", i, status);
            goto out;
        }
        s->status = (enum reg_status)st;
        if (s->status != REG_INACTIVE && (s->status == REG_ACTIVE) != (s->upstream[0] != 0)) {
            snprintf(err, errlen, "service #%zu: status does not match its upstream", i);
            goto out;
        }
        /* lb_policy came with several upstreams: a registry written before has none */
        if (!json_object_get(v, "lb_policy"))
            reg_attr_default(cfg, s->name, REG_LB_POLICY, s->lb_policy, sizeof(s->lb_policy));
        else if (get_str(v, "lb_policy", s->lb_policy, sizeof(s->lb_policy), i, err, errlen))
            goto out;
        if (s->status == REG_INACTIVE &&
            get_str(v, "deregistered_at", s->deregistered_at, sizeof(s->deregistered_at), i,
                    err, errlen))
            goto out;
        mon_txt = mon ? json_dumps(mon, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        if (!mon_txt || snprintf(mon_raw, sizeof(mon_raw), "%s", mon_txt) >= (int)sizeof(mon_raw)
            || val_monitoring(mon_raw, s->monitoring, sizeof(s->monitoring))) {
            free(mon_txt);
            snprintf(err, errlen, "service #%zu: invalid monitoring", i);
            goto out;
        }
        free(mon_txt);
        if (check_record(cfg, s, i, err, errlen))
            goto out;
        if (s->status != REG_INACTIVE &&
            (regrec_find_live(ptrs, i, s->name) >= 0 ||
             regrec_domain_user(ptrs, i, s->domain, -1) >= 0)) {
            snprintf(err, errlen, "service #%zu (%s): duplicate active name or domain", i,
                     s->name);
            goto out;
        }
        ptrs[i] = s;
    }
    *out = svcs;
    *n = cnt;
    svcs = NULL;
    rc = 0;
out:
    if (rc != 0 && errlen > 0)
        one_line(err);
    free(ptrs);
    free(svcs);
    json_decref(root);
    return rc;
}
