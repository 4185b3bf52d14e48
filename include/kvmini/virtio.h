/* Virtio 1.x core shared by the transports (devices/virtio/pci.c,
 * mmio.c) and the devices (console.c, block.c, net.c): split
 * virtqueues whose every descriptor chain is validated before a device
 * sees it (STYLE.md habit 4), and the device model (status, features,
 * NEEDS_RESET).
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
#include <sys/uio.h>

#include "kvmini/bus.h"
#include "kvmini/err.h"
#include "kvmini/guest_mem.h"
#include "kvmini/irq.h"
#include "kvmini/log.h"

struct evloop;

/* Device IDs (virtio 1.x §5). */
#define VIRTIO_ID_NET     1
#define VIRTIO_ID_BLOCK   2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_FS      26

/* Device status bits (§2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE  0x01
#define VIRTIO_STATUS_DRIVER       0x02
#define VIRTIO_STATUS_DRIVER_OK    0x04
#define VIRTIO_STATUS_FEATURES_OK  0x08
#define VIRTIO_STATUS_NEEDS_RESET  0x40
#define VIRTIO_STATUS_FAILED       0x80

/* Transport-independent feature bits (§6). */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1     32

/* Split ring layout (§2.7). */
#define VIRTQ_DESC_F_NEXT      1
#define VIRTQ_DESC_F_WRITE     2
#define VIRTQ_DESC_F_INDIRECT  4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY     1

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
} __attribute__((packed));

/* The largest queue size kvmini offers (and the cap on chain length). */
#define VIRTQ_MAX_SIZE 256

/* One split virtqueue. The transport fills the driver-visible fields
 * from register writes; vq_enable() checks them; the rest is ring state
 * owned by whoever processes the queue (under the device lock). */
struct virtq {
	/* driver-visible configuration */
	uint16_t max_size;      /* what the device offers (<= VIRTQ_MAX_SIZE) */
	uint16_t size;          /* what the driver chose: power of two <= max_size */
	bool enabled;           /* set by vq_enable() once checked */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint16_t msix_vector;   /* virtio-pci only; VIRTIO_MSI_NO_VECTOR = 0xffff */
	/* ring state */
	uint16_t last_avail;    /* next avail ring slot the device consumes */
	uint16_t used_idx;      /* shadow of used->idx */
	uint16_t signalled_used;   /* used_idx when the driver was last interrupted */
	bool signalled_used_valid;
	bool event_idx;         /* VIRTIO_F_EVENT_IDX negotiated */
	bool indirect;          /* VIRTIO_F_INDIRECT_DESC negotiated */
	const struct guest_mem *mem;
	const char *error;      /* why the last vq_* call failed (static string) */
};

/* A popped descriptor chain: iov[0 .. nr_out) are the buffers the device
 * reads (driver -> device), iov[nr_out .. nr_out + nr_in) the ones it
 * writes. Every iov points into guest RAM, checked with gm_ptr. */
struct vq_chain {
	uint16_t head;
	struct iovec *iov;
	unsigned nr_out, nr_in;
	size_t out_len, in_len; /* byte totals (no overflow: checked) */
};

/* Resets ring state and configuration to what a device reset gives. */
void vq_reset(struct virtq *vq, const struct guest_mem *mem, uint16_t max_size);

/* Checks the configuration the driver wrote (size a power of two <=
 * max_size; desc 16-, avail 2-, used 4-byte aligned; every ring wholly
 * inside guest RAM) and enables the queue. -EINVAL with vq->error set. */
int vq_enable(struct virtq *vq, bool event_idx, bool indirect);

/* Pops the next available chain into @iov (capacity @iov_cap; zero-length
 * descriptors are skipped, not stored). Returns 1 with @c filled, 0 when
 * the ring is empty, -EINVAL with vq->error set when the driver broke a
 * rule: head or next index >= size, more hops than size, more buffers
 * than @iov_cap, a buffer outside guest RAM, a readable buffer after a
 * writable one, a length total that overflows, an indirect table inside
 * an indirect table or with NEXT, an indirect table that is not a whole
 * number of descriptors, an avail index more than size ahead. The caller
 * then calls virtio_dev_fail(). */
int vq_pop(struct virtq *vq, struct vq_chain *c, struct iovec *iov, unsigned iov_cap);

/* Puts @head on the used ring with @written bytes. 0 or -EINVAL
 * (used ring no longer in RAM). */
int vq_push(struct virtq *vq, uint16_t head, uint32_t written);

/* vq_push in two steps, for several chains the driver must see at once
 * (a mergeable-buffer packet): vq_fill writes used element @i (0, 1, ...
 * after the ones already published) without publishing it; vq_flush
 * then publishes the first @n filled ones with one used->idx store.
 * 0 or -EINVAL (as vq_push; also @i or @n beyond the queue size). */
int vq_fill(struct virtq *vq, unsigned i, uint16_t head, uint32_t written);
int vq_flush(struct virtq *vq, unsigned n);

/* After one or more vq_push: should the driver be interrupted? Follows
 * EVENT_IDX (used_event) or VIRTQ_AVAIL_F_NO_INTERRUPT, and updates
 * signalled_used. */
bool vq_should_interrupt(struct virtq *vq);

/* Notification suppression (the device -> driver "don't kick me"):
 * vq_disable_kicks while draining; vq_enable_kicks afterwards returns
 * true if more buffers arrived meanwhile (drain again). */
void vq_disable_kicks(struct virtq *vq);
bool vq_enable_kicks(struct virtq *vq);

/* True if the avail ring holds chains not yet popped. */
bool vq_has_avail(struct virtq *vq);

/* Copy helpers over a chain's iovecs (offsets within the readable or the
 * writable part). Return bytes copied. */
size_t vq_chain_read(const struct vq_chain *c, size_t off, void *dst, size_t len);
size_t vq_chain_write(const struct vq_chain *c, size_t off, const void *src, size_t len);

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
	/* Frees the device's private state (not the virtio_dev). */
	void (*destroy)(struct virtio_dev *d);
};

/* What a transport provides to the core. */
struct virtio_transport_ops {
	/* Interrupt the driver for queue @q's used ring. */
	void (*notify_queue)(void *transport, unsigned q);
	/* Interrupt the driver for a configuration change (incl. NEEDS_RESET). */
	void (*notify_config)(void *transport);
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
/* Status write: 0 resets the device; FEATURES_OK is kept only when the
 * driver's features are a subset of the offer and include VERSION_1;
 * DRIVER_OK calls ops->activate. */
void virtio_dev_set_status(struct virtio_dev *d, uint8_t status);
/* Enables queue @q (vq_enable with the negotiated features); a bad
 * configuration puts the device into NEEDS_RESET. */
void virtio_dev_enable_queue(struct virtio_dev *d, unsigned q);

/* The guest broke a rule: log once (rate-limited) with the device name,
 * set NEEDS_RESET, stop processing, interrupt the driver for a config
 * change. kvmini and the other devices go on. Lock held. */
void virtio_dev_fail(struct virtio_dev *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* After vq_push()es on queue @q: interrupt the driver if the ring asks. */
void virtio_dev_used(struct virtio_dev *d, unsigned q);

/* True when the device may process queues (DRIVER_OK, not broken). */
bool virtio_dev_live(const struct virtio_dev *d);

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
