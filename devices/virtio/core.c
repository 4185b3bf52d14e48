/* The virtio device model shared by every device and transport: status
 * register, feature negotiation, queue enabling and stopping, and
 * NEEDS_RESET.
 *
 * The status register follows virtio 1.x §2.1 and §3.1: the driver only
 * adds bits; a write that would clear one of its bits (ACKNOWLEDGE,
 * DRIVER, FEATURES_OK, DRIVER_OK, FAILED) without a reset breaks the
 * rules, is not applied, and puts the device into NEEDS_RESET. So
 * features are frozen from FEATURES_OK to the next reset, DRIVER_OK
 * activates the device once per reset, and a queue (enabled only after
 * FEATURES_OK) keeps the EVENT_IDX/INDIRECT_DESC choice of the
 * negotiation it was enabled under. NEEDS_RESET is the device's bit and
 * SUSPEND is never offered: the driver's writes of either are ignored.
 *
 * Locking: every function here except virtio_dev_init/fini and
 * virtio_dev_live expects the caller to hold d->lock (transports take it
 * around register handlers, the event loop around queue processing).
 * virtio_dev_live reads two fields and is meant for callers holding it
 * too. */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kvmini/virtio.h"

#define BIT(n) (1ULL << (n))

/* The status bits the driver owns (it sets them, only a reset clears them). */
#define DRIVER_STATUS_BITS (VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | \
			    VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK | \
			    VIRTIO_CONFIG_S_FAILED)

void virtio_dev_init(struct virtio_dev *d, const char *name, uint16_t device_id,
		     uint64_t features, unsigned nr_queues, uint16_t queue_size,
		     uint32_t config_len, const struct virtio_dev_ops *ops, void *priv,
		     const struct guest_mem *mem, struct evloop *loop)
{
	assert(nr_queues <= VIRTIO_MAX_QUEUES);
	/* Zeroed first: the transport fills tops/transport afterwards. */
	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->device_id = device_id;
	d->features = features | BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_RING_F_EVENT_IDX) |
		      BIT(VIRTIO_RING_F_INDIRECT_DESC);
	d->nr_queues = nr_queues;
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		vq_reset(&d->vqs[i], mem, i < nr_queues ? queue_size : 0);
	d->config_len = config_len;
	d->ops = ops;
	d->priv = priv;
	d->mem = mem;
	d->loop = loop;
	pthread_mutex_init(&d->lock, NULL);
}

void virtio_dev_fini(struct virtio_dev *d)
{
	if (d->ops && d->ops->destroy)
		d->ops->destroy(d);
	pthread_mutex_destroy(&d->lock);
}

static bool has_feature(const struct virtio_dev *d, unsigned bit)
{
	return (d->driver_features & d->features) & BIT(bit);
}

/* A write of 0 (§2.1.2): forget everything the driver set up. */
static void dev_reset(struct virtio_dev *d)
{
	if (d->ops && d->ops->reset)
		d->ops->reset(d);
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		vq_reset(&d->vqs[i], d->mem, d->vqs[i].max_size);
	d->driver_features = 0;
	d->status = 0;
	d->broken = false;
}

void virtio_dev_set_status(struct virtio_dev *d, uint8_t status)
{
	uint8_t old = d->status;

	if (status == 0) {
		dev_reset(d);
		return;
	}
	/* NEEDS_RESET is the device's bit (only a reset clears it); SUSPEND
	 * needs VIRTIO_F_SUSPEND, which is not offered. */
	status &= DRIVER_STATUS_BITS;
	/* §2.1.1: the driver MUST NOT clear a status bit; only a reset does.
	 * Clearing FEATURES_OK would reopen negotiation under live queues,
	 * clearing DRIVER_OK would let a later write activate again. */
	if (old & DRIVER_STATUS_BITS & ~status) {
		virtio_dev_fail(d, "status 0x%02x clears bits of 0x%02x without a reset", status,
				old);
		return;
	}
	/* §3.1.1: the device refuses features it did not offer, and a
	 * modern-only device refuses a driver without VERSION_1, by leaving
	 * FEATURES_OK clear for the driver to read back. */
	if ((status & VIRTIO_CONFIG_S_FEATURES_OK) && !(old & VIRTIO_CONFIG_S_FEATURES_OK)) {
		if ((d->driver_features & ~d->features) ||
		    !(d->driver_features & BIT(VIRTIO_F_VERSION_1)))
			status &= (uint8_t)~VIRTIO_CONFIG_S_FEATURES_OK;
	}
	d->status = status | (old & VIRTIO_CONFIG_S_NEEDS_RESET);

	if ((status & VIRTIO_CONFIG_S_DRIVER_OK) && !(old & VIRTIO_CONFIG_S_DRIVER_OK)) {
		int r;

		if (!(status & VIRTIO_CONFIG_S_FEATURES_OK)) {
			virtio_dev_fail(d, "DRIVER_OK without FEATURES_OK");
			return;
		}
		if (d->broken || !d->ops || !d->ops->activate)
			return;
		r = d->ops->activate(d);
		if (r < 0)
			virtio_dev_fail(d, "activation failed (%s)", strerror(-r));
	}
}

