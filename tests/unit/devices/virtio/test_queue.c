/* Split virtqueue: valid chains round trip, notification decisions,
 * enabling rules (hostile rings: test_queue_hostile.c). */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "queue_fixture.h"
#include "../../check_main.h"

START_TEST(round_trip)
{
	uint64_t req = fr_alloc(&f, 6), hdr = fr_alloc(&f, 10), resp = fr_alloc(&f, 8);
	uint32_t id, len;
	char buf[16] = { 0 };

	fr_enable(&f, false, false);
	ck_assert_int_eq(vq_pop(&f.vq, &c, iov, 16), 0); /* empty */
	ck_assert(!vq_has_avail(&f.vq));
	memcpy(fr_host(&f, req), "hello ", 6);
	memcpy(fr_host(&f, hdr), "world, hi!", 10);
	fr_desc(&f, desc_table(), 3, req, 6, N, 5);
	fr_desc(&f, desc_table(), 5, hdr, 10, N, 1);
	fr_desc(&f, desc_table(), 1, resp, 8, W, 0);
	fr_publish(&f, 3);
	ck_assert(vq_has_avail(&f.vq));

	ck_assert_int_eq(vq_pop(&f.vq, &c, iov, 16), 1);
	ck_assert_uint_eq(c.head, 3);
	ck_assert_uint_eq(c.nr_out, 2);
	ck_assert_uint_eq(c.nr_in, 1);
	ck_assert_uint_eq(c.out_len, 16);
	ck_assert_uint_eq(c.in_len, 8);
	ck_assert_ptr_eq(iov[0].iov_base, fr_host(&f, req));
	ck_assert_ptr_eq(iov[2].iov_base, fr_host(&f, resp));
	/* Reads across the iovec boundary at any offset. */
	ck_assert_uint_eq(vq_chain_read(&c, 0, buf, 16), 16);
	ck_assert_mem_eq(buf, "hello world, hi!", 16);
	ck_assert_uint_eq(vq_chain_read(&c, 4, buf, 5), 5);
	ck_assert_mem_eq(buf, "o wor", 5);
	ck_assert_uint_eq(vq_chain_read(&c, 14, buf, 10), 2);
	ck_assert_uint_eq(vq_chain_write(&c, 0, "12345678", 8), 8);
	ck_assert_uint_eq(vq_chain_write(&c, 6, "abcd", 4), 2);
	ck_assert_mem_eq(fr_host(&f, resp), "123456ab", 8);
	ck_assert(!vq_has_avail(&f.vq));
	ck_assert_int_eq(vq_pop(&f.vq, &c, iov, 16), 0);

	ck_assert_int_eq(vq_push(&f.vq, 3, 8), 0);
	ck_assert_uint_eq(fr_used_idx(&f), 1);
	fr_used_elem(&f, 0, &id, &len);
	ck_assert_uint_eq(id, 3);
	ck_assert_uint_eq(len, 8);
	ck_assert_int_eq(vq_push(&f.vq, 8, 0), -EINVAL); /* head >= size */
}
END_TEST

/* vq_fill writes used elements without publishing them; vq_flush makes
 * them visible together (a mergeable-buffer packet must appear whole),
 * also across the index wrap. */
START_TEST(fill_then_flush)
{
	uint32_t id, len;

	fr_enable(&f, false, false);
	f.vq.used_idx = 65534;
	ck_assert_int_eq(vq_fill(&f.vq, 0, 5, 100), 0);
	ck_assert_int_eq(vq_fill(&f.vq, 1, 2, 200), 0);
	ck_assert_int_eq(vq_fill(&f.vq, 2, 7, 300), 0);
	ck_assert_uint_eq(fr_used_idx(&f), 0); /* nothing published yet */
	ck_assert_int_eq(vq_flush(&f.vq, 3), 0);
	ck_assert_uint_eq(fr_used_idx(&f), 1);
	ck_assert_uint_eq(f.vq.used_idx, 1);
	fr_used_elem(&f, 65534, &id, &len);
	ck_assert_uint_eq(id, 5);
	ck_assert_uint_eq(len, 100);
	fr_used_elem(&f, 65535, &id, &len);
	ck_assert_uint_eq(id, 2);
	fr_used_elem(&f, 0, &id, &len);
	ck_assert_uint_eq(id, 7);
	ck_assert_uint_eq(len, 300);
	ck_assert_int_eq(vq_fill(&f.vq, 8, 0, 0), -EINVAL); /* beyond the ring */
	ck_assert_int_eq(vq_fill(&f.vq, 0, 8, 0), -EINVAL); /* head >= size */
	ck_assert_int_eq(vq_flush(&f.vq, 9), -EINVAL);
	ck_assert_uint_eq(fr_used_idx(&f), 1);
}
END_TEST

