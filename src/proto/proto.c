/* proto.c - the request schema table and the encoders declared in proto.h. */
#include "proto/proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistr.h>

#include "common/error.h"
#include "core/acl.h"
#include "core/search_query.h"
#include "core/text.h"

enum field_type { FT_STRING, FT_INT, FT_BOOL };
/* CS_DELTA: a stream's delta: any text but control characters other than tab, line feed and
 * carriage return. JSON escapes those three in 2 bytes and other controls in 6: without them a
 * delta's event is at most twice its size, and a 256 KiB body's stream.end event stays within
 * PARLEY_OUTQ_MAX (1 MiB) and a 16384-byte delta's request within PARLEY_WS_MAX_MSG (64 KiB). */
enum charset { CS_ANY, CS_NONBLANK, CS_SLUG, CS_CLIENT_ID, CS_USERNAME, CS_NAME, CS_BODY, CS_DELTA };

struct field_desc {
  const char *name;
  enum field_type type;
  enum charset cs;
  int64_t min, max; /* string: length in bytes (title: characters); int: value */
  size_t off;       /* where the value goes in struct proto_req */
  int nullable;     /* null is a value (present, 0), not an absent field */
};

#define OFF(m) offsetof(struct proto_req, m)
static const struct field_desc fields[PROTO_F__COUNT] = {
    [PROTO_F_TOKEN] = {"token", FT_STRING, CS_ANY, 1, 256, OFF(token)},
    [PROTO_F_CHAT] = {"chat", FT_STRING, CS_SLUG, 1, STORE_SLUG_MAX, OFF(chat)},
    [PROTO_F_TITLE] = {"title", FT_STRING, CS_NAME, 1, PROTO_TITLE_MAX, OFF(title)},
    [PROTO_F_IS_PUBLIC] = {"isPublic", FT_BOOL, CS_ANY, 0, 1, OFF(is_public)},
    [PROTO_F_MAX_PARTICIPANTS] = {"maxParticipants", FT_INT, CS_ANY, 2, CHAT_PARTICIPANTS_CEILING,
                                  OFF(max_participants), 1},
    [PROTO_F_SLUG] = {"slug", FT_STRING, CS_SLUG, 1, 48, OFF(slug)},
    [PROTO_F_BODY] = {"body", FT_STRING, CS_BODY, 1, PROTO_BODY_MAX, OFF(body)},
    [PROTO_F_CLIENT_MSG_ID] = {"clientMsgId", FT_STRING, CS_CLIENT_ID, 1, STORE_CLIENT_MSG_ID_MAX,
                               OFF(client_msg_id)},
    [PROTO_F_BEFORE] = {"before", FT_INT, CS_ANY, 1, PROTO_INT_LIMIT, OFF(before)},
    [PROTO_F_SINCE] = {"since", FT_INT, CS_ANY, 0, PROTO_INT_LIMIT, OFF(since)},
    [PROTO_F_SEQ] = {"seq", FT_INT, CS_ANY, 0, PROTO_INT_LIMIT, OFF(seq)},
    [PROTO_F_LIMIT] = {"limit", FT_INT, CS_ANY, 1, PROTO_HISTORY_MAX, OFF(limit)},
    [PROTO_F_USER] = {"user", FT_STRING, CS_USERNAME, 3, STORE_USERNAME_MAX, OFF(user)},
    [PROTO_F_ROLE] = {"role", FT_STRING, CS_SLUG, 1, 16, OFF(role)},
    [PROTO_F_INVITE_POLICY] = {"invitePolicy", FT_STRING, CS_SLUG, 1, 16, OFF(invite_policy)},
    [PROTO_F_Q] = {"q", FT_STRING, CS_NONBLANK, 1, 64, OFF(q)},
    [PROTO_F_TTL] = {"ttl", FT_INT, CS_ANY, 1, 30 * 24 * 3600, OFF(ttl)},
    [PROTO_F_INVITATION] = {"invitation", FT_INT, CS_ANY, 1, PROTO_INT_LIMIT, OFF(invitation)},
    [PROTO_F_ON] = {"on", FT_BOOL, CS_ANY, 0, 1, OFF(on)},
    [PROTO_F_STATE] = {"state", FT_STRING, CS_SLUG, 1, 16, OFF(state)},
    [PROTO_F_REPLY_TO] = {"replyTo", FT_INT, CS_ANY, 1, PROTO_INT_LIMIT, OFF(reply_to)},
    [PROTO_F_EMOJI] = {"emoji", FT_STRING, CS_ANY, 1, STORE_EMOJI_MAX, OFF(emoji)},
    [PROTO_F_LEVEL] = {"level", FT_STRING, CS_SLUG, 1, 16, OFF(level)},
    [PROTO_F_DISPLAY_NAME] = {"displayName", FT_STRING, CS_NAME, 1, TEXT_DISPLAY_NAME_MAX,
                              OFF(display_name)},
    [PROTO_F_SEARCH_Q] = {"q", FT_STRING, CS_NONBLANK, 1, SEARCH_QUERY_MAX, OFF(q)},
    [PROTO_F_DELTA] = {"delta", FT_STRING, CS_DELTA, 1, STREAM_DELTA_MAX, OFF(delta)},
    [PROTO_F_OFFSET] = {"offset", FT_INT, CS_ANY, 0, STREAM_BODY_MAX, OFF(offset)},
    [PROTO_F_AFTER] = {"after", FT_INT, CS_ANY, 0, PROTO_INT_LIMIT, OFF(after)},
};
#undef OFF

