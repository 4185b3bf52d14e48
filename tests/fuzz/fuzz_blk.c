/* Fuzz target: virtio-blk (devices/virtio/block.c, block_parse.c) over
 * the disk layer (devices/disk/) on an in-memory image (a memfd opened
 * through /proc/self/fd), with the real virtio core and the real event
 * loop (evloop_run_once). Each input makes a read-write, read-only or
 * snapshot disk, with the synchronous engine or the manual one (the input
 * decides when each started I/O runs and when it comes back: any
 * completion order), negotiates features, and then posts requests shaped
 * like a driver's (header, data, status) whose type, sector, segment
 * sizes and directions it chooses, kicks, runs the loop, pokes the rings,
 * touches the config space and resets the device.
 *
 * Beyond survival, it checks (fuzz_blk_model.h): every sector a read
 * returns holds the last data written there, the data of a write that
 * could have landed meanwhile, or the base image's (never zeroes from an
 * overlay hole, never another sector's bytes); a snapshot's failed write
 * leaves the old data; a snapshot never writes its base; the used ring
 * names only heads in flight, with the right length; and, at the end,
 * the whole disk as read through the disk layer (and, read-write, the
 * image itself) agrees with the model. The oracle stands down for the
 * rest of an input once the input pokes the rings or its buffers wrap
 * over ones still in flight. */
#include <endian.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvmini/disk.h"
#include "kvmini/event_loop.h"
#include "kvmini/virtio_blk.h"
#include "fuzz_blk_model.h"
#include "fuzz_common.h"

#define DISK_SIZE (64 * 1024)
#define NSEC (DISK_SIZE / BM_SECTOR)
#define MAX_SEGS 8

static struct fr r;
static struct evloop *loop;
/* One image per device, [kind * 2 + manual]: each device flocks its own. */
static int disk_fd[6] = { -1, -1, -1, -1, -1, -1 };

/* One posted chain, by head. */
struct req {
	bool live;
	uint32_t type;
	uint64_t t_submit;
	unsigned nseg, ndesc;
	struct fr_seg seg[MAX_SEGS];
	int w[MAX_SEGS];            /* its writes in the model, -1: none */
	uint64_t sector;
};

/* Read-write and read-only devices live across inputs (a device costs
 * its request slots, a megabyte); each input starts with a reset and a
 * rewritten image. A snapshot device is made per input: its overlay
 * must start empty. [kind][manual] */
static struct virtio_dev devs[2][2];
static bool made[2][2];

static struct {
	struct virtio_dev *d;
	int kind;                   /* 0 read-write, 1 read-only, 2 snapshot */
	bool manual;
	bool oracle;
	uint64_t now;
	struct bm m;
	struct req req[VIRTQ_MAX_SIZE];
	bool desc_busy[VIRTQ_MAX_SIZE];
} st;

static uint8_t stream[3 * 65536 + 64];

void fuzz_init(void)
{
	struct kv_err e = { 0 };

	fr_init(&r);
	/* Snapshot overlays go to the tmpfs under /dev/shm when there is one. */
	if (access("/dev/shm", W_OK) == 0)
		setenv("TMPDIR", "/dev/shm", 1);
	if (evloop_create(&loop, &e)) {
		fprintf(stderr, "fuzz_blk: %s\n", e.msg);
		abort();
	}
	for (unsigned i = 0; i < 6; i++) {
		disk_fd[i] = memfd_create("fuzz-disk", MFD_CLOEXEC);
		if (disk_fd[i] < 0 || ftruncate(disk_fd[i], DISK_SIZE))
			abort();
	}
}

/* ---- the device ---- */

static int image_fd(int kind, bool manual)
{
	return disk_fd[kind * 2 + manual];
}

static void write_base(int kind, bool manual)
{
	static uint8_t img[DISK_SIZE];
	static bool filled;

	if (!filled)
		for (uint64_t s = 0; s < NSEC; s++)
			bm_fill_sector(img + s * BM_SECTOR, 0, s);
	filled = true;
	if (pwrite(image_fd(kind, manual), img, DISK_SIZE, 0) != DISK_SIZE)
		abort();
}

