/* virtio-blk (virtio 1.x §5.2) on a raw image: one request queue, I/O
 * through libaio with completions on the event-loop thread (an eventfd
 * set on every iocb), synchronous preadv/pwritev when the kernel has no
 * AIO. block_backend.c opens the image and parses requests. */
#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <linux/virtio_blk.h>

#include "kvmini/event_loop.h"
#include "kvmini/log.h"
#include "block_internal.h"

#define BLK_AIO_EVENTS 128

struct blk_dev;

struct blk_req {
	struct iocb iocb;
	struct blk_dev *b;
	struct blk_req *next;      /* pending list */
	struct vq_chain chain;
	uint8_t *status;           /* last byte of the last writable buffer */
	uint32_t type;
	uint64_t offset;           /* bytes */
	size_t data_len;
	bool direct;               /* iocb on the O_DIRECT fd */
	bool is_write;
	unsigned nr_data;
	struct iovec data[VIRTQ_MAX_SIZE];
	struct iovec iov[VIRTQ_MAX_SIZE];
};

struct blk_dev {
	struct virtio_dev *dev;
	struct blk_image img;
	struct virtio_blk_config config; /* little-endian, as the guest reads it */
	struct evloop *loop;
	int efd;
	bool loop_registered;
	io_context_t ctx;
	bool aio;                  /* false: synchronous I/O on the loop thread */
	bool aio_fsync;            /* IOCB_CMD_FDSYNC accepted */
	unsigned in_flight;        /* submitted to the kernel */
	unsigned outstanding;      /* popped, not yet completed */
	struct blk_req *pending, *pending_tail;
	bool used_pending;         /* vq_push done, virtio_dev_used not yet */
	blk_done_hook hook;
	void *hook_opaque;
};

static struct blk_dev *to_blk(struct virtio_dev *d)
{
	return d->priv;
}

/* ---- completion ---- */

static void req_complete(struct blk_dev *b, struct blk_req *req, uint8_t status, uint32_t used)
{
	struct virtio_dev *d = b->dev;

	*req->status = status;
	b->outstanding--;
	if (b->hook) {
		b->hook(b->hook_opaque, req->chain.head, used, status);
	} else if (virtio_dev_live(d)) {
		if (vq_push(&d->vqs[0], req->chain.head, used) < 0)
			virtio_dev_fail(d, "used ring: %s",
					d->vqs[0].error ? d->vqs[0].error : "push failed");
		else
			b->used_pending = true;
	}
	free(req);
}

static void flush_used(struct blk_dev *b)
{
	if (b->used_pending) {
		b->used_pending = false;
		virtio_dev_used(b->dev, 0);
	}
}

static uint32_t used_len_for(const struct blk_req *req, uint8_t status)
{
	if (req->type == VIRTIO_BLK_T_IN && status == VIRTIO_BLK_S_OK)
		return (uint32_t)req->data_len + 1;
	return 1;
}

static void req_finish(struct blk_dev *b, struct blk_req *req, uint8_t status)
{
	req_complete(b, req, status, used_len_for(req, status));
}

/* ---- submission ---- */

static bool iov_aligned(const struct iovec *iov, unsigned n, uint64_t off, uint32_t align)
{
	if (off % align)
		return false;
	for (unsigned i = 0; i < n; i++)
		if ((uintptr_t)iov[i].iov_base % align || iov[i].iov_len % align)
			return false;
	return true;
}

static void req_sync(struct blk_dev *b, struct blk_req *req)
{
	int fd = req->iocb.aio_fildes;
	int r;

	if (req->type == VIRTIO_BLK_T_FLUSH)
		r = fdatasync(fd) < 0 ? -errno : 0;
	else if (req->is_write)
		r = blk_pwritev_full(fd, req->data, req->nr_data, req->offset);
	else
		r = blk_preadv_full(fd, req->data, req->nr_data, req->offset);
	req_finish(b, req, r < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK);
}

static void pending_push(struct blk_dev *b, struct blk_req *req, bool front)
{
	req->next = NULL;
	if (!b->pending) {
		b->pending = b->pending_tail = req;
	} else if (front) {
		req->next = b->pending;
		b->pending = req;
	} else {
		b->pending_tail->next = req;
		b->pending_tail = req;
	}
}

static struct blk_req *pending_pop(struct blk_dev *b)
{
	struct blk_req *req = b->pending;

