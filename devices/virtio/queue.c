/* Split virtqueues (virtio 1.x §2.7), device side.
 *
 * The driver is hostile and runs concurrently on other CPUs, so:
 * - every ring access goes through gm_ptr on the current configuration
 *   (vq_enable checked the whole rings are in RAM; gm_ptr re-checks, so a
 *   NULL here is an error, never a crash);
 * - every descriptor is copied out of guest memory once and validated on
 *   the copy (no double fetch);
 * - a chain is walked completely and checked before vq_pop hands it out.
 *
 * Decisions the spec leaves open:
 * - a buffer must lie inside one RAM region (gm_ptr); kvmini's regions
 *   are separated by the PCI hole, so a buffer spanning two of them
 *   would cover non-RAM anyway and is rejected;
 * - an indirect table holds 1..VIRTQ_MAX_SIZE descriptors and may end a
 *   chain of direct descriptors (it cannot have NEXT, so it is the last);
 * - each byte total (readable, writable) is at most UINT32_MAX, so the
 *   written length always fits used.len;
 * - a disabled queue is empty: vq_pop returns 0, vq_push fails.
 *
 * Guest memory is little-endian like the x86 host, so ring fields are
 * read natively. All functions run under the device lock. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "kvmini/virtio.h"

/* Byte offsets inside the rings. */
#define AVAIL_FLAGS 0
#define AVAIL_IDX   2
#define AVAIL_RING  4
#define USED_FLAGS  0
#define USED_IDX    2
#define USED_RING   4
#define USED_ELEM   8
#define DESC_SIZE   16

static uint64_t desc_bytes(uint16_t size) { return (uint64_t)DESC_SIZE * size; }
/* flags, idx, ring[size], used_event */
static uint64_t avail_bytes(uint16_t size) { return 6 + 2 * (uint64_t)size; }
/* flags, idx, ring[size] of {id, len}, avail_event */
static uint64_t used_bytes(uint16_t size) { return 6 + (uint64_t)USED_ELEM * size; }

static int vq_fail(struct virtq *vq, const char *why)
{
	vq->error = why;
	return -EINVAL;
}

/* The 16-bit ring field at @gpa, or NULL when not in RAM. */
static uint16_t *ring_u16(const struct virtq *vq, uint64_t gpa)
{
	return gm_ptr(vq->mem, gpa, sizeof(uint16_t));
}

/* Loads a 16-bit field the driver writes concurrently (single access). */
static bool load_u16(const struct virtq *vq, uint64_t gpa, uint16_t *v)
{
	uint16_t *p = ring_u16(vq, gpa);

	if (!p)
		return false;
	*v = __atomic_load_n(p, __ATOMIC_RELAXED);
	return true;
}

static bool store_u16(const struct virtq *vq, uint64_t gpa, uint16_t v)
{
	uint16_t *p = ring_u16(vq, gpa);

	if (!p)
		return false;
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
	return true;
}

void vq_reset(struct virtq *vq, const struct guest_mem *mem, uint16_t max_size)
{
	if (max_size > VIRTQ_MAX_SIZE)
		max_size = VIRTQ_MAX_SIZE;
	memset(vq, 0, sizeof(*vq));
	vq->mem = mem;
	vq->max_size = max_size;
	vq->size = max_size; /* the queue size register reads the maximum until written */
	vq->msix_vector = 0xffff;
}

