/* virtio-pci, modern only (virtio 1.x §4.1): one function on bus 0 with
 * one 64 KiB 32-bit memory BAR at a fixed address holding every region:
 *
 *   0x0000 common configuration      0x3000 notify (4 bytes per queue)
 *   0x1000 ISR status                0x4000 MSI-X table (queues + 1 vectors)
 *   0x2000 device configuration      0x5000 MSI-X PBA
 *
 * Locking: everything here is guarded by virtio_dev.lock. The PCI root
 * calls the config-space handlers with its own lock held, and they take
 * the device lock inside it (root -> device, never the other way); the
 * BAR handlers and the notify eventfd callback take the device lock; the
 * transport ops the core calls (notify_queue/notify_config) run with it
 * already held.
 *
 * Choices the spec leaves open: with memory decode off in the command
 * register, BAR accesses are ignored and read as zeros (what kvmini's bus
 * gives for unclaimed MMIO); the BAR cannot move, so a write of another
 * address is ignored (and logged); odd-sized or misaligned register
 * accesses read the bytes they cover and are ignored as writes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "kvmini/devices.h"
#include "kvmini/event_loop.h"
#include "kvmini/layout.h"
#include "kvmini/log.h"
#include "kvmini/virtio_devices.h"
#include "pci_regs.h"

#define VIRTIO_PCI_VENDOR       0x1af4
#define VIRTIO_PCI_DEVICE_BASE  0x1040
#define VIRTIO_MSI_NO_VECTOR    0xffff

/* Config space registers (PCI 3.0). */
#define PCI_COMMAND             0x04
#define PCI_CMD_MEMORY          0x0002
#define PCI_CMD_MASTER          0x0004
#define PCI_CMD_INTX_DISABLE    0x0400
#define PCI_STATUS              0x06
#define PCI_STATUS_CAP_LIST     0x0010
#define PCI_STATUS_INTERRUPT    0x0008
#define PCI_BAR0                0x10
#define PCI_CAP_PTR             0x34
#define PCI_INT_LINE            0x3c
#define PCI_INT_PIN             0x3d
#define PCI_CAP_ID_VNDR         0x09
#define PCI_CAP_ID_MSIX         0x11

/* virtio_pci_cap cfg_type values. */
#define CAP_COMMON  1
#define CAP_NOTIFY  2
#define CAP_ISR     3
#define CAP_DEVICE  4
#define CAP_PCI_CFG 5

/* Where the capabilities sit in config space (a chain from 0x34). */
#define CAP_COMMON_AT  0x40 /* 16 bytes */
#define CAP_NOTIFY_AT  0x50 /* 20: + notify_off_multiplier */
#define CAP_ISR_AT     0x64 /* 16 */
#define CAP_DEVICE_AT  0x74 /* 16 */
#define CAP_PCI_CFG_AT 0x84 /* 20: + pci_cfg_data */
#define CAP_MSIX_AT    0x98 /* 12 */
#define MSIX_CTRL      (CAP_MSIX_AT + 2)
#define MSIX_ENABLE    0x8000
#define MSIX_FMASK     0x4000

/* BAR0 layout. */
#define BAR_COMMON     0x0000
#define COMMON_LEN     0x38
#define BAR_ISR        0x1000
#define BAR_DEVICE     0x2000
#define DEVICE_MAX     0x1000
#define BAR_NOTIFY     0x3000
#define NOTIFY_MULT    4
#define BAR_MSIX_TABLE 0x4000
#define BAR_MSIX_PBA   0x5000
#define MSIX_MAX       (VIRTIO_MAX_QUEUES + 1)

#define ISR_QUEUE  0x1
#define ISR_CONFIG 0x2

struct vp_queue {
	struct virtio_pci *vp;
	unsigned q;
	int fd;                 /* kicks: KVM's ioeventfd or our MMIO handler */
	int ioevent_len;        /* registered with KVM for this length, -1 not */
	bool watched;           /* on host->loop */
};

struct vp_vector {
	int fd;                 /* irqfd: writing 1 raises the MSI */
	int gsi;                /* routed GSI, -1 none */
	uint64_t routed_addr;
	uint32_t routed_data;
};

