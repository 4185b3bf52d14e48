/* The virtio devices and transports kvmini offers, as the VM creates
 * them (vmm/vm.c) from the command line (vmm/config.c). */
#ifndef KVMINI_VIRTIO_DEVICES_H
#define KVMINI_VIRTIO_DEVICES_H

#include <stdbool.h>
#include <stdint.h>
#include "kvmini/err.h"
#include "kvmini/virtio.h"

struct pci_root;

/* How a device reaches the guest: virtio-pci (default: Debian's stock
 * kernel finds it by its PCI probe) or virtio-mmio (described in ACPI
 * and on the command line). */
enum virtio_transport { VIRTIO_TRANSPORT_PCI, VIRTIO_TRANSPORT_MMIO };

/* ---- transports ---- */

/* virtio-pci, modern only (device id 0x1040 + type), on @pci: BAR0 (a
 * 64 KiB memory BAR at a fixed address in the PCI hole) holds common,
 * ISR, device and notify configuration and the MSI-X table and PBA;
 * INTx (pin A, routed by the DSDT's _PRT) when the driver enables no
 * MSI-X. */
struct virtio_pci;
int virtio_pci_create(struct pci_root *pci, const struct virtio_host *host,
		      struct virtio_dev *dev, struct virtio_pci **out,
		      struct kv_err *e) KV_MUST_CHECK;
void virtio_pci_destroy(struct virtio_pci *vp);

/* virtio-mmio version 2 at @base (LAYOUT_VIRTIO_MMIO_SIZE bytes) with
 * interrupt @gsi (level, active high). */
struct virtio_mmio;
int virtio_mmio_create(const struct virtio_host *host, uint64_t base, unsigned gsi,
		       struct virtio_dev *dev, struct virtio_mmio **out,
		       struct kv_err *e) KV_MUST_CHECK;
void virtio_mmio_destroy(struct virtio_mmio *vm);

/* ---- devices ---- (each *_create fills a caller-owned virtio_dev;
 * virtio_dev_fini releases it) */

/* virtio-blk on a raw image. */
struct virtio_blk_cfg {
	const char *path;
	bool readonly;          /* VIRTIO_BLK_F_RO, image opened O_RDONLY */
	bool snapshot;          /* writes go to a private overlay deleted at exit */
	unsigned index;         /* for names: virtio-blk0, ... */
};
int virtio_blk_create(const struct virtio_blk_cfg *cfg, const struct guest_mem *mem,
		      struct evloop *loop, struct virtio_dev *dev,
		      struct kv_err *e) KV_MUST_CHECK;

/* virtio-net on a tap device. */
struct virtio_net_cfg {
	const char *tap;        /* interface name; created when missing and allowed */
	uint8_t mac[6];
	bool mac_set;           /* else a random locally administered MAC */
	unsigned index;
};
int virtio_net_create(const struct virtio_net_cfg *cfg, const struct guest_mem *mem,
		      struct evloop *loop, struct virtio_dev *dev,
		      struct kv_err *e) KV_MUST_CHECK;

/* virtio-console (one port, hvc0): guest output to @out_fd; input from
 * virtio_console_receive. */
struct virtio_console_cfg {
	int out_fd;
};
int virtio_console_create(const struct virtio_console_cfg *cfg, const struct guest_mem *mem,
			  struct evloop *loop, struct virtio_dev *dev,
			  struct kv_err *e) KV_MUST_CHECK;
/* Queues input bytes for the guest (any thread); returns how many were
 * taken (0 when the guest has posted no receive buffers: try later). */
size_t virtio_console_receive(struct virtio_dev *dev, const uint8_t *buf, size_t n);
/* True once the driver is live and has receive buffers (so input sent
 * now is not lost). */
bool virtio_console_rx_ready(struct virtio_dev *dev);
/* The device writes 1 (8 bytes) to eventfd @fd (-1: none) when the
 * guest posts receive buffers or the driver goes live, so a reader
 * holding input can retry. Any thread. */
void virtio_console_set_rx_wakeup(struct virtio_dev *dev, int fd);

/* The devices a VM gets, as parsed from --disk / --net / --console. */
struct vm_disk {
	struct virtio_blk_cfg blk;
	enum virtio_transport transport;
};
struct vm_net {
	struct virtio_net_cfg net;
	enum virtio_transport transport;
};
enum console_kind { CONSOLE_SERIAL, CONSOLE_VIRTIO };

#endif
