/* bus_redis_presence.c - presence on the Redis bus: a hash per user, one field per instance,
 * a sorted set of every statement by expiry and a hash of the users not offline, each change
 * made atomic by a Lua script (the key layout is described at the top of bus_redis.c). The
 * calls use the publish connection; bus_redis.c answers those still in flight at close.
 */
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus_redis_int.h"
#include "common/error.h"
#include "common/log.h"

#define REFRESH_BATCH 500                       /* statements one ZADD refreshes */

/* Shared by the presence scripts: recomputes user `uid`'s aggregate from hash h, keeps the
 * "pr:on" hash (key `on`) in step, and returns {uid, state, lastSeen} if the state changed
 * since it was last reported, else {}. */
#define LUA_AGG                                                                                    \
  "local function agg(h, on, uid)"                                                                 \
  " local best, last = 0, tonumber(redis.call('HGET', h, '_ls') or '0')"                           \
  " local all = redis.call('HGETALL', h)"                                                          \
  " for i = 1, #all, 2 do"                                                                         \
  "  if string.sub(all[i], 1, 1) ~= '_' then"                                                      \
  "   local s, l = string.match(all[i + 1], '^(%d+) (%d+)$')"                                      \
  "   s = tonumber(s) l = tonumber(l)"                                                             \
  "   if s > best then best = s end"                                                               \
  "   if l > last then last = l end"                                                               \
  "  end"                                                                                          \
  " end"                                                                                           \
  " local pub = tonumber(string.match(redis.call('HGET', h, '_pub') or '0', '^(%d+)'))"            \
  " local now = string.format('%d %d', best, last)"                                                \
  " local name = redis.call('HGET', h, '_name') or ''"                                             \
  " if best == 0 then redis.call('HDEL', on, uid)"                                                 \
  " else redis.call('HSET', on, uid, now .. ' ' .. name) end"                                      \
  " redis.call('PEXPIRE', h, 86400000)"                                                            \
  " if pub == best then return {} end"                                                             \
  " redis.call('HSET', h, '_pub', now)"                                                            \
  " return {tonumber(uid), best, last, name}"                                                      \
  " end "

/* KEYS: user hash, pr:exp, pr:on. ARGV: instance, state, lastSeen, expires, user id, name. */
static const char LUA_PUT[] = LUA_AGG
    "local h, z, on = KEYS[1], KEYS[2], KEYS[3]"
    " local f, st, ls, uid = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[5]"
    " redis.call('HSET', h, '_name', ARGV[6])"
    " if st == 0 then"
    "  redis.call('HDEL', h, f) redis.call('ZREM', z, uid .. ' ' .. f)"
    "  if tonumber(ls) > tonumber(redis.call('HGET', h, '_ls') or '0') then"
    "   redis.call('HSET', h, '_ls', ls) end"
    " else"
    "  redis.call('HSET', h, f, st .. ' ' .. ls) redis.call('ZADD', z, ARGV[4], uid .. ' ' .. f)"
    " end"
    " return agg(h, on, uid)";

/* KEYS: pr:exp, pr:on. ARGV: now, key prefix of the user hashes, limit, ttl. */
static const char LUA_SWEEP[] = LUA_AGG
    "local out = {}"
    " local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0,"
    "  tonumber(ARGV[3]))"
    " for i = 1, #due, 2 do"
    "  local m, exp = due[i], tonumber(due[i + 1])"
    "  redis.call('ZREM', KEYS[1], m)"
    "  local uid, f = string.match(m, '^(%d+) (.+)$')"
    "  if uid then"
    "   local h = ARGV[2] .. uid"
    "   local old = redis.call('HGET', h, f)"
    "   local ls = exp - tonumber(ARGV[4])"
    "   if old then"
    "    local l = tonumber(string.match(old, ' (%d+)$'))"
    "    if l and l > ls then ls = l end"
    "    redis.call('HDEL', h, f)"
    "   end"
    "   if ls > tonumber(redis.call('HGET', h, '_ls') or '0') then"
    "    redis.call('HSET', h, '_ls', string.format('%d', ls)) end"
    "   local r = agg(h, KEYS[2], uid)"
    "   for _, v in ipairs(r) do out[#out + 1] = v end"
    "  end"
    " end"
    " return out";

/* --- presence ------------------------------------------------------------------------------- */

static void call_unlink(struct rbus *rb, struct rpcall *pc) {
  if (pc->prev)
    pc->prev->next = pc->next;
  else
    rb->calls = pc->next;
  if (pc->next)
    pc->next->prev = pc->prev;
}

