/* fuzz_release_proto.c: release_decode on an arbitrary launcher-protocol message.
 *
 * Nothing may crash or leak; the answer is CD_OK or CD_ERR_INVALID; an
 * accepted message is canonical: encoding what was decoded (with the
 * encoders, which check every field again) gives back exactly the input, so
 * every field the decoder let through is one the encoders would send. */
#include "fuzz_common.h"

#include "release/proto.h"

static char *copy(struct release_view v, char *out, size_t cap)
{
    FUZZ_CHECK(release_view_copy(v, out, cap));
    return out;
}

static cd_err reencode(const struct release_msg *m, struct buf *b)
{
    static char s1[RELEASE_PATH_MAX + 1], paths[POLICY_MAX_MEASURED][RELEASE_PATH_MAX + 1];
    static struct release_measurement me;
    const char *pp[POLICY_MAX_MEASURED];
    char verifier[RELEASE_NAME_MAX + 1];

    switch (m->type) {
    case RELEASE_HELLO:
        return release_enc_hello(b, copy(m->session, s1, sizeof(s1)));
    case RELEASE_SPEC:
        for (size_t i = 0; i < m->nconfig; i++)
            pp[i] = copy(m->config[i], paths[i], sizeof(paths[i]));
        return release_enc_spec(b, m->uid, copy(m->mount, s1, sizeof(s1)), pp, m->nconfig,
                                (const unsigned char *)m->nonce.p);
    case RELEASE_REFUSED:
        return release_enc_refused(b, copy(m->reason, s1, sizeof(s1)));
    case RELEASE_MEASURE:
        memset(&me, 0, sizeof(me));
        copy(m->exe, me.exe, sizeof(me.exe));
        me.uid = m->uid;
        me.nconfig = m->nconfig;
        for (size_t i = 0; i < m->nconfig; i++)
            copy(m->config[i], me.config[i], sizeof(me.config[i]));
        me.verifier = copy(m->verifier, verifier, sizeof(verifier));
        me.evidence = m->evidence.p;
        me.evidence_len = m->evidence.len;
        return release_enc_measure(b, &me);
    case RELEASE_FILE:
        return release_enc_file(b, copy(m->rel, s1, sizeof(s1)), m->public_file, m->content.p,
                                m->content.len);
    case RELEASE_END:
        return release_enc_end(b, m->nfiles);
    }
    FUZZ_CHECK(0);
    return CD_ERR_INTERNAL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct release_msg m;
    struct buf b;

    cd_err rc = release_decode(data, size, &m);
    FUZZ_CHECK(rc == CD_OK || rc == CD_ERR_INVALID);
    if (rc != CD_OK)
        return 0;
    FUZZ_CHECK(size <= RELEASE_MSG_MAX);
    FUZZ_CHECK(m.nconfig <= POLICY_MAX_MEASURED);
    buf_init(&b, RELEASE_BUF_MAX);
    cd_err err = reencode(&m, &b);
    if (err != CD_ERR_NOMEM) {
        FUZZ_CHECK(err == CD_OK);
        FUZZ_CHECK(b.len == size && memcmp(b.p, data, size) == 0);
    }
    buf_release(&b);
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}
