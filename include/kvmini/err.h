/* Error context: functions return 0 or a negative errno; when they fail
 * they may also fill a struct kv_err with a message that names what went
 * wrong and where, so that one place (vmm/main.c) prints it. */
#ifndef KVMINI_ERR_H
#define KVMINI_ERR_H

#include <stddef.h>

#define KV_ERR_MSG_MAX 512

struct kv_err {
	int code;                 /* negative errno, 0 when unset */
	char msg[KV_ERR_MSG_MAX]; /* human-readable, no trailing newline */
};

/* Records the message in @e (when non-NULL) and returns @code, so callers
 * can write: return kv_err_set(e, -EINVAL, "%s: bad magic", path); */
int kv_err_set(struct kv_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefixes an existing message with more context ("loading kernel: ..."). */
int kv_err_prefix(struct kv_err *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define KV_MUST_CHECK __attribute__((warn_unused_result))

#endif