/* A script's answer: a flat array of (user id, state, lastSeen, name) quadruples. Fills `list`
 * (room for elements / 4 entries) and returns how many. */
static size_t parse_quads(const redisReply *reply, struct bus_presence *list) {
  size_t n = 0;
  for (size_t i = 0; i + 3 < reply->elements; i += 4) {
    const redisReply *name = reply->element[i + 3];
    list[n].user_id = reply->element[i]->integer;
    list[n].state = (int)reply->element[i + 1]->integer;
    list[n].last_seen = reply->element[i + 2]->integer;
    if (name->type == REDIS_REPLY_STRING)
      snprintf(list[n].name, sizeof list[n].name, "%.*s", (int)name->len, name->str);
    n++;
  }
  return n;
}

/* "pr:on" answers HGETALL: user id, "<state> <lastSeen> <name>", ... (elements / 2 entries). */
static size_t parse_hgetall(const redisReply *reply, struct bus_presence *list) {
  size_t n = 0;
  for (size_t i = 0; i + 1 < reply->elements; i += 2) {
    long long id, last;
    int st;
    char name[BUS_PRES_NAME_MAX + 1] = "";
    if (reply->element[i]->type != REDIS_REPLY_STRING ||
        reply->element[i + 1]->type != REDIS_REPLY_STRING ||
        sscanf(reply->element[i]->str, "%lld", &id) != 1 ||
        sscanf(reply->element[i + 1]->str, "%d %lld %64s", &st, &last, name) < 2)
      continue;
    list[n] = (struct bus_presence){id, st, last, ""};
    memcpy(list[n++].name, name, sizeof name);
  }
  return n;
}

/* Hands a presence command's answer, parsed by `parse`, to its caller's callback (unless close
 * cancelled it), and frees the call. */
static void pres_answer(redisAsyncContext *ac, redisReply *reply, struct rpcall *pc,
                        size_t (*parse)(const redisReply *, struct bus_presence *)) {
  struct rbus *rb = ac->data;
  struct bus_presence *list = NULL;
  size_t n = 0;
  int status = 0;

  if (pc->cb == NULL) {
    free(pc); /* cancelled by close */
    return;
  }
  call_unlink(rb, pc);
  if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
    if (reply && reply->type == REDIS_REPLY_ERROR)
      log_error("bus: presence command failed: %s", reply->str);
    status = reply == NULL ? PARLEY_EUNAVAILABLE : PARLEY_EINTERNAL;
  } else if (reply->elements) {
    list = calloc(reply->elements + 1, sizeof *list);
    if (list)
      n = parse(reply, list);
  }
  pc->cb(pc->arg, status, list, n);
  free(list);
  free(pc);
}

static void pres_reply(redisAsyncContext *ac, void *r, void *privdata) {
  pres_answer(ac, r, privdata, parse_quads);
}

static void list_reply(redisAsyncContext *ac, void *r, void *privdata) {
  pres_answer(ac, r, privdata, parse_hgetall);
}

/* Sends argv on the publish connection with its reply going to fn(cb, arg). */
static int pres_command(struct rbus *rb, redisCallbackFn *fn, bus_presence_cb cb, void *arg,
                        int argc, const char **argv, const size_t *argvlen) {
  struct rpcall *pc;
  if (!rb->pub_ready || rb->closing)
    return PARLEY_EUNAVAILABLE;
  pc = calloc(1, sizeof *pc);
  if (pc == NULL)
    return PARLEY_EINTERNAL;
  pc->cb = cb;
  pc->arg = arg;
  if (redisAsyncCommandArgv(rb->pub, fn, pc, argc, argv, argvlen) != REDIS_OK) {
    free(pc);
    return PARLEY_EUNAVAILABLE;
  }
  pc->next = rb->calls;
  if (rb->calls)
    rb->calls->prev = pc;
  rb->calls = pc;
  return 0;
}

