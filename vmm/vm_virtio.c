/* The VM's virtio devices: console, disks, NICs (in that order, which is
 * also the order virtio-mmio devices take their windows in, as the
 * command line and the DSDT were told by vmm/main.c), each on its
 * transport, all served by one event-loop thread. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kvmini/config_devices.h"
#include "kvmini/event_loop.h"
#include "kvmini/irq_routing.h"
#include "kvmini/layout.h"
#include "kvmini/log.h"
#include "kvmini/seccomp.h"
#include "kvmini/virtio_blk.h"
#include "kvmini/virtio_console.h"
#include "kvmini/virtio_mmio.h"
#include "kvmini/virtio_net.h"
#include "kvmini/virtio_pci.h"
#include "kvmini/vm.h"
#include "vm_virtio.h"

struct vm_virtio_dev {
	struct virtio_dev dev;
	bool dev_made;              /* dev filled by a *_create: fini it */
	enum virtio_transport transport;
	struct virtio_pci *pci;
	struct virtio_mmio *mmio;
};

static const unsigned mmio_gsis[LAYOUT_VIRTIO_MMIO_MAX] = LAYOUT_VIRTIO_MMIO_GSIS;

static int attach(struct vm *vm, struct vm_virtio_dev *v, enum virtio_transport t,
		  unsigned *mmio_next, struct kv_err *e)
{
	v->transport = t;
	if (t == VIRTIO_TRANSPORT_PCI)
		return virtio_pci_create(vm->pci, &vm->virtio_host, &v->dev, &v->pci, e);
	/* config_check_devices bounded the count. */
	unsigned i = (*mmio_next)++;
	return virtio_mmio_create(&vm->virtio_host, LAYOUT_VIRTIO_MMIO(i), mmio_gsis[i], &v->dev,
				  &v->mmio, e);
}

static unsigned count_devices(const struct config_devices *d)
{
	return d ? d->nr_disks + d->nr_nets + (d->console == CONSOLE_VIRTIO) : 0;
}

int vm_virtio_init(struct vm *vm, struct kv_err *e)
{
	const struct config_devices *d = vm->cfg.devices;
	unsigned n = count_devices(d), mmio_next = 0;
	struct vm_virtio_dev *v;
	int r;

	if (!n)
		return 0;
	if (!vm->pci)
		return kv_err_set(e, -EINVAL, "virtio devices need the PC devices (PCI root)");
	r = evloop_create(&vm->loop, e);
	if (r)
		return r;
	r = irq_routing_create(vm->vm_fd, &vm->routing, e);
	if (r)
		return r;
	vm->virtio_host = (struct virtio_host){
		.mem = &vm->mem, .pio = &vm->pio, .mmio = &vm->mmio, .irq = &vm->irq,
		.loop = vm->loop, .ctx = vm->routing,
		.ioeventfd = irq_routing_ioeventfd,
		.msi_route = irq_routing_msi_route,
		.msi_unroute = irq_routing_msi_unroute,
	};
	vm->virtio = calloc(n, sizeof(*vm->virtio));
	if (!vm->virtio)
		return kv_err_set(e, -ENOMEM, "out of memory");

	if (d->console == CONSOLE_VIRTIO) {
		struct virtio_console_cfg ccfg = { .out_fd = vm->cfg.console_out_fd };

		v = &vm->virtio[vm->nr_virtio++];
		r = virtio_console_create(&ccfg, &vm->mem, vm->loop, &v->dev, e);
		if (r)
			return kv_err_prefix(e, "--console virtio");
		v->dev_made = true;
		vm->console_dev = &v->dev;
		r = attach(vm, v, d->console_transport, &mmio_next, e);
		if (r)
			return r;
	}
	for (unsigned i = 0; i < d->nr_disks; i++) {
		v = &vm->virtio[vm->nr_virtio++];
		r = virtio_blk_create(&d->disks[i].blk, &vm->mem, vm->loop, &v->dev, e);
		if (r)
			return kv_err_prefix(e, "--disk %s", d->disks[i].blk.path);
		v->dev_made = true;
		r = attach(vm, v, d->disks[i].transport, &mmio_next, e);
		if (r)
			return r;
	}
	for (unsigned i = 0; i < d->nr_nets; i++) {
		v = &vm->virtio[vm->nr_virtio++];
		r = virtio_net_create(&d->nets[i].net, &vm->mem, vm->loop, &v->dev, e);
		if (r)
			return kv_err_prefix(e, "--net tap=%s", d->nets[i].net.tap);
		v->dev_made = true;
		r = attach(vm, v, d->nets[i].transport, &mmio_next, e);
		if (r)
			return r;
	}
	return 0;
}

int vm_virtio_start(struct vm *vm, struct kv_err *e)
{
	struct thread_policy policy = seccomp_policy(SECCOMP_IO);

	return vm->loop ? evloop_start(vm->loop, &policy, e) : 0;
}

void vm_virtio_fini(struct vm *vm)
{
	/* No device callback may run while devices go away. */
	if (vm->loop)
		evloop_stop(vm->loop);
	for (unsigned i = vm->nr_virtio; i-- > 0;) {
		struct vm_virtio_dev *v = &vm->virtio[i];

		if (v->pci)
			virtio_pci_destroy(v->pci);
		if (v->mmio)
			virtio_mmio_destroy(v->mmio);
		if (v->dev_made)
			virtio_dev_fini(&v->dev);
	}
	free(vm->virtio);
	vm->virtio = NULL;
	vm->nr_virtio = 0;
	vm->console_dev = NULL;
	if (vm->routing)
		irq_routing_destroy(vm->routing);
	vm->routing = NULL;
	if (vm->loop)
		evloop_destroy(vm->loop);
	vm->loop = NULL;
}
