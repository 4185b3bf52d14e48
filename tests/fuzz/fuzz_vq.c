/* Fuzz target: the split ring and descriptor-chain walker
 * (devices/virtio/queue.c) on its own. The input picks the queue size
 * and features, then runs a list of operations: post valid chains
 * (direct or indirect), poke bytes of the rings, pop, push, ask about
 * interrupts, toggle kick suppression, re-enable the queue. After every
 * vq_pop the promises of virtio.h are checked: each iov inside guest
 * RAM, the count within the capacity, the totals exact. */
#include <errno.h>
#include <string.h>

#include "fuzz_common.h"

static struct fr r;

void fuzz_init(void)
{
	fr_init(&r);
}

static void check_chain(const struct virtq *vq, const struct vq_chain *c,
			const struct iovec *iov, unsigned cap)
{
	size_t out = 0, in = 0;

	FUZZ_CHECK(c->iov == iov);
	FUZZ_CHECK(c->head < vq->size);
	FUZZ_CHECK(c->nr_out + c->nr_in <= cap);
	for (unsigned i = 0; i < c->nr_out + c->nr_in; i++) {
		const uint8_t *b = iov[i].iov_base;

		FUZZ_CHECK(iov[i].iov_len > 0);
		FUZZ_CHECK(b >= r.ram && b + iov[i].iov_len <= r.ram + FR_RAM_SIZE);
		if (i < c->nr_out)
			out += iov[i].iov_len;
		else
			in += iov[i].iov_len;
	}
	FUZZ_CHECK(out == c->out_len && in == c->in_len);
	FUZZ_CHECK(out <= UINT32_MAX && in <= UINT32_MAX);
}

/* Enables the queue at the driver's layout with @size; the input may
 * misplace one ring. */
static void setup_queue(struct virtq *vq, struct fz *f, bool event_idx, bool indirect)
{
	uint16_t size = (uint16_t)(1u << (fz_u8(f) % 9));
	uint8_t bend = fz_u8(f);

	vq_reset(vq, &r.gm, VIRTQ_MAX_SIZE);
	fr_layout(&r, 0, size);
	vq->size = size;
	vq->desc_gpa = r.q[0].desc;
	vq->avail_gpa = r.q[0].avail;
	vq->used_gpa = r.q[0].used;
	switch (bend % 16) {
	case 1: vq->size = fz_u16(f); break;
	case 2: vq->desc_gpa = fz_u64(f); break;
	case 3: vq->avail_gpa = fz_u64(f); break;
	case 4: vq->used_gpa = fz_u64(f); break;
	default: break;
	}
	if (vq_enable(vq, event_idx, indirect) == 0)
		FUZZ_CHECK(vq->enabled && vq->error == NULL);
	else
		FUZZ_CHECK(!vq->enabled && vq->error != NULL);
}

static void post(struct fz *f)
{
	struct fr_seg s[8];
	unsigned n = 1 + fz_u8(f) % 8;
	uint8_t how = fz_u8(f);

	for (unsigned i = 0; i < n; i++) {
		uint16_t len = fz_u16(f);
		uint8_t fl = fz_u8(f);

		s[i].len = (fl & 0x80) ? len * 64u : len % 4096;
		s[i].write = fl & 1;
		s[i].gpa = (fl & 0x70) == 0x70 ? fz_u64(f) : fr_alloc(&r, s[i].len);
	}
	fr_post(&r, 0, s, n, how & 1);
}

static uint16_t pending[VIRTQ_MAX_SIZE];
static unsigned nr_pending;
static struct iovec iov[VIRTQ_MAX_SIZE];
static struct iovec last_iov[VIRTQ_MAX_SIZE]; /* a later failed pop reuses iov[] */
static struct vq_chain last;
static bool have_last;

static void pop(struct virtq *vq, struct fz *f)
{
	uint8_t c = fz_u8(f);
	unsigned cap = c & 0x80 ? VIRTQ_MAX_SIZE : 1 + c % 16;

	for (unsigned k = 0; k < 1 + (c >> 4 & 7); k++) {
		struct vq_chain ch;
		int ret = vq_pop(vq, &ch, iov, cap);

		FUZZ_CHECK(ret >= -EINVAL && ret <= 1);
		if (ret < 0) {
			FUZZ_CHECK(vq->error != NULL);
			return;
		}
		if (ret == 0)
			return;
		check_chain(vq, &ch, iov, cap);
		last = ch;
		memcpy(last_iov, iov, (ch.nr_out + ch.nr_in) * sizeof(iov[0]));
		last.iov = last_iov;
		have_last = true;
		if (nr_pending < VIRTQ_MAX_SIZE)
			pending[nr_pending++] = ch.head;
	}
}