#define REQ(f) (1u << (f))
struct op_desc {
  const char *name;
  int is_public;     /* allowed before authentication */
  uint32_t required; /* fields that must be present */
  uint32_t optional; /* fields that may be present */
};

static const struct op_desc ops[PROTO_OP__COUNT] = {
    [PROTO_OP_AUTH] = {"auth", 1, REQ(PROTO_F_TOKEN), 0},
    [PROTO_OP_PING] = {"ping", 1, 0, 0},
    [PROTO_OP_CHAT_CREATE] = {"chat.create", 0, REQ(PROTO_F_TITLE),
                              REQ(PROTO_F_IS_PUBLIC) | REQ(PROTO_F_MAX_PARTICIPANTS) |
                                  REQ(PROTO_F_SLUG)},
    [PROTO_OP_CHAT_GET] = {"chat.get", 0, REQ(PROTO_F_CHAT), REQ(PROTO_F_LIMIT)},
    [PROTO_OP_CHAT_LIST] = {"chat.list", 0, 0, 0},
    [PROTO_OP_CHAT_JOIN] = {"chat.join", 0, REQ(PROTO_F_CHAT), 0},
    [PROTO_OP_MSG_SEND] = {"msg.send", 0, REQ(PROTO_F_CHAT) | REQ(PROTO_F_BODY),
                           REQ(PROTO_F_CLIENT_MSG_ID) | REQ(PROTO_F_REPLY_TO)},
    [PROTO_OP_MSG_HISTORY] = {"msg.history", 0, REQ(PROTO_F_CHAT),
                              REQ(PROTO_F_BEFORE) | REQ(PROTO_F_LIMIT)},
    [PROTO_OP_SUB] = {"sub", 0, REQ(PROTO_F_CHAT), REQ(PROTO_F_SINCE)},
    [PROTO_OP_UNSUB] = {"unsub", 0, REQ(PROTO_F_CHAT), 0},
    [PROTO_OP_READ] = {"read", 0, REQ(PROTO_F_CHAT) | REQ(PROTO_F_SEQ), 0},
    [PROTO_OP_CHAT_UPDATE] = {"chat.update", 0, REQ(PROTO_F_CHAT),
                              REQ(PROTO_F_TITLE) | REQ(PROTO_F_IS_PUBLIC) |
                                  REQ(PROTO_F_MAX_PARTICIPANTS) | REQ(PROTO_F_INVITE_POLICY)},
    [PROTO_OP_CHAT_LEAVE] = {"chat.leave", 0, REQ(PROTO_F_CHAT), 0},
    [PROTO_OP_CHAT_REMOVE] = {"chat.remove", 0, REQ(PROTO_F_CHAT) | REQ(PROTO_F_USER), 0},
    [PROTO_OP_CHAT_SET_ROLE] = {"chat.setRole", 0,
                                REQ(PROTO_F_CHAT) | REQ(PROTO_F_USER) | REQ(PROTO_F_ROLE), 0},
    [PROTO_OP_USERS_SEARCH] = {"users.search", 0, REQ(PROTO_F_Q), REQ(PROTO_F_CHAT)},
    [PROTO_OP_INVITE_CREATE] = {"invite.create", 0, REQ(PROTO_F_CHAT) | REQ(PROTO_F_USER),
                                REQ(PROTO_F_TTL)},
    [PROTO_OP_INVITE_ACCEPT] = {"invite.accept", 0, REQ(PROTO_F_INVITATION), 0},
    [PROTO_OP_INVITE_DECLINE] = {"invite.decline", 0, REQ(PROTO_F_INVITATION), 0},
    [PROTO_OP_INVITE_REVOKE] = {"invite.revoke", 0, REQ(PROTO_F_INVITATION), 0},
    [PROTO_OP_INVITE_LIST] = {"invite.list", 0, 0, 0},
    [PROTO_OP_TYPING] = {"typing", 0, REQ(PROTO_F_CHAT) | REQ(PROTO_F_ON), 0},
    [PROTO_OP_PRESENCE] = {"presence", 0, REQ(PROTO_F_STATE), 0},
    [PROTO_OP_DM_OPEN] = {"dm.open", 0, REQ(PROTO_F_USER), 0},
    [PROTO_OP_MSG_EDIT] = {"msg.edit", 0, REQ(PROTO_F_CHAT) | REQ(PROTO_F_SEQ) | REQ(PROTO_F_BODY),
                           0},
    [PROTO_OP_MSG_DELETE] = {"msg.delete", 0, REQ(PROTO_F_CHAT) | REQ(PROTO_F_SEQ), 0},
    [PROTO_OP_REACT] = {"react", 0,
                        REQ(PROTO_F_CHAT) | REQ(PROTO_F_SEQ) | REQ(PROTO_F_EMOJI) | REQ(PROTO_F_ON),
                        0},
    [PROTO_OP_CHAT_NOTIFY] = {"chat.notify", 0, REQ(PROTO_F_CHAT) | REQ(PROTO_F_LEVEL), 0},
    [PROTO_OP_CHAT_BROWSE] = {"chat.browse", 0, 0,
                              REQ(PROTO_F_Q) | REQ(PROTO_F_BEFORE) | REQ(PROTO_F_LIMIT) |
                                  REQ(PROTO_F_CHAT)},
    [PROTO_OP_ME_UPDATE] = {"me.update", 0, REQ(PROTO_F_DISPLAY_NAME), 0},
    [PROTO_OP_MSG_SEARCH] = {"msg.search", 0, REQ(PROTO_F_SEARCH_Q),
                             REQ(PROTO_F_CHAT) | REQ(PROTO_F_BEFORE) | REQ(PROTO_F_LIMIT)},
    [PROTO_OP_STREAM_START] = {"msg.stream.start", 0, REQ(PROTO_F_CHAT),
                               REQ(PROTO_F_CLIENT_MSG_ID) | REQ(PROTO_F_REPLY_TO)},
    [PROTO_OP_STREAM_APPEND] = {"msg.stream.append", 0,
                                REQ(PROTO_F_CHAT) | REQ(PROTO_F_SEQ) | REQ(PROTO_F_DELTA) |
                                    REQ(PROTO_F_OFFSET),
                                0},
    [PROTO_OP_STREAM_END] = {"msg.stream.end", 0, REQ(PROTO_F_CHAT) | REQ(PROTO_F_SEQ),
                             REQ(PROTO_F_STATE)},
    [PROTO_OP_CHAT_MEMBERS] = {"chat.members", 0, REQ(PROTO_F_CHAT),
                               REQ(PROTO_F_AFTER) | REQ(PROTO_F_LIMIT)},
};

