/* virtio-pci, modern only (virtio 1.x §4.1): one function on bus 0 whose
 * generic PCI side (config space, BAR0, MSI-X) is pci_config and
 * pci_msix, with the virtio capabilities, interrupts and queue kicks
 * here, the common configuration in pci_common.c and BAR0's regions in
 * pci_bar.c (state and locking: pci_transport.h).
 *
 * Kicks never run device code on a vCPU thread: each queue has an eventfd
 * the event loop watches. While memory decoding is on, KVM signals it
 * itself (an ioeventfd on the queue's notify address); while it is off
 * the ioeventfds are deassigned, so no kick reaches the device, and BAR0
 * ignores writes (pci_bar.c). A notify write KVM did not take reaches
 * pci_bar.c, which signals the same eventfd.
 *
 * Interrupts: MSI-X when the driver enables it (pci_msix: the I/O thread
 * only signals irqfds, never changes a route), else the ISR and INTx pin
 * A through host.irq (KVM_IRQ_LINE). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <linux/virtio_pci.h>

#include "kvmini/event_loop.h"
#include "kvmini/layout.h"
#include "kvmini/pci_root.h"
#include "kvmini/virtio_pci.h"
#include "pci_transport.h"

#define VIRTIO_PCI_VENDOR      0x1af4
#define VIRTIO_PCI_DEVICE_BASE 0x1040

/* ---- interrupts ---- */

void vp_intx_update(struct virtio_pci *vp)
{
	bool level = vp->isr && !(pci_config_command(&vp->pc) & PCI_COMMAND_INTX_DISABLE);

	if (level == vp->intx_level)
		return;
	vp->intx_level = level;
	pci_config_set_intx_status(&vp->pc, level);
	if (irq_set(vp->host.irq, LAYOUT_PCI_GSI(vp->slot), level))
		LOG_GUEST(&vp->rl, "%s: cannot set INTx level %d", vp->dev->name, level);
}

/* Interrupts the driver through MSI-X vector @vector (MSI-X on) or ISR
 * bit @isr_bit and INTx (MSI-X off). Any thread, lock held. */
static void interrupt(struct virtio_pci *vp, uint16_t vector, uint8_t isr_bit)
{
	if (pci_msix_enabled(&vp->msix)) {
		pci_msix_notify(&vp->msix, vector);
		return;
	}
	vp->isr |= isr_bit;
	vp_intx_update(vp);
}

static void vp_notify_queue(void *transport, unsigned q)
{
	struct virtio_pci *vp = transport;

	if (q < vp->dev->nr_queues)
		interrupt(vp, vp->dev->vqs[q].msix_vector, VP_ISR_QUEUE);
}

static void vp_notify_config(void *transport)
{
	struct virtio_pci *vp = transport;

	interrupt(vp, vp->msix_config, VP_ISR_CONFIG);
}

static void vp_requeue(void *transport, unsigned q)
{
	struct virtio_pci *vp = transport;

	/* The counter is at its maximum only if a kick is pending anyway. */
	if (q < vp->dev->nr_queues && vp->queues[q].fd >= 0 && eventfd_write(vp->queues[q].fd, 1))
		LOG_DEBUG("%s: queue %u requeue: %s", vp->dev->name, q, strerror(errno));
}

static void vp_dump(void *transport, FILE *f)
{
	struct virtio_pci *vp = transport;

	pci_msix_dump(&vp->msix, f);
	fprintf(f, "kvmini: %s: queue MSI-X vectors:", vp->dev->name);
	for (unsigned q = 0; q < vp->dev->nr_queues; q++)
		fprintf(f, " %u", vp->dev->vqs[q].msix_vector);
	fprintf(f, " (%u: none)\r\n", VIRTIO_MSI_NO_VECTOR);
	if (!pci_msix_enabled(&vp->msix))
		fprintf(f, "kvmini: %s: ISR %#x, INTx %s\r\n", vp->dev->name, vp->isr,
			vp->intx_level ? "high" : "low");
}

static const struct virtio_transport_ops vp_tops = {
	.notify_queue = vp_notify_queue,
	.notify_config = vp_notify_config,
	.requeue = vp_requeue,
	.dump = vp_dump,
};

/* ---- kicks ---- */

