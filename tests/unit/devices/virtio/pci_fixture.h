/* The fixture of the virtio-pci suites (test_virtio_pci.c,
 * test_virtio_pci_state.c): a small fake device with its own ops, a fake
 * host recording MSI routes and KVM's ioeventfd table, the real PCI
 * root, buses and virtio core, and the accesses a driver makes. */
#ifndef KVMINI_TEST_PCI_FIXTURE_H
#define KVMINI_TEST_PCI_FIXTURE_H

#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <linux/pci_regs.h>
#include <linux/virtio_pci.h>

#include "kvmini/event_loop.h"
#include "kvmini/layout.h"
#include "kvmini/pci_root.h"
#include "kvmini/virtio_pci.h"
#include "../fakes.h"
#include "fake_ring.h"

#define CF8 PORT_PCI_CONFIG
#define CFC (PORT_PCI_CONFIG + 4)
#define NQ 2
#define QSIZE 16
#define BAR LAYOUT_PCI_BAR(1)

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

struct vcap {
	unsigned at, bar;
	uint32_t off, len;
};

extern struct fake_ring fr;
extern struct bus pio, mmio;
extern struct pci_root *root;
extern struct virtio_dev dev;
extern struct fake_dev fdev;
extern struct fake_irq firq;
extern struct irq_sink sink;
extern struct fake_host fhost;
extern struct virtio_host host;
extern struct virtio_pci *vp;
extern const struct virtio_dev_ops fd_ops;

/* The device on slot 1 (with MSI routing hooks when @with_msi_route). */
void create(bool with_msi_route);
void setup(void);
void teardown(void);
/* Builds everything again around a running event loop and, if
 * @ioeventfd, a fake KVM ioeventfd table. */
struct evloop *recreate_with_loop(bool ioeventfd);

/* Config space through conf1, BAR0 through the MMIO bus (each access
 * asserted to be claimed). */
uint32_t cfg_read(unsigned reg, unsigned len);
void cfg_write(unsigned reg, unsigned len, uint32_t v);
uint64_t bar_read(uint64_t off, unsigned len);
void bar_write(uint64_t off, unsigned len, uint64_t v);
/* A guest write as KVM handles it: an assigned ioeventfd takes it. */
void kvm_write(uint64_t off, unsigned len, uint64_t v);
void mem_enable(void);
/* virtio_pci_find_capability, plus the MSI-X cap's position. */
void walk_caps(struct vcap caps[6], unsigned *msix_at);
unsigned msix_cap(void);

/* The driver: queue @q from the fake ring's layout; VERSION_1 and
 * FEATURES_OK. */
void driver_setup_queue(unsigned q, uint16_t size);
void driver_features_ok(void);

/* The device side raising interrupts (lock taken). */
void notify_queue(unsigned q);
void notify_config(void);
uint64_t eventfd_count(int fd);
/* Kicks the fake device saw on queue @q; waiting up to 2 s for @want. */
unsigned notified(unsigned q);
void wait_notified(unsigned q, unsigned want);

#endif
