/* The epoll event loop: dispatch, mod, del racing live events, stop. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "kvmini/event_loop.h"
#include "../../check_main.h"

struct counter {
	int fd;
	atomic_uint calls;
	atomic_bool running;   /* inside the callback now */
	atomic_bool deleted;   /* evloop_del returned: no call may start */
	atomic_uint late_calls;
	bool slow;             /* sleep inside the callback: widens the race window */
	uint32_t last_events;
};

static void drain(int fd)
{
	uint64_t v;

	while (read(fd, &v, sizeof(v)) == sizeof(v))
		;
}

static void signal_fd(int fd)
{
	uint64_t one = 1;

	ck_assert_int_eq(write(fd, &one, sizeof(one)), sizeof(one));
}

static void count_cb(void *opaque, uint32_t events)
{
	struct counter *c = opaque;

	atomic_store(&c->running, true);
	if (atomic_load(&c->deleted))
		atomic_fetch_add(&c->late_calls, 1);
	c->last_events = events;
	if (c->slow)
		usleep(100);
	drain(c->fd);
	atomic_fetch_add(&c->calls, 1);
	atomic_store(&c->running, false);
}

static bool wait_calls(struct counter *c, unsigned n)
{
	for (int i = 0; i < 2000; i++) {
		if (atomic_load(&c->calls) >= n)
			return true;
		usleep(1000);
	}
	return false;
}

static struct evloop *new_loop(void)
{
	struct evloop *l;
	struct kv_err e = { 0 };

	ck_assert_int_eq(evloop_create(&l, &e), 0);
	return l;
}

START_TEST(callback_runs)
{
	struct evloop *l = new_loop();
	struct counter c = { .fd = eventfd(0, EFD_NONBLOCK) };
	struct kv_err e = { 0 };

	/* Registered before start: the event waits for the thread. */
	ck_assert_int_eq(evloop_add(l, c.fd, EPOLLIN, count_cb, &c), 0);
	ck_assert_int_eq(evloop_add(l, c.fd, EPOLLIN, count_cb, &c), -EEXIST);
	signal_fd(c.fd);
	ck_assert_int_eq(evloop_start(l, NULL, &e), 0);
	ck_assert(wait_calls(&c, 1));
	ck_assert(c.last_events & EPOLLIN);
	signal_fd(c.fd);
	ck_assert(wait_calls(&c, 2));
	evloop_destroy(l);
	close(c.fd);
}
END_TEST

START_TEST(mod_changes_events)
{
	struct evloop *l = new_loop();
	struct counter c = { .fd = eventfd(0, EFD_NONBLOCK) };
	struct kv_err e = { 0 };

	ck_assert_int_eq(evloop_add(l, c.fd, 0, count_cb, &c), 0);
	ck_assert_int_eq(evloop_start(l, NULL, &e), 0);
	signal_fd(c.fd);
	usleep(20000);
	ck_assert_uint_eq(atomic_load(&c.calls), 0); /* not watching EPOLLIN */
	ck_assert_int_eq(evloop_mod(l, c.fd, EPOLLIN), 0);
	ck_assert(wait_calls(&c, 1));
	ck_assert_int_eq(evloop_mod(l, c.fd + 1000, EPOLLIN), -ENOENT);
	evloop_del(l, c.fd);
	evloop_del(l, c.fd); /* unknown fd: nothing */
	ck_assert_int_eq(evloop_mod(l, c.fd, EPOLLIN), -ENOENT);
	evloop_destroy(l);
	close(c.fd);
}
END_TEST

/* A callback that deletes its own registration. */
struct self_del {
	struct evloop *l;
	struct counter c;
};

static void del_me_cb(void *opaque, uint32_t events)
{
	struct self_del *s = opaque;

	evloop_del(s->l, s->c.fd);
	atomic_fetch_add(&s->c.calls, 1);
}

