/* No transport path allocates once the VM runs: a vCPU or I/O thread
 * whose seccomp filter is on can die on its first malloc (glibc may then
 * create an arena or trim the heap with calls no filter allows). This
 * suite interposes malloc and friends, sets up virtio-pci and virtio-mmio
 * transports with a fake device and host, and then drives every register
 * path a guest can reach (Linux's probe, MSI-X programming, memory
 * decoding off and on, kicks through the event loop, interrupts, queue
 * stop, broken status writes, reset), failing on any allocation.
 *
 * Built only without a sanitizer (whose runtime owns malloc) and without
 * -static (where libc's malloc cannot be interposed). */
#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <linux/pci_regs.h>
#include <linux/virtio_pci.h>

#include "kvmini/event_loop.h"
#include "kvmini/layout.h"
#include "kvmini/pci_root.h"
#include "kvmini/virtio_mmio.h"
#include "kvmini/virtio_pci.h"
#include "../../check_main.h"

/* ---- the allocation counter ---- */

void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t n);
void __libc_free(void *p);
void *malloc(size_t n);
void *calloc(size_t n, size_t size);
void *realloc(void *p, size_t n);
void free(void *p);

static bool counting;
static unsigned allocs, frees;

void *malloc(size_t n)
{
	if (counting)
		allocs++;
	return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
	if (counting)
		allocs++;
	return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
	if (counting)
		allocs++;
	return __libc_realloc(p, n);
}

void free(void *p)
{
	if (counting && p)
		frees++;
	__libc_free(p);
}

/* ---- a device and host that do nothing ---- */

#define NQ 2
#define RAM_SIZE (256 * 1024)
#define BAR LAYOUT_PCI_BAR(1)
#define MMIO_BASE LAYOUT_VIRTIO_MMIO(0)

static uint8_t ram[RAM_SIZE] __attribute__((aligned(4096)));
static struct guest_mem gm;
static struct bus pio, mmio;
static struct evloop *loop;
static int irq_level[32];
static int next_gsi = 24;

static void cfg_rd(struct virtio_dev *d, uint32_t off, void *data, unsigned len)
{
	memset(data, 0, len);
}

static void cfg_wr(struct virtio_dev *d, uint32_t off, const void *data, unsigned len)
{
}

static int activate(struct virtio_dev *d)
{
	return 0;
}

static void queue_notify(struct virtio_dev *d, unsigned q)
{
	virtio_dev_used(d, q);
}

static void reset(struct virtio_dev *d)
{
}

static void queue_stop(struct virtio_dev *d, unsigned q)
{
}

static const struct virtio_dev_ops ops = {
	.config_read = cfg_rd, .config_write = cfg_wr, .activate = activate,
	.queue_notify = queue_notify, .reset = reset, .queue_stop = queue_stop,
};

/* Not the shared fake sink: its checks allocate (check's location
 * messages). */
static int set_level(void *ctx, unsigned gsi, int level)
{
	irq_level[gsi % 32] = level;
	return 0;
}

static const struct irq_sink sink = { set_level, NULL };

static int msi_route(void *ctx, int *gsi, uint64_t addr, uint32_t data, int fd)
{
	if (*gsi < 0)
		*gsi = next_gsi++;
	return 0;
}

static void msi_unroute(void *ctx, int gsi, int fd)
{
}

static int ioeventfd(void *ctx, uint64_t addr, unsigned len, int64_t datamatch, int fd,
		     bool assign)
{
	return 0;
}

static struct virtio_host host_for(void)
{
	return (struct virtio_host){
		.mem = &gm, .pio = &pio, .mmio = &mmio, .irq = &sink, .loop = loop,
		.ioeventfd = ioeventfd, .msi_route = msi_route, .msi_unroute = msi_unroute,
	};
}