	if (req) {
		b->pending = req->next;
		if (!b->pending)
			b->pending_tail = NULL;
	}
	return req;
}

/* Hands queued requests to the kernel. EAGAIN keeps them queued for the
 * next completion (or, with nothing in flight to complete, does them
 * synchronously rather than stall). */
static void submit_pending(struct blk_dev *b)
{
	while (b->pending) {
		if (b->in_flight >= BLK_AIO_EVENTS)
			return;
		struct blk_req *req = b->pending;
		struct iocb *cb = &req->iocb;
		int r = io_submit(b->ctx, 1, &cb);

		if (r == 1) {
			pending_pop(b);
			b->in_flight++;
			continue;
		}
		if (r == -EAGAIN && b->in_flight > 0)
			return;
		if (r == -EINVAL && req->direct) {
			/* The O_DIRECT fd refused it at submission: go buffered. */
			req->direct = false;
			cb->aio_fildes = req->is_write ? b->img.write_fd : b->img.fd;
			continue;
		}
		pending_pop(b);
		if (req->type == VIRTIO_BLK_T_FLUSH && r == -EINVAL && b->aio_fsync) {
			LOG_INFO("%s: no IOCB_CMD_FDSYNC in this kernel: flushes are synchronous",
				 b->dev->name);
			b->aio_fsync = false;
		}
		if (r == -EAGAIN || req->type == VIRTIO_BLK_T_FLUSH) {
			req_sync(b, req);
			continue;
		}
		LOG_GUEST(&b->dev->rl, "%s: io_submit: %s", b->dev->name, strerror(-r));
		req_finish(b, req, VIRTIO_BLK_S_IOERR);
	}
}

static void req_queue_io(struct blk_dev *b, struct blk_req *req, int fd)
{
	struct iocb *cb = &req->iocb;

	if (req->type == VIRTIO_BLK_T_FLUSH)
		io_prep_fdsync(cb, fd);
	else if (req->is_write)
		io_prep_pwritev(cb, fd, req->data, (int)req->nr_data, (long long)req->offset);
	else
		io_prep_preadv(cb, fd, req->data, (int)req->nr_data, (long long)req->offset);
	cb->data = req;
	if (!b->aio || (req->type == VIRTIO_BLK_T_FLUSH && !b->aio_fsync)) {
		req_sync(b, req);
		return;
	}
	io_set_eventfd(cb, b->efd);
	pending_push(b, req, false);
	submit_pending(b);
}

/* Picks the fd: the O_DIRECT one when the buffers and offset allow it. */
static int pick_fd(struct blk_dev *b, struct blk_req *req, int buffered_fd, int direct_fd)
{
	uint32_t align = b->img.blk_size > BLK_SECTOR ? b->img.blk_size : BLK_SECTOR;

	req->direct = direct_fd >= 0 && iov_aligned(req->data, req->nr_data, req->offset, align);
	return req->direct ? direct_fd : buffered_fd;
}

static void start_rw(struct blk_dev *b, struct blk_req *req)
{
	struct blk_image *img = &b->img;
	const struct vq_chain *c = &req->chain;
	int n;

	if (req->data_len == 0) {
		req_finish(b, req, VIRTIO_BLK_S_OK);
		return;
	}
	if (req->is_write)
		n = blk_iov_slice(c->iov, c->nr_out, BLK_HDR_LEN, req->data_len, req->data,
				  VIRTQ_MAX_SIZE);
	else
		n = blk_iov_slice(c->iov + c->nr_out, c->nr_in, 0, req->data_len, req->data,
				  VIRTQ_MAX_SIZE);
	assert(n >= 0); /* lengths come from the chain itself */
	req->nr_data = (unsigned)n;

	if (req->is_write) {
		if (img->have_overlay && blk_overlay_prepare_write(&img->ov, req->offset,
								   req->data_len) < 0) {
			req_finish(b, req, VIRTIO_BLK_S_IOERR);
			return;
		}
		int fd = img->write_fd == img->fd ? pick_fd(b, req, img->fd, img->direct_fd)
						  : img->write_fd;
		req_queue_io(b, req, fd);
		return;
	}
	int src = img->have_overlay ? blk_overlay_read_source(&img->ov, req->offset,
							      req->data_len) : 0;
	if (src < 0) {
		/* Spans base and overlay blocks: block by block, synchronously. */
		int r = blk_overlay_preadv(&img->ov, req->data, req->nr_data, req->offset);

		req_finish(b, req, r < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK);
		return;
	}
	if (src == 1)
		req_queue_io(b, req, img->ov.fd);
	else
		req_queue_io(b, req, pick_fd(b, req, img->fd, img->read_direct_fd));
}

