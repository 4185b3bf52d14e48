/* Fuzz target: the virtio-mmio transport (devices/virtio/mmio.c): its
 * version 2 register window through the real MMIO bus, as a sequence of
 * (register, size, value, read/write) operations from the input, plus
 * interrupts raised by the device side. The device and host behind it are
 * the fakes of fuzz_fake_dev.h. The event loop exists but never runs: a
 * kick only signals its eventfd, as KVM would, and the loop's side of it is
 * the device's, which the other targets fuzz. */
#include <stdlib.h>

#include "kvmini/event_loop.h"
#include "kvmini/layout.h"
#include "kvmini/virtio_mmio.h"
#include "fuzz_common.h"
#include "fuzz_fake_dev.h"

#define BASE LAYOUT_VIRTIO_MMIO(0)
#define GSI 5

static struct fr r;
static struct evloop *loop;

/* The registers a driver uses (virtio 1.x, 4.2.2), then the config space. */
static const uint16_t regs[] = {
	0x000, 0x004, 0x008, 0x00c, 0x010, 0x014, 0x020, 0x024, 0x030, 0x034,
	0x038, 0x044, 0x050, 0x060, 0x064, 0x070, 0x080, 0x084, 0x090, 0x094,
	0x0a0, 0x0a4, 0x0fc, 0x100, 0x104, 0x108,
};
#define NREGS (sizeof(regs) / sizeof(regs[0]))

void fuzz_init(void)
{
	struct kv_err e = { 0 };

	fr_init(&r);
	if (evloop_create(&loop, &e))
		abort();
}

static void reg_access(struct bus *mmio, struct fz *f, uint8_t op)
{
	uint8_t where = fz_u8(f);
	/* Mostly a real register, sometimes anywhere in (or just past) the
	 * window, at any alignment. */
	uint64_t off = where >= 0xf0 ? fz_u16(f) % (LAYOUT_VIRTIO_MMIO_SIZE + 0x10)
				     : regs[where % NREGS] + (op & 0x40 ? where >> 6 : 0);
	unsigned len = 1u << (op >> 2 & 3);
	uint64_t v = op & 1 ? fz_u64(f) : 0;

	bus_dispatch(mmio, BASE + off, &v, len, op & 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f = { data, size };
	struct bus mmio;
	struct virtio_dev dev;
	struct virtio_mmio *mm;
	struct virtio_host host;
	struct kv_err e = { 0 };
	uint8_t hostcfg = fz_u8(&f);

	fr_reset(&r);
	fake_reset();
	bus_init(&mmio, BUS_MMIO);
	virtio_dev_init(&dev, "virtio-fuzz0", VIRTIO_ID_BLOCK, 1ULL << 5, FAKE_NQ, FAKE_QSIZE,
			FAKE_CFG_LEN, &fake_dev_ops, NULL, &r.gm, NULL);
	host = (struct virtio_host){ .mem = &r.gm, .mmio = &mmio, .irq = &fake_sink, .loop = loop };
	fake_host_calls(&host, hostcfg & 2);    /* ioeventfds or not; no MSI on mmio */
	if (virtio_mmio_create(&host, BASE, GSI, &dev, &mm, &e))
		abort();
	for (unsigned steps = 0; !fz_empty(&f) && steps < 1024; steps++) {
		uint8_t op = fz_u8(&f);

		if (op >= 0xf0)
			fake_device_event(&dev, op);
		else
			reg_access(&mmio, &f, op);
	}
	virtio_mmio_destroy(mm);
	virtio_dev_fini(&dev);
	bus_destroy(&mmio);
	return 0;
}

/* Seed ops: register index @i in regs[], 4 bytes. */
static unsigned reg_index(uint16_t off)
{
	for (unsigned i = 0; i < NREGS; i++)
		if (regs[i] == off)
			return i;
	abort();
}

static void wr(struct fw *w, uint16_t off, uint32_t v)
{
	fw_u8(w, 1 | 2 << 2); fw_u8(w, (uint8_t)reg_index(off)); fw_u64(w, v);
}

static void rd(struct fw *w, uint16_t off)
{
	fw_u8(w, 2 << 2); fw_u8(w, (uint8_t)reg_index(off));
}

void fuzz_write_seeds(const char *dir)
{
	struct fw w = { .n = 0 };

	/* Linux's virtio_mmio probe and setup: identify, reset, negotiate
	 * VERSION_1, two queues, DRIVER_OK, kick, interrupt and its ack,
	 * config reads, reset. */
	fw_u8(&w, 2);                                   /* ioeventfds */
	rd(&w, 0x000); rd(&w, 0x004); rd(&w, 0x008); rd(&w, 0x00c);
	wr(&w, 0x070, 0); wr(&w, 0x070, 1); wr(&w, 0x070, 3);
	wr(&w, 0x014, 0); rd(&w, 0x010); wr(&w, 0x014, 1); rd(&w, 0x010);
	wr(&w, 0x024, 0); wr(&w, 0x020, 1u << 5); wr(&w, 0x024, 1); wr(&w, 0x020, 1);
	wr(&w, 0x070, 0x0b); rd(&w, 0x070);
	for (uint32_t q = 0; q < FAKE_NQ; q++) {
		wr(&w, 0x030, q); rd(&w, 0x044); rd(&w, 0x034);
		wr(&w, 0x038, 8);
		wr(&w, 0x080, 0x1000 + q * 0x8000); wr(&w, 0x084, 0);
		wr(&w, 0x090, 0x5000 + q * 0x8000); wr(&w, 0x094, 0);
		wr(&w, 0x0a0, 0x6000 + q * 0x8000); wr(&w, 0x0a4, 0);
		wr(&w, 0x044, 1);
	}
	wr(&w, 0x070, 0x0f);
	wr(&w, 0x050, 0); wr(&w, 0x050, 1);
	fw_u8(&w, 0xf0); rd(&w, 0x060); wr(&w, 0x064, 1);
	rd(&w, 0x0fc); rd(&w, 0x100); rd(&w, 0x104); wr(&w, 0x100, 0xabcd);
	fw_u8(&w, 0xf8); rd(&w, 0x070); rd(&w, 0x060); wr(&w, 0x064, 2);
	wr(&w, 0x070, 0);                               /* reset */
	fuzz_seed(dir, "linux_probe", w.buf, w.n);

	/* No ioeventfds, a queue made ready without addresses, odd sizes. */
	w.n = 0;
	fw_u8(&w, 0);
	wr(&w, 0x070, 0x0b);
	wr(&w, 0x030, 1); wr(&w, 0x038, 3); wr(&w, 0x044, 1); rd(&w, 0x044);
	wr(&w, 0x030, 7); rd(&w, 0x034);
	fw_u8(&w, 1 | 0 << 2); fw_u8(&w, 0xf0); fw_u16(&w, 0x0071); fw_u64(&w, 0xff);
	fw_u8(&w, 3 << 2); fw_u8(&w, 0xf0); fw_u16(&w, 0x0ffc);
	fuzz_seed(dir, "odd_accesses", w.buf, w.n);
}
