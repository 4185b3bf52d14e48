/* virtio-pci: config space and capabilities as Linux's virtio_pci_modern
 * walks them, BAR0 registers, kicks (and memory decoding switching KVM's
 * ioeventfds), INTx/ISR and MSI-X (routes changed only by register
 * writes), the status rules, hostile accesses. The device is a small fake
 * with its own ops; the PCI root, the buses and the virtio core are the
 * real ones. */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "kvmini/pci_root.h"
#include "kvmini/event_loop.h"
#include "kvmini/layout.h"
#include "kvmini/virtio_pci.h"
#include "../../check_main.h"
#include "../fakes.h"
#include "fake_ring.h"

#define CF8 PORT_PCI_CONFIG
#define CFC (PORT_PCI_CONFIG + 4)
#define NQ 2
#define QSIZE 16
#define BAR LAYOUT_PCI_BAR(1)

/* Common config offsets: the transport's own (virtio 1.x §4.1.4.3). */
#include <linux/pci_regs.h>
#include <linux/virtio_pci.h>

struct fake_dev {
	uint8_t config[8];
	unsigned notified[NQ];
	unsigned activations, resets;
};

/* A fake host: MSI routes and KVM's ioeventfd table recorded. */
struct fake_ioevent {
	uint64_t addr;
	unsigned len;
	int fd;
};

struct fake_host {
	int routes, unroutes, route_failures;
	bool fail_routes;
	int last_gsi, last_fd;
	uint64_t last_addr;
	uint32_t last_data;
	struct fake_ioevent ioev[8];
	int nr_ioev;
};

static struct fake_ring fr;
static struct bus pio, mmio;
static struct pci_root *root;
static struct virtio_dev dev;
static struct fake_dev fdev;
static struct fake_irq firq;
static struct irq_sink sink;
static struct fake_host fhost;
static struct virtio_host host;
static struct virtio_pci *vp;

static void fd_config_read(struct virtio_dev *d, uint32_t off, void *data, unsigned len)
{
	struct fake_dev *f = d->priv;

	ck_assert_uint_le(off + len, sizeof(f->config));
	memcpy(data, f->config + off, len);
}

static void fd_config_write(struct virtio_dev *d, uint32_t off, const void *data, unsigned len)
{
	struct fake_dev *f = d->priv;

	ck_assert_uint_le(off + len, sizeof(f->config));
	memcpy(f->config + off, data, len);
}

static int fd_activate(struct virtio_dev *d)
{
	((struct fake_dev *)d->priv)->activations++;
	return 0;
}

static void fd_queue_notify(struct virtio_dev *d, unsigned q)
{
	ck_assert_uint_lt(q, NQ);
	__atomic_add_fetch(&((struct fake_dev *)d->priv)->notified[q], 1, __ATOMIC_SEQ_CST);
}

static void fd_reset(struct virtio_dev *d)
{
	((struct fake_dev *)d->priv)->resets++;
}

static const struct virtio_dev_ops fd_ops = {
	.config_read = fd_config_read, .config_write = fd_config_write,
	.activate = fd_activate, .queue_notify = fd_queue_notify, .reset = fd_reset,
};

static int fh_msi_route(void *ctx, int *gsi, uint64_t addr, uint32_t data, int fd)
{
	struct fake_host *h = ctx;

	if (h->fail_routes) {
		h->route_failures++;
		return -ENOSPC;
	}
	h->routes++;
	if (*gsi < 0)
		*gsi = 24 + h->routes;
	h->last_gsi = *gsi;
	h->last_addr = addr;
	h->last_data = data;
	h->last_fd = fd;
	return 0;
}

static void fh_msi_unroute(void *ctx, int gsi, int fd)
{
	((struct fake_host *)ctx)->unroutes++;
}

static int fh_ioeventfd(void *ctx, uint64_t addr, unsigned len, int64_t datamatch, int fd,
			bool assign)
{
	struct fake_host *h = ctx;

	ck_assert_int_eq(datamatch, -1);
	for (int i = 0; i < h->nr_ioev; i++) {
		if (h->ioev[i].addr != addr)
			continue;
		ck_assert(!assign); /* KVM refuses a duplicate */
		ck_assert_uint_eq(h->ioev[i].len, len);
		ck_assert_int_eq(h->ioev[i].fd, fd);
		h->ioev[i] = h->ioev[--h->nr_ioev];
		return 0;
	}
	ck_assert(assign);
	ck_assert_int_lt(h->nr_ioev, 8);
	h->ioev[h->nr_ioev++] = (struct fake_ioevent){ addr, len, fd };
	return 0;
}

