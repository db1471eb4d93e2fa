/* store.h - durable state of Parley behind one asynchronous interface.
 *
 * The loop thread never touches the database. It fills a `struct store_req`, submits it, and
 * gets its callback on the loop thread once the request's transaction has committed (or failed).
 * A store thread executes requests from a queue: it drains everything queued into one
 * transaction (group commit; one failing request does not undo the others: store.c compares the
 * backend's change count around it, and a batch in which one failed after writing runs again with
 * a SAVEPOINT per request), commits, and posts the completions back with uv_async. A message is
 * therefore acknowledged, and fanned out, only after it is durable.
 *
 * Backends (store_sqlite.c, store_pg.c) implement `struct store_backend_ops`, a synchronous
 * method table called only from a store thread. SQLite has one store thread, and completions
 * come in submission order. A backend that allows it (PostgreSQL) gets several threads, each
 * with its own connection (a lane, see store.c); completions then come in submission order for
 * requests naming the same chat, and for requests with the same order key (store_req.order).
 *
 * Authorization that must be atomic with the change (membership, cap, idempotency) is checked
 * inside the transaction, using the pure rules in core/acl.h.
 */
#ifndef PARLEY_STORE_STORE_H
#define PARLEY_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/acl.h"
#include "core/invite.h"
#include "core/stream.h"

#define STORE_USERNAME_MAX 32     /* bytes, without the NUL */
#define STORE_DISPLAY_NAME_MAX 256 /* bytes of UTF-8, without the NUL: 64 code points
                                      (core/text.h TEXT_DISPLAY_NAME_MAX) of up to 4 bytes */
#define STORE_SLUG_MAX 64
#define STORE_CLIENT_MSG_ID_MAX 64
#define STORE_TOKEN_HASH_LEN 32   /* SHA-256 / BLAKE2b-256 of a session token */
#define STORE_LIMIT_MAX 1000      /* largest in.limit of MSG_HISTORY / MSG_SINCE (bounds memory) */
#define STORE_SLUG_DERIVED_MAX 48 /* a slug derived from a title, before any "-N" suffix */
#define STORE_SEARCH_MAX 20       /* most hits of USERS_SEARCH (in.limit 0 or above: this) */
#define STORE_AVATAR_NAME_MAX 80  /* "<64 hex>.<ext>": an avatar's name (issue 18) */
#define STORE_BROWSE_MAX 100      /* most chats of one CHAT_BROWSE page */
#define STORE_MSG_SEARCH_MAX 50   /* most results of one MSG_SEARCH page */
#define STORE_MSG_SEARCH_RANKS 250 /* results reachable by paging MSG_SEARCH (a rank limit) */
/* The newest matches of the caller's chats that MSG_SEARCH ranks (>= STORE_MSG_SEARCH_RANKS): a
 * word in most messages costs ranking this many, not every match (docs/architecture.md). */
#define STORE_MSG_SEARCH_CANDIDATES 1000
#define STORE_MSG_SEARCH_BUDGET_MS 300 /* one MSG_SEARCH query's time on the store thread */

enum store_durability {
  STORE_DURABILITY_NORMAL = 0, /* WAL + synchronous=NORMAL: survives a killed process */
  STORE_DURABILITY_FSYNC = 1   /* synchronous=FULL: survives power loss */
};

struct store_user {
  int64_t id;
  char username[STORE_USERNAME_MAX + 1];
  char display_name[STORE_DISPLAY_NAME_MAX + 1];
  int64_t created_at; /* Unix ms */
  int64_t last_seen;  /* Unix ms, 0 = never; filled by CHAT_MEMBERS and USERS_SEARCH */
  char avatar[STORE_AVATAR_NAME_MAX + 1]; /* "<hash>.<ext>", "" = none (issue 18); filled where
                                             names are: sessions, members, search, by id/name */
  int bot;            /* a bot account (issue 19): filled wherever avatar is, and for the
                         authors, subjects and DM peers of messages and chats */
};

/* A participant's chat.notify level (participants.notify); DEFAULT: by the chat's kind. */
enum store_notify {
  STORE_NOTIFY_DEFAULT = 0,
  STORE_NOTIFY_ALL = 1,
  STORE_NOTIFY_MENTIONS = 2,
  STORE_NOTIFY_NONE = 3
};

struct store_chat {
  int64_t id;
  char slug[STORE_SLUG_MAX + 1];
  char *title;            /* owned by the enclosing request */
  int is_public;
  int max_participants;   /* 0 = no cap */
  int64_t owner_id;
  int64_t created_at;
  int64_t last_activity;
  int64_t last_seq;       /* seq of the newest message, 0 if none */
  int participant_count;
  enum chat_role my_role; /* role of the requesting user, CHAT_ROLE_NONE if not a participant */
  enum invite_policy invite_policy;
  int archived;           /* the last participant left: nobody can join or be invited */
  int64_t member_gen;     /* bumped by every leave and removal (migration 5); a message carries
                             the value read with it under the chat's lock (MSG_APPEND's chat) */
  int is_dm;              /* a direct message between two users (issue 17, migration 8) */
  struct store_user peer; /* is_dm: the other participant as the requesting user sees it */
  int64_t mentions;       /* CHAT_LIST: unread text messages that mention the user */
  enum store_notify notify; /* the caller's level: CHAT_LIST, CHAT_MEMBERS, NOTIFY_SET */
};

