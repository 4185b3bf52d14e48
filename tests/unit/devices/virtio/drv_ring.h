/* A test-side virtio driver over malloc'd "guest memory": negotiates
 * features, sets up split rings, posts descriptor chains, kicks through
 * ops->queue_notify (as a transport's ioeventfd handler does, lock held)
 * and reads the used ring back. Interrupts are counted per queue. */
#ifndef KVMINI_TEST_VIRTIO_DRV_RING_H
#define KVMINI_TEST_VIRTIO_DRV_RING_H

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "kvmini/virtio.h"

#define DRV_RAM_SIZE (4u << 20)
#define DRV_QSIZE 256
#define DRV_DATA_START 0x80000

struct drv_queue {
	uint16_t size;
	uint64_t desc, avail, used;
	uint16_t next_desc;     /* descriptors are handed out round-robin */
	uint16_t avail_idx;
	uint16_t used_seen;
};

struct drv {
	struct guest_mem gm;
	uint8_t *ram;
	uint64_t data_next;     /* bump allocator for buffers */
	struct virtio_dev *dev;
	struct virtio_transport_ops tops;
	unsigned irqs[VIRTIO_MAX_QUEUES];
	unsigned config_irqs;
	unsigned requeues[VIRTIO_MAX_QUEUES];   /* a device asked to run again */
	struct drv_queue q[VIRTIO_MAX_QUEUES];
};

static inline void drv_notify_queue(void *t, unsigned q)
{
	((struct drv *)t)->irqs[q]++;
}

static inline void drv_requeue(void *t, unsigned q)
{
	((struct drv *)t)->requeues[q]++;
}

static inline void drv_notify_config(void *t)
{
	((struct drv *)t)->config_irqs++;
}

static inline void drv_init(struct drv *d)
{
	memset(d, 0, sizeof(*d));
	d->ram = calloc(1, DRV_RAM_SIZE);
	ck_assert_ptr_nonnull(d->ram);
	ck_assert_int_eq(gm_add_region(&d->gm, 0, DRV_RAM_SIZE, d->ram), 0);
	d->data_next = DRV_DATA_START;
	d->tops.notify_queue = drv_notify_queue;
	d->tops.notify_config = drv_notify_config;
	d->tops.requeue = drv_requeue;
}

static inline void drv_fini(struct drv *d)
{
	free(d->ram);
}

static inline void *drv_host(struct drv *d, uint64_t gpa)
{
	return d->ram + gpa;
}

static inline uint64_t drv_alloc(struct drv *d, size_t len)
{
	uint64_t gpa = d->data_next;

	d->data_next += (len + 15) & ~(size_t)15;
	ck_assert_uint_le(d->data_next, DRV_RAM_SIZE);
	return gpa;
}

/* Attaches to @dev (created on d->gm), accepts @features of its offer,
 * enables its queues and sets DRIVER_OK. */
static inline void drv_attach(struct drv *d, struct virtio_dev *dev, uint64_t features)
{
	d->dev = dev;
	pthread_mutex_lock(&dev->lock);
	dev->tops = &d->tops;
	dev->transport = d;
	virtio_dev_set_status(dev, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	dev->driver_features = (features | (1ull << VIRTIO_F_VERSION_1)) & dev->features;
	virtio_dev_set_status(dev, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
				   VIRTIO_CONFIG_S_FEATURES_OK);
	for (unsigned i = 0; i < dev->nr_queues; i++) {
		struct drv_queue *q = &d->q[i];
		struct virtq *vq = &dev->vqs[i];

		q->size = vq->max_size < DRV_QSIZE ? vq->max_size : DRV_QSIZE;
		q->desc = 0x1000 + i * 0x8000;
		q->avail = q->desc + 0x1000 * 4;
		q->used = q->avail + 0x1000;
		vq->size = q->size;
		vq->desc_gpa = q->desc;
		vq->avail_gpa = q->avail;
		vq->used_gpa = q->used;
		virtio_dev_enable_queue(dev, i);
		ck_assert(vq->enabled);
	}
	virtio_dev_set_status(dev, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
				   VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
	pthread_mutex_unlock(&dev->lock);
}

struct drv_seg {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

/* Writes a chain of @n descriptors and makes it available (no kick). */
static inline uint16_t drv_post(struct drv *d, unsigned qi, const struct drv_seg *s, unsigned n)
{
	struct drv_queue *q = &d->q[qi];
	struct vring_desc *desc = drv_host(d, q->desc);
	uint16_t *avail = drv_host(d, q->avail);
	uint16_t head = q->next_desc;

	for (unsigned i = 0; i < n; i++) {
		uint16_t at = (uint16_t)((head + i) % q->size);

		desc[at].addr = s[i].gpa;
		desc[at].len = s[i].len;
		desc[at].flags = (uint16_t)((s[i].write ? VRING_DESC_F_WRITE : 0) |
					    (i + 1 < n ? VRING_DESC_F_NEXT : 0));
		desc[at].next = (uint16_t)((at + 1) % q->size);
	}
	q->next_desc = (uint16_t)((head + n) % q->size);
	avail[2 + (q->avail_idx % q->size)] = head;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	avail[1] = ++q->avail_idx;
	return head;
}

/* One buffer (readable or writable) of @len bytes; returns its gpa. */
static inline uint64_t drv_post1(struct drv *d, unsigned qi, uint32_t len, bool write,
				 uint16_t *head)
{
	struct drv_seg s = { drv_alloc(d, len), len, write };
	uint16_t h = drv_post(d, qi, &s, 1);

	if (head)
		*head = h;
	return s.gpa;
}

static inline void drv_kick(struct drv *d, unsigned qi)
{
	pthread_mutex_lock(&d->dev->lock);
	d->dev->ops->queue_notify(d->dev, qi);
	pthread_mutex_unlock(&d->dev->lock);
}

/* The next used entry of queue @qi: false when there is none. */
static inline bool drv_used(struct drv *d, unsigned qi, uint32_t *id, uint32_t *len)
{
	struct drv_queue *q = &d->q[qi];
	uint16_t *used = drv_host(d, q->used);
	uint32_t *elem;

	if (used[1] == q->used_seen)
		return false;
	elem = (uint32_t *)(used + 2) + 2 * (q->used_seen % q->size);
	*id = elem[0];
	*len = elem[1];
	q->used_seen++;
	return true;
}

static inline unsigned drv_used_count(struct drv *d, unsigned qi)
{
	return (uint16_t)(((uint16_t *)drv_host(d, d->q[qi].used))[1] - d->q[qi].used_seen);
}

#endif
