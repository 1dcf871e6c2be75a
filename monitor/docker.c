/* docker.c: the container probes over the Docker Engine API on a unix socket: here with
 * libcurl (CURLOPT_UNIX_SOCKET_PATH), on a remote target with the curl tool over SSH. curl's
 * error codes (the library's CURLcode is the tool's exit status) become errno in curl_error(),
 * through core/curlerr.h's map, and nowhere else. */
#include "monitor/probe.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>
#include "core/curlerr.h"
#include "util/util.h"

#define MARKER " @@conduit "

/* One API answer. */
struct resp {
    int curl;           /* CURLcode / curl exit status; 0 when the request completed */
    long http;
    char *body;
    size_t len;
};

/* curl's code as errno (curlerr_errno, the one map), with "Docker API at SOCK: reason" in
 * err. */
static int curl_error(int code, const char *sock, char *err, size_t errlen)
{
    int rc = curlerr_errno(code);

    if (rc == -ECONNREFUSED)
        snprintf(err, errlen, "cannot connect to the Docker API at %s", sock);
    else
        snprintf(err, errlen, "Docker API at %s: %s", sock,
                 curl_easy_strerror((CURLcode)code));
    return rc;
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct mon_buf *b = userdata;
    size_t n = size * nmemb;

    if (b->len + n > MON_OUTPUT_MAX)
        return 0;           /* CURLE_WRITE_ERROR */
    mon_buf_add(b, ptr, n);
    return b->failed ? 0 : n;
}

/* GET every path from the local socket, one after the other on one handle, all within
 * 2 * MON_DOCKER_MS (a request past that is not made and counts as timed out). */
static void fetch_local(const char *sock, char **paths, size_t n, struct resp *r)
{
    CURL *h = curl_easy_init();
    char url[512];
    int64_t deadline = cu_mono_ms() + 2 * MON_DOCKER_MS, left;

    for (size_t i = 0; i < n; i++) {
        struct mon_buf b = {0};

        r[i].curl = CURLE_OUT_OF_MEMORY;
        if (!h)
            continue;
        left = deadline - cu_mono_ms();
        if (left <= 0) {
            r[i].curl = CURLE_OPERATION_TIMEDOUT;
            continue;
        }
        mon_buf_add(&b, "", 0);
        snprintf(url, sizeof(url), "http://localhost%s", paths[i]);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, sock);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(left < MON_DOCKER_MS ? left :
                                                       MON_DOCKER_MS));
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
        r[i].curl = (int)curl_easy_perform(h);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r[i].http);
        r[i].body = b.data;
        r[i].len = b.len;
        if (r[i].curl == CURLE_COULDNT_CONNECT) {
            /* no engine there: the rest would fail the same way */
            for (size_t j = i + 1; j < n; j++)
                r[j].curl = CURLE_COULDNT_CONNECT;
            break;
        }
    }
    curl_easy_cleanup(h);
}

/* Split the output of the remote loop: per request, the body, "\n", the HTTP code, MARKER and
 * curl's exit status on one line. */
static void split_remote(char *out, size_t len, struct resp *r, size_t n)
{
    char *p = out, *end = out + len;
    size_t i = 0;

    while (p < end && i < n) {
        char *m = memmem(p, (size_t)(end - p), MARKER, strlen(MARKER));
        char *line, *nl;
        long http = 0;
        int code = 0;

        if (!m)
            break;
        line = m;
        while (line > p && line[-1] != '\n')
            line--;
        nl = memchr(m, '\n', (size_t)(end - m));
        if (sscanf(line, "%ld", &http) != 1 || sscanf(m + strlen(MARKER), "%d", &code) != 1)
            code = CURLE_WEIRD_SERVER_REPLY;
        r[i].curl = code;
        r[i].http = http;
        if (line > p) {
            /* the body, without the newline -w put before the code */
            size_t blen = (size_t)(line - p) - 1;

            r[i].body = malloc(blen + 1);
            if (r[i].body) {
                memcpy(r[i].body, p, blen);
                r[i].body[blen] = '\0';
                r[i].len = blen;
            }
        }
        i++;
        p = nl ? nl + 1 : end;
    }
    for (; i < n; i++)
        r[i].curl = CURLE_GOT_NOTHING;
}

