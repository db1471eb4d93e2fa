/* image.h - avatars' pictures: a PNG, JPEG or WebP file decoded by real decoders (libgd, which
 * uses libpng, libjpeg and libwebp), bounded in size before decoding, scaled down and encoded
 * again. Re-encoding is what makes an upload safe to serve: what comes out holds pixels only,
 * no metadata (EXIF, location, comments) and no bytes the uploader chose. Pure computation, no
 * I/O: app/ runs it on the thread pool.
 */
#ifndef PARLEY_MEDIA_IMAGE_H
#define PARLEY_MEDIA_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#define IMAGE_INPUT_MAX_SIDE 4096 /* pixels: a larger picture is refused before it is decoded */
#define IMAGE_AVATAR_SIDE 256     /* the stored picture fits in a square of this side */

enum image_type { IMAGE_NONE = 0, IMAGE_PNG, IMAGE_JPEG, IMAGE_WEBP };

/* The type a Content-Type (borrowed, parameters allowed) names, IMAGE_NONE for any other. */
enum image_type image_type_of_mime(const char *content_type);
/* The file extension ("png", "jpg", "webp") and the Content-Type of a type. Static strings. */
const char *image_ext(enum image_type t);
const char *image_mime_of_ext(const char *ext);

/* Decodes `len` bytes at `in` (borrowed) as `type`, scales it to fit IMAGE_AVATAR_SIDE (never
 * up) and encodes it again as the same type into *out (malloc'd; the caller frees it), *out_len.
 * Returns 0, PARLEY_EBAD_REQUEST (not a whole picture of that type: the sentence in why, a
 * static string) or PARLEY_EINTERNAL (no memory). */
int image_avatar(enum image_type type, const uint8_t *in, size_t len, uint8_t **out,
                 size_t *out_len, const char **why);

#endif
