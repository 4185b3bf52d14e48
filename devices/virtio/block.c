/* virtio-blk (virtio 1.x §5.2): one request queue over a disk
 * (kvmini/disk.h). The device pops chains, parses them (block_parse.c),
 * hands the disk one request per chain and completes the chain when the
 * disk hands it back. Files, direct I/O, the snapshot overlay and the
 * AIO engine are the disk's.
 *
 * Every head has its request slot, allocated with the device: nothing on
 * the kick, completion, reset or drain paths allocates (a first malloc in
 * a thread under its seccomp filter can make glibc call what the filter
 * forbids: SECURITY.md). Queue processing takes at most the queue size of
 * chains per call and then yields through the event loop, so a guest
 * that keeps re-posting chains cannot hold the loop thread.
 *
 * Threads: queue processing and completions run on the event-loop
 * thread, reset on a vCPU thread; all under the device lock. */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/virtio_blk.h>

#include "kvmini/disk.h"
#include "kvmini/event_loop.h"
#include "kvmini/log.h"
#include "kvmini/virtio_blk.h"
#include "kvmini/virtio_blk_parse.h"

/* What one head carries from its pop to its completion. */
struct blk_slot {
	struct vq_chain chain;
	struct blk_request p;
	struct disk_req req;
	struct iovec iov[VIRTQ_MAX_SIZE];
	struct disk_range ranges[BLK_DISCARD_SEG_MAX];
};

struct blk_dev {
	struct virtio_dev *dev;
	struct disk *disk;
	const struct disk_info *info;
	struct virtio_blk_config config; /* little-endian, as the guest reads it */
	struct evloop *loop;
	int resume_fd;             /* signalled when a spent budget left chains behind */
	bool disk_watched, resume_watched;
	bool used_pending;         /* vq_push done, virtio_dev_used not yet */
	/* busy[h]: head h's request is with the disk. Apart from the slots,
	 * so a reset clears 256 bytes, not a page per slot. */
	bool busy[VIRTQ_MAX_SIZE];
	struct iovec pop_iov[VIRTQ_MAX_SIZE];
	/* One per head: a megabyte of zero pages (mmap), touched only as
	 * the guest uses heads. */
	struct blk_slot *slots;
};

#define SLOTS_BYTES (sizeof(struct blk_slot) * VIRTQ_MAX_SIZE)

static struct blk_dev *to_blk(struct virtio_dev *d)
{
	return d->priv;
}

/* ---- completion ---- */

static void complete(struct blk_dev *b, struct blk_slot *s, uint8_t status)
{
	struct virtio_dev *d = b->dev;

	b->busy[s->chain.head] = false;
	*s->p.status = status;
	if (!virtio_dev_live(d))
		return;
	if (vq_push(&d->vqs[0], s->chain.head, status == VIRTIO_BLK_S_OK ? s->p.used_len : 1) < 0)
		virtio_dev_fail(d, "used ring: %s", d->vqs[0].error ? d->vqs[0].error : "push failed");
	else
		b->used_pending = true;
}

static void flush_used(struct blk_dev *b)
{
	if (b->used_pending) {
		b->used_pending = false;
		virtio_dev_used(b->dev, 0);
	}
}

static uint8_t status_of(int result)
{
	if (result == 0)
		return VIRTIO_BLK_S_OK;
	return result == -EOPNOTSUPP ? VIRTIO_BLK_S_UNSUPP : VIRTIO_BLK_S_IOERR;
}

/* The disk handed @r back. */
static void req_done(void *opaque, struct disk_req *r)
{
	complete(opaque, r->cookie, status_of(r->result));
}

/* ---- requests: parse, then act ---- */

/* Fills @s->req for what blk_parse found; false when there is nothing to
 * hand the disk (answered already). */
static bool make_disk_req(struct blk_dev *b, struct blk_slot *s,
			  const struct blk_discard_seg *segs)
{
	const struct blk_request *p = &s->p;
	struct disk_req *r = &s->req;

	memset(r, 0, sizeof(*r));
	r->cookie = s;
	switch (p->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		r->op = p->type == VIRTIO_BLK_T_IN ? DISK_READ : DISK_WRITE;
		r->off = p->sector * BLK_SECTOR;
		r->iov = p->data;
		r->niov = p->nr_data;
		return true;
	case VIRTIO_BLK_T_FLUSH:
		r->op = DISK_FLUSH;
		return true;
	case VIRTIO_BLK_T_GET_ID: {
		char id[BLK_ID_LEN] = { 0 };

		memcpy(id, b->info->serial, strnlen(b->info->serial, BLK_ID_LEN));
		vq_chain_write(&s->chain, 0, id, p->data_len);
		complete(b, s, VIRTIO_BLK_S_OK);
		return false;
	}
	default: /* DISCARD, WRITE_ZEROES: blk_parse let nothing else through */
		r->op = p->type == VIRTIO_BLK_T_DISCARD ? DISK_DISCARD : DISK_WRITE_ZEROES;
		r->ranges = s->ranges;
		for (unsigned i = 0; i < p->nr_segs; i++)
			if (segs[i].num_sectors)
				s->ranges[r->nr_ranges++] = (struct disk_range){
					segs[i].sector * BLK_SECTOR,
					(uint64_t)segs[i].num_sectors * BLK_SECTOR };
		if (r->nr_ranges)
			return true;
		complete(b, s, VIRTIO_BLK_S_OK); /* only empty segments */
		return false;
	}
}

