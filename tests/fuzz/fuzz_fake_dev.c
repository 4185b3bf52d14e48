/* The fake device and host behind the transport fuzz targets, and their
 * oracles: see fuzz_fake_dev.h. */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/eventfd.h>

#include "fuzz_common.h"
#include "fuzz_fake_dev.h"

#define BIT(n) (1ULL << (n))
#define HOLD 4          /* chains held "in flight" per queue */
#define POPS 8          /* chains popped per kick */
#define IOV_CAP 16
#define MAX_ALLOWED 1024
#define MAX_IOEVENTFDS 16
#define DRIVER_BITS (VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | \
		     VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_FAILED)

bool fake_host_fails;
int fake_routes;
static uint8_t fake_config[FAKE_CFG_LEN];

struct held {
	uint16_t head;
	uint32_t in_len, written;
};

struct ioev {
	uint64_t addr;
	unsigned len;
	int64_t datamatch;
	int fd;
};

static struct {
	struct fr *r;
	struct virtio_dev *dev;
	/* device side */
	struct held held[FAKE_NQ][HOLD];
	unsigned nr_held[FAKE_NQ];
	unsigned pops;
	/* oracle state */
	uint16_t issued[FAKE_NQ][VIRTQ_MAX_SIZE]; /* popped, not yet on the used ring */
	unsigned resets, activations;             /* activations since the last reset */
	unsigned step_resets;
	uint8_t status;
	uint64_t frozen_features;
	struct fr_range allowed[MAX_ALLOWED];
	unsigned nr_allowed;
	bool touched;                             /* the device ran queue code this step */
	unsigned quiet_steps;
	/* the driver's view of each queue it posts on */
	struct fr_queue drv[FAKE_NQ];
	/* KVM's ioeventfd table */
	struct ioev ioev[MAX_IOEVENTFDS];
	unsigned nr_ioev;
} fk;

static void allow(uint64_t gpa, uint64_t len)
{
	fk.touched = true;
	FUZZ_CHECK(fk.nr_allowed < MAX_ALLOWED);
	fk.allowed[fk.nr_allowed++] = (struct fr_range){ gpa, len };
}

/* The whole used ring of an enabled queue (flags, idx, ring, avail_event). */
static void allow_used_ring(const struct virtq *vq)
{
	if (vq->enabled)
		allow(vq->used_gpa, 6 + 8ull * vq->size);
}

static uint64_t negotiated(const struct virtio_dev *d)
{
	return d->driver_features & d->features;
}

/* ---- the device ---- */

static void fd_config_read(struct virtio_dev *d, uint32_t off, void *data, unsigned len)
{
	FUZZ_CHECK(off + len <= FAKE_CFG_LEN);
	memcpy(data, fake_config + off, len);
}

static void fd_config_write(struct virtio_dev *d, uint32_t off, const void *data, unsigned len)
{
	FUZZ_CHECK(off + len <= FAKE_CFG_LEN);
	memcpy(fake_config + off, data, len);
}

static int fd_activate(struct virtio_dev *d)
{
	fk.activations++;
	return 0;
}

/* A completion on the used ring: where vq_push promises it, naming a
 * head the device popped and still owed, within its writable bytes. */
static void complete(struct virtio_dev *d, unsigned q, const struct held *h)
{
	struct virtq *vq = &d->vqs[q];
	uint16_t old = vq->used_idx, idx;
	uint32_t elem[2];

	allow_used_ring(vq);
	if (vq_push(vq, h->head, h->written)) {
		virtio_dev_fail(d, "fuzz: %s", vq->error);
		return;
	}
	memcpy(elem, fk.r->ram + vq->used_gpa + 4 + 8ull * (old % vq->size), sizeof(elem));
	memcpy(&idx, fk.r->ram + vq->used_gpa + 2, sizeof(idx));
	FUZZ_CHECK(idx == (uint16_t)(old + 1));
	FUZZ_CHECK(elem[0] < VIRTQ_MAX_SIZE && fk.issued[q][elem[0]] > 0);
	FUZZ_CHECK(elem[1] == h->written && elem[1] <= h->in_len);
	fk.issued[q][elem[0]]--;
	virtio_dev_used(d, q);
}

