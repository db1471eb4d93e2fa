/* cluster_wire.c - encoding and decoding the bus lines of cluster_wire.h. Pure: no state, no
 * I/O, no allocation but the encoder's result, so the decoder can be fuzzed on its own. A line
 * from another node is trusted no more than a client's input: every field is bounded and a
 * malformed line is refused whole.
 */
#include "app/cluster_wire.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

#define BAD PARLEY_EBAD_REQUEST

/* Parses a decimal integer at *p (an optional '-', then digits, nothing else: no space, no '+'),
 * never reading at or past end, and moves *p past it. Returns 0, or -1 (no digits, overflow). */
static int parse_i64(const char **p, const char *end, int64_t *out) {
  const char *q = *p;
  int neg = q < end && *q == '-';
  uint64_t v = 0;
  q += neg;
  if (q == end || *q < '0' || *q > '9')
    return -1;
  while (q < end && *q >= '0' && *q <= '9') {
    if (v > (UINT64_C(1) << 63) / 10)
      return -1;
    v = v * 10 + (uint64_t)(*q++ - '0');
  }
  if (v > (uint64_t)INT64_MAX + (uint64_t)neg)
    return -1;
  *out = neg ? (int64_t)(0 - v) : (int64_t)v;
  *p = q;
  return 0;
}

/* Parses "1,2,3" (ending at end) into ids (NULL: only counts). Returns how many, or -1 for a
 * malformed list or more than CLUSTER_IDS_MAX ids. */
static long parse_ids(const char *p, const char *end, int64_t *ids) {
  size_t n = 0;
  while (p < end) {
    int64_t v;
    if (parse_i64(&p, end, &v) != 0 || v <= 0 || n == CLUSTER_IDS_MAX)
      return -1;
    if (ids)
      ids[n] = v;
    n++;
    if (p < end && *p++ != ',')
      return -1;
    if (p == end && p[-1] == ',')
      return -1;
  }
  return (long)n;
}