struct virtio_pci {
	struct virtio_dev *dev;
	struct virtio_host host;
	struct pci_root *root;
	unsigned slot;
	uint64_t bar_addr;
	uint8_t cfg[256];
	uint8_t wmask[256];     /* writable bits of plain registers */
	bool bar_sizing;        /* BAR0 reads the size mask */
	uint32_t dfselect, gfselect;
	uint16_t msix_config;
	uint16_t queue_select;
	uint8_t isr;
	bool intx_level;
	unsigned nr_vectors;
	uint8_t msix_table[MSIX_MAX * 16];
	uint64_t pba;
	struct vp_vector vec[MSIX_MAX];
	struct vp_queue queues[VIRTIO_MAX_QUEUES];
	struct log_ratelimit rl;
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return get16(p) | (uint32_t)get16(p + 2) << 16;
}

static uint64_t le_value(const void *data, unsigned len)
{
	uint64_t v = 0;

	memcpy(&v, data, len > 8 ? 8 : len); /* x86: little-endian */
	return v;
}

/* ---- interrupts ---- */

static void intx_update(struct virtio_pci *vp)
{
	bool level = vp->isr && !(get16(vp->cfg + PCI_COMMAND) & PCI_CMD_INTX_DISABLE);

	if (level == vp->intx_level)
		return;
	vp->intx_level = level;
	if (level)
		vp->cfg[PCI_STATUS] |= PCI_STATUS_INTERRUPT;
	else
		vp->cfg[PCI_STATUS] &= (uint8_t)~PCI_STATUS_INTERRUPT;
	if (irq_set(vp->host.irq, LAYOUT_PCI_GSI(vp->slot), level))
		LOG_GUEST(&vp->rl, "%s: cannot set INTx level %d", vp->dev->name, level);
}

static bool msix_enabled(const struct virtio_pci *vp)
{
	return get16(vp->cfg + MSIX_CTRL) & MSIX_ENABLE;
}

static bool vector_masked(const struct virtio_pci *vp, unsigned v)
{
	return (get16(vp->cfg + MSIX_CTRL) & MSIX_FMASK) || (vp->msix_table[v * 16 + 12] & 1);
}

/* Makes sure vector @v's route matches its table entry (only while it can
 * fire: enabled and unmasked), then delivers a pending message. */
static void vector_sync(struct virtio_pci *vp, unsigned v)
{
	struct vp_vector *vec = &vp->vec[v];
	const uint8_t *en = vp->msix_table + v * 16;
	uint64_t addr = get32(en) | (uint64_t)get32(en + 4) << 32;
	uint32_t data = get32(en + 8);

	if (!msix_enabled(vp) || vector_masked(vp, v) || !vp->host.msi_route)
		return;
	if (vec->gsi < 0 || vec->routed_addr != addr || vec->routed_data != data) {
		int gsi = vec->gsi;
		int r = vp->host.msi_route(vp->host.ctx, &gsi, addr, data, vec->fd);

		if (r) {
			LOG_GUEST(&vp->rl, "%s: cannot route MSI-X vector %u: %s",
				  vp->dev->name, v, strerror(-r));
			return;
		}
		vec->gsi = gsi;
		vec->routed_addr = addr;
		vec->routed_data = data;
	}
	if (vp->pba & (1ULL << v)) {
		vp->pba &= ~(1ULL << v);
		if (eventfd_write(vec->fd, 1))
			LOG_GUEST(&vp->rl, "%s: irqfd write failed", vp->dev->name);
	}
}

static void vectors_sync(struct virtio_pci *vp)
{
	for (unsigned v = 0; v < vp->nr_vectors; v++)
		vector_sync(vp, v);
}

/* Interrupts the driver through vector @v (MSI-X on) or ISR @isr_bit
 * and INTx (MSI-X off). */
static void interrupt(struct virtio_pci *vp, uint16_t v, uint8_t isr_bit)
{
	if (!msix_enabled(vp)) {
		vp->isr |= isr_bit;
		intx_update(vp);
		return;
	}
	if (v >= vp->nr_vectors)
		return; /* VIRTIO_MSI_NO_VECTOR: the driver asked for none */
	vp->pba |= 1ULL << v;
	vector_sync(vp, v); /* delivers unless masked or unroutable */
}

