/* The disk layer's parts (devices/disk/): iovec helpers and whole
 * transfers, the engine (Linux AIO, synchronous, manual; the O_DIRECT
 * fallback; drain), the image's direct I/O choice, the overlay's map. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvmini/disk_engine.h"
#include "kvmini/disk_image.h"
#include "kvmini/disk_io.h"
#include "kvmini/disk_overlay.h"
#include "disk_fixture.h"
#include "../../check_main.h"

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

static Suite *parts_suite(void)
{
	Suite *s = suite_create("disk_parts");
	TCase *tc = tcase_create("parts");

	tcase_add_checked_fixture(tc, disk_setup, disk_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, iov_helpers);
	tcase_add_test(tc, io_full_and_part);
	tcase_add_test(tc, engine_aio);
	tcase_add_test(tc, engine_sync);
	tcase_add_test(tc, engine_manual_and_drain);
	tcase_add_test(tc, engine_drain_waits);
	tcase_add_test(tc, image_no_direct_on_tmpfs);
	tcase_add_test(tc, overlay_map);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run_suite(parts_suite());
}
