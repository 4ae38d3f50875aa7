/* The workloads: what each connection sends, what it counts, and the keys
 * each adds to its RESULT line. */
#define _GNU_SOURCE /* asprintf */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "wire.h"

#define ROOM "bench"
#define SMALL_IN 2048 /* a 101 answer, a CONNECT frame, pings */
#define SMALL_OUT 1024 /* an upgrade request, pongs, a close frame */

static bool event_is(const message *m, const char *name) {
  size_t n = strlen(name);
  return m->event_len == n && memcmp(m->event, name, n) == 0;
}

static uint64_t stamp_now(const bench *b) { return b->now_ns - b->t0_ns; }

/* Bytes one templated message takes on the wire, framing included. */
static size_t frame_bytes(const bench *b) { return b->scratch_cap + WS_MAX_HEADER + TCP_HEADER + 64; }

/* Room for `depth` messages twice over: the window refills while the
 * previous write may still be draining. */
static size_t window_out_cap(const bench *b, int depth) {
  size_t n = 2 * (size_t)depth * frame_bytes(b) + SMALL_OUT;
  return n < 4096 ? 4096 : n;
}

static size_t window_in_cap(const bench *b, int depth) {
  size_t n = 4 * (size_t)depth * frame_bytes(b);
  return n < 16384 ? 16384 : n;
}

int template_build(bench *b, const char *event, bool ack) {
  /* data = {"t":<ns since start, ~10 digits>,"p":"<pad>"}: ~24 bytes besides the padding */
  int pad_len = b->opt.payload > 24 ? b->opt.payload - 24 : 0;
  char *pad = malloc((size_t)pad_len + 1);
  if (!pad) return -1;
  memset(pad, 'x', (size_t)pad_len);
  pad[pad_len] = '\0';
  msg_template *t = &b->tmpl;
  int ok;
  if (b->opt.transport == TRANSPORT_WS) {
    ok = asprintf(&t->prefix, "{\"event\":\"%s\",\"data\":{\"t\":", event) > 0 &&
         (ack ? asprintf(&t->middle, ",\"p\":\"%s\"},\"_ackName\":\"%s\",\"_correlationId\":\"", pad, event)
              : asprintf(&t->middle, ",\"p\":\"%s\"}}", pad)) > 0;
  } else {
    ok = asprintf(&t->prefix, ack ? "{\"data\":{\"t\":" : "{\"t\":") > 0 &&
         (ack ? asprintf(&t->middle, ",\"p\":\"%s\"},\"_correlationId\":\"", pad)
              : asprintf(&t->middle, ",\"p\":\"%s\"}", pad)) > 0;
  }
  free(pad);
  if (!ok) return -1;
  t->suffix = "\"}";
  t->prefix_len = strlen(t->prefix);
  t->middle_len = strlen(t->middle);
  t->suffix_len = strlen(t->suffix);
  t->with_id = ack;
  t->tcp_type = ack ? TCP_ACK_REQ : TCP_JSON;
  t->event = event;
  b->scratch_cap = t->prefix_len + t->middle_len + t->suffix_len + 48; /* two numbers of <= 20 digits */
  b->scratch = malloc(b->scratch_cap);
  return b->scratch ? 0 : -1;
}

void record_latency(bench *b, const message *m) {
  uint64_t sent;
  if (!json_find_uint(m->body, m->body_len, "\"t\":", 4, &b->stamp_at, &sent)) {
    bench_error(b, "a reply without our timestamp: %.*s", (int)(m->body_len < 80 ? m->body_len : 80),
                (const char *)m->body);
    return;
  }
  uint64_t now = stamp_now(b);
  if (b->phase == PHASE_MEASURE && now >= sent) hist_record(&b->latency, now - sent);
}

static bool send_request(bconn *c) {
  bool ok = conn_send_template(c, &c->b->tmpl, stamp_now(c->b), c->next_id++);
  if (ok) c->in_flight++;
  return ok;
}

static int allocate_conns(bench *b, int n) {
  b->nconns = n;
  b->conns = calloc((size_t)n, sizeof *b->conns);
  return b->conns ? 0 : -1;
}

static void count_ready(bench *b) {
  if (++b->ready == b->nconns) bench_ready(b);
}

static void latency_keys(bench *b, char *line, size_t cap) {
  size_t n = strlen(line);
  snprintf(line + n, cap - n, " p50_us=%.1f p99_us=%.1f", (double)hist_quantile(&b->latency, 0.50) / 1000.0,
           (double)hist_quantile(&b->latency, 0.99) / 1000.0);
}

