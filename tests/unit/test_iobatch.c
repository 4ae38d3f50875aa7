/* Unit tests for iobatch.c over real sockets (socket pairs): what each
 * batched read and send reports, what the peers receive, a full socket,
 * an empty one, a gone peer, taking an operation back, and the limits. */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "iobatch.h"
#include "unit.h"

#define PAIRS 3

typedef struct {
  int calls;
  ssize_t result;
} outcome;

static void record(void *owner, ssize_t result) {
  outcome *o = owner;
  o->calls++;
  o->result = result;
}

static bool open_pair(int fds[2]) { return socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) == 0; }

static void close_pair(int fds[2]) {
  close(fds[0]);
  close(fds[1]);
}

static size_t read_all(int fd, char *buf, size_t cap) {
  size_t n = 0;
  ssize_t r;
  while (n < cap && (r = read(fd, buf + n, cap - n)) > 0) n += (size_t)r;
  return n;
}

/* Three sockets, two buffers each, one submit: every peer gets its own bytes in order. */
static void test_sends_to_many_sockets(void) {
  int fds[PAIRS][2];
  outcome got[PAIRS] = {0};
  char heads[PAIRS][8], tails[PAIRS][8];
  for (int i = 0; i < PAIRS; i++) {
    if (!CHECK(open_pair(fds[i]))) return;
    snprintf(heads[i], sizeof heads[i], "head%d,", i);
    snprintf(tails[i], sizeof tails[i], "tail%d", i);
    uv_buf_t bufs[2] = {uv_buf_init(heads[i], 6), uv_buf_init(tails[i], 5)};
    CHECK(sl_iobatch_send(fds[i][0], bufs, 2, record, &got[i]) >= 0);
    bufs[0] = bufs[1] = uv_buf_init("overwritten", 11); /* the batch keeps its own list */
  }
  CHECK_EQ_INT(sl_iobatch_submit(), 0);
  for (int i = 0; i < PAIRS; i++) {
    char want[16], buf[64];
    snprintf(want, sizeof want, "head%d,tail%d", i, i);
    CHECK_EQ_INT(got[i].calls, 1);
    CHECK_EQ_INT(got[i].result, 11);
    size_t n = read_all(fds[i][1], buf, sizeof buf);
    CHECK_MEM(buf, n, want, strlen(want));
    close_pair(fds[i]);
  }
}

/* A socket with no room answers -EAGAIN at once (the caller then waits in
 * a uv_write); a socket whose peer is gone answers -EPIPE, without SIGPIPE;
 * the other sends of the batch go through. */
static void test_full_and_gone_sockets(void) {
  int full[2], gone[2], fine[2];
  if (!CHECK(open_pair(full) && open_pair(gone) && open_pair(fine))) return;
  static char block[65536];
  while (write(full[0], block, sizeof block) > 0) {}
  close(gone[1]);
  outcome o_full = {0}, o_gone = {0}, o_fine = {0};
  uv_buf_t one = uv_buf_init("x", 1);
  CHECK(sl_iobatch_send(full[0], &one, 1, record, &o_full) >= 0);
  CHECK(sl_iobatch_send(gone[0], &one, 1, record, &o_gone) >= 0);
  CHECK(sl_iobatch_send(fine[0], &one, 1, record, &o_fine) >= 0);
  CHECK_EQ_INT(sl_iobatch_submit(), 0);
  CHECK_EQ_INT(o_full.result, -EAGAIN);
  CHECK_EQ_INT(o_gone.result, -EPIPE);
  CHECK_EQ_INT(o_fine.result, 1);
  CHECK_EQ_INT(o_full.calls + o_gone.calls + o_fine.calls, 3);
  close_pair(full);
  close(gone[0]);
  close_pair(fine);
}

/* Reads in one submit: the bytes waiting (up to the buffer's size), -EAGAIN
 * for an empty socket, 0 for a peer that closed. */
