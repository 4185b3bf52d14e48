/* virtio-blk on temp files through a real ring and event loop
 * (blk_driver.c): reads and writes, errors, read-only and snapshot
 * disks, discard, reset with requests in flight, and the open-time
 * checks. Parsing (test_block_parse.c) and hostile drivers
 * (test_block_hostile.c) have their own suites. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvmini/disk.h"
#include "kvmini/event_loop.h"
#include "kvmini/virtio_blk.h"
#include "kvmini/virtio_blk_parse.h"
#include "blk_driver.h"
#include "../../check_main.h"

#define DISK_SIZE (64 * 1024)
#define CAPACITY (DISK_SIZE / 512)

static char dir[64];
static char disk[128];

static void write_file(const char *path, size_t size, uint8_t seed)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	uint8_t *buf = malloc(size ? size : 1);

	ck_assert_int_ge(fd, 0);
	for (size_t i = 0; i < size; i++)
		buf[i] = (uint8_t)(seed + i / 512 + i);
	ck_assert_int_eq(write(fd, buf, size), (ssize_t)size);
	close(fd);
	free(buf);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/kvmini-blk-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(disk, sizeof(disk), "%s/disk.img", dir);
	write_file(disk, DISK_SIZE, 7);
	setenv("TMPDIR", dir, 1);
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* ---- the device on a real file, through a ring and the event loop ---- */

static struct bdrv drv;

static int open_dev(bool ro, bool snapshot, struct kv_err *e)
{
	struct virtio_blk_cfg cfg = { .path = disk, .readonly = ro, .snapshot = snapshot };

	return bdrv_open(&drv, &cfg, 16, false, e);
}

static void open_ok(bool ro, bool snapshot)
{
	struct kv_err e = { 0 };

	ck_assert_msg(open_dev(ro, snapshot, &e) == 0, "%s", e.msg);
}

/* One request with one data buffer at @off of the head's data area. */
static uint8_t do_rw(uint32_t type, uint64_t sector, uint32_t off, uint32_t len)
{
	struct bdrv_seg seg = { off, len };

	return bdrv_do(&drv, type, sector, &seg, len || type == VIRTIO_BLK_T_OUT ? 1 : 0);
}

/* The data area of the head the next bdrv_do will use. */
static uint8_t *next_data(void)
{
	int head = bdrv_free_head(&drv);

	ck_assert_int_ge(head, 0);
	return bdrv_data(&drv, (uint16_t)head);
}

static void file_read(const char *path, uint64_t off, void *buf, size_t len)
{
	int fd = open(path, O_RDONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static uint8_t base_byte(uint64_t i)
{
	return (uint8_t)(7 + i / 512 + i);
}

START_TEST(config_and_features)
{
	struct virtio_dev *dev = &drv.dev;
	struct virtio_blk_config c;

	open_ok(false, false);
	ck_assert_uint_eq(dev->device_id, VIRTIO_ID_BLOCK);
	ck_assert_uint_eq(dev->nr_queues, 1);
	ck_assert_uint_eq(dev->vqs[0].max_size, VIRTQ_MAX_SIZE);
	ck_assert(dev->features & (1ull << VIRTIO_BLK_F_FLUSH));
	ck_assert(dev->features & (1ull << VIRTIO_BLK_F_SEG_MAX));
	ck_assert(dev->features & (1ull << VIRTIO_BLK_F_BLK_SIZE));
	ck_assert(!(dev->features & (1ull << VIRTIO_BLK_F_RO)));
	ck_assert_uint_le(dev->config_len, sizeof(c));
	dev->ops->config_read(dev, 0, &c, dev->config_len);
	ck_assert_uint_eq(le64toh(c.capacity), CAPACITY);
	ck_assert_uint_le(le32toh(c.seg_max), VIRTQ_MAX_SIZE - 2);
	ck_assert_uint_eq(le32toh(c.blk_size), 512);
	if (dev->features & (1ull << VIRTIO_BLK_F_DISCARD))
		ck_assert_uint_gt(le32toh(c.max_discard_seg), 0);
	/* Writes are ignored. */
	uint64_t junk = 0;

	dev->ops->config_write(dev, 0, &junk, 8);
	dev->ops->config_read(dev, 0, &c, 8);
	ck_assert_uint_eq(le64toh(c.capacity), CAPACITY);
	bdrv_close(&drv);
}
END_TEST

START_TEST(create_needs_a_loop)
{
	struct virtio_blk_cfg cfg = { .path = disk };
	struct virtio_dev dev;
	struct kv_err e = { 0 };

	ck_assert_int_eq(virtio_blk_create(&cfg, NULL, NULL, &dev, &e), -EINVAL);
	ck_assert_msg(strstr(e.msg, "event loop"), "%s", e.msg);
}
END_TEST

START_TEST(write_read_back)
{
	uint8_t w[8192], file[8192];

	open_ok(false, false);
	for (int i = 0; i < 8192; i++)
		w[i] = (uint8_t)(i * 31 + 1);
	memcpy(next_data(), w, sizeof(w));
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_OUT, 8, 0, 8192), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(drv.last_len, 1);
	memset(next_data(), 0, 8192);
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_IN, 8, 0, 8192), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(drv.last_len, 8193);
	ck_assert_mem_eq(next_data(), w, 8192);
	/* Unaligned buffers take the buffered path. */
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_IN, 9, 1, 512), VIRTIO_BLK_S_OK);
	ck_assert_mem_eq(next_data() + 1, w + 512, 512);
	memcpy(next_data() + 3, w, 1024);
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_OUT, 0, 3, 1024), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_FLUSH, 0, 0, 0), VIRTIO_BLK_S_OK);
	/* A read of nothing succeeds. */
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_IN, 3, 0, 0), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(drv.last_len, 1);
	bdrv_close(&drv);
	file_read(disk, 0, file, 1024);
	ck_assert_mem_eq(file, w, 1024);
	file_read(disk, 4096, file, 8192);
	ck_assert_mem_eq(file, w, 8192);
}
END_TEST

