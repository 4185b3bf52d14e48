/* MSI-X (see pci_msix.h). A vector fires when MSI-X is enabled, the
 * function is not masked and its own mask bit is clear; only then is its
 * route made to match its table entry, so a driver rewriting a masked
 * entry costs nothing and the routes follow what the driver can see.
 *
 * Routes change on register writes only (vCPU threads). pci_msix_notify,
 * which the device calls from any thread, never routes: a vector whose
 * route is missing or stale (the last route attempt failed) stays
 * pending, and the next write that lets it fire retries. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "kvmini/pci_msix.h"

#define ENTRY(m, v) ((m)->table + (v) * PCI_MSIX_ENTRY_SIZE)

int pci_msix_init(struct pci_msix *m, unsigned nr, const struct pci_msix_routes *routes,
		  const char *name, struct kv_err *e)
{
	memset(m, 0, sizeof(*m));
	m->name = name;
	m->nr = nr;
	if (routes)
		m->routes = *routes;
	for (unsigned v = 0; v < PCI_MSIX_MAX_VECTORS; v++)
		m->vec[v] = (struct pci_msix_vector){ .fd = -1, .gsi = -1 };
	if (nr == 0 || nr > PCI_MSIX_MAX_VECTORS)
		return kv_err_set(e, -EINVAL, "%s: %u MSI-X vectors (1 to %u)", name, nr,
				  PCI_MSIX_MAX_VECTORS);
	for (unsigned v = 0; v < nr; v++) {
		m->vec[v].fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (m->vec[v].fd < 0)
			return kv_err_set(e, -errno, "%s: MSI-X eventfd: %s", name, strerror(errno));
		ENTRY(m, v)[PCI_MSIX_ENTRY_VECTOR_CTRL] = PCI_MSIX_ENTRY_CTRL_MASKBIT;
	}
	return 0;
}

void pci_msix_fini(struct pci_msix *m)
{
	for (unsigned v = 0; v < PCI_MSIX_MAX_VECTORS; v++) {
		struct pci_msix_vector *vec = &m->vec[v];

		if (vec->gsi >= 0 && m->routes.unroute)
			m->routes.unroute(m->routes.ctx, vec->gsi, vec->fd);
		vec->gsi = -1;
		if (vec->fd >= 0)
			close(vec->fd);
		vec->fd = -1;
	}
}

void pci_msix_add_cap(struct pci_msix *m, struct pci_config *pc, uint32_t table_off,
		      uint32_t pba_off)
{
	unsigned at = pci_config_add_cap(pc, PCI_CAP_ID_MSIX, 12);

	m->cap = at;
	/* Table size - 1; the offsets' low 3 bits are the BAR index, 0. */
	le16_store(pc->regs + at + PCI_MSIX_FLAGS, (uint16_t)(m->nr - 1));
	le32_store(pc->regs + at + PCI_MSIX_TABLE, table_off);
	le32_store(pc->regs + at + PCI_MSIX_PBA, pba_off);
	pci_config_writable(pc, at + PCI_MSIX_FLAGS, 2,
			    PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
}

static bool can_fire(const struct pci_msix *m, unsigned v)
{
	return m->enabled && !m->masked &&
	       !(ENTRY(m, v)[PCI_MSIX_ENTRY_VECTOR_CTRL] & PCI_MSIX_ENTRY_CTRL_MASKBIT);
}

static uint64_t entry_addr(const struct pci_msix *m, unsigned v)
{
	return le64_load(ENTRY(m, v) + PCI_MSIX_ENTRY_LOWER_ADDR);
}

static uint32_t entry_data(const struct pci_msix *m, unsigned v)
{
	return le32_load(ENTRY(m, v) + PCI_MSIX_ENTRY_DATA);
}

/* The route sends what the table entry says. */
static bool route_current(const struct pci_msix *m, unsigned v)
{
	const struct pci_msix_vector *vec = &m->vec[v];

	return vec->gsi >= 0 && vec->addr == entry_addr(m, v) && vec->data == entry_data(m, v);
}

/* Sends a pending message if the vector can fire on a current route. */
static void deliver_pending(struct pci_msix *m, unsigned v)
{
	if (!(m->pba & (1ULL << v)) || !can_fire(m, v) || !route_current(m, v))
		return;
	m->pba &= ~(1ULL << v);
	if (eventfd_write(m->vec[v].fd, 1))
		LOG_GUEST(&m->rl, "%s: MSI-X vector %u: irqfd write failed", m->name, v);
}

