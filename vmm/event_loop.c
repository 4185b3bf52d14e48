/* The I/O event loop: one thread around epoll_wait.
 *
 * Registrations live in a list under l->lock and carry a unique,
 * never-reused id; epoll_data holds the id, not a pointer. An event
 * whose id is no longer listed (deleted after epoll_wait returned it) is
 * dropped, so a freed registration is never touched. The loop marks the
 * id it is dispatching; evloop_del from another thread waits on a
 * condition variable until that dispatch ends, so when it returns the
 * callback is neither running nor will run. From the loop thread itself
 * (inside a callback) nothing else can be running, so it frees at once.
 * Id 0 is the stop eventfd. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "kvmini/event_loop.h"
#include "kvmini/log.h"
#include "kvmini/seccomp.h"

#define STOP_ID 0

struct evloop_reg {
	struct evloop_reg *next;
	int fd;
	uint64_t id;
	evloop_cb cb;
	void *opaque;
};

struct evloop {
	int epfd;
	int stopfd;
	pthread_mutex_t lock;
	pthread_cond_t dispatch_done;
	struct evloop_reg *regs;
	uint64_t next_id;
	uint64_t dispatching;   /* id whose callback runs now, STOP_ID when none */
	bool started;
	pthread_t thread;
};

static struct evloop_reg *find_fd(struct evloop *l, int fd, struct evloop_reg ***link)
{
	for (struct evloop_reg **pp = &l->regs; *pp; pp = &(*pp)->next) {
		if ((*pp)->fd == fd) {
			if (link)
				*link = pp;
			return *pp;
		}
	}
	return NULL;
}

static struct evloop_reg *find_id(struct evloop *l, uint64_t id)
{
	for (struct evloop_reg *r = l->regs; r; r = r->next)
		if (r->id == id)
			return r;
	return NULL;
}

int evloop_create(struct evloop **out, struct kv_err *e)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = STOP_ID };
	struct evloop *l = calloc(1, sizeof(*l));
	int r;

	if (!l)
		return kv_err_set(e, -ENOMEM, "event loop: out of memory");
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		r = kv_err_set(e, -errno, "event loop: epoll_create1: %s", strerror(errno));
		goto err_free;
	}
	l->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->stopfd < 0) {
		r = kv_err_set(e, -errno, "event loop: eventfd: %s", strerror(errno));
		goto err_epoll;
	}
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->stopfd, &ev)) {
		r = kv_err_set(e, -errno, "event loop: watching the stop eventfd: %s",
			       strerror(errno));
		goto err_stopfd;
	}
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->dispatch_done, NULL);
	l->next_id = STOP_ID + 1;
	*out = l;
	return 0;

err_stopfd:
	close(l->stopfd);
err_epoll:
	close(l->epfd);
err_free:
	free(l);
	return r;
}

void evloop_destroy(struct evloop *l)
{
	if (!l)
		return;
	evloop_stop(l);
	while (l->regs) {
		struct evloop_reg *r = l->regs;

		l->regs = r->next;
		free(r);
	}
	close(l->stopfd);
	close(l->epfd);
	pthread_cond_destroy(&l->dispatch_done);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

int evloop_add(struct evloop *l, int fd, uint32_t events, evloop_cb cb, void *opaque)
{
	struct epoll_event ev = { .events = events };
	struct evloop_reg *r;
	int ret = 0;

	if (fd < 0 || !cb)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	pthread_mutex_lock(&l->lock);
	if (find_fd(l, fd, NULL)) {
		ret = -EEXIST;
		goto out;
	}
	*r = (struct evloop_reg){ .next = l->regs, .fd = fd, .id = l->next_id++, .cb = cb,
				  .opaque = opaque };
	ev.data.u64 = r->id;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev)) {
		ret = -errno;
		goto out;
	}
	l->regs = r;
	r = NULL;
out:
	pthread_mutex_unlock(&l->lock);
	free(r);
	return ret;
}

