/* The logger: one of the two pieces of global state (STYLE.md habit 6). */
#ifndef KVMINI_LOG_H
#define KVMINI_LOG_H

#include <stdbool.h>

/* TRACE: a line per guest request where a device offers it (virtio-fs:
 * KVMINI_LOG=trace), for finding out what a workload asks of kvmini. */
enum log_level { LOG_LEVEL_ERR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG, LOG_LEVEL_TRACE };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define LOG_ERR(...)   log_msg(LOG_LEVEL_ERR, __VA_ARGS__)
#define LOG_WARN(...)  log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define LOG_INFO(...)  log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define LOG_DEBUG(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define LOG_TRACE(...) log_msg(LOG_LEVEL_TRACE, __VA_ARGS__)

/* Rate limit for anything a guest can trigger: allows @burst messages,
 * then one per second, and counts what it suppressed. */
struct log_ratelimit {
	long last_sec;
	unsigned in_burst;
	unsigned long suppressed;
};
bool log_ratelimit_ok(struct log_ratelimit *rl);

/* Seconds since the process started (CLOCK_MONOTONIC, from log_init). */
void log_init(void);
double log_uptime(void);

#define LOG_GUEST(rl, ...)                                                  \
	do {                                                                \
		if (log_ratelimit_ok(rl))                                   \
			log_msg(LOG_LEVEL_WARN, __VA_ARGS__);               \
	} while (0)

#endif
