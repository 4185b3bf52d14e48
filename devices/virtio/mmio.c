/* virtio-mmio transport, version 2 register layout only (virtio 1.x
 * §4.2.2): a 4 KiB window of 32-bit registers, then the device
 * configuration space at 0x100.
 *
 * Queue kicks never run device code on a vCPU thread: each queue has an
 * eventfd watched by the event loop. KVM signals it directly when the
 * host offers ioeventfds (one per queue, matched on the queue index the
 * guest writes to QueueNotify); otherwise the QueueNotify handler writes
 * it.
 *
 * Every register access and every kick takes dev->lock; the transport's
 * own state (selectors, InterruptStatus, line level) lives under it too,
 * so an interrupt raised from the loop thread and an InterruptACK from a
 * vCPU cannot leave the line disagreeing with InterruptStatus. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "kvmini/event_loop.h"
#include "kvmini/layout.h"
#include "kvmini/virtio_mmio.h"

/* Register offsets (§4.2.2). */
#define MMIO_MAGIC_VALUE         0x000
#define MMIO_VERSION             0x004
#define MMIO_DEVICE_ID           0x008
#define MMIO_VENDOR_ID           0x00c
#define MMIO_DEVICE_FEATURES     0x010
#define MMIO_DEVICE_FEATURES_SEL 0x014
#define MMIO_DRIVER_FEATURES     0x020
#define MMIO_DRIVER_FEATURES_SEL 0x024
#define MMIO_QUEUE_SEL           0x030
#define MMIO_QUEUE_NUM_MAX       0x034
#define MMIO_QUEUE_NUM           0x038
#define MMIO_QUEUE_READY         0x044
#define MMIO_QUEUE_NOTIFY        0x050
#define MMIO_INTERRUPT_STATUS    0x060
#define MMIO_INTERRUPT_ACK       0x064
#define MMIO_STATUS              0x070
#define MMIO_QUEUE_DESC_LOW      0x080
#define MMIO_QUEUE_DESC_HIGH     0x084
#define MMIO_QUEUE_DRIVER_LOW    0x090
#define MMIO_QUEUE_DRIVER_HIGH   0x094
#define MMIO_QUEUE_DEVICE_LOW    0x0a0
#define MMIO_QUEUE_DEVICE_HIGH   0x0a4
#define MMIO_CONFIG_GENERATION   0x0fc
#define MMIO_CONFIG              0x100

#define MMIO_MAGIC   0x74726976 /* "virt" */
#define MMIO_VERSION_MODERN 2
#define MMIO_VENDOR  0x554d4551 /* "QEMU": what guests expect to see */

/* InterruptStatus bits. */
#define MMIO_INT_VRING  1u
#define MMIO_INT_CONFIG 2u

struct virtio_mmio;

/* What an eventfd callback needs: the transport and which queue. */
struct mmio_kick {
	struct virtio_mmio *mm;
	unsigned q;
	int fd;                 /* -1 when not created */
	bool ioeventfd;         /* assigned to KVM */
	bool in_loop;           /* registered with the event loop */
};

struct virtio_mmio {
	struct virtio_host host;  /* a copy: the caller's may be on its stack */
	uint64_t base;
	unsigned gsi;
	struct virtio_dev *dev;
	/* register state, under dev->lock */
	uint32_t dev_features_sel;
	uint32_t drv_features_sel;
	uint32_t queue_sel;
	uint32_t isr;             /* InterruptStatus */
	bool line;                /* level last reported through host.irq */
	struct mmio_kick kicks[VIRTIO_MAX_QUEUES];
	struct log_ratelimit rl;
};

/* ---- interrupts (dev->lock held) ---- */

/* Drives the line to "any InterruptStatus bit set", reporting changes only. */
static void mmio_update_line(struct virtio_mmio *mm)
{
	bool want = mm->isr != 0;

	if (want == mm->line)
		return;
	mm->line = want;
	irq_set(mm->host.irq, mm->gsi, want);
}

static void mmio_notify_queue(void *transport, unsigned q)
{
	struct virtio_mmio *mm = transport;

	mm->isr |= MMIO_INT_VRING;
	mmio_update_line(mm);
}