int redis__presence_put(struct bus *b, const struct bus_presence *p, int64_t expires_at,
                        bus_presence_cb cb, void *arg) {
  struct rbus *rb = (struct rbus *)b;
  char hkey[NS_MAX + 40], zkey[NS_MAX + 16], onkey[NS_MAX + 16];
  char st[4], ls[24], exp[24], uid[24];
  const char *argv[12];
  size_t argvlen[12];
  snprintf(hkey, sizeof hkey, "%spr:%lld", rb->ns, (long long)p->user_id);
  snprintf(zkey, sizeof zkey, "%spr:exp", rb->ns);
  snprintf(onkey, sizeof onkey, "%spr:on", rb->ns);
  snprintf(st, sizeof st, "%d", p->state);
  snprintf(ls, sizeof ls, "%lld", (long long)p->last_seen);
  snprintf(exp, sizeof exp, "%lld", (long long)expires_at);
  snprintf(uid, sizeof uid, "%lld", (long long)p->user_id);
  argv[0] = "EVAL";
  argv[1] = LUA_PUT;
  argv[2] = "3";
  argv[3] = hkey;
  argv[4] = zkey;
  argv[5] = onkey;
  argv[6] = rb->self_hex;
  argv[7] = st;
  argv[8] = ls;
  argv[9] = exp;
  argv[10] = uid;
  argv[11] = p->name;
  for (int i = 0; i < 12; i++)
    argvlen[i] = strlen(argv[i]);
  return pres_command(rb, pres_reply, cb, arg, 12, argv, argvlen);
}

int redis__presence_refresh(struct bus *b, const int64_t *ids, size_t n, int64_t expires_at) {
  struct rbus *rb = (struct rbus *)b;
  char zkey[NS_MAX + 16], exp[24];
  if (!rb->pub_ready || rb->closing)
    return PARLEY_EUNAVAILABLE;
  snprintf(zkey, sizeof zkey, "%spr:exp", rb->ns);
  snprintf(exp, sizeof exp, "%lld", (long long)expires_at);
  for (size_t off = 0; off < n; off += REFRESH_BATCH) {
    size_t k = n - off < REFRESH_BATCH ? n - off : REFRESH_BATCH;
    size_t argc = 3 + 2 * k;
    const char **argv = calloc(argc, sizeof *argv);
    size_t *argvlen = calloc(argc, sizeof *argvlen);
    char(*members)[24 + 2 * SELF_LEN + 2] = calloc(k, sizeof *members);
    if (argv == NULL || argvlen == NULL || members == NULL) {
      free(argv);
      free(argvlen);
      free(members);
      return PARLEY_EINTERNAL;
    }
    argv[0] = "ZADD";
    argv[1] = zkey;
    argv[2] = "XX"; /* only statements still there: a swept one stays gone */
    for (size_t i = 0; i < k; i++) {
      snprintf(members[i], sizeof members[i], "%lld %s", (long long)ids[off + i], rb->self_hex);
      argv[3 + 2 * i] = exp;
      argv[4 + 2 * i] = members[i];
    }
    for (size_t i = 0; i < argc; i++)
      argvlen[i] = strlen(argv[i]);
    redisAsyncCommandArgv(rb->pub, NULL, NULL, (int)argc, argv, argvlen);
    free(argv);
    free(argvlen);
    free(members);
  }
  return 0;
}

int redis__presence_sweep(struct bus *b, int64_t now, int64_t ttl_ms, bus_presence_cb cb,
                          void *arg) {
  struct rbus *rb = (struct rbus *)b;
  char zkey[NS_MAX + 16], onkey[NS_MAX + 16], prefix[NS_MAX + 8], nows[24], ttl[24];
  const char *argv[9];
  size_t argvlen[9];
  snprintf(zkey, sizeof zkey, "%spr:exp", rb->ns);
  snprintf(onkey, sizeof onkey, "%spr:on", rb->ns);
  snprintf(prefix, sizeof prefix, "%spr:", rb->ns);
  snprintf(nows, sizeof nows, "%lld", (long long)now);
  snprintf(ttl, sizeof ttl, "%lld", (long long)ttl_ms);
  argv[0] = "EVAL";
  argv[1] = LUA_SWEEP;
  argv[2] = "2";
  argv[3] = zkey;
  argv[4] = onkey;
  argv[5] = nows;
  argv[6] = prefix;
  argv[7] = "1000";
  argv[8] = ttl;
  for (int i = 0; i < 9; i++)
    argvlen[i] = strlen(argv[i]);
  return pres_command(rb, pres_reply, cb, arg, 9, argv, argvlen);
}

int redis__presence_list(struct bus *b, bus_presence_cb cb, void *arg) {
  struct rbus *rb = (struct rbus *)b;
  char onkey[NS_MAX + 16];
  const char *argv[2];
  size_t argvlen[2];
  snprintf(onkey, sizeof onkey, "%spr:on", rb->ns);
  argv[0] = "HGETALL";
  argv[1] = onkey;
  argvlen[0] = 7;
  argvlen[1] = strlen(onkey);
  return pres_command(rb, list_reply, cb, arg, 2, argv, argvlen);
}