int vq_enable(struct virtq *vq, bool event_idx, bool indirect)
{
	uint16_t size = vq->size;

	vq->enabled = false;
	if (size == 0 || (size & (size - 1)))
		return vq_fail(vq, "queue size is not a power of two");
	if (size > vq->max_size)
		return vq_fail(vq, "queue size is larger than the device offers");
	if (vq->desc_gpa & 15)
		return vq_fail(vq, "descriptor table is not 16-byte aligned");
	if (vq->avail_gpa & 1)
		return vq_fail(vq, "available ring is not 2-byte aligned");
	if (vq->used_gpa & 3)
		return vq_fail(vq, "used ring is not 4-byte aligned");
	if (!gm_ptr(vq->mem, vq->desc_gpa, desc_bytes(size)))
		return vq_fail(vq, "descriptor table is not in guest RAM");
	if (!gm_ptr(vq->mem, vq->avail_gpa, avail_bytes(size)))
		return vq_fail(vq, "available ring is not in guest RAM");
	if (!gm_ptr(vq->mem, vq->used_gpa, used_bytes(size)))
		return vq_fail(vq, "used ring is not in guest RAM");

	vq->event_idx = event_idx;
	vq->indirect = indirect;
	vq->last_avail = 0;
	vq->used_idx = 0;
	vq->signalled_used = 0;
	vq->signalled_used_valid = false;
	vq->error = NULL;
	vq->enabled = true;
	return 0;
}

/* How many chains the driver made available; -EINVAL when its index is
 * more than a ring ahead of ours. */
static int avail_pending(struct virtq *vq, uint16_t *pending)
{
	uint16_t idx;

	if (!load_u16(vq, vq->avail_gpa + AVAIL_IDX, &idx))
		return vq_fail(vq, "available ring left guest RAM");
	*pending = (uint16_t)(idx - vq->last_avail);
	if (*pending > vq->size)
		return vq_fail(vq, "available index is more than a queue size ahead");
	return 0;
}

bool vq_has_avail(struct virtq *vq)
{
	uint16_t idx;

	if (!vq->enabled || !load_u16(vq, vq->avail_gpa + AVAIL_IDX, &idx))
		return false;
	return idx != vq->last_avail;
}

/* The walk of one chain: where descriptors come from and what was
 * collected so far. */
struct chain_walk {
	struct vq_chain *c;
	unsigned iov_cap;
	bool seen_write;
	uint64_t out_len, in_len;
};

/* Checks one copied-out, non-indirect descriptor and stores its buffer. */
static int walk_buffer(struct virtq *vq, struct chain_walk *w, const struct vring_desc *d)
{
	bool write = d->flags & VRING_DESC_F_WRITE;
	struct vq_chain *c = w->c;
	void *host;

	if (!write && w->seen_write)
		return vq_fail(vq, "readable descriptor after a writable one");
	w->seen_write |= write;
	if (d->len == 0)
		return 0; /* nothing to transfer: skipped, not stored */
	if (c->nr_out + c->nr_in >= w->iov_cap)
		return vq_fail(vq, "descriptor chain has more buffers than the device handles");
	host = gm_ptr(vq->mem, d->addr, d->len);
	if (!host)
		return vq_fail(vq, "buffer is not in guest RAM");
	if (write) {
		w->in_len += d->len;
		if (w->in_len > UINT32_MAX)
			return vq_fail(vq, "writable buffers exceed 4 GiB");
		c->nr_in++;
	} else {
		w->out_len += d->len;
		if (w->out_len > UINT32_MAX)
			return vq_fail(vq, "readable buffers exceed 4 GiB");
		c->nr_out++;
	}
	/* Readable ones all come first (checked above), so appending keeps
	 * iov[0 .. nr_out) readable and the rest writable. */
	c->iov[c->nr_out + c->nr_in - 1] = (struct iovec){ host, d->len };
	return 0;
}

/* Walks the chain at @head, direct descriptors and at most one indirect
 * table. Hops are bounded by the table length (queue size or indirect
 * entries), which also ends any loop. */
