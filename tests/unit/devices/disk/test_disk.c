/* The disk's request interface (devices/disk/disk.c) on its own:
 * refusals, snapshot writes to one block in order, reads racing writes,
 * a failed overlay write, write-zeroes waiting, drain, read-write disks
 * with direct and buffered writes into one block. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvmini/disk.h"
#include "kvmini/disk_engine.h"
#include "disk_fixture.h"
#include "../../check_main.h"

/* ---- the disk ---- */

static struct disk *d;
static struct disk_req *got[16];
static unsigned nr_got;

static void req_back(void *opaque, struct disk_req *r)
{
	ck_assert_uint_lt(nr_got, 16);
	got[nr_got++] = r;
}

static void open_disk(bool ro, bool snapshot, enum disk_engine_kind kind, unsigned max)
{
	struct disk_cfg cfg = { .path = path, .readonly = ro, .snapshot = snapshot,
				.name = "test", .max_requests = max, .engine = kind };
	struct kv_err e = { 0 };

	ck_assert_msg(disk_open(&d, &cfg, &e) == 0, "%s", e.msg);
	nr_got = 0;
}

static void rw_req(struct disk_req *r, enum disk_op op, uint64_t off, struct iovec *iov)
{
	memset(r, 0, sizeof(*r));
	r->op = op;
	r->off = off;
	r->iov = iov;
	r->niov = 1;
	r->cookie = r;
}

static void run(unsigned k, bool hand_back)
{
	ck_assert_int_eq(disk_engine_run_held(disk_test_engine(d), k, hand_back), 0);
}

static void reap(void)
{
	disk_reap(d, req_back, NULL);
}

START_TEST(disk_refusals)
{
	uint8_t buf[512];
	struct iovec iov = { buf, 512 };
	struct disk_range rg = { 0, 4096 };
	struct disk_req r[3];

	open_disk(true, false, DISK_ENGINE_MANUAL, 2);
	ck_assert(disk_info(d)->readonly);
	ck_assert(!disk_info(d)->discard);
	ck_assert_uint_eq(disk_info(d)->size, SIZE);
	rw_req(&r[0], DISK_WRITE, 0, &iov);
	ck_assert_int_eq(disk_submit(d, &r[0]), -EROFS);
	rw_req(&r[0], DISK_READ, SIZE - 256, &iov);
	ck_assert_int_eq(disk_submit(d, &r[0]), -EINVAL);
	rw_req(&r[0], DISK_READ, UINT64_MAX - 100, &iov);
	ck_assert_int_eq(disk_submit(d, &r[0]), -EINVAL);
	memset(&r[0], 0, sizeof(r[0]));
	r[0].op = DISK_DISCARD;
	r[0].ranges = &rg;
	r[0].nr_ranges = 1;
	ck_assert_int_eq(disk_submit(d, &r[0]), -EROFS);
	r[0].op = (enum disk_op)99;
	ck_assert_int_eq(disk_submit(d, &r[0]), -EINVAL);
	/* At most max_requests in flight. */
	rw_req(&r[0], DISK_READ, 0, &iov);
	rw_req(&r[1], DISK_READ, 512, &iov);
	rw_req(&r[2], DISK_READ, 1024, &iov);
	ck_assert_int_eq(disk_submit(d, &r[0]), 0);
	ck_assert_int_eq(disk_submit(d, &r[1]), 0);
	ck_assert_int_eq(disk_submit(d, &r[2]), -EBUSY);
	ck_assert_uint_eq(disk_in_flight(d), 2);
	/* A flush on a read-only disk is done without I/O. */
	disk_drain(d);
	ck_assert_uint_eq(disk_in_flight(d), 0);
	memset(&r[0], 0, sizeof(r[0]));
	r[0].op = DISK_FLUSH;
	ck_assert_int_eq(disk_submit(d, &r[0]), 0);
	ck_assert_uint_eq(disk_engine_held(disk_test_engine(d)), 0);
	reap();
	ck_assert_uint_eq(nr_got, 1);
	ck_assert_int_eq(r[0].result, 0);
	disk_close(d);
}
END_TEST

/* Two writes into one block not yet in the overlay, at different
 * sectors: the second waits for the first (its copy-up would otherwise
 * land on the first one's data), and a read meanwhile gets the base. */
