/* The disk layer on its own (devices/disk/): iovec helpers, the engine
 * (Linux AIO, synchronous, manual; the O_DIRECT fallback; drain), the
 * image's direct I/O choice, the overlay's map, and the disk's request
 * interface: refusals, snapshot write ordering, reads racing writes, a
 * failed overlay write, drain. */
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
#include "kvmini/disk_image.h"
#include "kvmini/disk_io.h"
#include "kvmini/disk_overlay.h"
#include "../../check_main.h"

#define SIZE (64 * 1024)

static char dir[64], shm[64], path[128];

static uint8_t base_byte(uint64_t i)
{
	return (uint8_t)(i * 7 + i / 4096 + 1);
}

static void setup(void)
{
	uint8_t buf[SIZE];
	int fd;

	/* The image where O_DIRECT works (not tmpfs), the overlays on tmpfs
	 * (no reflink there: the sparse overlay with its map). */
	static const char *const where[] = { "/var/tmp", "/tmp", "." };

	dir[0] = 0;
	for (unsigned i = 0; i < 3 && !dir[0]; i++) {
		snprintf(dir, sizeof(dir), "%s/kvmini-disk-XXXXXX", where[i]);
		if (!mkdtemp(dir)) {
			dir[0] = 0;
			continue;
		}
		snprintf(path, sizeof(path), "%s/probe", dir);
		fd = open(path, O_CREAT | O_RDWR | O_DIRECT, 0600);
		if (fd >= 0) {
			close(fd);
			unlink(path);
		} else {
			rmdir(dir);
			dir[0] = 0;
		}
	}
	ck_assert_msg(dir[0], "no directory with O_DIRECT among /var/tmp, /tmp and .");
	snprintf(shm, sizeof(shm), "/dev/shm/kvmini-disk-XXXXXX");
	if (!mkdtemp(shm))
		snprintf(shm, sizeof(shm), "%s", dir);
	setenv("TMPDIR", shm, 1);
	snprintf(path, sizeof(path), "%s/disk.img", dir);
	for (unsigned i = 0; i < SIZE; i++)
		buf[i] = base_byte(i);
	fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, buf, SIZE), SIZE);
	close(fd);
}

static void teardown(void)
{
	char cmd[200];

	snprintf(cmd, sizeof(cmd), "rm -rf %s %s", dir, shm);
	ck_assert_int_eq(system(cmd), 0);
}

static void *aligned(size_t len)
{
	void *p = NULL;

	ck_assert_int_eq(posix_memalign(&p, 4096, len), 0);
	memset(p, 0, len);
	return p;
}

/* ---- iovec helpers ---- */

START_TEST(iov_helpers)
{
	uint8_t a[10], b[10];
	struct iovec src[2] = { { a, 10 }, { b, 10 } }, dst[2];
	struct iovec huge[2] = { { a, SIZE_MAX }, { b, 2 } };
	uint64_t len;

	ck_assert_int_eq(disk_iov_slice(src, 2, 5, 10, dst, 2), 2);
	ck_assert_ptr_eq(dst[0].iov_base, a + 5);
	ck_assert_uint_eq(dst[0].iov_len, 5);
	ck_assert_uint_eq(dst[1].iov_len, 5);
	ck_assert_int_eq(disk_iov_slice(src, 2, 5, 10, dst, 1), -1);
	ck_assert_int_eq(disk_iov_slice(src, 2, 15, 10, dst, 2), -1);
	ck_assert(disk_iov_len(src, 2, &len));
	ck_assert_uint_eq(len, 20);
	ck_assert(!disk_iov_len(huge, 2, &len));
	ck_assert(disk_iov_aligned(NULL, 0, 4096, 512));
	ck_assert(!disk_iov_aligned(NULL, 0, 100, 512));
	ck_assert(!disk_iov_aligned(src, 2, 0, 512));
}
END_TEST

/* Whole transfers over more entries than one preadv takes here, and a
 * part of a list starting inside an entry. */