static void mmio_notify_config(void *transport)
{
	struct virtio_mmio *mm = transport;

	mm->isr |= MMIO_INT_CONFIG;
	mmio_update_line(mm);
}

static void mmio_requeue(void *transport, unsigned q)
{
	struct virtio_mmio *mm = transport;
	uint64_t one = 1;

	/* The counter is at its maximum only if a kick is pending anyway. */
	if (q < mm->dev->nr_queues && mm->kicks[q].fd >= 0 &&
	    write(mm->kicks[q].fd, &one, sizeof(one)) < 0)
		LOG_DEBUG("%s: queue %u requeue: %s", mm->dev->name, q, strerror(errno));
}

static const struct virtio_transport_ops mmio_tops = {
	.notify_queue = mmio_notify_queue,
	.notify_config = mmio_notify_config,
	.requeue = mmio_requeue,
};

/* ---- queue kicks ---- */

/* Event-loop thread: queue @k->q was kicked (by KVM or by
 * mmio_queue_notify). */
static void mmio_kick_cb(void *opaque, uint32_t events)
{
	struct mmio_kick *k = opaque;
	struct virtio_dev *dev = k->mm->dev;
	uint64_t n;
	ssize_t got;

	pthread_mutex_lock(&dev->lock);
	/* Drains the counter (kicks coalesce); non-blocking, so an empty
	 * counter (EAGAIN) costs nothing. */
	got = read(k->fd, &n, sizeof(n));
	(void)got;
	/* A kick for a queue the driver never made ready would have the
	 * device walk unchecked ring addresses: drop it. */
	if (virtio_dev_live(dev) && dev->vqs[k->q].enabled && dev->ops->queue_notify)
		dev->ops->queue_notify(dev, k->q);
	pthread_mutex_unlock(&dev->lock);
}

/* vCPU thread, lock held: a QueueNotify write KVM did not catch. */
static void mmio_queue_notify(struct virtio_mmio *mm, uint32_t q)
{
	uint64_t one = 1;

	if (q >= mm->dev->nr_queues) {
		LOG_GUEST(&mm->rl, "%s: QueueNotify for queue %" PRIu32 " of %u, ignored",
			  mm->dev->name, q, mm->dev->nr_queues);
		return;
	}
	/* Only EAGAIN (counter at its maximum) can fail: a kick is pending
	 * anyway. */
	if (write(mm->kicks[q].fd, &one, sizeof(one)) < 0)
		LOG_GUEST(&mm->rl, "%s: cannot signal queue %" PRIu32 " kick", mm->dev->name, q);
}

/* ---- registers (dev->lock held) ---- */

/* The selected queue, or NULL when QueueSel names none. */
static struct virtq *mmio_sel_vq(struct virtio_mmio *mm)
{
	return mm->queue_sel < mm->dev->nr_queues ? &mm->dev->vqs[mm->queue_sel] : NULL;
}

static uint32_t mmio_reg_read(struct virtio_mmio *mm, uint64_t off)
{
	struct virtio_dev *dev = mm->dev;
	struct virtq *vq = mmio_sel_vq(mm);

	switch (off) {
	case MMIO_MAGIC_VALUE:
		return MMIO_MAGIC;
	case MMIO_VERSION:
		return MMIO_VERSION_MODERN;
	case MMIO_DEVICE_ID:
		return dev->device_id;
	case MMIO_VENDOR_ID:
		return MMIO_VENDOR;
	case MMIO_DEVICE_FEATURES:
		if (mm->dev_features_sel > 1)
			return 0;
		return (uint32_t)(dev->features >> (32 * mm->dev_features_sel));
	case MMIO_QUEUE_NUM_MAX:
		return vq ? vq->max_size : 0;
	case MMIO_QUEUE_READY:
		return vq ? vq->enabled : 0;
	case MMIO_INTERRUPT_STATUS:
		return mm->isr;
	case MMIO_STATUS:
		return dev->status;
	case MMIO_CONFIG_GENERATION:
		return dev->config_generation;
	default:
		/* Write-only and reserved registers read as zero. */
		LOG_GUEST(&mm->rl, "%s: read of write-only or unknown register 0x%" PRIx64,
			  dev->name, off);
		return 0;
	}
}