/* Indices wrap at 2^16 on both rings: start both just below the wrap. */
START_TEST(index_wrap)
{
	const uint16_t start = 65530;
	uint64_t buf;
	uint32_t id, len;

	fr_fini(&f);
	fr_init(&f, 4);
	buf = fr_alloc(&f, 4);
	fr_enable(&f, true, false);
	f.vq.last_avail = f.vq.used_idx = start;
	fr_set_avail_idx(&f, start);
	for (unsigned i = 0; i < 20; i++) {
		uint16_t head = (uint16_t)(i % 4);

		fr_desc(&f, desc_table(), head, buf, 4, W, 0);
		fr_publish(&f, head);
		ck_assert_int_eq(vq_pop(&f.vq, &c, iov, 16), 1);
		ck_assert_uint_eq(c.head, head);
		ck_assert_int_eq(vq_push(&f.vq, head, i), 0);
	}
	ck_assert_uint_eq(fr_used_idx(&f), (uint16_t)(start + 20));
	fr_used_elem(&f, (uint16_t)(start + 19), &id, &len);
	ck_assert_uint_eq(id, 19 % 4);
	ck_assert_uint_eq(len, 19);
	ck_assert_int_eq(vq_pop(&f.vq, &c, iov, 16), 0);
}
END_TEST

START_TEST(indirect_chain)
{
	uint64_t table = fr_alloc(&f, 3 * 16), a = fr_alloc(&f, 4), b = fr_alloc(&f, 4),
		 d = fr_alloc(&f, 4);
	char buf[8];

	fr_enable(&f, false, true);
	memcpy(fr_host(&f, a), "abcd", 4);
	memcpy(fr_host(&f, b), "efgh", 4);
	fr_desc(&f, table, 0, a, 4, N, 2);
	fr_desc(&f, table, 2, b, 4, N, 1);
	fr_desc(&f, table, 1, d, 4, W, 0);
	fr_desc(&f, desc_table(), 6, table, 3 * 16, I, 0);
	fr_publish(&f, 6);
	ck_assert_int_eq(vq_pop(&f.vq, &c, iov, 16), 1);
	ck_assert_uint_eq(c.head, 6);
	ck_assert_uint_eq(c.nr_out, 2);
	ck_assert_uint_eq(c.nr_in, 1);
	ck_assert_uint_eq(vq_chain_read(&c, 0, buf, 8), 8);
	ck_assert_mem_eq(buf, "abcdefgh", 8);
	ck_assert_ptr_eq(iov[2].iov_base, fr_host(&f, d));
}
END_TEST

START_TEST(zero_length_skipped)
{
	uint64_t a = fr_alloc(&f, 4), b = fr_alloc(&f, 4);

	fr_enable(&f, false, false);
	fr_desc(&f, desc_table(), 0, a, 0, N, 1);
	fr_desc(&f, desc_table(), 1, a, 4, N, 2);
	fr_desc(&f, desc_table(), 2, 0xdead0000, 0, N, 3); /* not RAM, but empty */
	fr_desc(&f, desc_table(), 3, b, 4, W, 0);
	fr_publish(&f, 0);
	ck_assert_int_eq(vq_pop(&f.vq, &c, iov, 16), 1);
	ck_assert_uint_eq(c.nr_out, 1);
	ck_assert_uint_eq(c.nr_in, 1);
	ck_assert_ptr_eq(iov[0].iov_base, fr_host(&f, a));
	ck_assert_ptr_eq(iov[1].iov_base, fr_host(&f, b));
}
END_TEST

/* The longest legal direct chain uses every descriptor once. */
START_TEST(chain_of_queue_size)
{
	uint64_t a = fr_alloc(&f, 8);

	fr_enable(&f, false, false);
	for (uint16_t i = 0; i < 8; i++)
		fr_desc(&f, desc_table(), i, a + i, 1, i < 7 ? N : 0, (uint16_t)(i + 1));
	fr_publish(&f, 0);
	ck_assert_int_eq(vq_pop(&f.vq, &c, iov, 8), 1);
	ck_assert_uint_eq(c.nr_out, 8);
	ck_assert_uint_eq(c.out_len, 8);
}
END_TEST

