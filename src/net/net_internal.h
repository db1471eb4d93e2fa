/* net_internal.h - state shared by the files of net/ (server.c, http.c, ws.c); not exported. */
#ifndef PARLEY_NET_INTERNAL_H
#define PARLEY_NET_INTERNAL_H

#include <llhttp.h>
#include <utlist.h>
#include <wslay/wslay.h>

#include "core/ratelimit.h"
#include "net/net.h"

#define NET__MAX_IOV 64 /* chunks handed to one write */
/* What one queue entry costs besides its bytes: the chunk's malloc block and header and the
 * ring slot. Counted against the caps so that a flood of tiny frames (2-byte pongs) is bounded
 * by the memory it really holds, not by its payload alone. */
#define NET__ENTRY_COST 48
#define NET__CLOSE_LINGER_MS 5000 /* how long a close may take before we hang up */
/* A closing HTTP connection reads and discards what the client still sends (the rest of a
 * refused body) for at most this long and this many bytes, so the client reads our answer
 * instead of a reset (a close with unread input sends RST, which discards the answer). */
#define NET__HTTP_LINGER_MS 2000
#define NET__HTTP_LINGER_BYTES (2u << 20)

struct net__http; /* parser state, only while the connection speaks HTTP */

struct net_conn {
  uv_tcp_t tcp;
  struct net_server *srv;
  void *app_data;
  struct net__http *http;         /* NULL once upgraded */
  wslay_event_context_ptr ws;     /* wslay's state; NULL before the upgrade and while idle */
  int64_t ws_unframed;            /* bytes given to wslay minus those of frames it started */
  const uint8_t *rbuf;            /* bytes of the current read, for wslay's recv callback */
  size_t rlen, rpos;
  struct outq q;
  uint32_t inflight;              /* queue entries owned by the uv_write in flight */
  unsigned closing : 1;           /* uv_close called or pending */
  unsigned close_after_flush : 1; /* close once the queue is written */
  unsigned dirty : 1;             /* linked in srv->dirty */
  unsigned reading : 1;
  unsigned ws_close_sent : 1;
  unsigned is_ws : 1;             /* upgraded to a WebSocket */
  unsigned ws_in_msg : 1;         /* a fragmented message is being received */
  unsigned ws_slow : 1;           /* a control frame took the queue over a cap (ws.c) */
  unsigned http_blocked : 1;      /* HTTP parsing stopped: too many unwritten responses */
  unsigned resume_linked : 1;     /* linked in srv->resumes */
  unsigned lingering : 1;         /* HTTP answer sent, FIN sent, discarding input (server.c) */
  uint32_t linger_left;           /* bytes still discarded before we hang up */
  struct ratelimit ctrl_rl;       /* pings and pongs received (cfg.ctrl_rate) */
  uint64_t last_tx_ms;            /* loop time of the last write progress */
  uint64_t last_rx_ms;            /* loop time of the last byte received */
  uint64_t last_ping_ms;
  uint64_t close_deadline_ms;     /* hard close after a close that lingers; 0 = none */
  struct net_conn *prev, *next;   /* srv->conns */
  struct net_conn *dprev, *dnext; /* srv->dirty */
  struct net_conn *rprev, *rnext; /* srv->resumes */
};

struct net_server {
  uv_loop_t *loop;
  struct net_config cfg;
  struct net_callbacks cb;
  uv_tcp_t listener;
  uv_prepare_t flusher;
  uv_timer_t ticker;
  char host[64];
  int listening;
  int listener_closed;
  int port;
  int handles_open;        /* counted down as handles close in net_server_free */
  int closing_handles;     /* net_server_free was called */
  size_t n_conns;
  struct net_conn *conns;   /* every open connection */
  struct net_conn *dirty;   /* connections with output to write */
  struct net_conn *resumes; /* HTTP connections to go on parsing at the next loop turn */
  uv_idle_t resumer;        /* active while resumes is not empty: the loop does not block */
  wslay_frame_context_ptr encoder; /* frames outbound messages into encode_target */
  struct outq_chunk *encode_target;
  size_t encode_pos;
  struct net_stats stats;
  char rbuf[65536];        /* one read buffer for all connections: reads are handled at once */
  int rbuf_busy;
};

/* conn_queue.c */
void net__conn_mark_dirty(struct net_conn *c);
void net__conn_unmark_dirty(struct net_conn *c);
int net__conn_push(struct net_conn *c, struct outq_chunk *chunk, int pull);
int net__conn_push_copy(struct net_conn *c, const void *data, size_t len);
/* Memory c's queue holds: unwritten bytes plus NET__ENTRY_COST per entry. */
size_t net__conn_held(const struct net_conn *c);
/* Whether c's queue is over a cap: pushed events over outq_max, or anything over outq_hard_max. */
int net__conn_over_cap(const struct net_conn *c);
/* Asks for net__http_resume(c) on the next loop turn, from a clean stack (never from inside
 * the app's callback that answered a request). Idempotent. */
void net__conn_resume_later(struct net_conn *c);
/* Unlinks c from the resume list (on close). */
void net__conn_resume_cancel(struct net_conn *c);
/* Runs the resumes asked for before this call; those asked for meanwhile wait a turn. */
void net__run_resumes(struct net_server *s);
/* Called after bytes of c's queue were written: resumes an HTTP connection whose parsing
 * stopped on unwritten output once the queue is back under the bound. */
void net__conn_wrote(struct net_conn *c);

/* server.c */
void net__conn_close(struct net_conn *c);
void net__conn_read_start(struct net_conn *c);
void net__conn_read_stop(struct net_conn *c);
/* Makes the loop run net__run_resumes on its next turn without blocking for I/O first. */
void net__server_wake(struct net_server *s);

/* http.c */
int net__http_new(struct net_conn *c);
void net__http_free(struct net_conn *c);
void net__http_on_data(struct net_conn *c, const char *data, size_t len);
/* Goes on parsing c's kept bytes after an answer or once its output drained (see
 * net__conn_resume_later); starts reading again when they are used up. */
void net__http_resume(struct net_conn *c);
/* Unwritten bytes over which an HTTP connection stops parsing further pipelined requests. */
size_t net__http_out_bound(const struct net_server *s);
/* Loop time of the first byte of the request being read (0 when none is in progress). */
uint64_t net__http_started_ms(const struct net_conn *c);
/* Whether a request was handed to the app and is not answered yet. */
int net__http_in_app(const struct net_conn *c);
/* The request being answered. */
struct http_request *net__http_request(struct net_conn *c);
/* Returns and detaches the bytes received after the request being upgraded. */
void net__http_take_leftover(struct net_conn *c, struct buf *out);

/* ws.c */
int net__ws_encoder_init(struct net_server *s);
void net__ws_encoder_free(struct net_server *s);
void net__ws_on_data(struct net_conn *c, const char *data, size_t len);
void net__ws_tick(struct net_conn *c, uint64_t now);
void net__ws_free(struct net_conn *c);

#endif