struct store_member {
  struct store_user user;
  enum chat_role role;
  int64_t joined_at;
};

struct store_invite {
  int64_t id;
  char chat_slug[STORE_SLUG_MAX + 1];
  char *chat_title;       /* owned by the enclosing request */
  struct store_user from, to;
  enum invite_status status;
  int64_t created_at;
  int64_t expires_at;
};

struct store_user_hit {
  struct store_user user;
  int participant;        /* already in the chat named by in.slug */
  int invited;            /* has a pending, unexpired invitation to it */
};

/* in.update_mask bits for STORE_CHAT_UPDATE */
#define STORE_UPD_TITLE 1u
#define STORE_UPD_PUBLIC 2u
#define STORE_UPD_CAP 4u
#define STORE_UPD_POLICY 8u

/* Kinds of entries in a chat's sequence (issue 17): every change is an entry with its own seq. */
enum store_msg_kind {
  STORE_KIND_TEXT = 0,
  STORE_KIND_EDIT,
  STORE_KIND_DELETE,
  STORE_KIND_REACTION,
  STORE_KIND_NOTICE,
  STORE_KIND_STREAM_END /* issue 19: the end of a streamed message (ref), its final body */
};
#define STORE_STREAMS_OPEN_MAX 8 /* streams open at once in one chat (bounds the sub snapshot) */
#define STORE_REPLY_BODIES_MAX (4u << 20) /* bytes of bodies one history/since read returns:
                                             streamed bodies reach 256 KiB each */
#define STORE_EMOJI_MAX 32      /* bytes of one reaction emoji */
#define STORE_REACTIONS_MAX 20  /* distinct emoji on one message */
#define STORE_PREVIEW_MAX 100   /* characters of a reply's preview */
#define STORE_MENTIONS_MAX 50   /* users one message can mention */

struct store_reaction {
  char emoji[STORE_EMOJI_MAX + 1];
  int64_t count;
  int me;                 /* the requesting user is among them */
};

struct store_msg {
  int64_t seq;            /* per-chat, gap-free, starting at 1 */
  int64_t chat_id;
  struct store_user author;
  char *body;             /* owned by the enclosing request; UTF-8 */
  char client_msg_id[STORE_CLIENT_MSG_ID_MAX + 1]; /* "" when the client gave none */
  int64_t created_at;
  /* ---- issue 17; every pointer below is owned by the message (store_msg_dispose) ---- */
  enum store_msg_kind kind;
  int64_t ref;            /* edit, delete, reaction: the seq of the message changed; else 0 */
  char emoji[STORE_EMOJI_MAX + 1]; /* reaction */
  int on;                 /* reaction: 1 added, 0 removed */
  char action[16];        /* notice: joined, left, removed, renamed, role, created */
  struct store_user subject; /* notice: the user it is about (id 0: none) */
  char *detail;           /* notice: the new title (renamed) or role (role); NULL otherwise */
  /* Folded state of a text message: */
  int64_t edited_at;      /* 0: never edited */
  int deleted;
  struct store_reaction *reactions; /* in first-reaction order */
  size_t n_reactions;
  int64_t reply_seq;      /* 0: not a reply */
  struct store_user reply_author;
  char *reply_preview;    /* "" when the original was deleted */
  int64_t *mentions;      /* user ids */
  size_t n_mentions;
  /* ---- issue 19: a streamed text message (its state, the bytes of its body); a stream.end
   * entry: the final state and length ---- */
  enum stream_state stream_state; /* STREAM_NONE: not a stream */
  int64_t stream_len;
};

/* A bot account (issue 19): its user row, its owner, its webhook. Strings owned by the request. */
struct store_bot {
  struct store_user user;  /* user.bot = 1 */
  struct store_user owner;
  char *webhook_url;       /* NULL: none */
  char *webhook_secret;    /* the HMAC key of its deliveries */
};
#define STORE_BOTS_MAX 20        /* bots one person may own */
#define STORE_WEBHOOK_URL_MAX 2048

/* in.update_mask bits for STORE_BOT_UPDATE */
#define STORE_UPD_BOT_NAME 1u
#define STORE_UPD_BOT_HOOK 2u

/* One result of STORE_MSG_SEARCH. */
struct store_msg_hit {
  struct store_msg msg;
  char slug[STORE_SLUG_MAX + 1]; /* the message's chat */
  char *title;                   /* its title (a DM's: the other person's display name);
                                    owned by the enclosing request */
  int is_dm;                     /* the chat is a DM (issue 17) */
  char *snippet;                 /* owned by the enclosing request: the body around the matches,
                                    each match between U+0002 and U+0003 (removed from the body
                                    first) */
};

