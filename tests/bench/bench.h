/* stelar-bench: a load generator for stelar-lua on libuv. One process, one
 * loop, one core. Connections own buffers allocated once per slot; replies
 * are parsed where they were read; everything a connection sends in one
 * loop turn leaves in one write. */
#ifndef BENCH_H
#define BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "stats.h"

typedef enum { TRANSPORT_WS, TRANSPORT_TCP } transport;

typedef struct {
  const char *workload;
  transport transport;
  int port, tcp_port;
  int sender_port;  /* fanout: senders connect here (another node of a cluster); 0 = port */
  int connections;  /* echo/ack: connections; fanout: receivers; connect: concurrent attempts; idle: N */
  int depth;        /* messages in flight per connection (per sender for fanout) */
  int senders;      /* fanout */
  int concurrency;  /* idle: connection attempts at once */
  int source_addrs; /* 127.0.0.1 .. 127.0.0.<k>; 0 = automatic */
  int payload;      /* bytes of the message's data JSON */
  double duration, warmup, setup_timeout, settle;
  int server_pid;   /* 0 = unknown */
  bool self_test;
  bool spin;        /* poll without sleeping: no wake-up of ours in a latency figure */
  double rate;      /* echo/ack: requests per second in all, paced (implies spin); 0 = as fast as replies come */
} options;

typedef enum { PHASE_SETUP, PHASE_WARMUP, PHASE_MEASURE, PHASE_DONE } phase;

typedef enum {
  CONN_IDLE,       /* slot unused, or closed */
  CONN_CONNECTING, /* TCP connect in progress */
  CONN_HANDSHAKE,  /* waiting for 101 (WebSocket) or CONNECT (TCP) */
  CONN_OPEN,
  CONN_CLOSING,    /* our close frame sent; waiting for the server to hang up */
} conn_state;

typedef struct bench bench;
typedef struct bconn bconn;

/* One message as the workloads see it: its event name and, for WebSocket,
 * the whole envelope, for TCP the frame's payload. */
typedef struct {
  uint8_t tcp_type; /* 0 for WebSocket */
  const char *event;
  size_t event_len;
  const uint8_t *body;
  size_t body_len;
} message;

struct bconn {
  uv_tcp_t tcp;
  uv_connect_t connect_req;
  uv_write_t write_req;
  bench *b;
  int index;
  int role; /* the workload's own tag */
  const struct sockaddr_in *target; /* the server it connects to */
  conn_state state;
  bool closing; /* uv_close called, close callback not yet run */
  bool writing; /* a uv_write owns out[out_head, write_end) */
  bool dirty;   /* on the bench's flush list */
  bconn *next_dirty;
  /* inbound bytes not yet parsed */
  uint8_t *in;
  size_t in_len, in_cap;
  /* outbound bytes: [out_head, out_len) not yet written */
  uint8_t *out;
  size_t out_head, out_len, out_cap, write_end;
  uint32_t in_flight; /* requests awaiting their reply */
  uint64_t next_id;   /* ACK correlation ids */
  uint64_t started_ns;
  uint64_t attempt; /* connection attempts made from this slot */
  int read_ticket;  /* its read in the turn's io_uring batch, or -1 */
};

/* What a workload does at each point of a connection's life. */
typedef struct {
  const char *name;
  /* Sizes the connections and starts connecting; returns -1 on a bad setup. */
  int (*setup)(bench *b);
  /* A connection finished its handshake. */
  void (*on_open)(bconn *c);
  void (*on_message)(bconn *c, const message *m);
  /* A connection's close callback ran (after an error, a hang-up or our close). */
  void (*on_closed)(bconn *c);
  /* Every connection is ready: start the load (or the measurement, for idle). */
  void (*start)(bench *b);
  /* Appends the workload's own key=value pairs to the RESULT line. */
  void (*report)(bench *b, char *line, size_t cap);
} workload_ops;

/* A message body split around the two values that change per message:
 * prefix <timestamp> middle [<correlation id> suffix]. */