static void test_reads(void) {
  int ready[2], empty[2], ended[2];
  if (!CHECK(open_pair(ready) && open_pair(empty) && open_pair(ended))) return;
  CHECK_EQ_INT(write(ready[1], "hello, batch", 12), 12);
  close(ended[1]);
  char b_ready[5], b_empty[16], b_ended[16];
  outcome o_ready = {0}, o_empty = {0}, o_ended = {0};
  CHECK(sl_iobatch_read(ready[0], b_ready, sizeof b_ready, record, &o_ready) >= 0);
  CHECK(sl_iobatch_read(empty[0], b_empty, sizeof b_empty, record, &o_empty) >= 0);
  CHECK(sl_iobatch_read(ended[0], b_ended, sizeof b_ended, record, &o_ended) >= 0);
  CHECK_EQ_INT(sl_iobatch_submit(), 0);
  CHECK_EQ_INT(o_ready.result, 5);
  CHECK_MEM(b_ready, 5, LIT("hello"));
  CHECK_EQ_INT(o_empty.result, -EAGAIN);
  CHECK_EQ_INT(o_ended.result, 0);
  char rest[16];
  CHECK_MEM(rest, read_all(ready[0], rest, sizeof rest), LIT(", batch")); /* the rest stays for the next read */
  close_pair(ready);
  close_pair(empty);
  close(ended[0]);
}

/* An operation taken back before the submit neither runs nor reports; the
 * others of its batch do. */
static void test_cancel(void) {
  int a[2], b[2];
  if (!CHECK(open_pair(a) && open_pair(b))) return;
  CHECK_EQ_INT(write(a[1], "aaa", 3), 3);
  char buf_a[8], buf_b[8];
  outcome o_a = {0}, o_b = {0}, o_send = {0};
  int read_a = sl_iobatch_read(a[0], buf_a, sizeof buf_a, record, &o_a);
  uv_buf_t one = uv_buf_init("s", 1);
  int send_b = sl_iobatch_send(b[0], &one, 1, record, &o_send);
  CHECK(read_a >= 0 && send_b >= 0);
  CHECK(sl_iobatch_read(b[1], buf_b, sizeof buf_b, record, &o_b) >= 0);
  sl_iobatch_cancel(read_a);
  sl_iobatch_cancel(send_b);
  CHECK_EQ_INT(sl_iobatch_submit(), 0);
  CHECK_EQ_INT(o_a.calls, 0);
  CHECK_EQ_INT(o_send.calls, 0);
  CHECK_EQ_INT(o_b.calls, 1);
  CHECK_EQ_INT(o_b.result, -EAGAIN); /* the cancelled send never went */
  char left[8];
  CHECK_MEM(left, read_all(a[0], left, sizeof left), LIT("aaa")); /* the cancelled read never read */
  close_pair(a);
  close_pair(b);
}

/* A batch of one runs as the plain system call: the same results. */
static void test_batch_of_one(void) {
  int fds[2];
  if (!CHECK(open_pair(fds))) return;
  uv_buf_t two = uv_buf_init("ab", 2);
  outcome sent = {0}, got = {0}, empty = {0};
  CHECK(sl_iobatch_send(fds[0], &two, 1, record, &sent) >= 0);
  CHECK_EQ_INT(sl_iobatch_submit(), 0);
  CHECK_EQ_INT(sent.calls, 1);
  CHECK_EQ_INT(sent.result, 2);
  char buf[8];
  CHECK(sl_iobatch_read(fds[1], buf, sizeof buf, record, &got) >= 0);
  CHECK_EQ_INT(sl_iobatch_submit(), 0);
  CHECK_EQ_INT(got.result, 2);
  CHECK_MEM(buf, 2, LIT("ab"));
  CHECK(sl_iobatch_read(fds[1], buf, sizeof buf, record, &empty) >= 0);
  CHECK_EQ_INT(sl_iobatch_submit(), 0);
  CHECK_EQ_INT(empty.result, -EAGAIN);
  outcome cancelled = {0};
  int t = sl_iobatch_read(fds[1], buf, sizeof buf, record, &cancelled);
  sl_iobatch_cancel(t);
  CHECK_EQ_INT(sl_iobatch_submit(), 0);
  CHECK_EQ_INT(cancelled.calls, 0);
  close(fds[1]);
  outcome gone = {0};
  CHECK(sl_iobatch_send(fds[0], &two, 1, record, &gone) >= 0);
  CHECK_EQ_INT(sl_iobatch_submit(), 0);
  CHECK_EQ_INT(gone.result, -EPIPE);
  close(fds[0]);
}