enum store_op {
  STORE_USER_CREATE,    /* in: user (username, display_name), pwhash, now.
                           out: user. PARLEY_ECONFLICT if the username is taken. */
  STORE_USER_BY_NAME,   /* in: username. out: user, pwhash. PARLEY_ENOT_FOUND. */
  STORE_SESSION_CREATE, /* in: user_id, token_hash, now, expires_at. */
  STORE_SESSION_GET,    /* in: token_hash, now. out: user, expires_at.
                           PARLEY_EUNAUTHORIZED if unknown or expired. */
  STORE_SESSION_DELETE, /* in: token_hash. Deleting an unknown session is not an error. */
  STORE_CHAT_CREATE,    /* in: user_id (becomes owner), title, is_public, max_participants,
                           slug ("" = derive from title; a taken slug gets a suffix), now.
                           out: chat (my_role = owner). */
  STORE_CHAT_GET,       /* in: user_id, slug. out: chat (with my_role and participant_count).
                           PARLEY_ENOT_FOUND, or PARLEY_EFORBIDDEN per ACL_CHAT_VIEW. */
  STORE_CHAT_LIST,      /* in: user_id. out: chats/n_chats (chats the user participates in,
                           newest lastActivity first), and for each the last message in
                           last_msgs[i] (seq 0 if none) and unread[i]. Also in: now; out:
                           invites/n_invites, the user's pending invitations unexpired at `now`
                           (newest first). */
  STORE_CHAT_JOIN,      /* in: user_id, slug, now. out: chat, joined (1 if newly added),
                           member_ids (participants after the join, also when joined = 0).
                           ACL_CHAT_JOIN; PARLEY_ECHAT_FULL at the cap. A newly added user's
                           pending invitation to the chat is settled as accepted (expired if its
                           time was up) and returned in invites/n_invites, to be announced. */
  STORE_MSG_APPEND,     /* in: user_id, slug, body, client_msg_id, now.
                           out: chat (slug, id, last_seq), msg, duplicate (1 if client_msg_id was
                           already used by this user in this chat: msg is the original).
                           ACL_MSG_SEND. Moves the author's read marker to the new seq: one's
                           own messages are never unread. */
  STORE_MSG_HISTORY,    /* in: user_id, slug, before (0 = newest), limit.
                           out: chat, msgs/n_msgs oldest first (seq < before), has_more.
                           ACL_CHAT_READ. */
  STORE_MSG_SINCE,      /* in: user_id, slug, since, limit.
                           out: chat (last_seq), msgs/n_msgs (seq > since, oldest first), reset.
                           If more than `limit` messages follow `since`, reset = 1 and msgs is
                           the newest `limit` messages. ACL_CHAT_READ. */
  STORE_READ_SET,       /* in: user_id, slug, seq. Moves the user's read marker forward (never
                           back; clamped to the chat's last_seq). out: chat, read_seq (the marker
                           after the call). ACL_CHAT_READ. */

