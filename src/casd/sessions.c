/* sessions.c: the CAS parent's sessions and the decisions of its REST API
 * (sessions.h): create, update (predecessor and quorum), read, public values. */
#include "casd/sessions.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cas/cas.h"
#include "cas/store.h"
#include "casd/rest.h"
#include "casd/tls.h"
#include "common/file.h"
#include "log/log.h"

struct session {
    char name[CASD_IPC_NAME_MAX + 1];
    char hash[PKI_FP_HEX];
    unsigned version;
    char *text;
    size_t len;
};

struct casd_sessions {
    struct cas_store *store; /* borrowed */
    struct session s[POLICY_MAX_POLICIES];
    size_t n;
    struct policy_set *set;        /* every session, linked */
    struct cas_material *material; /* of set */
    char admins[CASD_MAX_ADMINS][PKI_FP_HEX];
    size_t nadmins;
    bool fresh;
};

void casd_reply_init(struct casd_reply *r)
{
    memset(r, 0, sizeof(*r));
    buf_init(&r->body, CASD_IPC_BODY_MAX + 1);
}

void casd_reply_release(struct casd_reply *r)
{
    buf_release(&r->body);
}

size_t casd_sessions_count(const struct casd_sessions *s)
{
    return s->n;
}

const struct policy_set *casd_sessions_set(const struct casd_sessions *s)
{
    return s->set;
}

const struct cas_material *casd_sessions_material(const struct casd_sessions *s)
{
    return s->material;
}

bool casd_sessions_fresh(const struct casd_sessions *s)
{
    return s->fresh;
}

void casd_sessions_at(const struct casd_sessions *s, size_t i, const char **name, const char **hash)
{
    *name = s->s[i].name;
    *hash = s->s[i].hash;
}

/* status and {"detail": text}; an audit refusal when event is set. */
static void refuse(struct casd_reply *r, int status, const char *text)
{
    r->status = status;
    r->body.len = 0;
    if (casd_rest_detail(&r->body, text) != CD_OK)
        r->status = 500;
}

static void not_found(struct casd_reply *r)
{
    refuse(r, 404, "not found");
}

static struct session *find(struct casd_sessions *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->s[i].name, name) == 0)
            return &s->s[i];
    return NULL;
}

static bool listed(const char (*list)[POLICY_HASH_HEX], size_t n, const char *hash)
{
    for (size_t i = 0; i < n && hash[0] != '\0'; i++)
        if (strcmp(list[i], hash) == 0)
            return true;
    return false;
}

/* ---- variables ---- */

static bool value_ok(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > CASD_VAR_VALUE_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("._-@+:/", c) != NULL))
            return false;
    }
    return true;
}

cd_err casd_text_subst(const char *text, size_t len, const struct policy_vars *vars,
                       struct buf *out, struct cd_diag *diag)
{
    cd_err err = CD_OK;

    for (size_t i = 0; i < len && err == CD_OK;) {
        const char *d = memchr(text + i, '$', len - i);
        size_t run = d != NULL ? (size_t)(d - text) - i : len - i;
        if (run > 0 && (err = buf_add(out, text + i, run)) != CD_OK)
            return err;
        i += run;
        if (i >= len)
            break;
        if (i + 1 >= len || text[i + 1] != '{') {
            err = buf_add(out, "$", 1);
            i++;
            continue;
        }
        const char *close = memchr(text + i + 2, '}', len - i - 2);
        size_t nl = close != NULL ? (size_t)(close - text) - i - 2 : 0;
        if (close == NULL || nl == 0 || nl > 64) {
            cd_diag_add(diag, "unterminated or too long ${...}");
            return CD_ERR_INVALID;
        }
        const char *val = NULL;
        for (size_t k = vars != NULL ? vars->n : 0; k > 0 && val == NULL; k--)
            if (strlen(vars->names[k - 1]) == nl &&
                memcmp(vars->names[k - 1], text + i + 2, nl) == 0)
                val = vars->values[k - 1];
        if (val == NULL) {
            cd_diag_add(diag, "unknown variable ${%.*s} (give --var %.*s=...)", (int)nl,
                        text + i + 2, (int)nl, text + i + 2);
            return CD_ERR_INVALID;
        }
        if (!value_ok(val)) {
            cd_diag_add(diag, "--var %.*s: a value is 1 to %d of letters, digits and . _ - @ + : /",
                        (int)nl, text + i + 2, CASD_VAR_VALUE_MAX);
            return CD_ERR_INVALID;
        }
        err = buf_add(out, val, strlen(val));
        i += nl + 3;
    }
    if (err == CD_OK)
        err = buf_add(out, "", 0);
    return err;
}