START_TEST(many_in_flight)
{
	uint16_t head;
	uint32_t len;
	uint8_t st;

	open_ok(false, false);
	for (uint16_t h = 0; h < 12; h++) {
		struct bdrv_seg seg = { 0, 4096 };

		memset(bdrv_data(&drv, h), h + 1, 4096);
		bdrv_post(&drv, h, VIRTIO_BLK_T_OUT, (uint64_t)h * 8, &seg, 1);
	}
	bdrv_kick(&drv);
	for (int i = 0; i < 12; i++) {
		ck_assert(bdrv_next_used(&drv, 10000, &head, &len, &st));
		ck_assert_uint_eq(st, VIRTIO_BLK_S_OK);
	}
	ck_assert_uint_eq(drv.busy, 0);
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_IN, 0, 0, 12 * 4096), VIRTIO_BLK_S_OK);
	for (int i = 0; i < 12; i++)
		ck_assert_uint_eq(next_data()[i * 4096 + 100], i + 1);
	bdrv_close(&drv);
}
END_TEST

START_TEST(reset_drains_in_flight)
{
	open_ok(false, false);
	for (uint16_t h = 0; h < 8; h++) {
		struct bdrv_seg seg = { 0, 4096 };

		bdrv_post(&drv, h, VIRTIO_BLK_T_IN, (uint64_t)h * 8, &seg, 1);
	}
	bdrv_kick(&drv);
	pthread_mutex_lock(&drv.dev.lock);
	virtio_dev_set_status(&drv.dev, 0);
	pthread_mutex_unlock(&drv.dev.lock);
	ck_assert_uint_eq(disk_in_flight(virtio_blk_disk(&drv.dev)), 0);
	/* Nothing comes back after the reset, however long the loop runs. */
	for (int i = 0; i < 5; i++)
		ck_assert_int_ge(evloop_run_once(drv.loop, 10), 0);
	ck_assert_uint_eq(__atomic_load_n((uint16_t *)(drv.ram + 0x2002), __ATOMIC_ACQUIRE), 0);
	bdrv_close(&drv);
	/* A new driver on a fresh device works. */
	open_ok(false, false);
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_IN, 0, 0, 4096), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(next_data()[0], base_byte(0));
	bdrv_close(&drv);
}
END_TEST

/* virtio-mmio QueueReady = 0 with requests in flight: when the stop
 * returns nothing of the queue is held, and no completion reaches the
 * used ring afterwards. */
