#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "kvmini/log.h"

static enum log_level current_level = LOG_LEVEL_INFO;
static struct timespec start_time;

void log_init(void)
{
	clock_gettime(CLOCK_MONOTONIC, &start_time);
}

double log_uptime(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start_time.tv_sec) +
	       (double)(now.tv_nsec - start_time.tv_nsec) / 1e9;
}

void log_set_level(enum log_level level)
{
	current_level = level;
}

enum log_level log_get_level(void)
{
	return current_level;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warning", "info", "debug", "trace" };
	char line[1024];
	va_list ap;
	int n;

	if (level > current_level)
		return;
	n = snprintf(line, sizeof(line), "kvmini: %s: ", names[level]);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	/* One fputs per message keeps lines from different threads whole.
	 * "\r\n": the terminal may be in raw mode. */
	fprintf(stderr, "%s\r\n", line);
}

bool log_ratelimit_ok(struct log_ratelimit *rl)
{
	const unsigned burst = 10;
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (ts.tv_sec != rl->last_sec) {
		rl->last_sec = ts.tv_sec;
		rl->in_burst = 0;
	}
	if (rl->in_burst < burst) {
		rl->in_burst++;
		return true;
	}
	rl->suppressed++;
	return false;
}