START_TEST(snapshot_writes_to_one_block_in_order)
{
	uint8_t a[512], b[512], *rd = aligned(4096);
	struct iovec av = { a, 512 }, bv = { b, 512 }, rv = { rd, 4096 };
	struct disk_req w1, w2, r;

	open_disk(false, true, DISK_ENGINE_MANUAL, 8);
	memset(a, 0xaa, 512);
	memset(b, 0xbb, 512);
	rw_req(&w1, DISK_WRITE, 8192 + 512, &av);
	rw_req(&w2, DISK_WRITE, 8192 + 2048, &bv);
	ck_assert_int_eq(disk_submit(d, &w1), 0);
	ck_assert_int_eq(disk_submit(d, &w2), 0);
	ck_assert_uint_eq(disk_engine_held(disk_test_engine(d)), 1);
	/* w1 has run, not completed: the block still reads from the base. */
	run(0, false);
	rw_req(&r, DISK_READ, 8192, &rv);
	ck_assert_int_eq(disk_submit(d, &r), 0);
	run(1, true);
	reap();
	ck_assert_uint_eq(nr_got, 1);
	for (int i = 0; i < 4096; i++)
		ck_assert_uint_eq(rd[i], base_byte(8192u + (unsigned)i));
	/* w1 completes; w2 starts (copying nothing up: the block is held). */
	run(0, true);
	reap();
	ck_assert_uint_eq(nr_got, 2);
	ck_assert_int_eq(w1.result, 0);
	ck_assert_uint_eq(disk_engine_held(disk_test_engine(d)), 1);
	run(0, true);
	reap();
	ck_assert_uint_eq(nr_got, 3);
	ck_assert_int_eq(w2.result, 0);
	ck_assert_int_eq(disk_submit(d, &r), 0);
	run(0, true);
	reap();
	for (int i = 0; i < 4096; i++)
		ck_assert_uint_eq(rd[i], i >= 512 && i < 1024 ? 0xaa : i >= 2048 && i < 2560 ? 0xbb
							  : base_byte(8192u + (unsigned)i));
	disk_close(d);
	free(rd);
}
END_TEST

/* A write into the overlay that fails leaves the base readable there,
 * and the next write to the block copies it up again. */
START_TEST(snapshot_failed_write_keeps_old_data)
{
	uint8_t a[5120], *rd = aligned(12288);
	struct iovec av = { a, sizeof(a) }, rv = { rd, 12288 };
	struct disk_req w, r;
	struct disk_engine *eng;

	open_disk(false, true, DISK_ENGINE_MANUAL, 8);
	eng = disk_test_engine(d);
	memset(a, 0xaa, sizeof(a));
	/* The end of block 0, all of block 1, the start of block 2. */
	rw_req(&w, DISK_WRITE, 4096 - 512, &av);
	ck_assert_int_eq(disk_submit(d, &w), 0);
	/* The file system fails the write. */
	eng->held.head->fd = -1;
	run(0, true);
	reap();
	ck_assert_int_eq(w.result, -EBADF);
	rw_req(&r, DISK_READ, 0, &rv);
	ck_assert_int_eq(disk_submit(d, &r), 0);
	run(0, true);
	reap();
	for (int i = 0; i < 12288; i++)
		ck_assert_uint_eq(rd[i], base_byte((unsigned)i));
	/* Again, and this time it works. */
	ck_assert_int_eq(disk_submit(d, &w), 0);
	run(0, true);
	reap();
	ck_assert_int_eq(w.result, 0);
	ck_assert_int_eq(disk_submit(d, &r), 0);
	run(0, true);
	reap();
	for (int i = 0; i < 12288; i++)
		ck_assert_uint_eq(rd[i], i >= 3584 && i < 8704 ? 0xaa : base_byte((unsigned)i));
	disk_close(d);
	free(rd);
}
END_TEST

/* A write-zeroes overlapping a write in flight waits for it; drain then
 * forgets what waits. */
START_TEST(snapshot_zeroes_wait_and_drain)
{
	uint8_t a[512], *rd = aligned(4096);
	struct iovec av = { a, 512 }, rv = { rd, 4096 };
	struct disk_range rg = { 512, 1024 };
	struct disk_req w, z, r;

	open_disk(false, true, DISK_ENGINE_MANUAL, 8);
	ck_assert(disk_info(d)->discard);
	memset(a, 0xaa, 512);
	rw_req(&w, DISK_WRITE, 0, &av);
	memset(&z, 0, sizeof(z));
	z.op = DISK_WRITE_ZEROES;
	z.ranges = &rg;
	z.nr_ranges = 1;
	ck_assert_int_eq(disk_submit(d, &w), 0);
	ck_assert_int_eq(disk_submit(d, &z), 0);
	ck_assert_uint_eq(disk_in_flight(d), 2);
	run(0, true);
	reap(); /* w back; z runs at once (a punch) and comes back too */
	ck_assert_uint_eq(nr_got, 2);
	ck_assert_int_eq(z.result, 0);
	rw_req(&r, DISK_READ, 0, &rv);
	ck_assert_int_eq(disk_submit(d, &r), 0);
	run(0, true);
	reap();
	for (int i = 0; i < 4096; i++)
		ck_assert_uint_eq(rd[i], i < 512 ? 0xaa : i < 1536 ? 0 : base_byte((unsigned)i));
	/* Drain with one held and one waiting behind it. */
	ck_assert_int_eq(disk_submit(d, &w), 0);
	ck_assert_int_eq(disk_submit(d, &z), 0);
	disk_drain(d);
	ck_assert_uint_eq(disk_in_flight(d), 0);
	ck_assert_uint_eq(disk_engine_held(disk_test_engine(d)), 0);
	nr_got = 0;
	reap();
	ck_assert_uint_eq(nr_got, 0);
	/* The next ones run, nothing left waiting. */
	ck_assert_int_eq(disk_submit(d, &z), 0);
	reap();
	ck_assert_uint_eq(nr_got, 1);
	disk_close(d);
	free(rd);
}
END_TEST