/* Pops, checks against the model, writes, completes or holds. */
static void fd_queue_notify(struct virtio_dev *d, unsigned q)
{
	static struct fr_chain_model m;
	struct iovec iov[IOV_CAP];
	struct virtq *vq;

	FUZZ_CHECK(q < FAKE_NQ && d == fk.dev);
	vq = &d->vqs[q];
	/* Transports kick only a live device's enabled queues. */
	FUZZ_CHECK(virtio_dev_live(d) && vq->enabled);
	for (unsigned k = 0; k < POPS; k++) {
		static const uint8_t pattern[128] = { [0 ... 127] = 0xa5 };
		int mret = fr_model_pop(fk.r, vq, IOV_CAP, &m);
		struct vq_chain c;
		int ret = vq_pop(vq, &c, iov, IOV_CAP);
		struct held h;

		fr_model_check(fk.r, mret, &m, ret, &c);
		if (ret < 0) {
			virtio_dev_fail(d, "fuzz: %s", vq->error);
			return;
		}
		if (ret == 0)
			return;
		fk.issued[q][c.head]++;
		for (unsigned i = 0; i < m.n; i++)
			if (m.seg[i].write)
				allow(m.seg[i].gpa, m.seg[i].len);
		h = (struct held){ c.head, (uint32_t)c.in_len, 0 };
		h.written = (uint32_t)(1 + (c.head * 131u + fk.pops++) % sizeof(pattern));
		if (h.written > h.in_len)
			h.written = h.in_len;
		FUZZ_CHECK(vq_chain_write(&c, 0, pattern, h.written) == h.written);
		if (c.head % 3 && fk.nr_held[q] < HOLD)
			fk.held[q][fk.nr_held[q]++] = h;
		else
			complete(d, q, &h);
	}
}

/* Every chain popped from @q is forgotten (its head no longer owed). */
static void drop_all(unsigned q)
{
	fk.nr_held[q] = 0;
	memset(fk.issued[q], 0, sizeof(fk.issued[q]));
}

static void fd_reset(struct virtio_dev *d)
{
	for (unsigned q = 0; q < FAKE_NQ; q++)
		drop_all(q);
	fk.resets++;
	fk.activations = 0;
}

/* QueueReady = 0: odd heads complete, the rest are dropped. */
static void fd_queue_stop(struct virtio_dev *d, unsigned q)
{
	FUZZ_CHECK(q < FAKE_NQ && d->vqs[q].enabled);
	for (unsigned i = 0; i < fk.nr_held[q]; i++)
		if (fk.held[q][i].head & 1)
			complete(d, q, &fk.held[q][i]);
	drop_all(q);
}

const struct virtio_dev_ops fake_dev_ops = {
	.config_read = fd_config_read, .config_write = fd_config_write,
	.activate = fd_activate, .queue_notify = fd_queue_notify, .reset = fd_reset,
	.queue_stop = fd_queue_stop,
};

void fake_device_event(struct virtio_dev *dev, uint8_t op)
{
	unsigned q = op & 1;

	pthread_mutex_lock(&dev->lock);
	if (op < 0xf8) {
		/* The oldest chain held on @q completes ("I/O done"). */
		if (fk.nr_held[q] && dev->vqs[q].enabled && !dev->broken) {
			struct held h = fk.held[q][0];

			memmove(&fk.held[q][0], &fk.held[q][1], --fk.nr_held[q] * sizeof(h));
			complete(dev, q, &h);
		} else {
			virtio_dev_used(dev, q);
		}
	} else if (op < 0xfc) {
		virtio_dev_fail(dev, "fuzz: device failure %d", op);
	} else {
		fake_host_fails = !fake_host_fails;
	}
	pthread_mutex_unlock(&dev->lock);
}

/* ---- the host ---- */

static int fh_msi_route(void *ctx, int *gsi, uint64_t addr, uint32_t data, int fd)
{
	if (fake_host_fails)
		return -ENOSPC;
	if (*gsi < 0) {         /* a new route; >= 0 updates one */
		*gsi = 24 + fake_routes;
		fake_routes++;
	}
	return 0;
}

