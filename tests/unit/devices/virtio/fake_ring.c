/* The fake driver side of a split virtqueue (see fake_ring.h). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "fake_ring.h"

/* Ring placement inside the fake RAM; buffers come after. */
#define DESC_OFF  0x0000
#define AVAIL_OFF 0x1000
#define USED_OFF  0x2000
#define DATA_OFF  0x4000

void fr_init(struct fake_ring *f, uint16_t size)
{
	memset(f, 0, sizeof(*f));
	f->ram = calloc(1, FR_RAM_SIZE);
	ck_assert_ptr_nonnull(f->ram);
	ck_assert_int_eq(gm_add_region(&f->gm, FR_RAM_GPA, FR_RAM_SIZE, f->ram), 0);
	vq_reset(&f->vq, &f->gm, VIRTQ_MAX_SIZE);
	f->vq.size = size;
	f->vq.desc_gpa = FR_RAM_GPA + DESC_OFF;
	f->vq.avail_gpa = FR_RAM_GPA + AVAIL_OFF;
	f->vq.used_gpa = FR_RAM_GPA + USED_OFF;
	f->next_data = FR_RAM_GPA + DATA_OFF;
}

void fr_fini(struct fake_ring *f)
{
	free(f->ram);
	f->ram = NULL;
}

void fr_enable(struct fake_ring *f, bool event_idx, bool indirect)
{
	ck_assert_int_eq(vq_enable(&f->vq, event_idx, indirect), 0);
}

void *fr_host(struct fake_ring *f, uint64_t gpa)
{
	ck_assert(gpa >= FR_RAM_GPA && gpa < FR_RAM_GPA + FR_RAM_SIZE);
	return f->ram + (gpa - FR_RAM_GPA);
}

uint64_t fr_alloc(struct fake_ring *f, uint32_t len)
{
	uint64_t gpa = f->next_data;

	f->next_data = (f->next_data + len + 15) & ~15ULL;
	ck_assert(f->next_data <= FR_RAM_GPA + FR_RAM_SIZE);
	memset(fr_host(f, gpa), 0, len);
	return gpa;
}

void fr_desc(struct fake_ring *f, uint64_t table, uint16_t i, uint64_t addr, uint32_t len,
	     uint16_t flags, uint16_t next)
{
	struct vring_desc d = { addr, len, flags, next };

	memcpy(fr_host(f, table + 16ULL * i), &d, sizeof(d));
}

static void put16(struct fake_ring *f, uint64_t gpa, uint16_t v)
{
	memcpy(fr_host(f, gpa), &v, 2);
}

static uint16_t get16(struct fake_ring *f, uint64_t gpa)
{
	uint16_t v;

	memcpy(&v, fr_host(f, gpa), 2);
	return v;
}

void fr_publish(struct fake_ring *f, uint16_t head)
{
	put16(f, f->vq.avail_gpa + 4 + 2ULL * (f->avail_idx % f->vq.size), head);
	f->avail_idx++;
	put16(f, f->vq.avail_gpa + 2, f->avail_idx);
}

void fr_set_avail_idx(struct fake_ring *f, uint16_t idx)
{
	f->avail_idx = idx;
	put16(f, f->vq.avail_gpa + 2, idx);
}

void fr_set_avail_flags(struct fake_ring *f, uint16_t flags)
{
	put16(f, f->vq.avail_gpa, flags);
}

void fr_set_used_event(struct fake_ring *f, uint16_t v)
{
	put16(f, f->vq.avail_gpa + 4 + 2ULL * f->vq.size, v);
}

uint16_t fr_used_flags(struct fake_ring *f)
{
	return get16(f, f->vq.used_gpa);
}

uint16_t fr_used_idx(struct fake_ring *f)
{
	return get16(f, f->vq.used_gpa + 2);
}

uint16_t fr_avail_event(struct fake_ring *f)
{
	return get16(f, f->vq.used_gpa + 4 + 8ULL * f->vq.size);
}

void fr_used_elem(struct fake_ring *f, uint16_t slot, uint32_t *id, uint32_t *len)
{
	uint8_t *p = fr_host(f, f->vq.used_gpa + 4 + 8ULL * (slot % f->vq.size));

	memcpy(id, p, 4);
	memcpy(len, p + 4, 4);
}