static void vp_notify_queue(void *transport, unsigned q)
{
	struct virtio_pci *vp = transport;

	if (q < vp->dev->nr_queues)
		interrupt(vp, vp->dev->vqs[q].msix_vector, ISR_QUEUE);
}

static void vp_notify_config(void *transport)
{
	struct virtio_pci *vp = transport;

	interrupt(vp, vp->msix_config, ISR_CONFIG);
}

static const struct virtio_transport_ops vp_tops = {
	.notify_queue = vp_notify_queue,
	.notify_config = vp_notify_config,
};

/* ---- common configuration ---- */

static struct virtq *selected(struct virtio_pci *vp)
{
	return vp->queue_select < vp->dev->nr_queues ? &vp->dev->vqs[vp->queue_select] : NULL;
}

/* The register file as the driver sees it now. */
static void common_image(struct virtio_pci *vp, uint8_t *img)
{
	struct virtio_dev *d = vp->dev;
	struct virtq *vq = selected(vp);

	memset(img, 0, COMMON_LEN);
	put32(img + CC_DFSELECT, vp->dfselect);
	if (vp->dfselect < 2)
		put32(img + CC_DF, (uint32_t)(d->features >> (32 * vp->dfselect)));
	put32(img + CC_GFSELECT, vp->gfselect);
	if (vp->gfselect < 2)
		put32(img + CC_GF, (uint32_t)(d->driver_features >> (32 * vp->gfselect)));
	put16(img + CC_MSIX, vp->msix_config);
	put16(img + CC_NUMQ, (uint16_t)d->nr_queues);
	img[CC_STATUS] = d->status;
	img[CC_CFGGEN] = d->config_generation;
	put16(img + CC_Q_SELECT, vp->queue_select);
	if (!vq)
		return; /* out-of-range queue_select: the queue registers read 0 */
	put16(img + CC_Q_SIZE, vq->size);
	put16(img + CC_Q_MSIX, vq->msix_vector);
	put16(img + CC_Q_ENABLE, vq->enabled);
	put16(img + CC_Q_NOFF, vp->queue_select);
	put32(img + CC_Q_DESC, (uint32_t)vq->desc_gpa);
	put32(img + CC_Q_DESC + 4, (uint32_t)(vq->desc_gpa >> 32));
	put32(img + CC_Q_DRIVER, (uint32_t)vq->avail_gpa);
	put32(img + CC_Q_DRIVER + 4, (uint32_t)(vq->avail_gpa >> 32));
	put32(img + CC_Q_DEVICE, (uint32_t)vq->used_gpa);
	put32(img + CC_Q_DEVICE + 4, (uint32_t)(vq->used_gpa >> 32));
}

static uint16_t checked_vector(const struct virtio_pci *vp, uint64_t v)
{
	/* §4.1.5.1.2: a vector the device cannot use reads back NO_VECTOR. */
	return v < vp->nr_vectors ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR;
}

/* Replaces the 32-bit half at byte @half of a 64-bit ring address. */
static void set_half(uint64_t *gpa, unsigned half, unsigned len, uint64_t v)
{
	if (len == 8)
		*gpa = v;
	else if (half == 0)
		*gpa = (*gpa & 0xffffffff00000000ULL) | (uint32_t)v;
	else
		*gpa = (*gpa & 0xffffffffULL) | v << 32;
}

static void after_status_write(struct virtio_pci *vp)
{
	if (vp->dev->status != 0)
		return;
	/* Device reset: the transport's part of it. */
	vp->msix_config = VIRTIO_MSI_NO_VECTOR;
	vp->queue_select = 0;
	vp->dfselect = vp->gfselect = 0;
	for (unsigned q = 0; q < vp->dev->nr_queues; q++)
		vp->dev->vqs[q].msix_vector = VIRTIO_MSI_NO_VECTOR;
	vp->isr = 0;
	intx_update(vp);
}

