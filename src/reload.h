/* Hot reload: the script and the modules it requires from its folder tree
 * are watched (debounced), and SIGHUP reloads too. A reload runs the new
 * top level first; only if all of it succeeds does each server's new
 * handler set replace the old one, between two events. Connections, rooms,
 * metadata, rate-limit state, stats and stelar.shared carry over. */
#ifndef SL_RELOAD_H
#define SL_RELOAD_H

#include <stdbool.h>

#include "server.h"

/* Starts watching after the script's first successful run. */
void sl_reload_init(const char *script_path);
/* Reloads now; returns 0 on success. why goes to the log line. */
int sl_reload_run(const char *why);
void sl_reload_close(void);

/* During a reload, stelar.server{...} returns the running servers in
 * creation order: the next one not yet claimed, or NULL. */
bool sl_reload_active(void);
sl_server *sl_reload_claim_server(void);

#endif
