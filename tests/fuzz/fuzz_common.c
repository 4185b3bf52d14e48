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

void fr_init(struct fr *r)
{
	memset(r, 0, sizeof(*r));
	r->ram = calloc(1, FR_RAM_SIZE);
	if (!r->ram || gm_add_region(&r->gm, 0, FR_RAM_SIZE, r->ram))
		abort();
	r->tops.notify_queue = fr_notify_queue;
	r->tops.notify_config = fr_notify_config;
	fr_reset(r);
}

void fr_reset(struct fr *r)
{
	memset(r->ram, 0, FR_RAM_SIZE);
	memset(r->q, 0, sizeof(r->q));
	r->data_next = FR_DATA_START;
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

uint64_t fr_alloc(struct fr *r, uint32_t len)
{
	uint64_t gpa;

	len = (len + 15) & ~15u;
	if (len > FR_RAM_SIZE - FR_DATA_START)
		len = FR_RAM_SIZE - FR_DATA_START;
	if (r->data_next + len > FR_RAM_SIZE)
		r->data_next = FR_DATA_START;
	gpa = r->data_next;
	r->data_next += len;
	return gpa;
}

uint16_t fr_post(struct fr *r, unsigned qi, const struct fr_seg *s, unsigned n, bool indirect)
{
	struct fr_queue *q = &r->q[qi];
	struct vring_desc *desc = (struct vring_desc *)fr_host(r, q->desc);
	uint16_t *avail = (uint16_t *)fr_host(r, q->avail);
	uint16_t head = q->next_desc;

	if (q->size == 0)
		return 0;
	if (indirect && n > 0) {
		uint64_t table = fr_alloc(r, n * 16);
		struct vring_desc *t = (struct vring_desc *)fr_host(r, table);

		for (unsigned i = 0; i < n; i++)
			t[i] = (struct vring_desc){ s[i].gpa, s[i].len,
				(uint16_t)((s[i].write ? VRING_DESC_F_WRITE : 0) |
					   (i + 1 < n ? VRING_DESC_F_NEXT : 0)),
				(uint16_t)(i + 1) };
		desc[head] = (struct vring_desc){ table, n * 16, VRING_DESC_F_INDIRECT, 0 };
		q->next_desc = (uint16_t)((head + 1) % q->size);
	} else {
		for (unsigned i = 0; i < n; i++) {
			uint16_t at = (uint16_t)((head + i) % q->size);

			desc[at] = (struct vring_desc){ s[i].gpa, s[i].len,
				(uint16_t)((s[i].write ? VRING_DESC_F_WRITE : 0) |
					   (i + 1 < n ? VRING_DESC_F_NEXT : 0)),
				(uint16_t)((at + 1) % q->size) };
		}
		q->next_desc = (uint16_t)((head + n) % q->size);
	}
	avail[2 + (q->avail_idx % q->size)] = head;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	avail[1] = ++q->avail_idx;
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
	memcpy(fr_host(r, base + off), &v, len);
}