static double window_rate(const bench *b) {
  double secs = (double)(b->window_end_ns - b->window_start_ns) / 1e9;
  return secs > 0 ? (double)(b->events - b->events_at_start) / secs : 0;
}

/* A connection lost before the load starts would leave the run waiting
 * for the setup timeout: end it at once (the error says why). */
static void fail_if_setting_up(bconn *c) {
  if (c->b->phase == PHASE_SETUP) bench_fail(c->b, "connection_lost_in_setup");
}

/* ---- echo and ack: N connections, D requests in flight on each ---- */

static int request_setup(bench *b, const char *event, bool ack) {
  if (template_build(b, event, ack) || allocate_conns(b, b->opt.connections)) return -1;
  for (int i = 0; i < b->nconns; i++) {
    conn_init(b, &b->conns[i], i, 0, window_in_cap(b, b->opt.depth), window_out_cap(b, b->opt.depth));
    conn_start(&b->conns[i]);
  }
  return 0;
}

static int echo_setup(bench *b) { return request_setup(b, "echo", false); }
static int ack_setup(bench *b) { return request_setup(b, "echoAck", true); }

static void request_open(bconn *c) { count_ready(c->b); }

static void request_start(bench *b) {
  b->now_ns = b->next_paced_ns = uv_hrtime();
  for (int i = 0; i < b->nconns && b->opt.rate == 0; i++)
    for (int d = 0; d < b->opt.depth; d++) send_request(&b->conns[i]);
  bench_run_window(b);
}

static void request_reply(bconn *c, const message *m) {
  bench *b = c->b;
  if (!event_is(m, b->tmpl.event))
    return bench_error(b, "connection %d: unexpected event %.*s", c->index, (int)m->event_len, m->event);
  record_latency(b, m);
  b->events++;
  c->in_flight--;
  if (bench_running(b) && b->opt.rate == 0) send_request(c);
}

void workload_pace(bench *b) {
  if (!bench_running(b) || b->opt.rate == 0) return;
  uint64_t now = b->now_ns = uv_hrtime();
  uint64_t period_ns = (uint64_t)(1e9 / b->opt.rate);
  for (int sent = 0; b->next_paced_ns <= now && sent < b->nconns; sent++) {
    bconn *c = &b->conns[b->next_paced_conn];
    b->next_paced_conn = (b->next_paced_conn + 1) % b->nconns;
    b->next_paced_ns += period_ns;
    if (c->in_flight < (uint32_t)b->opt.depth) send_request(c);
  }
  if (b->next_paced_ns + period_ns < now) b->next_paced_ns = now; /* fell behind: no burst to catch up */
}

static void echo_report(bench *b, char *line, size_t cap) {
  size_t n = strlen(line);
  snprintf(line + n, cap - n, " msgs_per_sec=%.0f", window_rate(b));
  latency_keys(b, line, cap);
}

static void ack_report(bench *b, char *line, size_t cap) {
  size_t n = strlen(line);
  snprintf(line + n, cap - n, " round_trips_per_sec=%.0f", window_rate(b));
  latency_keys(b, line, cap);
}

/* ---- fanout: R receivers in one room, S senders shouting into it ---- */

enum { RECEIVER, SENDER };

typedef struct {
  int receivers, senders;
  uint64_t shouts_sent;
  bool starved; /* a sender waits for receivers to catch up */
} fanout_state;

static fanout_state fanout;

/* Deliveries sent for but not yet received. The server confirms a shout
 * ("sent") once it is queued to every receiver, not once it is read; a
 * bound on what is undelivered keeps the server's per-receiver queues
 * short (the generator reads on one core) so maxBufferedBytes never trips. */
static bool room_has_space(const bench *b) {
  uint64_t undelivered = fanout.shouts_sent * (uint64_t)fanout.receivers - b->events;
  return undelivered + (uint64_t)fanout.receivers <=
         (uint64_t)fanout.senders * (uint64_t)b->opt.depth * (uint64_t)fanout.receivers;
}

static void pump_sender(bconn *c) {
  bench *b = c->b;
  while (bench_running(b) && c->in_flight < (uint32_t)b->opt.depth) {
    if (!room_has_space(b)) {
      fanout.starved = true;
      return;
    }
    if (!send_request(c)) return;
    fanout.shouts_sent++;
  }
}

static void pump_senders(bench *b) {
  fanout.starved = false;
  for (int i = fanout.receivers; i < b->nconns; i++) pump_sender(&b->conns[i]);
}

