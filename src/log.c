#include "log.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static sl_log_level current_level = SL_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void sl_log_set_level(sl_log_level level) { current_level = level; }

sl_log_level sl_log_get_level(void) { return current_level; }

const char *sl_log_level_name(sl_log_level level) { return level_names[level]; }

int sl_log_parse_level(const char *name) {
  for (int i = 0; i <= SL_LOG_OFF; i++)
    if (strcmp(name, level_names[i]) == 0) return i;
  return -1;
}

void sl_logv(sl_log_level level, const char *fmt, va_list ap) {
  if (level < current_level) return;
  struct timeval tv;
  struct tm tm;
  char stamp[32];
  gettimeofday(&tv, NULL);
  gmtime_r(&tv.tv_sec, &tm);
  strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  /* One fprintf per line keeps lines whole when stderr is a pipe. */
  char line[4096];
  int n = vsnprintf(line, sizeof line, fmt, ap);
  if (n < 0) return;
  fprintf(stderr, "%s.%03dZ %s %s\n", stamp, (int)(tv.tv_usec / 1000), level_names[level], line);
}

void sl_log(sl_log_level level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  sl_logv(level, fmt, ap);
  va_end(ap);
}
