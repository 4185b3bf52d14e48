/* The configuration space of one PCI function with a type 0 header
 * (devices/pci_config.c): the 256-byte register file, which bits a driver
 * may write, the capability list, the command and status registers, and
 * one 32-bit memory BAR (BAR0) at a fixed address with its size probe.
 * Generic: it knows no device class. Register offsets and bits come from
 * <linux/pci_regs.h>.
 *
 * No lock of its own: the owning device serialises every call (the PCI
 * root calls its config handlers with the root's lock held). */
#ifndef KVMINI_PCI_CONFIG_H
#define KVMINI_PCI_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/pci_regs.h>

#include "kvmini/le.h"
#include "kvmini/log.h"

#define PCI_CONFIG_SIZE 256

struct pci_config_id {
	uint16_t vendor, device;
	uint16_t subsys_vendor, subsys;
	uint8_t revision;
	uint32_t class_code;    /* base class << 16 | subclass << 8 | prog-if */
	uint8_t irq_line;       /* INTx pin A's routing, as firmware would write it */
};

struct pci_config {
	uint8_t regs[PCI_CONFIG_SIZE];
	uint8_t wmask[PCI_CONFIG_SIZE]; /* bits a driver may write (BAR0 aside) */
	uint32_t bar0, bar0_size;       /* address and size (a power of two); size 0: none */
	bool bar0_probe;                /* all-ones written: BAR0 reads its size mask */
	unsigned cap_last;              /* offset of the last capability, 0: none yet */
	unsigned cap_free;              /* where the next capability goes */
	const char *name;               /* for log lines */
	struct log_ratelimit rl;
};

/* Header type 0, single function, INTx pin A, the capability list
 * empty; writable: command (memory decode, bus master, INTx disable),
 * cache line size, interrupt line. @name must outlive @pc. */
void pci_config_init(struct pci_config *pc, const struct pci_config_id *id, const char *name);
/* BAR0: a 32-bit non-prefetchable memory BAR of @size bytes (a power of
 * two) at @addr, which the driver can probe but not move. */
void pci_config_set_bar0(struct pci_config *pc, uint32_t addr, uint32_t size);
/* Appends a capability of @len bytes (id and next pointer included) to
 * the list and returns its offset; the caller fills the rest. */
unsigned pci_config_add_cap(struct pci_config *pc, uint8_t id, unsigned len);
/* Makes the bits of @mask writable in the @len (1..4) bytes at @reg. */
void pci_config_writable(struct pci_config *pc, unsigned reg, unsigned len, uint32_t mask);

/* A driver's access; @reg + @len <= PCI_CONFIG_SIZE. Writes change only
 * writable bits, BAR0 takes the size probe. */
void pci_config_read(const struct pci_config *pc, unsigned reg, void *data, unsigned len);
void pci_config_write(struct pci_config *pc, unsigned reg, const void *data, unsigned len);

static inline uint16_t pci_config_command(const struct pci_config *pc)
{
	return le16_load(pc->regs + PCI_COMMAND);
}

/* The device's INTx state, shown in the status register. */
void pci_config_set_intx_status(struct pci_config *pc, bool asserted);

/* True when an access of @len bytes at @reg touches [@at, @at + @n). */
static inline bool pci_config_touches(unsigned reg, unsigned len, unsigned at, unsigned n)
{
	return reg < at + n && at < reg + len;
}

#endif
