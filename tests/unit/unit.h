/* A tiny test helper for the C unit tests: no framework, one header.
 *
 * Every CHECK counts; a failed one prints file:line and what was expected,
 * and the test goes on, so one run shows every failure. Each CHECK evaluates
 * to its truth, so a test can stop before using what it just found wrong:
 *
 *   if (!CHECK(b != NULL)) return;
 *
 * main() ends with `return unit_summary("test_x");`, which prints
 * "N checks, M failed" and returns non-zero when anything failed.
 *
 * Helpers that check on behalf of their caller take the caller's file and
 * line (the _AT forms), so a failure points at the test, not the helper. */
#ifndef SL_UNIT_H
#define SL_UNIT_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static int unit_checks, unit_failures;

static inline bool unit_record(bool ok, const char *file, int line) {
  unit_checks++;
  if (!ok) {
    unit_failures++;
    fprintf(stderr, "%s:%d: FAILED ", file, line);
  }
  return ok;
}

static inline bool unit_check(bool ok, const char *file, int line, const char *what) {
  if (!unit_record(ok, file, line)) fprintf(stderr, "%s\n", what);
  return ok;
}

static inline bool unit_check_int(long long got, long long want, const char *file, int line,
                                  const char *what) {
  if (!unit_record(got == want, file, line)) fprintf(stderr, "%s: got %lld, want %lld\n", what, got, want);
  return got == want;
}

/* Prints bytes readably: printable ASCII as is, the rest as \xNN. */
static inline void unit_print_bytes(const void *p, size_t n) {
  const unsigned char *b = p;
  fputc('"', stderr);
  for (size_t i = 0; i < n; i++) {
    if (b[i] >= 0x20 && b[i] < 0x7F && b[i] != '\\') fputc(b[i], stderr);
    else fprintf(stderr, "\\x%02x", b[i]);
  }
  fputc('"', stderr);
}

static inline bool unit_check_mem(const void *got, size_t got_len, const void *want, size_t want_len,
                                  const char *file, int line, const char *what) {
  bool ok = got_len == want_len && (want_len == 0 || (got && memcmp(got, want, want_len) == 0));
  if (!unit_record(ok, file, line)) {
    fprintf(stderr, "%s:\n  got  (%zu) ", what, got_len);
    unit_print_bytes(got, got ? got_len : 0);
    fprintf(stderr, "\n  want (%zu) ", want_len);
    unit_print_bytes(want, want_len);
    fputc('\n', stderr);
  }
  return ok;
}

/* NULL compares equal only to NULL. */
static inline bool unit_check_str(const char *got, const char *want, const char *file, int line,
                                  const char *what) {
  if (!got || !want) {
    bool ok = got == want;
    if (!unit_record(ok, file, line)) fprintf(stderr, "%s: got %s, want %s\n", what, got ? got : "NULL", want ? want : "NULL");
    return ok;
  }
  return unit_check_mem(got, strlen(got), want, strlen(want), file, line, what);
}

static inline int unit_summary(const char *name) {
  printf("%s: %d checks, %d failed\n", name, unit_checks, unit_failures);
  return unit_failures ? 1 : 0;
}

#define CHECK(cond) unit_check(!!(cond), __FILE__, __LINE__, #cond)
#define CHECK_EQ_INT(got, want) \
  unit_check_int((long long)(got), (long long)(want), __FILE__, __LINE__, #got " == " #want)
#define CHECK_EQ_STR(got, want) unit_check_str((got), (want), __FILE__, __LINE__, #got " == " #want)
/* Variadic so that LIT("...") may stand for the last two arguments. */
#define CHECK_MEM(...) UNIT_CHECK_MEM(__VA_ARGS__)
#define UNIT_CHECK_MEM(got, got_len, want, want_len) \
  unit_check_mem((got), (got_len), (want), (want_len), __FILE__, __LINE__, #got " == " #want)

/* The same, for helpers that report at their caller's file and line. */
#define CHECK_AT(cond, file, line) unit_check(!!(cond), (file), (line), #cond)
#define CHECK_EQ_INT_AT(got, want, file, line) \
  unit_check_int((long long)(got), (long long)(want), (file), (line), #got " == " #want)
#define CHECK_EQ_STR_AT(got, want, file, line) unit_check_str((got), (want), (file), (line), #got " == " #want)
#define CHECK_MEM_AT(...) UNIT_CHECK_MEM_AT(__VA_ARGS__)
#define UNIT_CHECK_MEM_AT(got, got_len, want, want_len, file, line) \
  unit_check_mem((got), (got_len), (want), (want_len), (file), (line), #got " == " #want)

/* A string literal and its length without the terminating NUL, for the
 * (pointer, length) APIs; literals may hold NUL bytes. */
#define LIT(s) (s), (sizeof(s) - 1)

#endif