START_TEST(queue_stop_drops_in_flight)
{
	open_ok(false, false);
	for (uint16_t h = 0; h < 8; h++) {
		struct bdrv_seg seg = { 0, 4096 };

		bdrv_post(&drv, h, VIRTIO_BLK_T_IN, (uint64_t)h * 8, &seg, 1);
	}
	bdrv_kick(&drv);
	pthread_mutex_lock(&drv.dev.lock);
	virtio_dev_stop_queue(&drv.dev, 0);
	pthread_mutex_unlock(&drv.dev.lock);
	ck_assert(!drv.dev.vqs[0].enabled);
	ck_assert_uint_eq(disk_in_flight(virtio_blk_disk(&drv.dev)), 0);
	uint16_t used = __atomic_load_n((uint16_t *)(drv.ram + 0x2002), __ATOMIC_ACQUIRE);
	for (int i = 0; i < 5; i++)
		ck_assert_int_ge(evloop_run_once(drv.loop, 10), 0);
	ck_assert_uint_eq(__atomic_load_n((uint16_t *)(drv.ram + 0x2002), __ATOMIC_ACQUIRE), used);
	bdrv_close(&drv);
}
END_TEST

START_TEST(errors_keep_device_up)
{
	uint8_t *id;

	open_ok(false, false);
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_IN, CAPACITY - 1, 0, 1024), VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(drv.last_len, 1);
	ck_assert_uint_eq(do_rw(0x99, 0, 0, 0), VIRTIO_BLK_S_UNSUPP);
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_IN, CAPACITY - 2, 0, 1024), VIRTIO_BLK_S_OK);
	id = next_data();
	memset(id, 0xaa, 32);
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_GET_ID, 0, 0, 32), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(drv.last_len, 21);
	ck_assert(memcmp(id, "kvmini-", 7) == 0);
	ck_assert_uint_eq(id[20], 0xaa); /* nothing past 20 bytes */
	ck_assert(!drv.dev.broken);
	bdrv_close(&drv);
}
END_TEST

START_TEST(readonly_disk)
{
	struct stat before, after;

	ck_assert_int_eq(stat(disk, &before), 0);
	open_ok(true, false);
	ck_assert(drv.dev.features & (1ull << VIRTIO_BLK_F_RO));
	ck_assert(!(drv.dev.features & (1ull << VIRTIO_BLK_F_DISCARD)));
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_OUT, 0, 0, 4096), VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_IN, 0, 0, 4096), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(next_data()[0], 7);
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_FLUSH, 0, 0, 0), VIRTIO_BLK_S_OK);
	bdrv_close(&drv);
	ck_assert_int_eq(stat(disk, &after), 0);
	ck_assert_int_eq(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
}
END_TEST

static uint8_t do_segs(uint32_t type, uint64_t sector, uint32_t n, uint32_t flags)
{
	struct blk_discard_seg seg = { htole64(sector), htole32(n), htole32(flags) };

	memcpy(next_data(), &seg, sizeof(seg));
	return do_rw(type, 0, 0, sizeof(seg));
}