static void start_discard(struct blk_dev *b, struct blk_req *req)
{
	struct blk_discard_seg segs[BLK_DISCARD_SEG_MAX];
	const char *why;
	unsigned n;
	int st = blk_parse_segments(&req->chain, b->img.size / BLK_SECTOR, req->type, segs, &n,
				    &why);

	if (st != VIRTIO_BLK_S_OK) {
		LOG_GUEST(&b->dev->rl, "%s: %s", b->dev->name, why);
		req_finish(b, req, (uint8_t)st);
		return;
	}
	for (unsigned i = 0; i < n && st == VIRTIO_BLK_S_OK; i++) {
		if (!segs[i].num_sectors)
			continue;
		/* A punched hole reads back as zeroes, so it serves both. */
		int r = blk_image_punch(&b->img, segs[i].sector * BLK_SECTOR,
					(uint64_t)segs[i].num_sectors * BLK_SECTOR);
		if (r == -EOPNOTSUPP)
			st = VIRTIO_BLK_S_UNSUPP;
		else if (r < 0)
			st = VIRTIO_BLK_S_IOERR;
	}
	req_finish(b, req, (uint8_t)st);
}

/* Parse, then act. */
static void req_start(struct blk_dev *b, struct blk_req *req)
{
	struct virtio_dev *d = b->dev;
	struct blk_image *img = &b->img;
	const struct vq_chain *c = &req->chain;
	struct blk_parsed p;
	const char *why;
	int st = blk_parse(c, img->size / BLK_SECTOR, img->readonly, img->discard, &p, &why);

	if (st < 0) {
		uint16_t head = c->head;

		free(req);
		b->outstanding--;
		virtio_dev_fail(d, "request %u: %s", head, why);
		return;
	}
	const struct iovec *last = &c->iov[c->nr_out + c->nr_in - 1];

	req->status = (uint8_t *)last->iov_base + last->iov_len - 1;
	req->type = p.type;
	req->data_len = p.data_len;
	if (st != VIRTIO_BLK_S_OK) {
		LOG_GUEST(&d->rl, "%s: request %u (type %u): %s", d->name, c->head, p.type, why);
		req_complete(b, req, (uint8_t)st, 1);
		return;
	}
	switch (p.type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		req->is_write = p.type == VIRTIO_BLK_T_OUT;
		req->offset = p.sector * BLK_SECTOR;
		start_rw(b, req);
		break;
	case VIRTIO_BLK_T_FLUSH:
		/* A snapshot's overlay dies with us and a ro disk is clean. */
		if (img->write_fd != img->fd) {
			req_finish(b, req, VIRTIO_BLK_S_OK);
			break;
		}
		req_queue_io(b, req, img->fd);
		break;
	case VIRTIO_BLK_T_GET_ID: {
		char id[BLK_ID_LEN] = { 0 };

		memcpy(id, img->serial, strnlen(img->serial, BLK_ID_LEN));
		vq_chain_write(c, 0, id, p.data_len);
		req_complete(b, req, VIRTIO_BLK_S_OK, (uint32_t)p.data_len + 1);
		break;
	}
	default: /* DISCARD, WRITE_ZEROES: blk_parse let nothing else through */
		start_discard(b, req);
		break;
	}
}

static struct blk_req *req_alloc(struct blk_dev *b)
{
	struct blk_req *req = malloc(sizeof(*req));

	if (!req)
		return NULL;
	memset(req, 0, offsetof(struct blk_req, data));
	req->b = b;
	b->outstanding++;
	return req;
}

void blk_handle_chain(struct virtio_dev *d, const struct vq_chain *c)
{
	struct blk_dev *b = to_blk(d);
	struct blk_req *req = req_alloc(b);
	unsigned n = c->nr_out + c->nr_in;

	if (!req) {
		LOG_ERR("%s: out of memory for a request", d->name);
		return;
	}
	assert(n <= VIRTQ_MAX_SIZE);
	req->chain = *c;
	memcpy(req->iov, c->iov, n * sizeof(*c->iov));
	req->chain.iov = req->iov;
	req_start(b, req);
}

/* ---- reaping ---- */