/* ---- linking and building ---- */

/* Links texts[0..n) (file names in files) and builds their material. */
static cd_err link_build(struct casd_sessions *s, const char *const *files,
                         const char *const *texts, const size_t *lens, size_t n,
                         struct policy_set **set_out, struct cas_material **m_out,
                         struct cd_diag *diag, bool *policy_error)
{
    struct policy_set *set = NULL;
    cd_err err = policy_set_parse_buffers(files, texts, lens, n, NULL, true, &set, diag);

    *policy_error = err == CD_ERR_INVALID;
    if (err != CD_OK)
        return err;
    struct cas_build b = {.set = set, .store = s->store, .where = "cas"};
    if ((err = cas_material_build(&b, diag, m_out)) != CD_OK) {
        policy_set_free(set);
        return err;
    }
    *set_out = set;
    return CD_OK;
}

static void swap_in(struct casd_sessions *s, struct policy_set *set, struct cas_material *m)
{
    cas_material_free(s->material);
    policy_set_free(s->set);
    s->material = m;
    s->set = set;
}

static cd_err store_session(struct casd_sessions *s, const char *name, unsigned version,
                            const char *hash, const char *text, size_t len)
{
    struct store_meta m = {.version = version};
    cd_err err = store_put(s->store, CASD_STORE_SESSIONS, name, version, "yaml", text, len);

    snprintf(m.tmpl, sizeof(m.tmpl), "%s", hash);
    if (err == CD_OK)
        err = store_meta_put(s->store, CASD_STORE_SESSIONS, name, &m);
    return err;
}

