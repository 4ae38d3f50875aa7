#include "cluster.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/sds.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "envelope.h"
#include "jsontext.h"
#include "log.h"
#include "redis_loop.h"
#include "server.h"
#include "utf8.h"

#define RETRY_FIRST_MS 100
#define RETRY_MAX_MS 2000
#define NODE_ID_MAX 64
#define WIRE_VERSION 1
/* Published bytes Redis has not taken yet, past which a message is dropped
 * (and counted) rather than held: a stalled Redis must not grow the node. */
#define PUBLISH_BACKLOG_MAX (64u << 20)

/* Redis names, under the prefix P:
 *   channels  P:all  P:srv (node to node)  P:room:<name>  P:client:<id>
 *   keys      P:nodes (set of node ids)  P:node:<id>:alive (expires)
 *             P:node:<id>:clients  P:node:<id>:rooms  P:node:<id>:room:<name>
 * A node subscribes to P:all, P:srv, and the room and client channels of
 * its own rooms and clients, so a message reaches only nodes that have a
 * recipient for it. */

/* Every read and cleanup of the membership sets is one script, so a query
 * is one round trip and sees one moment. ARGV: mode, prefix, node, arg. */
static const char cluster_script[] =
    "local mode, p, self, arg = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n"
    "local function node(n) return p .. ':node:' .. n end\n"
    "local function forget(n)\n"
    "  for _, r in ipairs(redis.call('SMEMBERS', node(n) .. ':rooms')) do\n"
    "    redis.call('DEL', node(n) .. ':room:' .. r) end\n"
    "  redis.call('DEL', node(n) .. ':rooms', node(n) .. ':clients', node(n) .. ':alive')\n"
    "  redis.call('SREM', p .. ':nodes', n)\n"
    "end\n"
    "local function alive(n) return redis.call('EXISTS', node(n) .. ':alive') == 1 end\n"
    "if mode == 'bye' or mode == 'reset' then forget(self) end\n"
    "if mode == 'reset' or mode == 'beat' then\n"
    "  redis.call('SET', node(self) .. ':alive', '1', 'PX', arg)\n"
    "  redis.call('SADD', p .. ':nodes', self)\n"
    "  for _, n in ipairs(redis.call('SMEMBERS', p .. ':nodes')) do\n"
    "    if not alive(n) then forget(n) end end\n"
    "  return 0\n"
    "end\n"
    "local out = {}\n"
    "for _, n in ipairs(redis.call('SMEMBERS', p .. ':nodes')) do\n"
    "  if alive(n) then\n"
    "    if mode == 'members' then\n"
    "      for _, id in ipairs(redis.call('SMEMBERS', node(n) .. ':room:' .. arg)) do out[#out + 1] = id end\n"
    "    elseif mode == 'clients' then\n"
    "      local rooms = {}\n"
    "      for _, r in ipairs(redis.call('SMEMBERS', node(n) .. ':rooms')) do\n"
    "        for _, id in ipairs(redis.call('SMEMBERS', node(n) .. ':room:' .. r)) do\n"
    "          rooms[id] = rooms[id] or {}\n"
    "          table.insert(rooms[id], r)\n"
    "        end\n"
    "      end\n"
    "      for _, id in ipairs(redis.call('SMEMBERS', node(n) .. ':clients')) do\n"
    "        out[#out + 1] = {id, n, rooms[id] or {}} end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return out\n";

typedef struct {
  redisAsyncContext *ac; /* NULL while down */
  bool up;               /* connected, not just connecting */
} link;

struct sl_cluster {
  sl_server *server;
  char *host, *password, *prefix;
  int port, db;
  char node_id[NODE_ID_MAX + 1];
  uint32_t node_timeout;
  link cmd, sub; /* commands and publishing; subscriptions */
  uv_timer_t retry, beat;
  unsigned backoff_ms;
  uint64_t degraded_since; /* 0: not degraded */
  bool ever_up, stopping;
  int open_handles;
  uint64_t published, received, dropped;
  sl_sbuf name, payload; /* scratch: a channel or key, a message */
};

static void link_open(sl_cluster *cl, link *l);

/* ---- URL ---- */

typedef struct {
  char host[256], password[256];
  int port, db;
} redis_url;

