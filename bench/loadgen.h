/* loadgen.h - shared state of the Parley load generator.
 *
 * The load generator is one process with one libuv loop. loadgen.c owns the run: options, the
 * set-up phases (sign up, connect, create/join chats, subscribe), pacing of sends, measurement and
 * the report. ws.c is a minimal WebSocket client (libuv TCP, RFC 6455 handshake checked with
 * OpenSSL, wslay's frame layer) that hands every text message back to loadgen.c. signup.c creates the
 * accounts over plain HTTP/1.1 with bounded concurrency. hist.c keeps latency histograms.
 */
#ifndef BENCH_LOADGEN_H
#define BENCH_LOADGEN_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <uv.h>
#include <jansson.h>
#include <wslay/wslay.h>

#include "common/hist.h"

/* A growable byte buffer with a hard cap. */
struct buf {
  char *base;
  size_t len;
  size_t cap;
};

/* Appends; returns 0, or -1 if `limit` would be passed or memory ran out. */
int buf_append(struct buf *b, const void *p, size_t n, size_t limit);
void buf_dispose(struct buf *b);

struct user {
  char name[33];
  char *token; /* session token from signup (or the users file); owned */
};

struct group {
  char slug[80]; /* from the chat.create reply */
  int first;     /* index of the first member (the creator) */
  int size;
};

/* What a pending request was, so its reply can be routed. */
enum req_kind {
  REQ_NONE = 0, REQ_AUTH, REQ_CREATE, REQ_JOIN, REQ_SUB, REQ_SEND, REQ_TYPING_ON, REQ_TYPING_OFF,
  REQ_REACT
};

/* Reactions a user's socket remembers the send time of (scen_react.c): one is in flight at a
 * time, so the ring only has to cover how far the slowest member's socket lags behind. */
#define REACT_RING 64

/* Typers a connection remembers from the last `typing` event of its chat (the server lists 5). */
#define TYP_TRACK 16

struct pending {
  uint64_t id;     /* request id; 0 = free slot */
  uint64_t t_send; /* uv_hrtime() when queued */
  uint8_t kind;    /* enum req_kind */
  uint8_t measured; /* sent inside the measured window */
};

enum conn_state { CONN_IDLE = 0, CONN_CONNECTING, CONN_HANDSHAKE, CONN_OPEN, CONN_CLOSING, CONN_CLOSED };

struct conn {
  uv_tcp_t tcp;
  uv_connect_t creq;
  uv_write_t wreq;
  struct lg *lg;
  int idx;                 /* user index */
  int group;
  enum conn_state state;
  int busy;                /* a set-up step is in flight for this connection */
  int closed_by_us;
  int down_counted;        /* an unexpected close was already counted */
  int in_recv;             /* inside the frame loop: writes are pushed when it ends */
  int was_open;            /* counted in lg->live_conns */
  wslay_frame_context_ptr fr; /* set once the handshake succeeded */
  char key[32];            /* Sec-WebSocket-Key sent in the handshake */
  struct buf hs;           /* handshake response so far */
  const uint8_t *in;       /* bytes of the current read not yet given to wslay */
  size_t in_len;
  uint64_t frame_off;      /* payload bytes of the current frame seen so far */
  struct buf msg;          /* a data message spread over several chunks or frames */
  uint8_t msg_op;          /* its opcode; 0 when no message is open */
  uint8_t ctl[125];        /* payload of the current control frame */
  uint8_t ctl_len;
  int close_sent;
  struct buf out;          /* frames waiting to be written */
  struct buf wbuf;         /* frames in the uv_write in flight */
  int writing;
  void (*fail)(struct conn *c, const char *why); /* the wire's failure path (ws.c, wire_xmpp.c) */
  uint64_t next_id;
  struct pending *ring;    /* outstanding requests, indexed by id & ring_mask */
  uint32_t ring_mask;
  uint32_t outstanding;
  int64_t expect_seq;      /* next msg seq expected on the subscribed chat; -1 unknown */
  uint64_t nsent;          /* msg.send requests sent, for clientMsgId */
  int64_t user_id;         /* the server's id for this user, from the auth reply */
  /* typing scenario */
  uint64_t typ_t0;         /* uv_hrtime() just before this user's latest on:true was queued */
  int typ_on;              /* an on:true was sent and its on:false not yet */
  uint8_t typ_prev_n;      /* typers listed in the last typing event this socket got */
  uint8_t typ_prev_partial; /* ... and that event did not name every typer ("others" > 0) */
  int64_t typ_prev[TYP_TRACK]; /* their user ids */
  /* peer servers (--server socketio|xmpp, wire.h) */
  void *peer;              /* the wire's per-connection state; owned by the wire file */
  int peer_stage;          /* the wire's set-up stage */
  uint64_t *from_next;     /* next body counter expected from each member of the room; owned */
  uint64_t echoed;         /* own messages received back (a peer's "ack") */
  /* reactions scenario (scen_react.c) */
  int64_t last_text_seq;   /* newest text message seen on the chat (a reaction's target); 0 none */
  int64_t react_target;    /* the message this user's reaction is on, while react_on */
  int react_on;            /* the user's reaction is on (the next toggle takes it off) */
  int react_busy;          /* a react is awaiting its reply */
  uint64_t react_sent;     /* reactions appended by this user so far (each one an entry) */
  uint64_t react_ts[REACT_RING]; /* uv_hrtime() when reaction k was queued, at k % REACT_RING */
  uint32_t *react_seen;    /* per member of the chat (by index in the group): reactions seen */
};

