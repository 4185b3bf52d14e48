/* virtio-blk: request parsing on hand-built chains, real I/O on temp
 * files (reaping by hand and through a real event loop), the snapshot
 * overlay, and the open-time checks. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kvmini/event_loop.h"
#include "kvmini/virtio_blk.h"
#include "../../check_main.h"
#include "../../../../devices/virtio/block_internal.h"

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

/* ---- chains ---- */

struct req_bufs {
	struct virtio_blk_outhdr hdr;
	struct iovec iov[8];
	unsigned nr_out, nr_in;
	uint8_t status;
	struct vq_chain c;
};

static void chain_begin(struct req_bufs *r, uint32_t type, uint64_t sector)
{
	memset(r, 0, sizeof(*r));
	r->hdr.type = htole32(type);
	r->hdr.sector = htole64(sector);
	r->iov[0] = (struct iovec){ &r->hdr, sizeof(r->hdr) };
	r->nr_out = 1;
	r->status = 0xee;
}

static void chain_out(struct req_bufs *r, void *buf, size_t len)
{
	ck_assert_uint_eq(r->nr_in, 0);
	r->iov[r->nr_out++] = (struct iovec){ buf, len };
}

static void chain_in(struct req_bufs *r, void *buf, size_t len)
{
	r->iov[r->nr_out + r->nr_in++] = (struct iovec){ buf, len };
}

static struct vq_chain *chain_end(struct req_bufs *r, bool with_status)
{
	if (with_status)
		chain_in(r, &r->status, 1);
	r->c.head = 3;
	r->c.iov = r->iov;
	r->c.nr_out = r->nr_out;
	r->c.nr_in = r->nr_in;
	r->c.out_len = r->c.in_len = 0;
	for (unsigned i = 0; i < r->nr_out; i++)
		r->c.out_len += r->iov[i].iov_len;
	for (unsigned i = r->nr_out; i < r->nr_out + r->nr_in; i++)
		r->c.in_len += r->iov[i].iov_len;
	return &r->c;
}

static int parse(struct req_bufs *r, bool ro, struct blk_parsed *p)
{
	const char *why;

	return blk_parse(&r->c, CAPACITY, ro, true, p, &why);
}

