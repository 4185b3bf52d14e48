/* Split virtqueues (virtio 1.x §2.7) whose every descriptor chain is
 * validated before a device sees it (STYLE.md habit 4). Ring state is
 * guarded by the owning device's lock (kvmini/virtio.h). */
#ifndef KVMINI_VIRTIO_QUEUE_H
#define KVMINI_VIRTIO_QUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/uio.h>
#include <linux/virtio_ring.h>

#include "kvmini/guest_mem.h"

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
	bool event_idx;         /* VIRTIO_RING_F_EVENT_IDX negotiated */
	bool indirect;          /* VIRTIO_RING_F_INDIRECT_DESC negotiated */
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
 * EVENT_IDX (used_event) or VRING_AVAIL_F_NO_INTERRUPT, and updates
 * signalled_used. */
bool vq_should_interrupt(struct virtq *vq);

/* Notification suppression (the device -> driver "don't kick me"):
 * vq_disable_kicks while draining; vq_enable_kicks afterwards returns
 * true if more buffers arrived meanwhile (drain again). */
void vq_disable_kicks(struct virtq *vq);
bool vq_enable_kicks(struct virtq *vq);

/* True if the avail ring holds chains not yet popped. */
bool vq_has_avail(struct virtq *vq);

/* One line on @f: the ring's indices as the device and the driver see
 * them (a debugging aid for a guest that waits on the device). */
void vq_dump(const struct virtq *vq, FILE *f);

/* Copy helpers over a chain's iovecs (offsets within the readable or the
 * writable part). Return bytes copied. */
size_t vq_chain_read(const struct vq_chain *c, size_t off, void *dst, size_t len);
size_t vq_chain_write(const struct vq_chain *c, size_t off, const void *src, size_t len);

#endif