static void create(bool with_msi_route)
{
	struct kv_err e = { 0 };

	fr_init(&fr, QSIZE);
	bus_init(&pio, BUS_PIO);
	bus_init(&mmio, BUS_MMIO);
	ck_assert_int_eq(pci_root_create(&pio, &root, &e), 0);
	memset(&fdev, 0, sizeof(fdev));
	memcpy(fdev.config, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
	virtio_dev_init(&dev, "virtio-fake0", VIRTIO_ID_BLOCK, 1ULL << 5, NQ, QSIZE, 8,
			&fd_ops, &fdev, &fr.gm, NULL);
	sink = fake_irq_sink(&firq);
	memset(&fhost, 0, sizeof(fhost));
	host = (struct virtio_host){ .mem = &fr.gm, .pio = &pio, .mmio = &mmio, .irq = &sink,
				     .ctx = &fhost };
	if (with_msi_route) {
		host.msi_route = fh_msi_route;
		host.msi_unroute = fh_msi_unroute;
	}
	ck_assert_int_eq(virtio_pci_create(root, &host, &dev, &vp, &e), 0);
}

static void setup(void)
{
	create(true);
}

static void teardown(void)
{
	virtio_pci_destroy(vp);
	virtio_dev_fini(&dev);
	pci_root_destroy(root);
	bus_destroy(&mmio);
	bus_destroy(&pio);
	fr_fini(&fr);
}

/* ---- config space through conf1 ---- */

static uint32_t cfg_read(unsigned reg, unsigned len)
{
	uint32_t a = 0x80000000u | 1u << 11 | (reg & 0xfc), v = 0;

	ck_assert_int_eq(bus_dispatch(&pio, CF8, &a, 4, true), 0);
	ck_assert_int_eq(bus_dispatch(&pio, CFC + (reg & 3), &v, len, false), 0);
	return v;
}

static void cfg_write(unsigned reg, unsigned len, uint32_t v)
{
	uint32_t a = 0x80000000u | 1u << 11 | (reg & 0xfc);

	ck_assert_int_eq(bus_dispatch(&pio, CF8, &a, 4, true), 0);
	ck_assert_int_eq(bus_dispatch(&pio, CFC + (reg & 3), &v, len, true), 0);
}

static uint64_t bar_read(uint64_t off, unsigned len)
{
	uint64_t v = 0;

	ck_assert_int_eq(bus_dispatch(&mmio, BAR + off, &v, len, false), 0);
	return v;
}

static void bar_write(uint64_t off, unsigned len, uint64_t v)
{
	ck_assert_int_eq(bus_dispatch(&mmio, BAR + off, &v, len, true), 0);
}

static void mem_enable(void)
{
	cfg_write(0x04, 2, 0x0006);
}

struct vcap {
	unsigned at, bar;
	uint32_t off, len;
};

/* virtio_pci_find_capability, plus the MSI-X cap's position. */
static void walk_caps(struct vcap caps[6], unsigned *msix_at)
{
	unsigned at = cfg_read(0x34, 1), hops = 0;

	memset(caps, 0, 6 * sizeof(caps[0]));
	*msix_at = 0;
	ck_assert_uint_ne(cfg_read(0x06, 2) & 0x10, 0);
	while (at) {
		unsigned id = cfg_read(at, 1);

		ck_assert_uint_ge(at, 0x40);
		ck_assert_uint_eq(at & 3, 0);
		ck_assert_uint_lt(hops++, 48);
		if (id == 0x09) {
			unsigned type = cfg_read(at + 3, 1);

			ck_assert_uint_ge(type, 1);
			ck_assert_uint_le(type, 5);
			ck_assert_uint_eq(caps[type].at, 0); /* one of each */
			caps[type] = (struct vcap){ at, cfg_read(at + 4, 1), cfg_read(at + 8, 4),
						    cfg_read(at + 12, 4) };
			ck_assert_uint_ge(cfg_read(at + 2, 1), type == 2 || type == 5 ? 20 : 16);
		} else {
			ck_assert_uint_eq(id, 0x11);
			*msix_at = at;
		}
		at = cfg_read(at + 1, 1);
	}
}

START_TEST(identity)
{
	ck_assert_uint_eq(cfg_read(0x00, 4), 0x1042u << 16 | 0x1af4);
	ck_assert_uint_eq(cfg_read(0x08, 1), 1);
	ck_assert_uint_eq(cfg_read(0x08, 4) >> 8, 0x010000);
	ck_assert_uint_eq(cfg_read(0x0e, 1), 0);
	ck_assert_uint_eq(cfg_read(0x2c, 4), 2u << 16 | 0x1af4);
	ck_assert_uint_eq(cfg_read(0x3d, 1), 1);
	ck_assert_uint_eq(cfg_read(0x3c, 1), LAYOUT_PCI_GSI(1));
	ck_assert_uint_eq(cfg_read(0x10, 4), (uint32_t)BAR);
	for (unsigned bar = 0x14; bar <= 0x24; bar += 4)
		ck_assert_uint_eq(cfg_read(bar, 4), 0);
}
END_TEST

START_TEST(capability_chain)
{
	static const uint32_t min_len[6] = { 0, 0x38, NQ * 4, 1, 8, 0 };
	struct vcap caps[6];
	unsigned msix_at;

	walk_caps(caps, &msix_at);
	for (unsigned t = 1; t <= 5; t++) {
		ck_assert_uint_ne(caps[t].at, 0);
		ck_assert_uint_eq(caps[t].bar, 0);
		if (t == 5)
			continue;
		ck_assert_uint_ge(caps[t].len, min_len[t]);
		ck_assert_uint_le(caps[t].off + caps[t].len, LAYOUT_PCI_BAR_SIZE);
	}
	ck_assert_uint_eq(cfg_read(caps[2].at + 16, 4), 4); /* notify_off_multiplier */
	ck_assert_uint_ne(msix_at, 0);
	ck_assert_uint_eq(cfg_read(msix_at + 2, 2), NQ); /* table size - 1 */
	uint32_t table = cfg_read(msix_at + 4, 4), pba = cfg_read(msix_at + 8, 4);
	ck_assert_uint_eq(table & 7, 0);
	ck_assert_uint_eq(pba & 7, 0);
	ck_assert_uint_le((table & ~7u) + (NQ + 1) * 16, LAYOUT_PCI_BAR_SIZE);
	/* No region overlaps another. */
	uint32_t start[6] = { caps[1].off, caps[2].off, caps[3].off, caps[4].off,
			      table & ~7u, pba & ~7u };
	uint32_t len[6] = { caps[1].len, caps[2].len, caps[3].len, caps[4].len,
			    (NQ + 1) * 16, 8 };
	for (unsigned i = 0; i < 6; i++)
		for (unsigned j = i + 1; j < 6; j++)
			ck_assert(start[i] + len[i] <= start[j] || start[j] + len[j] <= start[i]);
}
END_TEST

START_TEST(bar_sizing)
{
	uint32_t orig = cfg_read(0x10, 4);

	cfg_write(0x10, 4, 0xffffffffu);
	ck_assert_uint_eq(cfg_read(0x10, 4), (uint32_t)~(LAYOUT_PCI_BAR_SIZE - 1));
	cfg_write(0x10, 4, orig);
	ck_assert_uint_eq(cfg_read(0x10, 4), (uint32_t)BAR);
	/* The BAR cannot move. */
	cfg_write(0x10, 4, 0xe0000000u);
	ck_assert_uint_eq(cfg_read(0x10, 4), (uint32_t)BAR);
	cfg_write(0x12, 2, 0x1234);
	ck_assert_uint_eq(cfg_read(0x10, 4), (uint32_t)BAR);
	for (unsigned bar = 0x14; bar <= 0x24; bar += 4) {
		cfg_write(bar, 4, 0xffffffffu);
		ck_assert_uint_eq(cfg_read(bar, 4), 0);
	}
	cfg_write(0x30, 4, 0xfffffffeu); /* expansion ROM: none */
	ck_assert_uint_eq(cfg_read(0x30, 4), 0);
	/* Memory decode off: BAR0 reads zeros, writes are ignored. */
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_NUMQ, 2), 0);
	bar_write(VIRTIO_PCI_COMMON_Q_SELECT, 2, 1);
	mem_enable();
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_NUMQ, 2), NQ);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_Q_SELECT, 2), 0);
}
END_TEST

