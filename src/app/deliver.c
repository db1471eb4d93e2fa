/* deliver.c - sending what happened to everyone concerned: the sockets here directly (one
 * encoded, framed, refcounted chunk for all of them) and the other nodes through the bus, which
 * hand it to theirs. A message is fanned out from the callback of its store request, i.e. after
 * it committed.
 */
#include "app/deliver.h"

#include <stdlib.h>

#include "app/churn.h"
#include "app/clients.h"
#include "app/cluster.h"
#include "app/presence.h"
#include "app/subs.h"
#include "core/invite.h"
#include "proto/proto.h"

void app__deliver_msg(struct app *a, const char *slug, const struct store_msg *m, int64_t mgen) {
  size_t len;
  char *enc = proto_msg_enc(m, slug, &len);
  if (enc)
    app__deliver_msg_enc(a, slug, m->seq, mgen, enc, len);
  free(enc);
}

void app__deliver_msg_enc(struct app *a, const char *slug, int64_t seq, int64_t mgen,
                          const char *enc, size_t enc_len) {
  struct room *r = app__room_find(a, slug);
  struct proto_raw msg = {"msg", enc, enc_len};
  struct outq_chunk *frame;
  size_t len;
  char *json;

  if (r == NULL && a->bus_solo)
    return;
  json = proto_event("msg", json_pack("{s:s}", "chat", slug), &len);
  if (json)
    json = proto_splice(json, &len, &msg, 1);
  if (json == NULL)
    return;
  app__bus_publish_msg(a, slug, seq, mgen, json, len);
  frame = r ? net_ws_frame_text(json, len) : NULL;
  free(json);
  if (frame == NULL)
    return;
  app__room_deliver_msg(a, r, seq, mgen, frame);
  outq_chunk_unref(frame);
}

void app__notify_users(struct app *a, const int64_t *ids, size_t n, const char *ev,
                       json_t *fields) {
  size_t len;
  char *json = proto_event(ev, fields, &len);
  if (json == NULL)
    return;
  app__notify_users_json(a, ids, n, json, len);
  free(json);
}

void app__notify_users_json(struct app *a, const int64_t *ids, size_t n, const char *json,
                            size_t len) {
  app__bus_publish_notify(a, ids, n, json, len);
  app__notify_here(a, ids, n, json, len);
}

void app__drop_user_subs(struct app *a, int64_t user_id, const char *slug) {
  app__bus_publish_drop(a, user_id, slug);
  app__drop_user_subs_here(a, user_id, slug);
}

void app__close_session(struct app *a, const uint8_t *session_hash, uint16_t code,
                        const char *reason) {
  app__bus_publish_close_session(a, session_hash, code, reason);
  app__close_session_here(a, session_hash, code, reason);
}

void app__announce_join(struct app *a, const struct store_req *sreq, const struct store_user *u) {
  /* The joiner's presence rides along: the others share a chat with them from now on. In a big
   * chat joins close together go out as one event (churn.c). */
  app__churn_join(a, sreq->out.chat.slug,
                  json_pack("{s:o, s:s, s:o}", "user", proto_user_json(u), "role", "member",
                            "presence", app__presence_json(a, u)),
                  sreq->out.chat.participant_count, sreq->out.member_ids, sreq->out.n_member_ids);
  app__invite_events(a, sreq); /* a join settles the joiner's pending invitation */
  app__deliver_notice(a, sreq);
}

void app__deliver_notice(struct app *a, const struct store_req *sreq) {
  if (sreq->status == 0 && sreq->out.notice.seq > 0)
    app__deliver_msg(a, sreq->out.chat.slug, &sreq->out.notice, sreq->out.chat.member_gen);
}

/* Tells both sides of an invitation what happened to it. */
void app__invite_event(struct app *a, const struct store_invite *inv, const char *action) {
  int64_t ids[2] = {inv->to.id, inv->from.id};
  app__notify_users(
      a, ids, 2, "invite",
      json_pack("{s:s, s:o}", "action", action, "invitation", proto_invite_json(inv)));
}

void app__invite_events(struct app *a, const struct store_req *sreq) {
  for (size_t i = 0; i < sreq->out.n_invites; i++)
    app__invite_event(a, &sreq->out.invites[i], invite_status_name(sreq->out.invites[i].status));
}
