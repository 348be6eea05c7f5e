/* fuzz_json_body.c: the document API's JSON body handling on arbitrary bytes.
 *
 * The body goes through hd_parse_object (json_loadb with
 * JSON_REJECT_DUPLICATES, object required, else a 422 answer), then
 * "record_id" through hd_record_id_from_json and "content" the way the create
 * and replace handlers read them, and a success answer is serialised with
 * hd_json. The handlers' own helpers are called (handlers_int.h), not copies.
 * The shape pre-scan (validate_json_shape, HD_JSON_MAX_DEPTH and
 * HD_JSON_MAX_VALUES) is checked against the tree jansson builds: whatever it
 * lets through nests and counts within the limits.
 *
 * The one-pass reader of flat bodies (validate_json_flat) must only ever
 * accept a text jansson accepts as the same object, member by member, and the
 * handlers' hd_doc_body_parse (that reader, else the tree) must give the
 * fields and answers that the tree gives. */
#include "fuzz_common.h"

#include <jansson.h>

#include "handlers/handlers_int.h"
#include "validate/validate.h"

static void response_release(struct http_response *resp)
{
    free(resp->body);
    memset(resp, 0, sizeof(*resp));
}

/* The record id rule: a non-negative JSON integer, or a string of digits as
 * validate_record_id_text accepts it. */
static void check_record_id(const json_t *rid)
{
    int64_t id = -7;
    bool ok = hd_record_id_from_json(rid, &id);

    if (!ok) {
        FUZZ_CHECK(id == -7); /* untouched on failure */
        FUZZ_CHECK(!json_is_integer(rid) || json_integer_value(rid) < 0);
        return;
    }
    FUZZ_CHECK(id >= 0);
    if (json_is_integer(rid)) {
        FUZZ_CHECK(json_integer_value(rid) == id);
    } else {
        int64_t again = -1;
        FUZZ_CHECK(json_is_string(rid));
        FUZZ_CHECK(
            validate_record_id_text(json_string_value(rid), json_string_length(rid), &again));
        FUZZ_CHECK(again == id);
    }
}

/* Depth of containers (a scalar is 0) and number of values of a tree. */
static void tree_shape(const json_t *v, size_t level, size_t *depth, size_t *values)
{
    const char *key;
    json_t *child;
    size_t i;

    (*values)++;
    if (!json_is_array(v) && !json_is_object(v))
        return;
    if (level + 1 > *depth)
        *depth = level + 1;
    if (json_is_array(v)) {
        json_array_foreach(v, i, child) tree_shape(child, level + 1, depth, values);
    } else {
        json_object_foreach((json_t *)v, key, child) tree_shape(child, level + 1, depth, values);
    }
}

/* validate_json_flat said yes: jansson's tree is that object. */
static void check_flat(const json_t *direct, bool shape_ok, const struct validate_json_member *m,
                       size_t n)
{
    FUZZ_CHECK(direct != NULL && json_is_object(direct) && shape_ok);
    FUZZ_CHECK(json_object_size(direct) == n);
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_object_getn(direct, m[i].key, m[i].key_len);

        FUZZ_CHECK(v != NULL);
        if (m[i].kind == VALIDATE_JSON_INTEGER) {
            FUZZ_CHECK(json_is_integer(v) && (uint64_t)json_integer_value(v) == m[i].num);
        } else {
            char *dec = malloc(m[i].str_len + 1);
            size_t dlen;

            FUZZ_CHECK(dec != NULL && json_is_string(v));
            dlen = m[i].escaped ? validate_json_unescape(m[i].str, m[i].str_len, dec)
                                : m[i].str_len;
            FUZZ_CHECK(m[i].escaped || dlen == m[i].str_len);
            FUZZ_CHECK(dlen == json_string_length(v));
            FUZZ_CHECK(memcmp(m[i].escaped ? dec : m[i].str, json_string_value(v), dlen) == 0);
            free(dec);
        }
    }
}