/* Sets the low or high half of a ring address. */
static void set_half(uint64_t *gpa, bool high, uint32_t v)
{
	if (high)
		*gpa = (*gpa & 0xffffffffULL) | ((uint64_t)v << 32);
	else
		*gpa = (*gpa & ~0xffffffffULL) | v;
}

/* QueueNum and the ring addresses of the selected queue. */
static void mmio_queue_config_write(struct virtio_mmio *mm, uint64_t off, uint32_t v)
{
	struct virtq *vq = mmio_sel_vq(mm);

	if (!vq) {
		LOG_GUEST(&mm->rl, "%s: queue register 0x%" PRIx64 " written for absent queue %" PRIu32,
			  mm->dev->name, off, mm->queue_sel);
		return;
	}
	if (vq->enabled) {
		LOG_GUEST(&mm->rl, "%s: queue %" PRIu32 " register 0x%" PRIx64
			  " written while ready, ignored", mm->dev->name, mm->queue_sel, off);
		return;
	}
	switch (off) {
	case MMIO_QUEUE_NUM:
		/* vq_enable checks it against max_size; keep what fits. */
		vq->size = v > UINT16_MAX ? 0 : (uint16_t)v;
		break;
	case MMIO_QUEUE_DESC_LOW:
	case MMIO_QUEUE_DESC_HIGH:
		set_half(&vq->desc_gpa, off == MMIO_QUEUE_DESC_HIGH, v);
		break;
	case MMIO_QUEUE_DRIVER_LOW:
	case MMIO_QUEUE_DRIVER_HIGH:
		set_half(&vq->avail_gpa, off == MMIO_QUEUE_DRIVER_HIGH, v);
		break;
	case MMIO_QUEUE_DEVICE_LOW:
	case MMIO_QUEUE_DEVICE_HIGH:
		set_half(&vq->used_gpa, off == MMIO_QUEUE_DEVICE_HIGH, v);
		break;
	}
}

static void mmio_queue_ready_write(struct virtio_mmio *mm, uint32_t v)
{
	struct virtq *vq = mmio_sel_vq(mm);

	if (!vq) {
		LOG_GUEST(&mm->rl, "%s: QueueReady written for absent queue %" PRIu32,
			  mm->dev->name, mm->queue_sel);
		return;
	}
	if (v == 1 && !vq->enabled)
		virtio_dev_enable_queue(mm->dev, mm->queue_sel); /* checks the config */
	else if (v == 0)
		/* §4.2.2.2: the driver stops a queue by writing 0 and reading it
		 * back (Linux's del_vq); from then on the device must not touch
		 * it, so in-flight work is finished or dropped first. */
		virtio_dev_stop_queue(mm->dev, mm->queue_sel);
	else if (v > 1)
		LOG_GUEST(&mm->rl, "%s: QueueReady value %" PRIu32 " ignored", mm->dev->name, v);
}

static void mmio_status_write(struct virtio_mmio *mm, uint32_t v)
{
	if (v > UINT8_MAX)
		LOG_GUEST(&mm->rl, "%s: Status 0x%" PRIx32 " has bits above 7, dropped",
			  mm->dev->name, v);
	virtio_dev_set_status(mm->dev, (uint8_t)v);
	if ((uint8_t)v == 0) {
		/* Reset: the transport's registers go back to their defaults too. */
		mm->dev_features_sel = 0;
		mm->drv_features_sel = 0;
		mm->queue_sel = 0;
		mm->isr = 0;
		mmio_update_line(mm);
	}
}

