/* Split virtqueue: hostile rings (loops, out-of-range indices and
 * addresses, bad indirect tables, random rings) must be rejected with an
 * error that says why, never a crash, and never consume the chain. */
#include <check.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "queue_fixture.h"
#include "../../check_main.h"

START_TEST(descriptor_loop)
{
	uint64_t a = fr_alloc(&f, 4);

	fr_enable(&f, false, false);
	fr_desc(&f, desc_table(), 0, a, 4, N, 1);
	fr_desc(&f, desc_table(), 1, a, 4, N, 2);
	fr_desc(&f, desc_table(), 2, a, 4, N, 0);
	fr_publish(&f, 0);
	expect_reject("loops");
}
END_TEST

/* A self-loop of zero-length descriptors stores nothing: the hop limit
 * still ends it. */
START_TEST(zero_length_loop)
{
	fr_enable(&f, false, false);
	fr_desc(&f, desc_table(), 4, 0, 0, N, 4);
	fr_publish(&f, 4);
	expect_reject("loops");
}
END_TEST

START_TEST(next_out_of_range)
{
	uint64_t a = fr_alloc(&f, 4);

	fr_enable(&f, false, false);
	fr_desc(&f, desc_table(), 0, a, 4, N, 8);
	fr_publish(&f, 0);
	expect_reject("out of range");
}
END_TEST

START_TEST(head_out_of_range)
{
	fr_enable(&f, false, false);
	fr_publish(&f, 8);
	expect_reject("head out of range");
	fr_fini(&f);
	fr_init(&f, 8);
	fr_enable(&f, false, false);
	fr_publish(&f, 0xffff);
	expect_reject("head out of range");
}
END_TEST

/* A chain longer than its table can only revisit entries: inside an
 * indirect table the hop limit is the table's length. */
START_TEST(indirect_chain_too_long)
{
	uint64_t t = fr_alloc(&f, 2 * 16), a = fr_alloc(&f, 4);

	fr_enable(&f, false, true);
	fr_desc(&f, t, 0, a, 4, N, 1);
	fr_desc(&f, t, 1, a, 4, N, 0);
	fr_desc(&f, desc_table(), 0, t, 32, I, 0);
	fr_publish(&f, 0);
	expect_reject("loops");
}
END_TEST

START_TEST(iov_cap_overflow)
{
	uint64_t a = fr_alloc(&f, 4);

	fr_enable(&f, false, false);
	for (uint16_t i = 0; i < 4; i++)
		fr_desc(&f, desc_table(), i, a, 4, i < 3 ? N : 0, (uint16_t)(i + 1));
	fr_publish(&f, 0);
	ck_assert_int_eq(vq_pop(&f.vq, &c, iov, 3), -EINVAL);
	ck_assert_ptr_nonnull(strstr(f.vq.error, "more buffers"));
	ck_assert_int_eq(vq_pop(&f.vq, &c, iov, 4), 1);
}
END_TEST

START_TEST(addr_outside_ram)
{
	fr_enable(&f, false, false);
	fr_desc(&f, desc_table(), 0, FR_RAM_GPA + FR_RAM_SIZE - 2, 4, 0, 0); /* crosses the end */
	fr_publish(&f, 0);
	expect_reject("not in guest RAM");
	fr_desc(&f, desc_table(), 0, 0x1000, 4, 0, 0); /* below RAM */
	expect_reject("not in guest RAM");
}
END_TEST

START_TEST(addr_len_wraps)
{
	fr_enable(&f, false, false);
	fr_desc(&f, desc_table(), 0, UINT64_MAX - 3, 16, W, 0);
	fr_publish(&f, 0);
	expect_reject("not in guest RAM");
}
END_TEST

START_TEST(readable_after_writable)
{
	uint64_t a = fr_alloc(&f, 4);

	fr_enable(&f, false, false);
	fr_desc(&f, desc_table(), 0, a, 4, N, 1);
	fr_desc(&f, desc_table(), 1, a, 4, W | N, 2);
	fr_desc(&f, desc_table(), 2, a, 4, 0, 0);
	fr_publish(&f, 0);
	expect_reject("readable descriptor after a writable");
}
END_TEST

START_TEST(nested_indirect)
{
	uint64_t t1 = fr_alloc(&f, 16), t2 = fr_alloc(&f, 16), a = fr_alloc(&f, 4);

	fr_enable(&f, false, true);
	fr_desc(&f, t2, 0, a, 4, 0, 0);
	fr_desc(&f, t1, 0, t2, 16, I, 0);
	fr_desc(&f, desc_table(), 0, t1, 16, I, 0);
	fr_publish(&f, 0);
	expect_reject("inside an indirect table");
}
END_TEST