/* An epoll registration joins the batch: nothing is watched before the
 * submit, the socket is after it, and a second one reports -EEXIST. */
static void test_epoll_ctl(void) {
  int fds[2], ep = epoll_create1(EPOLL_CLOEXEC);
  if (!CHECK(ep >= 0) || !CHECK(open_pair(fds))) return;
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 7}, got;
  outcome added = {0}, again = {0};
  CHECK(sl_iobatch_epoll_ctl(ep, EPOLL_CTL_ADD, fds[0], &ev, record, &added) >= 0);
  CHECK(sl_iobatch_epoll_ctl(ep, EPOLL_CTL_ADD, fds[0], &ev, record, &again) >= 0);
  ev.data.u64 = 8; /* the batch keeps its own copy */
  CHECK_EQ_INT(write(fds[1], "x", 1), 1);
  CHECK_EQ_INT(epoll_wait(ep, &got, 1, 0), 0);
  CHECK_EQ_INT(sl_iobatch_submit(), 0);
  CHECK_EQ_INT(added.calls, 1);
  CHECK_EQ_INT(added.result, 0);
  CHECK_EQ_INT(again.result, -EEXIST);
  CHECK_EQ_INT(epoll_wait(ep, &got, 1, 0), 1);
  CHECK_EQ_INT(got.data.u64, 7);
  close_pair(fds);
  close(ep);
}

/* Adds from a done callback are refused (the caller does it itself). */
static int refused_adds;
static void add_from_done(void *owner, ssize_t result) {
  (void)result;
  uv_buf_t one = uv_buf_init("r", 1);
  if (sl_iobatch_send(*(int *)owner, &one, 1, record, NULL) < 0) refused_adds++;
}

static void test_no_adds_while_reporting(void) {
  int fds[2];
  if (!CHECK(open_pair(fds))) return;
  uv_buf_t one = uv_buf_init("q", 1);
  CHECK(sl_iobatch_send(fds[0], &one, 1, add_from_done, &fds[0]) >= 0);
  CHECK_EQ_INT(sl_iobatch_submit(), 0);
  CHECK_EQ_INT(refused_adds, 1);
  CHECK_EQ_INT(sl_iobatch_submit(), 0); /* nothing was left behind */
  char buf[8];
  CHECK_MEM(buf, read_all(fds[1], buf, sizeof buf), LIT("q"));
  close_pair(fds);
}

/* A send of more buffers than one may carry is refused; the batch says it
 * is full before it cannot take one more, and takes again once submitted. */
static void test_limits(void) {
  int fds[2];
  if (!CHECK(open_pair(fds))) return;
  uv_buf_t many[SL_IOBATCH_MAX_BUFS + 1];
  for (int i = 0; i <= SL_IOBATCH_MAX_BUFS; i++) many[i] = uv_buf_init("y", 1);
  outcome o = {0};
  CHECK(sl_iobatch_send(fds[0], many, SL_IOBATCH_MAX_BUFS + 1, record, &o) < 0);
  CHECK(sl_iobatch_send(fds[0], many, 0, record, &o) < 0);
  CHECK_EQ_INT(sl_iobatch_submit(), 0);
  CHECK_EQ_INT(o.calls, 0);

  int added = 0;
  while (!sl_iobatch_full() && added < 100000)
    added += sl_iobatch_send(fds[0], many, SL_IOBATCH_MAX_BUFS, record, &o) >= 0;
  CHECK(added > 0);
  CHECK(sl_iobatch_full());
  CHECK(sl_iobatch_send(fds[0], many, 1, record, &o) < 0 || !sl_iobatch_full());
  CHECK_EQ_INT(sl_iobatch_submit(), 0);
  CHECK_EQ_INT(o.calls, added);
  CHECK(!sl_iobatch_full());
  static char buf[1 << 16];
  CHECK_EQ_INT((long long)read_all(fds[1], buf, sizeof buf), (long long)added * SL_IOBATCH_MAX_BUFS);
  close_pair(fds);
}