  /* --- membership and invitations (issue 3). Every op that changes who is in a chat returns
   * out.member_ids: the participants after the change, so app/ can tell them live. ---
   * Every chat returned carries invite_policy and archived; an archived chat (its last
   * participant left) is PARLEY_ENOT_FOUND to every op that names it. JOIN, LEAVE, REMOVE and an
   * ACCEPT that adds someone move chats.last_activity to `now`; UPDATE and SET_ROLE do not (they
   * change settings, not membership). out.errmsg, when set, explains a failure in one sentence
   * for the client, and is kept when the other outputs are zeroed. */
  STORE_CHAT_UPDATE,    /* in: user_id, slug, update_mask and the fields it names (title,
                           is_public, max_participants (0 removes the cap), invite_policy).
                           out: chat, member_ids. ACL_CHAT_UPDATE; a cap below the current
                           participant count is PARLEY_ECONFLICT with out.errmsg. */
  STORE_CHAT_LEAVE,     /* in: user_id, slug, now. out: chat (after), member_ids (those left),
                           new_owner (id 0 if ownership did not move: acl_successor picks),
                           archived (1 if the last participant left). ACL_CHAT_LEAVE.
                           Archiving keeps the chat's data and revokes its pending invitations,
                           which come back in invites/n_invites (status revoked) to be announced. */
  STORE_CHAT_REMOVE,    /* in: user_id (actor), slug, target (username), now. out: chat, user
                           (the removed), member_ids (remaining). acl_can_remove; a target who is
                           not a participant is PARLEY_ENOT_FOUND; removing oneself is
                           PARLEY_EBAD_REQUEST (use leave). The target's pending invitation to
                           the chat, if any, is revoked (expired if its time was up) and returned
                           in invites/n_invites: only an invitation made after the removal lets
                           them back in. */
  STORE_CHAT_SET_ROLE,  /* in: user_id (actor), slug, target, role, now. out: chat, user
                           (target), role, member_ids; role == owner transfers ownership and the
                           actor becomes admin (out.new_owner = target). acl_can_set_role; not a
                           participant, or the owner naming themselves: PARLEY_EFORBIDDEN; target
                           unknown or not in the chat: PARLEY_ENOT_FOUND. */
  STORE_CHAT_MEMBERS,   /* in: user_id, slug, limit (0: all), since (with a limit: a user id).
                           out: chat, members/n_members (oldest first, ties by user id; with a
                           limit: ids above `since` by id, at most `limit`, has_more).
                           With in.compact: no members; instead member_ids, member_reads (each
                           one's lastSeen) and data (STORE_USERNAME_MAX + 1 bytes per member:
                           the username), 49 bytes a member instead of ~410 (a sub storm into a
                           1,000-member chat held 1,000 such answers at once: 445 MB).
                           ACL_CHAT_VIEW. */
  STORE_USERS_SEARCH,   /* in: user_id, query (prefix, case-insensitive, on username and display
                           name), slug ("" = none), limit (<= 20). out: hits/n_hits ordered by
                           username, the caller excluded; participant/invited marks refer to
                           the chat in.slug when the caller is a participant of it (else they are
                           0; an unknown slug is no error). Case folding is ASCII only, as
                           SQLite's lower(); '%' and '_' are plain characters. A limit of 0 or
                           over STORE_SEARCH_MAX means STORE_SEARCH_MAX; query is 1 to
                           STORE_DISPLAY_NAME_MAX bytes. `now` decides which invitations count. */
  STORE_INVITE_CREATE,  /* in: user_id (inviter), slug, target, expires_at, now. out: invite,
                           created (0: an unexpired pending invitation existed and is returned),
                           chat. Not found: chat (or archived) or target. acl_can_invite with
                           the chat's policy; target already a participant: PARLEY_ECONFLICT.
                           The caller not in the chat: PARLEY_EFORBIDDEN. expires_at must be
                           after now. A pending one already past its expiry is marked expired
                           and a new one is created. */
  STORE_INVITE_ACCEPT,  /* in: user_id (invitee), invite_id, now. out: invite, chat (after the
                           join), joined, member_ids. Someone else's invitation:
                           PARLEY_ENOT_FOUND; invite_transition decides (PARLEY_EEXPIRED,
                           PARLEY_ECONFLICT); the cap is checked now (PARLEY_ECHAT_FULL, the
                           invitation stays pending). An expired one is refused but left for
                           STORE_INVITE_SWEEP to mark and announce (a failed request writes
                           nothing). Already a participant: accepted, joined = 0. */
  STORE_INVITE_DECLINE, /* in: user_id (invitee), invite_id, now. out: invite. Someone else's:
                           PARLEY_ENOT_FOUND; no longer pending: PARLEY_ECONFLICT. */
  STORE_INVITE_REVOKE,  /* in: user_id, invite_id, now. out: invite. acl_can_revoke (the
                           inviter while a participant, owners, admins): else PARLEY_EFORBIDDEN,
                           but PARLEY_ENOT_FOUND to someone neither in the chat nor the inviter.
                           No longer pending: PARLEY_ECONFLICT. */
  STORE_INVITE_LIST,    /* in: user_id, now. out: invites/n_invites: the user's incoming pending
                           unexpired invitations, then the pending ones of chats where the user
                           is owner or admin, or that the user sent (outgoing; only while still
                           in the chat, as revoking needs that). Newest first within each part,
                           at most STORE_LIMIT_MAX in all. */
  STORE_INVITE_SWEEP,   /* in: now, limit. Marks pending invitations whose expires_at passed as
                           expired. out: invites/n_invites (those just expired). limit is
                           1..STORE_LIMIT_MAX (the oldest due first); has_more = 1 when more
                           are due. */

  /* --- presence (issue 4) --- */
  STORE_PRESENCE_AUDIENCE, /* in: user_id. out: member_ids: every user sharing a chat (not
                              archived) with user_id, user_id excluded. */
  STORE_USER_SEEN,      /* in: user_id, last_seen (Unix ms). Stores it. */
  STORE_SESSION_SWEEP,  /* in: now, limit (1..STORE_LIMIT_MAX). Deletes up to `limit` sessions
                           whose expires_at <= now. out: n_deleted, has_more (1 when the batch
                           was full: more may be due). */

