/* ratelimit_login.c: failed-login counting, account blocks and attempts owed to memcached. */
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "ratelimit/local.h"
#include "ratelimit/mc.h"
#include "ratelimit/ratelimit.h"
#include "ratelimit/ratelimit_int.h"

/* Failure counters live at least this long after the last failure. */
#define LOGINFAIL_TTL_MIN_S 86400u

static cd_err login_hash(ratelimit *rl, const char *username, size_t len,
                         uint8_t h[CRYPTO_HASH_BYTES])
{
    if (rl == NULL || (username == NULL && len > 0))
        return CD_ERR_INVALID;
    return crypto_keyed_hash(rl->kr, crypto_keyring_newest(rl->kr), CRYPTO_PURPOSE_LOGINFAIL,
                             &(struct crypto_part){.p = username, .n = len}, 1, h);
}

/* The start of ratelimit_login_check and ratelimit_login_begin: the
 * account's key hash in h; *active is false when lockout is off (nothing to
 * do, CD_OK). CD_ERR_INVALID on a missing argument. */
static cd_err login_start(ratelimit *rl, const char *username, size_t len,
                          const unsigned *retry_after_s, uint8_t h[CRYPTO_HASH_BYTES], bool *active)
{
    cd_err err;

    *active = false;
    if (retry_after_s == NULL)
        return CD_ERR_INVALID;
    err = login_hash(rl, username, len, h);
    if (err == CD_OK && rl->login_fail_limit > 0)
        *active = true;
    return err;
}

static unsigned loginfail_ttl(const ratelimit *rl)
{
    unsigned t = 2 * rl->login_block_max_s;
    return t > LOGINFAIL_TTL_MIN_S ? t : LOGINFAIL_TTL_MIN_S;
}

/* Values of in-process block entries: a block decided in-process during an
 * outage (it still counts once the outage is over), or the copy of a block
 * decided in memcached (it counts only while memcached cannot be asked: a
 * success on another replica deletes the memcached block, not this copy). */
#define LOCAL_BLOCK_OUTAGE 1u
#define LOCAL_BLOCK_MIRROR 2u

/* Seconds left of the account's current block (0: none), from memcached and
 * the in-process table. CD_ERR_UNAVAILABLE: memcached is down and
 * on_unavailable is REJECT (*left still has the in-process part). */
static cd_err login_block_left(ratelimit *rl, const uint8_t h[CRYPTO_HASH_BYTES], struct server *s,
                               int64_t now, long long *left)
{
    char key[KEY_MAX];
    int64_t expires;
    uint64_t kind = 0;
    bool asked = false;
    cd_err err = CD_OK;

    *left = 0;
    if (s != NULL) {
        struct mc_op op = {.kind = OP_TTL, .key = key};
        ratelimit_make_key(key, "lb:", h, false, 0);
        if (ratelimit_server_call(rl, s, &op) == CD_OK) {
            asked = true;
            if (op.found)
                *left = op.ttl_left < 0 ? rl->login_block_max_s : op.ttl_left;
        } else if (rl->on_unavailable == RATELIMIT_FALLBACK_REJECT) {
            err = CD_ERR_UNAVAILABLE;
        }
    }
    if (ratelimit_local_get(rl->local, RATELIMIT_LOCAL_BLOCK, h, 0, now, &kind, &expires) &&
        (!asked || kind != LOCAL_BLOCK_MIRROR) && expires - now > *left)
        *left = expires - now;
    return err;
}

cd_err ratelimit_login_check(ratelimit *rl, const char *username, size_t len,
                             unsigned *retry_after_s)
{
    uint8_t h[CRYPTO_HASH_BYTES];
    long long left = 0;
    bool active;
    cd_err err;

    err = login_start(rl, username, len, retry_after_s, h, &active);
    if (err != CD_OK || !active)
        goto out;
    err = login_block_left(rl, h, ratelimit_login_server(rl, h), ratelimit_wall_s(), &left);
    if (err != CD_OK)
        goto out;
    if (left > 0) {
        err = CD_ERR_LIMITED;
        *retry_after_s = (unsigned)left;
    }
out:
    crypto_wipe(h, sizeof(h));
    return err;
}

