/* test_crypto_doc.c: unit tests of document sealing and opening (crypto_doc_seal/open). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crypto/crypto.h"
#include "crypto/crypto_test.h"

#define CT "application/pdf"
#define CT_LEN (sizeof(CT) - 1)
#define MAXC 600

/* One sealed document version and everything needed to open it. */
struct sealed_doc {
    uint8_t kek[CRYPTO_KEY_BYTES];
    struct crypto_doc_ad ad;
    uint8_t content[MAXC];
    size_t content_len;
    uint8_t wrapped[CRYPTO_WRAPPED_KEY_BYTES];
    uint8_t ctype_ct[CT_LEN + CRYPTO_AEAD_OVERHEAD];
    size_t ctype_ct_len;
    uint8_t content_ct[MAXC + CRYPTO_AEAD_OVERHEAD];
    size_t content_ct_len;
};

static int setup(void **state)
{
    (void)state;
    return crypto_init() == CD_OK ? 0 : -1;
}

static void seal_doc(struct sealed_doc *d, const uint8_t kek[CRYPTO_KEY_BYTES], uint8_t uid_byte,
                     int64_t record_id, uint64_t version, size_t content_len)
{
    memset(d, 0, sizeof(*d));
    memcpy(d->kek, kek, CRYPTO_KEY_BYTES);
    memset(d->ad.owner_uid, uid_byte, sizeof(d->ad.owner_uid));
    d->ad.record_id = record_id;
    d->ad.version = version;
    assert_true(content_len <= MAXC);
    crypto_random(d->content, content_len);
    d->content_len = content_len;
    assert_int_equal(crypto_doc_seal(d->kek, &d->ad, CT, CT_LEN, d->content, content_len,
                                     d->wrapped, d->ctype_ct, sizeof(d->ctype_ct), &d->ctype_ct_len,
                                     d->content_ct, sizeof(d->content_ct), &d->content_ct_len),
                     CD_OK);
    assert_int_equal(d->ctype_ct_len, CT_LEN + CRYPTO_AEAD_OVERHEAD);
    assert_int_equal(d->content_ct_len, content_len + CRYPTO_AEAD_OVERHEAD);
}

/* Opens d with the given AD (and d's ciphertexts); returns the result. */
static cd_err open_doc(const struct sealed_doc *d, const struct crypto_doc_ad *ad, char *ct,
                       size_t ctcap, uint8_t *content, size_t *content_len)
{
    size_t ctlen = 0;
    return crypto_doc_open(d->kek, ad, d->wrapped, d->ctype_ct, d->ctype_ct_len, d->content_ct,
                           d->content_ct_len, ct, ctcap, &ctlen, content, MAXC, content_len);
}