static int hex_nibble(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static int hex_decode(const char *p, size_t n, uint8_t *out, size_t out_len) {
  if (n != 2 * out_len)
    return -1;
  for (size_t i = 0; i < out_len; i++) {
    int hi = hex_nibble(p[2 * i]), lo = hex_nibble(p[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return -1;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return 0;
}

/* "<a> <b> <c>" of three integers filling the whole of [p, end). */
static int parse_three(const char *p, const char *end, int64_t *a, int64_t *b, int64_t *c) {
  if (parse_i64(&p, end, a) || p == end || *p++ != ' ' || parse_i64(&p, end, b) || p == end ||
      *p++ != ' ' || parse_i64(&p, end, c) || p != end)
    return -1;
  return 0;
}

static int copy_node(char *dst, const char *src, size_t n) {
  if (n != CLUSTER_NODE_ID_LEN || memchr(src, '\0', n))
    return BAD;
  memcpy(dst, src, n);
  dst[n] = '\0';
  return 0;
}

/* Heartbeats and fences: one line of space-separated words. */
static int decode_node_line(const char *p, size_t len, struct cluster_wire_msg *m) {
  char line[CLUSTER_LINE_MAX + 1], *w[5], *save = NULL;
  int n = 0;
  if (len > CLUSTER_LINE_MAX)
    return BAD;
  memcpy(line, p + 1, len - 1);
  line[len - 1] = '\0';
  for (char *t = strtok_r(line, " ", &save); t && n < 5; t = strtok_r(NULL, " ", &save))
    w[n++] = t;
  if (n < 1 || copy_node(m->node, w[0], strlen(w[0])) != 0)
    return BAD;
  if (n > 1 && p[0] != CLUSTER_HEARTBEAT) {
    const char *q = w[1];
    int64_t fid;
    if (parse_i64(&q, w[1] + strlen(w[1]), &fid) != 0 || *q || fid < 0 || fid > UINT32_MAX)
      return BAD;
    m->fid = (uint32_t)fid;
  }
  switch (p[0]) {
  case CLUSTER_HEARTBEAT:
    return 0;
  case CLUSTER_FENCE:
    if (n != 4 || m->fid == 0 || strlen(w[2]) > STORE_SLUG_MAX ||
        strlen(w[3]) > STORE_USERNAME_MAX)
      return BAD;
    strcpy(m->slug, w[2]);
    strcpy(m->username, w[3]);
    return 0;
  case CLUSTER_ACK:
    if (n != 3)
      return BAD;
    return copy_node(m->acker, w[2], strlen(w[2]));
  default: /* CLUSTER_UNFENCE */
    return n == 2 ? 0 : BAD;
  }
}

static int decode_user_line(const char *p, size_t len, struct cluster_wire_msg *m) {
  const char *end = p + len, *nl = memchr(p, '\n', len);
  long n;
  if (nl == NULL || len < 2)
    return BAD;
  m->kind = p[0];
  switch (p[0]) {
  case CLUSTER_NOTIFY:
    n = parse_ids(p + 1, nl, NULL);
    if (n <= 0)
      return BAD;
    m->ids_text = p + 1;
    m->ids_len = (size_t)(nl - p - 1);
    m->n_ids = (size_t)n;
    m->body = nl + 1;
    m->body_len = (size_t)(end - nl - 1);
    return 0;
  case CLUSTER_DROP: {
    const char *sp = p + 1;
    int64_t uid;
    size_t slen;
    if (parse_i64(&sp, nl, &uid) != 0 || uid <= 0 || sp >= nl || *sp != ' ')
      return BAD;
    slen = (size_t)(nl - sp - 1);
    if (slen == 0 || slen > STORE_SLUG_MAX || memchr(sp + 1, '\0', slen))
      return BAD;
    m->user_id = uid;
    memcpy(m->slug, sp + 1, slen);
    m->slug[slen] = '\0';
    return 0;
  }
  case CLUSTER_CLOSE: {
    const char *sp = memchr(p, ' ', (size_t)(nl - p)), *num_end;
    int64_t code;
    size_t rlen = (size_t)(end - nl - 1);
    if (sp == NULL || hex_decode(p + 1, (size_t)(sp - p - 1), m->session_hash,
                                 sizeof m->session_hash) != 0)
      return BAD;
    num_end = sp + 1;
    if (parse_i64(&num_end, nl, &code) != 0 || num_end != nl || code < 1000 || code > 4999)
      return BAD;
    m->code = (uint16_t)code;
    if (rlen > CLUSTER_REASON_MAX)
      rlen = CLUSTER_REASON_MAX;
    memcpy(m->reason, nl + 1, rlen);
    m->reason[rlen] = '\0';
    return 0;
  }
  case CLUSTER_HEARTBEAT:
  case CLUSTER_FENCE:
  case CLUSTER_ACK:
  case CLUSTER_UNFENCE:
    return decode_node_line(p, (size_t)(nl - p), m);
  case CLUSTER_PRESENCE_STATE:
  case CLUSTER_PRESENCE: {
    int64_t uid, st, last;
    const char *nl2 = NULL;
    if (parse_three(p + 1, nl, &uid, &st, &last) != 0 || uid <= 0 || st < INT32_MIN ||
        st > INT32_MAX)
      return BAD;
    m->user_id = uid;
    m->state = (int)st;
    m->last_seen = last;
    if (p[0] == CLUSTER_PRESENCE_STATE)
      return 0;
    nl2 = memchr(nl + 1, '\n', (size_t)(end - nl - 1));
    if (nl2 == NULL || (n = parse_ids(nl + 1, nl2, NULL)) < 0)
      return BAD;
    m->ids_text = nl + 1;
    m->ids_len = (size_t)(nl2 - nl - 1);
    m->n_ids = (size_t)n;
    m->body = nl2 + 1;
    m->body_len = (size_t)(end - nl2 - 1);
    return 0;
  }
  default:
    return BAD;
  }
}

static int decode_chat_line(const char *p, size_t len, struct cluster_wire_msg *m) {
  const char *end = p + len, *nl, *q;
  int64_t seq, mgen;
  if (len < 3 || (nl = memchr(p, '\n', len)) == NULL)
    return BAD;
  m->kind = p[0];
  switch (p[0]) {
  case CLUSTER_ROOM_STATE:
  case CLUSTER_ROOM_QUERY:
    if (copy_node(m->node, p + 1, (size_t)(nl - p - 1)) != 0)
      return BAD;
    if (p[0] == CLUSTER_ROOM_QUERY)
      return 0; /* a question: whatever follows it means nothing */
    m->body = nl + 1;
    m->body_len = (size_t)(end - nl - 1);
    return 0;
  case CLUSTER_MSG:
    q = p + 1;
    if (parse_i64(&q, nl, &seq) != 0 || q >= nl || *q++ != ' ' || seq <= 0)
      return BAD;
    if (parse_i64(&q, nl, &mgen) != 0 || q != nl || mgen < 0)
      return BAD;
    m->seq = seq;
    m->member_gen = mgen;
    m->body = nl + 1;
    m->body_len = (size_t)(end - nl - 1);
    return 0;
  case CLUSTER_DELTA: {
    int64_t offset;
    q = p + 1;
    if (parse_i64(&q, nl, &seq) != 0 || q >= nl || *q++ != ' ' || seq <= 0)
      return BAD;
    if (parse_i64(&q, nl, &offset) != 0 || q >= nl || *q++ != ' ' || offset < 0)
      return BAD;
    if (parse_i64(&q, nl, &mgen) != 0 || q != nl || mgen < 0)
      return BAD;
    m->seq = seq;
    m->offset = offset;
    m->member_gen = mgen;
    m->body = nl + 1;
    m->body_len = (size_t)(end - nl - 1);
    return 0;
  }
  default:
    return BAD;
  }
}

int cluster_wire_decode(int chat, const char *data, size_t len, struct cluster_wire_msg *out) {
  memset(out, 0, sizeof *out);
  return chat ? decode_chat_line(data, len, out) : decode_user_line(data, len, out);
}

size_t cluster_wire_ids(const struct cluster_wire_msg *m, int64_t *ids) {
  long n = parse_ids(m->ids_text, m->ids_text + m->ids_len, ids);
  return n > 0 ? (size_t)n : 0;
}

/* --- encoding -------------------------------------------------------------------------------- */

/* Appends "<id>,<id>,..." to w; room for 21 bytes per id is the caller's. */
static char *put_ids(char *w, const int64_t *ids, size_t n) {
  for (size_t i = 0; i < n; i++)
    w += sprintf(w, i ? ",%" PRId64 : "%" PRId64, ids[i]);
  return w;
}

char *cluster_wire_encode(const struct cluster_wire_msg *m, const int64_t *ids, size_t n_ids,
                          size_t *len) {
  size_t cap = 96 + 2 * STORE_TOKEN_HASH_LEN + STORE_SLUG_MAX + STORE_USERNAME_MAX +
               CLUSTER_REASON_MAX + 21 * n_ids + m->body_len;
  char *out = malloc(cap), *w = out;
  int body = 0;
  if (out == NULL)
    return NULL;
  switch (m->kind) {
  case CLUSTER_MSG:
    w += sprintf(w, "m%" PRId64 " %" PRId64 "\n", m->seq, m->member_gen);
    body = 1;
    break;
  case CLUSTER_DELTA:
    w += sprintf(w, "D%" PRId64 " %" PRId64 " %" PRId64 "\n", m->seq, m->offset, m->member_gen);
    body = 1;
    break;
  case CLUSTER_ROOM_STATE:
    w += sprintf(w, "s%s\n", m->node);
    body = 1;
    break;
  case CLUSTER_ROOM_QUERY:
    w += sprintf(w, "q%s\n", m->node);
    break;
  case CLUSTER_NOTIFY:
    *w++ = 'n';
    w = put_ids(w, ids, n_ids);
    *w++ = '\n';
    body = 1;
    break;
  case CLUSTER_DROP:
    w += sprintf(w, "d%" PRId64 " %s\n", m->user_id, m->slug);
    break;
  case CLUSTER_CLOSE:
    *w++ = 'x';
    for (size_t i = 0; i < STORE_TOKEN_HASH_LEN; i++)
      w += sprintf(w, "%02x", m->session_hash[i]);
    w += sprintf(w, " %u\n", (unsigned)m->code);
    w += sprintf(w, "%.*s", CLUSTER_REASON_MAX, m->reason);
    break;
  case CLUSTER_HEARTBEAT:
    w += sprintf(w, "h%s\n", m->node);
    break;
  case CLUSTER_FENCE:
    w += sprintf(w, "F%s %" PRIu32 " %s %s\n", m->node, m->fid, m->slug, m->username);
    break;
  case CLUSTER_ACK:
    w += sprintf(w, "a%s %" PRIu32 " %s\n", m->node, m->fid, m->acker);
    break;
  case CLUSTER_UNFENCE:
    w += sprintf(w, "f%s %" PRIu32 "\n", m->node, m->fid);
    break;
  case CLUSTER_PRESENCE_STATE:
    w += sprintf(w, "P%" PRId64 " %d %" PRId64 "\n", m->user_id, m->state, m->last_seen);
    break;
  case CLUSTER_PRESENCE:
    w += sprintf(w, "p%" PRId64 " %d %" PRId64 "\n", m->user_id, m->state, m->last_seen);
    w = put_ids(w, ids, n_ids);
    *w++ = '\n';
    body = 1;
    break;
  default:
    free(out);
    return NULL;
  }
  if (body && m->body_len) {
    memcpy(w, m->body, m->body_len);
    w += m->body_len;
  }
  *len = (size_t)(w - out);
  return out;
}