const char *proto_op_name(enum proto_op op) {
  return ops[op].name;
}

int proto_op_is_public(enum proto_op op) {
  return ops[op].is_public;
}

static int charset_ok(enum charset cs, const char *s, size_t n) {
  switch (cs) {
  case CS_ANY:
    return 1;
  case CS_NONBLANK:
    for (size_t i = 0; i < n; i++)
      if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
        return 1;
    return 0;
  case CS_NAME: /* the length is checked by the caller, in code points */
    return text_check_name(s, n, SIZE_MAX) == 0;
  case CS_BODY:
    return text_check_body(s, n) == 0;
  case CS_DELTA:
    for (size_t i = 0; i < n; i++)
      if ((unsigned char)s[i] < 0x20 && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
        return 0;
    return 1;
  case CS_SLUG:
    for (size_t i = 0; i < n; i++)
      if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
        return 0;
    return 1;
  case CS_CLIENT_ID:
  case CS_USERNAME:
    for (size_t i = 0; i < n; i++)
      if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
            (s[i] >= '0' && s[i] <= '9') || strchr(cs == CS_USERNAME ? "_.-" : "_.:-", s[i])))
        return 0;
    return 1;
  }
  return 0;
}

static const char *charset_desc(enum charset cs) {
  switch (cs) {
  case CS_NONBLANK:
    return " and not only white space";
  case CS_NAME:
    return " with a visible character (not only white space), without control or bidi characters";
  case CS_BODY:
    return " with a visible character (not only white space)";
  case CS_DELTA:
    return " without control characters (tab, line feed and carriage return are fine)";
  case CS_SLUG:
    return " of [a-z0-9-]";
  case CS_CLIENT_ID:
    return " of [A-Za-z0-9_.:-]";
  case CS_USERNAME:
    return " of [a-z0-9_.-]";
  default:
    return "";
  }
}

