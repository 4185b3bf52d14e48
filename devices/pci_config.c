/* A PCI function's configuration space (see pci_config.h): a register
 * file with a write mask, a capability list built at setup, and BAR0.
 *
 * Choices the specification leaves open: BAR0 cannot move, so a write of
 * another address is ignored (and logged) and the BAR keeps reading its
 * address; any value with all address bits set is the size probe, which
 * reads the size mask until the next write. Writes to read-only bits are
 * dropped silently: Linux's probing writes some by design. */
#include <assert.h>
#include <string.h>

#include "kvmini/pci_config.h"

#define FIRST_CAP 0x40 /* after the type 0 header */

void pci_config_init(struct pci_config *pc, const struct pci_config_id *id, const char *name)
{
	uint8_t *r = pc->regs;

	memset(pc, 0, sizeof(*pc));
	pc->name = name;
	pc->cap_free = FIRST_CAP;
	le16_store(r + PCI_VENDOR_ID, id->vendor);
	le16_store(r + PCI_DEVICE_ID, id->device);
	le32_store(r + PCI_CLASS_REVISION, id->class_code << 8 | id->revision);
	r[PCI_HEADER_TYPE] = PCI_HEADER_TYPE_NORMAL; /* single function */
	le16_store(r + PCI_SUBSYSTEM_VENDOR_ID, id->subsys_vendor);
	le16_store(r + PCI_SUBSYSTEM_ID, id->subsys);
	r[PCI_INTERRUPT_LINE] = id->irq_line;
	r[PCI_INTERRUPT_PIN] = 1; /* INTA# */

	pci_config_writable(pc, PCI_COMMAND, 2,
			    PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE);
	pci_config_writable(pc, PCI_CACHE_LINE_SIZE, 1, 0xff);
	pci_config_writable(pc, PCI_INTERRUPT_LINE, 1, 0xff);
}

void pci_config_set_bar0(struct pci_config *pc, uint32_t addr, uint32_t size)
{
	assert(size >= 16 && !(size & (size - 1)) && !(addr & (size - 1)));
	pc->bar0 = addr;
	pc->bar0_size = size;
	/* 32-bit, non-prefetchable memory: the type bits read as 0. */
	le32_store(pc->regs + PCI_BASE_ADDRESS_0, addr);
}

unsigned pci_config_add_cap(struct pci_config *pc, uint8_t id, unsigned len)
{
	unsigned at = pc->cap_free;

	assert(len >= 2 && at + len <= PCI_CONFIG_SIZE);
	pc->regs[at] = id;
	pc->regs[at + PCI_CAP_LIST_NEXT] = 0; /* the end of the list, for now */
	if (pc->cap_last)
		pc->regs[pc->cap_last + PCI_CAP_LIST_NEXT] = (uint8_t)at;
	else
		pc->regs[PCI_CAPABILITY_LIST] = (uint8_t)at;
	le16_store(pc->regs + PCI_STATUS, le16_load(pc->regs + PCI_STATUS) | PCI_STATUS_CAP_LIST);
	pc->cap_last = at;
	pc->cap_free = (at + len + 3) & ~3u; /* capabilities are dword aligned */
	return at;
}

void pci_config_writable(struct pci_config *pc, unsigned reg, unsigned len, uint32_t mask)
{
	assert(len <= 4 && reg + len <= PCI_CONFIG_SIZE);
	for (unsigned i = 0; i < len; i++)
		pc->wmask[reg + i] |= (uint8_t)(mask >> (8 * i));
}

void pci_config_read(const struct pci_config *pc, unsigned reg, void *data, unsigned len)
{
	assert(reg + len <= PCI_CONFIG_SIZE);
	memcpy(data, pc->regs + reg, len);
}

/* Plain registers: only the writable bits change. */
static void merge_writable(struct pci_config *pc, unsigned reg, const uint8_t *in, unsigned len)
{
	for (unsigned i = 0; i < len; i++) {
		uint8_t m = pc->wmask[reg + i];

		pc->regs[reg + i] = (uint8_t)((pc->regs[reg + i] & ~m) | (in[i] & m));
	}
}

/* BAR0: the bytes written, merged into what the BAR showed, are either
 * the size probe or an address (which must be the BAR's own). */
static void bar0_write(struct pci_config *pc, unsigned reg, const uint8_t *in, unsigned len)
{
	uint32_t mask = ~(pc->bar0_size - 1), v;
	uint8_t bar[4];

	if (!pc->bar0_size)
		return; /* no BAR0: reads as 0, like an unimplemented BAR */
	memcpy(bar, pc->regs + PCI_BASE_ADDRESS_0, sizeof(bar));
	for (unsigned i = 0; i < len; i++)
		if (pci_config_touches(reg + i, 1, PCI_BASE_ADDRESS_0, 4))
			bar[reg + i - PCI_BASE_ADDRESS_0] = in[i];
	v = le32_load(bar);
	pc->bar0_probe = (v & mask) == mask;
	if (!pc->bar0_probe && (v & mask) != pc->bar0)
		LOG_GUEST(&pc->rl, "%s: BAR0 cannot move to 0x%x (fixed at 0x%x)", pc->name,
			  v & mask, pc->bar0);
	le32_store(pc->regs + PCI_BASE_ADDRESS_0, pc->bar0_probe ? mask : pc->bar0);
}

void pci_config_write(struct pci_config *pc, unsigned reg, const void *data, unsigned len)
{
	assert(reg + len <= PCI_CONFIG_SIZE);
	if (pci_config_touches(reg, len, PCI_BASE_ADDRESS_0, 4))
		bar0_write(pc, reg, data, len);
	merge_writable(pc, reg, data, len); /* BAR0's bytes have no writable bits */
}

void pci_config_set_intx_status(struct pci_config *pc, bool asserted)
{
	if (asserted)
		pc->regs[PCI_STATUS] |= PCI_STATUS_INTERRUPT;
	else
		pc->regs[PCI_STATUS] &= (uint8_t)~PCI_STATUS_INTERRUPT;
}
