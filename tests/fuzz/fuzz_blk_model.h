/* The fuzz_blk oracle: what each sector of a disk may hold, given the
 * writes (and zeroings) the guest issued and when they were issued and
 * completed. A read may return the data of any write that could have
 * been the last one to land before the read ran, or the base image's
 * data if no completed write covered the sector before the read started;
 * never bytes that no write put there. */
#ifndef KVMINI_FUZZ_BLK_MODEL_H
#define KVMINI_FUZZ_BLK_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#define BM_SECTOR 512u
#define BM_ZERO_GEN 0xffffffffu   /* a sector of zeroes */
#define BM_MAX_WRITES 2048

enum bm_state {
	BM_IN_FLIGHT,   /* submitted, not completed */
	BM_DONE,        /* completed successfully: its data landed */
	BM_MAYBE,       /* may or may not have landed (failed, or dropped by a reset) */
	BM_NOTHING,     /* certainly did not land (a failed snapshot write) */
};

struct bm_write {
	uint32_t gen;            /* what it stamps; BM_ZERO_GEN for zeroes */
	uint64_t first, nsec;    /* sectors, clamped to the disk */
	uint64_t t_submit, t_done;
	enum bm_state state;
};

struct bm {
	uint64_t nsec;           /* sectors in the disk */
	uint32_t next_gen;
	unsigned nw;
	struct bm_write w[BM_MAX_WRITES];
};

void bm_reset(struct bm *m, uint64_t nsec);
/* The content a sector holds after write @gen (0: the base image). */
void bm_fill_sector(uint8_t *p, uint32_t gen, uint64_t sector);
/* Which generation @p holds for @sector; -1 when no generation ever
 * wrote these bytes there. */
int64_t bm_sector_gen(const uint8_t *p, uint64_t sector);

/* Records a write of sectors [@first, @first + @nsec) (clipped to the
 * disk) issued at @t; returns its index, or -1 when the table is full. */
int bm_add(struct bm *m, uint32_t gen, uint64_t first, uint64_t nsec, uint64_t t);
void bm_finish(struct bm *m, int idx, enum bm_state state, uint64_t t);
/* May a read of @sector issued at @t_submit and completed at @t_done
 * return generation @gen? */
bool bm_allowed(const struct bm *m, uint64_t sector, uint32_t gen, uint64_t t_submit,
		uint64_t t_done);

#endif
