/* virtio-blk against a hostile driver (blk_driver.c): chains that break
 * the rules put the device in NEEDS_RESET, a head republished while in
 * flight too, and a driver that keeps re-posting chains gets at most a
 * queue's worth per call (the work budget) while the event loop goes
 * on serving others. */
#include <check.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ring.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "kvmini/disk.h"
#include "kvmini/event_loop.h"
#include "kvmini/virtio_blk.h"
#include "blk_driver.h"
#include "../../check_main.h"

static char dir[64];
static char disk[128];
static struct bdrv drv;

static void setup(void)
{
	int fd;

	snprintf(dir, sizeof(dir), "/tmp/kvmini-blkh-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(disk, sizeof(disk), "%s/disk.img", dir);
	fd = open(disk, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	ck_assert_int_eq(ftruncate(fd, 64 * 1024), 0);
	close(fd);
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static void open_ok(void)
{
	struct virtio_blk_cfg cfg = { .path = disk };
	struct kv_err e = { 0 };

	ck_assert_msg(bdrv_open(&drv, &cfg, 16, false, &e) == 0, "%s", e.msg);
}

/* ---- guest rule breaking ---- */

START_TEST(no_status_fails_device)
{
	struct bdrv_seg seg = { 0, 512 };
	struct vring_desc *table;

	open_ok();
	bdrv_post(&drv, 0, VIRTIO_BLK_T_OUT, 0, &seg, 1);
	/* End the chain before its status (head 0's indirect table). */
	table = (struct vring_desc *)(drv.ram + 0x10000);
	table[1].flags &= (uint16_t)~VRING_DESC_F_NEXT;
	bdrv_kick(&drv);
	ck_assert(drv.dev.broken);
	ck_assert(drv.dev.status & VIRTIO_CONFIG_S_NEEDS_RESET);
	ck_assert_uint_eq(__atomic_load_n((uint16_t *)(drv.ram + 0x2002), __ATOMIC_ACQUIRE), 0);
	bdrv_close(&drv);
}
END_TEST

START_TEST(bad_chain_fails_device)
{
	struct bdrv_seg seg = { 0, 512 };

	open_ok();
	bdrv_post(&drv, 0, VIRTIO_BLK_T_IN, 0, &seg, 1);
	/* The indirect table moved outside guest RAM. */
	*(uint64_t *)drv.ram = 1ull << 40;
	bdrv_kick(&drv);
	ck_assert(drv.dev.broken);
	bdrv_close(&drv);
}
END_TEST

START_TEST(head_reused_in_flight)
{
	struct bdrv_seg seg = { 0, 512 };
	uint16_t *avail;

	open_ok();
	avail = (uint16_t *)(drv.ram + 0x1000);
	bdrv_post(&drv, 3, VIRTIO_BLK_T_IN, 0, &seg, 1);
	bdrv_kick(&drv);
	ck_assert(!drv.dev.broken);
	/* Head 3 again while the disk still holds it (nothing reaped yet):
	 * its slot is taken, so the driver broke the ring's rules. */
	avail[2 + drv.avail_idx % drv.qsize] = 3;
	__atomic_store_n(&avail[1], ++drv.avail_idx, __ATOMIC_RELEASE);
	bdrv_kick(&drv);
	ck_assert(drv.dev.broken);
	/* The first request still ends cleanly; the reset forgets it. */
	pthread_mutex_lock(&drv.dev.lock);
	virtio_dev_set_status(&drv.dev, 0);
	pthread_mutex_unlock(&drv.dev.lock);
	ck_assert_uint_eq(disk_in_flight(virtio_blk_disk(&drv.dev)), 0);
	bdrv_close(&drv);
}
END_TEST

/* ---- the work budget ---- */

/* A guest vCPU that makes every head available again as soon as the
 * device has used it (GET_ID requests, answered at once) and kicks when
 * the device asks for kicks, until told to stop or for 3 s. */
struct reposter {
	atomic_bool stop;
	atomic_uint reposted;
	double until;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *repost_loop(void *arg)
{
	struct reposter *rp = arg;
	uint16_t *avail = (uint16_t *)(drv.ram + 0x1000);
	uint16_t seen = 0;

	while (!atomic_load(&rp->stop) && now_s() < rp->until) {
		uint16_t idx = __atomic_load_n((uint16_t *)(drv.ram + 0x2002), __ATOMIC_ACQUIRE);
		bool posted = seen != idx;

		for (; seen != idx; seen++) {
			uint32_t head = ((uint32_t *)(drv.ram + 0x2004))[2 * (seen % drv.qsize)];

			avail[2 + drv.avail_idx % drv.qsize] = (uint16_t)head;
			__atomic_store_n(&avail[1], ++drv.avail_idx, __ATOMIC_RELEASE);
			atomic_fetch_add(&rp->reposted, 1);
		}
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (posted && !(__atomic_load_n((uint16_t *)(drv.ram + 0x2000), __ATOMIC_ACQUIRE) &
				VRING_USED_F_NO_NOTIFY))
			bdrv_kick_async(&drv);
	}
	return NULL;
}

static atomic_uint other_calls;

static void other_device(void *opaque, uint32_t events)
{
	uint64_t n;

	if (read(*(int *)opaque, &n, sizeof(n)) == sizeof(n))
		atomic_fetch_add(&other_calls, 1);
}

static uint16_t used_idx(void)
{
	return __atomic_load_n((uint16_t *)(drv.ram + 0x2002), __ATOMIC_ACQUIRE);
}

START_TEST(budget_yields_to_the_loop)
{
	struct kv_err e = { 0 };
	struct virtio_blk_cfg cfg = { .path = disk };
	struct reposter rp = { 0 };
	uint64_t one = 1;
	pthread_t t;
	double t0, longest = 0;
	unsigned before, most = 0;
	int other;

	ck_assert_int_eq(bdrv_open(&drv, &cfg, BDRV_QSIZE, false, &e), 0);
	other = eventfd(0, EFD_NONBLOCK);
	ck_assert_int_ge(other, 0);
	ck_assert_int_eq(evloop_add(drv.loop, other, EPOLLIN, other_device, &other), 0);
	for (uint16_t h = 0; h < drv.qsize; h++) {
		struct bdrv_seg seg = { 0, 20 };

		bdrv_post(&drv, h, VIRTIO_BLK_T_GET_ID, 0, &seg, 1);
	}
	rp.until = now_s() + 3;
	ck_assert_int_eq(pthread_create(&t, NULL, repost_loop, &rp), 0);
	/* Kicks: each takes at most a queue's worth and returns, though the
	 * guest keeps the ring full (without a budget, a kick runs for as long
	 * as the guest keeps up: up to 3 s here). */
	for (int i = 0; i < 10; i++) {
		uint16_t u0 = used_idx();
		unsigned took;

		t0 = now_s();
		bdrv_kick(&drv);
		if (now_s() - t0 > longest)
			longest = now_s() - t0;
		took = (uint16_t)(used_idx() - u0);
		if (took > most)
			most = took;
	}
	ck_assert_msg(most <= drv.qsize, "one kick took %u chains from a queue of %u", most,
		      drv.qsize);
	ck_assert_msg(longest < 1.5, "one kick ran %.2f s", longest);
	/* The rest comes through the event loop, a budget per call, and the
	 * loop still serves another device. */
	before = atomic_load(&rp.reposted);
	ck_assert_int_eq(write(other, &one, sizeof(one)), sizeof(one));
	for (int i = 0; i < 20; i++) {
		t0 = now_s();
		ck_assert_int_ge(evloop_run_once(drv.loop, 100), 0);
		if (now_s() - t0 > longest)
			longest = now_s() - t0;
	}
	ck_assert_msg(longest < 1.5, "one event-loop turn ran %.2f s", longest);
	ck_assert_uint_eq(atomic_load(&other_calls), 1);
	ck_assert_uint_gt(atomic_load(&rp.reposted), before + drv.qsize);
	atomic_store(&rp.stop, true);
	pthread_join(t, NULL);
	ck_assert(!drv.dev.broken);
	evloop_del(drv.loop, other);
	close(other);
	bdrv_close(&drv);
}
END_TEST

static Suite *hostile_suite(void)
{
	Suite *s = suite_create("virtio_block_hostile");
	TCase *tc = tcase_create("hostile");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, no_status_fails_device);
	tcase_add_test(tc, bad_chain_fails_device);
	tcase_add_test(tc, head_reused_in_flight);
	tcase_add_test(tc, budget_yields_to_the_loop);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run_suite(hostile_suite());
}
