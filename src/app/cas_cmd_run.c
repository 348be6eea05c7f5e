/* cas_cmd_run.c: confidoc-cas run: start a command with its session's
 * secrets, released by the CAS after it measured the command (release/launch.h). */
#include <stdio.h>
#include <string.h>

#include "app/cas_cmds.h"
#include "release/launch.h"

int cas_cmd_run(const char *cmd, int argc, char **argv)
{
    struct release_launch l = {.socket = RELEASE_SOCKET_DEFAULT};
    char reason[1024];
    int i = 2;

    (void)cmd;
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--session") == 0 && i + 1 < argc)
            l.session = argv[++i];
        else if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc)
            l.socket = argv[++i];
        else if (strcmp(argv[i], "--fallback-dir") == 0 && i + 1 < argc)
            l.fallback_dir = argv[++i];
        else
            break;
    }
    if (l.session == NULL || i >= argc || strcmp(argv[i], "--") != 0 || i + 1 >= argc) {
        fprintf(stderr, "usage: confidoc-cas run --session S [--socket PATH] [--fallback-dir DIR] "
                        "-- CMD ARGS...\n");
        return CAS_EXIT_POLICY;
    }
    l.argv = argv + i + 1;
    (void)release_launch(&l, reason, sizeof(reason));
    /* Only a failure returns. */
    fprintf(stderr, "confidoc-cas run: refused: %s\n", reason);
    return CAS_EXIT_RUNTIME;
}