  /* --- the message model (issue 17, store_rules_msg.c). Each appends one entry to the chat's
   * sequence and returns it in out.msg, with out.chat (member_gen) for the fan-out. --- */
  STORE_MSG_EDIT,       /* in: user_id, slug, seq, body, now. The author only (PARLEY_EFORBIDDEN);
                           a missing, deleted or non-text seq: PARLEY_ENOT_FOUND. Mentions are
                           resolved again from the new body: out.member_ids the users it
                           mentions now and did not before, and with any, msgs[0] the edited
                           message (folded). */
  STORE_MSG_DELETE,     /* in: user_id, slug, seq, now. The author, owners and admins. Erases the
                           body of the message and of its edit entries. */
  STORE_REACT,          /* in: user_id, slug, seq, emoji (in.query), on, now. out.msg.seq 0 when
                           the toggle changed nothing. PARLEY_ECONFLICT past STORE_REACTIONS_MAX. */
  STORE_DM_OPEN,        /* in: user_id, target (username), now. out: chat (is_dm, peer), joined
                           (1: created now), member_ids. */
  /* --- live list, notifications, directory, profile (issue 18) --- */
  STORE_CHAT_ACTIVITY,  /* in: slug, user_id (0: every participant; else that one, if a
                           participant). out: chat (seen by nobody: my_role none), member_ids
                           with member_reads[i] their unread text and member_mentions[i]
                           their unread mentions (each at most 1000), and with a
                           user_id, msg: the newest message (seq 0 if none). With reader_ids,
                           only the participants it lists. Internal: no ACL. */
  STORE_NOTIFY_SET,     /* in: user_id, slug, level (enum store_notify, not DEFAULT). out: chat
                           (notify set). Not a participant: PARLEY_EFORBIDDEN. */
  STORE_CHAT_BROWSE,    /* in: user_id, query (NULL: none; else folded word-start prefix of the
                           title), before (0: newest; else last_activity < before, or equal to
                           it and id below slug's when slug names a chat: the previous page's
                           last, so (last_activity, id) is the keyset and ties never skip), limit
                           (1..STORE_BROWSE_MAX). out: chats/n_chats public and not archived,
                           newest last_activity first (my_role: the caller's), has_more. */
  STORE_USER_UPDATE,    /* in: user_id, user.display_name. out: user, member_ids (everyone who
                           shares a chat with the user, the user excluded). */
  STORE_PASSWORD_SET,   /* in: user_id, pwhash, token_hash (the session kept). out: hashes /
                           n_hashes: the user's other sessions, deleted. */
  STORE_AVATAR_SET,     /* in: user_id, query (the avatar's name; NULL: remove it), data /
                           data_len (the image; with a name). out: user (after), member_ids (as
                           USER_UPDATE). An avatar no user has any more is deleted. */
  STORE_AVATAR_GET,     /* in: query (name). out: data/data_len. PARLEY_ENOT_FOUND. */
  /* --- search (issue 18) --- */
  STORE_MSG_SEARCH,     /* in: user_id, query (1..SEARCH_QUERY_MAX bytes, core/search_query.h),
                           slug ("" = every chat the user is a participant of now), before (the
                           number of results already seen: 0 for the first page), limit
                           (1..STORE_MSG_SEARCH_MAX). out: found/n_found, best ranked first, and
                           has_more. Only chats the user is a participant of now are searched;
                           a named chat must pass ACL_CHAT_READ (then the same). before + limit
                           is at most STORE_MSG_SEARCH_RANKS (the rank limit: PARLEY_EBAD_REQUEST
                           past it). A query without a word is PARLEY_EBAD_REQUEST; one that
                           takes longer than STORE_MSG_SEARCH_BUDGET_MS is PARLEY_EUNAVAILABLE
                           with out.errmsg (nothing else waits for it that long). */
  /* --- streamed messages (issue 19, store_rules_stream.c) --- */
  STORE_STREAM_START,   /* in: user_id, slug, client_msg_id, reply_to, now. As MSG_APPEND with an
                           empty body, streaming: out: chat, msg, duplicate. PARLEY_ECONFLICT past
                           STORE_STREAMS_OPEN_MAX open streams in the chat. */
  STORE_STREAM_APPEND,  /* in: user_id, slug, seq, body (the delta), offset, now. out: chat
                           (member_gen), stream_len (after), appended (0: an idempotent retry).
                           Only the author (PARLEY_EFORBIDDEN); not a stream: PARLEY_ENOT_FOUND;
                           core/stream.h's stream_append_check decides (PARLEY_ECONFLICT with
                           out.stream_len, PARLEY_ETOO_LARGE). */
  STORE_STREAM_END,     /* in: user_id, slug, seq, state (done, error; interrupted with
                           since: only if the last append is at or before `since`, the sweep's
                           cutoff, and then in.user_id must be the author, no access check),
                           now. out: chat, msg (the stream.end entry), msgs[0] (the stream,
                           folded: n_msgs 1). Ended already: PARLEY_ECONFLICT. */
  STORE_STREAM_DUE,     /* in: since (cutoff), limit (1..STORE_LIMIT_MAX). out: found/n_found:
                           streams whose last append is at or before `since`, oldest first
                           (msg: seq, author with last_seen, stream_len; slug). */
  /* --- bots (issue 19, store_rules_bots.c). in.user_id is the person who owns them; a bot
   * (users.bot) owns none: PARLEY_EFORBIDDEN. in.target names a bot of in.user_id's, else
   * PARLEY_ENOT_FOUND (also for another person's or a deleted one). Each returns the bot in
   * out.bots[0]. --- */
  STORE_BOT_CREATE,     /* in: user (username, display_name), token_hash, expires_at (its first
                           session), webhook_url (NULL: none), webhook_secret, now. Taken username:
                           PARLEY_ECONFLICT; STORE_BOTS_MAX bots already: PARLEY_ECONFLICT. */
  STORE_BOT_LIST,       /* in: user_id. out: bots/n_bots, oldest first. */
  STORE_BOT_TOKEN,      /* in: target, token_hash, expires_at, now. Ends every session of the bot
                           (out: hashes/n_hashes) and starts the one of token_hash. */
  STORE_BOT_UPDATE,     /* in: target, update_mask (STORE_UPD_BOT_*), user.display_name,
                           webhook_url (NULL removes it). out: also user and member_ids as
                           USER_UPDATE when the name changed. */
  STORE_BOT_SECRET,     /* in: target, webhook_secret. */
  STORE_BOT_DELETE,     /* in: target, now. Ends its sessions (out: hashes), removes its webhook,
                           marks it deleted (its username stays taken). out: chats/n_chats (slug
                           only): the chats it is still in, for app/ to leave them. */
  STORE_BOT_HOOKS,      /* in: slug, seq, user_id (the author). out: bots/n_bots: the bots with a
                           webhook that message seq of chat slug mentions, or that are the other
                           side of the DM it was sent in, the author excluded; out.chat (slug,
                           title, is_dm). Internal: no ACL. */
  STORE_OP__COUNT
};