static int decode_field(struct proto_req *req, enum proto_field f, json_t *v, char *err,
                        size_t errlen) {
  const struct field_desc *d = &fields[f];
  char *slot = (char *)req + d->off;

  switch (d->type) {
  case FT_STRING: {
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    size_t n = s ? json_string_length(v) : 0;
    /* Titles are limited in characters, as users count them; everything else in bytes. */
    int chars = f == PROTO_F_TITLE || f == PROTO_F_DISPLAY_NAME;
    size_t count = (s && chars) ? u8_mbsnlen((const uint8_t *)s, n) : n;
    if (s == NULL || strlen(s) != n || (int64_t)count < d->min || (int64_t)count > d->max ||
        !charset_ok(d->cs, s, n)) {
      snprintf(err, errlen, "%s: must be a string of %lld-%lld %s%s", d->name, (long long)d->min,
               (long long)d->max, chars ? "characters" : "bytes", charset_desc(d->cs));
      return (s && (int64_t)count > d->max) ? PARLEY_ETOO_LARGE : PARLEY_EBAD_REQUEST;
    }
    *(const char **)slot = s;
    return 0;
  }
  case FT_INT: {
    json_int_t i;
    if (!json_is_integer(v) || (i = json_integer_value(v)) < d->min || i > d->max) {
      snprintf(err, errlen, "%s: must be an integer from %lld to %lld", d->name, (long long)d->min,
               (long long)d->max);
      return PARLEY_EBAD_REQUEST;
    }
    *(int64_t *)slot = i;
    return 0;
  }
  case FT_BOOL:
    if (!json_is_boolean(v)) {
      snprintf(err, errlen, "%s: must be true or false", d->name);
      return PARLEY_EBAD_REQUEST;
    }
    *(int *)slot = json_is_true(v);
    return 0;
  }
  return PARLEY_EINTERNAL;
}

