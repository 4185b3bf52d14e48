/* fuzz_blk's seed corpus: a read-write round trip, the two ways the
 * snapshot overlay went wrong (a read while a whole-block write waits; a
 * second write's copy-up after the first one ran), discard and reset on a
 * snapshot, a write to a read-only disk. The input format is the one
 * LLVMFuzzerTestOneInput reads (fuzz_blk.c). */
#include "fuzz_common.h"

static void seed_req(struct fw *w, uint8_t type_sel, uint8_t shape, uint8_t sector,
		     const uint8_t *lens, unsigned n)
{
	fw_u8(w, 0);
	fw_u8(w, type_sel);
	fw_u8(w, shape | (uint8_t)n);
	fw_u8(w, sector);
	for (unsigned i = 0; i < n; i++) {
		fw_u8(w, lens[i]);
		for (unsigned k = 0; k < 16; k++)
			fw_u32(w, 0);  /* 64 bytes of content: a zero segment list */
	}
}

void fuzz_write_seeds(const char *dir)
{
	static const uint8_t one[] = { 1 }, two[] = { 2, 8 }, eight[] = { 8 };
	struct fw w = { .n = 0 };

	fw_u8(&w, 0);                           /* read-write, synchronous */
	fw_u64(&w, ~0ull);                      /* every feature offered */
	fw_u8(&w, 4);                           /* 16 entries */
	seed_req(&w, 1, 0, 3, two, 2);          /* write sectors 3.. */
	seed_req(&w, 0, 0, 3, two, 2);          /* read them back */
	seed_req(&w, 3, 0, 0, one, 1);          /* GET_ID */
	seed_req(&w, 2, 0, 0, NULL, 0);         /* FLUSH */
	fw_u8(&w, 2);                           /* kick */
	fw_u8(&w, 7);                           /* loop */
	fw_u8(&w, 6);                           /* used */
	fuzz_seed(dir, "rw", w.buf, w.n);

	/* Snapshot, manual engine: a whole-block write into a block not in
	 * the overlay yet, and a read of that block that runs while the
	 * write has not: the read must get the base. */
	w.n = 0;
	fw_u8(&w, 5);                           /* snapshot, manual */
	fw_u64(&w, ~0ull);
	fw_u8(&w, 4);
	seed_req(&w, 1, 0, 8, eight, 1);        /* write sectors 8..15 (block 1) */
	fw_u8(&w, 2);
	seed_req(&w, 0, 0, 8, eight, 1);        /* read them */
	fw_u8(&w, 2);
	fw_u8(&w, 0x12); fw_u8(&w, 1);          /* run the read, hand it back */
	fw_u8(&w, 7);
	fw_u8(&w, 6);
	fw_u8(&w, 0x12); fw_u8(&w, 0);          /* then the write */
	fw_u8(&w, 7);
	fw_u8(&w, 6);
	fuzz_seed(dir, "snapshot_read_during_write", w.buf, w.n);

	/* Snapshot, manual engine: two writes into one block not in the
	 * overlay, the second started after the first ran: its copy-up must
	 * not land on the first one's data. */
	w.n = 0;
	fw_u8(&w, 5);
	fw_u64(&w, ~0ull);
	fw_u8(&w, 4);
	seed_req(&w, 1, 0, 9, one, 1);          /* write sector 9 */
	fw_u8(&w, 2);
	fw_u8(&w, 8); fw_u8(&w, 0);             /* run it, keep it */
	seed_req(&w, 1, 0, 12, one, 1);         /* write sector 12 */
	fw_u8(&w, 2);
	for (int i = 0; i < 3; i++) {
		fw_u8(&w, 0x12); fw_u8(&w, 0);  /* hand back / run what is held */
		fw_u8(&w, 7);
	}
	fw_u8(&w, 6);
	seed_req(&w, 0, 0, 8, eight, 1);        /* read the block */
	fw_u8(&w, 2);
	fw_u8(&w, 0x12); fw_u8(&w, 0);
	fw_u8(&w, 7);
	fw_u8(&w, 6);
	fuzz_seed(dir, "snapshot_copy_up_order", w.buf, w.n);

	w.n = 0;
	fw_u8(&w, 2);                           /* snapshot, synchronous */
	fw_u64(&w, ~0ull);
	fw_u8(&w, 8);
	seed_req(&w, 4, 0, 0, one, 1);          /* DISCARD */
	seed_req(&w, 5, 0x40, 0, one, 1);       /* WRITE_ZEROES, split header */
	fw_u8(&w, 2);
	fw_u8(&w, 5);                           /* reset */
	seed_req(&w, 0, 0, 0, one, 1);
	fw_u8(&w, 2);
	fw_u8(&w, 4); fw_u8(&w, 0);             /* config read */
	fuzz_seed(dir, "snapshot_discard", w.buf, w.n);

	w.n = 0;
	fw_u8(&w, 1);                           /* read-only */
	fw_u64(&w, 0);
	fw_u8(&w, 0);
	seed_req(&w, 1, 0, 0, one, 1);
	fw_u8(&w, 2);
	fuzz_seed(dir, "readonly", w.buf, w.n);
}