START_TEST(event_idx_interrupts)
{
	uint64_t a = fr_alloc(&f, 4);

	fr_enable(&f, true, false);
	for (uint16_t i = 0; i < 8; i++)
		fr_desc(&f, desc_table(), i, a, 4, W, 0);
	/* The first decision always interrupts (nothing signalled yet). */
	fr_set_used_event(&f, 100);
	ck_assert_int_eq(vq_push(&f.vq, 0, 1), 0);
	ck_assert(vq_should_interrupt(&f.vq));
	/* used_event 2: interrupt once used idx passes entry 2. */
	fr_set_used_event(&f, 2);
	ck_assert_int_eq(vq_push(&f.vq, 1, 1), 0); /* used idx 2 */
	ck_assert(!vq_should_interrupt(&f.vq));
	ck_assert_int_eq(vq_push(&f.vq, 2, 1), 0); /* 3: entry 2 used */
	ck_assert(vq_should_interrupt(&f.vq));
	ck_assert_int_eq(vq_push(&f.vq, 3, 1), 0); /* 4: event already passed */
	ck_assert(!vq_should_interrupt(&f.vq));
	/* Several pushes that together cross used_event interrupt once. */
	fr_set_used_event(&f, 5);
	ck_assert_int_eq(vq_push(&f.vq, 4, 1), 0);
	ck_assert_int_eq(vq_push(&f.vq, 5, 1), 0);
	ck_assert_int_eq(vq_push(&f.vq, 6, 1), 0); /* 7 */
	ck_assert(vq_should_interrupt(&f.vq));
	ck_assert(!vq_should_interrupt(&f.vq)); /* nothing new */
	/* NO_INTERRUPT is ignored with EVENT_IDX. */
	fr_set_avail_flags(&f, VRING_AVAIL_F_NO_INTERRUPT);
	fr_set_used_event(&f, 7);
	ck_assert_int_eq(vq_push(&f.vq, 7, 1), 0);
	ck_assert(vq_should_interrupt(&f.vq));
}
END_TEST

START_TEST(no_interrupt_flag)
{
	fr_enable(&f, false, false);
	ck_assert_int_eq(vq_push(&f.vq, 0, 0), 0);
	ck_assert(vq_should_interrupt(&f.vq));
	fr_set_avail_flags(&f, VRING_AVAIL_F_NO_INTERRUPT);
	ck_assert_int_eq(vq_push(&f.vq, 1, 0), 0);
	ck_assert(!vq_should_interrupt(&f.vq));
	fr_set_avail_flags(&f, 0);
	ck_assert_int_eq(vq_push(&f.vq, 2, 0), 0);
	ck_assert(vq_should_interrupt(&f.vq));
}
END_TEST

START_TEST(kick_suppression_flags)
{
	uint64_t a = fr_alloc(&f, 4);

	fr_enable(&f, false, false);
	vq_disable_kicks(&f.vq);
	ck_assert_uint_eq(fr_used_flags(&f), VRING_USED_F_NO_NOTIFY);
	ck_assert(!vq_enable_kicks(&f.vq));
	ck_assert_uint_eq(fr_used_flags(&f), 0);
	/* A chain that arrived while kicks were off is reported. */
	vq_disable_kicks(&f.vq);
	fr_desc(&f, desc_table(), 0, a, 4, 0, 0);
	fr_publish(&f, 0);
	ck_assert(vq_enable_kicks(&f.vq));
	ck_assert_uint_eq(fr_used_flags(&f), 0);
}
END_TEST

START_TEST(kick_suppression_event_idx)
{
	uint64_t a = fr_alloc(&f, 4);

	fr_enable(&f, true, false);
	fr_desc(&f, desc_table(), 0, a, 4, 0, 0);
	fr_publish(&f, 0);
	fr_publish(&f, 0);
	vq_disable_kicks(&f.vq);
	ck_assert_uint_eq(fr_used_flags(&f), 0); /* the flag is not used with EVENT_IDX */
	ck_assert_int_eq(vq_pop(&f.vq, &c, iov, 16), 1);
	/* One still pending: re-arming says drain again. */
	ck_assert(vq_enable_kicks(&f.vq));
	ck_assert_uint_eq(fr_avail_event(&f), 1);
	ck_assert_int_eq(vq_pop(&f.vq, &c, iov, 16), 1);
	ck_assert(!vq_enable_kicks(&f.vq));
	ck_assert_uint_eq(fr_avail_event(&f), 2);
}
END_TEST

/* ---- hostile rings ---- */

static void expect_enable_fails(const char *why_part)
{
	ck_assert_int_eq(vq_enable(&f.vq, false, false), -EINVAL);
	ck_assert(!f.vq.enabled);
	ck_assert_msg(strstr(f.vq.error, why_part), "error \"%s\" lacks \"%s\"", f.vq.error,
		      why_part);
}