START_TEST(io_full_and_part)
{
	static uint8_t mem[300 * 7];
	struct iovec iov[300];
	int fd = open(path, O_RDWR);

	ck_assert_int_ge(fd, 0);
	for (unsigned i = 0; i < 300; i++)
		iov[i] = (struct iovec){ mem + i * 7, 7 };
	ck_assert_int_eq(disk_preadv_full(fd, iov, 300, 100), 0);
	for (unsigned i = 0; i < sizeof(mem); i++)
		ck_assert_uint_eq(mem[i], base_byte(100 + i));
	memset(mem, 0, sizeof(mem));
	ck_assert_int_eq(disk_preadv_part(fd, iov, 300, 3, 1000, 5000), 0);
	for (unsigned i = 0; i < 1000; i++)
		ck_assert_uint_eq(mem[3 + i], base_byte(5000 + i));
	ck_assert_uint_eq(mem[2], 0);
	ck_assert_uint_eq(mem[1003], 0);
	ck_assert_int_eq(disk_preadv_part(fd, iov, 300, 2000, 200, 0), -EINVAL);
	/* Reading past the end is a short transfer: -EIO. */
	ck_assert_int_eq(disk_preadv_full(fd, iov, 300, SIZE - 100), -EIO);
	memset(mem, 0x42, sizeof(mem));
	ck_assert_int_eq(disk_pwritev_full(fd, iov, 300, 8), 0);
	ck_assert_int_eq(disk_preadv_full(fd, iov, 1, 8 + 7 * 299), 0);
	ck_assert_uint_eq(mem[0], 0x42);
	close(fd);
}
END_TEST

/* ---- the engine ---- */

static struct disk_io *handed[16];
static unsigned nr_handed;

static void collect(void *opaque, struct disk_io *io)
{
	ck_assert_uint_lt(nr_handed, 16);
	handed[nr_handed++] = io;
}

static void reap_until(struct disk_engine *e, unsigned n)
{
	for (int i = 0; i < 5000 && nr_handed < n; i++) {
		disk_engine_reap(e, collect, NULL);
		if (nr_handed < n)
			usleep(1000);
	}
	ck_assert_uint_eq(nr_handed, n);
}

static void io_set(struct disk_io *io, enum disk_io_op op, int fd, int fallback,
		   struct iovec *iov, uint64_t off)
{
	memset(io, 0, sizeof(*io));
	io->op = op;
	io->fd = fd;
	io->fallback_fd = fallback;
	io->iov = iov;
	io->niov = iov ? 1 : 0;
	io->len = iov ? iov->iov_len : 0;
	io->off = off;
}

static int open_direct(void)
{
	int fd = open(path, O_RDWR | O_DIRECT);

	ck_assert_msg(fd >= 0, "%s: O_DIRECT: %s", path, strerror(errno));
	return fd;
}

static void engine_roundtrip(enum disk_engine_kind kind)
{
	struct disk_engine e;
	struct kv_err err = { 0 };
	uint8_t *w = aligned(4096), *r = aligned(4096 + 1);
	struct iovec wv = { w, 4096 }, rv = { r + 1, 4096 };
	struct disk_io io[3];
	int fd = open(path, O_RDWR), dfd = open_direct();

	ck_assert_int_eq(disk_engine_init(&e, kind, 8, "test", &err), 0);
	memset(w, 0x3c, 4096);
	nr_handed = 0;
	/* O_DIRECT write (aligned), fsync, then an unaligned read on the
	 * O_DIRECT fd: the file system refuses it and the engine redoes it
	 * on the buffered fd. */
	io_set(&io[0], DISK_IO_WRITE, dfd, fd, &wv, 8192);
	disk_engine_submit(&e, &io[0]);
	reap_until(&e, 1);
	ck_assert_int_eq(io[0].res, 0);
	io_set(&io[1], DISK_IO_FSYNC, fd, -1, NULL, 0);
	disk_engine_submit(&e, &io[1]);
	io_set(&io[2], DISK_IO_READ, dfd, fd, &rv, 8192);
	disk_engine_submit(&e, &io[2]);
	reap_until(&e, 3);
	ck_assert_int_eq(io[1].res, 0);
	ck_assert_int_eq(io[2].res, 0);
	ck_assert_int_eq(io[2].fd, fd);
	ck_assert_mem_eq(r + 1, w, 4096);
	/* Without a fallback, the refusal is the result. */
	io_set(&io[2], DISK_IO_READ, dfd, -1, &rv, 8192);
	disk_engine_submit(&e, &io[2]);
	reap_until(&e, 4);
	ck_assert_int_eq(io[2].res, -EINVAL);
	/* Past the end: a short read is -EIO. */
	io_set(&io[2], DISK_IO_READ, fd, -1, &rv, SIZE - 512);
	disk_engine_submit(&e, &io[2]);
	reap_until(&e, 5);
	ck_assert_int_eq(io[2].res, -EIO);
	disk_engine_drain(&e, collect, NULL);
	disk_engine_fini(&e);
	close(fd);
	close(dfd);
	free(w);
	free(r);
}

