/* test_gate.c: the FIFO counting gate (common/gate). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/gate.h"

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_slots_and_timeout(void **state)
{
    gate *g = NULL;
    (void)state;

    assert_int_equal(gate_new(0, &g), CD_ERR_INVALID);
    assert_int_equal(gate_new(2, &g), CD_OK);
    assert_int_equal(gate_enter(g, 0), CD_OK);
    assert_int_equal(gate_enter(g, 0), CD_OK);
    assert_int_equal(gate_enter(g, 50), CD_ERR_TIMEOUT); /* full */
    gate_leave(g);
    assert_int_equal(gate_enter(g, 50), CD_OK);
    gate_leave(g);
    gate_leave(g);
    gate_free(g);
    gate_free(NULL);
}

struct job {
    gate *g;
    unsigned timeout_ms;
    int id;
    int *order;
    int *next;
    pthread_mutex_t *mu;
    cd_err rc;
};

static void *job_main(void *arg)
{
    struct job *j = arg;

    j->rc = gate_enter(j->g, j->timeout_ms);
    if (j->rc == CD_OK) {
        pthread_mutex_lock(j->mu);
        j->order[(*j->next)++] = j->id;
        pthread_mutex_unlock(j->mu);
        sleep_ms(5);
        gate_leave(j->g);
    }
    return NULL;
}

/* Waiters get the place in the order they came; one that gives up in the
 * middle of the queue does not disturb the others. */
static void test_fifo(void **state)
{
    enum { N = 5 };
    gate *g = NULL;
    pthread_t t[N];
    struct job jobs[N];
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    int order[N] = {0}, next = 0;
    (void)state;

    assert_int_equal(gate_new(1, &g), CD_OK);
    assert_int_equal(gate_enter(g, 0), CD_OK); /* held by the test */
    for (int i = 0; i < N; i++) {
        /* Job 2 gives up before the gate opens. */
        jobs[i] = (struct job){g, i == 2 ? 2000 : 30000, i, order, &next, &mu, CD_ERR_INTERNAL};
        assert_int_equal(pthread_create(&t[i], NULL, job_main, &jobs[i]), 0);
        /* Arrival order 0, 1, 2, 3, 4: each is queued before the next starts. */
        for (int w = 0; w < 1000 && gate_waiting(g) < (unsigned)i + 1; w++)
            sleep_ms(1);
        assert_int_equal(gate_waiting(g), i + 1);
    }
    while (gate_waiting(g) == N) /* until job 2 times out */
        sleep_ms(10);
    assert_int_equal(gate_waiting(g), N - 1);
    gate_leave(g);
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(jobs[2].rc, CD_ERR_TIMEOUT);
    assert_int_equal(next, N - 1);
    assert_int_equal(order[0], 0);
    assert_int_equal(order[1], 1);
    assert_int_equal(order[2], 3);
    assert_int_equal(order[3], 4);
    /* All places are back. */
    assert_int_equal(gate_enter(g, 0), CD_OK);
    gate_leave(g);
    gate_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slots_and_timeout),
        cmocka_unit_test(test_fifo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
