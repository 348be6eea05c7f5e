/* codec.h: hex and base64 (RFC 4648) encoders and strict decoders, the one copy. */
#ifndef CONFIDOC_CODEC_H
#define CONFIDOC_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Bytes of text (with the NUL) that n bytes take in hex and in padded base64. */
#define CODEC_HEX_LEN(n) (2 * (n) + 1)
#define CODEC_B64_LEN(n) ((((n) + 2) / 3) * 4 + 1)

/* Writes the lowercase hex of in[0..n) and a NUL to out (CODEC_HEX_LEN(n)
 * bytes). Branch-free on the data, so it may encode secrets. */
void codec_hex_encode(const void *in, size_t n, char *out);

/* Decodes exactly 2*outlen hex digits (either case) from in[0..inlen) into
 * out. CD_ERR_INVALID when inlen is not 2*outlen or a byte is not a hex
 * digit; out is then left untouched. Constant time in the data. */
cd_err codec_hex_decode(const char *in, size_t inlen, uint8_t *out, size_t outlen);

/* Writes the padded standard base64 of in[0..n) and a NUL to out (outcap
 * bytes); CD_ERR_TOO_LARGE when outcap < CODEC_B64_LEN(n). */
cd_err codec_b64_encode(const void *in, size_t n, char *out, size_t outcap);

/* Strict padded standard base64: inlen a non-zero multiple of 4, '=' only as
 * the last one or two bytes, no whitespace. Decodes into out (outcap bytes)
 * and sets *outlen. CD_ERR_INVALID on malformed text, CD_ERR_TOO_LARGE when
 * the result does not fit; out may then hold a partial result (wipe it if
 * the text was secret). Constant time in the data of each symbol. */
cd_err codec_b64_decode(const char *in, size_t inlen, uint8_t *out, size_t outcap, size_t *outlen);

/* Bytes of text (with the NUL) that n bytes take in unpadded base64url
 * (RFC 4648 section 5) and in unpadded base32 (section 6). */
#define CODEC_B64URL_LEN(n) (((n)*4 + 2) / 3 + 1)
#define CODEC_B32_LEN(n) (((n)*8 + 4) / 5 + 1)

/* Writes the unpadded base64url of in[0..n) and a NUL to out (outcap bytes);
 * CD_ERR_TOO_LARGE when outcap < CODEC_B64URL_LEN(n). Branch-free on the
 * data, so it may encode secrets (session tokens). */
cd_err codec_b64url_encode(const void *in, size_t n, char *out, size_t outcap);

/* Decodes unpadded base64url text of exactly outlen bytes: inlen must be
 * CODEC_B64URL_LEN(outlen) - 1 and the unused low bits of the last symbol
 * zero (one text per value). CD_ERR_INVALID otherwise, out then untouched.
 * Constant time in the data. */
cd_err codec_b64url_decode_exact(const char *in, size_t inlen, uint8_t *out, size_t outlen);

/* Writes the unpadded base32 (upper case, RFC 4648 alphabet) of in[0..n)
 * and a NUL to out; CD_ERR_TOO_LARGE when outcap < CODEC_B32_LEN(n).
 * Branch-free on the data (TOTP secrets). */
cd_err codec_b32_encode(const void *in, size_t n, char *out, size_t outcap);

#endif