struct store_req;
typedef void (*store_cb)(struct store_req *req);

#define STORE_DEFER 1 /* a status only exec_batch sets: not run, retry in the next batch */

struct store_req {
  enum store_op op;
  int status;    /* set before the callback: 0 or a PARLEY_E* code */
  store_cb cb;   /* called on the loop thread */
  void *data;    /* caller's */
  uint64_t t_submit_ns; /* set by store_submit(): the request's latency is measured from here */
  void *ctx;     /* caller's second pointer (app/ keeps the op's reply context here) */
  /* Requests with the same non-NULL order key take effect, and complete, in submission order,
   * even on different lanes (app/ uses the client, so one socket's ops never overtake each
   * other in the database). Borrowed; it must stay unique while any of them is in flight. */
  const void *order;
  /* 1: the store may refuse it at store_submit() when it is behind (store_set_admission()): a
   * client's request, which the client can retry. 0: internal work that must run (sweeps,
   * presence writes). */
  int sheddable;

  struct {       /* inputs: filled by the caller; strings are owned by the request */
    int64_t now; /* Unix ms, from the caller's clock */
    int64_t user_id;
    struct store_user user;
    char *pwhash;
    uint8_t token_hash[STORE_TOKEN_HASH_LEN];
    int64_t expires_at;
    char slug[STORE_SLUG_MAX + 1];
    char *title;
    int is_public;
    int max_participants;
    char *body;
    char client_msg_id[STORE_CLIENT_MSG_ID_MAX + 1];
    int64_t before, since, seq;
    int64_t last_seen;              /* USER_SEEN: the user's lastSeen, Unix ms */
    int limit;
    char target[STORE_USERNAME_MAX + 1]; /* a username */
    enum chat_role role;
    enum invite_policy invite_policy;
    unsigned update_mask;
    char *query;
    int64_t invite_id;
    int64_t reply_to;               /* MSG_APPEND: the seq replied to, 0 = none */
    int on;                         /* REACT */
    int level;                      /* NOTIFY_SET: enum store_notify */
    int compact;                    /* CHAT_MEMBERS: ids, names and lastSeen only (see there) */
    unsigned char *data;            /* AVATAR_SET: the image (owned) */
    size_t data_len;
    int64_t offset;                 /* STREAM_APPEND */
    int state;                      /* STREAM_END: enum stream_state */
    int with_streams;               /* MSG_SINCE: also out.streams (the sub snapshot) */
    char *webhook_url;              /* BOT_CREATE, BOT_UPDATE (owned; NULL: none) */
    char *webhook_secret;           /* BOT_CREATE, BOT_SECRET (owned) */
    char *reader_ids;               /* CHAT_ACTIVITY (owned): NULL, or "id,id,..." (decimal):
                                       read only those of the participants */
  } in;

  struct {       /* outputs: filled by the store thread; freed by store_req_free() */
    struct store_user user;
    char *pwhash;
    int64_t expires_at;
    struct store_chat chat;
    struct store_msg msg;
    int duplicate;
    int joined;
    struct store_msg *msgs;
    size_t n_msgs;
    int has_more;
    int reset;
    struct store_chat *chats;
    struct store_msg *last_msgs;
    int64_t *unread;
    size_t n_chats;
    int64_t read_seq; /* STORE_READ_SET: the read marker after the call */
    int64_t n_deleted; /* STORE_SESSION_SWEEP: sessions deleted */
    struct store_member *members;
    size_t n_members;
    struct store_user_hit *hits;
    size_t n_hits;
    struct store_msg_hit *found;    /* MSG_SEARCH */
    size_t n_found;
    struct store_invite invite;
    struct store_invite *invites;   /* CHAT_LIST also fills this: incoming pending invitations */
    size_t n_invites;
    int created;
    int64_t *member_ids;            /* CHAT_JOIN and the membership ops: participants after */
    size_t n_member_ids;
    struct store_user new_owner;
    int archived;
    enum chat_role role;
    char errmsg[128];               /* detail for the client when status says not enough */
    struct store_msg notice;        /* membership ops: the notice entry appended (seq 0: none) */
    int64_t *member_reads;          /* CHAT_ACTIVITY: unread text of member_ids[i] (<= 1000) */
    int64_t *member_mentions;       /* CHAT_ACTIVITY: unread mentions of member_ids[i] (<= 1000) */
    uint8_t (*hashes)[STORE_TOKEN_HASH_LEN]; /* PASSWORD_SET: the sessions deleted */
    size_t n_hashes;
    unsigned char *data;            /* AVATAR_GET: the image */
    size_t data_len;
    struct store_msg *streams;      /* MSG_SINCE with_streams: the chat's open streams, folded */
    size_t n_streams;
    int64_t stream_len;             /* STREAM_APPEND: the body's length after it */
    int appended;                   /* STREAM_APPEND: 1 stored now, 0 a retry */
    struct store_bot *bots;         /* the BOT_* ops */
    size_t n_bots;
  } out;