/* Event-loop thread: queue @k->q was kicked. */
static void kick_ready(void *opaque, uint32_t events)
{
	struct vp_queue *k = opaque;
	struct virtio_dev *d = k->vp->dev;
	eventfd_t n;

	pthread_mutex_lock(&d->lock);
	if (eventfd_read(k->fd, &n) == 0 && virtio_dev_live(d) && d->vqs[k->q].enabled)
		d->ops->queue_notify(d, k->q);
	pthread_mutex_unlock(&d->lock);
}

static int ioevent(struct virtio_pci *vp, struct vp_queue *k, unsigned len, bool assign)
{
	uint64_t addr = vp->bar_addr + VP_BAR_NOTIFY + VP_NOTIFY_MULT * k->q;

	return vp->host.ioeventfd(vp->host.ctx, addr, len, -1, k->fd, assign);
}

/* KVM takes queue @k's notify writes itself exactly while memory decoding
 * is @on. Register writes (vCPU threads) and teardown only. */
static void kick_follow_decoding(struct virtio_pci *vp, struct vp_queue *k, bool on)
{
	if (!vp->host.ioeventfd || k->ioevent_on == on)
		return;
	if (!on) {
		if (ioevent(vp, k, (unsigned)k->ioevent_len, false))
			LOG_GUEST(&vp->rl, "%s: queue %u: cannot deassign the ioeventfd",
				  vp->dev->name, k->q);
		else
			k->ioevent_on = false;
		return;
	}
	if (k->ioevent_len >= 0) {
		k->ioevent_on = !ioevent(vp, k, (unsigned)k->ioevent_len, true);
		return;
	}
	/* Length 0 matches any write size (and takes KVM's fast MMIO path);
	 * Linux writes the queue index with iowrite16. Without either, the
	 * notify handler signals the same eventfd. */
	for (unsigned len = 0; len <= 2 && !k->ioevent_on; len += 2) {
		if (!ioevent(vp, k, len, true)) {
			k->ioevent_len = (int)len;
			k->ioevent_on = true;
		}
	}
}

/* One eventfd per queue: the notify handler or KVM signals it. */
static int open_kicks(struct virtio_pci *vp, struct kv_err *e)
{
	for (unsigned q = 0; q < vp->dev->nr_queues; q++) {
		vp->queues[q].fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (vp->queues[q].fd < 0)
			return kv_err_set(e, -errno, "%s: eventfd: %s", vp->dev->name,
					  strerror(errno));
	}
	return 0;
}

static int watch_kicks(struct virtio_pci *vp, struct kv_err *e)
{
	for (unsigned q = 0; q < vp->dev->nr_queues && vp->host.loop; q++) {
		struct vp_queue *k = &vp->queues[q];
		int r = evloop_add(vp->host.loop, k->fd, EPOLLIN, kick_ready, k);

		if (r)
			return kv_err_set(e, r, "%s: watching queue %u kicks: %s", vp->dev->name, q,
					  strerror(-r));
		k->watched = true;
	}
	return 0;
}

/* ---- configuration space ---- */

static uint32_t class_of(uint16_t device_id)
{
	switch (device_id) {
	case VIRTIO_ID_NET:     return 0x020000; /* Ethernet controller */
	case VIRTIO_ID_BLOCK:   return 0x010000; /* SCSI storage controller, as QEMU */
	case VIRTIO_ID_CONSOLE: return 0x078000; /* other communication controller */
	case VIRTIO_ID_FS:      return 0x018000; /* other mass storage, as QEMU */
	default:                return 0xff0000;
	}
}

/* A struct virtio_pci_cap of @cap_len bytes pointing into BAR0. */
static unsigned virtio_cap(struct pci_config *pc, uint8_t type, unsigned cap_len, uint32_t off,
			   uint32_t len)
{
	unsigned at = pci_config_add_cap(pc, PCI_CAP_ID_VNDR, cap_len);
	uint8_t *c = pc->regs + at;

	c[2] = (uint8_t)cap_len;
	c[3] = type;
	c[4] = 0; /* BAR0 */
	le32_store(c + 8, off);
	le32_store(c + 12, len);
	return at;
}