START_TEST(read_only_config_registers)
{
	uint8_t before[256];

	for (unsigned r = 0; r < 256; r++)
		before[r] = (uint8_t)cfg_read(r, 1);
	for (unsigned r = 0; r < 256; r += 4)
		if (r != 0x10 && r != 0x04 && r != 0x0c && r != 0x3c && !(r >= 0x84 && r < 0x98))
			cfg_write(r, 4, 0xffffffffu);
	cfg_write(0x98, 2, 0xffff); /* MSI-X cap id/next */
	for (unsigned r = 0; r < 256; r++) {
		if (r == 0x9b) /* MSI-X control high byte: enable and mask */
			ck_assert_uint_eq(cfg_read(r, 1), before[r] | 0xc0);
		else if (!(r >= 0x84 && r < 0x98) && r != 0x0c && r != 0x3c)
			ck_assert_uint_eq(cfg_read(r, 1), before[r]);
	}
	/* Command: memory, bus master and INTx disable only. */
	cfg_write(0x04, 2, 0xffff);
	ck_assert_uint_eq(cfg_read(0x04, 2), 0x0406);
}
END_TEST

START_TEST(feature_negotiation)
{
	mem_enable();
	bar_write(VIRTIO_PCI_COMMON_DFSELECT, 4, 0);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_DF, 4), dev.features & 0xffffffffu);
	ck_assert_uint_ne(bar_read(VIRTIO_PCI_COMMON_DF, 4) & (1u << 5), 0);
	bar_write(VIRTIO_PCI_COMMON_DFSELECT, 4, 1);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_DF, 4), 1); /* VERSION_1 */
	bar_write(VIRTIO_PCI_COMMON_DFSELECT, 4, 7);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_DF, 4), 0);

	bar_write(VIRTIO_PCI_COMMON_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	bar_write(VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
	bar_write(VIRTIO_PCI_COMMON_GF, 4, 1u << 5);
	bar_write(VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
	bar_write(VIRTIO_PCI_COMMON_GF, 4, 1);
	bar_write(VIRTIO_PCI_COMMON_GFSELECT, 4, 9);
	bar_write(VIRTIO_PCI_COMMON_GF, 4, 0xffffffffu); /* no such word: ignored */
	ck_assert_uint_eq(dev.driver_features, 1ULL << 32 | 1u << 5);
	bar_write(VIRTIO_PCI_COMMON_STATUS, 1, 0x0b);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_STATUS, 1), 0x0b);
	/* Features are frozen after FEATURES_OK. */
	bar_write(VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
	bar_write(VIRTIO_PCI_COMMON_GF, 4, 0);
	ck_assert_uint_eq(dev.driver_features, 1ULL << 32 | 1u << 5);

	/* Reset, then features the device did not offer: FEATURES_OK stays clear. */
	bar_write(VIRTIO_PCI_COMMON_STATUS, 1, 0);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_STATUS, 1), 0);
	ck_assert_uint_eq(fdev.resets, 1);
	bar_write(VIRTIO_PCI_COMMON_STATUS, 1, 3);
	bar_write(VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
	bar_write(VIRTIO_PCI_COMMON_GF, 4, 1u << 6);
	bar_write(VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
	bar_write(VIRTIO_PCI_COMMON_GF, 4, 1);
	bar_write(VIRTIO_PCI_COMMON_STATUS, 1, 0x0b);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_STATUS, 1), 0x03);

	/* Device config region goes to the device's ops. */
	ck_assert_uint_eq(bar_read(0x2000, 4), 0x44332211u);
	bar_write(0x2006, 2, 0xabcd);
	ck_assert_uint_eq(fdev.config[6], 0xcd);
	ck_assert_uint_eq(bar_read(0x2006, 4), 0); /* past config_len */
}
END_TEST

