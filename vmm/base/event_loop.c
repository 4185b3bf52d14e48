/* The I/O event loop: one thread around epoll_wait.
 *
 * Registrations live in a fixed table (EVLOOP_MAX_FDS slots, allocated
 * with the loop), so adding one never allocates: queues are enabled from
 * vCPU threads, and devices re-register from the loop thread, both after
 * their system call filters are on. epoll_data holds an id made of the
 * slot and a generation that changes on every reuse; an event whose id
 * no longer matches its slot (deleted after epoll_wait returned it) is
 * dropped, so a freed registration is never called.
 *
 * The loop marks the id it is dispatching; evloop_del from another
 * thread waits on a condition variable until that dispatch ends, so when
 * it returns the callback is neither running nor will run. From the
 * dispatching thread itself (inside a callback) nothing else can be
 * running, so it frees at once. Id 0 is the stop eventfd. */
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

#define STOP_ID 0
#define SLOT_BITS 16
#define SLOT_MASK ((1u << SLOT_BITS) - 1)
#define MAX_EVENTS 32

_Static_assert(EVLOOP_MAX_FDS <= SLOT_MASK, "slot numbers must fit the id");

struct evloop_reg {
	int fd;                 /* -1: free slot */
	uint64_t id;
	evloop_cb cb;
	void *opaque;
};

struct evloop {
	int epfd;
	int stopfd;
	pthread_mutex_t lock;
	pthread_cond_t dispatch_done;
	struct evloop_reg regs[EVLOOP_MAX_FDS];
	uint64_t generation;
	uint64_t dispatching;   /* id whose callback runs now, STOP_ID when none */
	pthread_t dispatcher;   /* the thread running it */
	bool started;
	pthread_t thread;
	struct thread_policy policy;
};

static struct evloop_reg *find_fd(struct evloop *l, int fd)
{
	for (unsigned i = 0; i < EVLOOP_MAX_FDS; i++)
		if (l->regs[i].fd == fd)
			return &l->regs[i];
	return NULL;
}

static struct evloop_reg *find_id(struct evloop *l, uint64_t id)
{
	struct evloop_reg *r = &l->regs[(id & SLOT_MASK) % EVLOOP_MAX_FDS];

	return r->fd >= 0 && r->id == id ? r : NULL;
}

int evloop_create(struct evloop **out, struct kv_err *e)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = STOP_ID };
	struct evloop *l = calloc(1, sizeof(*l));
	int r;

	if (!l)
		return kv_err_set(e, -ENOMEM, "event loop: out of memory");
	for (unsigned i = 0; i < EVLOOP_MAX_FDS; i++)
		l->regs[i].fd = -1;
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
	l->generation = 1;
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
	pthread_mutex_lock(&l->lock);
	if (find_fd(l, fd)) {
		ret = -EEXIST;
		goto out;
	}
	r = find_fd(l, -1);
	if (!r) {
		ret = -ENOSPC;
		goto out;
	}
	ev.data.u64 = l->generation++ << SLOT_BITS | (uint64_t)(r - l->regs);
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev)) {
		ret = -errno;
		goto out;
	}
	*r = (struct evloop_reg){ .fd = fd, .id = ev.data.u64, .cb = cb, .opaque = opaque };
out:
	pthread_mutex_unlock(&l->lock);
	return ret;
}

int evloop_mod(struct evloop *l, int fd, uint32_t events)
{
	struct epoll_event ev = { .events = events };
	struct evloop_reg *r;
	int ret = 0;

	pthread_mutex_lock(&l->lock);
	r = find_fd(l, fd);
	if (!r || fd < 0) {
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
	struct evloop_reg *r;
	uint64_t id;

	if (fd < 0)
		return;
	pthread_mutex_lock(&l->lock);
	r = find_fd(l, fd);
	if (!r) {
		pthread_mutex_unlock(&l->lock);
		return;
	}
	id = r->id;
	r->fd = -1;
	/* The fd may already be closed (then it left the epoll set itself);
	 * a stale event for its id is dropped by the lookup anyway. */
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	if (l->dispatching == id && !pthread_equal(pthread_self(), l->dispatcher)) {
		while (l->dispatching == id)
			pthread_cond_wait(&l->dispatch_done, &l->lock);
	}
	pthread_mutex_unlock(&l->lock);
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
	/* Copies: the callback may delete its own registration. */
	cb = r->cb;
	opaque = r->opaque;
	l->dispatching = id;
	l->dispatcher = pthread_self();
	pthread_mutex_unlock(&l->lock);

	cb(opaque, events);

	pthread_mutex_lock(&l->lock);
	l->dispatching = STOP_ID;
	pthread_cond_broadcast(&l->dispatch_done);
	pthread_mutex_unlock(&l->lock);
}

/* One epoll_wait and its dispatches. Returns the number of events, 0 on
 * timeout, -EINTR, -ESHUTDOWN when the stop eventfd fired, or -errno. */
static int wait_and_dispatch(struct evloop *l, int timeout_ms)
{
	struct epoll_event evs[MAX_EVENTS];
	int n = epoll_wait(l->epfd, evs, MAX_EVENTS, timeout_ms);

	if (n < 0)
		return -errno;
	for (int i = 0; i < n; i++) {
		if (evs[i].data.u64 == STOP_ID)
			return -ESHUTDOWN;
		dispatch(l, evs[i].data.u64, evs[i].events);
	}
	return n;
}

int evloop_run_once(struct evloop *l, int timeout_ms)
{
	return wait_and_dispatch(l, timeout_ms);
}

static void *loop_thread(void *arg)
{
	struct evloop *l = arg;
	struct kv_err e = { 0 };

	/* Every device fd (images, taps, eventfds) is open before the
	 * loop starts: from here on it only moves data. */
	if (thread_policy_enter(&l->policy, &e)) {
		LOG_ERR("event loop: %s; I/O stops", e.msg);
		return NULL;
	}
	for (;;) {
		int r = wait_and_dispatch(l, -1);

		if (r == -ESHUTDOWN)
			return NULL;
		if (r < 0 && r != -EINTR) {
			LOG_ERR("event loop: epoll_wait: %s; I/O stops", strerror(-r));
			return NULL;
		}
	}
}

int evloop_start(struct evloop *l, const struct thread_policy *policy, struct kv_err *e)
{
	int r;

	pthread_mutex_lock(&l->lock);
	if (l->started) {
		pthread_mutex_unlock(&l->lock);
		return 0;
	}
	l->policy = policy ? *policy : (struct thread_policy){ 0 };
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
