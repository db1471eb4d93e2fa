/* rooms.h - a chat open on this node (struct room) and the sockets subscribed to it
 * (struct sub): the data model of the live layer. rooms.c keeps the rooms and their live state
 * that is never a message (typing, activeUsers, other nodes' share of both); subs.c moves
 * messages through the subscriptions (subs.h).
 */
#ifndef PARLEY_APP_ROOMS_H
#define PARLEY_APP_ROOMS_H

#include <jansson.h>
#include <stdint.h>

#include "app/state.h"
#include "core/typing.h"
#include "net/outq.h"

/* A socket's subscription to a chat. Live messages are delivered when live; while the replay
 * read is in flight they wait in `held`, and the seam is closed by seq (no gap, no duplicate). */
struct sub {
  struct room *room;
  struct client *client;
  uint32_t gen;                /* bumped by each (re)sub: stale replies are ignored */
  int live;                    /* authorized by the store and receiving messages */
  int counted;                 /* counted in the room's activeUsers (only once authorized) */
  int64_t next_seq;            /* the next seq this socket should receive */
  int catching_up;             /* a store read fills a gap: messages wait in `held` meanwhile */
  int recheck;                 /* the bus may have missed messages since this sub's last read */
  int fenced;                  /* a removal of this user from the chat may be under way on some
                                  node: everything waits in `held` (cluster.c) */
  int draining;                /* sub_drain_held() is running for it */
  int gap_listed;              /* in app->gap_subs: a seq is missing since gap_deadline - wait */
  uint64_t gap_deadline;       /* loop time after which the store fills the gap */
  struct sub *gprev, *gnext;   /* app->gap_subs */
  char *presence;              /* participants' presence, read just before the replay: the
                                  first PARLEY_SUB_PRESENCE_MAX not offline (issue 15), encoded
                                  (a JSON array of presence_len bytes, of n_presence) */
  size_t presence_len, n_presence;
  int online;                  /* how many participants are not offline, as of that read */
  int own_read;                /* this sub's round trip reads the participants itself (else it
                                  takes the room's list, when its replay shows it holds) */
  int64_t member_gen;          /* the chat's member_gen when the store last confirmed access */
  struct held_frame {
    int64_t seq;
    int64_t mgen;              /* the member_gen it was committed with */
    struct outq_chunk *frame;
    int delta;                 /* issue 19: a msg.delta of stream `seq`, at `offset` */
    int64_t offset;
  } *held;
  size_t n_held, cap_held;
  struct sub *rprev, *rnext;   /* room->subs */
  struct sub *cprev, *cnext;   /* client->subs */
};

/* A user with the chat open, and on how many sockets. */
struct room_active {
  int64_t user_id;
  int subs;
};

#define ROOM_DIRTY_TYPING 1u
#define ROOM_DIRTY_ACTIVE 2u
#define ROOM_DIRTY_PUBLISH 4u /* this node's own state changed: other nodes are told */
#define ROOM_DIRTY_REMOTE 8u  /* (to app__room_mark) the change came from another node */

struct room_remote;
struct proto_raw;

/* An encoding kept for the replies that find it made from the same inputs (issue 15: in a
 * join storm 1,000 sub replies each encoded the same first 100 presences and, twice, the same
 * first 100 openers). json (len bytes) and key (the n_key values it was made from) are owned;
 * valid 0: json is only the latest encoding, not to be reused. gen and count are its user's. */
struct room_enc {
  char *json;
  size_t len;
  int64_t *key;
  size_t n_key;
  int valid;
  uint64_t gen;
  int count;
};

struct room {
  char slug[STORE_SLUG_MAX + 1];
  struct sub *subs;
  size_t n_subs;
  struct typing_set typing;    /* who types here now (core/typing.h) */
  struct room_active *active;  /* activeUsers, in the order they opened the chat */
  size_t n_active, cap_active;
  struct room_remote *remote;  /* other nodes' typers and openers (rooms.c) */
  unsigned dirty;              /* ROOM_DIRTY_*: events to send before the loop sleeps */
  uint64_t active_sent;        /* loop ms of the last chat.active (churn.h throttles it) */
  int bus_ready;               /* the bus channel of the chat is subscribed and effective */
  /* The participants as a sub last read them (ids, lastSeen, usernames of STORE_USERNAME_MAX + 1
   * bytes; owned), good while the chat's member_gen and participant_count are gen and count
   * (every join changes the count, every leave or removal the gen; usernames never change).
   * Later subs skip the read and check the two against their replay's chat row (ops_live.c;
   * issue 15: 1,000 subs into a 1,000-member chat read a million rows). At most 49 bytes a
   * participant, while the room lives. ids NULL: none kept; reading: one is on its way. */
  struct {
    int64_t gen;
    uint64_t version; /* bumped each time the list is replaced */
    int count;
    int reading;
    size_t n_ids;
    int64_t *ids, *seen;
    unsigned char *names;
  } members;
  struct room_enc active_enc;   /* the first PARLEY_SUB_PRESENCE_MAX activeUsers (rooms.c) */
  struct room_enc presence_enc; /* the sub reply's presence page (ops_live.c) */
  struct room *dnext;          /* app->dirty_rooms */
  UT_hash_handle hh;           /* app->rooms by slug */
};