static void test_doc_round_trip(void **state)
{
    (void)state;
    uint8_t kek[CRYPTO_KEY_BYTES];
    crypto_random(kek, sizeof(kek));
    static const size_t lens[] = {0, 1, 100, MAXC};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        struct sealed_doc d;
        seal_doc(&d, kek, 7, 42, 3, lens[i]);
        char ct[64];
        uint8_t content[MAXC];
        size_t ctlen = 0, clen = 999;
        memset(ct, 'x', sizeof(ct));
        assert_int_equal(crypto_doc_open(kek, &d.ad, d.wrapped, d.ctype_ct, d.ctype_ct_len,
                                         d.content_ct, d.content_ct_len, ct, sizeof(ct), &ctlen,
                                         content, lens[i], &clen),
                         CD_OK);
        assert_string_equal(ct, CT);
        assert_int_equal(ctlen, CT_LEN);
        assert_int_equal(clen, lens[i]);
        if (lens[i] > 0)
            assert_memory_equal(content, d.content, lens[i]);

        /* Content type only, as listings do. */
        memset(ct, 'x', sizeof(ct));
        ctlen = 0;
        assert_int_equal(crypto_doc_open(kek, &d.ad, d.wrapped, d.ctype_ct, d.ctype_ct_len, NULL, 0,
                                         ct, sizeof(ct), &ctlen, NULL, 0, NULL),
                         CD_OK);
        assert_string_equal(ct, CT);
        assert_int_equal(ctlen, CT_LEN);
    }

    /* Empty content type; exact capacity for the NUL. */
    uint8_t wrapped[CRYPTO_WRAPPED_KEY_BYTES], ctc[CRYPTO_AEAD_OVERHEAD + 1],
        bodyc[CRYPTO_AEAD_OVERHEAD + 3];
    size_t ctcl = 0, bodycl = 0, ctlen = 9, clen = 9;
    struct crypto_doc_ad ad = {{0}, -5, 0};
    assert_int_equal(crypto_doc_seal(kek, &ad, "", 0, (const uint8_t *)"abc", 3, wrapped, ctc,
                                     CRYPTO_AEAD_OVERHEAD, &ctcl, bodyc, sizeof(bodyc), &bodycl),
                     CD_OK);
    char ct1[1];
    uint8_t body[3];
    assert_int_equal(crypto_doc_open(kek, &ad, wrapped, ctc, ctcl, bodyc, bodycl, ct1, 1, &ctlen,
                                     body, 3, &clen),
                     CD_OK);
    assert_int_equal(ct1[0], '\0');
    assert_int_equal(ctlen, 0);
    assert_int_equal(clen, 3);
    assert_memory_equal(body, "abc", 3);
}

static void test_doc_binding(void **state)
{
    (void)state;
    uint8_t kek[CRYPTO_KEY_BYTES], kek2[CRYPTO_KEY_BYTES];
    crypto_random(kek, sizeof(kek));
    crypto_random(kek2, sizeof(kek2));
    struct sealed_doc d;
    seal_doc(&d, kek, 7, 42, 3, 50);
    char ct[64];
    uint8_t content[MAXC];
    size_t clen = 0;

    struct crypto_doc_ad ad = d.ad;
    ad.owner_uid[15] ^= 1;
    assert_int_equal(open_doc(&d, &ad, ct, sizeof(ct), content, &clen), CD_ERR_CRYPTO);
    ad = d.ad;
    ad.record_id = 43;
    assert_int_equal(open_doc(&d, &ad, ct, sizeof(ct), content, &clen), CD_ERR_CRYPTO);
    ad = d.ad;
    ad.record_id = 42 + ((int64_t)1 << 40);
    assert_int_equal(open_doc(&d, &ad, ct, sizeof(ct), content, &clen), CD_ERR_CRYPTO);
    ad = d.ad;
    ad.version = 4;
    assert_int_equal(open_doc(&d, &ad, ct, sizeof(ct), content, &clen), CD_ERR_CRYPTO);
    ad = d.ad;
    ad.version = 3ull << 56;
    assert_int_equal(open_doc(&d, &ad, ct, sizeof(ct), content, &clen), CD_ERR_CRYPTO);
    /* Listing path too. */
    ad = d.ad;
    ad.version = 2;
    size_t ctlen = 0;
    assert_int_equal(crypto_doc_open(kek, &ad, d.wrapped, d.ctype_ct, d.ctype_ct_len, NULL, 0, ct,
                                     sizeof(ct), &ctlen, NULL, 0, NULL),
                     CD_ERR_CRYPTO);
    /* Wrong KEK. */
    memcpy(d.kek, kek2, sizeof(kek2));
    assert_int_equal(open_doc(&d, &d.ad, ct, sizeof(ct), content, &clen), CD_ERR_CRYPTO);
    memcpy(d.kek, kek, sizeof(kek));
    assert_int_equal(open_doc(&d, &d.ad, ct, sizeof(ct), content, &clen), CD_OK);
}