static void mmio_reg_write(struct virtio_mmio *mm, uint64_t off, uint32_t v)
{
	struct virtio_dev *dev = mm->dev;

	switch (off) {
	case MMIO_DEVICE_FEATURES_SEL:
		mm->dev_features_sel = v;
		break;
	case MMIO_DRIVER_FEATURES:
		if (dev->status & VIRTIO_CONFIG_S_FEATURES_OK) {
			/* Negotiation is over: features may not change under a
			 * running device. */
			LOG_GUEST(&mm->rl, "%s: DriverFeatures written after FEATURES_OK, ignored",
				  dev->name);
		} else if (mm->drv_features_sel <= 1) {
			unsigned shift = 32 * mm->drv_features_sel;

			dev->driver_features &= ~(0xffffffffULL << shift);
			dev->driver_features |= (uint64_t)v << shift;
		} else if (v) {
			LOG_GUEST(&mm->rl, "%s: DriverFeatures word %" PRIu32 " = 0x%" PRIx32
				  " ignored", dev->name, mm->drv_features_sel, v);
		}
		break;
	case MMIO_DRIVER_FEATURES_SEL:
		mm->drv_features_sel = v;
		break;
	case MMIO_QUEUE_SEL:
		mm->queue_sel = v; /* checked on use */
		break;
	case MMIO_QUEUE_NUM:
	case MMIO_QUEUE_DESC_LOW:
	case MMIO_QUEUE_DESC_HIGH:
	case MMIO_QUEUE_DRIVER_LOW:
	case MMIO_QUEUE_DRIVER_HIGH:
	case MMIO_QUEUE_DEVICE_LOW:
	case MMIO_QUEUE_DEVICE_HIGH:
		mmio_queue_config_write(mm, off, v);
		break;
	case MMIO_QUEUE_READY:
		mmio_queue_ready_write(mm, v);
		break;
	case MMIO_QUEUE_NOTIFY:
		mmio_queue_notify(mm, v);
		break;
	case MMIO_INTERRUPT_ACK:
		mm->isr &= ~v;
		mmio_update_line(mm);
		break;
	case MMIO_STATUS:
		mmio_status_write(mm, v);
		break;
	default:
		LOG_GUEST(&mm->rl, "%s: write of read-only or unknown register 0x%" PRIx64
			  " ignored", dev->name, off);
		break;
	}
}

/* ---- bus handlers ---- */

/* True when @off/@len lies wholly inside the device's configuration
 * space and the device has one to offer. */
static bool mmio_config_ok(struct virtio_mmio *mm, uint64_t off, unsigned len)
{
	uint64_t c = off - MMIO_CONFIG;

	return c < mm->dev->config_len && len <= mm->dev->config_len - c;
}

/* Register accesses must be 32-bit and aligned (§4.2.2.2). */
static bool mmio_reg_access_ok(struct virtio_mmio *mm, uint64_t off, unsigned len,
			       bool is_write)
{
	if (len == 4 && off % 4 == 0)
		return true;
	LOG_GUEST(&mm->rl, "%s: %u-byte %s at register 0x%" PRIx64 " ignored (32-bit only)",
		  mm->dev->name, len, is_write ? "write" : "read", off);
	return false;
}

static void mmio_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	struct virtio_mmio *mm = opaque;
	struct virtio_dev *dev = mm->dev;

	memset(data, 0, len);
	pthread_mutex_lock(&dev->lock);
	if (off >= MMIO_CONFIG) {
		if (mmio_config_ok(mm, off, len) && dev->ops->config_read)
			dev->ops->config_read(dev, (uint32_t)(off - MMIO_CONFIG), data, len);
	} else if (mmio_reg_access_ok(mm, off, len, false)) {
		uint32_t v = mmio_reg_read(mm, off);

		memcpy(data, &v, sizeof(v)); /* x86 host: little-endian like the guest */
	}
	pthread_mutex_unlock(&dev->lock);
}

static void mmio_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	struct virtio_mmio *mm = opaque;
	struct virtio_dev *dev = mm->dev;

	pthread_mutex_lock(&dev->lock);
	if (off >= MMIO_CONFIG) {
		if (mmio_config_ok(mm, off, len) && dev->ops->config_write)
			dev->ops->config_write(dev, (uint32_t)(off - MMIO_CONFIG), data, len);
		else
			LOG_GUEST(&mm->rl, "%s: config write at 0x%" PRIx64 " (%u bytes) ignored",
				  dev->name, off, len);
	} else if (mmio_reg_access_ok(mm, off, len, true)) {
		uint32_t v;

		memcpy(&v, data, sizeof(v));
		mmio_reg_write(mm, off, v);
	}
	pthread_mutex_unlock(&dev->lock);
}

static const struct bus_ops mmio_bus_ops = {
	.read = mmio_read,
	.write = mmio_write,
};