static void common_write(struct virtio_pci *vp, unsigned off, unsigned len, uint64_t v)
{
	struct virtio_dev *d = vp->dev;
	struct virtq *vq = selected(vp);
	unsigned base = off & ~7u;
	bool ring = off >= CC_Q_DESC && off < COMMON_LEN && off % 4 == 0 &&
		    (len == 4 || (len == 8 && off == base));

	if (ring) {
		/* 64-bit ring addresses: two 32-bit halves or one 64-bit write. */
		if (!vq || vq->enabled)
			return; /* no such queue, or reconfiguring a live queue */
		uint64_t *gpa = off < CC_Q_DRIVER ? &vq->desc_gpa
			      : off < CC_Q_DEVICE ? &vq->avail_gpa : &vq->used_gpa;
		set_half(gpa, off - base, len, v);
		return;
	}
	switch (off | len << 8) {
	case CC_DFSELECT | 4 << 8:
		vp->dfselect = (uint32_t)v;
		return;
	case CC_GFSELECT | 4 << 8:
		vp->gfselect = (uint32_t)v;
		return;
	case CC_GF | 4 << 8:
		if (vp->gfselect >= 2 || (d->status & VIRTIO_STATUS_FEATURES_OK))
			return;
		d->driver_features &= ~(0xffffffffULL << (32 * vp->gfselect));
		d->driver_features |= (uint64_t)(uint32_t)v << (32 * vp->gfselect);
		return;
	case CC_MSIX | 2 << 8:
		vp->msix_config = checked_vector(vp, v);
		return;
	case CC_STATUS | 1 << 8:
		virtio_dev_set_status(d, (uint8_t)v);
		after_status_write(vp);
		return;
	case CC_Q_SELECT | 2 << 8:
		vp->queue_select = (uint16_t)v;
		return;
	case CC_Q_SIZE | 2 << 8:
		if (vq && !vq->enabled && v <= vq->max_size)
			vq->size = (uint16_t)v; /* vq_enable checks the power of two */
		return;
	case CC_Q_MSIX | 2 << 8:
		if (vq)
			vq->msix_vector = checked_vector(vp, v);
		return;
	case CC_Q_ENABLE | 2 << 8:
		/* Writing 0 is forbidden to drivers (§4.1.4.3.2): ignore it. */
		if (vq && v == 1 && !vq->enabled)
			virtio_dev_enable_queue(d, vp->queue_select);
		return;
	}
	/* Read-only registers (device_feature, num_queues, config_generation,
	 * queue_notify_off) and accesses of the wrong size. */
	LOG_GUEST(&vp->rl, "%s: ignored %u-byte write at common config 0x%x",
		  d->name, len, off);
}

/* ---- BAR0 ---- */

static void isr_read(struct virtio_pci *vp, unsigned off, uint8_t *out, unsigned len)
{
	memset(out, 0, len);
	if (off != 0)
		return;
	/* Reading ISR acknowledges it and lowers INTx (§4.1.4.5). */
	out[0] = vp->isr;
	vp->isr = 0;
	intx_update(vp);
}

static void device_access(struct virtio_pci *vp, unsigned off, void *data, unsigned len,
			  bool is_write)
{
	struct virtio_dev *d = vp->dev;

	if (off + len > d->config_len || (!is_write && !d->ops->config_read) ||
	    (is_write && !d->ops->config_write)) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	if (is_write)
		d->ops->config_write(d, off, data, len);
	else
		d->ops->config_read(d, off, data, len);
}

static void notify_write(struct virtio_pci *vp, unsigned off)
{
	unsigned q = off / NOTIFY_MULT;

	if (off % NOTIFY_MULT || q >= vp->dev->nr_queues)
		return;
	/* The loop thread does the work, as with KVM's ioeventfd. */
	if (eventfd_write(vp->queues[q].fd, 1))
		LOG_GUEST(&vp->rl, "%s: queue %u kick lost", vp->dev->name, q);
}

static void msix_table_write(struct virtio_pci *vp, unsigned off, const uint8_t *in, unsigned len)
{
	unsigned v = off / 16;

	if (off + len > vp->nr_vectors * 16 || v != (off + len - 1) / 16)
		return;
	memcpy(vp->msix_table + off, in, len);
	/* Vector control: only the mask bit exists. */
	vp->msix_table[v * 16 + 12] &= 1;
	memset(vp->msix_table + v * 16 + 13, 0, 3);
	vector_sync(vp, v);
}

