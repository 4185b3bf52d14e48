/* The virtio-pci transport's state, shared by its three files:
 * pci.c (the function: config space, interrupts, kicks, create/destroy),
 * pci_common.c (the common configuration registers) and pci_bar.c (the
 * regions of BAR0). Private to devices/virtio/.
 *
 * BAR0, 64 KiB at a fixed address:
 *   0x0000 common configuration      0x3000 notify (4 bytes per queue)
 *   0x1000 ISR status                0x4000 MSI-X table (queues + 1 vectors)
 *   0x2000 device configuration      0x5000 MSI-X PBA
 *
 * Locking: everything here is guarded by virtio_dev.lock (the functions
 * below expect it held). The PCI root calls the config-space handlers
 * with its own lock held and they take the device lock inside it (root ->
 * device, never the other way); the BAR handlers and the kick callback
 * take the device lock; the transport ops the core calls run with it
 * held. */
#ifndef KVMINI_DEVICES_VIRTIO_PCI_TRANSPORT_H
#define KVMINI_DEVICES_VIRTIO_PCI_TRANSPORT_H

#include "kvmini/bus.h"
#include "kvmini/pci_config.h"
#include "kvmini/pci_msix.h"
#include "kvmini/virtio.h"

#define VP_BAR_COMMON     0x0000
#define VP_COMMON_LEN     0x38   /* up to queue_used_hi: no RING_RESET, no notify data */
#define VP_BAR_ISR        0x1000
#define VP_ISR_LEN        4
#define VP_BAR_DEVICE     0x2000
#define VP_DEVICE_MAX     0x1000
#define VP_BAR_NOTIFY     0x3000
#define VP_NOTIFY_MULT    4
#define VP_BAR_MSIX_TABLE 0x4000
#define VP_BAR_MSIX_PBA   0x5000
#define VP_MSIX_VECTORS   (VIRTIO_MAX_QUEUES + 1)

/* ISR status bits (§4.1.4.5). */
#define VP_ISR_QUEUE  0x1
#define VP_ISR_CONFIG 0x2

struct virtio_pci;

struct vp_queue {
	struct virtio_pci *vp;
	unsigned q;
	int fd;                 /* kicks: KVM's ioeventfd or our notify handler */
	int ioevent_len;        /* the length KVM took for it, -1: none worked yet */
	bool ioevent_on;        /* assigned to KVM now (memory decoding on) */
	bool watched;           /* on host.loop */
};

struct virtio_pci {
	struct virtio_dev *dev;
	struct virtio_host host;    /* a copy: the caller's may be on its stack */
	struct pci_root *root;
	unsigned slot;
	uint32_t bar_addr;
	struct pci_config pc;
	unsigned pci_cfg_cap;       /* the VIRTIO_PCI_CAP_PCI_CFG capability's offset */
	struct pci_msix msix;
	/* common configuration */
	uint32_t dfselect, gfselect;
	uint16_t msix_config;
	uint16_t queue_select;
	/* INTx */
	uint8_t isr;
	bool intx_level;
	struct vp_queue queues[VIRTIO_MAX_QUEUES];
	struct log_ratelimit rl;
};

/* pci.c: drives INTx from the ISR and the command register. */
void vp_intx_update(struct virtio_pci *vp);

/* pci_common.c: the common configuration (@off + @len <= VP_COMMON_LEN). */
void vp_common_read(struct virtio_pci *vp, unsigned off, void *data, unsigned len);
void vp_common_write(struct virtio_pci *vp, unsigned off, const void *data, unsigned len);

/* pci_bar.c: one access to BAR0 at @off (lock held): what the bus
 * handlers and the pci_cfg window do. */
void vp_bar_read(struct virtio_pci *vp, uint64_t off, void *data, unsigned len);
void vp_bar_write(struct virtio_pci *vp, uint64_t off, const void *data, unsigned len);
/* The bus handlers (they take the lock). */
extern const struct bus_ops vp_bar_ops;

#endif
