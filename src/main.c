/* main.c - start-up: configuration from the environment, the loop, graceful exit.
 *
 * Every setting is a PARLEY_* environment variable (docs/operations.md lists them); the few
 * flags below are shorthands for the common ones.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "app/app.h"
#include "common/log.h"

static void usage(void) {
  fprintf(stderr,
          "usage: parley [--listen HOST:PORT] [--data DIR] [--web DIR] [--durability normal|fsync]\n"
          "       parley --print-config-table\n"
          "Every setting is also a PARLEY_* environment variable (see docs/operations.md);\n"
          "--print-config-table prints them as the README's table.\n");
}

int main(int argc, char **argv) {
  struct app_config cfg;
  struct app *app = NULL;
  uv_loop_t *loop = uv_default_loop();
  int rc;

  for (int i = 1; i < argc; i++) {
    const char *env = NULL;
    if (strcmp(argv[i], "--print-config-table") == 0) {
      app_config_print_table(stdout);
      return 0;
    }
    if (strcmp(argv[i], "--listen") == 0)
      env = "PARLEY_LISTEN";
    else if (strcmp(argv[i], "--data") == 0)
      env = "PARLEY_DATA";
    else if (strcmp(argv[i], "--web") == 0)
      env = "PARLEY_WEB_DIR";
    else if (strcmp(argv[i], "--durability") == 0)
      env = "PARLEY_DURABILITY";
    if (env == NULL || i + 1 >= argc) {
      usage();
      return 2;
    }
    setenv(env, argv[++i], 1);
  }
  signal(SIGPIPE, SIG_IGN);
  if (app_config_load(&cfg) != 0)
    return 2;
  rc = app_start(&app, loop, &cfg);
  if (rc != 0) {
    log_error("start-up failed");
    return 1;
  }
  /* For the person who typed `make run`: the log line above is for operators. */
  printf("Parley is serving http://%s%s%s:%d (Ctrl-C stops it)\n", strchr(cfg.host, ':') ? "[" : "",
         cfg.host, strchr(cfg.host, ':') ? "]" : "", app_port(app));
  fflush(stdout);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  app_free(app);
  return 0;
}