START_TEST(discard_and_write_zeroes)
{
	uint8_t zero[8192] = { 0 }, *buf;

	open_ok(false, false);
	/* /tmp punches holes (ext4, xfs, btrfs, tmpfs all do). */
	ck_assert(drv.dev.features & (1ull << VIRTIO_BLK_F_DISCARD));
	ck_assert(drv.dev.features & (1ull << VIRTIO_BLK_F_WRITE_ZEROES));
	ck_assert_uint_eq(do_segs(VIRTIO_BLK_T_DISCARD, 8, 8, 0), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(do_segs(VIRTIO_BLK_T_WRITE_ZEROES, 17, 3, 1), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(do_segs(VIRTIO_BLK_T_DISCARD, 8, 8, 1), VIRTIO_BLK_S_UNSUPP);
	ck_assert_uint_eq(do_segs(VIRTIO_BLK_T_DISCARD, CAPACITY - 1, 2, 0), VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(do_segs(VIRTIO_BLK_T_DISCARD, 0, 0, 0), VIRTIO_BLK_S_OK);
	buf = next_data();
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_IN, 0, 0, 16384), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(buf[4095], base_byte(4095));
	ck_assert_mem_eq(buf + 4096, zero, 4096);
	ck_assert_uint_eq(buf[8192], base_byte(8192));
	ck_assert_mem_eq(buf + 17 * 512, zero, 3 * 512);
	ck_assert_uint_eq(buf[20 * 512], base_byte(20 * 512));
	bdrv_close(&drv);
}
END_TEST

/* The loop on its own thread, as kvmini runs it. */
START_TEST(threaded_event_loop)
{
	struct kv_err e = { 0 };
	uint16_t head;
	uint32_t len;
	uint8_t st;

	open_ok(false, false);
	ck_assert_int_eq(evloop_start(drv.loop, NULL, &e), 0);
	for (uint16_t h = 0; h < 8; h++) {
		struct bdrv_seg seg = { 0, 4096 };

		bdrv_post(&drv, h, VIRTIO_BLK_T_IN, (uint64_t)h * 8, &seg, 1);
	}
	bdrv_kick(&drv);
	for (int i = 0; i < 8; i++) {
		uint16_t idx = 0;

		for (int t = 0; t < 5000 && (idx = __atomic_load_n((uint16_t *)(drv.ram + 0x2002),
							  __ATOMIC_ACQUIRE)) <= i; t++)
			usleep(1000);
		ck_assert_uint_gt(idx, i);
	}
	evloop_stop(drv.loop);
	for (int i = 0; i < 8; i++) {
		ck_assert(bdrv_next_used(&drv, 0, &head, &len, &st));
		ck_assert_uint_eq(st, VIRTIO_BLK_S_OK);
		ck_assert_uint_eq(bdrv_data(&drv, head)[0], base_byte((uint64_t)head * 4096));
	}
	bdrv_close(&drv);
}
END_TEST

START_TEST(snapshot_leaves_base_alone)
{
	uint8_t orig[DISK_SIZE], want[16384], *rd;
	struct stat before, after;

	file_read(disk, 0, orig, DISK_SIZE);
	ck_assert_int_eq(stat(disk, &before), 0);
	open_ok(false, true);
	ck_assert(!(drv.dev.features & (1ull << VIRTIO_BLK_F_RO)));
	/* Partial block: sectors 2..3 of block 0; a whole block: block 2. */
	memset(next_data(), 0x5a, 4096);
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_OUT, 2, 0, 1024), VIRTIO_BLK_S_OK);
	memset(next_data(), 0x5a, 4096);
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_OUT, 16, 0, 4096), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_FLUSH, 0, 0, 0), VIRTIO_BLK_S_OK);
	/* Reads see the writes, across base and overlay blocks. */
	rd = next_data();
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_IN, 0, 0, 16384), VIRTIO_BLK_S_OK);
	memcpy(want, orig, sizeof(want));
	memset(want + 1024, 0x5a, 1024);
	memset(want + 8192, 0x5a, 4096);
	ck_assert_mem_eq(rd, want, sizeof(want));
	/* Only-overlay and only-base reads. */
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_IN, 0, 0, 4096), VIRTIO_BLK_S_OK);
	ck_assert_mem_eq(rd, want, 4096);
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_IN, 8, 0, 4096), VIRTIO_BLK_S_OK);
	ck_assert_mem_eq(rd, orig + 4096, 4096);
	if (drv.dev.features & (1ull << VIRTIO_BLK_F_WRITE_ZEROES)) {
		ck_assert_uint_eq(do_segs(VIRTIO_BLK_T_WRITE_ZEROES, 25, 2, 0), VIRTIO_BLK_S_OK);
		ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_IN, 24, 0, 4096), VIRTIO_BLK_S_OK);
		ck_assert_mem_eq(rd, orig + 24 * 512, 512);
		for (int i = 512; i < 1536; i++)
			ck_assert_uint_eq(rd[i], 0);
		ck_assert_mem_eq(rd + 1536, orig + 27 * 512, 4096 - 1536);
	}
	/* A second snapshot of the same image may run alongside. */
	struct bdrv second;
	struct virtio_blk_cfg cfg = { .path = disk, .snapshot = true };
	struct kv_err e = { 0 };

	ck_assert_int_eq(bdrv_open(&second, &cfg, 16, false, &e), 0);
	/* Even while open, the overlays have no name (gone on kill -9). */
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "test $(ls -A %s | wc -l) -eq 1", dir);
	ck_assert_int_eq(system(cmd), 0);
	bdrv_close(&second);
	bdrv_close(&drv);

	file_read(disk, 0, want, sizeof(want));
	ck_assert_mem_eq(want, orig, sizeof(want));
	ck_assert_int_eq(stat(disk, &after), 0);
	ck_assert_int_eq(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
	ck_assert_int_eq(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
	ck_assert_int_eq(system(cmd), 0); /* nothing left behind either */
}
END_TEST

START_TEST(sync_engine)
{
	struct virtio_blk_cfg cfg = { .path = disk, .engine = DISK_ENGINE_SYNC };
	struct kv_err e = { 0 };

	ck_assert_int_eq(bdrv_open(&drv, &cfg, 16, false, &e), 0);
	memset(next_data(), 0x77, 4096);
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_OUT, 4, 0, 4096), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_FLUSH, 0, 0, 0), VIRTIO_BLK_S_OK);
	memset(next_data(), 0, 4096);
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_IN, 4, 0, 4096), VIRTIO_BLK_S_OK);
	for (int i = 0; i < 4096; i++)
		ck_assert_uint_eq(next_data()[i], 0x77);
	bdrv_close(&drv);
}
END_TEST

