/* http_pool.c: the handler threads. The event-loop workers never run a
 * handler: a complete request is suspended and queued on its lane; a thread of
 * that lane runs the handler (which may block on the database or an Argon2id)
 * and resumes the connection, whose worker then sends the answer. One lock
 * round per hand-off, one wake-up each way (docs/internals/http.md). */
#include <stddef.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "http/http_int.h"
#include "log/log.h"

bool http_request_move(const struct http_request *req, struct http_response *resp, unsigned lane)
{
    if (req == NULL || resp == NULL || req->moved || lane == req->lane || lane >= HTTP_LANES)
        return false;
    resp->move_to = lane + 1;
    return true;
}

void http_drop_answer(struct http_response *resp)
{
    void (*done)(void *) = resp->on_done;

    http_wipe_free(resp->body, resp->body_len);
    resp->body = NULL;
    resp->body_len = 0;
    resp->on_done = NULL;
    if (done != NULL)
        done(resp->on_done_cls);
    explicit_bzero(resp->header_store, sizeof(resp->header_store));
    explicit_bzero(resp->content_type_store, sizeof(resp->content_type_store));
}

bool http_run_handler(http_server *srv, struct http_req *rq)
{
    memset(&rq->resp, 0, offsetof(struct http_response, header_store));
    rq->resp.status = 500;
    srv->handler(srv->ctx, &rq->req, &rq->resp);
    if (rq->resp.move_to == 0)
        return false;
    http_drop_answer(&rq->resp);
    rq->req.lane = rq->resp.move_to - 1;
    rq->req.moved = true;
    rq->lane = rq->req.lane;
    return true;
}

/* Runs the handler of rq (on a pool thread) and leaves its answer in rq->resp,
 * or hands rq to the lane it asked for. */
static void run_one(struct http_lane *ln, struct http_req *rq)
{
    http_server *srv = ln->srv;

    if (atomic_load(&ln->abandon)) {
        rq->abandoned = 1; /* the drain timed out: 503 without running it */
    } else if (http_run_handler(srv, rq)) {
        http_lane_submit(&srv->lanes[rq->lane], rq); /* still suspended */
        return;
    }
    atomic_store_explicit(&rq->phase, HTTP_PHASE_DONE, memory_order_release);
    MHD_resume_connection(rq->mhd_conn);
}

static void *lane_main(void *arg)
{
    struct http_lane *ln = arg;

    pthread_mutex_lock(&ln->lock);
    for (;;) {
        struct http_req *rq;

        while (ln->head == NULL && !ln->closing)
            pthread_cond_wait(&ln->cv, &ln->lock);
        rq = ln->head;
        if (rq == NULL)
            break; /* closing and nothing left */
        ln->head = rq->next;
        if (ln->head == NULL)
            ln->tail = NULL;
        ln->queued--;
        ln->busy++;
        pthread_mutex_unlock(&ln->lock);
        rq->next = NULL;
        run_one(ln, rq);
        pthread_mutex_lock(&ln->lock);
        ln->busy--;
    }
    pthread_mutex_unlock(&ln->lock);
    return NULL;
}

cd_err http_lane_start(http_server *srv, struct http_lane *ln, unsigned threads, size_t stack)
{
    pthread_attr_t attr;
    cd_err err = CD_OK;

    memset(ln, 0, sizeof(*ln));
    ln->srv = srv;
    atomic_init(&ln->abandon, false);
    if (threads == 0)
        return CD_ERR_CONFIG;
    ln->threads = calloc(threads, sizeof(*ln->threads));
    if (ln->threads == NULL)
        return CD_ERR_NOMEM;
    pthread_mutex_init(&ln->lock, NULL);
    pthread_cond_init(&ln->cv, NULL);
    ln->initialised = true;
    if (pthread_attr_init(&attr) != 0)
        return CD_ERR_NOMEM;
    (void)pthread_attr_setstacksize(&attr, stack);
    for (unsigned i = 0; i < threads; i++) {
        if (pthread_create(&ln->threads[i], &attr, lane_main, ln) != 0) {
            log_error("cannot start a handler thread");
            err = CD_ERR_NOMEM;
            break;
        }
        ln->n_threads++;
    }
    pthread_attr_destroy(&attr);
    return err;
}

void http_lane_submit(struct http_lane *ln, struct http_req *rq)
{
    rq->next = NULL;
    pthread_mutex_lock(&ln->lock);
    if (ln->tail != NULL)
        ln->tail->next = rq;
    else
        ln->head = rq;
    ln->tail = rq;
    ln->queued++;
    /* Costs no system call when no thread waits (all busy: one of them
     * takes it when it comes back). */
    pthread_cond_signal(&ln->cv);
    pthread_mutex_unlock(&ln->lock);
}

void http_lane_abandon(struct http_lane *ln)
{
    if (ln->initialised)
        atomic_store(&ln->abandon, true);
}

void http_lane_stop(struct http_lane *ln)
{
    if (!ln->initialised)
        return;
    pthread_mutex_lock(&ln->lock);
    ln->closing = true;
    pthread_cond_broadcast(&ln->cv);
    pthread_mutex_unlock(&ln->lock);
    for (unsigned i = 0; i < ln->n_threads; i++)
        pthread_join(ln->threads[i], NULL);
    free(ln->threads);
    ln->threads = NULL;
    ln->n_threads = 0;
    pthread_cond_destroy(&ln->cv);
    pthread_mutex_destroy(&ln->lock);
    ln->initialised = false;
}
