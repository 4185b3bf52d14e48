/* Split virtqueue: valid chains round trip, notification decisions, and
 * hostile rings that must be rejected with an error, never a crash. */
#include <check.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "fake_ring.h"
#include "../../check_main.h"

#define W VRING_DESC_F_WRITE
#define N VRING_DESC_F_NEXT
#define I VRING_DESC_F_INDIRECT

static struct fake_ring f;
static struct iovec iov[16];
static struct vq_chain c;

static void setup(void)
{
	fr_init(&f, 8);
}

static void teardown(void)
{
	fr_fini(&f);
}

static uint64_t desc_table(void)
{
	return f.vq.desc_gpa;
}

/* vq_pop must fail with -EINVAL, say why, and not consume the chain. */
static void expect_reject(const char *why_part)
{
	uint16_t before = f.vq.last_avail;

	ck_assert_int_eq(vq_pop(&f.vq, &c, iov, 16), -EINVAL);
	ck_assert_ptr_nonnull(f.vq.error);
	ck_assert_msg(strstr(f.vq.error, why_part), "error \"%s\" lacks \"%s\"", f.vq.error,
		      why_part);
	ck_assert_uint_eq(f.vq.last_avail, before);
}

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
	TCase *ok = tcase_create("valid"), *bad = tcase_create("hostile"),
	      *en = tcase_create("enable");

	tcase_add_checked_fixture(ok, setup, teardown);
	tcase_add_checked_fixture(bad, setup, teardown);
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
	tcase_add_test(ok, disabled_queue);
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
	tcase_add_test(bad, random_rings);
	tcase_add_test(en, enable_rejections);
	tcase_add_test(en, reset_caps_size);
	suite_add_tcase(s, ok);
	suite_add_tcase(s, bad);
	suite_add_tcase(s, en);
	return check_run_suite(s);
}
