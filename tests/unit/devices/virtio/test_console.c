/* virtio-console: guest output reaches out_fd byte for byte, input lands
 * in posted buffers, and hostile chains do no harm. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <time.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "kvmini/virtio_console.h"
#include "../../check_main.h"
#include "drv_ring.h"

#define RXQ 0
#define TXQ 1

static struct drv drv;
static struct virtio_dev dev;
static int pipefd[2];

static void setup(void)
{
	struct virtio_console_cfg cfg;
	struct kv_err e = { 0 };

	drv_init(&drv);
	ck_assert_int_eq(pipe2(pipefd, O_NONBLOCK), 0);
	cfg.out_fd = pipefd[1];
	ck_assert_int_eq(virtio_console_create(&cfg, &drv.gm, NULL, &dev, &e), 0);
	ck_assert_uint_eq(dev.device_id, VIRTIO_ID_CONSOLE);
	ck_assert_uint_eq(dev.nr_queues, 2);
}

static void teardown(void)
{
	virtio_dev_fini(&dev);
	close(pipefd[0]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	drv_fini(&drv);
}

static size_t drain(uint8_t *buf, size_t cap)
{
	ssize_t r = read(pipefd[0], buf, cap);

	return r < 0 ? 0 : (size_t)r;
}

START_TEST(config_space)
{
	uint8_t cfg[8];

	ck_assert(dev.config_len == 0 || dev.config_len == 8);
	memset(cfg, 0xaa, sizeof(cfg));
	dev.ops->config_read(&dev, 0, cfg, dev.config_len);
	for (unsigned i = 0; i < dev.config_len; i++)
		ck_assert_uint_eq(cfg[i], 0);
	/* SIZE offered; no MULTIPORT or EMERG_WRITE */
	ck_assert_uint_eq(dev.features & 0x7, 1);
}
END_TEST

/* The terminal's size: in the config space (le16 cols, le16 rows) before
 * the driver is up, and a config-change interrupt with a new generation
 * once it is live and took F_SIZE; the same size twice interrupts once. */
START_TEST(terminal_size)
{
	uint8_t cfg[8];
	uint32_t gen;

	virtio_console_set_size(&dev, 132, 43);
	dev.ops->config_read(&dev, 0, cfg, 8);
	ck_assert_uint_eq(cfg[0] | cfg[1] << 8, 132);
	ck_assert_uint_eq(cfg[2] | cfg[3] << 8, 43);
	ck_assert_uint_eq(cfg[4] | cfg[5] | cfg[6] | cfg[7], 0);
	dev.ops->config_read(&dev, 2, cfg, 2); /* a partial read at an offset */
	ck_assert_uint_eq(cfg[0] | cfg[1] << 8, 43);
	ck_assert_uint_eq(drv.config_irqs, 0);

	drv_attach(&drv, &dev, 1); /* F_SIZE: told at DRIVER_OK */
	ck_assert_uint_eq(drv.config_irqs, 1);
	drv.config_irqs = 0;
	gen = dev.config_generation;
	virtio_console_set_size(&dev, 80, 24);
	ck_assert_uint_eq(drv.config_irqs, 1);
	ck_assert_uint_ne(dev.config_generation, gen);
	virtio_console_set_size(&dev, 80, 24);
	ck_assert_uint_eq(drv.config_irqs, 1);
	dev.ops->config_read(&dev, 0, cfg, 4);
	ck_assert_uint_eq(cfg[0] | cfg[1] << 8, 80);
	ck_assert_uint_eq(cfg[2] | cfg[3] << 8, 24);
	/* Clamped, never wrapped. */
	virtio_console_set_size(&dev, 70000, 5);
	dev.ops->config_read(&dev, 0, cfg, 2);
	ck_assert_uint_eq(cfg[0] | cfg[1] << 8, 65535);
}
END_TEST

/* A driver that did not take F_SIZE gets no config interrupt. */
START_TEST(terminal_size_not_negotiated)
{
	drv_attach(&drv, &dev, 0);
	virtio_console_set_size(&dev, 100, 30);
	ck_assert_uint_eq(drv.config_irqs, 0);
}
END_TEST

