/* PCI configuration mechanism #1 (0xcf8 address latch, 0xcfc-0xcff data)
 * with a host bridge at 00:00.0 and the functions pci_root_add plugs in
 * at 00:slot.0 (slot 1..LAYOUT_PCI_MAX_SLOTS), whose config accesses go to
 * their own ops under the root's lock.
 *
 * Linux picks conf1 when a dword written to 0xcf8 reads back and
 * pci_sanity_check (arch/x86/pci/direct.c) finds, on bus 0, a device
 * whose class word is PCI_CLASS_BRIDGE_HOST (or VGA), or whose vendor is
 * Intel or Compaq. This bridge satisfies both.
 *
 * Its ID, 8086:0d57, is the synthetic "virtual PCIe host" id Cloud
 * Hypervisor (and VMMs built on its pci crate) give their root bridge.
 * Linux's own host-bridge quirks match exact device ids of real chipsets
 * (early-quirks.c: 0x3403/0x3405/0x3406, 0x0f00, ...; intel-agp and the
 * EDAC drivers likewise), none of which is 0d57, so nothing binds to it
 * or patches it; class-wide fixups such as quirk_mmio_always_on apply as
 * to any host bridge. A real chipset's id (i440FX 8086:1237, Q35
 * 8086:29c0) would invite the quirks written for that chipset, which
 * expect registers we do not have.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kvmini/pci_root.h"
#include "kvmini/layout.h"
#include "kvmini/le.h"

#define CONF1_ENABLE     0x80000000u
#define HB_VENDOR        0x8086
#define HB_DEVICE        0x0d57
#define PCI_COMMAND      0x04
/* I/O, memory, bus master, parity response, SERR#: what a bridge's
 * command register implements; everything else is read-only. */
#define HB_COMMAND_MASK  0x0147

struct pci_slot {
	const struct pci_dev_ops *ops; /* NULL: empty slot */
	void *opaque;
};

struct pci_root {
	struct bus *pio;
	pthread_mutex_t lock;
	uint32_t addr;        /* the 0xcf8 latch */
	uint8_t hb[256];      /* host bridge config space */
	struct pci_slot slots[LAYOUT_PCI_MAX_SLOTS + 1]; /* [0] unused: the bridge */
};

/* Which of our functions the latched address names: 0 for the host
 * bridge, a slot number for a plugged device, -1 for nobody (disabled,
 * another bus, a function other than 0, an empty slot, or an AMD extended
 * register, bits 27:24, beyond 256 bytes). Bits 30:28 are reserved and
 * ignored. */
static int addr_slot(const struct pci_root *p, uint32_t addr)
{
	unsigned dev;

	if (!(addr & CONF1_ENABLE) || (addr & 0x0fff0700u))
		return -1;
	dev = (addr >> 11) & 0x1f;
	if (dev == 0)
		return 0;
	if (dev > LAYOUT_PCI_MAX_SLOTS || !p->slots[dev].ops)
		return -1;
	return (int)dev;
}

static void hb_write(struct pci_root *p, unsigned reg, uint8_t v)
{
	unsigned shift;
	uint8_t mask;

	/* Only the command register takes writes. BAR sizing and the rest of
	 * Linux's probing write to read-only registers by design, so this is
	 * not worth a log line. */
	if (reg != PCI_COMMAND && reg != PCI_COMMAND + 1)
		return;
	shift = (reg - PCI_COMMAND) * 8;
	mask = (uint8_t)(HB_COMMAND_MASK >> shift);
	p->hb[reg] = (uint8_t)((p->hb[reg] & ~mask) | (v & mask));
}