static void copy_chain(struct fz *f)
{
	uint8_t buf[512];
	size_t off = fz_u16(f), len = fz_u16(f) % sizeof(buf), n;

	if (!have_last)
		return;
	n = vq_chain_read(&last, off, buf, len);
	FUZZ_CHECK(n <= len && (off >= last.out_len || n == (len < last.out_len - off ? len : last.out_len - off)));
	n = vq_chain_write(&last, off, buf, len);
	FUZZ_CHECK(n <= len && (off >= last.in_len || n == (len < last.in_len - off ? len : last.in_len - off)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f = { data, size };
	uint8_t feat = fz_u8(&f);
	bool event_idx = feat & 1, indirect = feat & 2;
	struct virtq vq;

	fr_reset(&r);
	nr_pending = 0;
	have_last = false;
	setup_queue(&vq, &f, event_idx, indirect);
	for (unsigned steps = 0; !fz_empty(&f) && steps < 512; steps++) {
		uint8_t op = fz_u8(&f);

		switch (op % 10) {
		case 0: post(&f); break;
		case 1: {
			unsigned which = fz_u8(&f) % 3;
			uint16_t off = fz_u16(&f);
			uint64_t v = fz_u64(&f);

			fr_poke(&r, 0, which, off, v, 1 + op / 10 % 8);
			break;
		}
		case 2: pop(&vq, &f); break;
		case 3: {
			uint32_t written = fz_u32(&f);
			uint16_t head = nr_pending ? pending[--nr_pending] : fz_u16(&f);
			int ret = vq_push(&vq, head, written);

			FUZZ_CHECK(ret == 0 || (ret == -EINVAL && vq.error));
			break;
		}
		case 4: vq_should_interrupt(&vq); break;
		case 5: vq_disable_kicks(&vq); break;
		case 6: {
			bool more = vq_enable_kicks(&vq);

			FUZZ_CHECK(more == vq_has_avail(&vq));
			break;
		}
		case 7: setup_queue(&vq, &f, event_idx, indirect); have_last = false; break;
		case 8: copy_chain(&f); break;
		case 9: vq_has_avail(&vq); break;
		}
	}
	return 0;
}

/* Seeds: a few valid sessions (direct and indirect chains, EVENT_IDX on
 * and off) the fuzzer then bends. */
static void seed_session(struct fw *w, uint8_t feat, uint8_t size_exp, bool indirect)
{
	fw_u8(w, feat);
	fw_u8(w, size_exp);
	fw_u8(w, 0);           /* no bend */
	for (unsigned k = 0; k < 3; k++) {
		fw_u8(w, 0);   /* post */
		fw_u8(w, 2);   /* 3 segments */
		fw_u8(w, indirect);
		fw_u16(w, 16); fw_u8(w, 0);
		fw_u16(w, 512); fw_u8(w, 1);
		fw_u16(w, 1); fw_u8(w, 1);
	}
	fw_u8(w, 2); fw_u8(w, 0x20);                  /* pop 3, cap 1 */
	fw_u8(w, 2); fw_u8(w, 0xa0);                  /* pop 3, cap 256 */
	fw_u8(w, 8); fw_u16(w, 4); fw_u16(w, 100);    /* copy */
	for (unsigned k = 0; k < 3; k++) {
		fw_u8(w, 3); fw_u32(w, 513);          /* push */
	}
	fw_u8(w, 4);
	fw_u8(w, 5);
	fw_u8(w, 6);
	fw_u8(w, 9);
}

void fuzz_write_seeds(const char *dir)
{
	static const struct { uint8_t feat, exp; bool ind; const char *name; } s[] = {
		{ 0, 4, false, "direct16" },
		{ 1, 8, false, "event_idx256" },
		{ 2, 3, true, "indirect8" },
		{ 3, 0, true, "size1" },
	};

	for (unsigned i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
		struct fw w = { .n = 0 };

		seed_session(&w, s[i].feat, s[i].exp, s[i].ind);
		fuzz_seed(dir, s[i].name, w.buf, w.n);
	}
}
