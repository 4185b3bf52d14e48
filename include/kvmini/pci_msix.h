/* MSI-X for a PCI function (devices/pci_msix.c): the capability, the
 * vector table and the pending-bit array in a memory BAR, masking, and
 * delivery through one irqfd per vector that the host routes to the
 * message the guest programmed. Any PCI device can use it; it knows no
 * device class.
 *
 * Threads: routes change only from register writes (the table, the
 * capability's enable and function-mask bits), which run on vCPU
 * threads; pci_msix_notify only signals an irqfd or sets a pending bit,
 * so the I/O thread can call it without KVM_SET_GSI_ROUTING or KVM_IRQFD,
 * and nothing here allocates after pci_msix_init. No lock of its own:
 * the owning device serialises every call. */
#ifndef KVMINI_PCI_MSIX_H
#define KVMINI_PCI_MSIX_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "kvmini/err.h"
#include "kvmini/log.h"
#include "kvmini/pci_config.h"

/* The PBA is one 64-bit word. */
#define PCI_MSIX_MAX_VECTORS 64

/* How messages reach the CPUs (KVM's GSI routing and irqfds; unit tests
 * and fuzzers pass fakes). route: *@gsi < 0 allocates a route, >= 0
 * updates it; afterwards writing 1 to @fd raises MSI (@addr, @data).
 * unroute frees it. Either may be NULL: vectors then stay pending. */
struct pci_msix_routes {
	void *ctx;
	int (*route)(void *ctx, int *gsi, uint64_t addr, uint32_t data, int fd);
	void (*unroute)(void *ctx, int gsi, int fd);
};

struct pci_msix_vector {
	int fd;                 /* irqfd: writing 1 raises the routed message */
	int gsi;                /* the route held, -1: none */
	uint64_t addr;          /* what the route sends */
	uint32_t data;
};

struct pci_msix {
	unsigned nr;            /* vectors */
	unsigned cap;           /* the capability's offset in config space */
	bool enabled, masked;   /* message control: MSI-X enable, function mask */
	uint8_t table[PCI_MSIX_MAX_VECTORS * PCI_MSIX_ENTRY_SIZE];
	uint64_t pba;
	struct pci_msix_vector vec[PCI_MSIX_MAX_VECTORS];
	struct pci_msix_routes routes;
	const char *name;       /* for log lines */
	struct log_ratelimit rl;
};

/* @nr vectors (1..PCI_MSIX_MAX_VECTORS), each with its irqfd, all
 * masked, MSI-X disabled. @name must outlive @m. */
int pci_msix_init(struct pci_msix *m, unsigned nr, const struct pci_msix_routes *routes,
		  const char *name, struct kv_err *e) KV_MUST_CHECK;
/* Frees the routes and closes the irqfds (also after a failed init). */
void pci_msix_fini(struct pci_msix *m);

/* Adds the capability to @pc: table at @table_off and PBA at @pba_off
 * in BAR0 (both 8-byte aligned); enable and function mask writable. */
void pci_msix_add_cap(struct pci_msix *m, struct pci_config *pc, uint32_t table_off,
		      uint32_t pba_off);
/* After the driver wrote @len bytes at @reg of @pc: takes over a change
 * of the enable or function-mask bit (routing the vectors that can now
 * fire, delivering what was pending). True when MSI-X was enabled or
 * disabled. */
bool pci_msix_config_written(struct pci_msix *m, const struct pci_config *pc, unsigned reg,
			     unsigned len);

/* Bytes of the table and the PBA in BAR0. */
static inline unsigned pci_msix_table_len(const struct pci_msix *m)
{
	return m->nr * PCI_MSIX_ENTRY_SIZE;
}
#define PCI_MSIX_PBA_LEN 8

/* A driver's access at @off inside the table / the PBA (bytes outside
 * read as zeros). A write crossing two entries is ignored; the PBA is
 * read-only. */
void pci_msix_table_read(const struct pci_msix *m, unsigned off, void *data, unsigned len);
void pci_msix_table_write(struct pci_msix *m, unsigned off, const void *data, unsigned len);
void pci_msix_pba_read(const struct pci_msix *m, unsigned off, void *data, unsigned len);

static inline bool pci_msix_enabled(const struct pci_msix *m)
{
	return m->enabled;
}

/* Raises vector @v (>= nr: none, nothing happens): sent at once when it
 * can fire and its route matches its table entry, else pending until a
 * register write lets it fire. Any thread; never routes, never
 * allocates. */
void pci_msix_notify(struct pci_msix *m, unsigned v);

/* One line on @f: enable and function mask, the pending bits, the
 * masked vectors, the vectors whose route is not their table entry. */
void pci_msix_dump(const struct pci_msix *m, FILE *f);

#endif
