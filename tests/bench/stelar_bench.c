/* stelar-bench: the load generator of scripts/bench.
 *
 *   stelar-bench --workload echo|ack|fanout|connect|idle --transport ws|tcp
 *                --port P [--tcp-port P2] [--sender-port P3] [--connections N] [--depth D]
 *                [--senders S] [--duration S] [--payload BYTES]
 *                [--server-pid PID] [--concurrency C] [--source-addrs K] [--spin] [--rate R]
 *   stelar-bench --self-test [--workload echo|ack|fanout|connect|idle] ...
 *   stelar-bench --core-probe
 *
 * Prints one `RESULT key=value ...` line on stdout, the rest on stderr.
 * Targets 127.0.0.1 only. Every run ends by itself: the setup has a time
 * limit, the load runs for --duration after a warm-up, and an alarm ends
 * the process if anything hangs beyond that.
 *
 * --spin polls the loop without ever sleeping (its core at 100%): a
 * round trip then no longer includes the generator being woken, which on
 * this VM is a good part of a 1x1 latency.
 *
 * --rate R (echo, ack) sends R requests a second in all, evenly spaced,
 * instead of each reply's next request: the server's CPU at a given load
 * rather than at its limit. Pacing finer than libuv's millisecond timers
 * needs a loop that never sleeps, so it spins.
 *
 * --core-probe times a fixed loop of additions on the core it runs on and
 * prints `PROBE ms=X` (the fastest of three): how fast the host lets this
 * virtual CPU run right now. scripts/bench waits for both cores to be at
 * their speed before a run and prints the figure beside each result. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define LINE_CAP 1024

static bench the_bench;
static char hard_stop_line[LINE_CAP];

static void usage(void) {
  fprintf(stderr,
          "usage: stelar-bench --workload echo|ack|fanout|connect|idle --transport ws|tcp --port P\n"
          "         [--tcp-port P2] [--sender-port P3] [--connections N] [--depth D] [--senders S] [--duration SECS]\n"
          "         [--payload BYTES] [--server-pid PID] [--concurrency C] [--source-addrs K]\n"
          "         [--warmup SECS] [--setup-timeout SECS] [--settle SECS] [--host 127.0.0.1] [--spin] [--rate R]\n"
          "       stelar-bench --self-test [--workload echo|ack|fanout|connect|idle] [...]\n"
          "       stelar-bench --core-probe\n");
  exit(2);
}

static double number_arg(const char *flag, const char *value, double min, double max) {
  char *end;
  double v = strtod(value, &end);
  if (*end != '\0' || v < min || v > max) {
    fprintf(stderr, "stelar-bench: %s wants a number from %g to %g, got '%s'\n", flag, min, max, value);
    exit(2);
  }
  return v;
}

/* Refuses anything but the loopback address: this tool floods what it targets. */
static void check_host(const char *host) {
  if (strcmp(host, "127.0.0.1") == 0 || strcmp(host, "localhost") == 0) return;
  fprintf(stderr, "stelar-bench: refusing host '%s': the bench targets 127.0.0.1 only\n", host);
  exit(2);
}