static const char *parse_url(const char *url, redis_url *u) {
  *u = (redis_url){.port = 6379};
  if (strncmp(url, "redis://", 8) != 0) return "it must start with redis://";
  const char *p = url + 8, *at = strchr(p, '@');
  if (at) {
    const char *colon = memchr(p, ':', (size_t)(at - p));
    const char *pw = colon ? colon + 1 : p;
    if ((size_t)(at - pw) >= sizeof u->password) return "the password is too long";
    memcpy(u->password, pw, (size_t)(at - pw));
    p = at + 1;
  }
  size_t hlen = strcspn(p, ":/");
  if (hlen == 0 || hlen >= sizeof u->host) return "it names no host";
  memcpy(u->host, p, hlen);
  p += hlen;
  char *end;
  if (*p == ':') {
    long port = strtol(p + 1, &end, 10);
    if (end == p + 1 || port < 1 || port > 65535) return "the port must be 1 to 65535";
    u->port = (int)port;
    p = end;
  }
  if (*p == '/' && p[1]) {
    long db = strtol(p + 1, &end, 10);
    if (end == p + 1 || *end || db < 0 || db > 65535) return "the database must be a number";
    u->db = (int)db;
  } else if (*p && strcmp(p, "/") != 0) {
    return "it has extra characters after the host";
  }
  return NULL;
}

const char *sl_cluster_check_url(const char *url) {
  redis_url u;
  return parse_url(url, &u);
}

/* ---- names ---- */

/* P<kind>[name], in cl->name (names may hold any byte, NUL included, so
 * their length goes with them); NULL when out of memory. */
static const sl_sbuf *name_of(sl_cluster *cl, const char *kind, const char *name, size_t len) {
  sl_sbuf_reset(&cl->name);
  int r = sl_sbuf_puts(&cl->name, cl->prefix) | sl_sbuf_puts(&cl->name, kind);
  if (name) r |= sl_sbuf_append(&cl->name, name, len);
  return r == 0 ? &cl->name : NULL;
}

/* P:node:<this node><what>[room] */
static const sl_sbuf *node_key(sl_cluster *cl, const char *what, const char *room, size_t len) {
  char kind[NODE_ID_MAX + 32];
  snprintf(kind, sizeof kind, ":node:%s%s", cl->node_id, what);
  return name_of(cl, kind, room, len);
}

/* ---- commands ---- */

static bool cmd_ready(const sl_cluster *cl) { return cl->cmd.up && !cl->stopping; }

/* A command on the command link whose reply nobody waits for. */
static void fire(sl_cluster *cl, int argc, const char **argv, const size_t *lens) {
  if (cl->cmd.ac) redisAsyncCommandArgv(cl->cmd.ac, NULL, NULL, argc, argv, lens);
}

static void set_op(sl_cluster *cl, const char *op, const sl_sbuf *key, const char *member, size_t len) {
  if (!key) return;
  const char *argv[3] = {op, key->data, member};
  size_t lens[3] = {strlen(op), key->len, len};
  fire(cl, 3, argv, lens);
}

static void run_script(sl_cluster *cl, const char *mode, const char *arg, size_t arg_len, redisCallbackFn *fn,
                       void *ud) {
  char ttl[16];
  if (!arg) {
    snprintf(ttl, sizeof ttl, "%u", cl->node_timeout);
    arg = ttl;
    arg_len = strlen(ttl);
  }
  const char *argv[7] = {"EVAL", cluster_script, "0", mode, cl->prefix, cl->node_id, arg};
  size_t lens[7] = {4, sizeof cluster_script - 1, 1, strlen(mode), strlen(cl->prefix), strlen(cl->node_id), arg_len};
  redisAsyncCommandArgv(cl->cmd.ac, fn, ud, 7, argv, lens);
}

static void subscribe(sl_cluster *cl, const char *verb, const sl_sbuf *channel);

/* ---- membership ---- */

static void add_client(sl_cluster *cl, const char *id) {
  size_t len = strlen(id);
  set_op(cl, "SADD", node_key(cl, ":clients", NULL, 0), id, len);
}

void sl_cluster_client_added(sl_cluster *cl, const char *id) {
  if (cl->sub.up) subscribe(cl, "SUBSCRIBE", name_of(cl, ":client:", id, strlen(id)));
  if (cmd_ready(cl)) add_client(cl, id);
}