/* Negotiates VERSION_1 and configures queue @q from the fake ring's layout. */
static void driver_setup_queue(unsigned q, uint16_t size)
{
	bar_write(VIRTIO_PCI_COMMON_Q_SELECT, 2, q);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_Q_SIZE, 2), QSIZE);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_Q_NOFF, 2), q);
	bar_write(VIRTIO_PCI_COMMON_Q_SIZE, 2, size);
	bar_write(VIRTIO_PCI_COMMON_Q_DESCLO, 4, (uint32_t)fr.vq.desc_gpa);
	bar_write(VIRTIO_PCI_COMMON_Q_DESCLO + 4, 4, 0);
	bar_write(VIRTIO_PCI_COMMON_Q_AVAILLO, 4, (uint32_t)fr.vq.avail_gpa);
	bar_write(VIRTIO_PCI_COMMON_Q_AVAILLO + 4, 4, 0);
	bar_write(VIRTIO_PCI_COMMON_Q_USEDLO, 8, fr.vq.used_gpa);
}

static void driver_features_ok(void)
{
	mem_enable();
	bar_write(VIRTIO_PCI_COMMON_STATUS, 1, 3);
	bar_write(VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
	bar_write(VIRTIO_PCI_COMMON_GF, 4, 1);
	bar_write(VIRTIO_PCI_COMMON_STATUS, 1, 0x0b);
}

START_TEST(queue_configuration)
{
	driver_features_ok();
	driver_setup_queue(0, QSIZE);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_Q_DESCLO, 8), fr.vq.desc_gpa);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_Q_AVAILLO, 4), fr.vq.avail_gpa);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_Q_USEDLO + 4, 4), 0);
	/* Misaligned halves are ignored. */
	bar_write(VIRTIO_PCI_COMMON_Q_DESCLO + 2, 4, 0xdeadbeef);
	bar_write(VIRTIO_PCI_COMMON_Q_AVAILLO + 1, 2, 0xbeef);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_Q_DESCLO, 8), fr.vq.desc_gpa);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_Q_AVAILLO, 8), fr.vq.avail_gpa);
	/* Larger than the maximum: kept at the old size. */
	bar_write(VIRTIO_PCI_COMMON_Q_SIZE, 2, QSIZE * 2);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_Q_SIZE, 2), QSIZE);
	bar_write(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 1);
	ck_assert(dev.vqs[0].enabled);
	/* A live queue cannot be reconfigured. */
	bar_write(VIRTIO_PCI_COMMON_Q_DESCLO, 4, 0x1000);
	ck_assert_uint_eq(dev.vqs[0].desc_gpa, fr.vq.desc_gpa);
	bar_write(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 0);
	ck_assert(dev.vqs[0].enabled);

	/* Vectors: only < table size or NO_VECTOR. */
	bar_write(VIRTIO_PCI_COMMON_Q_MSIX, 2, NQ);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_Q_MSIX, 2), NQ);
	bar_write(VIRTIO_PCI_COMMON_Q_MSIX, 2, NQ + 1);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_Q_MSIX, 2), 0xffff);
	bar_write(VIRTIO_PCI_COMMON_MSIX, 2, 0x7777);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_MSIX, 2), 0xffff);
	bar_write(VIRTIO_PCI_COMMON_MSIX, 2, 0);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_MSIX, 2), 0);

	/* Queue 1 with a size that is not a power of two: vq_enable refuses
	 * and the device needs a reset. */
	driver_setup_queue(1, 3);
	bar_write(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
	ck_assert_uint_ne(bar_read(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);

	/* Out of range queue_select: reads 0, writes ignored. */
	bar_write(VIRTIO_PCI_COMMON_Q_SELECT, 2, 100);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_Q_SELECT, 2), 100);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_Q_SIZE, 2), 0);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_Q_DESCLO, 8), 0);
	bar_write(VIRTIO_PCI_COMMON_Q_SIZE, 2, 4);
	bar_write(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	bar_write(VIRTIO_PCI_COMMON_Q_DESCLO, 8, 0x1000);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);

	/* Reset: queues and vectors forgotten. */
	bar_write(VIRTIO_PCI_COMMON_STATUS, 1, 0);
	bar_write(VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_Q_MSIX, 2), 0xffff);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_MSIX, 2), 0xffff);
}
END_TEST

