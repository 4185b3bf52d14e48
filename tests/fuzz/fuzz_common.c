/* Common code of the fuzz harnesses: see fuzz_common.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvmini/log.h"
#include "fuzz_common.h"

void fuzz_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "%s:%d: fuzz invariant broken: %s\n", file, line, what);
	abort();
}

/* "--write-seeds DIR" before libFuzzer parses its flags: write this
 * target's seed corpus and exit, so no binary seed is committed. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* Guest-triggered warnings are formatted (their code runs) but the
	 * fuzzer's output stays readable: errors only on stderr. */
	log_init();
	log_set_level(LOG_LEVEL_ERR);
	if (*argc >= 3 && strcmp((*argv)[1], "--write-seeds") == 0) {
		if (mkdir((*argv)[2], 0755) < 0 && errno != EEXIST) {
			perror((*argv)[2]);
			exit(1);
		}
		fuzz_write_seeds((*argv)[2]);
		exit(0);
	}
	fuzz_init();
	return 0;
}

void fuzz_seed(const char *dir, const char *name, const void *data, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

/* ---- input reader ---- */

size_t fz_bytes(struct fz *f, void *dst, size_t len)
{
	size_t take = len < f->n ? len : f->n;

	memcpy(dst, f->p, take);
	memset((uint8_t *)dst + take, 0, len - take);
	f->p += take;
	f->n -= take;
	return take;
}

uint8_t fz_u8(struct fz *f)
{
	uint8_t v;

	fz_bytes(f, &v, 1);
	return v;
}

uint16_t fz_u16(struct fz *f)
{
	uint16_t v;

	fz_bytes(f, &v, 2);
	return v;
}

uint32_t fz_u32(struct fz *f)
{
	uint32_t v;

	fz_bytes(f, &v, 4);
	return v;
}

uint64_t fz_u64(struct fz *f)
{
	uint64_t v;

	fz_bytes(f, &v, 8);
	return v;
}

static void fw_put(struct fw *w, uint64_t v, unsigned len)
{
	if (w->n + len > sizeof(w->buf))
		abort();
	memcpy(w->buf + w->n, &v, len);
	w->n += len;
}

void fw_u8(struct fw *w, uint8_t v) { fw_put(w, v, 1); }
void fw_u16(struct fw *w, uint16_t v) { fw_put(w, v, 2); }
void fw_u32(struct fw *w, uint32_t v) { fw_put(w, v, 4); }
void fw_u64(struct fw *w, uint64_t v) { fw_put(w, v, 8); }

/* ---- ring driver ---- */

static void fr_notify_queue(void *t, unsigned q)
{
	((struct fr *)t)->irqs++;
}

static void fr_notify_config(void *t)
{
	((struct fr *)t)->config_irqs++;
}

void fr_init_sized(struct fr *r, size_t ram_size, uint64_t data_start, bool shadow)
{
	memset(r, 0, sizeof(*r));
	r->ram_size = ram_size;
	r->data_start = data_start;
	r->ram = calloc(1, ram_size);
	r->shadow = shadow ? calloc(1, ram_size) : NULL;
	if (!r->ram || (shadow && !r->shadow) || data_start >= ram_size ||
	    gm_add_region(&r->gm, 0, ram_size, r->ram))
		abort();
	r->tops.notify_queue = fr_notify_queue;
	r->tops.notify_config = fr_notify_config;
	fr_reset(r);
}

void fr_init(struct fr *r)
{
	fr_init_sized(r, FR_RAM_SIZE, FR_DATA_START, false);
}

void fr_reset(struct fr *r)
{
	memset(r->ram, 0, r->ram_size);
	if (r->shadow)
		memset(r->shadow, 0, r->ram_size);
	memset(r->q, 0, sizeof(r->q));
	r->data_next = r->data_start;
	r->irqs = r->config_irqs = 0;
	r->used_poked = false;
}

void fr_layout(struct fr *r, unsigned qi, uint16_t size)
{
	struct fr_queue *q = &r->q[qi];

	memset(q, 0, sizeof(*q));
	q->size = size;
	q->desc = 0x1000 + qi * 0x8000;
	q->avail = q->desc + 0x1000 * 4;
	q->used = q->avail + 0x1000;
}

void fr_attach(struct fr *r, struct virtio_dev *dev, uint64_t features, uint16_t size)
{
	pthread_mutex_lock(&dev->lock);
	dev->tops = &r->tops;
	dev->transport = r;
	virtio_dev_set_status(dev, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	dev->driver_features = (features | (1ull << VIRTIO_F_VERSION_1)) & dev->features;
	virtio_dev_set_status(dev, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
				   VIRTIO_CONFIG_S_FEATURES_OK);
	for (unsigned i = 0; i < dev->nr_queues; i++) {
		struct virtq *vq = &dev->vqs[i];
		uint16_t s = size && size <= vq->max_size ? size : vq->max_size;

		fr_layout(r, i, s);
		vq->size = s;
		vq->desc_gpa = r->q[i].desc;
		vq->avail_gpa = r->q[i].avail;
		vq->used_gpa = r->q[i].used;
		virtio_dev_enable_queue(dev, i);
	}
	virtio_dev_set_status(dev, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
				   VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
	pthread_mutex_unlock(&dev->lock);
}

void fr_gwrite(struct fr *r, uint64_t gpa, const void *src, size_t len)
{
	if (gpa > r->ram_size || len > r->ram_size - gpa)
		abort(); /* a harness bug: the guest writes its own RAM */
	memcpy(r->ram + gpa, src, len);
	if (r->shadow)
		memcpy(r->shadow + gpa, src, len);
}

static bool in_ranges(uint64_t gpa, const struct fr_range *allowed, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (gpa >= allowed[i].gpa && gpa - allowed[i].gpa < allowed[i].len)
			return true;
	return false;
}

void fr_shadow_check(struct fr *r, const struct fr_range *allowed, unsigned n)
{
	const size_t block = 4096;

	for (size_t at = 0; at < r->ram_size; at += block) {
		size_t len = r->ram_size - at < block ? r->ram_size - at : block;

		if (!memcmp(r->ram + at, r->shadow + at, len))
			continue;
		for (size_t i = at; i < at + len; i++) {
			if (r->ram[i] == r->shadow[i])
				continue;
			if (!in_ranges(i, allowed, n)) {
				fprintf(stderr, "device wrote guest byte 0x%zx (0x%02x -> 0x%02x) "
					"outside the used rings and the writable buffers it held\n",
					i, r->shadow[i], r->ram[i]);
				FUZZ_CHECK(!"a write outside what the device may write");
			}
			r->shadow[i] = r->ram[i];
		}
	}
}

uint64_t fr_alloc(struct fr *r, uint32_t len)
{
	uint64_t gpa;

	len = (len + 15) & ~15u;
	if (len > r->ram_size - r->data_start)
		len = (uint32_t)(r->ram_size - r->data_start);
	if (r->data_next + len > r->ram_size)
		r->data_next = r->data_start;
	gpa = r->data_next;
	r->data_next += len;
	return gpa;
}

/* Descriptor @i of the table at @table. */
static void put_desc(struct fr *r, uint64_t table, unsigned i, struct vring_desc d)
{
	fr_gwrite(r, table + 16ull * i, &d, sizeof(d));
}

uint16_t fr_post(struct fr *r, unsigned qi, const struct fr_seg *s, unsigned n, bool indirect)
{
	struct fr_queue *q = &r->q[qi];
	uint16_t head = q->next_desc, idx;

	if (q->size == 0)
		return 0;
	if (indirect && n > 0) {
		uint64_t table = fr_alloc(r, n * 16);

		for (unsigned i = 0; i < n; i++)
			put_desc(r, table, i, (struct vring_desc){ s[i].gpa, s[i].len,
				(uint16_t)((s[i].write ? VRING_DESC_F_WRITE : 0) |
					   (i + 1 < n ? VRING_DESC_F_NEXT : 0)),
				(uint16_t)(i + 1) });
		put_desc(r, q->desc, head, (struct vring_desc){ table, n * 16, VRING_DESC_F_INDIRECT, 0 });
		q->next_desc = (uint16_t)((head + 1) % q->size);
	} else {
		for (unsigned i = 0; i < n; i++) {
			uint16_t at = (uint16_t)((head + i) % q->size);

			put_desc(r, q->desc, at, (struct vring_desc){ s[i].gpa, s[i].len,
				(uint16_t)((s[i].write ? VRING_DESC_F_WRITE : 0) |
					   (i + 1 < n ? VRING_DESC_F_NEXT : 0)),
				(uint16_t)((at + 1) % q->size) });
		}
		q->next_desc = (uint16_t)((head + n) % q->size);
	}
	fr_gwrite(r, q->avail + 4 + 2ull * (q->avail_idx % q->size), &head, 2);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	idx = ++q->avail_idx;
	fr_gwrite(r, q->avail + 2, &idx, 2);
	return head;
}

bool fr_used(struct fr *r, unsigned qi, uint32_t *id, uint32_t *len)
{
	struct fr_queue *q = &r->q[qi];
	uint16_t *used = (uint16_t *)fr_host(r, q->used);
	uint32_t *elem;

	if (q->size == 0 || used[1] == q->used_seen)
		return false;
	elem = (uint32_t *)(used + 2) + 2 * (q->used_seen % q->size);
	*id = elem[0];
	*len = elem[1];
	q->used_seen++;
	return true;
}

void fr_poke(struct fr *r, unsigned qi, unsigned which, uint32_t off, uint64_t v, unsigned len)
{
	struct fr_queue *q = &r->q[qi % VIRTIO_MAX_QUEUES];
	uint64_t base = which == 0 ? q->desc : which == 1 ? q->avail : q->used;
	uint64_t span = which == 0 ? 16ull * VIRTQ_MAX_SIZE : which == 1 ? 6 + 2 * VIRTQ_MAX_SIZE
								      : 6 + 8 * VIRTQ_MAX_SIZE;

	if (len > 8)
		len = 8;
	if (which == 2)
		r->used_poked = true;
	off %= (uint32_t)span;
	if (off + len > span)
		off = (uint32_t)(span - len);
	fr_gwrite(r, base + off, &v, len);
}

/* ---- the vq_pop model ---- */

/* @len bytes at @gpa are guest RAM. */
static bool model_in_ram(const struct fr *r, uint64_t gpa, uint64_t len)
{
	return gpa <= r->ram_size && len <= r->ram_size - gpa;
}

static bool model_u16(const struct fr *r, uint64_t gpa, uint16_t *v)
{
	if (!model_in_ram(r, gpa, 2))
		return false;
	memcpy(v, r->ram + gpa, 2);
	return true;
}

/* virtio 1.x §2.7.5.3 and kvmini's documented limits (virtio_queue.h):
 * next index < table size, at most table-size hops per table, one level
 * of indirection with a table of 1..256 descriptors and no NEXT, no
 * readable buffer after a writable one (zero-length ones count for that
 * rule but are not stored), every buffer in RAM, at most @cap buffers,
 * each direction's total < 4 GiB. */
static int model_walk(const struct fr *r, const struct virtq *vq, unsigned cap, uint16_t head,
		      struct fr_chain_model *m)
{
	uint64_t table = vq->desc_gpa;
	uint32_t entries = vq->size, i = head, hops = 0;
	bool in_indirect = false, seen_write = false;

	for (;;) {
		struct vring_desc d;

		if (i >= entries || ++hops > entries || !model_in_ram(r, table + 16ull * i, 16))
			return -1;
		memcpy(&d, r->ram + table + 16ull * i, sizeof(d));
		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (!vq->indirect || in_indirect || (d.flags & VRING_DESC_F_NEXT) ||
			    d.len == 0 || d.len % 16 || d.len / 16 > VIRTQ_MAX_SIZE ||
			    !model_in_ram(r, d.addr, d.len))
				return -1;
			table = d.addr;
			entries = d.len / 16;
			i = hops = 0;
			in_indirect = true;
			continue;
		}
		bool write = d.flags & VRING_DESC_F_WRITE;

		if (!write && seen_write)
			return -1;
		seen_write |= write;
		if (d.len) {
			if (m->n >= cap || !model_in_ram(r, d.addr, d.len))
				return -1;
			m->seg[m->n++] = (struct fr_seg){ d.addr, d.len, write };
			if (write)
				m->in_len += d.len;
			else
				m->out_len += d.len;
			if (m->in_len > UINT32_MAX || m->out_len > UINT32_MAX)
				return -1;
		}
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 1;
		i = d.next;
	}
}

int fr_model_pop(const struct fr *r, const struct virtq *vq, unsigned iov_cap,
		 struct fr_chain_model *m)
{
	uint16_t idx, head;

	memset(m, 0, sizeof(*m));
	if (!vq->enabled)
		return 0;
	if (!model_u16(r, vq->avail_gpa + 2, &idx) || (uint16_t)(idx - vq->last_avail) > vq->size)
		return -1;
	if (idx == vq->last_avail)
		return 0;
	if (!model_u16(r, vq->avail_gpa + 4 + 2ull * (vq->last_avail % vq->size), &head) ||
	    head >= vq->size)
		return -1;
	m->head = head;
	return model_walk(r, vq, iov_cap > VIRTQ_MAX_SIZE ? VIRTQ_MAX_SIZE : iov_cap, head, m);
}

void fr_model_check(const struct fr *r, int mret, const struct fr_chain_model *m, int ret,
		    const struct vq_chain *c)
{
	if ((ret < 0 ? -1 : ret) != mret)
		fprintf(stderr, "vq_pop returned %d, the model %d\n", ret, mret);
	FUZZ_CHECK((ret < 0 ? -1 : ret) == mret);
	if (ret != 1)
		return;
	FUZZ_CHECK(c->head == m->head);
	FUZZ_CHECK(c->nr_out + c->nr_in == m->n);
	FUZZ_CHECK(c->out_len == m->out_len && c->in_len == m->in_len);
	for (unsigned i = 0; i < m->n; i++) {
		const uint8_t *b = c->iov[i].iov_base;

		FUZZ_CHECK(b >= r->ram && (uint64_t)(b - r->ram) == m->seg[i].gpa);
		FUZZ_CHECK(c->iov[i].iov_len == m->seg[i].len);
		FUZZ_CHECK(m->seg[i].write == (i >= c->nr_out));
	}
}
