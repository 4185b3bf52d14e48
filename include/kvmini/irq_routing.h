/* KVM interrupt plumbing for virtio transports: the GSI routing table
 * (KVM's default irqchip routes plus MSI routes), irqfds and ioeventfds.
 * The ioeventfd/msi_route/msi_unroute functions have the shape of struct
 * virtio_host's hooks: pass the irq_routing as its ctx. Thread-safe. */
#ifndef KVMINI_IRQ_ROUTING_H
#define KVMINI_IRQ_ROUTING_H

#include <stdbool.h>
#include <stdint.h>
#include "kvmini/err.h"

/* MSI routes get GSIs from here up (below: IOAPIC pins 0-23). */
#define IRQ_ROUTING_MSI_GSI_BASE 24
/* How many MSI routes at once (the VM's MSI-X vectors, all devices). */
#define IRQ_ROUTING_MAX_MSI 256

struct irq_routing;

/* Builds the table KVM installs by default with KVM_CREATE_IRQCHIP
 * (IOAPIC pins 0-23 at GSI 0-23, PIC pins at GSI 0-15): every
 * KVM_SET_GSI_ROUTING replaces the table wholesale, so those routes must
 * stay in it. @vm_fd stays owned by the caller. */
int irq_routing_create(int vm_fd, struct irq_routing **out, struct kv_err *e) KV_MUST_CHECK;
/* Deassigns the irqfds still bound and frees the table. */
void irq_routing_destroy(struct irq_routing *r);

/* KVM_IRQFD: writing to @fd raises @gsi (deassign: @assign false). */
int irq_routing_irqfd(struct irq_routing *r, unsigned gsi, int fd, bool assign) KV_MUST_CHECK;

/* virtio_host.msi_route: *@gsi < 0 allocates a GSI, routes MSI
 * (@addr, @data) to it and binds @fd; *@gsi >= 0 updates that route (and
 * rebinds when @fd changed). 0 or -errno (-ENOSPC: no GSI left). */
int irq_routing_msi_route(void *ctx, int *gsi, uint64_t addr, uint32_t data, int fd);
/* virtio_host.msi_unroute: unbinds @fd and frees @gsi's route. */
void irq_routing_msi_unroute(void *ctx, int gsi, int fd);

/* virtio_host.ioeventfd: KVM_IOEVENTFD on MMIO @addr, @len bytes (0: any
 * length, needs KVM_CAP_IOEVENTFD_ANY_LENGTH); @datamatch >= 0: only
 * writes of that value (KVM_IOEVENTFD_FLAG_DATAMATCH), -1: any value. */
int irq_routing_ioeventfd(void *ctx, uint64_t addr, unsigned len, int64_t datamatch, int fd,
			  bool assign);

#endif
