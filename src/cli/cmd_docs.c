/* cmd_docs.c: the document commands: put, get, ls, rm. Files are streamed in
 * both directions (never held whole); a download goes to a private temporary
 * file beside its target and is renamed into place only once complete. */
#include "cli/cli_int.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/num.h"

#define CLI_ID_MAX ((uint64_t)INT64_MAX)
#define CLI_PUT_ATTEMPTS 5
#define CLI_LIST_PAGE 100

static bool cli_record_id(const char *s, uint64_t *out)
{
    if (num_parse(s, strlen(s), CLI_ID_MAX, out) == CD_OK)
        return true;
    fprintf(stderr, "confidoc: a record id is a number from 0 to %llu\n",
            (unsigned long long)CLI_ID_MAX);
    return false;
}

/* A Content-Type for the file's extension, for the few common types. */
static const char *cli_guess_type(const char *path)
{
    static const char *const types[][2] = {
        {"txt", "text/plain; charset=utf-8"},
        {"md", "text/markdown; charset=utf-8"},
        {"csv", "text/csv; charset=utf-8"},
        {"json", "application/json"},
        {"pdf", "application/pdf"},
        {"png", "image/png"},
        {"jpg", "image/jpeg"},
        {"jpeg", "image/jpeg"},
        {"gif", "image/gif"},
        {"webp", "image/webp"},
        {"svg", "image/svg+xml"},
        {"html", "text/html; charset=utf-8"},
        {"zip", "application/zip"},
        {"gz", "application/gzip"},
        {"tar", "application/x-tar"},
        {"odt", "application/vnd.oasis.opendocument.text"},
        {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
        {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
    };
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');

    if (dot != NULL && (slash == NULL || dot > slash))
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
            if (strcasecmp(dot + 1, types[i][0]) == 0)
                return types[i][1];
    return "application/octet-stream";
}

/* The integer member name of a JSON answer, or -1. */
static long long cli_json_int(const struct cli_reply *r, const char *name)
{
    json_t *doc = cli_reply_json(r);
    json_t *v = json_object_get(doc, name);
    long long n = json_is_integer(v) ? (long long)json_integer_value(v) : -1;

    json_decref(doc);
    return n;
}

/* Calls fn(doc, cls) for each document of the caller, page by page. */
static int cli_each_document(struct cli *c, void (*fn)(json_t *doc, void *cls), void *cls)
{
    long long after = -1;
    int rc = CLI_EXIT_OK;

    do {
        char path[96];
        json_t *ans, *docs, *next;
        size_t i;

        if (after < 0)
            snprintf(path, sizeof(path), "/documents?limit=%d", CLI_LIST_PAGE);
        else
            snprintf(path, sizeof(path), "/documents?limit=%d&after=%lld", CLI_LIST_PAGE, after);
        rc = cli_get_json(c, path, &ans);
        if (rc != CLI_EXIT_OK)
            return rc;
        docs = json_object_get(ans, "documents");
        next = json_object_get(ans, "next_after");
        if (!json_is_array(docs)) {
            fprintf(stderr, "confidoc: unexpected answer to the document list\n");
            json_decref(ans);
            return CLI_EXIT_REFUSED;
        }
        for (i = 0; i < json_array_size(docs); i++)
            fn(json_array_get(docs, i), cls);
        after = json_is_integer(next) ? (long long)json_integer_value(next) : -1;
        json_decref(ans);
    } while (after >= 0);
    return rc;
}

static void cli_max_id(json_t *doc, void *cls)
{
    long long *max = cls;
    json_t *id = json_object_get(doc, "record_id");

    if (json_is_integer(id) && (long long)json_integer_value(id) > *max)
        *max = (long long)json_integer_value(id);
}

static int cli_open_input(const char *file, struct cli_body *b)
{
    struct stat st;

    b->fd = strcmp(file, "-") == 0 ? dup(STDIN_FILENO) : open(file, O_RDONLY | O_CLOEXEC);
    if (b->fd < 0 || fstat(b->fd, &st) != 0) {
        fprintf(stderr, "confidoc: %s: %s\n", file, strerror(errno));
        if (b->fd >= 0)
            close(b->fd);
        return CLI_EXIT_USAGE;
    }
    if (S_ISDIR(st.st_mode)) {
        fprintf(stderr, "confidoc: %s is a directory\n", file);
        close(b->fd);
        return CLI_EXIT_USAGE;
    }
    b->size = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : CLI_SIZE_UNKNOWN;
    return CLI_EXIT_OK;
}

/* PUT the body to id; when create_only, 412 is left to the caller. */
static int cli_put_to(struct cli *c, struct cli_body *b, uint64_t id, struct cli_reply *r)
{
    char path[64];

    snprintf(path, sizeof(path), "/documents/%llu", (unsigned long long)id);
    cli_reply_init(r, -1);
    return cli_call(c, "PUT", path, b, r, true);
}

int cli_cmd_put(struct cli *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"id", required_argument, NULL, 'i'}, {"type", required_argument, NULL, 't'}, {0}};
    struct cli_body b = {NULL, NULL, 0, -1, 0, false};
    const char *id_text = NULL;
    struct cli_reply r;
    uint64_t id = 0;
    int opt, rc;

    optind = 0;
    while ((opt = getopt_long(argc, argv, "i:t:", longopts, NULL)) != -1) {
        if (opt == 'i')
            id_text = optarg;
        else if (opt == 't')
            b.ctype = optarg;
        else
            return CLI_EXIT_USAGE;
    }
    if (optind + 1 != argc || (id_text != NULL && !cli_record_id(id_text, &id))) {
        fprintf(stderr, "usage: confidoc put FILE [--id N] [--type MIME]\n");
        return CLI_EXIT_USAGE;
    }
    if (b.ctype == NULL)
        b.ctype = cli_guess_type(argv[optind]);
    if ((rc = cli_open_input(argv[optind], &b)) != CLI_EXIT_OK)
        return rc;
    if (id_text != NULL) {
        rc = cli_put_to(c, &b, id, &r);
    } else {
        /* The next free record id; If-None-Match: * keeps a document that
         * another client stored there meanwhile, and the next id is tried. */
        long long max = -1;
        if ((rc = cli_each_document(c, cli_max_id, &max)) != CLI_EXIT_OK)
            goto out;
        b.if_none_match = true;
        id = (uint64_t)(max + 1);
        for (int i = 0; i < CLI_PUT_ATTEMPTS; i++, id++) {
            rc = cli_put_to(c, &b, id, &r);
            if (rc != CLI_EXIT_REFUSED || r.status != 412 || b.size == CLI_SIZE_UNKNOWN)
                break;
            cli_reply_release(&r);
        }
    }
    if (rc == CLI_EXIT_OK)
        printf("document %llu stored: version %lld, %lld bytes, %s\n", (unsigned long long)id,
               cli_json_int(&r, "version"), cli_json_int(&r, "size"), b.ctype);
    cli_reply_release(&r);
out:
    close(b.fd);
    return rc;
}

