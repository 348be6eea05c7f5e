/* gate.c: FIFO counting gate. A leaving caller hands its place directly to the
 * oldest waiter, so a newcomer can never overtake someone already waiting. */
#include "common/gate.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

struct waiter {
    struct waiter *next;
    bool granted;
};

struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned free;       /* places nobody holds or has been handed */
    struct waiter *head; /* oldest waiter */
    struct waiter *tail;
};

cd_err gate_new(unsigned slots, gate **out)
{
    pthread_condattr_t ca;
    gate *g;

    if (slots == 0 || out == NULL)
        return CD_ERR_INVALID;
    g = calloc(1, sizeof(*g));
    if (g == NULL)
        return CD_ERR_NOMEM;
    if (pthread_condattr_init(&ca) != 0) {
        free(g);
        return CD_ERR_NOMEM;
    }
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (pthread_cond_init(&g->cv, &ca) != 0) {
        pthread_condattr_destroy(&ca);
        free(g);
        return CD_ERR_NOMEM;
    }
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&g->mu, NULL);
    g->free = slots;
    *out = g;
    return CD_OK;
}

void gate_free(gate *g)
{
    if (g == NULL)
        return;
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

static void unlink_waiter(gate *g, struct waiter *w)
{
    struct waiter **pp = &g->head, *prev = NULL;

    while (*pp != NULL && *pp != w) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (*pp == NULL)
        return;
    *pp = w->next;
    if (g->tail == w)
        g->tail = prev;
}

cd_err gate_enter(gate *g, unsigned timeout_ms)
{
    struct waiter w = {NULL, false};
    struct timespec dl;
    cd_err err = CD_OK;

    pthread_mutex_lock(&g->mu);
    if (g->free > 0 && g->head == NULL) {
        g->free--;
        pthread_mutex_unlock(&g->mu);
        return CD_OK;
    }
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    if (g->tail != NULL)
        g->tail->next = &w;
    else
        g->head = &w;
    g->tail = &w;
    while (!w.granted) {
        int rc = pthread_cond_timedwait(&g->cv, &g->mu, &dl);

        if (rc != 0 && rc != EINTR && !w.granted) {
            unlink_waiter(g, &w);
            err = CD_ERR_TIMEOUT;
            break;
        }
    }
    pthread_mutex_unlock(&g->mu);
    return err;
}

void gate_leave(gate *g)
{
    struct waiter *w;

    pthread_mutex_lock(&g->mu);
    w = g->head;
    if (w != NULL) {
        g->head = w->next;
        if (g->head == NULL)
            g->tail = NULL;
        w->next = NULL;
        w->granted = true; /* the place passes to it directly */
        pthread_cond_broadcast(&g->cv);
    } else {
        g->free++;
    }
    pthread_mutex_unlock(&g->mu);
}