static void make_device(struct virtio_dev *dev, int kind, bool manual)
{
	struct virtio_blk_cfg cfg = { .readonly = kind == 1, .snapshot = kind == 2, .index = 0,
				      .engine = manual ? DISK_ENGINE_MANUAL : DISK_ENGINE_SYNC };
	struct kv_err e = { 0 };
	char path[64];

	write_base(kind, manual);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", image_fd(kind, manual));
	cfg.path = path;
	if (virtio_blk_create(&cfg, &r.gm, loop, dev, &e)) {
		fprintf(stderr, "fuzz_blk: %s\n", e.msg);
		abort();
	}
}

static void lock(void)
{
	pthread_mutex_lock(&st.d->lock);
}

static void unlock(void)
{
	pthread_mutex_unlock(&st.d->lock);
}

/* Every request in flight may or may not have landed: a reset (or the
 * end) forgets them. */
static void forget_live(void)
{
	st.now++;
	for (unsigned h = 0; h < VIRTQ_MAX_SIZE; h++) {
		struct req *q = &st.req[h];

		for (unsigned i = 0; q->live && i < MAX_SEGS; i++)
			bm_finish(&st.m, q->w[i], BM_MAYBE, st.now);
		q->live = false;
		st.desc_busy[h] = false;
	}
}

static void reset_and_attach(uint64_t features, uint16_t qsize)
{
	lock();
	virtio_dev_set_status(st.d, 0);
	unlock();
	forget_live();
	fr_reset(&r);
	fr_attach(&r, st.d, features, qsize);
}

/* ---- requests ---- */

static const uint32_t types[] = {
	VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_GET_ID,
	VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_WRITE_ZEROES,
};

/* The device-readable bytes after the header (OUT: data; DISCARD and
 * WRITE_ZEROES: segments), or the device-writable bytes before the
 * status (IN, GET_ID), copied between the chain's buffers and @stream.
 * Returns their count. */
static size_t chain_stream(const struct req *q, bool to_chain)
{
	bool readable = q->type != VIRTIO_BLK_T_IN && q->type != VIRTIO_BLK_T_GET_ID;
	uint64_t start = readable ? 16 : 0, end = 0, pos = 0;

	for (unsigned i = 0; i < q->nseg; i++)
		if (q->seg[i].write != readable)
			end += q->seg[i].len;
	if (!readable && end)
		end--; /* the status byte */
	if (end <= start)
		return 0;
	for (unsigned i = 0; i < q->nseg; i++) {
		const struct fr_seg *s = &q->seg[i];
		uint64_t lo, hi;

		if (s->write == readable)
			continue;
		lo = pos > start ? pos : start;
		hi = pos + s->len < end ? pos + s->len : end;
		if (lo < hi) {
			uint8_t *g = fr_host(&r, s->gpa + (lo - pos));

			if (to_chain)
				memcpy(g, stream + (lo - start), hi - lo);
			else
				memcpy(stream + (lo - start), g, hi - lo);
		}
		pos += s->len;
	}
	return end - start;
}

/* Head for a chain of @n descriptors (indirect: 1), all free; -1 if none. */
static int free_head(unsigned n, uint16_t qsize)
{
	for (unsigned h = 0; h < qsize; h++) {
		unsigned k = 0;

		while (k < n && !st.desc_busy[(h + k) % qsize])
			k++;
		if (k == n)
			return (int)h;
	}
	return -1;
}

