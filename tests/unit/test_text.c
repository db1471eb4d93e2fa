/* test_text.c - the rules for user-visible text (src/core/text.c): names count code points, and
 * names and bodies need a visible character; names refuse controls and bidi controls. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "common/error.h"
#include "core/text.h"

static int name(const char *s) {
  return text_check_name(s, strlen(s), TEXT_DISPLAY_NAME_MAX);
}
static int body(const char *s) {
  return text_check_body(s, strlen(s));
}

/* 64 characters are allowed whatever their size in bytes; the 65th is too many. */
static void test_name_counts_code_points(void **state) {
  char buf[4 * 65 + 1] = "";
  for (int i = 0; i < 64; i++)
    strcat(buf, "\xF0\x9F\x98\x80"); /* U+1F600, 4 bytes */
  assert_int_equal(strlen(buf), 256);
  assert_int_equal(name(buf), 0);
  strcat(buf, "a");
  assert_int_equal(name(buf), PARLEY_ETOO_LARGE);
  memset(buf, 0, sizeof buf);
  for (int i = 0; i < 64; i++)
    strcat(buf, "\xC3\xA9"); /* é: 128 bytes, 64 characters */
  assert_int_equal(name(buf), 0);
  assert_int_equal(name("Ana"), 0);
  assert_int_equal(name("Zoë 😀"), 0);
  assert_int_equal(name("👩‍💻"), 0); /* a ZWJ sequence: the ZWJ is not refused */
  assert_int_equal(name(""), PARLEY_EBAD_REQUEST);
}

/* Names and bodies of white space or invisible code points only are refused. */
static void test_invisible_only(void **state) {
  static const char *blank[] = {
      " ",
      "\xE2\x80\x8B",             /* U+200B ZERO WIDTH SPACE */
      "\xE3\x80\x80",             /* U+3000 IDEOGRAPHIC SPACE */
      "\xEF\xBB\xBF",             /* U+FEFF BOM */
      "\xE2\x81\xA0",             /* U+2060 WORD JOINER */
      "\xC2\xA0\xC2\xA0",         /* U+00A0 NO-BREAK SPACE x2 */
      "\xE2\x80\x83\xE2\x80\x8C", /* U+2003 EM SPACE, U+200C ZWNJ */
      "\xE3\x85\xA4",             /* U+3164 HANGUL FILLER */
      "\xE2\xA0\x80",             /* U+2800 BRAILLE PATTERN BLANK */
      "\xC2\xAD",                 /* U+00AD SOFT HYPHEN */
      "\xE1\xA0\x8E",             /* U+180E MONGOLIAN VOWEL SEPARATOR */
  };
  for (size_t i = 0; i < sizeof blank / sizeof blank[0]; i++) {
    if (name(blank[i]) != PARLEY_EBAD_REQUEST)
      fail_msg("name %zu accepted", i);
    if (body(blank[i]) != PARLEY_EBAD_REQUEST)
      fail_msg("body %zu accepted", i);
  }
  /* Bodies may hold white space and newlines around something visible. */
  assert_int_equal(body("\xE3\x80\x80hello\n\n"), 0);
  assert_int_equal(body(" \n\t\r\n"), PARLEY_EBAD_REQUEST);
  assert_int_equal(body("\xE2\x80\xAE"), PARLEY_EBAD_REQUEST); /* U+202E alone */
  /* A body keeps bidi controls around visible text (mixed-direction text needs them). */
  assert_int_equal(body("\xE2\x81\xA7\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D\xE2\x81\xA9"), 0);
}

/* Names refuse the bidi embedding, override and isolate controls, and control characters. */
static void test_name_refuses_controls(void **state) {
  static const char *bad[] = {
      "evil\xE2\x80\xAEgnp.exe", /* U+202E RIGHT-TO-LEFT OVERRIDE */
      "a\xE2\x80\xAA"
      "b", /* U+202A */
      "a\xE2\x80\xAD"
      "b", /* U+202D */
      "a\xE2\x81\xA6"
      "b", /* U+2066 LRI */
      "a\xE2\x81\xA9"
      "b", /* U+2069 PDI */
      "a\nb",
      "a\tb",
      "a\x7f"
      "b",
      "a\xC2\x85"
      "b", /* U+0085 NEL (C1) */
      "a\xE2\x80\xA8"
      "b",    /* U+2028 LINE SEPARATOR */
      "\xFF", /* not UTF-8 */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (name(bad[i]) != PARLEY_EBAD_REQUEST)
      fail_msg("name %zu accepted", i);
  assert_int_equal(text_check_name("a\0b", 3, 10), PARLEY_EBAD_REQUEST);
  assert_int_equal(text_check_body("a\0b", 3), PARLEY_EBAD_REQUEST);
  assert_true(text_is_bidi_control(0x202A) && text_is_bidi_control(0x2069));
  assert_false(text_is_bidi_control(0x2065) || text_is_bidi_control(0x202F));
  assert_false(text_is_bidi_control(0x200F)); /* RLM is a mark, not an override */
}

/* A cut never splits a code point: "a" then a 4-byte emoji, cut at 1..4 bytes. */
static void test_utf8_fit(void **state) {
  (void)state;
  const char *s = "a\xF0\x9F\xA6\x8A"; /* "a" U+1F98A */
  assert_int_equal(text_utf8_fit(s, 5, 5), 5);
  assert_int_equal(text_utf8_fit(s, 5, 9), 5);
  for (size_t max = 1; max < 5; max++)
    assert_int_equal(text_utf8_fit(s, 5, max), 1);
  assert_int_equal(text_utf8_fit(s + 1, 4, 3), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_name_counts_code_points),
      cmocka_unit_test(test_invisible_only),
      cmocka_unit_test(test_name_refuses_controls),
      cmocka_unit_test(test_utf8_fit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