/* GET every path from the socket on the target, with one shell loop over curl. Paths and the
 * socket are plain characters only (checked by their makers), so single quotes hold them. */
static int fetch_remote(const struct mon_src *src, const char *sock, char **paths, size_t n,
                        struct resp *r, char *err, size_t errlen)
{
    struct mon_buf cmd = {0};
    char *out = NULL;
    size_t len = 0;
    int st, rc;

    mon_buf_printf(&cmd, "command -v curl >/dev/null 2>&1 || exit 127; for p in");
    for (size_t i = 0; i < n; i++)
        mon_buf_printf(&cmd, " '%s'", paths[i]);
    mon_buf_printf(&cmd, "; do curl -sS --max-time %d --unix-socket '%s' -w '\\n%%{http_code}' "
                   "\"http://localhost$p\" 2>/dev/null; echo \"" MARKER "$?\"; done",
                   MON_DOCKER_MS / 1000, sock);
    if (cmd.failed) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    rc = mon_ssh_run(src, cmd.data, 2 * MON_DOCKER_MS, MON_OUTPUT_MAX, &out, &len, &st, err,
                     errlen);
    free(cmd.data);
    if (rc == 0 && st == 127) {
        snprintf(err, errlen, "curl not found on %s (needed to reach its Docker API)",
                 src->host);
        rc = -ENOENT;
    }
    if (rc == 0)
        split_remote(out, len, r, n);
    free(out);
    return rc;
}

static int fetch(const struct mon_src *src, char **paths, size_t n, struct resp *r, char *err,
                 size_t errlen)
{
    const char *sock = *src->docker_socket ? src->docker_socket : MON_DEFAULT_DOCKER_SOCKET;

    memset(r, 0, n * sizeof(*r));
    if (src->remote)
        return fetch_remote(src, sock, paths, n, r, err, errlen);
    fetch_local(sock, paths, n, r);
    return 0;
}

/* 0 when r is a 200 answer; else -errno with the reason ("HTTP 404: no such container"). */
static int check(const struct mon_src *src, const struct resp *r, char *err, size_t errlen)
{
    const char *sock = *src->docker_socket ? src->docker_socket : MON_DEFAULT_DOCKER_SOCKET;
    json_t *j;
    const char *msg;

    if (r->curl != 0)
        return curl_error(r->curl, sock, err, errlen);
    if (r->http == 200)
        return 0;
    j = r->body ? json_loadb(r->body, r->len, 0, NULL) : NULL;
    msg = json_string_value(json_object_get(j, "message"));
    snprintf(err, errlen, "Docker API: HTTP %ld%s%.200s", r->http, msg ? ": " : "",
             msg ? msg : "");
    json_decref(j);
    return r->http == 404 ? -ENOENT : -EIO;
}

static void free_resps(struct resp *r, size_t n)
{
    for (size_t i = 0; r && i < n; i++)
        free(r[i].body);
    free(r);
}

/* Characters allowed in an id or name put into a URL path and a quoted shell word. */
static bool plain(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n == 0 || n > max)
        return false;
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '_' || *c == '.' || *c == '-'))
            return false;
    return true;
}

static char *path_of(const char *what, const char *id)
{
    char buf[256];

    if (strcmp(what, "stats") == 0)
        snprintf(buf, sizeof(buf), "/containers/%s/stats?stream=false&one-shot=true", id);
    else
        snprintf(buf, sizeof(buf), "/containers/%s/json", id);
    return strdup(buf);
}

static bool is_running(const json_t *item)
{
    const char *s = json_string_value(json_object_get(item, "state"));

    return s && strcmp(s, "running") == 0;
}

/* {"containers":[...]} from the engine at src's socket (here or over SSH), or NULL
 * with the reason in err. */