/* ---- open errors ---- */

static void expect_open_error(bool ro, bool snapshot, const char *what)
{
	struct kv_err e = { 0 };

	ck_assert_int_lt(open_dev(ro, snapshot, &e), 0);
	ck_assert_msg(strstr(e.msg, disk) != NULL, "message names the path: %s", e.msg);
	ck_assert_msg(strstr(e.msg, what) != NULL, "message says '%s': %s", what, e.msg);
}

START_TEST(open_missing)
{
	snprintf(disk, sizeof(disk), "%s/nope.img", dir);
	expect_open_error(false, false, "does not exist");
	expect_open_error(true, false, "does not exist");
}
END_TEST

START_TEST(open_directory)
{
	snprintf(disk, sizeof(disk), "%s", dir);
	expect_open_error(false, false, "directory");
	expect_open_error(true, false, "directory");
}
END_TEST

START_TEST(open_bad_size)
{
	write_file(disk, 0, 0);
	expect_open_error(false, false, "empty");
	write_file(disk, 1000, 0);
	expect_open_error(false, false, "multiple of 512");
}
END_TEST

START_TEST(open_not_regular)
{
	snprintf(disk, sizeof(disk), "%s/fifo", dir);
	ck_assert_int_eq(mkfifo(disk, 0600), 0);
	expect_open_error(true, false, "not a regular file");
}
END_TEST

START_TEST(open_locked)
{
	struct kv_err e = { 0 };
	struct bdrv first;
	struct virtio_blk_cfg cfg = { .path = disk };

	ck_assert_int_eq(bdrv_open(&first, &cfg, 16, false, &e), 0);
	expect_open_error(false, false, "in use by another process");
	expect_open_error(true, false, "in use by another process");
	expect_open_error(false, true, "in use by another process");
	bdrv_close(&first);
	/* Readers share. */
	cfg.readonly = true;
	ck_assert_int_eq(bdrv_open(&first, &cfg, 16, false, &e), 0);
	open_ok(true, false);
	bdrv_close(&drv);
	expect_open_error(false, false, "in use by another process");
	bdrv_close(&first);
}
END_TEST

START_TEST(open_snapshot_bad_tmpdir)
{
	struct kv_err e = { 0 };
	char bad[160];

	snprintf(bad, sizeof(bad), "%s/no-such-dir", dir);
	setenv("TMPDIR", bad, 1);
	ck_assert_int_lt(open_dev(false, true, &e), 0);
	ck_assert_msg(strstr(e.msg, "TMPDIR") && strstr(e.msg, disk), "%s", e.msg);
	/* The failed open let go of its lock. */
	open_ok(false, false);
	bdrv_close(&drv);
}
END_TEST

static Suite *block_suite(void)
{
	Suite *s = suite_create("virtio_block");
	TCase *io = tcase_create("io");
	TCase *open_tc = tcase_create("open");

	tcase_add_checked_fixture(io, setup, teardown);
	tcase_set_timeout(io, 30);
	tcase_add_test(io, config_and_features);
	tcase_add_test(io, create_needs_a_loop);
	tcase_add_test(io, write_read_back);
	tcase_add_test(io, many_in_flight);
	tcase_add_test(io, reset_drains_in_flight);
	tcase_add_test(io, queue_stop_drops_in_flight);
	tcase_add_test(io, errors_keep_device_up);
	tcase_add_test(io, readonly_disk);
	tcase_add_test(io, discard_and_write_zeroes);
	tcase_add_test(io, threaded_event_loop);
	tcase_add_test(io, snapshot_leaves_base_alone);
	tcase_add_test(io, sync_engine);
	suite_add_tcase(s, io);

	tcase_add_checked_fixture(open_tc, setup, teardown);
	tcase_add_test(open_tc, open_missing);
	tcase_add_test(open_tc, open_directory);
	tcase_add_test(open_tc, open_bad_size);
	tcase_add_test(open_tc, open_not_regular);
	tcase_add_test(open_tc, open_locked);
	tcase_add_test(open_tc, open_snapshot_bad_tmpdir);
	suite_add_tcase(s, open_tc);
	return s;
}

int main(void)
{
	return check_run_suite(block_suite());
}