static void config_init(struct virtio_pci *vp)
{
	struct virtio_dev *d = vp->dev;
	struct pci_config *pc = &vp->pc;
	const struct pci_config_id id = {
		.vendor = VIRTIO_PCI_VENDOR, .device = VIRTIO_PCI_DEVICE_BASE + d->device_id,
		.subsys_vendor = VIRTIO_PCI_VENDOR, .subsys = d->device_id,
		.revision = 1, /* a modern (virtio 1.x) device */
		.class_code = class_of(d->device_id), .irq_line = LAYOUT_PCI_GSI(vp->slot),
	};
	uint32_t dev_len = d->config_len < VP_DEVICE_MAX ? d->config_len : VP_DEVICE_MAX;
	unsigned at;

	pci_config_init(pc, &id, d->name);
	pci_config_set_bar0(pc, vp->bar_addr, LAYOUT_PCI_BAR_SIZE);
	virtio_cap(pc, VIRTIO_PCI_CAP_COMMON_CFG, 16, VP_BAR_COMMON, VP_COMMON_LEN);
	at = virtio_cap(pc, VIRTIO_PCI_CAP_NOTIFY_CFG, 20, VP_BAR_NOTIFY,
			VP_NOTIFY_MULT * d->nr_queues);
	le32_store(pc->regs + at + 16, VP_NOTIFY_MULT); /* notify_off_multiplier */
	virtio_cap(pc, VIRTIO_PCI_CAP_ISR_CFG, 16, VP_BAR_ISR, 1);
	if (dev_len) /* Linux maps the device region only when it has a length */
		virtio_cap(pc, VIRTIO_PCI_CAP_DEVICE_CFG, 16, VP_BAR_DEVICE, dev_len);
	/* The pci_cfg window: the driver writes its bar, offset, length and
	 * data (§4.1.4.9). */
	at = vp->pci_cfg_cap = virtio_cap(pc, VIRTIO_PCI_CAP_PCI_CFG, 20, 0, 0);
	pci_config_writable(pc, at + 4, 1, 0xff);
	for (unsigned i = 8; i < 20; i += 4)
		pci_config_writable(pc, at + i, 4, 0xffffffffu);
	pci_msix_add_cap(&vp->msix, pc, VP_BAR_MSIX_TABLE, VP_BAR_MSIX_PBA);
}

/* Accessing pci_cfg_data reaches BAR0 at the cap's offset with the cap's
 * length; the data bytes live in config space. */
static void pci_cfg_window(struct virtio_pci *vp, bool is_write)
{
	uint8_t *cap = vp->pc.regs + vp->pci_cfg_cap;
	uint32_t off = le32_load(cap + 8), len = le32_load(cap + 12);

	if (len == 0)
		return; /* never set up: lspci -xxx dumping config space reads it */
	if (cap[4] != 0 || (len != 1 && len != 2 && len != 4) || off % len ||
	    off > LAYOUT_PCI_BAR_SIZE - len) {
		LOG_GUEST(&vp->rl, "%s: bad pci_cfg window bar %u off 0x%x len %u",
			  vp->dev->name, cap[4], off, len);
		return;
	}
	if (is_write)
		vp_bar_write(vp, off, cap + 16, len);
	else
		vp_bar_read(vp, off, cap + 16, len);
}

static bool touches_window(const struct virtio_pci *vp, unsigned reg, unsigned len)
{
	return pci_config_touches(reg, len, vp->pci_cfg_cap + 16, 4);
}

/* The command register changed: INTx disable, memory decoding. */
static void command_written(struct virtio_pci *vp, uint16_t old)
{
	uint16_t cmd = pci_config_command(&vp->pc);

	if ((old ^ cmd) & PCI_COMMAND_INTX_DISABLE)
		vp_intx_update(vp);
	if ((old ^ cmd) & PCI_COMMAND_MEMORY)
		for (unsigned q = 0; q < vp->dev->nr_queues; q++)
			kick_follow_decoding(vp, &vp->queues[q], cmd & PCI_COMMAND_MEMORY);
}

static void cfg_read(void *opaque, unsigned reg, void *data, unsigned len)
{
	struct virtio_pci *vp = opaque;

	pthread_mutex_lock(&vp->dev->lock);
	if (touches_window(vp, reg, len))
		pci_cfg_window(vp, false);
	pci_config_read(&vp->pc, reg, data, len);
	pthread_mutex_unlock(&vp->dev->lock);
}

/* One write, by register kind: the generic registers (writable bits,
 * BAR0), virtio's pci_cfg window, MSI-X's message control, the command
 * register. */
static void cfg_write(void *opaque, unsigned reg, const void *data, unsigned len)
{
	struct virtio_pci *vp = opaque;
	uint16_t old_cmd;

	pthread_mutex_lock(&vp->dev->lock);
	old_cmd = pci_config_command(&vp->pc);
	pci_config_write(&vp->pc, reg, data, len);
	if (touches_window(vp, reg, len))
		pci_cfg_window(vp, true);
	if (pci_msix_config_written(&vp->msix, &vp->pc, reg, len) &&
	    pci_msix_enabled(&vp->msix) && vp->isr) {
		/* Switched to MSI-X: the INTx state no longer applies. */
		vp->isr = 0;
		vp_intx_update(vp);
	}
	command_written(vp, old_cmd);
	pthread_mutex_unlock(&vp->dev->lock);
}