/* Downloads into a private temporary file beside out, renamed once complete. */
static int cli_get_to_file(struct cli *c, const char *path, const char *out)
{
    size_t n = strlen(out);
    char *tmp = malloc(n + 16);
    struct cli_reply r;
    int fd, rc;

    if (tmp == NULL)
        return CLI_EXIT_UNREACHABLE;
    snprintf(tmp, n + 16, "%s.tmp-XXXXXX", out);
    fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600: documents are confidential */
    if (fd < 0) {
        fprintf(stderr, "confidoc: %s: %s\n", out, strerror(errno));
        free(tmp);
        return CLI_EXIT_USAGE;
    }
    cli_reply_init(&r, fd);
    rc = cli_call(c, "GET", path, NULL, &r, true);
    cli_reply_release(&r);
    if (rc == CLI_EXIT_OK && (fsync(fd) != 0 || rename(tmp, out) != 0)) {
        fprintf(stderr, "confidoc: %s: %s\n", out, strerror(errno));
        rc = CLI_EXIT_USAGE;
    }
    close(fd);
    if (rc != CLI_EXIT_OK)
        unlink(tmp);
    free(tmp);
    return rc;
}

int cli_cmd_get(struct cli *c, int argc, char **argv)
{
    static const struct option longopts[] = {{"output", required_argument, NULL, 'o'}, {0}};
    const char *out = NULL;
    struct cli_reply r;
    char path[80];
    uint64_t id;
    int opt, rc;

    optind = 0;
    while ((opt = getopt_long(argc, argv, "o:", longopts, NULL)) != -1) {
        if (opt != 'o')
            return CLI_EXIT_USAGE;
        out = optarg;
    }
    if (optind + 1 != argc || !cli_record_id(argv[optind], &id)) {
        fprintf(stderr, "usage: confidoc get ID [-o FILE]\n");
        return CLI_EXIT_USAGE;
    }
    snprintf(path, sizeof(path), "/documents/%llu/content", (unsigned long long)id);
    if (out != NULL && strcmp(out, "-") != 0)
        return cli_get_to_file(c, path, out);
    cli_reply_init(&r, STDOUT_FILENO);
    rc = cli_call(c, "GET", path, NULL, &r, !isatty(STDOUT_FILENO));
    cli_reply_release(&r);
    return rc;
}

static void cli_print_header(void)
{
    printf("%-12s %7s %12s  %-19s  %s\n", "ID", "VERSION", "SIZE", "UPDATED (UTC)", "TYPE");
}

/* One line per document; the header before the first (printed only once the
 * first page came, so a failure prints nothing on stdout). */
static void cli_print_doc(json_t *d, void *cls)
{
    const char *type = json_string_value(json_object_get(d, "content_type"));
    const char *updated = json_string_value(json_object_get(d, "updated_at"));

    if ((*(unsigned *)cls)++ == 0)
        cli_print_header();
    printf("%-12lld %7lld %12lld  %-19.19s  %s\n",
           (long long)json_integer_value(json_object_get(d, "record_id")),
           (long long)json_integer_value(json_object_get(d, "version")),
           (long long)json_integer_value(json_object_get(d, "size")),
           updated != NULL ? updated : "-", type != NULL ? type : "-");
}

int cli_cmd_ls(struct cli *c, int argc, char **argv)
{
    unsigned count = 0;
    int rc;

    (void)argc; /* none: cli_run checked */
    (void)argv;
    rc = cli_each_document(c, cli_print_doc, &count);
    if (rc == CLI_EXIT_OK && count == 0)
        cli_print_header();
    if (rc == CLI_EXIT_OK && isatty(STDOUT_FILENO))
        printf("%u document%s\n", count, count == 1 ? "" : "s");
    return rc;
}

int cli_cmd_rm(struct cli *c, int argc, char **argv)
{
    char path[64];
    uint64_t id;
    int rc;

    (void)argc; /* one: cli_run checked */
    if (!cli_record_id(argv[1], &id))
        return CLI_EXIT_USAGE;
    snprintf(path, sizeof(path), "/documents/%llu", (unsigned long long)id);
    rc = cli_call_simple(c, "DELETE", path);
    if (rc == CLI_EXIT_OK)
        printf("document %llu deleted\n", (unsigned long long)id);
    return rc;
}
