/* search_query.h - the words of a msg.search query, and the same query in each backend's syntax.
 *
 * Users type what they would type into a web search box: words (all must match), "a phrase",
 * -word to exclude, OR between two alternatives, word* for a prefix. Full-text engines give
 * most of those characters a meaning of their own (FTS5's NEAR, column filters, ^, +; tsquery's
 * &, |, !, <->, :*), and a query they cannot parse is an error. So the query is parsed here, once,
 * and each term goes to the engine quoted as a string: whatever a user types is never syntax to
 * the engine, only text for its tokenizer. Pure functions, no I/O.
 */
#ifndef PARLEY_CORE_SEARCH_QUERY_H
#define PARLEY_CORE_SEARCH_QUERY_H

#include <stddef.h>

#define SEARCH_QUERY_MAX 256 /* bytes of a query */
#define SEARCH_TERMS_MAX 16  /* terms of a query: each one is a posting list to merge */

struct search_term {
  const char *s;        /* borrowed from the query text; not NUL-terminated */
  size_t len;           /* bytes, > 0 */
  unsigned prefix : 1;  /* word*: every word starting with it */
  unsigned exclude : 1; /* -word: messages holding it are left out */
  unsigned or_prev : 1; /* an alternative of the previous (not excluded) term: a OR b */
};

struct search_query {
  struct search_term t[SEARCH_TERMS_MAX];
  int n;          /* terms */
  int n_positive; /* terms that are not excluded: at least 1 after a successful parse */
};

/* Parses `q` (borrowed, `len` bytes of UTF-8; the terms point into it, so it must outlive *out).
 * Terms without a letter or digit ("!!", "*", "-") are dropped: no tokenizer finds a word in
 * them. Returns 0; PARLEY_ETOO_LARGE for more than SEARCH_QUERY_MAX bytes; PARLEY_EBAD_REQUEST
 * for more than SEARCH_TERMS_MAX terms or for no term left to look for. */
int search_query_parse(const char *q, size_t len, struct search_query *out);

/* The query as an SQLite FTS5 expression, every term a quoted string: ("a" OR "b"*) AND ("c")
 * NOT "d". Returns 0 and a malloc'ed string in *out (the caller frees it), or
 * PARLEY_EUNAVAILABLE when out of memory. */
int search_query_fts5(const struct search_query *q, char **out);

/* The same as PostgreSQL to_tsquery() text, every term a quoted lexeme ('a' | 'b':*) & 'c' &
 * !'d' (a quoted phrase becomes a <-> phrase in to_tsquery). Returns as search_query_fts5(). */
int search_query_tsquery(const struct search_query *q, char **out);

#endif
