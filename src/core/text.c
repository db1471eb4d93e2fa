/* text.c - the rules for user-visible text (text.h), on libunistring's Unicode tables. */
#include "core/text.h"

#include <unictype.h>
#include <unistr.h>

#include "common/error.h"

int text_is_bidi_control(uint32_t c) {
  return (c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069);
}

int text_is_visible(uint32_t c) {
  if (uc_is_property_white_space(c) || uc_is_property_default_ignorable_code_point(c))
    return 0;
  /* Cc controls and Cf format characters (U+061C, U+180E...). Unassigned code points count as
   * visible: they may be characters newer than this library's tables (a new emoji). */
  if (uc_is_general_category(c, UC_CATEGORY_Cc) || uc_is_general_category(c, UC_CATEGORY_Cf))
    return 0;
  /* Blank glyphs that Unicode does not classify as space. */
  return c != 0x2800 && c != 0x115F && c != 0x1160 && c != 0x3164 && c != 0xFFA0;
}

/* Walks s, counting code points and visible ones; *bad set on a code point `names` refuses. */
static int text__scan(const char *s, size_t n, int names, size_t *chars, int *visible) {
  const uint8_t *p = (const uint8_t *)s, *end = p + n;
  *chars = 0;
  *visible = 0;
  if (s == NULL || u8_check(p, n) != NULL)
    return PARLEY_EBAD_REQUEST;
  while (p < end) {
    ucs4_t c;
    int len = u8_mbtouc(&c, p, (size_t)(end - p));
    if (len <= 0 || c == 0)
      return PARLEY_EBAD_REQUEST;
    if (names && (uc_is_general_category(c, UC_CATEGORY_Cc) || c == 0x2028 || c == 0x2029 ||
                  text_is_bidi_control(c)))
      return PARLEY_EBAD_REQUEST;
    if (!*visible && text_is_visible(c))
      *visible = 1;
    (*chars)++;
    p += len;
  }
  return 0;
}

int text_check_name(const char *s, size_t n, size_t max_chars) {
  size_t chars;
  int visible;
  int err = text__scan(s, n, 1, &chars, &visible);
  if (err)
    return err;
  if (chars > max_chars)
    return PARLEY_ETOO_LARGE;
  return chars >= 1 && visible ? 0 : PARLEY_EBAD_REQUEST;
}

int text_check_body(const char *s, size_t n) {
  size_t chars;
  int visible;
  int err = text__scan(s, n, 0, &chars, &visible);
  if (err)
    return err;
  return visible ? 0 : PARLEY_EBAD_REQUEST;
}

size_t text_utf8_fit(const char *s, size_t n, size_t max) {
  const unsigned char *t = (const unsigned char *)s;
  if (n <= max)
    return n;
  while (max > 0 && (t[max] & 0xC0) == 0x80)
    max--; /* t[max] continues the code point that does not fit: cut before it */
  return max;
}