static void start(struct blk_dev *b, struct blk_slot *s)
{
	struct virtio_dev *d = b->dev;
	struct blk_discard_seg segs[BLK_DISCARD_SEG_MAX];
	const char *why;
	int st = blk_parse(&s->chain, b->info->size / BLK_SECTOR, b->info->readonly,
			   b->info->discard, &s->p, segs, &why);

	if (st < 0) {
		virtio_dev_fail(d, "request %u: %s", s->chain.head, why);
		return;
	}
	if (st != VIRTIO_BLK_S_OK) {
		LOG_GUEST(&d->rl, "%s: request %u (type %u): %s", d->name, s->chain.head, s->p.type,
			  why);
		complete(b, s, (uint8_t)st);
		return;
	}
	if (!make_disk_req(b, s, segs))
		return;
	b->busy[s->chain.head] = true;
	int r = disk_submit(b->disk, &s->req);

	if (r < 0) {
		LOG_GUEST(&d->rl, "%s: request %u (type %u) refused: %s", d->name, s->chain.head,
			  s->p.type, strerror(-r));
		complete(b, s, status_of(r));
	}
}

/* Pops one chain into its head's slot and starts it: 1, 0 when the ring
 * is empty, -1 when the device failed. */
static int pop_one(struct blk_dev *b, struct virtq *vq)
{
	struct virtio_dev *d = b->dev;
	struct vq_chain c;
	int r = vq_pop(vq, &c, b->pop_iov, VIRTQ_MAX_SIZE);

	if (r < 0) {
		virtio_dev_fail(d, "queue 0: %s", vq->error ? vq->error : "bad chain");
		return -1;
	}
	if (r == 0)
		return 0;
	struct blk_slot *s = &b->slots[c.head]; /* vq_pop checked head < size */

	if (b->busy[c.head]) {
		virtio_dev_fail(d, "head %u made available again while in flight", c.head);
		return -1;
	}
	s->chain = c;
	memcpy(s->iov, b->pop_iov, (c.nr_out + c.nr_in) * sizeof(*s->iov));
	s->chain.iov = s->iov;
	start(b, s);
	return virtio_dev_live(d) ? 1 : -1;
}

/* Takes at most the queue size of chains; with chains left, leaves
 * kicks off and asks the event loop to call again. */
static void process_queue(struct blk_dev *b)
{
	struct virtq *vq = &b->dev->vqs[0];
	unsigned budget = vq->size;
	int r = 0;

	vq_disable_kicks(vq);
	do {
		while (budget > 0 && (r = pop_one(b, vq)) > 0)
			budget--;
		if (budget == 0) {
			uint64_t one = 1;

			/* Fails only with the counter at its maximum: signalled. */
			if (write(b->resume_fd, &one, sizeof(one)) < 0) {
			}
			break;
		}
	} while (r == 0 && vq_enable_kicks(vq));
	flush_used(b);
}

/* ---- event-loop callbacks ---- */

static void disk_ready(void *opaque, uint32_t events)
{
	struct virtio_dev *d = opaque;
	struct blk_dev *b = to_blk(d);

	pthread_mutex_lock(&d->lock);
	disk_reap(b->disk, req_done, b);
	flush_used(b);
	pthread_mutex_unlock(&d->lock);
}

static void resume_ready(void *opaque, uint32_t events)
{
	struct virtio_dev *d = opaque;
	struct blk_dev *b = to_blk(d);
	uint64_t n;

	pthread_mutex_lock(&d->lock);
	if (read(b->resume_fd, &n, sizeof(n)) == sizeof(n) && virtio_dev_live(d) &&
	    d->vqs[0].enabled)
		process_queue(b);
	pthread_mutex_unlock(&d->lock);
}

/* ---- virtio ops ---- */

static void blk_config_read(struct virtio_dev *d, uint32_t off, void *data, unsigned len)
{
	memcpy(data, (const uint8_t *)&to_blk(d)->config + off, len);
}

static void blk_config_write(struct virtio_dev *d, uint32_t off, const void *data, unsigned len)
{
	/* No CONFIG_WCE offered: nothing in the config space is writable. */
}

static int blk_activate(struct virtio_dev *d)
{
	return 0;
}

static void blk_queue_notify(struct virtio_dev *d, unsigned q)
{
	if (q == 0 && virtio_dev_live(d) && d->vqs[0].enabled)
		process_queue(to_blk(d));
}

/* The rings are gone: wait until the kernel is done with the guest's
 * buffers and forget every request, answered or not. */
static void blk_reset(struct virtio_dev *d)
{
	struct blk_dev *b = to_blk(d);

	disk_drain(b->disk);
	memset(b->busy, 0, sizeof(b->busy));
	b->used_pending = false;
}

