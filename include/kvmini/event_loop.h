/* The I/O event loop: one thread with an epoll set over the queue
 * ioeventfds, tap fds, the libaio eventfd and console input, so a vCPU
 * never waits for disk or network I/O. Callbacks run on the loop thread,
 * one at a time. */
#ifndef KVMINI_EVENT_LOOP_H
#define KVMINI_EVENT_LOOP_H

#include <stdint.h>
#include "kvmini/err.h"
#include "kvmini/thread_policy.h"

/* Registrations per loop: fixed, so adding one never allocates. */
#define EVLOOP_MAX_FDS 512

struct evloop;

/* Called on the loop thread with the epoll events that fired. */
typedef void (*evloop_cb)(void *opaque, uint32_t events);

int evloop_create(struct evloop **out, struct kv_err *e) KV_MUST_CHECK;
/* Stops the thread (if started), then frees every registration. */
void evloop_destroy(struct evloop *l);

/* Watches @fd for @events (EPOLLIN, EPOLLOUT, ...); one registration per
 * fd (-EEXIST), at most EVLOOP_MAX_FDS (-ENOSPC). Safe from any thread,
 * also before evloop_start; never allocates. */
int evloop_add(struct evloop *l, int fd, uint32_t events, evloop_cb cb, void *opaque) KV_MUST_CHECK;
/* Changes the events of a registered fd. */
int evloop_mod(struct evloop *l, int fd, uint32_t events) KV_MUST_CHECK;
/* Stops watching @fd. When it returns, @cb is not running for @fd and
 * will not run again (unless called from that very callback, which is
 * allowed). */
void evloop_del(struct evloop *l, int fd);

/* Starts the loop's thread, which first enters @policy (NULL: none). */
int evloop_start(struct evloop *l, const struct thread_policy *policy,
		 struct kv_err *e) KV_MUST_CHECK;
/* For tests and single-threaded users: one epoll_wait of at most
 * @timeout_ms (-1: forever) and its callbacks, on the calling thread.
 * Returns the number of events, 0 on timeout, -ESHUTDOWN after
 * evloop_stop was asked, or -errno. Not while the loop's thread runs. */
int evloop_run_once(struct evloop *l, int timeout_ms);
/* Asks the thread to end and joins it. Idempotent. */
void evloop_stop(struct evloop *l);

#endif