static void test_doc_swaps(void **state)
{
    (void)state;
    uint8_t kek[CRYPTO_KEY_BYTES];
    crypto_random(kek, sizeof(kek));
    char ct[64];
    uint8_t content[MAXC];
    size_t clen = 0;

    /* Two documents of the same owner, record and version (e.g. a retried
     * upload): their data keys differ, so contents cannot be swapped. */
    struct sealed_doc a, b, mixed;
    seal_doc(&a, kek, 1, 10, 1, 40);
    seal_doc(&b, kek, 1, 10, 1, 40);
    mixed = a;
    memcpy(mixed.content_ct, b.content_ct, b.content_ct_len);
    assert_int_equal(open_doc(&mixed, &mixed.ad, ct, sizeof(ct), content, &clen), CD_ERR_CRYPTO);
    mixed = a;
    memcpy(mixed.ctype_ct, b.ctype_ct, b.ctype_ct_len);
    assert_int_equal(open_doc(&mixed, &mixed.ad, ct, sizeof(ct), content, &clen), CD_ERR_CRYPTO);

    /* Different records: swapping the wrapped key along with the content
     * still fails (the AD names the record). */
    seal_doc(&b, kek, 1, 11, 1, 40);
    mixed = a;
    memcpy(mixed.wrapped, b.wrapped, sizeof(b.wrapped));
    memcpy(mixed.ctype_ct, b.ctype_ct, b.ctype_ct_len);
    memcpy(mixed.content_ct, b.content_ct, b.content_ct_len);
    assert_int_equal(open_doc(&mixed, &mixed.ad, ct, sizeof(ct), content, &clen), CD_ERR_CRYPTO);

    /* Fields are bound too: the content type ciphertext as content fails. */
    struct sealed_doc f;
    seal_doc(&f, kek, 1, 12, 1, CT_LEN);
    mixed = f;
    memcpy(mixed.content_ct, f.ctype_ct, f.ctype_ct_len);
    assert_int_equal(open_doc(&mixed, &mixed.ad, ct, sizeof(ct), content, &clen), CD_ERR_CRYPTO);
    mixed = f;
    memcpy(mixed.ctype_ct, f.content_ct, f.content_ct_len);
    assert_int_equal(open_doc(&mixed, &mixed.ad, ct, sizeof(ct), content, &clen), CD_ERR_CRYPTO);
}

static void test_doc_tamper(void **state)
{
    (void)state;
    uint8_t kek[CRYPTO_KEY_BYTES];
    crypto_random(kek, sizeof(kek));
    struct sealed_doc d;
    seal_doc(&d, kek, 3, 1, 1, 20);
    char ct[64];
    uint8_t content[MAXC];
    size_t clen = 0;
    struct {
        uint8_t *p;
        size_t n;
    } fields[] = {{d.wrapped, sizeof(d.wrapped)},
                  {d.ctype_ct, d.ctype_ct_len},
                  {d.content_ct, d.content_ct_len}};
    for (size_t f = 0; f < 3; f++) {
        for (size_t i = 0; i < fields[f].n; i++) {
            fields[f].p[i] ^= 0x01;
            memset(ct, 'x', sizeof(ct));
            memset(content, 'y', sizeof(content));
            clen = 777;
            if (open_doc(&d, &d.ad, ct, sizeof(ct), content, &clen) != CD_ERR_CRYPTO)
                fail_msg("field %zu byte %zu: tampering not detected", f, i);
            assert_int_equal(clen, 777);
            /* No plaintext left behind. */
            assert_null(memmem(ct, sizeof(ct), CT, CT_LEN));
            assert_null(memmem(content, sizeof(content), d.content, d.content_len));
            fields[f].p[i] ^= 0x01;
        }
    }
    assert_int_equal(open_doc(&d, &d.ad, ct, sizeof(ct), content, &clen), CD_OK);
    /* Truncated ciphertexts. */
    size_t ctlen = 0;
    assert_int_equal(crypto_doc_open(kek, &d.ad, d.wrapped, d.ctype_ct, d.ctype_ct_len - 1,
                                     d.content_ct, d.content_ct_len, ct, sizeof(ct), &ctlen,
                                     content, MAXC, &clen),
                     CD_ERR_CRYPTO);
    assert_int_equal(crypto_doc_open(kek, &d.ad, d.wrapped, d.ctype_ct, d.ctype_ct_len,
                                     d.content_ct, d.content_ct_len - 1, ct, sizeof(ct), &ctlen,
                                     content, MAXC, &clen),
                     CD_ERR_CRYPTO);
    assert_int_equal(crypto_doc_open(kek, &d.ad, d.wrapped, d.ctype_ct, CRYPTO_AEAD_OVERHEAD - 1,
                                     d.content_ct, d.content_ct_len, ct, sizeof(ct), &ctlen,
                                     content, MAXC, &clen),
                     CD_ERR_INVALID);
}