static int fanout_setup(bench *b) {
  fanout.receivers = b->opt.connections;
  fanout.senders = b->opt.senders;
  if (template_build(b, "shout", false) || allocate_conns(b, fanout.receivers + fanout.senders)) return -1;
  for (int i = 0; i < b->nconns; i++) {
    bool receiver = i < fanout.receivers;
    conn_init(b, &b->conns[i], i, receiver ? RECEIVER : SENDER, receiver ? 65536 : window_in_cap(b, b->opt.depth),
              receiver ? SMALL_OUT : window_out_cap(b, b->opt.depth));
    if (!receiver) b->conns[i].target = &b->sender_target;
    conn_start(&b->conns[i]);
  }
  return 0;
}

static void fanout_open(bconn *c) {
  if (c->role == SENDER) return count_ready(c->b);
  if (c->b->opt.transport == TRANSPORT_TCP) {
    conn_send_tcp(c, TCP_JOIN, "join-room", ROOM, strlen(ROOM));
  } else {
    static const char join[] = "{\"event\":\"join-room\",\"data\":\"" ROOM "\"}";
    conn_send_ws(c, WS_TEXT, join, sizeof join - 1);
  }
}

static void fanout_start(bench *b) {
  b->now_ns = uv_hrtime();
  pump_senders(b);
  bench_run_window(b);
}

static void receiver_message(bconn *c, const message *m) {
  bench *b = c->b;
  if (event_is(m, "shout")) {
    record_latency(b, m);
    b->events++;
    if (fanout.starved && room_has_space(b)) pump_senders(b);
  } else if (event_is(m, "joined-room")) {
    count_ready(b);
  } else {
    bench_error(b, "receiver %d: unexpected event %.*s", c->index, (int)m->event_len, m->event);
  }
}

static void sender_message(bconn *c, const message *m) {
  if (!event_is(m, "sent"))
    return bench_error(c->b, "sender %d: unexpected event %.*s", c->index, (int)m->event_len, m->event);
  c->in_flight--;
  pump_sender(c);
}

static void fanout_message(bconn *c, const message *m) {
  (c->role == RECEIVER ? receiver_message : sender_message)(c, m);
}

/* How many deliveries a receiver's read brought: the shouts the server
 * took in one turn, whose sends each carry that many. The figure follows
 * it, and it follows how far the generator lags behind the server's sends
 * (Fanout in the README). The senders' reads count too: one a turn, next
 * to a read per receiver. */
static double deliveries_per_read(const bench *b) {
  uint64_t reads = b->reads - b->reads_at_start;
  return reads ? (double)(b->events - b->events_at_start) / (double)reads : 0;
}

static void fanout_report(bench *b, char *line, size_t cap) {
  size_t n = strlen(line);
  double rate = window_rate(b);
  snprintf(line + n, cap - n, " senders=%d deliveries_per_sec=%.0f shouts_per_sec=%.0f deliveries_per_read=%.2f",
           fanout.senders, rate, rate / fanout.receivers, deliveries_per_read(b));
  latency_keys(b, line, cap);
}

/* ---- connect: up to N attempts at once, each connect, upgrade, close ---- */

static int connect_setup(bench *b) {
  if (allocate_conns(b, b->opt.connections)) return -1;
  for (int i = 0; i < b->nconns; i++) {
    conn_init(b, &b->conns[i], i, 0, SMALL_IN, SMALL_OUT);
    conn_start(&b->conns[i]);
  }
  bench_ready(b); /* the load is the connecting itself */
  return 0;
}

static void connect_open(bconn *c) {
  bench *b = c->b;
  if (b->phase == PHASE_MEASURE) hist_record(&b->latency, b->now_ns - c->started_ns);
  b->events++;
  conn_begin_close(c);
}

static void connect_message(bconn *c, const message *m) { (void)c, (void)m; }

static void connect_closed(bconn *c) {
  if (bench_running(c->b)) conn_start(c);
}

static void connect_start(bench *b) { bench_run_window(b); }

/* The target is per server core: the rate divided by the share of a core the
 * server used, which tells the server's cost when the generator is the bound. */
static void connect_report(bench *b, char *line, size_t cap) {
  size_t n = strlen(line);
  double rate = window_rate(b);
  snprintf(line + n, cap - n, " handshakes_per_sec=%.0f", rate);
  double wall_ns = (double)(b->window_end_ns - b->window_start_ns);
  double server_ns = (double)(b->server_cpu_at_end - b->server_cpu_at_start);
  if (b->server_cpu_known && server_ns > 0) {
    n = strlen(line);
    snprintf(line + n, cap - n, " handshakes_per_server_core=%.0f server_us_per_handshake=%.1f",
             rate * wall_ns / server_ns, server_ns / 1e3 / (rate * wall_ns / 1e9));
  }
  latency_keys(b, line, cap);
}