START_TEST(indirect_bad_length)
{
	uint64_t t = fr_alloc(&f, 64), a = fr_alloc(&f, 4);

	fr_enable(&f, false, true);
	fr_desc(&f, t, 0, a, 4, 0, 0);
	fr_desc(&f, desc_table(), 0, t, 24, I, 0);
	fr_publish(&f, 0);
	expect_reject("indirect table length");
	fr_desc(&f, desc_table(), 0, t, 0, I, 0);
	expect_reject("indirect table length");
	fr_desc(&f, desc_table(), 0, t, (VIRTQ_MAX_SIZE + 1) * 16, I, 0);
	expect_reject("indirect table length");
	fr_desc(&f, desc_table(), 0, FR_RAM_GPA + FR_RAM_SIZE - 16, 32, I, 0);
	expect_reject("indirect table is not in guest RAM");
	fr_desc(&f, desc_table(), 0, t, 16, I, 0);
	ck_assert_int_eq(vq_pop(&f.vq, &c, iov, 16), 1);
}
END_TEST

START_TEST(indirect_not_negotiated)
{
	uint64_t t = fr_alloc(&f, 16), a = fr_alloc(&f, 4);

	fr_enable(&f, true, false);
	fr_desc(&f, t, 0, a, 4, 0, 0);
	fr_desc(&f, desc_table(), 0, t, 16, I, 0);
	fr_publish(&f, 0);
	expect_reject("without VIRTIO_RING_F_INDIRECT_DESC");
}
END_TEST

START_TEST(indirect_with_next)
{
	uint64_t t = fr_alloc(&f, 16), a = fr_alloc(&f, 4);

	fr_enable(&f, false, true);
	fr_desc(&f, t, 0, a, 4, 0, 0);
	fr_desc(&f, desc_table(), 0, t, 16, I | N, 1);
	fr_desc(&f, desc_table(), 1, a, 4, 0, 0);
	fr_publish(&f, 0);
	expect_reject("indirect descriptor with NEXT");
}
END_TEST

START_TEST(indirect_next_out_of_range)
{
	uint64_t t = fr_alloc(&f, 32), a = fr_alloc(&f, 4);

	fr_enable(&f, false, true);
	fr_desc(&f, t, 0, a, 4, N, 2);
	fr_desc(&f, desc_table(), 0, t, 32, I, 0);
	fr_publish(&f, 0);
	expect_reject("indirect next index out of range");
}
END_TEST

START_TEST(avail_idx_jump)
{
	uint64_t a = fr_alloc(&f, 4);

	fr_enable(&f, false, false);
	fr_desc(&f, desc_table(), 0, a, 4, 0, 0);
	fr_set_avail_idx(&f, 9);
	expect_reject("more than a queue size ahead");
	fr_set_avail_idx(&f, 0xffff); /* "behind" is also a jump of 65535 */
	expect_reject("more than a queue size ahead");
	fr_set_avail_idx(&f, 8); /* a whole ring is fine */
	ck_assert_int_eq(vq_pop(&f.vq, &c, iov, 16), 1);
}
END_TEST

/* Two 3 GiB buffers: each fits used.len, their sum does not. The big
 * region is reserved address space that is never touched. */
