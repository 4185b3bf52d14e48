/* The integrity model shared by virtio_block_model (Linux AIO) and
 * virtio_block_order (the manual engine, any completion order): see
 * blk_model.h. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvmini/disk.h"
#include "blk_driver.h"
#include "blk_model.h"

#define SECTOR 512u
#define DISK_SECTORS 8192u            /* 4 MiB: 1024 overlay blocks */
#define WINDOW 256u                   /* a batch works in 128 KiB of it */
#define DISK_SIZE (DISK_SECTORS * SECTOR)
#define ZERO_GEN 0xffffffffu          /* a sector of zeroes */
#define MAX_OPS BDRV_QSIZE

static char dir[64], ovl_dir[64], disk[128];
static char small_mnt[128];           /* mounted by make_small_overlay_fs */

/* ---- sector contents: (generation, sector) stamped in every byte ---- */

static void fill_sector(uint8_t *p, uint32_t gen, uint64_t sector)
{
	if (gen == ZERO_GEN) {
		memset(p, 0, SECTOR);
		return;
	}
	memcpy(p, &gen, 4);
	memcpy(p + 4, &sector, 4);
	for (unsigned i = 8; i < SECTOR; i++)
		p[i] = (uint8_t)(gen * 131u + sector * 7u + i * 13u + (i >> 8) + 1);
}

/* Which generation @p holds for @sector, or -1 for bytes that no
 * generation ever wrote there. */
static int64_t sector_gen(const uint8_t *p, uint64_t sector)
{
	uint8_t want[SECTOR];
	uint32_t gen, s;

	static const uint8_t zero[SECTOR];

	if (memcmp(p, zero, SECTOR) == 0)
		return ZERO_GEN;
	memcpy(&gen, p, 4);
	memcpy(&s, p + 4, 4);
	if (s != (uint32_t)sector)
		return -1;
	fill_sector(want, gen, sector);
	return memcmp(p, want, SECTOR) ? -1 : (int64_t)gen;
}

/* ---- random numbers (fixed seeds: a failure replays) ---- */

static uint64_t rng;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return n ? (uint32_t)(rng % n) : 0;
}

/* ---- fixture ---- */

void blk_model_setup(void)
{
	uint8_t *img = malloc(DISK_SIZE);
	int fd;

	ck_assert_ptr_nonnull(img);
	snprintf(dir, sizeof(dir), "/tmp/kvmini-blkmodel-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	/* Overlays on tmpfs when there is one: no reflink there, so the
	 * overlay is the sparse one with a block map. */
	snprintf(ovl_dir, sizeof(ovl_dir), "/dev/shm/kvmini-blkmodel-XXXXXX");
	if (!mkdtemp(ovl_dir))
		snprintf(ovl_dir, sizeof(ovl_dir), "%s", dir);
	setenv("TMPDIR", ovl_dir, 1);
	snprintf(disk, sizeof(disk), "%s/disk.img", dir);
	for (uint64_t s = 0; s < DISK_SECTORS; s++)
		fill_sector(img + s * SECTOR, 0, s);
	fd = open(disk, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, img, DISK_SIZE), DISK_SIZE);
	close(fd);
	free(img);
}

