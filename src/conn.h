/* A transport-neutral client connection: its socket, state, rooms, and the
 * one outbound queue that everything written to it goes through, in order.
 *
 * Ownership: the server allocates a connection on accept. Closing it closes
 * the socket at once; the connection is freed later, between loop phases
 * (server.c), never while a caller up the stack (a Lua handler,
 * wslay, an event of the same epoll batch) may still hold it. Contexts
 * (sl_ctx) pointing at it are detached there. */
#ifndef SL_CONN_H
#define SL_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "buf.h"
#include "poller.h"
#include "ratelimit.h"
#include "room.h"

typedef struct sl_conn sl_conn;
typedef struct sl_server sl_server;
struct sl_ctx;

/* Client ids: ours are 16 hex digits; generateClientId may make others. */
#define SL_ID_MAX 64

typedef enum {
  SL_CONN_HTTP,    /* reading the HTTP request */
  SL_CONN_PENDING, /* upgraded, middleware still deciding; reads paused */
  SL_CONN_OPEN,
  SL_CONN_CLOSING, /* close frame queued: nothing more is sent or dispatched */
  SL_CONN_CLOSED,  /* socket closed; freed between loop phases */
} sl_conn_state;

/* The wire forms a message can take; one per transport, and one per
 * permessage-deflate window size (compressed frames, shared by every
 * client that negotiated that window). */
enum {
  SL_WIRE_WS,
  SL_WIRE_TCP,
  SL_WIRE_WS_DEFLATE, /* + window bits - 9 */
  SL_WIRES = SL_WIRE_WS_DEFLATE + 7,
};

typedef enum {
  SL_MSG_EVENT,      /* {"event","data"} */
  SL_MSG_BINARY,     /* a binary event */
  SL_MSG_ACK,        /* an ACK reply */
  SL_MSG_RAW_TEXT,   /* raw mode: the bytes as they are */
  SL_MSG_RAW_BINARY,
} sl_msg_type;

/* One outgoing message. Its wire form is built once per transport on first
 * use and shared by every recipient; the sender calls sl_msg_release. */
typedef struct {
  sl_msg_type type;
  const char *event;
  size_t event_len;
  const char *data; /* JSON text, or bytes for binary and raw messages */
  size_t data_len;
  const char *correlation_json; /* ACK replies: JSON text, or NULL */
  const char *error;            /* ACK replies: the error of our extension */
  sl_buf *wire[SL_WIRES];
} sl_msg;

void sl_msg_release(sl_msg *m);

/* What differs between WebSocket, the binary TCP protocol and the HTTP
 * phase before an upgrade. */
typedef struct {
  const char *name; /* "ws", "tcp", "http" */
  sl_buf *(*encode)(const sl_msg *m, int wire);
  void (*on_read)(sl_conn *c, const char *p, size_t n);
  void (*greet)(sl_conn *c); /* the client has its id; NULL for none */
  /* Starts a graceful close with a close code (ignored where meaningless). */
  void (*close)(sl_conn *c, uint16_t code, const char *reason);
  void (*ping)(sl_conn *c);
  void (*on_drained)(sl_conn *c); /* the queue emptied; may close */
  void (*idle)(sl_conn *c);       /* quiet for a while: release what can be made again; may be NULL */
  void (*free)(sl_conn *c);       /* releases transport state */
} sl_transport;

/* Outbound queue: a ring of shared buffers; the head may be partly written.
 * Its first slot is inline, so a quiet client (one 101 response, the odd
 * message) never allocates a ring. */
typedef struct {
  sl_buf **items; /* &one, or a malloc'd ring once two are queued */
  sl_buf *one;
  uint32_t head, count, cap;
  uint32_t head_off;
  size_t bytes;
} sl_outq;

