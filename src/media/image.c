/* image.c - decoding, bounding, scaling and re-encoding avatars with libgd (see image.h).
 *
 * A decoder allocates width x height x 4 bytes whatever the file's size, so a small file that
 * claims 60000x60000 pixels would cost gigabytes: the dimensions are read from the header first
 * (PNG's IHDR, JPEG's frame header, libwebp's WebPGetInfo) and anything over
 * IMAGE_INPUT_MAX_SIDE is refused before any pixel is decoded. The decoders then check the whole
 * file; one that is cut, or carries garbage where pixels should be, fails there.
 */
#include "media/image.h"

#include <gd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <webp/decode.h>

#include "common/error.h"

#define JPEG_QUALITY 85
#define WEBP_QUALITY 80

enum image_type image_type_of_mime(const char *ct) {
  size_t n;
  if (ct == NULL)
    return IMAGE_NONE;
  n = strcspn(ct, "; \t");
  if (n == 9 && strncasecmp(ct, "image/png", n) == 0)
    return IMAGE_PNG;
  if (n == 10 && strncasecmp(ct, "image/jpeg", n) == 0)
    return IMAGE_JPEG;
  if (n == 10 && strncasecmp(ct, "image/webp", n) == 0)
    return IMAGE_WEBP;
  return IMAGE_NONE;
}

const char *image_ext(enum image_type t) {
  return t == IMAGE_PNG ? "png" : t == IMAGE_JPEG ? "jpg" : t == IMAGE_WEBP ? "webp" : "";
}

const char *image_mime_of_ext(const char *ext) {
  if (strcmp(ext, "png") == 0)
    return "image/png";
  if (strcmp(ext, "jpg") == 0)
    return "image/jpeg";
  if (strcmp(ext, "webp") == 0)
    return "image/webp";
  return NULL;
}

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* PNG: the signature, then IHDR, whose first fields are width and height (PNG spec 11.2.2). */
static int png_size(const uint8_t *in, size_t len, uint32_t *w, uint32_t *h) {
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (len < 24 || memcmp(in, sig, 8) != 0 || memcmp(in + 12, "IHDR", 4) != 0)
    return -1;
  *w = be32(in + 16);
  *h = be32(in + 20);
  return 0;
}

/* JPEG: the segments before the first frame header (SOFn: C0-CF but C4, C8 and CC), whose body
 * holds precision, height and width (ITU T.81 B.2.2). */
static int jpeg_size(const uint8_t *in, size_t len, uint32_t *w, uint32_t *h) {
  size_t i = 2;
  if (len < 4 || in[0] != 0xff || in[1] != 0xd8)
    return -1;
  while (i + 4 <= len) {
    uint8_t m;
    size_t seg;
    if (in[i] != 0xff)
      return -1;
    m = in[i + 1];
    if (m == 0xff) { /* fill byte */
      i++;
      continue;
    }
    seg = (size_t)in[i + 2] << 8 | in[i + 3];
    if (seg < 2)
      return -1;
    if (m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc) {
      if (i + 9 > len)
        return -1;
      *h = (uint32_t)in[i + 5] << 8 | in[i + 6];
      *w = (uint32_t)in[i + 7] << 8 | in[i + 8];
      return 0;
    }
    i += 2 + seg;
  }
  return -1;
}

static int image_size(enum image_type type, const uint8_t *in, size_t len, uint32_t *w,
                      uint32_t *h) {
  int iw = 0, ih = 0;
  switch (type) {
  case IMAGE_PNG:
    return png_size(in, len, w, h);
  case IMAGE_JPEG:
    return jpeg_size(in, len, w, h);
  case IMAGE_WEBP:
    if (!WebPGetInfo(in, len, &iw, &ih))
      return -1;
    *w = (uint32_t)iw;
    *h = (uint32_t)ih;
    return 0;
  default:
    return -1;
  }
}

/* libgd reports a broken file on stderr; the caller's 400 says all the client needs. */
static void image_quiet(int priority, const char *format, va_list args) {
  (void)priority;
  (void)format;
  (void)args;
}

int image_avatar(enum image_type type, const uint8_t *in, size_t len, uint8_t **out,
                 size_t *out_len, const char **why) {
  gdImagePtr src = NULL, dst = NULL;
  uint32_t w = 0, h = 0, dw, dh;
  void *enc = NULL;
  int size = 0;
  int err = PARLEY_EBAD_REQUEST;

  *out = NULL;
  *out_len = 0;
  *why = "the file is not a picture of its Content-Type";
  if (len == 0 || len > INT32_MAX || image_size(type, in, len, &w, &h) != 0)
    return err;
  if (w == 0 || h == 0 || w > IMAGE_INPUT_MAX_SIDE || h > IMAGE_INPUT_MAX_SIDE) {
    *why = "the picture must be at most 4096x4096 pixels";
    return err;
  }
  gdSetErrorMethod(image_quiet);
  src = type == IMAGE_PNG    ? gdImageCreateFromPngPtr((int)len, (void *)in)
        : type == IMAGE_JPEG ? gdImageCreateFromJpegPtr((int)len, (void *)in)
                             : gdImageCreateFromWebpPtr((int)len, (void *)in);
  if (src == NULL)
    goto cleanup;
  /* What the header said is what was decoded, or the file lied. */
  if ((uint32_t)gdImageSX(src) != w || (uint32_t)gdImageSY(src) != h)
    goto cleanup;
  dw = w, dh = h;
  if (w > IMAGE_AVATAR_SIDE || h > IMAGE_AVATAR_SIDE) {
    dw = w >= h ? IMAGE_AVATAR_SIDE : (w * IMAGE_AVATAR_SIDE + h / 2) / h;
    dh = h >= w ? IMAGE_AVATAR_SIDE : (h * IMAGE_AVATAR_SIDE + w / 2) / w;
    dw = dw ? dw : 1;
    dh = dh ? dh : 1;
  }
  err = PARLEY_EINTERNAL;
  dst = gdImageCreateTrueColor((int)dw, (int)dh);
  if (dst == NULL)
    goto cleanup;
  gdImageAlphaBlending(dst, 0);
  gdImageSaveAlpha(dst, 1);
  gdImageCopyResampled(dst, src, 0, 0, 0, 0, (int)dw, (int)dh, (int)w, (int)h);
  enc = type == IMAGE_PNG    ? gdImagePngPtr(dst, &size)
        : type == IMAGE_JPEG ? gdImageJpegPtr(dst, &size, JPEG_QUALITY)
                             : gdImageWebpPtrEx(dst, &size, WEBP_QUALITY);
  if (enc == NULL || size <= 0 || (*out = malloc((size_t)size)) == NULL)
    goto cleanup;
  memcpy(*out, enc, (size_t)size);
  *out_len = (size_t)size;
  err = 0;
cleanup:
  if (enc)
    gdFree(enc);
  if (dst)
    gdImageDestroy(dst);
  if (src)
    gdImageDestroy(src);
  return err;
}