static void test_doc_bounds(void **state)
{
    (void)state;
    uint8_t kek[CRYPTO_KEY_BYTES];
    crypto_random(kek, sizeof(kek));
    struct sealed_doc d;
    seal_doc(&d, kek, 3, 1, 1, 20);
    char ct[64];
    uint8_t content[MAXC];
    size_t ctlen = 0, clen = 0;

    /* ctype_cap counts the NUL. */
    assert_int_equal(crypto_doc_open(kek, &d.ad, d.wrapped, d.ctype_ct, d.ctype_ct_len, NULL, 0, ct,
                                     CT_LEN, &ctlen, NULL, 0, NULL),
                     CD_ERR_INVALID);
    assert_int_equal(crypto_doc_open(kek, &d.ad, d.wrapped, d.ctype_ct, d.ctype_ct_len, NULL, 0, ct,
                                     CT_LEN + 1, &ctlen, NULL, 0, NULL),
                     CD_OK);
    assert_string_equal(ct, CT);
    /* Content capacity. */
    assert_int_equal(crypto_doc_open(kek, &d.ad, d.wrapped, d.ctype_ct, d.ctype_ct_len,
                                     d.content_ct, d.content_ct_len, ct, sizeof(ct), &ctlen,
                                     content, 19, &clen),
                     CD_ERR_INVALID);

    /* Seal capacities and a content type with a NUL. */
    uint8_t w[CRYPTO_WRAPPED_KEY_BYTES], c1[100], c2[100];
    size_t l1 = 0, l2 = 0;
    assert_int_equal(crypto_doc_seal(kek, &d.ad, CT, CT_LEN, content, 10, w, c1,
                                     CT_LEN + CRYPTO_AEAD_OVERHEAD - 1, &l1, c2, sizeof(c2), &l2),
                     CD_ERR_INVALID);
    assert_int_equal(crypto_doc_seal(kek, &d.ad, CT, CT_LEN, content, 10, w, c1, sizeof(c1), &l1,
                                     c2, 10 + CRYPTO_AEAD_OVERHEAD - 1, &l2),
                     CD_ERR_INVALID);
    assert_int_equal(crypto_doc_seal(kek, &d.ad, "text\0html", 9, content, 10, w, c1, sizeof(c1),
                                     &l1, c2, sizeof(c2), &l2),
                     CD_ERR_INVALID);
    assert_int_equal(crypto_doc_seal(kek, &d.ad, CT, CT_LEN, NULL, 10, w, c1, sizeof(c1), &l1, c2,
                                     sizeof(c2), &l2),
                     CD_ERR_INVALID);
    assert_int_equal(l1, 0);
    assert_int_equal(l2, 0);
}

/* Builds the documented associated data of a field, to check the format and
 * to forge a well-authenticated content type containing a NUL. */
static void build_ad(uint8_t out[48], const struct crypto_doc_ad *ad, uint8_t field)
{
    memcpy(out, "confidoc-doc-v1", 15);
    memcpy(out + 15, ad->owner_uid, 16);
    for (int i = 0; i < 8; i++) {
        out[31 + i] = (uint8_t)((uint64_t)ad->record_id >> (56 - 8 * i));
        out[39 + i] = (uint8_t)(ad->version >> (56 - 8 * i));
    }
    out[47] = field;
}

