/* Fuzz target: the virtio-pci transport (devices/virtio/pci.c): PCI
 * configuration space through the real PCI root's 0xcf8/0xcfc ports and
 * BAR0 (common config, ISR, device config, notify, MSI-X table and PBA)
 * through the real MMIO bus, as a sequence of (offset, size, value,
 * read/write) operations from the input, plus interrupts raised by the
 * device side. The device and host behind it are fakes (fuzz_fake_dev.h)
 * that check the transport keeps config accesses inside the device's
 * config space and frees every MSI route. */
#include <stdlib.h>

#include "kvmini/pci_root.h"
#include "kvmini/layout.h"
#include "kvmini/virtio_pci.h"
#include "fuzz_common.h"
#include "fuzz_fake_dev.h"

#define CF8 PORT_PCI_CONFIG
#define CFC (PORT_PCI_CONFIG + 4)

static struct fr r;

void fuzz_init(void)
{
	fr_init(&r);
}

static void cfg_access(struct bus *pio, struct fz *f, uint8_t op)
{
	uint32_t addr = op & 0x40 ? fz_u32(f) : 0x80000000u | 1u << 11 | (fz_u8(f) & 0xfc);
	unsigned len = 1u << (op >> 2 & 3);
	uint8_t reg = fz_u8(f);
	uint32_t v = op & 1 ? fz_u32(f) : 0;

	if (len > 4)
		len = 4;
	bus_dispatch(pio, CF8, &addr, 4, true);
	bus_dispatch(pio, CFC + (reg & 3), &v, len, op & 1);
}

