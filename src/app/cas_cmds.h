/* cas_cmds.h: the subcommands of confidoc-cas, one file each
 * (src/app/cas_cmd_NAME.c); cas_main.c dispatches on argv[1] by a table. */
#ifndef CONFIDOC_APP_CAS_CMDS_H
#define CONFIDOC_APP_CAS_CMDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "cas/policy.h"
#include "common/err.h"

#define CAS_EXIT_RUNTIME 1 /* a runtime error */
#define CAS_EXIT_POLICY 2  /* a policy or usage error */

/* Prints the usage of every command. */
void cas_usage(FILE *out);

/* Each runs one command: cmd is argv[1] (so one function may serve several),
 * argv[2..argc) its arguments. Returns the exit status. */
int cas_cmd_provision(const char *cmd, int argc, char **argv); /* provision, rotate, check */
int cas_cmd_recovery_keygen(const char *cmd, int argc, char **argv);
int cas_cmd_recover(const char *cmd, int argc, char **argv);
int cas_cmd_audit(const char *cmd, int argc, char **argv); /* audit verify */
int cas_cmd_run(const char *cmd, int argc, char **argv);   /* run (attested release) */
int cas_cmd_serve(const char *cmd, int argc, char **argv); /* serve, serve-worker */
int cas_cmd_attest(const char *cmd, int argc, char **argv);
int cas_cmd_session(const char *cmd, int argc, char **argv); /* session get|put */
int cas_cmd_client_keygen(const char *cmd, int argc, char **argv);
int cas_cmd_import(const char *cmd, int argc, char **argv); /* import-plaintext */
int cas_cmd_node_agent(const char *cmd, int argc, char **argv);

/* ---- shared argument helpers (cas_args.c) ---- */

#define CAS_MAX_VARS 64

/* --var NAME=VALUE pairs for ${NAME} in policies (the last of a name wins). */
struct cas_vars {
    const char *names[CAS_MAX_VARS];
    const char *values[CAS_MAX_VARS];
    char *owned[CAS_MAX_VARS];
    size_t n;
};

/* Adds arg ("NAME=VALUE"; VALUE is borrowed from arg); false, with the
 * problem on stderr, when it is not of that form or there are too many. */
bool cas_vars_add(struct cas_vars *v, const char *arg);
/* The pairs as policy variables (borrowed from v). */
struct policy_vars cas_vars_view(const struct cas_vars *v);
void cas_vars_free(struct cas_vars *v);

/* HOST:PORT or [V6]:PORT split in place (s is modified); CD_ERR_INVALID when malformed. */
cd_err cas_split_hostport(char *s, const char **host, const char **port);
/* True for a key hash: 64 lowercase hex digits. */
bool cas_is_hash(const char *s);

#endif