static void pci_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	struct pci_root *p = opaque;
	uint8_t *out = data;
	unsigned reg;
	int slot;

	pthread_mutex_lock(&p->lock);
	reg = (p->addr & 0xfc) + (unsigned)off - 4; /* meaningful when off >= 4 */
	if (off == 0 && len == 4) {
		memcpy(data, &p->addr, 4); /* x86 hosts only: little-endian */
	} else if (off < 4) {
		/* Byte/word accesses to 0xcf8-0xcfb are not the latch (Linux's
		 * conf2 probe uses them): nothing answers. */
		memset(data, 0xff, len);
	} else if ((slot = addr_slot(p, p->addr)) < 0) {
		memset(data, 0xff, len);
	} else if (slot > 0) {
		/* The bus keeps off + len within 0xcfc-0xcff, so the access
		 * stays inside the dword at reg, as pci_dev_ops promises. */
		p->slots[slot].ops->cfg_read(p->slots[slot].opaque, reg, data, len);
	} else {
		for (unsigned i = 0; i < len; i++)
			out[i] = p->hb[reg + i];
	}
	pthread_mutex_unlock(&p->lock);
}

static void pci_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	struct pci_root *p = opaque;
	const uint8_t *in = data;
	unsigned reg;
	int slot;

	pthread_mutex_lock(&p->lock);
	reg = (p->addr & 0xfc) + (unsigned)off - 4; /* meaningful when off >= 4 */
	if (off == 0 && len == 4) {
		memcpy(&p->addr, data, 4);
		p->addr &= ~3u; /* bits 1:0 are read-only zero */
	} else if (off >= 4) {
		slot = addr_slot(p, p->addr);
		if (slot > 0)
			p->slots[slot].ops->cfg_write(p->slots[slot].opaque, reg, data, len);
		else if (slot == 0)
			for (unsigned i = 0; i < len; i++)
				hb_write(p, reg + i, in[i]);
	}
	/* Anything else (0xcfb mechanism select, 0xcf9 reset control, empty
	 * slots) is ignored like on a board with nothing behind it. */
	pthread_mutex_unlock(&p->lock);
}

static const struct bus_ops pci_ops = { .read = pci_read, .write = pci_write };

static void hb_init(uint8_t *cfg)
{
	le16_store(cfg + 0x00, HB_VENDOR);
	le16_store(cfg + 0x02, HB_DEVICE);
	/* Class 06/00/00: bridge, host bridge, no programming interface.
	 * Header type 0, single function, no capabilities, no BARs, no INTx. */
	cfg[0x0b] = 0x06;
	cfg[0x0a] = 0x00;
	cfg[0x09] = 0x00;
	cfg[0x0e] = 0x00;
}

int pci_root_create(struct bus *pio, struct pci_root **out, struct kv_err *e)
{
	struct pci_root *p;
	int ret;

	p = calloc(1, sizeof(*p));
	if (!p)
		return kv_err_set(e, -ENOMEM, "pci_root: out of memory");
	ret = pthread_mutex_init(&p->lock, NULL);
	if (ret) {
		free(p);
		return kv_err_set(e, -ret, "pci_root: mutex: %s", strerror(ret));
	}
	p->pio = pio;
	hb_init(p->hb);
	ret = bus_register(pio, PORT_PCI_CONFIG, 8, &pci_ops, p, "pci_root", e);
	if (ret) {
		pthread_mutex_destroy(&p->lock);
		free(p);
		return ret;
	}
	*out = p;
	return 0;
}

int pci_root_add(struct pci_root *p, const struct pci_dev_ops *ops, void *opaque,
		 unsigned *slot, struct kv_err *e)
{
	pthread_mutex_lock(&p->lock);
	for (unsigned s = 1; s <= LAYOUT_PCI_MAX_SLOTS; s++) {
		if (p->slots[s].ops)
			continue;
		p->slots[s] = (struct pci_slot){ .ops = ops, .opaque = opaque };
		pthread_mutex_unlock(&p->lock);
		*slot = s;
		return 0;
	}
	pthread_mutex_unlock(&p->lock);
	return kv_err_set(e, -ENOSPC, "PCI bus 0 is full (%u slots)", LAYOUT_PCI_MAX_SLOTS);
}

void pci_root_remove(struct pci_root *p, unsigned slot)
{
	if (!p || slot == 0 || slot > LAYOUT_PCI_MAX_SLOTS)
		return;
	pthread_mutex_lock(&p->lock);
	p->slots[slot] = (struct pci_slot){ 0 };
	pthread_mutex_unlock(&p->lock);
}

void pci_root_destroy(struct pci_root *p)
{
	if (!p)
		return;
	bus_unregister(p->pio, PORT_PCI_CONFIG, p);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