/* Block after the count-th consecutive failure: base, doubling per failure
 * beyond the limit, capped. */
static unsigned block_seconds(const ratelimit *rl, uint64_t count)
{
    uint64_t d = rl->login_block_base_s;

    for (uint64_t i = rl->login_fail_limit; i < count && d < rl->login_block_max_s; i++)
        d *= 2;
    return d > rl->login_block_max_s ? rl->login_block_max_s : (unsigned)d;
}

void ratelimit_login_failed(ratelimit *rl, const char *username, size_t len)
{
    uint8_t h[CRYPTO_HASH_BYTES];
    char key[KEY_MAX];
    struct server *s;
    int64_t now;
    uint64_t count = 0;
    unsigned ttl, block;

    if (login_hash(rl, username, len, h) != CD_OK || rl->login_fail_limit == 0)
        return;
    now = ratelimit_wall_s();
    ttl = loginfail_ttl(rl);
    s = ratelimit_login_server(rl, h);
    if (s != NULL) {
        struct mc_op op = {.kind = OP_INCR, .key = key, .ttl_s = ttl, .refresh = true};
        ratelimit_make_key(key, "lf:", h, false, 0);
        if (ratelimit_server_call(rl, s, &op) == CD_OK)
            count = op.count;
    }
    if (count == 0)
        count = ratelimit_local_incr(rl->local, RATELIMIT_LOCAL_FAILS, h, 0, now, now + ttl, true);
    if (count < rl->login_fail_limit)
        return;
    block = block_seconds(rl, count);
    if (s != NULL) {
        struct mc_op op = {.kind = OP_SET, .key = key, .value = "1", .ttl_s = block};
        ratelimit_make_key(key, "lb:", h, false, 0);
        if (ratelimit_server_call(rl, s, &op) == CD_OK)
            return;
    }
    ratelimit_local_set(rl->local, RATELIMIT_LOCAL_BLOCK, h, 0, LOCAL_BLOCK_OUTAGE, now,
                        now + block);
}

void ratelimit_login_succeeded(ratelimit *rl, const char *username, size_t len)
{
    uint8_t h[CRYPTO_HASH_BYTES];
    char key[KEY_MAX];
    struct server *s;

    if (login_hash(rl, username, len, h) != CD_OK || rl->login_fail_limit == 0)
        return;
    s = ratelimit_login_server(rl, h);
    if (s != NULL) {
        struct mc_op op = {.kind = OP_DEL, .key = key};
        ratelimit_make_key(key, "lf:", h, false, 0);
        if (ratelimit_server_call(rl, s, &op) == CD_OK) {
            ratelimit_make_key(key, "lb:", h, false, 0);
            (void)ratelimit_server_call(rl, s, &op);
        }
    }
    /* Counts made during an outage are dropped too. */
    ratelimit_local_del(rl->local, RATELIMIT_LOCAL_FAILS, h, 0);
    ratelimit_local_del(rl->local, RATELIMIT_LOCAL_BLOCK, h, 0);
    ratelimit_local_del(rl->local, RATELIMIT_LOCAL_OWED, h, 0);
}

/* One atomic increment of the account's attempt counter; returns the new
 * count: memcached's (it sums every replica), or the in-process one while
 * memcached cannot be asked. The in-process table counts every attempt of
 * this process even while memcached answers, so a switch to the fallback
 * (under a burst, a slow request marks a server down) does not start again
 * from zero. Attempts counted only in-process are owed to memcached and added
 * to the next increment that reaches it, so a server that is marked down and
 * up again mid-burst does not let them pass a second time. */