  struct store_req *next; /* queue link, private to the store */
  int lane;               /* the lane it runs on, private to the store */
  int defers;             /* times exec_batch deferred it (STORE_DEFER); backends read it */
};

struct store; /* opaque: queue, thread, backend */

/* Synchronous backend method table; every function runs on the store thread only.
 * `be` is the backend's own state from open(). */
struct store_stats;
struct store_backend_ops {
  const char *name;
  /* Connections (store threads, lanes) the store opens by default; 0 or 1: exactly one, and
   * the store never opens more (SQLite: one writer). Each runs open() on its own thread. */
  int conns;
  /* Opens (creating and migrating as needed) the database at `uri` (borrowed). */
  int (*open)(void **be, const char *uri, enum store_durability durability);
  void (*close)(void *be);
  int (*begin)(void *be);
  int (*commit)(void *be);
  int (*rollback)(void *be);
  int (*savepoint)(void *be);         /* before each request of a batch */
  int (*release)(void *be, int undo); /* after it: undo != 0 rolls the request back */
  /* Optional (NULL: a savepoint around every request). The changes made in the open transaction
   * so far, as a count that only grows, or -1 if the transaction is gone (rolled back under the
   * request). With it, store.c runs a batch's requests without savepoints and compares the count
   * around each request: a failed request that changed nothing leaves nothing to undo, and one
   * that did makes store.c roll the batch back and run it again with savepoints. */
  int64_t (*changes)(void *be);
  /* Executes one request inside the open transaction; returns 0 or PARLEY_E*. */
  int (*exec)(void *be, struct store_req *req);
  /* Optional (NULL: store.c runs savepoint, exec, release per request). Executes the whole
   * `batch` (borrowed) inside the open transaction with the same contract: sets each request's
   * status, and a failed request leaves nothing behind. Returns 0, or an error when the
   * transaction is in doubt (the batch then fails). Lets a remote backend send several requests
   * in one round trip. A request it did not run may get status STORE_DEFER: it goes back to
   * the head of its lane's queue, in order, and runs in the next batch (req->defers counts the
   * times, so the backend can stop deferring). Deferring one request of a chat means deferring
   * every request of that chat in the batch, or they would overtake each other. */
  int (*exec_batch)(void *be, struct store_req *batch);
  /* Optional: upkeep that may wait for a quiet moment (SQLite: indexing new messages for
   * msg.search). Called on the lane's thread, outside any transaction, right after a batch's
   * completions were handed over and only when nothing else waits in the lane's queue, so it
   * never delays the acknowledgement of a request already taken. Runs its own transaction.
   * Returns 0 when nothing is left to do, else the nanoseconds after which to call it again
   * should no request come first. */
  uint64_t (*idle)(void *be);
  /* Optional, for a backend with a write-ahead log of its own to bound (SQLite). Both are
   * called from the loop thread, on lane 0's handle, between open and close. */
  void (*set_wal_max)(void *be, uint64_t bytes);
  void (*wal_stats)(void *be, struct store_stats *out); /* fills the wal_ and checkpoints_ */
};

extern const struct store_backend_ops store_sqlite_ops;
extern const struct store_backend_ops store_pg_ops; /* libpq; several nodes may share a database */

/* Allocates a zeroed request for `op`. Returns NULL on out-of-memory. */
struct store_req *store_req_new(enum store_op op);

/* Frees a request and every input and output it owns. NULL is fine. */
void store_req_free(struct store_req *req);

/* Frees the heap parts of one message (not `m` itself). */
void store_msg_dispose(struct store_msg *m);

/* Opens the store for `uri` (borrowed): a postgres:// or postgresql:// URI (libpq's syntax)
 * selects PostgreSQL, anything else is an SQLite file path (or "sqlite://path"). Starts the store
 * threads and hooks their completion handle into `loop`. `conns`: connections to open when the
 * backend allows several (0: its default; 1: one, every request in submission order; at most
 * 16). Returns 0 and sets *out, or a PARLEY_E* code (PARLEY_EUNAVAILABLE when the database cannot
 * be reached or written). */
int store_open(struct store **out, uv_loop_t *loop, const char *uri,
               enum store_durability durability, int conns);

/* Like store_open() with an explicit backend (`ops`: static storage, borrowed for the life of the
 * store; `uri` borrowed, copied). store_open() picks the backend from the uri and calls this;
 * tests call it to wrap a backend with fault injection. */
int store_open_backend(struct store **out, uv_loop_t *loop, const struct store_backend_ops *ops,
                       const char *uri, enum store_durability durability, int conns);

/* Number of connections (lanes) the store runs. */
int store_conns(const struct store *s);