static void reap_events(struct blk_dev *b, long min)
{
	struct io_event ev[32];

	for (;;) {
		int n = io_getevents(b->ctx, min, 32, ev, NULL);

		if (n == -EINTR)
			continue;
		if (n <= 0)
			return;
		for (int i = 0; i < n; i++) {
			struct blk_req *req = ev[i].data;
			long res = (long)ev[i].res;

			b->in_flight--;
			if (req->direct && res == -EINVAL) {
				/* The filesystem refused this O_DIRECT I/O: redo it buffered. */
				req->direct = false;
				req->iocb.aio_fildes = req->is_write ? b->img.write_fd : b->img.fd;
				pending_push(b, req, true);
				continue;
			}
			uint8_t st = req->type == VIRTIO_BLK_T_FLUSH
				? (res < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK)
				: blk_status_from_result(res, req->data_len);
			if (st != VIRTIO_BLK_S_OK)
				LOG_GUEST(&b->dev->rl, "%s: host I/O error at byte %llu: %s",
					  b->dev->name, (unsigned long long)req->offset,
					  res < 0 ? strerror((int)-res) : "short transfer");
			req_finish(b, req, st);
		}
		min = min > n ? min - n : 0;
	}
}

void blk_reap(struct virtio_dev *d)
{
	struct blk_dev *b = to_blk(d);
	uint64_t cnt;

	if (!b->aio)
		return;
	if (read(b->efd, &cnt, sizeof(cnt)) < 0) {
		/* EAGAIN: nothing signalled; reap anyway, it is cheap. */
	}
	reap_events(b, 0);
	submit_pending(b);
	flush_used(b);
}

unsigned blk_in_flight(struct virtio_dev *d)
{
	return to_blk(d)->outstanding;
}

void blk_use_sync_io(struct virtio_dev *d)
{
	struct blk_dev *b = to_blk(d);

	assert(b->outstanding == 0);
	if (b->aio)
		io_destroy(b->ctx);
	b->aio = false;
}

void blk_set_done_hook(struct virtio_dev *d, blk_done_hook hook, void *opaque)
{
	to_blk(d)->hook = hook;
	to_blk(d)->hook_opaque = opaque;
}

static void blk_aio_ready(void *opaque, uint32_t events)
{
	struct virtio_dev *d = opaque;

	pthread_mutex_lock(&d->lock);
	blk_reap(d);
	pthread_mutex_unlock(&d->lock);
}

/* Waits for every iocb (their buffers are guest memory) and forgets
 * every request, answered or not: the rings are gone. */
static void blk_drain(struct blk_dev *b)
{
	struct io_event ev[32];

	while (b->in_flight > 0) {
		int n = io_getevents(b->ctx, 1, 32, ev, NULL);

		if (n == -EINTR)
			continue;
		if (n < 0) {
			LOG_ERR("%s: io_getevents: %s", b->dev->name, strerror(-n));
			break;
		}
		for (int i = 0; i < n; i++) {
			free(ev[i].data);
			b->in_flight--;
			b->outstanding--;
		}
	}
	for (struct blk_req *req; (req = pending_pop(b));) {
		free(req);
		b->outstanding--;
	}
	b->used_pending = false;
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
	struct blk_dev *b = to_blk(d);
	struct virtq *vq = &d->vqs[0];

	if (q != 0 || !virtio_dev_live(d))
		return;
	do {
		vq_disable_kicks(vq);
		for (;;) {
			struct blk_req *req = req_alloc(b);

			if (!req) {
				LOG_ERR("%s: out of memory for a request", d->name);
				break;
			}
			int r = vq_pop(vq, &req->chain, req->iov, VIRTQ_MAX_SIZE);

			if (r <= 0) {
				free(req);
				b->outstanding--;
				if (r < 0) {
					virtio_dev_fail(d, "queue 0: %s",
							vq->error ? vq->error : "bad chain");
					return;
				}
				break;
			}
			/* A driver cannot have more chains out than the ring holds
			 * (unless it republishes heads still in flight): bound our
			 * memory by that. */
			if (b->outstanding > vq->size) {
				free(req);
				b->outstanding--;
				virtio_dev_fail(d, "more requests in flight than the queue holds");
				return;
			}
			req_start(b, req);
			if (!virtio_dev_live(d))
				return;
		}
	} while (vq_enable_kicks(vq));
	flush_used(b);
}