static uint64_t login_count(ratelimit *rl, const uint8_t h[CRYPTO_HASH_BYTES], struct server *s,
                            int64_t now)
{
    char key[KEY_MAX];
    unsigned ttl = loginfail_ttl(rl);
    uint64_t count =
        ratelimit_local_incr(rl->local, RATELIMIT_LOCAL_FAILS, h, 0, now, now + ttl, true);

    if (s != NULL) {
        uint64_t owed = ratelimit_local_take(rl->local, RATELIMIT_LOCAL_OWED, h, 0, now);
        struct mc_op op = {.kind = OP_INCR, .key = key, .ttl_s = ttl, .refresh = true};

        if (owed >= RATELIMIT_MC_DELTA_MAX)
            owed = RATELIMIT_MC_DELTA_MAX - 1;
        op.delta = 1 + owed;
        ratelimit_make_key(key, "lf:", h, false, 0);
        if (ratelimit_server_call(rl, s, &op) == CD_OK && op.count > 0)
            return op.count;
        ratelimit_local_incr_by(rl->local, RATELIMIT_LOCAL_OWED, h, 0, 1 + owed, now, now + ttl,
                                true);
    }
    return count;
}

/* Creates the account's block of block_s seconds unless one exists (one
 * atomic add in memcached, else in-process); true when this call created it.
 * A block created in memcached is mirrored in-process, for the same reason as
 * the count. */
static bool login_block_add(ratelimit *rl, const uint8_t h[CRYPTO_HASH_BYTES], struct server *s,
                            int64_t now, unsigned block_s)
{
    char key[KEY_MAX];

    if (s != NULL) {
        struct mc_op op = {.kind = OP_ADD, .key = key, .value = "1", .ttl_s = block_s};
        ratelimit_make_key(key, "lb:", h, false, 0);
        if (ratelimit_server_call(rl, s, &op) == CD_OK) {
            if (op.stored)
                ratelimit_local_set(rl->local, RATELIMIT_LOCAL_BLOCK, h, 0, LOCAL_BLOCK_MIRROR, now,
                                    now + block_s);
            return op.stored;
        }
    }
    return ratelimit_local_add(rl->local, RATELIMIT_LOCAL_BLOCK, h, 0, LOCAL_BLOCK_OUTAGE, now,
                               now + block_s);
}

/* See ratelimit.h. The count is taken before the password is verified, so
 * concurrent guesses cannot all pass a check made before any of them failed:
 * attempts 1 .. limit-1 pass on the count alone; from the limit-th on, an
 * attempt passes only if it creates the block itself (an atomic add), so
 * exactly one attempt passes per block period - the limit-th, then one after
 * each block has run out - and its block (growing with the count) is already
 * in place while its password is verified. A success deletes both keys. */
cd_err ratelimit_login_begin(ratelimit *rl, const char *username, size_t len,
                             unsigned *retry_after_s)
{
    uint8_t h[CRYPTO_HASH_BYTES];
    struct server *s;
    int64_t now;
    long long left = 0;
    uint64_t count;
    bool active;
    cd_err err;

    err = login_start(rl, username, len, retry_after_s, h, &active);
    if (err != CD_OK || !active)
        goto out;
    now = ratelimit_wall_s();
    s = ratelimit_login_server(rl, h);
    /* Refused during a block: not counted (a retrying user does not lengthen it). */
    (void)login_block_left(rl, h, s, now, &left);
    if (left > 0)
        goto limited;
    count = login_count(rl, h, s, now);
    err = CD_OK;
    if (count < rl->login_fail_limit || login_block_add(rl, h, s, now, block_seconds(rl, count)))
        goto out;
    /* Another attempt holds this block period: refused for its rest. */
    (void)login_block_left(rl, h, s, now, &left);
limited:
    err = CD_ERR_LIMITED;
    *retry_after_s = left >= 1 ? (unsigned)left : 1;
out:
    crypto_wipe(h, sizeof(h));
    return err;
}
