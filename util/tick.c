/* tick.c: cu_ticker, the stoppable sleep of a periodic thread on CLOCK_MONOTONIC, and cu_burst,
 * a per-second limit for log lines (util layer, see util.h). */
#include "util/util.h"

/* Waits longer than this (about 34 years) are cut to it, so the deadline cannot overflow. */
#define TICK_MAX_MS ((int64_t)1 << 40)

int cu_ticker_init(struct cu_ticker *t)
{
    pthread_condattr_t attr;
    int rc;

    t->stop = false;
    t->woken = false;
    rc = pthread_condattr_init(&attr);
    if (rc != 0)
        return -rc;
    rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&t->cond, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0)
        return -rc;
    rc = pthread_mutex_init(&t->lock, NULL);
    if (rc != 0) {
        pthread_cond_destroy(&t->cond);
        return -rc;
    }
    return 0;
}

bool cu_ticker_wait(struct cu_ticker *t, int64_t ms)
{
    struct timespec deadline;
    bool run;

    if (ms > TICK_MAX_MS)
        ms = TICK_MAX_MS;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    if (ms > 0) {
        deadline.tv_sec += (time_t)(ms / 1000);
        deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&t->lock);
    /* 0: signalled or a spurious wake-up, so look again; ETIMEDOUT (or an error): done. */
    while (ms > 0 && !t->stop && !t->woken &&
           pthread_cond_timedwait(&t->cond, &t->lock, &deadline) == 0)
        ;
    t->woken = false;
    run = !t->stop;
    pthread_mutex_unlock(&t->lock);
    return run;
}

void cu_ticker_wake(struct cu_ticker *t)
{
    pthread_mutex_lock(&t->lock);
    t->woken = true;
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

void cu_ticker_stop(struct cu_ticker *t)
{
    pthread_mutex_lock(&t->lock);
    t->stop = true;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

bool cu_ticker_stopped(struct cu_ticker *t)
{
    bool stop;

    pthread_mutex_lock(&t->lock);
    stop = t->stop;
    pthread_mutex_unlock(&t->lock);
    return stop;
}

void cu_ticker_destroy(struct cu_ticker *t)
{
    pthread_cond_destroy(&t->cond);
    pthread_mutex_destroy(&t->lock);
}

bool cu_burst_take(struct cu_burst *b, unsigned *held_before)
{
    time_t now = time(NULL);
    bool pass;

    *held_before = 0;
    pthread_mutex_lock(&b->lock);
    if (now != b->sec) {
        *held_before = b->held;
        b->sec = now;
        b->passed = 0;
        b->held = 0;
    }
    pass = b->passed < b->max;
    if (pass)
        b->passed++;
    else
        b->held++;
    pthread_mutex_unlock(&b->lock);
    return pass;
}