static void blk_reset(struct virtio_dev *d)
{
	blk_drain(to_blk(d));
}

static void blk_destroy(struct virtio_dev *d)
{
	struct blk_dev *b = to_blk(d);

	if (!b)
		return;
	/* No callback from now on; then wait for what is still in flight. */
	if (b->loop_registered)
		evloop_del(b->loop, b->efd);
	blk_drain(b);
	if (b->aio)
		io_destroy(b->ctx);
	if (b->efd >= 0)
		close(b->efd);
	blk_image_close(&b->img);
	free(b);
	d->priv = NULL;
}

static const struct virtio_dev_ops blk_ops = {
	.config_read = blk_config_read,
	.config_write = blk_config_write,
	.activate = blk_activate,
	.queue_notify = blk_queue_notify,
	.reset = blk_reset,
	.destroy = blk_destroy,
};

static void fill_config(struct blk_dev *b)
{
	struct virtio_blk_config *c = &b->config;

	memset(c, 0, sizeof(*c));
	c->capacity = htole64(b->img.size / BLK_SECTOR);
	c->size_max = htole32(1u << 20);
	c->seg_max = htole32(BLK_SEG_MAX);
	c->blk_size = htole32(b->img.blk_size);
	c->num_queues = htole16(1);
	if (b->img.discard) {
		c->max_discard_sectors = htole32(BLK_DISCARD_SECTORS_MAX);
		c->max_discard_seg = htole32(BLK_DISCARD_SEG_MAX);
		c->discard_sector_alignment = htole32(BLK_SNAP_BLOCK / BLK_SECTOR);
		c->max_write_zeroes_sectors = htole32(BLK_DISCARD_SECTORS_MAX);
		c->max_write_zeroes_seg = htole32(BLK_DISCARD_SEG_MAX);
		c->write_zeroes_may_unmap = 1;
	}
}

static int blk_setup_aio(struct blk_dev *b, const char *name, struct kv_err *e)
{
	b->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (b->efd < 0)
		return kv_err_set(e, -errno, "%s: eventfd: %s", name, strerror(errno));
	int r = io_setup(BLK_AIO_EVENTS, &b->ctx);

	if (r < 0) {
		LOG_WARN("%s: no Linux AIO (io_setup: %s): synchronous I/O on the event loop",
			 name, strerror(-r));
		return 0;
	}
	b->aio = true;
	b->aio_fsync = true; /* until the kernel says otherwise */
	return 0;
}

int virtio_blk_create(const struct virtio_blk_cfg *cfg, const struct guest_mem *mem,
		      struct evloop *loop, struct virtio_dev *dev, struct kv_err *e)
{
	struct blk_dev *b = calloc(1, sizeof(*b));
	char name[32];
	int r;

	if (!b)
		return kv_err_set(e, -ENOMEM, "virtio-blk: out of memory");
	snprintf(name, sizeof(name), "virtio-blk%u", cfg->index);
	b->efd = -1;
	b->loop = loop;
	b->dev = dev;
	r = blk_image_open(&b->img, cfg, e);
	if (r < 0)
		goto fail;
	r = blk_setup_aio(b, name, e);
	if (r < 0)
		goto fail;
	/* Unit tests pass no loop and reap by hand. */
	if (loop && b->aio) {
		r = evloop_add(loop, b->efd, EPOLLIN, blk_aio_ready, dev);
		if (r < 0) {
			kv_err_set(e, r, "%s: cannot watch the AIO eventfd: %s", name, strerror(-r));
			goto fail;
		}
		b->loop_registered = true;
	}
	fill_config(b);

	uint64_t features = (1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_BLK_SIZE) |
			    (1ull << VIRTIO_BLK_F_FLUSH);
	if (cfg->readonly)
		features |= 1ull << VIRTIO_BLK_F_RO;
	if (b->img.discard)
		features |= (1ull << VIRTIO_BLK_F_DISCARD) | (1ull << VIRTIO_BLK_F_WRITE_ZEROES);
	virtio_dev_init(dev, name, VIRTIO_ID_BLOCK, features, 1, VIRTQ_MAX_SIZE,
			sizeof(b->config), &blk_ops, b, mem, loop);
	return 0;
fail:
	if (b->aio)
		io_destroy(b->ctx);
	if (b->efd >= 0)
		close(b->efd);
	blk_image_close(&b->img);
	free(b);
	return r;
}