static void fh_msi_unroute(void *ctx, int gsi, int fd)
{
	FUZZ_CHECK(gsi >= 24);
	fake_routes--;
}

/* KVM_IOEVENTFD: assigning may fail (host failure), a duplicate is
 * refused; deassigning must name an assigned one exactly. */
static int fh_ioeventfd(void *ctx, uint64_t addr, unsigned len, int64_t datamatch, int fd,
			bool assign)
{
	for (unsigned i = 0; i < fk.nr_ioev; i++) {
		struct ioev *e = &fk.ioev[i];

		if (e->addr != addr || e->datamatch != datamatch)
			continue;
		if (assign)
			return -EEXIST;
		FUZZ_CHECK(e->len == len && e->fd == fd);
		*e = fk.ioev[--fk.nr_ioev];
		return 0;
	}
	FUZZ_CHECK(assign); /* deassigning something never assigned */
	if (fake_host_fails)
		return -EINVAL;
	FUZZ_CHECK(fk.nr_ioev < MAX_IOEVENTFDS);
	fk.ioev[fk.nr_ioev++] = (struct ioev){ addr, len, datamatch, fd };
	return 0;
}

static int sink_set_level(void *ctx, unsigned gsi, int level)
{
	return 0;
}

const struct irq_sink fake_sink = { sink_set_level, NULL };

void fake_kvm_write(struct bus *bus, uint64_t addr, uint64_t v, unsigned len)
{
	for (unsigned i = 0; i < fk.nr_ioev; i++) {
		const struct ioev *e = &fk.ioev[i];
		uint64_t mask = len >= 8 ? ~0ULL : (1ULL << (8 * len)) - 1;

		if (e->addr == addr && (e->len == 0 || e->len == len) &&
		    (e->datamatch < 0 || (uint64_t)e->datamatch == (v & mask))) {
			FUZZ_CHECK(eventfd_write(e->fd, 1) == 0);
			return;
		}
	}
	bus_dispatch(bus, addr, &v, len, true);
}

unsigned fake_ioeventfds_in(uint64_t base, uint64_t len)
{
	unsigned n = 0;

	for (unsigned i = 0; i < fk.nr_ioev; i++)
		n += fk.ioev[i].addr >= base && fk.ioev[i].addr - base < len;
	return n;
}

void fake_host_calls(struct virtio_host *host, uint8_t hostcfg)
{
	if (hostcfg & 1) {
		host->msi_route = fh_msi_route;
		host->msi_unroute = fh_msi_unroute;
	}
	if (hostcfg & 2)
		host->ioeventfd = fh_ioeventfd;
}

void fake_reset(struct fr *r, struct virtio_dev *dev)
{
	memcpy(fake_config, "\x11\x22\x33\x44\x55\x66\x77\x88", FAKE_CFG_LEN);
	fake_host_fails = false;
	fake_routes = 0;
	memset(&fk, 0, sizeof(fk));
	fk.r = r;
	fk.dev = dev;
}

/* ---- the driver ---- */

void fake_post(struct virtio_dev *dev, unsigned q, struct fz *f)
{
	const struct virtq *vq = &dev->vqs[q];
	struct fr_queue *d = &fk.r->q[q];
	struct fr_seg s[4];
	unsigned n = 1 + fz_u8(f) % 4;
	uint8_t how = fz_u8(f);

	for (unsigned i = 0; i < n; i++) {
		uint16_t len = fz_u16(f);
		uint8_t fl = fz_u8(f);

		s[i].len = len % 1024 + (fl & 0x80 ? 4096 : 0);
		s[i].write = fl & 1;
		/* Mostly fresh buffers; sometimes anywhere in RAM (rings too). */
		s[i].gpa = (fl & 0x70) == 0x70 ? fz_u32(f) % fk.r->ram_size : fr_alloc(fk.r, s[i].len);
	}
	if (!vq->enabled)
		return;
	/* The driver's ring is the one the device has: pick up from it. */
	if (d->size != vq->size || d->desc != vq->desc_gpa || d->avail != vq->avail_gpa ||
	    d->used != vq->used_gpa) {
		uint16_t idx;

		memcpy(&idx, fk.r->ram + vq->avail_gpa + 2, sizeof(idx));
		*d = (struct fr_queue){ .size = vq->size, .desc = vq->desc_gpa,
					.avail = vq->avail_gpa, .used = vq->used_gpa, .avail_idx = idx };
	}
	fr_post(fk.r, q, s, n, how & 1);
}