static options parse_args(int argc, char **argv) {
  options o = {.workload = "echo", .transport = TRANSPORT_WS, .connections = 100, .depth = 8, .senders = 1,
               .concurrency = 256, .payload = 64, .duration = 5, .warmup = 0.5, .setup_timeout = 30,
               .settle = 1.0};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--self-test") == 0) {
      o.self_test = true;
      continue;
    }
    if (strcmp(a, "--spin") == 0) {
      o.spin = true;
      continue;
    }
    if (i + 1 >= argc) usage();
    const char *v = argv[++i];
    if (strcmp(a, "--workload") == 0) o.workload = v;
    else if (strcmp(a, "--transport") == 0 && (strcmp(v, "ws") == 0 || strcmp(v, "tcp") == 0))
      o.transport = strcmp(v, "ws") == 0 ? TRANSPORT_WS : TRANSPORT_TCP;
    else if (strcmp(a, "--host") == 0) check_host(v);
    else if (strcmp(a, "--port") == 0) o.port = (int)number_arg(a, v, 1, 65535);
    else if (strcmp(a, "--tcp-port") == 0) o.tcp_port = (int)number_arg(a, v, 1, 65535);
    else if (strcmp(a, "--sender-port") == 0) o.sender_port = (int)number_arg(a, v, 1, 65535);
    else if (strcmp(a, "--connections") == 0) o.connections = (int)number_arg(a, v, 1, 1000000);
    else if (strcmp(a, "--depth") == 0) o.depth = (int)number_arg(a, v, 1, 100000);
    else if (strcmp(a, "--senders") == 0) o.senders = (int)number_arg(a, v, 1, 10000);
    else if (strcmp(a, "--concurrency") == 0) o.concurrency = (int)number_arg(a, v, 1, 100000);
    else if (strcmp(a, "--source-addrs") == 0) o.source_addrs = (int)number_arg(a, v, 1, 254);
    else if (strcmp(a, "--payload") == 0) o.payload = (int)number_arg(a, v, 0, 1 << 20);
    else if (strcmp(a, "--duration") == 0) o.duration = number_arg(a, v, 0.1, 3600);
    else if (strcmp(a, "--warmup") == 0) o.warmup = number_arg(a, v, 0, 60);
    else if (strcmp(a, "--setup-timeout") == 0) o.setup_timeout = number_arg(a, v, 1, 600);
    else if (strcmp(a, "--settle") == 0) o.settle = number_arg(a, v, 0, 60);
    else if (strcmp(a, "--server-pid") == 0) o.server_pid = (int)number_arg(a, v, 1, 1 << 22);
    else if (strcmp(a, "--rate") == 0) o.rate = number_arg(a, v, 1, 10e6);
    else usage();
  }
  if (o.rate && strcmp(o.workload, "echo") != 0 && strcmp(o.workload, "ack") != 0) {
    fprintf(stderr, "stelar-bench: --rate is for echo and ack\n");
    exit(2);
  }
  o.spin |= o.rate > 0;
  return o;
}

/* Each source address brings its own ~28k ephemeral ports. The kernel finds
 * a free port by probing from an offset, and ports taken in sequence sit
 * together: from one address, the 19,000th connect() probes thousands of
 * ports (perf: __inet_check_established), so opening N idle connections
 * costs O(N^2). A few thousand per address keeps each connect() O(1). The
 * connect workload leaves tens of thousands of ports in TIME_WAIT per run:
 * sixteen addresses keep those out of each other's way too. */
#define CONNECTIONS_PER_SOURCE 4000
#define CONNECT_SOURCES 16

static int source_addrs_for(const options *o) {
  if (o->source_addrs) return o->source_addrs;
  if (strcmp(o->workload, "connect") == 0) return CONNECT_SOURCES;
  if (strcmp(o->workload, "idle") != 0) return 1;
  int k = (o->connections + CONNECTIONS_PER_SOURCE - 1) / CONNECTIONS_PER_SOURCE;
  return k < 1 ? 1 : k > 254 ? 254 : k;
}

/* Both ends of an idle run hold one descriptor per connection. */
static void raise_file_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
}

static const char *transport_name(const bench *b) { return b->opt.transport == TRANSPORT_WS ? "ws" : "tcp"; }

static size_t result_head(const bench *b, char *line, size_t cap) {
  char rate[32] = "";
  if (b->opt.rate) snprintf(rate, sizeof rate, " rate=%.0f", b->opt.rate);
  int n = snprintf(line, cap, "RESULT workload=%s transport=%s connections=%d depth=%d payload=%d%s%s%s",
                   b->opt.workload, transport_name(b), b->opt.connections, b->opt.depth, b->opt.payload,
                   b->opt.self_test ? " target=mirror" : "", b->opt.spin ? " client=spin" : "", rate);
  return n > 0 ? (size_t)n : 0;
}

/* The last resort of "every run is bounded": one line, then out. */
static void on_alarm(int sig) {
  (void)sig;
  ssize_t w = write(STDOUT_FILENO, hard_stop_line, strlen(hard_stop_line));
  (void)w;
  _exit(3);
}

static void arm_hard_stop(bench *b) {
  size_t n = result_head(b, hard_stop_line, LINE_CAP);
  snprintf(hard_stop_line + n, LINE_CAP - n, " status=fail reason=hard_stop\n");
  signal(SIGALRM, on_alarm);
  double bound = b->opt.setup_timeout + b->opt.warmup + b->opt.duration + b->opt.settle + 5;
  alarm((unsigned)bound + 1);
}

bool bench_running(const bench *b) { return b->phase == PHASE_WARMUP || b->phase == PHASE_MEASURE; }