void sl_cluster_client_removed(sl_cluster *cl, const char *id) {
  if (cl->sub.up) subscribe(cl, "UNSUBSCRIBE", name_of(cl, ":client:", id, strlen(id)));
  if (cmd_ready(cl)) set_op(cl, "SREM", node_key(cl, ":clients", NULL, 0), id, strlen(id));
}

static void add_member(sl_cluster *cl, const char *id, const char *room, size_t len, bool first) {
  if (first) set_op(cl, "SADD", node_key(cl, ":rooms", NULL, 0), room, len);
  set_op(cl, "SADD", node_key(cl, ":room:", room, len), id, strlen(id));
}

void sl_cluster_joined(sl_cluster *cl, const char *id, const char *room, size_t len, bool first) {
  if (first && cl->sub.up) subscribe(cl, "SUBSCRIBE", name_of(cl, ":room:", room, len));
  if (cmd_ready(cl)) add_member(cl, id, room, len, first);
}

void sl_cluster_left(sl_cluster *cl, const char *id, const char *room, size_t len, bool last) {
  if (last && cl->sub.up) subscribe(cl, "UNSUBSCRIBE", name_of(cl, ":room:", room, len));
  if (!cmd_ready(cl)) return;
  set_op(cl, "SREM", node_key(cl, ":room:", room, len), id, strlen(id));
  if (last) set_op(cl, "SREM", node_key(cl, ":rooms", NULL, 0), room, len);
}

/* After (re)connecting, Redis may have lost or kept stale data of ours:
 * replace it with what this node has now. Commands are pipelined. */
static void register_node(sl_cluster *cl) {
  run_script(cl, "reset", NULL, 0, NULL, NULL);
  sl_server *s = cl->server;
  for (sl_conn *c = s->conns; c; c = c->next) {
    if (!c->registered) continue;
    add_client(cl, c->id);
    for (uint32_t i = 0; i < c->rooms.count; i++) {
      const sl_room *r = c->rooms.items[i].room;
      add_member(cl, c->id, r->name, r->name_len, true);
    }
  }
}

static void on_beat(uv_timer_t *h) {
  sl_cluster *cl = h->data;
  if (cmd_ready(cl)) run_script(cl, "beat", NULL, 0, NULL, NULL);
}

/* ---- receiving ---- */

/* [u8 version][u8 kind][u8 origin length][origin][u8 exclude length]
 * [exclude][u16 event length][event][data] */
static bool decode(const char *p, size_t n, sl_msg *m, char *origin, char *exclude) {
  if (n < 3 || (uint8_t)p[0] != WIRE_VERSION) return false;
  char kind = p[1];
  size_t olen = (uint8_t)p[2], at = 3;
  if (olen > NODE_ID_MAX || at + olen + 1 > n) return false;
  memcpy(origin, p + at, olen);
  origin[olen] = '\0';
  at += olen;
  size_t xlen = (uint8_t)p[at++];
  if (xlen > SL_ID_MAX || at + xlen + 2 > n) return false;
  memcpy(exclude, p + at, xlen);
  exclude[xlen] = '\0';
  at += xlen;
  size_t elen = (size_t)(uint8_t)p[at] << 8 | (uint8_t)p[at + 1];
  at += 2;
  if (elen == 0 || elen > SL_EVENT_NAME_MAX || at + elen > n) return false;
  *m = (sl_msg){.type = kind == 'b' ? SL_MSG_BINARY : SL_MSG_EVENT,
                .event = p + at,
                .event_len = elen,
                .data = p + at + elen,
                .data_len = n - at - elen};
  /* Whatever reaches a client must be what our encoder would make: Redis
   * is shared ground, and a bad frame would cost every recipient its
   * connection. */
  if (kind != 'e' && kind != 'b' && kind != 's') return false;
  if (!sl_utf8_valid(m->event, m->event_len)) return false;
  return kind == 'b' || sl_jt_valid(m->data, m->data_len);
}