START_TEST(parse_good_read_write)
{
	struct req_bufs r;
	struct blk_parsed p;
	uint8_t buf[1024];

	chain_begin(&r, VIRTIO_BLK_T_IN, 5);
	chain_in(&r, buf, sizeof(buf));
	chain_end(&r, true);
	ck_assert_int_eq(parse(&r, false, &p), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(p.sector, 5);
	ck_assert_uint_eq(p.data_len, 1024);

	chain_begin(&r, VIRTIO_BLK_T_OUT, CAPACITY - 2);
	chain_out(&r, buf, sizeof(buf));
	chain_end(&r, true);
	ck_assert_int_eq(parse(&r, false, &p), VIRTIO_BLK_S_OK);
}
END_TEST

START_TEST(parse_bad_type)
{
	struct req_bufs r;
	struct blk_parsed p;

	chain_begin(&r, 0x1234, 0);
	chain_end(&r, true);
	ck_assert_int_eq(parse(&r, false, &p), VIRTIO_BLK_S_UNSUPP);
	chain_begin(&r, VIRTIO_BLK_T_SCSI_CMD, 0);
	chain_end(&r, true);
	ck_assert_int_eq(parse(&r, false, &p), VIRTIO_BLK_S_UNSUPP);
}
END_TEST

START_TEST(parse_short_header)
{
	struct req_bufs r;
	struct blk_parsed p;

	chain_begin(&r, VIRTIO_BLK_T_IN, 0);
	r.iov[0].iov_len = 8;
	chain_end(&r, true);
	ck_assert_int_eq(parse(&r, false, &p), VIRTIO_BLK_S_IOERR);
}
END_TEST

START_TEST(parse_header_split_over_buffers)
{
	struct req_bufs r;
	struct blk_parsed p;
	uint8_t buf[512];

	chain_begin(&r, VIRTIO_BLK_T_IN, 9);
	r.iov[0].iov_len = 4;
	chain_out(&r, (uint8_t *)&r.hdr + 4, 12);
	chain_in(&r, buf, sizeof(buf));
	chain_end(&r, true);
	ck_assert_int_eq(parse(&r, false, &p), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(p.sector, 9);
}
END_TEST

START_TEST(parse_no_status_byte)
{
	struct req_bufs r;
	struct blk_parsed p;
	uint8_t buf[512];

	chain_begin(&r, VIRTIO_BLK_T_OUT, 0);
	chain_out(&r, buf, sizeof(buf));
	chain_end(&r, false);
	ck_assert_int_eq(parse(&r, false, &p), -EINVAL);
}
END_TEST

START_TEST(parse_status_too_short_for_read)
{
	struct req_bufs r;
	struct blk_parsed p;
	uint8_t buf[512];

	/* The last writable byte is the status: 512 bytes leave 511 of data. */
	chain_begin(&r, VIRTIO_BLK_T_IN, 0);
	chain_in(&r, buf, sizeof(buf));
	chain_end(&r, false);
	ck_assert_int_eq(parse(&r, false, &p), VIRTIO_BLK_S_IOERR);
}
END_TEST

START_TEST(parse_sector_overflow)
{
	struct req_bufs r;
	struct blk_parsed p;
	uint8_t buf[1024];

	chain_begin(&r, VIRTIO_BLK_T_IN, UINT64_MAX - 1);
	chain_in(&r, buf, sizeof(buf));
	chain_end(&r, true);
	ck_assert_int_eq(parse(&r, false, &p), VIRTIO_BLK_S_IOERR);
	chain_begin(&r, VIRTIO_BLK_T_OUT, UINT64_MAX);
	chain_out(&r, buf, sizeof(buf));
	chain_end(&r, true);
	ck_assert_int_eq(parse(&r, false, &p), VIRTIO_BLK_S_IOERR);
}
END_TEST

START_TEST(parse_beyond_capacity)
{
	struct req_bufs r;
	struct blk_parsed p;
	uint8_t buf[1024];

	chain_begin(&r, VIRTIO_BLK_T_IN, CAPACITY - 1);
	chain_in(&r, buf, sizeof(buf));
	chain_end(&r, true);
	ck_assert_int_eq(parse(&r, false, &p), VIRTIO_BLK_S_IOERR);
	chain_begin(&r, VIRTIO_BLK_T_IN, CAPACITY);
	chain_end(&r, true);
	ck_assert_int_eq(parse(&r, false, &p), VIRTIO_BLK_S_OK); /* zero length at the end */
	chain_begin(&r, VIRTIO_BLK_T_IN, CAPACITY + 1);
	chain_end(&r, true);
	ck_assert_int_eq(parse(&r, false, &p), VIRTIO_BLK_S_IOERR);
}
END_TEST

START_TEST(parse_unaligned_length)
{
	struct req_bufs r;
	struct blk_parsed p;
	uint8_t buf[700];

	chain_begin(&r, VIRTIO_BLK_T_OUT, 0);
	chain_out(&r, buf, sizeof(buf));
	chain_end(&r, true);
	ck_assert_int_eq(parse(&r, false, &p), VIRTIO_BLK_S_IOERR);
}
END_TEST

START_TEST(parse_data_in_wrong_part)
{
	struct req_bufs r;
	struct blk_parsed p;
	uint8_t buf[512];

	/* A write whose data the driver put in the writable part. */
	chain_begin(&r, VIRTIO_BLK_T_OUT, 0);
	chain_in(&r, buf, sizeof(buf));
	chain_end(&r, true);
	ck_assert_int_eq(parse(&r, false, &p), VIRTIO_BLK_S_IOERR);
	/* A read with readable data after the header. */
	chain_begin(&r, VIRTIO_BLK_T_IN, 0);
	chain_out(&r, buf, sizeof(buf));
	chain_end(&r, true);
	ck_assert_int_eq(parse(&r, false, &p), VIRTIO_BLK_S_IOERR);
}
END_TEST

START_TEST(parse_write_on_ro)
{
	struct req_bufs r;
	struct blk_parsed p;
	uint8_t buf[512];

	chain_begin(&r, VIRTIO_BLK_T_OUT, 0);
	chain_out(&r, buf, sizeof(buf));
	chain_end(&r, true);
	ck_assert_int_eq(parse(&r, true, &p), VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(parse(&r, false, &p), VIRTIO_BLK_S_OK);
}
END_TEST

START_TEST(parse_get_id_and_segments)
{
	struct req_bufs r;
	struct blk_parsed p;
	uint8_t id[40];
	struct blk_discard_seg seg[2], out[BLK_DISCARD_SEG_MAX];
	const char *why;
	unsigned n;

	chain_begin(&r, VIRTIO_BLK_T_GET_ID, 0);
	chain_in(&r, id, sizeof(id));
	chain_end(&r, true);
	ck_assert_int_eq(parse(&r, false, &p), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(p.data_len, 20);

	memset(seg, 0, sizeof(seg));
	seg[0].sector = htole64(2);
	seg[0].num_sectors = htole32(8);
	seg[1].sector = htole64(CAPACITY - 1);
	seg[1].num_sectors = htole32(1);
	chain_begin(&r, VIRTIO_BLK_T_DISCARD, 0);
	chain_out(&r, seg, sizeof(seg));
	chain_end(&r, true);
	ck_assert_int_eq(parse(&r, false, &p), VIRTIO_BLK_S_OK);
	ck_assert_int_eq(blk_parse_segments(&r.c, CAPACITY, VIRTIO_BLK_T_DISCARD, out, &n, &why),
			 VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(out[0].sector, 2);
	ck_assert_uint_eq(out[1].num_sectors, 1);
	/* Past the end, unmap on a discard, reserved flags, ragged length. */
	seg[1].num_sectors = htole32(2);
	ck_assert_int_eq(blk_parse_segments(&r.c, CAPACITY, VIRTIO_BLK_T_DISCARD, out, &n, &why),
			 VIRTIO_BLK_S_IOERR);
	seg[1].num_sectors = htole32(1);
	seg[0].flags = htole32(1);
	ck_assert_int_eq(blk_parse_segments(&r.c, CAPACITY, VIRTIO_BLK_T_DISCARD, out, &n, &why),
			 VIRTIO_BLK_S_UNSUPP);
	ck_assert_int_eq(blk_parse_segments(&r.c, CAPACITY, VIRTIO_BLK_T_WRITE_ZEROES, out, &n,
					    &why), VIRTIO_BLK_S_OK);
	seg[0].flags = htole32(2);
	ck_assert_int_eq(blk_parse_segments(&r.c, CAPACITY, VIRTIO_BLK_T_WRITE_ZEROES, out, &n,
					    &why), VIRTIO_BLK_S_UNSUPP);
	seg[0].flags = 0;
	seg[0].sector = htole64(UINT64_MAX);
	ck_assert_int_eq(blk_parse_segments(&r.c, CAPACITY, VIRTIO_BLK_T_WRITE_ZEROES, out, &n,
					    &why), VIRTIO_BLK_S_IOERR);
	r.c.out_len -= 1;
	ck_assert_int_eq(blk_parse_segments(&r.c, CAPACITY, VIRTIO_BLK_T_WRITE_ZEROES, out, &n,
					    &why), VIRTIO_BLK_S_IOERR);
	/* Not offered -> UNSUPP. */
	ck_assert_int_eq(blk_parse(&r.c, CAPACITY, false, false, &p, &why), VIRTIO_BLK_S_UNSUPP);
}
END_TEST

START_TEST(status_mapping)
{
	ck_assert_uint_eq(blk_status_from_result(512, 512), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(blk_status_from_result(-EIO, 512), VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(blk_status_from_result(-ENOSPC, 512), VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(blk_status_from_result(100, 512), VIRTIO_BLK_S_IOERR);
}
END_TEST

START_TEST(iov_slice)
{
	uint8_t a[10], b[10];
	struct iovec src[2] = { { a, 10 }, { b, 10 } }, dst[2];

	ck_assert_int_eq(blk_iov_slice(src, 2, 5, 10, dst, 2), 2);
	ck_assert_ptr_eq(dst[0].iov_base, a + 5);
	ck_assert_uint_eq(dst[0].iov_len, 5);
	ck_assert_uint_eq(dst[1].iov_len, 5);
	ck_assert_int_eq(blk_iov_slice(src, 2, 5, 10, dst, 1), -1);
	ck_assert_int_eq(blk_iov_slice(src, 2, 15, 10, dst, 2), -1);
}
END_TEST

/* ---- the device on a real file ---- */

struct done {
	atomic_uint count;
	uint8_t status[64];
	uint32_t used[64];
};

static void on_done(void *opaque, uint16_t head, uint32_t used, uint8_t status)
{
	struct done *d = opaque;
	unsigned i = atomic_load(&d->count);

	if (i < 64) {
		d->status[i] = status;
		d->used[i] = used;
	}
	atomic_store(&d->count, i + 1);
}

static struct virtio_dev dev;
static struct done done;

static int open_dev(bool ro, bool snapshot, struct kv_err *e)
{
	struct virtio_blk_cfg cfg = { .path = disk, .readonly = ro, .snapshot = snapshot };
	int r = virtio_blk_create(&cfg, NULL, NULL, &dev, e);

	if (r == 0) {
		memset(&done, 0, sizeof(done));
		blk_set_done_hook(&dev, on_done, &done);
	}
	return r;
}

static void reap_all(void)
{
	for (int i = 0; i < 5000 && blk_in_flight(&dev); i++) {
		blk_reap(&dev);
		if (blk_in_flight(&dev))
			usleep(1000);
	}
	ck_assert_uint_eq(blk_in_flight(&dev), 0);
}

/* One request, run to completion; returns its status. */
static uint8_t do_rw(uint32_t type, uint64_t sector, void *buf, size_t len)
{
	struct req_bufs r;
	unsigned before = atomic_load(&done.count);

	chain_begin(&r, type, sector);
	if (type == VIRTIO_BLK_T_OUT)
		chain_out(&r, buf, len);
	else if (len)
		chain_in(&r, buf, len);
	blk_handle_chain(&dev, chain_end(&r, true));
	reap_all();
	ck_assert_uint_eq(atomic_load(&done.count), before + 1);
	ck_assert_uint_eq(r.status, done.status[before]);
	return r.status;
}

static void *aligned(size_t len)
{
	void *p = NULL;

	ck_assert_int_eq(posix_memalign(&p, 4096, len), 0);
	return p;
}

static void file_read(const char *path, uint64_t off, void *buf, size_t len)
{
	int fd = open(path, O_RDONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

START_TEST(config_and_features)
{
	struct kv_err e = { 0 };
	struct virtio_blk_config c;

	ck_assert_int_eq(open_dev(false, false, &e), 0);
	ck_assert_uint_eq(dev.device_id, VIRTIO_ID_BLOCK);
	ck_assert_uint_eq(dev.nr_queues, 1);
	ck_assert_uint_eq(dev.vqs[0].max_size, VIRTQ_MAX_SIZE);
	ck_assert(dev.features & (1ull << VIRTIO_BLK_F_FLUSH));
	ck_assert(dev.features & (1ull << VIRTIO_BLK_F_SEG_MAX));
	ck_assert(dev.features & (1ull << VIRTIO_BLK_F_BLK_SIZE));
	ck_assert(!(dev.features & (1ull << VIRTIO_BLK_F_RO)));
	ck_assert_uint_le(dev.config_len, sizeof(c));
	dev.ops->config_read(&dev, 0, &c, dev.config_len);
	ck_assert_uint_eq(le64toh(c.capacity), CAPACITY);
	ck_assert_uint_le(le32toh(c.seg_max), VIRTQ_MAX_SIZE - 2);
	ck_assert_uint_eq(le32toh(c.blk_size), 512);
	if (dev.features & (1ull << VIRTIO_BLK_F_DISCARD))
		ck_assert_uint_gt(le32toh(c.max_discard_seg), 0);
	/* Writes are ignored. */
	uint64_t junk = 0;

	dev.ops->config_write(&dev, 0, &junk, 8);
	dev.ops->config_read(&dev, 0, &c, 8);
	ck_assert_uint_eq(le64toh(c.capacity), CAPACITY);
	virtio_dev_fini(&dev);
}
END_TEST

START_TEST(write_read_back)
{
	struct kv_err e = { 0 };
	uint8_t *w = aligned(8192), *rd = aligned(8192), file[8192];

	ck_assert_int_eq(open_dev(false, false, &e), 0);
	for (int i = 0; i < 8192; i++)
		w[i] = (uint8_t)(i * 31 + 1);
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_OUT, 8, w, 8192), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(done.used[0], 1);
	memset(rd, 0, 8192);
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_IN, 8, rd, 8192), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(done.used[1], 8193);
	ck_assert_mem_eq(rd, w, 8192);
	/* Unaligned buffers take the buffered fd. */
	memset(rd, 0, 8192);
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_IN, 9, rd + 1, 512), VIRTIO_BLK_S_OK);
	ck_assert_mem_eq(rd + 1, w + 512, 512);
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_OUT, 0, w + 3, 1024), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_OK);
	virtio_dev_fini(&dev);
	file_read(disk, 0, file, 1024);
	ck_assert_mem_eq(file, w + 3, 1024);
	file_read(disk, 4096, file, 8192);
	ck_assert_mem_eq(file, w, 8192);
	free(w);
	free(rd);
}
END_TEST

START_TEST(many_in_flight)
{
	struct kv_err e = { 0 };
	struct req_bufs r[16];
	uint8_t *buf = aligned(16 * 4096);

	ck_assert_int_eq(open_dev(false, false, &e), 0);
	for (int i = 0; i < 16; i++) {
		memset(buf + i * 4096, i + 1, 4096);
		chain_begin(&r[i], VIRTIO_BLK_T_OUT, (uint64_t)i * 8);
		chain_out(&r[i], buf + i * 4096, 4096);
		blk_handle_chain(&dev, chain_end(&r[i], true));
	}
	/* Nothing reaped yet: all sixteen are in flight at once. */
	ck_assert_uint_eq(blk_in_flight(&dev), 16);
	reap_all();
	ck_assert_uint_eq(atomic_load(&done.count), 16);
	for (int i = 0; i < 16; i++)
		ck_assert_uint_eq(r[i].status, VIRTIO_BLK_S_OK);
	memset(buf, 0, 16 * 4096);
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_IN, 0, buf, 16 * 4096), VIRTIO_BLK_S_OK);
	for (int i = 0; i < 16; i++)
		ck_assert_uint_eq(buf[i * 4096 + 100], i + 1);
	virtio_dev_fini(&dev);
	free(buf);
}
END_TEST

START_TEST(reset_drains_in_flight)
{
	struct kv_err e = { 0 };
	struct req_bufs r[8];
	uint8_t *buf = aligned(8 * 4096);

	ck_assert_int_eq(open_dev(false, false, &e), 0);
	for (int i = 0; i < 8; i++) {
		chain_begin(&r[i], VIRTIO_BLK_T_IN, (uint64_t)i * 8);
		chain_in(&r[i], buf + i * 4096, 4096);
		blk_handle_chain(&dev, chain_end(&r[i], true));
	}
	dev.ops->reset(&dev);
	ck_assert_uint_eq(blk_in_flight(&dev), 0);
	ck_assert_uint_eq(atomic_load(&done.count), 0);
	/* Still works after the reset. */
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_IN, 0, buf, 4096), VIRTIO_BLK_S_OK);
	virtio_dev_fini(&dev);
	free(buf);
}
END_TEST