int proto_decode(const char *data, size_t len, struct proto_req *req, char *err, size_t errlen) {
  json_error_t jerr;
  json_t *id, *op;
  const char *name;
  int i;

  memset(req, 0, sizeof *req);
  req->root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
  if (req->root == NULL) {
    snprintf(err, errlen, "invalid JSON: %s", jerr.text);
    return PARLEY_EBAD_REQUEST;
  }
  if (!json_is_object(req->root)) {
    snprintf(err, errlen, "a request must be a JSON object");
    return PARLEY_EBAD_REQUEST;
  }
  id = json_object_get(req->root, "id");
  if (!json_is_integer(id) || json_integer_value(id) < 0 ||
      json_integer_value(id) >= (PROTO_INT_LIMIT)) {
    snprintf(err, errlen, "id: must be an integer from 0 to 2^53-1");
    return PARLEY_EBAD_REQUEST;
  }
  req->id = json_integer_value(id);
  req->has_id = 1;
  op = json_object_get(req->root, "op");
  if (!json_is_string(op)) {
    snprintf(err, errlen, "op: must be a string");
    return PARLEY_EBAD_REQUEST;
  }
  name = json_string_value(op);
  for (i = 0; i < PROTO_OP__COUNT; i++)
    if (strcmp(ops[i].name, name) == 0)
      break;
  if (i == PROTO_OP__COUNT) {
    snprintf(err, errlen, "op: unknown op \"%.40s\"", name);
    return PARLEY_EBAD_REQUEST;
  }
  req->op = (enum proto_op)i;
  for (int f = 0; f < PROTO_F__COUNT; f++) {
    uint32_t bit = 1u << f;
    json_t *v;
    int rc;
    if (!((ops[i].required | ops[i].optional) & bit))
      continue; /* fields an op does not take are ignored: clients may add fields freely */
    v = json_object_get(req->root, fields[f].name);
    if (v && json_is_null(v) && fields[f].nullable) {
      req->present |= bit; /* e.g. maxParticipants: null removes the cap */
      continue;
    }
    if (v == NULL || (json_is_null(v) && !(ops[i].required & bit))) {
      if (ops[i].required & bit) {
        snprintf(err, errlen, "%s: required", fields[f].name);
        return PARLEY_EBAD_REQUEST;
      }
      continue;
    }
    rc = decode_field(req, (enum proto_field)f, v, err, errlen);
    if (rc)
      return rc;
    req->present |= bit;
  }
  return 0;
}

void proto_req_dispose(struct proto_req *req) {
  json_decref(req->root);
  req->root = NULL;
}

json_t *proto_user_json(const struct store_user *u) {
  char avatar[STORE_AVATAR_NAME_MAX + 16];
  /* The avatar's URL path: content-addressed, so a new picture is a new URL (issue 18). */
  snprintf(avatar, sizeof avatar, "/avatars/%s", u->avatar);
  return json_pack("{s:I, s:s, s:s, s:o, s:b}", "id", (json_int_t)u->id, "username",
                   u->username, "displayName", u->display_name, "avatar",
                   u->avatar[0] ? json_string(avatar) : json_null(), "bot", u->bot);
}

const char *proto_notify_name(enum store_notify level, int is_dm) {
  switch (level) {
  case STORE_NOTIFY_ALL:
    return "all";
  case STORE_NOTIFY_MENTIONS:
    return "mentions";
  case STORE_NOTIFY_NONE:
    return "none";
  default:
    return is_dm ? "all" : "mentions";
  }
}

enum store_notify proto_notify_parse(const char *name) {
  if (strcmp(name, "all") == 0)
    return STORE_NOTIFY_ALL;
  if (strcmp(name, "mentions") == 0)
    return STORE_NOTIFY_MENTIONS;
  if (strcmp(name, "none") == 0)
    return STORE_NOTIFY_NONE;
  return STORE_NOTIFY_DEFAULT;
}

json_t *proto_member_json(const struct store_member *m) {
  json_t *o = proto_user_json(&m->user);
  json_object_set_new(o, "role", json_string(chat_role_name(m->role)));
  json_object_set_new(o, "joinedAt", json_integer(m->joined_at));
  return o;
}

json_t *proto_invite_json(const struct store_invite *inv) {
  return json_pack("{s:I, s:s, s:s, s:o, s:o, s:s, s:I, s:I}", "id", (json_int_t)inv->id, "chat",
                   inv->chat_slug, "chatTitle", inv->chat_title ? inv->chat_title : "", "from",
                   proto_user_json(&inv->from), "to", proto_user_json(&inv->to), "status",
                   invite_status_name(inv->status), "createdAt", (json_int_t)inv->created_at,
                   "expiresAt", (json_int_t)inv->expires_at);
}