START_TEST(notify_through_event_loop)
{
	struct evloop *loop;
	struct kv_err e = { 0 };

	/* Re-create with an event loop and no ioeventfd: the MMIO write
	 * handler signals the eventfd, the loop thread calls queue_notify. */
	virtio_pci_destroy(vp);
	ck_assert_int_eq(evloop_create(&loop, &e), 0);
	host.loop = loop;
	pci_root_destroy(root);
	bus_destroy(&mmio);
	bus_destroy(&pio);
	bus_init(&pio, BUS_PIO);
	bus_init(&mmio, BUS_MMIO);
	ck_assert_int_eq(pci_root_create(&pio, &root, &e), 0);
	ck_assert_int_eq(virtio_pci_create(root, &host, &dev, &vp, &e), 0);
	ck_assert_int_eq(evloop_start(loop, NULL, &e), 0);

	driver_features_ok();
	driver_setup_queue(1, QSIZE);
	bar_write(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	/* Not live yet (no DRIVER_OK): a kick is consumed, nothing runs. */
	bar_write(0x3000 + 4, 2, 1);
	bar_write(VIRTIO_PCI_COMMON_STATUS, 1, 0x0f);
	ck_assert_uint_eq(fdev.activations, 1);
	bar_write(0x3000 + 4, 2, 1);
	for (int i = 0; i < 2000 && !__atomic_load_n(&fdev.notified[1], __ATOMIC_SEQ_CST); i++)
		usleep(1000);
	ck_assert_uint_ge(__atomic_load_n(&fdev.notified[1], __ATOMIC_SEQ_CST), 1);
	/* Queue 0 is not enabled, so its kick does nothing; misaligned and
	 * out-of-range notify writes are dropped. */
	bar_write(0x3000, 2, 0);
	bar_write(0x3001, 1, 0);
	bar_write(0x3000 + 4 * 7, 4, 0);
	usleep(20000);
	ck_assert_uint_eq(__atomic_load_n(&fdev.notified[0], __ATOMIC_SEQ_CST), 0);
	virtio_pci_destroy(vp);
	vp = NULL;
	evloop_destroy(loop);
}
END_TEST

static void notify_queue(unsigned q)
{
	pthread_mutex_lock(&dev.lock);
	dev.tops->notify_queue(dev.transport, q);
	pthread_mutex_unlock(&dev.lock);
}

static void notify_config(void)
{
	pthread_mutex_lock(&dev.lock);
	dev.tops->notify_config(dev.transport);
	pthread_mutex_unlock(&dev.lock);
}

START_TEST(isr_and_intx)
{
	mem_enable();
	notify_queue(0);
	ck_assert_int_eq(firq.level, 1);
	ck_assert_uint_eq(firq.gsi, LAYOUT_PCI_GSI(1));
	ck_assert_uint_ne(cfg_read(0x06, 2) & 0x08, 0); /* interrupt status */
	notify_config();
	ck_assert_int_eq(firq.raises, 1);
	ck_assert_uint_eq(bar_read(0x1000, 1), 3);
	ck_assert_int_eq(firq.level, 0);
	ck_assert_uint_eq(bar_read(0x1000, 1), 0);
	ck_assert_int_eq(firq.lowers, 1);
	/* INTx disable holds the line low until re-enabled. */
	cfg_write(0x04, 2, 0x0406);
	notify_config();
	ck_assert_int_eq(firq.level, 0);
	cfg_write(0x04, 2, 0x0006);
	ck_assert_int_eq(firq.level, 1);
	ck_assert_uint_eq(bar_read(0x1000, 4), 2);
	ck_assert_int_eq(firq.level, 0);
	/* ISR writes are ignored. */
	bar_write(0x1000, 1, 0xff);
	ck_assert_uint_eq(bar_read(0x1000, 1), 0);
}
END_TEST

static unsigned msix_cap(void)
{
	struct vcap caps[6];
	unsigned at;

	walk_caps(caps, &at);
	return at;
}

static uint64_t eventfd_count(int fd)
{
	eventfd_t n = 0;

	return eventfd_read(fd, &n) == 0 ? n : 0;
}

START_TEST(msix_masked_pending_then_delivered)
{
	unsigned at = msix_cap();
	uint32_t table = cfg_read(at + 4, 4), pba = cfg_read(at + 8, 4);

	mem_enable();
	bar_write(VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
	bar_write(VIRTIO_PCI_COMMON_Q_MSIX, 2, 1);
	cfg_write(at + 2, 2, 0x8000 | 0x4000); /* enable, function mask */
	bar_write(table + 16, 4, 0xfee00000u);
	bar_write(table + 20, 4, 0);
	bar_write(table + 24, 4, 0x4041);
	ck_assert_uint_eq(bar_read(table + 28, 4), 1); /* starts masked */
	notify_queue(0);
	ck_assert_int_eq(firq.raises, 0);
	ck_assert_uint_eq(bar_read(pba, 8), 1u << 1);
	/* Vector unmasked, function still masked: pending stays. */
	bar_write(table + 28, 4, 0);
	ck_assert_uint_eq(bar_read(pba, 8), 1u << 1);
	ck_assert_int_eq(fhost.routes, 0);
	/* Function unmask: route programmed from the table, message sent. */
	cfg_write(at + 2, 2, 0x8000);
	ck_assert_int_eq(fhost.routes, 1);
	ck_assert_uint_eq(fhost.last_addr, 0xfee00000u);
	ck_assert_uint_eq(fhost.last_data, 0x4041);
	ck_assert_uint_eq(bar_read(pba, 8), 0);
	ck_assert_uint_eq(eventfd_count(fhost.last_fd), 1);
	/* Unmasked: delivered at once. */
	notify_queue(0);
	ck_assert_uint_eq(eventfd_count(fhost.last_fd), 1);
	ck_assert_int_eq(fhost.routes, 1);
	/* New message data while unmasked: the route follows. */
	bar_write(table + 24, 4, 0x4042);
	ck_assert_int_eq(fhost.routes, 2);
	ck_assert_uint_eq(fhost.last_data, 0x4042);
	/* No vector for config: nothing at all. */
	notify_config();
	ck_assert_uint_eq(bar_read(pba, 8), 0);
	ck_assert_int_eq(firq.raises, 0);
	ck_assert_uint_eq(bar_read(0x1000, 1), 0);
	/* Vector control has only the mask bit. */
	bar_write(table + 28, 4, 0xfffffffeu);
	ck_assert_uint_eq(bar_read(table + 28, 4), 0);
	/* MSI-X off again: back to INTx. */
	cfg_write(at + 2, 2, 0);
	notify_queue(0);
	ck_assert_int_eq(firq.level, 1);
}
END_TEST

START_TEST(msix_without_msi_route_stays_pending)
{
	unsigned at, table, pba;

	teardown();
	create(false);
	at = msix_cap();
	table = cfg_read(at + 4, 4);
	pba = cfg_read(at + 8, 4);
	mem_enable();
	bar_write(VIRTIO_PCI_COMMON_MSIX, 2, 2);
	cfg_write(at + 2, 2, 0x8000);
	bar_write(table + 2 * 16 + 12, 4, 0);
	notify_config();
	ck_assert_uint_eq(bar_read(pba, 8), 1u << 2);
	ck_assert_int_eq(firq.raises, 0);
}
END_TEST

START_TEST(pci_cfg_window)
{
	struct vcap caps[6];
	unsigned at;

	walk_caps(caps, &at);
	at = caps[5].at;
	mem_enable();
	cfg_write(at + 4, 1, 0);
	cfg_write(at + 8, 4, VIRTIO_PCI_COMMON_NUMQ);
	cfg_write(at + 12, 4, 2);
	ck_assert_uint_eq(cfg_read(at + 16, 2), NQ);
	cfg_write(at + 8, 4, VIRTIO_PCI_COMMON_Q_SELECT);
	cfg_write(at + 16, 2, 1);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_Q_SELECT, 2), 1);
	/* Bad windows are harmless. */
	static const uint32_t bad[][3] = { { 1, 0, 4 }, { 0, 1, 4 }, { 0, 0, 3 },
					   { 0, 0xffff, 2 }, { 0, 0xfffffffcu, 4 } };
	for (unsigned i = 0; i < 5; i++) {
		cfg_write(at + 4, 1, bad[i][0]);
		cfg_write(at + 8, 4, bad[i][1]);
		cfg_write(at + 12, 4, bad[i][2]);
		cfg_read(at + 16, 4);
		cfg_write(at + 16, 4, 0xffffffffu);
	}
}
END_TEST

