/* test_util.c: the util layer (util/util.h): error text, path joining, mkdir, atomic write and
 * its temp names, read-all (also of a /proc file whose size says 0), directory fsync, ISO time,
 * the monotonic clock, the periodic threads' ticker, and JSON text with a newline. */
#include "util/util.h"
#include "testlib.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/test_util.XXXXXX";

/* How many of cu_write_atomic's temp files dir holds. */
static int temps_in(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    while (d && (de = readdir(d)) != NULL)
        n += cu_is_temp_name(de->d_name) != 0;
    if (d)
        closedir(d);
    return n;
}

static void test_err(void)
{
    char buf[8] = "x";

    cu_err(NULL, 0, "nothing %d", 1);
    cu_err(buf, sizeof(buf), "%s", "a long reason");
    CHECK_STR(buf, "a long ");
    CHECK_INT(cu_errf(-EIO, buf, sizeof(buf), "io %d", 5), -EIO);
    CHECK_STR(buf, "io 5");
    CHECK_INT(cu_errf(-ENOENT, NULL, 0, "no buffer"), -ENOENT);
}

static void test_paths(void)
{
    char buf[16], big[PATH_MAX + 8];

    CHECK_INT(cu_path(buf, sizeof(buf), "/a", "b"), 0);
    CHECK_STR(buf, "/a/b");
    CHECK_INT(cu_path(buf, sizeof(buf), "/a-long-dir", "name"), -ENAMETOOLONG);
    CHECK(cu_is_temp_name(".x.tmp.12"));
    CHECK(!cu_is_temp_name("x.tmp.12"));
    CHECK(!cu_is_temp_name(".x"));
    memset(big, 'a', sizeof(big) - 1);
    big[0] = '/';
    big[sizeof(big) - 3] = '/';
    big[sizeof(big) - 1] = '\0';
    CHECK_INT(cu_fsync_parent(big), -ENAMETOOLONG);
}

static void test_files(void)
{
    char dir[256], file[256], sub[256], *data = NULL;
    struct stat st;
    size_t len = 0;

    tl_path(dir, sizeof(dir), tmpdir, "d", NULL);
    CHECK_INT(cu_mkdir(dir, 0700), 0);
    CHECK_INT(cu_mkdir(dir, 0700), 0);                 /* there: success */
    CHECK_INT(stat(dir, &st), 0);
    CHECK_INT(st.st_mode & 0777, 0700);
    tl_path(sub, sizeof(sub), tmpdir, "no", "such", NULL);
    CHECK_INT(cu_mkdir(sub, 0700), -ENOENT);
    CHECK_INT(cu_fsync_dir(dir), 0);
    CHECK_INT(cu_fsync_dir(sub), -ENOENT);

    tl_path(file, sizeof(file), dir, "f.json", NULL);
    CHECK_INT(cu_write_atomic(file, "one", 3, 0640), 0);
    CHECK_INT(stat(file, &st), 0);
    CHECK_INT(st.st_mode & 0777, 0640);
    CHECK_INT(cu_write_atomic(file, "second", 6, 0600), 0);
    CHECK_INT(stat(file, &st), 0);
    CHECK_INT(st.st_mode & 0777, 0600);
    CHECK_INT(temps_in(dir), 0);
    CHECK_INT(cu_read_all(file, 0, &data, &len), 0);
    CHECK_INT(len, 6);
    CHECK_STR(data, "second");
    free(data);
    CHECK_INT(cu_read_all(file, 5, &data, &len), -EFBIG);
    CHECK(data == NULL);
    CHECK_INT(cu_read_all(file, 6, &data, &len), 0);
    free(data);
    CHECK_INT(cu_mkdir(file, 0700), -ENOTDIR);
    CHECK_INT(cu_fsync_parent(file), 0);

    /* a target that cannot be replaced: path untouched, no temp file left */
    CHECK_INT(cu_mkdir(sub, 0700), -ENOENT);
    tl_path(sub, sizeof(sub), dir, "adir", NULL);
    CHECK_INT(cu_mkdir(sub, 0700), 0);
    CHECK(cu_write_atomic(sub, "x", 1, 0600) < 0);
    CHECK_INT(stat(sub, &st), 0);
    CHECK(S_ISDIR(st.st_mode));
    CHECK_INT(temps_in(dir), 0);
    tl_path(sub, sizeof(sub), tmpdir, "missing", "f", NULL);
    CHECK_INT(cu_write_atomic(sub, "x", 1, 0600), -ENOENT);

    CHECK_INT(cu_read_all(sub, 0, &data, &len), -ENOENT);
    CHECK(data == NULL);
    /* /proc says size 0: read to the end anyway */
    CHECK_INT(cu_read_all("/proc/self/status", 0, &data, &len), 0);
    CHECK(len > 0 && data && strncmp(data, "Name:", 5) == 0);
    free(data);
}

