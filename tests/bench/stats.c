#include "stats.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static unsigned bucket_of(uint64_t ns) {
  if (ns < 64) return (unsigned)ns;
  unsigned top = 63u - (unsigned)__builtin_clzll(ns); /* >= 6 */
  unsigned sub = (unsigned)(ns >> (top - 5)) & (HIST_SUB - 1);
  unsigned b = 64 + (top - 6) * HIST_SUB + sub;
  return b < HIST_BUCKETS ? b : HIST_BUCKETS - 1;
}

/* The middle of a bucket's range. */
static uint64_t value_of(unsigned b) {
  if (b < 64) return b;
  unsigned top = (b - 64) / HIST_SUB + 6, sub = (b - 64) % HIST_SUB;
  uint64_t low = (1ull << top) | ((uint64_t)sub << (top - 5));
  return low + (1ull << (top - 5)) / 2;
}

void hist_record(hist *h, uint64_t ns) {
  h->buckets[bucket_of(ns)]++;
  h->count++;
}

uint64_t hist_quantile(const hist *h, double q) {
  if (h->count == 0) return 0;
  uint64_t rank = (uint64_t)(q * (double)h->count);
  if (rank >= h->count) rank = h->count - 1;
  uint64_t seen = 0;
  for (unsigned b = 0; b < HIST_BUCKETS; b++) {
    seen += h->buckets[b];
    if (seen > rank) return value_of(b);
  }
  return value_of(HIST_BUCKETS - 1);
}

uint64_t self_cpu_ns(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000ull +
         ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000ull;
}

bool proc_cpu_ns(int pid, uint64_t *ns) {
  char path[64], text[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return false;
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  /* The command name may hold spaces and parentheses: fields count from the last ')'. */
  char *p = strrchr(text, ')');
  unsigned long long utime, stime;
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
    return false;
  long hz = sysconf(_SC_CLK_TCK);
  *ns = (utime + stime) * (1000000000ull / (unsigned long long)hz);
  return true;
}

/* One "Name:  N kB" line of /proc/<pid>/status. */
static bool proc_status_kib(int pid, const char *name, uint64_t *kib) {
  char path[64], line[256], format[64];
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  snprintf(format, sizeof format, "%s: %%llu kB", name);
  FILE *f = fopen(path, "r");
  if (!f) return false;
  bool found = false;
  unsigned long long v;
  while (!found && fgets(line, sizeof line, f))
    if (sscanf(line, format, &v) == 1) found = true, *kib = v;
  fclose(f);
  return found;
}

bool proc_rss_kib(int pid, uint64_t *kib) { return proc_status_kib(pid, "VmRSS", kib); }
bool proc_anon_kib(int pid, uint64_t *kib) { return proc_status_kib(pid, "RssAnon", kib); }

bool machine_busy_ns(uint64_t *ns) {
  FILE *f = fopen("/proc/stat", "r");
  if (!f) return false;
  unsigned long long user, nice, system, idle, iowait, irq, softirq, steal;
  int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &system, &idle, &iowait, &irq,
                 &softirq, &steal);
  fclose(f);
  if (n != 8) return false;
  long hz = sysconf(_SC_CLK_TCK);
  *ns = (user + nice + system + irq + softirq + steal) * (1000000000ull / (unsigned long long)hz);
  return true;
}