json_t *mon_probe_containers(const struct mon_src *src, json_t **state, char *err,
                             size_t errlen)
{
    char list[] = "/containers/json?all=1";
    char *list_path[] = { list };
    struct resp lr, *r = NULL;
    char **paths = NULL;
    size_t n = 0, np = 0, i;
    json_t *items = NULL, *out = NULL, *next = NULL, *item, *metrics = NULL;
    int *slot = NULL;          /* per item: index of its inspect answer, then stats or -1 */

    if (fetch(src, list_path, 1, &lr, err, errlen) < 0)
        return NULL;
    if (check(src, &lr, err, errlen) < 0)
        goto out;
    items = mon_docker_list(lr.body, lr.len);
    if (!items) {
        snprintf(err, errlen, "Docker API: /containers/json did not answer a list");
        goto out;
    }
    n = json_array_size(items);
    paths = calloc(2 * n + 1, sizeof(*paths));
    slot = calloc(2 * n + 1, sizeof(*slot));
    out = json_array();
    next = json_object();
    if (!paths || !slot || !out || !next)
        goto nomem;
    json_array_foreach(items, i, item) {
        const char *id = json_string_value(json_object_get(item, "id"));

        slot[2 * i] = slot[2 * i + 1] = -1;
        if (!plain(id, 128))
            continue;
        slot[2 * i] = (int)np;
        if (!(paths[np++] = path_of("json", id)))
            goto nomem;
        if (!is_running(item))
            continue;
        slot[2 * i + 1] = (int)np;
        if (!(paths[np++] = path_of("stats", id)))
            goto nomem;
    }
    r = calloc(np + 1, sizeof(*r));
    if (!r)
        goto nomem;
    if (np && fetch(src, paths, np, r, err, errlen) < 0)
        goto out;
    json_array_foreach(items, i, item) {
        struct resp *in = slot[2 * i] >= 0 ? &r[slot[2 * i]] : NULL;
        struct resp *st = slot[2 * i + 1] >= 0 ? &r[slot[2 * i + 1]] : NULL;
        json_t *c;

        if (in && (in->curl || in->http != 200))
            in = NULL;
        if (st && (st->curl || st->http != 200))
            st = NULL;
        c = mon_docker_container(item, in ? in->body : NULL, in ? in->len : 0,
                                 st ? st->body : NULL, st ? st->len : 0, *state, next);
        if (c)
            json_array_append_new(out, c);
    }
    metrics = json_pack("{s:O}", "containers", out);
    json_decref(*state);
    *state = json_incref(next);
    goto out;
nomem:
    snprintf(err, errlen, "out of memory");
out:
    free(lr.body);
    for (i = 0; paths && i < np; i++)
        free(paths[i]);
    free(paths);
    free(slot);
    free_resps(r, np);
    json_decref(items);
    json_decref(out);
    json_decref(next);
    return metrics;
}

/* The report of src->container from the local engine, or NULL with the reason in err
 * ("container X not found"). */
json_t *mon_probe_container(const struct mon_src *src, json_t **state, char *err,
                            size_t errlen)
{
    char *paths[2] = { NULL, NULL };
    struct resp r[2];
    json_t *metrics = NULL, *next = NULL, *probe;
    const char *s;
    int rc;

    memset(r, 0, sizeof(r));
    if (!plain(src->container, 128)) {
        snprintf(err, errlen, "container name \"%.100s\" cannot be looked up", src->container);
        return NULL;
    }
    paths[0] = path_of("json", src->container);
    paths[1] = path_of("stats", src->container);
    if (!paths[0] || !paths[1]) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (fetch(src, paths, 1, &r[0], err, errlen) < 0)
        goto out;
    rc = check(src, &r[0], err, errlen);
    if (rc == -ENOENT)
        snprintf(err, errlen, "container %s not found", src->container);
    if (rc < 0)
        goto out;
    /* stats only for a running container: a stopped one has none */
    probe = json_loadb(r[0].body, r[0].len, 0, NULL);
    s = json_string_value(json_object_get(json_object_get(probe, "State"), "Status"));
    if (s && strcmp(s, "running") == 0 && fetch(src, &paths[1], 1, &r[1], err, errlen) == 0 &&
        (r[1].curl || r[1].http != 200)) {
        free(r[1].body);
        memset(&r[1], 0, sizeof(r[1]));
    }
    json_decref(probe);
    next = json_object();
    metrics = mon_docker_container(NULL, r[0].body, r[0].len, r[1].body, r[1].len, *state,
                                   next);
    if (!metrics) {
        snprintf(err, errlen, "Docker API: unexpected answer for container %s",
                 src->container);
    } else {
        json_decref(*state);
        *state = json_incref(next);
    }
out:
    free(paths[0]);
    free(paths[1]);
    free(r[0].body);
    free(r[1].body);
    json_decref(next);
    return metrics;
}