/* ---- the oracles ---- */

void fake_step_begin(void)
{
	struct virtio_dev *d = fk.dev;

	fk.nr_allowed = 0;
	fk.step_resets = fk.resets;
	fk.touched = false;
	pthread_mutex_lock(&d->lock);
	fk.status = d->status;
	if (d->status & VIRTIO_CONFIG_S_FEATURES_OK)
		fk.frozen_features = d->driver_features;
	for (unsigned q = 0; q < FAKE_NQ; q++)
		if (d->vqs[q].enabled)
			fk.allowed[fk.nr_allowed++] = (struct fr_range){ d->vqs[q].used_gpa,
									   6 + 8ull * d->vqs[q].size };
	pthread_mutex_unlock(&d->lock);
}

static void check_queues(const struct virtio_dev *d)
{
	uint64_t neg = negotiated(d);

	for (unsigned q = 0; q < FAKE_NQ; q++) {
		const struct virtq *vq = &d->vqs[q];

		if (!vq->enabled) {
			/* Stopped or reset: the device finished or dropped its work. */
			FUZZ_CHECK(fk.nr_held[q] == 0);
			continue;
		}
		FUZZ_CHECK(d->status & VIRTIO_CONFIG_S_FEATURES_OK);
		FUZZ_CHECK(vq->event_idx == !!(neg & BIT(VIRTIO_RING_F_EVENT_IDX)));
		FUZZ_CHECK(vq->indirect == !!(neg & BIT(VIRTIO_RING_F_INDIRECT_DESC)));
	}
}

static void check_status(const struct virtio_dev *d)
{
	uint8_t old = fk.status, now = d->status;
	bool reset = fk.resets != fk.step_resets;

	if (now & VIRTIO_CONFIG_S_FEATURES_OK) {
		FUZZ_CHECK(!(d->driver_features & ~d->features));
		FUZZ_CHECK(d->driver_features & BIT(VIRTIO_F_VERSION_1));
	}
	if (virtio_dev_live(d))
		FUZZ_CHECK(now & VIRTIO_CONFIG_S_FEATURES_OK);
	FUZZ_CHECK(fk.activations <= 1);
	if (reset)
		return;
	/* Only a reset clears the driver's bits or NEEDS_RESET, or reopens
	 * the negotiation. */
	FUZZ_CHECK(!(old & DRIVER_BITS & ~now));
	FUZZ_CHECK(!(old & VIRTIO_CONFIG_S_NEEDS_RESET) || (now & VIRTIO_CONFIG_S_NEEDS_RESET));
	if (old & VIRTIO_CONFIG_S_FEATURES_OK)
		FUZZ_CHECK(d->driver_features == fk.frozen_features);
}

void fake_step_end(void)
{
	struct virtio_dev *d = fk.dev;

	pthread_mutex_lock(&d->lock);
	/* Only queue code the device ran writes guest memory, so a step
	 * without it is compared only now and then (and at the end). */
	if (fk.touched || ++fk.quiet_steps % 64 == 0) {
		for (unsigned q = 0; q < FAKE_NQ; q++)
			allow_used_ring(&d->vqs[q]);
		fr_shadow_check(fk.r, fk.allowed, fk.nr_allowed);
	}
	check_queues(d);
	check_status(d);
	pthread_mutex_unlock(&d->lock);
}

void fake_check_teardown(void)
{
	fr_shadow_check(fk.r, NULL, 0);  /* nothing written since the last step */
	FUZZ_CHECK(fk.nr_ioev == 0);    /* every ioeventfd deassigned */
	FUZZ_CHECK(fake_routes == 0);   /* every MSI route freed */
}