/* The model's writes for OUT (stamped data) and zeroings. */
static void model_writes(struct req *q)
{
	for (unsigned i = 0; i < MAX_SEGS; i++)
		q->w[i] = -1;
	if (q->type == VIRTIO_BLK_T_OUT) {
		size_t len = chain_stream(q, false);
		uint32_t gen = st.m.next_gen++;

		for (size_t s = 0; s * BM_SECTOR < len; s++) {
			uint8_t sec[BM_SECTOR];

			bm_fill_sector(sec, gen, q->sector + s);
			memcpy(stream + s * BM_SECTOR, sec,
			       len - s * BM_SECTOR < BM_SECTOR ? len - s * BM_SECTOR : BM_SECTOR);
		}
		chain_stream(q, true);
		if (q->sector < NSEC)
			q->w[0] = bm_add(&st.m, gen, q->sector, len / BM_SECTOR, st.now);
	} else if (q->type == VIRTIO_BLK_T_DISCARD || q->type == VIRTIO_BLK_T_WRITE_ZEROES) {
		size_t len = chain_stream(q, false);

		for (unsigned i = 0; i < MAX_SEGS && (i + 1) * 16 <= len; i++) {
			uint64_t sector;
			uint32_t num;

			memcpy(&sector, stream + i * 16, 8);
			memcpy(&num, stream + i * 16 + 8, 4);
			sector = le64toh(sector);
			if (sector < NSEC)
				q->w[i] = bm_add(&st.m, BM_ZERO_GEN, sector, le32toh(num), st.now);
		}
	}
}

/* One request as a driver builds it, bent by the input. */
static void post_request(struct fz *f, bool indirect)
{
	struct req q = { .live = true };
	uint8_t t = fz_u8(f), shape = fz_u8(f);
	bool dev_writes;
	unsigned nr_data = shape & 3;
	uint64_t hgpa, data_before = r.data_next;
	uint16_t qsize = r.q[0].size;
	struct virtio_blk_outhdr hdr;
	int head;

	q.type = t < 0xf0 ? types[t % 6] : fz_u32(f);
	q.sector = shape & 0x80 ? fz_u64(f) : fz_u8(f);
	dev_writes = q.type == VIRTIO_BLK_T_IN || q.type == VIRTIO_BLK_T_GET_ID;
	hdr = (struct virtio_blk_outhdr){ .type = htole32(q.type), .sector = htole64(q.sector) };
	/* The header, whole or split in two at a point the input picks. */
	hgpa = fr_alloc(&r, sizeof(hdr));
	memcpy(fr_host(&r, hgpa), &hdr, sizeof(hdr));
	if (shape & 0x40) {
		uint32_t cut = 1 + fz_u8(f) % 15;

		q.seg[q.nseg++] = (struct fr_seg){ hgpa, cut, false };
		q.seg[q.nseg++] = (struct fr_seg){ hgpa + cut, (uint32_t)sizeof(hdr) - cut, false };
	} else {
		q.seg[q.nseg++] = (struct fr_seg){ hgpa, sizeof(hdr), false };
	}
	for (unsigned i = 0; i < nr_data; i++) {
		uint8_t l = fz_u8(f);
		uint32_t len = l & 0x80 ? fz_u16(f) : (l % 9) * 512u;
		uint64_t gpa = fr_alloc(&r, len);

		/* Discard / write-zeroes segments come from the input. */
		fz_bytes(f, fr_host(&r, gpa), len < 64 ? len : 64);
		q.seg[q.nseg++] = (struct fr_seg){ gpa, len, shape & 0x20 ? !dev_writes : dev_writes };
	}
	if (!(shape & 0x10))   /* the status byte, unless the driver forgot it */
		q.seg[q.nseg++] = (struct fr_seg){ fr_alloc(&r, 1), shape & 0x08 ? 3 : 1, true };
	/* Buffers wrapped over ones in flight: their contents are no longer
	 * what the model thinks. */
	if (r.data_next < data_before)
		for (unsigned h = 0; h < VIRTQ_MAX_SIZE; h++)
			if (st.req[h].live)
				st.oracle = false;
	q.ndesc = indirect ? 1 : q.nseg;
	head = free_head(q.ndesc, qsize);
	if (qsize == 0 || head < 0)
		return; /* every descriptor in flight: a driver waits */
	q.t_submit = ++st.now;
	model_writes(&q);
	r.q[0].next_desc = (uint16_t)head;
	fr_post(&r, 0, q.seg, q.nseg, indirect);
	for (unsigned k = 0; k < q.ndesc; k++)
		st.desc_busy[(head + k) % qsize] = true;
	st.req[head] = q;
}

