/* cas_main.c: confidoc-cas: hardening, then one subcommand by name
 * (src/app/cas_cmds.h; each command is a file of its own). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "app/cas_cmds.h"
#include "log/log.h"

struct cas_cmd {
    const char *name;
    int (*run)(const char *cmd, int argc, char **argv);
    const char *usage;
};

static const struct cas_cmd commands[] = {
    {"provision", cas_cmd_provision,
     "provision --policies DIR --state STATE [--var NAME=VALUE ...]"},
    {"rotate", cas_cmd_provision, "rotate --policies DIR --state STATE POLICY/SECRET [--var ...]"},
    {"check", cas_cmd_provision, "check --policies DIR [--var NAME=VALUE ...]"},
    {"recovery-keygen", cas_cmd_recovery_keygen, "recovery-keygen --private FILE --public FILE"},
    {"recover", cas_cmd_recover,
     "recover --state DIR --recovery-key PRIV [--recovery-key PRIV ...] (--sealing-key FILE | "
     "--sealing-keyring NAME)"},
    {"audit", cas_cmd_audit, "audit verify FILE [--pin PIN] [--head SEQ:SHA256]"},
    {"run", cas_cmd_run, "run --session S [--socket PATH] [--fallback-dir DIR] -- CMD ARGS..."},
    {"serve", cas_cmd_serve,
     "serve --state DIR --listen IP:PORT [--name DNS]... [--admin KEYHASH]...\n"
     "             (--sealing-key FILE | --sealing-keyring NAME) [--recovery-key PUB]...\n"
     "             [--recovery-threshold K] [--audit-log FILE] [--socket PATH] [--node "
     "KEYHASH]...\n"
     "             [--worker-user USER] [--pidfile FILE] [--pin-out FILE]\n"
     "             [--metrics-listen IP:PORT --metrics-client KEYHASH...]\n"
     "             [--policies DIR --var NAME=VALUE ...]"},
    {"node-agent", cas_cmd_node_agent,
     "node-agent --socket PATH --cas https://HOST:PORT --cas-pin PIN\n"
     "             [--identity-cert FILE --identity-key FILE] | node-agent --check --socket PATH"},
    {"serve-worker", cas_cmd_serve, "serve-worker --user USER   (internal: started by serve)"},
    {"attest", cas_cmd_attest, "attest HOST:PORT --expect PIN [--ca-out FILE]"},
    {"session", cas_cmd_session,
     "session get NAME | put FILE [--var N=V]... [--predecessor auto|HASH] [--sign KEY.pem]...\n"
     "             --cas HOST:PORT --cacert CA.pem [--cert CERT.pem --key KEY.pem]"},
    {"client-keygen", cas_cmd_client_keygen, "client-keygen --key FILE --cert FILE [--name CN]"},
    {"import-plaintext", cas_cmd_import,
     "import-plaintext --state DIR (--sealing-key FILE | --sealing-keyring NAME)\n"
     "             [--recovery-key PUB]... [--recovery-threshold K]"},
};

void cas_usage(FILE *out)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "%s confidoc-cas %s\n", i == 0 ? "usage:" : "      ", commands[i].usage);
    fprintf(out, "A ${NAME} in a policy takes --var NAME=VALUE or CONFIDOC_CAS_VAR_NAME.\n"
                 "Exit status: 0 success, 1 runtime error, 2 policy error.\n");
}

/* Keeps key material out of core dumps and away from ptrace by other users. */
static void harden(void)
{
    struct rlimit rl = {0, 0};
    (void)setrlimit(RLIMIT_CORE, &rl);
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    umask(077);
}

int main(int argc, char **argv)
{
    enum log_format format = LOG_FORMAT_TEXT;
    const char *lf = getenv("CONFIDOC_LOG_FORMAT");

    log_init("confidoc-cas", LOG_LEVEL_INFO);
    /* The same variable as confidoc-api's log_format (its CONFIDOC_<KEY>
     * override); inherited by the worker and the node agent. */
    if (lf != NULL && log_format_parse(lf, &format) != CD_OK)
        fprintf(stderr, "confidoc-cas: CONFIDOC_LOG_FORMAT must be text or json; text it is\n");
    log_set_format(format);
    {
        enum log_stream stream = LOG_STREAM_STDERR;
        const char *ls = getenv("CONFIDOC_LOG_STREAM");
        if (ls != NULL && log_stream_parse(ls, &stream) != CD_OK)
            fprintf(stderr,
                    "confidoc-cas: CONFIDOC_LOG_STREAM must be stderr or stdout; stderr it is\n");
        log_set_stream(stream);
    }
    harden();
    if (argc < 2) {
        cas_usage(stderr);
        return CAS_EXIT_POLICY;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        cas_usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argv[1], argc, argv);
    cas_usage(stderr);
    return CAS_EXIT_POLICY;
}