json_t *proto_chat_json(const struct store_chat *c) {
  const char *role = chat_role_name(c->my_role);
  /* A DM is titled by the other person, as the caller sees them. */
  const char *title = c->is_dm ? c->peer.display_name : c->title ? c->title : "";
  json_t *o = json_pack("{s:s, s:s, s:b, s:o, s:s, s:b, s:I, s:I, s:I, s:i, s:o, s:[]}", "slug",
                        c->slug, "title", title, "isPublic", c->is_public, "maxParticipants",
                        c->max_participants > 0 ? json_integer(c->max_participants) : json_null(),
                        "invitePolicy", invite_policy_name(c->invite_policy), "archived",
                        c->archived, "createdAt", (json_int_t)c->created_at, "lastActivity",
                        (json_int_t)c->last_activity, "lastSeq", (json_int_t)c->last_seq,
                        "participantCount", c->participant_count, "role",
                        role ? json_string(role) : json_null(), "activeUsers");
  json_object_set_new(o, "kind", json_string(c->is_dm ? "dm" : "group"));
  if (c->is_dm)
    json_object_set_new(o, "peer", proto_user_json(&c->peer));
  return o;
}

static const char *const kind_names[] = {"text", "edit", "delete", "reaction", "notice",
                                         "stream.end"};
#define KIND_NAMES_N (sizeof kind_names / sizeof kind_names[0])

json_t *proto_msg_json(const struct store_msg *m, const char *chat_slug) {
  json_t *o = json_pack("{s:I, s:s, s:o, s:s, s:o, s:I}", "seq", (json_int_t)m->seq, "chat",
                        chat_slug, "author", proto_user_json(&m->author), "body",
                        m->body ? m->body : "", "clientMsgId",
                        m->client_msg_id[0] ? json_string(m->client_msg_id) : json_null(),
                        "createdAt", (json_int_t)m->created_at);
  json_t *mentions = json_array();
  unsigned k = (unsigned)m->kind < KIND_NAMES_N ? (unsigned)m->kind : 0;
  json_object_set_new(o, "kind", json_string(kind_names[k]));
  json_object_set_new(o, "ref", m->ref ? json_integer(m->ref) : json_null());
  for (size_t i = 0; i < m->n_mentions; i++)
    json_array_append_new(mentions, json_integer(m->mentions[i]));
  json_object_set_new(o, "mentions", mentions);
  switch (m->kind) {
  case STORE_KIND_TEXT: {
    json_t *reactions = json_array();
    for (size_t i = 0; i < m->n_reactions; i++)
      json_array_append_new(reactions, json_pack("{s:s, s:I, s:b}", "emoji", m->reactions[i].emoji,
                                                 "count", (json_int_t)m->reactions[i].count, "me",
                                                 m->reactions[i].me));
    json_object_set_new(o, "replyTo",
                        m->reply_seq ? json_pack("{s:I, s:o, s:s}", "seq", (json_int_t)m->reply_seq,
                                                 "author", proto_user_json(&m->reply_author),
                                                 "preview",
                                                 m->reply_preview ? m->reply_preview : "")
                                     : json_null());
    json_object_set_new(o, "editedAt", m->edited_at ? json_integer(m->edited_at) : json_null());
    json_object_set_new(o, "deleted", json_boolean(m->deleted));
    json_object_set_new(o, "reactions", reactions);
    /* Issue 19: a streamed message says how far it is; body is the text so far. */
    json_object_set_new(o, "streaming", json_boolean(m->stream_state == STREAM_STREAMING));
    json_object_set_new(o, "stream",
                        m->stream_state != STREAM_NONE
                            ? json_pack("{s:s, s:I}", "state", stream_state_name(m->stream_state),
                                        "length", (json_int_t)m->stream_len)
                            : json_null());
    break;
  }
  case STORE_KIND_STREAM_END:
    json_object_set_new(o, "state", json_string(stream_state_name(m->stream_state)
                                                    ? stream_state_name(m->stream_state)
                                                    : "done"));
    json_object_set_new(o, "length", json_integer(m->stream_len));
    break;
  case STORE_KIND_REACTION:
    json_object_set_new(o, "emoji", json_string(m->emoji));
    json_object_set_new(o, "on", json_boolean(m->on));
    break;
  case STORE_KIND_NOTICE:
    json_object_set_new(o, "action", json_string(m->action));
    json_object_set_new(o, "user", m->subject.id ? proto_user_json(&m->subject) : json_null());
    /* The author did it; when they are also the one it is about (joined, left), by is null. */
    json_object_set_new(o, "by", m->author.id && m->author.id != m->subject.id
                                     ? proto_user_json(&m->author)
                                     : json_null());
    if (strcmp(m->action, "renamed") == 0)
      json_object_set_new(o, "title", json_string(m->detail ? m->detail : ""));
    if (strcmp(m->action, "role") == 0)
      json_object_set_new(o, "role", json_string(m->detail ? m->detail : ""));
    break;
  default:
    break;
  }
  return o;
}