START_TEST(hostile_accesses)
{
	static const unsigned sizes[] = { 1, 2, 4, 8 };
	unsigned seed = 7;

	mem_enable();
	for (int i = 0; i < 20000; i++) {
		uint64_t v = (uint64_t)rand_r(&seed) << 32 | (unsigned)rand_r(&seed);
		unsigned len = sizes[rand_r(&seed) % 4];
		/* Mostly the interesting regions, sometimes anywhere. */
		uint64_t off = (unsigned)rand_r(&seed) % 8 ? ((unsigned)rand_r(&seed) % 6) * 0x1000 +
					 (unsigned)rand_r(&seed) % 0x40
				       : (unsigned)rand_r(&seed) % (LAYOUT_PCI_BAR_SIZE - 8);
		bool wr = rand_r(&seed) & 1;

		if (off == VIRTIO_PCI_COMMON_STATUS && wr)
			continue; /* keep memory decode and reset churn bounded below */
		ck_assert_int_eq(bus_dispatch(&mmio, BAR + off, &v, len, wr), 0);
		if (i % 16 == 0) {
			unsigned reg = (unsigned)rand_r(&seed) % 256;
			unsigned clen = sizes[rand_r(&seed) % 3];

			reg &= ~(clen - 1);
			if (reg != 0x04 && rand_r(&seed) & 1)
				cfg_write(reg, clen, (uint32_t)v);
			else
				cfg_read(reg, clen);
		}
	}
	/* Read-only common registers survived. */
	mem_enable();
	bar_write(VIRTIO_PCI_COMMON_NUMQ, 2, 77);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_NUMQ, 2), NQ);
	bar_write(0x15, 1, 9);
	ck_assert_uint_eq(cfg_read(0x00, 4), 0x1042u << 16 | 0x1af4);
	/* Straddling the BAR's end is not ours. */
	uint64_t v = 0;
	ck_assert_int_eq(bus_dispatch(&mmio, BAR + LAYOUT_PCI_BAR_SIZE - 2, &v, 4, false), -ENOENT);
}
END_TEST

