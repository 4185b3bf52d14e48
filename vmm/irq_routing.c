/* GSI routing, irqfd and ioeventfd (see irq_routing.h). KVM_SET_GSI_ROUTING
 * takes the whole table each time, so the table lives here: the default
 * irqchip entries first, then one entry per MSI route in use. */
#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kvmini/irq_routing.h"
#include "kvmini/log.h"

#define NR_IOAPIC_PINS 24
#define NR_PIC_PINS    16
#define NR_DEFAULT     (NR_IOAPIC_PINS + NR_PIC_PINS)
#define MAX_ENTRIES    (NR_DEFAULT + IRQ_ROUTING_MAX_MSI)

struct msi_slot {
	bool used;
	uint64_t addr;
	uint32_t data;
	int fd;            /* bound irqfd, -1 none */
};

struct irq_routing {
	int vm_fd;
	pthread_mutex_t lock;
	struct msi_slot msi[IRQ_ROUTING_MAX_MSI]; /* [i] is GSI base + i */
	struct kvm_irq_routing *table;            /* scratch for commits */
};

static struct kvm_irq_routing_entry irqchip_entry(unsigned gsi, unsigned chip, unsigned pin)
{
	struct kvm_irq_routing_entry en;

	memset(&en, 0, sizeof(en));
	en.gsi = gsi;
	en.type = KVM_IRQ_ROUTING_IRQCHIP;
	en.u.irqchip.irqchip = chip;
	en.u.irqchip.pin = pin;
	return en;
}

/* Rebuilds the table from the default routes and the MSI slots and hands
 * it to KVM. Lock held. */
static int commit(struct irq_routing *r)
{
	struct kvm_irq_routing_entry *en = r->table->entries;
	unsigned n = 0;

	/* What kvm_setup_default_irq_routing installs (irq_comm.c). */
	for (unsigned i = 0; i < NR_IOAPIC_PINS; i++) {
		en[n++] = irqchip_entry(i, KVM_IRQCHIP_IOAPIC, i);
		if (i < NR_PIC_PINS)
			en[n++] = irqchip_entry(i, i < 8 ? KVM_IRQCHIP_PIC_MASTER
							 : KVM_IRQCHIP_PIC_SLAVE, i % 8);
	}
	for (unsigned i = 0; i < IRQ_ROUTING_MAX_MSI; i++) {
		if (!r->msi[i].used)
			continue;
		memset(&en[n], 0, sizeof(en[n]));
		en[n].gsi = IRQ_ROUTING_MSI_GSI_BASE + i;
		en[n].type = KVM_IRQ_ROUTING_MSI;
		en[n].u.msi.address_lo = (uint32_t)r->msi[i].addr;
		en[n].u.msi.address_hi = (uint32_t)(r->msi[i].addr >> 32);
		en[n].u.msi.data = r->msi[i].data;
		n++;
	}
	r->table->nr = n;
	r->table->flags = 0;
	return ioctl(r->vm_fd, KVM_SET_GSI_ROUTING, r->table) < 0 ? -errno : 0;
}

int irq_routing_create(int vm_fd, struct irq_routing **out, struct kv_err *e)
{
	struct irq_routing *r;
	int ret;

	r = calloc(1, sizeof(*r));
	if (!r)
		return kv_err_set(e, -ENOMEM, "irq routing: out of memory");
	r->table = calloc(1, sizeof(*r->table) + MAX_ENTRIES * sizeof(r->table->entries[0]));
	if (!r->table) {
		free(r);
		return kv_err_set(e, -ENOMEM, "irq routing: out of memory");
	}
	ret = pthread_mutex_init(&r->lock, NULL);
	if (ret) {
		free(r->table);
		free(r);
		return kv_err_set(e, -ret, "irq routing: mutex: %s", strerror(ret));
	}
	r->vm_fd = vm_fd;
	for (unsigned i = 0; i < IRQ_ROUTING_MAX_MSI; i++)
		r->msi[i].fd = -1;
	*out = r;
	return 0;
}

static int irqfd(int vm_fd, unsigned gsi, int fd, bool assign)
{
	struct kvm_irqfd req;

	memset(&req, 0, sizeof(req));
	req.fd = (uint32_t)fd;
	req.gsi = gsi;
	req.flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN;
	return ioctl(vm_fd, KVM_IRQFD, &req) < 0 ? -errno : 0;
}

