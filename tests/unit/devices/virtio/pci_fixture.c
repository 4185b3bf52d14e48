/* The virtio-pci suites' fixture: see pci_fixture.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "pci_fixture.h"

struct fake_ring fr;
struct bus pio, mmio;
struct pci_root *root;
struct virtio_dev dev;
struct fake_dev fdev;
struct fake_irq firq;
struct irq_sink sink;
struct fake_host fhost;
struct virtio_host host;
struct virtio_pci *vp;

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

const struct virtio_dev_ops fd_ops = {
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
void create(bool with_msi_route)
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
void setup(void)
{
	create(true);
}
void teardown(void)
{
	virtio_pci_destroy(vp);
	virtio_dev_fini(&dev);
	pci_root_destroy(root);
	bus_destroy(&mmio);
	bus_destroy(&pio);
	fr_fini(&fr);
}
/* ---- config space through conf1 ---- */

uint32_t cfg_read(unsigned reg, unsigned len)
{
	uint32_t a = 0x80000000u | 1u << 11 | (reg & 0xfc), v = 0;

	ck_assert_int_eq(bus_dispatch(&pio, CF8, &a, 4, true), 0);
	ck_assert_int_eq(bus_dispatch(&pio, CFC + (reg & 3), &v, len, false), 0);
	return v;
}

void cfg_write(unsigned reg, unsigned len, uint32_t v)
{
	uint32_t a = 0x80000000u | 1u << 11 | (reg & 0xfc);

	ck_assert_int_eq(bus_dispatch(&pio, CF8, &a, 4, true), 0);
	ck_assert_int_eq(bus_dispatch(&pio, CFC + (reg & 3), &v, len, true), 0);
}

uint64_t bar_read(uint64_t off, unsigned len)
{
	uint64_t v = 0;

	ck_assert_int_eq(bus_dispatch(&mmio, BAR + off, &v, len, false), 0);
	return v;
}

void bar_write(uint64_t off, unsigned len, uint64_t v)
{
	ck_assert_int_eq(bus_dispatch(&mmio, BAR + off, &v, len, true), 0);
}

void mem_enable(void)
{
	cfg_write(0x04, 2, 0x0006);
}

/* virtio_pci_find_capability, plus the MSI-X cap's position. */
void walk_caps(struct vcap caps[6], unsigned *msix_at)
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
/* Negotiates VERSION_1 and configures queue @q from the fake ring's layout. */
void driver_setup_queue(unsigned q, uint16_t size)
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
void driver_features_ok(void)
{
	mem_enable();
	bar_write(VIRTIO_PCI_COMMON_STATUS, 1, 3);
	bar_write(VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
	bar_write(VIRTIO_PCI_COMMON_GF, 4, 1);
	bar_write(VIRTIO_PCI_COMMON_STATUS, 1, 0x0b);
}
void notify_queue(unsigned q)
{
	pthread_mutex_lock(&dev.lock);
	dev.tops->notify_queue(dev.transport, q);
	pthread_mutex_unlock(&dev.lock);
}
void notify_config(void)
{
	pthread_mutex_lock(&dev.lock);
	dev.tops->notify_config(dev.transport);
	pthread_mutex_unlock(&dev.lock);
}
unsigned msix_cap(void)
{
	struct vcap caps[6];
	unsigned at;

	walk_caps(caps, &at);
	return at;
}
uint64_t eventfd_count(int fd)
{
	eventfd_t n = 0;

	return eventfd_read(fd, &n) == 0 ? n : 0;
}
/* Builds everything again around an event loop (running) and, if
 * @ioeventfd, a fake KVM ioeventfd table. */
struct evloop *recreate_with_loop(bool ioeventfd)
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
void kvm_write(uint64_t off, unsigned len, uint64_t v)
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
unsigned notified(unsigned q)
{
	return __atomic_load_n(&fdev.notified[q], __ATOMIC_SEQ_CST);
}
void wait_notified(unsigned q, unsigned want)
{
	for (int i = 0; i < 2000 && notified(q) < want; i++)
		usleep(1000);
	ck_assert_uint_eq(notified(q), want);
}
