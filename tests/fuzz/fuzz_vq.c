/* Fuzz target: the split ring and descriptor-chain walker
 * (devices/virtio/queue.c) on its own. The input picks the queue size
 * and features, then runs a list of operations: post valid chains
 * (direct or indirect), poke bytes of the rings, pop, push, ask about
 * interrupts, toggle kick suppression, re-enable the queue.
 *
 * Oracles, not only survival:
 * - every vq_pop agrees with an independent model of the spec's rules
 *   (fr_model_pop): the same verdict, the head the driver put in the
 *   avail slot being consumed, the same buffers in the same order;
 * - the queue code writes guest memory only where it may: a push exactly
 *   its used element (id, len) and used->idx, kick suppression only
 *   used->flags or avail_event, vq_chain_write only the writable buffers
 *   of that chain, and nothing else ever (a shadow copy of RAM is
 *   compared after every operation);
 * - vq_chain_read returns the chain's readable bytes in order. */
#include <errno.h>
#include <string.h>

#include "fuzz_common.h"

#define RAM_SIZE   (256u << 10)
#define DATA_START 0x20000u

static struct fr r;

void fuzz_init(void)
{
	fr_init_sized(&r, RAM_SIZE, DATA_START, true);
}

/* Device writes since the last check lie in @allowed (none: nothing). */
static void no_writes(void)
{
	fr_shadow_check(&r, NULL, 0);
}

static struct fr_range used_range(const struct virtq *vq, uint64_t off, uint64_t len)
{
	return (struct fr_range){ vq->used_gpa + off, len };
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
		FUZZ_CHECK(b >= r.ram && b + iov[i].iov_len <= r.ram + r.ram_size);
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
static struct fr_chain_model last_model;
static bool have_last;

static void pop(struct virtq *vq, struct fz *f)
{
	uint8_t c = fz_u8(f);
	unsigned cap = c & 0x80 ? VIRTQ_MAX_SIZE : 1 + c % 16;

	for (unsigned k = 0; k < 1 + (c >> 4 & 7); k++) {
		static struct fr_chain_model m;
		struct vq_chain ch;
		uint16_t before = vq->last_avail;
		int mret = fr_model_pop(&r, vq, cap, &m);
		int ret = vq_pop(vq, &ch, iov, cap);

		no_writes(); /* popping only reads guest memory */
		FUZZ_CHECK(ret >= -EINVAL && ret <= 1);
		fr_model_check(&r, mret, &m, ret, &ch);
		FUZZ_CHECK(vq->last_avail == (uint16_t)(before + (ret == 1)));
		if (ret < 0) {
			FUZZ_CHECK(vq->error != NULL);
			return;
		}
		if (ret == 0)
			return;
		check_chain(vq, &ch, iov, cap);
		last = ch;
		last_model = m;
		memcpy(last_iov, iov, (ch.nr_out + ch.nr_in) * sizeof(iov[0]));
		last.iov = last_iov;
		have_last = true;
		if (nr_pending < VIRTQ_MAX_SIZE)
			pending[nr_pending++] = ch.head;
	}
}

/* The chain's bytes in one direction from @off, gathered from the
 * model's buffers (as the guest sees them). */
static size_t model_gather(bool write, size_t off, uint8_t *out, size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < last_model.n && done < len; i++) {
		const struct fr_seg *s = &last_model.seg[i];
		size_t chunk;

		if (s->write != write)
			continue;
		if (off >= s->len) {
			off -= s->len;
			continue;
		}
		chunk = s->len - off < len - done ? s->len - off : len - done;
		memcpy(out + done, r.shadow + s->gpa + off, chunk);
		done += chunk;
		off = 0;
	}
	return done;
}

/* No two writable buffers of the last chain share a byte (otherwise a
 * later one overwrites an earlier one and reading back differs). */
static bool writable_disjoint(void)
{
	for (unsigned i = 0; i < last_model.n; i++)
		for (unsigned j = i + 1; j < last_model.n; j++) {
			const struct fr_seg *a = &last_model.seg[i], *b = &last_model.seg[j];

			if (a->write && b->write && a->gpa < b->gpa + b->len && b->gpa < a->gpa + a->len)
				return false;
		}
	return true;
}

static void copy_chain(struct fz *f)
{
	uint8_t buf[512], want[512];
	struct fr_range w[VIRTQ_MAX_SIZE];
	unsigned nw = 0;
	size_t off = fz_u16(f), len = fz_u16(f) % sizeof(buf), n;

	if (!have_last)
		return;
	n = vq_chain_read(&last, off, buf, len);
	FUZZ_CHECK(n <= len && (off >= last.out_len || n == (len < last.out_len - off ? len : last.out_len - off)));
	FUZZ_CHECK(model_gather(false, off, want, len) == n && !memcmp(buf, want, n));
	no_writes();
	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + off);
	n = vq_chain_write(&last, off, buf, len);
	FUZZ_CHECK(n <= len && (off >= last.in_len || n == (len < last.in_len - off ? len : last.in_len - off)));
	for (unsigned i = 0; i < last_model.n; i++)
		if (last_model.seg[i].write)
			w[nw++] = (struct fr_range){ last_model.seg[i].gpa, last_model.seg[i].len };
	fr_shadow_check(&r, w, nw);
	/* What was written reads back through the model's buffers. */
	FUZZ_CHECK(model_gather(true, off, want, len) == n);
	FUZZ_CHECK(!writable_disjoint() || !memcmp(buf, want, n));
}

/* vq_push: on success exactly used->ring[old idx % size] = {head, written}
 * and used->idx + 1 changed; on failure nothing. */
static void push(struct virtq *vq, uint16_t head, uint32_t written)
{
	uint16_t old = vq->used_idx;
	bool on = vq->enabled;
	int ret = vq_push(vq, head, written);
	struct fr_range allowed[2];

	FUZZ_CHECK(ret == 0 || (ret == -EINVAL && vq->error));
	if (ret) {
		FUZZ_CHECK(vq->used_idx == old);
		no_writes();
		return;
	}
	FUZZ_CHECK(on && head < vq->size && vq->used_idx == (uint16_t)(old + 1));
	allowed[0] = used_range(vq, 4 + 8ull * (old % vq->size), 8);
	allowed[1] = used_range(vq, 2, 2);
	fr_shadow_check(&r, allowed, 2);
	uint32_t elem[2];
	uint16_t idx;

	memcpy(elem, r.ram + allowed[0].gpa, sizeof(elem));
	memcpy(&idx, r.ram + vq->used_gpa + 2, sizeof(idx));
	FUZZ_CHECK(elem[0] == head && elem[1] == written && idx == vq->used_idx);
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
	no_writes();
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

			push(&vq, head, written);
			break;
		}
		case 4: vq_should_interrupt(&vq); no_writes(); break;
		case 5: {
			struct fr_range flags = used_range(&vq, 0, 2);

			vq_disable_kicks(&vq);
			fr_shadow_check(&r, &flags, vq.enabled && !vq.event_idx);
			break;
		}
		case 6: {
			/* used->flags, or avail_event after used->ring[size]. */
			struct fr_range kick = vq.event_idx ? used_range(&vq, 4 + 8ull * vq.size, 2)
							    : used_range(&vq, 0, 2);
			bool more = vq_enable_kicks(&vq);

			fr_shadow_check(&r, &kick, vq.enabled);
			FUZZ_CHECK(more == vq_has_avail(&vq));
			break;
		}
		case 7: setup_queue(&vq, &f, event_idx, indirect); have_last = false; no_writes(); break;
		case 8: copy_chain(&f); break;
		case 9: vq_has_avail(&vq); no_writes(); break;
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