static void test_doc_format(void **state)
{
    (void)state;
    uint8_t kek[CRYPTO_KEY_BYTES];
    crypto_random(kek, sizeof(kek));
    struct sealed_doc d;
    seal_doc(&d, kek, 9, -2, 77, 30);
    uint8_t adbuf[48], dk[CRYPTO_KEY_BYTES], buf[MAXC];
    size_t n = 0;

    build_ad(adbuf, &d.ad, 1);
    assert_int_equal(crypto_aead_open(kek, adbuf, sizeof(adbuf), d.wrapped, sizeof(d.wrapped), dk,
                                      sizeof(dk), &n),
                     CD_OK);
    assert_int_equal(n, CRYPTO_KEY_BYTES);
    build_ad(adbuf, &d.ad, 2);
    assert_int_equal(
        crypto_aead_open(dk, adbuf, sizeof(adbuf), d.ctype_ct, d.ctype_ct_len, buf, MAXC, &n),
        CD_OK);
    assert_int_equal(n, CT_LEN);
    assert_memory_equal(buf, CT, CT_LEN);
    build_ad(adbuf, &d.ad, 3);
    assert_int_equal(
        crypto_aead_open(dk, adbuf, sizeof(adbuf), d.content_ct, d.content_ct_len, buf, MAXC, &n),
        CD_OK);
    assert_int_equal(n, d.content_len);
    assert_memory_equal(buf, d.content, n);

    /* A content type with a NUL inside, properly authenticated, is refused. */
    build_ad(adbuf, &d.ad, 2);
    assert_int_equal(crypto_aead_seal(dk, adbuf, sizeof(adbuf), "a\0b", 3, d.ctype_ct,
                                      sizeof(d.ctype_ct), &d.ctype_ct_len),
                     CD_OK);
    char ct[64];
    size_t ctlen = 0;
    assert_int_not_equal(crypto_doc_open(kek, &d.ad, d.wrapped, d.ctype_ct, d.ctype_ct_len, NULL, 0,
                                         ct, sizeof(ct), &ctlen, NULL, 0, NULL),
                         CD_OK);
    crypto_wipe(dk, sizeof(dk));
}

/* Issue 9, finding 8: a data key re-wrapped under a new KEK opens the same
 * content with the new KEK only; the old KEK and another AD fail. */
static void test_doc_rewrap(void **state)
{
    struct sealed_doc d;
    struct crypto_doc_ad other;
    uint8_t k1[CRYPTO_KEY_BYTES], k2[CRYPTO_KEY_BYTES], out[CRYPTO_WRAPPED_KEY_BYTES];
    uint8_t content[MAXC];
    char ct[64];
    size_t clen = 0;
    (void)state;

    crypto_random(k1, sizeof(k1));
    crypto_random(k2, sizeof(k2));
    seal_doc(&d, k1, 7, 31, 2, 100);
    assert_int_equal(crypto_doc_rewrap(k1, k2, &d.ad, d.wrapped, out), CD_OK);
    assert_memory_not_equal(out, d.wrapped, sizeof(out));
    memcpy(d.wrapped, out, sizeof(out));
    assert_int_equal(open_doc(&d, &d.ad, ct, sizeof(ct), content, &clen), CD_ERR_CRYPTO);
    memcpy(d.kek, k2, sizeof(k2));
    assert_int_equal(open_doc(&d, &d.ad, ct, sizeof(ct), content, &clen), CD_OK);
    assert_int_equal(clen, d.content_len);
    assert_memory_equal(content, d.content, clen);
    /* Not under k1 any more, so a second rewrap from k1 fails, writing nothing. */
    memset(out, 0xAA, sizeof(out));
    assert_int_equal(crypto_doc_rewrap(k1, k2, &d.ad, d.wrapped, out), CD_ERR_CRYPTO);
    for (size_t i = 0; i < sizeof(out); i++)
        assert_int_equal(out[i], 0xAA);
    /* The AD is checked: another record's AD does not open it. */
    other = d.ad;
    other.record_id = 32;
    assert_int_equal(crypto_doc_rewrap(k2, k1, &other, d.wrapped, out), CD_ERR_CRYPTO);
}