void irq_routing_destroy(struct irq_routing *r)
{
	if (!r)
		return;
	for (unsigned i = 0; i < IRQ_ROUTING_MAX_MSI; i++)
		if (r->msi[i].used && r->msi[i].fd >= 0 &&
		    irqfd(r->vm_fd, IRQ_ROUTING_MSI_GSI_BASE + i, r->msi[i].fd, false))
			LOG_DEBUG("irq routing: irqfd deassign of GSI %u failed", IRQ_ROUTING_MSI_GSI_BASE + i);
	pthread_mutex_destroy(&r->lock);
	free(r->table);
	free(r);
}

int irq_routing_irqfd(struct irq_routing *r, unsigned gsi, int fd, bool assign)
{
	return irqfd(r->vm_fd, gsi, fd, assign);
}

static struct msi_slot *slot_of(struct irq_routing *r, int gsi)
{
	if (gsi < IRQ_ROUTING_MSI_GSI_BASE || gsi >= IRQ_ROUTING_MSI_GSI_BASE + IRQ_ROUTING_MAX_MSI)
		return NULL;
	return &r->msi[gsi - IRQ_ROUTING_MSI_GSI_BASE];
}

int irq_routing_msi_route(void *ctx, int *gsi, uint64_t addr, uint32_t data, int fd)
{
	struct irq_routing *r = ctx;
	struct msi_slot *s, old;
	int ret;

	pthread_mutex_lock(&r->lock);
	if (*gsi < 0) {
		s = NULL;
		for (unsigned i = 0; i < IRQ_ROUTING_MAX_MSI && !s; i++)
			if (!r->msi[i].used)
				s = &r->msi[i];
		if (!s) {
			pthread_mutex_unlock(&r->lock);
			return -ENOSPC;
		}
		*s = (struct msi_slot){ .used = true, .addr = addr, .data = data, .fd = -1 };
		ret = commit(r);
		if (!ret)
			ret = irqfd(r->vm_fd, IRQ_ROUTING_MSI_GSI_BASE + (unsigned)(s - r->msi), fd, true);
		if (ret) {
			s->used = false;
			if (commit(r))
				LOG_WARN("irq routing: cannot restore the routing table");
		} else {
			s->fd = fd;
			*gsi = IRQ_ROUTING_MSI_GSI_BASE + (int)(s - r->msi);
		}
		pthread_mutex_unlock(&r->lock);
		return ret;
	}
	s = slot_of(r, *gsi);
	if (!s || !s->used) {
		pthread_mutex_unlock(&r->lock);
		return -EINVAL;
	}
	old = *s;
	s->addr = addr;
	s->data = data;
	ret = commit(r);
	if (ret) {
		*s = old;
	} else if (fd != s->fd) {
		/* KVM re-reads the routes of bound irqfds on every commit, so
		 * only a new fd needs binding. */
		if (s->fd >= 0 && irqfd(r->vm_fd, (unsigned)*gsi, s->fd, false))
			LOG_DEBUG("irq routing: irqfd deassign of GSI %d failed", *gsi);
		s->fd = -1;
		ret = irqfd(r->vm_fd, (unsigned)*gsi, fd, true);
		if (!ret)
			s->fd = fd;
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

void irq_routing_msi_unroute(void *ctx, int gsi, int fd)
{
	struct irq_routing *r = ctx;
	struct msi_slot *s;

	pthread_mutex_lock(&r->lock);
	s = slot_of(r, gsi);
	if (s && s->used) {
		if (s->fd >= 0 && irqfd(r->vm_fd, (unsigned)gsi, s->fd, false))
			LOG_DEBUG("irq routing: irqfd deassign of GSI %d failed", gsi);
		(void)fd; /* the bound fd is the one we recorded */
		*s = (struct msi_slot){ .fd = -1 };
		if (commit(r))
			LOG_WARN("irq routing: KVM_SET_GSI_ROUTING failed freeing GSI %d", gsi);
	}
	pthread_mutex_unlock(&r->lock);
}

int irq_routing_ioeventfd(void *ctx, uint64_t addr, unsigned len, int64_t datamatch, int fd,
			  bool assign)
{
	struct irq_routing *r = ctx;
	struct kvm_ioeventfd req;

	memset(&req, 0, sizeof(req));
	req.addr = addr;
	req.len = len;
	req.fd = fd;
	req.flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN;
	if (datamatch >= 0) {
		req.datamatch = (uint64_t)datamatch;
		req.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
	}
	/* No lock needed: KVM serialises ioeventfd changes itself. */
	return ioctl(r->vm_fd, KVM_IOEVENTFD, &req) < 0 ? -errno : 0;
}