static void setup(void)
{
	struct kv_err e = { 0 };

	memset(&gm, 0, sizeof(gm));
	ck_assert_int_eq(gm_add_region(&gm, 0, RAM_SIZE, ram), 0);
	bus_init(&pio, BUS_PIO);
	bus_init(&mmio, BUS_MMIO);
	ck_assert_int_eq(evloop_create(&loop, &e), 0);
}

static void teardown(void)
{
	evloop_destroy(loop);
	bus_destroy(&mmio);
	bus_destroy(&pio);
}

static void run_loop(void)
{
	while (evloop_run_once(loop, 0) > 0)
		;
}

/* ---- guest accesses ---- */

static void pci_cfg(unsigned reg, unsigned len, uint32_t v, bool is_write)
{
	uint32_t a = 0x80000000u | 1u << 11 | (reg & 0xfc);

	bus_dispatch(&pio, PORT_PCI_CONFIG, &a, 4, true);
	bus_dispatch(&pio, PORT_PCI_CONFIG + 4 + (reg & 3), &v, len, is_write);
}

static void bar(uint64_t off, unsigned len, uint64_t v, bool is_write)
{
	bus_dispatch(&mmio, BAR + off, &v, len, is_write);
}

static void notify_all(struct virtio_dev *d)
{
	pthread_mutex_lock(&d->lock);
	for (unsigned q = 0; q < NQ; q++)
		d->tops->notify_queue(d->transport, q);
	d->tops->notify_config(d->transport);
	pthread_mutex_unlock(&d->lock);
}

static void pci_queue(unsigned q)
{
	bar(VIRTIO_PCI_COMMON_Q_SELECT, 2, q, true);
	bar(VIRTIO_PCI_COMMON_Q_SIZE, 2, 16, true);
	bar(VIRTIO_PCI_COMMON_Q_MSIX, 2, q + 1, true);
	bar(VIRTIO_PCI_COMMON_Q_DESCLO, 8, 0x1000 + q * 0x4000, true);
	bar(VIRTIO_PCI_COMMON_Q_AVAILLO, 8, 0x2000 + q * 0x4000, true);
	bar(VIRTIO_PCI_COMMON_Q_USEDLO, 8, 0x3000 + q * 0x4000, true);
	bar(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1, true);
}

