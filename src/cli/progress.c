/* progress.c: a one-line progress bar on stderr, for transfers, drawn only
 * when stderr is a terminal and at most ten times a second. */
#include "cli/cli_int.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define CLI_BAR_WIDTH 30

static struct {
    struct timespec start, last;
    bool started;
    bool done;
} cli_bar;

static double cli_since(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

void cli_progress_draw(uint64_t now, uint64_t total, bool upload)
{
    struct timespec t;
    char bar[CLI_BAR_WIDTH + 1];
    unsigned fill;
    double secs;

    if (total == 0 || !isatty(STDERR_FILENO))
        return;
    clock_gettime(CLOCK_MONOTONIC, &t);
    if (!cli_bar.started) {
        cli_bar.start = t;
        cli_bar.started = true;
    } else if (now < total ? cli_since(&cli_bar.last, &t) < 0.1 : cli_bar.done) {
        return; /* at most ten times a second, and the end once */
    }
    cli_bar.done = now >= total;
    cli_bar.last = t;
    if (now > total)
        now = total;
    fill = (unsigned)(now * CLI_BAR_WIDTH / total);
    for (unsigned i = 0; i < CLI_BAR_WIDTH; i++)
        bar[i] = i < fill ? '#' : ' ';
    bar[CLI_BAR_WIDTH] = '\0';
    secs = cli_since(&cli_bar.start, &t);
    fprintf(stderr, "\r%s [%s] %3u%% %.1f/%.1f MiB %.1f MiB/s ", upload ? "up  " : "down", bar,
            (unsigned)(now * 100 / total), (double)now / 1048576.0, (double)total / 1048576.0,
            secs > 0 ? (double)now / 1048576.0 / secs : 0.0);
}

void cli_progress_end(void)
{
    if (cli_bar.started && isatty(STDERR_FILENO))
        fputc('\n', stderr);
    cli_bar.started = false;
    cli_bar.done = false;
}