enum scenario { SCEN_CHAT = 0, SCEN_BROADCAST, SCEN_TYPING, SCEN_CONNS, SCEN_STORM, SCEN_REACTIONS };

enum phase {
  PH_SIGNUP = 0, PH_CONNECT, PH_CREATE, PH_JOIN, PH_SUB, PH_RUN, PH_DRAIN, PH_CLOSE, PH_DONE
};

/* In the typing scenario sends and acks count typing on:true requests, deliveries `typing`
 * events (every copy, the typer's own and the stops' included). */
struct counters {
  uint64_t sends;          /* msg.send requests sent */
  uint64_t acks;           /* ok replies to msg.send */
  uint64_t deliveries;     /* msg events received */
  uint64_t err_replies;    /* error replies other than rate_limited */
  uint64_t rate_limited;
  uint64_t skipped;        /* sends not made: window full or connection down */
};

struct lg {
  uv_loop_t *loop;
  /* options */
  enum scenario scen;
  char host[64];
  int port;
  char path[128];
  struct sockaddr_storage addr;  /* --url's node */
  /* Several nodes of one cluster (--nodes): user i connects to node i % n_nodes; node 0 is addr. */
#define LG_MAX_NODES 16
  int n_nodes;
  int node_port[LG_MAX_NODES];
  struct sockaddr_storage node_addr[LG_MAX_NODES];
  int n_users, chat_size;
  double rate;             /* msgs/s across all users; 0 = window mode (broadcast) */
  int window;
  double typing_hold;      /* typing: seconds from on:true to on:false; 0 = a fifth of a user's period */
  double duration, warmup, drain, setup_timeout;
  int body_size;
  int server_pid;
  const char *csv, *users_file, *label;
  int signup_conc, connect_conc, setup_conc;
  int strict, quiet;
  char runid[16];
  char chat[80];            /* --chat: every user joins this existing chat (no chat.create) */
  /* connections and storm scenarios (scen_conns.c) */
  struct scen_conns *sc;   /* their state; NULL in the other scenarios */
  int probes;              /* connections: chats whose first member sends */
  int n_accounts;          /* users signed up; socket i uses account i % n_accounts */
  int storm_conc;          /* storm: reconnects in flight */
  int src_addrs;           /* loopback source addresses to bind (-1: by N, 0: none) */
  struct sockaddr_in *src; /* 127.0.0.2... when n_src > 0; owned */
  int n_src;

  struct user *users;
  struct conn *conns;
  struct group *groups;
  int n_groups;
  int *order;              /* send order: interleaves groups so consecutive sends hit different chats */
  int n_order;
  char *pad;               /* body padding */
  /* typing scenario */
  struct typ_stop { int idx; uint64_t due; } *stops; /* on:false due, FIFO (the hold is constant) */
  int stops_head, stops_n;
  struct id_map { int64_t id; int idx; } *idmap; /* user id -> index, sorted by id */
  int n_idmap;
  uint64_t typ_stops_sent;  /* on:false requests sent */
  uint64_t typ_listed;      /* starts the typer's own socket saw listed (the others are owed them) */
  uint64_t typ_expected;    /* sightings owed: (chat size - 1) per start in typ_listed */
  uint64_t typ_seen;        /* a receiver saw a typer newly listed (the typer's own socket excluded) */
  uint64_t typ_hidden;      /* ... could not tell: the previous event left typers unnamed */
  uint64_t typ_unexpected;  /* a typer newly listed that never sent on:true */
  uint64_t typ_partial;     /* typing events that named fewer than all typers ("others" > 0) */
  int typ_nonempty;         /* sockets whose last typing event listed someone */
  uint64_t typ_errors;      /* error replies to on:false (on:true errors are in tot/win) */