/* One access to BAR0 at @off (lock held). */
static void bar_access(struct virtio_pci *vp, uint64_t off, void *data, unsigned len,
		       bool is_write)
{
	uint8_t *buf = data;
	uint8_t img[COMMON_LEN];

	if (!(get16(vp->cfg + PCI_COMMAND) & PCI_CMD_MEMORY)) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	if (off + len <= BAR_COMMON + COMMON_LEN) { /* BAR_COMMON is 0 */
		if (is_write) {
			common_write(vp, (unsigned)off, len, le_value(data, len));
		} else {
			common_image(vp, img);
			memcpy(data, img + off, len);
		}
	} else if (off >= BAR_ISR && off + len <= BAR_ISR + 4) {
		if (!is_write)
			isr_read(vp, (unsigned)(off - BAR_ISR), buf, len);
	} else if (off >= BAR_DEVICE && off + len <= BAR_DEVICE + DEVICE_MAX) {
		device_access(vp, (unsigned)(off - BAR_DEVICE), data, len, is_write);
	} else if (off >= BAR_NOTIFY && off + len <= BAR_NOTIFY + NOTIFY_MULT * VIRTIO_MAX_QUEUES) {
		if (is_write)
			notify_write(vp, (unsigned)(off - BAR_NOTIFY));
		else
			memset(data, 0, len);
	} else if (off >= BAR_MSIX_TABLE && off + len <= BAR_MSIX_TABLE + sizeof(vp->msix_table)) {
		if (is_write)
			msix_table_write(vp, (unsigned)(off - BAR_MSIX_TABLE), buf, len);
		else
			memcpy(data, vp->msix_table + (off - BAR_MSIX_TABLE), len);
	} else if (off >= BAR_MSIX_PBA && off + len <= BAR_MSIX_PBA + 8) {
		if (!is_write)
			memcpy(data, (const uint8_t *)&vp->pba + (off - BAR_MSIX_PBA), len);
	} else if (!is_write) {
		memset(data, 0, len);
	}
}

static void bar_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	struct virtio_pci *vp = opaque;

	pthread_mutex_lock(&vp->dev->lock);
	bar_access(vp, off, data, len, false);
	pthread_mutex_unlock(&vp->dev->lock);
}

static void bar_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	struct virtio_pci *vp = opaque;

	pthread_mutex_lock(&vp->dev->lock);
	bar_access(vp, off, (void *)data, len, true); /* writes only read @data */
	pthread_mutex_unlock(&vp->dev->lock);
}

static const struct bus_ops bar_ops = { .read = bar_read, .write = bar_write };

/* ---- config space ---- */

/* The VIRTIO_PCI_CAP_PCI_CFG window: an access to pci_cfg_data reaches
 * BAR0 at the cap's offset with the cap's length. */
static void pci_cfg_window(struct virtio_pci *vp, bool is_write)
{
	uint8_t *cap = vp->cfg + CAP_PCI_CFG_AT;
	uint32_t off = get32(cap + 8), len = get32(cap + 12);

	if (len == 0)
		return; /* never set up: lspci -xxx dumping config space reads it */
	if (cap[4] != 0 || (len != 1 && len != 2 && len != 4) || off % len ||
	    off > LAYOUT_PCI_BAR_SIZE - len) {
		LOG_GUEST(&vp->rl, "%s: bad pci_cfg window bar %u off 0x%x len %u",
			  vp->dev->name, cap[4], off, len);
		return;
	}
	bar_access(vp, off, cap + 16, len, is_write);
}

static void bar0_write(struct virtio_pci *vp, uint32_t v)
{
	uint32_t mask = (uint32_t)~(LAYOUT_PCI_BAR_SIZE - 1);

	if ((v & mask) == mask) {
		vp->bar_sizing = true; /* all-ones: the size probe */
	} else {
		vp->bar_sizing = false;
		if ((v & mask) != (uint32_t)vp->bar_addr)
			LOG_GUEST(&vp->rl, "%s: BAR0 cannot move to 0x%x (fixed at 0x%llx)",
				  vp->dev->name, v & mask, (unsigned long long)vp->bar_addr);
	}
	/* 32-bit, non-prefetchable memory: type bits read as 0. */
	put32(vp->cfg + PCI_BAR0, vp->bar_sizing ? mask : (uint32_t)vp->bar_addr);
}

static void cfg_read(void *opaque, unsigned reg, void *data, unsigned len)
{
	struct virtio_pci *vp = opaque;

	pthread_mutex_lock(&vp->dev->lock);
	if (reg + len > CAP_PCI_CFG_AT + 16 && reg < CAP_PCI_CFG_AT + 20)
		pci_cfg_window(vp, false);
	memcpy(data, vp->cfg + reg, len);
	pthread_mutex_unlock(&vp->dev->lock);
}