START_TEST(engine_aio)
{
	engine_roundtrip(DISK_ENGINE_AUTO);
}
END_TEST

START_TEST(engine_sync)
{
	engine_roundtrip(DISK_ENGINE_SYNC);
}
END_TEST

START_TEST(engine_manual_and_drain)
{
	struct disk_engine e;
	struct kv_err err = { 0 };
	uint8_t buf[3][512];
	struct iovec iov[3] = { { buf[0], 512 }, { buf[1], 512 }, { buf[2], 512 } };
	struct disk_io io[3];
	int fd = open(path, O_RDWR);

	ck_assert_int_eq(disk_engine_init(&e, DISK_ENGINE_MANUAL, 8, "test", &err), 0);
	nr_handed = 0;
	for (int i = 0; i < 3; i++) {
		io_set(&io[i], DISK_IO_READ, fd, -1, &iov[i], (uint64_t)i * 512);
		disk_engine_submit(&e, &io[i]);
	}
	ck_assert_uint_eq(disk_engine_held(&e), 3);
	ck_assert_uint_eq(disk_engine_reap(&e, collect, NULL), 0);
	/* The newest first, handed back at once. */
	ck_assert_int_eq(disk_engine_run_held(&e, 2, true), 0);
	ck_assert_uint_eq(disk_engine_reap(&e, collect, NULL), 1);
	ck_assert_ptr_eq(handed[0], &io[2]);
	ck_assert_uint_eq(buf[2][0], base_byte(1024));
	/* Run but kept, then drained: a run I/O keeps its result, one never
	 * run is cancelled. */
	ck_assert_int_eq(disk_engine_run_held(&e, 0, false), 0);
	ck_assert_uint_eq(disk_engine_held(&e), 2);
	ck_assert_int_eq(disk_engine_run_held(&e, 5, true), -ENOENT);
	disk_engine_drain(&e, collect, NULL);
	ck_assert_uint_eq(nr_handed, 3);
	ck_assert_int_eq(io[0].res, 0);
	ck_assert_int_eq(io[1].res, -ECANCELED);
	ck_assert_uint_eq(disk_engine_held(&e), 0);
	disk_engine_fini(&e);
	close(fd);
}
END_TEST

START_TEST(engine_drain_waits)
{
	struct disk_engine e;
	struct kv_err err = { 0 };
	uint8_t *buf = aligned(8 * 4096);
	struct iovec iov[8];
	struct disk_io io[8];
	int fd = open(path, O_RDWR), dfd = open_direct();

	ck_assert_int_eq(disk_engine_init(&e, DISK_ENGINE_AUTO, 8, "test", &err), 0);
	nr_handed = 0;
	for (int i = 0; i < 8; i++) {
		iov[i] = (struct iovec){ buf + i * 4096, 4096 };
		io_set(&io[i], DISK_IO_READ, dfd, fd, &iov[i], (uint64_t)i * 4096);
		disk_engine_submit(&e, &io[i]);
	}
	disk_engine_drain(&e, collect, NULL);
	ck_assert_uint_eq(nr_handed, 8);
	for (int i = 0; i < 8; i++) {
		ck_assert_int_eq(io[i].res, 0);
		ck_assert_uint_eq(buf[i * 4096 + 5], base_byte((uint64_t)i * 4096 + 5));
	}
	ck_assert_uint_eq(disk_engine_reap(&e, collect, NULL), 0);
	disk_engine_fini(&e);
	close(fd);
	close(dfd);
	free(buf);
}
END_TEST