/* The channel's target: P:all, P:srv, P:room:<name>, P:client:<id>. */
static bool target_of(const sl_cluster *cl, const char *ch, size_t n, sl_to *to, const char **name, size_t *len) {
  size_t plen = strlen(cl->prefix);
  if (n <= plen || memcmp(ch, cl->prefix, plen) != 0) return false;
  ch += plen;
  n -= plen;
  static const struct {
    const char *tag;
    sl_to to;
  } tags[] = {{":all", SL_TO_ALL}, {":srv", SL_TO_NODES}, {":room:", SL_TO_ROOM}, {":client:", SL_TO_CLIENT}};
  for (size_t i = 0; i < sizeof tags / sizeof *tags; i++) {
    size_t tlen = strlen(tags[i].tag);
    bool whole = tags[i].to == SL_TO_ALL || tags[i].to == SL_TO_NODES;
    if (whole ? (n == tlen && memcmp(ch, tags[i].tag, n) == 0) : (n > tlen && memcmp(ch, tags[i].tag, tlen) == 0)) {
      *to = tags[i].to;
      *name = ch + tlen;
      *len = n - tlen;
      return true;
    }
  }
  return false;
}

static void on_message(redisAsyncContext *ac, void *r, void *ud) {
  (void)ud;
  sl_cluster *cl = ac->data;
  const redisReply *reply = r;
  if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) return;
  const redisReply *kind = reply->element[0], *ch = reply->element[1], *body = reply->element[2];
  if (kind->type != REDIS_REPLY_STRING || strcmp(kind->str, "message") != 0 || ch->type != REDIS_REPLY_STRING ||
      body->type != REDIS_REPLY_STRING)
    return;
  char origin[NODE_ID_MAX + 1], exclude[SL_ID_MAX + 1];
  sl_msg m;
  sl_to to;
  const char *name;
  size_t len;
  if (!decode(body->str, body->len, &m, origin, exclude) || !target_of(cl, ch->str, ch->len, &to, &name, &len)) {
    sl_warn("cluster: ignored a malformed message on %s", ch->str);
    return;
  }
  if (strcmp(origin, cl->node_id) == 0) return; /* delivered here when it was sent */
  cl->received++;
  sl_app_from_cluster(cl->server, to, name, len, &m, exclude[0] ? exclude : NULL, origin);
  sl_msg_release(&m);
}

static void subscribe(sl_cluster *cl, const char *verb, const sl_sbuf *channel) {
  if (!channel) return;
  const char *argv[2] = {verb, channel->data};
  size_t lens[2] = {strlen(verb), channel->len};
  redisAsyncCommandArgv(cl->sub.ac, on_message, NULL, 2, argv, lens);
}

static void subscribe_all(sl_cluster *cl) {
  subscribe(cl, "SUBSCRIBE", name_of(cl, ":all", NULL, 0));
  subscribe(cl, "SUBSCRIBE", name_of(cl, ":srv", NULL, 0));
  const sl_map *rooms = &cl->server->rooms.by_name;
  for (size_t i = 0; i < rooms->cap; i++) {
    const sl_room *r = rooms->slots[i].key ? rooms->slots[i].value : NULL;
    if (r) subscribe(cl, "SUBSCRIBE", name_of(cl, ":room:", r->name, r->name_len));
  }
  for (sl_conn *c = cl->server->conns; c; c = c->next)
    if (c->registered) subscribe(cl, "SUBSCRIBE", name_of(cl, ":client:", c->id, c->id_len));
}

/* ---- publishing ---- */

bool sl_cluster_publish(sl_cluster *cl, sl_to to, const char *name, size_t len, const sl_msg *m,
                        const char *exclude_id) {
  if (!cmd_ready(cl) || sdslen(cl->cmd.ac->c.obuf) > PUBLISH_BACKLOG_MAX) {
    cl->dropped++;
    return false;
  }
  static const char *const channel_kinds[] = {[SL_TO_ALL] = ":all", [SL_TO_ROOM] = ":room:",
                                              [SL_TO_CLIENT] = ":client:", [SL_TO_NODES] = ":srv"};
  size_t olen = strlen(cl->node_id), xlen = exclude_id ? strnlen(exclude_id, SL_ID_MAX) : 0;
  sl_sbuf *b = &cl->payload;
  sl_sbuf_reset(b);
  char head[3] = {WIRE_VERSION, to == SL_TO_NODES ? 's' : m->type == SL_MSG_BINARY ? 'b' : 'e', (char)olen};
  char elen[2] = {(char)(m->event_len >> 8), (char)m->event_len};
  char x = (char)xlen;
  int r = sl_sbuf_append(b, head, 3) | sl_sbuf_append(b, cl->node_id, olen) | sl_sbuf_append(b, &x, 1) |
          sl_sbuf_append(b, exclude_id, xlen) | sl_sbuf_append(b, elen, 2) |
          sl_sbuf_append(b, m->event, m->event_len) | sl_sbuf_append(b, m->data, m->data_len);
  const sl_sbuf *channel = name_of(cl, channel_kinds[to], name, len);
  if (r != 0 || !channel) {
    cl->dropped++;
    return false;
  }
  const char *argv[3] = {"PUBLISH", channel->data, b->data};
  size_t lens[3] = {7, channel->len, b->len};
  fire(cl, 3, argv, lens);
  cl->published++;
  return true;
}