static void take_server_cpu(bench *b, uint64_t *at) {
  if (b->opt.server_pid > 0 && proc_cpu_ns(b->opt.server_pid, at)) return;
  b->server_cpu_known = false;
}

/* Both ends of a window's CPU figures: ours, the server's, the machine's. */
static void take_cpu(bench *b, uint64_t *self, uint64_t *server, uint64_t *busy) {
  *self = self_cpu_ns();
  take_server_cpu(b, server);
  if (!machine_busy_ns(busy)) *busy = 0;
}

void bench_close_window(bench *b) {
  b->window_end_ns = uv_hrtime();
  take_cpu(b, &b->cpu_at_end, &b->server_cpu_at_end, &b->busy_at_end);
}

static void measure_ended(uv_timer_t *t) {
  bench *b = t->data;
  bench_close_window(b);
  bench_finish(b);
}

static void measure_began(uv_timer_t *t) {
  bench *b = t->data;
  b->phase = PHASE_MEASURE;
  b->events_at_start = b->events;
  b->reads_at_start = b->reads;
  b->window_start_ns = uv_hrtime();
  b->server_cpu_known = b->opt.server_pid > 0;
  take_cpu(b, &b->cpu_at_start, &b->server_cpu_at_start, &b->busy_at_start);
  uv_timer_start(&b->phase_timer, measure_ended, (uint64_t)(b->opt.duration * 1000), 0);
}

void bench_run_window(bench *b) {
  b->phase_timer.data = b;
  uv_timer_start(&b->phase_timer, measure_began, (uint64_t)(b->opt.warmup * 1000), 0);
}

void bench_ready(bench *b) {
  uv_timer_stop(&b->phase_timer);
  fprintf(stderr, "stelar-bench: %s %s: set up in %.2f s (%d connections)\n", b->opt.workload, transport_name(b),
          (double)(uv_hrtime() - b->t0_ns) / 1e9, b->ready);
  b->phase = PHASE_WARMUP;
  b->ops->start(b);
}

static void setup_timed_out(uv_timer_t *t) {
  bench *b = t->data;
  fprintf(stderr, "stelar-bench: only %d of %d connections ready after %.0f s\n", b->ready, b->nconns,
          b->opt.setup_timeout);
  bench_fail(b, "setup_timeout");
}

/* CPU as a percentage of one core over the window: the generator's (near
 * 100 means the figure is the generator's ceiling, not the server's), the
 * server's, and everything else the machine did meanwhile (other processes,
 * interrupt time): a high other_cpu_pct means the run was disturbed. */
static void append_cpu(const bench *b, char *line, size_t cap) {
  size_t n = strlen(line);
  double wall = (double)(b->window_end_ns - b->window_start_ns);
  if (wall <= 0) return;
  double self = (double)(b->cpu_at_end - b->cpu_at_start);
  double server = b->server_cpu_known ? (double)(b->server_cpu_at_end - b->server_cpu_at_start) : 0;
  snprintf(line + n, cap - n, " client_cpu_pct=%.0f", 100.0 * self / wall);
  n = strlen(line);
  if (b->server_cpu_known) snprintf(line + n, cap - n, " server_cpu_pct=%.0f", 100.0 * server / wall);
  n = strlen(line);
  if (b->busy_at_start && b->busy_at_end && b->server_cpu_known) {
    double other = (double)(b->busy_at_end - b->busy_at_start) - self - server;
    snprintf(line + n, cap - n, " other_cpu_pct=%.0f", other > 0 ? 100.0 * other / wall : 0.0);
  }
}

void bench_finish(bench *b) {
  if (b->phase == PHASE_DONE) return;
  b->phase = PHASE_DONE;
  uv_timer_stop(&b->phase_timer);
  if (b->window_end_ns == 0) { /* ended before the measured window closed */
    b->window_end_ns = uv_hrtime();
    b->cpu_at_end = self_cpu_ns();
    b->server_cpu_known = false;
  }
  char line[LINE_CAP];
  size_t n = result_head(b, line, sizeof line);
  snprintf(line + n, sizeof line - n, " duration=%.2f", (double)(b->window_end_ns - b->window_start_ns) / 1e9);
  if (!b->failed) b->ops->report(b, line, sizeof line);
  n = strlen(line);
  snprintf(line + n, sizeof line - n, " errors=%llu", (unsigned long long)b->errors);
  append_cpu(b, line, sizeof line);
  n = strlen(line);
  snprintf(line + n, sizeof line - n, " status=%s%s%s", b->failed ? "fail" : "ok", b->failed ? " reason=" : "",
           b->failed ? b->fail_reason : "");
  printf("%s\n", line);
  fflush(stdout);
  uv_stop(b->loop);
}