START_TEST(tx_exact_bytes)
{
	const char *a = "hello, ", *b = "world\n";
	struct drv_seg s[2];
	uint8_t out[64];
	uint32_t id, len;
	uint16_t head;

	drv_attach(&drv, &dev, 0);
	s[0] = (struct drv_seg){ drv_alloc(&drv, 7), 7, false };
	s[1] = (struct drv_seg){ drv_alloc(&drv, 6), 6, false };
	memcpy(drv_host(&drv, s[0].gpa), a, 7);
	memcpy(drv_host(&drv, s[1].gpa), b, 6);
	head = drv_post(&drv, TXQ, s, 2);
	memcpy(drv_host(&drv, drv_post1(&drv, TXQ, 3, false, NULL)), "abc", 3);
	drv_kick(&drv, TXQ);

	ck_assert_uint_eq(drain(out, sizeof(out)), 16);
	ck_assert_mem_eq(out, "hello, world\nabc", 16);
	ck_assert(drv_used(&drv, TXQ, &id, &len));
	ck_assert_uint_eq(id, head);
	ck_assert_uint_eq(len, 0);
	ck_assert(drv_used(&drv, TXQ, &id, &len));
	ck_assert(!drv_used(&drv, TXQ, &id, &len));
	ck_assert_uint_ge(drv.irqs[TXQ], 1);
}
END_TEST

START_TEST(tx_writable_chain_dropped)
{
	struct drv_seg s[2];
	uint8_t out[16];
	uint32_t id, len;

	drv_attach(&drv, &dev, 0);
	s[0] = (struct drv_seg){ drv_alloc(&drv, 4), 4, false };
	s[1] = (struct drv_seg){ drv_alloc(&drv, 4), 4, true };
	memcpy(drv_host(&drv, s[0].gpa), "evil", 4);
	drv_post(&drv, TXQ, s, 2);
	memcpy(drv_host(&drv, drv_post1(&drv, TXQ, 2, false, NULL)), "ok", 2);
	drv_kick(&drv, TXQ);

	ck_assert_uint_eq(drain(out, sizeof(out)), 2);
	ck_assert_mem_eq(out, "ok", 2);
	ck_assert_uint_eq(drv_used_count(&drv, TXQ), 2);
	ck_assert(drv_used(&drv, TXQ, &id, &len));
	ck_assert(virtio_dev_live(&dev));
}
END_TEST

/* A full pipe (EAGAIN) and a closed one (EPIPE) drop output: no spin, no
 * hang, chains still come back. */
START_TEST(tx_full_and_closed_pipe)
{
	uint8_t big[4096];
	unsigned n = 0;

	signal(SIGPIPE, SIG_IGN);
	drv_attach(&drv, &dev, 0);
	memset(big, 'x', sizeof(big));
	while (write(pipefd[1], big, sizeof(big)) > 0)
		n++;
	ck_assert_int_eq(errno, EAGAIN);
	drv_post1(&drv, TXQ, 100, false, NULL);
	drv_kick(&drv, TXQ);
	ck_assert_uint_eq(drv_used_count(&drv, TXQ), 1);

	close(pipefd[0]);
	pipefd[0] = open("/dev/null", O_RDONLY);
	drv_post1(&drv, TXQ, 100, false, NULL);
	drv_kick(&drv, TXQ);
	ck_assert_uint_eq(drv_used_count(&drv, TXQ), 2);
	ck_assert(virtio_dev_live(&dev));
	ck_assert_uint_gt(n, 0);
}
END_TEST

START_TEST(rx_copies_into_posted_buffers)
{
	uint64_t b1, b2;
	uint16_t h1, h2;
	uint32_t id, len;

	ck_assert(!virtio_console_rx_ready(&dev));
	ck_assert_uint_eq(virtio_console_receive(&dev, (const uint8_t *)"x", 1), 0);
	drv_attach(&drv, &dev, 0);
	ck_assert(!virtio_console_rx_ready(&dev));
	ck_assert_uint_eq(virtio_console_receive(&dev, (const uint8_t *)"x", 1), 0);

	b1 = drv_post1(&drv, RXQ, 4, true, &h1);
	b2 = drv_post1(&drv, RXQ, 16, true, &h2);
	ck_assert(virtio_console_rx_ready(&dev));
	ck_assert_uint_eq(virtio_console_receive(&dev, (const uint8_t *)"abcdefg", 7), 7);
	ck_assert(drv_used(&drv, RXQ, &id, &len));
	ck_assert_uint_eq(id, h1);
	ck_assert_uint_eq(len, 4);
	ck_assert_mem_eq(drv_host(&drv, b1), "abcd", 4);
	ck_assert(drv_used(&drv, RXQ, &id, &len));
	ck_assert_uint_eq(id, h2);
	ck_assert_uint_eq(len, 3);
	ck_assert_mem_eq(drv_host(&drv, b2), "efg", 3);
	ck_assert_uint_ge(drv.irqs[RXQ], 1);
	/* all buffers used: nothing more is taken */
	ck_assert(!virtio_console_rx_ready(&dev));
	ck_assert_uint_eq(virtio_console_receive(&dev, (const uint8_t *)"h", 1), 0);
}
END_TEST