/* ---- queries ---- */

typedef struct {
  sl_cluster_answer answer;
  void *ud;
} pending_query;

static void on_query_reply(redisAsyncContext *ac, void *r, void *ud) {
  (void)ac;
  pending_query *q = ud;
  const redisReply *reply = r;
  if (reply && reply->type == REDIS_REPLY_ERROR) {
    sl_warn("cluster: a query failed: %s", reply->str);
    reply = NULL;
  }
  q->answer(q->ud, reply);
  free(q);
}

int sl_cluster_query(sl_cluster *cl, const char *room, size_t len, sl_cluster_answer answer, void *ud) {
  if (!cmd_ready(cl)) return -1;
  pending_query *q = malloc(sizeof *q);
  if (!q) return -1;
  *q = (pending_query){answer, ud};
  run_script(cl, room ? "members" : "clients", room ? room : "", room ? len : 0, on_query_reply, q);
  return 0;
}

/* ---- links ---- */

static bool links_up(const sl_cluster *cl) { return cl->cmd.up && cl->sub.up; }

static void became_up(sl_cluster *cl) {
  if (!links_up(cl)) return;
  cl->backoff_ms = RETRY_FIRST_MS;
  if (cl->degraded_since) {
    sl_info("cluster healed: node %s reconnected to redis %s:%d after %llu ms", cl->node_id, cl->host, cl->port,
            (unsigned long long)(sl_now_ms() - cl->degraded_since));
  } else {
    sl_info("cluster: node %s connected to redis %s:%d (prefix %s)", cl->node_id, cl->host, cl->port, cl->prefix);
  }
  cl->degraded_since = 0;
  cl->ever_up = true;
}

static void became_down(sl_cluster *cl, const char *why) {
  if (cl->stopping || cl->degraded_since) return;
  cl->degraded_since = sl_now_ms();
  if (cl->ever_up)
    sl_warn("cluster degraded: lost redis %s:%d (%s); serving local clients, retrying", cl->host, cl->port, why);
  else
    sl_warn("cluster degraded: redis %s:%d unreachable (%s); serving local clients, retrying", cl->host, cl->port,
            why);
}

static void handle_closed(uv_handle_t *h) {
  sl_cluster *cl = h->data;
  if (--cl->open_handles > 0) return;
  sl_sbuf_free(&cl->name);
  sl_sbuf_free(&cl->payload);
  free(cl->host);
  free(cl->password);
  free(cl->prefix);
  free(cl);
}

static void close_if_done(sl_cluster *cl) {
  if (!cl->stopping || cl->cmd.ac || cl->sub.ac || cl->open_handles != 2) return;
  uv_close((uv_handle_t *)&cl->retry, handle_closed);
  uv_close((uv_handle_t *)&cl->beat, handle_closed);
}

static void on_retry(uv_timer_t *h) {
  sl_cluster *cl = h->data;
  if (!cl->cmd.ac) link_open(cl, &cl->cmd);
  if (!cl->sub.ac) link_open(cl, &cl->sub);
}

static void schedule_retry(sl_cluster *cl) {
  if (cl->stopping || uv_is_active((uv_handle_t *)&cl->retry)) return;
  uv_timer_start(&cl->retry, on_retry, cl->backoff_ms, 0);
  cl->backoff_ms = cl->backoff_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : cl->backoff_ms * 2;
}

static link *link_of(sl_cluster *cl, const redisAsyncContext *ac) { return ac == cl->cmd.ac ? &cl->cmd : &cl->sub; }

static void link_lost(sl_cluster *cl, link *l, const char *why) {
  l->ac = NULL;
  l->up = false;
  became_down(cl, why);
  schedule_retry(cl);
  close_if_done(cl);
}

