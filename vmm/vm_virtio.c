/* The VM's virtio devices: console, disks, NICs, shares (in that order, which is
 * also the order virtio-mmio devices take their windows in, as the
 * command line and the DSDT were told by vmm/main.c), each on its
 * transport, all served by one event-loop thread. */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "kvmini/config_devices.h"
#include "kvmini/event_loop.h"
#include "kvmini/irq_routing.h"
#include "kvmini/layout.h"
#include "kvmini/log.h"
#include "kvmini/net_passt.h"
#include "kvmini/seccomp.h"
#include "kvmini/virtio_blk.h"
#include "kvmini/virtio_console.h"
#include "kvmini/virtio_fs.h"
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

static int attach(struct vm *vm, struct vm_virtio_dev *v, unsigned *mmio_next, struct kv_err *e)
{
	if (v->transport == VIRTIO_TRANSPORT_PCI)
		return virtio_pci_create(vm->pci, &vm->virtio_host, &v->dev, &v->pci, e);
	/* config_check_devices bounded the count. */
	unsigned i = (*mmio_next)++;
	return virtio_mmio_create(&vm->virtio_host, LAYOUT_VIRTIO_MMIO(i), mmio_gsis[i], &v->dev,
				  &v->mmio, e);
}

static unsigned count_devices(const struct config_devices *d)
{
	return d ? d->nr_disks + d->nr_nets + d->nr_shares + (d->console == CONSOLE_VIRTIO) : 0;
}

/* The virtio-fs workers' first step: their own filter (vmm/seccomp_rules_fs.c). */
static int fs_thread_enter(void *ctx, struct kv_err *e)
{
	(void)ctx;
	return seccomp_thread_start(SECCOMP_FS, e);
}

/* Creates every device in the order virtio-mmio slots are handed out
 * (console, disks, NICs, shares): files, taps and shared folders are
 * opened here, before KVM is touched, so a bad --disk, --net or --share
 * fails the same on any host. */
/* A NIC: its backend (a tap, or a passt kvmini starts), then the device,
 * which takes the backend over. */
static int vm_net_create(const struct vm_net *net, struct vm *vm, struct virtio_dev *dev,
			 struct kv_err *e)
{
	struct net_backend *be;
	int r;

	if (net->kind == NET_USER)
		r = net_passt_backend_start(&net->user, &be, e);
	else
		r = net_tap_backend_open(net->tap, &be, e);
	if (r == 0)
		r = virtio_net_create(&net->net, be, &vm->mem, vm->loop, dev, e);
	if (r)
		return net->kind == NET_USER ? kv_err_prefix(e, "--net user")
					     : kv_err_prefix(e, "--net tap=%s", net->tap);
	return 0;
}

int vm_virtio_open(struct vm *vm, struct kv_err *e)
{
	const struct config_devices *d = vm->cfg.devices;
	unsigned n = count_devices(d);
	struct vm_virtio_dev *v;
	int r;

	if (!n)
		return 0;
	r = evloop_create(&vm->loop, e);
	if (r)
		return r;
	vm->virtio = calloc(n, sizeof(*vm->virtio));
	if (!vm->virtio)
		return kv_err_set(e, -ENOMEM, "out of memory");

	if (d->console == CONSOLE_VIRTIO) {
		struct virtio_console_cfg ccfg = { .out_fd = vm->cfg.console_out_fd };

		v = &vm->virtio[vm->nr_virtio++];
		v->transport = d->console_transport;
		r = virtio_console_create(&ccfg, &vm->mem, vm->loop, &v->dev, e);
		if (r)
			return kv_err_prefix(e, "--console virtio");
		v->dev_made = true;
		vm->console_dev = &v->dev;
	}
	for (unsigned i = 0; i < d->nr_disks; i++) {
		v = &vm->virtio[vm->nr_virtio++];
		v->transport = d->disks[i].transport;
		r = virtio_blk_create(&d->disks[i].blk, &vm->mem, vm->loop, &v->dev, e);
		if (r)
			return kv_err_prefix(e, "--disk %s", d->disks[i].blk.path);
		v->dev_made = true;
	}
	for (unsigned i = 0; i < d->nr_nets; i++) {
		v = &vm->virtio[vm->nr_virtio++];
		v->transport = d->nets[i].transport;
		r = vm_net_create(&d->nets[i], vm, &v->dev, e);
		if (r)
			return r;
		v->dev_made = true;
	}
	for (unsigned i = 0; i < d->nr_shares; i++) {
		struct virtio_fs_cfg fcfg = d->shares[i].fs;

		fcfg.thread_enter = fs_thread_enter;
		v = &vm->virtio[vm->nr_virtio++];
		v->transport = d->shares[i].transport;
		r = virtio_fs_create(&fcfg, &vm->mem, vm->loop, &v->dev, e);
		if (r)
			return kv_err_prefix(e, "--share");
		v->dev_made = true;
	}
	return 0;
}