static const struct pci_dev_ops vp_pci_ops = { .cfg_read = cfg_read, .cfg_write = cfg_write };

/* ---- create / destroy ---- */

/* Undoes whatever parts of setup happened (fds -1, flags false). */
static void teardown(struct virtio_pci *vp)
{
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++) {
		struct vp_queue *k = &vp->queues[q];

		if (k->watched)
			evloop_del(vp->host.loop, k->fd);
		k->watched = false;
		kick_follow_decoding(vp, k, false);
		if (k->fd >= 0)
			close(k->fd);
		k->fd = -1;
	}
	pci_msix_fini(&vp->msix);
}

static void detach(struct virtio_pci *vp)
{
	pthread_mutex_lock(&vp->dev->lock);
	if (vp->intx_level)
		(void)irq_set(vp->host.irq, LAYOUT_PCI_GSI(vp->slot), 0);
	vp->intx_level = false;
	vp->dev->tops = NULL;
	vp->dev->transport = NULL;
	pthread_mutex_unlock(&vp->dev->lock);
}

int virtio_pci_create(struct pci_root *pci, const struct virtio_host *host,
		      struct virtio_dev *dev, struct virtio_pci **out, struct kv_err *e)
{
	const struct pci_msix_routes routes = { host->ctx, host->msi_route, host->msi_unroute };
	struct virtio_pci *vp;
	int r;

	if (dev->nr_queues == 0 || dev->nr_queues > VIRTIO_MAX_QUEUES)
		return kv_err_set(e, -EINVAL, "%s: %u queues (virtio-pci takes 1 to %u)",
				  dev->name, dev->nr_queues, VIRTIO_MAX_QUEUES);
	vp = calloc(1, sizeof(*vp));
	if (!vp)
		return kv_err_set(e, -ENOMEM, "%s: out of memory", dev->name);
	vp->dev = dev;
	vp->host = *host;
	vp->root = pci;
	vp->msix_config = VIRTIO_MSI_NO_VECTOR;
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		vp->queues[q] = (struct vp_queue){ .vp = vp, .q = q, .fd = -1, .ioevent_len = -1 };
	/* One vector per queue and one for configuration changes. */
	r = pci_msix_init(&vp->msix, dev->nr_queues + 1, &routes, dev->name, e);
	if (!r)
		r = open_kicks(vp, e);
	if (!r)
		r = pci_root_add(pci, &vp_pci_ops, vp, &vp->slot, e);
	if (r)
		goto fail;
	vp->bar_addr = (uint32_t)LAYOUT_PCI_BAR(vp->slot);
	pthread_mutex_lock(&dev->lock);
	config_init(vp);
	for (unsigned q = 0; q < dev->nr_queues; q++)
		dev->vqs[q].msix_vector = VIRTIO_MSI_NO_VECTOR;
	dev->tops = &vp_tops;
	dev->transport = vp;
	pthread_mutex_unlock(&dev->lock);
	r = watch_kicks(vp, e);
	if (!r)
		r = bus_register(host->mmio, vp->bar_addr, LAYOUT_PCI_BAR_SIZE, &vp_bar_ops, vp,
				 dev->name, e);
	if (r)
		goto fail_unplug;
	LOG_DEBUG("%s: virtio-pci 00:%02x.0, BAR0 0x%x, INTx GSI %u", dev->name, vp->slot,
		  vp->bar_addr, LAYOUT_PCI_GSI(vp->slot));
	*out = vp;
	return 0;

fail_unplug:
	pci_root_remove(pci, vp->slot);
	detach(vp);
fail:
	teardown(vp);
	free(vp);
	return r;
}

void virtio_pci_destroy(struct virtio_pci *vp)
{
	if (!vp)
		return;
	/* The vCPUs have stopped (bus.h). BAR0 and config space go first,
	 * then kicks and vectors (evloop_del waits out a running callback),
	 * then the link to the device. */
	bus_unregister(vp->host.mmio, vp->bar_addr, vp);
	pci_root_remove(vp->root, vp->slot);
	teardown(vp);
	detach(vp);
	free(vp);
}
