/* KVM's binary statistics (KVM_GET_STATS_FD): a synthetic stats file laid
 * out as Linux lays it out (header, descriptors with their names, data)
 * is parsed, its counters read, histograms told apart; every malformed
 * header or descriptor is refused with a message, not read past. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <linux/kvm.h>

#include "kvmini/kvm_stats.h"
#include "../check_main.h"

#define NAME_SIZE 48
#define DESC_OFF  (sizeof(struct kvm_stats_header) + NAME_SIZE) /* id string between */
#define STRIDE    (sizeof(struct kvm_stats_desc) + NAME_SIZE)

struct fake {
	uint8_t buf[4096];
	size_t len;   /* header + id + descriptors */
	struct kvm_stats_header h;
};

static void put_desc(struct fake *f, unsigned i, const char *name, uint32_t flags,
		     uint16_t size, uint32_t offset)
{
	struct kvm_stats_desc d = { .flags = flags, .size = size, .offset = offset };
	uint8_t *p = f->buf + DESC_OFF + STRIDE * i;

	memcpy(p, &d, sizeof(d));
	memset(p + sizeof(d), 0, NAME_SIZE);
	memcpy(p + sizeof(d), name, strlen(name));
}

/* Five statistics as a 6.1 vCPU has them: counters, a histogram, an
 * instant value and a peak. */
static void fake_init(struct fake *f)
{
	memset(f, 0, sizeof(*f));
	f->h = (struct kvm_stats_header){ .name_size = NAME_SIZE, .num_desc = 5,
					  .id_offset = sizeof(struct kvm_stats_header),
					  .desc_offset = DESC_OFF };
	f->len = DESC_OFF + STRIDE * 5;
	f->h.data_offset = (uint32_t)f->len;
	memcpy(f->buf + sizeof(f->h), "kvm-1234/vcpu-0", 15);
	put_desc(f, 0, "exits", KVM_STATS_TYPE_CUMULATIVE, 1, 0);
	put_desc(f, 1, "io_exits", KVM_STATS_TYPE_CUMULATIVE, 1, 8);
	put_desc(f, 2, "halt_poll_success_hist", KVM_STATS_TYPE_LOG_HIST | KVM_STATS_UNIT_SECONDS,
		 32, 16);
	put_desc(f, 3, "pages_2m", KVM_STATS_TYPE_INSTANT, 1, 16 + 32 * 8);
	put_desc(f, 4, "max_mmu_page_hash_collisions", KVM_STATS_TYPE_PEAK, 1, 24 + 32 * 8);
	memcpy(f->buf, &f->h, sizeof(f->h));
}

static void fake_header(struct fake *f)
{
	memcpy(f->buf, &f->h, sizeof(f->h));
}

