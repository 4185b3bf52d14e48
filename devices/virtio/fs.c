/* virtio-fs (virtio 1.x §5.11): the device side of a FUSE connection.
 * The virtio part only: chains in, replies out; the FUSE server
 * (devices/fs/) does the rest on its worker threads. See
 * include/kvmini/virtio_fs.h.
 *
 * Request slots. Every chain popped gets a slot (its iovecs, its head
 * and queue), preallocated for VIRTQ_MAX_SIZE chains per queue: a driver
 * cannot have more chains out on a queue than the queue holds, and one
 * that tries (by republishing heads in flight) breaks a rule and gets
 * NEEDS_RESET. Slots are taken on the event-loop thread and given back
 * on a worker thread, both under the device lock.
 *
 * Completion runs on the worker: it first says "done with guest memory"
 * (busy--, under fs->mu), then takes the device lock and, if no reset
 * came in between (the epoch is the same), pushes the used element and
 * interrupts the driver. A reset (device lock held, on a vCPU) bumps the
 * epoch, drops the queued requests and waits on fs->mu for busy to reach
 * zero; workers never need the device lock to get there, so this cannot
 * deadlock, and after it no reply can land in the guest's buffers. */
#include <endian.h>
#include <errno.h>
#include <linux/virtio_fs.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvmini/virtio_fs.h"

#define HIPRIO_QUEUE 0

struct vfs_dev;

struct vfs_slot {
	struct fuse_request req;      /* first: job -> slot */
	struct vfs_dev *fs;
	struct vfs_slot *next_free;
	uint32_t epoch;
	uint16_t head;
	uint8_t q;
	struct iovec iov[VIRTQ_MAX_SIZE];
};

struct vfs_dev {
	struct virtio_dev *dev;
	struct fuse_server *srv;
	struct virtio_fs_config config;   /* as the guest reads it (little-endian) */
	struct vfs_slot *slots;
	unsigned nr_slots;
	/* Under the device lock: */
	struct vfs_slot *free;
	unsigned outstanding[VIRTIO_MAX_QUEUES];
	uint32_t epoch;
	uint64_t notifications, chains, interrupts; /* virtio_fs_counts */
	/* Requests whose buffers a worker may still touch. */
	pthread_mutex_t mu;
	pthread_cond_t idle;
	unsigned busy;
};

static struct vfs_dev *to_fs(struct virtio_dev *d)
{
	return d->priv;
}

static void free_list_rebuild(struct vfs_dev *fs)
{
	fs->free = NULL;
	for (unsigned i = fs->nr_slots; i-- > 0;) {
		fs->slots[i].next_free = fs->free;
		fs->free = &fs->slots[i];
	}
	memset(fs->outstanding, 0, sizeof(fs->outstanding));
}

/* Worker thread: the server wrote @len reply bytes. */
static void vfs_done(struct fuse_request *req, size_t len)
{
	struct vfs_slot *slot = (struct vfs_slot *)req;
	struct vfs_dev *fs = slot->fs;
	struct virtio_dev *d = fs->dev;
	uint32_t epoch = slot->epoch;
	uint16_t head = slot->head;
	uint8_t q = slot->q;

	pthread_mutex_lock(&fs->mu);
	if (--fs->busy == 0)
		pthread_cond_broadcast(&fs->idle);
	pthread_mutex_unlock(&fs->mu);

	pthread_mutex_lock(&d->lock);
	if (epoch == fs->epoch) {
		fs->outstanding[q]--;
		slot->next_free = fs->free;
		fs->free = slot;
		if (virtio_dev_live(d)) {
			if (vq_push(&d->vqs[q], head, (uint32_t)len) < 0)
				virtio_dev_fail(d, "queue %u: %s", q,
						d->vqs[q].error ? d->vqs[q].error : "push failed");
			else if (virtio_dev_used(d, q))
				fs->interrupts++;
		}
	}
	pthread_mutex_unlock(&d->lock);
}

