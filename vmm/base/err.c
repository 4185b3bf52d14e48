#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kvmini/err.h"

int kv_err_set(struct kv_err *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return code;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return code;
}

int kv_err_prefix(struct kv_err *e, const char *fmt, ...)
{
	char prefix[KV_ERR_MSG_MAX];
	char joined[2 * KV_ERR_MSG_MAX + 2];
	va_list ap;
	size_t n;

	if (!e)
		return 0;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	snprintf(joined, sizeof(joined), "%s: %s", prefix, e->msg);
	n = strnlen(joined, sizeof(e->msg) - 1);
	memcpy(e->msg, joined, n);
	e->msg[n] = '\0';
	return e->code;
}
