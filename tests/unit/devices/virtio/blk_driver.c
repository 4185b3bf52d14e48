/* The unit tests' virtio-blk driver (blk_driver.h). */
#include <check.h>
#include <endian.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ring.h>

#include "blk_driver.h"

#define DESC_GPA 0x0
#define AVAIL_GPA 0x1000
#define USED_GPA 0x2000
#define HEAD_AREA 0x10000ull     /* head h's region: HEAD_AREA * (h + 1) */
#define HDR_AT 256
#define STATUS_AT 272
#define DATA_AT 4096
#define RAM_SIZE (HEAD_AREA * (BDRV_QSIZE + 1))

_Static_assert(DATA_AT + BDRV_DATA_MAX <= HEAD_AREA, "a head's data fits its region");

static void count_irq(void *t, unsigned q)
{
	((struct bdrv *)t)->irqs++;
}

static void count_config_irq(void *t)
{
	((struct bdrv *)t)->config_irqs++;
}

static const struct virtio_transport_ops bdrv_tops = {
	.notify_queue = count_irq,
	.notify_config = count_config_irq,
};

static void kick_ready(void *opaque, uint32_t events)
{
	struct bdrv *b = opaque;
	uint64_t n;

	if (read(b->kick_fd, &n, sizeof(n)) == sizeof(n))
		bdrv_kick(b);
}

static uint64_t region(uint16_t head)
{
	return HEAD_AREA * (head + 1u);
}

int bdrv_open(struct bdrv *b, const struct virtio_blk_cfg *cfg, uint16_t qsize, bool event_idx,
	      struct kv_err *e)
{
	uint8_t s = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;
	struct virtio_dev *d = &b->dev;
	struct virtq *vq = &d->vqs[0];
	int r;

	memset(b, 0, sizeof(*b));
	ck_assert_uint_le(qsize, BDRV_QSIZE);
	b->ram = aligned_alloc(4096, RAM_SIZE);
	ck_assert_ptr_nonnull(b->ram);
	memset(b->ram, 0, HEAD_AREA);
	ck_assert_int_eq(gm_add_region(&b->gm, 0, RAM_SIZE, b->ram), 0);
	ck_assert_int_eq(evloop_create(&b->loop, e), 0);
	r = virtio_blk_create(cfg, &b->gm, b->loop, d, e);
	if (r) {
		evloop_destroy(b->loop);
		free(b->ram);
		b->ram = NULL;
		return r;
	}
	b->qsize = qsize;
	pthread_mutex_lock(&d->lock);
	d->tops = &bdrv_tops;
	d->transport = b;
	virtio_dev_set_status(d, s);
	d->driver_features = d->features & ~(event_idx ? 0 : 1ull << VIRTIO_RING_F_EVENT_IDX);
	s |= VIRTIO_CONFIG_S_FEATURES_OK;
	virtio_dev_set_status(d, s);
	vq->size = qsize;
	vq->desc_gpa = DESC_GPA;
	vq->avail_gpa = AVAIL_GPA;
	vq->used_gpa = USED_GPA;
	virtio_dev_enable_queue(d, 0);
	virtio_dev_set_status(d, s | VIRTIO_CONFIG_S_DRIVER_OK);
	ck_assert(virtio_dev_live(d));
	ck_assert(vq->enabled);
	pthread_mutex_unlock(&d->lock);
	b->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ck_assert_int_ge(b->kick_fd, 0);
	ck_assert_int_eq(evloop_add(b->loop, b->kick_fd, EPOLLIN, kick_ready, b), 0);
	return 0;
}

void bdrv_close(struct bdrv *b)
{
	evloop_del(b->loop, b->kick_fd);
	close(b->kick_fd);
	virtio_dev_fini(&b->dev);
	evloop_destroy(b->loop);
	free(b->ram);
	b->ram = NULL;
}

uint8_t *bdrv_data(struct bdrv *b, uint16_t head)
{
	return b->ram + region(head) + DATA_AT;
}

uint8_t bdrv_status(struct bdrv *b, uint16_t head)
{
	return b->ram[region(head) + STATUS_AT];
}

int bdrv_free_head(struct bdrv *b)
{
	for (unsigned i = 0; i < b->qsize; i++)
		if (!b->req[i].busy)
			return (int)i;
	return -1;
}

