/* Fuzz target: the virtio-pci transport (devices/virtio/pci*.c, with
 * pci_config.c and pci_msix.c): PCI configuration space through the real
 * PCI root's 0xcf8/0xcfc ports and BAR0 (common config, ISR, device
 * config, notify, MSI-X table and PBA) through the real MMIO bus, as a
 * sequence of (offset, size, value, read/write) operations from the
 * input; chains the driver posts on the queues and kicks (through a fake
 * KVM that honours the transport's ioeventfds); device-side completions
 * and failures. The event loop runs after every step, so kicks reach the
 * fake device, which processes its queues.
 *
 * Oracles (fuzz_fake_dev.h): guest memory written only in used rings and
 * popped writable buffers; used entries name owed heads with lengths in
 * bounds; vq_pop agrees with the model; no work held on a stopped queue;
 * the status and negotiation invariants. Here also: with memory decoding
 * off no ioeventfd covers BAR0 (no kick can reach the device), config
 * accesses stay in the device's config space, and every MSI route and
 * ioeventfd is freed at the end. */
#include <stdlib.h>

#include "kvmini/event_loop.h"
#include "kvmini/pci_root.h"
#include "kvmini/layout.h"
#include "kvmini/virtio_pci.h"
#include "fuzz_common.h"
#include "fuzz_fake_dev.h"

#define CF8 PORT_PCI_CONFIG
#define CFC (PORT_PCI_CONFIG + 4)
#define BAR LAYOUT_PCI_BAR(1)

static struct fr r;
static struct evloop *loop;

void fuzz_init(void)
{
	struct kv_err e = { 0 };

	fr_init_sized(&r, FAKE_RAM_SIZE, FAKE_DATA_START, true);
	if (evloop_create(&loop, &e))
		abort();
}

static uint16_t command(struct bus *pio)
{
	uint32_t addr = 0x80000000u | 1u << 11 | 0x04, v = 0;

	bus_dispatch(pio, CF8, &addr, 4, true);
	bus_dispatch(pio, CFC, &v, 2, false);
	return (uint16_t)v;
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

	if (op & 1)
		fake_kvm_write(mmio, BAR + off, v, len);
	else
		bus_dispatch(mmio, BAR + off, &v, len, false);
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
	bus_init(&pio, BUS_PIO);
	bus_init(&mmio, BUS_MMIO);
	if (pci_root_create(&pio, &root, &e))
		abort();
	virtio_dev_init(&dev, "virtio-fuzz0", VIRTIO_ID_BLOCK, 1ULL << 5, FAKE_NQ, FAKE_QSIZE,
			FAKE_CFG_LEN, &fake_dev_ops, NULL, &r.gm, loop);
	fake_reset(&r, &dev);
	host = (struct virtio_host){ .mem = &r.gm, .pio = &pio, .mmio = &mmio, .irq = &fake_sink,
				     .loop = loop };
	fake_host_calls(&host, hostcfg);
	if (virtio_pci_create(root, &host, &dev, &vp, &e))
		abort();
	for (unsigned steps = 0; !fz_empty(&f) && steps < 1024; steps++) {
		uint8_t op = fz_u8(&f);

		fake_step_begin();
		if (op >= 0xf0) {
			fake_device_event(&dev, op);
		} else if (op >= 0xe0) {
			/* The driver posts on queue op & 1, and kicks with op & 2. */
			fake_post(&dev, op & 1, &f);
			if (op & 2)
				fake_kvm_write(&mmio, BAR + 0x3000 + 4 * (op & 1), op & 1, 2);
		} else if (op & 2) {
			bar_access(&mmio, &f, op);
		} else {
			cfg_access(&pio, &f, op);
		}
		while (evloop_run_once(loop, 0) > 0)
			;
		fake_step_end();
		if (!(command(&pio) & 0x2)) /* memory decoding off: KVM holds no kick */
			FUZZ_CHECK(fake_ioeventfds_in(BAR, LAYOUT_PCI_BAR_SIZE) == 0);
	}
	virtio_pci_destroy(vp);
	virtio_dev_fini(&dev);
	pci_root_destroy(root);
	FUZZ_CHECK(pio.nr_ranges == 0 && mmio.nr_ranges == 0); /* everything unregistered */
	bus_destroy(&mmio);
	bus_destroy(&pio);
	fake_check_teardown();
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

/* A chain of a header (readable) and two writable buffers, posted on
 * queue op & 1 and kicked with op & 2. */
static void post(struct fw *w, uint8_t op, uint8_t seed)
{
	fw_u8(w, op); fw_u8(w, 2); fw_u8(w, seed & 1);
	fw_u16(w, 16); fw_u8(w, 0);
	fw_u16(w, (uint16_t)(512 + seed)); fw_u8(w, 1);
	fw_u16(w, 1); fw_u8(w, 1);
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
	bar_w(&w, 0, 0x08, 2, 1); bar_w(&w, 0, 0x0c, 2, 1);             /* VERSION_1 */
	bar_w(&w, 0, 0x08, 2, 0); bar_w(&w, 0, 0x0c, 2, 1u << 28 | 1u << 29); /* INDIRECT, EVENT_IDX */
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
	for (unsigned k = 0; k < 6; k++)
		post(&w, (uint8_t)(0xe2 | (k & 1)), (uint8_t)k);
	fw_u8(&w, 0xf0); fw_u8(&w, 0xf1);
	cfg_w(&w, 0x04, 1, 0x0004);                     /* decoding off: kicks stop */
	post(&w, 0xe2, 9);
	cfg_w(&w, 0x04, 1, 0x0006);
	bar_w(&w, 3, 0x00, 1, 0);
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
