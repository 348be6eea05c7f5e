/* cas_cmds.h: the subcommands of confidoc-cas, one file each
 * (src/app/cas_cmd_NAME.c); cas_main.c dispatches on argv[1] by a table. */
#ifndef CONFIDOC_APP_CAS_CMDS_H
#define CONFIDOC_APP_CAS_CMDS_H

#include <stdio.h>

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

/* HOST:PORT or [V6]:PORT split in place (s is modified); 0, or -1 when malformed. */
int cas_split_hostport(char *s, const char **host, const char **port);

#endif