  /* phase driver */
  enum phase phase;
  int *work;               /* indexes for the current set-up phase */
  int work_n, work_pos, work_inflight, work_done, work_failed;
  uv_timer_t tick;         /* 1 ms: pacing, phase changes, progress */
  uv_timer_t deadline;     /* set-up and close time limits */
  uint64_t t_phase;

  /* run */
  uint64_t t_load, t_meas0, t_meas1, t_drain_end, t_last_progress;
  uint64_t paced;          /* sends due so far by the rate */
  uint64_t rr;             /* round-robin position in order[] */
  uint64_t now_recv;       /* uv_hrtime() of the read being processed */
  int meas_started;        /* the window-start resource sample was taken */
  int live_conns;          /* handshaken sockets not yet down */
  int64_t send_inflight;   /* msg.send requests awaiting a reply */
  uint64_t unacked;        /* msg.send requests lost with their socket */
  struct counters tot, win; /* whole run, and the measured window only */
  uint64_t expected;       /* deliveries owed for every acked send */
  uint64_t closes, seq_gaps, seq_dups, proto_errs, null_id, slow_parse;
  uint64_t errors_printed;
  struct hist lat;         /* send-to-receive, sends in the measured window */
  struct hist ack;         /* send-to-ack, sends in the measured window */
  struct hist lat_sec;     /* send-to-receive over the last second, for the progress lines */
  struct hist reply_all;   /* msg.send to its reply, acknowledged or refused, whole run */
  /* --schedule: offered rate in steps after the warm-up (the warm-up runs at the first step's
   * rate); --duration is then the sum of the steps. */
#define LG_MAX_STEPS 16
  int n_steps;
  double step_rate[LG_MAX_STEPS], step_secs[LG_MAX_STEPS];
  /* --report-every: one stdout row per interval (soak and overload scenarios) */
  double report_every;     /* seconds; 0 = off */
  const char *wal_file;    /* --wal-file: a file whose size each row reports (SQLite's WAL) */
  uint64_t t_next_report;
  struct counters rep_last; /* tot at the previous row */
  uint64_t rep_refused_last, rep_unavail_last;
  struct hist rep_lat;     /* send-to-receive over the interval */
  struct hist rep_reply;   /* send-to-reply (any outcome) over the interval */
  uint64_t unavailable;    /* msg.send refused with `unavailable` (overload), whole run */
  /* Set-up cost (connect storm): every text frame received from the first connect to the end
   * of the subscriptions, and from then to the end of the run; the set-up's wall time. */
  uint64_t setup_frames, setup_bytes, run_frames;
  uint64_t t_setup0, t_setup1;
  /* resource samples at the window's edges */
  unsigned long long srv_ticks0, srv_ticks1;
  long srv_rss_kb, srv_hwm_kb;
  double lg_cpu0, lg_cpu1;
  /* reactions scenario (scen_react.c): the chat load plus `react` toggles at react_rate */
  double react_rate;       /* reactions/s across all users */
  uint64_t react_paced, react_rr;
  uint64_t react_sends, react_acks, react_errors, react_skipped, react_deliveries;
  uint64_t react_win_sends, react_win_acks, react_unmatched;
  struct hist react_lat;   /* react sent to a member's socket receiving its entry, measured window */
  struct hist react_ack;   /* react sent to its reply, measured window */
  int exit_code;
  /* peer servers (wire.h) */
  const struct wire_ops *wire; /* NULL: Parley's own protocol */
  char xmpp_domain[64];    /* XMPP: the host name (the MUC service is conference.<it>) */
  long srv_rss_idle_kb;    /* server RSS before the first connection, -1 unknown */
  long srv_rss_joined_kb;  /* ... with every user connected and in its chat, -1 unknown */
};

/* The node user `idx` talks to (lg's memory), and its port. */
const struct sockaddr *lg_node_addr(const struct lg *lg, int idx);
int lg_node_port(const struct lg *lg, int idx);