void bench_fail(bench *b, const char *reason) {
  if (b->phase == PHASE_DONE || b->failed) return;
  b->failed = true;
  b->fail_reason = reason;
  bench_finish(b);
}

/* The self-test points the workload at a trivial server of ours (mirror.c),
 * so the figure is what the generator alone can drive. */
static int start_self_test(options *o) {
  if (mirror_spawn(&o->port, &o->tcp_port, &o->server_pid) != 0) return -1;
  fprintf(stderr, "stelar-bench: self-test against the mirror server (pid %d, ports %d/%d)\n", o->server_pid,
          o->port, o->tcp_port);
  return 0;
}

static int run(bench *b) {
  b->loop = uv_default_loop();
  b->rng = (uint32_t)getpid() * 2654435761u | 1;
  b->t0_ns = b->now_ns = b->window_start_ns = uv_hrtime();
  b->server_cpu_known = b->opt.server_pid > 0;
  take_cpu(b, &b->cpu_at_start, &b->server_cpu_at_start, &b->busy_at_start);
  int port = b->opt.transport == TRANSPORT_TCP && b->opt.tcp_port ? b->opt.tcp_port : b->opt.port;
  uv_ip4_addr("127.0.0.1", port, &b->target);
  uv_ip4_addr("127.0.0.1", b->opt.sender_port ? b->opt.sender_port : port, &b->sender_target);
  uv_timer_init(b->loop, &b->phase_timer);
  b->phase_timer.data = b;
  uv_timer_start(&b->phase_timer, setup_timed_out, (uint64_t)(b->opt.setup_timeout * 1000), 0);
  net_start(b);
  arm_hard_stop(b);
  if (b->ops->setup(b) != 0) {
    fprintf(stderr, "stelar-bench: setup failed\n");
    bench_fail(b, "setup");
  }
  if (b->opt.spin)
    while (b->phase != PHASE_DONE) {
      uv_run(b->loop, UV_RUN_NOWAIT);
      workload_pace(b);
    }
  else if (b->phase != PHASE_DONE)
    uv_run(b->loop, UV_RUN_DEFAULT);
  bool idle = strcmp(b->opt.workload, "idle") == 0;
  return b->failed || b->errors > 0 || (!idle && b->events == b->events_at_start) ? 1 : 0;
}

/* On this VM a virtual CPU sometimes runs at a third of its speed for
 * seconds or minutes (another tenant on the host core, not shown as steal
 * time), and every figure measured meanwhile drops with it. The loop is
 * plain integer work, so its time tracks that speed and nothing else. */
static int core_probe(void) {
  double best_ms = 0;
  for (int round = 0; round < 3; round++) {
    uint64_t t0 = uv_hrtime();
    volatile uint64_t sum = 0;
    for (uint64_t i = 0; i < 20000000; i++) sum += i;
    double ms = (double)(uv_hrtime() - t0) / 1e6;
    if (round == 0 || ms < best_ms) best_ms = ms;
  }
  printf("PROBE ms=%.1f\n", best_ms);
  return 0;
}

int main(int argc, char **argv) {
  bench *b = &the_bench;
  if (argc == 2 && strcmp(argv[1], "--core-probe") == 0) return core_probe();
  b->opt = parse_args(argc, argv);
  b->ops = workload_find(b->opt.workload);
  if (!b->ops) usage();
  if (b->opt.self_test && start_self_test(&b->opt) != 0) return 2;
  if (!b->opt.port && !(b->opt.transport == TRANSPORT_TCP && b->opt.tcp_port)) {
    fprintf(stderr, "stelar-bench: --port (or --tcp-port for tcp) is required\n");
    return 2;
  }
  b->opt.source_addrs = source_addrs_for(&b->opt);
  raise_file_limit();
  int status = run(b);
  if (b->opt.self_test) kill(b->opt.server_pid, SIGKILL), waitpid(b->opt.server_pid, NULL, 0);
  return status;
}