/* Format 2 (AES-256-GCM) next to format 1: sizes, round trips, tampering,
 * binding, both formats read whichever new versions get, rewrap keeps each. */
struct gcm_doc {
    uint8_t wrapped[CRYPTO_WRAPPED_KEY_BYTES];
    uint8_t ctype_ct[CT_LEN + CRYPTO_AEAD_OVERHEAD];
    size_t ctype_ct_len;
    uint8_t content_ct[MAXC + CRYPTO_AEAD_OVERHEAD];
    size_t content_ct_len;
};

static void seal_in(const char *aead, const uint8_t kek[CRYPTO_KEY_BYTES],
                    const struct crypto_doc_ad *ad, const uint8_t *content, size_t len,
                    struct gcm_doc *g)
{
    assert_int_equal(crypto_doc_choose_aead(aead, NULL), CD_OK);
    assert_int_equal(crypto_doc_seal(kek, ad, CT, CT_LEN, content, len, g->wrapped, g->ctype_ct,
                                     sizeof(g->ctype_ct), &g->ctype_ct_len, g->content_ct,
                                     sizeof(g->content_ct), &g->content_ct_len),
                     CD_OK);
}

static cd_err open_g(const uint8_t kek[CRYPTO_KEY_BYTES], const struct crypto_doc_ad *ad,
                     const struct gcm_doc *g, uint8_t *content, size_t *len)
{
    char ct[64];
    size_t ctlen = 0;
    cd_err rc = crypto_doc_open(kek, ad, g->wrapped, g->ctype_ct, g->ctype_ct_len, g->content_ct,
                                g->content_ct_len, ct, sizeof(ct), &ctlen, content, MAXC, len);
    if (rc == CD_OK) {
        assert_int_equal(ctlen, CT_LEN);
        assert_string_equal(ct, CT);
    }
    return rc;
}