/* hd_doc_body_parse gives what the tree gives (or refuses what it refuses). */
static void check_doc_body(const struct http_request *req, const json_t *direct, bool shape_ok)
{
    struct http_response resp;
    struct hd_doc_body b;
    const json_t *rid, *content;
    int64_t id = -1;
    bool ok;

    memset(&resp, 0, sizeof(resp));
    ok = hd_doc_body_parse(req, &resp, &b);
    if (direct == NULL || !json_is_object(direct) || !shape_ok) {
        FUZZ_CHECK(!ok && resp.status == 422);
        response_release(&resp);
        return;
    }
    FUZZ_CHECK(ok && resp.status == 0);
    rid = json_object_get(direct, "record_id");
    content = json_object_get(direct, "content");
    FUZZ_CHECK(b.has_rid == (rid != NULL));
    if (rid != NULL) {
        FUZZ_CHECK(b.rid_ok == hd_record_id_from_json(rid, &id));
        FUZZ_CHECK(!b.rid_ok || b.record_id == id);
    }
    FUZZ_CHECK(b.content_ok == json_is_string(content));
    if (b.content_ok) {
        FUZZ_CHECK(b.content_len == json_string_length(content));
        FUZZ_CHECK(b.content_len == 0 ||
                   memcmp(b.content, json_string_value(content), b.content_len) == 0);
    }
    hd_doc_body_release(&b);
    response_release(&resp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct validate_json_member m[VALIDATE_JSON_FLAT_MAX];
    size_t n = 0;
    struct http_request req;
    struct http_response resp;
    json_error_t jerr;
    json_t *direct;
    json_t *body;
    const json_t *rid;
    const json_t *content;
    bool shape_ok;

    memset(&req, 0, sizeof(req));
    memset(&resp, 0, sizeof(resp));
    req.method = "POST";
    req.path = "/documents/create_document";
    req.body = size > 0 ? data : NULL;
    req.body_len = size;
    memcpy(req.request_id, "fuzz", 5);

    /* The parser alone, as the handlers configure it. */
    direct = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);

    shape_ok = validate_json_shape((const char *)data, size, HD_JSON_MAX_DEPTH, HD_JSON_MAX_VALUES);
    if (shape_ok && direct != NULL) {
        size_t depth = 0, values = 0;
        tree_shape(direct, 0, &depth, &values);
        FUZZ_CHECK(depth <= HD_JSON_MAX_DEPTH && values <= HD_JSON_MAX_VALUES);
    }

    if (validate_json_flat((const char *)data, size, m, VALIDATE_JSON_FLAT_MAX, &n))
        check_flat(direct, shape_ok, m, n);
    check_doc_body(&req, direct, shape_ok);

    body = hd_parse_object(&req, &resp);
    if (body == NULL) {
        FUZZ_CHECK(resp.status == 422);
        FUZZ_CHECK(resp.body != NULL && resp.body_len > 0);
        FUZZ_CHECK(direct == NULL || !json_is_object(direct) || !shape_ok);
        goto out;
    }
    FUZZ_CHECK(shape_ok);
    FUZZ_CHECK(json_is_object(body));
    FUZZ_CHECK(direct != NULL && json_equal(direct, body));

    rid = json_object_get(body, "record_id");
    if (rid != NULL)
        check_record_id(rid);
    content = json_object_get(body, "content");
    if (json_is_string(content)) {
        const char *text = json_string_value(content);
        size_t len = json_string_length(content);
        /* jansson hands out valid UTF-8 only (NUL allowed inside). */
        FUZZ_CHECK(text != NULL && validate_utf8(text, len));
        FUZZ_CHECK(text[len] == '\0');
    }
    /* The create handler's answer, serialised the way it is sent. */
    hd_json(&resp, 200, json_pack("{s:O?,s:O?}", "record_id", rid, "content", content));
    FUZZ_CHECK(resp.status == 200 && resp.body != NULL);
    FUZZ_CHECK(validate_utf8((const char *)resp.body, resp.body_len));
    json_decref(body);
out:
    response_release(&resp);
    json_decref(direct);
    return 0;
}
