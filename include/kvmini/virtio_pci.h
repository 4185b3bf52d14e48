/* The virtio-pci transport (devices/virtio/pci.c). */
#ifndef KVMINI_VIRTIO_PCI_H
#define KVMINI_VIRTIO_PCI_H

#include "kvmini/err.h"
#include "kvmini/virtio.h"

struct pci_root;

/* virtio-pci, modern only (device id 0x1040 + type), on @pci: BAR0 (a
 * 64 KiB memory BAR at a fixed address in the PCI hole) holds common,
 * ISR, device and notify configuration and the MSI-X table and PBA;
 * INTx (pin A, routed by the DSDT's _PRT) when the driver enables no
 * MSI-X. Queue notifications reach the device through host->loop, via
 * KVM ioeventfds (host->ioeventfd) while the driver has memory decoding
 * on. */
struct virtio_pci;
int virtio_pci_create(struct pci_root *pci, const struct virtio_host *host,
		      struct virtio_dev *dev, struct virtio_pci **out,
		      struct kv_err *e) KV_MUST_CHECK;
/* Unregisters BAR0 (never while the vCPUs run: bus.h), unplugs the
 * function, stops the kicks and frees the MSI routes. NULL is a no-op. */
void virtio_pci_destroy(struct virtio_pci *vp);

#endif