START_TEST(errors_keep_device_up)
{
	struct kv_err e = { 0 };
	uint8_t buf[1024], id[32];
	struct req_bufs r;

	ck_assert_int_eq(open_dev(false, false, &e), 0);
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_IN, CAPACITY - 1, buf, 1024), VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(done.used[0], 1);
	ck_assert_uint_eq(do_rw(0x99, 0, NULL, 0), VIRTIO_BLK_S_UNSUPP);
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_IN, CAPACITY - 2, buf, 1024), VIRTIO_BLK_S_OK);

	memset(id, 0xaa, sizeof(id));
	chain_begin(&r, VIRTIO_BLK_T_GET_ID, 0);
	chain_in(&r, id, sizeof(id));
	blk_handle_chain(&dev, chain_end(&r, true));
	ck_assert_uint_eq(r.status, VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(done.used[3], 21);
	ck_assert(memcmp(id, "kvmini-", 7) == 0);
	ck_assert_uint_eq(id[20], 0xaa); /* nothing past 20 bytes */
	virtio_dev_fini(&dev);
}
END_TEST

START_TEST(readonly_disk)
{
	struct kv_err e = { 0 };
	uint8_t *buf = aligned(4096);
	struct stat before, after;

	ck_assert_int_eq(stat(disk, &before), 0);
	ck_assert_int_eq(open_dev(true, false, &e), 0);
	ck_assert(dev.features & (1ull << VIRTIO_BLK_F_RO));
	ck_assert(!(dev.features & (1ull << VIRTIO_BLK_F_DISCARD)));
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_OUT, 0, buf, 4096), VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_IN, 0, buf, 4096), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(buf[0], 7);
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_OK);
	virtio_dev_fini(&dev);
	ck_assert_int_eq(stat(disk, &after), 0);
	ck_assert_int_eq(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
	free(buf);
}
END_TEST