/* Plugs each device into its transport (the PCI root or a virtio-mmio
 * window), with KVM's ioeventfds and MSI routing. */
int vm_virtio_attach(struct vm *vm, struct kv_err *e)
{
	unsigned mmio_next = 0;
	int r;

	if (!vm->nr_virtio)
		return 0;
	if (!vm->pci)
		return kv_err_set(e, -EINVAL, "virtio devices need the PC devices (PCI root)");
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
	for (unsigned i = 0; i < vm->nr_virtio; i++) {
		r = attach(vm, &vm->virtio[i], &mmio_next, e);
		if (r)
			return r;
	}
	return 0;
}

/* With a tap NIC, the event loop's thread runs SCHED_BATCH (then, as
 * always, under its seccomp filter). A woken batch thread does not preempt
 * the thread running on its CPU. Where the loop shares a CPU with the vCPU
 * (a small CI runner, a nested L1), each packet from the tap and each kick
 * would otherwise switch from the guest to the loop and back: in the
 * guest, an interrupt per packet or two and a TCP ACK, with its own
 * transmit interrupt, per two packets received. The loop now runs when
 * the vCPU halts or its time slice ends, and takes in one pass what came
 * meanwhile (tools/bench-io.sh, one L1: per MiB downloaded 9.4 -> 2.9
 * ACKs and 28 -> 15 interrupts; 42.4 -> 52.0 MiB/s down, 21.3 -> 64.0
 * up). With a CPU to itself the loop runs at once, as before.
 *
 * Not with a --net user NIC: passt is a third process in that path, and
 * there the same change cut the guest's downloads (7.3 -> 2.8 MiB/s: the
 * guest halted between frames that waited for its slice to end). */
static int io_thread_enter_batch(const void *ctx, struct kv_err *e)
{
	struct thread_policy seccomp = seccomp_policy(SECCOMP_IO);
	struct sched_param none = { 0 };

	(void)ctx;
	if (sched_setscheduler(0, SCHED_BATCH, &none) < 0)
		LOG_WARN("event loop: cannot run it as SCHED_BATCH (%s): on a busy CPU the "
			 "NICs' packets take more switches", strerror(errno));
	return thread_policy_enter(&seccomp, e);
}

static bool io_thread_batches(const struct config_devices *d)
{
	bool tap = false;

	for (unsigned i = 0; d && i < d->nr_nets; i++) {
		if (d->nets[i].kind == NET_USER)
			return false;
		tap = true;
	}
	return tap;
}

int vm_virtio_start(struct vm *vm, struct kv_err *e)
{
	struct thread_policy policy = seccomp_policy(SECCOMP_IO);

	if (io_thread_batches(vm->cfg.devices))
		policy = (struct thread_policy){ io_thread_enter_batch, NULL };
	return vm->loop ? evloop_start(vm->loop, &policy, e) : 0;
}

/* Unplugs the transports (the loop is stopped first: no device callback
 * runs while they go away). Copes with a partial vm_virtio_attach. */
void vm_virtio_detach(struct vm *vm)
{
	if (vm->loop)
		evloop_stop(vm->loop);
	for (unsigned i = vm->nr_virtio; i-- > 0;) {
		struct vm_virtio_dev *v = &vm->virtio[i];

		if (v->pci)
			virtio_pci_destroy(v->pci);
		if (v->mmio)
			virtio_mmio_destroy(v->mmio);
		v->pci = NULL;
		v->mmio = NULL;
	}
	if (vm->routing)
		irq_routing_destroy(vm->routing);
	vm->routing = NULL;
}

/* Destroys the devices and the loop. Copes with a partial vm_virtio_open. */
void vm_virtio_close(struct vm *vm)
{
	if (vm->loop)
		evloop_stop(vm->loop);
	for (unsigned i = vm->nr_virtio; i-- > 0;)
		if (vm->virtio[i].dev_made)
			virtio_dev_fini(&vm->virtio[i].dev);
	free(vm->virtio);
	vm->virtio = NULL;
	vm->nr_virtio = 0;
	vm->console_dev = NULL;
	if (vm->loop)
		evloop_destroy(vm->loop);
	vm->loop = NULL;
}

unsigned vm_virtio_fs_counts(struct vm *vm, struct virtio_fs_counts *out, unsigned max)
{
	unsigned n = 0;

	for (unsigned i = 0; i < vm->nr_virtio && n < max; i++) {
		struct vm_virtio_dev *v = &vm->virtio[i];

		if (v->dev_made && v->dev.device_id == VIRTIO_ID_FS)
			virtio_fs_counts(&v->dev, &out[n++]);
	}
	return n;
}

void vm_virtio_dump(struct vm *vm, FILE *f)
{
	for (unsigned i = 0; i < vm->nr_virtio; i++)
		if (vm->virtio[i].dev_made)
			virtio_dev_dump(&vm->virtio[i].dev, f);
}