static void cfg_write(void *opaque, unsigned reg, const void *data, unsigned len)
{
	struct virtio_pci *vp = opaque;
	const uint8_t *in = data;
	uint16_t old_cmd, old_msix;

	pthread_mutex_lock(&vp->dev->lock);
	old_cmd = get16(vp->cfg + PCI_COMMAND);
	old_msix = get16(vp->cfg + MSIX_CTRL);
	for (unsigned i = 0; i < len; i++) {
		unsigned r = reg + i;
		uint8_t m = vp->wmask[r];

		vp->cfg[r] = (uint8_t)((vp->cfg[r] & ~m) | (in[i] & m));
	}
	if (reg <= PCI_BAR0 + 3 && reg + len > PCI_BAR0) {
		uint8_t bar[4];

		/* Merge the bytes written into what the BAR showed. */
		memcpy(bar, vp->cfg + PCI_BAR0, 4);
		for (unsigned i = 0; i < len; i++)
			if (reg + i >= PCI_BAR0 && reg + i < PCI_BAR0 + 4)
				bar[reg + i - PCI_BAR0] = in[i];
		bar0_write(vp, get32(bar));
	}
	if (reg + len > CAP_PCI_CFG_AT + 16 && reg < CAP_PCI_CFG_AT + 20)
		pci_cfg_window(vp, true);
	if ((old_cmd ^ get16(vp->cfg + PCI_COMMAND)) & PCI_CMD_INTX_DISABLE)
		intx_update(vp);
	if (old_msix != get16(vp->cfg + MSIX_CTRL)) {
		if (msix_enabled(vp) && vp->isr) {
			/* Switching to MSI-X: the INTx state no longer applies. */
			vp->isr = 0;
			intx_update(vp);
		}
		vectors_sync(vp); /* enable or function unmask: deliver pending */
	}
	pthread_mutex_unlock(&vp->dev->lock);
}

static const struct pci_dev_ops vp_pci_ops = { .cfg_read = cfg_read, .cfg_write = cfg_write };

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

static void virtio_cap(struct virtio_pci *vp, unsigned at, unsigned next, unsigned cap_len,
		       uint8_t type, uint32_t off, uint32_t len)
{
	uint8_t *c = vp->cfg + at;

	c[0] = PCI_CAP_ID_VNDR;
	c[1] = (uint8_t)next;
	c[2] = (uint8_t)cap_len;
	c[3] = type;
	c[4] = 0; /* BAR0 */
	put32(c + 8, off);
	put32(c + 12, len);
}