/* A completed read: every sector it returned against the model. */
static void check_read(struct req *q, uint32_t len)
{
	size_t n = chain_stream(q, false);

	FUZZ_CHECK(len == n + 1);
	for (uint64_t s = 0; s < n / BM_SECTOR; s++) {
		int64_t gen = bm_sector_gen(stream + s * BM_SECTOR, q->sector + s);

		FUZZ_CHECK(gen >= 0); /* bytes no write put in this sector */
		FUZZ_CHECK(bm_allowed(&st.m, q->sector + s, (uint32_t)gen, q->t_submit, st.now));
	}
}

/* The status: the last byte of the last writable buffer (empty ones
 * are no buffers). The device completed the chain, so there is one. */
static uint8_t status_of(const struct req *q)
{
	for (unsigned i = q->nseg; i-- > 0;)
		if (q->seg[i].write && q->seg[i].len)
			return *fr_host(&r, q->seg[i].gpa + q->seg[i].len - 1);
	FUZZ_CHECK(!"a completed chain without a writable byte");
	return 0;
}

static void take_used(void)
{
	uint32_t id, len;

	while (fr_used(&r, 0, &id, &len)) {
		struct req *q;

		st.now++;
		if (r.used_poked)
			st.oracle = false;
		/* Only heads in flight, each once. */
		if (id >= r.q[0].size || !st.req[id].live) {
			FUZZ_CHECK(!st.oracle);
			continue;
		}
		q = &st.req[id];
		if (st.oracle) {
			uint8_t status = status_of(q);

			FUZZ_CHECK(status <= VIRTIO_BLK_S_UNSUPP);
			if (q->type == VIRTIO_BLK_T_IN && status == VIRTIO_BLK_S_OK)
				check_read(q, len);
			else if (q->type != VIRTIO_BLK_T_GET_ID || status != VIRTIO_BLK_S_OK)
				FUZZ_CHECK(len == 1);
			for (unsigned i = 0; i < MAX_SEGS; i++) {
				/* A failed snapshot write left nothing; a failed
				 * read-write write or zeroing may have left some. */
				enum bm_state s = status == VIRTIO_BLK_S_OK ? BM_DONE
						  : st.kind == 2 && q->type == VIRTIO_BLK_T_OUT
						  ? BM_NOTHING : BM_MAYBE;

				bm_finish(&st.m, q->w[i], s, st.now);
			}
		}
		q->live = false;
		for (unsigned k = 0; k < q->ndesc; k++)
			st.desc_busy[(id + k) % r.q[0].size] = false;
	}
}

/* Manual engine: runs (and maybe hands back) held I/O number @k. */
static void run_held(unsigned k, bool hand_back)
{
	struct disk_engine *eng = disk_test_engine(virtio_blk_disk(st.d));

	lock();
	if (disk_engine_held(eng))
		(void)disk_engine_run_held(eng, k % disk_engine_held(eng), hand_back);
	unlock();
}

/* Runs everything still held and delivers it. */
static void settle(void)
{
	struct disk_engine *eng = disk_test_engine(virtio_blk_disk(st.d));

	for (int i = 0; i < 64; i++) {
		while (st.manual && disk_engine_held(eng))
			run_held(0, true);
		if (evloop_run_once(loop, 0) <= 0 && !(st.manual && disk_engine_held(eng)))
			break;
	}
	take_used();
}

/* The whole disk, read through the disk layer after a reset, and the
 * image itself, against the model. */