/* cu_read_fd: up to cap bytes from a pipe, to end of file; -EBADF for a closed descriptor. */
static void test_read_fd(void)
{
    char buf[8];
    int p[2];

    CHECK_INT(pipe(p), 0);
    CHECK_INT(write(p[1], "abcdef", 6), 6);
    CHECK_INT(cu_read_fd(p[0], buf, 4), 4);
    CHECK(memcmp(buf, "abcd", 4) == 0);
    close(p[1]);
    CHECK_INT(cu_read_fd(p[0], buf, sizeof(buf)), 2);
    CHECK(memcmp(buf, "ef", 2) == 0);
    CHECK_INT(cu_read_fd(p[0], buf, sizeof(buf)), 0);
    close(p[0]);
    CHECK_INT(cu_read_fd(p[0], buf, sizeof(buf)), -EBADF);

    /* cu_write_fd writes it all, and reports a failed write's errno */
    CHECK_INT(pipe(p), 0);
    CHECK_INT(cu_write_fd(p[1], "ghijkl", 6), 0);
    CHECK_INT(cu_read_fd(p[0], buf, 6), 6);
    CHECK(memcmp(buf, "ghijkl", 6) == 0);
    close(p[0]);
    close(p[1]);
    CHECK_INT(cu_write_fd(p[1], "x", 1), -EBADF);
}

static void test_time(void)
{
    char buf[32];
    int64_t a, b;

    cu_iso_time(0, buf, sizeof(buf));
    CHECK_STR(buf, "1970-01-01T00:00:00Z");
    cu_iso_time(1700000000, buf, sizeof(buf));
    CHECK_STR(buf, "2023-11-14T22:13:20Z");
    cu_iso_now(buf, sizeof(buf));
    CHECK_INT(strlen(buf), 20);
    CHECK(buf[10] == 'T' && buf[19] == 'Z');
    a = cu_mono_ms();
    b = cu_mono_ms();
    CHECK(a > 0 && b >= a);
}

/* A thread that waits once on a ticker with a long timeout: what the wait returned and how
 * long it took. */
struct waiter {
    struct cu_ticker *t;
    int64_t ms;
    bool ret;
    int64_t took;
};

static void *wait_once(void *arg)
{
    struct waiter *w = arg;
    int64_t start = cu_mono_ms();

    w->ret = cu_ticker_wait(w->t, w->ms);
    w->took = cu_mono_ms() - start;
    return NULL;
}

/* Start a waiter of ms on t, let it fall asleep, then run poke on t and join it. */
static void wait_and_poke(struct cu_ticker *t, struct waiter *w, int64_t ms,
                          void (*poke)(struct cu_ticker *))
{
    pthread_t th;

    w->t = t;
    w->ms = ms;
    w->ret = false;
    w->took = -1;
    if (pthread_create(&th, NULL, wait_once, w) != 0) {
        CHECK(!"pthread_create");
        return;
    }
    usleep(100 * 1000);
    poke(t);
    pthread_join(th, NULL);
}

