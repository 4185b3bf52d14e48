/* The split-virtqueue tests' shared fixture (test_queue.c,
 * test_queue_hostile.c): an 8-entry fake ring and a rejection check. Each
 * test is its own program, so the statics are per test. */
#ifndef QUEUE_FIXTURE_H
#define QUEUE_FIXTURE_H

#include <check.h>
#include <errno.h>
#include <string.h>

#include "fake_ring.h"

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

static __attribute__((unused)) uint64_t desc_table(void)
{
	return f.vq.desc_gpa;
}

/* vq_pop must fail with -EINVAL, say why, and not consume the chain. */
static __attribute__((unused)) void expect_reject(const char *why_part)
{
	uint16_t before = f.vq.last_avail;

	ck_assert_int_eq(vq_pop(&f.vq, &c, iov, 16), -EINVAL);
	ck_assert_ptr_nonnull(f.vq.error);
	ck_assert_msg(strstr(f.vq.error, why_part), "error \"%s\" lacks \"%s\"", f.vq.error,
		      why_part);
	ck_assert_uint_eq(f.vq.last_avail, before);
}


#endif