static void bar_access(struct bus *mmio, struct fz *f, uint8_t op)
{
	static const uint16_t regions[] = { 0x0000, 0x1000, 0x2000, 0x3000, 0x4000, 0x5000 };
	uint8_t where = fz_u8(f);
	uint64_t off = where >= 0xf0 ? fz_u16(f) : regions[where % 6] + fz_u8(f) % 0x40;
	unsigned len = 1u << (op >> 2 & 3);
	uint64_t v = op & 1 ? fz_u64(f) : 0;

	bus_dispatch(mmio, LAYOUT_PCI_BAR(1) + off, &v, len, op & 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f = { data, size };
	struct bus pio, mmio;
	struct pci_root *root;
	struct virtio_dev dev;
	struct virtio_pci *vp;
	struct virtio_host host;
	struct kv_err e = { 0 };
	uint8_t hostcfg = fz_u8(&f);

	fr_reset(&r);
	fake_reset();
	bus_init(&pio, BUS_PIO);
	bus_init(&mmio, BUS_MMIO);
	if (pci_root_create(&pio, &root, &e))
		abort();
	virtio_dev_init(&dev, "virtio-fuzz0", VIRTIO_ID_BLOCK, 1ULL << 5, FAKE_NQ, FAKE_QSIZE,
			FAKE_CFG_LEN, &fake_dev_ops, NULL, &r.gm, NULL);
	host = (struct virtio_host){ .mem = &r.gm, .pio = &pio, .mmio = &mmio, .irq = &fake_sink };
	fake_host_calls(&host, hostcfg);
	if (virtio_pci_create(root, &host, &dev, &vp, &e))
		abort();
	for (unsigned steps = 0; !fz_empty(&f) && steps < 1024; steps++) {
		uint8_t op = fz_u8(&f);

		if (op >= 0xf0) {
			fake_device_event(&dev, op);
			continue;
		}
		if (op & 2)
			bar_access(&mmio, &f, op);
		else
			cfg_access(&pio, &f, op);
	}
	virtio_pci_destroy(vp);
	virtio_dev_fini(&dev);
	pci_root_destroy(root);
	bus_destroy(&mmio);
	bus_destroy(&pio);
	FUZZ_CHECK(!(hostcfg & 1) || fake_routes == 0);   /* every MSI route freed */
	return 0;
}

/* Seed ops. */
static void cfg_w(struct fw *w, uint8_t reg, unsigned len_log, uint32_t v)
{
	fw_u8(w, (uint8_t)(1 | len_log << 2)); fw_u8(w, reg); fw_u8(w, reg); fw_u32(w, v);
}

static void cfg_r(struct fw *w, uint8_t reg, unsigned len_log)
{
	fw_u8(w, (uint8_t)(len_log << 2)); fw_u8(w, reg); fw_u8(w, reg);
}

static void bar_w(struct fw *w, unsigned region, uint8_t off, unsigned len_log, uint64_t v)
{
	fw_u8(w, (uint8_t)(3 | len_log << 2)); fw_u8(w, (uint8_t)region); fw_u8(w, off); fw_u64(w, v);
}

static void bar_r(struct fw *w, unsigned region, uint8_t off, unsigned len_log)
{
	fw_u8(w, (uint8_t)(2 | len_log << 2)); fw_u8(w, (uint8_t)region); fw_u8(w, off);
}

void fuzz_write_seeds(const char *dir)
{
	struct fw w = { .n = 0 };

	/* Linux's virtio_pci_modern probe: walk caps, enable memory and bus
	 * mastering, MSI-X on, negotiate, set up both queues, DRIVER_OK,
	 * kick, interrupt. */
	fw_u8(&w, 3);                                   /* MSI routes + ioeventfd */
	cfg_r(&w, 0x00, 2); cfg_r(&w, 0x06, 1); cfg_r(&w, 0x34, 0);
	for (uint8_t c = 0x40; c < 0xa4; c += 4)
		cfg_r(&w, c, 2);
	cfg_w(&w, 0x10, 2, 0xffffffff); cfg_r(&w, 0x10, 2);
	cfg_w(&w, 0x04, 1, 0x0006);
	cfg_w(&w, 0x9a, 1, 0x8000);                     /* MSI-X enable */
	bar_w(&w, 0, 0x14, 0, 1); bar_w(&w, 0, 0x14, 0, 3);
	bar_w(&w, 0, 0x00, 2, 0); bar_r(&w, 0, 0x04, 2);
	bar_w(&w, 0, 0x00, 2, 1); bar_r(&w, 0, 0x04, 2);
	bar_w(&w, 0, 0x08, 2, 1); bar_w(&w, 0, 0x0c, 2, 1);
	bar_w(&w, 0, 0x14, 0, 0x0b); bar_r(&w, 0, 0x14, 0);
	bar_w(&w, 0, 0x10, 1, 0);                       /* config vector */
	bar_w(&w, 4, 0x00, 3, 0xfee00000); bar_w(&w, 4, 0x08, 2, 0x41);
	for (unsigned q = 0; q < FAKE_NQ; q++) {
		bar_w(&w, 0, 0x16, 1, q);
		bar_r(&w, 0, 0x18, 1);
		bar_w(&w, 0, 0x18, 1, 8);
		bar_w(&w, 0, 0x1a, 1, q + 1);
		bar_w(&w, 4, (uint8_t)(0x10 * (q + 1)), 3, 0xfee00000);
		bar_w(&w, 0, 0x20, 3, 0x1000 + q * 0x8000);
		bar_w(&w, 0, 0x28, 3, 0x5000 + q * 0x8000);
		bar_w(&w, 0, 0x30, 3, 0x6000 + q * 0x8000);
		bar_w(&w, 0, 0x1c, 1, 1);
		bar_r(&w, 0, 0x1e, 1);
	}
	bar_w(&w, 0, 0x14, 0, 0x0f);
	bar_r(&w, 2, 0x00, 3); bar_w(&w, 2, 0x02, 1, 0xabcd);
	bar_w(&w, 3, 0x00, 1, 0); bar_w(&w, 3, 0x04, 1, 1);
	fw_u8(&w, 0xf0); fw_u8(&w, 0xf1);
	bar_r(&w, 1, 0, 0); bar_r(&w, 5, 0, 3);
	cfg_w(&w, 0x9a, 1, 0xc000);                     /* function mask */
	fw_u8(&w, 0xf8);
	bar_w(&w, 0, 0x14, 0, 0);                       /* reset */
	fuzz_seed(dir, "linux_probe_msix", w.buf, w.n);

	/* INTx only, through the pci_cfg window. */
	w.n = 0;
	fw_u8(&w, 0);
	cfg_w(&w, 0x04, 1, 0x0006);
	cfg_w(&w, 0x88, 2, 0x00000000);
	cfg_w(&w, 0x8c, 2, 0x00000004);
	cfg_w(&w, 0x90, 2, 0x00000000);
	cfg_r(&w, 0x94, 2);
	bar_w(&w, 0, 0x14, 0, 0x0f);
	fw_u8(&w, 0xf0);
	bar_r(&w, 1, 0, 0);
	cfg_r(&w, 0x06, 1);
	fuzz_seed(dir, "intx_pci_cfg", w.buf, w.n);
}
