/* fuzz_ipc.c: casd_ipc_decode on an arbitrary datagram (the parent decodes
 * what a compromised worker sends; the worker what the parent replies).
 *
 * Nothing may crash; the answer is CD_OK or CD_ERR_INVALID; an accepted
 * message has a known type, fields inside the datagram and within their
 * bounds, and encodes back to exactly the same bytes (one encoding per
 * message: nothing the decoder accepts is ambiguous). */
#include "fuzz_common.h"

#include "casd/ipc.h"

static void check_field(const struct casd_ipc_field *f, const uint8_t *data, size_t size,
                        size_t max)
{
    FUZZ_CHECK(f->len <= max);
    if (f->len > 0)
        FUZZ_CHECK((const uint8_t *)f->p >= data && (const uint8_t *)f->p + f->len <= data + size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct casd_ipc_msg m;
    struct buf b;

    cd_err rc = casd_ipc_decode(data, size, &m);
    FUZZ_CHECK(rc == CD_OK || rc == CD_ERR_INVALID);
    if (rc != CD_OK)
        return 0;
    FUZZ_CHECK(m.type >= CASD_IPC_TLS_CONFIG && m.type <= CASD_IPC_METRICS_GET);
    check_field(&m.a, data, size, CASD_IPC_BODY_MAX);
    check_field(&m.b, data, size, CASD_IPC_PEM_MAX);
    FUZZ_CHECK(m.nsigs <= CASD_IPC_MAX_SIGS);
    for (size_t i = 0; i < m.nsigs; i++) {
        check_field(&m.sigs[i].public_key, data, size, CASD_IPC_PUBKEY_MAX);
        check_field(&m.sigs[i].signature, data, size, CASD_IPC_SIG_MAX);
    }
    if (m.type == CASD_IPC_VALUE_GET || m.type == CASD_IPC_SESSION_GET)
        FUZZ_CHECK(m.a.len >= 1 && m.a.len <= CASD_IPC_NAME_MAX);
    if (m.type == CASD_IPC_REPLY)
        FUZZ_CHECK(m.status >= 100 && m.status <= 599);
    if (m.type == CASD_IPC_METRICS_GET) /* a scrape carries no body, only its client */
        FUZZ_CHECK(m.a.len == 0 && m.b.len <= CASD_IPC_HASH_LEN);
    buf_init(&b, CASD_IPC_MAX + 1);
    FUZZ_CHECK(casd_ipc_encode(&m, &b) == CD_OK);
    FUZZ_CHECK(b.len == size && memcmp(b.p, data, size) == 0);
    buf_release(&b);
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}