int evloop_mod(struct evloop *l, int fd, uint32_t events)
{
	struct epoll_event ev = { .events = events };
	struct evloop_reg *r;
	int ret = 0;

	pthread_mutex_lock(&l->lock);
	r = find_fd(l, fd, NULL);
	if (!r) {
		ret = -ENOENT;
	} else {
		ev.data.u64 = r->id;
		if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev))
			ret = -errno;
	}
	pthread_mutex_unlock(&l->lock);
	return ret;
}

void evloop_del(struct evloop *l, int fd)
{
	struct evloop_reg *r, **link;

	pthread_mutex_lock(&l->lock);
	r = find_fd(l, fd, &link);
	if (!r) {
		pthread_mutex_unlock(&l->lock);
		return;
	}
	*link = r->next;
	/* The fd may already be closed (then it left the epoll set itself);
	 * a stale event for its id is dropped by the lookup anyway. */
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	if (l->dispatching == r->id && !pthread_equal(pthread_self(), l->thread)) {
		while (l->dispatching == r->id)
			pthread_cond_wait(&l->dispatch_done, &l->lock);
	}
	pthread_mutex_unlock(&l->lock);
	free(r);
}

/* Runs the callback of registration @id, if it still exists. */
static void dispatch(struct evloop *l, uint64_t id, uint32_t events)
{
	struct evloop_reg *r;
	evloop_cb cb;
	void *opaque;

	pthread_mutex_lock(&l->lock);
	r = find_id(l, id);
	if (!r) {
		pthread_mutex_unlock(&l->lock);
		return;
	}
	/* Copies: the callback may delete (and so free) its own registration. */
	cb = r->cb;
	opaque = r->opaque;
	l->dispatching = id;
	pthread_mutex_unlock(&l->lock);

	cb(opaque, events);

	pthread_mutex_lock(&l->lock);
	l->dispatching = STOP_ID;
	pthread_cond_broadcast(&l->dispatch_done);
	pthread_mutex_unlock(&l->lock);
}

static void *loop_thread(void *arg)
{
	struct evloop *l = arg;
	struct epoll_event evs[32];
	struct kv_err e = { 0 };

	/* Every device fd (images, taps, eventfds) is open before the
	 * loop starts: from here on it only moves data. */
	if (seccomp_thread_start(SECCOMP_IO, &e)) {
		LOG_ERR("event loop: %s; I/O stops", e.msg);
		return NULL;
	}
	for (;;) {
		int n = epoll_wait(l->epfd, evs, 32, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			LOG_ERR("event loop: epoll_wait: %s; I/O stops", strerror(errno));
			return NULL;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u64 == STOP_ID)
				return NULL;
			dispatch(l, evs[i].data.u64, evs[i].events);
		}
	}
}

int evloop_start(struct evloop *l, struct kv_err *e)
{
	int r;

	pthread_mutex_lock(&l->lock);
	if (l->started) {
		pthread_mutex_unlock(&l->lock);
		return 0;
	}
	r = pthread_create(&l->thread, NULL, loop_thread, l);
	if (r == 0)
		l->started = true;
	pthread_mutex_unlock(&l->lock);
	if (r)
		return kv_err_set(e, -r, "event loop: cannot start its thread: %s", strerror(r));
	return 0;
}

/* Not from a callback (it joins the loop thread). */
void evloop_stop(struct evloop *l)
{
	uint64_t one = 1;
	pthread_t t;

	pthread_mutex_lock(&l->lock);
	if (!l->started) {
		pthread_mutex_unlock(&l->lock);
		return;
	}
	l->started = false;
	t = l->thread;
	pthread_mutex_unlock(&l->lock);
	/* The counter stays non-zero: a level-triggered event that ends
	 * the thread however far behind it is. */
	if (write(l->stopfd, &one, sizeof(one)) != sizeof(one))
		LOG_ERR("event loop: cannot signal the stop eventfd: %s", strerror(errno));
	pthread_join(t, NULL);
	/* Ready for another start. */
	while (read(l->stopfd, &one, sizeof(one)) == sizeof(one))
		;
}