/* Queues `req` (ownership passes to the store until cb, then to cb). cb runs on the loop thread
 * after the request's transaction committed or failed. Never calls cb synchronously. Call from
 * the loop thread: the request starts at the end of the loop's turn, with everything else the
 * turn submitted, so the loop must run for it to start.
 * Returns 0, or PARLEY_EUNAVAILABLE after store_close() began, or for a req->sheddable request
 * while the store is behind (store_set_admission()); cb is then never called and the caller
 * still owns req. */
int store_submit(struct store *s, struct store_req *req, store_cb cb, void *data);

/* Admission control, so that past its capacity the store answers "not now" at once instead of
 * queueing without bound (every queued request holds memory, and its client waits for seconds).
 * A sheddable request is refused while the store holds `max_queued` sheddable requests (>= 1;
 * submitted, callback not yet run; internal work does not count), or while the oldest request
 * waiting for a lane has waited `max_wait_ms` (>= 1). Defaults: STORE_ADMIT_QUEUED and STORE_ADMIT_WAIT_MS. Call from the loop thread. */
#define STORE_ADMIT_QUEUED 8192
#define STORE_ADMIT_WAIT_MS 500
void store_set_admission(struct store *s, size_t max_queued, uint64_t max_wait_ms);

/* Number of requests queued or executing (for /metrics and back-pressure). */
size_t store_pending(const struct store *s);

/* Finishes every queued request (their callbacks still run on the next loop turns), stops the
 * thread, closes the database and frees `s`. Call from the loop thread; the loop must keep
 * running until `done` is called (NULL allowed). */
void store_close(struct store *s, void (*done)(void *arg), void *arg);

/* Commit timing for /metrics: the last batch sizes and commit latencies are folded into these. */
struct store_stats {
  uint64_t batches;
  uint64_t requests;
  uint64_t commit_us_total;
  uint64_t commits;           /* batches that reached COMMIT */
  uint64_t commit_ns_total;   /* their COMMIT time, summed */
  uint64_t request_ns_total;  /* submit to callback, summed over every completed request */
  uint64_t requests_done;     /* completed requests (callbacks run) */
  /* SQLite's WAL (0 for PostgreSQL): see store_sqlite_ckpt.c. */
  uint64_t wal_bytes;         /* size of the -wal file now */
  uint64_t wal_max;           /* its bound (store_set_wal_max()) */
  uint64_t checkpoints_ok;    /* the checkpointer's checkpoints that ran (PASSIVE, RESTART) */
  uint64_t checkpoints_busy;  /* the checkpointer's, refused or cut short by a lock */
  uint64_t wal_restarts;      /* the checkpointer's RESTARTs that ran: the WAL starts over */
  uint64_t wal_forced;        /* checkpoints the writer ran itself, the checkpointer behind */
  uint64_t wal_frames;        /* frames (pages) the commits appended to the WAL, in all */
  uint64_t ckpt_holds;        /* times the writer waited for the checkpointer's RESTART */
  uint64_t ckpt_hold_ns;      /* how long, summed */
  uint64_t search_flushes;    /* msg.search's index: flushes of pending entries (SQLite) */
  uint64_t search_flush_ns;   /* their time, summed */
  uint64_t search_flush_max_ns; /* the longest */
  uint64_t search_merges;       /* steps merging the index's segments, when the store is idle */
  uint64_t search_merge_ns;     /* their time, summed */
  uint64_t shed;              /* sheddable requests refused by admission control */
  uint64_t queued;            /* sheddable requests the store holds now (not yet called back) */
  uint64_t oldest_wait_ns;    /* how long the oldest request in a lane's queue has waited */
};
void store_get_stats(const struct store *s, struct store_stats *out);

/* Bounds the write-ahead log of an SQLite store to about `bytes` (PARLEY_WAL_MAX; 64 MiB until
 * called) under any sustained load; see store_sqlite_ckpt.c. No effect on PostgreSQL. Call from
 * the loop thread. */
void store_set_wal_max(struct store *s, uint64_t bytes);

struct hist;
/* Latency of the last one to two minutes, in nanoseconds, into caller's histograms (either may
 * be NULL): `commit` has one value per batch (the COMMIT alone, on the store thread), `request`
 * one per request (store_submit() to the start of its callback: queueing, execution and commit).
 * `now_ns` is clock_mono_ns(). */
void store_get_latency(const struct store *s, uint64_t now_ns, struct hist *commit,
                       struct hist *request);

/* Derives a URL-safe slug from `title` (borrowed UTF-8; NULL is treated as ""): ASCII letters
 * lower-cased and digits kept, every other run of bytes becomes one '-', trimmed of '-', cut to
 * STORE_SLUG_DERIVED_MAX bytes, "chat" if nothing is left. Writes the NUL-terminated result to
 * `out` (caller's buffer of STORE_SLUG_MAX + 1 bytes). */
void store_slug_derive(const char *title, char out[STORE_SLUG_MAX + 1]);

/* Returns 1 if `slug` (borrowed) is a valid explicit slug: 1..STORE_SLUG_MAX bytes of [a-z0-9-],
 * starting and ending with a letter or digit; else 0. */
int store_slug_valid(const char *slug);

#endif
