/* test_health.c: the health prober over a real registry and loopback sockets: each upstream of a
 * service has its own state (an IPv6 one is dialled in brackets), a dead one leaves the rotation
 * (health_in_rotation) and comes back when it answers, the health_on_rotation hook runs after
 * such a round without the prober's lock held, and health.json shows every upstream. And the
 * health gauges metrics.prom makes of health.json (mon_metrics_health). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit.h"
#include "core/health.h"
#include "core/registry.h"
#include "monitor/monitor.h"
#include "testlib.h"

static struct cfs_config cfg;

static void make_cfg(const char *dir)
{
    memset(&cfg, 0, sizeof(cfg));
    snprintf(cfg.state_dir, sizeof(cfg.state_dir), "%s", dir);
    snprintf(cfg.suffixes[0], sizeof(cfg.suffixes[0]), "internal");
    cfg.suffixes_ptr[0] = cfg.suffixes[0];
    cfg.nsuffixes = 1;
    snprintf(cfg.gateway_ip, sizeof(cfg.gateway_ip), "127.0.0.1");
    snprintf(cfg.dns_addr, sizeof(cfg.dns_addr), "127.0.0.1");
    cfg.dns_port = 5353;
    snprintf(cfg.https_addr, sizeof(cfg.https_addr), "127.0.0.1");
    cfg.https_port = 8443;
    cfg.health_interval_s = 1;
    cfg.health_timeout_s = 1;
    cfg.health_threshold = 1;
}

/* A listening socket on 127.0.0.1:port (0: any); its port in *port. -1 on failure. */
static int listen_on(unsigned short *port)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t len = sizeof(a);
    int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(*port);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 16) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

/* A listening socket on [::1]:port (0: any); -1 when this host has no IPv6 loopback. */
static int listen6_on(unsigned short *port)
{
    struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET6, SOCK_STREAM, 0);

    a.sin6_port = htons(*port);
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 16) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(a.sin6_port);
    return fd;
}

/* Answer every connection on the listening socket with 200 until it is shut down. */
static void *serve(void *arg)
{
    int lfd = *(int *)arg;
    static const char reply[] =
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

    for (;;) {
        char buf[1024];
        int c = accept(lfd, NULL, NULL);

        if (c < 0)
            return NULL;
        if (read(c, buf, sizeof(buf)) > 0 && write(c, reply, sizeof(reply) - 1) < 0)
            perror("write");
        close(c);
    }
}

static pthread_mutex_t hook_lock = PTHREAD_MUTEX_INITIALIZER;
static int hook_calls;
static bool hook_saw_dead_in;      /* what health_in_rotation said of the dead one, at the hook */
static char dead_line[64];

/* The rotation hook: it may read the rotation (the prober holds no lock while it runs). */
static void on_rotation(void)
{
    bool in = health_in_rotation("web", dead_line, NULL);

    pthread_mutex_lock(&hook_lock);
    hook_calls++;
    hook_saw_dead_in = in;
    pthread_mutex_unlock(&hook_lock);
}

/* Wait up to 15 s for the hook to have run at least n times. */
static bool wait_hook(int n)
{
    for (int i = 0; i < 150; i++) {
        int calls;

        pthread_mutex_lock(&hook_lock);
        calls = hook_calls;
        pthread_mutex_unlock(&hook_lock);
        if (calls >= n)
            return true;
        nanosleep(&(struct timespec){ .tv_nsec = 100000000L }, NULL);
    }
    return false;
}

