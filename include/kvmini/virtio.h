/* The virtio 1.x device model shared by the transports
 * (devices/virtio/pci.c, mmio.c) and the devices (console.c, block.c,
 * net.c): status, feature negotiation, NEEDS_RESET, and what a transport
 * needs from the VM. The split rings themselves are in virtio_queue.h;
 * constants come from Linux's uapi headers (<linux/virtio_*.h>).
 *
 * Threads: a transport's register handlers run on vCPU threads; queue
 * processing, I/O completions and timers run on the event-loop thread.
 * Both take virtio_dev.lock, which guards everything in struct
 * virtio_dev and its queues. */
#ifndef KVMINI_VIRTIO_H
#define KVMINI_VIRTIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>

#include "kvmini/bus.h"
#include "kvmini/err.h"
#include "kvmini/guest_mem.h"
#include "kvmini/irq.h"
#include "kvmini/log.h"
#include "kvmini/virtio_queue.h"

struct evloop;

struct virtio_dev;

/* What a device implements. */
struct virtio_dev_ops {
	/* Device-specific configuration space (little-endian); @off + @len
	 * is within config_len (the transport checks). */
	void (*config_read)(struct virtio_dev *d, uint32_t off, void *data, unsigned len);
	void (*config_write)(struct virtio_dev *d, uint32_t off, const void *data, unsigned len);
	/* The driver set DRIVER_OK: queues are live. <0 puts the device into
	 * NEEDS_RESET. */
	int (*activate)(struct virtio_dev *d);
	/* Queue @q was kicked. Runs on the event-loop thread, lock held. */
	void (*queue_notify)(struct virtio_dev *d, unsigned q);
	/* The driver reset the device: forget in-flight requests (wait for
	 * host I/O that still targets guest memory). Lock held. */
	void (*reset)(struct virtio_dev *d);
	/* The driver stops queue @q while the device may be running
	 * (virtio-mmio QueueReady = 0; §4.2.2.2: the device MUST NOT access
	 * the queue afterwards, and the driver reads QueueReady back to know
	 * it stopped). When this returns the device holds no chain popped
	 * from @q and nothing of it (host I/O in flight, stashed buffers,
	 * timers) may read or write the queue's rings or buffers again: each
	 * chain it held was completed (vq_push, still allowed during the
	 * call: the queue is disabled right after) or dropped. Runs on a vCPU
	 * thread with the lock held, so it must not allocate (the thread's
	 * seccomp filter is on) and should not block long. NULL: the device
	 * holds no chains between its callbacks. */
	void (*queue_stop)(struct virtio_dev *d, unsigned q);
	/* Frees the device's private state (not the virtio_dev). */
	void (*destroy)(struct virtio_dev *d);
	/* Optional: the device's own state in a few lines on @f (requests
	 * held, counters), for virtio_dev_dump. Lock held. */
	void (*dump)(struct virtio_dev *d, FILE *f);
};

/* What a transport provides to the core. */
struct virtio_transport_ops {
	/* Interrupt the driver for queue @q's used ring. */
	void (*notify_queue)(void *transport, unsigned q);
	/* Interrupt the driver for a configuration change (incl. NEEDS_RESET). */
	void (*notify_config)(void *transport);
	/* Have the event loop call queue_notify(@q) again soon, as a kick
	 * would (a device that spent its work budget yields this way). */
	void (*requeue)(void *transport, unsigned q);
	/* Optional: the interrupt state (MSI-X vectors, ISR) on @f. Lock held. */
	void (*dump)(void *transport, FILE *f);
};

#define VIRTIO_MAX_QUEUES 8

struct virtio_dev {
	char name[32];              /* "virtio-blk0": for log lines */
	uint16_t device_id;         /* VIRTIO_ID_* */
	uint64_t features;          /* offered; always has VIRTIO_F_VERSION_1 */
	uint64_t driver_features;   /* what the driver wrote */
	uint8_t status;
	uint8_t config_generation;
	unsigned nr_queues;
	struct virtq vqs[VIRTIO_MAX_QUEUES];
	uint32_t config_len;
	const struct virtio_dev_ops *ops;
	void *priv;                 /* the device's own state */
	const struct guest_mem *mem;
	struct evloop *loop;
	const struct virtio_transport_ops *tops;
	void *transport;
	bool broken;                /* NEEDS_RESET: no queue processing until reset */
	struct log_ratelimit rl;
	pthread_mutex_t lock;
};

