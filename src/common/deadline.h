/* deadline.h: absolute deadlines for timed waits (pthread_cond_timedwait,
 * sem_timedwait), so each module does not redo the nanosecond carry. */
#ifndef CONFIDOC_DEADLINE_H
#define CONFIDOC_DEADLINE_H

#include <time.h>

/* *ts = now on clock clk + ms milliseconds. clk must match the wait's clock:
 * CLOCK_MONOTONIC for condition variables set up with it, CLOCK_REALTIME for
 * sem_timedwait and default condition variables. */
void cd_deadline(clockid_t clk, unsigned ms, struct timespec *ts);

#endif
