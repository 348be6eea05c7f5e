/* inject.c: template rendering and writing of the files each service reads. */
#include "cas/inject.h"

#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cas/store.h"
#include "common/buf.h"
#include "common/codec.h"

cd_err inject_render(const struct policy_file *f, inject_lookup_fn lookup, void *ctx,
                     struct pki_buf *out)
{
    cd_err err = CD_OK;
    struct buf g; /* may hold key material: buf wipes what it lets go */
    size_t pos = 0;

    buf_init(&g, INJECT_FILE_MAX);

    for (size_t i = 0; i < f->nrefs; i++) {
        const struct policy_ref *r = &f->refs[i];
        struct pki_buf part = {0};
        if ((err = buf_add(&g, f->content + pos, r->start - pos)) != CD_OK)
            goto out;
        err = lookup(ctx, r->secret, r->part, &part);
        if (err == CD_OK)
            err = buf_add(&g, part.data, part.len);
        pki_buf_release(&part);
        if (err != CD_OK)
            goto out;
        pos = r->end;
    }
    if ((err = buf_add(&g, f->content + pos, f->content_len - pos)) != CD_OK)
        goto out;
    out->data = buf_detach(&g, &out->len);
out:
    buf_release(&g);
    return err;
}

cd_err inject_symmetric_text(enum policy_part part, const unsigned char *const *keys,
                             const size_t *lens, size_t nkeys, struct pki_buf *out)
{
    struct buf g;
    cd_err err = CD_OK;
    char head[24], hx[3];

    if (nkeys == 0)
        return CD_ERR_INVALID;
    buf_init(&g, INJECT_FILE_MAX);
    for (size_t v = part == POLICY_PART_HEX ? nkeys - 1 : 0; v < nkeys; v++) {
        if (part == POLICY_PART_KEYRING || part == POLICY_PART_MARIADB_KEYFILE) {
            int n = snprintf(head, sizeof(head), "%zu%c", v + 1,
                             part == POLICY_PART_KEYRING ? ':' : ';');
            if ((err = buf_add(&g, head, (size_t)n)) != CD_OK)
                goto out;
        } else if (part != POLICY_PART_HEX) {
            err = CD_ERR_INVALID;
            goto out;
        }
        for (size_t i = 0; i < lens[v]; i++) {
            codec_hex_encode(&keys[v][i], 1, hx);
            if ((err = buf_add(&g, hx, 2)) != CD_OK)
                goto out;
        }
        pki_wipe(head, sizeof(head));
        if (part != POLICY_PART_HEX && (err = buf_add(&g, "\n", 1)) != CD_OK)
            goto out;
    }
    out->data = buf_detach(&g, &out->len);
out:
    pki_wipe(hx, sizeof(hx));
    buf_release(&g);
    return err;
}

void inject_owner(const char *owner, uid_t *uid, gid_t *gid)
{
    *uid = (uid_t)-1;
    *gid = (gid_t)-1;
    if (owner == NULL || geteuid() != 0)
        return;
    struct passwd pw, *res = NULL;
    char buf[4096];
    if (getpwnam_r(owner, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
        return;
    *uid = pw.pw_uid;
    *gid = pw.pw_gid;
}

cd_err inject_write(const char *state_dir, const char *rel, const struct pki_buf *content,
                    bool public_file, uid_t uid, gid_t gid, bool *changed)
{
    char dir[PATH_MAX];
    const char *base = rel;
    int dfd = -1;
    cd_err err;

    if (strlen(rel) >= sizeof(dir))
        return CD_ERR_TOO_LARGE;
    snprintf(dir, sizeof(dir), "%s", rel);
    char *slash = strrchr(dir, '/');
    if (slash != NULL) {
        *slash = '\0';
        base = rel + (slash - dir) + 1;
        /* Directories stay root's (the caller's) whoever the owner is: a service
         * that could write a directory could plant links there for the next
         * run. A service of another user reaches its files through the group
         * (0750); its files alone are its own. */
        bool other = uid != (uid_t)-1 && uid != geteuid();
        err = public_file ? store_open_dirs(state_dir, dir, 0755, (uid_t)-1, (gid_t)-1, &dfd)
              : other     ? store_open_dirs(state_dir, dir, 0750, geteuid(), gid, &dfd)
                          : store_open_dirs(state_dir, dir, 0700, uid, gid, &dfd);
    } else {
        err = store_open_dirs(state_dir, "", 0700, (uid_t)-1, (gid_t)-1, &dfd);
    }
    if (err != CD_OK)
        return err;
    err = store_write_at(dfd, base, content->data, content->len, public_file ? 0644 : 0600,
                         public_file ? (uid_t)-1 : uid, public_file ? (gid_t)-1 : gid, changed);
    close(dfd);
    return err;
}