/* Event-loop thread, device lock held. */
static void vfs_queue_notify(struct virtio_dev *d, unsigned q)
{
	struct vfs_dev *fs = to_fs(d);
	struct virtq *vq;

	if (q >= d->nr_queues || !virtio_dev_live(d))
		return;
	vq = &d->vqs[q];
	fs->notifications++;
	do {
		vq_disable_kicks(vq);
		for (;;) {
			struct vfs_slot *slot = fs->free;
			struct vq_chain c;
			int r;

			if (!slot) {
				virtio_dev_fail(d, "no request slot free");
				return;
			}
			r = vq_pop(vq, &c, slot->iov, VIRTQ_MAX_SIZE);
			if (r < 0) {
				virtio_dev_fail(d, "queue %u: %s", q, vq->error ? vq->error : "bad chain");
				return;
			}
			if (r == 0)
				break;
			if (fs->outstanding[q] >= vq->size) {
				virtio_dev_fail(d, "queue %u: more requests in flight than it holds", q);
				return;
			}
			fs->free = slot->next_free;
			fs->outstanding[q]++;
			fs->chains++;
			slot->head = c.head;
			slot->q = (uint8_t)q;
			slot->epoch = fs->epoch;
			slot->req = (struct fuse_request){
				.job.owner = fs, .in = c.iov, .nin = c.nr_out,
				.out = c.iov + c.nr_out, .nout = c.nr_in, .done = vfs_done,
			};
			pthread_mutex_lock(&fs->mu);
			fs->busy++;
			pthread_mutex_unlock(&fs->mu);
			fuse_server_submit(fs->srv, &slot->req);
		}
	} while (vq_enable_kicks(vq));
}

/* Device lock held (a vCPU's status write, or teardown). */
static void vfs_reset(struct virtio_dev *d)
{
	struct vfs_dev *fs = to_fs(d);
	unsigned dropped;

	fs->epoch++;
	dropped = fuse_server_cancel(fs->srv, fs);
	pthread_mutex_lock(&fs->mu);
	fs->busy -= dropped;
	while (fs->busy)
		pthread_cond_wait(&fs->idle, &fs->mu);
	pthread_mutex_unlock(&fs->mu);
	free_list_rebuild(fs);
	/* The guest's FUSE connection is gone with the rings. */
	fuse_server_reset(fs->srv);
}

static void vfs_config_read(struct virtio_dev *d, uint32_t off, void *data, unsigned len)
{
	memcpy(data, (const uint8_t *)&to_fs(d)->config + off, len);
}

static void vfs_config_write(struct virtio_dev *d, uint32_t off, const void *data,
			     unsigned len)
{
	/* Read-only config space: ignored. */
}

static int vfs_activate(struct virtio_dev *d)
{
	return 0;
}

static void vfs_destroy(struct virtio_dev *d)
{
	struct vfs_dev *fs = to_fs(d);

	if (!fs)
		return;
	/* Joins the workers (each completes what it runs; queued requests
	 * are dropped): after this nothing touches the slots. */
	fuse_server_destroy(fs->srv);
	pthread_cond_destroy(&fs->idle);
	pthread_mutex_destroy(&fs->mu);
	free(fs->slots);
	free(fs);
	d->priv = NULL;
}

/* Device lock held. */
static void vfs_dump(struct virtio_dev *d, FILE *f)
{
	struct vfs_dev *fs = to_fs(d);
	unsigned busy;

	pthread_mutex_lock(&fs->mu);
	busy = fs->busy;
	pthread_mutex_unlock(&fs->mu);
	fprintf(f, "kvmini: %s: %llu kicks, %llu requests, %llu interrupts; in flight:", d->name,
		(unsigned long long)fs->notifications, (unsigned long long)fs->chains,
		(unsigned long long)fs->interrupts);
	for (unsigned q = 0; q < d->nr_queues; q++)
		fprintf(f, " %u", fs->outstanding[q]);
	fprintf(f, " (queue 0 up), %u not yet answered by a worker\r\n", busy);
}

static const struct virtio_dev_ops vfs_ops = {
	.config_read = vfs_config_read,
	.config_write = vfs_config_write,
	.activate = vfs_activate,
	.queue_notify = vfs_queue_notify,
	.reset = vfs_reset,
	.destroy = vfs_destroy,
	.dump = vfs_dump,
};