/* ---- idle: N open connections, the server's RSS before and after ---- */

#define IDLE_RETRIES 3

typedef struct {
  int next_slot; /* the next slot to open */
  uint64_t rss_before, rss_after;
  uint64_t anon_before, anon_after;
  uint64_t opened_ns;
} idle_state;

static idle_state idle;

static void idle_open_next(bench *b) {
  if (idle.next_slot < b->nconns) conn_start(&b->conns[idle.next_slot++]);
}

static int idle_setup(bench *b) {
  if (b->opt.server_pid <= 0) {
    fprintf(stderr, "stelar-bench: idle needs --server-pid to read the server's RSS\n");
    return -1;
  }
  if (!proc_rss_kib(b->opt.server_pid, &idle.rss_before) || !proc_anon_kib(b->opt.server_pid, &idle.anon_before)) {
    fprintf(stderr, "stelar-bench: cannot read /proc/%d/status\n", b->opt.server_pid);
    return -1;
  }
  if (allocate_conns(b, b->opt.connections)) return -1;
  for (int i = 0; i < b->nconns; i++) conn_init(b, &b->conns[i], i, 0, SMALL_IN, SMALL_OUT);
  for (int i = 0; i < b->opt.concurrency; i++) idle_open_next(b);
  return 0;
}

static void idle_open(bconn *c) {
  idle_open_next(c->b);
  count_ready(c->b);
}

/* A connection that failed while opening is tried again a few times. */
static void idle_closed(bconn *c) {
  bench *b = c->b;
  if (b->phase == PHASE_SETUP && c->attempt < IDLE_RETRIES) conn_start(c);
  else if (b->phase == PHASE_SETUP) {
    fprintf(stderr, "stelar-bench: connection %d failed to open %d times\n", c->index, IDLE_RETRIES);
    bench_fail(b, "open_failed");
  }
}

static void idle_message(bconn *c, const message *m) {
  bench_error(c->b, "idle connection %d got an event %.*s", c->index, (int)m->event_len, m->event);
}

static void idle_settled(uv_timer_t *t) {
  bench *b = t->data;
  if (!proc_rss_kib(b->opt.server_pid, &idle.rss_after) || !proc_anon_kib(b->opt.server_pid, &idle.anon_after))
    return bench_fail(b, "server_gone");
  bench_close_window(b);
  bench_finish(b);
}

/* Waits for the server to finish whatever the opening set in motion, then reads its RSS. */
static void idle_start(bench *b) {
  idle.opened_ns = uv_hrtime() - b->t0_ns;
  b->phase = PHASE_MEASURE;
  double settle = b->opt.settle < b->opt.duration ? b->opt.settle : b->opt.duration;
  b->phase_timer.data = b;
  uv_timer_start(&b->phase_timer, idle_settled, (uint64_t)(settle * 1000), 0);
}

static void idle_report(bench *b, char *line, size_t cap) {
  size_t n = strlen(line);
  double per_conn = ((double)idle.rss_after - (double)idle.rss_before) / b->nconns;
  double anon_per_conn = ((double)idle.anon_after - (double)idle.anon_before) / b->nconns;
  snprintf(line + n, cap - n,
           " opened=%d open_secs=%.2f rss_before_kib=%llu rss_after_kib=%llu kib_per_conn=%.2f anon_kib_per_conn=%.2f",
           b->ready, (double)idle.opened_ns / 1e9, (unsigned long long)idle.rss_before,
           (unsigned long long)idle.rss_after, per_conn, anon_per_conn);
}

static const workload_ops workloads[] = {
    {"echo", echo_setup, request_open, request_reply, fail_if_setting_up, request_start, echo_report},
    {"ack", ack_setup, request_open, request_reply, fail_if_setting_up, request_start, ack_report},
    {"fanout", fanout_setup, fanout_open, fanout_message, fail_if_setting_up, fanout_start, fanout_report},
    {"connect", connect_setup, connect_open, connect_message, connect_closed, connect_start, connect_report},
    {"idle", idle_setup, idle_open, idle_message, idle_closed, idle_start, idle_report},
};

const workload_ops *workload_find(const char *name) {
  for (size_t i = 0; i < sizeof workloads / sizeof *workloads; i++)
    if (strcmp(workloads[i].name, name) == 0) return &workloads[i];
  return NULL;
}
