/* qr.h: QR codes as compact SVG (on libqrencode, which only this module sees).
 *
 * Used for the otpauth:// URI of a TOTP secret, so the image is as secret as
 * the URI: the caller wipes it (crypto_wipe) before freeing it. */
#ifndef CONFIDOC_QR_H
#define CONFIDOC_QR_H

#include <stddef.h>

#include "common/err.h"

/* Longest text qr_svg encodes. */
#define QR_TEXT_MAX 512
/* Modules of white border around the code (the quiet zone of ISO 18004). */
#define QR_QUIET_ZONE 4

/* Encodes text[0..len) (8-bit mode, error correction level M) and writes an
 * SVG document to *out (malloc'ed, NUL-terminated, *out_len bytes without the
 * NUL): one <svg> with a viewBox of one unit per module, a white <rect>
 * background and the dark modules as one <path> of horizontal runs; no
 * script, no style sheet, no external reference. The caller wipes and frees
 * *out. CD_ERR_INVALID for an empty text or one with a NUL, CD_ERR_TOO_LARGE
 * over QR_TEXT_MAX, CD_ERR_NOMEM, CD_ERR_INTERNAL when libqrencode fails. */
cd_err qr_svg(const char *text, size_t len, char **out, size_t *out_len);

#endif