START_TEST(rx_partial_when_buffers_run_out)
{
	drv_attach(&drv, &dev, 0);
	drv_post1(&drv, RXQ, 2, true, NULL);
	ck_assert_uint_eq(virtio_console_receive(&dev, (const uint8_t *)"hello", 5), 2);
}
END_TEST

START_TEST(rx_readable_chain_returned_unused)
{
	uint64_t good;
	uint32_t id, len;
	uint16_t bad_head;

	drv_attach(&drv, &dev, 0);
	drv_post1(&drv, RXQ, 8, false, &bad_head);
	good = drv_post1(&drv, RXQ, 8, true, NULL);
	ck_assert_uint_eq(virtio_console_receive(&dev, (const uint8_t *)"hi", 2), 2);
	ck_assert(drv_used(&drv, RXQ, &id, &len));
	ck_assert_uint_eq(id, bad_head);
	ck_assert_uint_eq(len, 0);
	ck_assert(drv_used(&drv, RXQ, &id, &len));
	ck_assert_uint_eq(len, 2);
	ck_assert_mem_eq(drv_host(&drv, good), "hi", 2);
}
END_TEST

/* A broken ring (head out of range, buffer outside RAM) puts the device
 * into NEEDS_RESET; input is refused, output stops; reset recovers. */
START_TEST(hostile_rings_need_reset)
{
	struct drv_seg s = { DRV_RAM_SIZE - 2, 64, true };
	uint16_t *avail;

	drv_attach(&drv, &dev, 0);
	drv_post(&drv, RXQ, &s, 1);
	ck_assert_uint_eq(virtio_console_receive(&dev, (const uint8_t *)"x", 1), 0);
	ck_assert(!virtio_dev_live(&dev));
	ck_assert(dev.status & VIRTIO_CONFIG_S_NEEDS_RESET);
	ck_assert_uint_ge(drv.config_irqs, 1);
	ck_assert(!virtio_console_rx_ready(&dev));

	pthread_mutex_lock(&dev.lock);
	virtio_dev_set_status(&dev, 0);
	pthread_mutex_unlock(&dev.lock);
	memset(&drv.q, 0, sizeof(drv.q));
	memset(drv.ram, 0, 0x80000);
	drv_attach(&drv, &dev, 0);
	ck_assert(virtio_dev_live(&dev));

	/* a head index beyond the queue size on the transmit queue */
	avail = drv_host(&drv, drv.q[TXQ].avail);
	avail[2] = 999;
	avail[1] = 1;
	drv_kick(&drv, TXQ);
	ck_assert(!virtio_dev_live(&dev));
}
END_TEST

START_TEST(rx_wakeup_on_kick)
{
	int efd = eventfd(0, EFD_NONBLOCK);
	uint64_t v = 0;

	ck_assert_int_ge(efd, 0);
	virtio_console_set_rx_wakeup(&dev, efd);
	drv_attach(&drv, &dev, 0);
	/* activation wakes the reader: buffers posted earlier are usable */
	ck_assert_int_eq(read(efd, &v, sizeof(v)), 8);
	ck_assert(read(efd, &v, sizeof(v)) < 0);
	drv_post1(&drv, RXQ, 8, true, NULL);
	drv_kick(&drv, RXQ);
	ck_assert_int_eq(read(efd, &v, sizeof(v)), 8);
	ck_assert_uint_eq(v, 1);
	virtio_console_set_rx_wakeup(&dev, -1);
	close(efd);
}
END_TEST