void bdrv_post(struct bdrv *b, uint16_t head, uint32_t type, uint64_t sector,
	       const struct bdrv_seg *segs, unsigned n)
{
	uint64_t base = region(head);
	struct vring_desc *table = (struct vring_desc *)(b->ram + base);
	struct vring_desc *desc = (struct vring_desc *)(b->ram + DESC_GPA);
	struct virtio_blk_outhdr *h = (void *)(b->ram + base + HDR_AT);
	uint16_t *avail = (uint16_t *)(b->ram + AVAIL_GPA);
	bool dev_reads = type == VIRTIO_BLK_T_OUT || type == VIRTIO_BLK_T_DISCARD ||
			 type == VIRTIO_BLK_T_WRITE_ZEROES;
	struct bdrv_req *rq = &b->req[head];
	unsigned k = 0;

	ck_assert_uint_lt(head, b->qsize);
	ck_assert(!rq->busy);
	ck_assert_uint_le(n, BDRV_SEG_MAX);
	h->type = htole32(type);
	h->ioprio = 0;
	h->sector = htole64(sector);
	b->ram[base + STATUS_AT] = 0xee;
	table[k++] = (struct vring_desc){ base + HDR_AT, 16, VRING_DESC_F_NEXT, 1 };
	for (unsigned i = 0; i < n; i++, k++) {
		ck_assert_uint_le((uint64_t)segs[i].off + segs[i].len, BDRV_DATA_MAX);
		table[k] = (struct vring_desc){ base + DATA_AT + segs[i].off, segs[i].len,
			(uint16_t)(VRING_DESC_F_NEXT | (dev_reads ? 0 : VRING_DESC_F_WRITE)),
			(uint16_t)(k + 1) };
	}
	table[k++] = (struct vring_desc){ base + STATUS_AT, 1, VRING_DESC_F_WRITE, 0 };
	desc[head] = (struct vring_desc){ base, (uint32_t)(k * sizeof(*table)),
					  VRING_DESC_F_INDIRECT, 0 };
	*rq = (struct bdrv_req){ .busy = true, .type = type, .sector = sector, .nr_segs = n };
	if (n)
		memcpy(rq->segs, segs, n * sizeof(*segs));
	b->busy++;
	avail[2 + b->avail_idx % b->qsize] = head;
	__atomic_store_n(&avail[1], ++b->avail_idx, __ATOMIC_RELEASE);
}

void bdrv_kick(struct bdrv *b)
{
	pthread_mutex_lock(&b->dev.lock);
	if (virtio_dev_live(&b->dev) && b->dev.vqs[0].enabled)
		b->dev.ops->queue_notify(&b->dev, 0);
	pthread_mutex_unlock(&b->dev.lock);
}

void bdrv_kick_async(struct bdrv *b)
{
	uint64_t one = 1;

	ck_assert_int_eq(write(b->kick_fd, &one, sizeof(one)), sizeof(one));
}

static bool used_elem(struct bdrv *b, uint16_t *head, uint32_t *len)
{
	uint16_t idx = __atomic_load_n((uint16_t *)(b->ram + USED_GPA + 2), __ATOMIC_ACQUIRE);
	const uint32_t *elem;

	if (idx == b->used_seen)
		return false;
	elem = (const uint32_t *)(b->ram + USED_GPA + 4) + 2 * (b->used_seen % b->qsize);
	ck_assert_uint_lt(elem[0], b->qsize);
	*head = (uint16_t)elem[0];
	*len = elem[1];
	b->used_seen++;
	return true;
}

bool bdrv_next_used(struct bdrv *b, int timeout_ms, uint16_t *head, uint32_t *len,
		    uint8_t *status)
{
	for (int waited = 0; !used_elem(b, head, len); waited += 10) {
		if (b->threaded) {
			usleep(10000);
		} else {
			int r = evloop_run_once(b->loop, timeout_ms > 0 ? 10 : 0);

			ck_assert_int_ge(r, 0);
		}
		if (used_elem(b, head, len))
			break;
		if (waited >= timeout_ms)
			return false;
	}
	ck_assert_msg(b->req[*head].busy, "used ring names head %u, not in flight", *head);
	b->req[*head].busy = false;
	b->busy--;
	b->last_len = *len;
	*status = bdrv_status(b, *head);
	return true;
}

uint8_t bdrv_do(struct bdrv *b, uint32_t type, uint64_t sector, const struct bdrv_seg *segs,
		unsigned n)
{
	int head = bdrv_free_head(b);
	uint16_t got;
	uint32_t len;
	uint8_t st;

	ck_assert_int_ge(head, 0);
	bdrv_post(b, (uint16_t)head, type, sector, segs, n);
	bdrv_kick(b);
	ck_assert_msg(bdrv_next_used(b, 10000, &got, &len, &st), "request timed out");
	ck_assert_uint_eq(got, (unsigned)head);
	return st;
}