/* ---- create / destroy ---- */

/* Undoes whatever mmio_kick_setup did for @k. */
static void mmio_kick_teardown(struct virtio_mmio *mm, struct mmio_kick *k)
{
	if (k->in_loop)
		evloop_del(mm->host.loop, k->fd);
	if (k->ioeventfd)
		mm->host.ioeventfd(mm->host.ctx, mm->base + MMIO_QUEUE_NOTIFY, 4, k->q, k->fd, false);
	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
	k->in_loop = k->ioeventfd = false;
}

static int mmio_kick_setup(struct virtio_mmio *mm, unsigned q, struct kv_err *e)
{
	struct mmio_kick *k = &mm->kicks[q];
	int r;

	k->mm = mm;
	k->q = q;
	k->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (k->fd < 0)
		return kv_err_set(e, -errno, "%s: queue %u eventfd", mm->dev->name, q);
	if (mm->host.ioeventfd) {
		r = mm->host.ioeventfd(mm->host.ctx, mm->base + MMIO_QUEUE_NOTIFY, 4, q, k->fd, true);
		if (r < 0)
			return kv_err_set(e, r, "%s: ioeventfd for queue %u at 0x%" PRIx64,
					  mm->dev->name, q, mm->base + MMIO_QUEUE_NOTIFY);
		k->ioeventfd = true;
	}
	r = evloop_add(mm->host.loop, k->fd, EPOLLIN, mmio_kick_cb, k);
	if (r < 0)
		return kv_err_set(e, r, "%s: watching queue %u kicks", mm->dev->name, q);
	k->in_loop = true;
	return 0;
}

int virtio_mmio_create(const struct virtio_host *host, uint64_t base, unsigned gsi,
		       struct virtio_dev *dev, struct virtio_mmio **out, struct kv_err *e)
{
	struct virtio_mmio *mm;
	int r;

	if (!host->mmio || !host->loop || dev->nr_queues > VIRTIO_MAX_QUEUES)
		return kv_err_set(e, -EINVAL, "%s: virtio-mmio needs an MMIO bus, an event loop"
				  " and at most %u queues", dev->name, VIRTIO_MAX_QUEUES);
	mm = calloc(1, sizeof(*mm));
	if (!mm)
		return kv_err_set(e, -ENOMEM, "%s: virtio-mmio state", dev->name);
	mm->host = *host;
	mm->base = base;
	mm->gsi = gsi;
	mm->dev = dev;
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		mm->kicks[q].fd = -1;
	for (unsigned q = 0; q < dev->nr_queues; q++) {
		r = mmio_kick_setup(mm, q, e);
		if (r < 0)
			goto fail;
	}
	pthread_mutex_lock(&dev->lock);
	dev->tops = &mmio_tops;
	dev->transport = mm;
	pthread_mutex_unlock(&dev->lock);
	r = bus_register(host->mmio, base, LAYOUT_VIRTIO_MMIO_SIZE, &mmio_bus_ops, mm,
			 dev->name, e);
	if (r < 0) {
		kv_err_prefix(e, "%s: virtio-mmio at 0x%" PRIx64, dev->name, base);
		goto fail_tops;
	}
	*out = mm;
	return 0;

fail_tops:
	pthread_mutex_lock(&dev->lock);
	dev->tops = NULL;
	dev->transport = NULL;
	pthread_mutex_unlock(&dev->lock);
fail:
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		mmio_kick_teardown(mm, &mm->kicks[q]);
	free(mm);
	return r;
}

void virtio_mmio_destroy(struct virtio_mmio *mm)
{
	struct virtio_dev *dev;

	if (!mm)
		return;
	dev = mm->dev;
	/* The registers go first (the vCPUs have stopped: bus.h), then the
	 * kicks (evloop_del waits out a running callback), then the link
	 * to the device. */
	bus_unregister(mm->host.mmio, mm->base, mm);
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		mmio_kick_teardown(mm, &mm->kicks[q]);
	pthread_mutex_lock(&dev->lock);
	if (dev->transport == mm) {
		dev->tops = NULL;
		dev->transport = NULL;
	}
	pthread_mutex_unlock(&dev->lock);
	free(mm);
}
