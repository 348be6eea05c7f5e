/* gate.c: FIFO counting gate. A leaving caller hands its place directly to the
 * oldest waiter, so a newcomer can never overtake someone already waiting. */
#include "common/gate.h"

#include "common/deadline.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

/* Each waiter sleeps on its own condition variable, so that a leaving caller
 * wakes exactly the one it hands its place to, not every waiter. */
struct waiter {
    struct waiter *next;
    bool granted;
    pthread_cond_t cv;
};

struct gate {
    pthread_mutex_t mu;
    pthread_condattr_t ca; /* monotonic clock, for the waiters' variables */
    unsigned free;         /* places nobody holds or has been handed */
    unsigned slots;        /* places in all */
    struct waiter *head;   /* oldest waiter */
    struct waiter *tail;
};

cd_err gate_new(unsigned slots, gate **out)
{
    gate *g;

    if (slots == 0 || out == NULL)
        return CD_ERR_INVALID;
    g = calloc(1, sizeof(*g));
    if (g == NULL)
        return CD_ERR_NOMEM;
    if (pthread_condattr_init(&g->ca) != 0) {
        free(g);
        return CD_ERR_NOMEM;
    }
    pthread_condattr_setclock(&g->ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&g->mu, NULL);
    g->free = slots;
    g->slots = slots;
    *out = g;
    return CD_OK;
}

void gate_free(gate *g)
{
    if (g == NULL)
        return;
    pthread_condattr_destroy(&g->ca);
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
    struct waiter w;
    struct timespec dl;
    cd_err err = CD_OK;

    pthread_mutex_lock(&g->mu);
    if (g->free > 0 && g->head == NULL) {
        g->free--;
        pthread_mutex_unlock(&g->mu);
        return CD_OK;
    }
    cd_deadline(CLOCK_MONOTONIC, timeout_ms, &dl);
    w.next = NULL;
    w.granted = false;
    if (pthread_cond_init(&w.cv, &g->ca) != 0) {
        pthread_mutex_unlock(&g->mu);
        return CD_ERR_TIMEOUT; /* cannot wait */
    }
    /* w lives on this stack only while queued: a leaver unlinks it before it
     * wakes it, or it unlinks itself on timeout, both before this returns. */
    if (g->tail != NULL)
        g->tail->next = &w; // cppcheck-suppress autoVariables
    else
        g->head = &w; // cppcheck-suppress autoVariables
    g->tail = &w;     // cppcheck-suppress autoVariables
    while (!w.granted) {
        int rc = pthread_cond_timedwait(&w.cv, &g->mu, &dl);

        if (rc != 0 && rc != EINTR && !w.granted) {
            unlink_waiter(g, &w);
            err = CD_ERR_TIMEOUT;
            break;
        }
    }
    pthread_mutex_unlock(&g->mu);
    pthread_cond_destroy(&w.cv);
    return err;
}

unsigned gate_slots(const gate *g)
{
    return g->slots;
}

unsigned gate_waiting(gate *g)
{
    unsigned n = 0;

    pthread_mutex_lock(&g->mu);
    for (const struct waiter *w = g->head; w != NULL; w = w->next)
        n++;
    pthread_mutex_unlock(&g->mu);
    return n;
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
        pthread_cond_signal(&w->cv);
    } else {
        g->free++;
    }
    pthread_mutex_unlock(&g->mu);
}
