/* Fuzz target: the virtio-pci transport (devices/virtio/pci.c): PCI
 * configuration space through the real PCI root's 0xcf8/0xcfc ports and
 * BAR0 (common config, ISR, device config, notify, MSI-X table and PBA)
 * through the real MMIO bus, as a sequence of (offset, size, value,
 * read/write) operations from the input, plus interrupts raised by the
 * device side. The device behind it is a fake with an 8-byte config
 * space that checks the transport keeps accesses inside it; the host is
 * a fake that records MSI routes and can be told to fail them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kvmini/devices.h"
#include "kvmini/layout.h"
#include "kvmini/virtio_devices.h"
#include "fuzz_common.h"

#define CF8 PORT_PCI_CONFIG
#define CFC (PORT_PCI_CONFIG + 4)
#define NQ 2
#define QSIZE 16
#define CFG_LEN 8

static struct fr r;
static uint8_t fake_config[CFG_LEN];
static bool host_fails;
static int routes;

static void fd_config_read(struct virtio_dev *d, uint32_t off, void *data, unsigned len)
{
	FUZZ_CHECK(off + len <= CFG_LEN);
	memcpy(data, fake_config + off, len);
}

static void fd_config_write(struct virtio_dev *d, uint32_t off, const void *data, unsigned len)
{
	FUZZ_CHECK(off + len <= CFG_LEN);
	memcpy(fake_config + off, data, len);
}

static int fd_activate(struct virtio_dev *d)
{
	return 0;
}

static void fd_queue_notify(struct virtio_dev *d, unsigned q)
{
	FUZZ_CHECK(q < NQ);
}

static void fd_reset(struct virtio_dev *d)
{
}

static const struct virtio_dev_ops fd_ops = {
	.config_read = fd_config_read, .config_write = fd_config_write,
	.activate = fd_activate, .queue_notify = fd_queue_notify, .reset = fd_reset,
};

static int fh_msi_route(void *ctx, int *gsi, uint64_t addr, uint32_t data, int fd)
{
	if (host_fails)
		return -ENOSPC;
	if (*gsi < 0) {         /* a new route; >= 0 updates one */
		*gsi = 24 + routes;
		routes++;
	}
	return 0;
}

static void fh_msi_unroute(void *ctx, int gsi, int fd)
{
	FUZZ_CHECK(gsi >= 24);
	routes--;
}

static int fh_ioeventfd(void *ctx, uint64_t addr, unsigned len, int64_t datamatch, int fd,
			bool assign)
{
	return host_fails ? -EINVAL : 0;
}

static int sink_set_level(void *ctx, unsigned gsi, int level)
{
	return 0;
}

static const struct irq_sink sink = { sink_set_level, NULL };

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
	memcpy(fake_config, "\x11\x22\x33\x44\x55\x66\x77\x88", CFG_LEN);
	host_fails = false;
	routes = 0;
	bus_init(&pio, BUS_PIO);
	bus_init(&mmio, BUS_MMIO);
	if (pci_root_create(&pio, &root, &e))
		abort();
	virtio_dev_init(&dev, "virtio-fuzz0", VIRTIO_ID_BLOCK, 1ULL << 5, NQ, QSIZE, CFG_LEN,
			&fd_ops, NULL, &r.gm, NULL);
	host = (struct virtio_host){ .mem = &r.gm, .pio = &pio, .mmio = &mmio, .irq = &sink };
	if (hostcfg & 1) {
		host.msi_route = fh_msi_route;
		host.msi_unroute = fh_msi_unroute;
	}
	if (hostcfg & 2)
		host.ioeventfd = fh_ioeventfd;
	if (virtio_pci_create(root, &host, &dev, &vp, &e))
		abort();
	for (unsigned steps = 0; !fz_empty(&f) && steps < 1024; steps++) {
		uint8_t op = fz_u8(&f);

		if (op >= 0xf0) {
			pthread_mutex_lock(&dev.lock);
			if (op < 0xf8)
				virtio_dev_used(&dev, op & 1);
			else if (op < 0xfc)
				virtio_dev_fail(&dev, "fuzz: device failure %d", op);
			else
				host_fails = !host_fails;
			pthread_mutex_unlock(&dev.lock);
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
	FUZZ_CHECK(!(hostcfg & 1) || routes == 0);   /* every MSI route freed */
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
	for (unsigned q = 0; q < NQ; q++) {
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