static int walk_chain(struct virtq *vq, struct chain_walk *w, uint16_t head)
{
	uint64_t table = vq->desc_gpa;
	uint32_t entries = vq->size, hops = 0;
	bool in_indirect = false;
	uint32_t i = head;

	for (;;) {
		struct vring_desc d;
		int r;

		if (i >= entries)
			return vq_fail(vq, in_indirect ? "indirect next index out of range"
						       : "descriptor index out of range");
		if (++hops > entries)
			return vq_fail(vq, "descriptor chain loops or is longer than the queue");
		/* One copy of the descriptor; only the copy is checked and used. */
		if (gm_read(vq->mem, table + (uint64_t)i * DESC_SIZE, &d, sizeof(d)))
			return vq_fail(vq, "descriptor is not in guest RAM");

		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (!vq->indirect)
				return vq_fail(vq, "indirect descriptor without VIRTIO_RING_F_INDIRECT_DESC");
			if (in_indirect)
				return vq_fail(vq, "indirect descriptor inside an indirect table");
			if (d.flags & VRING_DESC_F_NEXT)
				return vq_fail(vq, "indirect descriptor with NEXT");
			if (d.len == 0 || d.len % DESC_SIZE ||
			    d.len > (uint32_t)VIRTQ_MAX_SIZE * DESC_SIZE)
				return vq_fail(vq, "indirect table length is not 1..256 descriptors");
			if (!gm_ptr(vq->mem, d.addr, d.len))
				return vq_fail(vq, "indirect table is not in guest RAM");
			table = d.addr;
			entries = d.len / DESC_SIZE;
			hops = 0;
			in_indirect = true;
			i = 0;
			continue;
		}
		r = walk_buffer(vq, w, &d);
		if (r)
			return r;
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 0;
		i = d.next;
	}
}

int vq_pop(struct virtq *vq, struct vq_chain *c, struct iovec *iov, unsigned iov_cap)
{
	struct chain_walk w = { .c = c, .iov_cap = iov_cap };
	uint16_t pending, head;
	int r;

	if (!vq->enabled)
		return 0;
	r = avail_pending(vq, &pending);
	if (r)
		return r;
	if (pending == 0)
		return 0;
	/* The ring entry and descriptors were written before avail->idx. */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	if (!load_u16(vq, vq->avail_gpa + AVAIL_RING + 2 * (uint64_t)(vq->last_avail & (vq->size - 1)),
		      &head))
		return vq_fail(vq, "available ring left guest RAM");
	if (head >= vq->size)
		return vq_fail(vq, "chain head out of range");

	*c = (struct vq_chain){ .head = head, .iov = iov };
	r = walk_chain(vq, &w, head);
	if (r)
		return r;
	c->out_len = w.out_len;
	c->in_len = w.in_len;
	vq->last_avail++;
	return 1;
}

int vq_fill(struct virtq *vq, unsigned i, uint16_t head, uint32_t written)
{
	uint64_t elem;
	uint32_t *p;

	if (!vq->enabled)
		return vq_fail(vq, "queue is not enabled");
	if (head >= vq->size)
		return vq_fail(vq, "used head out of range");
	if (i >= vq->size)
		return vq_fail(vq, "more used elements than the queue holds");
	elem = vq->used_gpa + USED_RING +
	       (uint64_t)USED_ELEM * ((uint16_t)(vq->used_idx + i) & (vq->size - 1));
	p = gm_ptr(vq->mem, elem, USED_ELEM);
	if (!p)
		return vq_fail(vq, "used ring left guest RAM");
	__atomic_store_n(&p[0], (uint32_t)head, __ATOMIC_RELAXED);
	__atomic_store_n(&p[1], written, __ATOMIC_RELAXED);
	return 0;
}

int vq_flush(struct virtq *vq, unsigned n)
{
	uint16_t idx = (uint16_t)(vq->used_idx + n);

	if (!vq->enabled)
		return vq_fail(vq, "queue is not enabled");
	if (n > vq->size)
		return vq_fail(vq, "more used elements than the queue holds");
	/* The elements must be visible before the index that publishes them. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	if (!store_u16(vq, vq->used_gpa + USED_IDX, idx))
		return vq_fail(vq, "used ring left guest RAM");
	vq->used_idx = idx;
	return 0;
}

int vq_push(struct virtq *vq, uint16_t head, uint32_t written)
{
	int r = vq_fill(vq, 0, head, written);

	return r ? r : vq_flush(vq, 1);
}

/* vring_need_event: did used idx move from @old to @new_idx across
 * @event (the driver wants an interrupt once entry @event is used)? */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

bool vq_should_interrupt(struct virtq *vq)
{
	uint16_t old = vq->signalled_used, v;
	bool valid = vq->signalled_used_valid;

	if (!vq->enabled)
		return false;
	/* Our used->idx store must be visible before we read the driver's
	 * suppression state, or both sides may skip the notification. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	vq->signalled_used = vq->used_idx;
	vq->signalled_used_valid = true;
	if (vq->event_idx) {
		/* used_event sits after avail->ring[size]. */
		if (!load_u16(vq, vq->avail_gpa + AVAIL_RING + 2 * (uint64_t)vq->size, &v))
			return true;
		return !valid || need_event(v, vq->used_idx, old);
	}
	if (!load_u16(vq, vq->avail_gpa + AVAIL_FLAGS, &v))
		return true;
	return !(v & VRING_AVAIL_F_NO_INTERRUPT);
}