static void test_doc_formats(void **state)
{
    static const char *const names[] = {"aes256gcm", "xchacha20poly1305", "auto"};
    struct crypto_doc_ad ad = {.record_id = 5, .version = 3}, other;
    uint8_t kek[CRYPTO_KEY_BYTES], kek2[CRYPTO_KEY_BYTES], content[MAXC], out[MAXC];
    uint8_t w2[CRYPTO_WRAPPED_KEY_BYTES];
    struct gcm_doc g, x, bad;
    enum crypto_doc_aead chosen;
    size_t len = 0;
    (void)state;

    memset(ad.owner_uid, 9, sizeof(ad.owner_uid));
    crypto_random(kek, sizeof(kek));
    crypto_random(kek2, sizeof(kek2));
    crypto_random(content, sizeof(content));
    seal_in("aes256gcm", kek, &ad, content, 500, &g);
    assert_int_equal(g.ctype_ct_len, CT_LEN + CRYPTO_DOC_OVERHEAD_MIN);
    assert_int_equal(g.content_ct_len, 500 + CRYPTO_DOC_OVERHEAD_MIN);
    seal_in("xchacha20poly1305", kek, &ad, content, 500, &x);
    assert_int_equal(x.content_ct_len, 500 + CRYPTO_AEAD_OVERHEAD);
    /* Whatever new versions get, both formats open. */
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        assert_int_equal(crypto_doc_choose_aead(names[i], &chosen), CD_OK);
        assert_int_equal(open_g(kek, &ad, &g, out, &len), CD_OK);
        assert_int_equal(len, 500);
        assert_memory_equal(out, content, 500);
        assert_int_equal(open_g(kek, &ad, &x, out, &len), CD_OK);
        assert_memory_equal(out, content, 500);
    }
    assert_int_equal(crypto_doc_choose_aead("aes-gcm", NULL), CD_ERR_INVALID);
    assert_int_equal(crypto_doc_choose_aead(NULL, NULL), CD_ERR_INVALID);
    /* Any flipped byte of a format-2 version fails, and leaves no plaintext. */
    for (size_t i = 0; i < g.content_ct_len; i += 37) {
        bad = g;
        bad.content_ct[i] ^= 0x01;
        memset(out, 0x5a, sizeof(out));
        assert_int_equal(open_g(kek, &ad, &bad, out, &len), CD_ERR_CRYPTO);
        for (size_t k = 0; k < 500; k++)
            assert_int_equal(out[k], 0);
    }
    bad = g;
    bad.ctype_ct[3] ^= 0x80;
    assert_int_equal(open_g(kek, &ad, &bad, out, &len), CD_ERR_CRYPTO);
    /* Bound to owner, record, version and field, as format 1. */
    other = ad;
    other.version = 4;
    assert_int_equal(open_g(kek, &other, &g, out, &len), CD_ERR_CRYPTO);
    bad = g;
    memcpy(bad.content_ct, g.ctype_ct, g.ctype_ct_len);
    bad.content_ct_len = g.ctype_ct_len;
    assert_int_equal(open_g(kek, &ad, &bad, out, &len), CD_ERR_CRYPTO);
    /* Mixing the formats' parts fails: the format-1 key with format-2 ciphertexts. */
    bad = g;
    memcpy(bad.wrapped, x.wrapped, sizeof(bad.wrapped));
    assert_int_equal(open_g(kek, &ad, &bad, out, &len), CD_ERR_CRYPTO);
    /* Truncated below GCM's overhead: refused before anything is opened. */
    bad = g;
    bad.content_ct_len = CRYPTO_DOC_OVERHEAD_MIN - 1;
    assert_int_equal(open_g(kek, &ad, &bad, out, &len), CD_ERR_INVALID);
    /* A rewrap keeps each version's format: its ciphertexts stay and open. */
    assert_int_equal(crypto_doc_choose_aead("xchacha20poly1305", NULL), CD_OK);
    assert_int_equal(crypto_doc_rewrap(kek, kek2, &ad, g.wrapped, w2), CD_OK);
    memcpy(g.wrapped, w2, sizeof(w2));
    assert_int_equal(open_g(kek2, &ad, &g, out, &len), CD_OK);
    assert_memory_equal(out, content, 500);
    assert_int_equal(crypto_doc_choose_aead("aes256gcm", NULL), CD_OK);
    assert_int_equal(crypto_doc_rewrap(kek, kek2, &ad, x.wrapped, w2), CD_OK);
    memcpy(x.wrapped, w2, sizeof(w2));
    assert_int_equal(open_g(kek2, &ad, &x, out, &len), CD_OK);
    assert_memory_equal(out, content, 500);
    /* The portable path (no AES-NI) and the fast one read each other's versions. */
    seal_in("aes256gcm", kek, &ad, content, 300, &g);
    crypto_test_gcm_portable(true);
    assert_int_equal(open_g(kek, &ad, &g, out, &len), CD_OK);
    assert_memory_equal(out, content, 300);
    seal_in("aes256gcm", kek, &ad, content, 301, &x);
    bad = x;
    bad.content_ct[40] ^= 0x04;
    memset(out, 0x5a, sizeof(out));
    assert_int_equal(open_g(kek, &ad, &bad, out, &len), CD_ERR_CRYPTO);
    for (size_t k = 0; k < 301; k++)
        assert_int_equal(out[k], 0);
    crypto_test_gcm_portable(false);
    assert_int_equal(open_g(kek, &ad, &x, out, &len), CD_OK);
    assert_int_equal(len, 301);
    assert_memory_equal(out, content, 301);
    /* An empty document in format 2. */
    seal_in("aes256gcm", kek, &ad, content, 0, &g);
    assert_int_equal(g.content_ct_len, CRYPTO_DOC_OVERHEAD_MIN);
    assert_int_equal(open_g(kek, &ad, &g, out, &len), CD_OK);
    assert_int_equal(len, 0);
    assert_int_equal(crypto_doc_choose_aead("xchacha20poly1305", NULL), CD_OK);
}

