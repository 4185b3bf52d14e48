#ifndef KVMINI_PCI_ROOT_H
#define KVMINI_PCI_ROOT_H

#include "kvmini/bus.h"
#include "kvmini/err.h"

/* PCI configuration mechanism #1 at 0xcf8-0xcff with a host bridge at
 * 00:00.0 and no other devices yet; other slots read as all-ones. */
struct pci_root;
int pci_root_create(struct bus *pio, struct pci_root **out, struct kv_err *e) KV_MUST_CHECK;
/* Unregisters the ports (never while the vCPUs run: bus.h) and frees the
 * root; its functions must have been removed. NULL is a no-op. */
void pci_root_destroy(struct pci_root *p);

/* A PCI function plugged into bus 0. @reg is 0..255 and reg + len stays
 * within one dword; the root serialises calls (its lock is held). */
struct pci_dev_ops {
	void (*cfg_read)(void *opaque, unsigned reg, void *data, unsigned len);
	void (*cfg_write)(void *opaque, unsigned reg, const void *data, unsigned len);
};
/* Plugs a function into the next free slot (1..LAYOUT_PCI_MAX_SLOTS) and
 * returns the slot number in *@slot (its BAR address and INTx GSI follow
 * from it, see layout.h). -ENOSPC when the bus is full. Before the VM
 * starts only. */
int pci_root_add(struct pci_root *p, const struct pci_dev_ops *ops, void *opaque,
		 unsigned *slot, struct kv_err *e) KV_MUST_CHECK;
/* Unplugs the function at @slot (a failed or destroyed transport): when
 * it returns, the root no longer calls its ops. */
void pci_root_remove(struct pci_root *p, unsigned slot);

#endif