START_TEST(bus_full)
{
	struct virtio_dev more[LAYOUT_PCI_MAX_SLOTS];
	struct virtio_pci *vps[LAYOUT_PCI_MAX_SLOTS];
	struct kv_err e = { 0 };
	unsigned n = 0;
	int r = 0;

	for (; n < LAYOUT_PCI_MAX_SLOTS; n++) {
		virtio_dev_init(&more[n], "virtio-more", VIRTIO_ID_CONSOLE, 0, 2, 8, 0, &fd_ops,
				&fdev, &fr.gm, NULL);
		r = virtio_pci_create(root, &host, &more[n], &vps[n], &e);
		if (r)
			break;
	}
	ck_assert_int_eq(r, -ENOSPC);
	ck_assert_uint_eq(n, LAYOUT_PCI_MAX_SLOTS - 1);
	virtio_dev_fini(&more[n]);
	/* The console has no device config: no device cap in its chain. */
	uint32_t a = 0x80000000u | 2u << 11 | 0x08, v = 0;
	ck_assert_int_eq(bus_dispatch(&pio, CF8, &a, 4, true), 0);
	ck_assert_int_eq(bus_dispatch(&pio, CFC, &v, 4, false), 0);
	ck_assert_uint_eq(v >> 8, 0x078000);
	while (n--) {
		virtio_pci_destroy(vps[n]);
		virtio_dev_fini(&more[n]);
	}
	/* Slot 2 is empty again. */
	ck_assert_int_eq(bus_dispatch(&pio, CF8, &a, 4, true), 0);
	ck_assert_int_eq(bus_dispatch(&pio, CFC, &v, 4, false), 0);
	ck_assert_uint_eq(v, 0xffffffffu);
}
END_TEST

/* Builds everything again around an event loop (running) and, if
 * @ioeventfd, a fake KVM ioeventfd table. */
static struct evloop *recreate_with_loop(bool ioeventfd)
{
	struct evloop *loop;
	struct kv_err e = { 0 };

	virtio_pci_destroy(vp);
	pci_root_destroy(root);
	ck_assert_uint_eq(mmio.nr_ranges, 0);
	ck_assert_uint_eq(pio.nr_ranges, 0);
	ck_assert_int_eq(evloop_create(&loop, &e), 0);
	host.loop = loop;
	host.ioeventfd = ioeventfd ? fh_ioeventfd : NULL;
	ck_assert_int_eq(pci_root_create(&pio, &root, &e), 0);
	ck_assert_int_eq(virtio_pci_create(root, &host, &dev, &vp, &e), 0);
	ck_assert_int_eq(evloop_start(loop, NULL, &e), 0);
	return loop;
}

/* A guest MMIO write as KVM handles it: an assigned ioeventfd takes it
 * without an exit, anything else exits to the bus. */
static void kvm_write(uint64_t off, unsigned len, uint64_t v)
{
	for (int i = 0; i < fhost.nr_ioev; i++) {
		if (fhost.ioev[i].addr == BAR + off && (fhost.ioev[i].len == 0 ||
							fhost.ioev[i].len == len)) {
			ck_assert_int_eq(eventfd_write(fhost.ioev[i].fd, 1), 0);
			return;
		}
	}
	bar_write(off, len, v);
}

static unsigned notified(unsigned q)
{
	return __atomic_load_n(&fdev.notified[q], __ATOMIC_SEQ_CST);
}

static void wait_notified(unsigned q, unsigned want)
{
	for (int i = 0; i < 2000 && notified(q) < want; i++)
		usleep(1000);
	ck_assert_uint_eq(notified(q), want);
}

/* Memory decoding off: no BAR0 write reaches the device, not even the
 * kicks KVM would take through its ioeventfds, which are deassigned
 * until decoding comes back. */
