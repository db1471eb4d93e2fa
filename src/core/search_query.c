/* search_query.c - parsing a msg.search query and quoting it for FTS5 and tsquery (see the
 * header for why every term is quoted). */
#include "core/search_query.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"

static int sq_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* A byte that may belong to a word: ASCII letters and digits, and any byte of a non-ASCII
 * character (the engines' tokenizers decide about those; punctuation alone is no word). */
static int sq_wordy(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80)
      return 1;
  }
  return 0;
}

int search_query_parse(const char *q, size_t len, struct search_query *out) {
  size_t i = 0;
  int pending_or = 0;

  memset(out, 0, sizeof *out);
  if (len > SEARCH_QUERY_MAX)
    return PARLEY_ETOO_LARGE;
  while (i < len) {
    struct search_term t = {0};
    if (sq_space(q[i])) {
      i++;
      continue;
    }
    if (q[i] == '-' && i + 1 < len && !sq_space(q[i + 1])) {
      t.exclude = 1;
      i++;
    }
    if (q[i] == '"') { /* a phrase, to the next quote or the end */
      size_t start = ++i;
      while (i < len && q[i] != '"')
        i++;
      t.s = q + start;
      t.len = i - start;
      if (i < len)
        i++; /* the closing quote */
      if (i < len && q[i] == '*') {
        t.prefix = 1;
        while (i < len && q[i] == '*')
          i++;
      }
    } else {
      size_t start = i;
      while (i < len && !sq_space(q[i]) && q[i] != '"')
        i++;
      t.s = q + start;
      t.len = i - start;
      while (t.len > 0 && t.s[t.len - 1] == '*') {
        t.prefix = 1;
        t.len--;
      }
      /* OR between two terms, as in web search boxes; a literal "OR" is "\"OR\"". */
      if (!t.exclude && !t.prefix && t.len == 2 && memcmp(t.s, "OR", 2) == 0) {
        pending_or = out->n_positive > 0;
        continue;
      }
    }
    if (!sq_wordy(t.s, t.len))
      continue;
    if (out->n == SEARCH_TERMS_MAX)
      return PARLEY_EBAD_REQUEST;
    if (!t.exclude) {
      t.or_prev = pending_or;
      pending_or = 0;
      out->n_positive++;
    }
    out->t[out->n++] = t;
  }
  return out->n_positive > 0 ? 0 : PARLEY_EBAD_REQUEST;
}

/* A growing string: every term is at most SEARCH_QUERY_MAX bytes, doubled by quoting, so the
 * whole is bounded by the query's size; one allocation of the bound is enough. */
struct sq_buf {
  char *p;
  size_t n;
};

static void sq_put(struct sq_buf *b, const char *s, size_t n) {
  memcpy(b->p + b->n, s, n);
  b->n += n;
}

static void sq_puts(struct sq_buf *b, const char *s) {
  sq_put(b, s, strlen(s));
}

/* `t` between `quote` characters, each quote inside doubled; with `backslash`, each backslash
 * doubled too (tsquery treats it as an escape inside quotes). */
static void sq_quoted(struct sq_buf *b, const struct search_term *t, char quote, int backslash) {
  sq_put(b, &quote, 1);
  for (size_t i = 0; i < t->len; i++) {
    char c = t->s[i];
    if (c == quote || (backslash && c == '\\'))
      sq_put(b, &c, 1);
    sq_put(b, &c, 1);
  }
  sq_put(b, &quote, 1);
}

static int sq_alloc(const struct search_query *q, struct sq_buf *b) {
  size_t need = 1;
  for (int i = 0; i < q->n; i++)
    need += 2 * q->t[i].len + 24; /* quotes, prefix mark, operators and parentheses */
  b->p = malloc(need);
  b->n = 0;
  return b->p ? 0 : PARLEY_EUNAVAILABLE;
}

/* Writes the query with the operators of one dialect. */
struct sq_dialect {
  char quote;
  int backslash;
  const char *prefix, *either, *both, *not_open, *not_close;
};

static int sq_render(const struct search_query *q, const struct sq_dialect *d, char **out) {
  struct sq_buf b;
  int first = 1;
  int excluded = 0;

  if (sq_alloc(q, &b))
    return PARLEY_EUNAVAILABLE;
  for (int i = 0; i < q->n; i++)
    excluded += q->t[i].exclude;
  if (d->not_open) /* FTS5's NOT is binary: ((a) NOT "x") NOT "y" */
    for (int i = 0; i < excluded; i++)
      sq_puts(&b, d->not_open);
  for (int i = 0; i < q->n; i++) {
    const struct search_term *t = &q->t[i];
    if (t->exclude)
      continue;
    if (t->or_prev) {
      sq_puts(&b, d->either);
    } else {
      if (!first)
        sq_puts(&b, ") ");
      sq_puts(&b, first ? "(" : d->both);
      if (!first)
        sq_puts(&b, "(");
      first = 0;
    }
    sq_quoted(&b, t, d->quote, d->backslash);
    if (t->prefix)
      sq_puts(&b, d->prefix);
  }
  sq_puts(&b, ")");
  for (int i = 0; i < q->n; i++) {
    if (!q->t[i].exclude)
      continue;
    sq_puts(&b, d->not_close);
    sq_quoted(&b, &q->t[i], d->quote, d->backslash);
  }
  b.p[b.n] = '\0';
  *out = b.p;
  return 0;
}

int search_query_fts5(const struct search_query *q, char **out) {
  static const struct sq_dialect fts5 = {'"', 0, "*", " OR ", "AND ", "(", ") NOT "};
  return sq_render(q, &fts5, out);
}

int search_query_tsquery(const struct search_query *q, char **out) {
  static const struct sq_dialect ts = {'\'', 1, ":*", " | ", "& ", NULL, " & !"};
  return sq_render(q, &ts, out);
}