START_TEST(enable_rejections)
{
	struct virtq good = f.vq;

	f.vq.size = 6;
	expect_enable_fails("power of two");
	f.vq.size = 0;
	expect_enable_fails("power of two");
	f.vq.max_size = 8;
	f.vq.size = 16;
	expect_enable_fails("larger than the device offers");

	f.vq = good;
	f.vq.desc_gpa += 8;
	expect_enable_fails("16-byte aligned");
	f.vq = good;
	f.vq.avail_gpa += 1;
	expect_enable_fails("2-byte aligned");
	f.vq = good;
	f.vq.used_gpa += 2;
	expect_enable_fails("4-byte aligned");

	f.vq = good;
	f.vq.desc_gpa = FR_RAM_GPA + FR_RAM_SIZE - 64; /* 8 descriptors need 128 bytes */
	expect_enable_fails("descriptor table is not in guest RAM");
	f.vq = good;
	f.vq.avail_gpa = FR_RAM_GPA + FR_RAM_SIZE - 20; /* 22 bytes incl. used_event */
	expect_enable_fails("available ring is not in guest RAM");
	f.vq = good;
	f.vq.used_gpa = FR_RAM_GPA + FR_RAM_SIZE - 68; /* 70 bytes incl. avail_event */
	expect_enable_fails("used ring is not in guest RAM");
	f.vq = good;
	f.vq.used_gpa = UINT64_MAX - 3;
	expect_enable_fails("used ring is not in guest RAM");

	f.vq = good;
	f.vq.avail_gpa = FR_RAM_GPA + FR_RAM_SIZE - 22; /* exactly fits */
	ck_assert_int_eq(vq_enable(&f.vq, false, false), 0);
	ck_assert(f.vq.enabled);
}
END_TEST

/* The dump names both sides' indices: the driver's avail->idx and
 * used_event read from its ring, the device's own progress beside them. */
START_TEST(dump_shows_both_sides)
{
	uint64_t a = fr_alloc(&f, 4);
	char out[512] = "";
	FILE *m = fmemopen(out, sizeof(out) - 1, "w");

	ck_assert_ptr_nonnull(m);
	vq_dump(&f.vq, m);
	fflush(m);
	ck_assert_str_eq(out, "disabled\r\n");
	rewind(m);
	fr_enable(&f, true, false);
	for (uint16_t i = 0; i < 3; i++) {
		fr_desc(&f, desc_table(), i, a, 4, W, 0);
		fr_publish(&f, i);
	}
	ck_assert_int_eq(vq_pop(&f.vq, &c, iov, 16), 1);
	ck_assert_int_eq(vq_push(&f.vq, c.head, 4), 0);
	fr_set_used_event(&f, 7);
	ck_assert(vq_should_interrupt(&f.vq));
	vq_enable_kicks(&f.vq);
	vq_dump(&f.vq, m);
	fclose(m);
	ck_assert_str_eq(out, "size 8; avail idx 3 (device at 1), flags 0; used idx 1 "
			      "(interrupted at 1), flags 0; used_event 7, avail_event 1\r\n");
}
END_TEST

START_TEST(reset_caps_size)
{
	vq_reset(&f.vq, &f.gm, 1024);
	ck_assert_uint_eq(f.vq.max_size, VIRTQ_MAX_SIZE);
	ck_assert_uint_eq(f.vq.size, VIRTQ_MAX_SIZE);
	ck_assert_uint_eq(f.vq.msix_vector, 0xffff);
	ck_assert(!f.vq.enabled);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("virtio_queue");
	TCase *ok = tcase_create("valid"), *en = tcase_create("enable");

	tcase_add_checked_fixture(ok, setup, teardown);
	tcase_add_checked_fixture(en, setup, teardown);
	tcase_add_test(ok, round_trip);
	tcase_add_test(ok, index_wrap);
	tcase_add_test(ok, fill_then_flush);
	tcase_add_test(ok, indirect_chain);
	tcase_add_test(ok, zero_length_skipped);
	tcase_add_test(ok, chain_of_queue_size);
	tcase_add_test(ok, event_idx_interrupts);
	tcase_add_test(ok, no_interrupt_flag);
	tcase_add_test(ok, kick_suppression_flags);
	tcase_add_test(ok, kick_suppression_event_idx);
	tcase_add_test(ok, dump_shows_both_sides);
	tcase_add_test(en, enable_rejections);
	tcase_add_test(en, reset_caps_size);
	suite_add_tcase(s, ok);
	suite_add_tcase(s, en);
	return check_run_suite(s);
}