static void test_rotation(const char *dir)
{
    char err[512], list[256], live_line[64], v6_line[64] = "", want[128], *json = NULL;
    unsigned short live_port = 0, dead_port = 0, v6_port = 0;
    int live = listen_on(&live_port), dead = listen_on(&dead_port), v6 = listen6_on(&v6_port);
    pthread_t live_tid, dead_tid, v6_tid;
    bool dead_served = false, v6_served = false;

    CHECK(live >= 0 && dead >= 0);
    close(dead);                /* nothing listens there now */
    snprintf(live_line, sizeof(live_line), "127.0.0.1:%u", live_port);
    snprintf(dead_line, sizeof(dead_line), "127.0.0.1:%u", dead_port);
    if (v6 >= 0)
        snprintf(v6_line, sizeof(v6_line), "[::1]:%u", v6_port);
    else
        printf("NOTE: no IPv6 loopback here: the [::1] upstream is left out\n");
    snprintf(list, sizeof(list), "%s\n%s\n%s%s", live_line, dead_line, v6_line,
             v6_line[0] ? "\n" : "");
    CHECK(pthread_create(&live_tid, NULL, serve, &live) == 0);
    v6_served = v6 >= 0 && pthread_create(&v6_tid, NULL, serve, &v6) == 0;

    make_cfg(dir);
    CHECK_INT(audit_open(dir, err, sizeof(err)), 0);
    CHECK_INT(reg_open(&cfg, err, sizeof(err)), 0);
    CHECK_INT(reg_register("web", "tester"), 0);
    CHECK_INT(reg_set("web", REG_UPSTREAM, list, strlen(list), "tester"), 0);

    /* before any probe: every upstream is in the rotation, and so is one nobody lists */
    CHECK(health_in_rotation("web", live_line, NULL));
    CHECK(health_in_rotation("web", dead_line, NULL));
    CHECK(health_in_rotation("nobody", "10.0.0.1:80", NULL));

    health_on_rotation(on_rotation);
    CHECK_INT(health_start(&cfg), 0);
    CHECKF(wait_hook(1), "the hook never ran after the dead upstream left");
    CHECK(!health_in_rotation("web", dead_line, NULL));
    CHECK(health_in_rotation("web", live_line, NULL));
    pthread_mutex_lock(&hook_lock);
    CHECK(!hook_saw_dead_in);
    pthread_mutex_unlock(&hook_lock);
    CHECK_INT(health_json(&json), 0);
    snprintf(want, sizeof(want), "\"upstreams_in_rotation\":%d,\"upstreams_total\":%d",
             v6_served ? 2 : 1, v6_served ? 3 : 2);
    CHECKF(json && strstr(json, want) != NULL, "%s", json ? json : "(null)");
    CHECK(json && strstr(json, "\"in_rotation\":false") != NULL);
    if (v6_served) {
        /* the probe of an IPv6 upstream dials it in brackets */
        snprintf(want, sizeof(want), "{\"upstream\":\"%s\",\"state\":\"healthy\"", v6_line);
        CHECKF(json && strstr(json, want) != NULL, "%s", json ? json : "(null)");
        CHECK(health_in_rotation("web", v6_line, NULL));
    }
    free(json);
    json = NULL;

    /* it answers again: it rejoins, and the hook runs again */
    dead = listen_on(&dead_port);
    dead_served = dead >= 0 && pthread_create(&dead_tid, NULL, serve, &dead) == 0;
    CHECK(dead_served);
    CHECKF(wait_hook(2), "the hook never ran after the upstream came back");
    CHECK(health_in_rotation("web", dead_line, NULL));
    pthread_mutex_lock(&hook_lock);
    CHECK(hook_saw_dead_in);
    pthread_mutex_unlock(&hook_lock);
    CHECK_INT(health_json(&json), 0);
    snprintf(want, sizeof(want), "\"upstreams_in_rotation\":%d,\"upstreams_total\":%d",
             v6_served ? 3 : 2, v6_served ? 3 : 2);
    CHECKF(json && strstr(json, want) != NULL, "%s", json ? json : "(null)");
    free(json);

    health_stop();
    health_on_rotation(NULL);
    shutdown(live, SHUT_RDWR);
    shutdown(dead, SHUT_RDWR);
    pthread_join(live_tid, NULL);
    if (dead_served)
        pthread_join(dead_tid, NULL);
    if (v6 >= 0) {
        shutdown(v6, SHUT_RDWR);
        if (v6_served)
            pthread_join(v6_tid, NULL);
        close(v6);
    }
    close(live);
    close(dead);
    reg_close();
    audit_close();
}