static void final_check(void)
{
	static uint8_t buf[DISK_SIZE];
	struct iovec iov = { buf, DISK_SIZE };
	struct disk_req rq = { .op = DISK_READ, .iov = &iov, .niov = 1 };
	struct disk *dk = virtio_blk_disk(st.d);

	lock();
	virtio_dev_set_status(st.d, 0); /* drains: the disk is idle */
	forget_live();
	FUZZ_CHECK(disk_submit(dk, &rq) == 0);
	while (st.manual && disk_engine_held(disk_test_engine(dk)))
		(void)disk_engine_run_held(disk_test_engine(dk), 0, true);
	FUZZ_CHECK(disk_reap(dk, NULL, NULL) == 1 && rq.result == 0);
	unlock();
	st.now++;
	for (uint64_t s = 0; s < NSEC; s++) {
		int64_t gen = bm_sector_gen(buf + s * BM_SECTOR, s);

		FUZZ_CHECK(gen >= 0);
		FUZZ_CHECK(bm_allowed(&st.m, s, (uint32_t)gen, st.now, st.now + 1));
	}
	/* What the image holds: the same (read-write), or untouched. */
	if (pread(image_fd(st.kind, st.manual), buf, DISK_SIZE, 0) != DISK_SIZE)
		abort();
	for (uint64_t s = 0; s < NSEC; s++) {
		int64_t gen = bm_sector_gen(buf + s * BM_SECTOR, s);

		if (st.kind == 0)
			FUZZ_CHECK(gen >= 0 && bm_allowed(&st.m, s, (uint32_t)gen, st.now, st.now + 1));
		else
			FUZZ_CHECK(gen == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f = { data, size };
	uint8_t sel = fz_u8(&f);
	uint64_t features = fz_u64(&f);
	uint16_t qsize = (uint16_t)(1u << (fz_u8(&f) % 9));

	memset(st.req, 0, sizeof(st.req));
	memset(st.desc_busy, 0, sizeof(st.desc_busy));
	st.kind = sel % 3;
	st.manual = (sel / 3) % 2;
	st.oracle = true;
	st.now = 0;
	bm_reset(&st.m, NSEC);
	if (st.kind == 2) {
		static struct virtio_dev snap;

		st.d = &snap;
		make_device(st.d, st.kind, st.manual);
	} else {
		st.d = &devs[st.kind][st.manual];
		if (!made[st.kind][st.manual])
			make_device(st.d, st.kind, st.manual);
		made[st.kind][st.manual] = true;
		lock();
		virtio_dev_set_status(st.d, 0);
		unlock();
		write_base(st.kind, st.manual);
	}
	fr_reset(&r);
	fr_attach(&r, st.d, features, qsize);
	for (unsigned steps = 0; !fz_empty(&f) && steps < 256; steps++) {
		uint8_t op = fz_u8(&f);

		switch (op % 10) {
		case 0:
		case 1:
			post_request(&f, op & 0x10);
			break;
		case 2:
			st.now++;
			lock();
			st.d->ops->queue_notify(st.d, 0);
			unlock();
			break;
		case 3: {
			unsigned ring = fz_u8(&f) % 3;
			uint16_t off = fz_u16(&f);

			fr_poke(&r, 0, ring, off, fz_u64(&f), 1 + (op >> 4) % 8);
			st.oracle = false;
			break;
		}
		case 4: {
			uint8_t buf[8] = { 0 };
			unsigned len = 1u << (op >> 4 & 3);
			uint32_t off = fz_u8(&f) % st.d->config_len;

			if (off + len > st.d->config_len)
				break;
			lock();
			if (op & 0x80)
				st.d->ops->config_write(st.d, off, buf, len);
			else
				st.d->ops->config_read(st.d, off, buf, len);
			unlock();
			break;
		}
		case 5:
			reset_and_attach(features, qsize);
			break;
		case 6:
			take_used();
			break;
		case 7:
			(void)evloop_run_once(loop, 0);
			break;
		default:
			if (st.manual)
				run_held(fz_u8(&f), op & 0x10);
			break;
		}
	}
	settle();
	if (st.oracle)
		final_check();
	if (st.kind == 2)
		virtio_dev_fini(st.d);
	return 0;
}