/* The room of chat `slug` here, or NULL; with create, a new one (NULL only without memory),
 * whose chat's bus channel is subscribed from now on. Borrowed. */
struct room *app__room_find(struct app *a, const char *slug);
struct room *app__room_get(struct app *a, const char *slug);
/* Frees a room whose last subscription ended (its pending events are dropped). */
void app__room_release(struct app *a, struct room *r);
/* Frees every room (shutdown). */
void app__rooms_free_all(struct app *a);
/* Marks the room's typing/activeUsers (ROOM_DIRTY_*) for the events sent before the loop
 * sleeps. */
void app__room_mark(struct app *a, struct room *r, unsigned what);
/* A subscription of user_id became authorized (counted) / ended. */
void app__room_sub_added(struct app *a, struct room *r, int64_t user_id);
void app__room_sub_removed(struct app *a, struct room *r, int64_t user_id);
/* The typers of a room (new reference; *others: how many more, a new reference); r NULL:
 * nobody. */
json_t *app__room_typing_json(struct app *a, struct room *r, json_t **others);
/* The first `max` of a room's activeUsers (new reference); *total: how many there are (issue 15:
 * a sub reply carries a bounded list and the count). */
json_t *app__room_active_json_max(struct app *a, const struct room *r, size_t max, size_t *total);
/* The same for max PARLEY_SUB_PRESENCE_MAX, encoded: borrowed from r (r NULL: "[]"), good until
 * the next call; encoded again only when the openers or their names changed. NULL without
 * memory. *len: its length; *total: as above. */
const char *app__room_active_enc(struct app *a, struct room *r, size_t *len, size_t *total);
/* Whether e holds an encoding made from key[0..n-1]. */
int app__room_enc_same(const struct room_enc *e, const int64_t *key, size_t n);
/* Makes json (len bytes) e's encoding, made from key[0..n-1] (key NULL: not to be reused).
 * Takes both. */
void app__room_enc_keep(struct room_enc *e, char *json, size_t len, int64_t *key, size_t n);
/* Sets o's activeUsers (the first PARLEY_SUB_PRESENCE_MAX users with room r open; r NULL:
 * nobody) and activeCount (how many have it open). o stays the caller's. */
void app__room_active_set(struct app *a, const struct room *r, json_t *o);
/* A chat object for the wire with the live activeUsers (bounded) and activeCount of its room. */
json_t *app__chat_json(struct app *a, const struct store_chat *c);
/* The same encoded, from chat (a chat object, stolen; its other fields stay as they are) and
 * the room of its slug, whose kept encoding of activeUsers is added as is. Returns a malloc'ed
 * string (caller frees; *len its length), NULL without memory. */
char *app__chat_enc(struct app *a, json_t *chat, size_t *len);
/* The same with the activeUsers already encoded (active, borrowed; NULL json: fails) and their
 * count, for a caller that needs the encoding itself too. */
char *app__chat_enc_with(json_t *chat, const struct proto_raw *active, size_t total, size_t *len);
/* Sends the events of every dirty room (net's on_before_flush). */
void app__rooms_flush(struct app *a);
/* Expires typers, here and other nodes'. */
void app__rooms_tick(struct app *a);
/* Cluster events (struct cluster_events): another node's typers and openers of a chat (state
 * borrowed: {typing: [{user, ttl}], active: [user]}, NULL: none), a node asking for this one's,
 * a node gone, the bus down. */
void app__rooms_remote_state(struct app *a, const char *slug, const char *node, json_t *state);
void app__rooms_query(struct app *a, const char *slug);
void app__rooms_forget_node(struct app *a, const char *node);
void app__rooms_bus_down(struct app *a);

#endif
