/* The fuzz_blk oracle (fuzz_blk_model.h). Not instrumented for
 * coverage: the fuzzer should steer by the device's code, not the
 * model's, and the model's loops are its hottest. */
#include <string.h>

#include "fuzz_blk_model.h"

#if defined(__clang__)
#define MODEL __attribute__((no_sanitize("coverage")))
#else
#define MODEL
#endif

static inline uint8_t pattern(uint32_t gen, uint32_t s, unsigned i)
{
	return (uint8_t)(gen * 131u + s * 7u + i * 13u + (i >> 8) + 1);
}

MODEL void bm_reset(struct bm *m, uint64_t nsec)
{
	m->nsec = nsec;
	m->next_gen = 1;
	m->nw = 0;
}

MODEL void bm_fill_sector(uint8_t *p, uint32_t gen, uint64_t sector)
{
	uint32_t s = (uint32_t)sector;

	if (gen == BM_ZERO_GEN) {
		memset(p, 0, BM_SECTOR);
		return;
	}
	memcpy(p, &gen, 4);
	memcpy(p + 4, &s, 4);
	for (unsigned i = 8; i < BM_SECTOR; i++)
		p[i] = pattern(gen, s, i);
}

MODEL int64_t bm_sector_gen(const uint8_t *p, uint64_t sector)
{
	uint32_t gen, s;

	memcpy(&gen, p, 4);
	memcpy(&s, p + 4, 4);
	if (s == (uint32_t)sector && gen != BM_ZERO_GEN) {
		unsigned i = 8;

		while (i < BM_SECTOR && p[i] == pattern(gen, s, i))
			i++;
		if (i == BM_SECTOR)
			return gen;
	}
	/* Sector 0 of generation 0 starts with 8 zero bytes, like zeroes. */
	for (unsigned i = 0; i < BM_SECTOR; i++)
		if (p[i])
			return -1;
	return BM_ZERO_GEN;
}

MODEL int bm_add(struct bm *m, uint32_t gen, uint64_t first, uint64_t nsec, uint64_t t)
{
	if (m->nw == BM_MAX_WRITES)
		return -1;
	if (first > m->nsec)
		first = m->nsec;
	if (nsec > m->nsec - first)
		nsec = m->nsec - first;
	m->w[m->nw] = (struct bm_write){ gen, first, nsec, t, UINT64_MAX, BM_IN_FLIGHT };
	return (int)m->nw++;
}

MODEL void bm_finish(struct bm *m, int idx, enum bm_state state, uint64_t t)
{
	if (idx < 0 || m->w[idx].state != BM_IN_FLIGHT)
		return;
	m->w[idx].state = state;
	m->w[idx].t_done = t;
}

MODEL static bool covers(const struct bm_write *w, uint64_t sector)
{
	return sector >= w->first && sector - w->first < w->nsec;
}

/* The latest issue time of a completed write over @sector that
 * completed before @t_read: anything that completed before that time
 * was certainly overwritten before a read issued at @t_read. */
MODEL static uint64_t last_certain(const struct bm *m, uint64_t sector, uint64_t t_read)
{
	uint64_t t = 0;

	for (unsigned i = 0; i < m->nw; i++) {
		const struct bm_write *y = &m->w[i];

		if (y->state == BM_DONE && covers(y, sector) && y->t_done < t_read &&
		    y->t_submit > t)
			t = y->t_submit;
	}
	return t;
}

MODEL bool bm_allowed(const struct bm *m, uint64_t sector, uint32_t gen, uint64_t t_submit,
		uint64_t t_done)
{
	/* Writes that completed before this is were overwritten for sure
	 * before the read was issued. */
	uint64_t overwritten_before = last_certain(m, sector, t_submit);

	/* The base image: unless a completed write certainly replaced it. */
	if (gen == 0 && overwritten_before == 0)
		return true;
	for (unsigned i = 0; i < m->nw; i++) {
		const struct bm_write *x = &m->w[i];

		if (x->gen != gen || !covers(x, sector) || x->state == BM_NOTHING)
			continue;
		/* Issued before the read ended, and not certainly overwritten
		 * before the read began. */
		if (x->t_submit < t_done &&
		    (x->state == BM_IN_FLIGHT || x->t_done >= overwritten_before))
			return true;
	}
	return false;
}
