/* fuzz_cluster_wire.c - libFuzzer target: the bus line decoder of src/app/cluster_wire.c.
 *
 * Another node's line is input like a client's (a node may run another version, Redis may be
 * shared), so beyond "no crash, leak or UB" the target checks the codec's contract: an accepted
 * line has a known kind with its fields in range, its borrowed pointers inside the input, and
 * encoding what was decoded gives a line that decodes to the same fields. The first byte picks
 * the channel ('c': a chat's, else the users'), the rest is the line.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "app/cluster_wire.h"

static void check_inside(const char *p, size_t n, const char *data, size_t len) {
  if (n)
    assert(p >= data && p + n <= data + len);
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size) {
  struct cluster_wire_msg m, again;
  const char *data;
  size_t len, elen;
  int chat;
  int64_t *ids = NULL;
  char *enc;

  if (size < 1)
    return 0;
  chat = in[0] == 'c';
  data = (const char *)in + 1;
  len = size - 1;
  if (cluster_wire_decode(chat, data, len, &m) != 0)
    return 0;
  assert(strchr(chat ? "mDsq" : "ndxhFafPp", m.kind) != NULL && m.kind != 0);
  check_inside(m.body, m.body_len, data, len);
  check_inside(m.ids_text, m.ids_len, data, len);
  assert(strlen(m.slug) <= STORE_SLUG_MAX && strlen(m.username) <= STORE_USERNAME_MAX);
  assert(strlen(m.reason) <= CLUSTER_REASON_MAX);
  if (strchr("sqhFaf", m.kind))
    assert(strlen(m.node) == CLUSTER_NODE_ID_LEN);
  if (m.kind == 'm')
    assert(m.seq > 0 && m.member_gen >= 0);
  if (m.kind == 'D')
    assert(m.seq > 0 && m.offset >= 0 && m.member_gen >= 0);
  if (m.kind == 'x')
    assert(m.code >= 1000 && m.code <= 4999);
  if (m.kind == 'F')
    assert(m.fid != 0);
  if (m.kind == 'n' || m.kind == 'p') {
    assert(m.n_ids <= CLUSTER_IDS_MAX && (m.kind == 'p' || m.n_ids > 0));
    ids = malloc((m.n_ids ? m.n_ids : 1) * sizeof *ids);
    assert(ids);
    assert(cluster_wire_ids(&m, ids) == m.n_ids);
    for (size_t i = 0; i < m.n_ids; i++)
      assert(ids[i] > 0);
  }
  /* What was accepted encodes to a line that decodes to the same fields. */
  enc = cluster_wire_encode(&m, ids, m.n_ids, &elen);
  assert(enc);
  assert(cluster_wire_decode(chat, enc, elen, &again) == 0);
  assert(again.kind == m.kind && again.seq == m.seq && again.member_gen == m.member_gen);
  assert(again.user_id == m.user_id && again.state == m.state && again.last_seen == m.last_seen);
  assert(again.fid == m.fid && again.code == m.code && again.n_ids == m.n_ids);
  assert(strcmp(again.node, m.node) == 0 && strcmp(again.slug, m.slug) == 0);
  assert(strcmp(again.username, m.username) == 0 && strcmp(again.acker, m.acker) == 0);
  assert(memcmp(again.session_hash, m.session_hash, sizeof m.session_hash) == 0);
  assert(again.body_len == m.body_len &&
         (m.body_len == 0 || memcmp(again.body, m.body, m.body_len) == 0));
  free(enc);
  free(ids);
  return 0;
}