void vq_disable_kicks(struct virtq *vq)
{
	if (!vq->enabled)
		return;
	/* With EVENT_IDX, avail_event still names an entry the driver has
	 * passed, so it does not kick until vq_enable_kicks re-arms it. */
	if (!vq->event_idx)
		store_u16(vq, vq->used_gpa + USED_FLAGS, VRING_USED_F_NO_NOTIFY);
}

bool vq_enable_kicks(struct virtq *vq)
{
	if (!vq->enabled)
		return false;
	if (vq->event_idx)
		/* avail_event sits after used->ring[size]: kick me when you
		 * make entry last_avail available. */
		store_u16(vq, vq->used_gpa + USED_RING + (uint64_t)USED_ELEM * vq->size,
			  vq->last_avail);
	else
		store_u16(vq, vq->used_gpa + USED_FLAGS, 0);
	/* Publish the re-arm before re-reading avail->idx: a chain added in
	 * between either kicks or is seen here. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return vq_has_avail(vq);
}

void vq_dump(const struct virtq *vq, FILE *f)
{
	uint16_t avail_flags = 0, avail_idx = 0, used_event = 0, used_flags = 0, avail_event = 0;

	if (!vq->enabled) {
		fprintf(f, "disabled\r\n");
		return;
	}
	(void)load_u16(vq, vq->avail_gpa + AVAIL_FLAGS, &avail_flags);
	(void)load_u16(vq, vq->avail_gpa + AVAIL_IDX, &avail_idx);
	(void)load_u16(vq, vq->avail_gpa + AVAIL_RING + 2 * (uint64_t)vq->size, &used_event);
	(void)load_u16(vq, vq->used_gpa + USED_FLAGS, &used_flags);
	(void)load_u16(vq, vq->used_gpa + USED_RING + (uint64_t)USED_ELEM * vq->size, &avail_event);
	fprintf(f, "size %u; avail idx %u (device at %u), flags %#x; used idx %u (interrupted at "
		"%u%s), flags %#x", vq->size, avail_idx, vq->last_avail, avail_flags, vq->used_idx,
		vq->signalled_used, vq->signalled_used_valid ? "" : ", never", used_flags);
	if (vq->event_idx)
		fprintf(f, "; used_event %u, avail_event %u", used_event, avail_event);
	fprintf(f, "\r\n");
}

/* Copies between @buf and the iovecs [first, first + n) from byte @off. */
static size_t chain_copy(const struct iovec *iov, unsigned n, size_t off, void *buf, size_t len,
			 bool to_chain)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		size_t chunk;

		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		chunk = iov[i].iov_len - off;
		if (chunk > len - done)
			chunk = len - done;
		if (to_chain)
			memcpy((uint8_t *)iov[i].iov_base + off, (uint8_t *)buf + done, chunk);
		else
			memcpy((uint8_t *)buf + done, (uint8_t *)iov[i].iov_base + off, chunk);
		done += chunk;
		off = 0;
	}
	return done;
}

size_t vq_chain_read(const struct vq_chain *c, size_t off, void *dst, size_t len)
{
	return chain_copy(c->iov, c->nr_out, off, dst, len, false);
}

size_t vq_chain_write(const struct vq_chain *c, size_t off, const void *src, size_t len)
{
	return chain_copy(c->iov + c->nr_out, c->nr_in, off, (void *)src, len, true);
}
