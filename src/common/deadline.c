/* deadline.c: see deadline.h. */
#include "common/deadline.h"

void cd_deadline(clockid_t clk, unsigned ms, struct timespec *ts)
{
    clock_gettime(clk, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}