static void config_init(struct virtio_pci *vp)
{
	struct virtio_dev *d = vp->dev;
	uint8_t *c = vp->cfg;
	uint32_t class = class_of(d->device_id);
	/* Linux maps the device region only when it has a nonzero length. */
	uint32_t dev_len = d->config_len < DEVICE_MAX ? d->config_len : DEVICE_MAX;

	put16(c + 0x00, VIRTIO_PCI_VENDOR);
	put16(c + 0x02, (uint16_t)(VIRTIO_PCI_DEVICE_BASE + d->device_id));
	put16(c + PCI_STATUS, PCI_STATUS_CAP_LIST);
	c[0x08] = 1; /* revision 1: modern (virtio 1.x) device */
	c[0x09] = (uint8_t)class;
	c[0x0a] = (uint8_t)(class >> 8);
	c[0x0b] = (uint8_t)(class >> 16);
	c[0x0e] = 0; /* header type 0, single function */
	put32(c + PCI_BAR0, (uint32_t)vp->bar_addr);
	put16(c + 0x2c, VIRTIO_PCI_VENDOR);
	put16(c + 0x2e, d->device_id);
	c[PCI_CAP_PTR] = CAP_COMMON_AT;
	c[PCI_INT_LINE] = (uint8_t)LAYOUT_PCI_GSI(vp->slot);
	c[PCI_INT_PIN] = 1; /* INTA# */

	virtio_cap(vp, CAP_COMMON_AT, CAP_NOTIFY_AT, 16, CAP_COMMON, BAR_COMMON, COMMON_LEN);
	virtio_cap(vp, CAP_NOTIFY_AT, CAP_ISR_AT, 20, CAP_NOTIFY, BAR_NOTIFY,
		   NOTIFY_MULT * d->nr_queues);
	put32(c + CAP_NOTIFY_AT + 16, NOTIFY_MULT);
	virtio_cap(vp, CAP_ISR_AT, CAP_DEVICE_AT, 16, CAP_ISR, BAR_ISR, 1);
	virtio_cap(vp, CAP_DEVICE_AT, CAP_PCI_CFG_AT, 16, CAP_DEVICE, BAR_DEVICE, dev_len);
	if (dev_len == 0) /* no device configuration: drop that cap */
		c[CAP_ISR_AT + 1] = CAP_PCI_CFG_AT;
	virtio_cap(vp, CAP_PCI_CFG_AT, CAP_MSIX_AT, 20, CAP_PCI_CFG, 0, 0);
	c[CAP_MSIX_AT] = PCI_CAP_ID_MSIX;
	c[CAP_MSIX_AT + 1] = 0; /* end of the chain */
	put16(c + MSIX_CTRL, (uint16_t)(vp->nr_vectors - 1));
	put32(c + CAP_MSIX_AT + 4, BAR_MSIX_TABLE); /* BIR 0 */
	put32(c + CAP_MSIX_AT + 8, BAR_MSIX_PBA);

	/* Writable: memory decode, bus master, INTx disable; cache line
	 * size; interrupt line; the pci_cfg window's bar/offset/length/data;
	 * MSI-X enable and function mask. BAR0 is handled apart. */
	vp->wmask[PCI_COMMAND] = PCI_CMD_MEMORY | PCI_CMD_MASTER;
	vp->wmask[PCI_COMMAND + 1] = PCI_CMD_INTX_DISABLE >> 8;
	vp->wmask[0x0c] = 0xff;
	vp->wmask[PCI_INT_LINE] = 0xff;
	vp->wmask[CAP_PCI_CFG_AT + 4] = 0xff;
	memset(vp->wmask + CAP_PCI_CFG_AT + 8, 0xff, 12);
	vp->wmask[MSIX_CTRL + 1] = (MSIX_ENABLE | MSIX_FMASK) >> 8;

	for (unsigned v = 0; v < vp->nr_vectors; v++)
		vp->msix_table[v * 16 + 12] = 1; /* vectors start masked */
}

/* ---- kicks through the event loop ---- */

static void kick_ready(void *opaque, uint32_t events)
{
	struct vp_queue *vq = opaque;
	struct virtio_dev *d = vq->vp->dev;
	eventfd_t n;

	pthread_mutex_lock(&d->lock);
	if (eventfd_read(vq->fd, &n) == 0 && virtio_dev_live(d) && d->vqs[vq->q].enabled)
		d->ops->queue_notify(d, vq->q);
	pthread_mutex_unlock(&d->lock);
}

/* Undoes whatever parts of setup happened (fds -1, flags false). */
static void teardown(struct virtio_pci *vp)
{
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++) {
		struct vp_queue *vq = &vp->queues[q];

		if (vq->watched)
			evloop_del(vp->host.loop, vq->fd);
		if (vq->ioevent_len >= 0 &&
		    vp->host.ioeventfd(vp->host.ctx, vp->bar_addr + BAR_NOTIFY + NOTIFY_MULT * q,
				       (unsigned)vq->ioevent_len, -1, vq->fd, false))
			LOG_DEBUG("%s: ioeventfd %u deassign failed", vp->dev->name, q);
		if (vq->fd >= 0)
			close(vq->fd);
	}
	for (unsigned v = 0; v < MSIX_MAX; v++) {
		if (vp->vec[v].gsi >= 0 && vp->host.msi_unroute)
			vp->host.msi_unroute(vp->host.ctx, vp->vec[v].gsi, vp->vec[v].fd);
		if (vp->vec[v].fd >= 0)
			close(vp->vec[v].fd);
	}
}