unsigned virtio_fs_in_flight(struct virtio_dev *d)
{
	struct vfs_dev *fs = to_fs(d);
	unsigned n = 0;

	pthread_mutex_lock(&d->lock);
	for (unsigned q = 0; q < d->nr_queues; q++)
		n += fs->outstanding[q];
	pthread_mutex_unlock(&d->lock);
	return n;
}

void virtio_fs_counts(struct virtio_dev *d, struct virtio_fs_counts *out)
{
	struct vfs_dev *fs = to_fs(d);

	*out = (struct virtio_fs_counts){ 0 };
	/* The config's tag is NUL-padded, not terminated: out->tag has room
	 * for the NUL. */
	memcpy(out->tag, fs->config.tag, sizeof(fs->config.tag));
	pthread_mutex_lock(&d->lock);
	out->notifications = fs->notifications;
	out->chains = fs->chains;
	out->interrupts = fs->interrupts;
	pthread_mutex_unlock(&d->lock);
	fuse_server_op_counts(fs->srv, out->ops);
}

static int check_cfg(const struct virtio_fs_cfg *cfg, const char *name, unsigned *nq,
		     struct kv_err *e)
{
	size_t tlen = cfg->tag ? strlen(cfg->tag) : 0;

	if (tlen == 0 || tlen > VIRTIO_FS_TAG_MAX)
		return kv_err_set(e, -EINVAL, "%s: share %s: the tag must be 1 to %u bytes "
				  "(got %zu)", name, cfg->path, VIRTIO_FS_TAG_MAX, tlen);
	*nq = cfg->num_request_queues ? cfg->num_request_queues : 1;
	if (*nq > VIRTIO_MAX_QUEUES - 1)
		return kv_err_set(e, -EINVAL, "%s: share %s: %u request queues (at most %u)",
				  name, cfg->path, *nq, VIRTIO_MAX_QUEUES - 1);
	return 0;
}

int virtio_fs_create(const struct virtio_fs_cfg *cfg, const struct guest_mem *mem,
		     struct evloop *loop, struct virtio_dev *dev, struct kv_err *e)
{
	struct vfs_dev *fs;
	unsigned nq = 0;
	char name[32];
	int r;

	snprintf(name, sizeof(name), "virtio-fs%u", cfg->index);
	r = check_cfg(cfg, name, &nq, e);
	if (r < 0)
		return r;
	fs = calloc(1, sizeof(*fs));
	if (!fs)
		return kv_err_set(e, -ENOMEM, "%s: out of memory", name);
	fs->dev = dev;
	fs->nr_slots = (nq + 1) * VIRTQ_MAX_SIZE;
	fs->slots = calloc(fs->nr_slots, sizeof(*fs->slots));
	if (!fs->slots) {
		free(fs);
		return kv_err_set(e, -ENOMEM, "%s: out of memory for request slots", name);
	}
	for (unsigned i = 0; i < fs->nr_slots; i++)
		fs->slots[i].fs = fs;
	free_list_rebuild(fs);
	pthread_mutex_init(&fs->mu, NULL);
	pthread_cond_init(&fs->idle, NULL);

	struct fuse_server_cfg sc = {
		.root = cfg->path, .name = name, .readonly = cfg->readonly, .cache = cfg->cache,
		.max_inodes = cfg->max_inodes, .max_handles = cfg->max_handles,
		.nr_workers = cfg->nr_workers ? cfg->nr_workers : FUSE_SERVER_DEFAULT_WORKERS,
		.thread_enter = cfg->thread_enter, .thread_ctx = cfg->thread_ctx,
	};
	r = fuse_server_create(&sc, &fs->srv, e);
	if (r < 0) {
		kv_err_prefix(e, "%s", name);
		pthread_cond_destroy(&fs->idle);
		pthread_mutex_destroy(&fs->mu);
		free(fs->slots);
		free(fs);
		return r;
	}
	memcpy(fs->config.tag, cfg->tag, strlen(cfg->tag)); /* NUL-padded, not terminated */
	fs->config.num_request_queues = htole32(nq);
	virtio_dev_init(dev, name, VIRTIO_ID_FS, 0, nq + 1, VIRTQ_MAX_SIZE, sizeof(fs->config),
			&vfs_ops, fs, mem, loop);
	return 0;
}