/* Which implementation of AES-256-GCM a seal or an open takes (crypto_test.h). */
enum gcm_impl { GCM_AUTO, GCM_SODIUM, GCM_PORTABLE };

static void gcm_impl(enum gcm_impl i)
{
    crypto_test_gcm_sodium(i == GCM_SODIUM);
    crypto_test_gcm_portable(i == GCM_PORTABLE);
}

/* Long documents in format 2 (OpenSSL's EVP takes them where the CPU has
 * AES-NI, libsodium the short ones): whichever implementation sealed a
 * version, every other opens it, on both sides of the 4 KiB switch; a
 * flipped bit is refused and leaves no plaintext. */
static void test_doc_gcm_long(void **state)
{
    static const size_t sizes[] = {4095, 4096, 70001, (size_t)1 << 20};
    struct crypto_doc_ad ad = {.record_id = 7, .version = 1};
    uint8_t kek[CRYPTO_KEY_BYTES], wrapped[CRYPTO_WRAPPED_KEY_BYTES];
    uint8_t ctype_ct[CT_LEN + CRYPTO_AEAD_OVERHEAD];
    size_t ctype_len = 0, ct_len = 0, len = 0, ctlen = 0, cap = ((size_t)1 << 20) + 64;
    uint8_t *content = malloc(cap), *ct = malloc(cap), *out = malloc(cap);
    char ctype[64];
    (void)state;

    assert_non_null(content);
    assert_non_null(ct);
    assert_non_null(out);
    memset(ad.owner_uid, 3, sizeof(ad.owner_uid));
    crypto_random(kek, sizeof(kek));
    crypto_random(content, cap);
    assert_int_equal(crypto_doc_choose_aead("aes256gcm", NULL), CD_OK);
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        for (int sealer = GCM_AUTO; sealer <= GCM_PORTABLE; sealer++) {
            gcm_impl((enum gcm_impl)sealer);
            assert_int_equal(crypto_doc_seal(kek, &ad, CT, CT_LEN, content, sizes[k], wrapped,
                                             ctype_ct, sizeof(ctype_ct), &ctype_len, ct, cap,
                                             &ct_len),
                             CD_OK);
            for (int opener = GCM_AUTO; opener <= GCM_PORTABLE; opener++) {
                gcm_impl((enum gcm_impl)opener);
                memset(out, 0, sizes[k]);
                assert_int_equal(crypto_doc_open(kek, &ad, wrapped, ctype_ct, ctype_len, ct, ct_len,
                                                 ctype, sizeof(ctype), &ctlen, out, cap, &len),
                                 CD_OK);
                assert_int_equal(len, sizes[k]);
                assert_memory_equal(out, content, sizes[k]);
                ct[ct_len / 2] ^= 0x10;
                memset(out, 0x5a, sizes[k]);
                assert_int_equal(crypto_doc_open(kek, &ad, wrapped, ctype_ct, ctype_len, ct, ct_len,
                                                 ctype, sizeof(ctype), &ctlen, out, cap, &len),
                                 CD_ERR_CRYPTO);
                for (size_t b = 0; b < sizes[k]; b += 509)
                    assert_int_equal(out[b], 0);
                ct[ct_len / 2] ^= 0x10;
            }
        }
    }
    gcm_impl(GCM_AUTO);
    assert_int_equal(crypto_doc_choose_aead("xchacha20poly1305", NULL), CD_OK);
    free(content);
    free(ct);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doc_round_trip), cmocka_unit_test(test_doc_binding),
        cmocka_unit_test(test_doc_swaps),      cmocka_unit_test(test_doc_tamper),
        cmocka_unit_test(test_doc_bounds),     cmocka_unit_test(test_doc_format),
        cmocka_unit_test(test_doc_rewrap),     cmocka_unit_test(test_doc_formats),
        cmocka_unit_test(test_doc_gcm_long),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
