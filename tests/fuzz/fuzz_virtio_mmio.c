/* Fuzz target: the virtio-mmio transport (devices/virtio/mmio.c): its
 * version 2 register window through the real MMIO bus, as a sequence of
 * (register, size, value, read/write) operations from the input; chains
 * the driver posts on the queues and kicks (through a fake KVM that
 * honours the transport's datamatch ioeventfds); device-side completions
 * and failures. The event loop runs after every step, so kicks reach the
 * fake device, which processes its queues and holds some chains in
 * flight, so QueueReady = 0 and resets meet work in progress.
 *
 * Oracles: those of fuzz_fake_dev.h (guest memory, used ring, the vq_pop
 * model, no work held on a stopped queue, status and negotiation), and
 * every ioeventfd deassigned at the end. */
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

	fr_init_sized(&r, FAKE_RAM_SIZE, FAKE_DATA_START, true);
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

	if (op & 1)
		fake_kvm_write(mmio, BASE + off, v, len);
	else
		bus_dispatch(mmio, BASE + off, &v, len, false);
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
	bus_init(&mmio, BUS_MMIO);
	virtio_dev_init(&dev, "virtio-fuzz0", VIRTIO_ID_BLOCK, 1ULL << 5, FAKE_NQ, FAKE_QSIZE,
			FAKE_CFG_LEN, &fake_dev_ops, NULL, &r.gm, loop);
	fake_reset(&r, &dev);
	host = (struct virtio_host){ .mem = &r.gm, .mmio = &mmio, .irq = &fake_sink, .loop = loop };
	fake_host_calls(&host, hostcfg & 2);    /* ioeventfds or not; no MSI on mmio */
	if (virtio_mmio_create(&host, BASE, GSI, &dev, &mm, &e)) {
		/* Only the ioeventfds can fail here (host failure is off). */
		abort();
	}
	for (unsigned steps = 0; !fz_empty(&f) && steps < 1024; steps++) {
		uint8_t op = fz_u8(&f);

		fake_step_begin();
		if (op >= 0xf0) {
			fake_device_event(&dev, op);
		} else if (op >= 0xe0) {
			/* The driver posts on queue op & 1, and kicks with op & 2. */
			fake_post(&dev, op & 1, &f);
			if (op & 2)
				fake_kvm_write(&mmio, BASE + 0x050, op & 1, 4);
		} else {
			reg_access(&mmio, &f, op);
		}
		while (evloop_run_once(loop, 0) > 0)
			;
		fake_step_end();
	}
	virtio_mmio_destroy(mm);
	virtio_dev_fini(&dev);
	FUZZ_CHECK(mmio.nr_ranges == 0); /* the window unregistered */
	bus_destroy(&mmio);
	fake_check_teardown();
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

/* A chain of a header (readable) and two writable buffers, posted on
 * queue op & 1 and kicked with op & 2. */
static void post(struct fw *w, uint8_t op, uint8_t seed)
{
	fw_u8(w, op); fw_u8(w, 2); fw_u8(w, seed & 1);
	fw_u16(w, 16); fw_u8(w, 0);
	fw_u16(w, (uint16_t)(512 + seed)); fw_u8(w, 1);
	fw_u16(w, 1); fw_u8(w, 1);
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
	/* Feature bit 5, INDIRECT_DESC, EVENT_IDX and VERSION_1. */
	wr(&w, 0x024, 0); wr(&w, 0x020, 1u << 5 | 1u << 28 | 1u << 29);
	wr(&w, 0x024, 1); wr(&w, 0x020, 1);
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
	for (unsigned k = 0; k < 6; k++)
		post(&w, (uint8_t)(0xe2 | (k & 1)), (uint8_t)k);
	fw_u8(&w, 0xf0); fw_u8(&w, 0xf1);
	wr(&w, 0x030, 1); wr(&w, 0x044, 0); rd(&w, 0x044);   /* stop queue 1 in flight */
	wr(&w, 0x080, 0x3000); wr(&w, 0x044, 1);
	post(&w, 0xe3, 7);
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