typedef struct {
  char *prefix, *middle; /* built once at setup */
  const char *suffix;
  size_t prefix_len, middle_len, suffix_len;
  bool with_id;
  uint8_t tcp_type;
  const char *event; /* the event name (a TCP frame carries it in its header) */
} msg_template;

struct bench {
  uv_loop_t *loop;
  options opt;
  const workload_ops *ops;
  bconn *conns;
  int nconns;
  struct sockaddr_in target;
  struct sockaddr_in sender_target; /* fanout senders', with --sender-port */
  uv_timer_t phase_timer;
  uv_check_t flusher;
  bconn *dirty_head;
  phase phase;
  uint64_t t0_ns;  /* message timestamps count from here */
  size_t stamp_at; /* where the last reply had its timestamp: replies share a layout */
  uint64_t now_ns; /* taken once per read callback */
  int ready;       /* connections that finished their setup */
  uint64_t events; /* replies, deliveries or handshakes: the workload's unit */
  uint64_t errors;
  uint64_t events_at_start;
  uint64_t reads, reads_at_start; /* reads that brought bytes, all connections */
  uint64_t window_start_ns, window_end_ns;
  uint64_t cpu_at_start, cpu_at_end;
  uint64_t server_cpu_at_start, server_cpu_at_end;
  bool server_cpu_known;
  uint64_t busy_at_start, busy_at_end; /* the whole machine's */
  bool failed; /* the run could not be completed (setup timeout, ...) */
  const char *fail_reason;
  hist latency;
  msg_template tmpl;
  uint8_t *scratch; /* one message body is built here before framing */
  size_t scratch_cap;
  uint32_t rng;
  uint64_t next_paced_ns; /* --rate: when the next request is due */
  int next_paced_conn;
  void *workload_state;
};

/* ---- net.c: connections ---- */
void conn_init(bench *b, bconn *c, int index, int role, size_t in_cap, size_t out_cap);
/* Opens a TCP connection from slot c (its source address chosen by attempt count). */
void conn_start(bconn *c);
/* Closes now (no close frame). on_closed runs from the close callback. */
void conn_close(bconn *c);
/* Appends a message built from the template; false when the buffer is full. */
bool conn_send_template(bconn *c, const msg_template *t, uint64_t stamp, uint64_t id);
/* Appends a WebSocket frame (masked) or a TCP frame. */
bool conn_send_ws(bconn *c, uint8_t opcode, const void *payload, size_t len);
bool conn_send_tcp(bconn *c, uint8_t type, const char *event, const void *payload, size_t len);
/* Sends the WebSocket close frame and waits for the server to hang up. */
void conn_begin_close(bconn *c);
void net_start(bench *b);
/* Counts an error and says what it was (the first few of each run). */
void bench_error(bench *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
uint32_t bench_random(bench *b);

/* ---- stelar_bench.c: the run's phases ---- */
/* The workload's connections are ready: run start(), then warm-up and measure. */
void bench_ready(bench *b);
/* Begins warm-up then the measured window; at its end, reports and stops. */
void bench_run_window(bench *b);
/* Ends the measured window: wall clock, our CPU time, the server's. */
void bench_close_window(bench *b);
/* Prints the RESULT line and stops the loop. */
void bench_finish(bench *b);
/* Ends the run as failed; reason is one word (it goes in reason=). */
void bench_fail(bench *b, const char *reason);
bool bench_running(const bench *b); /* warm-up or measure */

/* ---- workloads.c ---- */
const workload_ops *workload_find(const char *name);
/* --rate: sends the requests due by now, round robin over the connections
 * (each keeps at most --depth in flight); called between loop turns. */
void workload_pace(bench *b);
/* Builds b->tmpl for an event carrying {"t":..,"p":".."} of opt.payload bytes. */
int template_build(bench *b, const char *event, bool ack);
/* The latency of a reply that carries our timestamp; records it while measuring. */
void record_latency(bench *b, const message *m);

/* ---- mirror.c: the self-test's trivial echo server ---- */
/* Forks a server on 127.0.0.1 that echoes frames back without any JSON or
 * Lua work; fills in its ports and pid. */
int mirror_spawn(int *ws_port, int *tcp_port, int *pid);

#endif