static cd_err load_kept(struct casd_sessions *s, const char *state_dir, struct cd_diag *diag)
{
    char dir[4096];
    DIR *dh;
    cd_err err = CD_OK;

    snprintf(dir, sizeof(dir), "%s/cas/%s", state_dir, CASD_STORE_SESSIONS);
    if ((dh = opendir(dir)) == NULL)
        return CD_OK; /* none yet */
    for (struct dirent *de; err == CD_OK && (de = readdir(dh)) != NULL;) {
        size_t n = strlen(de->d_name);
        if (de->d_name[0] == '.' || n < 6 || strcmp(de->d_name + n - 5, ".meta") != 0)
            continue;
        if (n - 5 > CASD_IPC_NAME_MAX || s->n >= POLICY_MAX_POLICIES) {
            cd_diag_add(diag, "%s: unexpected session file %s", dir, de->d_name);
            err = CD_ERR_CONFIG;
            break;
        }
        struct session *se = &s->s[s->n];
        struct store_meta m = {0};
        struct pki_buf text = {0};
        char hash[PKI_FP_HEX];
        memcpy(se->name, de->d_name, n - 5);
        se->name[n - 5] = '\0';
        err = store_meta_get(s->store, CASD_STORE_SESSIONS, se->name, &m);
        if (err == CD_OK)
            err = store_get(s->store, CASD_STORE_SESSIONS, se->name, m.version, "yaml", &text);
        if (err == CD_OK) {
            pki_sha256_hex(text.data, text.len, hash);
            if (strcmp(hash, m.tmpl) != 0)
                err = CD_ERR_CONFIG;
        }
        if (err != CD_OK) {
            cd_diag_add(diag, "%s: session %s cannot be read: %s", dir, se->name, cd_strerror(err));
            pki_buf_release(&text);
            break;
        }
        memcpy(se->hash, hash, sizeof(hash));
        se->version = m.version;
        se->text = text.data;
        se->len = text.len;
        s->n++;
    }
    closedir(dh);
    return err;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads, substitutes and adds every DIR/NAME.yaml as a session (not linked yet). */
static cd_err read_dir(struct casd_sessions *s, const char *dir, const struct policy_vars *vars,
                       struct cd_diag *diag)
{
    char *names[POLICY_MAX_POLICIES];
    size_t nn = 0;
    cd_err err = CD_OK;
    DIR *dh = opendir(dir);

    if (dh == NULL) {
        cd_diag_add(diag, "cannot open policy directory %s", dir);
        return CD_ERR_IO;
    }
    for (struct dirent *de; (de = readdir(dh)) != NULL;) {
        size_t n = strlen(de->d_name);
        if (de->d_name[0] == '.' || n < 6 || strcmp(de->d_name + n - 5, ".yaml") != 0)
            continue;
        if (nn >= POLICY_MAX_POLICIES || (names[nn] = strdup(de->d_name)) == NULL) {
            err = nn >= POLICY_MAX_POLICIES ? CD_ERR_INVALID : CD_ERR_NOMEM;
            break;
        }
        nn++;
    }
    closedir(dh);
    if (err == CD_OK)
        qsort(names, nn, sizeof(names[0]), cmp_names);
    for (size_t i = 0; i < nn && err == CD_OK; i++) {
        char path[4096];
        struct file_read_opts o = {.max = POLICY_FILE_MAX};
        struct file_data f;
        struct buf t;
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if ((err = file_read(path, &o, &f)) != CD_OK) {
            cd_diag_add(diag, "%s: %s", path, f.why);
            break;
        }
        buf_init(&t, POLICY_FILE_MAX + 1);
        err = casd_text_subst(f.data, f.len, vars, &t, diag);
        file_data_release(&f, NULL);
        if (err != CD_OK) {
            cd_diag_add(diag, "%s: cannot substitute its variables", path);
            buf_release(&t);
            break;
        }
        struct session *se = &s->s[s->n++];
        snprintf(se->name, sizeof(se->name), "%.*s", (int)(strlen(names[i]) - 5), names[i]);
        se->text = buf_detach(&t, &se->len);
        pki_sha256_hex(se->text, se->len, se->hash);
    }
    for (size_t i = 0; i < nn; i++)
        free(names[i]);
    return err;
}

static cd_err relink_all(struct casd_sessions *s, struct cd_diag *diag)
{
    const char *files[POLICY_MAX_POLICIES], *texts[POLICY_MAX_POLICIES];
    char fnames[POLICY_MAX_POLICIES][CASD_IPC_NAME_MAX + 16];
    size_t lens[POLICY_MAX_POLICIES];
    struct policy_set *set = NULL;
    struct cas_material *m = NULL;
    bool perr;

    for (size_t i = 0; i < s->n; i++) {
        snprintf(fnames[i], sizeof(fnames[i]), "sessions/%s.yaml", s->s[i].name);
        files[i] = fnames[i];
        texts[i] = s->s[i].text;
        lens[i] = s->s[i].len;
    }
    cd_err err = link_build(s, files, texts, lens, s->n, &set, &m, diag, &perr);
    if (err != CD_OK)
        return err;
    /* A session is known by its policy's name (a directory's file may name another). */
    for (size_t i = 0; i < s->n; i++)
        snprintf(s->s[i].name, sizeof(s->s[i].name), "%s", set->policies[i]->name);
    swap_in(s, set, m);
    return CD_OK;
}

cd_err casd_sessions_open(struct cas_store *store, const char *state_dir, const char *policies_dir,
                          const struct policy_vars *vars, const char *const *admins, size_t nadmins,
                          struct cd_diag *diag, struct casd_sessions **out)
{
    struct casd_sessions *s = calloc(1, sizeof(*s));
    cd_err err;

    if (s == NULL)
        return CD_ERR_NOMEM;
    s->store = store;
    if (nadmins > CASD_MAX_ADMINS) {
        cd_diag_add(diag, "at most %d --admin keys", CASD_MAX_ADMINS);
        err = CD_ERR_CONFIG;
        goto out;
    }
    for (size_t i = 0; i < nadmins; i++)
        snprintf(s->admins[s->nadmins++], PKI_FP_HEX, "%s", admins[i]);
    if ((err = load_kept(s, state_dir, diag)) != CD_OK)
        goto out;
    bool fresh = s->n == 0 && policies_dir != NULL;
    if (fresh && (err = read_dir(s, policies_dir, vars, diag)) != CD_OK)
        goto out;
    if ((err = relink_all(s, diag)) != CD_OK)
        goto out;
    for (size_t i = 0; fresh && i < s->n && err == CD_OK; i++) {
        s->s[i].version = 1;
        err = store_session(s, s->s[i].name, 1, s->s[i].hash, s->s[i].text, s->s[i].len);
        if (err != CD_OK)
            cd_diag_add(diag, "cannot store session %s: %s", s->s[i].name, cd_strerror(err));
    }
    if (err == CD_OK && fresh)
        log_info("created %zu sessions from %s", s->n, policies_dir);
    s->fresh = fresh;
out:
    if (err != CD_OK) {
        casd_sessions_free(s);
        return err;
    }
    *out = s;
    return CD_OK;
}

void casd_sessions_free(struct casd_sessions *s)
{
    if (s == NULL)
        return;
    cas_material_free(s->material);
    policy_set_free(s->set);
    for (size_t i = 0; i < s->n; i++)
        free(s->s[i].text);
    free(s);
}

/* ---- the API ---- */

void casd_sessions_value(struct casd_sessions *s, const char *session, const char *secret,
                         struct casd_reply *r)
{
    struct pki_buf pem = {0};

    if (s->material == NULL || cas_material_public(s->material, session, secret, &pem) != CD_OK) {
        not_found(r);
        return;
    }
    r->status = 200;
    if (buf_add(&r->body, "{\"value\": ", 10) != CD_OK ||
        casd_json_add_string(&r->body, pem.data, pem.len) != CD_OK ||
        buf_add(&r->body, "}", 1) != CD_OK)
        refuse(r, 500, "internal error");
    pki_buf_release(&pem);
}

static cd_err name_hash_json(struct buf *b, const struct session *se, bool with_text)
{
    cd_err err = buf_add(b, "{\"name\": ", 9);
    if (err == CD_OK)
        err = casd_json_add_string(b, se->name, strlen(se->name));
    if (err == CD_OK)
        err = buf_add(b, ", \"hash\": ", 10);
    if (err == CD_OK)
        err = casd_json_add_string(b, se->hash, strlen(se->hash));
    if (err == CD_OK && with_text) {
        err = buf_add(b, ", \"session\": ", 13);
        if (err == CD_OK)
            err = casd_json_add_string(b, se->text, se->len);
    }
    if (err == CD_OK)
        err = buf_add(b, "}", 1);
    return err;
}

void casd_sessions_get(struct casd_sessions *s, const char *name, const char *client,
                       struct casd_reply *r)
{
    const struct session *se = find(s, name);
    const struct policy *p = se != NULL && s->set != NULL ? policy_set_find(s->set, name) : NULL;

    if (p == NULL || client[0] == '\0' ||
        !(listed(p->access.read, p->access.nread, client) ||
          listed(p->access.update, p->access.nupdate, client))) {
        not_found(r);
        return;
    }
    r->status = 200;
    if (name_hash_json(&r->body, se, true) != CD_OK)
        refuse(r, 500, "the session is too large to send");
}

/* The distinct keys whose signatures over text verify here, in the parent
 * (the TLS client key the worker reports is not counted: a compromised
 * worker could claim any). Returns how many; their hashes go to seen. */
static size_t verified_signers(const char *text, size_t len, const struct casd_ipc_sig *sigs,
                               size_t nsigs, char seen[][PKI_FP_HEX])
{
    size_t nseen = 0;

    for (size_t i = 0; i < nsigs; i++) {
        char h[PKI_FP_HEX];
        if (casd_sig_verify(sigs[i].public_key.p, sigs[i].public_key.len, sigs[i].signature.p,
                            sigs[i].signature.len, text, len, h) != CD_OK)
            continue;
        bool dup = false;
        for (size_t k = 0; k < nseen && !dup; k++)
            dup = strcmp(seen[k], h) == 0;
        if (!dup)
            memcpy(seen[nseen++], h, sizeof(h));
    }
    return nseen;
}

/* How many of the verified signers are in list[0..n). */
static size_t signers_in(char seen[][PKI_FP_HEX], size_t nseen, const char (*list)[POLICY_HASH_HEX],
                         size_t n)
{
    size_t count = 0;
    for (size_t k = 0; k < nseen; k++)
        if (listed(list, n, seen[k]))
            count++;
    return count;
}

static void refused(struct casd_reply *r, const char *name, int status, const char *why)
{
    refuse(r, status, why);
    r->event = "refused";
    r->reason = why;
    if (name != r->session)
        snprintf(r->session, sizeof(r->session), "%s", name != NULL ? name : "");
}

/* Who may do what, before anything is linked. Returns false with r set. */
static bool authorize(struct casd_sessions *s, const struct policy *np, const struct session *cur,
                      const char *text, size_t len, const char *client,
                      const struct casd_ipc_sig *sigs, size_t nsigs, struct casd_reply *r)
{
    const char *name = np->name;
    char seen[CASD_IPC_MAX_SIGS][PKI_FP_HEX];
    size_t nseen = verified_signers(text, len, sigs, nsigs, seen);

    (void)client; /* the worker's word only: authorization needs signatures */
    if (strcmp(name, CASD_STORE_SESSIONS) == 0 || strcmp(name, CASD_STORE_IDENTITY) == 0) {
        refused(r, name, 400, "this session name is reserved");
        return false;
    }
    if (cur == NULL) {
        if (signers_in(seen, nseen, s->admins, s->nadmins) == 0) {
            refused(r, name, 403, "only an admin key may create a session (it signs the text)");
            return false;
        }
        if (np->predecessor != NULL) {
            refused(r, name, 400, "a new session has no predecessor");
            return false;
        }
        if (s->n >= POLICY_MAX_POLICIES) {
            refused(r, name, 400, "too many sessions");
            return false;
        }
        return true;
    }
    const struct policy *cp = policy_set_find(s->set, name);
    unsigned need = cp->access.update_quorum > 0 ? cp->access.update_quorum : 1;
    if (signers_in(seen, nseen, cp->access.update, cp->access.nupdate) < need) {
        refused(r, name, 403, "the update is not signed by enough of the session's update keys");
        return false;
    }
    if (np->predecessor == NULL) {
        refused(r, name, 409, "an update names its predecessor (the current hash)");
        return false;
    }
    if (strcmp(np->predecessor, cur->hash) != 0) {
        refused(r, name, 409, "the predecessor is not the current version");
        return false;
    }
    return true;
}

/* Links the set with text in place of (or beside) the session at index at,
 * builds it, stores the text and swaps. */
static void commit(struct casd_sessions *s, size_t at, const char *text, size_t len,
                   struct casd_reply *r)
{
    const char *files[POLICY_MAX_POLICIES], *texts[POLICY_MAX_POLICIES];
    char fnames[POLICY_MAX_POLICIES][CASD_IPC_NAME_MAX + 16];
    size_t lens[POLICY_MAX_POLICIES], n = at < s->n ? s->n : s->n + 1;
    struct policy_set *set = NULL;
    struct cas_material *m = NULL;
    struct cd_diag *diag = malloc(sizeof(*diag));
    char hash[PKI_FP_HEX];
    bool perr = false;
    char *copy = malloc(len + 1);

    if (diag == NULL || copy == NULL) {
        refuse(r, 500, "out of memory");
        goto out;
    }
    cd_diag_init(diag);
    for (size_t i = 0; i < n; i++) {
        bool mine = i == at;
        snprintf(fnames[i], sizeof(fnames[i]), mine ? "<upload>" : "sessions/%s.yaml",
                 mine ? "" : s->s[i].name);
        files[i] = fnames[i];
        texts[i] = mine ? text : s->s[i].text;
        lens[i] = mine ? len : s->s[i].len;
    }
    cd_err err = link_build(s, files, texts, lens, n, &set, &m, diag, &perr);
    if (err != CD_OK) {
        if (perr) {
            refused(r, r->session, 400, "the session does not link");
            r->body.len = 0;
            if (casd_rest_detail(&r->body, diag->text) != CD_OK)
                r->status = 500;
        } else {
            log_errorx("cannot build the sessions' material: %s", cd_strerror(err));
            refused(r, r->session, 500, "cannot build the session's secrets");
        }
        goto out;
    }
    struct session next = {.version = at < s->n ? s->s[at].version + 1 : 1, .len = len};
    snprintf(next.name, sizeof(next.name), "%s", set->policies[at]->name);
    pki_sha256_hex(text, len, hash);
    memcpy(next.hash, hash, sizeof(hash));
    if ((err = store_session(s, next.name, next.version, hash, text, len)) != CD_OK) {
        log_errorx("cannot store session %s: %s", next.name, cd_strerror(err));
        refused(r, next.name, 500, "cannot store the session");
        goto out;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    next.text = copy;
    copy = NULL;
    if (at < s->n)
        free(s->s[at].text);
    else
        s->n++;
    s->s[at] = next;
    swap_in(s, set, m);
    set = NULL;
    m = NULL;
    r->status = next.version == 1 ? 201 : 200;
    r->event = next.version == 1 ? "create" : "update";
    snprintf(r->session, sizeof(r->session), "%s", next.name);
    memcpy(r->hash, hash, sizeof(hash));
    if (name_hash_json(&r->body, &s->s[at], false) != CD_OK)
        refuse(r, 500, "internal error");
out:
    cas_material_free(m);
    policy_set_free(set);
    free(copy);
    free(diag);
}

void casd_sessions_put(struct casd_sessions *s, const char *text, size_t len, const char *client,
                       const struct casd_ipc_sig *sigs, size_t nsigs, struct casd_reply *r)
{
    const char *file = "<upload>";
    struct policy_set *one = NULL;
    struct cd_diag *diag = malloc(sizeof(*diag));

    if (diag == NULL) {
        refuse(r, 500, "out of memory");
        return;
    }
    cd_diag_init(diag);
    /* Its own keys first (name, predecessor, access): who may do this is
     * decided before the text meets the other sessions. */
    cd_err err = policy_set_parse_buffers(&file, &text, &len, 1, NULL, false, &one, diag);
    if (err != CD_OK) {
        refused(r, NULL, err == CD_ERR_INVALID ? 400 : 500, "the session does not parse");
        if (err == CD_ERR_INVALID) {
            r->body.len = 0;
            if (casd_rest_detail(&r->body, diag->text) != CD_OK)
                r->status = 500;
        }
        goto out;
    }
    const struct policy *np = one->policies[0];
    struct session *cur = find(s, np->name);
    snprintf(r->session, sizeof(r->session), "%s", np->name);
    if (!authorize(s, np, cur, text, len, client, sigs, nsigs, r))
        goto out;
    commit(s, cur != NULL ? (size_t)(cur - s->s) : s->n, text, len, r);
out:
    policy_set_free(one);
    free(diag);
}
