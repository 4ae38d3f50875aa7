/* Unit tests for sendbatch.c over real sockets (socket pairs): what each
 * batched send reports, what the peers receive, a full socket, a gone peer,
 * and the batch's limits. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sendbatch.h"
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

static bool open_pair(int fds[2]) {
  return socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) == 0;
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
    CHECK(sl_sendbatch_add(fds[i][0], bufs, 2, &got[i]));
    bufs[0] = bufs[1] = uv_buf_init("overwritten", 11); /* the batch keeps its own copy */
  }
  CHECK_EQ_INT(sl_sendbatch_submit(record), 0);
  for (int i = 0; i < PAIRS; i++) {
    char want[16], buf[64];
    snprintf(want, sizeof want, "head%d,tail%d", i, i);
    CHECK_EQ_INT(got[i].calls, 1);
    CHECK_EQ_INT(got[i].result, 11);
    size_t n = read_all(fds[i][1], buf, sizeof buf);
    CHECK_MEM(buf, n, want, strlen(want));
    close(fds[i][0]);
    close(fds[i][1]);
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
  CHECK(sl_sendbatch_add(full[0], &one, 1, &o_full));
  CHECK(sl_sendbatch_add(gone[0], &one, 1, &o_gone));
  CHECK(sl_sendbatch_add(fine[0], &one, 1, &o_fine));
  CHECK_EQ_INT(sl_sendbatch_submit(record), 0);
  CHECK_EQ_INT(o_full.result, -EAGAIN);
  CHECK_EQ_INT(o_gone.result, -EPIPE);
  CHECK_EQ_INT(o_fine.result, 1);
  CHECK_EQ_INT(o_full.calls + o_gone.calls + o_fine.calls, 3);
  int fds[] = {full[0], full[1], gone[0], fine[0], fine[1]};
  for (size_t i = 0; i < sizeof fds / sizeof *fds; i++) close(fds[i]);
}

/* A send of more buffers than one may carry is refused (sent directly by
 * the caller); the batch says it is full before it cannot take one more,
 * and takes sends again once submitted. Nothing added: nothing reported. */
static void test_limits(void) {
  int fds[2];
  if (!CHECK(open_pair(fds))) return;
  uv_buf_t many[SL_SENDBATCH_MAX_BUFS + 1];
  for (int i = 0; i <= SL_SENDBATCH_MAX_BUFS; i++) many[i] = uv_buf_init("y", 1);
  outcome o = {0};
  CHECK(!sl_sendbatch_add(fds[0], many, SL_SENDBATCH_MAX_BUFS + 1, &o));
  CHECK_EQ_INT(sl_sendbatch_submit(record), 0);
  CHECK_EQ_INT(o.calls, 0);

  outcome each = {0};
  int added = 0;
  while (!sl_sendbatch_full() && added < 100000)
    added += sl_sendbatch_add(fds[0], many, SL_SENDBATCH_MAX_BUFS, &each);
  CHECK(added > 0);
  CHECK(sl_sendbatch_full());
  CHECK_EQ_INT(sl_sendbatch_submit(record), 0);
  CHECK_EQ_INT(each.calls, added);
  CHECK(!sl_sendbatch_full());
  char buf[1 << 16];
  CHECK_EQ_INT((long long)read_all(fds[1], buf, sizeof buf), (long long)added * SL_SENDBATCH_MAX_BUFS);
  close(fds[0]);
  close(fds[1]);
}

/* Closed (or never opened): every add says no, so callers write directly. */
static void test_closed(void) {
  int fds[2];
  if (!CHECK(open_pair(fds))) return;
  sl_sendbatch_close();
  uv_buf_t one = uv_buf_init("z", 1);
  outcome o = {0};
  CHECK(!sl_sendbatch_add(fds[0], &one, 1, &o));
  CHECK(!sl_sendbatch_full());
  CHECK_EQ_INT(sl_sendbatch_submit(record), 0);
  CHECK_EQ_INT(o.calls, 0);
  close(fds[0]);
  close(fds[1]);
}

int main(void) {
  const char *why_not = sl_sendbatch_open();
  if (why_not) {
    /* Only the fallback's contract can be checked where the kernel refuses io_uring. */
    fprintf(stderr, "test_sendbatch: io_uring unavailable (%s)\n", why_not);
  } else {
    test_sends_to_many_sockets();
    test_full_and_gone_sockets();
    test_limits();
  }
  test_closed();
  return unit_summary("test_sendbatch");
}