static void test_ticker(void)
{
    struct cu_ticker t;
    struct waiter w;
    int64_t start, took;

    CHECK_INT(cu_ticker_init(&t), 0);
    CHECK(!cu_ticker_stopped(&t));

    /* A wait with nothing to end it lasts about its ms and says carry on. */
    start = cu_mono_ms();
    CHECK(cu_ticker_wait(&t, 200));
    took = cu_mono_ms() - start;
    CHECKF(took >= 199 && took < 2000, "took %ld ms", (long)took);
    /* ms <= 0 does not sleep. */
    start = cu_mono_ms();
    CHECK(cu_ticker_wait(&t, 0));
    CHECK(cu_ticker_wait(&t, -5));
    CHECK(cu_mono_ms() - start < 100);

    /* A wake ends a sleeping wait at once, and the wait says carry on. */
    wait_and_poke(&t, &w, 60 * 1000, cu_ticker_wake);
    CHECK(w.ret);
    CHECKF(w.took >= 0 && w.took < 5000, "took %ld ms", (long)w.took);
    /* A wake with nobody waiting ends the next wait at once, and only that one. */
    cu_ticker_wake(&t);
    cu_ticker_wake(&t);
    start = cu_mono_ms();
    CHECK(cu_ticker_wait(&t, 60 * 1000));
    CHECK(cu_mono_ms() - start < 1000);
    start = cu_mono_ms();
    CHECK(cu_ticker_wait(&t, 100));
    CHECK(cu_mono_ms() - start >= 99);

    /* A stop ends a sleeping wait at once with false; every later wait is false at once. */
    wait_and_poke(&t, &w, 60 * 1000, cu_ticker_stop);
    CHECK(!w.ret);
    CHECKF(w.took >= 0 && w.took < 5000, "took %ld ms", (long)w.took);
    CHECK(cu_ticker_stopped(&t));
    start = cu_mono_ms();
    CHECK(!cu_ticker_wait(&t, 60 * 1000));
    CHECK(!cu_ticker_wait(&t, 0));
    cu_ticker_wake(&t);
    CHECK(!cu_ticker_wait(&t, 60 * 1000));
    CHECK(cu_mono_ms() - start < 1000);
    cu_ticker_destroy(&t);

    /* A stop before any wait: the first wait is already false. */
    CHECK_INT(cu_ticker_init(&t), 0);
    cu_ticker_stop(&t);
    start = cu_mono_ms();
    CHECK(!cu_ticker_wait(&t, 60 * 1000));
    CHECK(cu_mono_ms() - start < 1000);
    cu_ticker_destroy(&t);
}

/* cu_grow: capacity doubles from 1024 until it holds what is asked, and nothing changes when
 * it already does. */
static void test_grow(void)
{
    char *p = NULL, *before;
    size_t cap = 0;

    CHECK_INT(cu_grow(&p, &cap, 10), 0);
    CHECK(p != NULL && cap == 1024);
    before = p;
    CHECK_INT(cu_grow(&p, &cap, 1024), 0);
    CHECK(p == before && cap == 1024);
    CHECK_INT(cu_grow(&p, &cap, 1025), 0);
    CHECK_INT((int)cap, 2048);
    CHECK_INT(cu_grow(&p, &cap, 5000), 0);
    CHECK_INT((int)cap, 8192);
    CHECK_INT(cu_grow(&p, &cap, SIZE_MAX), -ENOMEM);
    CHECK_INT((int)cap, 8192);
    free(p);
}

/* cu_burst: max events pass in a second, the rest are held and reported once, by the first
 * event of the next second. */
static void test_burst(void)
{
    struct cu_burst b = CU_BURST_INIT(3);
    unsigned held = 99, passed = 0;
    time_t start;

    /* start at the beginning of a second, so that the loop below stays within it */
    start = time(NULL);
    while (time(NULL) == start)
        usleep(1000);
    start = time(NULL);
    for (int i = 0; i < 5; i++) {
        passed += cu_burst_take(&b, &held);
        if (i > 0)
            CHECK_INT((int)held, 0);
    }
    if (time(NULL) == start) {
        CHECK_INT((int)passed, 3);
        while (time(NULL) == start)
            usleep(1000);
        CHECK(cu_burst_take(&b, &held));
        CHECK_INT((int)held, 2);
        CHECK(cu_burst_take(&b, &held));
        CHECK_INT((int)held, 0);
    }
}

static void test_json(void)
{
    json_t *o = json_pack("{s:i,s:s}", "a", 1, "b", "x");
    size_t len = 0;
    char *s = cu_json_line(o, JSON_COMPACT | JSON_PRESERVE_ORDER, &len);

    CHECK(s != NULL);
    if (s) {
        CHECK_STR(s, "{\"a\":1,\"b\":\"x\"}\n");
        CHECK_INT(len, strlen(s));
    }
    free(s);
    CHECK(cu_json_line(NULL, 0, &len) == NULL);
    s = cu_text_line("{}", NULL);
    CHECK(s && strcmp(s, "{}\n") == 0);
    free(s);
    json_decref(o);
}

int main(void)
{
    static const tl_test_fn tests[] = {
        test_err, test_paths, test_files, test_read_fd, test_time, test_ticker, test_grow,
        test_burst, test_json, NULL,
    };

    return tl_main_in_dir(tmpdir, tests);
}
