/* test_config.c - the settings table of src/app/config.c: defaults, ranges and malformed
 * values, and the README's settings table, which must be exactly what the table prints
 * (`parley --print-config-table`), so that the two never drift apart. Run from the repository's
 * root (make unit does). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "app/config.h"
#include "common/error.h"

static void clear_env(void) {
  extern char **environ;
  /* Settings of the environment the tests run in would change the defaults seen here. */
  for (int again = 1; again;) {
    again = 0;
    for (char **e = environ; *e; e++) {
      if (strncmp(*e, "PARLEY_", 7) == 0) {
        char name[128];
        size_t n = strcspn(*e, "=");
        snprintf(name, sizeof name, "%.*s", (int)n, *e);
        unsetenv(name);
        again = 1;
        break;
      }
    }
  }
}

static void test_defaults(void **state) {
  struct app_config c;
  clear_env();
  assert_int_equal(app_config_load(&c), 0);
  assert_string_equal(c.host, "127.0.0.1");
  assert_int_equal(c.port, 8080);
  assert_string_equal(c.data_dir, "data");
  assert_string_equal(c.web_dir, "web/dist");
  assert_string_equal(c.store_url, "");
  assert_int_equal(c.store_conns, 0);
  assert_int_equal(c.durability, STORE_DURABILITY_NORMAL);
  assert_int_equal(c.max_body, 64 * 1024);
  assert_int_equal(c.outq_hard_max, 16 * 1024 * 1024);
  assert_int_equal(c.session_ttl_ms, INT64_C(30) * 24 * 3600 * 1000);
  assert_true(c.login_rate == 1.0 / 6); /* exactly: the default is written to round-trip */
  assert_true(c.send_burst == 30);
  assert_int_equal(c.rate_limits, 1);
  assert_int_equal(c.max_conns_per_user, 20);
  assert_int_equal(c.presence_node_ttl_ms, 15000);
  assert_int_equal(c.typing_ttl_ms, 6000);
  assert_int_equal(c.bus_test_delay_ms, 0);
}

static void test_values_and_errors(void **state) {
  struct app_config c;
  clear_env();
  setenv("PARLEY_LISTEN", "0.0.0.0:9000", 1);
  setenv("PARLEY_SESSION_TTL_S", "60", 1);
  setenv("PARLEY_DURABILITY", "fsync", 1);
  setenv("PARLEY_RATE_LIMITS", "0", 1);
  setenv("PARLEY_BUS", "redis://127.0.0.1:6379", 1);
  assert_int_equal(app_config_load(&c), 0);
  assert_string_equal(c.host, "0.0.0.0");
  assert_int_equal(c.port, 9000);
  assert_int_equal(c.session_ttl_ms, 60000);
  assert_int_equal(c.durability, STORE_DURABILITY_FSYNC);
  assert_int_equal(c.rate_limits, 0);
  assert_string_equal(c.bus_url, "redis://127.0.0.1:6379");
  clear_env();
  static const char *bad[][2] = {
      {"PARLEY_LISTEN", "nohost"},       {"PARLEY_LISTEN", "h:99999"},
      {"PARLEY_STORE", "mysql://x"},     {"PARLEY_BUS", "http://x"},
      {"PARLEY_DURABILITY", "maybe"},    {"PARLEY_STORE_CONNS", "17"},
      {"PARLEY_STORE_CONNS", "0"},       {"PARLEY_MAX_BODY", "12"},
      {"PARLEY_MAX_BODY", "-5"},         {"PARLEY_OUTQ_MAX", "1x"},
      {"PARLEY_SEND_RATE", "0"},         {"PARLEY_SEND_RATE", "fast"},
      {"PARLEY_LOG_LEVEL", "loud"},      {"PARLEY_TYPING_TTL_MS", "600001"},
      {"PARLEY_SESSION_TTL_S", "0"},     {"PARLEY_MAX_CONNS_PER_USER", "100001"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    setenv(bad[i][0], bad[i][1], 1);
    if (app_config_load(&c) != PARLEY_EBAD_REQUEST)
      fail_msg("%s=%s accepted", bad[i][0], bad[i][1]);
    unsetenv(bad[i][0]);
  }
}

/* The README's table, from its header line to the first blank line, is the printed one. */
static void test_readme_table_is_generated(void **state) {
  char *printed = NULL, *readme = NULL;
  size_t plen = 0;
  FILE *f = open_memstream(&printed, &plen);
  FILE *r = fopen("README.md", "r");
  long rlen;
  char *start, *end;
  assert_non_null(f);
  app_config_print_table(f);
  fclose(f);
  assert_non_null(r);
  fseek(r, 0, SEEK_END);
  rlen = ftell(r);
  rewind(r);
  readme = calloc(1, (size_t)rlen + 1);
  assert_non_null(readme);
  assert_int_equal(fread(readme, 1, (size_t)rlen, r), (size_t)rlen);
  fclose(r);
  start = strstr(readme, "| Variable | Default | Meaning |");
  assert_non_null(start);
  end = strstr(start, "\n\n");
  assert_non_null(end);
  end[1] = '\0';
  if (strcmp(start, printed) != 0)
    fail_msg("README.md's settings table differs from `build/parley --print-config-table`; "
             "replace it with that output");
  free(printed);
  free(readme);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_values_and_errors),
      cmocka_unit_test(test_readme_table_is_generated),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