START_TEST(decoding_off_stops_kicks)
{
	struct evloop *loop = recreate_with_loop(true);

	ck_assert_int_eq(fhost.nr_ioev, 0); /* the command register starts at 0 */
	driver_features_ok();               /* turns decoding on */
	ck_assert_int_eq(fhost.nr_ioev, NQ);
	for (int i = 0; i < NQ; i++)
		ck_assert_uint_eq(fhost.ioev[i].addr & ~4ULL, BAR + 0x3000);
	driver_setup_queue(0, QSIZE);
	bar_write(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	bar_write(VIRTIO_PCI_COMMON_STATUS, 1, 0x0f);
	kvm_write(0x3000, 2, 0);
	wait_notified(0, 1);

	cfg_write(0x04, 2, PCI_COMMAND_MASTER); /* decoding off */
	ck_assert_int_eq(fhost.nr_ioev, 0);
	kvm_write(0x3000, 2, 0);
	kvm_write(0x3000, 4, 0);
	usleep(30000);
	ck_assert_uint_eq(notified(0), 1);
	cfg_write(0x04, 2, PCI_COMMAND_MASTER); /* unchanged: nothing to do */
	ck_assert_int_eq(fhost.nr_ioev, 0);

	cfg_write(0x04, 2, PCI_COMMAND_MASTER | PCI_COMMAND_MEMORY);
	ck_assert_int_eq(fhost.nr_ioev, NQ);
	kvm_write(0x3000, 2, 0);
	wait_notified(0, 2);
	virtio_pci_destroy(vp);
	vp = NULL;
	ck_assert_int_eq(fhost.nr_ioev, 0);
	evloop_destroy(loop);
}
END_TEST

static void *notify_queue0_thread(void *arg)
{
	pthread_mutex_lock(&dev.lock);
	dev.tops->notify_queue(dev.transport, 0);
	pthread_mutex_unlock(&dev.lock);
	return NULL;
}

/* The I/O thread raises interrupts; its seccomp filter refuses
 * KVM_SET_GSI_ROUTING. A vector whose route failed stays pending until a
 * register write (a vCPU thread) retries the route. */
START_TEST(msix_route_retried_only_by_register_writes)
{
	unsigned at = msix_cap();
	uint32_t table = cfg_read(at + 4, 4), pba = cfg_read(at + 8, 4);
	pthread_t io;

	mem_enable();
	bar_write(VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
	bar_write(VIRTIO_PCI_COMMON_Q_MSIX, 2, 1);
	cfg_write(at + 2, 2, 0x8000);
	bar_write(table + 16, 8, 0xfee00000u);
	bar_write(table + 24, 4, 0x4041);
	fhost.fail_routes = true;
	bar_write(table + 28, 4, 0); /* unmask: the route fails */
	ck_assert_int_eq(fhost.route_failures, 1);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(pthread_create(&io, NULL, notify_queue0_thread, NULL), 0);
		ck_assert_int_eq(pthread_join(io, NULL), 0);
		if (i == 1)
			fhost.fail_routes = false;
	}
	/* No route call from the interrupt path, failed or not. */
	ck_assert_int_eq(fhost.route_failures, 1);
	ck_assert_int_eq(fhost.routes, 0);
	ck_assert_uint_eq(bar_read(pba, 8), 1u << 1);
	/* The driver touches the vector again: routed, delivered once. */
	bar_write(table + 28, 4, 0);
	ck_assert_int_eq(fhost.routes, 1);
	ck_assert_uint_eq(bar_read(pba, 8), 0);
	ck_assert_uint_eq(eventfd_count(fhost.last_fd), 1);
	/* A routed vector goes out from the I/O thread without a route call. */
	ck_assert_int_eq(pthread_create(&io, NULL, notify_queue0_thread, NULL), 0);
	ck_assert_int_eq(pthread_join(io, NULL), 0);
	ck_assert_int_eq(fhost.routes, 1);
	ck_assert_uint_eq(eventfd_count(fhost.last_fd), 1);
}
END_TEST

/* §2.1.1 through the common configuration: clearing FEATURES_OK is
 * refused (NEEDS_RESET) and negotiation does not reopen. */
START_TEST(status_bits_cleared_without_reset)
{
	driver_features_ok();
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_STATUS, 1), 0x0b);
	bar_write(VIRTIO_PCI_COMMON_STATUS, 1, 0x03);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_STATUS, 1), 0x0b | VIRTIO_CONFIG_S_NEEDS_RESET);
	bar_write(VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
	bar_write(VIRTIO_PCI_COMMON_GF, 4, 1u << 5);
	ck_assert_uint_eq(dev.driver_features, 1ULL << 32);
	bar_write(VIRTIO_PCI_COMMON_STATUS, 1, 0);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_STATUS, 1), 0);
}
END_TEST

static Suite *virtio_pci_suite(void)
{
	Suite *s = suite_create("virtio_pci");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, identity);
	tcase_add_test(tc, capability_chain);
	tcase_add_test(tc, bar_sizing);
	tcase_add_test(tc, read_only_config_registers);
	tcase_add_test(tc, feature_negotiation);
	tcase_add_test(tc, queue_configuration);
	tcase_add_test(tc, notify_through_event_loop);
	tcase_add_test(tc, isr_and_intx);
	tcase_add_test(tc, msix_masked_pending_then_delivered);
	tcase_add_test(tc, msix_without_msi_route_stays_pending);
	tcase_add_test(tc, pci_cfg_window);
	tcase_add_test(tc, hostile_accesses);
	tcase_add_test(tc, bus_full);
	tcase_add_test(tc, decoding_off_stops_kicks);
	tcase_add_test(tc, msix_route_retried_only_by_register_writes);
	tcase_add_test(tc, status_bits_cleared_without_reset);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run_suite(virtio_pci_suite());
}