static char *dump(json_t *o, size_t *len) {
  char *s = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  if (s && len)
    *len = strlen(s);
  return s;
}

char *proto_msg_enc(const struct store_msg *m, const char *chat_slug, size_t *len) {
  return dump(proto_msg_json(m, chat_slug), len);
}

static json_t *reply_id(const struct proto_req *req) {
  return req && req->has_id ? json_integer(req->id) : json_null();
}

char *proto_reply_ok(const struct proto_req *req, json_t *result, size_t *len) {
  json_t *o = json_pack("{s:o, s:b}", "id", reply_id(req), "ok", 1);
  if (result) {
    json_object_update(o, result);
    json_decref(result);
  }
  return dump(o, len);
}

char *proto_splice(char *obj, size_t *len, const struct proto_raw *raw, size_t n) {
  size_t at = *len, need = *len;
  char *out;
  if (at < 2 || obj[0] != '{' || obj[at - 1] != '}') {
    free(obj);
    return NULL;
  }
  for (size_t i = 0; i < n; i++)
    need += strlen(raw[i].key) + raw[i].len + 4; /* ,"key": */
  out = realloc(obj, need + 1);
  if (out == NULL) {
    free(obj);
    return NULL;
  }
  at--; /* over the closing brace */
  for (size_t i = 0; i < n; i++) {
    size_t k = strlen(raw[i].key);
    if (at > 1)
      out[at++] = ',';
    out[at++] = '"';
    memcpy(out + at, raw[i].key, k);
    at += k;
    out[at++] = '"';
    out[at++] = ':';
    memcpy(out + at, raw[i].json, raw[i].len);
    at += raw[i].len;
  }
  out[at++] = '}';
  out[at] = '\0';
  *len = at;
  return out;
}

char *proto_reply_err(const struct proto_req *req, int err, const char *msg, size_t *len) {
  char safe[256];
  const uint8_t *bad;
  json_t *o;
  /* Messages may quote client text cut at a byte count (jansson's "near '...'", an unknown op
   * name): a cut inside a UTF-8 character must not cost the client its reply, so the message
   * ends at the last whole character. */
  if (msg) {
    snprintf(safe, sizeof safe, "%s", msg);
    bad = u8_check((const uint8_t *)safe, strlen(safe));
    if (bad)
      safe[bad - (const uint8_t *)safe] = '\0';
    msg = safe;
  }
  o = json_pack("{s:o, s:b, s:{s:s, s:s}}", "id", reply_id(req), "ok", 0, "error", "code",
                parley_err_name(err), "message", msg ? msg : parley_strerror(err));
  return dump(o, len);
}

char *proto_event(const char *name, json_t *fields_obj, size_t *len) {
  json_t *o = json_pack("{s:s}", "ev", name);
  if (fields_obj) {
    json_object_update(o, fields_obj);
    json_decref(fields_obj);
  }
  return dump(o, len);
}
