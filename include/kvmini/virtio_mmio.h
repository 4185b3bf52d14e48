/* The virtio-mmio transport (devices/virtio/mmio.c). */
#ifndef KVMINI_VIRTIO_MMIO_H
#define KVMINI_VIRTIO_MMIO_H

#include <stdint.h>
#include "kvmini/err.h"
#include "kvmini/virtio.h"

/* virtio-mmio version 2 at @base (LAYOUT_VIRTIO_MMIO_SIZE bytes) with
 * interrupt @gsi (level, active high). */
struct virtio_mmio;
int virtio_mmio_create(const struct virtio_host *host, uint64_t base, unsigned gsi,
		       struct virtio_dev *dev, struct virtio_mmio **out,
		       struct kv_err *e) KV_MUST_CHECK;
/* Unregisters the window (never while the vCPUs run: bus.h), stops the
 * kicks and detaches from the device. NULL is a no-op. */
void virtio_mmio_destroy(struct virtio_mmio *mm);

#endif
