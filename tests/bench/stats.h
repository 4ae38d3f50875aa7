/* What the generator measures besides counts: a latency histogram that
 * costs no allocation per sample, its own CPU time, and the server's CPU
 * time and RSS read from /proc. */
#ifndef BENCH_STATS_H
#define BENCH_STATS_H

#include <stdbool.h>
#include <stdint.h>

/* Log-linear buckets over nanoseconds: exact below 64 ns, then 32 buckets
 * per power of two (at most ~3% off), up to ~2^41 ns (36 minutes). */
#define HIST_SUB 32
#define HIST_BUCKETS (64 + 36 * HIST_SUB)

typedef struct {
  uint64_t count;
  uint64_t buckets[HIST_BUCKETS];
} hist;

void hist_record(hist *h, uint64_t ns);
/* The value (ns) at or below which q (0..1) of the samples lie; 0 if empty. */
uint64_t hist_quantile(const hist *h, double q);

/* This process's user + system CPU time, ns. */
uint64_t self_cpu_ns(void);
/* Another process's user + system CPU time from /proc/<pid>/stat, ns; false when unreadable. */
bool proc_cpu_ns(int pid, uint64_t *ns);
/* CPU time all CPUs spent busy (processes, interrupts, steal) from /proc/stat, ns. */
bool machine_busy_ns(uint64_t *ns);
/* VmRSS from /proc/<pid>/status, KiB; false when unreadable. */
bool proc_rss_kib(int pid, uint64_t *kib);
/* Its anonymous part (heap, stacks): RSS without the program's file pages. */
bool proc_anon_kib(int pid, uint64_t *kib);

#endif
