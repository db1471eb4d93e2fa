/* static.c - the web app's files, read from disk per request.
 *
 * The files are small (a Vite build) and sit in the page cache, so a synchronous read on the
 * loop thread costs microseconds; a CDN or the reverse proxy should serve them in a large
 * deployment (docs/operations.md). Hashed assets under /assets/ are cached for a year; the
 * HTML entry point is revalidated every time so a deploy is picked up at once.
 */
#include "net/static.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"

#define STATIC__MAX_FILE (16u << 20)

static const char *static__type(const char *path) {
  static const struct {
    const char *ext, *type;
  } types[] = {
      {".html", "text/html; charset=utf-8"},  {".js", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},    {".json", "application/json"},
      {".svg", "image/svg+xml"},              {".png", "image/png"},
      {".ico", "image/x-icon"},               {".webp", "image/webp"},
      {".woff2", "font/woff2"},               {".txt", "text/plain; charset=utf-8"},
      {".map", "application/json"},           {".webmanifest", "application/manifest+json"},
  };
  const char *dot = strrchr(path, '.');
  if (dot)
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
      if (strcmp(dot, types[i].ext) == 0)
        return types[i].type;
  return "application/octet-stream";
}

static int static__safe(const char *path) {
  if (path[0] != '/' || strstr(path, "..") || strchr(path, '\\') || strchr(path, '%') ||
      strstr(path, "//"))
    return 0;
  return 1;
}

static int static__read(const char *file, char **data, size_t *len) {
  struct stat st;
  int fd = open(file, O_RDONLY | O_CLOEXEC);
  ssize_t n;
  size_t got = 0;

  if (fd < 0)
    return PARLEY_ENOT_FOUND;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > STATIC__MAX_FILE) {
    close(fd);
    return PARLEY_ENOT_FOUND;
  }
  *data = malloc((size_t)st.st_size + 1);
  if (*data == NULL) {
    close(fd);
    return PARLEY_EINTERNAL;
  }
  while (got < (size_t)st.st_size && (n = read(fd, *data + got, (size_t)st.st_size - got)) > 0)
    got += (size_t)n;
  close(fd);
  *len = got;
  return 0;
}

void static_serve(struct net_conn *c, const char *root, const char *path, int head) {
  static const char security[] =
      /* X-Content-Type-Options: nosniff is on every response (http.c). */
      "Referrer-Policy: same-origin\r\n"
      "X-Frame-Options: DENY\r\n"
      "Content-Security-Policy: default-src 'self'; connect-src 'self' ws: wss:; "
      "img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'\r\n";
  char file[4096], headers[1024];
  const char *served = path;
  const char *last;
  char *data = NULL;
  size_t len = 0;
  int err;

  if (!static__safe(path)) {
    net_http_error(c, PARLEY_ENOT_FOUND, "no such file");
    return;
  }
  if (strcmp(path, "/") == 0)
    served = "/index.html";
  snprintf(file, sizeof file, "%s%s", root, served);
  err = static__read(file, &data, &len);
  last = strrchr(path, '/');
  if (err == PARLEY_ENOT_FOUND && last && strchr(last, '.') == NULL) {
    served = "/index.html"; /* a client-side route such as /chat/design-review */
    snprintf(file, sizeof file, "%s%s", root, served);
    err = static__read(file, &data, &len);
  }
  if (err) {
    net_http_error(c, err, err == PARLEY_ENOT_FOUND ? "no such file" : NULL);
    return;
  }
  snprintf(headers, sizeof headers, "%sCache-Control: %s\r\n", security,
           strncmp(served, "/assets/", 8) == 0 ? "public, max-age=31536000, immutable"
                                                : "no-cache");
  (void)head; /* net_http_respond sends only the headers of a HEAD response */
  net_http_respond(c, 200, static__type(served), headers, data, len);
  free(data);
}
