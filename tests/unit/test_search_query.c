/* test_search_query.c - msg.search queries (src/core/search_query.c): every term reaches the
 * engine quoted, so nothing a user types is syntax to FTS5 or tsquery. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/error.h"
#include "core/search_query.h"

static void expect(const char *q, const char *fts5, const char *ts) {
  struct search_query sq;
  char *out = NULL;
  assert_int_equal(search_query_parse(q, strlen(q), &sq), 0);
  assert_int_equal(search_query_fts5(&sq, &out), 0);
  assert_string_equal(out, fts5);
  free(out);
  assert_int_equal(search_query_tsquery(&sq, &out), 0);
  assert_string_equal(out, ts);
  free(out);
}

static void test_words_phrases_or_not_prefix(void **state) {
  expect("hello", "(\"hello\")", "('hello')");
  expect("  hello   world ", "(\"hello\") AND (\"world\")", "('hello') & ('world')");
  expect("\"quick brown\" fox*", "(\"quick brown\") AND (\"fox\"*)", "('quick brown') & ('fox':*)");
  expect("a OR b c", "(\"a\" OR \"b\") AND (\"c\")", "('a' | 'b') & ('c')");
  expect("a -b -\"c d\"", "(((\"a\")) NOT \"b\") NOT \"c d\"", "('a') & !'b' & !'c d'");
}

/* The engines' operators and quotes are only text. */
static void test_injection_is_quoted(void **state) {
  expect("NEAR(a b) body:x ^y", "(\"NEAR(a\") AND (\"b)\") AND (\"body:x\") AND (\"^y\")",
         "('NEAR(a') & ('b)') & ('body:x') & ('^y')");
  expect("it's a\\b", "(\"it's\") AND (\"a\\b\")", "('it''s') & ('a\\\\b')");
  expect("\"x\"\"y\"", "(\"x\") AND (\"y\")", "('x') & ('y')");
  expect("a & b | !c <-> d:*", "(\"a\") AND (\"b\") AND (\"!c\") AND (\"d:\"*)",
         "('a') & ('b') & ('!c') & ('d:':*)");
  expect("OR a", "(\"a\")", "('a')");
  expect("\"OR\"", "(\"OR\")", "('OR')");
}

static void test_refused(void **state) {
  struct search_query sq;
  char big[SEARCH_QUERY_MAX + 2];
  static const char *none[] = {"", "   ", "-a", "\"", "!!", "*", "- -", "OR", "\"\"*", "-\"x\""};
  for (size_t i = 0; i < sizeof none / sizeof none[0]; i++)
    assert_int_equal(search_query_parse(none[i], strlen(none[i]), &sq), PARLEY_EBAD_REQUEST);
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  assert_int_equal(search_query_parse(big, strlen(big), &sq), PARLEY_ETOO_LARGE);
  assert_int_equal(search_query_parse(big, SEARCH_QUERY_MAX, &sq), 0);
  assert_int_equal(search_query_parse("a b c d e f g h i j k l m n o p", 31, &sq), 0);
  assert_int_equal(search_query_parse("a b c d e f g h i j k l m n o p q", 33, &sq),
                   PARLEY_EBAD_REQUEST);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_words_phrases_or_not_prefix),
      cmocka_unit_test(test_injection_is_quoted),
      cmocka_unit_test(test_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