/* With EVENT_IDX, running out of buffers re-arms avail_event so the
 * guest's next buffer kicks. */
/* A hostile guest keeps its receive ring full of chains that take
 * nothing (only readable parts), re-posting each one as soon as it is
 * returned. virtio_console_receive runs on the thread that also takes
 * SIGTERM and Ctrl-A x: each call must end after a ring's worth of
 * chains, whatever the guest does (issue 9 item 5). */
static atomic_bool reposting;

static void *repost_forever(void *arg)
{
	struct drv_queue *q = &drv.q[RXQ];
	volatile uint16_t *used = drv_host(&drv, q->used);
	volatile uint16_t *avail = drv_host(&drv, q->avail);
	uint16_t seen = 0;

	while (atomic_load(&reposting)) {
		uint16_t u = __atomic_load_n(&used[1], __ATOMIC_ACQUIRE);

		/* Every returned head goes straight back: avail stays a full
		 * ring ahead of used. */
		for (; seen != u; seen++) {
			avail[2 + (q->avail_idx % q->size)] = (uint16_t)(q->avail_idx % q->size);
			__atomic_store_n(&avail[1], ++q->avail_idx, __ATOMIC_RELEASE);
		}
	}
	return arg;
}

START_TEST(rx_budget_against_reposting_guest)
{
	struct timespec t0, t;
	unsigned max_per_call = 0, total = 0;
	uint8_t in[64] = { 0 };
	pthread_t th;

	drv_attach(&drv, &dev, 0);
	for (unsigned i = 0; i < drv.q[RXQ].size; i++)
		drv_post1(&drv, RXQ, 16, false, NULL);
	atomic_store(&reposting, true);
	ck_assert_int_eq(pthread_create(&th, NULL, repost_forever, NULL), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		uint16_t before = __atomic_load_n((uint16_t *)drv_host(&drv, drv.q[RXQ].used) + 1,
						  __ATOMIC_ACQUIRE);
		size_t took = virtio_console_receive(&dev, in, sizeof(in));
		uint16_t after = __atomic_load_n((uint16_t *)drv_host(&drv, drv.q[RXQ].used) + 1,
						 __ATOMIC_ACQUIRE);
		unsigned n = (uint16_t)(after - before);

		ck_assert_uint_eq(took, 0);
		total += n;
		if (n > max_per_call)
			max_per_call = n;
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < 1000 &&
		 max_per_call <= drv.q[RXQ].size);
	atomic_store(&reposting, false);
	pthread_join(th, NULL);
	ck_assert_msg(max_per_call <= drv.q[RXQ].size,
		      "one call consumed %u chains (ring: %u)", max_per_call, drv.q[RXQ].size);
	ck_assert_msg(total > drv.q[RXQ].size, "the guest did not keep re-posting (%u)", total);
}
END_TEST

START_TEST(rx_event_idx_rearmed)
{
	uint16_t *avail_event;

	drv_attach(&drv, &dev, 1ull << VIRTIO_RING_F_EVENT_IDX);
	ck_assert(dev.vqs[RXQ].event_idx);
	drv_post1(&drv, RXQ, 1, true, NULL);
	ck_assert_uint_eq(virtio_console_receive(&dev, (const uint8_t *)"ab", 2), 1);
	avail_event = (uint16_t *)drv_host(&drv, drv.q[RXQ].used + 4 + 8 * drv.q[RXQ].size);
	ck_assert_uint_eq(*avail_event, 1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("virtio_console");
	TCase *tc = tcase_create("console");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, config_space);
	tcase_add_test(tc, terminal_size);
	tcase_add_test(tc, terminal_size_not_negotiated);
	tcase_add_test(tc, tx_exact_bytes);
	tcase_add_test(tc, tx_writable_chain_dropped);
	tcase_add_test(tc, tx_full_and_closed_pipe);
	tcase_add_test(tc, rx_copies_into_posted_buffers);
	tcase_add_test(tc, rx_partial_when_buffers_run_out);
	tcase_add_test(tc, rx_readable_chain_returned_unused);
	tcase_add_test(tc, hostile_rings_need_reset);
	tcase_add_test(tc, rx_wakeup_on_kick);
	tcase_add_test(tc, rx_event_idx_rearmed);
	tcase_add_test(tc, rx_budget_against_reposting_guest);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
