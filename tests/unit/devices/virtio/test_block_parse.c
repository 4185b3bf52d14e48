/* virtio-blk request parsing (block_parse.c) on hand-built chains:
 * every rule blk_parse enforces, where it finds the data buffers and
 * the status byte, and the discard / write-zeroes segments. */
#include <check.h>
#include <errno.h>
#include <linux/virtio_blk.h>
#include <string.h>

#include "kvmini/virtio_blk_parse.h"
#include "../../check_main.h"

#define CAPACITY 128

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

static struct blk_discard_seg segs_out[BLK_DISCARD_SEG_MAX];

static int parse(struct req_bufs *r, bool ro, struct blk_request *p)
{
	const char *why;

	return blk_parse(&r->c, CAPACITY, ro, true, p, segs_out, &why);
}

START_TEST(parse_good_read_write)
{
	struct req_bufs r;
	struct blk_request p;
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
	struct blk_request p;

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
	struct blk_request p;

	chain_begin(&r, VIRTIO_BLK_T_IN, 0);
	r.iov[0].iov_len = 8;
	chain_end(&r, true);
	ck_assert_int_eq(parse(&r, false, &p), VIRTIO_BLK_S_IOERR);
}
END_TEST

START_TEST(parse_header_split_over_buffers)
{
	struct req_bufs r;
	struct blk_request p;
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
	struct blk_request p;
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
	struct blk_request p;
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
	struct blk_request p;
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
	struct blk_request p;
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
	struct blk_request p;
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
	struct blk_request p;
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
	struct blk_request p;
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
	struct blk_request p;
	uint8_t id[40];
	struct blk_discard_seg seg[2];
	const char *why;

	chain_begin(&r, VIRTIO_BLK_T_GET_ID, 0);
	chain_in(&r, id, sizeof(id));
	chain_end(&r, true);
	ck_assert_int_eq(parse(&r, false, &p), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(p.data_len, 20);
	ck_assert_uint_eq(p.used_len, 21);

	memset(seg, 0, sizeof(seg));
	seg[0].sector = htole64(2);
	seg[0].num_sectors = htole32(8);
	seg[1].sector = htole64(CAPACITY - 1);
	seg[1].num_sectors = htole32(1);
	chain_begin(&r, VIRTIO_BLK_T_DISCARD, 0);
	chain_out(&r, seg, sizeof(seg));
	chain_end(&r, true);
	ck_assert_int_eq(parse(&r, false, &p), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(p.nr_segs, 2);
	ck_assert_uint_eq(segs_out[0].sector, 2);
	ck_assert_uint_eq(segs_out[1].num_sectors, 1);
	ck_assert_uint_eq(p.used_len, 1);
	/* Past the end, unmap on a discard, reserved flags, ragged length. */
	seg[1].num_sectors = htole32(2);
	ck_assert_int_eq(parse(&r, false, &p), VIRTIO_BLK_S_IOERR);
	seg[1].num_sectors = htole32(1);
	seg[0].flags = htole32(1);
	ck_assert_int_eq(parse(&r, false, &p), VIRTIO_BLK_S_UNSUPP);
	r.hdr.type = htole32(VIRTIO_BLK_T_WRITE_ZEROES);
	ck_assert_int_eq(parse(&r, false, &p), VIRTIO_BLK_S_OK);
	seg[0].flags = htole32(2);
	ck_assert_int_eq(parse(&r, false, &p), VIRTIO_BLK_S_UNSUPP);
	seg[0].flags = 0;
	seg[0].sector = htole64(UINT64_MAX);
	ck_assert_int_eq(parse(&r, false, &p), VIRTIO_BLK_S_IOERR);
	seg[0].sector = htole64(2);
	seg[0].num_sectors = htole32(BLK_DISCARD_SECTORS_MAX + 1);
	ck_assert_int_eq(parse(&r, false, &p), VIRTIO_BLK_S_IOERR);
	seg[0].num_sectors = htole32(8);
	r.c.out_len -= 1;
	ck_assert_int_eq(parse(&r, false, &p), VIRTIO_BLK_S_IOERR);
	r.c.out_len += 1;
	/* Not offered, or a read-only disk -> UNSUPP. */
	ck_assert_int_eq(blk_parse(&r.c, CAPACITY, false, false, &p, segs_out, &why),
			 VIRTIO_BLK_S_UNSUPP);
	ck_assert_int_eq(blk_parse(&r.c, CAPACITY, true, true, &p, segs_out, &why),
			 VIRTIO_BLK_S_UNSUPP);
}
END_TEST

START_TEST(parse_data_buffers)
{
	struct req_bufs r;
	struct blk_request p;
	uint8_t buf[2048];

	/* Header and data in one buffer: the data starts 16 bytes in. */
	chain_begin(&r, VIRTIO_BLK_T_OUT, 4);
	r.iov[0] = (struct iovec){ buf, 16 + 1024 };
	memcpy(buf, &r.hdr, 16);
	chain_out(&r, buf + 1040, 512);
	chain_end(&r, true);
	ck_assert_int_eq(parse(&r, false, &p), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(p.data_len, 1536);
	ck_assert_uint_eq(p.nr_data, 2);
	ck_assert_ptr_eq(p.data[0].iov_base, buf + 16);
	ck_assert_uint_eq(p.data[0].iov_len, 1024);
	ck_assert_ptr_eq(p.data[1].iov_base, buf + 1040);
	ck_assert_ptr_eq(p.status, &r.status);
	/* Data and status in one writable buffer: the status is its last byte. */
	chain_begin(&r, VIRTIO_BLK_T_IN, 4);
	chain_in(&r, buf, 1025);
	chain_end(&r, false);
	ck_assert_int_eq(parse(&r, false, &p), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(p.nr_data, 1);
	ck_assert_uint_eq(p.data[0].iov_len, 1024);
	ck_assert_ptr_eq(p.status, buf + 1024);
	ck_assert_uint_eq(p.used_len, 1025);
	/* A read of nothing: no data buffer at all. */
	chain_begin(&r, VIRTIO_BLK_T_IN, 4);
	chain_end(&r, true);
	ck_assert_int_eq(parse(&r, false, &p), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(p.nr_data, 0);
	ck_assert_uint_eq(p.data_len, 0);
}
END_TEST

static Suite *parse_suite(void)
{
	Suite *s = suite_create("virtio_block_parse");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, parse_good_read_write);
	tcase_add_test(tc, parse_bad_type);
	tcase_add_test(tc, parse_short_header);
	tcase_add_test(tc, parse_header_split_over_buffers);
	tcase_add_test(tc, parse_no_status_byte);
	tcase_add_test(tc, parse_status_too_short_for_read);
	tcase_add_test(tc, parse_sector_overflow);
	tcase_add_test(tc, parse_beyond_capacity);
	tcase_add_test(tc, parse_unaligned_length);
	tcase_add_test(tc, parse_data_in_wrong_part);
	tcase_add_test(tc, parse_write_on_ro);
	tcase_add_test(tc, parse_get_id_and_segments);
	tcase_add_test(tc, parse_data_buffers);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run_suite(parse_suite());
}