/* ---- image and overlay ---- */

START_TEST(image_no_direct_on_tmpfs)
{
	struct disk_image img;
	struct kv_err e = { 0 };
	char p[160];
	int fd;

	if (strncmp(shm, "/dev/shm/", 9) != 0)
		ck_abort_msg("no /dev/shm tmpfs here to test with");
	snprintf(p, sizeof(p), "%s/t.img", shm);
	fd = open(p, O_CREAT | O_WRONLY, 0600);
	ck_assert_int_eq(ftruncate(fd, 8192), 0);
	close(fd);
	ck_assert_int_eq(disk_image_open(&img, p, true, &e), 0);
	ck_assert_int_eq(img.direct_fd, -1);
	ck_assert(img.regular);
	ck_assert_uint_eq(img.size, 8192);
	disk_image_close(&img);
}
END_TEST

START_TEST(overlay_map)
{
	struct disk_overlay ov;
	struct kv_err e = { 0 };
	int base = open(path, O_RDONLY);
	uint8_t buf[3 * 4096];
	struct iovec iov = { buf, sizeof(buf) };

	ck_assert_int_eq(disk_overlay_create(&ov, base, SIZE, shm, &e), 0);
	ck_assert(disk_overlay_sparse(&ov)); /* tmpfs has no reflink */
	ck_assert_int_eq(disk_overlay_source(&ov, 0, SIZE), DISK_OVERLAY_BASE);
	/* Prepare copies the partly covered block up but marks nothing. */
	ck_assert_int_eq(disk_overlay_prepare(&ov, 4096 + 512, 512), 0);
	ck_assert(!disk_overlay_present(&ov, 1));
	ck_assert_int_eq(pread(ov.fd, buf, 4096, 4096), 4096);
	for (int i = 0; i < 4096; i++)
		ck_assert_uint_eq(buf[i], base_byte(4096u + (unsigned)i));
	memset(buf, 0xee, 512);
	ck_assert_int_eq(pwrite(ov.fd, buf, 512, 4096 + 512), 512);
	disk_overlay_commit(&ov, 4096 + 512, 512);
	ck_assert(disk_overlay_present(&ov, 1));
	ck_assert(!disk_overlay_present(&ov, 0));
	ck_assert(!disk_overlay_present(&ov, 2));
	ck_assert_int_eq(disk_overlay_source(&ov, 4096, 4096), DISK_OVERLAY_ONLY);
	ck_assert_int_eq(disk_overlay_source(&ov, 0, 8192), DISK_OVERLAY_MIXED);
	ck_assert_int_eq(disk_overlay_source(&ov, 8192, 4096), DISK_OVERLAY_BASE);
	/* A read over both places. */
	ck_assert_int_eq(disk_overlay_read(&ov, &iov, 1, 0), 0);
	for (unsigned i = 0; i < sizeof(buf); i++)
		ck_assert_uint_eq(buf[i], i >= 4608 && i < 5120 ? 0xee : base_byte(i));
	/* Punch: edges copied up, hole in between, all marked. */
	ck_assert_int_eq(disk_overlay_punch(&ov, 3 * 4096 + 512, 2 * 4096), 0);
	for (int b = 3; b <= 5; b++)
		ck_assert(disk_overlay_present(&ov, (uint64_t)b));
	ck_assert_int_eq(disk_overlay_read(&ov, &iov, 1, 3 * 4096), 0);
	for (unsigned i = 0; i < sizeof(buf); i++)
		ck_assert_uint_eq(buf[i], i >= 512 && i < 512 + 8192 ? 0 : base_byte(3 * 4096 + i));
	disk_overlay_destroy(&ov);
	close(base);
}
END_TEST

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

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, iov_helpers);
	tcase_add_test(tc, io_full_and_part);
	tcase_add_test(tc, engine_aio);
	tcase_add_test(tc, engine_sync);
	tcase_add_test(tc, engine_manual_and_drain);
	tcase_add_test(tc, engine_drain_waits);
	tcase_add_test(tc, image_no_direct_on_tmpfs);
	tcase_add_test(tc, overlay_map);
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