START_TEST(del_from_own_callback)
{
	struct self_del s = { .l = new_loop(), .c = { .fd = eventfd(0, EFD_NONBLOCK) } };
	struct kv_err e = { 0 };

	ck_assert_int_eq(evloop_add(s.l, s.c.fd, EPOLLIN, del_me_cb, &s), 0);
	ck_assert_int_eq(evloop_start(s.l, NULL, &e), 0);
	signal_fd(s.c.fd); /* never drained: level-triggered, would fire forever */
	ck_assert(wait_calls(&s.c, 1));
	usleep(20000);
	ck_assert_uint_eq(atomic_load(&s.c.calls), 1);
	/* The fd can be registered again. */
	ck_assert_int_eq(evloop_add(s.l, s.c.fd, EPOLLIN, del_me_cb, &s), 0);
	ck_assert(wait_calls(&s.c, 2));
	evloop_destroy(s.l);
	close(s.c.fd);
}
END_TEST

/* Another thread keeps the fds firing while this one adds and deletes
 * registrations: once evloop_del returns, the callback must be neither
 * running nor called again (ASan catches a use of freed state). */
struct firer {
	int fds[4];
	atomic_bool stop;
};

static void *fire_thread(void *arg)
{
	struct firer *fi = arg;
	uint64_t one = 1;

	while (!atomic_load(&fi->stop))
		for (int i = 0; i < 4; i++)
			if (write(fi->fds[i], &one, sizeof(one)) < 0)
				usleep(10);
	return NULL;
}

START_TEST(del_races_events)
{
	struct evloop *l = new_loop();
	struct firer fi = { 0 };
	struct kv_err e = { 0 };
	pthread_t t;

	for (int i = 0; i < 4; i++)
		fi.fds[i] = eventfd(0, EFD_NONBLOCK);
	ck_assert_int_eq(evloop_start(l, NULL, &e), 0);
	ck_assert_int_eq(pthread_create(&t, NULL, fire_thread, &fi), 0);
	for (int round = 0; round < 300; round++) {
		struct counter *cs[4];

		for (int i = 0; i < 4; i++) {
			cs[i] = calloc(1, sizeof(*cs[i]));
			cs[i]->fd = fi.fds[i];
			cs[i]->slow = true;
			ck_assert_int_eq(evloop_add(l, cs[i]->fd, EPOLLIN, count_cb, cs[i]), 0);
		}
		if (round % 3 == 0)
			usleep(200);
		for (int i = 0; i < 4; i++) {
			evloop_del(l, cs[i]->fd);
			ck_assert(!atomic_load(&cs[i]->running));
			atomic_store(&cs[i]->deleted, true);
		}
		usleep(50);
		for (int i = 0; i < 4; i++) {
			ck_assert_uint_eq(atomic_load(&cs[i]->late_calls), 0);
			free(cs[i]); /* a late callback would now touch freed memory */
		}
	}
	atomic_store(&fi.stop, true);
	pthread_join(t, NULL);
	evloop_destroy(l);
	for (int i = 0; i < 4; i++)
		close(fi.fds[i]);
}
END_TEST

START_TEST(stop_destroy_idempotent)
{
	struct evloop *l = new_loop();
	struct counter c = { .fd = eventfd(0, EFD_NONBLOCK) };
	struct kv_err e = { 0 };

	evloop_stop(l); /* never started */
	ck_assert_int_eq(evloop_start(l, NULL, &e), 0);
	ck_assert_int_eq(evloop_add(l, c.fd, EPOLLIN, count_cb, &c), 0);
	evloop_stop(l);
	evloop_stop(l);
	/* Stopped: events wait; a restart delivers them. */
	signal_fd(c.fd);
	usleep(20000);
	ck_assert_uint_eq(atomic_load(&c.calls), 0);
	ck_assert_int_eq(evloop_start(l, NULL, &e), 0);
	ck_assert(wait_calls(&c, 1));
	evloop_destroy(l); /* still registered: destroy frees it */
	evloop_destroy(NULL);
	close(c.fd);

	l = new_loop(); /* destroy without ever starting */
	evloop_destroy(l);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("event_loop");
	TCase *tc = tcase_create("event_loop");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, callback_runs);
	tcase_add_test(tc, mod_changes_events);
	tcase_add_test(tc, del_from_own_callback);
	tcase_add_test(tc, del_races_events);
	tcase_add_test(tc, stop_destroy_idempotent);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