START_TEST(length_total_overflow)
{
	const uint64_t big_gpa = 1ULL << 40, big = 3ULL << 30;
	void *host = mmap(NULL, big, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	ck_assert_ptr_ne(host, MAP_FAILED);
	ck_assert_int_eq(gm_add_region(&f.gm, big_gpa, big, host), 0);
	fr_enable(&f, false, false);
	fr_desc(&f, desc_table(), 0, big_gpa, 0xC0000000u, N, 1);
	fr_desc(&f, desc_table(), 1, big_gpa, 0xC0000000u, 0, 0);
	fr_publish(&f, 0);
	expect_reject("readable buffers exceed 4 GiB");
	fr_desc(&f, desc_table(), 0, big_gpa, 0xC0000000u, W | N, 1);
	fr_desc(&f, desc_table(), 1, big_gpa, 0xC0000000u, W, 0);
	expect_reject("writable buffers exceed 4 GiB");
	/* One of each is fine. */
	fr_desc(&f, desc_table(), 0, big_gpa, 0xC0000000u, N, 1);
	ck_assert_int_eq(vq_pop(&f.vq, &c, iov, 16), 1);
	ck_assert_uint_eq(c.out_len, 0xC0000000u);
	ck_assert_uint_eq(c.in_len, 0xC0000000u);
	munmap(host, big);
}
END_TEST

START_TEST(disabled_queue)
{
	ck_assert_int_eq(vq_pop(&f.vq, &c, iov, 16), 0);
	ck_assert_int_eq(vq_push(&f.vq, 0, 0), -EINVAL);
	ck_assert(!vq_should_interrupt(&f.vq));
	ck_assert(!vq_has_avail(&f.vq));
	ck_assert(!vq_enable_kicks(&f.vq));
}
END_TEST

/* Random rings, with addresses biased toward RAM so that some chains are
 * valid: vq_pop never crashes, and what it accepts holds its promises. */
static uint64_t rnd(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

START_TEST(random_rings)
{
	uint64_t st = 0x9e3779b97f4a7c15ULL, area = fr_alloc(&f, 4096);
	unsigned accepted = 0;

	for (int round = 0; round < 3000; round++) {
		uint64_t table = area + 16 * (rnd(&st) % 4);

		vq_reset(&f.vq, &f.gm, VIRTQ_MAX_SIZE);
		f.vq.size = 8;
		f.vq.desc_gpa = FR_RAM_GPA;
		f.vq.avail_gpa = FR_RAM_GPA + 0x1000;
		f.vq.used_gpa = FR_RAM_GPA + 0x2000;
		fr_enable(&f, rnd(&st) & 1, rnd(&st) & 1);
		fr_set_avail_idx(&f, 0);
		for (uint16_t i = 0; i < 8; i++) {
			uint64_t r = rnd(&st);
			uint64_t addr = (r & 3) == 0 ? rnd(&st) : area + (rnd(&st) % 4200);
			uint16_t flags = (uint16_t)(rnd(&st) & 7);

			if ((r & 12) == 0)
				addr = table; /* an indirect table of random descriptors */
			fr_desc(&f, f.vq.desc_gpa, i, addr, (uint32_t)(rnd(&st) % 80), flags,
				(uint16_t)(rnd(&st) % 10));
			fr_desc(&f, table, i, area + (rnd(&st) % 4100), (uint32_t)(rnd(&st) % 40),
				(uint16_t)(rnd(&st) & 7), (uint16_t)(rnd(&st) % 10));
		}
		for (int k = 0; k < 4; k++)
			fr_publish(&f, (uint16_t)(rnd(&st) % 9));
		for (int k = 0; k < 4; k++) {
			unsigned cap = 1 + rnd(&st) % 16;
			size_t out = 0, in = 0;
			int r = vq_pop(&f.vq, &c, iov, cap);

			if (r != 1) {
				ck_assert(r == -EINVAL || r == 0);
				break;
			}
			accepted++;
			ck_assert_uint_le(c.nr_out + c.nr_in, cap);
			for (unsigned j = 0; j < c.nr_out + c.nr_in; j++) {
				uint8_t *b = iov[j].iov_base;

				ck_assert(b >= f.ram && b + iov[j].iov_len <= f.ram + FR_RAM_SIZE);
				ck_assert_uint_gt(iov[j].iov_len, 0);
				*(j < c.nr_out ? &out : &in) += iov[j].iov_len;
			}
			ck_assert_uint_eq(out, c.out_len);
			ck_assert_uint_eq(in, c.in_len);
		}
	}
	ck_assert_uint_gt(accepted, 100); /* the generator does reach valid chains */
}
END_TEST

/* ---- vq_enable ---- */

int main(void)
{
	Suite *s = suite_create("virtio_queue_hostile");
	TCase *bad = tcase_create("hostile");

	tcase_add_checked_fixture(bad, setup, teardown);
	tcase_add_test(bad, descriptor_loop);
	tcase_add_test(bad, zero_length_loop);
	tcase_add_test(bad, next_out_of_range);
	tcase_add_test(bad, head_out_of_range);
	tcase_add_test(bad, indirect_chain_too_long);
	tcase_add_test(bad, iov_cap_overflow);
	tcase_add_test(bad, addr_outside_ram);
	tcase_add_test(bad, addr_len_wraps);
	tcase_add_test(bad, readable_after_writable);
	tcase_add_test(bad, nested_indirect);
	tcase_add_test(bad, indirect_bad_length);
	tcase_add_test(bad, indirect_not_negotiated);
	tcase_add_test(bad, indirect_with_next);
	tcase_add_test(bad, indirect_next_out_of_range);
	tcase_add_test(bad, avail_idx_jump);
	tcase_add_test(bad, length_total_overflow);
	tcase_add_test(bad, disabled_queue);
	tcase_add_test(bad, random_rings);
	suite_add_tcase(s, bad);
	return check_run_suite(s);
}