/* Progress output on stderr, silent with --quiet (printf-style; lg borrowed). */
void lg_log(struct lg *lg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A "Vm...:" line (field without the colon) of /proc/pid/status in kB, or -1. */
long proc_status_kb(int pid, const char *field);

/* Fast pseudo-random numbers for masks and keys (xorshift64*); not for secrets. */
uint64_t lg_rand(void);

/* ws.c */
/* Connects c (already zeroed except idx/group/lg) to lg->addr and runs the handshake; when the
 * socket is open, calls lg_on_ws_open(c); on any failure or close, lg_on_ws_down(c) once. */
void ws_conn_start(struct conn *c);
/* Writes what c->out holds: uv_try_write what the kernel takes, the rest through one uv_write
 * from c->wbuf; on a write error calls c->fail. Shared by every wire on TCP. */
void conn_flush(struct conn *c);
/* Queues one text message and tries to write it at once. Returns 0 or -1 (connection gone). */
int ws_conn_send_text(struct conn *c, const char *p, size_t n);
/* Starts a clean close (1000); the socket is closed for good after `grace_ms` at most. */
void ws_conn_close(struct conn *c);
/* Closes the TCP handle now. */
void ws_conn_abort(struct conn *c);

/* loadgen.c, called by ws.c */
void lg_on_ws_open(struct conn *c);
void lg_on_ws_text(struct conn *c, const uint8_t *p, size_t n);
void lg_on_ws_close_frame(struct conn *c, unsigned code);
void lg_on_ws_down(struct conn *c, const char *why);

/* scen_conns.c: the connections and storm scenarios; loadgen.c calls these only when
 * lg->sc is set (scen_conns_init succeeded). */
int scen_conns_active(const struct lg *lg);   /* the scenario is one of the two */
int scen_conns_init(struct lg *lg);           /* after groups and order are built; 0 or -1 */
void scen_conns_phase(struct lg *lg, enum phase ph); /* at the start of each phase */
void scen_conns_tick(struct lg *lg, uint64_t now);   /* every tick of the run */
/* Replies and losses of sockets the scenario drives itself; return 1 if handled. `root` is
 * borrowed for the call. */
int scen_conns_on_reply(struct lg *lg, struct conn *c, int kind, json_t *root, int ok);
int scen_conns_on_down(struct lg *lg, struct conn *c);
void scen_conns_on_ack(struct lg *lg, struct conn *c, json_t *root); /* an ok msg.send reply */
int scen_conns_settled(const struct lg *lg);  /* nothing of the scenario still in progress */
int scen_conns_report(struct lg *lg);         /* prints its lines; returns > 0 on failure */
/* Opens c->tcp bound to its loopback source address (lg->n_src > 0). Returns 0 or -1. */
int lg_bind_source(struct conn *c);
/* loadgen.c: sends {"id":..,"op":op,rest}; 0 or -1 (ring full or connection down). */
int lg_req_send(struct conn *c, enum req_kind kind, const char *op, const char *rest);

/* scen_react.c: the reactions scenario (lg->scen == SCEN_REACTIONS). */
int scen_react_init(struct lg *lg);          /* after groups are built; 0 or -1 */
void scen_react_tick(struct lg *lg, uint64_t now); /* paces the reactions during the run */
/* A msg event without a send timestamp in its body (p, n: the frame): a reaction entry? */
void scen_react_on_event(struct lg *lg, struct conn *c, const char *p, size_t n);
/* The reply to a react (kind REQ_REACT): ok, or the error code (may be NULL). */
void scen_react_on_reply(struct lg *lg, struct conn *c, const struct pending *pe, int ok,
                         const char *code);
void scen_react_on_down(struct lg *lg, struct conn *c); /* c's socket went down */
int scen_react_report(struct lg *lg);        /* prints its lines; returns > 0 on failure */
/* loadgen.c: user id -> user index (built when the run starts), -1 if unknown. */
int lg_user_index(const struct lg *lg, int64_t id);
/* loadgen.c: reserves a request slot (0 when the ring is full) and gives it back. */
uint64_t lg_req_take(struct conn *c, enum req_kind kind, uint64_t t, int measured);
void lg_req_release(struct conn *c, uint64_t id);

/* signup.c: signs up users[idx] for every idx in todo[0..n) with at most `conc` requests in
 * flight; calls done(lg, idx, ok) once per user, then finished(lg) once. */
void signup_run(struct lg *lg, const int *todo, int n, int conc,
                void (*done)(struct lg *lg, int idx, int ok),
                void (*finished)(struct lg *lg));

#endif