/* A read-write disk: O_DIRECT where the buffers allow it, buffered
 * otherwise, discard punches the image. */
START_TEST(read_write_disk)
{
	uint8_t *w = aligned(4096 + 1), rd[512];
	struct iovec wv = { w, 4096 }, uv = { w + 1, 512 }, rv = { rd, 512 };
	struct disk_range rg = { 8192, 4096 };
	struct disk_req r;

	open_disk(false, false, DISK_ENGINE_MANUAL, 8);
	memset(w, 0x11, 4096 + 1);
	rw_req(&r, DISK_WRITE, 4096, &wv);
	ck_assert_int_eq(disk_submit(d, &r), 0);
	ck_assert_int_ne(disk_test_engine(d)->held.head->fallback_fd, -1); /* O_DIRECT */
	run(0, true);
	reap();
	ck_assert_int_eq(r.result, 0);
	rw_req(&r, DISK_WRITE, 0, &uv);
	ck_assert_int_eq(disk_submit(d, &r), 0);
	ck_assert_int_eq(disk_test_engine(d)->held.head->fallback_fd, -1); /* buffered */
	run(0, true);
	reap();
	memset(&r, 0, sizeof(r));
	r.op = DISK_DISCARD;
	r.ranges = &rg;
	r.nr_ranges = 1;
	ck_assert_int_eq(disk_submit(d, &r), 0);
	reap();
	ck_assert_int_eq(r.result, 0);
	memset(&r, 0, sizeof(r));
	r.op = DISK_FLUSH;
	ck_assert_int_eq(disk_submit(d, &r), 0);
	ck_assert_uint_eq(disk_engine_held(disk_test_engine(d)), 1);
	run(0, true);
	reap();
	ck_assert_int_eq(r.result, 0);
	disk_close(d);
	int fd = open(path, O_RDONLY);

	ck_assert_int_eq(pread(fd, rd, 512, 0), 512);
	ck_assert_uint_eq(rd[0], 0x11);
	ck_assert_int_eq(pread(fd, rd, 512, 4096 + 100), 512);
	ck_assert_uint_eq(rd[0], 0x11);
	ck_assert_int_eq(pread(fd, rd, 512, 8192), 512);
	ck_assert_uint_eq(rd[0], 0);
	ck_assert_int_eq(pread(fd, rd, 512, 12288), 512);
	ck_assert_uint_eq(rd[0], base_byte(12288));
	close(fd);
	(void)rv;
	free(w);
}
END_TEST

/* On a disk written both directly and through the page cache, writes
 * into one 4 KiB block run one after the other: a buffered write that
 * reads the block in while a direct write to it is in flight would keep
 * stale data in a dirty page the kernel cannot drop ("Page cache
 * invalidation failure on direct I/O"), and write it back later. */
START_TEST(read_write_overlapping_writes_in_order)
{
	uint8_t *a = aligned(4096 + 512), *b = aligned(4096 + 512);
	struct iovec av = { a, 512 }, bv = { b + 1, 512 }, cv = { a + 1024, 512 };
	struct disk_req w1, w2, w3;
	struct disk_engine *eng;

	open_disk(false, false, DISK_ENGINE_MANUAL, 8);
	eng = disk_test_engine(d);
	rw_req(&w1, DISK_WRITE, 16384, &av);        /* direct */
	rw_req(&w2, DISK_WRITE, 16384 + 512, &bv);  /* buffered, same block */
	rw_req(&w3, DISK_WRITE, 20480, &cv);        /* direct, the next block */
	ck_assert_int_eq(disk_submit(d, &w1), 0);
	ck_assert_int_eq(disk_submit(d, &w2), 0);
	ck_assert_int_eq(disk_submit(d, &w3), 0);
	ck_assert_uint_eq(disk_engine_held(eng), 2); /* w1 and w3; w2 waits */
	ck_assert_int_ge(eng->held.head->fallback_fd, 0);
	run(0, true);
	reap();
	ck_assert_uint_eq(disk_engine_held(eng), 2); /* w3 and now w2 */
	ck_assert_int_eq(eng->held.head->next->fallback_fd, -1);
	run(0, true);
	run(0, true);
	reap();
	ck_assert_uint_eq(nr_got, 3);
	disk_close(d);
	free(a);
	free(b);
}
END_TEST

static Suite *disk_suite(void)
{
	Suite *s = suite_create("disk");
	TCase *tc = tcase_create("disk");

	tcase_add_checked_fixture(tc, disk_setup, disk_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, disk_refusals);
	tcase_add_test(tc, snapshot_writes_to_one_block_in_order);
	tcase_add_test(tc, snapshot_failed_write_keeps_old_data);
	tcase_add_test(tc, snapshot_zeroes_wait_and_drain);
	tcase_add_test(tc, read_write_disk);
	tcase_add_test(tc, read_write_overlapping_writes_in_order);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run_suite(disk_suite());
}