void blk_model_teardown(void)
{
	char cmd[160];

	if (small_mnt[0])
		ck_assert_int_eq(umount(small_mnt), 0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s %s", dir, ovl_dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* ---- the model ---- */

struct op {
	uint32_t type;
	uint64_t sector;
	unsigned nsec;
	uint32_t gen;           /* writes: what they stamp */
	bool done;
	uint8_t status;
	unsigned nr_segs;
	struct bdrv_seg segs[BDRV_SEG_MAX];
};

struct model {
	struct bdrv b;
	uint32_t cur[DISK_SECTORS];     /* the generation each sector holds at rest */
	uint32_t pending[DISK_SECTORS]; /* the batch's write on it, 0: none */
	uint32_t next_gen;
	uint64_t window;                /* first sector of the batch's window */
	bool snapshot;
	bool zeroes;                    /* WRITE_ZEROES offered */
	bool reads_only;                /* batches of reads (and flushes) only */
	bool keep_window;
	bool manual;                    /* DISK_ENGINE_MANUAL: the test runs the I/O */
	unsigned reads_checked, sectors_checked, writes_failed;
	struct op ops[MAX_OPS];
};

static void model_open(struct model *m, bool snapshot, bool manual)
{
	struct virtio_blk_cfg cfg = { .path = disk, .snapshot = snapshot,
				      .engine = manual ? DISK_ENGINE_MANUAL : DISK_ENGINE_AUTO };
	struct kv_err e = { 0 };

	memset(m, 0, sizeof(*m));
	m->manual = manual;
	ck_assert_msg(bdrv_open(&m->b, &cfg, BDRV_QSIZE, rnd(2), &e) == 0, "%s", e.msg);
	m->snapshot = snapshot;
	m->zeroes = m->b.dev.features & (1ull << VIRTIO_BLK_F_WRITE_ZEROES);
	m->next_gen = 1;
}

/* Splits @len bytes into 1..3 segments somewhere in the head's data
 * area: mostly 4 KiB-aligned (the O_DIRECT path), sometimes not. */
static unsigned make_segs(struct bdrv_seg *segs, uint32_t len)
{
	unsigned n = 1 + rnd(3);
	uint32_t at = rnd(4) ? 0 : 1 + rnd(511), left = len;

	for (unsigned i = 0; i < n; i++) {
		uint32_t take = i + 1 == n ? left : rnd(2) ? (rnd(left / SECTOR + 1) * SECTOR)
							   : rnd(left + 1);

		segs[i] = (struct bdrv_seg){ at, take };
		at += take + (rnd(3) ? 0 : 64);
		at = rnd(2) ? (at + 4095) & ~4095u : at;
		left -= take;
	}
	return n;
}

/* Copies between the op's contiguous bytes @flat and the head's
 * segments. */
static void scatter(struct model *m, uint16_t head, const struct bdrv_seg *segs, unsigned n,
		    uint8_t *flat, bool to_segs)
{
	uint64_t pos = 0;

	for (unsigned i = 0; i < n; i++) {
		uint8_t *p = bdrv_data(&m->b, head) + segs[i].off;

		if (to_segs)
			memcpy(p, flat + pos, segs[i].len);
		else
			memcpy(flat + pos, p, segs[i].len);
		pos += segs[i].len;
	}
}

static uint8_t flat[BDRV_DATA_MAX];

static void fill_write(struct model *m, uint16_t head, const struct op *op,
		       const struct bdrv_seg *segs, unsigned n)
{
	for (unsigned s = 0; s < op->nsec; s++)
		fill_sector(flat + s * SECTOR, op->gen, op->sector + s);
	scatter(m, head, segs, n, flat, true);
}

static bool claim(struct model *m, uint64_t sector, unsigned nsec, uint32_t gen)
{
	for (unsigned i = 0; i < nsec; i++)
		if (m->pending[sector + i])
			return false;
	for (unsigned i = 0; i < nsec; i++)
		m->pending[sector + i] = gen;
	return true;
}

/* Plans one random request for @head and fills its buffers. */
static void plan_random(struct model *m, uint16_t head)
{
	struct op *op = &m->ops[head];
	struct bdrv_seg *segs = op->segs;
	uint32_t pick = rnd(100);
	unsigned n = 0;

	memset(op, 0, sizeof(*op));
	op->nsec = 1 + rnd(rnd(4) ? 16 : 40);
	op->sector = m->window + rnd(WINDOW - op->nsec + 1);
	if (rnd(3) == 0) /* whole overlay blocks */
		op->sector &= ~7ull;
	if (m->reads_only)
		op->type = pick < 95 ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_FLUSH;
	else if (pick < 45)
		op->type = VIRTIO_BLK_T_OUT;
	else if (pick < 93 || !m->zeroes)
		op->type = pick < 96 ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_FLUSH;
	else
		op->type = VIRTIO_BLK_T_WRITE_ZEROES;
	if (op->type == VIRTIO_BLK_T_OUT || op->type == VIRTIO_BLK_T_WRITE_ZEROES) {
		/* One write per sector per batch: what a sector holds after two
		 * concurrent writes to it is either's, which the model does not
		 * track. Two writes to one overlay block are fine. */
		op->gen = op->type == VIRTIO_BLK_T_OUT ? m->next_gen++ : ZERO_GEN;
		if (!claim(m, op->sector, op->nsec, op->gen)) {
			op->type = VIRTIO_BLK_T_IN;
			op->gen = 0;
		}
	}
	switch (op->type) {
	case VIRTIO_BLK_T_OUT:
		n = make_segs(segs, op->nsec * SECTOR);
		fill_write(m, head, op, segs, n);
		break;
	case VIRTIO_BLK_T_IN:
		n = make_segs(segs, op->nsec * SECTOR);
		/* Poison what the device is to fill. */
		for (unsigned i = 0; i < n; i++)
			memset(bdrv_data(&m->b, head) + segs[i].off, 0xa5, segs[i].len);
		break;
	case VIRTIO_BLK_T_WRITE_ZEROES: {
		struct virtio_blk_discard_write_zeroes seg = {
			.sector = htole64(op->sector), .num_sectors = htole32(op->nsec),
			.flags = htole32(rnd(2) ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0),
		};

		memcpy(bdrv_data(&m->b, head), &seg, sizeof(seg));
		segs[0] = (struct bdrv_seg){ 0, sizeof(seg) };
		n = 1;
		break;
	}
	default: /* FLUSH */
		break;
	}
	op->nr_segs = n;
}

static void post_op(struct model *m, uint16_t head)
{
	const struct op *op = &m->ops[head];

	bdrv_post(&m->b, head, op->type, op->type == VIRTIO_BLK_T_IN || op->type == VIRTIO_BLK_T_OUT
		  ? op->sector : 0, op->segs, op->nr_segs);
}

/* A completed read: every sector holds its value at rest or the
 * batch's write to it. */
static void check_read(struct model *m, uint16_t head)
{
	const struct op *op = &m->ops[head];
	const struct bdrv_req *rq = &m->b.req[head];

	scatter(m, head, rq->segs, rq->nr_segs, flat, false);
	for (unsigned s = 0; s < op->nsec; s++) {
		uint64_t sector = op->sector + s;
		const uint8_t *sec = flat + s * SECTOR;
		int64_t got = sector_gen(sec, sector);

		ck_assert_msg(got >= 0, "%s disk: read of sector %llu returned bytes never written "
			      "there (first bytes %02x %02x %02x %02x %02x %02x %02x %02x)",
			      m->snapshot ? "snapshot" : "read-write", (unsigned long long)sector,
			      sec[0], sec[1], sec[2], sec[3], sec[4], sec[5], sec[6], sec[7]);
		ck_assert_msg((uint32_t)got == m->cur[sector] ||
			      (m->pending[sector] && (uint32_t)got == m->pending[sector]),
			      "%s disk: sector %llu read generation %lld; it holds %u at rest%s%u",
			      m->snapshot ? "snapshot" : "read-write", (unsigned long long)sector,
			      (long long)got, m->cur[sector],
			      m->pending[sector] ? ", a write in flight brings " : "",
			      m->pending[sector]);
		m->sectors_checked++;
	}
	m->reads_checked++;
}

/* Checks the completion of @head. */
static void check_done(struct model *m, uint16_t head, uint32_t len, uint8_t st,
		       bool writes_may_fail)
{
	struct op *op = &m->ops[head];

	ck_assert(!op->done);
	op->done = true;
	op->status = st;
	if (op->type == VIRTIO_BLK_T_IN) {
		ck_assert_msg(st == VIRTIO_BLK_S_OK, "read of %u sectors at %llu: status %u",
			      op->nsec, (unsigned long long)op->sector, st);
		ck_assert_uint_eq(len, op->nsec * SECTOR + 1);
		check_read(m, head);
		return;
	}
	ck_assert_uint_eq(len, 1);
	if (st != VIRTIO_BLK_S_OK) {
		ck_assert_msg(writes_may_fail, "request type %u at %llu failed (status %u)",
			      op->type, (unsigned long long)op->sector, st);
		m->writes_failed++;
	}
}

/* Manual engine: runs @n of the held I/Os, a random one each time,
 * handing some back (and letting the loop deliver them) at once. */
static void run_some(struct model *m, unsigned n)
{
	struct disk_engine *eng = disk_test_engine(virtio_blk_disk(&m->b.dev));

	for (unsigned i = 0; i < n; i++) {
		pthread_mutex_lock(&m->b.dev.lock);
		unsigned held = disk_engine_held(eng);

		if (held)
			ck_assert_int_eq(disk_engine_run_held(eng, rnd(held), rnd(2)), 0);
		pthread_mutex_unlock(&m->b.dev.lock);
		ck_assert_int_ge(evloop_run_once(m->b.loop, 0), 0);
	}
}

/* Waits for one completion and checks it. With the manual engine, runs
 * held I/O (a random one each time, handed back at once or later) until
 * something completes. */
static void complete_one(struct model *m, bool writes_may_fail)
{
	struct disk_engine *eng = disk_test_engine(virtio_blk_disk(&m->b.dev));
	uint16_t head;
	uint32_t len;
	uint8_t st;

	while (m->manual && !bdrv_next_used(&m->b, 0, &head, &len, &st)) {
		unsigned held;

		pthread_mutex_lock(&m->b.dev.lock);
		held = disk_engine_held(eng);
		if (held)
			ck_assert_int_eq(disk_engine_run_held(eng, rnd(held), rnd(4) != 0), 0);
		pthread_mutex_unlock(&m->b.dev.lock);
		ck_assert_msg(held, "%u requests in flight, no I/O held, none completes",
			      m->b.busy);
	}
	if (!m->manual)
		ck_assert_msg(bdrv_next_used(&m->b, 20000, &head, &len, &st),
			      "no completion in 20 s (%u requests in flight)", m->b.busy);
	check_done(m, head, len, st, writes_may_fail);
}

/* After a batch: writes that succeeded are the sectors' new values;
 * a failed one leaves the old value (the snapshot promise; a failed
 * write on a read-write disk is not run by these tests). */
static void settle(struct model *m, unsigned nr_heads)
{
	for (unsigned h = 0; h < nr_heads; h++) {
		const struct op *op = &m->ops[h];

		if (op->done && op->gen && op->status == VIRTIO_BLK_S_OK)
			for (unsigned s = 0; s < op->nsec; s++)
				m->cur[op->sector + s] = op->gen;
	}
	memset(m->pending, 0, sizeof(m->pending));
}

/* One batch of @k requests, all in flight together, posted in a random
 * order and kicked in bursts. */
static void run_batch(struct model *m, unsigned k, bool writes_may_fail)
{
	uint16_t order[BDRV_QSIZE];
	unsigned posted = 0;

	ck_assert_uint_le(k, BDRV_QSIZE);
	/* Requests overlap a lot inside the window, and a window often
	 * lands on blocks not yet in the overlay. */
	if (!m->keep_window)
		m->window = rnd(DISK_SECTORS / WINDOW) * WINDOW;
	for (unsigned h = 0; h < k; h++) {
		plan_random(m, (uint16_t)h);
		order[h] = (uint16_t)h;
	}
	for (unsigned h = k; h > 1; h--) {
		unsigned j = rnd(h);
		uint16_t t = order[h - 1];

		order[h - 1] = order[j];
		order[j] = t;
	}
	for (unsigned h = 0; h < k; h++) {
		post_op(m, order[h]);
		posted++;
		if (rnd(8) == 0) {
			bdrv_kick(&m->b);
			if (m->manual)
				run_some(m, rnd(6));
		}
	}
	bdrv_kick(&m->b);
	for (unsigned i = 0; i < posted; i++)
		complete_one(m, writes_may_fail);
	ck_assert_uint_eq(m->b.busy, 0);
	settle(m, k);
}

/* Reads every sector back, in reads that cross blocks in both places. */
static void read_all(struct model *m)
{
	for (uint64_t s = 0; s < DISK_SECTORS;) {
		struct op *op = &m->ops[0];
		struct bdrv_seg seg;
		unsigned n = 1 + rnd(40);

		if (s + n > DISK_SECTORS)
			n = (unsigned)(DISK_SECTORS - s);
		memset(op, 0, sizeof(*op));
		op->type = VIRTIO_BLK_T_IN;
		op->sector = s;
		op->nsec = n;
		seg = (struct bdrv_seg){ 0, n * SECTOR };
		memset(bdrv_data(&m->b, 0), 0x5a, n * SECTOR);
		bdrv_post(&m->b, 0, VIRTIO_BLK_T_IN, s, &seg, 1);
		bdrv_kick(&m->b);
		complete_one(m, false);
		s += n;
	}
}

void blk_model_run(bool snapshot, bool manual, uint64_t seed, unsigned rounds)
{
	static struct model m;

	rng = seed;
	model_open(&m, snapshot, manual);
	for (unsigned r = 0; r < rounds; r++)
		run_batch(&m, rnd(2) ? 192 + rnd(65) : 1 + rnd(rnd(3) ? BDRV_QSIZE : 16), false);
	read_all(&m);
	ck_assert(!m.b.dev.broken);
	ck_assert_uint_gt(m.reads_checked, rounds);
	bdrv_close(&m.b);
	/* The image holds exactly the model (read-write) or stayed as it was
	 * (snapshot). */
	int fd = open(disk, O_RDONLY);
	uint8_t *img = malloc(DISK_SIZE);

	ck_assert_int_ge(fd, 0);
	ck_assert_ptr_nonnull(img);
	ck_assert_int_eq(read(fd, img, DISK_SIZE), DISK_SIZE);
	for (uint64_t s = 0; s < DISK_SECTORS; s++)
		ck_assert_int_eq(sector_gen(img + s * SECTOR, s), snapshot ? 0 : (int64_t)m.cur[s]);
	close(fd);
	free(img);
}

/* ---- an overlay that runs out of space ---- */

/* Puts the overlay on a 16 KiB tmpfs of our own (a private mount
 * namespace, as root); where mounting is not allowed (no CAP_SYS_ADMIN),
 * the caller caps file writes at 16 KiB once the overlay exists
 * (RLIMIT_FSIZE: writes beyond fail with EFBIG). False in that case. */
static bool make_small_overlay_fs(void)
{
	char mnt[128];

	snprintf(mnt, sizeof(mnt), "%s/small", dir);
	ck_assert_int_eq(mkdir(mnt, 0700), 0);
	if (unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
	    mount("tmpfs", mnt, "tmpfs", 0, "size=16k") == 0) {
		snprintf(small_mnt, sizeof(small_mnt), "%s", mnt);
		setenv("TMPDIR", small_mnt, 1);
		return true;
	}
	setenv("TMPDIR", dir, 1);
	return false;
}

void blk_model_overlay_full(bool manual, uint64_t seed)
{
	static struct model m;
	bool tmpfs = make_small_overlay_fs();
	const char *how = tmpfs ? "a 16 KiB tmpfs (ENOSPC)" : "RLIMIT_FSIZE of 16 KiB (EFBIG)";

	rng = seed;
	model_open(&m, true, manual);
	if (!tmpfs) {
		struct rlimit rl = { 16384, 16384 };

		signal(SIGXFSZ, SIG_IGN);
		ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	}
	m.keep_window = true;
	/* Writes over the first 32 blocks, all in flight at once: the first
	 * ones fit in the overlay, the rest fail. Partial blocks too. */
	for (unsigned round = 0; round < 3; round++) {
		for (unsigned h = 0; h < WINDOW / 8; h++) {
			struct op *op = &m.ops[h];
			struct bdrv_seg segs[BDRV_SEG_MAX];
			unsigned n;

			memset(op, 0, sizeof(*op));
			op->type = VIRTIO_BLK_T_OUT;
			op->gen = m.next_gen++;
			op->sector = h * 8 + (round == 1 ? 1 + rnd(6) : 0);
			op->nsec = round == 1 ? 1 : 8;
			ck_assert(claim(&m, op->sector, op->nsec, op->gen));
			n = make_segs(segs, op->nsec * SECTOR);
			fill_write(&m, (uint16_t)h, op, segs, n);
			bdrv_post(&m.b, (uint16_t)h, VIRTIO_BLK_T_OUT, op->sector, segs, n);
		}
		bdrv_kick(&m.b);
		for (unsigned i = 0; i < WINDOW / 8; i++)
			complete_one(&m, true);
		settle(&m, WINDOW / 8);
		/* Reads across written and failed blocks, many at once (a write
		 * to a block write-zeroes punched could fail halfway, which
		 * is a plain disk's failed write, not what this test is about). */
		m.reads_only = true;
		run_batch(&m, 64, true);
		m.reads_only = false;
		read_all(&m);
	}
	ck_assert_msg(m.writes_failed > 0, "the overlay on %s never filled up", how);
	ck_assert_msg(m.writes_failed < 3 * WINDOW / 8, "no write fit in the overlay on %s", how);
	ck_assert(!m.b.dev.broken);
	bdrv_close(&m.b);
}