static void test_gauges(void)
{
    const char *health =
        "{\"timestamp\":\"2026-01-01T00:00:00Z\",\"services\":[{\"name\":\"web\","
        "\"domain\":\"web.internal\",\"mode\":\"proxy\",\"state\":\"healthy\","
        "\"upstreams_in_rotation\":1,\"upstreams\":[{\"upstream\":\"10.0.0.1:80\","
        "\"state\":\"healthy\",\"in_rotation\":true,\"consecutive_failures\":0,"
        "\"last_status\":200,\"last_latency_ms\":12},{\"upstream\":\"10.0.0.2:80\","
        "\"state\":\"unhealthy\",\"in_rotation\":false,\"consecutive_failures\":3,"
        "\"last_status\":null,\"last_latency_ms\":0},{\"upstream\":\"10.0.0.3:80\","
        "\"state\":\"unknown\",\"in_rotation\":true,\"consecutive_failures\":0,"
        "\"last_status\":null,\"last_latency_ms\":null}]},{\"name\":\"idle\","
        "\"domain\":\"idle.internal\",\"mode\":\"dns\",\"state\":\"pending\","
        "\"upstreams_in_rotation\":0,\"upstreams\":[]}]}";
    char *text = strdup("probe_metric 1\n");
    size_t len = strlen(text);

    CHECK_INT(mon_metrics_health(&text, &len, health), 0);
    CHECK(text && strlen(text) == len && strncmp(text, "probe_metric 1\n", 15) == 0);
    CHECK(strstr(text, "# TYPE conduit_service_healthy gauge\n"
                 "conduit_service_healthy{service=\"web\",domain=\"web.internal\","
                 "mode=\"proxy\"} 1\n") != NULL);
    CHECK(strstr(text, "conduit_service_healthy{service=\"idle\"") == NULL);
    CHECK(strstr(text, "conduit_service_upstreams_in_rotation{service=\"idle\","
                 "domain=\"idle.internal\",mode=\"dns\"} 0\n") != NULL);
    CHECK(strstr(text, "conduit_upstream_healthy{service=\"web\",upstream=\"10.0.0.1:80\"} 1\n"
                 "conduit_upstream_healthy{service=\"web\",upstream=\"10.0.0.2:80\"} 0\n"
                 "# HELP") != NULL);
    CHECK(strstr(text, "conduit_upstream_in_rotation{service=\"web\",upstream=\"10.0.0.3:80\"} "
                 "1\n") != NULL);
    CHECK(strstr(text, "conduit_upstream_consecutive_failures{service=\"web\","
                 "upstream=\"10.0.0.2:80\"} 3\n") != NULL);
    CHECK(strstr(text, "conduit_upstream_health_latency_seconds{service=\"web\","
                 "upstream=\"10.0.0.1:80\"} 0.012\n") != NULL);
    CHECK(strstr(text, "conduit_upstream_health_status{service=\"web\",upstream=\"10.0.0.1:80\"} "
                 "200\n") != NULL);
    /* no status without an answer, no latency before a probe */
    CHECK(strstr(text, "health_status{service=\"web\",upstream=\"10.0.0.2") == NULL);
    CHECK(strstr(text, "latency_seconds{service=\"web\",upstream=\"10.0.0.3") == NULL);
    len = strlen(text);
    CHECK_INT(mon_metrics_health(&text, &len, "not json"), 0);
    CHECK_INT(strlen(text), len);
    free(text);
}

int main(void)
{
    char a[] = "/tmp/test_health.XXXXXX";
    char cmd[256];

    if (!mkdtemp(a))
        return 1;
    test_gauges();
    test_rotation(a);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", a);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed\n");
    return tl_finish();
}