/* True when the peer of a socket closed by us reads its end at once (and
 * no byte before it). */
static bool reads_end(int peer) {
  char c;
  return read(peer, &c, 1) == 0;
}

static bool reads_nothing_yet(int peer) {
  char c;
  return read(peer, &c, 1) < 0 && errno == EAGAIN;
}

/* Adds reads of an empty socket until the batch is full; returns how many. */
static int fill_with_reads(int fd) {
  static char sink[8];
  static outcome ignored;
  int added = 0;
  while (!sl_iobatch_full() && added < 100000) added += sl_iobatch_read(fd, sink, sizeof sink, record, &ignored) >= 0;
  return added;
}

/* A close waits for the submit and runs after the batch's send to the same
 * socket, even when the batch fills up after it: its slot is kept. */
static void test_close_after_send(void) {
  int fds[2], idle[2];
  if (!CHECK(open_pair(fds) && open_pair(idle))) return;
  uv_buf_t bye = uv_buf_init("bye", 3);
  outcome o = {0};
  CHECK(sl_iobatch_send(fds[0], &bye, 1, record, &o) >= 0);
  sl_iobatch_close_fd(fds[0]);
  CHECK(fill_with_reads(idle[0]) > 0);
  CHECK(reads_nothing_yet(fds[1]));
  CHECK_EQ_INT(sl_iobatch_submit(), 0);
  CHECK_EQ_INT(o.result, 3);
  char buf[8];
  CHECK_MEM(buf, read_all(fds[1], buf, sizeof buf), LIT("bye"));
  CHECK(reads_end(fds[1]));
  close(fds[1]);
  close_pair(idle);
}

/* With the batch already full the close runs at once, and the batch's send
 * to that socket is dropped, not run on whatever socket takes its number. */
static void test_close_when_full(void) {
  int gone[2], idle[2], next[2];
  if (!CHECK(open_pair(gone) && open_pair(idle))) return;
  uv_buf_t lost = uv_buf_init("lost", 4);
  outcome o = {0};
  CHECK(sl_iobatch_send(gone[0], &lost, 1, record, &o) >= 0);
  CHECK(fill_with_reads(idle[0]) > 0);
  sl_iobatch_close_fd(gone[0]);
  CHECK(reads_end(gone[1]));
  if (!CHECK(open_pair(next))) return;
  CHECK_EQ_INT(sl_iobatch_submit(), 0);
  CHECK_EQ_INT(o.calls, 0);
  CHECK(reads_nothing_yet(next[1]));
  close(gone[1]);
  close_pair(idle);
  close_pair(next);
}

/* Closed (or never opened): every add says no, so callers do it themselves. */
static void test_closed(void) {
  int fds[2];
  if (!CHECK(open_pair(fds))) return;
  sl_iobatch_close();
  uv_buf_t one = uv_buf_init("z", 1);
  char buf[4];
  outcome o = {0};
  CHECK(sl_iobatch_send(fds[0], &one, 1, record, &o) < 0);
  CHECK(sl_iobatch_read(fds[0], buf, sizeof buf, record, &o) < 0);
  CHECK(!sl_iobatch_full());
  CHECK_EQ_INT(sl_iobatch_submit(), 0);
  CHECK_EQ_INT(o.calls, 0);
  close_pair(fds);
}

int main(void) {
  const char *why_not = sl_iobatch_open();
  if (why_not) {
    /* Only the fallback's contract can be checked where the kernel refuses io_uring. */
    fprintf(stderr, "test_iobatch: io_uring unavailable (%s)\n", why_not);
  } else {
    test_sends_to_many_sockets();
    test_full_and_gone_sockets();
    test_reads();
    test_cancel();
    test_batch_of_one();
    test_epoll_ctl();
    test_no_adds_while_reporting();
    test_limits();
    test_close_after_send();
    test_close_when_full();
  }
  test_closed();
  return unit_summary("test_iobatch");
}