/* virtio-mmio QueueReady = 0 (the only queue): as a reset, for the
 * queue. The disk waits for what is in flight (its buffers are guest
 * memory) and forgets it; no completion reaches the ring afterwards. */
static void blk_queue_stop(struct virtio_dev *d, unsigned q)
{
	if (q == 0)
		blk_reset(d);
}

static void blk_destroy(struct virtio_dev *d)
{
	struct blk_dev *b = to_blk(d);

	if (!b)
		return;
	/* No callback from now on; then the disk waits for what is in flight. */
	if (b->disk_watched)
		evloop_del(b->loop, disk_event_fd(b->disk));
	if (b->resume_watched)
		evloop_del(b->loop, b->resume_fd);
	if (b->resume_fd >= 0)
		close(b->resume_fd);
	disk_close(b->disk);
	if (b->slots)
		munmap(b->slots, SLOTS_BYTES);
	free(b);
	d->priv = NULL;
}

static const struct virtio_dev_ops blk_ops = {
	.config_read = blk_config_read,
	.config_write = blk_config_write,
	.activate = blk_activate,
	.queue_notify = blk_queue_notify,
	.reset = blk_reset,
	.queue_stop = blk_queue_stop,
	.destroy = blk_destroy,
};

/* ---- create ---- */

static void fill_config(struct blk_dev *b)
{
	struct virtio_blk_config *c = &b->config;

	memset(c, 0, sizeof(*c));
	c->capacity = htole64(b->info->size / BLK_SECTOR);
	c->size_max = htole32(1u << 20);
	c->seg_max = htole32(BLK_SEG_MAX);
	c->blk_size = htole32(b->info->block_size);
	c->num_queues = htole16(1);
	if (b->info->discard) {
		c->max_discard_sectors = htole32(BLK_DISCARD_SECTORS_MAX);
		c->max_discard_seg = htole32(BLK_DISCARD_SEG_MAX);
		c->discard_sector_alignment = htole32(4096 / BLK_SECTOR);
		c->max_write_zeroes_sectors = htole32(BLK_DISCARD_SECTORS_MAX);
		c->max_write_zeroes_seg = htole32(BLK_DISCARD_SEG_MAX);
		c->write_zeroes_may_unmap = 1;
	}
}

static int watch(struct blk_dev *b, const char *name, struct kv_err *e)
{
	int r = evloop_add(b->loop, disk_event_fd(b->disk), EPOLLIN, disk_ready, b->dev);

	if (r < 0)
		return kv_err_set(e, r, "%s: cannot watch the disk's completions: %s", name,
				  strerror(-r));
	b->disk_watched = true;
	b->resume_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (b->resume_fd < 0)
		return kv_err_set(e, -errno, "%s: eventfd: %s", name, strerror(errno));
	r = evloop_add(b->loop, b->resume_fd, EPOLLIN, resume_ready, b->dev);
	if (r < 0)
		return kv_err_set(e, r, "%s: cannot watch its queue: %s", name, strerror(-r));
	b->resume_watched = true;
	return 0;
}

int virtio_blk_create(const struct virtio_blk_cfg *cfg, const struct guest_mem *mem,
		      struct evloop *loop, struct virtio_dev *dev, struct kv_err *e)
{
	char name[32];
	struct disk_cfg dcfg = {
		.path = cfg->path, .readonly = cfg->readonly, .snapshot = cfg->snapshot,
		.name = name, .max_requests = VIRTQ_MAX_SIZE, .engine = cfg->engine,
	};
	struct blk_dev *b;
	int r;

	snprintf(name, sizeof(name), "virtio-blk%u", cfg->index);
	if (!loop)
		return kv_err_set(e, -EINVAL, "%s: needs an event loop", name);
	b = calloc(1, sizeof(*b));
	if (!b)
		return kv_err_set(e, -ENOMEM, "%s: out of memory", name);
	b->resume_fd = -1;
	b->loop = loop;
	b->dev = dev;
	b->slots = mmap(NULL, SLOTS_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b->slots == MAP_FAILED) {
		free(b);
		return kv_err_set(e, -ENOMEM, "%s: out of memory for its request slots", name);
	}
	r = disk_open(&b->disk, &dcfg, e);
	if (r < 0) {
		munmap(b->slots, SLOTS_BYTES);
		free(b);
		return r;
	}
	b->info = disk_info(b->disk);
	fill_config(b);

	uint64_t features = (1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_BLK_SIZE) |
			    (1ull << VIRTIO_BLK_F_FLUSH);
	if (cfg->readonly)
		features |= 1ull << VIRTIO_BLK_F_RO;
	if (b->info->discard)
		features |= (1ull << VIRTIO_BLK_F_DISCARD) | (1ull << VIRTIO_BLK_F_WRITE_ZEROES);
	virtio_dev_init(dev, name, VIRTIO_ID_BLOCK, features, 1, VIRTQ_MAX_SIZE,
			sizeof(b->config), &blk_ops, b, mem, loop);
	r = watch(b, name, e);
	if (r < 0) {
		virtio_dev_fini(dev);
		return r;
	}
	return 0;
}

struct disk *virtio_blk_disk(struct virtio_dev *d)
{
	return to_blk(d)->disk;
}
