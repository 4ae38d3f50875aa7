/* A cluster of nodes over Redis: what one node tells the others and learns
 * from them. Messages go through Redis pub/sub (one PUBLISH per message,
 * whatever the number of nodes); who is where is kept in Redis sets that a
 * node's heartbeat keeps alive. Two connections to Redis on our loop (a
 * subscribed connection can send nothing else), each reconnecting on its
 * own with backoff. Without Redis the node serves its own clients and
 * counts what it could not publish. */
#ifndef SL_CLUSTER_H
#define SL_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"

typedef struct sl_server sl_server;
typedef struct sl_cluster sl_cluster;
struct redisReply;

typedef struct {
  char *redis_url; /* NULL: no cluster */
  char *prefix;
  char *node_id; /* NULL: a random one */
  uint32_t node_timeout; /* ms a node is believed alive after its last heartbeat */
} sl_cluster_config;

/* Checks a redis:// URL; returns NULL or what is wrong with it. */
const char *sl_cluster_check_url(const char *url);

/* Starts connecting; never fails for want of Redis (the node is then
 * degraded until Redis answers). NULL only when out of memory. */
sl_cluster *sl_cluster_new(sl_server *s, const sl_cluster_config *cfg);
/* Says goodbye (the node's data is removed from Redis) and closes. The
 * cluster frees itself once its connections and timers are closed. */
void sl_cluster_stop(sl_cluster *cl);

/* Where a message goes. */
typedef enum { SL_TO_ALL, SL_TO_ROOM, SL_TO_CLIENT, SL_TO_NODES } sl_to;

/* Publishes m for the other nodes; they deliver it to their own clients of
 * target (name: the room or client id), skipping exclude_id. Returns false
 * when Redis is unreachable: the message is dropped and counted. m's event
 * and data are what is sent (SL_MSG_EVENT and SL_MSG_BINARY only). */
bool sl_cluster_publish(sl_cluster *cl, sl_to to, const char *name, size_t len, const sl_msg *m,
                        const char *exclude_id);

/* Membership, as this node's clients come, go, join and leave. first/last
 * say whether the room has just been made or emptied on this node. */
void sl_cluster_client_added(sl_cluster *cl, const char *id);
void sl_cluster_client_removed(sl_cluster *cl, const char *id);
void sl_cluster_joined(sl_cluster *cl, const char *id, const char *room, size_t len, bool first);
void sl_cluster_left(sl_cluster *cl, const char *id, const char *room, size_t len, bool last);

/* A cluster-wide query: the members of room (room NULL: every client,
 * with its node and rooms). answer gets Redis's reply, or NULL when the
 * query could not be answered. Returns -1 (answer not called) when Redis is
 * unreachable now. */
typedef void (*sl_cluster_answer)(void *ud, const struct redisReply *reply);
int sl_cluster_query(sl_cluster *cl, const char *room, size_t len, sl_cluster_answer answer, void *ud);

typedef struct {
  const char *node_id;
  bool connected;
  uint64_t published, received, dropped;
} sl_cluster_stats;
sl_cluster_stats sl_cluster_get_stats(const sl_cluster *cl);

#endif