static int setup_kicks(struct virtio_pci *vp, struct kv_err *e)
{
	for (unsigned q = 0; q < vp->dev->nr_queues; q++) {
		struct vp_queue *vq = &vp->queues[q];
		uint64_t addr = vp->bar_addr + BAR_NOTIFY + NOTIFY_MULT * q;
		int r;

		/* Length 0 matches any write size (and takes KVM's fast MMIO
		 * path); Linux writes the queue index with iowrite16. Without
		 * either, our MMIO handler signals the same eventfd. */
		for (unsigned len = 0; vp->host.ioeventfd && len <= 2 && vq->ioevent_len < 0; len += 2)
			if (!vp->host.ioeventfd(vp->host.ctx, addr, len, -1, vq->fd, true))
				vq->ioevent_len = (int)len;
		if (vp->host.loop) {
			r = evloop_add(vp->host.loop, vq->fd, EPOLLIN, kick_ready, vq);
			if (r)
				return kv_err_set(e, r, "%s: watching queue %u kicks: %s",
						  vp->dev->name, q, strerror(-r));
			vq->watched = true;
		}
	}
	return 0;
}

int virtio_pci_create(struct pci_root *pci, const struct virtio_host *host,
		      struct virtio_dev *dev, struct virtio_pci **out, struct kv_err *e)
{
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
	vp->nr_vectors = dev->nr_queues + 1; /* one per queue and one for config */
	vp->msix_config = VIRTIO_MSI_NO_VECTOR;
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		vp->queues[q] = (struct vp_queue){ .vp = vp, .q = q, .fd = -1, .ioevent_len = -1 };
	for (unsigned v = 0; v < MSIX_MAX; v++)
		vp->vec[v] = (struct vp_vector){ .fd = -1, .gsi = -1 };
	for (unsigned q = 0; q < dev->nr_queues; q++) {
		vp->queues[q].fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (vp->queues[q].fd < 0) {
			r = kv_err_set(e, -errno, "%s: eventfd: %s", dev->name, strerror(errno));
			goto fail;
		}
	}
	for (unsigned v = 0; v < vp->nr_vectors; v++) {
		vp->vec[v].fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (vp->vec[v].fd < 0) {
			r = kv_err_set(e, -errno, "%s: eventfd: %s", dev->name, strerror(errno));
			goto fail;
		}
	}
	r = pci_root_add(pci, &vp_pci_ops, vp, &vp->slot, e);
	if (r)
		goto fail;
	vp->bar_addr = LAYOUT_PCI_BAR(vp->slot);
	pthread_mutex_lock(&dev->lock);
	config_init(vp);
	for (unsigned q = 0; q < dev->nr_queues; q++)
		dev->vqs[q].msix_vector = VIRTIO_MSI_NO_VECTOR;
	dev->tops = &vp_tops;
	dev->transport = vp;
	pthread_mutex_unlock(&dev->lock);
	r = setup_kicks(vp, e);
	if (r)
		goto fail_unplug;
	/* Last: the bus cannot unregister a range. */
	r = bus_register(host->mmio, vp->bar_addr, LAYOUT_PCI_BAR_SIZE, &bar_ops, vp, dev->name, e);
	if (r)
		goto fail_unplug;
	LOG_DEBUG("%s: virtio-pci 00:%02x.0, BAR0 0x%llx, INTx GSI %u", dev->name, vp->slot,
		  (unsigned long long)vp->bar_addr, LAYOUT_PCI_GSI(vp->slot));
	*out = vp;
	return 0;

fail_unplug:
	pci_root_remove(pci, vp->slot);
	pthread_mutex_lock(&dev->lock);
	dev->tops = NULL;
	dev->transport = NULL;
	pthread_mutex_unlock(&dev->lock);
fail:
	teardown(vp);
	free(vp);
	return r;
}

void virtio_pci_destroy(struct virtio_pci *vp)
{
	if (!vp)
		return;
	/* After this no kick callback runs and the root stops calling us;
	 * the MMIO range stays registered, so the VM destroys transports
	 * only once the vCPUs are stopped. */
	pci_root_remove(vp->root, vp->slot);
	teardown(vp);
	pthread_mutex_lock(&vp->dev->lock);
	if (vp->intx_level)
		(void)irq_set(vp->host.irq, LAYOUT_PCI_GSI(vp->slot), 0);
	vp->dev->tops = NULL;
	vp->dev->transport = NULL;
	pthread_mutex_unlock(&vp->dev->lock);
	free(vp);
}