/* Fills the common fields (lock initialised, every queue reset with
 * @queue_size, VERSION_1 | EVENT_IDX | INDIRECT_DESC added to
 * @features). */
void virtio_dev_init(struct virtio_dev *d, const char *name, uint16_t device_id,
		     uint64_t features, unsigned nr_queues, uint16_t queue_size,
		     uint32_t config_len, const struct virtio_dev_ops *ops, void *priv,
		     const struct guest_mem *mem, struct evloop *loop);
/* Calls ops->destroy and frees the lock. */
void virtio_dev_fini(struct virtio_dev *d);

/* Transports call these from register writes (lock held). */
/* Status write: 0 resets the device; a write clearing a status bit the
 * driver set is refused and sets NEEDS_RESET (§2.1.1); FEATURES_OK is
 * kept only when the driver's features are a subset of the offer and
 * include VERSION_1; DRIVER_OK calls ops->activate (once per reset). */
void virtio_dev_set_status(struct virtio_dev *d, uint8_t status);
/* Enables queue @q (vq_enable with the negotiated features); before
 * FEATURES_OK or with a bad configuration the device goes into
 * NEEDS_RESET instead. */
void virtio_dev_enable_queue(struct virtio_dev *d, unsigned q);
/* Stops queue @q (ops->queue_stop, then disabled; its configuration is
 * kept for the driver to change): when it returns the device no longer
 * touches the queue. No-op for a queue that is not enabled. */
void virtio_dev_stop_queue(struct virtio_dev *d, unsigned q);

/* The guest broke a rule: log once (rate-limited) with the device name,
 * set NEEDS_RESET, stop processing, interrupt the driver for a config
 * change. kvmini and the other devices go on. Lock held. */
void virtio_dev_fail(struct virtio_dev *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The device's configuration changed (not a guest error): bump the
 * generation and interrupt the driver for a config change. Lock held. */
void virtio_dev_config_changed(struct virtio_dev *d);

/* After vq_push()es on queue @q: interrupt the driver if the ring asks.
 * Returns whether it did. */
bool virtio_dev_used(struct virtio_dev *d, unsigned q);

/* A device that stopped processing queue @q with work left (its budget
 * per call is spent) asks to be called again after the event loop's
 * other work: the guest cannot hold the loop by re-posting chains. */
void virtio_dev_requeue(struct virtio_dev *d, unsigned q);

/* True when the device may process queues (DRIVER_OK, not broken). */
bool virtio_dev_live(const struct virtio_dev *d);

/* A few lines on @f: status, each queue's indices (vq_dump), the
 * device's and the transport's own state, for a guest that hangs waiting
 * on a device (KVMINI_DUMP_ON_EXIT). Takes the lock only if it is free;
 * else it says so and returns. */
void virtio_dev_dump(struct virtio_dev *d, FILE *f);

/* What transports need from the VM besides the buses: KVM's ioeventfd
 * and irqfd/MSI routing, behind function pointers so unit tests and
 * fuzzers pass fakes (any pointer may be NULL: the transport then falls
 * back to signalling the eventfd itself / KVM_IRQ_LINE through @irq). */
struct virtio_host {
	const struct guest_mem *mem;
	struct bus *pio, *mmio;
	const struct irq_sink *irq;
	struct evloop *loop;
	void *ctx;
	/* KVM_IOEVENTFD: KVM signals @fd when the guest writes @len bytes at
	 * MMIO address @addr and, when @datamatch >= 0, only when the value
	 * written equals @datamatch (KVM_IOEVENTFD_FLAG_DATAMATCH; virtio-mmio
	 * has one QueueNotify register for all queues, so each queue's fd
	 * matches its own index). @datamatch -1: any value. */
	int (*ioeventfd)(void *ctx, uint64_t addr, unsigned len, int64_t datamatch,
			 int fd, bool assign);
	/* Routes MSI (@addr, @data) to a GSI and binds @fd to it with
	 * KVM_IRQFD: writing 1 to @fd then raises the MSI. *@gsi < 0
	 * allocates a GSI, >= 0 updates that route. */
	int (*msi_route)(void *ctx, int *gsi, uint64_t addr, uint32_t data, int fd);
	/* Unbinds @fd from @gsi and frees the route. */
	void (*msi_unroute)(void *ctx, int gsi, int fd);
};

#endif