struct sl_conn {
  sl_watch watch; /* its socket, in the poller's set */
  sl_server *server;
  const sl_transport *tp;
  void *proto; /* the transport's state */
  sl_conn_state state;
  bool registered; /* in the server's client table and counted */
  bool accepted;   /* middleware passed and onConnection ran */
  bool dirty;      /* on the server's flush list */
  bool is_tcp;
  uint8_t wire; /* which wire form of a message this client takes */
  bool shutting; /* write side shut (or to be, once the queue is out), waiting for the peer's EOF */
  bool shut_pending; /* the half-close waits for the queue */
  bool reading;      /* watched for input: off while middleware decides */
  bool wants_out;    /* a send came up short: watched for room */
  bool ip_counted; /* counted against maxConnectionsPerIP */
  char id[SL_ID_MAX + 1];
  uint8_t id_len;
  char remote[48];

  sl_outq q;
  uint32_t writing; /* buffers handed to the batched send in flight */
  int16_t read_pending; /* its read's place in the turn's batch (reads.c), or -1 */
  sl_conn *dirty_next;

  sl_conn *prev, *next; /* the server's list of connections */
  sl_conn *closed_next; /* the server's closed connections, to be freed */
  uint64_t deadline;    /* ms: handshake or close timeout, 0 when none */
  uint64_t last_seen;   /* ms of the last inbound byte */
  uint64_t connected_at; /* wall clock, ms since the epoch */
  uint64_t msgs_in, msgs_out;

  sl_room_set rooms;
  sl_bucket bucket;          /* the global (or per-client) rate limit */
  sl_map *event_buckets;  /* per-event limits, made on first use */
  int meta_ref, req_ref;  /* Lua registry refs, LUA_NOREF until made */
  struct sl_ctx *ctx;     /* the context reused across this client's events */
  int ctx_ref;            /* anchors ctx while the connection reuses it */
  struct sl_ctx *ctxs;    /* every live context pointing here */
  sl_sbuf held_in;        /* bytes that arrived while middleware ran */
  sl_sbuf req_text;       /* the upgrade request, until ctx.req is first read */
  struct sl_tls *tls;     /* NULL on a plain socket */
};

/* A connection for an accepted socket (fd), not yet watched. */
sl_conn *sl_conn_new(sl_server *s, int fd);
/* Watches c's socket for what it waits for now (input while reading, room
 * while a send waits); 0 or -errno. */
int sl_conn_watch(sl_conn *c);
/* Frees a closed connection: onDisconnect, rooms, buffers. The server
 * calls it between loop phases. */
void sl_conn_free(sl_conn *c);
/* Queues a message; returns 0, or -1 when the connection no longer sends. */
int sl_conn_send(sl_conn *c, sl_msg *m);
/* Takes ownership of one reference to b (plaintext: encrypted on a TLS
 * connection). */
void sl_conn_enqueue(sl_conn *c, sl_buf *b);
/* Bytes exactly as they go on the wire. */
void sl_conn_enqueue_wire(sl_conn *c, sl_buf *b);
/* Plaintext that arrived: to the transport, or held while middleware decides. */
void sl_conn_deliver(sl_conn *c, const char *p, size_t n);
void sl_conn_flush(sl_conn *c);
/* As sl_conn_flush, but the first send joins the turn's io_uring batch
 * (iobatch.h) when there is one; sl_conn_batch_sent takes its result. */
void sl_conn_flush_batched(sl_conn *c);
void sl_conn_batch_sent(void *conn, ssize_t result);
/* A graceful close through the transport (close frame, then socket). */
void sl_conn_close(sl_conn *c, uint16_t code, const char *reason);
/* Half-closes after the queue is written and waits (bounded) for the
 * peer's EOF, so that unread input does not turn the close into a reset. */
void sl_conn_shutdown(sl_conn *c);
/* Closes the socket now; the rest happens when it is freed. The kernel
 * still sends what it holds, then FIN (a reset only if input is left unread),
 * so this is also the orderly end once the peer has nothing more to send. */
void sl_conn_abort(sl_conn *c);
static inline bool sl_conn_sending(const sl_conn *c) {
  return c->state == SL_CONN_OPEN || c->state == SL_CONN_PENDING;
}

#endif