/* Register writes only (vCPU threads): brings vector @v's route in line
 * with its table entry if it can fire, then delivers what is pending. */
static void vector_sync(struct pci_msix *m, unsigned v)
{
	struct pci_msix_vector *vec = &m->vec[v];

	if (!can_fire(m, v))
		return;
	if (!route_current(m, v) && m->routes.route) {
		int gsi = vec->gsi;
		uint64_t addr = entry_addr(m, v);
		uint32_t data = entry_data(m, v);
		int r = m->routes.route(m->routes.ctx, &gsi, addr, data, vec->fd);

		if (r) {
			LOG_GUEST(&m->rl, "%s: cannot route MSI-X vector %u: %s", m->name, v,
				  strerror(-r));
			return; /* stays pending; the next write that unmasks retries */
		}
		vec->gsi = gsi;
		vec->addr = addr;
		vec->data = data;
	}
	deliver_pending(m, v);
}

bool pci_msix_config_written(struct pci_msix *m, const struct pci_config *pc, unsigned reg,
			     unsigned len)
{
	uint16_t ctrl;
	bool was = m->enabled;

	if (!m->cap || !pci_config_touches(reg, len, m->cap + PCI_MSIX_FLAGS, 2))
		return false;
	ctrl = le16_load(pc->regs + m->cap + PCI_MSIX_FLAGS);
	m->enabled = ctrl & PCI_MSIX_FLAGS_ENABLE;
	m->masked = ctrl & PCI_MSIX_FLAGS_MASKALL;
	/* Enabled or function unmasked: every vector may fire now. */
	for (unsigned v = 0; v < m->nr; v++)
		vector_sync(m, v);
	return m->enabled != was;
}

/* Whole accesses inside one entry only. */
static bool one_entry(const struct pci_msix *m, unsigned off, unsigned len)
{
	return len && off + len <= pci_msix_table_len(m) &&
	       off / PCI_MSIX_ENTRY_SIZE == (off + len - 1) / PCI_MSIX_ENTRY_SIZE;
}

void pci_msix_table_read(const struct pci_msix *m, unsigned off, void *data, unsigned len)
{
	if (off + len <= pci_msix_table_len(m))
		memcpy(data, m->table + off, len);
	else
		memset(data, 0, len);
}

void pci_msix_table_write(struct pci_msix *m, unsigned off, const void *data, unsigned len)
{
	unsigned v = off / PCI_MSIX_ENTRY_SIZE;
	uint8_t *en = ENTRY(m, v);

	if (!one_entry(m, off, len))
		return;
	memcpy(m->table + off, data, len);
	/* Vector control: only the mask bit exists. */
	en[PCI_MSIX_ENTRY_VECTOR_CTRL] &= PCI_MSIX_ENTRY_CTRL_MASKBIT;
	memset(en + PCI_MSIX_ENTRY_VECTOR_CTRL + 1, 0, 3);
	vector_sync(m, v); /* new message while unmasked, or unmasked */
}

void pci_msix_pba_read(const struct pci_msix *m, unsigned off, void *data, unsigned len)
{
	uint8_t pba[PCI_MSIX_PBA_LEN];

	le64_store(pba, m->pba);
	if (off < sizeof(pba) && len <= sizeof(pba) - off)
		memcpy(data, pba + off, len);
	else
		memset(data, 0, len);
}

void pci_msix_dump(const struct pci_msix *m, FILE *f)
{
	uint64_t masked = 0, stale = 0;

	for (unsigned v = 0; v < m->nr; v++) {
		if (ENTRY(m, v)[PCI_MSIX_ENTRY_VECTOR_CTRL] & PCI_MSIX_ENTRY_CTRL_MASKBIT)
			masked |= 1ULL << v;
		if (!route_current(m, v))
			stale |= 1ULL << v;
	}
	fprintf(f, "kvmini: %s: MSI-X %s%s, pending %#llx, masked %#llx, not routed as the "
		"table says %#llx\r\n", m->name, m->enabled ? "on" : "off",
		m->masked ? " (function masked)" : "", (unsigned long long)m->pba,
		(unsigned long long)masked, (unsigned long long)stale);
}

void pci_msix_notify(struct pci_msix *m, unsigned v)
{
	if (v >= m->nr)
		return; /* NO_VECTOR: the driver asked for none */
	m->pba |= 1ULL << v;
	deliver_pending(m, v);
}