static void on_connect(const redisAsyncContext *ac, int status) {
  sl_cluster *cl = ac->data;
  link *l = link_of(cl, ac);
  if (status != REDIS_OK) return link_lost(cl, l, ac->errstr); /* hiredis frees ac */
  l->up = true;
  if (l == &cl->cmd) register_node(cl);
  else subscribe_all(cl);
  became_up(cl);
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
  sl_cluster *cl = ac->data;
  link_lost(cl, link_of(cl, ac), status == REDIS_OK ? "closed" : ac->errstr);
}

static void link_open(sl_cluster *cl, link *l) {
  redisAsyncContext *ac = redisAsyncConnect(cl->host, cl->port);
  if (!ac) return schedule_retry(cl);
  if (ac->err) {
    became_down(cl, ac->errstr);
    redisAsyncFree(ac);
    return schedule_retry(cl);
  }
  ac->data = cl;
  if (sl_redis_attach(ac, cl->server->loop) != REDIS_OK) {
    redisAsyncFree(ac);
    return schedule_retry(cl);
  }
  l->ac = ac;
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  /* Queued until the connection is made, so they come first. */
  if (cl->password[0]) redisAsyncCommand(ac, NULL, NULL, "AUTH %s", cl->password);
  if (cl->db) redisAsyncCommand(ac, NULL, NULL, "SELECT %d", cl->db);
}

/* ---- life ---- */

static void random_id(char *out, size_t size) {
  uint8_t bytes[8];
  uv_random(NULL, NULL, bytes, sizeof bytes, 0, NULL);
  for (size_t i = 0; i < sizeof bytes && 2 * i + 2 < size; i++) snprintf(out + 2 * i, 3, "%02x", bytes[i]);
}

sl_cluster *sl_cluster_new(sl_server *s, const sl_cluster_config *cfg) {
  redis_url u;
  if (parse_url(cfg->redis_url, &u)) return NULL; /* checked with the options */
  sl_cluster *cl = calloc(1, sizeof *cl);
  if (!cl) return NULL;
  cl->server = s;
  cl->host = strdup(u.host);
  cl->password = strdup(u.password);
  cl->prefix = strdup(cfg->prefix ? cfg->prefix : "stelar");
  if (!cl->host || !cl->password || !cl->prefix) {
    free(cl->host);
    free(cl->password);
    free(cl->prefix);
    free(cl);
    return NULL;
  }
  cl->port = u.port;
  cl->db = u.db;
  cl->node_timeout = cfg->node_timeout;
  if (cfg->node_id) snprintf(cl->node_id, sizeof cl->node_id, "%s", cfg->node_id);
  else random_id(cl->node_id, sizeof cl->node_id);
  cl->backoff_ms = RETRY_FIRST_MS;
  uv_timer_init(s->loop, &cl->retry);
  uv_timer_init(s->loop, &cl->beat);
  cl->retry.data = cl->beat.data = cl;
  cl->open_handles = 2;
  uv_unref((uv_handle_t *)&cl->retry); /* retrying alone keeps nothing running */
  uv_unref((uv_handle_t *)&cl->beat);
  uint64_t period = cl->node_timeout / 3 ? cl->node_timeout / 3 : 1;
  uv_timer_start(&cl->beat, on_beat, period, period);
  link_open(cl, &cl->cmd);
  link_open(cl, &cl->sub);
  return cl;
}

void sl_cluster_stop(sl_cluster *cl) {
  if (cl->cmd.up) run_script(cl, "bye", NULL, 0, NULL, NULL);
  cl->stopping = true;
  uv_timer_stop(&cl->retry);
  uv_timer_stop(&cl->beat);
  /* A connected link says goodbye and closes through on_disconnect; one
   * still connecting is simply freed (hiredis calls nothing for it). */
  link *links[2] = {&cl->cmd, &cl->sub};
  for (int i = 0; i < 2; i++) {
    redisAsyncContext *ac = links[i]->ac;
    if (!ac) continue;
    if (links[i]->up) {
      redisAsyncDisconnect(ac);
    } else {
      links[i]->ac = NULL;
      redisAsyncFree(ac);
    }
  }
  close_if_done(cl);
}

sl_cluster_stats sl_cluster_get_stats(const sl_cluster *cl) {
  return (sl_cluster_stats){cl->node_id, links_up(cl), cl->published, cl->received, cl->dropped};
}