void virtio_dev_enable_queue(struct virtio_dev *d, unsigned q)
{
	struct virtq *vq;

	if (q >= d->nr_queues) {
		virtio_dev_fail(d, "enabling queue %u of %u", q, d->nr_queues);
		return;
	}
	/* §3.1.1: queues are set up after FEATURES_OK, which fixes the ring
	 * features they run with until the next reset. */
	if (!(d->status & VIRTIO_CONFIG_S_FEATURES_OK)) {
		virtio_dev_fail(d, "queue %u enabled before FEATURES_OK", q);
		return;
	}
	vq = &d->vqs[q];
	if (vq_enable(vq, has_feature(d, VIRTIO_RING_F_EVENT_IDX),
		      has_feature(d, VIRTIO_RING_F_INDIRECT_DESC)))
		virtio_dev_fail(d, "queue %u: %s", q, vq->error);
}

void virtio_dev_stop_queue(struct virtio_dev *d, unsigned q)
{
	if (q >= d->nr_queues || !d->vqs[q].enabled)
		return;
	/* Still enabled while the device finishes: it may push what it
	 * completes. Afterwards nothing touches the rings (vq_pop finds a
	 * disabled queue empty, vq_push refuses). */
	if (d->ops && d->ops->queue_stop)
		d->ops->queue_stop(d, q);
	d->vqs[q].enabled = false;
}

void virtio_dev_fail(struct virtio_dev *d, const char *fmt, ...)
{
	char msg[160];
	va_list ap;

	/* Once per device until reset: the first error is the one that
	 * explains, the rest are its consequences. */
	if (d->broken)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	LOG_GUEST(&d->rl, "%s: guest driver error: %s; device needs reset", d->name, msg);
	d->broken = true;
	d->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	virtio_dev_config_changed(d);
}

void virtio_dev_config_changed(struct virtio_dev *d)
{
	d->config_generation++;
	if (d->tops && d->tops->notify_config)
		d->tops->notify_config(d->transport);
}

bool virtio_dev_used(struct virtio_dev *d, unsigned q)
{
	if (q >= d->nr_queues)
		return false;
	if (!vq_should_interrupt(&d->vqs[q]) || !d->tops || !d->tops->notify_queue)
		return false;
	d->tops->notify_queue(d->transport, q);
	return true;
}

void virtio_dev_requeue(struct virtio_dev *d, unsigned q)
{
	if (q < d->nr_queues && d->tops && d->tops->requeue)
		d->tops->requeue(d->transport, q);
}

void virtio_dev_dump(struct virtio_dev *d, FILE *f)
{
	/* Never wait: a thread stuck with the lock must not hang the exit
	 * this dump is there to explain. */
	if (pthread_mutex_trylock(&d->lock) != 0) {
		fprintf(f, "kvmini: %s: busy (another thread holds its lock): not dumped\r\n",
			d->name);
		return;
	}
	fprintf(f, "kvmini: %s: status %#x%s, features %#llx\r\n", d->name, d->status,
		d->broken ? " (NEEDS_RESET)" : "", (unsigned long long)d->driver_features);
	for (unsigned q = 0; q < d->nr_queues; q++) {
		fprintf(f, "kvmini: %s: queue %u: ", d->name, q);
		vq_dump(&d->vqs[q], f);
	}
	if (d->ops->dump)
		d->ops->dump(d, f);
	if (d->tops && d->tops->dump)
		d->tops->dump(d->transport, f);
	pthread_mutex_unlock(&d->lock);
}

bool virtio_dev_live(const struct virtio_dev *d)
{
	return (d->status & VIRTIO_CONFIG_S_DRIVER_OK) && !d->broken;
}