START_TEST(parses_and_reads)
{
	struct kvm_stats_schema *s = malloc(sizeof(*s));
	struct kv_err e = { 0 };
	struct fake f;
	uint64_t data[4 + 32] = { 0 };

	ck_assert_ptr_nonnull(s);
	fake_init(&f);
	ck_assert_msg(kvm_stats_parse(f.buf, f.len, s, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(s->n, 5);
	ck_assert_uint_eq(s->data_offset, f.len);
	ck_assert_uint_eq(s->data_len, 32 + 32 * 8);
	ck_assert_str_eq(s->desc[2].name, "halt_poll_success_hist");
	ck_assert_int_eq(kvm_stats_find(s, "pages_2m"), 3);
	ck_assert_int_eq(kvm_stats_find(s, "nope"), -1);
	ck_assert(kvm_stats_is_scalar(&s->desc[0]));
	ck_assert(!kvm_stats_is_scalar(&s->desc[2]));
	ck_assert(kvm_stats_is_scalar(&s->desc[3]));
	ck_assert(kvm_stats_is_scalar(&s->desc[4]));

	data[0] = 65000;          /* exits */
	data[1] = 33700;          /* io_exits */
	data[2 + 5] = 77;         /* a histogram bucket */
	data[2 + 32] = 59;        /* pages_2m */
	data[3 + 32] = 3;         /* peak */
	ck_assert_uint_eq(kvm_stats_value(s, 0, data, sizeof(data)), 65000);
	ck_assert_uint_eq(kvm_stats_value(s, 1, data, sizeof(data)), 33700);
	ck_assert_uint_eq(kvm_stats_value(s, 3, data, sizeof(data)), 59);
	ck_assert_uint_eq(kvm_stats_value(s, 4, data, sizeof(data)), 3);
	/* Past the data given, or no such statistic: 0, never a read past. */
	ck_assert_uint_eq(kvm_stats_value(s, 3, data, 16 + 32 * 8), 0);
	ck_assert_uint_eq(kvm_stats_value(s, 9, data, sizeof(data)), 0);
	free(s);
}
END_TEST

START_TEST(malformed)
{
	struct kvm_stats_schema *s = malloc(sizeof(*s));
	struct kv_err e = { 0 };
	struct fake f;
	char longname[NAME_SIZE];

	ck_assert_ptr_nonnull(s);
	fake_init(&f);
	ck_assert_int_eq(kvm_stats_parse(f.buf, sizeof(struct kvm_stats_header) - 1, s, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "shorter than the header"));
	/* Descriptors past what was read. */
	ck_assert_int_eq(kvm_stats_parse(f.buf, f.len - 1, s, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "descriptors"));
	/* More statistics than kvmini keeps. */
	f.h.num_desc = KVM_STATS_MAX_DESC + 1;
	fake_header(&f);
	ck_assert_int_eq(kvm_stats_parse(f.buf, sizeof(f.buf), s, &e), -EINVAL);
	/* A descriptor stride that wraps: huge name size. */
	fake_init(&f);
	f.h.name_size = 0xffffffffu;
	fake_header(&f);
	ck_assert_int_eq(kvm_stats_parse(f.buf, f.len, s, &e), -EINVAL);
	/* Data block inside the header. */
	fake_init(&f);
	f.h.data_offset = 4;
	fake_header(&f);
	ck_assert_int_eq(kvm_stats_parse(f.buf, f.len, s, &e), -EINVAL);
	/* An empty name; a name that fills its field with no NUL. */
	fake_init(&f);
	put_desc(&f, 1, "", KVM_STATS_TYPE_CUMULATIVE, 1, 8);
	ck_assert_int_eq(kvm_stats_parse(f.buf, f.len, s, &e), -EINVAL);
	fake_init(&f);
	memset(longname, 'x', sizeof(longname));
	memcpy(f.buf + DESC_OFF + STRIDE * 1 + sizeof(struct kvm_stats_desc), longname, NAME_SIZE);
	ck_assert_int_eq(kvm_stats_parse(f.buf, f.len, s, &e), -EINVAL);
	/* Values that are not 8-aligned, none at all, or far away. */
	fake_init(&f);
	put_desc(&f, 1, "io_exits", KVM_STATS_TYPE_CUMULATIVE, 1, 9);
	ck_assert_int_eq(kvm_stats_parse(f.buf, f.len, s, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "io_exits"));
	fake_init(&f);
	put_desc(&f, 1, "io_exits", KVM_STATS_TYPE_CUMULATIVE, 0, 8);
	ck_assert_int_eq(kvm_stats_parse(f.buf, f.len, s, &e), -EINVAL);
	fake_init(&f);
	put_desc(&f, 1, "io_exits", KVM_STATS_TYPE_CUMULATIVE, 1, 0xfffffff8u);
	ck_assert_int_eq(kvm_stats_parse(f.buf, f.len, s, &e), -EINVAL);
	fake_init(&f);
	put_desc(&f, 1, "io_exits", KVM_STATS_TYPE_CUMULATIVE, 0xffff, 8);
	ck_assert_int_eq(kvm_stats_parse(f.buf, f.len, s, &e), -EINVAL);
	free(s);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("kvm_stats");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, parses_and_reads);
	tcase_add_test(tc, malformed);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