START_TEST(virtio_pci_paths)
{
	struct virtio_host host = host_for();
	struct kv_err e = { 0 };
	struct pci_root *root;
	struct virtio_dev dev;
	struct virtio_pci *vp;
	const unsigned msix = 0x98, table = 0x4000;

	ck_assert_int_eq(pci_root_create(&pio, &root, &e), 0);
	virtio_dev_init(&dev, "virtio-alloc0", VIRTIO_ID_BLOCK, 0, NQ, 16, 8, &ops, NULL, &gm, loop);
	ck_assert_int_eq(virtio_pci_create(root, &host, &dev, &vp, &e), 0);

	counting = true;
	for (unsigned r = 0; r < 256; r += 4)
		pci_cfg(r, 4, 0, false);
	pci_cfg(PCI_BASE_ADDRESS_0, 4, 0xffffffffu, true);
	pci_cfg(PCI_BASE_ADDRESS_0, 4, (uint32_t)BAR, true);
	pci_cfg(PCI_BASE_ADDRESS_0, 4, 0x12345000u, true);         /* cannot move: logged */
	pci_cfg(PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, true);
	pci_cfg(msix + 2, 2, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL, true);
	for (unsigned v = 0; v <= NQ; v++) {
		bar(table + 16 * v, 8, 0xfee00000u, true);
		bar(table + 16 * v + 8, 4, 0x4040 + v, true);
		bar(table + 16 * v + 12, 4, 0, true);
	}
	pci_cfg(msix + 2, 2, PCI_MSIX_FLAGS_ENABLE, true);         /* routes made here */
	bar(VIRTIO_PCI_COMMON_STATUS, 1, 3, true);
	bar(VIRTIO_PCI_COMMON_GFSELECT, 4, 1, true);
	bar(VIRTIO_PCI_COMMON_GF, 4, 1, true);
	bar(VIRTIO_PCI_COMMON_STATUS, 1, 0x0b, true);
	bar(VIRTIO_PCI_COMMON_MSIX, 2, 0, true);
	for (unsigned q = 0; q < NQ; q++)
		pci_queue(q);
	bar(VIRTIO_PCI_COMMON_STATUS, 1, 0x0f, true);
	for (unsigned q = 0; q < NQ; q++)
		bar(0x3000 + 4 * q, 2, q, true);
	run_loop();                                                 /* kicks on the "I/O thread" */
	notify_all(&dev);
	bar(table + 16 + 8, 4, 0x5050, true);                       /* re-route while live */
	bar(0x5000, 8, 0, false);
	pci_cfg(PCI_COMMAND, 2, PCI_COMMAND_MASTER, true);          /* decoding off: deassign */
	bar(0x3000, 2, 0, true);
	pci_cfg(PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, true);
	pci_cfg(msix + 2, 2, 0, true);                              /* back to INTx */
	notify_all(&dev);
	bar(0x1000, 1, 0, false);
	pci_cfg(0x88, 1, 0, true);                                  /* the pci_cfg window */
	pci_cfg(0x8c, 4, VIRTIO_PCI_COMMON_NUMQ, true);
	pci_cfg(0x90, 4, 2, true);
	pci_cfg(0x94, 4, 0, false);
	bar(0x2000, 4, 0, false);
	bar(VIRTIO_PCI_COMMON_STATUS, 1, 0x03, true);               /* clears bits: NEEDS_RESET */
	bar(VIRTIO_PCI_COMMON_STATUS, 1, 0, true);                  /* reset */
	counting = false;

	ck_assert_uint_eq(allocs, 0);
	ck_assert_int_gt(next_gsi, 24);
	virtio_pci_destroy(vp);
	virtio_dev_fini(&dev);
	pci_root_destroy(root);
}
END_TEST

static void mm_wr(uint64_t off, uint32_t v)
{
	bus_dispatch(&mmio, MMIO_BASE + off, &v, 4, true);
}

START_TEST(virtio_mmio_paths)
{
	struct virtio_host host = host_for();
	struct kv_err e = { 0 };
	struct virtio_dev dev;
	struct virtio_mmio *mm;
	uint32_t v = 0;

	virtio_dev_init(&dev, "virtio-alloc1", VIRTIO_ID_BLOCK, 0, NQ, 16, 8, &ops, NULL, &gm, loop);
	ck_assert_int_eq(virtio_mmio_create(&host, MMIO_BASE, 5, &dev, &mm, &e), 0);

	counting = true;
	bus_dispatch(&mmio, MMIO_BASE, &v, 4, false);
	mm_wr(0x070, 3);
	mm_wr(0x024, 1);
	mm_wr(0x020, 1);
	mm_wr(0x070, 0x0b);
	for (unsigned q = 0; q < NQ; q++) {
		mm_wr(0x030, q);
		mm_wr(0x038, 16);
		mm_wr(0x080, 0x1000 + q * 0x4000);
		mm_wr(0x090, 0x2000 + q * 0x4000);
		mm_wr(0x0a0, 0x3000 + q * 0x4000);
		mm_wr(0x044, 1);
	}
	mm_wr(0x070, 0x0f);
	mm_wr(0x050, 0);
	mm_wr(0x050, 1);
	run_loop();
	notify_all(&dev);
	mm_wr(0x064, 3);
	mm_wr(0x030, 1);
	mm_wr(0x044, 0);                                            /* queue stop */
	mm_wr(0x070, 0x03);                                         /* clears bits: NEEDS_RESET */
	mm_wr(0x070, 0);                                            /* reset */
	counting = false;

	ck_assert_uint_eq(allocs, 0);
	virtio_mmio_destroy(mm);
	virtio_dev_fini(&dev);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("virtio_transport_alloc");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, virtio_pci_paths);
	tcase_add_test(tc, virtio_mmio_paths);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