static uint8_t do_segs(uint32_t type, uint64_t sector, uint32_t n, uint32_t flags)
{
	struct blk_discard_seg seg = { htole64(sector), htole32(n), htole32(flags) };
	struct req_bufs r;

	chain_begin(&r, type, 0);
	chain_out(&r, &seg, sizeof(seg));
	blk_handle_chain(&dev, chain_end(&r, true));
	reap_all();
	return r.status;
}

START_TEST(discard_and_write_zeroes)
{
	struct kv_err e = { 0 };
	uint8_t *buf = aligned(16384), zero[8192] = { 0 };

	ck_assert_int_eq(open_dev(false, false, &e), 0);
	if (!(dev.features & (1ull << VIRTIO_BLK_F_DISCARD))) {
		virtio_dev_fini(&dev);
		return; /* this filesystem cannot punch holes */
	}
	ck_assert(dev.features & (1ull << VIRTIO_BLK_F_WRITE_ZEROES));
	ck_assert_uint_eq(do_segs(VIRTIO_BLK_T_DISCARD, 8, 8, 0), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(do_segs(VIRTIO_BLK_T_WRITE_ZEROES, 17, 3, 1), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(do_segs(VIRTIO_BLK_T_DISCARD, 8, 8, 1), VIRTIO_BLK_S_UNSUPP);
	ck_assert_uint_eq(do_segs(VIRTIO_BLK_T_DISCARD, CAPACITY - 1, 2, 0), VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_IN, 0, buf, 16384), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(buf[4095], (uint8_t)(7 + 7 + 4095));
	ck_assert_mem_eq(buf + 4096, zero, 4096);
	ck_assert_uint_eq(buf[8192], (uint8_t)(7 + 16 + 8192));
	ck_assert_mem_eq(buf + 17 * 512, zero, 3 * 512);
	ck_assert_uint_eq(buf[20 * 512], (uint8_t)(7 + 20 + 20 * 512));
	virtio_dev_fini(&dev);
	free(buf);
}
END_TEST

/* ---- through a real event loop ---- */

START_TEST(event_loop_completions)
{
	struct kv_err e = { 0 };
	struct evloop *loop;
	struct virtio_blk_cfg cfg = { .path = disk };
	uint8_t *buf = aligned(8 * 4096);
	struct req_bufs r[8];

	ck_assert_int_eq(evloop_create(&loop, &e), 0);
	ck_assert_int_eq(virtio_blk_create(&cfg, NULL, loop, &dev, &e), 0);
	memset(&done, 0, sizeof(done));
	blk_set_done_hook(&dev, on_done, &done);
	ck_assert_int_eq(evloop_start(loop, NULL, &e), 0);
	pthread_mutex_lock(&dev.lock);
	for (int i = 0; i < 8; i++) {
		chain_begin(&r[i], VIRTIO_BLK_T_IN, (uint64_t)i * 8);
		chain_in(&r[i], buf + i * 4096, 4096);
		blk_handle_chain(&dev, chain_end(&r[i], true));
	}
	pthread_mutex_unlock(&dev.lock);
	for (int i = 0; i < 5000 && atomic_load(&done.count) < 8; i++)
		usleep(1000);
	ck_assert_uint_eq(atomic_load(&done.count), 8);
	for (int i = 0; i < 8; i++) {
		ck_assert_uint_eq(r[i].status, VIRTIO_BLK_S_OK);
		ck_assert_uint_eq(buf[i * 4096], (uint8_t)(7 + i * 8 + i * 4096));
	}
	evloop_stop(loop);
	virtio_dev_fini(&dev);
	evloop_destroy(loop);
	free(buf);
}
END_TEST

/* ---- snapshot ---- */

START_TEST(snapshot_leaves_base_alone)
{
	struct kv_err e = { 0 };
	uint8_t *w = aligned(4096), *rd = aligned(16384), base[16384], orig[DISK_SIZE];
	struct stat before, after;

	file_read(disk, 0, orig, DISK_SIZE);
	ck_assert_int_eq(stat(disk, &before), 0);
	ck_assert_int_eq(open_dev(false, true, &e), 0);
	ck_assert(!(dev.features & (1ull << VIRTIO_BLK_F_RO)));
	memset(w, 0x5a, 4096);
	/* Partial block: sectors 2..3 of block 0. */
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_OUT, 2, w, 1024), VIRTIO_BLK_S_OK);
	/* A whole block: block 2. */
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_OUT, 16, w, 4096), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_OK);
	/* Reads see the writes, across base and overlay blocks. */
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_IN, 0, rd, 16384), VIRTIO_BLK_S_OK);
	memcpy(base, orig, sizeof(base));
	memset(base + 1024, 0x5a, 1024);
	memset(base + 8192, 0x5a, 4096);
	ck_assert_mem_eq(rd, base, sizeof(base));
	/* Only-overlay and only-base reads. */
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_IN, 0, rd, 4096), VIRTIO_BLK_S_OK);
	ck_assert_mem_eq(rd, base, 4096);
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_IN, 8, rd, 4096), VIRTIO_BLK_S_OK);
	ck_assert_mem_eq(rd, orig + 4096, 4096);
	if (dev.features & (1ull << VIRTIO_BLK_F_WRITE_ZEROES)) {
		ck_assert_uint_eq(do_segs(VIRTIO_BLK_T_WRITE_ZEROES, 25, 2, 0), VIRTIO_BLK_S_OK);
		ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_IN, 24, rd, 4096), VIRTIO_BLK_S_OK);
		ck_assert_mem_eq(rd, orig + 24 * 512, 512);
		for (int i = 512; i < 1536; i++)
			ck_assert_uint_eq(rd[i], 0);
		ck_assert_mem_eq(rd + 1536, orig + 27 * 512, 4096 - 1536);
	}
	/* A second snapshot of the same image may run alongside. */
	struct virtio_dev dev2;
	struct virtio_blk_cfg cfg = { .path = disk, .snapshot = true };

	ck_assert_int_eq(virtio_blk_create(&cfg, NULL, NULL, &dev2, &e), 0);
	/* Even while open, the overlays have no name (gone on kill -9). */
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "test $(ls -A %s | wc -l) -eq 1", dir);
	ck_assert_int_eq(system(cmd), 0);
	virtio_dev_fini(&dev2);
	virtio_dev_fini(&dev);

	file_read(disk, 0, rd, 16384);
	ck_assert_mem_eq(rd, orig, 16384);
	ck_assert_int_eq(stat(disk, &after), 0);
	ck_assert_int_eq(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
	ck_assert_int_eq(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
	ck_assert_int_eq(system(cmd), 0); /* nothing left behind either */
	free(w);
	free(rd);
}
END_TEST

START_TEST(overlay_functions)
{
	struct blk_overlay ov;
	struct kv_err e = { 0 };
	int base = open(disk, O_RDONLY);
	uint8_t buf[3 * 4096], orig[DISK_SIZE];
	struct iovec iov = { buf, sizeof(buf) };

	file_read(disk, 0, orig, DISK_SIZE);
	ck_assert_int_ge(base, 0);
	ck_assert_int_eq(blk_overlay_create(&ov, base, DISK_SIZE, dir, &e), 0);
	if (!ov.bitmap) { /* reflinked: nothing block-wise to test */
		blk_overlay_destroy(&ov);
		close(base);
		return;
	}
	ck_assert_int_eq(blk_overlay_read_source(&ov, 0, DISK_SIZE), 0);
	ck_assert_int_eq(blk_overlay_prepare_write(&ov, 4096 + 512, 512), 0);
	ck_assert(blk_overlay_block_present(&ov, 1));
	ck_assert(!blk_overlay_block_present(&ov, 0));
	ck_assert(!blk_overlay_block_present(&ov, 2));
	ck_assert_int_eq(blk_overlay_read_source(&ov, 4096, 4096), 1);
	ck_assert_int_eq(blk_overlay_read_source(&ov, 4096 + 1024, 512), 1);
	ck_assert_int_eq(blk_overlay_read_source(&ov, 0, 8192), -1);
	ck_assert_int_eq(blk_overlay_read_source(&ov, 8192, 4096), 0);
	/* The copied-up block reads as the base did. */
	ck_assert_int_eq(blk_overlay_preadv(&ov, &iov, 1, 0), 0);
	ck_assert_mem_eq(buf, orig, sizeof(buf));
	/* A write spanning blocks 3..5 partially at both ends. */
	ck_assert_int_eq(blk_overlay_prepare_write(&ov, 3 * 4096 + 512, 2 * 4096), 0);
	for (int b = 3; b <= 5; b++)
		ck_assert(blk_overlay_block_present(&ov, (uint64_t)b));
	ck_assert_int_eq(pread(ov.fd, buf, 4096, 5 * 4096), 4096);
	ck_assert_mem_eq(buf, orig + 5 * 4096, 4096);
	blk_overlay_destroy(&ov);
	close(base);
}
END_TEST


/* ---- through a real virtqueue in fake guest memory ---- */

#define RAM_SIZE (1u << 20)
#define DESC_GPA 0x0
#define AVAIL_GPA 0x1000
#define USED_GPA 0x2000
#define QSIZE 16

static uint8_t *ram;
static struct guest_mem gm;
static unsigned interrupts;
static uint16_t next_desc, avail_idx;

static void count_irq(void *t, unsigned q)
{
	interrupts++;
}

static const struct virtio_transport_ops fake_tops = { .notify_queue = count_irq };

static int ring_dev(bool ro)
{
	struct kv_err e = { 0 };
	struct virtio_blk_cfg cfg = { .path = disk, .readonly = ro };

	ram = aligned(RAM_SIZE);
	memset(ram, 0, RAM_SIZE);
	memset(&gm, 0, sizeof(gm));
	ck_assert_int_eq(gm_add_region(&gm, 0, RAM_SIZE, ram), 0);
	ck_assert_int_eq(virtio_blk_create(&cfg, &gm, NULL, &dev, &e), 0);
	dev.tops = &fake_tops;
	dev.driver_features = dev.features & ~(1ull << VIRTIO_RING_F_EVENT_IDX);
	dev.status = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK |
		     VIRTIO_CONFIG_S_DRIVER_OK;
	dev.vqs[0].size = QSIZE;
	dev.vqs[0].desc_gpa = DESC_GPA;
	dev.vqs[0].avail_gpa = AVAIL_GPA;
	dev.vqs[0].used_gpa = USED_GPA;
	ck_assert_int_eq(vq_enable(&dev.vqs[0], false, true), 0);
	interrupts = 0;
	next_desc = avail_idx = 0;
	return 0;
}

static uint16_t add_desc(uint64_t gpa, uint32_t len, uint16_t flags, bool more)
{
	struct vring_desc *d = (struct vring_desc *)(ram + DESC_GPA) + next_desc;
	uint16_t i = next_desc++;

	d->addr = gpa;
	d->len = len;
	d->flags = flags | (more ? VRING_DESC_F_NEXT : 0);
	d->next = next_desc;
	return i;
}

static void publish(uint16_t head)
{
	uint16_t *avail = (uint16_t *)(ram + AVAIL_GPA);

	avail[2 + avail_idx % QSIZE] = head;
	__atomic_store_n(&avail[1], ++avail_idx, __ATOMIC_RELEASE);
}

static uint16_t used_idx(void)
{
	return __atomic_load_n((uint16_t *)(ram + USED_GPA + 2), __ATOMIC_ACQUIRE);
}

static void notify_and_wait(uint16_t want)
{
	pthread_mutex_lock(&dev.lock);
	dev.ops->queue_notify(&dev, 0);
	pthread_mutex_unlock(&dev.lock);
	for (int i = 0; i < 5000 && used_idx() < want; i++) {
		pthread_mutex_lock(&dev.lock);
		blk_reap(&dev);
		pthread_mutex_unlock(&dev.lock);
		if (used_idx() < want)
			usleep(1000);
	}
	ck_assert_uint_eq(used_idx(), want);
}

static uint16_t rw_chain(uint32_t type, uint64_t sector, uint64_t hdr_gpa, uint64_t data_gpa,
			 uint32_t len, uint64_t status_gpa)
{
	struct virtio_blk_outhdr *h = (void *)(ram + hdr_gpa);

	h->type = htole32(type);
	h->sector = htole64(sector);
	ram[status_gpa] = 0xee;
	uint16_t head = add_desc(hdr_gpa, 16, 0, true);

	add_desc(data_gpa, len, type == VIRTIO_BLK_T_IN ? VRING_DESC_F_WRITE : 0, true);
	add_desc(status_gpa, 1, VRING_DESC_F_WRITE, false);
	return head;
}

START_TEST(ring_write_read)
{
	ring_dev(false);
	uint32_t *used = (uint32_t *)(ram + USED_GPA + 4);

	memset(ram + 0x10000, 0x3c, 4096);
	publish(rw_chain(VIRTIO_BLK_T_OUT, 8, 0x8000, 0x10000, 4096, 0x9000));
	publish(rw_chain(VIRTIO_BLK_T_IN, 8, 0x8100, 0x20000, 4096, 0x9001));
	notify_and_wait(2);
	ck_assert_uint_eq(ram[0x9000], VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(ram[0x9001], VIRTIO_BLK_S_OK);
	/* used elements: (id, len) pairs; the read may have finished first. */
	for (int i = 0; i < 2; i++) {
		if (used[2 * i] == 0)
			ck_assert_uint_eq(used[2 * i + 1], 1);
		else
			ck_assert_uint_eq(used[2 * i + 1], 4097);
	}
	ck_assert_uint_ge(interrupts, 1);
	/* A read and a write at once on the same sectors are unordered, so
	 * read again now the write is done. */
	publish(rw_chain(VIRTIO_BLK_T_IN, 8, 0x8200, 0x30000, 4096, 0x9002));
	notify_and_wait(3);
	ck_assert_mem_eq(ram + 0x30000, ram + 0x10000, 4096);
	ck_assert(!dev.broken);
	virtio_dev_fini(&dev);
	free(ram);
}
END_TEST

START_TEST(ring_no_status_fails_device)
{
	ring_dev(false);
	struct virtio_blk_outhdr *h = (void *)(ram + 0x8000);

	h->type = htole32(VIRTIO_BLK_T_OUT);
	publish(add_desc(0x8000, 16, 0, true));
	add_desc(0x10000, 512, 0, false);
	pthread_mutex_lock(&dev.lock);
	dev.ops->queue_notify(&dev, 0);
	pthread_mutex_unlock(&dev.lock);
	ck_assert(dev.broken);
	ck_assert(dev.status & VIRTIO_CONFIG_S_NEEDS_RESET);
	ck_assert_uint_eq(used_idx(), 0);
	virtio_dev_fini(&dev);
	free(ram);
}
END_TEST

START_TEST(ring_bad_chain_fails_device)
{
	ring_dev(false);
	/* A descriptor outside guest RAM. */
	publish(add_desc(RAM_SIZE - 8, 16, 0, false));
	pthread_mutex_lock(&dev.lock);
	dev.ops->queue_notify(&dev, 0);
	pthread_mutex_unlock(&dev.lock);
	ck_assert(dev.broken);
	virtio_dev_fini(&dev);
	free(ram);
}
END_TEST

START_TEST(sync_fallback)
{
	struct kv_err e = { 0 };
	uint8_t *w = aligned(4096), *rd = aligned(4096);

	ck_assert_int_eq(open_dev(false, false, &e), 0);
	blk_use_sync_io(&dev);
	memset(w, 0x77, 4096);
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_OUT, 4, w, 4096), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(do_rw(VIRTIO_BLK_T_IN, 4, rd, 4096), VIRTIO_BLK_S_OK);
	ck_assert_mem_eq(rd, w, 4096);
	virtio_dev_fini(&dev);
	free(w);
	free(rd);
}
END_TEST

START_TEST(ring_too_many_in_flight)
{
	ring_dev(false);
	uint16_t head = rw_chain(VIRTIO_BLK_T_IN, 0, 0x8000, 0x10000, 512, 0x9000);

	/* The same chain sixteen times: the ring cannot tell, a full ring. */
	for (int i = 0; i < QSIZE; i++)
		publish(head);
	pthread_mutex_lock(&dev.lock);
	dev.ops->queue_notify(&dev, 0);
	ck_assert(!dev.broken);
	/* Republish a head still in flight: one chain more than the ring. */
	publish(head);
	dev.ops->queue_notify(&dev, 0);
	ck_assert(dev.broken);
	pthread_mutex_unlock(&dev.lock);
	virtio_dev_fini(&dev);
	free(ram);
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
	struct virtio_dev first;
	struct virtio_blk_cfg cfg = { .path = disk };

	ck_assert_int_eq(virtio_blk_create(&cfg, NULL, NULL, &first, &e), 0);
	expect_open_error(false, false, "in use by another process");
	expect_open_error(true, false, "in use by another process");
	expect_open_error(false, true, "in use by another process");
	virtio_dev_fini(&first);
	/* Readers share. */
	cfg.readonly = true;
	ck_assert_int_eq(virtio_blk_create(&cfg, NULL, NULL, &first, &e), 0);
	ck_assert_int_eq(open_dev(true, false, &e), 0);
	virtio_dev_fini(&dev);
	expect_open_error(false, false, "in use by another process");
	virtio_dev_fini(&first);
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
	ck_assert_int_eq(open_dev(false, false, &e), 0);
	virtio_dev_fini(&dev);
}
END_TEST

static Suite *block_suite(void)
{
	Suite *s = suite_create("virtio_block");
	TCase *parse_tc = tcase_create("parse");
	TCase *io = tcase_create("io");
	TCase *open_tc = tcase_create("open");

	tcase_add_test(parse_tc, parse_good_read_write);
	tcase_add_test(parse_tc, parse_bad_type);
	tcase_add_test(parse_tc, parse_short_header);
	tcase_add_test(parse_tc, parse_header_split_over_buffers);
	tcase_add_test(parse_tc, parse_no_status_byte);
	tcase_add_test(parse_tc, parse_status_too_short_for_read);
	tcase_add_test(parse_tc, parse_sector_overflow);
	tcase_add_test(parse_tc, parse_beyond_capacity);
	tcase_add_test(parse_tc, parse_unaligned_length);
	tcase_add_test(parse_tc, parse_data_in_wrong_part);
	tcase_add_test(parse_tc, parse_write_on_ro);
	tcase_add_test(parse_tc, parse_get_id_and_segments);
	tcase_add_test(parse_tc, status_mapping);
	tcase_add_test(parse_tc, iov_slice);
	suite_add_tcase(s, parse_tc);

	tcase_add_checked_fixture(io, setup, teardown);
	tcase_add_test(io, config_and_features);
	tcase_add_test(io, write_read_back);
	tcase_add_test(io, many_in_flight);
	tcase_add_test(io, reset_drains_in_flight);
	tcase_add_test(io, errors_keep_device_up);
	tcase_add_test(io, readonly_disk);
	tcase_add_test(io, discard_and_write_zeroes);
	tcase_add_test(io, event_loop_completions);
	tcase_add_test(io, snapshot_leaves_base_alone);
	tcase_add_test(io, overlay_functions);
	tcase_add_test(io, ring_write_read);
	tcase_add_test(io, ring_too_many_in_flight);
	tcase_add_test(io, sync_fallback);
	tcase_add_test(io, ring_no_status_fails_device);
	tcase_add_test(io, ring_bad_chain_fails_device);
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
